// The server cards of /servers and the tools inside them, kept in step with the API.
//
// The page refreshes every few seconds; rebuilding the DOM each time would wipe whatever the
// user typed into the try-it forms. So cards and tool entries are keyed (server name, exposed
// tool name) and updated in place: status fields are rewritten, a tool entry is rebuilt only
// when its definition changed, and a tool that leaves the catalog while its server is still
// listed is marked as gone (form kept, calling disabled) rather than removed.

import { h } from './dom.js';
import { postJSON } from './api.js';
import { jsonView } from './json-view.js';
import { tryItForm } from './servers-tryit.js';

const ANNOTATION_BADGES = [
  ['readOnlyHint', true, 'read-only', 'Does not modify its environment.'],
  ['destructiveHint', true, 'destructive', 'May perform destructive updates.'],
  ['idempotentHint', true, 'idempotent', 'Calling it again with the same arguments has no further effect.'],
  ['openWorldHint', true, 'open world', 'Interacts with external entities.'],
];

const STATUS_WORDS = {
  ready: 'ready',
  connecting: 'starting (waiting for its first answer, up to init_timeout_ms)',
  reconnecting: 'reconnecting',
  failed: 'failed (circuit open, retried every minute)',
  disabled: 'disabled in config',
  stopping: 'stopping (removed; its process is being ended)',
  stopped: 'stopped',
};

/** A class-safe status token (`status-<status>` colours come from app.css). */
function statusToken(status) {
  return String(status ?? 'unknown').replace(/[^a-z_]/gi, '') || 'unknown';
}

function setText(el, text) {
  const value = text ?? '';
  if (el.textContent !== value) el.textContent = value;
  el.classList.toggle('is-empty', value === '');
}

/**
 * The badges of a tool's annotations, as the approval policy believes them: a server that is
 * not trusted for its annotations gets no reassuring badge (a `readOnlyHint` it claims is not
 * shown as read-only), only a note that its hints are not believed.
 */
function annotationBadges(annotations, approval) {
  const badges = [];
  const action = approval && typeof approval.action === 'string' ? approval.action : null;
  if (action === 'ask' || action === 'deny') {
    const words = action === 'ask' ? 'needs approval' : 'denied by policy';
    badges.push(h('span', { class: `badge approval approval-${action}`, title: String(approval.reason ?? '') }, words));
  }
  if (approval && approval.annotations_believed === false) {
    if (annotations && typeof annotations === 'object') {
      badges.push(h('span', { class: 'badge annotation annotation-unverified', title: 'Its server is not trusted, so its annotations can only raise risk.' }, 'hints not trusted'));
    }
    return badges;
  }
  if (!annotations || typeof annotations !== 'object') return badges;
  for (const [key, expected, label, why] of ANNOTATION_BADGES) {
    if (annotations[key] === expected) badges.push(h('span', { class: `badge annotation annotation-${label.replace(' ', '-')}`, title: why }, label));
  }
  if (annotations.destructiveHint === false && annotations.readOnlyHint !== true) {
    badges.push(h('span', { class: 'badge annotation annotation-non-destructive', title: 'Modifies its environment, but only additively.' }, 'non-destructive'));
  }
  return badges;
}

/** What identifies a tool's definition: a change rebuilds its entry (and its form). */
function signature(tool) {
  return JSON.stringify([tool.server, tool.tool, tool.title, tool.description, tool.input_schema, tool.output_schema, tool.annotations, tool.steering, tool.approval]);
}

/**
 * The warning on a tool whose description steers the model around other tools, quoting what
 * matched; `null` when it was not flagged. Text only: the quote is the server's words.
 */
function steeringNote(steering) {
  if (!steering || typeof steering !== 'object') return null;
  return h(
    'div',
    { class: 'notice warn tool-steering' },
    h('strong', {}, 'Steering: '),
    `its description ${String(steering.why ?? 'steers the model around other tools')}: `,
    h('q', { class: 'tool-steering-match' }, String(steering.matched ?? '')),
    ' (tools.drop_steering drops such tools).',
  );
}

