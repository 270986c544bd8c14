// Small pieces shared by the views of the trace inspector (/debug): status badges, token and
// duration text, and turning a failed request into a notice in plain words. Kept apart from
// dom.js because they encode the run and step vocabulary, which only /debug needs in this form.

import { h } from './dom.js';
import { ApiError } from './api.js';

/** Run statuses, in the order the status filter offers them. */
export const RUN_STATUSES = [
  'running',
  'waiting', // a tool call waits for a person's approval
  'succeeded',
  'partial', // answered, but some tool calls failed or did not run
  'failed',
  'cancelled',
  'interrupted',
  'budget_exhausted',
];

/** Step kinds, in the order the legend lists them. */
export const STEP_KINDS = ['plan', 'act', 'observe', 'answer', 'sample'];

/** Step statuses, in the order the legend lists them. */
export const STEP_STATUSES = ['running', 'waiting_approval', 'succeeded', 'failed', 'skipped', 'cancelled', 'interrupted'];

/** Whether a run has not ended: running, or waiting for an approval. */
export function isLive(status) {
  return status === 'running' || status === 'waiting';
}

/** `budget_exhausted` → `budget exhausted`: a status as people read it. */
export function statusLabel(status) {
  return String(status ?? 'unknown').replace(/_/g, ' ');
}

/** A `.badge.status-<status>` element; `extraClass` adds classes such as `run-status`. */
export function statusBadge(status, extraClass = '') {
  const safe = String(status ?? 'unknown').replace(/[^a-z_]/g, '');
  const cls = `badge status-${safe}${extraClass ? ` ${extraClass}` : ''}`;
  return h('span', { class: cls, 'data-status': safe }, statusLabel(status));
}

/**
 * What a run without an agent is: a plain chat, or (no model: the server asked none) one tool
 * call a client made through `/mcp`.
 */
export function runKind(run) {
  return run.model ? 'plain chat' : 'tool call via /mcp';
}

/** A whole number with thousands separators, or `—` when unknown. */
export function formatCount(n) {
  if (n === null || n === undefined) return '—';
  return Number(n).toLocaleString();
}

/** `814 in · 40 out`, or `—` when the step or run used no model. */
export function formatTokens(input, output) {
  if ((input === null || input === undefined) && (output === null || output === undefined)) {
    return '—';
  }
  if (!input && !output) return '0';
  return `${formatCount(input ?? 0)} in · ${formatCount(output ?? 0)} out`;
}

/**
 * How long something took: its recorded duration once it finished, else the time since it
 * started (it is still running, so the figure grows while the page polls).
 */
export function elapsedMs(item, now = Date.now()) {
  if (item.duration_ms !== null && item.duration_ms !== undefined) return item.duration_ms;
  if (item.finished_at) return item.finished_at - item.started_at;
  return Math.max(0, now - item.started_at);
}

/** The message to show for any failure: the server's own words for API errors. */
export function describeError(err) {
  if (err instanceof ApiError) return err.message;
  if (err && typeof err.message === 'string' && err.message !== '') return err.message;
  return 'Something went wrong.';
}

/** A `.notice.error` with a short lead (`Could not load runs:`) and the failure's message. */
export function errorNotice(lead, err) {
  return h('div', { class: 'notice error', role: 'alert' }, `${lead} ${describeError(err)}`);
}

/** True for an abort caused by our own AbortController (not worth telling anyone about). */
export function isAbort(err) {
  return Boolean(err) && err.name === 'AbortError';
}

/**
 * Event handlers for an element that acts as a button (`role="button"`): a click, Enter or Space
 * runs `action`, so the DAG and the waterfall work from the keyboard too.
 */
export function pressable(action) {
  return {
    click: action,
    keydown: (event) => {
      if (event.key === 'Enter' || event.key === ' ') {
        event.preventDefault();
        action();
      }
    },
  };
}
