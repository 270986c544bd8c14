// Entry module of the trace inspector. `/debug`, `/debug/audit` and `/debug/runs/{id}` serve the
// same page; the path decides which view this module starts: the runs list (debug-runs.js), the
// audit log (debug-audit.js, administrators only) or one run (debug-run.js). Anything else under
// /debug gets a plain message instead of a blank page.
//
// Administrators get tabs above the two lists (Runs, Audit); everyone else gets no tabs, since
// the audit log is not theirs to read.

import { byId, h, mount } from './dom.js';
import { showRunList } from './debug-runs.js';
import { showRun } from './debug-run.js';
import { showAudit } from './debug-audit.js';
import { session } from './session.js';

const root = byId('app');

// Every view handles its own failures; this is the net under them, so a bug shows up as a
// message on the page instead of only in the console.
window.addEventListener('unhandledrejection', (event) => {
  if (event.reason && event.reason.name === 'AbortError') return;
  const message = event.reason && event.reason.message ? event.reason.message : String(event.reason);
  root.prepend(h('div', { class: 'notice error', role: 'alert' }, `Something went wrong on this page: ${message}`));
});

const TABS = [
  ['runs', '/debug', 'Runs'],
  ['audit', '/debug/audit', 'Audit'],
];

/** The Runs/Audit tabs in `nav`, with `current` marked, once the session says "admin". */
async function showTabs(nav, current) {
  const caller = await session;
  if (!caller || !caller.admin) return;
  mount(
    nav,
    TABS.map(([tab, href, label]) =>
      h('a', { class: 'debug-tab', href, 'data-tab': tab, 'aria-current': tab === current ? 'page' : null }, label),
    ),
  );
  nav.hidden = false;
}

const path = window.location.pathname.replace(/\/+$/, '');
const runPath = /^\/debug\/runs\/([^/]+)$/.exec(path);
const tabs = h('nav', { id: 'debug-tabs', class: 'debug-tabs', 'aria-label': 'Debug views', hidden: true });
const view = h('div', { class: 'debug-view' });

try {
  if (path === '/debug') {
    mount(root, tabs, view);
    showTabs(tabs, 'runs');
    showRunList(view);
  } else if (path === '/debug/audit') {
    mount(root, tabs, view);
    showTabs(tabs, 'audit');
    showAudit(view);
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
