// The model and agent pickers of the chat page. Models come from `GET /api/models` (every
// configured model, with availability, the reason when unavailable, and health); agents from
// `GET /api/agents` (name, description, mode, model). The pickers also
// own the notices about models: none can answer, or the chosen one is unreachable.

import { h, byId, mount } from './dom.js';
import { getJSON } from './api.js';
import { showNotice, clearNotice, errorText } from './chat-notices.js';

const MODEL_KEY = 'switchboard.chat.model';
const AGENT_KEY = 'switchboard.chat.agent';
/** Health changes (a local model server started, a key was added and the config reloaded). */
const REFRESH_MS = 30_000;

let models = [];

/** Fill both pickers, restore the last choice, and keep model health fresh. */
export async function initPickers() {
  const modelSelect = byId('model-select');
  const agentSelect = byId('agent-select');
  modelSelect.addEventListener('change', () => {
    remember(MODEL_KEY, modelSelect.value);
    updateModelNotices();
  });
  agentSelect.addEventListener('change', () => remember(AGENT_KEY, agentSelect.value));
  await Promise.all([loadModels(), loadAgents()]);
  setInterval(() => {
    if (document.visibilityState === 'visible') loadModels();
  }, REFRESH_MS);
}

/** The chosen model name, or undefined when there is nothing to choose. */
export function selectedModel() {
  return byId('model-select').value || undefined;
}

/** The chosen agent name, or undefined for plain chat. */
export function selectedAgent() {
  return byId('agent-select').value || undefined;
}

/**
 * Choose `model` and `agent` (the ones a conversation last used), where they still exist and
 * can answer; a missing one leaves that picker as it is.
 */
export function choose({ model, agent }) {
  const modelSelect = byId('model-select');
  const option = [...modelSelect.options].find((o) => o.value === model);
  if (option && !option.disabled) {
    modelSelect.value = model;
    updateModelNotices();
  }
  const agentSelect = byId('agent-select');
  const agentValue = agent || '';
  if ([...agentSelect.options].some((o) => o.value === agentValue)) agentSelect.value = agentValue;
}

async function loadModels() {
  const select = byId('model-select');
  let listing;
  try {
    listing = await getJSON('/api/models');
  } catch (err) {
    showNotice('models', 'error', `Could not load the models: ${errorText(err)}`);
    return;
  }
  clearNotice('models');
  models = Array.isArray(listing.models) ? listing.models : [];
  const previous = select.value || stored(MODEL_KEY);
  mount(select, models.map(modelOption));
  if (models.length === 0) {
    select.append(h('option', { value: '', disabled: true }, 'no models configured'));
  }
  const usable = models.filter((m) => m.available);
  const pick = usable.find((m) => m.name === previous)
    || usable.find((m) => m.default)
    || usable.find((m) => health(m) === 'ok')
    || usable[0];
  // With nothing usable, still show (and send) the first model, so a message is refused with
  // that model's own reason rather than a vague one.
  if (pick) select.value = pick.name;
  else select.selectedIndex = 0;
  select.disabled = usable.length === 0;
  updateModelNotices();
}

/** Health statuses of `llm::registry` in words. */
const HEALTH_WORDS = {
  ok: 'reachable',
  unknown: 'health not checked yet',
  unreachable: 'unreachable',
  auth_failed: 'API key rejected',
  error: 'health check failed',
};

function health(model) {
  return (model.health && model.health.status) || 'unknown';
}

/** The last health check failed (unreachable, key rejected, an error status). */
function unhealthy(model) {
  return health(model) !== 'ok' && health(model) !== 'unknown';
}

function modelOption(model) {
  let label = model.name;
  let title = `${model.type} · ${model.model_name}`;
  if (model.default) label += ' (default)';
  if (!model.available) {
    const reason = model.unavailable_reason || 'unavailable';
    label += ` — unavailable: ${reason}`;
    title = `Unavailable: ${reason}`;
  } else if (unhealthy(model)) {
    label += ` — ${HEALTH_WORDS[health(model)] || health(model)}`;
    title = `${HEALTH_WORDS[health(model)] || health(model)}: ${(model.health && model.health.error) || 'the health check failed'}`;
  } else if (health(model) === 'ok') {
    label += ' ✓';
    title += ' · reachable';
  }
  return h('option', { value: model.name, disabled: !model.available, title, 'data-health': health(model) }, label);
}

/** Say plainly when nothing can answer, or when the chosen model did not answer its health check. */
function updateModelNotices() {
  const badge = byId('model-health');
  const usable = models.filter((m) => m.available);
  if (models.length > 0 && usable.length === 0) {
    const reasons = models.map((m) => `${m.name}: ${m.unavailable_reason || 'unavailable'}`).join('; ');
    showNotice('no-model', 'error', `No model can answer right now, so chats will fail. ${reasons}.`, { dismissible: false });
  } else if (models.length === 0) {
    showNotice('no-model', 'error', 'No model is configured. Add one under `models:` in the config and reload it.', { dismissible: false });
  } else {
    clearNotice('no-model');
  }
  const chosen = models.find((m) => m.name === byId('model-select').value);
  if (!chosen) {
    mount(badge);
    badge.hidden = true;
    clearNotice('model-health');
    return;
  }
  const status = health(chosen);
  badge.hidden = false;
  badge.className = `badge model-health health-${status}`;
  badge.title = (chosen.health && chosen.health.error) || `health: ${status}`;
  mount(badge, HEALTH_WORDS[status] || status);
  if (unhealthy(chosen)) {
    const why = (chosen.health && chosen.health.error) || 'its health check failed';
    const what = status === 'auth_failed' ? 'rejects its API key' : 'is not reachable right now';
    showNotice('model-health', 'warn', `Model ${chosen.name} ${what} (${why}). Answers from it will probably fail; pick another model or fix its server.`, { dismissible: false });
  } else {
    clearNotice('model-health');
  }
}

async function loadAgents() {
  const select = byId('agent-select');
  let agents = [];
  try {
    const listing = await getJSON('/api/agents');
    agents = listing.agents || [];
  } catch (err) {
    showNotice('agents', 'warn', `Could not load the agents (plain chat still works): ${errorText(err)}`);
  }
  const previous = stored(AGENT_KEY) || '';
  mount(select,
    h('option', { value: '' }, 'No agent (plain chat, every tool)'),
    agents.map((agent) => h('option', {
      value: agent.name,
      title: [agent.description, `mode: ${agent.mode}`, agent.model ? `model: ${agent.model}` : 'default model'].filter(Boolean).join(' · '),
    }, agent.name)));
  select.value = agents.some((agent) => agent.name === previous) ? previous : '';
}

function remember(key, value) {
  try {
    localStorage.setItem(key, value);
  } catch {
    // private mode or storage disabled: the choice just is not remembered
  }
}

function stored(key) {
  try {
    return localStorage.getItem(key);
  } catch {
    return null;
  }
}
