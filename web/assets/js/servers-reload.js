// The config reload button of /servers: `POST /api/config/reload`, then the report in plain
// words (servers started, stopped, restarted; settings that need a restart) or, when the file
// is invalid and nothing changed, every error with its file, line and key path.

import { h, mount } from './dom.js';
import { postJSON } from './api.js';

function names(list) {
  return Array.isArray(list) ? list.map(String) : [];
}

function reportLine(label, list, cls) {
  if (list.length === 0) return null;
  return h('li', { class: cls }, `${label}: `, list.map((name, i) => [i > 0 ? ', ' : '', h('code', {}, name)]));
}

/** The success report as DOM. */
function renderReport(report) {
  const servers = (report && report.servers) || {};
  const started = names(servers.started);
  const stopped = names(servers.stopped);
  const restarted = names(servers.restarted);
  const unchanged = names(servers.unchanged);
  const restartRequired = names(report && report.restart_required);
  const changed = started.length + stopped.length + restarted.length;
  const headline = changed === 0
    ? 'Config reloaded: no MCP server changed.'
    : `Config reloaded: ${changed} MCP server${changed === 1 ? '' : 's'} changed.`;
  return [
    h('div', { class: 'reload-headline' }, headline),
    h(
      'ul',
      { class: 'reload-report' },
      reportLine('Added and started', started, 'reload-started'),
      reportLine('Removed and stopped', stopped, 'reload-stopped'),
      reportLine('Changed and restarted', restarted, 'reload-restarted'),
      unchanged.length > 0 ? h('li', { class: 'reload-unchanged' }, `Unchanged: ${unchanged.length}`) : null,
      restartRequired.length > 0
        ? reportLine('Changed but only applied after a restart of Switchboard', restartRequired, 'reload-restart-required')
        : null,
    ),
  ];
}

/** One config error, `file:line:col: key.path: message`, with the location set apart. */
function configError(text) {
  const match = /^(.+?:\d+(?::\d+)?): ([\s\S]*)$/.exec(text);
  if (!match) return h('li', {}, text);
  return h('li', {}, h('code', { class: 'config-error-location' }, match[1]), ' ', match[2]);
}

/**
 * Wire `button` to reload the config and show the outcome as a `.notice` inside `out`
 * (`#reload-result`, whose `data-outcome` is pending, ok or error);
 * `onReloaded` runs after a successful reload (to refresh the page at once).
 */
export function setupReload(button, out, onReloaded) {
  const show = (kind, outcome, ...children) => {
    out.dataset.outcome = outcome;
    mount(out, h('div', { class: `notice ${kind} reload-${outcome}` }, children));
  };
  button.addEventListener('click', async () => {
    button.disabled = true;
    show('info', 'pending', 'Reloading the config…');
    try {
      const report = await postJSON('/api/config/reload');
      show('info', 'ok', renderReport(report));
      onReloaded();
    } catch (err) {
      const details = Array.isArray(err.details) ? err.details.map(String) : [];
      const headline = err.status === 400
        ? `The config file is invalid, so nothing was changed (${details.length} error${details.length === 1 ? '' : 's'}):`
        : `The config could not be reloaded: ${err.message}`;
      show(
        'error',
        'error',
        h('div', { class: 'reload-headline' }, headline),
        details.length > 0 ? h('ul', { class: 'reload-errors' }, details.map(configError)) : null,
      );
    } finally {
      button.disabled = false;
    }
  });
}
