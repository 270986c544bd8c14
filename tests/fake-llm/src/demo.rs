//! The offline demo ([`super::Fallback::Demo`]): a deterministic, obviously fake "model" that
//! exercises the tool loop without any real model.
//!
//! - The last message is the user's and tools are offered: an arithmetic expression in the text
//!   and a tool whose name ends in `evaluate` give a call `{"expression": "<it>"}`; the word
//!   "time" and a tool ending in `now` give a call `{}`; both give both calls in one turn.
//! - The conversation ends with tool results: "(fake model) Tool results: <them, abbreviated>".
//! - Anything else: "(fake model) You said: <the last message's text>".
//!
//! The protocol modules read the wire shapes into a [`Turn`]; the decision here is pure.

use serde_json::{Value, json};

use super::{ChatRequest, FakeToolCall, Provider, Reply, anthropic, openai};

/// How the conversation ends, independent of the protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Turn {
    /// The trailing tool results, in order.
    ToolResults(Vec<String>),
    /// The last message's text, and whether the user sent it.
    Said { by_user: bool, text: String },
}

/// Every demo text starts with this, so nobody mistakes it for a model.
const LABEL: &str = "(fake model)";
/// Characters kept of each tool result in the summary.
const RESULT_PREVIEW: usize = 80;

/// The demo's answer to `request`.
pub(super) fn reply(request: &ChatRequest) -> Reply {
    let (turn, tools, id_prefix) = match request.provider {
        Provider::OpenAi => (
            openai::last_turn(&request.body),
            openai::tool_names(&request.body),
            "call_fake",
        ),
        Provider::Anthropic => (
            anthropic::last_turn(&request.body),
            anthropic::tool_names(&request.body),
            "toolu_fake",
        ),
    };
    match decide(&turn, &tools) {
        Decision::Say(text) => Reply::text(text),
        Decision::Call(calls) => Reply::ToolCalls {
            calls: calls
                .into_iter()
                .enumerate()
                .map(|(i, (name, arguments))| {
                    let id = format!("{id_prefix}_{}_{i}", request.serial);
                    FakeToolCall::new(id, name, arguments)
                })
                .collect(),
            text: None,
        },
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Decision {
    Say(String),
    /// Tool name and arguments of each call, made in parallel.
    Call(Vec<(String, Value)>),
}

fn decide(turn: &Turn, tools: &[String]) -> Decision {
    let text = match turn {
        Turn::ToolResults(results) => {
            let results: Vec<String> = results.iter().map(|r| abbreviate(r)).collect();
            return Decision::Say(format!("{LABEL} Tool results: {}", results.join("; ")));
        }
        Turn::Said { by_user, text } => {
            if !by_user || tools.is_empty() {
                return Decision::Say(format!("{LABEL} You said: {text}"));
            }
            text
        }
    };
    let tool = |suffix: &str| tools.iter().find(|name| name.ends_with(suffix));
    let mut calls = Vec::new();
    if let Some(expression) = arithmetic(text)
        && let Some(name) = tool("evaluate")
    {
        calls.push((name.clone(), json!({ "expression": expression })));
    }
    if mentions_time(text)
        && let Some(name) = tool("now")
    {
        calls.push((name.clone(), json!({})));
    }
    if calls.is_empty() {
        Decision::Say(format!("{LABEL} You said: {text}"))
    } else {
        Decision::Call(calls)
    }
}

/// The first arithmetic expression in `text`: digits, `.`, spaces, `+ - * / % ^` and
/// parentheses, with at least two numbers and an operator.
fn arithmetic(text: &str) -> Option<String> {
    let allowed = |c: char| c.is_ascii_digit() || " .+-*/%^()".contains(c);
    text.split(|c: char| !allowed(c)).find_map(|run| {
        let run = run
            .trim_start_matches(|c: char| !(c.is_ascii_digit() || c == '(' || c == '-'))
            .trim_end_matches(|c: char| !(c.is_ascii_digit() || c == ')'));
        let numbers = run
            .split(|c: char| !(c.is_ascii_digit() || c == '.'))
            .filter(|n| n.chars().any(|c| c.is_ascii_digit()))
            .count();
        let has_operator = run.chars().any(|c| "+-*/%^".contains(c));
        (numbers >= 2 && has_operator).then(|| run.to_owned())
    })
}

/// Whether `text` has the word "time".
fn mentions_time(text: &str) -> bool {
    text.split(|c: char| !c.is_alphanumeric())
        .any(|word| word.eq_ignore_ascii_case("time"))
}

fn abbreviate(text: &str) -> String {
    let text = text.trim();
    if text.chars().count() <= RESULT_PREVIEW {
        return text.to_owned();
    }
    let kept: String = text.chars().take(RESULT_PREVIEW).collect();
    format!("{kept}…")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check_expression(text: &str, expected: Option<&str>) {
        assert_eq!(arithmetic(text).as_deref(), expected, "in {text:?}");
    }

    #[test]
    fn finds_arithmetic_expressions() {
        check_expression("What is 2 + 3 * 4?", Some("2 + 3 * 4"));
        check_expression("compute (1.5+2)*3, please", Some("(1.5+2)*3"));
        check_expression("what's 10/4.", Some("10/4"));
        check_expression("-3 + 5", Some("-3 + 5"));
        check_expression("version 1.2.3 is out", None);
        check_expression("a well-known fact", None);
        check_expression("I have 3 apples", None);
        check_expression("", None);
    }

    #[track_caller]
    fn check(turn: Turn, tools: &[&str], expected: Decision) {
        let tools: Vec<String> = tools.iter().map(|t| (*t).to_owned()).collect();
        assert_eq!(decide(&turn, &tools), expected);
    }

    fn user(text: &str) -> Turn {
        Turn::Said {
            by_user: true,
            text: text.to_owned(),
        }
    }

    #[test]
    fn decides_like_the_demo_promises() {
        let tools = ["calc__evaluate", "clock__now", "files__read"];
        check(
            user("what is 6*7?"),
            &tools,
            Decision::Call(vec![(
                "calc__evaluate".to_owned(),
                json!({ "expression": "6*7" }),
            )]),
        );
        check(
            user("What TIME is it?"),
            &tools,
            Decision::Call(vec![("clock__now".to_owned(), json!({}))]),
        );
        check(
            user("what time is it, and what is 2+2"),
            &tools,
            Decision::Call(vec![
                ("calc__evaluate".to_owned(), json!({ "expression": "2+2" })),
                ("clock__now".to_owned(), json!({})),
            ]),
        );
        // The word, not a substring; and no matching tool means no call.
        check(
            user("sometimes"),
            &tools,
            Decision::Say("(fake model) You said: sometimes".to_owned()),
        );
        check(
            user("2+2"),
            &["clock__now"],
            Decision::Say("(fake model) You said: 2+2".to_owned()),
        );
        check(
            user("2+2"),
            &[],
            Decision::Say("(fake model) You said: 2+2".to_owned()),
        );
        check(
            Turn::Said {
                by_user: false,
                text: "2+2".to_owned(),
            },
            &tools,
            Decision::Say("(fake model) You said: 2+2".to_owned()),
        );
        let long = "y".repeat(200);
        check(
            Turn::ToolResults(vec!["42".to_owned(), long]),
            &tools,
            Decision::Say(format!(
                "(fake model) Tool results: 42; {}…",
                "y".repeat(80)
            )),
        );
    }
}
