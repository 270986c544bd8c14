//! Size caps applied before anything is stored or listed: step JSON above a limit becomes a
//! marker with a preview, long texts are cut on a character boundary. Pure functions.

use serde_json::{Value, json};

/// Largest serialized JSON stored for one step input or output.
pub const MAX_STORED_JSON_BYTES: usize = 64 * 1024;
/// Bytes of serialized JSON kept as the preview of a truncated input or output.
pub const PREVIEW_BYTES: usize = 4 * 1024;
/// Largest error text stored for a step or run.
pub const MAX_STORED_ERROR_BYTES: usize = 16 * 1024;

/// `value` serialized, or, when that is longer than [`MAX_STORED_JSON_BYTES`], the serialized
/// marker `{"truncated": true, "original_bytes": N, "preview": "<first 4 KiB>"}`.
pub(super) fn stored_json(value: &Value) -> String {
    let text = value.to_string();
    if text.len() <= MAX_STORED_JSON_BYTES {
        return text;
    }
    json!({
        "truncated": true,
        "original_bytes": text.len(),
        "preview": prefix(&text, PREVIEW_BYTES),
    })
    .to_string()
}

/// `text` cut to at most `max_bytes` (on a character boundary) with a note of the original size.
pub(super) fn stored_text(text: &str, max_bytes: usize) -> String {
    if text.len() <= max_bytes {
        return text.to_owned();
    }
    format!(
        "{}… [truncated, {} bytes in all]",
        prefix(text, max_bytes),
        text.len()
    )
}

/// At most `max_chars` characters of `text`; when cut, the last one is `…`.
pub(super) fn excerpt(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        None => text.to_owned(),
        Some(_) => {
            let mut cut: String = text.chars().take(max_chars.saturating_sub(1)).collect();
            cut.push('…');
            cut
        }
    }
}

/// The longest prefix of `text` of at most `max_bytes` that ends on a character boundary.
fn prefix(text: &str, max_bytes: usize) -> &str {
    let mut end = max_bytes.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_json_is_stored_as_is() {
        let value = json!({"a": [1, 2, 3], "b": "é"});
        assert_eq!(stored_json(&value), value.to_string());
    }

    #[test]
    fn large_json_becomes_a_marker_with_a_preview() {
        // Multi-byte characters straddle the preview boundary: the cut must not split one.
        let value = json!({"text": "é".repeat(MAX_STORED_JSON_BYTES)});
        let original = value.to_string();
        let stored: Value = serde_json::from_str(&stored_json(&value)).unwrap();
        assert_eq!(stored["truncated"], json!(true));
        assert_eq!(stored["original_bytes"], json!(original.len()));
        let preview = stored["preview"].as_str().unwrap();
        assert!(preview.len() <= PREVIEW_BYTES && preview.len() >= PREVIEW_BYTES - 1);
        assert!(original.starts_with(preview));
    }

    #[test]
    fn json_exactly_at_the_cap_is_kept() {
        let filler = "x".repeat(MAX_STORED_JSON_BYTES - 2);
        let value = json!(filler);
        assert_eq!(value.to_string().len(), MAX_STORED_JSON_BYTES);
        assert_eq!(stored_json(&value), value.to_string());
    }

    #[test]
    fn excerpts_count_characters() {
        assert_eq!(excerpt("short", 10), "short");
        assert_eq!(excerpt("0123456789", 10), "0123456789");
        assert_eq!(excerpt("0123456789a", 10), "012345678…");
        assert_eq!(excerpt(&"ü".repeat(300), 200).chars().count(), 200);
    }

    #[test]
    fn long_texts_are_cut_with_their_size() {
        assert_eq!(stored_text("abc", 3), "abc");
        assert_eq!(stored_text("aéb", 2), "a… [truncated, 4 bytes in all]");
    }
}
