//! Following one run: what it did so far, then its live tail, then exactly one `RunFinished`.
//!
//! Every face that shows a run as it happens (the chat stream, `GET /api/runs/{id}/events`, the
//! OpenAI-compatible stream, `switchboard chat`) reads a [`RunEvents`], so they agree on the
//! three things that are easy to get wrong: no event is missed or seen twice between the history
//! and the live tail (both are taken under the run's history lock), a reader too slow for the
//! broadcast skips ahead and is told how far ([`Followed::Skipped`]), and the last item is always
//! a `RunFinished` — from the broadcast, or, when that closed without one (the run task died),
//! from the task's outcome or the store, with one fallback text for a task that panicked.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinHandle;

use crate::domain::{RunEvent, RunId, RunOutcome, RunStatus, TokenUsage, UnixMillis, now_millis};
use crate::store::{RunSummary, Store};

/// How often a run executing in another process is looked up while it is followed.
const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// What a run's task that ended without an outcome (it panicked) is reported as.
const STOPPED_UNEXPECTEDLY: &str = "the run stopped unexpectedly; the server log has details";

/// One item of a followed run.
#[derive(Debug, Clone, PartialEq)]
pub enum Followed {
    /// The next event, in order.
    Event(RunEvent),
    /// This reader fell behind the live broadcast: that many events were skipped, and reading
    /// goes on with the oldest one still buffered.
    Skipped(u64),
}

/// A run's events from its start (or from now, for a run executing in another process) to its
/// guaranteed end. See the module docs.
pub struct RunEvents {
    run_id: RunId,
    replay: VecDeque<RunEvent>,
    live: Option<broadcast::Receiver<RunEvent>>,
    end: Option<End>,
    /// When the run started, if this reader will not see its `RunStarted` (a run read back from
    /// the store), so a reader can still say how long it took.
    started_at: Option<UnixMillis>,
    finished: bool,
}

/// Where the final event comes from when the broadcast does not deliver it.
enum End {
    /// The run executes in this process and this reader started it: its task's outcome.
    Task(JoinHandle<RunOutcome>),
    /// The run executes in this process: its stored final state, once the broadcast closed.
    Stored(Store),
    /// The run executes in another process sharing the store: poll until it ends.
    Poll(Store),
    /// The run had ended already: this event, once.
    Ready(Box<RunEvent>),
}

impl RunEvents {
    /// The run that started here: its live tail from the first event, ending with its task.
    pub(super) fn started(
        run_id: RunId,
        live: broadcast::Receiver<RunEvent>,
        task: JoinHandle<RunOutcome>,
    ) -> Self {
        Self::new(run_id, Vec::new(), Some(live), End::Task(task), None)
    }

    /// A run executing here that someone else started: its history, then the live tail.
    pub(super) fn subscribed(
        run_id: RunId,
        history: Vec<RunEvent>,
        live: broadcast::Receiver<RunEvent>,
        store: Store,
    ) -> Self {
        Self::new(run_id, history, Some(live), End::Stored(store), None)
    }

    /// A run known only to the store: its final state if it ended, else polled until it does.
    pub(super) fn stored(summary: &RunSummary, store: Store) -> Self {
        if summary.status.is_live() {
            return Self::new(summary.id, Vec::new(), None, End::Poll(store), None);
        }
        let started_at = summary.finished_at.map(|_| summary.started_at);
        let end = End::Ready(Box::new(finished_event(summary)));
        Self::new(summary.id, Vec::new(), None, end, started_at)
    }

    fn new(
        run_id: RunId,
        history: Vec<RunEvent>,
        live: Option<broadcast::Receiver<RunEvent>>,
        end: End,
        started_at: Option<UnixMillis>,
    ) -> Self {
        Self {
            run_id,
            replay: history.into(),
            live,
            end: Some(end),
            started_at,
            finished: false,
        }
    }

