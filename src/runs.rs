//! The run service: turns a chat request into a run (agent or plain model, conversation history,
//! tools the caller may use), executes it with the engine, and fans its events out to the store,
//! live subscribers (SSE streams) and telemetry — the same events for all three.

mod approvals;
mod calls;
mod follow;
mod hub_tools;
mod inputs;
mod resume;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::access::{AuditEvent, Caller, Refused, RunSlot};
use crate::config::model::{AgentConfig, AgentLimits, AgentMode};
use crate::domain::{ChatMessage, ConversationId, Role, RunEvent, RunId, RunOutcome, TraceId};
use crate::engine::{self, EventSink, RunSpec, Work};
use crate::hub::Hub;
use crate::llm::{LlmError, ModelRegistry};
use crate::redact::Redactor;
use crate::store::{Scope, Store, StoreError};
use crate::telemetry::Telemetry;

pub use approvals::{ApprovalError, DecisionInput, PendingApproval, PendingApprovals};
pub use calls::{CallInput, StartedCall};
pub use follow::{Followed, RunEvents};
pub use hub_tools::{HubTools, RunContext, result_text};
pub use inputs::{InputError, PendingInputs};
pub use resume::{CallerLookup, ResumeError};

/// What a caller asks for.
#[derive(Debug, Clone, Default)]
pub struct ChatInput {
    /// Continue this conversation (its earlier messages become history); `None` starts one.
    pub conversation_id: Option<ConversationId>,
    /// A configured model; `None` = the agent's model or the default model.
    pub model: Option<String>,
    /// An agent from `agents/`; `None` = plain chat with every tool.
    pub agent: Option<String>,
    pub message: String,
    /// Explicit earlier turns (the OpenAI-compatible API sends the whole conversation each time);
    /// used instead of the stored conversation's messages.
    pub history: Option<Vec<ChatMessage>>,
    pub temperature: Option<f64>,
    /// A person follows the run and can answer its servers' questions (the web chat); else
    /// (the OpenAI-compatible API, the CLI) each server's `elicitation` policy answers them.
    pub attended: bool,
}

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("the message is empty")]
    EmptyMessage,
    #[error("no agent named `{name}`; available: {available}")]
    UnknownAgent { name: String, available: String },
    #[error("the role `{role}` may not run the agent `{name}`")]
    AgentNotAllowed { name: String, role: String },
    #[error("the role `{role}` may not use the model `{model}`{}", via_agent.as_ref().map(|a| format!(" (the model of agent `{a}`)")).unwrap_or_default())]
    ModelNotAllowed {
        model: String,
        role: String,
        via_agent: Option<String>,
    },
    #[error(transparent)]
    Limited(Refused),
    #[error(transparent)]
    Model(#[from] LlmError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The store cannot write now (a full disk, a lost database): a run would leave no record.
    #[error("the store cannot write ({reason}): new runs are refused until it can")]
    StoreUnwritable { reason: &'static str },
    #[error("no running run with id {0}")]
    NotRunning(RunId),
    #[error("{count} messages were sent; a run takes at most {max} (server.max_messages)")]
    TooManyMessages { count: usize, max: usize },
    #[error(
        "message {index} has {chars} characters; a message may have at most {max} (server.max_message_chars)"
    )]
    MessageTooLong {
        /// Position among the messages sent (history first, the new message last).
        index: usize,
        chars: usize,
        max: usize,
    },
}

