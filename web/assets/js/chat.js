// Chat page (`/`): the entry module. It wires the pickers, the conversation list and the
// composer together, keeps the open conversation in the URL (`/?c=ID`, so a reload or a shared
// link opens the same place), sends messages to `POST /api/chat`, and draws each answer with a
// `RunView` as its events stream in.
//
// Leaving a conversation while an answer streams only stops listening: the run goes on on the
// server, and opening the conversation again follows it (`GET /api/runs/{id}/events`) until it
// ends. Only the Stop button cancels a run.

import { h, byId, mount } from './dom.js';
import { getJSON, postJSON, streamEvents, ApiError } from './api.js';
import { initPickers, selectedModel, selectedAgent, choose } from './chat-pickers.js';
import { ConversationList } from './chat-conversations.js';
import { RunView } from './chat-run.js';
import { showNotice, clearNotice, errorText } from './chat-notices.js';
import { initContext, takeAttachments } from './chat-context.js';

/** Suggestions on an empty chat; the first one makes two tool calls run in parallel. */
const SUGGESTIONS = [
  'What is 17*23 and what time is it?',
  'What time is it in Tokyo?',
  'Summarise my notes as a table.',
];

const state = {
  /** The open conversation, or null for a new chat. */
  conversationId: null,
  /** The run being followed: `{controller, view, runId}`. */
  live: null,
  /** Bumped on every navigation, so a slow load of an old conversation cannot draw over a new one. */
  generation: 0,
  /** Stored answers seen once, so their full runs load only when scrolled into view. */
  observer: null,
};

let conversations;

function messagesEl() {
  return byId('messages');
}

/** Whether the view is scrolled to (nearly) the bottom, so new text should keep it there. */
function nearBottom() {
  const el = messagesEl();
  return el.scrollHeight - el.scrollTop - el.clientHeight < 80;
}

function scrollToBottom() {
  const el = messagesEl();
  el.scrollTop = el.scrollHeight;
}

/** Whether new content keeps the view at the bottom: yes, unless the user scrolled up to read. */
let stick = true;

/** Keep `view` in sight while it grows. */
function follow(view) {
  stick = true;
  view.onChange = () => {
    if (stick) scrollToBottom();
  };
}

function userMessage(text) {
  return h('article', { class: 'message user' },
    h('header', { class: 'message-head' }, h('span', { class: 'message-role' }, 'You')),
    h('div', { class: 'user-text' }, text));
}

function showEmpty() {
  mount(messagesEl(), h('div', { class: 'chat-empty' },
    h('h2', {}, 'Ask anything'),
    h('p', { class: 'muted' }, 'The model can use every tool of the connected MCP servers (or the chosen agent’s tools). Each call shows up live as a card; independent calls run side by side.'),
    h('div', { class: 'suggestions' }, SUGGESTIONS.map((text) => h('button', {
      type: 'button',
      class: 'suggestion',
      on: {
        click: () => {
          const input = byId('chat-input');
          input.value = text;
          input.focus();
        },
      },
    }, text)))));
}

function setHeading(title) {
  const heading = byId('conversation-heading');
  mount(heading, title || 'New chat');
  document.title = `${title ? `${title} · ` : ''}Chat · Switchboard`;
}

/** While a run streams, the composer waits and Stop is offered. */
function setRunning(running) {
  const input = byId('chat-input');
  input.disabled = running;
  byId('send-button').disabled = running;
  byId('stop-button').disabled = !(running && state.live && state.live.runId);
  byId('composer').classList.toggle('busy', running);
}

/** Stop listening to the run being followed (it keeps running on the server). */
function detach() {
  if (state.live) {
    state.live.controller.abort();
    state.live = null;
  }
  setRunning(false);
}

function urlFor(id) {
  return id ? `/?c=${encodeURIComponent(id)}` : '/';
}

/** Show a new, empty chat. */
function newChat({ push = true } = {}) {
  state.generation += 1;
  detach();
  state.conversationId = null;
  conversations.setCurrent(null);
  setHeading(null);
  showEmpty();
  if (push && window.location.search !== '') window.history.pushState({ c: null }, '', urlFor(null));
  byId('chat-input').focus();
}