    /// The run followed.
    pub fn run_id(&self) -> RunId {
        self.run_id
    }

    /// When the run started, for a reader that will not see its `RunStarted` event.
    pub fn started_at(&self) -> Option<UnixMillis> {
        self.started_at
    }

    /// The next item; `None` after the `RunFinished` event (or if the store failed while a run
    /// executing elsewhere was polled, which is logged).
    pub async fn next(&mut self) -> Option<Followed> {
        if self.finished {
            return None;
        }
        let event = match self.replay.pop_front() {
            Some(event) => event,
            None => match self.live_or_end().await? {
                Followed::Event(event) => event,
                skipped @ Followed::Skipped(_) => return Some(skipped),
            },
        };
        if matches!(event, RunEvent::RunFinished { .. }) {
            self.finished = true;
            self.live = None;
        }
        Some(Followed::Event(event))
    }

    /// How the run ended, without reading its events one by one when the run's task is here.
    pub async fn outcome(mut self) -> RunOutcome {
        if let Some(End::Task(task)) = &mut self.end {
            self.live = None;
            return task.await.unwrap_or_else(|_| stopped_unexpectedly());
        }
        while let Some(item) = self.next().await {
            if let Followed::Event(RunEvent::RunFinished {
                status,
                answer,
                error,
                usage,
                ..
            }) = item
            {
                return RunOutcome {
                    status,
                    answer,
                    error,
                    usage,
                };
            }
        }
        RunOutcome {
            status: RunStatus::Failed,
            answer: None,
            error: Some("the run's end could not be read from the store".to_owned()),
            usage: TokenUsage::default(),
        }
    }

    async fn live_or_end(&mut self) -> Option<Followed> {
        if let Some(live) = &mut self.live {
            match live.recv().await {
                Ok(event) => return Some(Followed::Event(event)),
                Err(RecvError::Lagged(missed)) => return Some(Followed::Skipped(missed)),
                Err(RecvError::Closed) => self.live = None,
            }
        }
        let event = match self.end.take()? {
            End::Task(task) => {
                let outcome = task.await.unwrap_or_else(|_| stopped_unexpectedly());
                finished(self.run_id, outcome, now_millis())
            }
            End::Stored(store) => {
                // The run's last rows may still be queued for the store's writer.
                store.flush().await;
                poll_until_finished(&store, self.run_id, Duration::ZERO).await?
            }
            End::Poll(store) => poll_until_finished(&store, self.run_id, POLL_INTERVAL).await?,
            End::Ready(event) => *event,
        };
        Some(Followed::Event(event))
    }
}

/// The stored run's `RunFinished` once it is no longer running, looking again every `first`
/// (then every [`POLL_INTERVAL`]); `None` when the store fails.
async fn poll_until_finished(store: &Store, run_id: RunId, first: Duration) -> Option<RunEvent> {
    let mut wait = first;
    loop {
        tokio::time::sleep(wait).await;
        wait = POLL_INTERVAL;
        match store.get_run(crate::store::Scope::All, run_id).await {
            Ok(run) if run.summary.status.is_live() => {}
            Ok(run) => return Some(finished_event(&run.summary)),
            Err(err) => {
                tracing::warn!(run_id = %run_id, error = %err, "following a run in the store failed");
                return None;
            }
        }
    }
}

/// A stored run's end as the event that reported it.
fn finished_event(summary: &RunSummary) -> RunEvent {
    RunEvent::RunFinished {
        run_id: summary.id,
        status: summary.status,
        answer: summary.answer.clone(),
        error: summary.error.clone(),
        usage: TokenUsage {
            input_tokens: summary.input_tokens,
            output_tokens: summary.output_tokens,
        },
        at: summary.finished_at.unwrap_or(summary.started_at),
    }
}

fn finished(run_id: RunId, outcome: RunOutcome, at: UnixMillis) -> RunEvent {
    RunEvent::RunFinished {
        run_id,
        status: outcome.status,
        answer: outcome.answer,
        error: outcome.error,
        usage: outcome.usage,
        at,
    }
}

