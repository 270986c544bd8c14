// The sign-in page (`/signin?next=/where/to`): the user pastes an API key, `POST /api/session`
// trades it for an HttpOnly session cookie, and the page goes to `next`, but only when `next`
// is a path on this origin: anything else (another site, `//host`, a backslash trick, a script
// URL) goes to `/`, so a link to this page cannot send a user somewhere else after signing in.

import { api } from './api.js';
import { byId, h, mount } from './dom.js';

/**
 * The path (with query and fragment) to go to after signing in: `raw` when it is a same-origin
 * path starting with one `/`, else `/`. Parsed the way the browser will navigate, so tabs,
 * newlines and backslashes cannot turn it into another origin.
 */
export function safeNext(raw) {
  if (typeof raw !== 'string' || !raw.startsWith('/') || raw.startsWith('//') || raw.includes('\\')) {
    return '/';
  }
  let url;
  try {
    url = new URL(raw, window.location.origin);
  } catch {
    return '/';
  }
  if (url.origin !== window.location.origin || url.pathname === '/signin') return '/';
  return `${url.pathname}${url.search}${url.hash}`;
}

const form = byId('signin-form');
const input = byId('signin-key');
const button = byId('signin-submit');
const message = byId('signin-message');

/** Show the outcome of an attempt (`data-outcome` says which, for people and tests alike). */
function show(outcome, kind, ...children) {
  message.dataset.outcome = outcome;
  mount(message, h('div', { class: `notice ${kind}` }, children));
}

async function signIn(event) {
  event.preventDefault();
  const key = input.value.trim();
  if (key === '') {
    show('empty', 'error', 'Paste an API key first.');
    return;
  }
  button.disabled = true;
  show('pending', 'info', 'Signing in…');
  try {
    await api('POST', '/api/session', { key }, { signIn: false });
    show('ok', 'info', 'Signed in.');
    window.location.replace(safeNext(new URLSearchParams(window.location.search).get('next')));
  } catch (err) {
    if (err.status === 401) {
      show('rejected', 'error', 'That key was not accepted.');
    } else if (err.status === 409 && err.code === 'auth_disabled') {
      show(
        'disabled',
        'info',
        'Sign-in is not needed: this server does not use keys (server.auth: none). ',
        h('a', { href: '/' }, 'Go to Switchboard'),
      );
    } else {
      show('error', 'error', `Could not sign in: ${err.message}`);
    }
  } finally {
    button.disabled = false;
  }
}

form.addEventListener('submit', signIn);
input.focus();