/** One `.tool-entry`: name, annotations, description, try-it form and schemas. */
function toolEntry(tool) {
  const tryIt = tryItForm(tool);
  const title = typeof tool.title === 'string' && tool.title !== '' ? tool.title : tool.annotations?.title;
  const goneNote = h('div', { class: 'notice warn tool-gone-note', hidden: true }, 'This tool is no longer in the catalog; calling it is disabled until it comes back.');
  const schemas = [h('div', { class: 'schema-label' }, 'Input schema'), jsonView(tool.input_schema, { openDepth: 3 })];
  if (tool.output_schema) {
    schemas.push(h('div', { class: 'schema-label' }, 'Output schema'), jsonView(tool.output_schema, { openDepth: 1 }));
  }
  const el = h(
    'article',
    { class: 'tool-entry', 'data-tool': tool.name, 'data-server': tool.server },
    h(
      'header',
      { class: 'tool-head' },
      h('code', { class: 'tool-name' }, tool.name),
      typeof title === 'string' && title !== '' ? h('span', { class: 'tool-title' }, title) : null,
      tool.tool && tool.name !== `${tool.server}__${tool.tool}` ? h('span', { class: 'tool-origin', title: 'The name on its MCP server' }, `${tool.tool} on ${tool.server}`) : null,
      h('span', { class: 'tool-annotations' }, annotationBadges(tool.annotations, tool.approval)),
    ),
    h('p', { class: 'tool-description' }, typeof tool.description === 'string' ? tool.description : ''),
    steeringNote(tool.steering),
    goneNote,
    h(
      'div',
      { class: 'tool-body' },
      h('section', { class: 'tool-try' }, h('h4', {}, 'Try it'), tryIt.element),
      h('section', { class: 'tool-schema' }, schemas),
    ),
  );
  return {
    el,
    signature: signature(tool),
    setGone(gone) {
      el.dataset.gone = String(gone);
      goneNote.hidden = !gone;
      tryIt.setAvailable(!gone, 'This tool is not in the catalog right now.');
    },
  };
}

/** One `.server-card` with its status fields; `update` rewrites them in place. */
/** One held tool of `server`: the definition in force beside the one listed now, and Accept. */
function heldTool(server, entry) {
  const tool = String(entry.tool ?? '');
  const status = h('span', { class: 'held-status', role: 'status' });
  const accept = h('button', { type: 'button', class: 'primary held-accept' }, 'Accept this definition');
  const pane = (title, value, missing) => h('div', { class: 'held-pane' },
    h('h5', {}, title),
    value === null || value === undefined ? h('p', { class: 'muted' }, missing) : jsonView(value, { openDepth: 3, maxString: 4000 }));
  const el = h('div', { class: 'held-tool', 'data-tool': tool },
    h('div', { class: 'held-head' }, h('code', {}, tool)),
    h('div', { class: 'held-compare' },
      pane('Pinned (in force)', entry.accepted, 'Never accepted: a new tool.'),
      pane('Listed now (held)', entry.pending, 'Nothing listed.')),
    h('div', { class: 'held-actions' }, accept, status));
  accept.addEventListener('click', async () => {
    accept.disabled = true;
    status.textContent = 'Accepting…';
    try {
      await postJSON(`/api/mcp/servers/${encodeURIComponent(server)}/tools/${encodeURIComponent(tool)}/accept`, {});
      status.textContent = 'Accepted: pinned from now on, and offered to models.';
      el.dataset.state = 'accepted';
    } catch (err) {
      accept.disabled = false;
      status.textContent = err && err.message ? err.message : 'Could not accept.';
    }
  });
  return el;
}

