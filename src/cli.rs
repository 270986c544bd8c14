//! Text the command line prints for `tools`, `call` and `chat`: formatting only, no IO.

use std::collections::HashMap;
use std::fmt::Write as _;

use serde_json::json;

use crate::auth::CreatedKey;
use crate::domain::{ApprovalDecision, RunEvent, StepIndex, StepKind, UnixMillis};
use crate::hub::{Hub, InvokeError, InvokeOutcome};
use crate::runs::Followed;
use crate::store::KeyRecord;

/// The catalog and each server's health, as a table or JSON.
pub fn tools_report(hub: &Hub, as_json: bool) -> String {
    let catalog = hub.catalog();
    let statuses = hub.mcp().statuses();
    if as_json {
        let report = crate::api::wire::catalog::ToolsReport::new(&statuses, &catalog);
        return serde_json::to_string_pretty(&report).unwrap_or_default();
    }
    let mut out = String::from("SERVERS\n");
    for s in &statuses {
        let status = crate::api::wire::catalog::ServerState::from(s.status).as_str();
        out.push_str(&format!(
            "  {:<20} {:<16} {:<13} tools={:<4} protocol={}",
            s.name,
            s.transport,
            status,
            s.tool_count,
            s.protocol_version.as_deref().unwrap_or("-"),
        ));
        if let Some(err) = &s.last_error {
            out.push_str(&format!("  last error: {err}"));
        }
        if let Some(note) = &s.note {
            out.push_str(&format!("  note: {note}"));
        }
        out.push('\n');
    }
    out.push_str(&format!("\nTOOLS ({})\n", catalog.len()));
    for tool in catalog.iter() {
        let summary: String = tool
            .description
            .lines()
            .next()
            .unwrap_or("")
            .chars()
            .take(80)
            .collect();
        out.push_str(&format!("  {:<40} {}\n", tool.exposed_name, summary));
    }
    let dropped: Vec<_> = catalog.dropped().collect();
    if !dropped.is_empty() {
        out.push_str("\nLEFT OUT\n");
        for d in dropped {
            out.push_str(&format!("  {}/{:?}: {}\n", d.server, d.tool, d.reason));
        }
    }
    out
}

/// The result of `switchboard call` as pretty JSON, and whether it succeeded.
/// What `switchboard keys create` prints: the key, once, and how to use it.
pub fn created_key(created: &CreatedKey) -> String {
    let record = &created.record;
    let expires = record
        .expires_at
        .map_or_else(|| "never".to_owned(), |at| format!("{} (Unix ms)", at));
    format!(
        "{}\n\nkey id {} for user `{}` with role `{}`, expires: {expires}\nThis is the only time the key is shown; send it as `Authorization: Bearer <key>` or paste it at /signin.",
        created.token.expose(),
        record.id,
        record.user,
        record.role,
    )
}

/// What `switchboard keys list` prints: one line per key, never a secret.
pub fn key_table(keys: &[KeyRecord], now: UnixMillis) -> String {
    if keys.is_empty() {
        return "no keys; create one with `switchboard keys create --user NAME --role admin`"
            .to_owned();
    }
    let mut out = String::from(
        "ID            USER                 ROLE         STATE     CREATED(ms)    EXPIRES(ms)\n",
    );
    for key in keys {
        let state = if key.revoked_at.is_some() {
            "revoked"
        } else if key.expires_at.is_some_and(|at| at <= now) {
            "expired"
        } else {
            "active"
        };
        let expires = key
            .expires_at
            .map_or_else(|| "never".to_owned(), |at| at.to_string());
        let _ = writeln!(
            out,
            "{:<13} {:<20} {:<12} {:<9} {:<14} {}",
            key.id, key.user, key.role, state, key.created_at, expires
        );
    }
    out.truncate(out.trim_end().len());
    out
}

