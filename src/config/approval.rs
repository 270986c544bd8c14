//! The `approval:` section: which tool calls a person must approve first, as rules over tool
//! globs, servers, MCP annotations and roles (first match wins), then the built-in default;
//! what happens to a call that needs approval where nobody can give it (`unattended`); and how
//! long a pending approval waits (`expire_after_ms`).

use std::time::Duration;

use super::agents::globs::{Names, globs};
use super::error::{child_path, item_path};
use super::fields::Ctx;
use super::model::{ApprovalAction, ApprovalPolicy, ApprovalRule, ApprovalWhen, Unattended};
use super::suggest;
use super::yaml::{Node, Value};

const KEYS: &[&str] = &["rules", "unattended", "expire_after_ms"];
const RULE_KEYS: &[&str] = &["tools", "server", "when", "roles", "action"];
const ACTIONS: &[&str] = &["allow", "ask", "deny"];
const UNATTENDED: &[&str] = &["deny", "wait"];
const WHEN: &[&str] = &["destructive", "read_only", "open_world"];

/// Reads `approval:`; absent means the defaults (no rules, `unattended: deny`, 10 minutes).
pub(super) fn approval(ctx: &mut Ctx<'_>, node: Option<&Node>) -> ApprovalPolicy {
    let mut policy = ApprovalPolicy::default();
    let Some(node) = node else {
        return policy;
    };
    let Some(fields) = ctx.fields(node, "approval", KEYS) else {
        return policy;
    };
    if let Some(node) = fields.get("unattended") {
        let at = "approval.unattended";
        if let Some(text) = ctx.string(node, at) {
            match text.as_str() {
                "deny" => policy.unattended = Unattended::Deny,
                "wait" => policy.unattended = Unattended::Wait,
                other => ctx.error(
                    node.pos,
                    at,
                    suggest::unknown("unattended policy", other, UNATTENDED),
                ),
            }
        }
    }
    if let Some(node) = fields.get("expire_after_ms") {
        // From one second to a day: a pending call longer than that has no one waiting for it.
        if let Some(ms) = ctx.integer(node, "approval.expire_after_ms", 1_000, 86_400_000) {
            policy.expire_after = Duration::from_millis(ms);
        }
    }
    if let Some(node) = fields.get("rules") {
        match &node.value {
            Value::Seq(items) => {
                for (i, item) in items.iter().enumerate() {
                    if let Some(rule) = rule(ctx, item, &item_path("approval.rules", i)) {
                        policy.rules.push(rule);
                    }
                }
            }
            Value::Null => {}
            _ => ctx.expected(node, "approval.rules", "a list of rules"),
        }
    }
    policy
}

