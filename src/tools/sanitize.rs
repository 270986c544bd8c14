//! Cleaning server-supplied text before a model reads it.
//!
//! Tool titles and descriptions are written by whoever runs the MCP server and go straight into
//! prompts. This file removes characters a human reviewer cannot see (control, zero-width, bidi
//! and tag characters, the usual carriers of hidden instructions) and caps length on a character
//! boundary. It does not judge the visible text itself.

/// Longest title we pass on; titles are labels, so anything longer is noise or abuse.
pub(crate) const MAX_TITLE_CHARS: usize = 128;

/// Marker appended to text that was cut, so a reader knows more existed.
const ELLIPSIS: char = '…';

/// `text` without invisible characters, with line and paragraph separators turned into `\n`,
/// trimmed, and cut to at most `max_chars` characters (the last one being `…` when cut).
pub(crate) fn clean_text(text: &str, max_chars: usize) -> String {
    let cleaned: String = text
        .chars()
        .filter_map(|c| match c {
            '\u{2028}' | '\u{2029}' => Some('\n'),
            c if is_hidden(c) => None,
            c => Some(c),
        })
        .collect();
    cap_chars(cleaned.trim(), max_chars)
}

/// Whether `c` is invisible or reorders text: control characters other than `\n` and `\t`, and
/// the Unicode format characters used to hide or disguise text.
fn is_hidden(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t')
        || matches!(c,
            '\u{00AD}'                      // soft hyphen
            | '\u{061C}'                    // arabic letter mark (bidi)
            | '\u{180E}'                    // mongolian vowel separator
            | '\u{200B}'..='\u{200F}'       // zero-width space/joiners, lrm/rlm
            | '\u{202A}'..='\u{202E}'       // bidi embeddings and overrides
            | '\u{2060}'..='\u{2064}'       // word joiner, invisible operators
            | '\u{2066}'..='\u{2069}'       // bidi isolates
            | '\u{FEFF}'                    // zero-width no-break space / bom
            | '\u{FFF9}'..='\u{FFFB}'       // interlinear annotation
            | '\u{E0000}'..='\u{E007F}'     // tag characters
        )
}

/// `text` cut to `max_chars` characters, ending in `…` when anything was removed.
pub(crate) fn cap_chars(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        None => text.to_owned(),
        Some(_) if max_chars == 0 => String::new(),
        Some(_) => {
            // Keep max_chars - 1 characters and spend the last one on the marker.
            let end = text
                .char_indices()
                .nth(max_chars - 1)
                .map_or(text.len(), |(i, _)| i);
            let mut cut = text[..end].trim_end().to_owned();
            cut.push(ELLIPSIS);
            cut
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[track_caller]
    fn check(input: &str, max: usize, expected: &str) {
        assert_eq!(clean_text(input, max), expected);
    }

    #[test]
    fn keeps_ordinary_text() {
        check(
            "Add two numbers.\n\tSecond line",
            100,
            "Add two numbers.\n\tSecond line",
        );
        check("naïve café 🙂 — ok", 100, "naïve café 🙂 — ok");
    }

    #[test]
    fn strips_controls_but_keeps_newline_and_tab() {
        check(
            "a\u{0}b\u{7}c\r\nd\u{1b}[31me\u{7f}\u{85}",
            100,
            "abc\nd[31me",
        );
    }

    #[test]
    fn strips_invisible_and_bidi_characters() {
        check(
            "ig\u{200B}nore\u{200D} pre\u{2060}vious",
            100,
            "ignore previous",
        );
        check("\u{202E}txt.exe\u{202C}", 100, "txt.exe");
        check("a\u{2066}b\u{2069}c\u{FEFF}d\u{AD}e\u{61C}f", 100, "abcdef");
        check("x\u{E0041}\u{E0042}\u{E007F}y", 100, "xy");
        check("one\u{2028}two", 100, "one\ntwo");
    }

    #[test]
    fn trims_after_cleaning() {
        check("\u{200B}  padded \u{FEFF}", 100, "padded");
    }

    #[test]
    fn caps_on_char_boundaries() {
        check("abcdef", 6, "abcdef");
        check("abcdef", 5, "abcd…");
        check("ééééé", 3, "éé…");
        check("🙂🙂🙂", 2, "🙂…");
        check("ab cd", 4, "ab…");
        check("abc", 1, "…");
        check("abc", 0, "");
        check("", 0, "");
    }

    proptest! {
        #[test]
        fn never_longer_than_cap_and_never_hidden(text in any::<String>(), max in 0usize..50) {
            let out = clean_text(&text, max);
            prop_assert!(out.chars().count() <= max);
            prop_assert!(!out.chars().any(is_hidden));
        }
    }
}