/** Open conversation `id`: its messages, and for each answer its tool calls and outcome. */
async function openConversation(id, { push = true } = {}) {
  state.generation += 1;
  const generation = state.generation;
  detach();
  state.conversationId = id;
  conversations.setCurrent(id);
  setHeading(conversations.titleOf(id) || 'Loading…');
  if (push) window.history.pushState({ c: id }, '', urlFor(id));
  mount(messagesEl(), h('div', { class: 'muted loading' }, 'Loading the conversation…'));
  let detail;
  try {
    detail = await getJSON(`/api/conversations/${encodeURIComponent(id)}`);
  } catch (err) {
    if (generation !== state.generation) return;
    const missing = err instanceof ApiError && (err.status === 404 || err.status === 400);
    showNotice('open', 'error', missing
      ? `That conversation does not exist (any more): ${errorText(err)}`
      : `Could not open the conversation: ${errorText(err)}`);
    state.conversationId = null;
    conversations.setCurrent(null);
    setHeading(null);
    showEmpty();
    window.history.replaceState({ c: null }, '', urlFor(null));
    return;
  }
  if (generation !== state.generation) return;
  clearNotice('open');
  setHeading(detail.title);
  drawConversation(detail, generation);
}

/**
 * One user message and one answer per run, in order. Answers appear at once from the stored
 * text; their tool calls load when they scroll into view (old conversations can hold many
 * runs). A run without a stored answer (failed, cancelled, still running) loads at once.
 */
function drawConversation(detail, generation) {
  if (state.observer) state.observer.disconnect();
  const views = new Map();
  state.observer = new IntersectionObserver((entries) => {
    for (const entry of entries) {
      if (!entry.isIntersecting) continue;
      state.observer.unobserve(entry.target);
      const view = views.get(entry.target);
      if (view) view.loadStored({ attempts: 1, answer: view.storedAnswer, always: true });
    }
  }, { root: messagesEl(), rootMargin: '600px 0px' });

  const nodes = [];
  const runs = [];
  const answers = new Map();
  for (const message of detail.messages || []) {
    if (message.role === 'assistant' && message.run_id) answers.set(message.run_id, message.content);
  }
  for (const message of detail.messages || []) {
    if (message.role === 'user') {
      nodes.push(userMessage(message.content));
      if (message.run_id) {
        const view = new RunView();
        view.setRunId(message.run_id);
        view.storedAnswer = answers.get(message.run_id);
        view.showStored(view.storedAnswer);
        views.set(view.el, view);
        runs.push(view);
        nodes.push(view.el);
      }
    } else if (message.role === 'assistant' && !message.run_id) {
      const view = new RunView();
      view.runFinished({ status: 'succeeded', answer: message.content });
      nodes.push(view.el);
    }
  }
  if (nodes.length === 0) {
    showEmpty();
    return;
  }
  mount(messagesEl(), nodes);
  scrollToBottom();
  runs.forEach((view, i) => {
    const last = i === runs.length - 1;
    if (view.storedAnswer === undefined || last) {
      resumeOrLoad(view, last, generation);
    } else {
      state.observer.observe(view.el);
    }
  });
}

/**
 * Load a stored run; if it is still running (the page was reloaded mid-answer), follow it live.
 * `last` runs also set the pickers to what the conversation used.
 */
async function resumeOrLoad(view, last, generation) {
  let run;
  try {
    run = await getJSON(`/api/runs/${encodeURIComponent(view.runId)}`);
  } catch (err) {
    view.storedFailed(err);
    return;
  }
  if (generation !== state.generation) return;
  if (last) choose({ model: run.model, agent: run.agent });
  if (run.status !== 'running') {
    view.fillFromRun(run, view.storedAnswer);
    return;
  }
  view.fillFromRun(run);
  follow(view);
  scrollToBottom();
  await followRun(view, generation);
}

/**
 * Follow a run already in progress through `GET /api/runs/{id}/events`. Its replay repeats
 * steps already drawn from the store; `RunView` applies them idempotently, and keeps the text
 * the store had (streamed tokens are not replayed).
 */
async function followRun(view, generation) {
  const controller = new AbortController();
  state.live = { controller, view, runId: view.runId };
  setRunning(true);
  let ended = false;
  try {
    await streamEvents(`/api/runs/${encodeURIComponent(view.runId)}/events`, { method: 'GET', signal: controller.signal }, (name, data) => {
      view.apply(name, data);
      if (name === 'run_finished') ended = true;
    });
  } catch (err) {
    if (err.name === 'AbortError') return;
    view.lostConnection(err);
  }
  if (generation !== state.generation) return;
  state.live = null;
  setRunning(false);
  if (ended) await view.loadStored();
}

