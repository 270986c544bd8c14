// The run view of /debug/runs/{id}: the run's header, its DAG, its waterfall and the detail of
// the selected step, kept live while the run is running.
//
// Live updates follow `GET /api/runs/{id}/events` (SSE). Step events only say that something
// changed, so each burst of them triggers one re-fetch of `GET /api/runs/{id}` (throttled), which
// is the single source the page renders from; `run_finished` ends the following. A run that
// another process executes only ever sends `run_finished` on that stream, so a slow safety poll
// runs alongside it while the run is running.

import { h, mount, formatDuration, formatTime } from './dom.js';
import { getJSON, postJSON, streamEvents } from './api.js';
import {
  STEP_KINDS,
  STEP_STATUSES,
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
import { ApprovalCard } from './approval-card.js';
import { renderDag, markDagSelection } from './debug-dag.js';
import { renderWaterfall, markWaterfallSelection } from './debug-waterfall.js';
import { renderStepDetail } from './debug-step.js';

/** Quiet time after a step event before the run is fetched again. */
const REFRESH_DELAY_MS = 250;
/** Safety poll while the run is running, whatever the event stream says. */
const SAFETY_POLL_MS = 5000;
/** How often durations and the waterfall of a running run move on. */
const TICK_MS = 1000;
/** Waits between reconnections of the event stream. */
const RETRY_MS = [1000, 2000, 5000, 10000];
const ZOOM_STEPS = [0.4, 0.55, 0.7, 0.85, 1, 1.25, 1.5];
/** Smallest zoom the first drawing is fitted to; below it labels get hard to read. */
const AUTO_FIT_MIN = 0.75;

/** Render the run `id` into `root` and keep it live until it finishes. */
export function showRun(root, id) {
  const view = new RunView(root, id);
  view.start();
  return view;
}

class RunView {
  constructor(root, id) {
    this.root = root;
    this.id = id;
    this.run = null;
    this.servers = new Map();
    this.tools = new Map();
    this.selected = stepFromHash();
    this.detailKey = null;
    this.zoom = 1;
    this.following = null;
    this.refreshTimer = null;
    this.refreshing = false;
    this.refreshAgain = false;
    this.tickTimer = null;
    this.safetyTimer = null;
    this.approvalCards = new Map(); // approval id → ApprovalCard
  }

  async start() {
    document.title = `Run ${this.id.slice(0, 8)} · Debug · Switchboard`;
    mount(this.root, h('p', { class: 'muted loading' }, 'Loading run…'));
    let run;
    try {
      [run] = await Promise.all([
        getJSON(`/api/runs/${encodeURIComponent(this.id)}`),
        this.loadCatalog(),
      ]);
    } catch (err) {
      this.showMissing(err);
      return;
    }
    try {
      this.build();
      this.update(run);
      if (this.selected === null) {
        const failed = (run.steps || []).find((step) => step.status === 'failed');
        if (failed) this.select(failed.index);
      } else {
        this.select(this.selected, { scroll: true });
      }
    } catch (err) {
      mount(this.root, backLink(), errorNotice('This run could not be shown:', err));
      return;
    }
    window.addEventListener('hashchange', () => {
      const index = stepFromHash();
      if (index !== null && index !== this.selected) this.select(index, { scroll: true });
    });
  }

  /** Server statuses and the tool catalog, for the detail of acts. Failing here is not fatal. */
  async loadCatalog() {
    const [servers, tools] = await Promise.allSettled([getJSON('/api/mcp/servers'), getJSON('/api/tools')]);
    if (servers.status === 'fulfilled') {
      for (const server of servers.value.servers || []) this.servers.set(server.name, server);
    }
    if (tools.status === 'fulfilled') {
      for (const tool of tools.value.tools || []) this.tools.set(tool.name, tool);
    }
  }

  /** The page for a run that cannot be shown: bad id, unknown run, server unreachable. */
  showMissing(err) {
    const title = err && (err.status === 404 || err.status === 400) ? 'Run not found' : 'Could not load this run';
    let message = describeError(err);
    if (err && err.status === 404) message = `There is no run with id ${this.id}. It may have been deleted, or the link is wrong.`;
    if (err && err.status === 400) message = `“${this.id}” is not a run id. ${describeError(err)}`;
    mount(
      this.root,
      h(
        'section',
        { class: 'run-view run-missing' },
        backLink(),
        h('h1', {}, title),
        h('div', { class: 'notice error', role: 'alert' }, message),
        h('p', {}, h('a', { href: '/debug' }, 'See all runs')),
      ),
    );
  }

  // ---- layout -----------------------------------------------------------------------------

  build() {
    this.header = h('header', { id: 'run-header', class: 'run-header panel' });
    this.notices = h('div', { class: 'run-notices', 'aria-live': 'polite' });
    this.approvalsEl = h('section', { class: 'run-approvals', hidden: true, 'aria-label': 'Tool calls waiting for approval' });
    this.dagScroll = h('div', { class: 'dag-scroll', tabindex: 0, 'aria-label': 'Step graph; drag to pan' });
    this.dagInfo = h('span', { class: 'muted dag-info' });
    this.waterfallHolder = h('div', { class: 'wf-holder' });
    this.detail = h('aside', { id: 'step-detail', class: 'step-detail panel', 'aria-live': 'polite' });
    const zoomButton = (label, title, action) =>
      h('button', { type: 'button', class: 'zoom-button', title, 'aria-label': title, on: { click: action } }, label);
    const dagPanel = h(
      'section',
      { class: 'panel dag-panel' },
      h(
        'div',
        { class: 'panel-head' },
        h('h2', {}, 'Graph'),
        this.dagInfo,
        h(
          'div',
          { class: 'zoom-controls' },
          zoomButton('−', 'Zoom out', () => this.setZoom(stepZoom(this.zoom, -1))),
          zoomButton('+', 'Zoom in', () => this.setZoom(stepZoom(this.zoom, 1))),
          zoomButton('Fit', 'Fit the width of the panel', () => this.fit()),
          zoomButton('1:1', 'Actual size', () => this.setZoom(1)),
        ),
      ),
      this.dagScroll,
      legend(),
    );
    const waterfallPanel = h(
      'section',
      { class: 'panel wf-panel' },
      h('div', { class: 'panel-head' }, h('h2', {}, 'Timeline')),
      this.waterfallHolder,
    );
    mount(
      this.root,
      h(
        'section',
        { class: 'run-view' },
        backLink(),
        this.header,
        this.notices,
        this.approvalsEl,
        h('div', { class: 'run-grid' }, h('div', { class: 'run-main' }, dagPanel, waterfallPanel), this.detail),
      ),
    );
    enablePan(this.dagScroll);
  }

  // ---- rendering --------------------------------------------------------------------------

  /** Render `run` (a fresh `GET /api/runs/{id}`) everywhere. */
  update(run) {
    const first = this.run === null;
    this.run = run;
    this.renderHeader();
    const svg = renderDag(run, (index) => this.select(index), this.zoom);
    this.dagScroll.replaceChildren(svg);
    this.dagInfo.textContent = `${run.steps.length} steps · ${run.edges.length} edges`;
    markDagSelection(svg, this.selected);
    this.renderWaterfall();
    this.renderDetail(false);
    this.renderApprovals();
    // A wide graph starts fitted to the panel, but never smaller than still readable.
    if (first) {
      this.fit(AUTO_FIT_MIN);
      // A small graph gets a panel no taller than itself (the user can still resize it).
      const needed = Math.round(Number(svg.dataset.height) * this.zoom) + 24;
      if (needed < this.dagScroll.clientHeight) this.dagScroll.style.height = `${Math.max(160, needed)}px`;
      // The first steps sit in the middle of a wide graph: start there rather than at its left.
      this.dagScroll.scrollLeft = (this.dagScroll.scrollWidth - this.dagScroll.clientWidth) / 2;
    }
    this.updateTicking();
  }

  /** The run's calls waiting for approval, decided from here as in the chat. */
  async renderApprovals() {
    const waiting = this.run.status === 'waiting' || this.approvalCards.size > 0;
    if (!waiting) return;
    let pending = [];
    if (this.run.status === 'waiting') {
      try {
        const list = await getJSON('/api/approvals');
        pending = (list.approvals || []).filter((a) => a.run_id === this.id);
      } catch {
        return; // shown again on the next refresh
      }
    }
    const ids = new Set(pending.map((a) => String(a.id)));
    for (const request of pending) {
      if (this.approvalCards.has(String(request.id))) continue;
      const card = new ApprovalCard(this.id, request);
      this.approvalCards.set(String(request.id), card);
      this.approvalsEl.append(card.el);
    }
    for (const [id, card] of this.approvalCards) {
      if (!ids.has(id) && card.open) card.closed('closed', 'Decided.');
    }
    this.approvalsEl.hidden = this.approvalCards.size === 0;
  }

  renderHeader() {
    const run = this.run;
    const running = isLive(run.status);
    const stop = running
      ? h('button', { type: 'button', class: 'danger run-cancel', on: { click: (event) => this.cancel(event.currentTarget) } }, 'Stop run')
      : null;
    const fact = (label, ...value) => h('div', { class: 'run-fact' }, h('dt', {}, label), h('dd', {}, ...value));
    const wideFact = (label, ...value) => h('div', { class: 'run-fact run-fact-wide' }, h('dt', {}, label), h('dd', {}, ...value));
    const outcome = [];
    if (run.status === 'partial') {
      // It answered: the note says what the answer may lack, as a warning, not as a failure.
      outcome.push(h('div', { class: 'notice warn run-partial', role: 'status' },
        h('strong', {}, 'Answered, but partial: '), run.error || 'some tool calls failed or did not run.'));
    } else if (run.error) {
      outcome.push(h('div', { class: 'notice error run-error', role: 'alert' }, h('strong', {}, `Run ${statusLabel(run.status)}: `), run.error));
    } else if (run.status === 'budget_exhausted' || run.status === 'cancelled' || run.status === 'interrupted') {
      outcome.push(h('div', { class: 'notice warn' }, `Run ${statusLabel(run.status)}.`));
    }
    mount(
      this.header,
      h(
        'div',
        { class: 'run-title' },
        h('h1', {}, 'Run ', h('code', { class: 'run-id', title: run.id }, run.id)),
        statusBadge(run.status, 'run-status'),
        stop,
      ),
      h(
        'dl',
        { class: 'run-facts' },
        fact('Agent', run.agent || h('span', { class: 'muted' }, runKind(run))),
        fact('Model', run.model || h('span', { class: 'muted' }, 'none')),
        fact('Started', h('time', { datetime: new Date(run.started_at).toISOString() }, formatTime(run.started_at))),
        fact('Duration', h('span', { class: 'run-duration' }, formatDuration(elapsedMs(run))), running ? ' so far' : ''),
        fact('Steps', `${formatCount(run.step_count)} (${formatCount(run.tool_call_count)} tool call${run.tool_call_count === 1 ? '' : 's'})`),
        fact('Tokens', h('span', { class: 'run-tokens' }, formatTokens(run.input_tokens, run.output_tokens))),
        wideFact('Trace id', run.trace_id ? h('code', { class: 'run-trace' }, run.trace_id) : h('span', { class: 'muted' }, 'none')),
      ),
      outcome,
      h('div', { class: 'run-message' }, h('h3', {}, 'User message'), h('pre', {}, run.user_message)),
      run.answer
        ? h('details', { class: 'run-answer', open: true }, h('summary', {}, 'Answer'), h('pre', {}, run.answer))
        : running
          ? h('p', { class: 'muted' }, 'No answer yet: the run is still running.')
          : null,
    );
  }

  renderWaterfall() {
    const focused = document.activeElement?.closest?.('.wf-row')?.dataset.step;
    const waterfall = renderWaterfall(this.run, (index) => this.select(index, { scroll: true }));
    this.waterfallHolder.replaceChildren(waterfall);
    markWaterfallSelection(waterfall, this.selected);
    if (focused !== undefined) waterfall.querySelector(`.wf-row[data-step="${Number(focused)}"]`)?.focus();
  }

  /** The detail panel; left alone when the selected step did not change (keeps open trees). */
  renderDetail(force) {
    const step = this.selectedStep();
    const key = step
      ? JSON.stringify([step.index, step.status, step.finished_at, step.error, step.input_tokens, step.output_tokens, step.attempt, step.output === null])
      : 'none';
    if (!force && key === this.detailKey) return;
    this.detailKey = key;
    mount(this.detail, renderStepDetail(step, this.run, {
      servers: this.servers,
      tools: this.tools,
      onSelect: (index) => this.select(index, { scroll: true }),
    }));
  }

  selectedStep() {
    if (this.selected === null || !this.run) return null;
    return this.run.steps.find((step) => step.index === this.selected) || null;
  }

  /** Select step `index` in the graph, the timeline and the detail panel. */
  select(index, { scroll = false } = {}) {
    this.selected = index;
    const svg = this.dagScroll.querySelector('svg');
    const node = svg ? markDagSelection(svg, index) : null;
    markWaterfallSelection(this.waterfallHolder, index);
    this.renderDetail(true);
    const url = `${location.pathname}${location.search}${index === null ? '' : `#step-${index}`}`;
    history.replaceState(null, '', url);
    if (scroll && node) revealInPanel(this.dagScroll, node);
  }

  // ---- zoom -------------------------------------------------------------------------------

  setZoom(zoom) {
    this.zoom = zoom;
    const svg = this.dagScroll.querySelector('svg');
    if (!svg) return;
    svg.setAttribute('width', String(Math.round(Number(svg.dataset.width) * zoom)));
    svg.setAttribute('height', String(Math.round(Number(svg.dataset.height) * zoom)));
  }

  /** Zoom so the graph fits the panel's width, not above actual size nor below `min`. */
  fit(min = ZOOM_STEPS[0]) {
    const svg = this.dagScroll.querySelector('svg');
    if (!svg) return;
    const available = this.dagScroll.clientWidth - 4;
    const natural = Number(svg.dataset.width);
    if (!(available > 0 && natural > 0)) return;
    this.setZoom(Math.max(min, Math.min(1, available / natural)));
  }

  // ---- live -------------------------------------------------------------------------------

  /** Follow the event stream until `run_finished`, reconnecting after failures. */
  async follow() {
    if (this.following) return;
    const controller = new AbortController();
    this.following = controller;
    window.addEventListener('pagehide', () => controller.abort(), { once: true });
    let failures = 0;
    let finished = false;
    while (!finished && !controller.signal.aborted) {
      try {
        await streamEvents(`/api/runs/${encodeURIComponent(this.id)}/events`, { method: 'GET', signal: controller.signal }, (name) => {
          if (name === 'run_finished') {
            finished = true;
            this.refreshNow();
          } else if (name === 'step_started' || name === 'step_finished' || name === 'run_started') {
            this.scheduleRefresh();
          }
        });
        failures = 0;
        this.setLiveProblem(null);
      } catch (err) {
        if (isAbort(err)) return;
        failures += 1;
        this.setLiveProblem(`Live updates interrupted: ${describeError(err)} Reconnecting…`);
      }
      if (finished) break;
      // The stream ended without `run_finished`: see where the run stands before reconnecting.
      await this.refreshNow();
      if (!isLive(this.run.status)) break;
      await sleep(RETRY_MS[Math.min(failures, RETRY_MS.length - 1)], controller.signal);
    }
    this.following = null;
  }

  scheduleRefresh() {
    if (this.refreshTimer !== null || this.refreshing) {
      this.refreshAgain = true;
      return;
    }
    this.refreshTimer = setTimeout(() => {
      this.refreshTimer = null;
      this.refreshNow();
    }, REFRESH_DELAY_MS);
  }

  /** Fetch the run again and render it; failures show as a warning and keep the last view. */
  async refreshNow() {
    if (this.refreshing) {
      this.refreshAgain = true;
      return;
    }
    this.refreshing = true;
    try {
      const run = await getJSON(`/api/runs/${encodeURIComponent(this.id)}`);
      this.setLiveProblem(null);
      this.update(run);
    } catch (err) {
      this.setLiveProblem(`Could not refresh the run: ${describeError(err)}`);
    } finally {
      this.refreshing = false;
    }
    if (this.refreshAgain) {
      this.refreshAgain = false;
      this.scheduleRefresh();
    }
  }

  /** Tick durations and the waterfall once a second, and poll slowly, while the run runs. */
  updateTicking() {
    const running = isLive(this.run.status);
    if (running && this.tickTimer === null) {
      this.tickTimer = setInterval(() => {
        const duration = this.header.querySelector('.run-duration');
        if (duration) duration.textContent = formatDuration(elapsedMs(this.run));
        const step = this.selectedStep();
        const stepDuration = this.detail.querySelector('.step-duration');
        if (step && step.status === 'running' && stepDuration) stepDuration.textContent = formatDuration(elapsedMs(step));
        this.renderWaterfall();
      }, TICK_MS);
      this.safetyTimer = setInterval(() => {
        if (!document.hidden) this.scheduleRefresh();
      }, SAFETY_POLL_MS);
      if (!this.following) this.follow();
    } else if (!running && this.tickTimer !== null) {
      clearInterval(this.tickTimer);
      clearInterval(this.safetyTimer);
      this.tickTimer = null;
      this.safetyTimer = null;
    }
  }

  setLiveProblem(message) {
    if (message === null) {
      mount(this.notices);
      return;
    }
    mount(this.notices, h('div', { class: 'notice warn' }, message));
  }

  async cancel(button) {
    button.disabled = true;
    button.textContent = 'Stopping…';
    try {
      await postJSON(`/api/runs/${encodeURIComponent(this.id)}/cancel`);
      this.scheduleRefresh();
    } catch (err) {
      button.disabled = false;
      button.textContent = 'Stop run';
      mount(this.notices, errorNotice('Could not stop the run:', err));
    }
  }
}

// ---- helpers ----------------------------------------------------------------------------------

function backLink() {
  return h('nav', { class: 'crumbs' }, h('a', { href: '/debug', class: 'back-link' }, '← All runs'));
}

/** What the shapes and colours of the graph mean. */
function legend() {
  return h(
    'div',
    { class: 'dag-legend', 'aria-label': 'Legend' },
    h('span', { class: 'legend-title' }, 'Kinds:'),
    STEP_KINDS.map((kind) => h('span', { class: `legend-kind kind-${kind}` }, kind)),
    h('span', { class: 'legend-title' }, 'Status:'),
    STEP_STATUSES.map((status) => h('span', { class: `legend-status`, 'data-status': status }, statusLabel(status))),
  );
}

/** `#step-3` → 3; anything else → null. */
function stepFromHash() {
  const match = /^#step-(\d+)$/.exec(location.hash);
  return match ? Number(match[1]) : null;
}

function stepZoom(current, direction) {
  if (direction > 0) return ZOOM_STEPS.find((z) => z > current + 0.001) ?? ZOOM_STEPS[ZOOM_STEPS.length - 1];
  return [...ZOOM_STEPS].reverse().find((z) => z < current - 0.001) ?? ZOOM_STEPS[0];
}

/** Scroll `panel` (not the page) so that `node` is visible. */
function revealInPanel(panel, node) {
  const box = node.getBoundingClientRect();
  const view = panel.getBoundingClientRect();
  const margin = 24;
  if (box.top < view.top + margin || box.bottom > view.bottom - margin) {
    panel.scrollTop += box.top - view.top - (view.height - box.height) / 2;
  }
  if (box.left < view.left + margin || box.right > view.right - margin) {
    panel.scrollLeft += box.left - view.left - (view.width - box.width) / 2;
  }
}

/** Drag the background of a scrolling panel to pan it. */
function enablePan(panel) {
  let drag = null;
  panel.addEventListener('pointerdown', (event) => {
    if (event.button !== 0 || event.target.closest('.dag-node')) return;
    // A press on the panel's own scrollbars scrolls as usual.
    const box = panel.getBoundingClientRect();
    if (event.clientX - box.left >= panel.clientWidth || event.clientY - box.top >= panel.clientHeight) return;
    drag = { x: event.clientX, y: event.clientY, left: panel.scrollLeft, top: panel.scrollTop, id: event.pointerId };
    panel.setPointerCapture(event.pointerId);
    panel.classList.add('panning');
  });
  panel.addEventListener('pointermove', (event) => {
    if (!drag || event.pointerId !== drag.id) return;
    panel.scrollLeft = drag.left - (event.clientX - drag.x);
    panel.scrollTop = drag.top - (event.clientY - drag.y);
  });
  const end = (event) => {
    if (!drag || event.pointerId !== drag.id) return;
    drag = null;
    panel.classList.remove('panning');
  };
  panel.addEventListener('pointerup', end);
  panel.addEventListener('pointercancel', end);
}

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    }, { once: true });
  });
}
