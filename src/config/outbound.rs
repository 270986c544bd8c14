//! `server.outbound`: which addresses remote MCP servers and model providers may be reached at,
//! read into [`crate::outbound::Policy`]; and the check of each configured URL against it.
//!
//! A URL whose host is a literal address is checked here, while its position is known, so
//! `switchboard check` (and a reload) reports it like any other config error. Host names are
//! checked when they are resolved (`crate::outbound`), since what they resolve to can change.

use crate::outbound::{Blocked, Cidr, Policy};

use super::error::{child_path, item_path, shown};
use super::fields::Ctx;
use super::yaml::{Node, Value};

const OUTBOUND_KEYS: &[&str] = &["allow_private", "allow_loopback", "allow", "deny"];

/// Reads `server.outbound`; a bad field is reported and its default kept.
pub(super) fn outbound(ctx: &mut Ctx<'_>, node: &Node) -> Policy {
    let path = child_path("server", "outbound");
    let Some(fields) = ctx.fields(node, &path, OUTBOUND_KEYS) else {
        return Policy::default();
    };
    let mut flag = |key: &str| {
        fields
            .get(key)
            .and_then(|n| ctx.boolean(n, &child_path(&path, key)))
            .unwrap_or(true)
    };
    let allow_private = flag("allow_private");
    let allow_loopback = flag("allow_loopback");
    let allow = fields
        .get("allow")
        .map(|n| ranges(ctx, n, &child_path(&path, "allow")))
        .unwrap_or_default();
    let deny = fields
        .get("deny")
        .map(|n| ranges(ctx, n, &child_path(&path, "deny")))
        .unwrap_or_default();
    Policy::new(allow_private, allow_loopback, allow, deny)
}

/// A list of IP ranges; each bad one is reported at its own position.
fn ranges(ctx: &mut Ctx<'_>, node: &Node, path: &str) -> Vec<Cidr> {
    let Some(texts) = ctx.string_list(node, path) else {
        return Vec::new();
    };
    let items: &[Node] = match &node.value {
        Value::Seq(items) => items,
        _ => &[],
    };
    let mut good = Vec::with_capacity(texts.len());
    for (i, text) in texts.iter().enumerate() {
        let pos = items.get(i).and_then(|item| item.pos).or(node.pos);
        let text = text.trim();
        match Cidr::parse(text) {
            Ok(range) => good.push(range),
            Err(_) if text.is_empty() => ctx.error(pos, &item_path(path, i), "must not be empty"),
            Err(err) => ctx.error(pos, &item_path(path, i), format!("{err}{}", shown(text))),
        }
    }
    good
}

