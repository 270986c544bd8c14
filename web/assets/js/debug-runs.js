// The runs list of /debug: filters and search mirrored in the URL query (so a filtered view can
// be shared and survives a reload), pages through `next_cursor`, and a poll that adds new runs
// at the top and keeps running ones up to date without reloading the page.
//
// The poll asks `GET /api/runs` for runs started at or after the oldest run still shown as
// running (or the newest run shown, when none is running), with the same filters. That one
// request brings both the new runs and the current state of the running ones; finished runs
// never change, so older rows are left alone.

import { h, mount, formatDuration, formatTime, excerpt } from './dom.js';
import { getJSON } from './api.js';
import {
  RUN_STATUSES,
  statusBadge,
  runKind,
  statusLabel,
  formatCount,
  formatTokens,
  elapsedMs,
  errorNotice,
  describeError,
  isAbort,
  isLive,
} from './debug-common.js';

/** How often the list asks for new runs, in milliseconds. */
const POLL_MS = 2000;
/** How long the search box waits for typing to pause before searching. */
const SEARCH_DEBOUNCE_MS = 300;
/** Page size of "load more". */
const PAGE_SIZE = 50;
/** Largest page the API serves; a poll that needs more starts the list over. */
const POLL_LIMIT = 200;
/** Query parameters of the page, the same names `GET /api/runs` takes. */
const FILTER_KEYS = ['status', 'agent', 'model', 'since', 'until', 'q'];

/**
 * Render the runs list into `root` and keep it live. Filters are read from and written to
 * `location.search`; back/forward between filtered views works through `popstate`.
 */
export function showRunList(root) {
  const view = new RunList(root);
  view.start();
  return view;
}

class RunList {
  constructor(root) {
    this.root = root;
    this.filters = readFilters(location.search);
    /** id → run summary, for every row shown. */
    this.runs = new Map();
    /** id → its <tr>. */
    this.rows = new Map();
    this.nextCursor = null;
    /** Bumped whenever the filters change, so answers to older requests are dropped. */
    this.generation = 0;
    this.pollTimer = null;
    this.searchTimer = null;
    this.loading = null;
    this.knownAgents = new Set();
    this.knownModels = new Set();
  }

  start() {
    this.build();
    this.loadModels();
    this.reload();
    window.addEventListener('popstate', () => {
      this.filters = readFilters(location.search);
      this.syncControls();
      this.reload();
    });
    document.addEventListener('visibilitychange', () => {
      if (!document.hidden) this.schedulePoll(0);
    });
  }

  // ---- building the page ------------------------------------------------------------------

  build() {
    this.statusSelect = h(
      'select',
      { id: 'filter-status', name: 'status', on: { change: () => this.onFilterChange() } },
      h('option', { value: '' }, 'Any status'),
      RUN_STATUSES.map((status) => h('option', { value: status }, statusLabel(status))),
    );
    this.agentSelect = h('select', {
      id: 'filter-agent',
      name: 'agent',
      on: { change: () => this.onFilterChange() },
    });
    this.modelSelect = h('select', {
      id: 'filter-model',
      name: 'model',
      on: { change: () => this.onFilterChange() },
    });
    this.sinceInput = h('input', {
      id: 'filter-since',
      name: 'since',
      type: 'datetime-local',
      on: { change: () => this.onFilterChange() },
    });
    this.untilInput = h('input', {
      id: 'filter-until',
      name: 'until',
      type: 'datetime-local',
      on: { change: () => this.onFilterChange() },
    });
    this.searchInput = h('input', {
      id: 'filter-search',
      name: 'q',
      type: 'search',
      placeholder: 'Search user messages',
      autocomplete: 'off',
      on: { input: () => this.onSearchInput() },
    });
    const clear = h(
      'button',
      { type: 'button', class: 'link-button', on: { click: () => this.clearFilters() } },
      'Clear filters',
    );
    const form = h(
      'form',
      {
        id: 'run-filters',
        class: 'run-filters',
        role: 'search',
        on: {
          submit: (event) => {
            event.preventDefault();
            this.onFilterChange();
          },
        },
      },
      field('Status', this.statusSelect),
      field('Agent', this.agentSelect),
      field('Model', this.modelSelect),
      field('Started after', this.sinceInput),
      field('Started before', this.untilInput),
      field('Search', this.searchInput, 'grow'),
      h('div', { class: 'filter-actions' }, clear),
    );

    this.notices = h('div', { class: 'run-notices', 'aria-live': 'polite' });
    this.liveNotice = h('div', { class: 'run-live-notice', 'aria-live': 'polite' });
    this.summary = h('span', { class: 'runs-count' });
    this.liveBadge = h('span', { class: 'live-indicator', title: 'New runs appear here as they start' }, 'live');
    this.tbody = h('tbody');
    this.table = h(
      'table',
      { id: 'runs-table', class: 'runs-table' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          h('th', { class: 'col-status' }, 'Status'),
          h('th', { class: 'col-message' }, 'User message'),
          h('th', { class: 'col-agent' }, 'Agent · model'),
          h('th', { class: 'col-started' }, 'Started'),
          h('th', { class: 'col-num' }, 'Duration'),
          h('th', { class: 'col-num' }, 'Steps'),
          h('th', { class: 'col-num' }, 'Tokens'),
          h('th', { class: 'col-error' }, 'Error'),
        ),
      ),
      this.tbody,
    );
    this.footer = h('div', { class: 'runs-footer' });

