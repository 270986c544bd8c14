//! Reassembles streamed tool calls: providers send each call's id and name once and its argument
//! JSON in fragments, possibly interleaved across calls, keyed by index.

use std::collections::BTreeMap;

use crate::domain::ToolCall;

/// Collects tool-call deltas by index into complete calls.
#[derive(Debug, Default)]
pub(crate) struct ToolCallAssembler {
    calls: BTreeMap<usize, ToolCall>,
}

impl ToolCallAssembler {
    /// Record the start of call `index`; returns true the first time the index is seen.
    pub(crate) fn start(&mut self, index: usize, id: Option<&str>, name: Option<&str>) -> bool {
        let mut fresh = false;
        let call = self.calls.entry(index).or_insert_with(|| {
            fresh = true;
            ToolCall {
                id: String::new(),
                name: String::new(),
                arguments: String::new(),
            }
        });
        if let Some(id) = id.filter(|id| !id.is_empty()) {
            call.id = id.to_owned();
        }
        if let Some(name) = name.filter(|name| !name.is_empty()) {
            call.name.push_str(name);
        }
        fresh
    }

    /// Append an argument fragment to call `index`.
    pub(crate) fn append(&mut self, index: usize, fragment: &str) {
        self.start(index, None, None);
        if let Some(call) = self.calls.get_mut(&index) {
            call.arguments.push_str(fragment);
        }
    }

    /// The id and name recorded for `index` so far.
    pub(crate) fn header(&self, index: usize) -> Option<(&str, &str)> {
        self.calls
            .get(&index)
            .map(|c| (c.id.as_str(), c.name.as_str()))
    }

    /// The complete calls in index order; calls without an id get a stable generated one.
    pub(crate) fn finish(self) -> Vec<ToolCall> {
        self.calls
            .into_iter()
            .map(|(index, mut call)| {
                if call.id.is_empty() {
                    call.id = format!("call_{index}");
                }
                if call.arguments.trim().is_empty() {
                    call.arguments = "{}".to_owned();
                }
                call
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interleaved_fragments_are_reassembled_by_index() {
        let mut assembler = ToolCallAssembler::default();
        assert!(assembler.start(0, Some("a"), Some("calc__evaluate")));
        assert!(assembler.start(1, Some("b"), Some("clock__now")));
        assembler.append(0, "{\"expr");
        assembler.append(1, "{}");
        assembler.append(0, "ession\": \"1+1\"}");
        let calls = assembler.finish();
        assert_eq!(calls[0].arguments, "{\"expression\": \"1+1\"}");
        assert_eq!(calls[0].name, "calc__evaluate");
        assert_eq!(calls[1].arguments, "{}");
        assert_eq!(calls[1].id, "b");
    }

    #[test]
    fn missing_ids_and_empty_arguments_get_defaults() {
        let mut assembler = ToolCallAssembler::default();
        assembler.start(3, None, Some("t"));
        let calls = assembler.finish();
        assert_eq!(calls[0].id, "call_3");
        assert_eq!(calls[0].arguments, "{}");
    }
}
