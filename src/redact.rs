//! Secrets out of what we keep and show: a [`Redactor`] replaces known secret shapes (provider
//! API keys, bearer tokens, our own keys, cloud and forge tokens, private key blocks, JWTs) and
//! the values of configured secrets (models' `api_key`, MCP servers' credential headers and
//! env) with a visible marker, in every string of a run event before the event reaches the
//! store, live subscribers, `/debug`, logs or OpenTelemetry.
//!
//! The model and the tools still get the real values, and so does the caller in the reply it
//! asked for (the streamed tokens, the `/v1` answer, the conversation's messages, which are
//! the next turn's context): the record of the run is what is redacted, so a run behaves the
//! same with redaction as without it.

use std::borrow::Cow;

use regex::{Regex, RegexBuilder};
use serde_json::Value;

use crate::config::Config;
use crate::config::model::TransportConfig;
use crate::domain::{ApprovalDecision, RunEvent, StepSummary};

/// What a redacted secret becomes: the kind, so a reader knows something was there and what.
fn marker(kind: &str) -> String {
    format!("[redacted: {kind}]")
}

/// Shapes of secrets worth recognising anywhere, with the kind their marker names.
const SHAPES: &[(&str, &str)] = &[
    (
        "private key",
        r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----",
    ),
    ("bearer token", r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]{8,}"),
    ("switchboard key", r"\bsbs?_[0-9a-f]{12}_[0-9a-f]{32,}\b"),
    (
        "api key",
        r"\bsk-(?:proj-|ant-|svcacct-)?[A-Za-z0-9_-]{16,}",
    ),
    (
        "github token",
        r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{40,})",
    ),
    ("slack token", r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),
    ("aws access key", r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    ("google api key", r"\bAIza[0-9A-Za-z_-]{35}"),
    (
        "jwt",
        r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",
    ),
];

/// A configured value shorter than this is not treated as a secret: redacting `"dev"` or `"1"`
/// everywhere would destroy the record without protecting anything.
const MIN_SECRET_LEN: usize = 8;

/// Header and variable names whose values are credentials (case-insensitive substrings).
const CREDENTIAL_NAMES: &[&str] = &[
    "authorization",
    "auth",
    "key",
    "token",
    "secret",
    "password",
    "passwd",
    "cookie",
    "credential",
    "session",
];

/// Replaces secrets in text; built once per config and shared by every run.
#[derive(Debug)]
pub struct Redactor {
    shapes: Vec<(&'static str, Regex)>,
    /// Configured secret values, longest first so a value containing another is taken whole.
    values: Option<Regex>,
}

impl Default for Redactor {
    fn default() -> Self {
        Self::new(Vec::new())
    }
}

impl Redactor {
    /// The known shapes plus `values` (configured secrets; short ones are ignored).
    pub fn new(values: Vec<String>) -> Self {
        let shapes = SHAPES
            .iter()
            .filter_map(|(kind, pattern)| {
                // The patterns are constants checked by a unit test; a bad one is skipped
                // rather than taking the server down.
                Some((*kind, RegexBuilder::new(pattern).build().ok()?))
            })
            .collect();
        let mut values: Vec<String> = values
            .into_iter()
            .filter(|v| v.chars().count() >= MIN_SECRET_LEN)
            .collect();
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        values.dedup();
        let values = (!values.is_empty())
            .then(|| {
                let alternation: Vec<String> = values.iter().map(|v| regex::escape(v)).collect();
                RegexBuilder::new(&alternation.join("|"))
                    .size_limit(64 << 20)
                    .build()
                    .ok()
            })
            .flatten();
        Self { shapes, values }
    }

    /// The redactor for `config`: its models' API keys, and the credential headers and env
    /// values of its MCP servers.
    pub fn for_config(config: &Config) -> Self {
        let mut values = Vec::new();
        for model in config.models.values() {
            if let Some(key) = &model.api_key {
                values.push(key.expose().to_owned());
            }
        }
        for server in config.mcp_servers.values() {
            let pairs = match &server.transport {
                TransportConfig::Stdio { env, .. } => env,
                TransportConfig::Sse { headers, .. }
                | TransportConfig::StreamableHttp { headers, .. } => headers,
            };
            for (name, value) in pairs {
                if is_credential_name(name) {
                    values.push(credential_part(value).to_owned());
                }
            }
        }
        Self::new(values)
    }

    /// `text` with every secret replaced by its marker (borrowed when there was none).
    pub fn text<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        if let Some(values) = &self.values
            && values.is_match(&out)
        {
            out = Cow::Owned(
                values
                    .replace_all(&out, marker("configured secret").as_str())
                    .into_owned(),
            );
        }
        for (kind, shape) in &self.shapes {
            if shape.is_match(&out) {
                out = Cow::Owned(shape.replace_all(&out, marker(kind).as_str()).into_owned());
            }
        }
        out
    }

