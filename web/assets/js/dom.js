// DOM building for the whole UI. Every page builds its DOM through `h`, which only ever
// creates elements and text nodes: untrusted strings (model output, tool output, tool and
// server names) can never become markup, script or style. There is no HTML sink anywhere in
// web/ (a Rust test greps for them).

const SVG_NS = 'http://www.w3.org/2000/svg';

// Attributes `h` accepts; anything else (event handlers, style, srcdoc…) is refused loudly.
const SAFE_ATTRS = new Set([
  'id', 'class', 'title', 'role', 'type', 'name', 'value', 'placeholder', 'for', 'min', 'max',
  'step', 'rows', 'cols', 'disabled', 'checked', 'selected', 'readonly', 'required', 'open',
  'hidden', 'tabindex', 'colspan', 'rowspan', 'href', 'target', 'rel', 'autocomplete',
  'spellcheck', 'multiple', 'maxlength', 'datetime', 'lang', 'dir', 'download',
  // SVG geometry and presentation
  'viewBox', 'width', 'height', 'x', 'y', 'x1', 'y1', 'x2', 'y2', 'cx', 'cy', 'r', 'rx', 'ry',
  'd', 'points', 'transform', 'fill', 'stroke', 'stroke-width', 'marker-end', 'markerWidth',
  'markerHeight', 'refX', 'refY', 'orient', 'text-anchor', 'dominant-baseline',
  'preserveAspectRatio', 'xmlns',
]);

/**
 * Only relative links, http(s) and mailto survive; anything else (script URLs, data:,
 * vbscript:…) becomes null and the caller renders plain text instead.
 */
export function safeHref(raw) {
  if (typeof raw !== 'string') return null;
  const value = raw.trim();
  if (value === '') return null;
  let url;
  try {
    url = new URL(value, window.location.href);
  } catch {
    return null;
  }
  if (url.protocol === 'http:' || url.protocol === 'https:' || url.protocol === 'mailto:') {
    return url.href;
  }
  return null;
}

function setAttr(el, key, value) {
  if (value === false || value === null || value === undefined) return;
  if (key.startsWith('data-') || key.startsWith('aria-')) {
    el.setAttribute(key, String(value));
    return;
  }
  if (!SAFE_ATTRS.has(key)) throw new Error(`h(): attribute ${key} is not allowed`);
  if (key === 'href') {
    const href = safeHref(String(value));
    if (href === null) return;
    el.setAttribute('href', href);
    const external = new URL(href).origin !== window.location.origin;
    if (external) {
      el.setAttribute('rel', 'noopener noreferrer nofollow');
      el.setAttribute('target', '_blank');
    }
    return;
  }
  if (value === true) {
    el.setAttribute(key, '');
    return;
  }
  el.setAttribute(key, String(value));
}

function append(el, child) {
  if (child === null || child === undefined || child === false) return;
  if (Array.isArray(child)) {
    for (const c of child) append(el, c);
  } else if (child instanceof Node) {
    el.appendChild(child);
  } else {
    el.appendChild(document.createTextNode(String(child)));
  }
}

/**
 * `h('div', {class: 'card'}, 'text', h('b', {}, name))`. Attributes go through an allowlist;
 * `on: {click: fn}` adds listeners; strings become text nodes.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  applyAttrs(el, attrs);
  append(el, children);
  return el;
}

/** `h` for SVG elements (the DAG and the waterfall). */
export function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  applyAttrs(el, attrs);
  append(el, children);
  return el;
}

function applyAttrs(el, attrs) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === 'on') {
      for (const [event, handler] of Object.entries(value)) el.addEventListener(event, handler);
    } else {
      setAttr(el, key, value);
    }
  }
}

/** Replace all children of `el` with `children`. */
export function mount(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** `document.getElementById` that fails loudly when the page and the module disagree. */
export function byId(id) {
  const el = document.getElementById(id);
  if (!el) throw new Error(`missing #${id}`);
  return el;
}

/** Milliseconds as `850 ms`, `1.2 s`, `3 min 4 s`. */
export function formatDuration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
  const minutes = Math.floor(ms / 60_000);
  return `${minutes} min ${Math.round((ms % 60_000) / 1000)} s`;
}

/** Unix milliseconds as local date and time. */
export function formatTime(unixMs) {
  if (!unixMs) return '—';
  return new Date(unixMs).toLocaleString();
}

/** The first `max` characters of `text`, with an ellipsis when cut. */
export function excerpt(text, max = 120) {
  const value = String(text ?? '');
  return value.length > max ? `${value.slice(0, max - 1)}…` : value;
}
