//! Which tool calls a run's answer may be missing: the bookkeeping behind `partial`.
//!
//! The rule, the same in both modes: a run that answered is `partial` when some tool call
//! failed (an error result, a timeout, a server that could not run it, a refusal, arguments
//! over the cap) or did not run (a plan step skipped because a step it depends on failed, a call
//! dropped by the tool-call budget), and no call of the same tool in a **later** round (a later
//! ReAct turn, a later plan) succeeded. A later success is taken as the model having made the
//! failure good (it fixed the arguments, retried, re-planned); a success in the same round is
//! not, since it was another call asked for beside the failed one. Two outcomes never count:
//! a call to a tool that does not exist (the model is told what exists; there is no result to
//! miss) and an exact duplicate of a call that ran.

use std::collections::{BTreeMap, BTreeSet};

use super::tools::{ToolFailure, ToolOutput};

/// How one call ended, as far as the answer is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum CallEnd {
    Succeeded,
    Failed,
    NotRun,
    /// Neither a success nor a gap (an unknown tool, a duplicate).
    Neutral,
}

impl CallEnd {
    /// How a call with this outcome ended.
    pub(crate) fn of(outcome: &Result<ToolOutput, ToolFailure>) -> Self {
        match outcome {
            Ok(output) if output.is_error => CallEnd::Failed,
            Ok(_) => CallEnd::Succeeded,
            Err(ToolFailure::UnknownTool { .. } | ToolFailure::Duplicate { .. }) => {
                CallEnd::Neutral
            }
            Err(ToolFailure::Dropped { .. }) => CallEnd::NotRun,
            Err(_) => CallEnd::Failed,
        }
    }
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Gap {
    failed: usize,
    not_run: usize,
}

/// The tools whose failed or unrun calls no later success made good, with counts.
#[derive(Debug, Default, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Gaps {
    open: BTreeMap<String, Gap>,
}

/// Most tools the summary names.
const SHOWN: usize = 10;

impl Gaps {
    /// Fold in one round (a ReAct turn's calls, or one executed plan): its successes make good
    /// the earlier gaps of their tools, then its own failures are added.
    pub(crate) fn round<'a>(&mut self, calls: impl IntoIterator<Item = (&'a str, CallEnd)>) {
        let mut succeeded = BTreeSet::new();
        let mut new: BTreeMap<&str, Gap> = BTreeMap::new();
        for (tool, end) in calls {
            match end {
                CallEnd::Succeeded => {
                    succeeded.insert(tool);
                }
                CallEnd::Failed => new.entry(tool).or_default().failed += 1,
                CallEnd::NotRun => new.entry(tool).or_default().not_run += 1,
                CallEnd::Neutral => {}
            }
        }
        for tool in succeeded {
            self.open.remove(tool);
        }
        for (tool, gap) in new {
            let open = self.open.entry(tool.to_owned()).or_default();
            open.failed += gap.failed;
            open.not_run += gap.not_run;
        }
    }

    /// Why the run is `partial`, or `None` when nothing is missing: which tools, how many
    /// calls of each failed or did not run.
    pub(crate) fn summary(&self) -> Option<String> {
        if self.open.is_empty() {
            return None;
        }
        let mut parts: Vec<String> = self
            .open
            .iter()
            .take(SHOWN)
            .map(|(tool, gap)| {
                let counts: Vec<String> = [(gap.failed, "failed"), (gap.not_run, "not run")]
                    .into_iter()
                    .filter(|(n, _)| *n > 0)
                    .map(|(n, what)| format!("{n} {what}"))
                    .collect();
                format!("`{tool}` ({})", counts.join(", "))
            })
            .collect();
        if self.open.len() > SHOWN {
            parts.push(format!("and {} more tools", self.open.len() - SHOWN));
        }
        Some(format!(
            "some tool calls failed or did not run, and no later call of the same tool \
             succeeded: {}",
            parts.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_later_success_makes_a_failure_good_and_a_success_beside_it_does_not() {
        let mut gaps = Gaps::default();
        gaps.round([("a", CallEnd::Failed), ("a", CallEnd::Succeeded)]);
        assert!(gaps.summary().is_some(), "same round: not made good");
        gaps.round([("a", CallEnd::Succeeded)]);
        assert_eq!(gaps.summary(), None);

        gaps.round([
            ("b", CallEnd::NotRun),
            ("b", CallEnd::NotRun),
            ("c", CallEnd::Failed),
            ("x", CallEnd::Neutral),
        ]);
        let summary = gaps.summary().expect("gaps");
        assert!(
            summary.contains("`b` (2 not run)") && summary.contains("`c` (1 failed)"),
            "{summary}"
        );
        assert!(!summary.contains("`x`"), "{summary}");
    }
}
