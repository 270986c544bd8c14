//! Logging set-up: one `tracing` subscriber writing to stderr (stdout belongs to the MCP
//! protocol when we run as a bundled stdio server), filtered by `RUST_LOG`.

mod escape;

pub use escape::{Escaped, EscapingFields, escape_control};
use tracing_subscriber::EnvFilter;

/// Install the global subscriber; `default_filter` applies when `RUST_LOG` is unset. Every
/// field of every line is escaped ([`EscapingFields`]): a log that shows text from outside
/// (child stderr, servers' and providers' messages) must not let it forge lines or drive the
/// terminal.
pub fn init(default_filter: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .fmt_fields(EscapingFields)
        // Colour codes only for a person at a terminal: a bundled server's stderr is captured
        // into our log and the status API's stderr tail, where escapes would be noise.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}

/// Log one run event at the level it deserves (lifecycle at info, steps at debug).
/// OpenTelemetry spans are derived from the same events (see `docs/ARCHITECTURE.md`).
pub fn run_event(event: &crate::domain::RunEvent) {
    use crate::domain::RunEvent;
    match event {
        RunEvent::RunStarted {
            run_id,
            agent,
            model,
            ..
        } => {
            tracing::info!(run_id = %run_id, agent = agent.as_deref().unwrap_or("-"), model = %model, "run started");
        }
        RunEvent::StepStarted {
            run_id,
            step,
            kind,
            name,
            ..
        } => {
            tracing::debug!(run_id = %run_id, step, kind = kind.as_str(), name = %name, "step started");
        }
        RunEvent::StepFinished {
            run_id,
            step,
            status,
            error,
            ..
        } => {
            tracing::debug!(run_id = %run_id, step, status = status.as_str(), error = error.as_deref().unwrap_or(""), "step finished");
        }
        RunEvent::RunFinished {
            run_id,
            status,
            usage,
            ..
        } => {
            tracing::info!(run_id = %run_id, status = status.as_str(), input_tokens = usage.input_tokens, output_tokens = usage.output_tokens, "run finished");
        }
        RunEvent::InputRequested {
            run_id,
            step,
            request,
        } => {
            tracing::info!(run_id = %run_id, step, server = %request.server, input = %request.id, "a server asks the person for input");
        }
        RunEvent::RunResumed {
            run_id, from_step, ..
        } => {
            tracing::info!(run_id = %run_id, from_step, "run resumed from its checkpoint");
        }
        RunEvent::InputAnswered {
            run_id,
            step,
            id,
            action,
        } => {
            tracing::info!(run_id = %run_id, step, input = %id, action = action.as_str(), "input answered");
        }
        RunEvent::ApprovalRequested {
            run_id,
            step,
            request,
            ..
        } => {
            tracing::info!(run_id = %run_id, step, tool = %request.tool, approval = %request.id, "a tool call waits for approval");
        }
        RunEvent::ApprovalDecided {
            run_id,
            step,
            id,
            decision,
            ..
        } => {
            tracing::info!(run_id = %run_id, step, approval = %id, decision = ?decision_name(decision), "approval decided");
        }
        RunEvent::TokenDelta { .. } | RunEvent::ToolProgress { .. } => {}
    }
}

/// An approval decision's name, for the log (its arguments stay out).
fn decision_name(decision: &crate::domain::ApprovalDecision) -> &'static str {
    use crate::domain::ApprovalDecision;
    match decision {
        ApprovalDecision::Approved { edited: false, .. } => "approved",
        ApprovalDecision::Approved { edited: true, .. } => "approved_edited",
        ApprovalDecision::Denied { .. } => "denied",
        ApprovalDecision::Expired => "expired",
        ApprovalDecision::Unattended => "unattended",
    }
}