    mount(
      this.root,
      h(
        'section',
        { class: 'runs-view' },
        h('div', { class: 'view-title' }, h('h1', {}, 'Runs'), this.summary, this.liveBadge),
        form,
        this.notices,
        this.liveNotice,
        h('div', { class: 'table-wrap' }, this.table),
        this.footer,
      ),
    );
    this.syncControls();
  }

  /** Put the current filters into the form controls. */
  syncControls() {
    const f = this.filters;
    ensureOption(this.agentSelect, f.agent, 'Any agent', this.knownAgents);
    ensureOption(this.modelSelect, f.model, 'Any model', this.knownModels);
    this.statusSelect.value = RUN_STATUSES.includes(f.status) ? f.status : '';
    if (f.status && !RUN_STATUSES.includes(f.status)) {
      // Keep an unknown status from the URL visible, so the API's refusal makes sense.
      this.statusSelect.append(h('option', { value: f.status }, f.status));
      this.statusSelect.value = f.status;
    }
    this.agentSelect.value = f.agent || '';
    this.modelSelect.value = f.model || '';
    this.sinceInput.value = toLocalInput(f.since);
    this.untilInput.value = toLocalInput(f.until);
    if (document.activeElement !== this.searchInput) this.searchInput.value = f.q || '';
  }

  /** Fill the model and agent filters from the configuration (runs add the names they used). */
  async loadModels() {
    const [models, agents] = await Promise.allSettled([getJSON('/api/models'), getJSON('/api/agents')]);
    // On failure the filters still offer what the loaded runs used; nothing to tell the user.
    if (models.status === 'fulfilled') {
      for (const model of models.value.models || []) this.knownModels.add(model.name);
      ensureOption(this.modelSelect, this.filters.model, 'Any model', this.knownModels);
    }
    if (agents.status === 'fulfilled') {
      for (const agent of agents.value.agents || []) this.knownAgents.add(agent.name);
      ensureOption(this.agentSelect, this.filters.agent, 'Any agent', this.knownAgents);
    }
  }

  // ---- filters ----------------------------------------------------------------------------

  readControls() {
    return {
      status: this.statusSelect.value,
      agent: this.agentSelect.value,
      model: this.modelSelect.value,
      since: fromLocalInput(this.sinceInput.value),
      until: fromLocalInput(this.untilInput.value),
      q: this.searchInput.value.trim(),
    };
  }

  onFilterChange() {
    clearTimeout(this.searchTimer);
    this.applyFilters(this.readControls(), 'push');
  }

  onSearchInput() {
    clearTimeout(this.searchTimer);
    this.searchTimer = setTimeout(() => this.applyFilters(this.readControls(), 'replace'), SEARCH_DEBOUNCE_MS);
  }

  clearFilters() {
    this.filters = {};
    this.searchInput.value = '';
    this.syncControls();
    this.applyFilters({}, 'push');
  }

  applyFilters(filters, mode) {
    const next = normalize(filters);
    if (sameFilters(next, this.filters) && this.loading === null && this.runs.size > 0) return;
    this.filters = next;
    const url = `${location.pathname}${queryString(next)}`;
    if (`${location.pathname}${location.search}` !== url) {
      if (mode === 'push') history.pushState(null, '', url);
      else history.replaceState(null, '', url);
    }
    this.reload();
  }

  // ---- loading ----------------------------------------------------------------------------

  /** Start the list over with the current filters. */
  async reload() {
    this.generation += 1;
    const generation = this.generation;
    this.stopPolling();
    if (this.loading) this.loading.abort();
    const controller = new AbortController();
    this.loading = controller;
    mount(this.notices);
    mount(this.liveNotice);
    this.table.setAttribute('aria-busy', 'true');
    try {
      const page = await getJSON(`/api/runs${queryString({ ...this.filters, limit: PAGE_SIZE })}`, {
        signal: controller.signal,
      });
      if (generation !== this.generation) return;
      this.runs.clear();
      this.rows.clear();
      this.tbody.replaceChildren();
      this.addRuns(page.runs || [], { fresh: false });
      this.nextCursor = page.next_cursor || null;
      this.renderFooter();
      this.schedulePoll(POLL_MS);
    } catch (err) {
      if (isAbort(err) || generation !== this.generation) return;
      this.runs.clear();
      this.rows.clear();
      this.tbody.replaceChildren();
      this.nextCursor = null;
      this.renderFooter();
      mount(this.notices, errorNotice('Could not load runs:', err));
      // A refused filter will be refused again; only retry failures that may pass.
      if (!(err.status >= 400 && err.status < 500)) this.schedulePoll(POLL_MS * 2);
    } finally {
      if (generation === this.generation) {
        this.loading = null;
        this.table.removeAttribute('aria-busy');
      }
    }
  }

  /** The next page, appended below the rows shown. */
  async loadMore(button) {
    if (!this.nextCursor) return;
    const generation = this.generation;
    button.disabled = true;
    button.textContent = 'Loading…';
    try {
      const page = await getJSON(
        `/api/runs${queryString({ ...this.filters, limit: PAGE_SIZE, cursor: this.nextCursor })}`,
      );
      if (generation !== this.generation) return;
      this.addRuns(page.runs || [], { fresh: false });
      this.nextCursor = page.next_cursor || null;
      this.renderFooter();
    } catch (err) {
      if (generation !== this.generation) return;
      button.disabled = false;
      button.textContent = 'Load more';
      mount(this.notices, errorNotice('Could not load more runs:', err));
    }
  }

  stopPolling() {
    clearTimeout(this.pollTimer);
    this.pollTimer = null;
  }

  schedulePoll(delay) {
    this.stopPolling();
    this.pollTimer = setTimeout(() => this.poll(), delay);
  }

  /** Ask for runs newer than the newest shown, and for the state of running ones. */
  async poll() {
    this.pollTimer = null;
    if (document.hidden) return; // visibilitychange polls again when the tab is shown
    if (this.loading) return;
    const generation = this.generation;
    if (this.runs.size === 0) {
      // Nothing shown yet (empty list, or the first load failed): just start over quietly.
      try {
        const page = await getJSON(`/api/runs${queryString({ ...this.filters, limit: PAGE_SIZE })}`);
        if (generation !== this.generation) return;
        mount(this.notices);
        mount(this.liveNotice);
        if ((page.runs || []).length > 0) {
          this.addRuns(page.runs, { fresh: true });
          this.nextCursor = page.next_cursor || null;
          this.renderFooter();
        }
      } catch (err) {
        if (generation !== this.generation) return;
        if (err.status >= 400 && err.status < 500) return; // the filters are refused; stop
        this.showLiveProblem(err);
      }
      this.schedulePoll(POLL_MS);
      return;
    }
    let since = Infinity;
    let newest = -Infinity;
    for (const run of this.runs.values()) {
      newest = Math.max(newest, run.started_at);
      if (isLive(run.status)) since = Math.min(since, run.started_at);
    }
    since = Math.min(since, newest);
    if (this.filters.since) since = Math.max(since, Number(this.filters.since));
    try {
      const page = await getJSON(`/api/runs${queryString({ ...this.filters, since, limit: POLL_LIMIT })}`);
      if (generation !== this.generation) return;
      mount(this.liveNotice);
      if (page.next_cursor) {
        // More new runs than one poll can carry: the list would have a hole, so start over.
        this.reload();
        return;
      }
      this.addRuns(page.runs || [], { fresh: true });
      this.renderCount();
    } catch (err) {
      if (generation !== this.generation) return;
      this.showLiveProblem(err);
    }
    this.refreshRunningDurations();
    this.schedulePoll(POLL_MS);
  }

  showLiveProblem(err) {
    mount(
      this.liveNotice,
      h('div', { class: 'notice warn' }, `Live updates paused: ${describeError(err)} Retrying…`),
    );
  }

  // ---- rows -------------------------------------------------------------------------------

  /** Insert new runs in order and replace rows whose run changed. */
  addRuns(runs, { fresh }) {
    for (const run of runs) {
      this.rememberFacets(run);
      const known = this.runs.get(run.id);
      if (known && sameRun(known, run)) continue;
      const row = runRow(run);
      if (known) {
        this.rows.get(run.id).replaceWith(row);
      } else {
        if (fresh) row.classList.add('run-new');
        this.insertRow(run, row);
      }
      this.runs.set(run.id, run);
      this.rows.set(run.id, row);
    }
    this.renderEmpty();
    this.renderCount();
  }

  /** Rows stay ordered newest first (started_at, then id, both descending, like the API). */
  insertRow(run, row) {
    for (let el = this.tbody.firstElementChild; el; el = el.nextElementSibling) {
      const other = this.runs.get(el.dataset.runId);
      if (other && compareRuns(run, other) < 0) {
        this.tbody.insertBefore(row, el);
        return;
      }
    }
    this.tbody.append(row);
  }

  rememberFacets(run) {
    let changed = false;
    if (run.agent && !this.knownAgents.has(run.agent)) {
      this.knownAgents.add(run.agent);
      changed = true;
    }
    if (run.model && !this.knownModels.has(run.model)) {
      this.knownModels.add(run.model);
      changed = true;
    }
    if (changed) {
      ensureOption(this.agentSelect, this.filters.agent, 'Any agent', this.knownAgents);
      ensureOption(this.modelSelect, this.filters.model, 'Any model', this.knownModels);
    }
  }

  /** Running rows show their time so far; refresh that figure at each poll. */
  refreshRunningDurations() {
    const now = Date.now();
    for (const [id, run] of this.runs) {
      if (!isLive(run.status)) continue;
      const cell = this.rows.get(id)?.querySelector('.run-duration');
      if (cell) cell.textContent = formatDuration(elapsedMs(run, now));
    }
  }

  renderEmpty() {
    const empty = this.tbody.querySelector('.runs-empty');
    if (this.runs.size > 0) {
      if (empty) empty.remove();
      return;
    }
    if (empty) return;
    const filtered = FILTER_KEYS.some((k) => this.filters[k]);
    const message = filtered
      ? 'No runs match these filters.'
      : h('span', {}, 'No runs yet. Start one from ', h('a', { href: '/' }, 'the chat'), '; it will appear here.');
    this.tbody.append(h('tr', { class: 'runs-empty' }, h('td', { colspan: 8 }, message)));
  }

  renderCount() {
    const n = this.runs.size;
    this.summary.textContent = n === 0 ? '' : `${formatCount(n)} shown${this.nextCursor ? ', more below' : ''}`;
  }

  renderFooter() {
    this.renderEmpty();
    this.renderCount();
    if (!this.nextCursor) {
      mount(this.footer);
      return;
    }
    const button = h(
      'button',
      { id: 'load-more', type: 'button', on: { click: () => this.loadMore(button) } },
      'Load more',
    );
    mount(this.footer, button);
  }
}

