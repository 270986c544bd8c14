//! Run listings and details as `GET /api/runs` and `GET /api/runs/{id}` return them, and the
//! answer of `POST /api/runs/{id}/cancel`. Times are Unix milliseconds.

use serde::Serialize;
use serde_json::Value;

use crate::domain::{
    ConversationId, RunId, RunStatus, StepIndex, StepKind, StepStatus, UnixMillis,
};
use crate::store;

/// `GET /api/runs`: one page of runs, newest first.
#[derive(Debug, Serialize)]
pub(in crate::api) struct RunPage<'a> {
    runs: Vec<RunSummary<'a>>,
    /// The `cursor` of the next page; null on the last page.
    next_cursor: Option<&'a str>,
}

/// A run as listed, and the top of its detail. In a listing `user_message`, `answer` and `error`
/// are excerpts (ending in `…` when cut); in a detail they are complete.
#[derive(Debug, Serialize)]
pub(in crate::api) struct RunSummary<'a> {
    id: RunId,
    /// Null once the conversation has been deleted (runs are kept for `/debug`).
    conversation_id: Option<ConversationId>,
    /// Who started it (null for runs from before users existed).
    user: Option<&'a str>,
    agent: Option<&'a str>,
    model: &'a str,
    status: RunStatus,
    user_message: &'a str,
    answer: Option<&'a str>,
    error: Option<&'a str>,
    started_at: UnixMillis,
    finished_at: Option<UnixMillis>,
    duration_ms: Option<i64>,
    step_count: u32,
    tool_call_count: u32,
    input_tokens: u64,
    output_tokens: u64,
    /// The trace id telemetry exported the run under, for finding it in a tracing backend.
    trace_id: Option<&'a str>,
}

/// `GET /api/runs/{id}`: the summary's fields beside the whole DAG.
#[derive(Debug, Serialize)]
pub(in crate::api) struct RunDetail<'a> {
    #[serde(flatten)]
    summary: RunSummary<'a>,
    /// Ordered by index.
    steps: Vec<Step<'a>>,
    /// Ordered by (to, from).
    edges: Vec<Edge>,
}

/// One step of a run detail, with its whole stored input and output: `/debug` shows every byte
/// (a large value is the store's truncation marker, as stored).
#[derive(Debug, Serialize)]
pub(in crate::api) struct Step<'a> {
    index: StepIndex,
    kind: StepKind,
    name: &'a str,
    server: Option<&'a str>,
    status: StepStatus,
    started_at: UnixMillis,
    finished_at: Option<UnixMillis>,
    duration_ms: Option<i64>,
    input: &'a Value,
    output: Option<&'a Value>,
    error: Option<&'a str>,
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    /// As the engine numbered it; a retry restarts the same step with the next number.
    attempt: u32,
}

/// `to` depends on `from`: an edge of the run's DAG.
#[derive(Debug, Serialize)]
pub(in crate::api) struct Edge {
    from: StepIndex,
    to: StepIndex,
}

/// The 202 of `POST /api/runs/{id}/cancel`: the run ends `cancelled` shortly after.
#[derive(Debug, Serialize)]
pub(in crate::api) struct Cancelling {
    run_id: RunId,
    /// Always `cancelling`.
    status: &'static str,
}

impl Cancelling {
    /// The answer for cancelling `run_id`.
    pub(in crate::api) fn new(run_id: RunId) -> Self {
        Self {
            run_id,
            status: "cancelling",
        }
    }
}

impl<'a> From<&'a store::RunPage> for RunPage<'a> {
    fn from(page: &'a store::RunPage) -> Self {
        Self {
            runs: page.runs.iter().map(RunSummary::from).collect(),
            next_cursor: page.next_cursor.as_deref(),
        }
    }
}

impl<'a> From<&'a store::RunSummary> for RunSummary<'a> {
    fn from(run: &'a store::RunSummary) -> Self {
        Self {
            id: run.id,
            conversation_id: run.conversation_id,
            user: run.user.as_deref(),
            agent: run.agent.as_deref(),
            model: &run.model,
            status: run.status,
            user_message: &run.user_message,
            answer: run.answer.as_deref(),
            error: run.error.as_deref(),
            started_at: run.started_at,
            finished_at: run.finished_at,
            duration_ms: run.duration_ms,
            step_count: run.step_count,
            tool_call_count: run.tool_call_count,
            input_tokens: run.input_tokens,
            output_tokens: run.output_tokens,
            trace_id: run.trace_id.as_deref(),
        }
    }
}

impl<'a> From<&'a store::RunDetail> for RunDetail<'a> {
    fn from(run: &'a store::RunDetail) -> Self {
        Self {
            summary: RunSummary::from(&run.summary),
            steps: run.steps.iter().map(Step::from).collect(),
            edges: run.edges.iter().map(Edge::from).collect(),
        }
    }
}

impl<'a> From<&'a store::StepRecord> for Step<'a> {
    fn from(step: &'a store::StepRecord) -> Self {
        Self {
            index: step.index,
            kind: step.kind,
            name: &step.name,
            server: step.server.as_deref(),
            status: step.status,
            started_at: step.started_at,
            finished_at: step.finished_at,
            duration_ms: step.duration_ms,
            input: &step.input,
            output: step.output.as_ref(),
            error: step.error.as_deref(),
            input_tokens: step.input_tokens,
            output_tokens: step.output_tokens,
            attempt: step.attempt,
        }
    }
}

