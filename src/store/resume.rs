//! Runs that can go on after their process is gone: their checkpoints (written in order with
//! their events, deleted when they end), the claim a live process makes on the ones whose lease
//! ran out, and the end of a claimed run that cannot be resumed.

use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::sync::oneshot;

use super::conversations::Write;
use super::db::{Statement, Tx};
use super::writer::Command;
use super::{Store, StoreError};
use crate::domain::{ConversationId, RunId, RunStatus, StepStatus, UnixMillis, now_millis};

/// A run this process claimed to resume: what its row says, and its checkpoint's text.
#[derive(Debug, Clone, PartialEq)]
pub struct ResumableRun {
    pub id: RunId,
    pub conversation_id: Option<ConversationId>,
    pub agent: Option<String>,
    pub model: String,
    pub user: Option<String>,
    pub trace_id: Option<String>,
    pub checkpoint: String,
}

/// What [`Write::Resume`] does.
#[derive(Debug)]
pub(super) enum ResumeWrite {
    Save {
        run_id: RunId,
        state: String,
        at: UnixMillis,
    },
    /// Take over the checkpointed runs whose owner has not renewed since `stale_before`.
    Claim {
        me: String,
        stale_before: UnixMillis,
        at: UnixMillis,
    },
    /// A run suspended at shutdown: nobody owns it, any process may claim it now.
    Release { run_id: RunId, me: String },
    /// A claimed run that cannot go on ends `interrupted`, saying why.
    Abandon {
        run_id: RunId,
        me: String,
        reason: String,
        at: UnixMillis,
    },
}

impl Store {
    /// Queue `state` as run `run_id`'s checkpoint (replacing the previous one), after every
    /// event queued before it. The returned future resolves once it is committed; dropping it
    /// does not withdraw the write.
    pub fn save_checkpoint(
        &self,
        run_id: RunId,
        state: String,
    ) -> BoxFuture<'static, Result<(), StoreError>> {
        let (reply, outcome) = oneshot::channel();
        let write = Write::Resume(ResumeWrite::Save {
            run_id,
            state,
            at: now_millis(),
        });
        let sent = self.send(Command::Write(write, reply));
        async move {
            if !sent {
                return Err(StoreError::Closed);
            }
            outcome.await.unwrap_or(Err(StoreError::Closed))
        }
        .boxed()
    }

    /// Claim the runs that have a checkpoint and whose process stopped renewing their lease
    /// (they become this store's, renewed by it), and return every checkpointed run this store
    /// owns that is still live: the caller resumes the ones it is not executing already.
    ///
    /// # Errors
    /// [`StoreError::Database`], [`StoreError::Closed`].
    pub async fn claim_resumable(&self) -> Result<Vec<ResumableRun>, StoreError> {
        let at = now_millis();
        let lease = i64::try_from(self.lease.as_millis()).unwrap_or(i64::MAX);
        self.write(Write::Resume(ResumeWrite::Claim {
            me: self.owner.to_string(),
            stale_before: at.saturating_sub(lease),
            at,
        }))
        .await?;
        let rows: Vec<ResumableRow> = self
            .writer_db
            .fetch_all(
                Statement::new(
                    "SELECT r.id, r.conversation_id, r.agent, r.model, r.user_name, r.trace_id, \
                     c.state FROM runs r JOIN run_checkpoints c ON c.run_id = r.id \
                     WHERE r.owner = $1 AND r.status IN ($2, $3) ORDER BY r.started_at",
                )
                .bind(self.owner.to_string())
                .bind(RunStatus::Running.as_str())
                .bind(RunStatus::Waiting.as_str()),
            )
            .await?;
        rows.into_iter()
            .map(ResumableRow::into_run)
            .collect::<Result<_, _>>()
            .map_err(StoreError::from)
    }

    /// Give up run `run_id`, suspended at shutdown as it is stored: the next process to claim
    /// resumable runs takes it at once, without waiting for its lease to run out.
    ///
    /// # Errors
    /// [`StoreError::Database`], [`StoreError::Closed`].
    pub async fn release_run(&self, run_id: RunId) -> Result<(), StoreError> {
        self.write(Write::Resume(ResumeWrite::Release {
            run_id,
            me: self.owner.to_string(),
        }))
        .await
    }

    /// End claimed run `run_id`, which cannot be resumed, `interrupted` with `reason`.
    ///
    /// # Errors
    /// [`StoreError::Database`], [`StoreError::Closed`].
    pub async fn abandon_run(&self, run_id: RunId, reason: &str) -> Result<(), StoreError> {
        self.write(Write::Resume(ResumeWrite::Abandon {
            run_id,
            me: self.owner.to_string(),
            reason: reason.to_owned(),
            at: now_millis(),
        }))
        .await
    }
}