// ---- helpers ----------------------------------------------------------------------------------

/** One `tr.run-row`; the message links to the run, and a click anywhere on the row opens it. */
function runRow(run) {
  const href = `/debug/runs/${encodeURIComponent(run.id)}`;
  const message = run.user_message || '(empty message)';
  const tokens = formatTokens(run.input_tokens, run.output_tokens);
  const row = h(
    'tr',
    {
      class: `run-row status-row-${run.status}`,
      'data-run-id': run.id,
      'data-status': run.status,
      on: {
        click: (event) => {
          if (event.target.closest('a')) return; // the link navigates by itself
          if (String(window.getSelection?.() ?? '') !== '') return; // selecting text, not opening
          if (event.ctrlKey || event.metaKey) window.open(href, '_blank', 'noopener');
          else location.assign(href);
        },
      },
    },
    h('td', { class: 'col-status' }, statusBadge(run.status, 'run-status')),
    h(
      'td',
      { class: 'col-message' },
      h('a', { class: 'run-link', href, title: message }, excerpt(message, 140)),
      run.answer ? h('div', { class: 'run-answer muted', title: run.answer }, excerpt(run.answer, 140)) : null,
    ),
    h(
      'td',
      { class: 'col-agent' },
      h('div', { class: 'run-agent' }, run.agent || runKind(run)),
      h('div', { class: 'run-model muted' }, run.model),
    ),
    h(
      'td',
      { class: 'col-started' },
      h('time', { datetime: new Date(run.started_at).toISOString() }, formatTime(run.started_at)),
    ),
    h('td', { class: 'col-num run-duration' }, formatDuration(elapsedMs(run))),
    h(
      'td',
      { class: 'col-num run-steps', title: `${run.tool_call_count} tool calls` },
      formatCount(run.step_count),
      run.tool_call_count ? h('span', { class: 'muted' }, ` (${run.tool_call_count} tool${run.tool_call_count === 1 ? '' : 's'})`) : null,
    ),
    h('td', { class: 'col-num run-tokens' }, tokens),
    h(
      'td',
      { class: 'col-error' },
      run.error ? h('span', { class: 'run-error', title: run.error }, excerpt(run.error, 100)) : null,
    ),
  );
  return row;
}

