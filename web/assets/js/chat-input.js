// A question an MCP server puts to the person while one of its tool calls runs (MCP
// elicitation): the server's message (its own text, shown as text), a form generated from the
// schema it sent, and Submit / Decline / Cancel, posted to `POST /api/runs/{run}/inputs/{id}`.
// The server checks nothing we send twice: the answer is validated against its schema by
// Switchboard first, and refusals are shown next to the fields.

import { h, mount } from './dom.js';
import { postJSON, ApiError } from './api.js';
import { schemaForm, FieldError } from './schema-form.js';

/** The card for one `input_requested` event of run `runId`. */
export class InputCard {
  constructor(runId, data) {
    this.runId = runId;
    this.id = String(data.id ?? '');
    this.open = true;
    this.fields = schemaForm(data.schema);
    this.status = h('span', { class: 'input-status', role: 'status' });
    this.errors = h('ul', { class: 'input-errors', hidden: true });
    this.submit = h('button', { type: 'submit', class: 'primary input-accept' }, 'Submit');
    this.decline = h('button', { type: 'button', class: 'input-decline' }, 'Decline');
    this.cancel = h('button', { type: 'button', class: 'input-cancel' }, 'Cancel');
    this.form = h('form', { class: 'input-form', autocomplete: 'off' },
      this.fields.element,
      h('div', { class: 'input-actions' }, this.submit, this.decline, this.cancel, this.status),
      this.errors);
    this.form.noValidate = true;
    this.el = h('section', { class: 'input-card', 'data-input': this.id, 'data-state': 'open', 'aria-label': 'A tool server asks for input' },
      h('div', { class: 'input-head' },
        h('span', { class: 'input-server' }, String(data.server ?? 'a server')),
        h('span', {}, ' asks for input')),
      h('p', { class: 'input-message' }, String(data.message ?? '')),
      this.form);

    this.form.addEventListener('submit', (event) => {
      event.preventDefault();
      let content;
      try {
        content = this.fields.read();
      } catch (err) {
        if (!(err instanceof FieldError)) throw err;
        this.showErrors([{ path: err.pointer, message: err.message }]);
        return;
      }
      this.send({ action: 'accept', content });
    });
    this.decline.addEventListener('click', () => this.send({ action: 'decline' }));
    this.cancel.addEventListener('click', () => this.send({ action: 'cancel' }));
  }

  showErrors(list) {
    this.fields.showErrors(list);
    mount(this.errors, list.map((e) => h('li', { 'data-path': e.path },
      h('code', {}, e.path === '' ? '(form)' : e.path), ' ', e.message)));
    this.errors.hidden = list.length === 0;
    this.fields.focusFirstError();
  }

  async send(body) {
    if (!this.open) return;
    this.fields.clearErrors();
    this.errors.hidden = true;
    this.setBusy(true);
    this.status.textContent = 'Sending…';
    try {
      await postJSON(`/api/runs/${encodeURIComponent(this.runId)}/inputs/${encodeURIComponent(this.id)}`, body);
      this.answered(body.action);
    } catch (err) {
      this.setBusy(false);
      if (err instanceof ApiError && err.status === 422 && Array.isArray(err.details)) {
        this.status.textContent = 'Not accepted: the answer does not match the form.';
        this.showErrors(err.details.map((d) => ({ path: String(d.path ?? ''), message: String(d.message ?? '') })));
      } else if (err instanceof ApiError && (err.status === 409 || err.status === 404)) {
        this.closed('The server no longer waits for this answer.');
      } else {
        this.status.textContent = err && err.message ? err.message : 'The answer could not be sent.';
      }
    }
  }

  setBusy(busy) {
    for (const button of [this.submit, this.decline, this.cancel]) button.disabled = busy;
  }

  /** The question was answered (here, or in another tab): `action` is what was chosen. */
  answered(action) {
    const words = { accept: 'Answered', decline: 'Declined', cancel: 'Cancelled' };
    this.closed(`${words[action] ?? 'Answered'}.`, action);
  }

  /** Nothing more can be sent: `why` says so. */
  closed(why, action = 'closed') {
    if (!this.open) return;
    this.open = false;
    this.el.dataset.state = action;
    this.setBusy(true);
    this.form.hidden = true;
    this.el.append(h('p', { class: 'input-outcome' }, why));
  }
}
