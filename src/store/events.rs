//! Run events as rows: `RunStarted` inserts the run, `StepStarted` inserts (or, for a retry,
//! restarts) the step and its edges, `StepFinished` and `RunFinished` update them; and the
//! leases that tell live runs from orphaned ones, and the pass that marks orphaned runs
//! `interrupted`. Called by the writer (and `Store::open`) only.

use std::time::Duration;

use super::cap::{MAX_STORED_ERROR_BYTES, stored_json, stored_text};
use super::db::{Db, Statement, Tx};
use super::error::StoreError;
use crate::domain::{RunEvent, RunId, RunStatus, StepIndex, StepStatus, TokenUsage, UnixMillis};

/// Error text of a run found `running` at start-up.
const INTERRUPTED_ERROR: &str = "the server stopped while this run was running";

/// The runs still live (`running`, `waiting`) whose owner is not `me` and has not renewed its
/// lease since `$6` (or that predate leases): their process is gone. A run with a checkpoint is
/// not among them: a server claims it and resumes it (`store::resume`).
const ORPHANED: &str = "status IN ($4, $7) AND (owner IS NULL OR owner <> $5) \
     AND (heartbeat_at IS NULL OR heartbeat_at < $6) \
     AND id NOT IN (SELECT run_id FROM run_checkpoints)";

/// Mark orphaned runs (see [`ORPHANED`]: not renewed for `lease` before `at`) and their running
/// steps `interrupted`; returns how many runs. Runs of live processes sharing the database are
/// left alone.
pub(super) async fn interrupt_orphaned(
    db: &Db,
    at: UnixMillis,
    lease: Duration,
    me: &str,
) -> Result<u64, sqlx::Error> {
    let stale = at.saturating_sub(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX));
    let mut tx = db.begin().await?;
    tx.execute(
        Statement::assembled(
            format!(
                "UPDATE steps SET status = $1, finished_at = $2 \
                 WHERE status IN ($3, $8) AND run_id IN (SELECT id FROM runs WHERE {ORPHANED})"
            ),
            Vec::new(),
        )
        .bind(StepStatus::Interrupted.as_str())
        .bind(at)
        .bind(StepStatus::Running.as_str())
        .bind(RunStatus::Running.as_str())
        .bind(me)
        .bind(stale)
        .bind(RunStatus::Waiting.as_str())
        .bind(StepStatus::WaitingApproval.as_str()),
    )
    .await?;
    let runs = tx
        .execute(
            Statement::assembled(
                format!(
                    "UPDATE runs SET status = $1, finished_at = $2, error = COALESCE(error, $3) \
                     WHERE {ORPHANED}"
                ),
                Vec::new(),
            )
            .bind(RunStatus::Interrupted.as_str())
            .bind(at)
            .bind(INTERRUPTED_ERROR)
            .bind(RunStatus::Running.as_str())
            .bind(me)
            .bind(stale)
            .bind(RunStatus::Waiting.as_str()),
        )
        .await?;
    tx.commit().await?;
    Ok(runs)
}

/// Renew the lease of every run `me` is executing.
pub(super) async fn renew_leases(db: &Db, at: UnixMillis, me: &str) -> Result<u64, sqlx::Error> {
    let mut tx = db.begin().await?;
    let renewed = tx
        .execute(
            Statement::new(
                "UPDATE runs SET heartbeat_at = $1 WHERE owner = $2 AND status IN ($3, $4)",
            )
            .bind(at)
            .bind(me)
            .bind(RunStatus::Running.as_str())
            .bind(RunStatus::Waiting.as_str()),
        )
        .await?;
    tx.commit().await?;
    Ok(renewed)
}