/// Why a decision on a run's approval was not taken.
#[derive(Debug, thiserror::Error)]
pub enum DecideError {
    #[error("no running run with id {0}")]
    NotRunning(RunId),
    #[error(transparent)]
    Approval(#[from] ApprovalError),
}

/// Why an answer to a run's question was not taken.
#[derive(Debug, thiserror::Error)]
pub enum AnswerError {
    #[error("no running run with id {0}")]
    NotRunning(RunId),
    #[error(transparent)]
    Input(#[from] InputError),
}

/// How much a caller may send into one run, checked before anything reaches a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageCaps {
    pub max_messages: usize,
    pub max_message_chars: usize,
}

impl Default for MessageCaps {
    fn default() -> Self {
        Self {
            max_messages: crate::config::model::DEFAULT_MAX_MESSAGES,
            max_message_chars: crate::config::model::DEFAULT_MAX_MESSAGE_CHARS,
        }
    }
}

impl MessageCaps {
    /// The first cap `history` plus `message` breaks.
    fn check(&self, history: &[ChatMessage], message: &str) -> Result<(), RunError> {
        let count = history.len() + 1;
        if count > self.max_messages {
            return Err(RunError::TooManyMessages {
                count,
                max: self.max_messages,
            });
        }
        let texts = history.iter().map(|m| m.content.as_str());
        for (index, text) in texts.chain(std::iter::once(message)).enumerate() {
            // Counting stops at the cap: a huge message costs no more than the cap to refuse.
            let chars = text.chars().take(self.max_message_chars + 1).count();
            if chars > self.max_message_chars {
                return Err(RunError::MessageTooLong {
                    index,
                    chars: text.chars().count(),
                    max: self.max_message_chars,
                });
            }
        }
        Ok(())
    }
}

/// What a run is, as [`RunService::spec`] turns it into the engine's inputs.
struct RunHow<'a> {
    caller: &'a Caller,
    run_id: RunId,
    conversation_id: Option<ConversationId>,
    agent: Option<&'a AgentConfig>,
    model_name: String,
    work: Work,
    attended: bool,
    temperature: Option<f64>,
    trace_id: TraceId,
}

/// A run that has started: its ids and its events, from the first to the guaranteed end.
pub struct StartedRun {
    pub run_id: RunId,
    pub conversation_id: ConversationId,
    pub trace_id: TraceId,
    pub events: RunEvents,
}

/// Events a live run's broadcast keeps for a reader that fell behind (it then skips ahead).
const LIVE_EVENTS: usize = 1024;

/// Cheap to clone.
#[derive(Clone)]
pub struct RunService {
    inner: Arc<Inner>,
}

struct Inner {
    hub: Hub,
    models: ModelRegistry,
    store: Store,
    agents: RwLock<Arc<BTreeMap<String, AgentConfig>>>,
    live: Mutex<HashMap<RunId, Arc<LiveRun>>>,
    caps: RwLock<MessageCaps>,
    /// Secrets out of every event a run emits (the config's secrets change on reload).
    redactor: RwLock<Arc<Redactor>>,
    /// Every run task, so shutdown can wait for them without polling.
    tasks: TaskTracker,
    /// Where run spans are exported (or [`Telemetry::off`]).
    telemetry: Telemetry,
}

/// A run in progress: its durable events so far (for late subscribers) and its broadcast.
struct LiveRun {
    history: Mutex<Vec<RunEvent>>,
    sender: broadcast::Sender<RunEvent>,
    cancel: CancellationToken,
    /// The user who started it.
    owner: String,
    /// Its servers' questions waiting for the person.
    inputs: Arc<PendingInputs>,
    /// Its tool calls waiting for a person's approval.
    approvals: Arc<PendingApprovals>,
    /// Set once the run saved a checkpoint: at shutdown it is suspended for the next process to
    /// resume, not cancelled.
    durable: Arc<AtomicBool>,
    /// Stops the run's task without ending the run (shutdown of a durable run).
    suspend: CancellationToken,
}

