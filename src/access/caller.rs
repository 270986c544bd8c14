//! The caller of a request or the starter of a run, and what its role lets it use.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::config::model::{ADMIN_ROLE, Limits, RoleConfig};

/// Who a caller is, as authentication found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user: String,
    /// The API key it authenticated with (`None` with `auth: none`).
    pub key_id: Option<String>,
}

/// A caller: identity, role and effective limits, plus the token that is cancelled when its key
/// is revoked (streams it holds open end then). Cheap to clone; a run keeps its starter's.
#[derive(Clone)]
pub struct Caller(Arc<Inner>);

struct Inner {
    identity: Identity,
    role: Arc<RoleConfig>,
    limits: Limits,
    /// Where the request came from (for the audit log), when known.
    client: Option<String>,
    revoked: CancellationToken,
}

/// The user every caller is with `auth: none`.
const LOCAL_USER: &str = "local";

impl Caller {
    /// A caller with this identity and role; `limits` are the role's with the user's overrides.
    pub fn new(
        identity: Identity,
        role: Arc<RoleConfig>,
        limits: Limits,
        revoked: CancellationToken,
    ) -> Self {
        Self(Arc::new(Inner {
            identity,
            role,
            limits,
            client: None,
            revoked,
        }))
    }

    /// Everyone with `auth: none` (loopback only), and the command line: the local
    /// administrator, unlimited. Built once: every request of a server without auth is this.
    pub fn local() -> Self {
        static LOCAL: std::sync::LazyLock<Caller> = std::sync::LazyLock::new(|| {
            Caller::new(
                Identity {
                    user: LOCAL_USER.to_owned(),
                    key_id: None,
                },
                Arc::new(RoleConfig::admin()),
                Limits::default(),
                CancellationToken::new(),
            )
        });
        LOCAL.clone()
    }

    /// This caller, calling from `client` (an address), for the audit log.
    pub fn from_client(self, client: Option<String>) -> Self {
        if client == self.0.client {
            return self;
        }
        let inner = &self.0;
        Self(Arc::new(Inner {
            identity: inner.identity.clone(),
            role: inner.role.clone(),
            limits: inner.limits,
            client,
            revoked: inner.revoked.clone(),
        }))
    }

    pub fn user(&self) -> &str {
        &self.0.identity.user
    }

    pub fn key_id(&self) -> Option<&str> {
        self.0.identity.key_id.as_deref()
    }

    pub fn client(&self) -> Option<&str> {
        self.0.client.as_deref()
    }

    pub fn role(&self) -> &str {
        &self.0.role.name
    }

    /// Admins see and manage everything.
    pub fn is_admin(&self) -> bool {
        self.0.role.admin && self.0.role.name == ADMIN_ROLE
    }

    pub fn limits(&self) -> &Limits {
        &self.0.limits
    }

    /// Whose conversations and runs this caller may see: `None` for admins (everyone's),
    /// else its own user.
    pub fn owner(&self) -> Option<&str> {
        (!self.is_admin()).then(|| self.user())
    }

    /// Whether a row owned by `owner` is this caller's to see.
    pub fn may_see(&self, owner: Option<&str>) -> bool {
        self.is_admin() || owner == Some(self.user())
    }

    pub fn may_use_model(&self, name: &str) -> bool {
        self.0.role.models.is_match(name)
    }

    pub fn may_use_agent(&self, name: &str) -> bool {
        self.0.role.agents.is_match(name)
    }

    pub fn may_use_tool(&self, exposed_name: &str) -> bool {
        self.0.role.tools.is_match(exposed_name)
    }

    /// Cancelled when the caller's key is revoked.
    pub fn revoked(&self) -> &CancellationToken {
        &self.0.revoked
    }
}

impl std::fmt::Debug for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caller")
            .field("user", &self.user())
            .field("key_id", &self.key_id())
            .field("role", &self.role())
            .finish_non_exhaustive()
    }
}

/// One line of the audit log, as the enforcing code sees it; `app` stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    pub user: Option<String>,
    pub key_id: Option<String>,
    /// `sign_in`, `auth_failure`, `key_create`, `key_revoke`, `config_reload`, `tool_invoke`,
    /// `run_start`, `run_cancel`, `run_delete`, `sign_out`.
    pub action: &'static str,
    pub target: Option<String>,
    /// `ok`, `denied`, `limited`, `failed`.
    pub outcome: &'static str,
    pub client: Option<String>,
    pub trace_id: Option<String>,
}

impl AuditEvent {
    /// An event by `caller` (its user, key and client).
    pub fn by(
        caller: &Caller,
        action: &'static str,
        target: Option<String>,
        outcome: &'static str,
    ) -> Self {
        Self {
            user: Some(caller.user().to_owned()),
            key_id: caller.key_id().map(str::to_owned),
            action,
            target,
            outcome,
            client: caller.client().map(str::to_owned),
            trace_id: None,
        }
    }

    /// With the trace id of the run or request it belongs to.
    pub fn in_trace(mut self, trace_id: Option<String>) -> Self {
        self.trace_id = trace_id;
        self
    }
}

/// Where audit events go; never blocks and never fails the action (the store queues them).
pub trait AuditLog: Send + Sync {
    fn record(&self, event: AuditEvent);
}

/// Records nothing (tests and tools that have no store).
pub struct NoAudit;

impl AuditLog for NoAudit {
    fn record(&self, _event: AuditEvent) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::ToolGlobs;

    fn role(models: &[&str], tools: &[&str]) -> Arc<RoleConfig> {
        let globs =
            |p: &[&str]| ToolGlobs::compile(p.iter().map(|s| (*s).to_owned()).collect()).unwrap();
        Arc::new(RoleConfig {
            name: "r".into(),
            admin: false,
            models: globs(models),
            agents: ToolGlobs::default(),
            tools: globs(tools),
            limits: Limits::default(),
        })
    }

    #[test]
    fn a_role_grants_what_its_globs_match_and_nothing_else() {
        let caller = Caller::new(
            Identity {
                user: "ann".into(),
                key_id: Some("k1".into()),
            },
            role(&["gpt-*"], &["clock__*"]),
            Limits::default(),
            CancellationToken::new(),
        );
        assert!(caller.may_use_model("gpt-4o") && !caller.may_use_model("fake"));
        assert!(caller.may_use_tool("clock__now") && !caller.may_use_tool("calc__add"));
        assert!(!caller.may_use_agent("calc"));
        assert!(!caller.is_admin());
        assert_eq!(caller.owner(), Some("ann"));
        assert!(
            caller.may_see(Some("ann")) && !caller.may_see(Some("bob")) && !caller.may_see(None)
        );
    }

    #[test]
    fn the_local_caller_is_an_unlimited_admin() {
        let local = Caller::local();
        assert!(local.is_admin());
        assert_eq!(local.owner(), None);
        assert!(local.may_see(Some("anyone")) && local.may_see(None));
        assert_eq!(*local.limits(), Limits::default());
    }
}
