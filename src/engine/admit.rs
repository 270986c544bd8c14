//! Deciding, before anything runs, what happens to each tool call of one ReAct model turn.
//!
//! A model turn is untrusted input: its calls may share an id, carry megabytes of arguments, or
//! outnumber what the run's budget allows. Every call keeps its place in the turn (and gets a
//! tool message, which the providers require), but only calls that pass run:
//!
//! - **Ids are made unique.** The providers pair each tool result with its call by id, so two
//!   calls with one id would make the next request ambiguous (or refused). A call whose id is
//!   empty or already used in the turn gets a fresh one (`<id>_2`, `call_3`, …) in the history
//!   we send back. If it is an exact repeat of an earlier call of the turn (same id, tool and
//!   arguments), it is a duplicated emission, not a second request: it is not run, and its tool
//!   message points at the call that ran, so a side effect never happens twice.
//! - **Arguments are capped** (`tools.max_argument_bytes`): a call whose JSON text is larger is
//!   refused with the cap and its size, and its arguments are left out of the history.
//! - **The tool-call budget drops, it does not stop.** When the turn asks for more calls than
//!   `max_tool_calls` has left, the first ones that fit run and the rest are dropped with a
//!   message saying so; the run goes on and the model answers from what it got. Only a model
//!   that asks for more after the budget is used up ends the run `budget_exhausted`.

use std::collections::HashSet;

use serde_json::{Value, json};

use super::tools::ToolFailure;
use crate::domain::ToolCall;

/// What happens to one call of the turn.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Verdict {
    /// Run it.
    Run,
    /// Do not run it; this failure is its outcome (and its observation).
    Refuse(ToolFailure),
}

/// One call of the turn, with the id the history uses and what happens to it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Admitted {
    /// The call as it goes back into the history: unique id; arguments emptied when too large.
    pub call: ToolCall,
    /// The step input recorded for the call (its arguments, or what stood in for them).
    pub input: Value,
    pub verdict: Verdict,
}

/// Decide every call of one turn, in order. `remaining` is what the tool-call budget has left;
/// `budget` is the whole budget (for the message).
pub(crate) fn admit(
    calls: &[ToolCall],
    max_argument_bytes: usize,
    remaining: u32,
    budget: u32,
) -> Vec<Admitted> {
    let ids = unique_ids(calls);
    let mut admitted: Vec<Admitted> = Vec::with_capacity(calls.len());
    for (i, call) in calls.iter().enumerate() {
        let mut unique = call.clone();
        unique.id = ids[i].clone();
        let repeat_of = calls[..i].iter().position(|earlier| {
            earlier.id == call.id
                && earlier.name == call.name
                && canonical_arguments(&earlier.arguments) == canonical_arguments(&call.arguments)
        });
        let bytes = call.arguments.len();
        let (input, verdict) = if bytes > max_argument_bytes {
            unique.arguments = "{}".to_owned();
            (
                json!({ "arguments_omitted": { "bytes": bytes, "cap": max_argument_bytes } }),
                Verdict::Refuse(ToolFailure::ArgumentsTooLarge {
                    bytes,
                    limit: max_argument_bytes,
                }),
            )
        } else if let Some(first) = repeat_of {
            (
                input_of(&call.arguments),
                Verdict::Refuse(ToolFailure::Duplicate {
                    of: ids[first].clone(),
                }),
            )
        } else {
            (input_of(&call.arguments), Verdict::Run)
        };
        admitted.push(Admitted {
            call: unique,
            input,
            verdict,
        });
    }
    let asked = admitted
        .iter()
        .filter(|a| a.verdict == Verdict::Run)
        .count();
    let fits = remaining as usize;
    if asked > fits && fits > 0 {
        let message = format!(
            "this turn asked for {asked} tool calls, but the run's budget of {budget} tool calls \
             had only {fits} left, so the first {fits} ran and the other {} were dropped. No tool \
             calls are left: answer with the results you have, and say what is missing",
            asked - fits
        );
        for dropped in admitted
            .iter_mut()
            .filter(|a| a.verdict == Verdict::Run)
            .skip(fits)
        {
            dropped.verdict = Verdict::Refuse(ToolFailure::Dropped {
                message: message.clone(),
            });
        }
    }
    admitted
}

/// The calls that will run, in order.
pub(crate) fn runnable(admitted: &[Admitted]) -> usize {
    admitted
        .iter()
        .filter(|a| a.verdict == Verdict::Run)
        .count()
}