/// Write one event's rows (a new run is owned by `owner`, the writing store's instance id);
/// `Ok(Err(NotFound))` when the step or run it updates is missing.
pub(super) async fn apply_event(
    tx: &mut Tx,
    event: &RunEvent,
    owner: &str,
) -> Result<Result<(), StoreError>, sqlx::Error> {
    match event {
        RunEvent::RunStarted {
            run_id,
            conversation_id,
            agent,
            model,
            user_message,
            trace_id,
            user,
            at,
        } => {
            let run = Statement::new(INSERT_RUN)
                .bind(run_id.to_string())
                .bind(conversation_id.map(|c| c.to_string()))
                .bind(agent.as_deref())
                .bind(model.as_str())
                .bind(RunStatus::Running.as_str())
                .bind(user_message.as_str())
                .bind(trace_id.as_deref())
                .bind(*at)
                .bind(owner)
                .bind(user.as_deref());
            tx.execute(run).await?;
            Ok(Ok(()))
        }
        RunEvent::StepStarted {
            run_id,
            step,
            kind,
            name,
            server,
            input,
            depends_on,
            attempt,
            at,
            ..
        } => {
            let row = Statement::new(UPSERT_STEP)
                .bind(run_id.to_string())
                .bind(i64::from(*step))
                .bind(kind.as_str())
                .bind(name.as_str())
                .bind(server.as_deref())
                .bind(StepStatus::Running.as_str())
                .bind(*at)
                .bind(stored_json(input))
                .bind(i64::from(*attempt));
            tx.execute(row).await?;
            insert_edges(tx, *run_id, *step, depends_on).await?;
            Ok(Ok(()))
        }
        RunEvent::StepFinished {
            run_id,
            step,
            status,
            output,
            error,
            usage,
            at,
            ..
        } => {
            let row = Statement::new(FINISH_STEP)
                .bind(run_id.to_string())
                .bind(i64::from(*step))
                .bind(status.as_str())
                .bind(*at)
                .bind(output.as_ref().map(stored_json))
                .bind(error.as_deref().map(capped_error))
                .bind(usage.map(|u| clamp(u.input_tokens)))
                .bind(usage.map(|u| clamp(u.output_tokens)));
            finish_step(tx, *run_id, *step, row, *usage).await
        }
        RunEvent::RunFinished {
            run_id,
            status,
            answer,
            error,
            usage,
            at,
        } => {
            let row = Statement::new(FINISH_RUN)
                .bind(run_id.to_string())
                .bind(status.as_str())
                .bind(*at)
                .bind(answer.as_deref())
                .bind(error.as_deref().map(capped_error))
                .bind(clamp(usage.input_tokens))
                .bind(clamp(usage.output_tokens));
            finish_run(tx, *run_id, *at, row).await
        }
        RunEvent::ApprovalRequested { run_id, step, .. } => {
            set_step_status(tx, *run_id, *step, StepStatus::WaitingApproval).await?;
            tx.execute(
                Statement::new("UPDATE runs SET status = $2 WHERE id = $1 AND status = $3")
                    .bind(run_id.to_string())
                    .bind(RunStatus::Waiting.as_str())
                    .bind(RunStatus::Running.as_str()),
            )
            .await?;
            Ok(Ok(()))
        }
        RunEvent::ApprovalDecided { run_id, step, .. } => {
            set_step_status(tx, *run_id, *step, StepStatus::Running).await?;
            // Waiting until the last gated call of the run is decided.
            tx.execute(
                Statement::new(
                    "UPDATE runs SET status = $2 WHERE id = $1 AND status = $3 AND NOT EXISTS \
                     (SELECT 1 FROM steps WHERE steps.run_id = $1 AND steps.status = $4)",
                )
                .bind(run_id.to_string())
                .bind(RunStatus::Running.as_str())
                .bind(RunStatus::Waiting.as_str())
                .bind(StepStatus::WaitingApproval.as_str()),
            )
            .await?;
            Ok(Ok(()))
        }
        RunEvent::RunResumed {
            run_id, from_step, ..
        } => {
            // What ran past the checkpoint is redone (or replaced) by the resumed run.
            for sql in [
                "DELETE FROM step_edges WHERE run_id = $1 AND (to_idx >= $2 OR from_idx >= $2)",
                "DELETE FROM steps WHERE run_id = $1 AND idx >= $2",
            ] {
                tx.execute(
                    Statement::new(sql)
                        .bind(run_id.to_string())
                        .bind(i64::from(*from_step)),
                )
                .await?;
            }
            Ok(Ok(()))
        }
        RunEvent::TokenDelta { .. }
        | RunEvent::ToolProgress { .. }
        | RunEvent::InputRequested { .. }
        | RunEvent::InputAnswered { .. } => Ok(Ok(())),
    }
}

/// `RunStarted`'s row; a replayed event changes nothing.
const INSERT_RUN: &str = "INSERT INTO runs (id, conversation_id, agent, model, status, \
     user_message, trace_id, started_at, owner, heartbeat_at, user_name) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $8, $10) \
     ON CONFLICT (id) DO NOTHING";

/// `StepStarted`'s row. A retry starts the same step again: the row is reset, not duplicated.
const UPSERT_STEP: &str = "INSERT INTO steps (run_id, idx, kind, name, server, status, \
     started_at, input, attempt) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
     ON CONFLICT (run_id, idx) DO UPDATE SET kind = excluded.kind, \
     name = excluded.name, server = excluded.server, status = excluded.status, \
     started_at = excluded.started_at, finished_at = NULL, \
     input = excluded.input, output = NULL, error = NULL, input_tokens = NULL, \
     output_tokens = NULL, attempt = excluded.attempt";

