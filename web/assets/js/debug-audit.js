// The audit log of /debug/audit (administrators only): `GET /api/audit`, newest first, as a
// table (time, user, key id, action, target, outcome, client, trace id), filtered by user,
// action and outcome, with "Older entries" following `next_cursor`. The filters (and `limit`)
// are mirrored in the page's query, so a filtered view can be shared.
//
// A run's entries (`run_start`, `run_cancel`) name the run as their target, so their trace id
// links to that run's trace; other trace ids (a tool invoke's `traceparent`) stay plain text.
// Anyone else gets 403 from the API, shown as a plain message.

import { h, mount, formatTime } from './dom.js';
import { getJSON } from './api.js';
import { statusBadge, errorNotice, isAbort } from './debug-common.js';

/** What the server records (src: AuditEvent actions), in the order the filter offers them. */
const ACTIONS = [
  'sign_in',
  'sign_out',
  'auth_failure',
  'key_create',
  'key_revoke',
  'config_reload',
  'tool_invoke',
  'run_start',
  'run_cancel',
  'conversation_delete',
];
const OUTCOMES = ['ok', 'denied', 'failed', 'limited'];
/** Query parameters of the page, the names `GET /api/audit` takes. */
const FILTER_KEYS = ['user', 'action', 'outcome', 'limit'];
const PAGE_SIZE = 50;
/** A run id as the server writes it (a UUID), the only target a trace link is made for. */
const RUN_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Render the audit log into `root`. */
export function showAudit(root) {
  const view = new AuditView(root);
  view.start();
  return view;
}

class AuditView {
  constructor(root) {
    this.root = root;
    this.filters = readFilters(window.location.search);
    this.nextCursor = null;
    /** Bumped on every reload, so an answer to an older request is dropped. */
    this.generation = 0;
    this.loading = null;
  }

  start() {
    this.build();
    this.reload();
  }

  build() {
    this.userInput = h('input', {
      id: 'audit-user',
      name: 'user',
      type: 'search',
      placeholder: 'Any user',
      autocomplete: 'off',
      value: this.filters.user || '',
      on: { change: () => this.apply() },
    });
    this.actionSelect = choice('audit-action', 'action', 'Any action', ACTIONS, this.filters.action);
    this.outcomeSelect = choice('audit-outcome', 'outcome', 'Any outcome', OUTCOMES, this.filters.outcome);
    this.actionSelect.addEventListener('change', () => this.apply());
    this.outcomeSelect.addEventListener('change', () => this.apply());
    const form = h(
      'form',
      {
        id: 'audit-filters',
        class: 'run-filters',
        role: 'search',
        on: {
          submit: (event) => {
            event.preventDefault();
            this.apply();
          },
        },
      },
      field('User', this.userInput),
      field('Action', this.actionSelect),
      field('Outcome', this.outcomeSelect),
      h('div', { class: 'filter-actions' }, h('button', { type: 'submit', id: 'audit-refresh' }, 'Show')),
    );
    this.notices = h('div', { class: 'audit-notices', 'aria-live': 'polite' });
    this.tbody = h('tbody');
    this.table = h(
      'table',
      { id: 'audit-table', class: 'runs-table audit-table' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          ['Time', 'User', 'Key id', 'Action', 'Target', 'Outcome', 'Client', 'Trace id'].map((label) =>
            h('th', {}, label),
          ),
        ),
      ),
      this.tbody,
    );
    this.footer = h('div', { class: 'runs-footer' });
    mount(
      this.root,
      h(
        'section',
        { class: 'audit-view' },
        h('div', { class: 'view-title' }, h('h1', {}, 'Audit log')),
        form,
        this.notices,
        h('div', { class: 'table-wrap' }, this.table),
        this.footer,
      ),
    );
  }

  /** Take the form's filters, put them in the URL and load the newest page. */
  apply() {
    this.filters = normalize({
      ...this.filters,
      user: this.userInput.value,
      action: this.actionSelect.value,
      outcome: this.outcomeSelect.value,
    });
    const url = `${window.location.pathname}${queryString(this.filters)}`;
    if (`${window.location.pathname}${window.location.search}` !== url) {
      window.history.replaceState(null, '', url);
    }
    this.reload();
  }

  async reload() {
    this.generation += 1;
    const generation = this.generation;
    if (this.loading) this.loading.abort();
    const controller = new AbortController();
    this.loading = controller;
    mount(this.notices);
    this.table.setAttribute('aria-busy', 'true');
    try {
      const page = await getJSON(`/api/audit${queryString(this.query())}`, { signal: controller.signal });
      if (generation !== this.generation) return;
      this.tbody.replaceChildren();
      this.add(page);
    } catch (err) {
      if (isAbort(err) || generation !== this.generation) return;
      this.tbody.replaceChildren();
      this.nextCursor = null;
      this.renderFooter();
      if (err.status === 403) {
        mount(
          this.root,
          h('p', { class: 'notice info audit-admin-only', role: 'status' }, 'The audit log is for administrators only.'),
        );
        return;
      }
      mount(this.notices, errorNotice('Could not load the audit log:', err));
    } finally {
      if (generation === this.generation) {
        this.loading = null;
        this.table.removeAttribute('aria-busy');
      }
    }
  }

  /** The next page (older entries), appended below. */
  async older(button) {
    if (!this.nextCursor) return;
    const generation = this.generation;
    button.disabled = true;
    try {
      const page = await getJSON(`/api/audit${queryString({ ...this.query(), cursor: this.nextCursor })}`);
      if (generation !== this.generation) return;
      this.add(page);
    } catch (err) {
      if (generation !== this.generation) return;
      button.disabled = false;
      mount(this.notices, errorNotice('Could not load older entries:', err));
    }
  }

  query() {
    return { limit: PAGE_SIZE, ...this.filters };
  }

  add(page) {
    for (const entry of page.entries || []) this.tbody.append(entryRow(entry));
    this.nextCursor = page.next_cursor || null;
    if (this.tbody.children.length === 0) {
      const filtered = ['user', 'action', 'outcome'].some((k) => this.filters[k]);
      this.tbody.append(
        h('tr', { class: 'runs-empty' }, h('td', { colspan: 8 }, filtered ? 'No entries match these filters.' : 'No entries yet.')),
      );
    }
    this.renderFooter();
  }

  renderFooter() {
    if (!this.nextCursor) {
      mount(this.footer);
      return;
    }
    const button = h('button', { id: 'audit-older', type: 'button', on: { click: () => this.older(button) } }, 'Older entries');
    mount(this.footer, button);
  }
}

