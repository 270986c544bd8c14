//! Per-server tool sets and the merged, routable catalog.
//!
//! [`ServerTools::build`] does the expensive per-server work once per `tools/list` result
//! (filter, cap, check, compile, convert). [`Catalog::merge`] is cheap and runs whenever any
//! server's set changes: it resolves exposed-name collisions in a fixed order (servers by name,
//! then tools by name, first one wins) so the outcome never depends on which server answered
//! first. Every tool a server listed ends up either in the catalog or in a [`DroppedTool`] with
//! a reason; nothing disappears silently.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::entry::ToolEntry;
use super::filter::{FilterError, Refusal, ToolMatcher};
use super::listing::Listing;
use super::schema::SchemaError;
use super::steering::{self, Steering};
use crate::config::model::{ToolFilter, ToolSettings};

/// One server's tools after filtering, capping, sanitizing, schema checks and conversion.
/// Built when that server's `tools/list` result arrives; immutable afterwards.
#[derive(Debug, Clone)]
pub struct ServerTools {
    server: String,
    tools: Vec<Arc<ToolEntry>>,
    dropped: Vec<DroppedTool>,
    /// `tools.drop_steering` when built: the merge drops this server's steering tools instead
    /// of flagging them.
    drop_steering: bool,
}

/// A tool that is not offered to models, and why. Shown in the status API; the hub logs it when
/// it is first refused (see [`Catalog::refused_since`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DroppedTool {
    /// The configured server name.
    pub server: String,
    /// The tool's name as the server listed it (may be empty or odd: it is untrusted).
    pub tool: String,
    /// Why it was dropped.
    pub reason: DropReason,
}

/// Why a tool is not offered. A closed set, so the status API can group and count them; the
/// `Display` text is the operator-facing message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DropReason {
    /// The server listed a tool with an empty name, which cannot be called.
    #[error("tool name is empty")]
    EmptyName,
    /// The server listed the same name more than once; the first listing is kept.
    #[error("tool name is listed more than once; the first listing is kept")]
    DuplicateName,
    /// A `tools.deny` glob matched.
    #[error("denied by tools.deny pattern {pattern:?}")]
    Denied {
        /// The first matching pattern, as configured.
        pattern: String,
    },
    /// `tools.allow` is non-empty and no glob in it matched.
    #[error("not matched by any tools.allow pattern")]
    NotAllowed,
    /// The server's filter does not compile, so none of its tools are trusted to be filtered.
    #[error("tool filter is invalid: {0}")]
    InvalidFilter(FilterError),
    /// Past `tools.max_tools_per_server` (counted in name order after filtering).
    #[error("over the limit of {max} tools per server (tools.max_tools_per_server)")]
    OverLimit {
        /// The configured limit.
        max: usize,
    },
    /// The entry could not be read as an MCP tool at all (a field of the wrong shape); its
    /// neighbours in the listing are unaffected.
    #[error("the listing of this tool could not be read: {0}")]
    Unreadable(String),
    /// The description steers the model around other tools and `tools.drop_steering` is set.
    #[error("its description {why} (\"{matched}\"), and tools.drop_steering is set")]
    Steering {
        /// What the description does, in words.
        why: String,
        /// The text that matched.
        matched: String,
    },
    /// The input schema was refused or does not compile.
    #[error("invalid input schema: {0}")]
    InvalidSchema(SchemaError),
    /// Held out by its pin (`tools::pins`): changed since pinned, or new on an untrusted
    /// server, until an admin accepts it.
    #[error("held for review: {0}")]
    AwaitingReview(String),
    /// Another tool already has this exposed name (found at merge time).
    #[error(
        "exposed name {exposed:?} is already used by tool {other_tool:?} of server {other_server:?}"
    )]
    NameCollision {
        /// The contested exposed name.
        exposed: String,
        /// Server of the tool that keeps the name.
        other_server: String,
        /// That tool's original name.
        other_tool: String,
    },
}

/// All servers' tools merged: lookup by exposed name for routing, iteration in exposed-name
/// order for stable prompts. Immutable; build a new one with [`Catalog::merge`] (or
/// [`Catalog::with_server`] / [`Catalog::without_server`]) when a server's tools change.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    servers: BTreeMap<String, Arc<ServerTools>>,
    by_name: BTreeMap<String, Arc<ToolEntry>>,
    rejected: Vec<DroppedTool>,
    /// Offered tools whose descriptions steer the model around other tools, by exposed name.
    flagged: BTreeMap<String, Steering>,
}

