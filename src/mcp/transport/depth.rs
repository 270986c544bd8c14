//! Messages nested deeper than serde_json will parse, made readable.
//!
//! serde_json refuses a document nested more than 128 levels, so one tool whose schema nests a
//! few thousand levels made a whole `tools/list` answer unreadable and the server showed no
//! tools at all. Before decoding, the transports we own (stdio, legacy SSE) pass each frame
//! through [`prune`], which replaces every array or object that starts deeper than
//! [`MAX_MESSAGE_DEPTH`] with [`TOO_DEEP_MARKER`]. The rest of the message decodes as usual; the
//! tool that carried the deep schema is then refused by the schema checks (whose depth limit is
//! far below this one), with a reason, and its neighbours are kept.
//!
//! The scan is a single pass over the bytes that tracks strings and escapes, with no recursion
//! (a hostile frame of any depth costs linear time and constant stack), and allocates only when
//! something was cut.

use std::borrow::Cow;

/// Deepest nesting of arrays and objects kept in a message from a server: below serde_json's
/// limit of 128, far above what any real message needs (a tool schema may nest 32 levels).
pub const MAX_MESSAGE_DEPTH: usize = 100;

/// What a container nested past [`MAX_MESSAGE_DEPTH`] is replaced with: a JSON string, so the
/// message stays valid and whoever reads the value sees why it is not there.
pub const TOO_DEEP_MARKER: &str =
    "[removed by Switchboard: nested deeper than 100 levels of arrays and objects]";

/// `frame` with every container that opens deeper than `max` levels replaced by
/// [`TOO_DEEP_MARKER`]; borrowed when nothing is that deep. Text that is not balanced JSON is
/// returned as it is, for the decoder to refuse with its own error.
pub fn prune(frame: &[u8], max: usize) -> Cow<'_, [u8]> {
    let mut cuts: Vec<(usize, usize)> = Vec::new();
    let mut depth = 0usize;
    let mut scanner = Scanner::default();
    let mut i = 0;
    while i < frame.len() {
        match scanner.step(frame[i]) {
            Token::Open => {
                depth += 1;
                if depth > max {
                    let Some(end) = matching_close(frame, i) else {
                        return Cow::Borrowed(frame);
                    };
                    cuts.push((i, end));
                    depth -= 1;
                    i = end;
                }
            }
            Token::Close => depth = depth.saturating_sub(1),
            Token::Other => {}
        }
        i += 1;
    }
    if cuts.is_empty() {
        return Cow::Borrowed(frame);
    }
    let marker = format!("\"{TOO_DEEP_MARKER}\"");
    let mut out = Vec::with_capacity(frame.len());
    let mut from = 0;
    for (start, end) in cuts {
        out.extend_from_slice(&frame[from..start]);
        out.extend_from_slice(marker.as_bytes());
        from = end + 1;
    }
    out.extend_from_slice(&frame[from..]);
    Cow::Owned(out)
}

/// The index of the bracket that closes the container opening at `open`, if the frame has one.
fn matching_close(frame: &[u8], open: usize) -> Option<usize> {
    let mut scanner = Scanner::default();
    let mut depth = 0usize;
    for (offset, &byte) in frame[open..].iter().enumerate() {
        match scanner.step(byte) {
            Token::Open => depth += 1,
            Token::Close => {
                depth -= 1;
                if depth == 0 {
                    return Some(open + offset);
                }
            }
            Token::Other => {}
        }
    }
    None
}

/// What one byte is, structurally.
enum Token {
    Open,
    Close,
    Other,
}

/// Whether we are inside a string (and just after a backslash in it).
#[derive(Default)]
struct Scanner {
    in_string: bool,
    escaped: bool,
}

impl Scanner {
    fn step(&mut self, byte: u8) -> Token {
        if self.in_string {
            if self.escaped {
                self.escaped = false;
            } else if byte == b'\\' {
                self.escaped = true;
            } else if byte == b'"' {
                self.in_string = false;
            }
            return Token::Other;
        }
        match byte {
            b'"' => {
                self.in_string = true;
                Token::Other
            }
            b'{' | b'[' => Token::Open,
            b'}' | b']' => Token::Close,
            _ => Token::Other,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn nested(levels: usize) -> String {
        format!("{}{}", "[".repeat(levels), "]".repeat(levels))
    }

    #[test]
    fn shallow_frames_are_borrowed_unchanged() {
        let frame = br#"{"a":[1,{"b":"[[[{{{"}],"c":"\"]"}"#;
        assert!(matches!(prune(frame, 3), Cow::Borrowed(_)));
    }

    #[test]
    fn brackets_inside_strings_do_not_count() {
        let frame = format!(
            r#"{{"s":"{}","t":"\\"{}"}}"#,
            "[".repeat(500),
            "{".repeat(500)
        );
        assert!(matches!(prune(frame.as_bytes(), 4), Cow::Borrowed(_)));
    }

    #[test]
    fn deep_containers_are_replaced_and_the_rest_kept() {
        let frame = format!(
            r#"{{"tools":[{{"name":"deep","s":{}}},{{"name":"ok","s":{{"type":"object"}}}}]}}"#,
            nested(5000)
        );
        let pruned = prune(frame.as_bytes(), MAX_MESSAGE_DEPTH);
        let value: Value = serde_json::from_slice(&pruned).expect("valid JSON after pruning");
        assert_eq!(
            value["tools"][1],
            json!({"name": "ok", "s": {"type": "object"}})
        );
        let mut deep = &value["tools"][0]["s"];
        let mut levels = 3;
        while let Value::Array(items) = deep {
            deep = &items[0];
            levels += 1;
        }
        assert_eq!(levels, MAX_MESSAGE_DEPTH);
        assert_eq!(deep, &json!(TOO_DEEP_MARKER));
    }

    #[test]
    fn several_deep_branches_are_each_cut() {
        let frame = format!("[{},1,{}]", nested(10), nested(10));
        let pruned = prune(frame.as_bytes(), 3);
        let value: Value = serde_json::from_slice(&pruned).expect("valid JSON");
        let marker = json!(TOO_DEEP_MARKER);
        assert_eq!(value, json!([[[marker]], 1, [[marker]]]));
    }

    #[test]
    fn unbalanced_text_is_left_for_the_decoder() {
        let frame = "[".repeat(200);
        assert!(matches!(prune(frame.as_bytes(), 10), Cow::Borrowed(_)));
    }
}
