// The waterfall timeline of one run: one row per step, a bar from the step's start to its end
// on a time axis shared by all rows (zero = the run's start), coloured by status. Built from
// HTML rows rather than SVG so labels wrap and rows stay clickable and focusable; bar geometry is
// set through the CSSOM (`el.style`), which the page's Content-Security-Policy allows.

import { h, excerpt, formatDuration, formatTime } from './dom.js';
import { statusLabel, elapsedMs, pressable, isLive } from './debug-common.js';

/** Number of labelled ticks on the axis (plus zero). */
const TICKS = 5;

/**
 * `#waterfall` for `run`: `.wf-row[data-step]` per step with a `.wf-bar`. `now` ends the axis
 * and the bars of steps still running. `onSelect(index)` runs on click or Enter.
 */
export function renderWaterfall(run, onSelect, now = Date.now()) {
  const steps = run.steps || [];
  const start = Math.min(run.started_at, ...steps.map((step) => step.started_at));
  const ends = steps.map((step) => step.started_at + elapsedMs(step, now));
  const runEnd = run.finished_at ?? (isLive(run.status) ? now : null);
  const end = Math.max(start + 1, runEnd ?? start, ...ends);
  const span = end - start;
  const pct = (ms) => `${Math.min(100, Math.max(0, (ms / span) * 100)).toFixed(3)}%`;

  const ticks = [];
  for (let i = 0; i <= TICKS; i += 1) {
    const at = (span * i) / TICKS;
    const tick = h('span', { class: `wf-tick${i === TICKS ? ' wf-tick-last' : ''}` }, formatDuration(at));
    tick.style.left = pct(at);
    ticks.push(tick);
  }
  const axis = h(
    'div',
    { class: 'wf-axis', 'aria-hidden': 'true' },
    h('div', { class: 'wf-label' }, 'step'),
    h('div', { class: 'wf-track' }, ticks),
    h('div', { class: 'wf-time' }, 'duration'),
  );

  const rows = steps.map((step) => {
    const offset = step.started_at - start;
    const length = elapsedMs(step, now);
    const running = step.status === 'running';
    const bar = h('div', {
      class: 'wf-bar',
      'data-status': step.status,
      title: `${formatDuration(offset)} → ${formatDuration(offset + length)}${running ? ' (running)' : ''}`,
    });
    bar.style.left = pct(offset);
    bar.style.width = pct(length);
    const grid = h('div', { class: 'wf-grid', 'aria-hidden': 'true' });
    const select = () => onSelect(step.index);
    return h(
      'div',
      {
        class: `wf-row kind-${String(step.kind).replace(/[^a-z]/g, '')}`,
        'data-step': step.index,
        'data-kind': step.kind,
        'data-status': step.status,
        role: 'button',
        tabindex: 0,
        title: `#${step.index} ${step.kind}: ${step.name} (${statusLabel(step.status)}), started ${formatTime(step.started_at)}`,
        on: pressable(select),
      },
      h(
        'div',
        { class: 'wf-label' },
        h('span', { class: 'wf-index' }, `#${step.index}`),
        h('span', { class: 'wf-kind' }, step.kind),
        h('span', { class: 'wf-name' }, excerpt(step.name, 40)),
      ),
      h('div', { class: 'wf-track' }, grid, bar),
      h('div', { class: 'wf-time' }, running ? `${formatDuration(length)}…` : formatDuration(length)),
    );
  });

  return h(
    'div',
    { id: 'waterfall', class: 'waterfall', 'aria-label': 'Timeline of the steps' },
    axis,
    rows.length ? rows : h('div', { class: 'notice info' }, 'This run has no steps yet.'),
  );
}

/** Mark the row of `index` (or none) as selected. */
export function markWaterfallSelection(root, index) {
  for (const el of root.querySelectorAll('.wf-row.selected')) el.classList.remove('selected');
  if (index === null || index === undefined) return null;
  const row = root.querySelector(`.wf-row[data-step="${Number(index)}"]`);
  if (row) row.classList.add('selected');
  return row;
}