impl ServerTools {
    /// Turns one server's `tools/list` result into entries, in this order: empty and duplicate
    /// names, then `filter` (over original names), then the per-server cap (keeping the first
    /// `max_tools_per_server` in name order, before any schema work so a huge listing costs
    /// little), then per-tool schema checks and conversion. A failing tool is dropped, never the
    /// server. Each drop is kept in [`ServerTools::dropped`]; logging is the caller's (the hub
    /// logs only refusals that are new, see [`Catalog::refused_since`]).
    pub fn build(
        server: &str,
        listed: impl Into<Listing>,
        filter: &ToolFilter,
        settings: &ToolSettings,
    ) -> ServerTools {
        let Listing {
            tools: listed,
            unreadable,
        } = listed.into();
        let mut tools = Vec::new();
        let mut dropped = Vec::new();
        let mut drop = |tool: &str, reason: DropReason| {
            dropped.push(DroppedTool {
                server: server.to_owned(),
                tool: tool.to_owned(),
                reason,
            });
        };

        let mut listed = listed;
        // Stable: duplicates keep the server's listing order, so "first listing" is well defined.
        listed.sort_by(|a, b| a.name.cmp(&b.name));
        let matcher = ToolMatcher::new(filter);
        let mut kept = 0;
        let mut previous: Option<String> = None;
        for tool in listed {
            let name = tool.name.to_string();
            if name.is_empty() {
                drop(&name, DropReason::EmptyName);
                continue;
            }
            if previous.as_deref() == Some(name.as_str()) {
                drop(&name, DropReason::DuplicateName);
                continue;
            }
            previous = Some(name.clone());
            let refusal = match &matcher {
                Err(err) => Some(DropReason::InvalidFilter(err.clone())),
                Ok(matcher) => matcher.check(&name).err().map(|refusal| match refusal {
                    Refusal::Denied { pattern } => DropReason::Denied { pattern },
                    Refusal::NotAllowed => DropReason::NotAllowed,
                }),
            };
            if let Some(reason) = refusal {
                drop(&name, reason);
                continue;
            }
            if kept == settings.max_tools_per_server {
                drop(
                    &name,
                    DropReason::OverLimit {
                        max: settings.max_tools_per_server,
                    },
                );
                continue;
            }
            kept += 1;
            match ToolEntry::build(server, tool, settings) {
                Ok(entry) => tools.push(Arc::new(entry)),
                Err(err) => drop(&name, DropReason::InvalidSchema(err)),
            }
        }
        for entry in unreadable {
            drop(&entry.name, DropReason::Unreadable(entry.reason));
        }
        // Unreadable entries join the others in name order.
        dropped.sort_by(|a, b| a.tool.cmp(&b.tool));
        ServerTools {
            server: server.to_owned(),
            tools,
            dropped,
            drop_steering: settings.drop_steering,
        }
    }

    /// These tools with `held` (tools the listing had but pins hold out) among the dropped.
    #[must_use]
    pub fn with_held(mut self, held: Vec<crate::tools::pins::Held>) -> ServerTools {
        for held in held {
            self.dropped.push(DroppedTool {
                server: self.server.clone(),
                tool: held.tool,
                reason: DropReason::AwaitingReview(held.why),
            });
        }
        self.dropped.sort_by(|a, b| a.tool.cmp(&b.tool));
        self
    }

    /// The configured server name.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// Usable tools, sorted by original tool name, names unique.
    pub fn tools(&self) -> &[Arc<ToolEntry>] {
        &self.tools
    }

    /// Tools refused while building, in name order.
    pub fn dropped(&self) -> &[DroppedTool] {
        &self.dropped
    }
}

