//! The access API's shapes: who is signed in (`/api/session`), API keys (`/api/keys`) and the
//! audit log (`/api/audit`). A key's secret appears once, in [`CreatedKey`], and nowhere else.

use serde::{Deserialize, Serialize};

use crate::access::Caller;
use crate::domain::UnixMillis;
use crate::store::{AuditPage, AuditRecord, KeyRecord};

/// `GET /api/session` and a successful `POST /api/session`: who the caller is.
#[derive(Debug, Serialize)]
pub(in crate::api) struct Session<'a> {
    user: &'a str,
    role: &'a str,
    admin: bool,
    key_id: Option<&'a str>,
    /// `none` or `keys` (`server.auth`): with `none` nobody signs in.
    auth: &'static str,
    /// When the browser session ends, for a session made by signing in.
    expires_at: Option<UnixMillis>,
}

impl<'a> Session<'a> {
    pub(in crate::api) fn new(
        caller: &'a Caller,
        auth: &'static str,
        expires_at: Option<UnixMillis>,
    ) -> Self {
        Self {
            user: caller.user(),
            role: caller.role(),
            admin: caller.is_admin(),
            key_id: caller.key_id(),
            auth,
            expires_at,
        }
    }
}

/// `POST /api/session`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(in crate::api) struct SignIn {
    pub(in crate::api) key: String,
}

/// `POST /api/keys`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(in crate::api) struct NewKey {
    pub(in crate::api) user: String,
    pub(in crate::api) role: String,
    /// `90s`, `12h`, `30d`, `2w`; absent = never expires.
    pub(in crate::api) expires_in: Option<String>,
}

/// A key as listed: never its secret or hash.
#[derive(Debug, Serialize)]
pub(in crate::api) struct Key<'a> {
    id: &'a str,
    user: &'a str,
    role: &'a str,
    created_at: UnixMillis,
    expires_at: Option<UnixMillis>,
    revoked_at: Option<UnixMillis>,
    /// Neither revoked nor expired.
    active: bool,
}

impl<'a> Key<'a> {
    pub(in crate::api) fn new(record: &'a KeyRecord, now: UnixMillis) -> Self {
        Self {
            id: &record.id,
            user: &record.user,
            role: &record.role,
            created_at: record.created_at,
            expires_at: record.expires_at,
            revoked_at: record.revoked_at,
            active: record.revoked_at.is_none() && record.expires_at.is_none_or(|at| at > now),
        }
    }
}

/// `GET /api/keys`.
#[derive(Debug, Serialize)]
pub(in crate::api) struct KeyList<'a> {
    pub(in crate::api) keys: Vec<Key<'a>>,
}

/// `POST /api/keys`: the new key, with its secret, shown this once.
#[derive(Debug, Serialize)]
pub(in crate::api) struct CreatedKey<'a> {
    #[serde(flatten)]
    pub(in crate::api) key: Key<'a>,
    /// The key to send as `Authorization: Bearer …`; it cannot be shown again.
    pub(in crate::api) secret: &'a str,
}

/// `GET /api/audit`: one page, newest first.
#[derive(Debug, Serialize)]
pub(in crate::api) struct AuditList<'a> {
    entries: Vec<AuditEntry<'a>>,
    next_cursor: Option<&'a str>,
}

#[derive(Debug, Serialize)]
struct AuditEntry<'a> {
    id: i64,
    at: UnixMillis,
    user: Option<&'a str>,
    key_id: Option<&'a str>,
    action: &'a str,
    target: Option<&'a str>,
    outcome: &'a str,
    client: Option<&'a str>,
    trace_id: Option<&'a str>,
}

impl<'a> From<&'a AuditPage> for AuditList<'a> {
    fn from(page: &'a AuditPage) -> Self {
        Self {
            entries: page.entries.iter().map(AuditEntry::from).collect(),
            next_cursor: page.next_cursor.as_deref(),
        }
    }
}

impl<'a> From<&'a AuditRecord> for AuditEntry<'a> {
    fn from(record: &'a AuditRecord) -> Self {
        let entry = &record.entry;
        Self {
            id: record.id,
            at: entry.at,
            user: entry.user.as_deref(),
            key_id: entry.key_id.as_deref(),
            action: &entry.action,
            target: entry.target.as_deref(),
            outcome: &entry.outcome,
            client: entry.client.as_deref(),
            trace_id: entry.trace_id.as_deref(),
        }
    }
}