impl From<&store::StepEdge> for Edge {
    fn from(edge: &store::StepEdge) -> Self {
        Self {
            from: edge.from,
            to: edge.to,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::{Cancelling, RunDetail, RunPage};
    use crate::domain::{ConversationId, RunId, RunStatus, StepKind, StepStatus};
    use crate::store::{self, RunSummary, StepEdge, StepRecord};

    fn run_id() -> RunId {
        RunId(uuid::Uuid::from_u128(1))
    }

    fn summary() -> RunSummary {
        RunSummary {
            id: run_id(),
            conversation_id: Some(ConversationId(uuid::Uuid::from_u128(2))),
            user: None,
            agent: None,
            model: "gpt".to_owned(),
            status: RunStatus::BudgetExhausted,
            user_message: "add 2 and 2".to_owned(),
            answer: Some("4".to_owned()),
            error: None,
            started_at: 1_000,
            finished_at: Some(1_500),
            duration_ms: Some(500),
            step_count: 3,
            tool_call_count: 1,
            input_tokens: 10,
            output_tokens: 20,
            trace_id: Some("0af7651916cd43dd8448eb211c80319c".to_owned()),
        }
    }

    fn summary_json() -> Value {
        json!({
            "id": "00000000-0000-0000-0000-000000000001",
            "conversation_id": "00000000-0000-0000-0000-000000000002",
            "agent": null,
            "model": "gpt",
            "status": "budget_exhausted",
            "user_message": "add 2 and 2",
            "answer": "4",
            "error": null,
            "started_at": 1000,
            "finished_at": 1500,
            "duration_ms": 500,
            "step_count": 3,
            "tool_call_count": 1,
            "input_tokens": 10,
            "output_tokens": 20,
            "trace_id": "0af7651916cd43dd8448eb211c80319c",
            "user": null,
        })
    }

    #[test]
    fn a_page_lists_summaries_and_the_cursor() {
        let page = store::RunPage {
            runs: vec![summary()],
            next_cursor: Some("abc".to_owned()),
        };
        let last = store::RunPage {
            runs: Vec::new(),
            next_cursor: None,
        };
        assert_eq!(
            serde_json::to_value(RunPage::from(&page)).unwrap(),
            json!({ "runs": [summary_json()], "next_cursor": "abc" })
        );
        assert_eq!(
            serde_json::to_value(RunPage::from(&last)).unwrap(),
            json!({ "runs": [], "next_cursor": null })
        );
    }

    #[test]
    fn a_detail_is_the_summary_with_steps_and_edges() {
        let detail = store::RunDetail {
            summary: summary(),
            steps: vec![
                StepRecord {
                    index: 0,
                    kind: StepKind::Plan,
                    name: "gpt".to_owned(),
                    server: None,
                    status: StepStatus::Succeeded,
                    started_at: 1_000,
                    finished_at: Some(1_100),
                    duration_ms: Some(100),
                    input: json!({"messages": []}),
                    output: Some(json!({"content": ""})),
                    error: None,
                    input_tokens: Some(10),
                    output_tokens: Some(20),
                    attempt: 1,
                },
                StepRecord {
                    index: 1,
                    kind: StepKind::Act,
                    name: "calc__add".to_owned(),
                    server: Some("calc".to_owned()),
                    status: StepStatus::Failed,
                    started_at: 1_100,
                    finished_at: None,
                    duration_ms: None,
                    input: json!({"a": 2, "b": 2}),
                    output: None,
                    error: Some("boom".to_owned()),
                    input_tokens: None,
                    output_tokens: None,
                    attempt: 2,
                },
            ],
            edges: vec![StepEdge { from: 0, to: 1 }],
        };
        let mut expected = summary_json();
        expected["steps"] = json!([
            {
                "index": 0,
                "kind": "plan",
                "name": "gpt",
                "server": null,
                "status": "succeeded",
                "started_at": 1000,
                "finished_at": 1100,
                "duration_ms": 100,
                "input": {"messages": []},
                "output": {"content": ""},
                "error": null,
                "input_tokens": 10,
                "output_tokens": 20,
                "attempt": 1,
            },
            {
                "index": 1,
                "kind": "act",
                "name": "calc__add",
                "server": "calc",
                "status": "failed",
                "started_at": 1100,
                "finished_at": null,
                "duration_ms": null,
                "input": {"a": 2, "b": 2},
                "output": null,
                "error": "boom",
                "input_tokens": null,
                "output_tokens": null,
                "attempt": 2,
            },
        ]);
        expected["edges"] = json!([{ "from": 0, "to": 1 }]);
        assert_eq!(
            serde_json::to_value(RunDetail::from(&detail)).unwrap(),
            expected
        );
    }

    #[test]
    fn cancelling_names_the_run() {
        assert_eq!(
            serde_json::to_value(Cancelling::new(run_id())).unwrap(),
            json!({ "run_id": "00000000-0000-0000-0000-000000000001", "status": "cancelling" })
        );
    }
}