/// Look for steering in every offered tool's description: flag it, or drop it (into
/// `rejected`) when its server's settings say so.
fn flag_steering(
    servers: &BTreeMap<String, Arc<ServerTools>>,
    by_name: &mut BTreeMap<String, Arc<ToolEntry>>,
    rejected: &mut Vec<DroppedTool>,
) -> BTreeMap<String, Steering> {
    let mut names: HashMap<String, Vec<String>> = HashMap::new();
    for tool in by_name.values() {
        names
            .entry(tool.exposed_name.clone())
            .or_default()
            .push(tool.server.clone());
        if steering::is_identifier_like(&tool.tool_name) {
            names
                .entry(tool.tool_name.clone())
                .or_default()
                .push(tool.server.clone());
        }
    }
    let mut flagged = BTreeMap::new();
    let mut dropped = Vec::new();
    for tool in by_name.values() {
        let Some(found) = steering::find(&tool.description, &tool.server, &names) else {
            continue;
        };
        if servers.get(&tool.server).is_some_and(|s| s.drop_steering) {
            dropped.push(tool.exposed_name.clone());
            rejected.push(DroppedTool {
                server: tool.server.clone(),
                tool: tool.tool_name.clone(),
                reason: DropReason::Steering {
                    why: found.why,
                    matched: found.matched,
                },
            });
        } else {
            flagged.insert(tool.exposed_name.clone(), found);
        }
    }
    for name in dropped {
        by_name.remove(&name);
    }
    flagged
}

impl Catalog {
    /// Merges servers' tool sets. The result depends only on the set of servers, not on their
    /// order: servers are taken by name and their tools by original name, and the first to claim
    /// an exposed name keeps it; later claimants go to [`Catalog::rejected`] with a reason naming
    /// both tools. Server names are expected to be unique; if one repeats, the last one given
    /// replaces the earlier.
    pub fn merge(servers: impl IntoIterator<Item = Arc<ServerTools>>) -> Catalog {
        let servers: BTreeMap<String, Arc<ServerTools>> = servers
            .into_iter()
            .map(|tools| (tools.server.clone(), tools))
            .collect();
        let mut by_name: BTreeMap<String, Arc<ToolEntry>> = BTreeMap::new();
        let mut rejected = Vec::new();
        for server in servers.values() {
            let mut entries: Vec<&Arc<ToolEntry>> = server.tools.iter().collect();
            // Already sorted when built by `ServerTools::build`; re-sorting keeps the merge
            // deterministic without trusting that.
            entries.sort_by(|a, b| a.tool_name.cmp(&b.tool_name));
            for entry in entries {
                match by_name.entry(entry.exposed_name.clone()) {
                    Entry::Vacant(slot) => {
                        slot.insert(Arc::clone(entry));
                    }
                    Entry::Occupied(slot) => {
                        let owner = slot.get();
                        let reason = DropReason::NameCollision {
                            exposed: entry.exposed_name.clone(),
                            other_server: owner.server.clone(),
                            other_tool: owner.tool_name.clone(),
                        };
                        rejected.push(DroppedTool {
                            server: entry.server.clone(),
                            tool: entry.tool_name.clone(),
                            reason,
                        });
                    }
                }
            }
        }
        let flagged = flag_steering(&servers, &mut by_name, &mut rejected);
        Catalog {
            servers,
            by_name,
            rejected,
            flagged,
        }
    }

    /// Why an offered tool's description was flagged as steering the model around other tools
    /// (see `steering.rs`), if it was.
    pub fn steering(&self, exposed_name: &str) -> Option<&Steering> {
        self.flagged.get(exposed_name)
    }

    /// Every flagged offered tool with its finding, by exposed name.
    pub fn flagged(&self) -> impl Iterator<Item = (&Arc<ToolEntry>, &Steering)> {
        self.flagged
            .iter()
            .filter_map(|(name, found)| Some((self.by_name.get(name)?, found)))
    }

    /// A new catalog with `tools` added, or replacing the set of the server with the same name.
    pub fn with_server(&self, tools: Arc<ServerTools>) -> Catalog {
        let mut servers = self.servers.clone();
        servers.insert(tools.server.clone(), tools);
        Catalog::merge(servers.into_values())
    }

    /// A new catalog without the named server's tools (it disconnected or was disabled).
    pub fn without_server(&self, server: &str) -> Catalog {
        let mut servers = self.servers.clone();
        servers.remove(server);
        Catalog::merge(servers.into_values())
    }

