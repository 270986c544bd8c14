// Tool-call cards of the chat page: one card per `act` step, showing the tool and its server,
// the arguments, a live status with elapsed time and progress, then the result (collapsed when
// long) or the error in plain words. Cards of one model turn sit in one group, side by side,
// so calls the engine ran in parallel look parallel.
//
// A card is first built from live events (`step_started` carries the full arguments,
// `step_finished` a preview of the result) and completed from the stored step
// (`GET /api/runs/{id}`) once the run has ended; a conversation opened later is drawn from the
// stored steps alone.

import { h, mount, formatDuration } from './dom.js';
import { jsonView } from './json-view.js';

/** Results longer than this many characters start collapsed. */
const COLLAPSE_CHARS = 600;
/** Error messages up to this long are shown whole; longer ones behind "Details". */
const SHORT_ERROR_CHARS = 300;

/** A group of the tool calls of one model turn. */
export class ToolGroup {
  constructor(turnStep) {
    this.cards = [];
    this.count = h('span', { class: 'tool-group-label' });
    this.row = h('div', { class: 'tool-group-cards' });
    this.el = h('div', { class: 'tool-group', 'data-parallel': 'false', 'data-turn': turnStep }, this.count, this.row);
  }

  /** Add `card` and say again whether the group ran in parallel. */
  add(card) {
    this.cards.push(card);
    this.row.append(card.el);
    this.update();
  }

  /**
   * Parallel means at least two calls of this turn did not wait for each other: a ReAct turn's
   * calls always (they start together), a plan's steps unless they form one chain.
   */
  update() {
    const steps = new Set(this.cards.map((c) => c.step));
    const sorted = [...this.cards].sort((a, b) => a.step - b.step);
    const chain = sorted.every((card, i) => i === 0 || card.dependsOn.includes(sorted[i - 1].step));
    const parallel = this.cards.length >= 2 && !chain;
    this.el.dataset.parallel = String(parallel);
    const n = this.cards.length;
    let label = `${n} tool call${n === 1 ? '' : 's'}`;
    if (parallel) label += ' in parallel';
    else if (n >= 2) label += ', one after another';
    const waiting = this.cards.filter((c) => c.dependsOn.some((d) => steps.has(d))).length;
    if (parallel && waiting > 0) label += ` (${waiting} waited for earlier results)`;
    mount(this.count, label);
  }
}

/** One tool call. */
export class ToolCard {
  /**
   * `info`: `{step, name, server, arguments?, inputPreview?, dependsOn, startedAt, status}`.
   * `dependsOn` lists step indexes; `labels` maps the steps of sibling cards to tool names so
   * "after" can name them.
   */
  constructor(info) {
    this.step = info.step;
    this.dependsOn = info.dependsOn || [];
    this.startedAt = info.startedAt || Date.now();
    this.status = info.status || 'running';
    this.full = false; // true once the whole result is shown (not just a preview)
    this.nameEl = h('span', { class: 'tool-name' }, info.name);
    this.serverEl = h('span', { class: 'tool-server', title: 'MCP server' }, info.server || 'unknown server');
    this.statusEl = h('span', { class: 'tool-status badge' });
    this.durationEl = h('span', { class: 'tool-duration' });
    this.afterEl = h('div', { class: 'tool-after', hidden: true });
    this.argsEl = h('div', { class: 'tool-args' });
    this.progressEl = h('div', { class: 'tool-progress' });
    this.resultEl = h('div', { class: 'tool-result', hidden: true });
    this.errorEl = h('div', { class: 'tool-error', hidden: true, role: 'alert' });
    this.el = h('div', {
      class: 'tool-card',
      'data-tool': info.name,
      'data-step': info.step,
      'data-status': this.status,
    },
    h('div', { class: 'tool-head' }, this.nameEl, h('span', { class: 'tool-on' }, 'on'), this.serverEl, this.statusEl, this.durationEl),
    this.afterEl,
    h('div', { class: 'tool-section-label' }, 'Arguments'),
    this.argsEl,
    this.progressEl,
    this.resultEl,
    this.errorEl);
    this.setArguments(info.arguments, info.inputPreview);
    this.setStatus(this.status);
    if (this.status === 'running') this.progress(null, null, null);
  }

  /** Name the sibling calls this one waited for. */
  showAfter(names) {
    if (names.length === 0) return;
    this.afterEl.hidden = false;
    mount(this.afterEl, `after ${names.join(', ')}`);
  }

  setArguments(args, preview) {
    if (args !== undefined && args !== null) {
      if (typeof args === 'object' && Object.keys(args).length === 0) {
        mount(this.argsEl, h('span', { class: 'muted' }, 'no arguments'));
      } else {
        mount(this.argsEl, jsonView(args, { openDepth: 2, maxString: 400 }));
      }
      return;
    }
    if (preview === null || preview === undefined || preview === '') {
      mount(this.argsEl, h('span', { class: 'muted' }, 'no arguments'));
      return;
    }
    // Older servers send only a preview; when it is whole JSON, show it as a tree.
    try {
      mount(this.argsEl, jsonView(JSON.parse(preview), { openDepth: 2, maxString: 400 }));
    } catch {
      mount(this.argsEl, h('pre', { class: 'tool-preview' }, preview));
    }
  }

  setStatus(status) {
    this.status = status;
    this.el.dataset.status = status;
    this.statusEl.className = `tool-status badge status-${status}`;
    mount(this.statusEl, status === 'waiting_approval' ? 'waiting for approval' : status);
  }

  /** Refresh the elapsed time of a running call. */
  tick(now = Date.now()) {
    if (this.status === 'running') mount(this.durationEl, `${formatDuration(now - this.startedAt)}…`);
  }

