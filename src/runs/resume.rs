//! Runs that go on after their process is gone: where a run's checkpoints go (the store, with
//! who the run runs as), and taking over the runs the store lets this process claim, each
//! rebuilt as it started (its caller, agent and model as configured now) and handed to
//! `engine::resume`. A run that cannot be rebuilt ends `interrupted`, saying why.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::FutureExt;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::{RunError, RunHow, RunService};
use crate::access::Caller;
use crate::domain::{RunId, TraceId};
use crate::engine::{Checkpoint, CheckpointError, Checkpoints};
use crate::store::{ResumableRun, Store};

/// Finds the caller a resumed run runs as, from the key it was started with (`None`: no key,
/// `auth: none`). `app` answers it with the authenticator: a revoked key stops the run.
pub trait CallerLookup: Send + Sync {
    fn caller(&self, key_id: Option<&str>) -> BoxFuture<'_, Result<Caller, String>>;
}

/// Why a claimed run could not go on.
#[derive(Debug, thiserror::Error)]
pub enum ResumeError {
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error("the caller who started it is refused now ({0})")]
    Caller(String),
    #[error("its conversation is gone")]
    NoConversation,
    #[error(transparent)]
    Start(#[from] RunError),
}

/// What the store keeps as a run's checkpoint: the engine's, and how the run runs.
#[derive(Serialize)]
struct Saved<'a> {
    key_id: Option<&'a str>,
    attended: bool,
    temperature: Option<f64>,
    checkpoint: &'a Checkpoint,
}

/// [`Saved`] read back (the engine checks its own part's version).
#[derive(Deserialize)]
struct Loaded {
    key_id: Option<String>,
    attended: bool,
    temperature: Option<f64>,
    checkpoint: Value,
}

/// One run's [`Checkpoints`]: into the store, in order with its events.
pub(super) struct RunCheckpoints {
    pub(super) store: Store,
    pub(super) run_id: RunId,
    pub(super) key_id: Option<String>,
    pub(super) attended: bool,
    pub(super) temperature: Option<f64>,
    /// Set at the first save: the run is durable.
    pub(super) durable: Arc<AtomicBool>,
}

impl Checkpoints for RunCheckpoints {
    fn save(&self, checkpoint: &Checkpoint) -> BoxFuture<'static, Result<(), String>> {
        let saved = Saved {
            key_id: self.key_id.as_deref(),
            attended: self.attended,
            temperature: self.temperature,
            checkpoint,
        };
        self.durable.store(true, Ordering::Release);
        let text = match serde_json::to_string(&saved) {
            Ok(text) => text,
            Err(err) => return futures::future::ready(Err(err.to_string())).boxed(),
        };
        self.store
            .save_checkpoint(self.run_id, text)
            .map(|saved| saved.map_err(|err| err.to_string()))
            .boxed()
    }
}

impl RunService {
    /// Claim the runs whose process is gone and that can go on (they have a checkpoint), and
    /// resume each here; a run that cannot be resumed ends `interrupted` with the reason.
    /// Returns how many were resumed. Called at start-up and at every lease renewal.
    pub async fn resume_orphaned(&self, callers: &dyn CallerLookup) -> usize {
        let claimed = match self.inner.store.claim_resumable().await {
            Ok(claimed) => claimed,
            Err(err) => {
                tracing::warn!(error = %err, "claiming resumable runs failed");
                return 0;
            }
        };
        let mut resumed = 0;
        for run in claimed {
            let live = self
                .inner
                .live
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains_key(&run.id);
            if live {
                continue;
            }
            match self.resume(callers, &run).await {
                Ok(()) => {
                    resumed += 1;
                    tracing::info!(run_id = %run.id, "run resumed from its checkpoint");
                }
                Err(err) => {
                    let reason = format!("the run could not be resumed after a restart: {err}");
                    tracing::warn!(run_id = %run.id, "{reason}");
                    if let Err(err) = self.inner.store.abandon_run(run.id, &reason).await {
                        tracing::error!(run_id = %run.id, error = %err, "ending an unresumable run failed");
                    }
                }
            }
        }
        resumed
    }

    /// Rebuild `run` as it was started and go on from its checkpoint.
    async fn resume(
        &self,
        callers: &dyn CallerLookup,
        run: &ResumableRun,
    ) -> Result<(), ResumeError> {
        let loaded: Loaded = serde_json::from_str(&run.checkpoint)
            .map_err(|err| CheckpointError::Unreadable(err.to_string()))?;
        let checkpoint = Checkpoint::from_json(&loaded.checkpoint.to_string())?;
        let caller = callers
            .caller(loaded.key_id.as_deref())
            .await
            .map_err(ResumeError::Caller)?;
        let conversation_id = run.conversation_id.ok_or(ResumeError::NoConversation)?;
        let agent = self.agent(&caller, run.agent.as_deref())?;
        let entry = self
            .inner
            .models
            .get(Some(&run.model))
            .map_err(RunError::from)?;
        let model_name = entry.config().name.clone();
        if !caller.may_use_model(&model_name) {
            return Err(RunError::ModelNotAllowed {
                model: model_name,
                role: caller.role().to_owned(),
                via_agent: None,
            }
            .into());
        }
        let model = entry.client().map_err(RunError::from)?;
        let cancel = CancellationToken::new();
        let (live, _events) = self.register(run.id, &caller, cancel.clone());
        let how = RunHow {
            caller: &caller,
            run_id: run.id,
            conversation_id: Some(conversation_id),
            agent: agent.as_ref(),
            model_name,
            work: crate::engine::Work::Chat(model),
            attended: loaded.attended,
            temperature: loaded.temperature,
            trace_id: run
                .trace_id
                .clone()
                .map_or_else(TraceId::random, TraceId::from),
        };
        let spec = self.spec(how, &live, cancel);
        // A resumed run is not new work: it takes a run slot if one is free, and goes on if not.
        let slot = self.inner.hub.limiter().start_run(&caller).ok();
        self.spawn(spec, live, slot, Some(checkpoint));
        Ok(())
    }
}
