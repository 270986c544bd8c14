//! What the store returns: conversations, messages, run summaries and run details; times are Unix
//! milliseconds. Plain data: how the HTTP API shows them is `api::wire`'s business.

use serde_json::Value;

use crate::domain::{
    ConversationId, RunId, RunStatus, StepIndex, StepKind, StepStatus, UnixMillis,
};

/// A conversation without its messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationRecord {
    pub id: ConversationId,
    pub title: String,
    pub created_at: UnixMillis,
    /// Last rename or message.
    pub updated_at: UnixMillis,
    /// Who it belongs to; `None` for conversations from before users existed.
    pub user: Option<String>,
}

/// Whose rows a read or write may touch: everyone's (administrators, the command line) or one
/// user's, in which case another user's row is exactly like a missing one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope<'a> {
    All,
    User(&'a str),
}

impl<'a> Scope<'a> {
    /// `None` (no owner filter, as `Caller::owner` says for admins) is [`Scope::All`].
    pub fn of(owner: Option<&'a str>) -> Self {
        owner.map_or(Scope::All, Scope::User)
    }

    /// The user to filter by, if any.
    pub fn user(self) -> Option<&'a str> {
        match self {
            Scope::All => None,
            Scope::User(user) => Some(user),
        }
    }
}

/// A stored API key. `hash` is the SHA-256 (hex) of the key; the key itself is never stored.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyRecord {
    /// The public part of the key (`sb_<id>_…`).
    pub id: String,
    pub user: String,
    pub role: String,
    pub hash: String,
    pub created_at: UnixMillis,
    pub expires_at: Option<UnixMillis>,
    pub revoked_at: Option<UnixMillis>,
}

impl std::fmt::Debug for KeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRecord")
            .field("id", &self.id)
            .field("user", &self.user)
            .field("role", &self.role)
            .field("hash", &"…")
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .field("revoked_at", &self.revoked_at)
            .finish()
    }
}

/// A browser session, by the hash of its cookie value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub hash: String,
    pub key_id: String,
    pub created_at: UnixMillis,
    pub expires_at: UnixMillis,
}

/// One line of the audit log (see `access::AuditEvent` for the vocabulary).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub at: UnixMillis,
    pub user: Option<String>,
    pub key_id: Option<String>,
    pub action: String,
    pub target: Option<String>,
    pub outcome: String,
    pub client: Option<String>,
    pub trace_id: Option<String>,
}

/// A stored audit line with its sequence number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    pub id: i64,
    pub entry: AuditEntry,
}

/// Which audit lines [`Store::list_audit`](super::Store::list_audit) returns (AND of the set
/// filters).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub user: Option<String>,
    pub action: Option<String>,
    pub outcome: Option<String>,
    /// At or after.
    pub since: Option<UnixMillis>,
    /// Strictly before.
    pub until: Option<UnixMillis>,
    /// Page size: 0 means [`DEFAULT_RUN_PAGE`], at most [`MAX_RUN_PAGE`].
    pub limit: u32,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// One page of the audit log, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditPage {
    pub entries: Vec<AuditRecord>,
    pub next_cursor: Option<String>,
}

/// A conversation and all its messages, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationDetail {
    pub conversation: ConversationRecord,
    pub messages: Vec<MessageRecord>,
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRecord {
    /// `user` or `assistant`.
    pub role: String,
    pub content: String,
    /// The run that answered (assistant) or that the message started (user), if any.
    pub run_id: Option<RunId>,
    pub created_at: UnixMillis,
}

/// Which runs [`Store::list_runs`](super::Store::list_runs) returns. Every filter is optional and
/// they combine with AND.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunFilter {
    pub status: Option<RunStatus>,
    /// Exact agent name.
    pub agent: Option<String>,
    /// Exact model name.
    pub model: Option<String>,
    /// Started at or after.
    pub since: Option<UnixMillis>,
    /// Started strictly before.
    pub until: Option<UnixMillis>,
    /// Case-insensitive substring of the user message (`%` and `_` match themselves).
    pub search: Option<String>,
    /// Runs of this user only (exact).
    pub user: Option<String>,
    /// Page size: 0 means [`DEFAULT_RUN_PAGE`], anything above [`MAX_RUN_PAGE`] is clamped.
    pub limit: u32,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Page size of a [`RunFilter`] whose `limit` is 0.
pub const DEFAULT_RUN_PAGE: u32 = 50;
/// Largest page of runs.
pub const MAX_RUN_PAGE: u32 = 200;
/// Longest excerpt in a [`RunSummary`] of a listing, in characters.
pub const EXCERPT_CHARS: usize = 200;

/// One page of runs, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunPage {
    pub runs: Vec<RunSummary>,
    /// Pass as [`RunFilter::cursor`] for the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// A run as listed. In a listing `user_message`, `answer` and `error` are excerpts of at most
/// [`EXCERPT_CHARS`] characters (ending in `…` when cut); in a [`RunDetail`] they are complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSummary {
    pub id: RunId,
    /// `None` once the conversation has been deleted (runs are kept for debugging).
    pub conversation_id: Option<ConversationId>,
    /// Who started it; `None` for runs from before users existed.
    pub user: Option<String>,
    pub agent: Option<String>,
    pub model: String,
    pub status: RunStatus,
    pub user_message: String,
    pub answer: Option<String>,
    pub error: Option<String>,
    pub started_at: UnixMillis,
    pub finished_at: Option<UnixMillis>,
    pub duration_ms: Option<i64>,
    /// Steps started so far (a retried step counts once).
    pub step_count: u32,
    /// Of those, `act` steps.
    pub tool_call_count: u32,
    /// The run's total once it finished; while it runs, the sum of its finished steps.
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub trace_id: Option<String>,
}

/// A run with its whole DAG.
#[derive(Debug, Clone, PartialEq)]
pub struct RunDetail {
    pub summary: RunSummary,
    /// Ordered by index.
    pub steps: Vec<StepRecord>,
    /// Ordered by (to, from).
    pub edges: Vec<StepEdge>,
}

/// One step of a run. `input` and `output` are the stored JSON: above
/// [`MAX_STORED_JSON_BYTES`](super::MAX_STORED_JSON_BYTES) serialized, a
/// `{"truncated": true, "original_bytes": N, "preview": "…"}` marker.
#[derive(Debug, Clone, PartialEq)]
pub struct StepRecord {
    pub index: StepIndex,
    pub kind: StepKind,
    pub name: String,
    pub server: Option<String>,
    pub status: StepStatus,
    pub started_at: UnixMillis,
    pub finished_at: Option<UnixMillis>,
    pub duration_ms: Option<i64>,
    pub input: Value,
    pub output: Option<Value>,
    pub error: Option<String>,
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    /// As the engine numbered it; a retry restarts the same step with the next number.
    pub attempt: u32,
}

/// `to` depends on `from` (an edge of the run's DAG).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepEdge {
    pub from: StepIndex,
    pub to: StepIndex,
}