function field(label, control, extra = '') {
  return h('label', { class: `filter-field ${extra}`.trim() }, h('span', { class: 'filter-label' }, label), control);
}

/** Give `select` the options "any" + `names` (sorted), keeping `current` even if unknown. */
function ensureOption(select, current, anyLabel, names) {
  const all = new Set(names);
  if (current) all.add(current);
  const wanted = ['', ...[...all].sort((a, b) => a.localeCompare(b))];
  const have = [...select.options].map((o) => o.value);
  if (have.length === wanted.length && have.every((v, i) => v === wanted[i])) return;
  const value = select.value || current || '';
  mount(
    select,
    h('option', { value: '' }, anyLabel),
    wanted.slice(1).map((name) => h('option', { value: name }, name)),
  );
  select.value = value;
}

function readFilters(search) {
  const params = new URLSearchParams(search);
  const filters = {};
  for (const key of FILTER_KEYS) {
    const value = params.get(key);
    if (value !== null && value.trim() !== '') filters[key] = value.trim();
  }
  // Times may be shared as dates (`2026-05-01T10:00`) as well as Unix milliseconds.
  for (const key of ['since', 'until']) {
    if (filters[key] && !/^\d+$/.test(filters[key])) {
      const parsed = Date.parse(filters[key]);
      if (!Number.isNaN(parsed)) filters[key] = String(parsed);
    }
  }
  return filters;
}