/** Send the composer's text as a new message of the open conversation (or a new one). */
async function send() {
  const input = byId('chat-input');
  const text = input.value.trim();
  if (text === '' || state.live) return;
  clearNotice('send');
  const generation = state.generation;
  if (messagesEl().querySelector('.chat-empty, .loading')) mount(messagesEl());
  const userEl = userMessage(text);
  const view = new RunView();
  messagesEl().append(userEl, view.el);
  follow(view);
  scrollToBottom();
  input.value = '';
  const controller = new AbortController();
  state.live = { controller, view, runId: null };
  setRunning(true);
  const body = { message: text };
  if (state.conversationId) body.conversation_id = state.conversationId;
  const model = selectedModel();
  const agent = selectedAgent();
  if (model) body.model = model;
  if (agent) body.agent = agent;
  const attachments = takeAttachments();
  if (attachments.length > 0) body.attachments = attachments;
  let ended = false;
  let started = false;
  try {
    await streamEvents('/api/chat', { body, signal: controller.signal }, (name, data) => {
      if (!state.live || state.live.view !== view) return;
      if (name === 'run_started' && data && typeof data === 'object') {
        started = true;
        state.live.runId = data.run_id;
        setRunning(true);
        if (!state.conversationId && data.conversation_id) {
          state.conversationId = data.conversation_id;
          window.history.pushState({ c: data.conversation_id }, '', urlFor(data.conversation_id));
          conversations.setCurrent(data.conversation_id);
          setHeading(text);
          conversations.refresh();
        }
      }
      if (name === 'run_finished') ended = true;
      view.apply(name, data);
    });
  } catch (err) {
    if (err.name === 'AbortError') return; // the user opened another conversation
    if (!started) {
      // Refused before the run began (unknown model, no model available, empty message…):
      // take the message back so it can be sent again.
      userEl.remove();
      view.el.remove();
      view.dispose();
      if (!messagesEl().firstChild) showEmpty();
      input.value = text;
      showNotice('send', 'error', `Could not send: ${errorText(err)}`);
    } else {
      view.lostConnection(err);
    }
  }
  if (generation !== state.generation) return;
  state.live = null;
  setRunning(false);
  input.focus();
  if (started && !ended) view.lostConnection(new Error('the stream ended before the run did'));
  if (started) {
    conversations.refresh();
    if (ended) await view.loadStored();
  }
}

/** Cancel the run being followed; its stream then ends with `run_finished` status cancelled. */
async function stop() {
  const live = state.live;
  if (!live || !live.runId) return;
  const button = byId('stop-button');
  button.disabled = true;
  mount(button, 'Stopping…');
  try {
    await postJSON(`/api/runs/${encodeURIComponent(live.runId)}/cancel`);
  } catch (err) {
    // 409: it ended on its own meanwhile; anything else is worth saying.
    if (!(err instanceof ApiError && err.status === 409)) {
      showNotice('stop', 'error', `Could not stop the run: ${errorText(err)}`);
      button.disabled = false;
    }
  } finally {
    mount(button, 'Stop');
  }
}

function wireComposer() {
  const input = byId('chat-input');
  byId('composer').addEventListener('submit', (event) => {
    event.preventDefault();
    send();
  });
  input.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      send();
    }
  });
  byId('stop-button').addEventListener('click', () => stop());
  byId('new-conversation').addEventListener('click', () => newChat());
  document.addEventListener('conversation-renamed', (event) => {
    if (event.detail && event.detail.id === state.conversationId) setHeading(event.detail.title);
  });
}

function conversationFromUrl() {
  return new URLSearchParams(window.location.search).get('c');
}

async function main() {
  conversations = new ConversationList({
    onOpen: (id) => {
      if (id !== state.conversationId) openConversation(id);
    },
    onDeleted: (id) => {
      if (id === state.conversationId) newChat();
    },
  });
  wireComposer();
  messagesEl().addEventListener('scroll', () => { stick = nearBottom(); }, { passive: true });
  window.addEventListener('popstate', () => {
    const id = conversationFromUrl();
    if (id) openConversation(id, { push: false });
    else newChat({ push: false });
  });
  const initial = conversationFromUrl();
  await Promise.all([initPickers(), conversations.refresh(), initContext()]);
  if (initial) await openConversation(initial, { push: false });
  else newChat({ push: false });
}

// Nothing may end as an uncaught rejection or a blank page.
window.addEventListener('unhandledrejection', (event) => {
  showNotice('unexpected', 'error', `Something went wrong: ${errorText(event.reason)}`);
});
main().catch((err) => {
  showNotice('start', 'error', `The chat page could not start: ${errorText(err)}`);
});