/// `StepFinished`'s update of the step's row.
const FINISH_STEP: &str = "UPDATE steps SET status = $3, finished_at = $4, output = $5, \
     error = $6, input_tokens = $7, output_tokens = $8 WHERE run_id = $1 AND idx = $2";

/// `RunFinished`'s update of the run's row.
const FINISH_RUN: &str = "UPDATE runs SET status = $2, finished_at = $3, answer = $4, \
     error = $5, input_tokens = $6, output_tokens = $7 WHERE id = $1";

/// A started step's incoming edges (the DAG), each written once however often it starts.
async fn insert_edges(
    tx: &mut Tx,
    run_id: RunId,
    step: StepIndex,
    depends_on: &[StepIndex],
) -> Result<(), sqlx::Error> {
    for from in depends_on {
        tx.execute(
            Statement::new(
                "INSERT INTO step_edges (run_id, from_idx, to_idx) VALUES ($1, $2, $3) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(run_id.to_string())
            .bind(i64::from(*from))
            .bind(i64::from(step)),
        )
        .await?;
    }
    Ok(())
}

/// Update the step's `row` (`NotFound` when it was never started), then add its tokens to the
/// run's, which keeps them current while the run runs; `RunFinished` sets the total.
async fn finish_step(
    tx: &mut Tx,
    run_id: RunId,
    step: StepIndex,
    row: Statement,
    usage: Option<TokenUsage>,
) -> Result<Result<(), StoreError>, sqlx::Error> {
    if tx.execute(row).await? == 0 {
        return Ok(Err(StoreError::NotFound(format!(
            "step {step} of run {run_id}"
        ))));
    }
    if let Some(usage) = usage {
        tx.execute(
            Statement::new(
                "UPDATE runs SET input_tokens = input_tokens + $2, \
                 output_tokens = output_tokens + $3 WHERE id = $1",
            )
            .bind(run_id.to_string())
            .bind(clamp(usage.input_tokens))
            .bind(clamp(usage.output_tokens)),
        )
        .await?;
    }
    Ok(Ok(()))
}

/// Close the run's steps still running, then update the run's `row` (`NotFound` when the run
/// was never started).
async fn finish_run(
    tx: &mut Tx,
    run_id: RunId,
    at: UnixMillis,
    row: Statement,
) -> Result<Result<(), StoreError>, sqlx::Error> {
    // A finished run has no running step: one the engine did not close was cancelled.
    close_live_steps(tx, run_id, StepStatus::Cancelled, at).await?;
    if tx.execute(row).await? == 0 {
        return Ok(Err(StoreError::NotFound(format!("run {run_id}"))));
    }
    super::resume::delete_checkpoint(tx, run_id).await?;
    Ok(Ok(()))
}

/// End run `run_id`'s steps still live (running or waiting for approval) as `status`.
pub(super) async fn close_live_steps(
    tx: &mut Tx,
    run_id: RunId,
    status: StepStatus,
    at: UnixMillis,
) -> Result<(), sqlx::Error> {
    tx.execute(
        Statement::new(
            "UPDATE steps SET status = $2, finished_at = $3 \
             WHERE run_id = $1 AND status IN ($4, $5)",
        )
        .bind(run_id.to_string())
        .bind(status.as_str())
        .bind(at)
        .bind(StepStatus::Running.as_str())
        .bind(StepStatus::WaitingApproval.as_str()),
    )
    .await?;
    Ok(())
}

/// Set a live step's status (waiting for approval, or running again).
async fn set_step_status(
    tx: &mut Tx,
    run_id: RunId,
    step: StepIndex,
    status: StepStatus,
) -> Result<(), sqlx::Error> {
    tx.execute(
        Statement::new(
            "UPDATE steps SET status = $3 WHERE run_id = $1 AND idx = $2 AND status IN ($4, $5)",
        )
        .bind(run_id.to_string())
        .bind(i64::from(step))
        .bind(status.as_str())
        .bind(StepStatus::Running.as_str())
        .bind(StepStatus::WaitingApproval.as_str()),
    )
    .await?;
    Ok(())
}

fn capped_error(error: &str) -> String {
    stored_text(error, MAX_STORED_ERROR_BYTES)
}

/// Token counts are `u64` in the domain and `BIGINT` in the database.
fn clamp(count: u64) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}
