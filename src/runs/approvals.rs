//! The tool calls of one run that wait for a person's approval: opened by the engine through
//! [`RunApprover`], decided through `RunService::decide_approval` (the run's owner or an admin),
//! expired after `approval.expire_after_ms`, withdrawn if the run ends first. Each approval is
//! for one act step and the exact arguments it was opened with (their hash is on the request);
//! a model that calls again with other arguments makes a new step and a new approval.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::Value;
use tokio::sync::oneshot;

use crate::config::model::Unattended;
use crate::domain::{ApprovalDecision, ApprovalRequest, RunId, StepIndex, now_millis};
use crate::engine::tools::{ApprovalAsk, Approver};
use crate::hub::arguments_hash;
use crate::tools::ArgumentError;

/// Why a decision was not taken.
#[derive(Debug, thiserror::Error)]
pub enum ApprovalError {
    #[error(
        "no approval `{id}` is waiting in this run (it was decided already, it expired, or the run moved on)"
    )]
    NotPending { id: String },
    #[error("`arguments` are only sent when approving")]
    ArgumentsWithDeny,
    #[error("the edited arguments do not match the tool's input schema")]
    Invalid { errors: Vec<ArgumentError> },
}

/// A person's decision as it arrives.
#[derive(Debug, Clone, PartialEq)]
pub struct DecisionInput {
    pub approve: bool,
    /// Shown to the model with a denial.
    pub reason: Option<String>,
    /// Arguments the person edited (approve only); checked against the schema first.
    pub arguments: Option<Value>,
}

/// One waiting approval as listed.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingApproval {
    pub run_id: RunId,
    pub step: StepIndex,
    pub request: ApprovalRequest,
}

/// One run's approvals waiting for a decision.
#[derive(Debug, Default)]
pub struct PendingApprovals {
    waiting: Mutex<HashMap<String, Waiting>>,
}

#[derive(Debug)]
struct Waiting {
    step: StepIndex,
    request: ApprovalRequest,
    reply: oneshot::Sender<ApprovalDecision>,
}

impl PendingApprovals {
    fn open(
        self: &Arc<Self>,
        step: StepIndex,
        request: ApprovalRequest,
    ) -> (oneshot::Receiver<ApprovalDecision>, OpenApproval) {
        let (reply, decision) = oneshot::channel();
        let id = request.id.clone();
        self.lock().insert(
            id.clone(),
            Waiting {
                step,
                request,
                reply,
            },
        );
        let open = OpenApproval {
            approvals: self.clone(),
            id,
        };
        (decision, open)
    }

    /// The approvals waiting now, oldest first.
    pub(crate) fn list(&self, run_id: RunId) -> Vec<PendingApproval> {
        let mut pending: Vec<PendingApproval> = self
            .lock()
            .values()
            .map(|w| PendingApproval {
                run_id,
                step: w.step,
                request: w.request.clone(),
            })
            .collect();
        pending.sort_by_key(|p| p.step);
        pending
    }

    /// The tool an open approval is for, to check edited arguments against.
    pub(crate) fn tool_of(&self, id: &str) -> Option<String> {
        self.lock().get(id).map(|w| w.request.tool.clone())
    }

