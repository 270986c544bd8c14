// The plan–act–observe DAG of one run, drawn as SVG. The layout is computed here (no graph
// library): longest-path layering over the stored edges, so every step sits one row below the
// deepest step it depends on and the parallel acts of one turn share a row side by side; within
// a row, steps are ordered by the mean position of their parents to keep edges from crossing.
// The drawing scrolls and pans inside its panel, so 50+ steps stay readable at full size.

import { s, excerpt, formatDuration } from './dom.js';
import { statusLabel, elapsedMs, pressable } from './debug-common.js';

/** Node size and spacing, in SVG user units (pixels at zoom 1). */
const NODE_W = 168;
const NODE_H = 44;
const GAP_X = 28;
const GAP_Y = 46;
const PAD = 20;
/** Characters of a step's name shown in its node; the rest is in the node's <title>. */
const LABEL_CHARS = 21;

/**
 * Positions for `steps` (each with `index`) connected by `edges` ({from, to}): returns
 * `{positions: Map(index → {x, y, layer, order}), edges, width, height, layers}` where `edges`
 * keeps only edges whose both ends are known steps. Pure, so it can be reasoned about alone.
 */
export function layoutDag(steps, edges) {
  const known = new Set(steps.map((step) => step.index));
  const valid = edges.filter((e) => known.has(e.from) && known.has(e.to) && e.from !== e.to);
  const parents = new Map();
  const children = new Map();
  for (const index of known) {
    parents.set(index, []);
    children.set(index, []);
  }
  for (const e of valid) {
    parents.get(e.to).push(e.from);
    children.get(e.from).push(e.to);
  }

  // Longest path from a root, in topological order (Kahn). Steps caught in a cycle, which the
  // engine never stores but a hand-edited database could, go below everything else.
  const layer = new Map();
  const pending = new Map([...known].map((i) => [i, parents.get(i).length]));
  const queue = [...known].filter((i) => pending.get(i) === 0).sort((a, b) => a - b);
  for (let head = 0; head < queue.length; head += 1) {
    const index = queue[head];
    const depth = Math.max(-1, ...parents.get(index).map((p) => layer.get(p) ?? -1)) + 1;
    layer.set(index, depth);
    for (const child of children.get(index)) {
      pending.set(child, pending.get(child) - 1);
      if (pending.get(child) === 0) queue.push(child);
    }
  }
  let deepest = Math.max(-1, ...layer.values());
  for (const index of [...known].sort((a, b) => a - b)) {
    if (!layer.has(index)) {
      deepest += 1;
      layer.set(index, deepest);
    }
  }

  const rows = [];
  for (const [index, depth] of layer) {
    (rows[depth] ||= []).push(index);
  }
  const order = new Map();
  rows.forEach((row, depth) => {
    if (depth === 0) {
      row.sort((a, b) => a - b);
    } else {
      const weight = (i) => {
        const ps = parents.get(i).filter((p) => order.has(p));
        return ps.length === 0 ? Infinity : ps.reduce((sum, p) => sum + order.get(p), 0) / ps.length;
      };
      row.sort((a, b) => weight(a) - weight(b) || a - b);
    }
    row.forEach((index, position) => order.set(index, position));
  });

  const widest = Math.max(1, ...rows.map((row) => row.length));
  const width = PAD * 2 + widest * NODE_W + (widest - 1) * GAP_X;
  const positions = new Map();
  rows.forEach((row, depth) => {
    const rowWidth = row.length * NODE_W + (row.length - 1) * GAP_X;
    const left = (width - rowWidth) / 2;
    row.forEach((index, position) => {
      positions.set(index, {
        x: left + position * (NODE_W + GAP_X),
        y: PAD + depth * (NODE_H + GAP_Y),
        layer: depth,
        order: position,
      });
    });
  });
  const height = PAD * 2 + Math.max(1, rows.length) * NODE_H + Math.max(0, rows.length - 1) * GAP_Y;
  return { positions, edges: valid, width, height, layers: rows.length };
}

/**
 * `svg#dag` for `run` (its `steps` and `edges`). `onSelect(index)` is called when a node is
 * clicked or activated with the keyboard. Every stored edge becomes one
 * `path.dag-edge[data-from][data-to]`; an edge naming a step the store does not have (never
 * written by the engine) cannot be placed and is left out.
 */
export function renderDag(run, onSelect, zoom = 1) {
  const steps = run.steps || [];
  const layout = layoutDag(steps, run.edges || []);
  const svg = s('svg', {
    id: 'dag',
    class: 'dag',
    viewBox: `0 0 ${layout.width} ${layout.height}`,
    width: Math.round(layout.width * zoom),
    height: Math.round(layout.height * zoom),
    role: 'img',
    'aria-label': `Step graph: ${steps.length} steps, ${layout.edges.length} edges, ${layout.layers} layers`,
    'data-width': layout.width,
    'data-height': layout.height,
  });
  // Markers scale with the stroke, so the highlighted (thicker) edges get a smaller marker of
  // their own (debug.css switches to it) to keep every arrowhead the same size.
  svg.append(s('defs', {}, arrowMarker('dag-arrow', 7), arrowMarker('dag-arrow-related', 4.2)));

  const edgeLayer = s('g', { class: 'dag-edges' });
  for (const edge of layout.edges) {
    const from = layout.positions.get(edge.from);
    const to = layout.positions.get(edge.to);
    edgeLayer.append(
      s(
        'path',
        {
          class: 'dag-edge',
          'data-from': edge.from,
          'data-to': edge.to,
          d: edgePath(from, to),
          'marker-end': 'url(#dag-arrow)',
        },
        s('title', {}, `#${edge.from} → #${edge.to}`),
      ),
    );
  }
  svg.append(edgeLayer);

  const nodeLayer = s('g', { class: 'dag-nodes' });
  for (const step of steps) {
    nodeLayer.append(dagNode(step, layout.positions.get(step.index), onSelect));
  }
  svg.append(nodeLayer);
  return svg;
}

