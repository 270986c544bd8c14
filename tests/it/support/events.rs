//! Reading a run's event stream (`POST /api/chat`, `GET /api/runs/{id}/events`) in tests, with
//! the same bounded decoder the server's own clients use.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde_json::Value;
use switchboard::sse::{SseDecoder, SseEvent};

/// Longest wait for one event (a loaded 2-core machine runs a tool call or a restart slowly).
const PATIENCE: Duration = Duration::from_secs(30);

/// One received SSE event: its name and JSON data (a JSON string when the data is not JSON).
#[derive(Debug, Clone)]
pub struct Received {
    pub name: Option<String>,
    pub data: Value,
    pub at: Instant,
}

/// An event stream read with the same bounded decoder the server's clients use.
pub struct Events {
    response: reqwest::Response,
    decoder: SseDecoder,
    pending: VecDeque<SseEvent>,
    headers: reqwest::header::HeaderMap,
}

impl Events {
    pub fn new(response: reqwest::Response) -> Events {
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        assert!(
            content_type.starts_with("text/event-stream"),
            "not an event stream: {content_type}"
        );
        Events {
            headers: response.headers().clone(),
            response,
            decoder: SseDecoder::new(1 << 20, 8 << 20),
            pending: VecDeque::new(),
        }
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }

    /// The next event; `None` when the stream ended.
    pub async fn next(&mut self) -> Option<Received> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                let data = serde_json::from_str(&event.data).unwrap_or(Value::String(event.data));
                return Some(Received {
                    name: event.event,
                    data,
                    at: Instant::now(),
                });
            }
            let chunk = tokio::time::timeout(PATIENCE, self.response.chunk())
                .await
                .expect("an event within the patience")
                .expect("reading the event stream")?;
            self.pending.extend(
                self.decoder
                    .push(&chunk)
                    .expect("a well-formed event stream"),
            );
        }
    }

    /// Every event until the stream ends.
    pub async fn all(&mut self) -> Vec<Received> {
        let mut events = Vec::new();
        while let Some(event) = self.next().await {
            events.push(event);
        }
        events
    }

    /// Events up to and including the first named `name`.
    pub async fn until(&mut self, name: &str) -> Vec<Received> {
        self.until_matching(&format!("`{name}`"), |event| {
            event.name.as_deref() == Some(name)
        })
        .await
    }

    /// Events up to and including the first one `stop` accepts; `what` names it in the panic
    /// when the stream ends first.
    pub async fn until_matching(
        &mut self,
        what: &str,
        stop: impl Fn(&Received) -> bool,
    ) -> Vec<Received> {
        let mut events = Vec::new();
        while let Some(event) = self.next().await {
            let found = stop(&event);
            events.push(event);
            if found {
                return events;
            }
        }
        panic!("the stream ended before {what}: {events:#?}");
    }

    /// The run id the response's `x-switchboard-run-id` header names.
    pub fn run_id(&self) -> String {
        self.header("x-switchboard-run-id")
            .expect("the run id header")
    }
}
