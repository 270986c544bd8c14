// The "try it" form of one tool: a form generated from its input schema, submitted to
// `POST /api/tools/{name}/invoke`, with the result, the validation errors next to the fields,
// or the failure in plain words. The form is built once per tool and survives the page's
// periodic refresh, so what the user typed is never lost.

import { h, formatDuration } from './dom.js';
import { postJSON, ApiError } from './api.js';
import { schemaForm, FieldError } from './schema-form.js';
import { renderInvokeResult, renderInvokeFailure } from './servers-result.js';

/**
 * `form.try-it` for `tool` (an entry of `GET /api/tools`). Returns `{element, setAvailable}`;
 * `setAvailable(false, why)` disables calling while the tool is missing from the catalog.
 */
export function tryItForm(tool) {
  const name = tool.name;
  const fields = schemaForm(tool.input_schema);
  const submit = h('button', { type: 'submit', class: 'primary try-submit' }, 'Call tool');
  const cancel = h('button', { type: 'button', class: 'try-cancel', hidden: true }, 'Cancel');
  const status = h('span', { class: 'try-status', role: 'status' });
  const errors = h('ul', { class: 'try-errors', hidden: true });
  const result = h('div', { class: 'try-result', 'aria-live': 'polite' });
  const form = h(
    'form',
    { class: 'try-it', 'data-tool': name, autocomplete: 'off' },
    fields.element,
    h('div', { class: 'try-actions' }, submit, cancel, status),
    errors,
    result,
  );
  // Native constraint checks would block the request with a browser bubble; the server's
  // validator gives the same errors with JSON paths, which are shown next to the fields.
  form.noValidate = true;

  let inFlight = null;
  let unavailable = null;

  const showErrors = (list) => {
    const placed = fields.showErrors(list);
    errors.replaceChildren(
      ...list.map((e, i) =>
        h(
          'li',
          { 'data-path': e.path, 'data-field': placed[i] ?? '' },
          h('code', { class: 'try-error-path' }, e.path === '' ? '(arguments)' : e.path),
          ' ',
          h('span', { class: 'try-error-message' }, e.message),
        ),
      ),
    );
    errors.hidden = list.length === 0;
    fields.focusFirstError();
  };

  const reset = () => {
    fields.clearErrors();
    errors.replaceChildren();
    errors.hidden = true;
    result.replaceChildren();
    delete form.dataset.outcome;
  };

  const finish = (outcome) => {
    inFlight = null;
    form.dataset.outcome = outcome;
    submit.disabled = unavailable !== null;
    cancel.hidden = true;
    form.classList.remove('busy');
  };

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (inFlight || unavailable) return;
    reset();
    let args;
    try {
      args = fields.read();
    } catch (err) {
      if (!(err instanceof FieldError)) throw err;
      status.textContent = 'Not sent: fix the field below.';
      showErrors([{ path: err.pointer, message: err.message }]);
      form.dataset.outcome = 'client-error';
      return;
    }

    const controller = new AbortController();
    const started = performance.now();
    const ticker = setInterval(() => {
      status.textContent = `Calling… ${formatDuration(performance.now() - started)}`;
    }, 250);
    inFlight = controller;
    submit.disabled = true;
    cancel.hidden = false;
    form.classList.add('busy');
    status.textContent = 'Calling…';
    try {
      const answer = await postJSON(`/api/tools/${encodeURIComponent(name)}/invoke`, args, { signal: controller.signal });
      result.replaceChildren(renderInvokeResult(answer));
      status.textContent = `Answered in ${formatDuration(performance.now() - started)}.`;
      finish(answer && answer.result && answer.result.isError ? 'tool-error' : 'ok');
    } catch (err) {
      if (err && err.name === 'AbortError') {
        status.textContent = 'Cancelled; the server was told to stop the call.';
        finish('cancelled');
      } else if (err instanceof ApiError && err.status === 422 && Array.isArray(err.details)) {
        status.textContent = 'Not accepted: the arguments do not match the schema.';
        showErrors(err.details.map((d) => ({ path: String(d.path ?? ''), message: String(d.message ?? '') })));
        finish('invalid');
      } else {
        status.textContent = '';
        result.replaceChildren(renderInvokeFailure(err, name));
        finish('failed');
      }
    } finally {
      clearInterval(ticker);
    }
  });

  cancel.addEventListener('click', () => {
    if (inFlight) inFlight.abort();
  });

  return {
    element: form,
    /** Enable or disable calling, e.g. while the tool is missing from the catalog. */
    setAvailable(available, why = '') {
      unavailable = available ? null : why;
      submit.disabled = !available || inFlight !== null;
      submit.title = available ? '' : why;
    },
  };
}
