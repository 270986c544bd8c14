// Page-level notices of the chat page (`#chat-notices`): problems that are not about one answer,
// such as "no model can answer" or a request the server refused. Each notice has a key, so the
// same problem is shown once and can be withdrawn when it goes away.

import { h, byId } from './dom.js';

/**
 * Show (or replace) the notice `key`: `level` is error, warn or info; `text` is plain words.
 * `dismissible` notices get a close button; the others stay until `clearNotice(key)`.
 */
export function showNotice(key, level, text, { dismissible = true } = {}) {
  const box = byId('chat-notices');
  clearNotice(key);
  const notice = h('div', { class: `notice ${level}`, role: level === 'error' ? 'alert' : 'status', 'data-notice': key },
    h('span', { class: 'notice-text' }, text),
    dismissible
      ? h('button', {
        type: 'button',
        class: 'link-button notice-close',
        title: 'Dismiss',
        'aria-label': 'Dismiss',
        on: { click: () => notice.remove() },
      }, '×')
      : null);
  box.append(notice);
  return notice;
}

/** Withdraw the notice `key`, if it is shown. */
export function clearNotice(key) {
  for (const el of byId('chat-notices').querySelectorAll('.notice')) {
    if (el.dataset.notice === key) el.remove();
  }
}

/** The user-facing message of any error (ApiError carries the server's own words). */
export function errorText(err) {
  if (err && typeof err.message === 'string' && err.message !== '') return err.message;
  return String(err);
}
