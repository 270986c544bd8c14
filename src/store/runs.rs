//! Reading runs: filtered, keyset-paginated listings (newest first) and one run with its DAG.
//! Runs are written by the writer from run events.

use serde_json::Value;

use super::cap::excerpt;
use super::db::{Arg, Statement};
use super::error::corrupt;
use super::{
    DEFAULT_RUN_PAGE, EXCERPT_CHARS, MAX_RUN_PAGE, RunDetail, RunFilter, RunPage, RunSummary,
    Scope, StepEdge, StepRecord, Store, StoreError,
};
use crate::domain::{RunId, RunStatus, StepKind, StepStatus, UnixMillis};

/// Summary columns of a listing: long texts are cut in SQL (one character more than an excerpt
/// keeps, so [`excerpt`] knows whether it was cut) to keep large messages out of the page.
const LIST_COLUMNS: &str = "r.id, r.conversation_id, r.user_name, r.agent, r.model, r.status, \
    substr(r.user_message, 1, 201) AS user_message, substr(r.answer, 1, 201) AS answer, \
    substr(r.error, 1, 201) AS error, r.trace_id, r.started_at, r.finished_at, \
    r.input_tokens, r.output_tokens, \
    (SELECT COUNT(*) FROM steps s WHERE s.run_id = r.id) AS step_count, \
    (SELECT COUNT(*) FROM steps s WHERE s.run_id = r.id AND s.kind = 'act') AS tool_call_count";

const DETAIL_SQL: &str = "SELECT r.id, r.conversation_id, r.user_name, r.agent, r.model, r.status, \
    r.user_message, r.answer, r.error, r.trace_id, r.started_at, r.finished_at, \
    r.input_tokens, r.output_tokens, \
    (SELECT COUNT(*) FROM steps s WHERE s.run_id = r.id) AS step_count, \
    (SELECT COUNT(*) FROM steps s WHERE s.run_id = r.id AND s.kind = 'act') AS tool_call_count \
    FROM runs r WHERE r.id = $1 AND ($2 IS NULL OR r.user_name = $2)";

impl Store {
    /// Runs matching `filter`, newest first, one page at a time.
    ///
    /// # Errors
    ///
    /// [`StoreError::Invalid`] for a cursor this store did not hand out,
    /// [`StoreError::Database`].
    pub async fn list_runs(&self, filter: &RunFilter) -> Result<RunPage, StoreError> {
        let limit = page_size(filter.limit);
        let mut query = ListQuery::default();
        if let Some(status) = filter.status {
            let p = query.arg(status.as_str());
            query.condition(format!("r.status = {p}"));
        }
        if let Some(agent) = &filter.agent {
            let p = query.arg(agent.as_str());
            query.condition(format!("r.agent = {p}"));
        }
        if let Some(user) = &filter.user {
            let p = query.arg(user.as_str());
            query.condition(format!("r.user_name = {p}"));
        }
        if let Some(model) = &filter.model {
            let p = query.arg(model.as_str());
            query.condition(format!("r.model = {p}"));
        }
        if let Some(since) = filter.since {
            let p = query.arg(since);
            query.condition(format!("r.started_at >= {p}"));
        }
        if let Some(until) = filter.until {
            let p = query.arg(until);
            query.condition(format!("r.started_at < {p}"));
        }
        if let Some(search) = filter.search.as_deref().filter(|s| !s.is_empty()) {
            let p = query.arg(format!("%{}%", escape_like(search)));
            query.condition(format!("lower(r.user_message) LIKE lower({p}) ESCAPE '\\'"));
        }
        if let Some(cursor) = &filter.cursor {
            let (started_at, id) = parse_cursor(cursor)?;
            let at = query.arg(started_at);
            let id = query.arg(id.to_string());
            query.condition(format!(
                "(r.started_at < {at} OR (r.started_at = {at} AND r.id < {id}))"
            ));
        }
        let where_clause = if query.conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", query.conditions.join(" AND "))
        };
        // One row more than the page shows whether there is a next page.
        let p = query.arg(i64::from(limit) + 1);
        let sql = format!(
            "SELECT {LIST_COLUMNS} FROM runs r {where_clause} \
             ORDER BY r.started_at DESC, r.id DESC LIMIT {p}"
        );
        let rows: Vec<RunRow> = self
            .reader
            .fetch_all(Statement::assembled(sql, query.args))
            .await?;
        let more = rows.len() > limit as usize;
        let runs = rows
            .into_iter()
            .take(limit as usize)
            .map(|row| row.into_summary().map(excerpts))
            .collect::<Result<Vec<_>, _>>()?;
        let next_cursor = if more {
            runs.last()
                .map(|last| format_cursor(last.started_at, last.id))
        } else {
            None
        };
        Ok(RunPage { runs, next_cursor })
    }

    /// One run with every step (by index) and edge.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`] (also for another user's run, with `Scope::User`) or
    /// [`StoreError::Database`].
    pub async fn get_run(&self, scope: Scope<'_>, id: RunId) -> Result<RunDetail, StoreError> {
        let row: Option<RunRow> = self
            .reader
            .fetch_optional(
                Statement::new(DETAIL_SQL)
                    .bind(id.to_string())
                    .bind(scope.user()),
            )
            .await?;
        let summary = row
            .ok_or_else(|| StoreError::NotFound(format!("run {id}")))?
            .into_summary()?;
        let steps: Vec<StepRow> = self
            .reader
            .fetch_all(
                Statement::new(
                    "SELECT idx, kind, name, server, status, started_at, finished_at, input, \
                     output, error, input_tokens, output_tokens, attempt \
                     FROM steps WHERE run_id = $1 ORDER BY idx",
                )
                .bind(id.to_string()),
            )
            .await?;
        let edges: Vec<EdgeRow> = self
            .reader
            .fetch_all(
                Statement::new(
                    "SELECT from_idx, to_idx FROM step_edges WHERE run_id = $1 \
                     ORDER BY to_idx, from_idx",
                )
                .bind(id.to_string()),
            )
            .await?;
        Ok(RunDetail {
            summary,
            steps: steps
                .into_iter()
                .map(StepRow::into_record)
                .collect::<Result<_, _>>()?,
            edges: edges.into_iter().map(EdgeRow::into_edge).collect(),
        })
    }
}

