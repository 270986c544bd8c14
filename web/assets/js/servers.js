// Entry module of /servers, the catalog page: every MCP server with its status and tools, a
// "try it" form per tool, and the config reload button. Statuses and the catalog are fetched
// again every few seconds; the catalog view updates in place so forms keep what was typed.
//
// Server status (with stderr tails) and reloads are for administrators: anyone else gets 403
// from `GET /api/mcp/servers` and sees a plain message saying so instead of an error.

import { byId, h, mount } from './dom.js';
import { getJSON, ApiError } from './api.js';
import { createCatalog } from './servers-catalog.js';
import { setupReload } from './servers-reload.js';
import { showContext } from './servers-context.js';

const REFRESH_MS = 3000;

const catalog = createCatalog(byId('server-list'));
const summary = byId('catalog-summary');
const refreshError = byId('refresh-error');
let timer = null;
let generation = 0;
let loading = null;
let loadedOnce = false;
/** Set when the API says this page is for administrators; nothing is fetched after that. */
let forbidden = false;

/** Replace the page's content with a plain "administrators only" message. */
function showAdminOnly() {
  forbidden = true;
  clearTimeout(timer);
  refreshError.hidden = true;
  byId('no-servers').hidden = true;
  byId('reload-config').hidden = true;
  byId('tool-filter').hidden = true;
  mount(summary);
  mount(
    byId('server-list'),
    h(
      'p',
      { id: 'admin-only', class: 'notice info', role: 'status' },
      'The MCP servers page (server status, logs and config reload) is for administrators only. ',
      'Ask an administrator if you need it; the chat can still use the tools your role allows.',
    ),
  );
}

/** Fetch servers and tools once and apply them; failures show a notice and keep the old view. */
function refresh() {
  if (loading) return loading;
  loading = (async () => {
    try {
      const [servers, tools] = await Promise.all([getJSON('/api/mcp/servers'), getJSON('/api/tools')]);
      const serverList = Array.isArray(servers?.servers) ? servers.servers : [];
      const toolList = Array.isArray(tools?.tools) ? tools.tools : [];
      const dropped = Array.isArray(tools?.dropped) ? tools.dropped : [];
      catalog.update(serverList, toolList, dropped);
      const ready = serverList.filter((s) => s.status === 'ready').length;
      mount(
        summary,
        `${serverList.length} server${serverList.length === 1 ? '' : 's'} (${ready} ready) · `,
        `${toolList.length} tool${toolList.length === 1 ? '' : 's'}`,
        dropped.length > 0 ? ` · ${dropped.length} dropped` : '',
        h('span', { class: 'muted' }, ` · updated ${new Date().toLocaleTimeString()}`),
      );
      byId('no-servers').hidden = serverList.length > 0;
      refreshError.hidden = true;
      loadedOnce = true;
    } catch (err) {
      if (err instanceof ApiError && err.status === 403) {
        showAdminOnly();
        return;
      }
      refreshError.hidden = false;
      refreshError.textContent = loadedOnce
        ? `Could not refresh the server list (${err.message}); showing the last known state and retrying.`
        : `Could not load the server list: ${err.message}`;
    } finally {
      loading = null;
    }
  })();
  return loading;
}

/**
 * Refresh now, then every REFRESH_MS while the page is visible. Only the latest call schedules
 * the next one, so a tick started by `visibilitychange` never runs a second loop beside the first.
 */
async function tick() {
  if (forbidden) return;
  generation += 1;
  const mine = generation;
  clearTimeout(timer);
  if (!document.hidden) await refresh();
  if (mine === generation && !forbidden) timer = setTimeout(tick, REFRESH_MS);
}

document.addEventListener('visibilitychange', () => {
  if (!document.hidden) tick();
});
byId('tool-filter').addEventListener('input', (event) => catalog.setFilter(event.target.value));
setupReload(byId('reload-config'), byId('reload-result'), () => Promise.all([refresh(), showContext()]));
tick();
showContext();
