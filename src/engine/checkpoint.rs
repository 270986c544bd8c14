//! Where a run can go on from after its process is gone: the engine's own state at a point
//! between (or inside) its steps, as data the store keeps and [`super::resume`] starts from.
//!
//! A run is *durable* from the moment one of its calls waits for a person (an approval may take
//! longer than the process lives); from then on the engine saves a [`Checkpoint`] at every
//! change that matters: a turn's calls decided, an approval opened, a call about to be sent (that
//! save is committed before the call goes out), a call settled, a turn folded back (or, in plan
//! mode, a plan checked, each of its steps' changes, a new plan asked for). Resuming
//! from the last one redoes nothing that already ran: a settled call keeps its result, a call
//! waiting for approval waits again (same approval, same deadline), and a call that was in
//! flight is sent again only when its tool is read-only (`ToolInvoker::rerun_safe`); otherwise
//! the model hears that its outcome is unknown. Steps the store holds past the checkpoint are
//! dropped by the `RunResumed` event and redone.
//!
//! The checkpoint holds the conversation as the model sees it, with real values: like a
//! conversation's stored messages (the next turn's context), and unlike the run's recorded
//! steps, it is not redacted. The store deletes it when the run ends.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::gaps::{CallEnd, Gaps};
use super::recorder::{Counts, Recorder};
use super::tools::{ToolFailure, ToolOutput};
use crate::domain::{ApprovalRequest, ChatMessage, StepIndex, ToolCall};

/// The layout [`Checkpoint::from_json`] reads; a checkpoint of another version is refused.
const VERSION: u32 = 1;

/// A run's resumable state. Opaque outside the engine: the store keeps its JSON text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    version: u32,
    pub(crate) counts: Counts,
    pub(crate) body: Body,
}

/// Why a stored checkpoint cannot be resumed from.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("the stored checkpoint is not readable ({0})")]
    Unreadable(String),
    #[error(
        "the stored checkpoint has layout version {found}; this server reads version {VERSION}"
    )]
    Version { found: u32 },
}

impl Checkpoint {
    /// The JSON text to store.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// A stored checkpoint.
    ///
    /// # Errors
    /// Text that is not a checkpoint of this version.
    pub fn from_json(text: &str) -> Result<Self, CheckpointError> {
        #[derive(Deserialize)]
        struct Versioned {
            version: u32,
        }
        let versioned: Versioned = serde_json::from_str(text)
            .map_err(|err| CheckpointError::Unreadable(err.to_string()))?;
        if versioned.version != VERSION {
            return Err(CheckpointError::Version {
                found: versioned.version,
            });
        }
        serde_json::from_str(text).map_err(|err| CheckpointError::Unreadable(err.to_string()))
    }

    /// The first step index the resumed run gives out: stored steps from here on are redone.
    pub fn next_step(&self) -> StepIndex {
        self.counts.next_step
    }
}

/// The mode-specific part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub(crate) enum Body {
    React(ReactPoint),
    Plan(PlanPoint),
}

/// A plan-mode run between plans (`exec: None`: the next model call asks for one) or while one
/// executes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct PlanPoint {
    /// The conversation (planner instructions first) as the next model call sends it.
    pub messages: Vec<ChatMessage>,
    pub replans_left: u32,
    /// What the next planner call depends on.
    pub after: Vec<StepIndex>,
    pub gaps: Gaps,
    /// Plans executed so far.
    pub round: usize,
    pub exec: Option<ExecPoint>,
}

/// A checked plan being executed: the plan as JSON, its plan step, and where each step is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ExecPoint {
    pub plan: Value,
    pub plan_step: StepIndex,
    /// One per plan step, in plan order.
    pub acts: Vec<ActPoint>,
}

