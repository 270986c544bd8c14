// The detail panel of one step in the run view: timing, tokens, the MCP server behind an act
// (transport and protocol version from `GET /api/mcp/servers`, the server's own tool name from
// `GET /api/tools`), its neighbours in the DAG, and its input, output and error. JSON goes
// through jsonView (collapsible, escaped text); text the model or a tool wrote is shown as text.

import { h, formatDuration, formatTime } from './dom.js';
import { jsonView } from './json-view.js';
import { statusBadge, statusLabel, formatTokens, elapsedMs } from './debug-common.js';

/**
 * The content of `#step-detail` for `step` of `run`. `context` carries `servers` (Map name →
 * status), `tools` (Map exposed name → tool), and `onSelect(index)` for the neighbour links.
 */
export function renderStepDetail(step, run, context) {
  if (!step) {
    return [
      h('h2', {}, 'Step'),
      h('p', { class: 'muted step-hint' }, 'Select a step in the graph or the timeline to see its input, output and timing.'),
    ];
  }
  return [
    h(
      'div',
      { class: 'step-title' },
      h('h2', {}, `#${step.index} ${step.kind}`, h('span', { class: 'step-name' }, step.name)),
      statusBadge(step.status, 'step-status'),
    ),
    errorSection(step),
    h(
      'dl',
      { class: 'step-facts' },
      timing(step, run),
      tokens(step),
      step.kind === 'act' ? server(step, context) : null,
      neighbours(step, run, context.onSelect),
    ),
    section('step-input', 'Input', step.input, inputNote(step)),
    outputSection(step),
  ];
}

function fact(cls, label, ...value) {
  return h('div', { class: `step-fact ${cls}` }, h('dt', {}, label), h('dd', {}, ...value));
}

function timing(step, run) {
  const running = step.status === 'running';
  const offset = step.started_at - run.started_at;
  return fact(
    'step-timing',
    'Timing',
    h('div', {}, 'Started ', h('time', { datetime: iso(step.started_at) }, formatTime(step.started_at)), h('span', { class: 'muted' }, ` (+${formatDuration(offset)} into the run)`)),
    h('div', {}, 'Ended ', step.finished_at ? h('time', { datetime: iso(step.finished_at) }, formatTime(step.finished_at)) : running ? 'not yet' : '—'),
    h('div', {}, 'Duration ', h('strong', { class: 'step-duration' }, formatDuration(elapsedMs(step))), running ? ' so far' : ''),
    step.attempt > 1 ? h('div', {}, `Attempt ${step.attempt}`) : null,
  );
}

function tokens(step) {
  const none = step.input_tokens === null && step.output_tokens === null;
  return fact(
    'step-tokens',
    'Tokens',
    none ? h('span', { class: 'muted' }, step.kind === 'act' || step.kind === 'observe' ? 'none (no model call)' : '—') : formatTokens(step.input_tokens, step.output_tokens),
  );
}

function server(step, { servers, tools }) {
  const tool = tools.get(step.name);
  const serverName = step.server || tool?.server || null;
  const status = serverName ? servers.get(serverName) : undefined;
  const toolLine = h(
    'div',
    {},
    'Tool ',
    h('code', {}, tool?.tool ?? step.name),
    tool && tool.tool !== step.name ? h('span', { class: 'muted' }, ' exposed as ', h('code', {}, step.name)) : null,
  );
  if (!serverName) {
    return fact('step-server', 'MCP server', h('div', { class: 'muted' }, 'unknown (the tool was not found)'), toolLine);
  }
  if (!status) {
    return fact(
      'step-server',
      'MCP server',
      h('div', {}, h('strong', {}, serverName), h('span', { class: 'muted' }, ' (not configured any more)')),
      toolLine,
    );
  }
  return fact(
    'step-server',
    'MCP server',
    h('div', {}, h('a', { href: '/servers', class: 'server-name' }, serverName), ' ', statusBadge(status.status)),
    h(
      'div',
      { class: 'server-protocol' },
      'Transport ',
      h('code', {}, status.transport),
      ', protocol ',
      h('code', {}, status.protocol_version || 'not negotiated'),
    ),
    toolLine,
  );
}