/// One id per call, unique within the turn: a call keeps its own id unless it is empty or was
/// taken by an earlier call; then `<id>_<n>` (or `call_<n>`) with the first `n` that no call of
/// the turn uses.
fn unique_ids(calls: &[ToolCall]) -> Vec<String> {
    let given: HashSet<&str> = calls.iter().map(|c| c.id.as_str()).collect();
    let mut used: HashSet<String> = HashSet::with_capacity(calls.len());
    calls
        .iter()
        .enumerate()
        .map(|(i, call)| {
            let id = call.id.trim();
            if !id.is_empty() && !used.contains(id) {
                used.insert(id.to_owned());
                return id.to_owned();
            }
            let base = if id.is_empty() { "call" } else { id };
            let fresh = (2u64..)
                .map(|n| format!("{base}_{n}"))
                .find(|candidate| !used.contains(candidate) && !given.contains(candidate.as_str()))
                .unwrap_or_else(|| format!("{base}_{i}"));
            used.insert(fresh.clone());
            fresh
        })
        .collect()
}

/// A call's arguments as a step input: the JSON, or the raw text when it is not JSON.
pub(crate) fn input_of(arguments: &str) -> Value {
    serde_json::from_str::<Value>(arguments)
        .unwrap_or_else(|_| json!({ "raw_arguments": arguments }))
}

/// JSON arguments with keys sorted, so `{"a":1,"b":2}` and `{"b":2,"a":1}` count as the same call.
pub(crate) fn canonical_arguments(arguments: &str) -> String {
    serde_json::from_str::<Value>(arguments)
        .map_or_else(|_| arguments.to_owned(), |v| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(id: &str, name: &str, arguments: &str) -> ToolCall {
        ToolCall {
            id: id.to_owned(),
            name: name.to_owned(),
            arguments: arguments.to_owned(),
        }
    }

    #[test]
    fn ids_are_unique_and_kept_when_they_can_be() {
        let calls = [
            call("a", "t", "{}"),
            call("a", "t", "{\"x\":1}"),
            call("", "t", "{\"x\":2}"),
            call("a_3", "t", "{\"x\":3}"),
            call("", "t", "{\"x\":4}"),
        ];
        let ids = unique_ids(&calls);
        assert_eq!(ids[0], "a");
        assert_eq!(ids[3], "a_3", "a given id is never taken from its call");
        let distinct: HashSet<&String> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len(), "{ids:?}");
        assert!(ids.iter().all(|id| !id.is_empty()), "{ids:?}");
    }

    #[test]
    fn an_exact_repeat_is_refused_and_a_different_call_with_the_same_id_runs() {
        let admitted = admit(
            &[
                call("a", "t", "{\"x\":1,\"y\":2}"),
                call("a", "t", "{\"y\":2,\"x\":1}"),
                call("a", "t", "{\"x\":9}"),
            ],
            1024,
            10,
            10,
        );
        assert_eq!(admitted[0].verdict, Verdict::Run);
        assert_eq!(
            admitted[1].verdict,
            Verdict::Refuse(ToolFailure::Duplicate { of: "a".into() })
        );
        assert_eq!(admitted[2].verdict, Verdict::Run);
        assert_ne!(admitted[2].call.id, "a");
    }

    #[test]
    fn the_budget_drops_what_does_not_fit_and_oversized_calls_do_not_count() {
        let big = format!("{{\"x\":\"{}\"}}", "y".repeat(100));
        let calls: Vec<ToolCall> = std::iter::once(call("big", "t", &big))
            .chain((0..5).map(|i| call(&format!("c{i}"), "t", &format!("{{\"i\":{i}}}"))))
            .collect();
        let admitted = admit(&calls, 50, 3, 8);
        assert!(matches!(
            admitted[0].verdict,
            Verdict::Refuse(ToolFailure::ArgumentsTooLarge { bytes, limit: 50 }) if bytes == big.len()
        ));
        assert_eq!(admitted[0].call.arguments, "{}");
        assert_eq!(runnable(&admitted), 3);
        assert!(admitted[1..4].iter().all(|a| a.verdict == Verdict::Run));
        for dropped in &admitted[4..] {
            let Verdict::Refuse(ToolFailure::Dropped { message }) = &dropped.verdict else {
                panic!("{dropped:?}");
            };
            assert!(message.contains("budget of 8") && message.contains("only 3 left"));
        }
    }
}
