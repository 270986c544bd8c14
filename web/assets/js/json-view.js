// JSON shown as a collapsible tree of escaped text (<details> per object/array). Used for tool
// arguments and results, step inputs and outputs, and schemas.

import { h } from './dom.js';

/**
 * A tree for `value`. Containers deeper than `openDepth` start collapsed; strings longer than
 * `maxString` are cut with a "show all" toggle so a huge result does not freeze the page.
 */
export function jsonView(value, { openDepth = 1, maxString = 2000 } = {}) {
  return h('div', { class: 'json' }, node(value, 0, openDepth, maxString));
}

function node(value, depth, openDepth, maxString) {
  if (value === null) return h('span', { class: 'json-null' }, 'null');
  if (Array.isArray(value)) {
    if (value.length === 0) return h('span', { class: 'json-punct' }, '[]');
    return container(
      `[${value.length}]`,
      value.map((item, i) => entry(String(i), item, depth, openDepth, maxString)),
      depth < openDepth,
    );
  }
  switch (typeof value) {
    case 'object': {
      const keys = Object.keys(value);
      if (keys.length === 0) return h('span', { class: 'json-punct' }, '{}');
      return container(
        `{${keys.length}}`,
        keys.map((k) => entry(k, value[k], depth, openDepth, maxString)),
        depth < openDepth,
      );
    }
    case 'string':
      return stringNode(value, maxString);
    case 'number':
      return h('span', { class: 'json-number' }, String(value));
    case 'boolean':
      return h('span', { class: 'json-bool' }, String(value));
    default:
      return h('span', {}, String(value));
  }
}

function container(summary, entries, open) {
  return h('details', { class: 'json-container', open }, h('summary', { class: 'json-punct' }, summary), h('div', { class: 'json-entries' }, entries));
}

function entry(key, value, depth, openDepth, maxString) {
  return h('div', { class: 'json-entry' }, h('span', { class: 'json-key' }, key), h('span', { class: 'json-punct' }, ': '), node(value, depth + 1, openDepth, maxString));
}

function stringNode(text, maxString) {
  if (text.length <= maxString) return h('span', { class: 'json-string' }, JSON.stringify(text));
  const shown = h('span', { class: 'json-string' }, `${JSON.stringify(text.slice(0, maxString))}…`);
  const toggle = h('button', {
    type: 'button',
    class: 'link-button',
    on: {
      click: () => {
        shown.textContent = JSON.stringify(text);
        toggle.remove();
      },
    },
  }, `show all ${text.length} characters`);
  return h('span', {}, shown, ' ', toggle);
}