function neighbours(step, run, onSelect) {
  const edges = run.edges || [];
  const parents = edges.filter((e) => e.to === step.index).map((e) => e.from);
  const children = edges.filter((e) => e.from === step.index).map((e) => e.to);
  if (parents.length === 0 && children.length === 0) return null;
  const link = (index) =>
    h('button', { type: 'button', class: 'link-button step-link', 'data-step': index, on: { click: () => onSelect(index) } }, `#${index}`);
  const list = (indices) => indices.flatMap((index, i) => (i === 0 ? [link(index)] : [', ', link(index)]));
  return fact(
    'step-deps',
    'Graph',
    parents.length ? h('div', {}, 'After ', list(parents)) : h('div', { class: 'muted' }, 'A root of the graph'),
    children.length ? h('div', {}, 'Before ', list(children)) : null,
  );
}

function errorSection(step) {
  if (!step.error) return null;
  return h(
    'div',
    { class: 'step-error notice error', role: 'alert' },
    h('strong', {}, `This step ${statusLabel(step.status)}: `),
    h('pre', { class: 'step-error-text' }, step.error),
  );
}

function outputSection(step) {
  if (step.output === null || step.output === undefined) {
    const why = step.status === 'running' ? 'No output yet: the step is still running.' : 'This step recorded no output.';
    return h('section', { class: 'step-section step-output' }, h('h3', {}, 'Output'), h('p', { class: 'muted' }, why));
  }
  return section('step-output', 'Output', step.output, outputNote(step));
}

function section(cls, title, value, note) {
  return h(
    'section',
    { class: `step-section ${cls}` },
    h('h3', {}, title),
    note,
    truncatedNote(value),
    readableText(value),
    jsonView(value, { openDepth: 2 }),
  );
}

function inputNote(step) {
  if (step.kind === 'act') return h('p', { class: 'muted step-note' }, 'The arguments sent to the tool.');
  if (step.kind === 'plan' || step.kind === 'answer') {
    return h('p', { class: 'muted step-note' }, 'The request sent to the model: messages and the tools offered.');
  }
  if (step.kind === 'sample') {
    return h('p', { class: 'muted step-note' }, 'A completion the MCP server asked for during the tool call it depends on (sampling), served by the server\'s configured model.');
  }
  return null;
}

function outputNote(step) {
  const out = step.output;
  if (step.kind === 'act' && out && typeof out === 'object' && out.isError === true) {
    return h('div', { class: 'notice warn' }, 'The tool reported an error (isError); the model saw it as an observation.');
  }
  if (step.kind === 'act' && out && typeof out === 'object' && Array.isArray(out.serverRequests)) {
    return h('div', { class: 'notice info' }, 'During this call the server asked for input or a model completion: see serverRequests (how each was answered).');
  }
  return null;
}

function truncatedNote(value) {
  if (!value || typeof value !== 'object' || value.truncated !== true) return null;
  const size = Number(value.original_bytes);
  return h('div', { class: 'notice info' }, `Too large to store in full${Number.isFinite(size) ? ` (${size.toLocaleString()} bytes)` : ''}; a preview was kept.`);
}

/**
 * The text a person wants to read first, when the JSON has it: a tool result's text content
 * or a model's reply. Shown as plain text above the tree (never interpreted as markup).
 */
function readableText(value) {
  if (!value || typeof value !== 'object') return null;
  let text = null;
  if (Array.isArray(value.content)) {
    const parts = value.content.filter((c) => c && c.type === 'text' && typeof c.text === 'string').map((c) => c.text);
    if (parts.length) text = parts.join('\n\n');
  } else if (typeof value.content === 'string' && value.content !== '') {
    text = value.content;
  }
  if (text === null) return null;
  return h('pre', { class: 'step-text' }, text);
}

function iso(ms) {
  return new Date(ms).toISOString();
}