/// Apply a [`ResumeWrite`].
pub(super) async fn apply(
    tx: &mut Tx,
    write: &ResumeWrite,
) -> Result<Result<(), StoreError>, sqlx::Error> {
    match write {
        ResumeWrite::Save { run_id, state, at } => {
            tx.execute(
                Statement::new(
                    "INSERT INTO run_checkpoints (run_id, state, saved_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (run_id) DO UPDATE SET state = excluded.state, \
                     saved_at = excluded.saved_at",
                )
                .bind(run_id.to_string())
                .bind(state.as_str())
                .bind(*at),
            )
            .await?;
        }
        ResumeWrite::Claim {
            me,
            stale_before,
            at,
        } => {
            tx.execute(
                Statement::new(
                    "UPDATE runs SET owner = $1, heartbeat_at = $2 \
                     WHERE status IN ($3, $4) AND (owner IS NULL OR owner <> $1) \
                     AND (heartbeat_at IS NULL OR heartbeat_at < $5) \
                     AND id IN (SELECT run_id FROM run_checkpoints)",
                )
                .bind(me.as_str())
                .bind(*at)
                .bind(RunStatus::Running.as_str())
                .bind(RunStatus::Waiting.as_str())
                .bind(*stale_before),
            )
            .await?;
        }
        ResumeWrite::Release { run_id, me } => {
            tx.execute(
                Statement::new(
                    "UPDATE runs SET owner = NULL, heartbeat_at = NULL WHERE id = $1 AND owner = $2",
                )
                .bind(run_id.to_string())
                .bind(me.as_str()),
            )
            .await?;
        }
        ResumeWrite::Abandon {
            run_id,
            me,
            reason,
            at,
        } => {
            super::events::close_live_steps(tx, *run_id, StepStatus::Interrupted, *at).await?;
            tx.execute(
                Statement::new(
                    "UPDATE runs SET status = $2, finished_at = $3, error = $4 \
                     WHERE id = $1 AND owner = $5 AND status IN ($6, $7)",
                )
                .bind(run_id.to_string())
                .bind(RunStatus::Interrupted.as_str())
                .bind(*at)
                .bind(super::cap::stored_text(
                    reason,
                    super::cap::MAX_STORED_ERROR_BYTES,
                ))
                .bind(me.as_str())
                .bind(RunStatus::Running.as_str())
                .bind(RunStatus::Waiting.as_str()),
            )
            .await?;
            delete_checkpoint(tx, *run_id).await?;
        }
    }
    Ok(Ok(()))
}

/// Drop a run's checkpoint (it ended).
pub(super) async fn delete_checkpoint(tx: &mut Tx, run_id: RunId) -> Result<(), sqlx::Error> {
    tx.execute(
        Statement::new("DELETE FROM run_checkpoints WHERE run_id = $1").bind(run_id.to_string()),
    )
    .await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct ResumableRow {
    id: String,
    conversation_id: Option<String>,
    agent: Option<String>,
    model: String,
    user_name: Option<String>,
    trace_id: Option<String>,
    state: String,
}

impl ResumableRow {
    fn into_run(self) -> Result<ResumableRun, sqlx::Error> {
        let decode = |what: &str, err: String| sqlx::Error::Decode(format!("{what}: {err}").into());
        Ok(ResumableRun {
            id: self
                .id
                .parse()
                .map_err(|e| decode("run id", format!("{e}")))?,
            conversation_id: self
                .conversation_id
                .map(|id| id.parse())
                .transpose()
                .map_err(|e| decode("conversation id", format!("{e}")))?,
            agent: self.agent,
            model: self.model,
            user: self.user_name,
            trace_id: self.trace_id,
            checkpoint: self.state,
        })
    }
}
