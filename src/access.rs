//! Who is calling and what they may do: API key tokens (format, hashing, timing-safe checks),
//! the [`Caller`] every request and run carries (user, key, role, limits), and the per-user
//! [`Limiter`] (tool-call quota with cooldown, request rate, concurrent runs).
//!
//! Pure policy over config: no IO and no storage (keys are stored by `store` and looked up by
//! `auth`). `hub::Hub::invoke` and `runs::RunService::start` enforce it, so every path that
//! calls a tool or starts a run is held to the same rules.

mod caller;
mod keys;
mod limits;

pub use caller::{AuditEvent, AuditLog, Caller, Identity, NoAudit};
pub use keys::{
    ADMIN_KEY_ID, IssuedKey, KEY_PREFIX, KeyError, SESSION_PREFIX, hash_token, issue_key,
    issue_session, key_id_of, sha256_hex, token_matches,
};
pub use limits::{Clock, Limiter, ManualClock, Refused, RunSlot, SystemClock};
