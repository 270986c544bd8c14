//! Legacy HTTP+SSE transport (protocol 2024-11-05), which rmcp no longer ships.
//!
//! `GET url` opens an event stream whose first `endpoint` event says where to `POST` our
//! messages; every later `message` event carries one JSON-RPC message from the server. We hand
//! rmcp a (sink, stream) pair so the session above is identical to the other transports.
//! An endpoint on another origin is refused: following it would send our requests (and the
//! configured headers, often credentials) to a host the user never configured.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::channel::mpsc;
use futures::{SinkExt, Stream, StreamExt};
use http::HeaderMap;
use rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage};
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::sse::{SseDecoder, SseError, SseEvent};

/// Longest SSE line and event we accept from a server (one JSON-RPC message).
const MAX_EVENT_BYTES: usize = 16 * 1024 * 1024;
/// Time allowed for the server to announce its POST endpoint.
const ENDPOINT_TIMEOUT: Duration = Duration::from_secs(30);

/// Why the legacy SSE connection could not be opened. reqwest errors are shown through
/// [`crate::outbound::describe`]: their own text starts with the URL, whose query may carry a
/// token, and a request `server.outbound` stopped is told as such.
#[derive(Debug, thiserror::Error)]
pub enum SseConnectError {
    #[error("could not open the event stream: {}", crate::outbound::describe(.0))]
    Request(#[source] reqwest::Error),
    #[error("event stream answered HTTP {0}")]
    Status(u16),
    #[error("event stream closed before announcing its endpoint")]
    NoEndpoint,
    #[error("event stream broke: {}", crate::outbound::describe(.0))]
    Stream(#[source] reqwest::Error),
    #[error("event stream broke: {0}")]
    Decode(#[source] SseError),
    #[error("endpoint `{0}` is not a valid URL")]
    BadEndpoint(String),
    #[error(
        "endpoint points to another origin ({endpoint_origin}); only {expected_origin} is allowed"
    )]
    CrossOrigin {
        endpoint_origin: String,
        expected_origin: String,
    },
}

/// Messages from the server; dropping it stops the background reader and writer.
pub struct ServerMessages {
    inner: mpsc::Receiver<ServerJsonRpcMessage>,
    _stop: DropGuard,
}

impl Stream for ServerMessages {
    type Item = ServerJsonRpcMessage;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.poll_next_unpin(cx)
    }
}

/// Open the event stream, wait for the endpoint, and return the (sink, stream) pair rmcp needs.
///
/// # Errors
/// See [`SseConnectError`]; a cross-origin endpoint is one of them.
pub async fn connect(
    client: reqwest::Client,
    url: &url::Url,
    headers: HeaderMap,
) -> Result<(mpsc::Sender<ClientJsonRpcMessage>, ServerMessages), SseConnectError> {
    let response = client
        .get(url.clone())
        .headers(headers.clone())
        .header(http::header::ACCEPT, "text/event-stream")
        .send()
        .await
        .map_err(SseConnectError::Request)?;
    if !response.status().is_success() {
        return Err(SseConnectError::Status(response.status().as_u16()));
    }
    let mut body = response.bytes_stream();
    let mut decoder = SseDecoder::new(MAX_EVENT_BYTES, MAX_EVENT_BYTES);
    let mut pending: Vec<SseEvent> = Vec::new();
    let endpoint = tokio::time::timeout(
        ENDPOINT_TIMEOUT,
        announced_endpoint(&mut body, &mut decoder, &mut pending),
    )
    .await
    .map_err(|_| SseConnectError::NoEndpoint)??;
    let endpoint = same_origin_endpoint(url, endpoint.trim())?;

    let stop = CancellationToken::new();
    let (in_tx, in_rx) = mpsc::channel::<ServerJsonRpcMessage>(64);
    tokio::spawn(read_messages(body, decoder, pending, in_tx, stop.clone()));
    let (out_tx, out_rx) = mpsc::channel::<ClientJsonRpcMessage>(64);
    let poster = Poster {
        client,
        endpoint,
        headers,
    };
    tokio::spawn(poster.post_messages(out_rx, stop.clone()));

    Ok((
        out_tx,
        ServerMessages {
            inner: in_rx,
            _stop: stop.drop_guard(),
        },
    ))
}

/// Read events until the `endpoint` one and return its data; events before it stay in `pending`
/// for the reader.
async fn announced_endpoint<B: AsRef<[u8]>>(
    body: &mut (impl Stream<Item = reqwest::Result<B>> + Unpin),
    decoder: &mut SseDecoder,
    pending: &mut Vec<SseEvent>,
) -> Result<String, SseConnectError> {
    loop {
        if let Some(index) = pending
            .iter()
            .position(|e| e.event.as_deref() == Some("endpoint"))
        {
            let event = pending.remove(index);
            return Ok(event.data);
        }
        match body.next().await {
            Some(Ok(chunk)) => pending.extend(
                decoder
                    .push(chunk.as_ref())
                    .map_err(SseConnectError::Decode)?,
            ),
            Some(Err(err)) => return Err(SseConnectError::Stream(err)),
            None => return Err(SseConnectError::NoEndpoint),
        }
    }
}