pub fn call_report(outcome: Result<InvokeOutcome, InvokeError>) -> (String, bool) {
    match outcome {
        Ok(outcome) => {
            let ok = outcome.result.is_error != Some(true);
            let body = json!({
                "tool": outcome.tool.exposed_name,
                "duration_ms": outcome.duration.as_secs_f64() * 1000.0,
                "truncated": outcome.truncated,
                "result": outcome.result,
            });
            (serde_json::to_string_pretty(&body).unwrap_or_default(), ok)
        }
        Err(
            ref err @ (InvokeError::InvalidArguments { ref errors, .. }
            | InvokeError::InvalidOutput { ref errors, .. }),
        ) => {
            let mut text = format!("error: {err}");
            for e in errors {
                let path = if e.path.is_empty() {
                    "(root)"
                } else {
                    e.path.as_str()
                };
                text.push_str(&format!("\n  at {path}: {}", e.message));
            }
            (text, false)
        }
        Err(err) => (format!("error: {err}"), false),
    }
}

/// What `switchboard chat` prints for a run's events: one line per step start and finish, model
/// text as it streams, the answer (when no streamed turn showed it) and the run's end.
#[derive(Default)]
pub struct RunPrinter {
    steps: HashMap<StepIndex, (StepKind, String, UnixMillis)>,
    run_started: UnixMillis,
    /// Model text printed since the last step line.
    streamed: String,
    /// What the last model turn to finish streamed (the answer, if that turn answered).
    last_turn: String,
}

/// The text for one event: what goes to stdout, what to stderr, and whether the run ended.
#[derive(Debug, Default, PartialEq)]
pub struct Printed {
    pub stdout: String,
    pub stderr: String,
    /// `Some(succeeded)` once the run has finished.
    pub finished: Option<bool>,
}

impl RunPrinter {
    /// The text for `item`.
    pub fn print(&mut self, item: &Followed) -> Printed {
        let mut printed = Printed::default();
        match item {
            Followed::Event(event) => self.event(event, &mut printed),
            Followed::Skipped(missed) => {
                self.end_text(&mut printed.stdout);
                let _ = writeln!(
                    printed.stdout,
                    "({missed} events skipped: the terminal read too slowly)"
                );
            }
        }
        printed
    }

    fn event(&mut self, event: &RunEvent, printed: &mut Printed) {
        let out = &mut printed.stdout;
        match event {
            RunEvent::RunStarted {
                run_id,
                model,
                agent,
                at,
                ..
            } => {
                self.run_started = *at;
                let agent = agent
                    .as_deref()
                    .map(|a| format!(", agent {a}"))
                    .unwrap_or_default();
                let _ = writeln!(out, "run {run_id} (model {model}{agent})");
            }
            RunEvent::StepStarted {
                step,
                kind,
                name,
                server,
                at,
                ..
            } => {
                self.end_text(out);
                if *kind == StepKind::Plan {
                    self.last_turn.clear();
                }
                let name = match server {
                    Some(server) => format!("{name} [{server}]"),
                    None => name.clone(),
                };
                let _ = writeln!(out, "[{step}] {:<7} {name} started", kind.as_str());
                self.steps.insert(*step, (*kind, name, *at));
            }
            RunEvent::TokenDelta { text, .. } => {
                self.streamed.push_str(text);
                out.push_str(text);
            }
            RunEvent::ToolProgress { step, progress, .. } => {
                self.end_text(out);
                let total = progress.total.map(|t| format!("/{t}")).unwrap_or_default();
                let message = progress.message.as_deref().unwrap_or("");
                let value = progress.progress;
                let _ = writeln!(out, "[{step}] progress {value}{total} {message}");
            }
            RunEvent::InputRequested { step, request, .. } => {
                self.end_text(out);
                let _ = writeln!(
                    out,
                    "[{step}] {} asks for input (answer it in the web chat, or it is cancelled when the call ends): {}",
                    request.server, request.message
                );
            }
            RunEvent::RunResumed { from_step, .. } => {
                self.end_text(out);
                let _ = writeln!(out, "resumed from step {from_step}");
            }
            RunEvent::InputAnswered { step, action, .. } => {
                self.end_text(out);
                let _ = writeln!(out, "[{step}] input {}", action.as_str());
            }
            RunEvent::ApprovalRequested { step, request, .. } => {
                self.end_text(out);
                let _ = writeln!(
                    out,
                    "[{step}] {} needs a person's approval ({})",
                    request.tool, request.reason
                );
            }
            RunEvent::ApprovalDecided { step, decision, .. } => {
                self.end_text(out);
                let what = match decision {
                    ApprovalDecision::Approved { by, .. } => format!("approved by {by}"),
                    ApprovalDecision::Denied { by, .. } => format!("denied by {by}"),
                    ApprovalDecision::Expired => "expired".to_owned(),
                    ApprovalDecision::Unattended => "denied: nobody can approve here".to_owned(),
                };
                let _ = writeln!(out, "[{step}] approval {what}");
            }
            RunEvent::StepFinished { .. } => self.step_finished(event, out),
            RunEvent::RunFinished { .. } => self.run_finished(event, printed),
        }
    }

