// Who is signed in, in the header of every page: `GET /api/session` once per page load, shown
// as "Signed in as USER (ROLE)" with a Sign out button (`DELETE /api/session`, then the sign-in
// page). With `server.auth: none` nobody signs in: the header says "local" and has no button.
//
// Loaded by every page's HTML; other modules import `session` (a promise of the session, or
// null when it could not be read) to adapt to the caller, e.g. the Audit tab of /debug. Without
// a valid session the request gets 401 and api.js sends the page to the sign-in page.

import { api, getJSON, leavePage } from './api.js';
import { h, mount } from './dom.js';

/** The caller of this page: `{user, role, admin, key_id, auth, expires_at}`, or null. */
export const session = getJSON('/api/session').catch(() => null);

/** The header's slot for the session, made when a page has none of its own. */
function slot() {
  const existing = document.getElementById('session-info');
  if (existing) return existing;
  const header = document.querySelector('header.topbar');
  if (!header) return null;
  const el = h('div', { id: 'session-info', class: 'session-info' });
  header.append(el);
  return el;
}

/** End the browser session, then go to the sign-in page; a failure is said next to the button. */
async function signOut(button, status) {
  button.disabled = true;
  status.textContent = '';
  try {
    await api('DELETE', '/api/session');
    leavePage('/signin');
  } catch (err) {
    button.disabled = false;
    status.textContent = `Could not sign out: ${err.message}`;
  }
}

/** The header's content for `current`. */
function render(el, current) {
  el.dataset.auth = current.auth;
  if (current.auth === 'none') {
    mount(
      el,
      h(
        'span',
        {
          class: 'session-user session-local',
          title: 'server.auth is none: nobody signs in, every local caller is the administrator',
        },
        'local',
      ),
    );
    return;
  }
  const status = h('span', { class: 'session-error', role: 'alert' });
  const button = h(
    'button',
    { type: 'button', id: 'sign-out', class: 'sign-out', on: { click: () => signOut(button, status) } },
    'Sign out',
  );
  mount(
    el,
    h(
      'span',
      { class: 'session-user' },
      'Signed in as ',
      h('b', { class: 'session-name' }, current.user),
      ' (',
      h('span', { class: 'session-role' }, current.role),
      ')',
    ),
    button,
    status,
  );
}

session.then((current) => {
  const el = slot();
  if (el && current) render(el, current);
});