/// A ReAct run between turns (`turn: None`) or inside one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ReactPoint {
    /// The conversation as the next model call sends it (without the turn's own assistant
    /// message, which `turn` holds).
    pub messages: Vec<ChatMessage>,
    /// What the next plan step depends on.
    pub after: Vec<StepIndex>,
    /// How often each (tool, canonical arguments) was called (the loop guard).
    pub repeats: Vec<(String, String, u32)>,
    pub gaps: Gaps,
    pub turn: Option<TurnPoint>,
}

/// A turn whose calls are decided: the model's message and where each call is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct TurnPoint {
    pub content: String,
    pub calls: Vec<ToolCall>,
    pub plan_step: StepIndex,
    /// One per call, in call order.
    pub acts: Vec<ActPoint>,
}

/// Where one call of a turn is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub(crate) enum ActPoint {
    /// Not started (waiting for a permit of `max_parallel_tools`).
    NotStarted,
    /// Waiting for a person's decision on `request`.
    Awaiting {
        step: StepIndex,
        request: ApprovalRequest,
    },
    /// Sent (or about to be): with the person's edited `arguments` if they differ from the
    /// model's, and whether a person approved it.
    InFlight {
        step: StepIndex,
        arguments: Option<Value>,
        approved: bool,
    },
    /// Ended: what the model reads of it.
    Settled {
        step: StepIndex,
        #[serde(flatten)]
        settled: Settled,
    },
}

/// A call's end as the rest of the run needs it: the observation and how it counts for gaps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Settled {
    pub text: String,
    pub is_error: bool,
    pub end: CallEnd,
}

impl Settled {
    /// What the model reads of a call of `name` that ended with `outcome`.
    pub(crate) fn of(name: &str, outcome: &Result<ToolOutput, ToolFailure>) -> Self {
        let (text, is_error) = super::tools::observation(name, outcome);
        Settled {
            text,
            is_error,
            end: CallEnd::of(outcome),
        }
    }
}

/// Where a run's checkpoints go (the run service: the store, in order with the run's events).
pub trait Checkpoints: Send + Sync {
    /// Queue `checkpoint` for storage now, replacing the run's previous one; the future
    /// resolves once it is committed (awaiting it is optional).
    fn save(&self, checkpoint: &Checkpoint) -> BoxFuture<'static, Result<(), String>>;
}

/// A checkpoint being committed (`None`: none was saved).
pub(crate) type Saving = Option<BoxFuture<'static, Result<(), String>>>;

/// A run's checkpointing: whether it is durable yet, and where checkpoints go.
pub(crate) struct Journal {
    sink: Option<Arc<dyn Checkpoints>>,
    durable: AtomicBool,
}

impl Journal {
    pub(crate) fn new(sink: Option<Arc<dyn Checkpoints>>, durable: bool) -> Self {
        Self {
            sink,
            durable: AtomicBool::new(durable),
        }
    }

    pub(crate) fn is_durable(&self) -> bool {
        self.durable.load(Ordering::Acquire) && self.sink.is_some()
    }

    fn make_durable(&self) {
        self.durable.store(true, Ordering::Release);
    }

    /// Save `body` with the recorder's counts, if the run is durable: the commit to wait for
    /// (`None`: nothing was saved, and a run that is not durable pays nothing).
    pub(crate) fn save(&self, recorder: &Recorder, body: impl FnOnce() -> Body) -> Saving {
        match &self.sink {
            Some(sink) if self.is_durable() => Some(sink.save(&Checkpoint {
                version: VERSION,
                counts: recorder.counts_now(),
                body: body(),
            })),
            _ => None,
        }
    }
}

/// The loop state a ReAct checkpoint repeats between turns.
pub(crate) struct Between<'a> {
    pub messages: &'a [ChatMessage],
    pub after: &'a [StepIndex],
    pub repeats: &'a HashMap<(String, String), u32>,
    pub gaps: &'a Gaps,
}

impl Between<'_> {
    pub(crate) fn point(&self, turn: Option<TurnPoint>) -> Body {
        Body::React(ReactPoint {
            messages: self.messages.to_vec(),
            after: self.after.to_vec(),
            repeats: self
                .repeats
                .iter()
                .map(|((tool, arguments), n)| (tool.clone(), arguments.clone(), *n))
                .collect(),
            gaps: self.gaps.clone(),
            turn,
        })
    }
}

