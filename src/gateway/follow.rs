//! Following the run behind one `/mcp` call until it ends: its progress passed on to the
//! client, its approvals and its servers' questions put to the client's person by MCP
//! elicitation (when the client can ask one), and the client's cancellation turned into the
//! run's.

use rmcp::model::{
    ElicitRequestParams, ElicitationAction, ElicitationSchema, ProgressNotificationParam,
    ProgressToken,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, Peer, RoleServer};
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::access::Caller;
use crate::domain::{
    ApprovalRequest, InputAction, InputRequest, RunEvent, RunId, RunStatus, StepStatus,
};
use crate::mcp::asks::InputAnswer;
use crate::runs::{DecisionInput, Followed, RunEvents, RunService};

/// What the client hears of the run's progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Progress {
    /// The tool's own progress notifications (a direct call).
    OfTheTool,
    /// One notification per finished step (an agent's run).
    PerStep,
}

/// How the run ended.
pub(super) struct Ended {
    pub status: RunStatus,
    pub answer: Option<String>,
    pub error: Option<String>,
}

/// Whether the client declared it can put a form to its person, on an era that lets a server
/// ask it mid-request: 2026-07-28 forbids server-to-client requests (its multi-round-trip
/// `InputRequiredResult` is not offered here), so such a call is unattended.
pub(super) fn client_elicits(context: &RequestContext<RoleServer>) -> bool {
    let asks_allowed = context
        .protocol_version()
        .is_none_or(|version| version < rmcp::model::ProtocolVersion::V_2026_07_28);
    asks_allowed && !context.peer.supported_elicitation_modes().is_empty()
}

/// Follow `events` of `run_id` to the run's end. `attended`: approvals and questions go to the
/// client's person by elicitation (else the run's unattended policies answer them).
///
/// # Errors
/// The client cancelled the request (the run is cancelled), or the run's events ended without
/// its end (the server is shutting down).
pub(super) async fn follow(
    runs: &RunService,
    caller: &Caller,
    mut events: RunEvents,
    context: &RequestContext<RoleServer>,
    attended: bool,
    progress: Progress,
) -> Result<Ended, McpError> {
    let run_id = events.run_id();
    let token = context.meta.get_progress_token();
    let mut asks = JoinSet::new();
    let mut steps_done = 0u32;
    loop {
        let item = tokio::select! {
            item = events.next() => item,
            () = context.ct.cancelled() => {
                // Cancelling the run aborts its calls, which sends their servers the cancellation.
                let _ = runs.cancel(caller, run_id);
                return Err(McpError::internal_error("the call was cancelled", None));
            }
        };
        let event = match item {
            Some(Followed::Event(event)) => event,
            // Progress lost to a slow client is not worth failing the call over.
            Some(Followed::Skipped(_)) => continue,
            None => {
                return Err(McpError::internal_error(
                    format!("run {run_id} stopped before it ended (the server is shutting down)"),
                    None,
                ));
            }
        };
        match event {
            RunEvent::ToolProgress {
                progress: update, ..
            } if progress == Progress::OfTheTool => {
                if let Some(token) = &token {
                    let mut note = ProgressNotificationParam::new(token.clone(), update.progress);
                    note.total = update.total;
                    note.message = update.message;
                    let _ = context.peer.notify_progress(note).await;
                }
            }
            // A direct call's one step has ended: its result is set (`engine/direct.rs`), and
            // the client need not wait for the run's end to be stored.
            RunEvent::StepFinished { status, error, .. } if progress == Progress::OfTheTool => {
                let status = match status {
                    StepStatus::Succeeded => RunStatus::Succeeded,
                    StepStatus::Cancelled => RunStatus::Cancelled,
                    _ => RunStatus::Failed,
                };
                return Ok(Ended {
                    status,
                    answer: None,
                    error,
                });
            }
            RunEvent::StepFinished { step, status, .. } if progress == Progress::PerStep => {
                steps_done += 1;
                if let Some(token) = &token {
                    step_progress(&context.peer, token, steps_done, step, status).await;
                }
            }
            RunEvent::ApprovalRequested { request, .. } if attended => {
                asks.spawn(decide_by_elicitation(
                    runs.clone(),
                    caller.clone(),
                    context.peer.clone(),
                    run_id,
                    request,
                ));
            }
            RunEvent::InputRequested { request, .. } if attended => {
                asks.spawn(answer_by_elicitation(
                    runs.clone(),
                    caller.clone(),
                    context.peer.clone(),
                    run_id,
                    request,
                ));
            }
            RunEvent::RunFinished {
                status,
                answer,
                error,
                ..
            } => {
                return Ok(Ended {
                    status,
                    answer,
                    error,
                });
            }
            _ => {}
        }
    }
}

