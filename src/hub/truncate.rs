//! Capping tool results: a result larger than `tools.max_result_bytes` (serialized JSON) keeps
//! its content kinds and order, but long text is cut and oversized binary or structured parts are
//! replaced by a marker stating the original size, so nothing is silently lost.

use rmcp::model::{CallToolResult, ContentBlock};
use serde::Serialize;

/// Present when a result was cut; tells clients how big it really was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Truncation {
    pub original_bytes: usize,
    pub limit_bytes: usize,
}

/// The length of `value` as serde_json writes it, counted without building the bytes: every tool
/// result is measured, and most are far under the limit.
fn json_len<T: Serialize>(value: &T) -> usize {
    let mut counter = ByteCounter(0);
    match serde_json::to_writer(&mut counter, value) {
        Ok(()) => counter.0,
        Err(_) => 0,
    }
}

/// An `io::Write` that only counts.
struct ByteCounter(usize);

impl std::io::Write for ByteCounter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn marker(original: usize, limit: usize) -> String {
    format!("[truncated: the tool result was {original} bytes; the limit is {limit} bytes]")
}

/// Cut `result` to about `limit` bytes of JSON; returns it unchanged when it already fits.
pub(super) fn cap_result(
    mut result: CallToolResult,
    limit: usize,
) -> (CallToolResult, Option<Truncation>) {
    let original = json_len(&result);
    if original <= limit {
        return (result, None);
    }
    let note = ContentBlock::text(marker(original, limit));
    // Leave room for the result's other fields, the marker block, and a block's JSON framing.
    let content_blocks = std::mem::take(&mut result.content);
    let structured = result.structured_content.take();
    let fixed = json_len(&result) + json_len(&note) + 2;
    result.structured_content = structured;
    let mut budget = limit.saturating_sub(fixed);
    let mut content = Vec::with_capacity(result.content.len() + 1);
    for block in content_blocks {
        let size = json_len(&block) + 1;
        if size <= budget {
            budget -= size;
            content.push(block);
            continue;
        }
        match block {
            ContentBlock::Text(mut text) if budget > 64 => {
                // Keep the longest prefix whose escaped JSON fits, counting escapes exactly.
                let framing = size - escaped_len(&text.text);
                let room = budget.saturating_sub(framing);
                let keep = escaped_prefix_len(&text.text, room);
                text.text.truncate(keep);
                budget = 0;
                content.push(ContentBlock::Text(text));
            }
            _ => {
                budget = 0;
            }
        }
    }
    if let Some(structured) = &result.structured_content
        && json_len(structured) > budget
    {
        result.structured_content = None;
    }
    content.push(note);
    result.content = content;
    (
        result,
        Some(Truncation {
            original_bytes: original,
            limit_bytes: limit,
        }),
    )
}

/// Bytes `c` takes inside a JSON string as serde_json writes it.
fn escaped_char_len(c: char) -> usize {
    match c {
        '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
        c if u32::from(c) < 0x20 => 6,
        c => c.len_utf8(),
    }
}

/// Bytes `text` takes inside a JSON string, without the quotes.
fn escaped_len(text: &str) -> usize {
    text.chars().map(escaped_char_len).sum()
}

/// Length of the longest prefix of `text` (on a char boundary) whose escaped JSON takes at
/// most `room` bytes.
fn escaped_prefix_len(text: &str, room: usize) -> usize {
    let mut used = 0;
    for (at, c) in text.char_indices() {
        used += escaped_char_len(c);
        if used > room {
            return at;
        }
    }
    text.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text_result(text: &str) -> CallToolResult {
        CallToolResult::success(vec![ContentBlock::text(text.to_owned())])
    }

    #[test]
    fn lengths_are_counted_exactly_as_serialized() {
        let result = text_result("quotes \" and \\ and é and \u{1}");
        let bytes = serde_json::to_vec(&result).expect("serializes");
        assert_eq!(json_len(&result), bytes.len());
    }

    #[test]
    fn small_results_pass_untouched() {
        let (result, cut) = cap_result(text_result("hello"), 1024);
        assert_eq!(cut, None);
        assert_eq!(result, text_result("hello"));
    }

    #[test]
    fn long_text_is_cut_with_a_marker_stating_the_size() {
        let big = "é".repeat(10_000);
        let (result, cut) = cap_result(text_result(&big), 2000);
        let cut = cut.expect("must truncate");
        assert!(cut.original_bytes > 20_000);
        assert!(json_len(&result) <= 2000, "{}", json_len(&result));
        let marker = result
            .content
            .last()
            .and_then(|c| c.as_text())
            .expect("marker");
        assert!(marker.text.contains(&cut.original_bytes.to_string()));
        assert!(
            result.content[0]
                .as_text()
                .is_some_and(|t| t.text.starts_with('é'))
        );
    }

    #[test]
    fn oversized_structured_content_is_dropped_not_mangled() {
        let mut result = text_result("ok");
        result.structured_content = Some(serde_json::json!({"rows": vec![1; 5000]}));
        let (result, cut) = cap_result(result, 500);
        assert!(cut.is_some());
        assert_eq!(result.structured_content, None);
        assert_eq!(
            result.content[0].as_text().map(|t| t.text.as_str()),
            Some("ok")
        );
    }

    #[test]
    fn is_error_is_kept() {
        let result = CallToolResult::error(vec![ContentBlock::text("x".repeat(5000))]);
        let (result, _) = cap_result(result, 300);
        assert_eq!(result.is_error, Some(true));
    }

    #[test]
    fn escaped_length_matches_serde_json() {
        let text = "plain é \"quoted\" back\\slash\nline\ttab\r\u{1}\u{8}\u{c}\u{7f} 😀";
        assert_eq!(escaped_len(text) + 2, json_len(&text));
        for room in 0..escaped_len(text) + 2 {
            let keep = escaped_prefix_len(text, room);
            assert!(json_len(&&text[..keep]) - 2 <= room, "{room}");
            if keep < text.len() {
                let next = text[keep..].chars().next().map_or(0, char::len_utf8);
                assert!(json_len(&&text[..keep + next]) - 2 > room, "{room}");
            }
        }
    }

    #[test]
    fn multi_line_text_uses_the_whole_budget() {
        let big = "a line of text\n".repeat(10_000);
        let (result, cut) = cap_result(text_result(&big), 4096);
        assert!(cut.is_some());
        let size = json_len(&result);
        assert!(size <= 4096 && size > 4000, "{size}");
    }
}