    fn step_finished(&mut self, event: &RunEvent, out: &mut String) {
        let RunEvent::StepFinished {
            step,
            status,
            error,
            at,
            ..
        } = event
        else {
            return;
        };
        if !self.streamed.is_empty() {
            self.last_turn = self.streamed.clone();
        }
        self.end_text(out);
        let (kind, name, started) = self
            .steps
            .get(step)
            .map_or(("step", "?", *at), |(k, n, s)| (k.as_str(), n.as_str(), *s));
        let error = error
            .as_deref()
            .map(|e| format!(": {e}"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "[{step}] {kind:<7} {name} {} in {} ms{error}",
            status.as_str(),
            at - started
        );
    }

    fn run_finished(&mut self, event: &RunEvent, printed: &mut Printed) {
        let RunEvent::RunFinished {
            status,
            answer,
            error,
            usage,
            at,
            ..
        } = event
        else {
            return;
        };
        let out = &mut printed.stdout;
        self.end_text(out);
        if let Some(answer) = answer.as_deref().filter(|a| *a != self.last_turn) {
            let _ = writeln!(out, "{answer}");
        }
        let _ = writeln!(
            out,
            "run {} in {} ms ({} input + {} output tokens)",
            status.as_str(),
            at - self.run_started,
            usage.input_tokens,
            usage.output_tokens
        );
        if let Some(error) = error {
            let _ = writeln!(printed.stderr, "error: {error}");
        }
        // `partial` answered too (its note went to stderr above): the command did its job.
        printed.finished = Some(status.is_answered());
    }

    /// End a line of streamed text before the next step line.
    fn end_text(&mut self, out: &mut String) {
        if !self.streamed.is_empty() && !self.streamed.ends_with('\n') {
            out.push('\n');
        }
        self.streamed.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ConversationId, RunId, RunStatus, StepStatus, TokenUsage};

    #[test]
    fn a_run_prints_its_steps_streamed_text_and_end() {
        let run_id = RunId::new();
        let mut printer = RunPrinter::default();
        let mut text = String::new();
        let events = [
            RunEvent::RunStarted {
                run_id,
                conversation_id: Some(ConversationId::new()),
                agent: None,
                model: "m".into(),
                user_message: "hi".into(),
                trace_id: None,
                user: None,
                at: 100,
            },
            RunEvent::StepStarted {
                run_id,
                step: 0,
                kind: StepKind::Plan,
                name: "m".into(),
                server: None,
                input: serde_json::Value::Null,
                summary: None,
                depends_on: vec![],
                attempt: 1,
                at: 100,
            },
            RunEvent::TokenDelta {
                run_id,
                step: 0,
                text: "Four.".into(),
            },
            RunEvent::StepFinished {
                run_id,
                step: 0,
                status: StepStatus::Succeeded,
                output: None,
                summary: None,
                error: None,
                usage: None,
                at: 110,
            },
        ];
        for event in &events {
            let printed = printer.print(&Followed::Event(event.clone()));
            assert_eq!(printed.finished, None);
            text.push_str(&printed.stdout);
        }
        let end = printer.print(&Followed::Event(RunEvent::RunFinished {
            run_id,
            status: RunStatus::Succeeded,
            answer: Some("Four.".into()),
            error: None,
            usage: TokenUsage {
                input_tokens: 1,
                output_tokens: 2,
            },
            at: 125,
        }));
        text.push_str(&end.stdout);
        assert_eq!(end.finished, Some(true));
        assert_eq!(
            text,
            format!(
                "run {run_id} (model m)\n[0] plan    m started\nFour.\n[0] plan    m succeeded in 10 ms\n\
                 run succeeded in 25 ms (1 input + 2 output tokens)\n"
            )
        );
    }
}