fn stopped_unexpectedly() -> RunOutcome {
    RunOutcome {
        status: RunStatus::Failed,
        answer: None,
        error: Some(STOPPED_UNEXPECTEDLY.to_owned()),
        usage: TokenUsage::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delta(run_id: RunId, step: u32) -> RunEvent {
        RunEvent::TokenDelta {
            run_id,
            step,
            text: format!("piece {step}"),
        }
    }

    fn outcome() -> RunOutcome {
        RunOutcome {
            status: RunStatus::Succeeded,
            answer: Some("done".into()),
            error: None,
            usage: TokenUsage::default(),
        }
    }

    async fn collect(mut events: RunEvents) -> Vec<Followed> {
        let mut items = Vec::new();
        while let Some(item) = events.next().await {
            items.push(item);
        }
        items
    }

    #[tokio::test]
    async fn a_lagging_reader_skips_ahead_and_still_sees_the_end() {
        let run_id = RunId::new();
        let (sender, receiver) = broadcast::channel(2);
        for step in 0..5 {
            sender.send(delta(run_id, step)).unwrap();
        }
        sender
            .send(finished(run_id, outcome(), 2))
            .expect("a receiver is open");
        let task = tokio::spawn(async { outcome() });
        let items = collect(RunEvents::started(run_id, receiver, task)).await;
        assert_eq!(items[0], Followed::Skipped(4), "{items:#?}");
        assert_eq!(items[1], Followed::Event(delta(run_id, 4)), "{items:#?}");
        assert!(
            matches!(items[2], Followed::Event(RunEvent::RunFinished { .. })),
            "{items:#?}"
        );
        assert_eq!(items.len(), 3, "nothing follows run_finished: {items:#?}");
    }

    #[tokio::test]
    async fn a_broadcast_that_closes_early_ends_with_the_task_outcome() {
        let run_id = RunId::new();
        let (sender, receiver) = broadcast::channel(8);
        sender.send(delta(run_id, 1)).unwrap();
        drop(sender);
        let task = tokio::spawn(async { outcome() });
        let mut events = RunEvents::started(run_id, receiver, task);
        events.replay.push_back(delta(run_id, 0));
        let items = collect(events).await;
        assert_eq!(items.len(), 3, "{items:#?}");
        assert_eq!(items[0], Followed::Event(delta(run_id, 0)));
        assert_eq!(items[1], Followed::Event(delta(run_id, 1)));
        match &items[2] {
            Followed::Event(RunEvent::RunFinished { status, answer, .. }) => {
                assert_eq!(*status, RunStatus::Succeeded);
                assert_eq!(answer.as_deref(), Some("done"));
            }
            other => panic!("expected run_finished, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_task_that_panicked_ends_the_run_as_failed() {
        let run_id = RunId::new();
        let (sender, receiver) = broadcast::channel(8);
        drop(sender);
        let task = tokio::spawn(async { panic!("engine bug") });
        let items = collect(RunEvents::started(run_id, receiver, task)).await;
        match items.as_slice() {
            [Followed::Event(RunEvent::RunFinished { status, error, .. })] => {
                assert_eq!(*status, RunStatus::Failed);
                assert_eq!(error.as_deref(), Some(STOPPED_UNEXPECTEDLY));
            }
            other => panic!("expected one run_finished, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn outcome_waits_for_the_task_without_reading_the_tail() {
        let run_id = RunId::new();
        let (sender, receiver) = broadcast::channel(1);
        let task = tokio::spawn(async move {
            // A tail nobody reads: the outcome must not depend on it.
            for step in 0..10 {
                let _ = sender.send(delta(run_id, step));
            }
            outcome()
        });
        let events = RunEvents::started(run_id, receiver, task);
        assert_eq!(events.outcome().await, outcome());
    }
}
