//! Authentication: API keys and browser sessions turned into [`Caller`]s, and key management
//! (create, list, revoke) shared by `switchboard keys` and `/api/keys`.
//!
//! Keys live in the database (hashed, see `access::keys`); this module keeps a cache of the
//! ones in use so a request costs a hash and a map lookup, not a query. The cache is
//! re-checked against the database every [`REFRESH`] (in the background, for keys revoked by
//! another process or replica) and a key revoked here is dropped at once; either way the key's
//! revocation token is cancelled, which ends the streams its callers hold open.
//!
//! Why a key failed (unknown, expired, revoked, malformed) is logged and audited, never told
//! to the client: every failure is the same 401.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::access::{
    ADMIN_KEY_ID, Caller, Identity, KeyError, hash_token, issue_key, issue_session, key_id_of,
    token_matches,
};
use crate::config::model::{ADMIN_ROLE, AuthMode, LimitOverrides, RoleConfig, Secret};
use crate::domain::{UnixMillis, now_millis};
use crate::store::{KeyRecord, SessionRecord, Store, StoreError};

/// How stale a cached key or session may be before it is checked against the database again.
pub const REFRESH: Duration = Duration::from_secs(5);
/// How long a browser session lasts (never beyond its key's expiry).
pub const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 60 * 60);
/// The user `SWITCHBOARD_ADMIN_KEY` authenticates as.
pub const ENV_ADMIN_USER: &str = "admin";

