//! A bounded Server-Sent Events decoder, shared by every client that reads an event stream.
//!
//! Hand-written rather than taken from a crate because the bound is the point: a peer that sends
//! a 10 MB line, or bytes without any newline, must produce an error, not a growing buffer.

use thiserror::Error;

/// One dispatched event: the `event:` name (if any) and the joined `data:` lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    pub event: Option<String>,
    pub data: String,
    pub id: Option<String>,
}

/// The stream broke the protocol or a bound.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SseError {
    #[error("event stream line longer than {max} bytes")]
    LineTooLong { max: usize },
    #[error("event stream event larger than {max} bytes")]
    EventTooLarge { max: usize },
    #[error("event stream is not valid utf-8")]
    NotUtf8,
}

/// Incremental decoder: feed it chunks as they arrive, collect whole events.
#[derive(Debug)]
pub struct SseDecoder {
    line: Vec<u8>,
    max_line: usize,
    max_event: usize,
    event: Option<String>,
    data: String,
    has_data: bool,
    id: Option<String>,
    skip_lf: bool,
}

impl SseDecoder {
    /// A decoder that refuses lines over `max_line` bytes and events over `max_event` bytes.
    pub fn new(max_line: usize, max_event: usize) -> Self {
        Self {
            line: Vec::new(),
            max_line,
            max_event,
            event: None,
            data: String::new(),
            has_data: false,
            id: None,
            skip_lf: false,
        }
    }

    /// Feed bytes; returns the events completed by them.
    ///
    /// # Errors
    /// A line or event over its bound, or invalid UTF-8. The decoder should be dropped after an error.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<SseEvent>, SseError> {
        let mut events = Vec::new();
        for &byte in bytes {
            if self.skip_lf {
                self.skip_lf = false;
                if byte == b'\n' {
                    continue;
                }
            }
            match byte {
                b'\n' | b'\r' => {
                    self.skip_lf = byte == b'\r';
                    let line = std::mem::take(&mut self.line);
                    let line = String::from_utf8(line).map_err(|_| SseError::NotUtf8)?;
                    if let Some(event) = self.take_line(&line)? {
                        events.push(event);
                    }
                }
                _ => {
                    if self.line.len() >= self.max_line {
                        return Err(SseError::LineTooLong { max: self.max_line });
                    }
                    self.line.push(byte);
                }
            }
        }
        Ok(events)
    }

    fn take_line(&mut self, line: &str) -> Result<Option<SseEvent>, SseError> {
        if line.is_empty() {
            return Ok(self.dispatch());
        }
        if line.starts_with(':') {
            return Ok(None);
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "event" => self.event = Some(value.to_owned()),
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
                if self.data.len() > self.max_event {
                    return Err(SseError::EventTooLarge {
                        max: self.max_event,
                    });
                }
            }
            "id" => self.id = Some(value.to_owned()),
            _ => {}
        }
        Ok(None)
    }

    fn dispatch(&mut self) -> Option<SseEvent> {
        let event = self.event.take();
        if !self.has_data {
            return None;
        }
        self.has_data = false;
        Some(SseEvent {
            event,
            data: std::mem::take(&mut self.data),
            id: self.id.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(chunks: &[&str], expected: &[(Option<&str>, &str)]) {
        let mut decoder = SseDecoder::new(1024, 4096);
        let mut got = Vec::new();
        for chunk in chunks {
            got.extend(decoder.push(chunk.as_bytes()).expect("valid stream"));
        }
        let got: Vec<(Option<&str>, &str)> = got
            .iter()
            .map(|e| (e.event.as_deref(), e.data.as_str()))
            .collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn decodes_events_across_chunk_boundaries() {
        check(
            &[
                "event: endpoint\nda",
                "ta: /message?s=1\n\n",
                "data: {}\n\n",
            ],
            &[(Some("endpoint"), "/message?s=1"), (None, "{}")],
        );
    }

    #[test]
    fn joins_multi_line_data_and_ignores_comments() {
        check(&[": ping\n", "data: a\ndata: b\n\n"], &[(None, "a\nb")]);
    }

    #[test]
    fn accepts_crlf_and_cr_line_endings() {
        check(&["data: x\r\n\r\ndata: y\r\r"], &[(None, "x"), (None, "y")]);
    }

    #[test]
    fn an_event_without_data_is_not_dispatched() {
        check(&["event: nothing\n\n"], &[]);
    }

    #[test]
    fn a_line_without_newline_is_bounded() {
        let mut decoder = SseDecoder::new(16, 4096);
        let err = decoder.push(&[b'a'; 64]).expect_err("bound must trip");
        assert_eq!(err, SseError::LineTooLong { max: 16 });
    }

    #[test]
    fn an_event_is_bounded() {
        let mut decoder = SseDecoder::new(64, 100);
        let chunk = "data: 0123456789012345678901234567890123456789\n".repeat(3);
        let err = decoder.push(chunk.as_bytes()).expect_err("bound must trip");
        assert_eq!(err, SseError::EventTooLarge { max: 100 });
    }
}