  /** A `tool_progress` event (or the initial indeterminate bar when `progress` is null). */
  progress(progress, total, message) {
    if (this.status !== 'running') return;
    const bar = h('progress', { class: 'tool-progress-bar' });
    let words = 'running…';
    if (typeof progress === 'number') {
      if (typeof total === 'number' && total > 0) {
        bar.max = total;
        bar.value = Math.min(progress, total);
        words = `${Math.round((100 * Math.min(progress, total)) / total)}%`;
      } else {
        words = `progress ${progress}`;
      }
    }
    mount(this.progressEl, bar, h('span', { class: 'tool-progress-text' }, message ? `${words} · ${message}` : words));
  }

  /**
   * A `step_finished` event: status, duration, then the error or the result: the whole
   * `output` when the event has it, else its one-line preview (completed later by `fill`).
   */
  finish({ status, durationMs, outputPreview, output, error }) {
    this.setStatus(status || 'succeeded');
    this.progressEl.remove();
    if (typeof durationMs === 'number') mount(this.durationEl, formatDuration(durationMs));
    else mount(this.durationEl);
    if (error) this.showError(error);
    if (output !== undefined) this.full = true;
    // A failed call's result repeats its error (a tool's `isError` text is the step's error);
    // the error alone says it better.
    if (error) return;
    if (output !== undefined && output !== null) {
      const { view, size } = resultView(output);
      this.showResult(view, size, false);
    } else if (outputPreview && !this.full) {
      this.showResult(h('pre', { class: 'tool-preview' }, outputPreview), outputPreview.length, true);
    }
  }

  /** Complete the card from the stored step (`GET /api/runs/{id}`): whole arguments and result. */
  fill(step) {
    this.setArguments(step.input ?? {}, null);
    if (step.status !== 'running') {
      this.finish({ status: step.status, durationMs: step.duration_ms, output: step.output ?? null, error: step.error });
    }
  }

  showResult(view, size, isPreview) {
    this.resultEl.hidden = false;
    const summary = h('summary', {}, isPreview ? 'Result (preview)' : `Result${size > COLLAPSE_CHARS ? ` · ${size.toLocaleString()} characters` : ''}`);
    const details = h('details', { class: 'tool-result-details', open: size <= COLLAPSE_CHARS }, summary, view);
    mount(this.resultEl, details);
  }

  showError(error) {
    this.errorEl.hidden = false;
    const { headline, detail } = explainToolError(String(error), this.serverEl.textContent);
    let more = null;
    if (detail && detail.length <= SHORT_ERROR_CHARS) more = h('pre', { class: 'tool-error-detail' }, detail);
    else if (detail) more = h('details', { class: 'tool-error-details' }, h('summary', {}, 'Details'), h('pre', { class: 'tool-error-detail' }, detail));
    mount(this.errorEl, h('div', { class: 'tool-error-headline' }, headline), more);
  }
}

/** What to show for a stored tool result: its text blocks (JSON text as a tree), or the whole. */
function resultView(output) {
  const blocks = Array.isArray(output && output.content) ? output.content : null;
  if (!blocks) {
    const text = JSON.stringify(output) ?? '';
    return { view: jsonView(output, { openDepth: 2 }), size: text.length };
  }
  let size = 0;
  const parts = blocks.map((block) => {
    if (block && block.type === 'text' && typeof block.text === 'string') {
      size += block.text.length;
      try {
        const parsed = JSON.parse(block.text);
        if (parsed !== null && typeof parsed === 'object') return jsonView(parsed, { openDepth: 2 });
      } catch {
        // plain text
      }
      return h('pre', { class: 'tool-text' }, block.text);
    }
    // Images, audio and resources are described, never loaded: tool output is untrusted.
    const kind = (block && block.type) || 'content';
    const described = { ...block };
    if (typeof described.data === 'string') described.data = `${described.data.length} characters of base64`;
    size += JSON.stringify(described).length;
    return h('div', { class: 'tool-media' }, h('span', { class: 'badge' }, kind), jsonView(described, { openDepth: 1 }));
  });
  if (parts.length === 0) parts.push(h('span', { class: 'muted' }, 'empty result'));
  return { view: h('div', { class: 'tool-result-body' }, parts), size };
}

/**
 * A tool failure in plain words (`headline`) with the engine's own message as `detail`. The
 * engine's messages are written for the model ("Error: `x` could not run: mcp server `s` is
 * unavailable: …"); a person wants to know first whether the server is down, the call timed out,
 * or the model got the arguments wrong.
 */
export function explainToolError(error, server) {
  const text = error.trim();
  const named = /mcp server `([^`]+)`/.exec(text);
  const who = named ? named[1] : server;
  if (/is unavailable|is not configured|exited|connection to mcp server|not connected|could not start/i.test(text)) {
    return { headline: `The ${who} server is down or unreachable, so this tool could not run.`, detail: text };
  }
  if (/did not finish within|timed out/i.test(text)) {
    return { headline: 'The tool took too long and was stopped.', detail: text };
  }
  if (/do not match its schema|not valid JSON/i.test(text)) {
    return { headline: 'The model sent arguments this tool does not accept.', detail: text };
  }
  if (/there is no tool named/i.test(text)) {
    return { headline: 'The model asked for a tool that does not exist.', detail: text };
  }
  if (/skipped because/i.test(text)) {
    return { headline: 'Skipped, because a call it depends on failed.', detail: text };
  }
  if (/was cancelled|cancelled/i.test(text)) {
    return { headline: 'The call was cancelled.', detail: text };
  }
  return { headline: 'The tool reported an error:', detail: text };
}
