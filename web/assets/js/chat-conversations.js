// The conversation list of the chat page (`#conversation-list`): newest first, a page at a time,
// with rename (inline: the title becomes a text field) and delete (inline confirmation, so
// nothing is lost to a stray click). Conversations are created by the first message of a new
// chat, so "New chat" only clears the page; the list learns about the new one afterwards.

import { h, byId, mount, formatTime } from './dom.js';
import { getJSON, api } from './api.js';
import { showNotice, errorText } from './chat-notices.js';

const PAGE = 50;

/** The sidebar list; `onOpen(id)` opens a conversation, `onDeleted(id)` reacts to a deletion. */
export class ConversationList {
  constructor({ onOpen, onDeleted }) {
    this.onOpen = onOpen;
    this.onDeleted = onDeleted;
    this.listEl = byId('conversation-list');
    this.moreEl = byId('conversation-more');
    this.current = null;
    this.cursor = null;
    this.conversations = [];
    this.moreEl.addEventListener('click', () => this.loadMore());
  }

  /** Reload the first page (after a run: a new conversation, a new order, a new title). */
  async refresh() {
    try {
      const page = await getJSON(`/api/conversations?limit=${PAGE}`);
      this.conversations = page.conversations || [];
      this.cursor = page.next_cursor || null;
      this.render();
    } catch (err) {
      showNotice('conversations', 'error', `Could not load the conversations: ${errorText(err)}`);
    }
  }

  async loadMore() {
    if (!this.cursor) return;
    this.moreEl.disabled = true;
    try {
      const page = await getJSON(`/api/conversations?limit=${PAGE}&cursor=${encodeURIComponent(this.cursor)}`);
      const known = new Set(this.conversations.map((c) => c.id));
      this.conversations.push(...(page.conversations || []).filter((c) => !known.has(c.id)));
      this.cursor = page.next_cursor || null;
      this.render();
    } catch (err) {
      showNotice('conversations', 'error', `Could not load more conversations: ${errorText(err)}`);
    } finally {
      this.moreEl.disabled = false;
    }
  }

  /** Mark `id` (or none) as the open conversation. */
  setCurrent(id) {
    this.current = id;
    for (const item of this.listEl.querySelectorAll('.conversation-item')) {
      const active = item.dataset.conversationId === id;
      item.classList.toggle('active', active);
      if (active) item.setAttribute('aria-current', 'true');
      else item.removeAttribute('aria-current');
    }
  }

  /** The title of `id`, when it is listed. */
  titleOf(id) {
    const found = this.conversations.find((c) => c.id === id);
    return found ? found.title : null;
  }

  render() {
    if (this.conversations.length === 0) {
      mount(this.listEl, h('li', { class: 'conversation-empty muted' }, 'No conversations yet.'));
    } else {
      mount(this.listEl, this.conversations.map((c) => this.item(c)));
    }
    this.moreEl.hidden = !this.cursor;
    this.setCurrent(this.current);
  }

  item(conversation) {
    const li = h('li', { class: 'conversation-item', 'data-conversation-id': conversation.id });
    this.showItem(li, conversation);
    return li;
  }

  showItem(li, conversation) {
    const title = conversation.title || 'Untitled';
    mount(li,
      h('button', {
        type: 'button',
        class: 'conversation-open',
        title,
        on: { click: () => this.onOpen(conversation.id) },
      },
      h('span', { class: 'conversation-title' }, title),
      h('span', { class: 'conversation-time' }, formatTime(conversation.updated_at))),
      h('span', { class: 'conversation-actions' },
        h('button', {
          type: 'button',
          class: 'rename-conversation icon-button',
          title: 'Rename',
          'aria-label': `Rename ${title}`,
          on: { click: () => this.startRename(li, conversation) },
        }, '✎'),
        h('button', {
          type: 'button',
          class: 'delete-conversation icon-button danger',
          title: 'Delete',
          'aria-label': `Delete ${title}`,
          on: { click: () => this.confirmDelete(li, conversation) },
        }, '✕')));
  }

  startRename(li, conversation) {
    const input = h('input', {
      type: 'text',
      class: 'rename-input',
      value: conversation.title || '',
      maxlength: 200,
      'aria-label': 'New title',
    });
    let done = false;
    const finish = async (save) => {
      if (done) return;
      done = true;
      const title = input.value.trim();
      if (!save || title === '' || title === conversation.title) {
        this.showItem(li, conversation);
        return;
      }
      input.disabled = true;
      try {
        const updated = await api('PATCH', `/api/conversations/${encodeURIComponent(conversation.id)}`, { title });
        Object.assign(conversation, updated);
        document.dispatchEvent(new CustomEvent('conversation-renamed', { detail: conversation }));
      } catch (err) {
        showNotice('rename', 'error', `Could not rename the conversation: ${errorText(err)}`);
      }
      this.showItem(li, conversation);
    };
    input.addEventListener('keydown', (event) => {
      if (event.key === 'Enter') {
        event.preventDefault();
        finish(true);
      } else if (event.key === 'Escape') {
        finish(false);
      }
    });
    input.addEventListener('blur', () => finish(true));
    mount(li,
      input,
      h('span', { class: 'conversation-actions' },
        h('button', { type: 'button', class: 'rename-save icon-button', on: { mousedown: (e) => e.preventDefault(), click: () => finish(true) } }, 'Save'),
        h('button', { type: 'button', class: 'rename-cancel icon-button', on: { mousedown: (e) => e.preventDefault(), click: () => finish(false) } }, 'Cancel')));
    input.focus();
    input.select();
  }

  confirmDelete(li, conversation) {
    const yes = h('button', {
      type: 'button',
      class: 'confirm-delete icon-button danger',
      on: { click: () => this.remove(li, conversation) },
    }, 'Delete');
    mount(li,
      h('span', { class: 'delete-question' }, `Delete “${conversation.title || 'Untitled'}”? Its runs stay in /debug.`),
      h('span', { class: 'conversation-actions' },
        yes,
        h('button', { type: 'button', class: 'cancel-delete icon-button', on: { click: () => this.showItem(li, conversation) } }, 'Cancel')));
    yes.focus();
  }

  async remove(li, conversation) {
    try {
      await api('DELETE', `/api/conversations/${encodeURIComponent(conversation.id)}`);
    } catch (err) {
      if (err.status !== 404) {
        showNotice('delete', 'error', `Could not delete the conversation: ${errorText(err)}`);
        this.showItem(li, conversation);
        return;
      }
    }
    this.conversations = this.conversations.filter((c) => c.id !== conversation.id);
    this.render();
    this.onDeleted(conversation.id);
  }
}
