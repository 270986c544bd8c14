//! "Did you mean" hints for misspelled keys and enum values.
//!
//! Candidates are compared case-insensitively with `_` and `-` ignored, so `timeoutMs`,
//! `timeout-ms` and `mcp_servers` find `timeout_ms` and `mcpServers`; otherwise a small edit
//! distance (with transpositions, as in `comamnd`) decides.

/// The candidate `word` most likely stands for, if any is close enough.
pub(super) fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let word = normalize(word);
    if word.is_empty() {
        return None;
    }
    let limit = (word.len() / 3).max(1);
    candidates
        .iter()
        .map(|c| (distance(&word, &normalize(c)), *c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// `unknown <what> `word` (did you mean `x`?); expected one of: a, b, c`
pub(super) fn unknown(what: &str, word: &str, candidates: &[&str]) -> String {
    let mut message = format!("unknown {what}{}", super::error::shown(word));
    if let Some(hint) = closest(word, candidates) {
        message.push_str(&format!(" (did you mean `{hint}`?)"));
    }
    message.push_str("; expected one of: ");
    message.push_str(&candidates.join(", "));
    message
}

fn normalize(word: &str) -> Vec<char> {
    word.chars()
        .filter(|c| *c != '_' && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

/// Optimal string alignment distance (Levenshtein plus adjacent transpositions).
fn distance(a: &[char], b: &[char]) -> usize {
    // Words longer than any key are never close; skip the quadratic work for them.
    if a.len().abs_diff(b.len()) > 3 || a.len() > 64 || b.len() > 64 {
        return usize::MAX;
    }
    let width = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * width];
    for i in 0..=a.len() {
        d[i * width] = i;
    }
    for (j, cell) in d.iter_mut().enumerate().take(width) {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[(i - 1) * width + j] + 1)
                .min(d[i * width + j - 1] + 1)
                .min(d[(i - 1) * width + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[(i - 2) * width + j - 2] + 1);
            }
            d[i * width + j] = best;
        }
    }
    d[a.len() * width + b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEYS: &[&str] = &["command", "args", "env", "cwd", "timeout_ms", "mcpServers"];

    #[track_caller]
    fn check(word: &str, expected: Option<&str>) {
        assert_eq!(closest(word, KEYS), expected, "{word}");
    }

    #[test]
    fn finds_close_matches() {
        check("comand", Some("command"));
        check("comamnd", Some("command"));
        check("Command", Some("command"));
        check("arg", Some("args"));
        check("timeoutMs", Some("timeout_ms"));
        check("timeout-ms", Some("timeout_ms"));
        check("mcp_servers", Some("mcpServers"));
        check("mcpservers", Some("mcpServers"));
    }

    #[test]
    fn ignores_distant_words() {
        check("banana", None);
        check("", None);
        check("x", None);
        check(&"a".repeat(1000), None);
    }

    #[test]
    fn message_lists_candidates() {
        assert_eq!(
            unknown("key", "comand", &["command", "args"]),
            "unknown key `comand` (did you mean `command`?); expected one of: command, args"
        );
        assert_eq!(
            unknown("key", "zzz", &["command", "args"]),
            "unknown key `zzz`; expected one of: command, args"
        );
    }
}
