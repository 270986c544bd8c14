//! `${VAR}` / `${VAR:-default}` expansion of string values, after YAML parsing.
//!
//! Expanding parsed scalars (not the raw file) means an environment value can never change the
//! document's structure. `$$` is a literal `$`; a `$` followed by anything else is kept as is.
//! Defaults may themselves contain references (`${A:-${B:-x}}`), as in shells.

use std::iter::Peekable;
use std::str::Chars;

/// Why a value could not be expanded; messages name variables, never values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum InterpolateError {
    /// `${NAME}` without default, and `NAME` is not set.
    #[error("environment variable `{0}` is not set (give a default with `${{{0}:-default}}`)")]
    Unset(String),
    /// `${` without its `}`.
    #[error("unclosed `${{` (write `$$` for a literal `$`)")]
    Unclosed,
    /// `${` followed by something that is not `NAME}` or `NAME:-`.
    #[error(
        "invalid variable reference; expected `${{NAME}}` or `${{NAME:-default}}` (write `$$` for a literal `$`)"
    )]
    BadReference,
    /// Defaults nested beyond [`MAX_NESTING`].
    #[error("variable defaults nest too deeply")]
    TooDeep,
}

/// Nested defaults beyond this are refused (keeps recursion bounded on hostile input).
const MAX_NESTING: usize = 8;

/// Expands every reference in `text` using `lookup`, or lists every problem found.
pub(super) fn interpolate(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, Vec<InterpolateError>> {
    if !text.contains('$') {
        return Ok(text.to_owned());
    }
    let mut unset = Vec::new();
    let mut chars = text.chars().peekable();
    match expand(&mut chars, lookup, 0, &mut unset) {
        Ok(out) if unset.is_empty() => Ok(out),
        Ok(_) => Err(unset),
        Err(e) => Err(vec![e]),
    }
}

/// Expands until the end of input (depth 0) or the `}` closing a default (depth > 0), which
/// is consumed. Unset variables are pushed to `unset` so all of them are reported.
fn expand(
    chars: &mut Peekable<Chars<'_>>,
    lookup: &dyn Fn(&str) -> Option<String>,
    depth: usize,
    unset: &mut Vec<InterpolateError>,
) -> Result<String, InterpolateError> {
    let mut out = String::new();
    loop {
        match chars.next() {
            None if depth == 0 => return Ok(out),
            None => return Err(InterpolateError::Unclosed),
            Some('}') if depth > 0 => return Ok(out),
            Some('$') => match chars.peek() {
                Some('$') => {
                    chars.next();
                    out.push('$');
                }
                Some('{') => {
                    chars.next();
                    out.push_str(&reference(chars, lookup, depth, unset)?);
                }
                _ => out.push('$'),
            },
            Some(c) => out.push(c),
        }
    }
}

/// Expands one reference; `chars` is just past `${`.
fn reference(
    chars: &mut Peekable<Chars<'_>>,
    lookup: &dyn Fn(&str) -> Option<String>,
    depth: usize,
    unset: &mut Vec<InterpolateError>,
) -> Result<String, InterpolateError> {
    let mut name = String::new();
    while let Some(&c) = chars.peek() {
        if c.is_ascii_alphanumeric() || c == '_' {
            name.push(c);
            chars.next();
        } else {
            break;
        }
    }
    let valid_name = name.chars().next().is_some_and(|c| !c.is_ascii_digit());
    match chars.next() {
        None => Err(InterpolateError::Unclosed),
        Some(_) if !valid_name => Err(InterpolateError::BadReference),
        Some('}') => Ok(lookup(&name).unwrap_or_else(|| {
            unset.push(InterpolateError::Unset(name));
            String::new()
        })),
        Some(':') if chars.peek() == Some(&'-') => {
            chars.next();
            if depth >= MAX_NESTING {
                return Err(InterpolateError::TooDeep);
            }
            // Parse the default even when unused, to find its end; its unset variables only
            // matter when it is used.
            let mut default_unset = Vec::new();
            let default = expand(chars, lookup, depth + 1, &mut default_unset)?;
            match lookup(&name) {
                Some(value) if !value.is_empty() => Ok(value),
                _ => {
                    unset.append(&mut default_unset);
                    Ok(default)
                }
            }
        }
        Some(_) => Err(InterpolateError::BadReference),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOME" => Some("/home/me".to_owned()),
            "EMPTY" => Some(String::new()),
            "PORT" => Some("3000".to_owned()),
            _ => None,
        }
    }

    #[track_caller]
    fn check(text: &str, expected: Result<&str, Vec<InterpolateError>>) {
        assert_eq!(
            interpolate(text, &env),
            expected.map(str::to_owned),
            "{text:?}"
        );
    }

    #[test]
    fn plain_text_is_unchanged() {
        check("no dollars here", Ok("no dollars here"));
        check("", Ok(""));
        check("cost: $5 and $", Ok("cost: $5 and $"));
    }

    #[test]
    fn variables_and_defaults() {
        check("${HOME}/data", Ok("/home/me/data"));
        check(
            "http://localhost:${PORT}/mcp",
            Ok("http://localhost:3000/mcp"),
        );
        check("${MISSING:-5000}", Ok("5000"));
        check("${PORT:-5000}", Ok("3000"));
        check("${EMPTY:-fallback}", Ok("fallback"));
        check("${EMPTY}", Ok(""));
        check("${MISSING:-}", Ok(""));
        check("${MISSING:-a:b-c}", Ok("a:b-c"));
        check("${MISSING:-${HOME}}", Ok("/home/me"));
        check("${MISSING:-${ALSO_MISSING:-x}}y", Ok("xy"));
        check("${HOME:-${UNSET_BUT_UNUSED}}", Ok("/home/me"));
    }

    #[test]
    fn double_dollar_is_a_literal_dollar() {
        check("pa$$word", Ok("pa$word"));
        check("$${HOME}", Ok("${HOME}"));
        check("$$$${HOME}", Ok("$${HOME}"));
        check("${MISSING:-$$}", Ok("$"));
    }

    #[test]
    fn every_unset_variable_is_reported() {
        check(
            "${A}:${B}",
            Err(vec![
                InterpolateError::Unset("A".into()),
                InterpolateError::Unset("B".into()),
            ]),
        );
        check(
            "${MISSING:-${B}}",
            Err(vec![InterpolateError::Unset("B".into())]),
        );
    }

    #[test]
    fn malformed_references() {
        check("${HOME", Err(vec![InterpolateError::Unclosed]));
        check("${", Err(vec![InterpolateError::Unclosed]));
        check("${A:-x", Err(vec![InterpolateError::Unclosed]));
        check("${}", Err(vec![InterpolateError::BadReference]));
        check("${1A}", Err(vec![InterpolateError::BadReference]));
        check("${A-x}", Err(vec![InterpolateError::BadReference]));
        check("${A:x}", Err(vec![InterpolateError::BadReference]));
        check("${A B}", Err(vec![InterpolateError::BadReference]));
        let deep = "${A:-".repeat(20) + &"}".repeat(20);
        check(&deep, Err(vec![InterpolateError::TooDeep]));
    }

    #[test]
    fn messages_name_the_variable() {
        assert_eq!(
            InterpolateError::Unset("TOKEN".into()).to_string(),
            "environment variable `TOKEN` is not set (give a default with `${TOKEN:-default}`)"
        );
        assert_eq!(
            InterpolateError::Unclosed.to_string(),
            "unclosed `${` (write `$$` for a literal `$`)"
        );
    }
}
