// The "Resources and prompts" section of /servers: what the connected servers offer besides
// tools (`GET /api/context`), one row each, with the server it is from. The servers' names,
// URIs and descriptions are untrusted and reach the DOM only as text (`h`).

import { byId, h, mount } from './dom.js';
import { getJSON } from './api.js';

/** Load the servers' resources, templates and prompts and draw them; hidden when there are none. */
export async function showContext() {
  const section = byId('context-list');
  let context;
  try {
    context = await getJSON('/api/context');
  } catch (err) {
    section.hidden = false;
    mount(byId('context-body'), h('p', { class: 'notice error' }, `Could not load resources and prompts: ${err.message}`));
    return;
  }
  const row = (kind, item, where, about) => h('tr', { class: 'context-row', 'data-kind': kind, 'data-server': item.server },
    h('td', {}, kind),
    h('td', {}, item.server),
    h('td', { class: 'context-name' }, item.title || item.name),
    h('td', { class: 'context-where' }, h('code', {}, where)),
    h('td', { class: 'muted' }, about || ''));
  const rows = [
    ...(context.resources || []).map((r) => row('resource', r, r.uri, [r.mime_type, r.description].filter(Boolean).join(' · '))),
    ...(context.templates || []).map((t) => row('template', t, t.uri_template, t.description)),
    ...(context.prompts || []).map((p) => row('prompt', p, p.name,
      [p.description, p.arguments.length ? `arguments: ${p.arguments.map((a) => a.name + (a.required ? '*' : '')).join(', ')}` : ''].filter(Boolean).join(' · '))),
  ];
  section.hidden = rows.length === 0;
  mount(byId('context-body'), h('table', { class: 'context-table' },
    h('thead', {}, h('tr', {}, ['Kind', 'Server', 'Name', 'URI or name', 'About'].map((t) => h('th', {}, t)))),
    h('tbody', {}, rows)));
}
