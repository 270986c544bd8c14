// What a "try it" call answered, as DOM: every MCP content kind of a tool result, the
// structured content, isError and the truncation marker; or a failed call in plain words.
//
// Tool output is untrusted. Text becomes text nodes; an image is shown only when its MIME type
// is a plain image type and its data is base64, through a `data:` URL (CSP allows `img-src
// data:`; an <img> never runs script, even for SVG). Links in resource links are shown as text,
// never followed. Audio cannot play under the page's CSP (media-src falls back to 'none'), so it
// is described instead.

import { h, formatDuration } from './dom.js';
import { jsonView } from './json-view.js';

const IMAGE_MIME = /^image\/[a-z0-9][a-z0-9.+-]*$/i;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** Approximate decoded size of base64 `data`, for describing binary content. */
function base64Bytes(data) {
  const clean = data.replace(/\s+/g, '');
  const padding = clean.endsWith('==') ? 2 : clean.endsWith('=') ? 1 : 0;
  return Math.max(0, Math.floor((clean.length * 3) / 4) - padding);
}

function formatBytes(n) {
  if (n < 1024) return `${n} bytes`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / (1024 * 1024)).toFixed(1)} MiB`;
}

/**
 * An <img> for base64 image data, or null when the MIME type or data is not acceptable. `h()`
 * refuses `src` on purpose; this is the one place that sets it, and only to a `data:image/` URL.
 */
export function dataImage(mimeType, data, alt) {
  if (typeof mimeType !== 'string' || typeof data !== 'string') return null;
  if (!IMAGE_MIME.test(mimeType)) return null;
  const clean = data.replace(/\s+/g, '');
  if (clean.length === 0 || clean.length % 4 !== 0 || !BASE64.test(clean)) return null;
  const url = `data:${mimeType.toLowerCase()};base64,${clean}`;
  if (!url.startsWith('data:image/')) return null;
  const img = document.createElement('img');
  img.setAttribute('src', url);
  img.setAttribute('alt', alt);
  img.className = 'content-image';
  return img;
}

function kindLabel(text) {
  return h('div', { class: 'content-kind' }, text);
}

function binaryPlaceholder(what, mimeType, data) {
  const size = typeof data === 'string' ? formatBytes(base64Bytes(data)) : 'no data';
  return h('div', { class: 'content-placeholder' }, `[${what}: ${typeof mimeType === 'string' ? mimeType : 'unknown type'}, ${size}]`);
}

/** One content block of a tool result. */
function contentBlock(block, index) {
  const type = block && typeof block === 'object' ? block.type : undefined;
  const wrap = (label, ...body) => h('div', { class: `content-block content-${typeof type === 'string' ? type.replace(/[^a-z_]/gi, '') : 'unknown'}`, 'data-index': index }, kindLabel(label), ...body);
  switch (type) {
    case 'text':
      return wrap('text', h('pre', { class: 'content-text' }, String(block.text ?? '')));
    case 'image': {
      const img = dataImage(block.mimeType, block.data, `image ${index + 1} of the result`);
      return wrap(`image (${String(block.mimeType ?? 'unknown type')})`, img ?? binaryPlaceholder('image not shown: not a base64 image', block.mimeType, block.data));
    }
    case 'audio':
      return wrap('audio', binaryPlaceholder('audio', block.mimeType, block.data));
    case 'resource': {
      const res = block.resource ?? {};
      const body = typeof res.text === 'string'
        ? h('pre', { class: 'content-text' }, res.text)
        : binaryPlaceholder('binary resource', res.mimeType, res.blob);
      return wrap('embedded resource', h('div', { class: 'content-meta' }, h('code', {}, String(res.uri ?? '')), res.mimeType ? ` · ${res.mimeType}` : ''), body);
    }
    case 'resource_link':
      return wrap(
        'resource link',
        h(
          'div',
          { class: 'content-meta' },
          h('code', {}, String(block.uri ?? '')),
          block.name ? ` · ${block.name}` : '',
          block.mimeType ? ` · ${block.mimeType}` : '',
        ),
        typeof block.description === 'string' ? h('div', { class: 'content-description' }, block.description) : null,
      );
    default:
      return wrap(`unknown content${typeof type === 'string' ? ` (${type})` : ''}`, jsonView(block));
  }
}

/** The successful answer of `POST /api/tools/{name}/invoke`. */
export function renderInvokeResult(answer) {
  const result = answer && typeof answer.result === 'object' && answer.result !== null ? answer.result : {};
  const isError = result.isError === true;
  const content = Array.isArray(result.content) ? result.content : [];
  const parts = [];
  parts.push(
    h(
      'div',
      { class: 'result-head' },
      h('span', { class: `badge ${isError ? 'status-failed' : 'status-succeeded'}` }, isError ? 'tool error' : 'ok'),
      ' ',
      isError ? 'The tool answered with an error (isError: true).' : 'The tool answered.',
      typeof answer.duration_ms === 'number' ? h('span', { class: 'result-duration' }, ` ${formatDuration(answer.duration_ms)}`) : null,
    ),
  );
  if (answer.truncated) {
    const t = answer.truncated;
    parts.push(
      h(
        'div',
        { class: 'notice warn result-truncated' },
        `The result was cut: it was ${formatBytes(Number(t.original_bytes) || 0)}, over the limit of ${formatBytes(Number(t.limit_bytes) || 0)} (tools.max_result_bytes).`,
      ),
    );
  }
  if (content.length === 0) parts.push(h('p', { class: 'muted' }, 'No content blocks.'));
  content.forEach((block, i) => parts.push(contentBlock(block, i)));
  if (result.structuredContent !== undefined && result.structuredContent !== null) {
    parts.push(h('div', { class: 'content-block content-structured' }, kindLabel('structured content'), jsonView(result.structuredContent, { openDepth: 2 })));
  }
  parts.push(h('details', { class: 'result-raw' }, h('summary', {}, 'Raw response'), jsonView(answer, { openDepth: 1 })));
  return h('div', { class: `result${isError ? ' is-error' : ''}`, 'data-is-error': String(isError) }, parts);
}

/** A call that did not produce a result (anything but 422, which goes next to the fields). */
export function renderInvokeFailure(err, toolName) {
  const message = err && typeof err.message === 'string' ? err.message : String(err);
  let headline;
  switch (err && err.status) {
    case 0:
      headline = 'Switchboard could not be reached. Is it still running?';
      break;
    case 400:
      headline = 'Switchboard refused the request.';
      break;
    case 404:
      headline = `The tool ${toolName} is no longer in the catalog: its server may have stopped or the config was reloaded.`;
      break;
    case 502:
      headline = 'The MCP server answered with something that is not a valid result.';
      break;
    case 503:
      headline = "The tool's MCP server is not available right now.";
      break;
    case 504:
      headline = 'The tool did not answer in time and the call was cancelled.';
      break;
    default:
      headline = err && err.status ? `The call failed (HTTP ${err.status}).` : 'The call failed.';
  }
  return h('div', { class: 'notice error result-failure', 'data-status': String(err && err.status) }, h('div', {}, headline), h('div', { class: 'result-message' }, message));
}
