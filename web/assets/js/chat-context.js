// The composer's resources and prompts (`GET /api/context`): "Start from a prompt" fills the
// message from one of the servers' prompts (its arguments asked for in a small form first),
// "Attach" adds one of their resources, shown as a chip until the message is sent, when the
// server reads it and gives its text to the model after the message (`attachments`).
//
// Names, descriptions and texts come from the MCP servers (untrusted): they reach the DOM only
// as text (`h`).

import { h, byId, mount } from './dom.js';
import { getJSON, postJSON } from './api.js';
import { showNotice, clearNotice, errorText } from './chat-notices.js';

const listed = { resources: [], prompts: [] };
/** Resources attached to the next message: `{server, uri, name}`. */
let attached = [];

/** Fill both pickers from `/api/context`; they stay hidden when no server offers anything. */
export async function initContext() {
  const promptSelect = byId('prompt-select');
  const resourceSelect = byId('resource-select');
  promptSelect.addEventListener('change', () => pickPrompt(promptSelect));
  resourceSelect.addEventListener('change', () => pickResource(resourceSelect));
  let context;
  try {
    context = await getJSON('/api/context');
  } catch (err) {
    showNotice('context', 'error', `Resources and prompts could not be loaded: ${errorText(err)}`);
    return;
  }
  listed.resources = context.resources || [];
  listed.prompts = context.prompts || [];
  fill(promptSelect, 'Start from a prompt…', listed.prompts, (p) => p.title || p.name);
  fill(resourceSelect, 'Attach a resource…', listed.resources, (r) => r.title || r.name || r.uri);
  byId('prompt-picker').hidden = listed.prompts.length === 0;
  byId('resource-picker').hidden = listed.resources.length === 0;
}

/** The attachments for the message being sent, and an empty list for the next one. */
export function takeAttachments() {
  const taken = attached.map(({ server, uri }) => ({ server, uri }));
  attached = [];
  drawChips();
  return taken;
}

function fill(select, placeholder, items, label) {
  mount(select,
    h('option', { value: '' }, placeholder),
    items.map((item, index) => h('option', {
      value: String(index),
      title: item.description || '',
      'data-server': item.server,
    }, `${item.server} · ${label(item)}`)));
}

function pickResource(select) {
  const resource = listed.resources[Number(select.value)];
  select.value = '';
  if (!resource || attached.some((a) => a.server === resource.server && a.uri === resource.uri)) return;
  attached.push({ server: resource.server, uri: resource.uri, name: resource.title || resource.name || resource.uri });
  drawChips();
}

function drawChips() {
  mount(byId('attachments'), attached.map((a, index) => h('span', {
    class: 'attachment-chip',
    'data-server': a.server,
    'data-uri': a.uri,
    title: `${a.uri} (${a.server})`,
  },
  h('span', { class: 'attachment-name' }, a.name),
  h('button', {
    type: 'button',
    class: 'link-button attachment-remove',
    'aria-label': `Remove ${a.name}`,
    on: { click: () => { attached.splice(index, 1); drawChips(); } },
  }, '×'))));
}

function pickPrompt(select) {
  const prompt = listed.prompts[Number(select.value)];
  select.value = '';
  const form = byId('prompt-form');
  if (!prompt) return;
  if (prompt.arguments.length === 0) {
    usePrompt(prompt, {});
    return;
  }
  const inputs = prompt.arguments.map((arg) => h('input', {
    type: 'text',
    name: arg.name,
    required: arg.required,
    placeholder: arg.description || '',
  }));
  const use = () => {
    const invalid = inputs.find((input) => !input.checkValidity());
    if (invalid) {
      invalid.reportValidity();
      return;
    }
    const values = {};
    inputs.forEach((input) => { if (input.value !== '') values[input.name] = input.value; });
    usePrompt(prompt, values);
  };
  // Inside the composer's form: Enter uses the prompt instead of sending the message.
  inputs.forEach((input) => input.addEventListener('keydown', (event) => {
    if (event.key === 'Enter') {
      event.preventDefault();
      use();
    }
  }));
  form.hidden = false;
  mount(form,
    h('span', { class: 'prompt-form-name' }, prompt.title || prompt.name),
    prompt.arguments.map((arg, i) => h('label', { class: 'prompt-arg' }, `${arg.name}${arg.required ? ' *' : ''}`, inputs[i])),
    h('button', { type: 'button', class: 'primary prompt-use', on: { click: use } }, 'Use prompt'),
    h('button', { type: 'button', class: 'prompt-cancel', on: { click: () => { form.hidden = true; mount(form); } } }, 'Cancel'));
  inputs[0].focus();
}

async function usePrompt(prompt, values) {
  clearNotice('context');
  try {
    const got = await postJSON('/api/context/prompt', { server: prompt.server, name: prompt.name, arguments: values });
    const input = byId('chat-input');
    input.value = got.messages.map((m) => m.text).join('\n\n');
    input.focus();
    const form = byId('prompt-form');
    form.hidden = true;
    mount(form);
  } catch (err) {
    showNotice('context', 'error', `The prompt ${prompt.name} could not be got: ${errorText(err)}`);
  }
}
