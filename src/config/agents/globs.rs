//! An agent's `tools`: a list of globs over exposed tool names, each checked to compile and to
//! be able to match a name, then compiled once into the [`ToolGlobs`] runs match against.

use globset::Glob;

use super::super::error::{item_path, shown};
use super::super::fields::Ctx;
use super::super::model::ToolGlobs;
use super::super::yaml::{Node, Pos, Value};

/// `tools`: a list of globs (one glob alone is accepted too); each must compile and be able to
/// match an exposed tool name.
pub(super) fn tools(ctx: &mut Ctx<'_>, node: &Node) -> Option<ToolGlobs> {
    globs(ctx, node, "tools", Names::Tools)
}

/// What a glob list matches, which decides what a glob that can never match looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::config) enum Names {
    /// Exposed tool names (`server__tool`, only `[A-Za-z0-9_-]`).
    Tools,
    /// Configured model or agent names (any of their alphabets).
    Other,
}

/// A list of globs at `path` (one glob alone is accepted too); each must compile and, for tool
/// names, be able to match an exposed tool name. Shared by agents' `tools` and roles' globs.
pub(in crate::config) fn globs(
    ctx: &mut Ctx<'_>,
    node: &Node,
    path: &str,
    names: Names,
) -> Option<ToolGlobs> {
    let (patterns, items): (Vec<String>, Vec<(Option<Pos>, String)>) = match &node.value {
        Value::Str(_) | Value::Int(..) | Value::Float(_) | Value::Bool(..) => {
            let pattern = ctx.string(node, path)?;
            (vec![pattern], vec![(node.pos, path.to_owned())])
        }
        Value::Seq(items) => {
            let patterns = ctx.string_list(node, path)?;
            let places = items
                .iter()
                .enumerate()
                .map(|(i, item)| (item.pos, item_path(path, i)))
                .collect();
            (patterns, places)
        }
        Value::Null => return Some(ToolGlobs::default()),
        _ => {
            let what = match names {
                Names::Tools => "a list of tool name globs such as `calc__*`",
                Names::Other => "a list of name globs such as `gpt-*`",
            };
            ctx.expected(node, path, what);
            return None;
        }
    };
    let mut ok = true;
    for (pattern, (pos, item)) in patterns.iter().zip(&items) {
        let checked = match names {
            Names::Tools => tool_glob(pattern).map(drop),
            Names::Other => name_glob(pattern),
        };
        if let Err(problem) = checked {
            ctx.error(*pos, item, problem);
            ok = false;
        }
    }
    if !ok {
        return None;
    }
    match ToolGlobs::compile(patterns) {
        Ok(globs) => Some(globs),
        Err(e) => {
            let message = format!("the globs cannot be combined: {}", e.kind());
            ctx.error(node.pos, path, message);
            None
        }
    }
}

/// One glob over model or agent names, or why it is unusable.
fn name_glob(pattern: &str) -> Result<(), String> {
    if pattern.trim().is_empty() {
        return Err("must not be empty; `*` matches every name".to_owned());
    }
    Glob::new(pattern)
        .map(drop)
        .map_err(|e| format!("invalid glob{}: {}", shown(pattern), e.kind()))
}

/// One `tools` glob, compiled as [`ToolGlobs::compile`] compiles it, or why it is unusable.
fn tool_glob(pattern: &str) -> Result<Glob, String> {
    if pattern.trim().is_empty() {
        return Err("must not be empty; `*` offers every tool".to_owned());
    }
    let glob =
        Glob::new(pattern).map_err(|e| format!("invalid glob{}: {}", shown(pattern), e.kind()))?;
    if let Some(fixed) = never_matching(pattern) {
        let hint = fixed
            .filter(|f| Glob::new(f).is_ok())
            .map(|f| format!(" (did you mean `{f}`?)"))
            .unwrap_or_default();
        return Err(format!(
            "glob{} can never match a tool{hint}; exposed tool names are `server__tool` with only A-Z, a-z, 0-9, `_` and `-`",
            shown(pattern)
        ));
    }
    Ok(glob)
}

/// When `pattern` needs, outside a `[...]` class, a character that no exposed name contains
/// (`files.read_file`, `calc/*`): `Some` of the pattern with that character run replaced by the
/// `__` separator, when there is exactly one such run.
pub(super) fn never_matching(pattern: &str) -> Option<Option<String>> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-');
    let mut fixed = String::new();
    let mut runs = 0;
    let mut in_bad_run = false;
    let mut in_class = false;
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        let bad = match c {
            _ if in_class => {
                in_class = c != ']';
                false
            }
            '[' => {
                in_class = true;
                false
            }
            '*' | '?' | '{' | '}' | ',' => false,
            '\\' => match chars.next() {
                Some(next) if allowed(next) => {
                    fixed.push(c);
                    fixed.push(next);
                    in_bad_run = false;
                    continue;
                }
                _ => true,
            },
            _ => !allowed(c),
        };
        if bad {
            if !in_bad_run {
                runs += 1;
                fixed.push_str("__");
            }
            in_bad_run = true;
        } else {
            fixed.push(c);
            in_bad_run = false;
        }
    }
    (runs > 0).then(|| (runs == 1).then_some(fixed))
}