/** Mark `index` (or nothing, for null) as selected, with the edges touching it highlighted. */
export function markDagSelection(svg, index) {
  for (const el of svg.querySelectorAll('.dag-node.selected, .dag-edge.related')) {
    el.classList.remove('selected', 'related');
  }
  if (index === null || index === undefined) return null;
  const node = svg.querySelector(`.dag-node[data-step="${Number(index)}"]`);
  if (!node) return null;
  node.classList.add('selected');
  for (const edge of svg.querySelectorAll(`.dag-edge[data-from="${Number(index)}"], .dag-edge[data-to="${Number(index)}"]`)) {
    edge.classList.add('related');
  }
  return node;
}

function dagNode(step, pos, onSelect) {
  const kind = String(step.kind);
  const status = String(step.status);
  const name = step.name || kind;
  const duration = step.status === 'running' ? 'running' : formatDuration(elapsedMs(step));
  const detail = [
    `#${step.index} ${kind}: ${name}`,
    step.server ? `server ${step.server}` : null,
    `${statusLabel(status)}, ${duration}`,
    step.error ? `error: ${excerpt(step.error, 300)}` : null,
  ]
    .filter(Boolean)
    .join('\n');
  const select = () => onSelect(step.index);
  return s(
    'g',
    {
      class: `dag-node kind-${kind.replace(/[^a-z]/g, '')}`,
      'data-step': step.index,
      'data-kind': kind,
      'data-status': status,
      transform: `translate(${pos.x} ${pos.y})`,
      tabindex: 0,
      role: 'button',
      'aria-label': detail.replace(/\n/g, ', '),
      on: pressable(select),
    },
    s('title', {}, detail),
    shape(kind),
    s('rect', { class: 'dag-kind-bar', x: 0, y: 0, width: 5, height: NODE_H, rx: 2 }),
    s('text', { class: 'dag-label', x: 13, y: 18 }, excerpt(name, LABEL_CHARS)),
    s('text', { class: 'dag-sub', x: 13, y: 34 }, `#${step.index} · ${kind}${step.attempt > 1 ? ` · try ${step.attempt}` : ''} · ${duration}`),
  );
}

function arrowMarker(id, size) {
  return s(
    'marker',
    { id, viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: size, markerHeight: size, orient: 'auto' },
    s('path', { d: 'M0,0 L10,5 L0,10 z', class: id }),
  );
}

/** The node's outline: the shape says the kind at a glance, the colour says the status. */
function shape(kind) {
  switch (kind) {
    case 'plan':
    case 'sample':
      return s('rect', { class: 'dag-shape', x: 0, y: 0, width: NODE_W, height: NODE_H, rx: 14 });
    case 'observe': {
      const c = 12;
      const d = `M${c},0 H${NODE_W - c} L${NODE_W},${NODE_H / 2} L${NODE_W - c},${NODE_H} H${c} L0,${NODE_H / 2} Z`;
      return s('path', { class: 'dag-shape', d });
    }
    case 'answer':
      return s(
        'g',
        {},
        s('rect', { class: 'dag-shape', x: 0, y: 0, width: NODE_W, height: NODE_H, rx: 6 }),
        s('rect', { class: 'dag-shape-inner', x: 3, y: 3, width: NODE_W - 6, height: NODE_H - 6, rx: 4 }),
      );
    default:
      return s('rect', { class: 'dag-shape', x: 0, y: 0, width: NODE_W, height: NODE_H, rx: 3 });
  }
}

/** A curve from the bottom middle of `from` to the top middle of `to`. */
function edgePath(from, to) {
  const x1 = from.x + NODE_W / 2;
  const y1 = from.y + NODE_H;
  const x2 = to.x + NODE_W / 2;
  const y2 = to.y - 2;
  if (to.layer <= from.layer) {
    // Only possible for a cycle: loop around the right side instead of drawing through nodes.
    const xr = Math.max(from.x, to.x) + NODE_W + GAP_X / 2;
    return `M${from.x + NODE_W},${from.y + NODE_H / 2} C${xr},${from.y + NODE_H / 2} ${xr},${to.y + NODE_H / 2} ${to.x + NODE_W},${to.y + NODE_H / 2}`;
  }
  const bend = Math.min(GAP_Y, (y2 - y1) / 2 + 10);
  return `M${x1},${y1} C${x1},${y1 + bend} ${x2},${y2 - bend} ${x2},${y2}`;
}