/// The reader task: forward the events already read, then the rest of the stream, until it
/// ends, breaks its bounds, or `stop` fires.
async fn read_messages<B: AsRef<[u8]>>(
    mut body: impl Stream<Item = reqwest::Result<B>> + Unpin,
    mut decoder: SseDecoder,
    pending: Vec<SseEvent>,
    mut in_tx: mpsc::Sender<ServerJsonRpcMessage>,
    stop: CancellationToken,
) {
    let forward = async {
        for event in pending {
            if forward_event(&mut in_tx, event).await.is_err() {
                return;
            }
        }
        while let Some(chunk) = body.next().await {
            let Ok(chunk) = chunk else { return };
            let Ok(events) = decoder.push(chunk.as_ref()) else {
                tracing::warn!("legacy sse stream violated its bounds; closing");
                return;
            };
            for event in events {
                if forward_event(&mut in_tx, event).await.is_err() {
                    return;
                }
            }
        }
    };
    tokio::select! {
        () = forward => {}
        () = stop.cancelled() => {}
    }
    // Dropping `in_tx` ends the stream, which rmcp reports as a closed transport.
}

/// Where and how our messages are POSTed.
struct Poster {
    client: reqwest::Client,
    endpoint: url::Url,
    headers: HeaderMap,
}

impl Poster {
    /// The writer task: POST each message in order until one fails or `stop` fires.
    async fn post_messages(
        self,
        mut out_rx: mpsc::Receiver<ClientJsonRpcMessage>,
        stop: CancellationToken,
    ) {
        let send_all = async {
            // POSTs are sent one at a time so the server sees messages in our order.
            while let Some(message) = out_rx.next().await {
                if !self.post(&message).await {
                    return;
                }
            }
        };
        tokio::select! {
            () = send_all => {}
            () = stop.cancelled() => {}
        }
        // A failed POST means the session is gone: stop reading too so the supervisor reconnects.
        stop.cancel();
    }

    /// POST one message; `false` (logged) when the server refused it or could not be reached.
    async fn post(&self, message: &ClientJsonRpcMessage) -> bool {
        let result = self
            .client
            .post(self.endpoint.clone())
            .headers(self.headers.clone())
            .json(message)
            .send()
            .await;
        match result {
            Ok(response) if response.status().is_success() => true,
            Ok(response) => {
                tracing::warn!(
                    status = response.status().as_u16(),
                    "legacy sse post refused; closing"
                );
                false
            }
            Err(err) => {
                let error = crate::outbound::describe(&err);
                tracing::warn!(error = %error, "legacy sse post failed; closing");
                false
            }
        }
    }
}

async fn forward_event(
    tx: &mut mpsc::Sender<ServerJsonRpcMessage>,
    event: SseEvent,
) -> Result<(), mpsc::SendError> {
    if !matches!(event.event.as_deref(), None | Some("message")) {
        return Ok(());
    }
    let data = super::depth::prune(event.data.as_bytes(), super::depth::MAX_MESSAGE_DEPTH);
    match serde_json::from_slice::<ServerJsonRpcMessage>(&data) {
        Ok(message) => tx.send(message).await,
        Err(err) => {
            tracing::warn!(error = %err, "legacy sse server sent a message that is not JSON-RPC; skipped");
            Ok(())
        }
    }
}

/// Resolve the announced endpoint against the stream URL and require the same origin.
fn same_origin_endpoint(base: &url::Url, announced: &str) -> Result<url::Url, SseConnectError> {
    let endpoint = base
        .join(announced)
        .map_err(|_| SseConnectError::BadEndpoint(announced.chars().take(200).collect()))?;
    let expected = base.origin();
    let actual = endpoint.origin();
    if actual != expected {
        return Err(SseConnectError::CrossOrigin {
            endpoint_origin: actual.ascii_serialization(),
            expected_origin: expected.ascii_serialization(),
        });
    }
    Ok(endpoint)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> url::Url {
        url::Url::parse("http://127.0.0.1:3001/sse").expect("valid test url")
    }

    #[test]
    fn relative_endpoints_resolve_against_the_stream_url() {
        let endpoint =
            same_origin_endpoint(&base(), "/message?sessionId=abc").expect("same origin");
        assert_eq!(
            endpoint.as_str(),
            "http://127.0.0.1:3001/message?sessionId=abc"
        );
    }

    #[test]
    fn absolute_endpoints_on_the_same_origin_are_fine() {
        same_origin_endpoint(&base(), "http://127.0.0.1:3001/m").expect("same origin");
    }

    #[test]
    fn other_origins_are_refused() {
        for evil in [
            "http://evil.example/m",
            "https://127.0.0.1:3001/m",
            "http://127.0.0.1:3002/m",
            "//evil.example/m",
        ] {
            let err = same_origin_endpoint(&base(), evil).expect_err(evil);
            assert!(
                matches!(err, SseConnectError::CrossOrigin { .. }),
                "{evil}: {err}"
            );
        }
    }
}