async fn step_progress(
    peer: &Peer<RoleServer>,
    token: &ProgressToken,
    done: u32,
    step: u32,
    status: StepStatus,
) {
    let mut note = ProgressNotificationParam::new(token.clone(), f64::from(done));
    note.message = Some(format!("step {step} {}", status.as_str()));
    let _ = peer.notify_progress(note).await;
}

/// Ask the client's person whether the call may run, and decide the run's approval with the
/// answer (as the caller: the run's owner). A dismissed form is a denial: the call must not
/// hang on a question nobody will answer.
async fn decide_by_elicitation(
    runs: RunService,
    caller: Caller,
    peer: Peer<RoleServer>,
    run_id: RunId,
    request: ApprovalRequest,
) {
    let message = format!(
        "Switchboard asks before running `{}` ({}). Arguments: {}",
        request.tool, request.reason, request.arguments
    );
    let schema = json!({
        "type": "object",
        "properties": {
            "approve": {"type": "boolean", "title": "Run this call", "default": false},
            "reason": {"type": "string", "title": "Reason (told to the caller on a denial)"}
        },
        "required": ["approve"]
    });
    let decision = match elicit(&peer, message, schema).await {
        Ok((ElicitationAction::Accept, Some(content))) => DecisionInput {
            approve: content.get("approve").and_then(Value::as_bool) == Some(true),
            reason: content
                .get("reason")
                .and_then(Value::as_str)
                .filter(|r| !r.is_empty())
                .map(str::to_owned),
            arguments: None,
        },
        Ok((action, _)) => denial(format!(
            "the client's user answered `{}`",
            action_name(&action)
        )),
        Err(err) => denial(format!("the client could not ask its user ({err})")),
    };
    let decision = DecisionInput {
        // A denial's reason goes to the caller; an approval takes none.
        reason: if decision.approve {
            None
        } else {
            decision.reason
        },
        ..decision
    };
    if let Err(err) = runs.decide_approval(&caller, run_id, &request.id, decision) {
        tracing::debug!(run_id = %run_id, error = %err, "an elicited approval was not taken");
    }
}

fn denial(reason: String) -> DecisionInput {
    DecisionInput {
        approve: false,
        reason: Some(reason),
        arguments: None,
    }
}

/// Put a server's question to the client's person and give the run their answer.
async fn answer_by_elicitation(
    runs: RunService,
    caller: Caller,
    peer: Peer<RoleServer>,
    run_id: RunId,
    request: InputRequest,
) {
    let message = format!("{} asks: {}", request.server, request.message);
    let answer = match elicit(&peer, message, request.schema.clone()).await {
        Ok((ElicitationAction::Accept, content)) => InputAnswer {
            action: InputAction::Accept,
            content,
        },
        Ok((ElicitationAction::Decline, _)) => InputAnswer {
            action: InputAction::Decline,
            content: None,
        },
        Ok(_) | Err(_) => InputAnswer {
            action: InputAction::Cancel,
            content: None,
        },
    };
    if let Err(err) = runs.answer_input(&caller, run_id, &request.id, answer) {
        tracing::debug!(run_id = %run_id, error = %err, "an elicited answer was not taken");
    }
}

/// One form put to the client's person: what they did, and what they filled in.
async fn elicit(
    peer: &Peer<RoleServer>,
    message: String,
    schema: Value,
) -> Result<(ElicitationAction, Option<Value>), String> {
    let Value::Object(schema) = schema else {
        return Err("the form's schema is not an object".to_owned());
    };
    let requested_schema =
        ElicitationSchema::from_json_schema(schema).map_err(|err| err.to_string())?;
    let params = ElicitRequestParams::FormElicitationParams {
        meta: None,
        message,
        requested_schema,
    };
    let result = peer
        .create_elicitation(params)
        .await
        .map_err(|err| err.to_string())?;
    Ok((result.action, result.content))
}

fn action_name(action: &ElicitationAction) -> &'static str {
    match action {
        ElicitationAction::Accept => "accept",
        ElicitationAction::Decline => "decline",
        ElicitationAction::Cancel => "cancel",
        _ => "an action this server does not know",
    }
}