    /// The tool a model called, by exposed name; `None` for names we never offered.
    pub fn get(&self, exposed_name: &str) -> Option<&Arc<ToolEntry>> {
        self.by_name.get(exposed_name)
    }

    /// Every offered tool, sorted by exposed name (stable prompts, stable prompt caching).
    pub fn iter(&self) -> impl Iterator<Item = &Arc<ToolEntry>> {
        self.by_name.values()
    }

    /// The merged servers' tool sets, by server name.
    pub fn servers(&self) -> impl Iterator<Item = &Arc<ServerTools>> {
        self.servers.values()
    }

    /// Tools refused at merge time (exposed-name collisions), in merge order.
    pub fn rejected(&self) -> &[DroppedTool] {
        &self.rejected
    }

    /// Every tool not offered: each server's build-time drops (servers by name), then merge-time
    /// collisions.
    pub fn dropped(&self) -> impl Iterator<Item = &DroppedTool> {
        self.servers
            .values()
            .flat_map(|server| server.dropped.iter())
            .chain(&self.rejected)
    }

    /// The refusals of this catalog that `previous` did not have, in [`Catalog::dropped`] order:
    /// what is worth logging after a rebuild. A tool refused for the same reason in both is not
    /// new, so a refusal is reported once, when it first appears, and not on every rebuild that
    /// any server's listing causes; one that went away and came back is new again.
    pub fn refused_since(&self, previous: &Catalog) -> Vec<&DroppedTool> {
        let mut known: HashMap<(&str, &str), Vec<&DropReason>> = HashMap::new();
        for dropped in previous.dropped() {
            known
                .entry((dropped.server.as_str(), dropped.tool.as_str()))
                .or_default()
                .push(&dropped.reason);
        }
        self.dropped()
            .filter(|dropped| {
                known
                    .get(&(dropped.server.as_str(), dropped.tool.as_str()))
                    .is_none_or(|reasons| !reasons.contains(&&dropped.reason))
            })
            .collect()
    }

    /// Number of offered tools.
    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    /// Whether no tool is offered.
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rmcp::model::Tool;
    use serde_json::{Value, json};
    use std::collections::BTreeSet;

    fn settings(max_tools: usize) -> ToolSettings {
        ToolSettings {
            max_result_bytes: 1 << 18,
            max_tools_per_server: max_tools,
            max_description_chars: 200,
            ..ToolSettings::default()
        }
    }

    fn tool_with_schema(name: &str, schema: Value) -> Tool {
        let Value::Object(schema) = schema else {
            panic!("test schema must be an object");
        };
        Tool::new(name.to_owned(), format!("does {name}"), Arc::new(schema))
    }

    fn tool(name: &str) -> Tool {
        tool_with_schema(name, json!({"type": "object", "properties": {}}))
    }

    fn server(name: &str, tools: &[&str]) -> Arc<ServerTools> {
        Arc::new(ServerTools::build(
            name,
            tools.iter().map(|t| tool(t)).collect::<Vec<_>>(),
            &ToolFilter::default(),
            &settings(256),
        ))
    }

