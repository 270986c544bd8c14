//! `GET /api/approvals`: the approvals waiting for a decision.

use serde::Serialize;

use crate::domain::{ApprovalRequest, RunId, StepIndex};
use crate::runs::PendingApproval;

/// The list.
#[derive(Debug, Serialize)]
pub(in crate::api) struct PendingList<'a> {
    approvals: Vec<Pending<'a>>,
}

/// One waiting approval: its run and step, and the request the chat's card shows.
#[derive(Debug, Serialize)]
struct Pending<'a> {
    run_id: RunId,
    step: StepIndex,
    #[serde(flatten)]
    request: &'a ApprovalRequest,
}

impl<'a> PendingList<'a> {
    pub(in crate::api) fn new(pending: &'a [PendingApproval]) -> Self {
        Self {
            approvals: pending
                .iter()
                .map(|p| Pending {
                    run_id: p.run_id,
                    step: p.step,
                    request: &p.request,
                })
                .collect(),
        }
    }
}