/// One rule: what it matches (all of `tools`, `server`, `when`, `roles` that are given) and its
/// `action`.
fn rule(ctx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<ApprovalRule> {
    let fields = ctx.fields(node, path, RULE_KEYS)?;
    let tools = match fields.get("tools") {
        Some(node) => Some(globs(ctx, node, &child_path(path, "tools"), Names::Tools)?),
        None => None,
    };
    let server = match fields.get("server") {
        Some(node) => Some(ctx.non_empty_string(node, &child_path(path, "server"))?),
        None => None,
    };
    let when = match fields.get("when") {
        Some(node) => {
            let at = child_path(path, "when");
            let text = ctx.string(node, &at)?;
            match text.as_str() {
                "destructive" => Some(ApprovalWhen::Destructive),
                "read_only" => Some(ApprovalWhen::ReadOnly),
                "open_world" => Some(ApprovalWhen::OpenWorld),
                other => {
                    ctx.error(node.pos, &at, suggest::unknown("annotation", other, WHEN));
                    return None;
                }
            }
        }
        None => None,
    };
    let roles = match fields.get("roles") {
        Some(node) => Some(globs(ctx, node, &child_path(path, "roles"), Names::Other)?),
        None => None,
    };
    let action_path = child_path(path, "action");
    let Some(action_node) = fields.get("action") else {
        ctx.error(
            node.pos,
            &action_path,
            "missing: what the rule decides (`allow`, `ask` or `deny`)",
        );
        return None;
    };
    let text = ctx.string(action_node, &action_path)?;
    let action = match text.as_str() {
        "allow" => ApprovalAction::Allow,
        "ask" => ApprovalAction::Ask,
        "deny" => ApprovalAction::Deny,
        other => {
            ctx.error(
                action_node.pos,
                &action_path,
                suggest::unknown("action", other, ACTIONS),
            );
            return None;
        }
    };
    if tools.is_none() && server.is_none() && when.is_none() && roles.is_none() {
        ctx.error(
            node.pos,
            path,
            format!(
                "a rule must say what it matches (`tools`, `server`, `when` or `roles`); this one (`{}`) would match every call",
                action.as_str()
            ),
        );
        return None;
    }
    Some(ApprovalRule {
        tools,
        server,
        when,
        roles,
        action,
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::load_str;
    use crate::config::model::Config;
    use crate::config::model::DEFAULT_APPROVAL_EXPIRY_MS;

    fn env(_: &str) -> Option<String> {
        None
    }

    fn load(text: &str) -> Result<Config, Vec<String>> {
        load_str(text, Path::new("t.yaml"), &env)
            .map_err(|errors| errors.0.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn rules_are_read_in_order_with_their_matchers() {
        let config = load(
            "approval:\n  unattended: wait\n  expire_after_ms: 60000\n  rules:\n    - {tools: ['notes__*'], action: allow}\n    - {server: files, when: destructive, roles: [user], action: deny}\n",
        )
        .expect("loads");
        let policy = &config.approval;
        assert_eq!(policy.unattended, Unattended::Wait);
        assert_eq!(policy.expire_after, Duration::from_millis(60_000));
        assert_eq!(policy.rules.len(), 2);
        assert!(
            policy.rules[0]
                .tools
                .as_ref()
                .is_some_and(|t| t.is_match("notes__read"))
        );
        assert_eq!(policy.rules[1].server.as_deref(), Some("files"));
        assert_eq!(policy.rules[1].when, Some(ApprovalWhen::Destructive));
        assert_eq!(policy.rules[1].action, ApprovalAction::Deny);
        let defaults = load("").expect("loads").approval;
        assert_eq!(defaults.unattended, Unattended::Deny);
        assert_eq!(
            defaults.expire_after,
            Duration::from_millis(DEFAULT_APPROVAL_EXPIRY_MS)
        );
    }

    #[test]
    fn bad_rules_are_reported_where_they_are() {
        let errors = load(
            "approval:\n  unattended: maybe\n  rules:\n    - {tools: ['a b'], action: allow}\n    - {server: files, action: sometimes}\n    - {when: scary, action: ask}\n    - {action: deny}\n    - {server: x}\n",
        )
        .expect_err("bad");
        assert_eq!(
            errors,
            [
                "t.yaml:2:15: approval.unattended: unknown unattended policy `maybe`; expected one of: deny, wait",
                "t.yaml:4:16: approval.rules[0].tools[0]: glob `a b` can never match a tool (did you mean `a__b`?); exposed tool names are `server__tool` with only A-Z, a-z, 0-9, `_` and `-`",
                "t.yaml:5:31: approval.rules[1].action: unknown action `sometimes`; expected one of: allow, ask, deny",
                "t.yaml:6:14: approval.rules[2].when: unknown annotation `scary`; expected one of: destructive, read_only, open_world",
                "t.yaml:7:7: approval.rules[3]: a rule must say what it matches (`tools`, `server`, `when` or `roles`); this one (`deny`) would match every call",
                "t.yaml:8:7: approval.rules[4].action: missing: what the rule decides (`allow`, `ask` or `deny`)",
            ]
        );
    }
}
