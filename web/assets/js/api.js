// Talking to Switchboard's JSON API from the pages: one error type carrying the server's
// message (every error has the shape {error: {code, message, details}}), and Server-Sent Events
// read from a fetch body so a POST (chat) can stream too.
//
// A 401 means the browser has no valid session (never signed in, signed out elsewhere, key
// revoked or expired): every call made through here then sends the page to the sign-in page,
// which brings the user back to where they were. This is the only place that decides that.

/** An API failure with the server's user-facing message and details. */
export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

async function failure(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    // not JSON: fall through to the status text
  }
  const err = body && body.error;
  if (err && typeof err.message === 'string') {
    return new ApiError(response.status, err.code, err.message, err.details);
  }
  return new ApiError(response.status, 'http', `${response.status} ${response.statusText}`);
}

/** Set once the page is on its way to the sign-in page, so parallel 401s navigate only once. */
let leaving = false;

/**
 * `/signin?next=<this page's path and query>`: where a page sends a user without a session.
 * The sign-in page checks `next` again before following it.
 */
export function signInUrl() {
  const here = `${window.location.pathname}${window.location.search}`;
  return `/signin?next=${encodeURIComponent(here)}`;
}

/**
 * Go to `url` for good (signing out, say): a 401 that arrives while the browser is on its way
 * there must not start a second navigation that would win over this one.
 */
export function leavePage(url) {
  if (leaving) return;
  leaving = true;
  window.location.assign(url);
}

/**
 * Leave for the sign-in page. The returned promise never settles: the page is going away, and
 * an error here would only flash a message (or an unhandled rejection) on the way out.
 */
function toSignIn() {
  leavePage(signInUrl());
  return new Promise(() => {});
}

/**
 * `fetch` with `body` (when given) sent as JSON; resolves to a 2xx response. A network failure
 * and a refusal both become ApiError; an abort stays an AbortError. A 401 goes to the sign-in
 * page unless `options.signIn` is `false` (the sign-in page itself, which handles its own 401).
 */
async function request(method, url, body, headers, options = {}) {
  const init = { method, headers, signal: options.signal };
  if (body !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(url, init);
  } catch (err) {
    if (err.name === 'AbortError') throw err;
    throw new ApiError(0, 'network', 'Switchboard is not reachable (network error).');
  }
  if (response.status === 401 && options.signIn !== false) return toSignIn();
  if (!response.ok) throw await failure(response);
  return response;
}

/**
 * `fetch` + JSON both ways; throws ApiError with the server's message on non-2xx. `options`:
 * `signal` (abort), `signIn: false` (a 401 is thrown like any error instead of going to sign in).
 */
export async function api(method, url, body, options = {}) {
  const response = await request(method, url, body, {}, options);
  if (response.status === 204) return null;
  const text = await response.text();
  return text === '' ? null : JSON.parse(text);
}

export const getJSON = (url, options) => api('GET', url, undefined, options);
export const postJSON = (url, body, options) => api('POST', url, body, options);

/**
 * POST `body` to `url` and call `onEvent(name, data)` for each SSE event (data parsed as JSON
 * when it is JSON). Resolves when the stream ends; rejects with ApiError when the request is
 * refused. `signal` aborts the stream (the server treats a closed stream as a disconnect).
 */
export async function streamEvents(url, { method = 'POST', body, signal } = {}, onEvent) {
  const response = await request(method, url, body, { accept: 'text/event-stream' }, { signal });
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  let name = 'message';
  let data = [];
  const dispatch = () => {
    if (data.length === 0) {
      name = 'message';
      return;
    }
    const raw = data.join('\n');
    let parsed = raw;
    try {
      parsed = JSON.parse(raw);
    } catch {
      // keep the raw text
    }
    onEvent(name, parsed);
    name = 'message';
    data = [];
  };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let newline;
    while ((newline = buffer.search(/\r\n|\r|\n/)) >= 0) {
      const line = buffer.slice(0, newline);
      buffer = buffer.slice(newline + (buffer.startsWith('\r\n', newline) ? 2 : 1));
      if (line === '') {
        dispatch();
      } else if (line.startsWith(':')) {
        // comment / keep-alive
      } else {
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        let val = colon < 0 ? '' : line.slice(colon + 1);
        if (val.startsWith(' ')) val = val.slice(1);
        if (field === 'event') name = val;
        else if (field === 'data') data.push(val);
      }
    }
  }
  dispatch();
}
