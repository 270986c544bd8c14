//! A streamed completion: `chat.completion.chunk` events of a run, then `[DONE]`.
//!
//! Only the text of the model turn that turns out to be the answer is forwarded. In ReAct mode
//! that is known only when the turn ends without tool calls, so its text is held back until then;
//! a plan-mode answer streams as it is written. The end reconciles what was sent with the run's
//! answer, so a reader that skipped events (it fell behind) still ends with the whole answer.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;

use axum::response::sse::Event;
use futures::Stream;

use super::run_failure;
use crate::api::wire::openai::{Chunk, ChunkChoice, Delta, Reply, RunMeta, Usage};
use crate::domain::{RunEvent, RunId, RunOutcome, StepIndex, StepKind, StepSummary};
use crate::runs::{Followed, RunEvents};

/// `chat.completion.chunk` events of a run, then `[DONE]`.
pub(super) fn completion_stream(
    reply: Reply,
    include_usage: bool,
    events: RunEvents,
) -> impl Stream<Item = Result<Event, Infallible>> + Send + 'static {
    let mut state = Chunks::new(reply, include_usage, events.run_id());
    state.events = Some(events);
    state.push_chunk(
        Delta {
            role: Some("assistant"),
            content: Some(""),
        },
        None,
    );
    futures::stream::unfold(state, |mut state| async move {
        let event = state.next().await?;
        Some((Ok(event), state))
    })
}

struct Chunks {
    reply: Reply,
    include_usage: bool,
    run_id: RunId,
    events: Option<RunEvents>,
    /// Data of the events ready to send.
    out: VecDeque<String>,
    /// Text deltas of model turns not yet known to be the answer.
    held: HashMap<StepIndex, Vec<String>>,
    /// Model steps known to write the answer (plan mode's `answer` step): streamed as they come.
    live: Vec<StepIndex>,
    /// Answer text sent so far.
    sent: String,
    ended: bool,
}

impl Chunks {
    fn new(reply: Reply, include_usage: bool, run_id: RunId) -> Self {
        Self {
            reply,
            include_usage,
            run_id,
            events: None,
            out: VecDeque::new(),
            held: HashMap::new(),
            live: Vec::new(),
            sent: String::new(),
            ended: false,
        }
    }

