//! The `roles:` and `users:` sections: what each role may use and how much, and per-user
//! overrides of those limits.
//!
//! ```yaml
//! roles:
//!   analyst:
//!     models: ["gpt-*"]
//!     agents: [research]
//!     tools: ["clock__*", "calc__*"]
//!     limits:
//!       tool_calls: { calls: 10, window_ms: 60000, cooldown_ms: 60000 }
//!       requests_per_minute: 120
//!       concurrent_runs: 2
//! users:
//!   alice:
//!     limits: { tool_calls: unlimited }
//! ```
//!
//! `admin` is built in and cannot be redefined; `user` is built in (everything, 10 tool calls
//! then 60 s of cooldown) and may be. A list a role leaves out grants nothing: access is
//! granted, never assumed.

use std::collections::BTreeMap;
use std::time::Duration;

use super::agents::globs::{Names, globs};
use super::error::{child_path, shown};
use super::fields::{Ctx, Fields};
use super::model::{
    ADMIN_ROLE, CallQuota, DEFAULT_ROLE, LimitOverrides, Limits, RoleConfig, ToolGlobs,
};
use super::specs::PLAIN_NAME;
use super::yaml::{Node, Value};

const ROLE_KEYS: &[&str] = &["models", "agents", "tools", "limits"];
const USER_KEYS: &[&str] = &["limits"];
const LIMIT_KEYS: &[&str] = &["tool_calls", "requests_per_minute", "concurrent_runs"];
const QUOTA_KEYS: &[&str] = &["calls", "window_ms", "cooldown_ms"];
/// The word that lifts a limit.
const UNLIMITED: &str = "unlimited";
/// Longest tool-call window or cooldown: a day.
const MAX_QUOTA_MS: u64 = 24 * 60 * 60 * 1000;

/// Reads `roles:` (absent = the built-ins only).
pub(super) fn roles(ctx: &mut Ctx<'_>, node: Option<&Node>) -> BTreeMap<String, RoleConfig> {
    let mut roles = BTreeMap::new();
    roles.insert(ADMIN_ROLE.to_owned(), RoleConfig::admin());
    roles.insert(DEFAULT_ROLE.to_owned(), RoleConfig::default_user());
    let Some(entries) = node.and_then(|n| ctx.mapping(n, "roles")) else {
        return roles;
    };
    for entry in entries {
        let Some(name) = ctx.key(entry, "roles") else {
            continue;
        };
        let path = child_path("roles", name);
        if name == ADMIN_ROLE {
            ctx.error(
                entry.key.pos,
                &path,
                "`admin` is built in (every model, agent and tool, no limits) and cannot be redefined; give your role another name",
            );
            continue;
        }
        if !PLAIN_NAME.accepts(name) {
            let message = format!(
                "role name{} is not usable; {}",
                shown(name),
                PLAIN_NAME.rule()
            );
            ctx.error(entry.key.pos, &path, message);
            continue;
        }
        if let Some(role) = role(ctx, name, &entry.value, &path) {
            roles.insert(name.to_owned(), role);
        }
    }
    roles
}

fn role(ctx: &mut Ctx<'_>, name: &str, node: &Node, path: &str) -> Option<RoleConfig> {
    let fields = ctx.fields(node, path, ROLE_KEYS)?;
    let list = |ctx: &mut Ctx<'_>, key: &str, names: Names| match fields.get(key) {
        None => Some(ToolGlobs::default()),
        Some(node) => globs(ctx, node, &child_path(path, key), names),
    };
    let models = list(ctx, "models", Names::Other);
    let agents = list(ctx, "agents", Names::Other);
    let tools = list(ctx, "tools", Names::Tools);
    let overrides = match fields.get("limits") {
        None => Some(LimitOverrides::default()),
        Some(node) => limits(ctx, node, &child_path(path, "limits")),
    };
    Some(RoleConfig {
        name: name.to_owned(),
        admin: false,
        models: models?,
        agents: agents?,
        tools: tools?,
        // A role's own limits start from "unlimited": what it does not name, it does not limit.
        limits: Limits::default().with(&overrides?),
    })
}

