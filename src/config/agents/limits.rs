//! An agent's `limits:`: the budgets that end its runs, each optional with a default, and the
//! defaults themselves (which plain model chat uses too).

use super::super::error::child_path;
use super::super::fields::{Ctx, Fields};
use super::super::model::{AgentLimits, AgentMode};
use super::super::specs::{Millis, ordered};
use super::super::yaml::Node;

const LIMIT_KEYS: &[&str] = &[
    "max_steps",
    "max_tool_calls",
    "max_parallel_tools",
    "tool_timeout_ms",
    "run_timeout_ms",
    "max_repeats",
    "max_replans",
];

const MAX_STEPS: Count = Count {
    key: "max_steps",
    min: 1,
    max: 200,
    default: 16,
};
const MAX_TOOL_CALLS: Count = Count {
    key: "max_tool_calls",
    min: 0,
    max: 1000,
    default: 32,
};
const MAX_PARALLEL_TOOLS: Count = Count {
    key: "max_parallel_tools",
    min: 1,
    max: 64,
    default: 4,
};
const MAX_REPEATS: Count = Count {
    key: "max_repeats",
    min: 1,
    max: 1000,
    default: 3,
};
const MAX_REPLANS: Count = Count {
    key: "max_replans",
    min: 0,
    max: 10,
    default: 2,
};
const TOOL_TIMEOUT: Millis = Millis::timeout("tool_timeout_ms", 60_000);
const RUN_TIMEOUT: Millis = Millis::timeout("run_timeout_ms", 300_000);

impl Default for AgentLimits {
    fn default() -> Self {
        AgentLimits {
            max_steps: MAX_STEPS.default,
            max_tool_calls: MAX_TOOL_CALLS.default,
            max_parallel_tools: MAX_PARALLEL_TOOLS.default,
            tool_timeout: TOOL_TIMEOUT.default_duration(),
            run_timeout: RUN_TIMEOUT.default_duration(),
            max_repeats: MAX_REPEATS.default,
            max_replans: MAX_REPLANS.default,
        }
    }
}

/// A count limit: its key, accepted range and default.
#[derive(Clone, Copy)]
struct Count {
    key: &'static str,
    min: u32,
    max: u32,
    default: u32,
}

/// `limits:`, every key optional. `mode` is `None` when it was invalid (then `max_replans`
/// is not checked against it).
pub(super) fn limits(
    ctx: &mut Ctx<'_>,
    node: Option<&Node>,
    mode: Option<AgentMode>,
) -> Option<AgentLimits> {
    let Some(node) = node else {
        return Some(AgentLimits::default());
    };
    let fields = ctx.fields(node, "limits", LIMIT_KEYS)?;
    let max_steps = count(ctx, &fields, MAX_STEPS);
    let max_tool_calls = count(ctx, &fields, MAX_TOOL_CALLS);
    let max_parallel_tools = count(ctx, &fields, MAX_PARALLEL_TOOLS);
    let max_repeats = count(ctx, &fields, MAX_REPEATS);
    let max_replans = match (fields.entry(MAX_REPLANS.key), mode) {
        (Some(entry), Some(AgentMode::React)) => {
            ctx.error(
                entry.key.pos,
                &child_path("limits", MAX_REPLANS.key),
                "`max_replans` only applies to `mode: plan`",
            );
            None
        }
        _ => count(ctx, &fields, MAX_REPLANS),
    };
    // One tool call must fit in the run: an absent tool timeout is lowered to fit.
    let (tool_timeout, run_timeout) = ordered(ctx, &fields, "limits", TOOL_TIMEOUT, RUN_TIMEOUT)?;
    Some(AgentLimits {
        max_steps: max_steps?,
        max_tool_calls: max_tool_calls?,
        max_parallel_tools: max_parallel_tools?,
        tool_timeout,
        run_timeout,
        max_repeats: max_repeats?,
        max_replans: max_replans?,
    })
}

/// A count limit, its default when absent.
fn count(ctx: &mut Ctx<'_>, fields: &Fields<'_>, spec: Count) -> Option<u32> {
    let Some(node) = fields.get(spec.key) else {
        return Some(spec.default);
    };
    let path = child_path("limits", spec.key);
    let n = ctx.integer(node, &path, u64::from(spec.min), u64::from(spec.max))?;
    u32::try_from(n).ok()
}