    /// Decide approval `id` as `by`. `check` validates edited arguments against the tool's
    /// schema; a refused decision leaves the approval open.
    ///
    /// # Errors
    /// See [`ApprovalError`].
    pub(crate) fn decide(
        &self,
        id: &str,
        by: &str,
        input: DecisionInput,
        check: impl FnOnce(&Value) -> Result<(), Vec<ArgumentError>>,
    ) -> Result<ApprovalDecision, ApprovalError> {
        let mut waiting = self.lock();
        let Some(open) = waiting.get(id) else {
            return Err(ApprovalError::NotPending { id: id.to_owned() });
        };
        let decision = if input.approve {
            let (arguments, edited) = match input.arguments {
                Some(edited) if edited != open.request.arguments => {
                    check(&edited).map_err(|errors| ApprovalError::Invalid { errors })?;
                    (edited, true)
                }
                _ => (open.request.arguments.clone(), false),
            };
            ApprovalDecision::Approved {
                by: by.to_owned(),
                arguments,
                edited,
            }
        } else {
            if input.arguments.is_some() {
                return Err(ApprovalError::ArgumentsWithDeny);
            }
            ApprovalDecision::Denied {
                by: by.to_owned(),
                reason: input.reason.filter(|r| !r.trim().is_empty()),
            }
        };
        let open = waiting
            .remove(id)
            .expect("checked above, under the same lock");
        open.reply
            .send(decision.clone())
            .map_err(|_| ApprovalError::NotPending { id: id.to_owned() })?;
        Ok(decision)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Waiting>> {
        self.waiting
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

/// Withdraws an approval when its wait ends (decided, expired, or the run gone).
struct OpenApproval {
    approvals: Arc<PendingApprovals>,
    id: String,
}

impl Drop for OpenApproval {
    fn drop(&mut self) {
        self.approvals.lock().remove(&self.id);
    }
}

/// The engine's [`Approver`] for one run.
pub(crate) struct RunApprover {
    pub(crate) approvals: Arc<PendingApprovals>,
    /// A person follows the run (the web chat); else `unattended` decides.
    pub(crate) attended: bool,
    pub(crate) unattended: Unattended,
    pub(crate) expire_after: Duration,
}

impl Approver for RunApprover {
    fn open(&self, ask: ApprovalAsk) -> (ApprovalRequest, BoxFuture<'static, ApprovalDecision>) {
        // A resumed run waits again on the approval it waited on: same id, same deadline.
        let request = ask.existing.unwrap_or_else(|| ApprovalRequest {
            // One approval per act step: the id stays the same across a restart.
            id: format!("ap-{}", ask.step),
            arguments_hash: arguments_hash(&ask.arguments),
            tool: ask.tool,
            server: ask.server,
            arguments: ask.arguments,
            reason: ask.reason,
            expires_at: now_millis()
                .saturating_add(i64::try_from(self.expire_after.as_millis()).unwrap_or(i64::MAX)),
        });
        let expire_after = Duration::from_millis(
            u64::try_from(request.expires_at.saturating_sub(now_millis())).unwrap_or(0),
        );
        if !self.attended && self.unattended == Unattended::Deny {
            return (
                request,
                futures::future::ready(ApprovalDecision::Unattended).boxed(),
            );
        }
        let (decision, open) = self.approvals.open(ask.step, request.clone());
        let wait = async move {
            let _open = open;
            tokio::select! {
                decided = decision => decided.unwrap_or(ApprovalDecision::Expired),
                () = tokio::time::sleep(expire_after) => ApprovalDecision::Expired,
            }
        };
        (request, wait.boxed())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn approver() -> RunApprover {
        RunApprover {
            approvals: Arc::default(),
            attended: true,
            unattended: Unattended::Deny,
            expire_after: Duration::from_secs(60),
        }
    }

    fn ask(arguments: Value) -> ApprovalAsk {
        ApprovalAsk {
            step: 3,
            tool: "notes__delete".to_owned(),
            server: "notes".to_owned(),
            arguments,
            reason: "destructive".to_owned(),
            existing: None,
        }
    }

    #[tokio::test]
    async fn a_decision_is_taken_once_and_an_edit_is_checked_first() {
        let approver = approver();
        let (request, decision) = approver.open(ask(json!({"id": 1})));
        assert_eq!(request.arguments_hash, arguments_hash(&json!({"id": 1})));
        let listed = approver.approvals.list(RunId::new());
        assert_eq!(listed.len(), 1);
        let refuse = |_: &Value| {
            Err(vec![ArgumentError {
                path: "/id".to_owned(),
                message: "must be a number".to_owned(),
            }])
        };
        let edit = DecisionInput {
            approve: true,
            reason: None,
            arguments: Some(json!({"id": "x"})),
        };
        let err = approver
            .approvals
            .decide(&request.id, "alice", edit, refuse)
            .expect_err("invalid edit");
        assert!(matches!(err, ApprovalError::Invalid { .. }));
        let deny = DecisionInput {
            approve: false,
            reason: Some("not today".to_owned()),
            arguments: None,
        };
        approver
            .approvals
            .decide(&request.id, "alice", deny.clone(), |_| Ok(()))
            .expect("a denial");
        assert_eq!(
            decision.await,
            ApprovalDecision::Denied {
                by: "alice".to_owned(),
                reason: Some("not today".to_owned())
            }
        );
        assert!(matches!(
            approver
                .approvals
                .decide(&request.id, "alice", deny, |_| Ok(())),
            Err(ApprovalError::NotPending { .. })
        ));
        assert!(approver.approvals.list(RunId::new()).is_empty());
    }

    #[tokio::test]
    async fn an_approval_nobody_decides_expires_and_is_withdrawn() {
        let approver = RunApprover {
            expire_after: Duration::from_millis(20),
            ..approver()
        };
        let (request, decision) = approver.open(ask(json!({})));
        assert_eq!(decision.await, ApprovalDecision::Expired);
        let approve = DecisionInput {
            approve: true,
            reason: None,
            arguments: None,
        };
        assert!(matches!(
            approver
                .approvals
                .decide(&request.id, "alice", approve, |_| Ok(())),
            Err(ApprovalError::NotPending { .. })
        ));
    }

    #[tokio::test]
    async fn unattended_deny_decides_at_once() {
        let approver = RunApprover {
            attended: false,
            ..approver()
        };
        let (_, decision) = approver.open(ask(json!({})));
        assert_eq!(decision.await, ApprovalDecision::Unattended);
        assert!(approver.approvals.list(RunId::new()).is_empty());
    }
}
