//! Step bookkeeping for one run: numbering steps, emitting their start/finish events, tracking
//! which are still running (so cancellation and budgets can close them), counting what the
//! budgets count (model calls and tool calls actually made), and summing tokens.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::EventSink;
use crate::domain::{
    RunEvent, RunId, StepIndex, StepKind, StepStatus, StepSummary, TokenUsage, now_millis,
};

/// Shared by the run's tasks; all methods are quick and lock-free of IO.
pub struct Recorder {
    run_id: RunId,
    sink: Arc<dyn EventSink>,
    state: Mutex<State>,
    /// When this process began executing the run.
    since: tokio::time::Instant,
    /// Time the run spent working (not waiting for a person) before it was resumed here.
    before: std::time::Duration,
}

/// What a checkpoint keeps of the bookkeeping: numbering, budgets, tokens and time spent.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(crate) struct Counts {
    pub next_step: StepIndex,
    pub model_calls: u32,
    pub tool_calls: u32,
    pub usage: TokenUsage,
    /// Milliseconds the run worked (waits for a person excluded): what its timeout counts.
    pub active_ms: u64,
}

#[derive(Default)]
struct State {
    next_step: StepIndex,
    running: BTreeSet<StepIndex>,
    usage: TokenUsage,
    /// Act steps that ran (were started): what `max_tool_calls` counts.
    tool_calls: u32,
    /// Plan and answer steps that ran, each one model call: what `max_steps` counts.
    model_calls: u32,
    /// Time spent waiting for approvals that have been decided.
    waited: std::time::Duration,
    /// Approvals being waited for now, and since when the first of them waits.
    waiting: (usize, Option<tokio::time::Instant>),
}

impl Recorder {
    pub(crate) fn new(run_id: RunId, sink: Arc<dyn EventSink>) -> Self {
        Self {
            run_id,
            sink,
            state: Mutex::new(State::default()),
            since: tokio::time::Instant::now(),
            before: std::time::Duration::ZERO,
        }
    }

    /// The bookkeeping of a run resumed from a checkpoint with these counts.
    pub(crate) fn resumed(run_id: RunId, sink: Arc<dyn EventSink>, counts: Counts) -> Self {
        Self {
            run_id,
            sink,
            state: Mutex::new(State {
                next_step: counts.next_step,
                usage: counts.usage,
                tool_calls: counts.tool_calls,
                model_calls: counts.model_calls,
                ..State::default()
            }),
            since: tokio::time::Instant::now(),
            before: std::time::Duration::from_millis(counts.active_ms),
        }
    }

    /// The counts a checkpoint taken now keeps.
    pub(crate) fn counts_now(&self) -> Counts {
        let active = self.active();
        let state = self.lock();
        Counts {
            next_step: state.next_step,
            model_calls: state.model_calls,
            tool_calls: state.tool_calls,
            usage: state.usage,
            active_ms: u64::try_from(active.as_millis()).unwrap_or(u64::MAX),
        }
    }

    /// How long the run has worked, across processes, waits for a person excluded.
    pub(crate) fn active(&self) -> std::time::Duration {
        (self.before + self.since.elapsed()).saturating_sub(self.waited())
    }

    /// Take over step `step`, started before the run was resumed, as running here: it is
    /// finished (or aborted) like the steps this process started.
    pub(crate) fn adopt(&self, step: StepIndex) {
        self.lock().running.insert(step);
    }

    /// The run's id.
    pub fn run_id(&self) -> RunId {
        self.run_id
    }

