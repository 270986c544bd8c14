// Entry module of the trace inspector. `/debug` and `/debug/runs/{id}` serve the same page;
// the path decides which view this module starts: the runs list (debug-runs.js) or one run
// (debug-run.js). Anything else under /debug gets a plain message instead of a blank page.

import { byId, h, mount } from './dom.js';
import { showRunList } from './debug-runs.js';
import { showRun } from './debug-run.js';

const root = byId('app');

// Every view handles its own failures; this is the net under them, so a bug shows up as a
// message on the page instead of only in the console.
window.addEventListener('unhandledrejection', (event) => {
  if (event.reason && event.reason.name === 'AbortError') return;
  const message = event.reason && event.reason.message ? event.reason.message : String(event.reason);
  root.prepend(h('div', { class: 'notice error', role: 'alert' }, `Something went wrong on this page: ${message}`));
});

const path = window.location.pathname.replace(/\/+$/, '');
const runPath = /^\/debug\/runs\/([^/]+)$/.exec(path);

try {
  if (path === '/debug') {
    showRunList(root);
  } else if (runPath) {
    showRun(root, decodeURIComponent(runPath[1]));
  } else {
    mount(
      root,
      h('div', { class: 'notice error', role: 'alert' }, 'There is no debug page at this address.'),
      h('p', {}, h('a', { href: '/debug' }, 'See all runs')),
    );
  }
} catch (err) {
  // A bug in a view must still leave a message on the page.
  mount(root, h('div', { class: 'notice error', role: 'alert' }, `The debug page failed to start: ${err.message}`));
}