/// The loop state a plan-mode checkpoint repeats between plans and while one executes.
pub(crate) struct PlanBetween<'a> {
    pub messages: &'a [ChatMessage],
    pub replans_left: u32,
    pub after: &'a [StepIndex],
    pub gaps: &'a Gaps,
    pub round: usize,
}

impl PlanBetween<'_> {
    pub(crate) fn point(&self, exec: Option<ExecPoint>) -> Body {
        Body::Plan(PlanPoint {
            messages: self.messages.to_vec(),
            replans_left: self.replans_left,
            after: self.after.to_vec(),
            gaps: self.gaps.clone(),
            round: self.round,
            exec,
        })
    }
}

/// The journal of one round of calls (a ReAct turn, an executing plan): where each call is,
/// and how the mode makes a checkpoint of that.
pub(crate) struct TurnJournal<'a> {
    pub journal: &'a Journal,
    pub recorder: &'a Recorder,
    /// The mode's checkpoint with the calls in these states.
    pub snapshot: &'a (dyn Fn(Vec<ActPoint>) -> Body + Sync),
    pub acts: Mutex<Vec<ActPoint>>,
}

impl<'a> TurnJournal<'a> {
    /// The journal of a round whose calls are where `acts` says, saved as it starts (a
    /// durable run's checkpoint now holds the round's calls).
    pub(crate) fn open(
        journal: &'a Journal,
        recorder: &'a Recorder,
        snapshot: &'a (dyn Fn(Vec<ActPoint>) -> Body + Sync),
        acts: Vec<ActPoint>,
    ) -> Self {
        let turn = Self {
            journal,
            recorder,
            snapshot,
            acts: Mutex::new(acts),
        };
        drop(turn.save());
        turn
    }

    /// Set call `position`'s state and save, if the run is durable.
    pub(crate) fn set(&self, position: usize, act: ActPoint) -> Saving {
        let acts = {
            let mut acts = self.acts.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(slot) = acts.get_mut(position) {
                *slot = act;
            }
            // The states are copied only for a checkpoint.
            self.journal.is_durable().then(|| acts.clone())?
        };
        self.journal.save(self.recorder, || (self.snapshot)(acts))
    }

    /// Save the turn as it is, if the run is durable.
    pub(crate) fn save(&self) -> Saving {
        self.journal
            .save(self.recorder, || (self.snapshot)(self.states()))
    }

    /// The calls' states as they are now.
    pub(crate) fn states(&self) -> Vec<ActPoint> {
        self.acts.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The journal of call `position`, for the call to report its approval and its sending.
    pub(crate) fn act(&self, position: usize) -> ActJournal<'_> {
        ActJournal {
            turn: self,
            position,
        }
    }
}

/// What one call reports while it is made, so a checkpoint knows where it is.
#[derive(Clone, Copy)]
pub(crate) struct ActJournal<'a> {
    turn: &'a TurnJournal<'a>,
    position: usize,
}

impl ActJournal<'_> {
    /// The call waits for a person: from now on the run is durable.
    pub(crate) fn awaiting(&self, step: StepIndex, request: &ApprovalRequest) {
        self.turn.journal.make_durable();
        let act = ActPoint::Awaiting {
            step,
            request: request.clone(),
        };
        drop(self.turn.set(self.position, act));
    }

    /// The call is about to be sent; resolves once that is stored (at once when the run is not
    /// durable), so a resumed run knows it may have taken effect.
    pub(crate) fn in_flight(
        &self,
        step: StepIndex,
        arguments: Option<&Value>,
        approved: bool,
    ) -> Saving {
        let act = ActPoint::InFlight {
            step,
            arguments: arguments.cloned(),
            approved,
        };
        self.turn.set(self.position, act)
    }
}