impl RunService {
    /// A service over the given parts.
    pub fn new(
        hub: Hub,
        models: ModelRegistry,
        store: Store,
        agents: BTreeMap<String, AgentConfig>,
        telemetry: Telemetry,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                hub,
                models,
                store,
                agents: RwLock::new(Arc::new(agents)),
                live: Mutex::new(HashMap::new()),
                caps: RwLock::new(MessageCaps::default()),
                redactor: RwLock::new(Arc::new(Redactor::default())),
                tasks: TaskTracker::new(),
                telemetry,
            }),
        }
    }

    /// Replace the message caps (start-up and config reload).
    pub fn set_message_caps(&self, caps: MessageCaps) {
        *self.inner.caps.write().unwrap_or_else(|p| p.into_inner()) = caps;
    }

    /// Replace the redactor (start-up and config reload: the configured secrets it knows).
    pub fn set_redactor(&self, redactor: Redactor) {
        *self
            .inner
            .redactor
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Arc::new(redactor);
    }

    /// Replace the agent definitions (config reload).
    pub fn set_agents(&self, agents: BTreeMap<String, AgentConfig>) {
        *self.inner.agents.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(agents);
    }

    /// The agent definitions.
    pub fn agents(&self) -> Arc<BTreeMap<String, AgentConfig>> {
        self.inner
            .agents
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The agents `caller` may run: its role grants the agent and the model it is bound to.
    pub fn agents_for(&self, caller: &Caller) -> Vec<AgentConfig> {
        self.agents()
            .values()
            .filter(|agent| {
                caller.may_use_agent(&agent.name)
                    && agent
                        .model
                        .as_deref()
                        .is_none_or(|m| caller.may_use_model(m))
            })
            .cloned()
            .collect()
    }

    /// The store runs are written to.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The model registry.
    pub fn models(&self) -> &ModelRegistry {
        &self.inner.models
    }

    /// Start a run; it keeps going if the caller stops listening (cancel it explicitly).
    ///
    /// # Errors
    /// Empty message, unknown agent, unknown or unavailable model, store failures.
    pub async fn start(&self, caller: &Caller, input: ChatInput) -> Result<StartedRun, RunError> {
        let started = self.checked_start(caller, input).await;
        let outcome = match &started {
            Ok(_) => "ok",
            Err(RunError::AgentNotAllowed { .. } | RunError::ModelNotAllowed { .. }) => "denied",
            Err(RunError::Limited(_)) => "limited",
            Err(_) => "failed",
        };
        let target = started.as_ref().ok().map(|run| run.run_id.to_string());
        let trace = started.as_ref().ok().map(|run| run.trace_id.to_string());
        self.inner
            .hub
            .audit()
            .record(AuditEvent::by(caller, "run_start", target, outcome).in_trace(trace));
        started
    }

    async fn checked_start(
        &self,
        caller: &Caller,
        input: ChatInput,
    ) -> Result<StartedRun, RunError> {
        let message = input.message.trim().to_owned();
        if message.is_empty() {
            return Err(RunError::EmptyMessage);
        }
        if let crate::store::StoreHealth::Unwritable { reason, .. } = self.inner.store.health() {
            return Err(RunError::StoreUnwritable { reason });
        }
        let caps = *self.inner.caps.read().unwrap_or_else(|p| p.into_inner());
        caps.check(input.history.as_deref().unwrap_or_default(), &message)?;
        let agent = self.agent(caller, input.agent.as_deref())?;
        let model_name = input
            .model
            .clone()
            .or_else(|| agent.as_ref().and_then(|a| a.model.clone()));
        let entry = self.inner.models.get(model_name.as_deref())?;
        let model_name = entry.config().name.clone();
        if !caller.may_use_model(&model_name) {
            let via_agent = match (&input.model, &agent) {
                (None, Some(agent)) if agent.model.is_some() => Some(agent.name.clone()),
                _ => None,
            };
            return Err(RunError::ModelNotAllowed {
                model: model_name,
                role: caller.role().to_owned(),
                via_agent,
            });
        }
        let model = entry.client()?;
        let slot = self
            .inner
            .hub
            .limiter()
            .start_run(caller)
            .map_err(RunError::Limited)?;

        let (conversation_id, stored_history) = self
            .open_conversation(caller, input.conversation_id, &message)
            .await?;
        let history = input.history.unwrap_or(stored_history);
        let run_id = RunId::new();
        self.inner
            .store
            .append_message(conversation_id, "user", &message, Some(run_id))
            .await?;

        let trace_id = TraceId::random();
        let cancel = CancellationToken::new();
        let (live, events) = self.register(run_id, caller, cancel.clone());
        let how = RunHow {
            caller,
            run_id,
            conversation_id: Some(conversation_id),
            agent: agent.as_ref(),
            model_name,
            work: Work::Chat(model),
            attended: input.attended,
            temperature: input.temperature,
            trace_id: trace_id.clone(),
        };
        let mut spec = self.spec(how, &live, cancel);
        spec.history = history;
        spec.user_message = message;
        let task = self.spawn(spec, live, Some(slot), None);
        Ok(StartedRun {
            run_id,
            conversation_id,
            trace_id,
            events: RunEvents::started(run_id, events, task),
        })
    }

    /// The engine's inputs for a run `how` says (the conversation is left empty for the caller
    /// to fill): the caller's tools filtered by the agent's globs, answering the servers'
    /// questions and sampling requests for the run, the run's approver and its checkpoints.
    fn spec(&self, how: RunHow<'_>, live: &LiveRun, cancel: CancellationToken) -> RunSpec {
        let RunHow {
            caller,
            run_id,
            conversation_id,
            agent,
            model_name,
            work,
            attended,
            temperature,
            trace_id,
        } = how;
        let (tools_patterns, system_prompt, mode, limits) = match agent {
            Some(agent) => (
                agent.tools.clone(),
                Some(agent.system_prompt.clone()),
                agent.mode,
                agent.limits.clone(),
            ),
            None => (
                crate::config::model::ToolGlobs::all(),
                None,
                AgentMode::React,
                AgentLimits::default(),
            ),
        };
        let (unattended, expire_after) = self.inner.hub.approval_timing();
        RunSpec {
            run_id,
            conversation_id,
            agent: agent.map(|a| a.name.clone()),
            model_name,
            work,
            tools: Arc::new(
                HubTools::new(self.inner.hub.clone(), caller.clone(), &tools_patterns).for_run(
                    RunContext {
                        run_id,
                        inputs: attended.then(|| live.inputs.clone()),
                        models: self.inner.models.clone(),
                    },
                ),
            ),
            system_prompt,
            history: Vec::new(),
            user_message: String::new(),
            mode,
            limits,
            cancel,
            trace_id: Some(trace_id),
            temperature,
            user: Some(caller.user().to_owned()),
            max_argument_bytes: self.inner.hub.tool_settings().max_argument_bytes,
            approver: Some(Arc::new(approvals::RunApprover {
                approvals: live.approvals.clone(),
                attended,
                unattended,
                expire_after,
            })),
            checkpoints: Some(Arc::new(resume::RunCheckpoints {
                store: self.inner.store.clone(),
                run_id,
                key_id: caller.key_id().map(str::to_owned),
                attended,
                temperature,
                durable: live.durable.clone(),
            })),
        }
    }

    /// Follow a run: the events so far and the live tail when it executes here, else what the
    /// store knows (its final state, or polling until a run executing elsewhere ends).
    ///
    /// # Errors
    /// No such run, or the store failed.
    pub async fn follow(&self, caller: &Caller, run_id: RunId) -> Result<RunEvents, RunError> {
        if let Some((history, live)) = self.subscribe(caller, run_id) {
            let store = self.inner.store.clone();
            return Ok(RunEvents::subscribed(run_id, history, live, store));
        }
        let store = &self.inner.store;
        let scope = Scope::of(caller.owner());
        let mut run = store.get_run(scope, run_id).await?;
        if run.summary.status.is_live() {
            // It may have ended a moment ago, with its last rows still queued for the writer.
            store.flush().await;
            run = store.get_run(scope, run_id).await?;
        }
        Ok(RunEvents::stored(&run.summary, store.clone()))
    }

    /// The agent named `name` (`None` = plain chat), if `caller`'s role may run it. Only the
    /// agents it may run are named as available.
    fn agent(&self, caller: &Caller, name: Option<&str>) -> Result<Option<AgentConfig>, RunError> {
        let Some(name) = name else {
            return Ok(None);
        };
        let agents = self.agents();
        match agents.get(name) {
            Some(_) if !caller.may_use_agent(name) => Err(RunError::AgentNotAllowed {
                name: name.to_owned(),
                role: caller.role().to_owned(),
            }),
            Some(agent) => Ok(Some(agent.clone())),
            None => Err(RunError::UnknownAgent {
                name: name.to_owned(),
                available: self
                    .agents_for(caller)
                    .into_iter()
                    .map(|agent| agent.name)
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }

    /// The conversation to continue (with its messages as history) or a new one titled after
    /// the message.
    async fn open_conversation(
        &self,
        caller: &Caller,
        id: Option<ConversationId>,
        message: &str,
    ) -> Result<(ConversationId, Vec<ChatMessage>), RunError> {
        let store = &self.inner.store;
        let Some(id) = id else {
            let title: String = message.chars().take(80).collect();
            let created = store
                .create_conversation(&title, Some(caller.user()))
                .await?;
            return Ok((created.id, Vec::new()));
        };
        let detail = store
            .get_conversation(Scope::of(caller.owner()), id)
            .await?;
        let history = detail
            .messages
            .iter()
            .filter_map(|m| match m.role.as_str() {
                "user" => Some(ChatMessage::user(m.content.clone())),
                "assistant" => Some(ChatMessage::assistant(m.content.clone(), Vec::new())),
                _ => None,
            })
            .collect();
        Ok((id, history))
    }

    /// Make the run visible to [`Self::subscribe`] and [`Self::cancel`]; its first receiver.
    fn register(
        &self,
        run_id: RunId,
        caller: &Caller,
        cancel: CancellationToken,
    ) -> (Arc<LiveRun>, broadcast::Receiver<RunEvent>) {
        self.register_with(run_id, caller, cancel, LIVE_EVENTS)
    }

    /// [`Self::register`] with a broadcast buffer of `capacity` events (allocated whole, up
    /// front: a run of few events takes a small one).
    fn register_with(
        &self,
        run_id: RunId,
        caller: &Caller,
        cancel: CancellationToken,
        capacity: usize,
    ) -> (Arc<LiveRun>, broadcast::Receiver<RunEvent>) {
        let (sender, events) = broadcast::channel(capacity);
        let live = Arc::new(LiveRun {
            history: Mutex::new(Vec::new()),
            sender,
            cancel,
            owner: caller.user().to_owned(),
            inputs: Arc::default(),
            approvals: Arc::default(),
            durable: Arc::default(),
            suspend: CancellationToken::new(),
        });
        self.inner
            .live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(run_id, live.clone());
        (live, events)
    }

    /// Execute the run in its own task (from its start, or from `resumed`'s checkpoint): events
    /// fan out through the sink, the answer joins the conversation, and the run leaves the live
    /// set when it ends.
    fn spawn(
        &self,
        spec: RunSpec,
        live: Arc<LiveRun>,
        slot: Option<RunSlot>,
        resumed: Option<engine::Checkpoint>,
    ) -> JoinHandle<RunOutcome> {
        let (run_id, conversation_id) = (spec.run_id, spec.conversation_id);
        let sink = Arc::new(ServiceSink {
            store: self.inner.store.clone(),
            live,
            telemetry: self.inner.telemetry.clone(),
            redactor: self
                .inner
                .redactor
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
            end: Mutex::new(None),
        });
        let service = self.clone();
        let suspend = sink.live.suspend.clone();
        self.inner.tasks.spawn(async move {
            let sink_dyn = sink.clone() as Arc<dyn EventSink>;
            let body = async {
                match resumed {
                    Some(checkpoint) => engine::resume(spec, checkpoint, sink_dyn).await,
                    None => engine::execute(spec, sink_dyn).await,
                }
            };
            let outcome = tokio::select! {
                outcome = body => outcome,
                () = suspend.cancelled() => {
                    // Left as it is stored (its last checkpoint) for the next process.
                    if let Err(err) = service.inner.store.release_run(run_id).await {
                        tracing::error!(run_id = %run_id, error = %err, "releasing a suspended run failed");
                    }
                    service.forget(run_id);
                    drop(slot);
                    return RunOutcome {
                        status: crate::domain::RunStatus::Waiting,
                        answer: None,
                        error: Some(SUSPENDED.to_owned()),
                        usage: crate::domain::TokenUsage::default(),
                    };
                }
            };
            if let (Some(answer), Some(conversation_id)) = (&outcome.answer, conversation_id) {
                let stored = service
                    .inner
                    .store
                    .append_message(conversation_id, "assistant", answer, Some(run_id))
                    .await;
                if let Err(err) = stored {
                    tracing::error!(run_id = %run_id, error = %err, "storing the answer failed");
                }
            }
            let outcome = sink.finish(outcome).await;
            service.forget(run_id);
            drop(slot);
            outcome
        })
    }

    /// The run no longer executes here.
    fn forget(&self, run_id: RunId) {
        self.inner
            .live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&run_id);
    }

    /// The run executing here with this id, if `caller` may see it (another user's run is
    /// treated as absent, so it is answered as a missing one).
    fn live_run(&self, caller: &Caller, run_id: RunId) -> Option<Arc<LiveRun>> {
        self.inner
            .live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&run_id)
            .filter(|live| caller.may_see(Some(&live.owner)))
            .cloned()
    }

    /// Live events of a running run: what happened so far, then a receiver for the rest.
    /// `None` when the run is not running here (read it from the store instead).
    fn subscribe(
        &self,
        caller: &Caller,
        run_id: RunId,
    ) -> Option<(Vec<RunEvent>, broadcast::Receiver<RunEvent>)> {
        let live = self.live_run(caller, run_id)?;
        let history = live.history.lock().unwrap_or_else(|p| p.into_inner());
        // Subscribing under the history lock means no event is missed or seen twice.
        Some((history.clone(), live.sender.subscribe()))
    }

    /// Cancel a running run (its model request and tool calls are aborted; MCP cancellation sent).
    ///
    /// # Errors
    /// The run is not running here.
    pub fn cancel(&self, caller: &Caller, run_id: RunId) -> Result<(), RunError> {
        let cancelled = match self.live_run(caller, run_id) {
            Some(live) => {
                live.cancel.cancel();
                Ok(())
            }
            None => Err(RunError::NotRunning(run_id)),
        };
        let outcome = if cancelled.is_ok() { "ok" } else { "failed" };
        self.inner.hub.audit().record(AuditEvent::by(
            caller,
            "run_cancel",
            Some(run_id.to_string()),
            outcome,
        ));
        cancelled
    }

    /// Whether `run_id` executes here and `caller` may see it (its owner, or an admin).
    pub fn is_running_for(&self, caller: &Caller, run_id: RunId) -> bool {
        self.live_run(caller, run_id).is_some()
    }

    /// Answer the open question `input_id` of a run executing here, as its owner or an admin.
    ///
    /// # Errors
    /// The run is not running here (or is not the caller's), or the answer was refused
    /// ([`InputError`]).
    pub fn answer_input(
        &self,
        caller: &Caller,
        run_id: RunId,
        input_id: &str,
        answer: crate::mcp::asks::InputAnswer,
    ) -> Result<(), AnswerError> {
        let live = self
            .live_run(caller, run_id)
            .ok_or(AnswerError::NotRunning(run_id))?;
        let action = answer.action;
        let answered = live.inputs.answer(input_id, answer);
        let outcome = if answered.is_ok() { "ok" } else { "failed" };
        self.inner.hub.audit().record(AuditEvent::by(
            caller,
            "input_answer",
            Some(format!("{run_id}/{input_id} {}", action.as_str())),
            outcome,
        ));
        answered.map_err(AnswerError::Input)
    }

    /// The approvals waiting in the runs executing here that `caller` may decide (their own
    /// runs; every run for an admin), oldest run first.
    pub fn pending_approvals(&self, caller: &Caller) -> Vec<PendingApproval> {
        let live: Vec<(RunId, Arc<LiveRun>)> = self
            .inner
            .live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|(_, live)| caller.may_see(Some(&live.owner)))
            .map(|(id, live)| (*id, live.clone()))
            .collect();
        let mut pending: Vec<PendingApproval> = live
            .into_iter()
            .flat_map(|(id, live)| live.approvals.list(id))
            .collect();
        pending.sort_by_key(|p| (p.run_id.0, p.step));
        pending
    }

    /// Decide approval `id` of a run executing here, as its owner or an admin. Edited arguments
    /// are checked against the tool's input schema before they count.
    ///
    /// # Errors
    /// The run is not running here (or is not the caller's), or the decision was refused.
    pub fn decide_approval(
        &self,
        caller: &Caller,
        run_id: RunId,
        id: &str,
        input: DecisionInput,
    ) -> Result<(), DecideError> {
        let live = self
            .live_run(caller, run_id)
            .ok_or(DecideError::NotRunning(run_id))?;
        let tool = live
            .approvals
            .tool_of(id)
            .and_then(|tool| self.inner.hub.catalog().get(&tool).cloned());
        let approve = input.approve;
        let decided = live
            .approvals
            .decide(id, caller.user(), input, |arguments| {
                match &tool {
                    Some(tool) => tool.validate_arguments(arguments),
                    // The tool left the catalog meanwhile: the call will fail as unknown.
                    None => Ok(()),
                }
            });
        let action = if approve { "approve" } else { "deny" };
        let outcome = if decided.is_ok() { "ok" } else { "failed" };
        self.inner.hub.audit().record(AuditEvent::by(
            caller,
            "approval_decide",
            Some(format!("{run_id}/{id} {action}")),
            outcome,
        ));
        decided.map(drop).map_err(DecideError::Approval)
    }

    /// Stop every run (shutdown): a durable run (one that saved a checkpoint: it waited for a
    /// person) is suspended, left as stored for the next process to resume at once; the others
    /// are cancelled.
    pub fn cancel_all(&self) {
        for live in self
            .inner
            .live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
        {
            if live.durable.load(Ordering::Acquire) {
                live.suspend.cancel();
            } else {
                live.cancel.cancel();
            }
        }
    }

    /// Runs still in progress.
    pub fn running(&self) -> usize {
        self.inner
            .live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }

    /// Cancel every run, wait up to `timeout` for their tasks to record how they ended, then
    /// flush the store (shutdown).
    pub async fn shutdown(&self, timeout: Duration) {
        self.cancel_all();
        self.inner.tasks.close();
        if tokio::time::timeout(timeout, self.inner.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                running = self.running(),
                "runs did not finish in time after cancellation"
            );
        }
        self.inner.store.flush().await;
    }
}