function serverCard(name) {
  const fields = {
    status: h('span', { class: 'badge server-status' }),
    transport: h('span', { class: 'server-transport' }),
    protocol: h('span', { class: 'server-protocol' }),
    restarts: h('span', { class: 'server-restarts' }),
    failures: h('span', { class: 'server-failures' }),
    toolCount: h('span', { class: 'server-tool-count' }),
    pid: h('span', { class: 'server-pid' }),
    lastError: h('div', { class: 'server-last-error' }),
    stderr: h('pre', { class: 'server-stderr' }),
    logs: h('pre', { class: 'server-logs' }),
  };
  const logsBox = h('div', { class: 'server-logs-box', hidden: true }, h('h4', {}, 'Log messages (last lines, over MCP)'), fields.logs);
  const tools = h('div', { class: 'tool-list' });
  const dropped = h('ul', { class: 'dropped-tools' });
  const droppedBox = h('section', { class: 'dropped-box', hidden: true }, h('h4', {}, 'Dropped from the catalog'), dropped);
  const noTools = h('p', { class: 'no-tools muted', hidden: true });
  const held = h('div', { class: 'held-tools' });
  const heldBox = h('section', { class: 'held-box', hidden: true },
    h('h4', {}, 'Held for review'),
    h('p', { class: 'muted' }, 'These tools changed since they were pinned, or are new on a server that is not trusted. They are not offered until an admin accepts them.'),
    held);
  let heldSignature = '';
  const fact = (label, el) => h('div', { class: 'fact' }, h('dt', {}, label), h('dd', {}, el));
  const el = h(
    'section',
    { class: 'server-card', 'data-server': name },
    h('header', { class: 'server-head' }, h('h2', { class: 'server-name' }, name), fields.status),
    h(
      'dl',
      { class: 'server-facts' },
      fact('Transport', fields.transport),
      fact('Protocol', fields.protocol),
      fact('Restarts', fields.restarts),
      fact('Failures in a row', fields.failures),
      fact('Tools', fields.toolCount),
      fact('Process', fields.pid),
    ),
    h(
      'div',
      { class: 'server-diagnostics' },
      h('div', { class: 'server-problem' }, h('h4', {}, 'Last error'), fields.lastError),
      h('div', { class: 'server-stderr-box' }, h('h4', {}, 'Stderr (last lines)'), fields.stderr),
      logsBox,
    ),
    heldBox,
    droppedBox,
    noTools,
    tools,
  );
  return {
    el,
    tools,
    entries: new Map(),
    update(server) {
      const status = statusToken(server.status);
      el.dataset.status = status;
      fields.status.className = `badge server-status status-${status}`;
      setText(fields.status, STATUS_WORDS[status] ?? status);
      setText(fields.transport, server.transport ?? '');
      setText(fields.protocol, server.protocol_version ?? '');
      setText(fields.restarts, String(server.restarts ?? 0));
      setText(fields.failures, String(server.consecutive_failures ?? 0));
      setText(fields.toolCount, String(server.tool_count ?? 0));
      setText(fields.pid, server.pid ? `pid ${server.pid}` : '');
      setText(fields.lastError, server.last_error ?? '');
      const stderr = Array.isArray(server.stderr_tail) ? server.stderr_tail.join('\n') : '';
      setText(fields.stderr, stderr);
      const logs = Array.isArray(server.log_tail) ? server.log_tail.join('\n') : '';
      setText(fields.logs, logs);
      logsBox.hidden = logs === '';
      this.setHeld(Array.isArray(server.held_tools) ? server.held_tools : []);
      const silent = status === 'disabled'
        ? 'This server is disabled in the config.'
        : status === 'ready' ? 'This server lists no tools.' : 'No tools while the server is not connected.';
      noTools.textContent = silent;
      noTools.hidden = [...this.entries.values()].some((entry) => entry.el.dataset.gone !== 'true');
    },
    /** The held tools, each with its pinned and its listed definition side by side. */
    setHeld(list) {
      const signatureNow = JSON.stringify(list);
      if (signatureNow === heldSignature) return;
      heldSignature = signatureNow;
      held.replaceChildren(...list.map((entry) => heldTool(name, entry)));
      heldBox.hidden = list.length === 0;
    },
    setDropped(list) {
      dropped.replaceChildren(
        ...list.map((d) =>
          h(
            'li',
            { class: 'dropped-tool', 'data-server': d.server, 'data-tool': d.tool },
            h('code', { class: 'dropped-name' }, String(d.tool ?? '')),
            ': ',
            h('span', { class: 'dropped-reason' }, String(d.reason ?? '')),
          ),
        ),
      );
      droppedBox.hidden = list.length === 0;
    },
  };
}