/** One `tr.audit-row`; absent values show as `—`. */
function entryRow(entry) {
  const cell = (cls, value) => h('td', { class: cls }, value === null || value === undefined || value === '' ? '—' : value);
  return h(
    'tr',
    {
      class: 'audit-row',
      'data-id': entry.id,
      'data-action': entry.action,
      'data-outcome': entry.outcome,
      'data-user': entry.user ?? '',
    },
    h('td', { class: 'audit-time' }, h('time', { datetime: new Date(entry.at).toISOString() }, formatTime(entry.at))),
    cell('audit-user', entry.user),
    cell('audit-key mono', entry.key_id),
    cell('audit-action', entry.action),
    cell('audit-target mono', entry.target),
    h('td', { class: 'audit-outcome' }, statusBadge(entry.outcome)),
    cell('audit-client mono', entry.client),
    h('td', { class: 'audit-trace mono' }, traceCell(entry)),
  );
}

/** The trace id, linked to its run when the entry names one; else plain text. */
function traceCell(entry) {
  if (!entry.trace_id) return '—';
  const run = entry.action.startsWith('run_') && RUN_ID.test(entry.target || '');
  if (!run) return entry.trace_id;
  return h(
    'a',
    { class: 'audit-trace-link', href: `/debug/runs/${encodeURIComponent(entry.target)}`, title: 'Open the run’s trace' },
    entry.trace_id,
  );
}

function field(label, control) {
  return h('label', { class: 'filter-field' }, h('span', { class: 'filter-label' }, label), control);
}

/** A select of "any" + `names`, keeping a `current` from the URL even when it is not listed. */
function choice(id, name, anyLabel, names, current) {
  const all = current && !names.includes(current) ? [...names, current] : names;
  const select = h(
    'select',
    { id, name },
    h('option', { value: '' }, anyLabel),
    all.map((value) => h('option', { value }, value)),
  );
  select.value = current || '';
  return select;
}

function readFilters(search) {
  const params = new URLSearchParams(search);
  const filters = {};
  for (const key of FILTER_KEYS) filters[key] = params.get(key);
  return normalize(filters);
}

function normalize(filters) {
  const out = {};
  for (const key of FILTER_KEYS) {
    const value = filters[key];
    if (value !== undefined && value !== null && String(value).trim() !== '') out[key] = String(value).trim();
  }
  return out;
}

/** `?a=1&b=2` of the non-empty entries, or '' when there are none. */
function queryString(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}