/// Fans events out: the store (durable ones), live subscribers, and the log/telemetry; every
/// one of them gets the event with its secrets redacted (the engine keeps the real values for
/// the model and the tools).
struct ServiceSink {
    store: Store,
    live: Arc<LiveRun>,
    telemetry: Telemetry,
    redactor: Arc<Redactor>,
    /// The run's `RunFinished`, held until the store says what it kept ([`ServiceSink::finish`]).
    end: Mutex<Option<RunEvent>>,
}

/// What a follower of a run suspended at shutdown is told.
const SUSPENDED: &str =
    "the server is stopping; this run is kept as it is and goes on when a server starts again";

/// How long a run's end waits for the store to confirm its writes before it is reported as
/// unconfirmed (incomplete): long enough for a busy writer, short enough for a dead database.
const END_WAIT: Duration = Duration::from_secs(3);

impl ServiceSink {
    /// Store the held `RunFinished` after everything before it and publish what the store kept:
    /// a run whose writes were not all stored ends `failed` with its trace marked incomplete,
    /// never `succeeded`. Returns the run's outcome as its clients are told it (the answer and
    /// usage as the engine produced them).
    async fn finish(&self, outcome: RunOutcome) -> RunOutcome {
        let held = self.end.lock().unwrap_or_else(|p| p.into_inner()).take();
        let Some(end) = held else {
            return outcome;
        };
        let recorded = self.store.end_run(end, END_WAIT).await;
        let outcome = match &recorded.event {
            RunEvent::RunFinished { status, error, .. } => RunOutcome {
                status: *status,
                error: error.clone(),
                ..outcome
            },
            _ => outcome,
        };
        self.publish(recorded.event);
        outcome
    }