    /// Redact every string in `value`, in place (object keys are names, not values: kept).
    pub fn value(&self, value: &mut Value) {
        match value {
            Value::String(text) => self.string(text),
            Value::Array(items) => items.iter_mut().for_each(|item| self.value(item)),
            Value::Object(fields) => fields.values_mut().for_each(|item| self.value(item)),
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }

    /// Redact `text` in place.
    pub fn string(&self, text: &mut String) {
        if let Cow::Owned(redacted) = self.text(text) {
            *text = redacted;
        }
    }

    /// `event` with every text it carries redacted: inputs, outputs, summaries, progress
    /// messages, errors, the user's message and the answer as recorded. Token deltas are the
    /// live reply to the caller and pass as they are.
    pub fn event(&self, mut event: RunEvent) -> RunEvent {
        match &mut event {
            RunEvent::RunStarted { user_message, .. } => self.string(user_message),
            RunEvent::StepStarted { input, summary, .. } => {
                self.value(input);
                if let Some(summary) = summary {
                    self.summary(summary);
                }
            }
            // The reply as it streams to the caller who asked is theirs, unaltered (as the
            // non-streamed answer is); the stored answer in `RunFinished` is redacted.
            RunEvent::TokenDelta { .. } => {}
            RunEvent::ToolProgress { progress, .. } => {
                if let Some(message) = &mut progress.message {
                    self.string(message);
                }
            }
            RunEvent::InputRequested { request, .. } => {
                self.string(&mut request.message);
                self.value(&mut request.schema);
            }
            RunEvent::InputAnswered { .. } | RunEvent::RunResumed { .. } => {}
            RunEvent::ApprovalRequested { request, .. } => {
                self.value(&mut request.arguments);
                self.string(&mut request.reason);
            }
            RunEvent::ApprovalDecided { decision, .. } => match decision {
                ApprovalDecision::Approved { arguments, .. } => self.value(arguments),
                ApprovalDecision::Denied {
                    reason: Some(reason),
                    ..
                } => self.string(reason),
                _ => {}
            },
            RunEvent::StepFinished {
                output,
                summary,
                error,
                ..
            } => {
                if let Some(output) = output {
                    self.value(output);
                }
                if let Some(summary) = summary {
                    self.summary(summary);
                }
                if let Some(error) = error {
                    self.string(error);
                }
            }
            RunEvent::RunFinished { answer, error, .. } => {
                if let Some(answer) = answer {
                    self.string(answer);
                }
                if let Some(error) = error {
                    self.string(error);
                }
            }
        }
        event
    }

    fn summary(&self, summary: &mut StepSummary) {
        match summary {
            StepSummary::ModelTurn { text, .. } => self.string(text),
            StepSummary::ToolResult { text: Some(text) } => self.string(text),
            _ => {}
        }
    }
}

fn is_credential_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    CREDENTIAL_NAMES.iter().any(|part| name.contains(part))
}

/// The secret part of a header value: `Bearer abc` → `abc` (the scheme is not secret, and the
/// bearer shape catches it with its scheme anyway).
fn credential_part(value: &str) -> &str {
    match value.split_once(' ') {
        Some((scheme, rest)) if !scheme.is_empty() && !rest.trim().is_empty() => rest.trim(),
        _ => value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shape_compiles() {
        for (kind, pattern) in SHAPES {
            assert!(Regex::new(pattern).is_ok(), "{kind}: {pattern}");
        }
        assert_eq!(Redactor::default().shapes.len(), SHAPES.len());
    }

    #[test]
    fn known_shapes_become_markers() {
        let redactor = Redactor::default();
        let cases = [
            (
                "key sk-proj-abcdefghijklmnopqrstuvwx1234 here",
                "key [redacted: api key] here",
            ),
            (
                "Authorization: Bearer eyJhbGciOi.abc-def_123",
                "Authorization: [redacted: bearer token]",
            ),
            (
                "use sb_0123456789ab_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                "use [redacted: switchboard key]",
            ),
            (
                "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
                "[redacted: github token]",
            ),
            ("AKIAIOSFODNN7EXAMPLE.", "[redacted: aws access key]."),
            (
                "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk\n-----END OPENSSH PRIVATE KEY-----",
                "[redacted: private key]",
            ),
            (
                "t=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NSJ9.c2lnbmF0dXJlMTIz",
                "t=[redacted: jwt]",
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(redactor.text(input), expected, "{input}");
        }
    }

    #[test]
    fn ordinary_text_is_untouched_and_borrowed() {
        let redactor = Redactor::new(vec!["short".into()]);
        for text in [
            "the sky is blue",
            "sk-short",
            "a bearer of news",
            "short words stay",
        ] {
            assert!(
                matches!(redactor.text(text), Cow::Borrowed(t) if t == text),
                "{text}"
            );
        }
    }

    #[test]
    fn configured_values_are_redacted_longest_first() {
        let redactor = Redactor::new(vec!["hunter2hunter2".into(), "hunter2hunter2-extra".into()]);
        assert_eq!(
            redactor.text("pw=hunter2hunter2-extra; old=hunter2hunter2"),
            "pw=[redacted: configured secret]; old=[redacted: configured secret]"
        );
    }

    #[test]
    fn values_are_redacted_everywhere_in_json_but_keys_stay() {
        let redactor = Redactor::new(vec!["s3cr3t-value-42".into()]);
        let mut value = serde_json::json!({
            "token": "s3cr3t-value-42",
            "nested": [{"note": "has s3cr3t-value-42 inside"}, 7, null],
        });
        redactor.value(&mut value);
        assert_eq!(
            value,
            serde_json::json!({
                "token": "[redacted: configured secret]",
                "nested": [{"note": "has [redacted: configured secret] inside"}, 7, null],
            })
        );
    }

    #[test]
    fn credential_headers_and_env_are_found_by_name() {
        assert!(is_credential_name("Authorization"));
        assert!(is_credential_name("X-Api-Key"));
        assert!(is_credential_name("GITHUB_PERSONAL_ACCESS_TOKEN"));
        assert!(!is_credential_name("Accept"));
        assert!(!is_credential_name("PATH"));
        assert_eq!(credential_part("Bearer abc.def"), "abc.def");
        assert_eq!(credential_part("rawvalue"), "rawvalue");
    }
}