    /// Mark a wait for a person's approval until the guard is dropped. Overlapping waits of
    /// parallel calls count once.
    pub(crate) fn begin_wait(&self) -> WaitGuard<'_> {
        let mut state = self.lock();
        if state.waiting.0 == 0 {
            state.waiting.1 = Some(tokio::time::Instant::now());
        }
        state.waiting.0 += 1;
        WaitGuard { recorder: self }
    }

    /// How long the run has waited for approvals so far (a wait in progress included).
    pub(crate) fn waited(&self) -> std::time::Duration {
        let state = self.lock();
        state.waited
            + state
                .waiting
                .1
                .map_or_else(Default::default, |since| since.elapsed())
    }

    /// Forward an event as is.
    pub fn emit(&self, event: RunEvent) {
        self.sink.emit(event);
    }

    /// Start a step that does work and return its index: an act is a tool call, a plan or
    /// answer step a model call, and each counts against its budget.
    pub fn start(
        &self,
        kind: StepKind,
        name: &str,
        server: Option<String>,
        input: Value,
        summary: Option<StepSummary>,
        depends_on: Vec<StepIndex>,
    ) -> StepIndex {
        self.open(kind, name, server, input, summary, depends_on, true)
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "a step's start fields plus whether it counts against the budgets"
    )]
    fn open(
        &self,
        kind: StepKind,
        name: &str,
        server: Option<String>,
        input: Value,
        summary: Option<StepSummary>,
        depends_on: Vec<StepIndex>,
        counted: bool,
    ) -> StepIndex {
        let step = {
            let mut state = self.lock();
            let step = state.next_step;
            state.next_step += 1;
            if counted {
                match kind {
                    StepKind::Act => state.tool_calls += 1,
                    StepKind::Plan | StepKind::Answer | StepKind::Sample => {
                        state.model_calls += 1;
                    }
                    StepKind::Observe => {}
                }
            }
            state.running.insert(step);
            step
        };
        self.sink.emit(RunEvent::StepStarted {
            run_id: self.run_id,
            step,
            kind,
            name: name.to_owned(),
            server,
            input,
            summary,
            depends_on,
            attempt: 1,
            at: now_millis(),
        });
        step
    }

    /// Finish a step (once; later calls for the same step are ignored).
    pub fn finish(
        &self,
        step: StepIndex,
        status: StepStatus,
        output: Option<Value>,
        summary: Option<StepSummary>,
        error: Option<String>,
        usage: Option<TokenUsage>,
    ) {
        {
            let mut state = self.lock();
            if !state.running.remove(&step) {
                return;
            }
            if let Some(usage) = usage {
                state.usage += usage;
            }
        }
        self.sink.emit(RunEvent::StepFinished {
            run_id: self.run_id,
            step,
            status,
            output,
            summary,
            error,
            usage,
            at: now_millis(),
        });
    }

    /// Record a step that is decided without running (skipped dependents, calls refused or
    /// dropped before they ran, observes, instant answers). It counts against no budget:
    /// nothing was called.
    #[expect(
        clippy::too_many_arguments,
        reason = "a step's start and finish fields in one call; a struct would only rename them"
    )]
    pub fn instant(
        &self,
        kind: StepKind,
        name: &str,
        input: Value,
        depends_on: Vec<StepIndex>,
        status: StepStatus,
        output: Option<Value>,
        summary: Option<StepSummary>,
        error: Option<String>,
    ) -> StepIndex {
        let step = self.open(kind, name, None, input, None, depends_on, false);
        self.finish(step, status, output, summary, error, None);
        step
    }

    /// Close every step still running (cancellation, budgets, failures).
    pub fn abort_running(&self, status: StepStatus, reason: &str) {
        let running: Vec<StepIndex> = self.lock().running.iter().copied().collect();
        for step in running {
            self.finish(step, status, None, None, Some(reason.to_owned()), None);
        }
    }

    /// Tokens used so far.
    pub fn usage(&self) -> TokenUsage {
        self.lock().usage
    }

    /// Model calls and tool calls made so far (what `max_steps` and `max_tool_calls` count).
    pub fn counts(&self) -> (u32, u32) {
        let state = self.lock();
        (state.model_calls, state.tool_calls)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Ends one wait for an approval (see [`Recorder::begin_wait`]).
pub(crate) struct WaitGuard<'a> {
    recorder: &'a Recorder,
}

impl Drop for WaitGuard<'_> {
    fn drop(&mut self) {
        let mut state = self.recorder.lock();
        state.waiting.0 = state.waiting.0.saturating_sub(1);
        if state.waiting.0 == 0
            && let Some(since) = state.waiting.1.take()
        {
            state.waited += since.elapsed();
        }
    }
}