    /// The event to the log, telemetry, late subscribers' history and live subscribers.
    fn publish(&self, event: RunEvent) {
        crate::trace::run_event(&event);
        self.telemetry.record(&event);
        let mut history = self.live.history.lock().unwrap_or_else(|p| p.into_inner());
        if event.is_durable() {
            history.push(event.clone());
        }
        let _ = self.live.sender.send(event);
    }
}

impl EventSink for ServiceSink {
    fn emit(&self, event: RunEvent) {
        let event = self.redactor.event(event);
        if matches!(event, RunEvent::RunFinished { .. }) {
            *self.end.lock().unwrap_or_else(|p| p.into_inner()) = Some(event);
            return;
        }
        if event.is_durable() {
            self.store.record(&event);
        }
        self.publish(event);
    }
}

/// Messages as the engine expects them, from OpenAI-style roles (for the `/v1` API).
pub fn role_of(name: &str) -> Option<Role> {
    match name {
        "system" | "developer" => Some(Role::System),
        "user" => Some(Role::User),
        "assistant" => Some(Role::Assistant),
        "tool" => Some(Role::Tool),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_caps_name_the_cap_and_the_message() {
        let caps = MessageCaps {
            max_messages: 3,
            max_message_chars: 5,
        };
        let history = vec![
            ChatMessage::user("hello"),
            ChatMessage::assistant("hi", Vec::new()),
        ];
        assert!(caps.check(&history, "12345").is_ok());
        match caps.check(&history, "123456") {
            Err(RunError::MessageTooLong { index, chars, max }) => {
                assert_eq!((index, chars, max), (2, 6, 5));
            }
            other => panic!("expected MessageTooLong, got {other:?}"),
        }
        let long_history = vec![ChatMessage::user("x"); 3];
        let err = caps.check(&long_history, "y").unwrap_err();
        assert_eq!(
            err.to_string(),
            "4 messages were sent; a run takes at most 3 (server.max_messages)"
        );
        // Characters, not bytes.
        assert!(caps.check(&[], "héllo").is_ok());
    }
}
