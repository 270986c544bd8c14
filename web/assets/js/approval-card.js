// The card of one tool call waiting for a person's approval, shown in the chat under the tool's
// card and in /debug on the run: the tool and server, why the policy gated it, the arguments
// the model sent (as a tree), and Approve / Deny (with a reason the model will hear) / Edit
// (the arguments as JSON, checked against the tool's schema by the server before they count).
// It posts to `POST /api/runs/{run}/approvals/{id}`; everything shown from the model or the
// server goes in as text.

import { h, mount, formatTime } from './dom.js';
import { postJSON, ApiError } from './api.js';
import { jsonView } from './json-view.js';

/** The card for `request` (an `approval_requested` event, or an entry of `GET /api/approvals`). */
export class ApprovalCard {
  constructor(runId, request) {
    this.runId = runId;
    this.id = String(request.id ?? '');
    this.step = request.step;
    this.open = true;
    const args = request.arguments ?? {};
    this.status = h('span', { class: 'approval-status', role: 'status' });
    this.errors = h('ul', { class: 'approval-errors', hidden: true });
    this.argsView = h('div', { class: 'approval-args' }, jsonView(args, { openDepth: 2, maxString: 400 }));
    this.editor = h('textarea', { class: 'approval-edit', rows: 6, spellcheck: 'false', hidden: true, 'aria-label': 'Arguments to call with, as JSON' });
    this.editor.value = JSON.stringify(args, null, 2);
    this.reason = h('input', { type: 'text', class: 'approval-reason', placeholder: 'Reason (optional, the model sees it)', maxlength: '2000', 'aria-label': 'Reason for denying' });
    this.approve = h('button', { type: 'button', class: 'primary approval-approve' }, 'Approve');
    this.deny = h('button', { type: 'button', class: 'approval-deny' }, 'Deny');
    this.edit = h('button', { type: 'button', class: 'approval-edit-toggle', 'aria-pressed': 'false' }, 'Edit');
    this.actions = h('div', { class: 'approval-actions' }, this.approve, this.edit, this.deny, this.reason, this.status);
    const expires = Number(request.expires_at);
    this.el = h('section', { class: 'approval-card', 'data-approval': this.id, 'data-state': 'open', 'aria-label': 'A tool call waits for your approval' },
      h('div', { class: 'approval-head' },
        h('span', { class: 'approval-title' }, 'Approval needed: '),
        h('code', { class: 'approval-tool' }, String(request.tool ?? '')),
        h('span', { class: 'tool-on' }, ' on '),
        h('span', { class: 'approval-server' }, String(request.server ?? ''))),
      h('p', { class: 'approval-why' }, String(request.reason ?? '')),
      Number.isFinite(expires) && expires > 0
        ? h('p', { class: 'approval-expiry muted' }, `Denied automatically at ${formatTime(expires)} if nobody decides.`)
        : null,
      this.argsView,
      this.editor,
      this.actions,
      this.errors);

    this.edit.addEventListener('click', () => {
      const editing = this.editor.hidden;
      this.editor.hidden = !editing;
      this.argsView.hidden = editing;
      this.edit.setAttribute('aria-pressed', String(editing));
      this.approve.textContent = editing ? 'Approve with these arguments' : 'Approve';
    });
    this.approve.addEventListener('click', () => {
      if (this.editor.hidden) {
        this.send({ decision: 'approve' });
        return;
      }
      let edited;
      try {
        edited = JSON.parse(this.editor.value);
      } catch (err) {
        this.showErrors([{ path: '', message: `not valid JSON: ${err.message}` }]);
        return;
      }
      this.send({ decision: 'approve', arguments: edited });
    });
    this.deny.addEventListener('click', () => {
      const reason = this.reason.value.trim();
      this.send(reason ? { decision: 'deny', reason } : { decision: 'deny' });
    });
  }

  showErrors(list) {
    mount(this.errors, list.map((e) => h('li', { 'data-path': e.path },
      h('code', {}, e.path === '' ? '(arguments)' : e.path), ' ', e.message)));
    this.errors.hidden = list.length === 0;
  }

  async send(body) {
    if (!this.open) return;
    this.showErrors([]);
    this.setBusy(true);
    this.status.textContent = 'Sending…';
    try {
      await postJSON(`/api/runs/${encodeURIComponent(this.runId)}/approvals/${encodeURIComponent(this.id)}`, body);
      this.status.textContent = '';
      if (body.decision === 'approve') {
        this.closed('approved', body.arguments !== undefined ? 'Approved, with edited arguments.' : 'Approved.');
      } else {
        this.closed('denied', body.reason ? `Denied: ${body.reason}` : 'Denied.');
      }
    } catch (err) {
      this.setBusy(false);
      if (err instanceof ApiError && err.status === 422 && Array.isArray(err.details)) {
        this.status.textContent = 'Not accepted: the arguments do not match the tool\'s schema.';
        this.showErrors(err.details.map((d) => ({ path: String(d.path ?? ''), message: String(d.message ?? '') })));
      } else if (err instanceof ApiError && (err.status === 409 || err.status === 404)) {
        this.closed('closed', 'This call is no longer waiting for a decision.');
      } else {
        this.status.textContent = err && err.message ? err.message : 'The decision could not be sent.';
      }
    }
  }

  setBusy(busy) {
    for (const control of [this.approve, this.deny, this.edit, this.reason]) control.disabled = busy;
  }

  /** The decision as the run reports it (`approval_decided`), from here or anywhere else. */
  decided(data) {
    const by = data.by ? ` by ${data.by}` : '';
    switch (data.decision) {
      case 'approved':
        this.closed('approved', data.edited ? `Approved${by}, with edited arguments.` : `Approved${by}.`);
        break;
      case 'denied':
        this.closed('denied', `Denied${by}${data.reason ? `: ${data.reason}` : '.'}`);
        break;
      case 'expired':
        this.closed('expired', 'Nobody decided in time; the call was not run.');
        break;
      default:
        this.closed('denied', 'Nobody can approve on this path; the call was not run.');
    }
  }

  closed(state, why) {
    if (!this.open) return;
    this.open = false;
    this.el.dataset.state = state;
    this.actions.hidden = true;
    this.editor.hidden = true;
    this.el.append(h('p', { class: 'approval-outcome' }, why));
  }
}