/**
 * The catalog view inside `container` (`#server-list`). `update(servers, tools, dropped)`
 * applies a fresh snapshot of `GET /api/mcp/servers` and `GET /api/tools`.
 */
export function createCatalog(container) {
  const cards = new Map();
  let filter = '';

  const applyFilter = () => {
    for (const card of cards.values()) {
      let shown = 0;
      for (const [name, entry] of card.entries) {
        const text = `${name} ${entry.el.querySelector('.tool-description')?.textContent ?? ''}`.toLowerCase();
        const match = filter === '' || text.includes(filter);
        entry.el.hidden = !match;
        if (match) shown += 1;
      }
      card.el.classList.toggle('filtered-out', filter !== '' && shown === 0 && !card.el.dataset.server.toLowerCase().includes(filter));
    }
  };

  return {
    update(servers, tools, dropped) {
      const byServer = new Map();
      for (const tool of tools) {
        if (!byServer.has(tool.server)) byServer.set(tool.server, []);
        byServer.get(tool.server).push(tool);
      }
      const droppedBy = new Map();
      for (const d of dropped) {
        if (!droppedBy.has(d.server)) droppedBy.set(d.server, []);
        droppedBy.get(d.server).push(d);
      }
      // Servers in the status list, plus any server that only shows up in the catalog.
      const list = [...servers];
      for (const server of [...byServer.keys(), ...droppedBy.keys()]) {
        if (!list.some((s) => s.name === server)) list.push({ name: server, status: 'unknown' });
      }

      const seen = new Set();
      let previous = null;
      for (const server of list) {
        seen.add(server.name);
        let card = cards.get(server.name);
        if (!card) {
          card = serverCard(server.name);
          cards.set(server.name, card);
        }
        // Keep the API's order without moving nodes that are already in place (moving a node
        // would blur a focused input).
        const expectedNext = previous ? previous.nextSibling : container.firstChild;
        if (expectedNext !== card.el) container.insertBefore(card.el, expectedNext);
        previous = card.el;

        syncTools(card, (byServer.get(server.name) ?? []).slice().sort((a, b) => a.name.localeCompare(b.name)));
        card.setDropped(droppedBy.get(server.name) ?? []);
        card.update(server);
      }
      for (const [name, card] of cards) {
        if (!seen.has(name)) {
          card.el.remove();
          cards.delete(name);
        }
      }
      applyFilter();
    },
    /** Show only tools whose name or description contains `text` (case-insensitive). */
    setFilter(text) {
      filter = text.trim().toLowerCase();
      applyFilter();
    },
  };
}

function syncTools(card, tools) {
  const present = new Set();
  let previous = null;
  for (const tool of tools) {
    present.add(tool.name);
    let entry = card.entries.get(tool.name);
    const sig = signature(tool);
    if (entry && entry.signature !== sig) {
      const fresh = toolEntry(tool);
      entry.el.replaceWith(fresh.el);
      entry = fresh;
      card.entries.set(tool.name, entry);
    } else if (!entry) {
      entry = toolEntry(tool);
      card.entries.set(tool.name, entry);
    }
    entry.setGone(false);
    const expectedNext = previous ? previous.nextSibling : card.tools.firstChild;
    if (expectedNext !== entry.el) card.tools.insertBefore(entry.el, expectedNext);
    previous = entry.el;
  }
  for (const [name, entry] of card.entries) {
    if (!present.has(name)) entry.setGone(true);
  }
}
