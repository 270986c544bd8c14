// One assistant answer on the chat page: the view of one run. It is drawn either live, from the
// run's events (`POST /api/chat` or `GET /api/runs/{id}/events`), or from the stored run
// (`GET /api/runs/{id}`) when a conversation is opened; a live run is completed from the stored
// one when it ends, because events carry only previews of tool results.
//
// Layout: for each model turn that called tools, the text the model wrote before calling them
// and a group of tool cards; then the answer (Markdown), a notice when the run did not succeed,
// and a footer with the link to the run's trace in /debug.

import { h, mount, formatDuration } from './dom.js';
import { getJSON } from './api.js';
import { jsonView } from './json-view.js';
import { renderMarkdown } from './markdown.js';
import { ToolCard, ToolGroup } from './chat-cards.js';
import { InputCard } from './chat-input.js';
import { ApprovalCard } from './approval-card.js';
import { errorText } from './chat-notices.js';

/** Model-step kinds: their tokens are text the model writes. */
const MODEL_KINDS = new Set(['plan', 'answer']);

/** The assistant side of one run. */
export class RunView {
  constructor() {
    this.runId = null;
    this.finished = false;
    this.turns = new Map(); // model step → {text, el, group, textEl}
    this.cards = new Map(); // act step → ToolCard
    this.kinds = new Map(); // step → kind
    this.inputs = new Map(); // input id → InputCard
    this.approvals = new Map(); // approval id → ApprovalCard
    this.answerTurn = null; // the model turn whose text is shown as the answer
    this.answerText = '';
    this.renderQueued = false;
    this.onChange = () => {};

    this.metaEl = h('span', { class: 'message-meta' });
    this.statusEl = h('span', { class: 'badge run-status status-running' }, 'starting');
    this.stepsEl = h('div', { class: 'run-steps' });
    this.activityEl = h('div', { class: 'run-activity' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }), h('span', {}, 'Waiting for the model…'));
    this.answerEl = h('div', { class: 'answer' });
    this.noticeSlot = h('div', { class: 'run-notice-slot' });
    this.footEl = h('div', { class: 'message-foot' });
    this.el = h('article', { class: 'message assistant', 'aria-busy': 'true' },
      h('header', { class: 'message-head' }, h('span', { class: 'message-role' }, 'Assistant'), this.metaEl, this.statusEl),
      this.stepsEl,
      this.activityEl,
      this.answerEl,
      this.noticeSlot,
      this.footEl);
    this.timer = null; // ticks elapsed times while calls run
  }

  /**
   * Show a stored answer at once (opening a conversation); the run's details come later from
   * `fillFromRun`, or live events if it is still running.
   */
  showStored(answer) {
    this.activityEl.remove();
    this.statusEl.hidden = true;
    this.el.setAttribute('aria-busy', 'false');
    if (answer !== undefined) {
      this.answerText = answer;
      this.renderAnswer();
    }
  }

  /** Apply one run event (names and shapes of `src/api/chat.rs`). */
  apply(name, data) {
    if (!data || typeof data !== 'object') return;
    switch (name) {
      case 'run_started':
        this.started(data);
        break;
      case 'step_started':
        this.stepStarted(data);
        break;
      case 'token_delta':
        this.token(data);
        break;
      case 'tool_progress': {
        const card = this.cards.get(data.step);
        if (card) card.progress(data.progress, data.total, data.message);
        break;
      }
      case 'input_requested':
        this.inputRequested(data);
        break;
      case 'approval_requested':
        this.approvalRequested(data);
        break;
      case 'approval_decided': {
        const card = this.approvals.get(String(data.id));
        if (card) card.decided(data);
        const tool = this.cards.get(data.step);
        if (tool && tool.status === 'waiting_approval') tool.setStatus('running');
        if ([...this.approvals.values()].every((c) => !c.open)) this.setActivity('Running tools…');
        break;
      }
      case 'input_answered': {
        const input = this.inputs.get(String(data.id));
        if (input) input.answered(data.action);
        break;
      }
      case 'step_finished':
        this.stepFinished(data);
        break;
      case 'run_finished':
        this.runFinished(data);
        break;
      default:
        break;
    }
    this.onChange();
  }

  /** A server asks the person during act step `data.step`: its card, under the tool's card. */
  inputRequested(data) {
    const id = String(data.id ?? '');
    if (this.inputs.has(id) || !this.runId) return;
    const input = new InputCard(this.runId, data);
    input.step = data.step;
    this.inputs.set(id, input);
    const card = this.cards.get(data.step);
    if (card) card.el.append(input.el);
    else this.stepsEl.append(input.el);
    this.setActivity('Waiting for your answer…');
  }

  /** Act `data.step`'s call waits for approval: its card, under the tool's card. */
  approvalRequested(data) {
    const id = String(data.id ?? '');
    if (this.approvals.has(id) || !this.runId) return;
    const card = new ApprovalCard(this.runId, data);
    this.approvals.set(id, card);
    const tool = this.cards.get(data.step);
    if (tool) {
      tool.el.append(card.el);
      if (tool.status === 'running') tool.setStatus('waiting_approval');
    } else {
      this.stepsEl.append(card.el);
    }
    this.setStatus('waiting');
    this.setActivity('Waiting for your approval…');
  }

  /** Questions of act `step` still open when it finished can no longer be answered. */
  closeInputs(step) {
    for (const input of this.inputs.values()) {
      if (step === undefined || input.step === step) {
        input.closed('The tool call ended; the server no longer waits for this answer.');
      }
    }
  }

  started(data) {
    this.setRunId(data.run_id);
    this.setMeta(data.model, data.agent);
    this.setStatus('running');
    this.setActivity('Waiting for the model…');
  }

  setRunId(runId) {
    if (!runId || this.runId === runId) return;
    this.runId = runId;
    this.el.dataset.runId = runId;
    mount(this.footEl,
      h('a', { class: 'trace-link', href: `/debug/runs/${encodeURIComponent(runId)}`, title: 'Every step of this run, with inputs, outputs and timing' }, 'View trace'),
      h('span', { class: 'run-figures' }));
  }

  setMeta(model, agent) {
    const parts = [];
    if (model) parts.push(h('span', { class: 'meta-model', title: 'model' }, model));
    if (agent) parts.push(h('span', { class: 'meta-agent', title: 'agent' }, `agent ${agent}`));
    mount(this.metaEl, parts);
  }

  setStatus(status) {
    this.statusEl.hidden = false;
    this.statusEl.className = `badge run-status status-${status}`;
    mount(this.statusEl, status.replace('_', ' '));
  }

  setActivity(text) {
    if (this.finished) return;
    if (this.activityEl.parentNode !== this.el) this.answerEl.before(this.activityEl);
    this.el.setAttribute('aria-busy', 'true');
    mount(this.activityEl, h('span', { class: 'spinner', 'aria-hidden': 'true' }), h('span', {}, text));
  }

  stepStarted(data) {
    this.kinds.set(data.step, data.kind);
    if (MODEL_KINDS.has(data.kind)) {
      // ReAct's closing `answer` step writes nothing itself: the answer is the last turn's text.
      if (data.kind === 'answer' && data.input_preview == null) return;
      const turn = this.turn(data.step);
      // A replayed turn that already called tools (drawn from the store) stays a preamble.
      if (!turn.group) {
        this.answerTurn = data.step;
        this.answerText = turn.text;
        this.renderAnswer();
      }
      this.setActivity('The model is thinking…');
    } else if (data.kind === 'act') {
      if (this.cards.has(data.step)) return; // replayed: drawn from the store already
      const card = new ToolCard({
        step: data.step,
        name: data.name,
        server: data.server,
        arguments: data.arguments,
        inputPreview: data.input_preview,
        dependsOn: data.depends_on || [],
        startedAt: data.at,
        status: 'running',
      });
      this.addCard(card, data.depends_on || []);
      this.setActivity('Running tools…');
    } else if (data.kind === 'observe') {
      this.setActivity('The model is reading the tool results…');
    }
  }

  /** The view of model turn `step`, created on first use. */
  turn(step) {
    let turn = this.turns.get(step);
    if (!turn) {
      turn = { step, text: '', el: null, group: null, textEl: null };
      this.turns.set(step, turn);
    }
    return turn;
  }

  /**
   * Put `card` in the group of its model turn: the turn it depends on, or the turn of the call
   * it depends on (plan mode chains calls).
   */
  addCard(card, dependsOn) {
    this.cards.set(card.step, card);
    let turnStep = null;
    for (const dep of dependsOn) {
      if (MODEL_KINDS.has(this.kinds.get(dep))) {
        turnStep = dep;
        break;
      }
      const sibling = this.cards.get(dep);
      if (sibling) {
        turnStep = sibling.turnStep;
        break;
      }
    }
    if (turnStep === null) turnStep = this.answerTurn ?? -1;
    card.turnStep = turnStep;
    const turn = this.turn(turnStep);
    if (!turn.group) {
      turn.group = new ToolGroup(turnStep);
      turn.textEl = h('div', { class: 'turn-text' });
      turn.el = h('section', { class: 'turn', 'data-step': turnStep }, turn.textEl, turn.group.el);
      this.stepsEl.append(turn.el);
      // The turn called tools, so its text was a preamble, not the answer.
      if (this.answerTurn === turnStep) {
        this.answerTurn = null;
        this.answerText = '';
        this.renderAnswer();
      }
      this.renderTurnText(turn);
    }
    turn.group.add(card);
    if (card.status === 'running' && this.timer === null && !this.finished) {
      this.timer = setInterval(() => this.tick(), 250);
    }
    const names = dependsOn.map((d) => this.cards.get(d)).filter(Boolean).map((c) => `#${c.step} ${c.el.dataset.tool}`);
    card.showAfter(names);
  }

  token(data) {
    const turn = this.turn(data.step);
    turn.text += String(data.text ?? '');
    if (turn.group) {
      this.renderTurnText(turn);
    } else if (this.answerTurn === data.step) {
      this.answerText = turn.text;
      this.queueAnswer();
      this.setActivity('The model is writing…');
    }
  }

  /** A turn's text before its tool calls; a plan-mode plan (JSON) is shown as a tree. */
  renderTurnText(turn) {
    const text = turn.text.trim();
    if (!text) {
      mount(turn.textEl);
      return;
    }
    const plan = parsePlan(text);
    if (plan) {
      mount(turn.textEl, h('details', { class: 'turn-plan' }, h('summary', {}, 'The model’s plan'), jsonView(plan, { openDepth: 2 })));
    } else {
      mount(turn.textEl, renderMarkdown(text));
    }
  }

  /** Re-render the streamed answer at most once per frame. */
  queueAnswer() {
    if (this.renderQueued) return;
    this.renderQueued = true;
    requestAnimationFrame(() => {
      this.renderQueued = false;
      this.renderAnswer();
      this.onChange();
    });
  }

  renderAnswer() {
    if (this.answerText === '') mount(this.answerEl);
    else mount(this.answerEl, renderMarkdown(this.answerText));
  }

  stepFinished(data) {
    this.closeInputs(data.step);
    const card = this.cards.get(data.step);
    if (card && card.status === 'running') {
      card.finish({
        status: data.status,
        durationMs: data.duration_ms,
        outputPreview: data.output_preview,
        output: 'output' in data ? data.output : undefined,
        error: data.error,
      });
      card.tick();
    }
  }

  runFinished(data) {
    this.closeInputs();
    for (const card of this.approvals.values()) card.closed('closed', 'The run ended before a decision.');
    this.finished = true;
    this.setRunId(data.run_id);
    this.dispose();
    this.activityEl.remove();
    this.el.setAttribute('aria-busy', 'false');
    this.setStatus(data.status || 'failed');
    if (typeof data.answer === 'string' && data.answer !== '') {
      this.answerText = data.answer;
      this.renderAnswer();
    } else if (this.answerText !== '') {
      this.answerEl.classList.add('partial');
    }
    const notice = explainRunEnd(data.status, data.error, this.answerText !== '');
    mount(this.noticeSlot, notice ? h('div', { class: `run-notice notice ${notice.level}`, role: 'status' }, notice.text) : null);
    this.setFigures(data.duration_ms, data.usage);
    // Calls still shown running were closed by the run's end.
    for (const card of this.cards.values()) {
      if (card.status === 'running') card.finish({ status: data.status === 'cancelled' ? 'cancelled' : 'failed' });
    }
  }

  setFigures(durationMs, usage) {
    const figures = this.footEl.querySelector('.run-figures');
    if (!figures) return;
    const parts = [];
    if (typeof durationMs === 'number') parts.push(formatDuration(durationMs));
    if (usage && (usage.input_tokens || usage.output_tokens)) {
      parts.push(`${usage.input_tokens ?? 0} in / ${usage.output_tokens ?? 0} out tokens`);
    }
    mount(figures, parts.join(' · '));
  }

  /** The connection to a live run broke before its end. */
  lostConnection(err) {
    if (this.finished) return;
    mount(this.noticeSlot, h('div', { class: 'run-notice notice warn', role: 'status' },
      `Lost the live connection to this run (${errorText(err)}). It keeps running on the server; reload the page to see how it ended.`));
  }

  tick() {
    const now = Date.now();
    for (const card of this.cards.values()) card.tick(now);
  }

  /** Stop timers (the view is being thrown away). */
  dispose() {
    clearInterval(this.timer);
    this.timer = null;
  }

  /**
   * Draw a stored run (`GET /api/runs/{id}`) in full: every tool call with its whole arguments
   * and result, the answer, the outcome. Cards already drawn live are completed in place.
   */
  fillFromRun(run, storedAnswer) {
    this.setRunId(run.id);
    this.setMeta(run.model, run.agent);
    const deps = new Map();
    for (const edge of run.edges || []) {
      if (!deps.has(edge.to)) deps.set(edge.to, []);
      deps.get(edge.to).push(edge.from);
    }
    const steps = [...(run.steps || [])].sort((a, b) => a.index - b.index);
    for (const step of steps) this.kinds.set(step.index, step.kind);
    for (const step of steps) {
      if (MODEL_KINDS.has(step.kind)) {
        const turn = this.turn(step.index);
        const content = step.output && typeof step.output.content === 'string' ? step.output.content : '';
        if (!turn.text) turn.text = content;
        if (turn.group) this.renderTurnText(turn);
      } else if (step.kind === 'act') {
        let card = this.cards.get(step.index);
        if (!card) {
          card = new ToolCard({
            step: step.index,
            name: step.name,
            server: step.server,
            arguments: step.input,
            dependsOn: deps.get(step.index) || [],
            startedAt: step.started_at,
            status: step.status,
          });
          this.addCard(card, deps.get(step.index) || []);
        }
        card.fill(step);
      }
    }
    // A live view that saw `run_finished` keeps its answer, notice and figures as they are.
    if (run.status === 'running' || this.finished) return;
    this.runFinished({
      run_id: run.id,
      status: run.status,
      answer: storedAnswer ?? run.answer,
      error: run.error,
      duration_ms: run.duration_ms,
      usage: { input_tokens: run.input_tokens, output_tokens: run.output_tokens },
    });
  }

  /**
   * Complete this view from the stored run: a conversation's older answers, or a live run whose
   * events only had previews (a server from before tool events carried whole results). The
   * store writes in batches, so right after `run_finished` the record may still say `running`:
   * ask again a few times.
   */
  async loadStored({ attempts = 8, answer, always = false } = {}) {
    if (!this.runId) return;
    // Live events already carried every call's whole arguments and result: nothing to add.
    if (!always && this.finished && [...this.cards.values()].every((card) => card.full)) return;
    for (let attempt = 0; attempt < attempts; attempt += 1) {
      let run;
      try {
        run = await getJSON(`/api/runs/${encodeURIComponent(this.runId)}`);
      } catch (err) {
        if (attempt === attempts - 1) this.storedFailed(err);
        await sleep(300 * (attempt + 1));
        continue;
      }
      if (run.status !== 'running' || !this.finished) {
        this.fillFromRun(run, answer);
        this.onChange();
        return;
      }
      await sleep(250 * (attempt + 1));
    }
  }

  storedFailed(err) {
    this.footEl.append(h('span', { class: 'muted' }, ` · full tool results unavailable: ${errorText(err)}`));
  }
}