/// Why a credential was refused. Only the log and the audit see which; clients get one 401.
#[derive(Debug, thiserror::Error)]
pub enum AuthFailure {
    #[error("no credentials")]
    Missing,
    #[error("the credential is not shaped like a key or session")]
    Malformed,
    #[error("no such key or session")]
    Unknown,
    #[error("the key has expired")]
    Expired,
    #[error("the key was revoked")]
    Revoked,
    /// A valid key whose role is no longer configured: the administrator's to fix, so it is
    /// said (403), since the caller proved who they are.
    #[error("the role `{0}` of this key is not configured")]
    UnknownRole(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Random(#[from] KeyError),
}

impl AuthFailure {
    /// The audit's short name of the reason.
    pub fn reason(&self) -> &'static str {
        match self {
            AuthFailure::Missing => "missing",
            AuthFailure::Malformed => "malformed",
            AuthFailure::Unknown => "unknown",
            AuthFailure::Expired => "expired",
            AuthFailure::Revoked => "revoked",
            AuthFailure::UnknownRole(_) => "unknown_role",
            AuthFailure::Store(_) | AuthFailure::Random(_) => "store",
        }
    }
}

/// Why a key could not be created or revoked.
#[derive(Debug, thiserror::Error)]
pub enum KeyAdminError {
    #[error("no role named `{role}`; configured roles: {available}")]
    UnknownRole { role: String, available: String },
    #[error(
        "user name `{0}` is not usable; use 1 to 64 characters from A-Z, a-z, 0-9, `_`, `.` and `-`"
    )]
    BadUser(String),
    #[error("an expiry must be in the future")]
    BadExpiry,
    #[error(transparent)]
    Random(#[from] KeyError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A key as created: its record and the token, shown once.
#[derive(Debug)]
pub struct CreatedKey {
    pub record: KeyRecord,
    pub token: Secret,
}

/// A session as signed in: who, and the cookie value.
pub struct SignedIn {
    pub caller: Caller,
    pub token: Secret,
    pub expires_at: UnixMillis,
}

/// Cheap to clone; clones share the caches.
#[derive(Clone)]
pub struct Authenticator {
    inner: Arc<Inner>,
}

struct Inner {
    mode: AuthMode,
    store: Store,
    policy: RwLock<Policy>,
    keys: RwLock<HashMap<String, Arc<CachedKey>>>,
    sessions: Mutex<HashMap<String, CachedSession>>,
    /// Hash of `SWITCHBOARD_ADMIN_KEY`, when set.
    admin_key: Option<String>,
}

/// Roles and per-user overrides, replaced on reload.
struct Policy {
    roles: Arc<BTreeMap<String, RoleConfig>>,
    users: Arc<BTreeMap<String, LimitOverrides>>,
    /// Bumped on every replacement: callers built under an older one are rebuilt.
    generation: u64,
}

struct CachedKey {
    record: KeyRecord,
    /// Cancelled when the key is revoked or found revoked.
    revoked: CancellationToken,
    checked: Instant,
    /// The caller this key authenticates as, for the policy generation it was built under.
    caller: Mutex<Option<(u64, Caller)>>,
}

#[derive(Clone)]
struct CachedSession {
    key_id: String,
    expires_at: UnixMillis,
    checked: Instant,
}

/// Roles, per-user overrides and the generation they belong to, read together.
type PolicySnapshot = (
    Arc<BTreeMap<String, RoleConfig>>,
    Arc<BTreeMap<String, LimitOverrides>>,
    u64,
);

impl Authenticator {
    /// An authenticator over `store` with these roles and overrides; `admin_key` is
    /// `SWITCHBOARD_ADMIN_KEY`.
    pub fn new(
        mode: AuthMode,
        store: Store,
        roles: BTreeMap<String, RoleConfig>,
        users: BTreeMap<String, LimitOverrides>,
        admin_key: Option<&Secret>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                mode,
                store,
                policy: RwLock::new(Policy {
                    roles: Arc::new(roles),
                    users: Arc::new(users),
                    generation: 0,
                }),
                keys: RwLock::new(HashMap::new()),
                sessions: Mutex::new(HashMap::new()),
                admin_key: admin_key.map(|key| hash_token(key.expose())),
            }),
        }
    }

    /// `server.auth`.
    pub fn mode(&self) -> AuthMode {
        self.inner.mode
    }

    /// Replace roles and overrides (config reload); callers are rebuilt at their next request.
    pub fn set_policy(
        &self,
        roles: BTreeMap<String, RoleConfig>,
        users: BTreeMap<String, LimitOverrides>,
    ) {
        let mut policy = self.inner.policy.write().unwrap_or_else(|p| p.into_inner());
        policy.roles = Arc::new(roles);
        policy.users = Arc::new(users);
        policy.generation += 1;
    }

    /// The caller a bearer token authenticates as.
    ///
    /// # Errors
    /// Every reason a token is refused ([`AuthFailure`]).
    pub async fn authenticate_key(&self, token: &str) -> Result<Caller, AuthFailure> {
        if let Some(caller) = self.env_admin(token) {
            return Ok(caller);
        }
        let id = key_id_of(token).ok_or(AuthFailure::Malformed)?;
        let cached = self.cached_key(id).await?;
        if !token_matches(&cached.record.hash, token) {
            return Err(AuthFailure::Unknown);
        }
        self.caller_of(&cached)
    }

    /// The caller a session cookie authenticates as.
    ///
    /// # Errors
    /// Unknown or expired session, or its key's failures.
    pub async fn authenticate_session(&self, token: &str) -> Result<Caller, AuthFailure> {
        if !token.starts_with(crate::access::SESSION_PREFIX) || token.len() > 128 {
            return Err(AuthFailure::Malformed);
        }
        let hash = hash_token(token);
        let session = self.cached_session(&hash).await?;
        if session.expires_at <= now_millis() {
            self.forget_session(&hash);
            return Err(AuthFailure::Expired);
        }
        if session.key_id == ADMIN_KEY_ID {
            return Err(AuthFailure::Unknown);
        }
        let cached = self.cached_key(&session.key_id).await?;
        self.caller_of(&cached)
    }

    /// The caller the key `key_id` authenticates as now, without its secret: for a run that
    /// goes on after a restart as the caller who started it (`None`: a run started without a
    /// key, as the local administrator with `auth: none`). A revoked or deleted key, or
    /// `SWITCHBOARD_ADMIN_KEY` no longer being set, refuses it.
    ///
    /// # Errors
    /// The key's failures; store failures.
    pub async fn caller_for_key(&self, key_id: Option<&str>) -> Result<Caller, AuthFailure> {
        match key_id {
            None if self.inner.mode == AuthMode::None => Ok(Caller::local()),
            None => Err(AuthFailure::Missing),
            Some(ADMIN_KEY_ID) if self.inner.admin_key.is_some() => Ok(self.admin_caller()),
            Some(ADMIN_KEY_ID) => Err(AuthFailure::Unknown),
            Some(id) => {
                let cached = self.cached_key(id).await?;
                self.caller_of(&cached)
            }
        }
    }

    /// Exchange a key for a session (the web UI's sign-in).
    ///
    /// # Errors
    /// The key's failures; store failures.
    pub async fn sign_in(&self, key: &str) -> Result<SignedIn, AuthFailure> {
        if self.env_admin(key).is_some() {
            // The environment's key has no row for a session to point at; it is for API use.
            return Err(AuthFailure::Unknown);
        }
        let caller = self.authenticate_key(key).await?;
        let key_id = caller.key_id().unwrap_or_default().to_owned();
        let record = self.cached_key(&key_id).await?.record.clone();
        let (token, hash) = issue_session()?;
        let now = now_millis();
        let lifetime = i64::try_from(SESSION_LIFETIME.as_millis()).unwrap_or(i64::MAX);
        let expires_at = record
            .expires_at
            .map_or(now + lifetime, |key_expiry| key_expiry.min(now + lifetime));
        self.inner
            .store
            .create_session(&SessionRecord {
                hash,
                key_id,
                created_at: now,
                expires_at,
            })
            .await?;
        Ok(SignedIn {
            caller,
            token: Secret::new(token),
            expires_at,
        })
    }

    /// End a session (sign out). Unknown sessions are fine.
    ///
    /// # Errors
    /// Store failures.
    pub async fn sign_out(&self, token: &str) -> Result<(), StoreError> {
        let hash = hash_token(token);
        self.forget_session(&hash);
        self.inner.store.delete_session(&hash).await
    }

    /// Make a key for `user` with `role`, valid for `expires_in` (or forever).
    ///
    /// # Errors
    /// Unknown role, unusable user name, store failures.
    pub async fn create_key(
        &self,
        user: &str,
        role: &str,
        expires_in: Option<Duration>,
    ) -> Result<CreatedKey, KeyAdminError> {
        let plain = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-');
        if !(1..=64).contains(&user.len()) || !user.bytes().all(plain) {
            return Err(KeyAdminError::BadUser(user.chars().take(80).collect()));
        }
        let roles = self.policy().0;
        if !roles.contains_key(role) {
            return Err(KeyAdminError::UnknownRole {
                role: role.chars().take(80).collect(),
                available: roles.keys().cloned().collect::<Vec<_>>().join(", "),
            });
        }
        if expires_in.is_some_and(|d| d.is_zero()) {
            return Err(KeyAdminError::BadExpiry);
        }
        let issued = issue_key()?;
        let now = now_millis();
        let record = KeyRecord {
            id: issued.id.clone(),
            user: user.to_owned(),
            role: role.to_owned(),
            hash: issued.hash.clone(),
            created_at: now,
            expires_at: expires_in
                .map(|d| now.saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))),
            revoked_at: None,
        };
        self.inner.store.create_key(&record).await?;
        Ok(CreatedKey {
            record,
            token: Secret::new(issued.token),
        })
    }

    /// Every key, newest first (revoked ones too).
    ///
    /// # Errors
    /// Store failures.
    pub async fn list_keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        self.inner.store.list_keys().await
    }

    /// Revoke a key: it is refused from now on, here at once and elsewhere within
    /// [`REFRESH`]; its sessions end and its open streams close.
    ///
    /// # Errors
    /// No such key; store failures.
    pub async fn revoke_key(&self, id: &str) -> Result<(), StoreError> {
        self.inner.store.revoke_key(id, now_millis()).await?;
        let removed = self
            .inner
            .keys
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
        if let Some(cached) = removed {
            cached.revoked.cancel();
        }
        self.inner
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, session| session.key_id != id);
        Ok(())
    }

    /// Re-check every cached key against the database (revocations by another process, and
    /// expiry: a key that expires ends its open streams as a revoked one does).
    pub async fn refresh(&self) {
        let now = crate::domain::now_millis();
        let ids: Vec<String> = self
            .inner
            .keys
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .cloned()
            .collect();
        for id in ids {
            match self.inner.store.get_key(&id).await {
                Ok(Some(record))
                    if record.revoked_at.is_none()
                        && record.expires_at.is_none_or(|at| at > now) =>
                {
                    if let Some(cached) = self.cached(&id) {
                        self.remember(record, cached.revoked.clone());
                    }
                }
                Ok(_) => self.drop_key(&id),
                Err(err) => {
                    tracing::warn!(key_id = %id, error = %err, "re-checking a key failed; keeping it until the next check")
                }
            }
        }
        self.inner
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, session| session.checked.elapsed() < REFRESH);
    }

    /// Refresh every [`REFRESH`] until `stop` is cancelled.
    pub fn spawn_refresh(&self, stop: CancellationToken) {
        let this = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(REFRESH);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    _ = tick.tick() => this.refresh().await,
                }
            }
        });
    }

    fn policy(&self) -> PolicySnapshot {
        let policy = self.inner.policy.read().unwrap_or_else(|p| p.into_inner());
        (
            policy.roles.clone(),
            policy.users.clone(),
            policy.generation,
        )
    }

    fn env_admin(&self, token: &str) -> Option<Caller> {
        let hash = self.inner.admin_key.as_ref()?;
        if !token_matches(hash, token) {
            return None;
        }
        Some(self.admin_caller())
    }

    /// The caller `SWITCHBOARD_ADMIN_KEY` authenticates as.
    fn admin_caller(&self) -> Caller {
        let (roles, users, _) = self.policy();
        let role = roles
            .get(ADMIN_ROLE)
            .cloned()
            .unwrap_or_else(RoleConfig::admin);
        let limits = users
            .get(ENV_ADMIN_USER)
            .map_or(role.limits, |o| role.limits.with(o));
        Caller::new(
            Identity {
                user: ENV_ADMIN_USER.to_owned(),
                key_id: Some(ADMIN_KEY_ID.to_owned()),
            },
            Arc::new(role),
            limits,
            CancellationToken::new(),
        )
    }

    fn cached(&self, id: &str) -> Option<Arc<CachedKey>> {
        self.inner
            .keys
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
    }

    /// The key with this id, from the cache when fresh, else from the database.
    async fn cached_key(&self, id: &str) -> Result<Arc<CachedKey>, AuthFailure> {
        let cached = self.cached(id);
        let cached = match cached {
            Some(cached) if cached.checked.elapsed() < REFRESH => cached,
            stale => match self.inner.store.get_key(id).await? {
                Some(record) if record.revoked_at.is_none() => {
                    let token = stale.map_or_else(CancellationToken::new, |s| s.revoked.clone());
                    self.remember(record, token)
                }
                Some(_) => {
                    self.drop_key(id);
                    return Err(AuthFailure::Revoked);
                }
                None => {
                    self.drop_key(id);
                    return Err(AuthFailure::Unknown);
                }
            },
        };
        if cached
            .record
            .expires_at
            .is_some_and(|at| at <= now_millis())
        {
            return Err(AuthFailure::Expired);
        }
        Ok(cached)
    }

    fn remember(&self, record: KeyRecord, revoked: CancellationToken) -> Arc<CachedKey> {
        let cached = Arc::new(CachedKey {
            record,
            revoked,
            checked: Instant::now(),
            caller: Mutex::new(None),
        });
        self.inner
            .keys
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(cached.record.id.clone(), cached.clone());
        cached
    }

    fn drop_key(&self, id: &str) {
        let removed = self
            .inner
            .keys
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
        if let Some(cached) = removed {
            cached.revoked.cancel();
        }
    }

    /// The caller of a valid key, built once per policy generation.
    fn caller_of(&self, cached: &CachedKey) -> Result<Caller, AuthFailure> {
        let (roles, users, generation) = self.policy();
        let mut slot = cached.caller.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((built, caller)) = slot.as_ref()
            && *built == generation
        {
            return Ok(caller.clone());
        }
        let record = &cached.record;
        let role = roles
            .get(&record.role)
            .ok_or_else(|| AuthFailure::UnknownRole(record.role.clone()))?;
        let limits = users
            .get(&record.user)
            .map_or(role.limits, |o| role.limits.with(o));
        let caller = Caller::new(
            Identity {
                user: record.user.clone(),
                key_id: Some(record.id.clone()),
            },
            Arc::new(role.clone()),
            limits,
            cached.revoked.clone(),
        );
        *slot = Some((generation, caller.clone()));
        Ok(caller)
    }

    async fn cached_session(&self, hash: &str) -> Result<CachedSession, AuthFailure> {
        let cached = self
            .inner
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(hash)
            .cloned();
        if let Some(session) = cached
            && session.checked.elapsed() < REFRESH
        {
            return Ok(session);
        }
        let Some(record) = self.inner.store.get_session(hash).await? else {
            self.forget_session(hash);
            return Err(AuthFailure::Unknown);
        };
        let session = CachedSession {
            key_id: record.key_id,
            expires_at: record.expires_at,
            checked: Instant::now(),
        };
        self.inner
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(hash.to_owned(), session.clone());
        Ok(session)
    }

    fn forget_session(&self, hash: &str) {
        self.inner
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(hash);
    }
}

/// A duration as people write one for an expiry: `90s`, `45m`, `12h`, `30d`, `2w`.
///
/// # Errors
/// Anything else, with what was expected.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let expected = || {
        format!(
            "`{}` is not a duration; expected a number with a unit, such as 90s, 45m, 12h, 30d or 2w",
            text.chars().take(40).collect::<String>()
        )
    };
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(expected)?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().map_err(|_| expected())?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return Err(expected()),
    };
    match number.checked_mul(seconds) {
        Some(0) => Err("an expiry must be in the future".to_owned()),
        Some(total) if total <= 100 * 365 * 86_400 => Ok(Duration::from_secs(total)),
        _ => Err(format!("`{text}` is more than a hundred years")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_written() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration(" 12h"), Ok(Duration::from_secs(12 * 3600)));
        assert_eq!(parse_duration("30d"), Ok(Duration::from_secs(30 * 86_400)));
        assert_eq!(parse_duration("2w"), Ok(Duration::from_secs(14 * 86_400)));
        for bad in [
            "",
            "d",
            "10",
            "10y",
            "-1d",
            "1.5h",
            "0d",
            "99999999999999999d",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