/// Reads `users:`.
pub(super) fn users(ctx: &mut Ctx<'_>, node: Option<&Node>) -> BTreeMap<String, LimitOverrides> {
    let mut users = BTreeMap::new();
    let Some(entries) = node.and_then(|n| ctx.mapping(n, "users")) else {
        return users;
    };
    for entry in entries {
        let Some(name) = ctx.key(entry, "users") else {
            continue;
        };
        let path = child_path("users", name);
        if !PLAIN_NAME.accepts(name) {
            let message = format!(
                "user name{} is not usable; {}",
                shown(name),
                PLAIN_NAME.rule()
            );
            ctx.error(entry.key.pos, &path, message);
            continue;
        }
        let Some(fields) = ctx.fields(&entry.value, &path, USER_KEYS) else {
            continue;
        };
        let overrides = match fields.get("limits") {
            None => Some(LimitOverrides::default()),
            Some(node) => limits(ctx, node, &child_path(&path, "limits")),
        };
        if let Some(overrides) = overrides {
            users.insert(name.to_owned(), overrides);
        }
    }
    users
}

/// A `limits:` mapping; each field is a value or `unlimited`.
fn limits(ctx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<LimitOverrides> {
    let fields = ctx.fields(node, path, LIMIT_KEYS)?;
    let mut ok = true;
    let mut overrides = LimitOverrides::default();
    if let Some(node) = fields.get("tool_calls") {
        let path = child_path(path, "tool_calls");
        match lifted(ctx, node, &path) {
            Some(true) => overrides.tool_calls = Some(None),
            Some(false) => match quota(ctx, node, &path) {
                Some(quota) => overrides.tool_calls = Some(Some(quota)),
                None => ok = false,
            },
            None => ok = false,
        }
    }
    for (key, target, max) in [
        (
            "requests_per_minute",
            &mut overrides.requests_per_minute,
            1_000_000,
        ),
        ("concurrent_runs", &mut overrides.concurrent_runs, 100_000),
    ] {
        let Some(node) = fields.get(key) else {
            continue;
        };
        let path = child_path(path, key);
        match lifted(ctx, node, &path) {
            Some(true) => *target = Some(None),
            Some(false) => match ctx.integer(node, &path, 1, max) {
                Some(n) => *target = Some(u32::try_from(n).ok()),
                None => ok = false,
            },
            None => ok = false,
        }
    }
    ok.then_some(overrides)
}

/// `Some(true)` for `unlimited`, `Some(false)` for anything else to be read as a value, `None`
/// after an error (another word).
fn lifted(ctx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<bool> {
    let Value::Str(text) = &node.value else {
        return Some(false);
    };
    if text.trim() == UNLIMITED {
        return Some(true);
    }
    if text.trim().parse::<u64>().is_ok() {
        return Some(false);
    }
    ctx.error(
        node.pos,
        path,
        format!("expected a limit or `{UNLIMITED}`{}", shown(text)),
    );
    None
}

/// `{ calls, window_ms, cooldown_ms }`; the window and the cooldown default to 60 s.
fn quota(ctx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<CallQuota> {
    let fields: Fields<'_> = ctx.fields(node, path, QUOTA_KEYS)?;
    let calls = match fields.get("calls") {
        Some(node) => ctx.integer(node, &child_path(path, "calls"), 1, 1_000_000),
        None => {
            if !fields.misspelled("calls") {
                ctx.error(
                    fields.pos,
                    path,
                    "missing `calls` (how many tool calls the window allows)",
                );
            }
            None
        }
    };
    let mut millis = |key: &str, default: Duration| match fields.get(key) {
        None => Some(default),
        Some(node) => ctx
            .integer(node, &child_path(path, key), 1, MAX_QUOTA_MS)
            .map(Duration::from_millis),
    };
    let window = millis("window_ms", CallQuota::DEFAULT.window);
    let cooldown = millis("cooldown_ms", CallQuota::DEFAULT.cooldown);
    Some(CallQuota {
        calls: u32::try_from(calls?).ok()?,
        window: window?,
        cooldown: cooldown?,
    })
}

#[cfg(test)]
mod tests {
    use super::super::load_str;
    use super::*;

    fn load(yaml: &str) -> Result<super::super::Config, Vec<String>> {
        load_str(yaml, std::path::Path::new("t.yaml"), &|_| None)
            .map_err(|errors| errors.0.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn built_in_roles_are_always_there() {
        let config = load("").unwrap();
        assert_eq!(config.roles[ADMIN_ROLE], RoleConfig::admin());
        assert_eq!(config.roles[DEFAULT_ROLE], RoleConfig::default_user());
        assert_eq!(
            config.roles[DEFAULT_ROLE].limits.tool_calls,
            Some(CallQuota::DEFAULT)
        );
    }

    #[test]
    fn roles_and_users_are_read() {
        let config = load(
            "roles:\n  analyst:\n    models: ['gpt-*', fake]\n    tools: 'clock__*'\n    limits:\n      tool_calls: { calls: 3, window_ms: 1000 }\n      concurrent_runs: 2\n  user:\n    models: ['*']\nusers:\n  alice:\n    limits: { tool_calls: unlimited, requests_per_minute: 5 }\n",
        )
        .unwrap();
        let analyst = &config.roles["analyst"];
        assert!(analyst.models.is_match("gpt-4o") && analyst.models.is_match("fake"));
        assert!(!analyst.models.is_match("claude"));
        assert!(analyst.tools.is_match("clock__now") && !analyst.tools.is_match("calc__add"));
        assert!(
            !analyst.agents.is_match("anything"),
            "absent grants nothing"
        );
        assert_eq!(
            analyst.limits,
            Limits {
                tool_calls: Some(CallQuota {
                    calls: 3,
                    window: Duration::from_secs(1),
                    cooldown: Duration::from_secs(60),
                }),
                requests_per_minute: None,
                concurrent_runs: Some(2),
            }
        );
        // `user` redefined: no limits of its own unless written.
        assert_eq!(config.roles[DEFAULT_ROLE].limits, Limits::default());
        let alice = config.users["alice"];
        assert_eq!(alice.tool_calls, Some(None));
        assert_eq!(alice.requests_per_minute, Some(Some(5)));
        assert_eq!(alice.concurrent_runs, None);
        let effective = RoleConfig::default_user().limits.with(&alice);
        assert_eq!(effective.tool_calls, None);
        assert_eq!(effective.concurrent_runs, Some(8));
    }

    #[test]
    fn every_problem_is_reported_with_its_place() {
        let errors = load(
            "roles:\n  admin:\n    models: ['*']\n  'bad name':\n    models: []\n  r:\n    modles: []\n    tools: ['files.read']\n    agents: ['[']\n    limits:\n      tool_calls: { window_ms: 0 }\n      concurrent_runs: lots\nusers:\n  bob:\n    limits: { requests_per_minute: 0 }\n",
        )
        .unwrap_err();
        let expected = [
            "t.yaml:2:3: roles.admin: `admin` is built in",
            "t.yaml:4:3: roles[\"bad name\"]: role name `bad name` is not usable",
            "t.yaml:7:5: roles.r.modles: unknown key `modles` (did you mean `models`?)",
            "t.yaml:8:13: roles.r.tools[0]: glob `files.read` can never match a tool",
            "t.yaml:9:14: roles.r.agents[0]: invalid glob `[`",
            "t.yaml:11:19: roles.r.limits.tool_calls: missing `calls`",
            "t.yaml:11:32: roles.r.limits.tool_calls.window_ms: must be between 1 and 86400000, found 0",
            "t.yaml:12:24: roles.r.limits.concurrent_runs: expected a limit or `unlimited` `lots`",
            "t.yaml:15:36: users.bob.limits.requests_per_minute: must be between 1 and 1000000, found 0",
        ];
        for want in expected {
            assert!(
                errors.iter().any(|e| e.starts_with(want)),
                "missing {want:?} in {errors:#?}"
            );
        }
        assert_eq!(errors.len(), expected.len(), "{errors:#?}");
    }

    #[test]
    fn auth_and_body_cap_are_read_and_checked() {
        let config = load("server:\n  auth: keys\n  max_body_bytes: 2048\n").unwrap();
        assert_eq!(config.server.auth, super::super::model::AuthMode::Keys);
        assert_eq!(config.server.max_body_bytes, 2048);
        let errors = load("server:\n  auth: password\n  max_body_bytes: 10\n").unwrap_err();
        assert_eq!(
            errors,
            vec![
                "t.yaml:2:9: server.auth: expected `none` or `keys` `password`".to_owned(),
                "t.yaml:3:19: server.max_body_bytes: must be at least 1024, found 10".to_owned(),
            ]
        );
    }
}
