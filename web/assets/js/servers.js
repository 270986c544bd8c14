// Entry module of /servers, the catalog page: every MCP server with its status and tools, a
// "try it" form per tool, and the config reload button. Statuses and the catalog are fetched
// again every few seconds; the catalog view updates in place so forms keep what was typed.

import { byId, h, mount } from './dom.js';
import { getJSON } from './api.js';
import { createCatalog } from './servers-catalog.js';
import { setupReload } from './servers-reload.js';

const REFRESH_MS = 3000;

const catalog = createCatalog(byId('server-list'));
const summary = byId('catalog-summary');
const refreshError = byId('refresh-error');
let timer = null;
let generation = 0;
let loading = null;
let loadedOnce = false;

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
  generation += 1;
  const mine = generation;
  clearTimeout(timer);
  if (!document.hidden) await refresh();
  if (mine === generation) timer = setTimeout(tick, REFRESH_MS);
}

document.addEventListener('visibilitychange', () => {
  if (!document.hidden) tick();
});
byId('tool-filter').addEventListener('input', (event) => catalog.setFilter(event.target.value));
setupReload(byId('reload-config'), byId('reload-result'), () => refresh());
tick();