/// Report `url` (read from the value of `key` in the mapping `entry`, at `path`) when `policy`
/// refuses its host as written: a literal address, or a cloud metadata name.
pub(super) fn check_url(
    ctx: &mut Ctx<'_>,
    policy: &Policy,
    entry: &Node,
    key: &str,
    path: &str,
    url: &url::Url,
) {
    let Err(blocked) = policy.check_url(url) else {
        return;
    };
    let pos = match &entry.value {
        Value::Map(entries) => entries
            .iter()
            .find(|e| e.key.scalar_text() == Some(key))
            .and_then(|e| e.value.pos),
        _ => None,
    }
    .or(entry.pos);
    // The host is shown (an address or a metadata name, never a secret); the rest of the URL
    // is not, since its path or query may carry a token.
    let remedy = match &blocked {
        Blocked::Address(refusal) => refusal.rule.remedy(),
        // `allow` lists addresses; a name that means the metadata endpoint stays refused.
        _ => "a metadata endpoint's name is refused whatever server.outbound allows",
    };
    ctx.error(pos, path, format!("{blocked}; {remedy}"));
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::load_str;

    /// The error lines of loading `text` as `t.yaml` (empty when it loads).
    fn errors(text: &str) -> Vec<String> {
        match load_str(text, Path::new("t.yaml"), &|_| None) {
            Ok(_) => Vec::new(),
            Err(errors) => errors.0.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn the_section_is_read_with_its_defaults() {
        let config = load_str("", Path::new("t.yaml"), &|_| None).expect("loads");
        assert_eq!(config.server.outbound, crate::outbound::Policy::default());
        let text = "server:\n  outbound:\n    allow_private: false\n    allow_loopback: 'false'\n    allow: [10.1.0.0/16, '::1']\n    deny: [203.0.113.0/24]\n";
        let config = load_str(text, Path::new("t.yaml"), &|_| None).expect("loads");
        let cidr = |t: &str| crate::outbound::Cidr::parse(t).expect("range");
        assert_eq!(
            config.server.outbound,
            crate::outbound::Policy::new(
                false,
                false,
                vec![cidr("10.1.0.0/16"), cidr("::1")],
                vec![cidr("203.0.113.0/24")]
            )
        );
        assert_eq!(errors("server:\n  outbound:\n"), Vec::<String>::new());
    }

    #[test]
    fn bad_fields_are_reported_where_they_are() {
        assert_eq!(
            errors(
                "server:\n  outbound:\n    allow_privat: false\n    allow_loopback: sometimes\n    allow:\n      - 10.0.0.0/8\n      - 10.1.2.3/8\n      - example.com\n      - ''\n    deny: 10.0.0.0/8\n"
            ),
            [
                "t.yaml:3:5: server.outbound.allow_privat: unknown key `allow_privat` (did you mean `allow_private`?); expected one of: allow_private, allow_loopback, allow, deny",
                "t.yaml:4:21: server.outbound.allow_loopback: expected true or false, found a string",
                "t.yaml:7:9: server.outbound.allow[1]: has bits set after the /8 prefix; did you mean 10.0.0.0/8? `10.1.2.3/8`",
                "t.yaml:8:9: server.outbound.allow[2]: not an IP address or range such as 10.0.0.0/8, 192.0.2.7 or fd00::/8 `example.com`",
                "t.yaml:9:9: server.outbound.allow[3]: must not be empty",
                "t.yaml:10:11: server.outbound.deny: expected a list of strings, found a string",
            ]
        );
        assert_eq!(
            errors("server:\n  outbound: [a]\n"),
            ["t.yaml:2:13: server.outbound: expected a mapping, found a list"]
        );
    }

    #[test]
    fn urls_with_a_refused_literal_host_are_reported_at_the_url() {
        assert_eq!(
            errors(
                "mcpServers:\n  meta:\n    url: http://0xA9FEA9FE/latest?token=sk-secret\n  fine:\n    url: http://10.0.0.1/mcp\n  name:\n    url: http://metadata.google.internal/\n    headers: {A: b}\n\
                 models:\n  - name: m\n    type: openai\n    model_name: x\n    base_url: 'http://[fe80::1]:8000/v1'\n\
                 \x20 - name: ok\n    type: openai\n    model_name: x\n    base_url: http://192.168.1.5/v1\n"
            ),
            [
                "t.yaml:3:10: mcpServers.meta.url: address 169.254.169.254 is refused by server.outbound (a cloud metadata endpoint); list the address in server.outbound.allow to reach it anyway",
                "t.yaml:7:10: mcpServers.name.url: host `metadata.google.internal` is refused by server.outbound (a cloud metadata endpoint); a metadata endpoint's name is refused whatever server.outbound allows",
                "t.yaml:13:15: models[0].base_url: address fe80::1 is refused by server.outbound (link-local, in fe80::/10); list the address in server.outbound.allow to reach it anyway",
            ]
        );
        // The policy of the same file applies, wherever `server:` is written.
        assert_eq!(
            errors(
                "mcpServers:\n  db:\n    url: http://10.0.0.1/mcp\nserver:\n  outbound: {allow_private: false}\n"
            ),
            [
                "t.yaml:3:10: mcpServers.db.url: address 10.0.0.1 is refused by server.outbound (a private network, in 10.0.0.0/8, and allow_private is false); set server.outbound.allow_private: true, or list the address in server.outbound.allow",
            ]
        );
        assert_eq!(
            errors(
                "server:\n  outbound: {allow: ['169.254.169.254']}\nmcpServers:\n  meta:\n    url: http://169.254.169.254/\n"
            ),
            Vec::<String>::new()
        );
    }
}
