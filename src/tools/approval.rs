//! Whether a tool call may run, must wait for a person, or may not run: the `approval:` rules
//! (first match wins), then the built-in default. Pure: the hub asks it on every call
//! (`Hub::invoke`), with the server's trust from config and the caller's role.
//!
//! Annotations are hints a server writes about itself, so they count only where the server is
//! believed ([`Trust::Annotations`] or [`Trust::Full`]); elsewhere a tool is taken to be as
//! risky as MCP's defaults allow (not read-only, destructive, open-world), whatever it claims —
//! a `readOnlyHint` can never lower an untrusted server's risk.

use std::fmt;

use super::ToolEntry;
use crate::config::model::{ApprovalAction, ApprovalPolicy, ApprovalWhen, Trust};

/// What the policy decides for one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// A person must approve first; `reason` says why, in words shown on the approval card.
    Ask {
        reason: String,
    },
    Deny {
        reason: String,
    },
}

/// What the policy believes of a tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Risk {
    pub read_only: bool,
    pub destructive: bool,
    pub open_world: bool,
    /// Whether the annotations were believed (the server is trusted for them).
    pub believed: bool,
}

impl Risk {
    /// `tool`'s risk with its server trusted as `trust`.
    pub fn of(tool: &ToolEntry, trust: Trust) -> Risk {
        let hints = tool.annotations.as_ref();
        if trust == Trust::None {
            return Risk {
                read_only: false,
                destructive: true,
                open_world: true,
                believed: false,
            };
        }
        // MCP's defaults for absent hints: not read-only, destructive, open-world.
        let read_only = hints.and_then(|h| h.read_only_hint) == Some(true);
        let destructive = !read_only && hints.and_then(|h| h.destructive_hint) != Some(false);
        let open_world = hints.and_then(|h| h.open_world_hint) != Some(false);
        Risk {
            read_only,
            destructive,
            open_world,
            believed: true,
        }
    }

    fn has(self, when: ApprovalWhen) -> bool {
        match when {
            ApprovalWhen::Destructive => self.destructive,
            ApprovalWhen::ReadOnly => self.read_only,
            ApprovalWhen::OpenWorld => self.open_world,
        }
    }
}

impl fmt::Display for Risk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.believed {
            return f.write_str(
                "on a server not trusted for its annotations (`trusted:`), so they cannot make it safe",
            );
        }
        if self.read_only {
            f.write_str("annotated read-only")
        } else if self.destructive {
            f.write_str("annotated destructive (or not annotated read-only)")
        } else {
            f.write_str("not annotated read-only")
        }
    }
}

/// The verdict for `tool` (of a server trusted as `trust`) called by a caller of `role`.
pub fn verdict(policy: &ApprovalPolicy, tool: &ToolEntry, trust: Trust, role: &str) -> Verdict {
    let risk = Risk::of(tool, trust);
    let matched = policy.rules.iter().enumerate().find(|(_, rule)| {
        rule.tools
            .as_ref()
            .is_none_or(|globs| globs.is_match(&tool.exposed_name))
            && rule.server.as_ref().is_none_or(|s| *s == tool.server)
            && rule.when.is_none_or(|when| risk.has(when))
            && rule.roles.as_ref().is_none_or(|roles| roles.is_match(role))
    });
    if let Some((i, rule)) = matched {
        let why = format!("approval rule {} says `{}`", i + 1, rule.action.as_str());
        return match rule.action {
            ApprovalAction::Allow => Verdict::Allow,
            ApprovalAction::Ask => Verdict::Ask {
                reason: format!("{why}; the tool is {risk}"),
            },
            ApprovalAction::Deny => Verdict::Deny { reason: why },
        };
    }
    if trust == Trust::Full || risk.read_only {
        return Verdict::Allow;
    }
    Verdict::Ask {
        reason: format!("`{}` is {risk}", tool.exposed_name),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rmcp::model::{Tool, ToolAnnotations};
    use serde_json::json;

    use super::*;
    use crate::config::model::{ApprovalRule, ToolGlobs, ToolSettings};

    fn entry(server: &str, name: &str, annotations: Option<ToolAnnotations>) -> ToolEntry {
        let schema = Arc::new(
            json!({"type": "object"})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        );
        let mut tool = Tool::new(name.to_owned(), "d", schema);
        tool.annotations = annotations;
        ToolEntry::build(server, tool, &ToolSettings::default()).expect("a valid tool")
    }

    fn read_only() -> Option<ToolAnnotations> {
        Some(ToolAnnotations::new().read_only(true))
    }

    #[test]
    fn an_untrusted_read_only_hint_never_lowers_risk() {
        let policy = ApprovalPolicy::default();
        let delete_all = entry("shady", "delete_all", read_only());
        let verdict = verdict(&policy, &delete_all, Trust::None, "user");
        let Verdict::Ask { reason } = verdict else {
            panic!("an untrusted server's read-only claim is not believed: {verdict:?}");
        };
        assert!(reason.contains("not trusted"), "{reason}");
        assert_eq!(
            super::verdict(&policy, &delete_all, Trust::Annotations, "user"),
            Verdict::Allow,
            "a server believed for its annotations gets its read-only tool allowed"
        );
        let write = entry("notes", "write", None);
        assert!(matches!(
            super::verdict(&policy, &write, Trust::Annotations, "user"),
            Verdict::Ask { .. }
        ));
        assert_eq!(
            super::verdict(&policy, &write, Trust::Full, "user"),
            Verdict::Allow
        );
    }

    #[test]
    fn the_first_matching_rule_wins_and_roles_override() {
        let globs = |p: &[&str]| {
            ToolGlobs::compile(p.iter().map(|s| (*s).to_owned()).collect()).expect("globs")
        };
        let rule = |action, roles: Option<ToolGlobs>, when| ApprovalRule {
            tools: Some(globs(&["notes__*"])),
            server: None,
            when,
            roles,
            action,
        };
        let policy = ApprovalPolicy {
            rules: vec![
                rule(ApprovalAction::Allow, Some(globs(&["ops"])), None),
                rule(ApprovalAction::Deny, None, Some(ApprovalWhen::Destructive)),
                rule(ApprovalAction::Ask, None, None),
            ],
            ..ApprovalPolicy::default()
        };
        let write = entry("notes", "write", None);
        assert_eq!(verdict(&policy, &write, Trust::Full, "ops"), Verdict::Allow);
        assert!(matches!(
            verdict(&policy, &write, Trust::Full, "user"),
            Verdict::Deny { reason } if reason.contains("rule 2")
        ));
        let read = entry("notes", "read", read_only());
        assert!(matches!(
            verdict(&policy, &read, Trust::Annotations, "user"),
            Verdict::Ask { reason } if reason.contains("rule 3")
        ));
        let clock = entry("clock", "now", read_only());
        assert_eq!(
            verdict(&policy, &clock, Trust::Annotations, "user"),
            Verdict::Allow
        );
    }
}