    async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(data) = self.out.pop_front() {
                return Some(Event::default().data(data));
            }
            if self.ended {
                return None;
            }
            match self.events.as_mut()?.next().await {
                Some(Followed::Event(event)) => self.on_event(event),
                // The end reconciles the text with the answer, so skipping ahead is safe.
                Some(Followed::Skipped(_)) => {}
                None => self.ended = true,
            }
        }
    }

    fn on_event(&mut self, event: RunEvent) {
        match event {
            RunEvent::StepStarted {
                step,
                kind: StepKind::Plan,
                ..
            } => {
                self.held.insert(step, Vec::new());
            }
            RunEvent::StepStarted {
                step,
                kind: StepKind::Answer,
                depends_on,
                ..
            } => {
                // ReAct records the answer as an instant step after the model turn that wrote
                // it; plan mode's answer step is itself a model call, streamed live.
                for turn in depends_on {
                    for text in self.held.remove(&turn).unwrap_or_default() {
                        self.send_text(&text);
                    }
                }
                self.live.push(step);
            }
            RunEvent::TokenDelta { step, text, .. } => {
                if self.live.contains(&step) {
                    self.send_text(&text);
                } else {
                    self.held.entry(step).or_default().push(text);
                }
            }
            RunEvent::StepFinished { step, summary, .. } => {
                let called_tools = matches!(
                    summary,
                    Some(StepSummary::ModelTurn { tool_calls, .. }) if !tool_calls.is_empty()
                );
                if called_tools {
                    self.held.remove(&step);
                }
            }
            RunEvent::RunFinished {
                status,
                answer,
                error,
                usage,
                ..
            } => self.finish(RunOutcome {
                status,
                answer,
                error,
                usage,
            }),
            RunEvent::RunStarted { .. }
            | RunEvent::StepStarted { .. }
            | RunEvent::ToolProgress { .. }
            | RunEvent::InputRequested { .. }
            | RunEvent::InputAnswered { .. }
            | RunEvent::RunResumed { .. }
            | RunEvent::ApprovalRequested { .. }
            | RunEvent::ApprovalDecided { .. } => {}
        }
    }

    fn finish(&mut self, outcome: RunOutcome) {
        self.ended = true;
        self.events = None;
        if !outcome.status.is_answered() {
            let err = run_failure(self.run_id, &outcome);
            self.out.push_back(err.body_json());
            self.out.push_back("[DONE]".to_owned());
            return;
        }
        let answer = outcome.answer.unwrap_or_default();
        match answer.strip_prefix(self.sent.as_str()) {
            Some(rest) if !rest.is_empty() => {
                let rest = rest.to_owned();
                self.send_text(&rest);
            }
            Some(_) => {}
            None => tracing::warn!(
                run_id = %self.run_id,
                "the streamed text differs from the run's answer (events were skipped)"
            ),
        }
        let meta = RunMeta {
            run_id: self.run_id,
            status: outcome.status,
            note: outcome.error.as_deref(),
        };
        let last = ChunkChoice {
            index: 0,
            delta: Delta::default(),
            logprobs: None,
            finish_reason: Some("stop"),
        };
        let usage = self.include_usage.then_some(None);
        self.push_with(vec![last], usage, Some(meta));
        if self.include_usage {
            let usage = Some(Usage::from(outcome.usage));
            self.push(Vec::new(), Some(usage));
        }
        self.out.push_back("[DONE]".to_owned());
    }

    fn send_text(&mut self, text: &str) {
        if text.is_empty() {
            return;
        }
        self.sent.push_str(text);
        self.push_chunk(
            Delta {
                role: None,
                content: Some(text),
            },
            None,
        );
    }

    fn push_chunk(&mut self, delta: Delta<'_>, finish_reason: Option<&'static str>) {
        let choice = ChunkChoice {
            index: 0,
            delta,
            logprobs: None,
            finish_reason,
        };
        // Until the last chunk, usage is null when the client asked for it.
        let usage = self.include_usage.then_some(None);
        self.push(vec![choice], usage);
    }

    fn push(&mut self, choices: Vec<ChunkChoice<'_>>, usage: Option<Option<Usage>>) {
        self.push_with(choices, usage, None);
    }

    fn push_with(
        &mut self,
        choices: Vec<ChunkChoice<'_>>,
        usage: Option<Option<Usage>>,
        switchboard: Option<RunMeta<'_>>,
    ) {
        let chunk = Chunk {
            reply: &self.reply,
            object: "chat.completion.chunk",
            system_fingerprint: None,
            choices,
            usage,
            switchboard,
        };
        self.out.push_back(super::to_json(&chunk));
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::domain::{RunStatus, StepStatus, TokenUsage};

    fn chunks() -> Chunks {
        let reply = Reply {
            id: "chatcmpl-x".into(),
            created: 0,
            model: "m".into(),
        };
        Chunks::new(reply, true, RunId::new())
    }

    fn step_started(step: StepIndex, kind: StepKind, depends_on: Vec<StepIndex>) -> RunEvent {
        RunEvent::StepStarted {
            run_id: RunId::new(),
            step,
            kind,
            name: "m".into(),
            server: None,
            input: json!({}),
            summary: None,
            depends_on,
            attempt: 1,
            at: 0,
        }
    }

    fn delta(step: StepIndex, text: &str) -> RunEvent {
        RunEvent::TokenDelta {
            run_id: RunId::new(),
            step,
            text: text.into(),
        }
    }

    fn contents(chunks: &Chunks) -> Vec<Value> {
        chunks
            .out
            .iter()
            .map(|data| serde_json::from_str(data).unwrap_or_else(|_| Value::String(data.clone())))
            .collect()
    }

    #[test]
    fn only_the_answering_turn_is_streamed() {
        let mut c = chunks();
        c.on_event(step_started(0, StepKind::Plan, vec![]));
        c.on_event(delta(0, "Let me check. "));
        c.on_event(RunEvent::StepFinished {
            run_id: c.run_id,
            step: 0,
            status: StepStatus::Succeeded,
            output: Some(json!({"content": "Let me check. ", "tool_calls": [{"name": "t"}]})),
            summary: Some(StepSummary::ModelTurn {
                text: "Let me check. ".into(),
                tool_calls: vec!["t".into()],
            }),
            error: None,
            usage: None,
            at: 0,
        });
        c.on_event(step_started(3, StepKind::Plan, vec![2]));
        c.on_event(delta(3, "Forty"));
        c.on_event(delta(3, "-two."));
        assert!(c.out.is_empty(), "{:?}", contents(&c));
        c.on_event(step_started(4, StepKind::Answer, vec![3]));
        assert_eq!(c.sent, "Forty-two.");
        c.on_event(RunEvent::RunFinished {
            run_id: c.run_id,
            status: RunStatus::Succeeded,
            answer: Some("Forty-two.".into()),
            error: None,
            usage: TokenUsage {
                input_tokens: 3,
                output_tokens: 4,
            },
            at: 0,
        });
        assert_eq!(c.sent, "Forty-two.");
        let all = contents(&c);
        let texts: Vec<&str> = all
            .iter()
            .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
            .collect();
        assert_eq!(texts, ["Forty", "-two."]);
        let n = all.len();
        assert_eq!(
            all[n - 3]["choices"][0]["finish_reason"],
            "stop",
            "{all:#?}"
        );
        assert_eq!(all[n - 3]["usage"], Value::Null, "{all:#?}");
        assert_eq!(all[n - 2]["usage"]["total_tokens"], 7, "{all:#?}");
        assert_eq!(all[n - 2]["choices"], json!([]), "{all:#?}");
        assert_eq!(all[n - 1], "[DONE]");
    }

    #[test]
    fn missing_text_is_sent_at_the_end_and_failures_become_error_chunks() {
        let mut c = chunks();
        c.on_event(RunEvent::RunFinished {
            run_id: c.run_id,
            status: RunStatus::Succeeded,
            answer: Some("All of it".into()),
            error: None,
            usage: TokenUsage::default(),
            at: 0,
        });
        assert_eq!(c.sent, "All of it");

        let mut c = chunks();
        c.on_event(RunEvent::RunFinished {
            run_id: c.run_id,
            status: RunStatus::BudgetExhausted,
            answer: None,
            error: Some("the budget of 2 steps was reached".into()),
            usage: TokenUsage::default(),
            at: 0,
        });
        let all = contents(&c);
        assert_eq!(all.len(), 2, "{all:#?}");
        assert_eq!(all[0]["error"]["code"], "run_budget_exhausted", "{all:#?}");
        let message = all[0]["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("the budget of 2 steps") && message.contains(&c.run_id.to_string()),
            "{message}"
        );
        assert_eq!(all[1], "[DONE]");
    }

    #[test]
    fn a_partial_run_streams_its_answer_and_says_partial_on_the_last_chunk() {
        let mut c = chunks();
        c.on_event(RunEvent::RunFinished {
            run_id: c.run_id,
            status: RunStatus::Partial,
            answer: Some("Half of it".into()),
            error: Some("answered, but … `calc__evaluate` (1 failed)".into()),
            usage: TokenUsage::default(),
            at: 0,
        });
        assert_eq!(c.sent, "Half of it");
        let all = contents(&c);
        assert!(all.iter().all(|c| c.get("error").is_none()), "{all:#?}");
        let last = all
            .iter()
            .find(|c| c["choices"][0]["finish_reason"] == "stop")
            .expect("a finishing chunk");
        assert_eq!(last["switchboard"]["status"], "partial", "{all:#?}");
        assert_eq!(last["switchboard"]["run_id"], c.run_id.to_string());
        assert!(
            last["switchboard"]["note"]
                .as_str()
                .is_some_and(|n| n.contains("calc__evaluate")),
            "{all:#?}"
        );
        let others = all
            .iter()
            .filter(|c| c.get("switchboard").is_some())
            .count();
        assert_eq!(others, 1, "only the finishing chunk carries it: {all:#?}");
    }
}