    fn filter(allow: &[&str], deny: &[&str]) -> ToolFilter {
        ToolFilter {
            allow: allow.iter().map(|s| s.to_string()).collect(),
            deny: deny.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// One line per tool: `kept <name>` or `dropped <name>: <reason>`, kept first.
    #[track_caller]
    fn check_build(tools: Vec<Tool>, filter: &ToolFilter, max_tools: usize, expected: &[&str]) {
        let built = ServerTools::build("srv", tools, filter, &settings(max_tools));
        let actual: Vec<String> = built
            .tools()
            .iter()
            .map(|t| format!("kept {}", t.tool_name))
            .chain(
                built
                    .dropped()
                    .iter()
                    .map(|d| format!("dropped {}: {}", d.tool, d.reason)),
            )
            .collect();
        assert_eq!(actual, expected);
    }

    /// `expected`: exposed name -> `server/tool`, then rejected `server/tool: reason` lines.
    #[track_caller]
    fn check_merge(servers: Vec<Arc<ServerTools>>, expected: &[&str], rejected: &[&str]) {
        let catalog = Catalog::merge(servers);
        let actual: Vec<String> = catalog
            .iter()
            .map(|t| format!("{} -> {}/{}", t.exposed_name, t.server, t.tool_name))
            .collect();
        assert_eq!(actual, expected);
        let actual: Vec<String> = catalog
            .rejected()
            .iter()
            .map(|d| format!("{}/{}: {}", d.server, d.tool, d.reason))
            .collect();
        assert_eq!(actual, rejected);
    }

    #[test]
    fn build_sorts_and_drops_empty_and_duplicate_names() {
        check_build(
            vec![tool("b"), tool(""), tool("a"), tool("b")],
            &ToolFilter::default(),
            10,
            &[
                "kept a",
                "kept b",
                "dropped : tool name is empty",
                "dropped b: tool name is listed more than once; the first listing is kept",
            ],
        );
    }

    #[test]
    fn duplicate_names_keep_the_first_listing() {
        let first = tool_with_schema("t", json!({"type": "object"})).with_title("first");
        let second = tool_with_schema("t", json!({"type": "object"})).with_title("second");
        let built = ServerTools::build(
            "s",
            vec![first, second],
            &ToolFilter::default(),
            &settings(9),
        );
        assert_eq!(built.tools()[0].title.as_deref(), Some("first"));
    }

    #[test]
    fn build_applies_filters_to_original_names() {
        check_build(
            vec![
                tool("fs.read"),
                tool("fs.write"),
                tool("net.get"),
                tool("fs.delete"),
            ],
            &filter(&["fs.*"], &["*delete*"]),
            10,
            &[
                "kept fs.read",
                "kept fs.write",
                "dropped fs.delete: denied by tools.deny pattern \"*delete*\"",
                "dropped net.get: not matched by any tools.allow pattern",
            ],
        );
    }

    #[test]
    fn invalid_filters_drop_everything() {
        check_build(
            vec![tool("a")],
            &filter(&[], &["[oops"]),
            10,
            &[
                "dropped a: tool filter is invalid: invalid glob \"[oops\" in tools.deny: unclosed character class; missing ']'",
            ],
        );
    }

    #[test]
    fn cap_keeps_the_first_in_name_order_after_filtering() {
        check_build(
            vec![tool("d"), tool("c"), tool("b"), tool("a"), tool("x")],
            &filter(&[], &["a"]),
            2,
            &[
                "kept b",
                "kept c",
                "dropped a: denied by tools.deny pattern \"a\"",
                "dropped d: over the limit of 2 tools per server (tools.max_tools_per_server)",
                "dropped x: over the limit of 2 tools per server (tools.max_tools_per_server)",
            ],
        );
        check_build(
            vec![tool("a")],
            &ToolFilter::default(),
            0,
            &["dropped a: over the limit of 0 tools per server (tools.max_tools_per_server)"],
        );
    }

    #[test]
    fn bad_schemas_drop_the_tool_not_the_server() {
        check_build(
            vec![
                tool("ok"),
                tool_with_schema("str", json!({"type": "string"})),
                tool_with_schema(
                    "remote",
                    json!({"type": "object", "properties": {"a": {"$ref": "http://x/y"}}}),
                ),
                tool_with_schema(
                    "dangling",
                    json!({"type": "object", "properties": {"a": {"$ref": "#/$defs/no"}}}),
                ),
            ],
            &ToolFilter::default(),
            10,
            &[
                "kept ok",
                "dropped dangling: invalid input schema: schema does not compile: pointer '/$defs/no' does not exist",
                "dropped remote: invalid input schema: $ref \"http://x/y\" is not a local \"#...\" reference",
                "dropped str: invalid input schema: schema root must have type \"object\", found type \"string\"",
            ],
        );
    }

    #[test]
    fn merge_routes_by_exposed_name() {
        let catalog = Catalog::merge([
            server("everything", &["get-sum", "echo"]),
            server("fs", &["read.file"]),
        ]);
        assert_eq!(catalog.len(), 3);
        assert!(!catalog.is_empty());
        let entry = catalog.get("fs__read_file").expect("routed");
        assert_eq!(
            (entry.server.as_str(), entry.tool_name.as_str()),
            ("fs", "read.file")
        );
        assert!(catalog.get("fs__read.file").is_none());
        assert!(Catalog::default().is_empty());
    }

    #[test]
    fn collisions_are_refused_in_a_fixed_order() {
        // Within a server: `a.b` sorts before `a_b`, so it wins.
        check_merge(
            vec![server("s", &["a_b", "a.b"])],
            &["s__a_b -> s/a.b"],
            &["s/a_b: exposed name \"s__a_b\" is already used by tool \"a.b\" of server \"s\""],
        );
        // Across servers: `x` sorts before `x__y`, so `x`'s tool wins whatever the input order.
        for servers in [
            vec![server("x__y", &["z"]), server("x", &["y__z"])],
            vec![server("x", &["y__z"]), server("x__y", &["z"])],
        ] {
            check_merge(
                servers,
                &["x__y__z -> x/y__z"],
                &[
                    "x__y/z: exposed name \"x__y__z\" is already used by tool \"y__z\" of server \"x\"",
                ],
            );
        }
    }

    #[test]
    fn long_names_are_shortened_and_still_distinct() {
        let long_a = format!("tool_{}_a", "x".repeat(70));
        let long_b = format!("tool_{}_b", "x".repeat(70));
        let catalog = Catalog::merge([server("srv", &[&long_a, &long_b])]);
        assert_eq!(catalog.len(), 2);
        for entry in catalog.iter() {
            assert_eq!(entry.exposed_name.len(), 64);
            assert!(std::ptr::eq(
                catalog.get(&entry.exposed_name).expect("routed").as_ref(),
                entry.as_ref()
            ));
        }
    }

    #[test]
    fn with_and_without_server() {
        let catalog = Catalog::merge([server("a", &["t"])]);
        let catalog = catalog.with_server(server("b", &["t"]));
        assert_eq!(
            catalog
                .iter()
                .map(|t| t.exposed_name.as_str())
                .collect::<Vec<_>>(),
            ["a__t", "b__t"]
        );
        let catalog = catalog.with_server(server("a", &["u"]));
        assert_eq!(
            catalog
                .iter()
                .map(|t| t.exposed_name.as_str())
                .collect::<Vec<_>>(),
            ["a__u", "b__t"]
        );
        let catalog = catalog.without_server("a");
        assert_eq!(
            catalog
                .iter()
                .map(|t| t.exposed_name.as_str())
                .collect::<Vec<_>>(),
            ["b__t"]
        );
        assert_eq!(
            catalog.servers().map(|s| s.server()).collect::<Vec<_>>(),
            ["b"]
        );
    }

    #[test]
    fn dropped_lists_build_and_merge_drops() {
        let a = Arc::new(ServerTools::build(
            "a",
            vec![tool(""), tool("t__u")],
            &ToolFilter::default(),
            &settings(9),
        ));
        let catalog = Catalog::merge([a, server("a__t", &["u"])]);
        let dropped: Vec<(&str, &str)> = catalog
            .dropped()
            .map(|d| (d.server.as_str(), d.tool.as_str()))
            .collect();
        assert_eq!(dropped, [("a", ""), ("a__t", "u")]);
    }

    #[test]
    fn refusals_are_new_only_when_they_first_appear() {
        let refused = |now: &Catalog, before: &Catalog| -> Vec<String> {
            now.refused_since(before)
                .iter()
                .map(|d| format!("{}/{}: {}", d.server, d.tool, d.reason))
                .collect()
        };
        let empty = Catalog::default();
        let first = empty.with_server(server("a", &["", "t__u"]));
        assert_eq!(refused(&first, &empty), ["a/: tool name is empty"]);
        // Another server's listing rebuilds the catalog; the old refusal is not new.
        let second = first.with_server(server("b", &["x"]));
        assert_eq!(refused(&second, &first), Vec::<String>::new());
        // A collision is new once, then kept quietly across rebuilds.
        let third = second.with_server(server("a__t", &["u"]));
        assert_eq!(
            refused(&third, &second),
            ["a__t/u: exposed name \"a__t__u\" is already used by tool \"t__u\" of server \"a\""]
        );
        let fourth = third.with_server(server("b", &["x", "y"]));
        assert_eq!(refused(&fourth, &third), Vec::<String>::new());
        // The same tool refused for another reason is new.
        let limited = Arc::new(ServerTools::build(
            "a__t",
            vec![tool("u"), tool("v")],
            &ToolFilter::default(),
            &settings(0),
        ));
        let fifth = fourth.with_server(limited);
        assert_eq!(
            refused(&fifth, &fourth),
            [
                "a__t/u: over the limit of 0 tools per server (tools.max_tools_per_server)",
                "a__t/v: over the limit of 0 tools per server (tools.max_tools_per_server)",
            ]
        );
        // Gone and back again: new again.
        let gone = fifth.without_server("a");
        assert_eq!(refused(&gone, &fifth), Vec::<String>::new());
        let back = gone.with_server(server("a", &[""]));
        assert_eq!(refused(&back, &gone), ["a/: tool name is empty"]);
    }

    /// Names from a tiny alphabet so that mapping collisions (`.` vs `_`, `__` splits) and long
    /// names (hash suffixes) are frequent.
    fn pairs() -> impl Strategy<Value = Vec<(String, String)>> {
        prop::collection::vec(("[ab._]{1,3}", "([ab._-]{1,4}|[ab]{60,70})"), 0..24)
    }

    fn build_servers(pairs: &[(String, String)]) -> Vec<Arc<ServerTools>> {
        let mut by_server: BTreeMap<&str, Vec<Tool>> = BTreeMap::new();
        for (server, tool_name) in pairs {
            by_server.entry(server).or_default().push(tool(tool_name));
        }
        by_server
            .into_iter()
            .map(|(name, tools)| {
                Arc::new(ServerTools::build(
                    name,
                    tools,
                    &ToolFilter::default(),
                    &settings(1000),
                ))
            })
            .collect()
    }

    type Summary = (Vec<(String, String, String)>, Vec<DroppedTool>);

    fn summary(catalog: &Catalog) -> Summary {
        (
            catalog
                .iter()
                .map(|t| {
                    (
                        t.exposed_name.clone(),
                        t.server.clone(),
                        t.tool_name.clone(),
                    )
                })
                .collect(),
            catalog.rejected().to_vec(),
        )
    }

    proptest! {
        #[test]
        fn merge_ignores_input_order(
            (pairs, order) in pairs().prop_flat_map(|pairs| {
                let servers: BTreeSet<String> = pairs.iter().map(|(s, _)| s.clone()).collect();
                let order: Vec<usize> = (0..servers.len()).collect();
                (Just(pairs), Just(order).prop_shuffle())
            }),
        ) {
            let servers = build_servers(&pairs);
            let shuffled: Vec<Arc<ServerTools>> =
                order.iter().map(|&i| Arc::clone(&servers[i])).collect();
            prop_assert_eq!(
                summary(&Catalog::merge(servers)),
                summary(&Catalog::merge(shuffled))
            );
        }

        #[test]
        fn every_tool_is_offered_or_explained(pairs in pairs()) {
            let servers = build_servers(&pairs);
            let catalog = Catalog::merge(servers.clone());
            let mut distinct: Vec<(String, String)> = pairs.clone();
            distinct.sort();
            distinct.dedup();
            for (server, tool_name) in &distinct {
                let offered = catalog.iter().any(|t| &t.server == server && &t.tool_name == tool_name);
                let refused: Vec<&DroppedTool> = catalog
                    .rejected()
                    .iter()
                    .filter(|d| &d.server == server && &d.tool == tool_name)
                    .collect();
                prop_assert!(offered != (refused.len() == 1), "{server}/{tool_name}");
                if let Some(DroppedTool { reason: DropReason::NameCollision { exposed, other_server, other_tool }, .. }) = refused.first() {
                    // The winner really holds the contested name and is a different tool.
                    let owner = catalog.get(exposed).expect("winner is in the catalog");
                    prop_assert_eq!(&owner.server, other_server);
                    prop_assert_eq!(&owner.tool_name, other_tool);
                    prop_assert!((other_server, other_tool) != (server, tool_name));
                    prop_assert_eq!(exposed, &crate::tools::exposed_name(server, tool_name));
                }
            }
            for entry in catalog.iter() {
                prop_assert!(std::ptr::eq(catalog.get(&entry.exposed_name).expect("routed").as_ref(), entry.as_ref()));
            }
            prop_assert_eq!(catalog.len() + catalog.rejected().len(), distinct.len());
        }
    }
}