/** A plan-mode plan: a JSON object with `steps` (possibly in a ```json fence). */
function parsePlan(text) {
  const unfenced = text.replace(/^```(?:json)?\s*/i, '').replace(/\s*```$/, '');
  if (!unfenced.startsWith('{')) return null;
  try {
    const value = JSON.parse(unfenced);
    return value && typeof value === 'object' && Array.isArray(value.steps) ? value : null;
  } catch {
    return null;
  }
}

/**
 * How a run ended, in plain words, or null for a success. `error` is the engine's message;
 * model failures name the model ("model `x` …", "the provider of model `x` is down …").
 */
export function explainRunEnd(status, error, hasPartialAnswer) {
  const why = error ? ` (${error})` : '';
  switch (status) {
    case 'succeeded':
    case 'running':
    case 'waiting':
      return null;
    case 'partial':
      return { level: 'warn', text: `Partial answer: ${error || 'some tool calls failed or did not run'}. The answer above may be missing what they would have given.` };
    case 'budget_exhausted':
      return { level: 'warn', text: `Stopped early: this run used up its budget${why}. ${hasPartialAnswer ? 'The answer above is incomplete.' : 'There is no answer.'} Raise the agent's limits or ask a narrower question.` };
    case 'cancelled':
      return { level: 'info', text: `Cancelled: the run was stopped before it finished${hasPartialAnswer ? '; the answer above is incomplete' : ''}.` };
    case 'interrupted':
      return { level: 'warn', text: 'Interrupted: the server stopped while this run was going, so it never finished.' };
    case 'failed':
    default:
      if (error && /model `|provider of model|\bmodel\b.*(unavailable|unreachable|rate limited|refused|did not answer|malformed)/i.test(error)) {
        return { level: 'error', text: `The model could not answer: ${error}. Pick another model or check that its server is running.` };
      }
      return { level: 'error', text: `The run failed${why}.` };
  }
}

function sleep(ms) {
  return new Promise((resolve) => { setTimeout(resolve, ms); });
}