/// `limit` as a page size: 0 is the default, above the maximum is the maximum.
pub(super) fn page_size(limit: u32) -> u32 {
    match limit {
        0 => DEFAULT_RUN_PAGE,
        n => n.min(MAX_RUN_PAGE),
    }
}

/// WHERE conditions and the arguments their `$N` placeholders refer to.
#[derive(Default)]
struct ListQuery {
    conditions: Vec<String>,
    args: Vec<Arg>,
}

impl ListQuery {
    /// Add an argument; returns its placeholder.
    fn arg(&mut self, arg: impl Into<Arg>) -> String {
        self.args.push(arg.into());
        format!("${}", self.args.len())
    }

    fn condition(&mut self, condition: String) {
        self.conditions.push(condition);
    }
}

fn excerpts(mut summary: RunSummary) -> RunSummary {
    summary.user_message = excerpt(&summary.user_message, EXCERPT_CHARS);
    summary.answer = summary.answer.map(|a| excerpt(&a, EXCERPT_CHARS));
    summary.error = summary.error.map(|e| excerpt(&e, EXCERPT_CHARS));
    summary
}

/// `search` with LIKE's wildcards and escape character made literal.
fn escape_like(search: &str) -> String {
    let mut escaped = String::with_capacity(search.len());
    for c in search.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// The position after a run in the listing order: `<started_at>_<id>`.
fn format_cursor(started_at: UnixMillis, id: RunId) -> String {
    format!("{started_at}_{id}")
}

fn parse_cursor(cursor: &str) -> Result<(UnixMillis, RunId), StoreError> {
    let invalid = || StoreError::Invalid(format!("cursor {cursor:?}"));
    let (started_at, id) = cursor.split_once('_').ok_or_else(invalid)?;
    Ok((
        started_at.parse().map_err(|_| invalid())?,
        id.parse().map_err(|_| invalid())?,
    ))
}

#[derive(sqlx::FromRow)]
struct RunRow {
    id: String,
    conversation_id: Option<String>,
    user_name: Option<String>,
    agent: Option<String>,
    model: String,
    status: String,
    user_message: String,
    answer: Option<String>,
    error: Option<String>,
    trace_id: Option<String>,
    started_at: i64,
    finished_at: Option<i64>,
    input_tokens: i64,
    output_tokens: i64,
    step_count: i64,
    tool_call_count: i64,
}

impl RunRow {
    fn into_summary(self) -> Result<RunSummary, sqlx::Error> {
        let conversation_id = match self.conversation_id {
            Some(id) => Some(id.parse().map_err(|_| corrupt("conversation id", &id))?),
            None => None,
        };
        Ok(RunSummary {
            id: self.id.parse().map_err(|_| corrupt("run id", &self.id))?,
            conversation_id,
            user: self.user_name,
            agent: self.agent,
            model: self.model,
            status: RunStatus::parse(&self.status)
                .ok_or_else(|| corrupt("run status", &self.status))?,
            user_message: self.user_message,
            answer: self.answer,
            error: self.error,
            started_at: self.started_at,
            finished_at: self.finished_at,
            duration_ms: self.finished_at.map(|end| end - self.started_at),
            step_count: count(self.step_count),
            tool_call_count: count(self.tool_call_count),
            input_tokens: tokens(self.input_tokens),
            output_tokens: tokens(self.output_tokens),
            trace_id: self.trace_id,
        })
    }
}

#[derive(sqlx::FromRow)]
struct StepRow {
    idx: i64,
    kind: String,
    name: String,
    server: Option<String>,
    status: String,
    started_at: i64,
    finished_at: Option<i64>,
    input: String,
    output: Option<String>,
    error: Option<String>,
    input_tokens: Option<i64>,
    output_tokens: Option<i64>,
    attempt: i64,
}

impl StepRow {
    fn into_record(self) -> Result<StepRecord, sqlx::Error> {
        let output = match &self.output {
            Some(text) => Some(json(text, "step output")?),
            None => None,
        };
        Ok(StepRecord {
            index: count(self.idx),
            kind: StepKind::parse(&self.kind).ok_or_else(|| corrupt("step kind", &self.kind))?,
            name: self.name,
            server: self.server,
            status: StepStatus::parse(&self.status)
                .ok_or_else(|| corrupt("step status", &self.status))?,
            started_at: self.started_at,
            finished_at: self.finished_at,
            duration_ms: self.finished_at.map(|end| end - self.started_at),
            input: json(&self.input, "step input")?,
            output,
            error: self.error,
            input_tokens: self.input_tokens.map(tokens),
            output_tokens: self.output_tokens.map(tokens),
            attempt: count(self.attempt),
        })
    }
}

#[derive(sqlx::FromRow)]
struct EdgeRow {
    from_idx: i64,
    to_idx: i64,
}

impl EdgeRow {
    fn into_edge(self) -> StepEdge {
        StepEdge {
            from: count(self.from_idx),
            to: count(self.to_idx),
        }
    }
}

fn json(text: &str, what: &str) -> Result<Value, sqlx::Error> {
    serde_json::from_str(text).map_err(|_| corrupt(what, text))
}

/// A stored count or index (never negative, written from a `u32`).
fn count(value: i64) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

/// A stored token count (written from a `u64`, clamped to `i64::MAX`).
fn tokens(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip() {
        let id = RunId::new();
        let cursor = format_cursor(1_700_000_000_123, id);
        assert_eq!(parse_cursor(&cursor).unwrap(), (1_700_000_000_123, id));
    }

    #[test]
    fn foreign_cursors_are_invalid() {
        for cursor in [
            "",
            "abc",
            "12_not-a-uuid",
            "x_0190f5c2-7a4e-7c3e-8000-000000000000",
        ] {
            let err = parse_cursor(cursor).unwrap_err();
            assert!(matches!(err, StoreError::Invalid(_)), "{cursor}: {err:?}");
        }
    }

    #[test]
    fn like_wildcards_are_literal() {
        assert_eq!(escape_like(r"50%_off\now"), r"50\%\_off\\now");
    }

    #[test]
    fn page_sizes_are_bounded() {
        assert_eq!(page_size(0), DEFAULT_RUN_PAGE);
        assert_eq!(page_size(10), 10);
        assert_eq!(page_size(10_000), MAX_RUN_PAGE);
    }
}