function normalize(filters) {
  const out = {};
  for (const key of FILTER_KEYS) {
    const value = filters[key];
    if (value !== undefined && value !== null && String(value).trim() !== '') out[key] = String(value).trim();
  }
  return out;
}

function sameFilters(a, b) {
  return FILTER_KEYS.every((k) => (a[k] || '') === (b[k] || ''));
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

/** Unix milliseconds (as a string) → the `YYYY-MM-DDTHH:MM` a datetime-local input shows. */
function toLocalInput(ms) {
  if (!ms || !/^\d+$/.test(String(ms))) return '';
  const d = new Date(Number(ms));
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** A datetime-local value (local time) → Unix milliseconds as a string, or ''. */
function fromLocalInput(value) {
  if (!value) return '';
  const ms = new Date(value).getTime();
  return Number.isNaN(ms) ? '' : String(ms);
}

/** Negative when `a` is listed before `b` (newer first). */
function compareRuns(a, b) {
  if (a.started_at !== b.started_at) return b.started_at - a.started_at;
  return a.id < b.id ? 1 : a.id > b.id ? -1 : 0;
}

function sameRun(a, b) {
  return (
    a.status === b.status &&
    a.step_count === b.step_count &&
    a.input_tokens === b.input_tokens &&
    a.output_tokens === b.output_tokens &&
    a.finished_at === b.finished_at &&
    a.error === b.error &&
    a.answer === b.answer
  );
}
