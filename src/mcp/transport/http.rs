//! Streamable HTTP transport (protocol 2025-03-26 and later), using rmcp's reqwest client
//! behind [`PruningClient`], which makes messages nested deeper than serde_json parses readable
//! before rmcp decodes them (as our own stdio and SSE transports do, `transport::depth`).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use futures::StreamExt;
use futures::stream::BoxStream;
use http::{HeaderName, HeaderValue};
use rmcp::model::{ClientJsonRpcMessage, ClientRequest, JsonRpcRequest, ServerJsonRpcMessage};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::{
    SseError, StreamableHttpClient, StreamableHttpClientTransportConfig, StreamableHttpError,
    StreamableHttpPostResponse, StreamableHttpResponseLimits,
};
use sse_stream::Sse;

use super::depth::{MAX_MESSAGE_DEPTH, prune};

/// Build the rmcp transport for `url`, sending `headers` on every request.
///
/// # Errors
/// A header name or value that HTTP cannot carry; the message names the header, never its value.
pub fn transport(
    client: reqwest::Client,
    url: &url::Url,
    headers: &BTreeMap<String, String>,
) -> Result<StreamableHttpClientTransport<PruningClient>, String> {
    let config = StreamableHttpClientTransportConfig::with_uri(url.as_str())
        .custom_headers(header_map(headers)?);
    Ok(StreamableHttpClientTransport::with_client(
        PruningClient(client),
        config,
    ))
}

/// rmcp's reqwest client, with what a server sends nested past [`MAX_MESSAGE_DEPTH`] pruned
/// before rmcp decodes it. An SSE event's data is pruned as it streams; a plain JSON body is
/// decoded inside rmcp's client, so when that fails on a `tools/list` answer (a listing is
/// safe to ask for again) the request is sent once more here and its body pruned and decoded.
/// Without this one tool nested a few hundred levels deep made a remote server's whole listing
/// unreadable, and rmcp closed the connection over it.
#[derive(Clone)]
pub struct PruningClient(reqwest::Client);

impl StreamableHttpClient for PruningClient {
    type Error = reqwest::Error;

    async fn post_message(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<StreamableHttpPostResponse, StreamableHttpError<Self::Error>> {
        let limits = StreamableHttpResponseLimits::default();
        self.post_message_with_response_limits(
            uri,
            message,
            session_id,
            auth_header,
            custom_headers,
            limits,
        )
        .await
    }

    async fn post_message_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        max_sse_event_size: usize,
    ) -> Result<StreamableHttpPostResponse, StreamableHttpError<Self::Error>> {
        let mut limits = StreamableHttpResponseLimits::default();
        limits.max_sse_event_size = max_sse_event_size;
        self.post_message_with_response_limits(
            uri,
            message,
            session_id,
            auth_header,
            custom_headers,
            limits,
        )
        .await
    }

    async fn post_message_with_response_limits(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        limits: StreamableHttpResponseLimits,
    ) -> Result<StreamableHttpPostResponse, StreamableHttpError<Self::Error>> {
        let again = is_listing(&message).then(|| Resend {
            uri: uri.clone(),
            message: message.clone(),
            session_id: session_id.clone(),
            auth_header: auth_header.clone(),
            custom_headers: custom_headers.clone(),
            max_bytes: limits.max_json_response_size,
        });
        let sent = self
            .0
            .post_message_with_response_limits(
                uri,
                message,
                session_id,
                auth_header,
                custom_headers,
                limits,
            )
            .await;
        match sent {
            Ok(StreamableHttpPostResponse::Sse(events, session)) => Ok(
                StreamableHttpPostResponse::Sse(pruned_events(events), session),
            ),
            // rmcp reports a JSON body it cannot decode as one of these.
            Err(
                err @ (StreamableHttpError::Deserialize(_)
                | StreamableHttpError::UnexpectedServerResponse(_)),
            ) => match again {
                Some(again) => self.resend_pruned(again).await.ok_or(err),
                None => Err(err),
            },
            other => other,
        }
    }

    async fn delete_session(
        &self,
        uri: Arc<str>,
        session_id: Arc<str>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<(), StreamableHttpError<Self::Error>> {
        self.0
            .delete_session(uri, session_id, auth_header, custom_headers)
            .await
    }

    async fn get_stream(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<BoxStream<'static, Result<Sse, SseError>>, StreamableHttpError<Self::Error>> {
        let events = self
            .0
            .get_stream(uri, session_id, last_event_id, auth_header, custom_headers)
            .await?;
        Ok(pruned_events(events))
    }

    async fn get_stream_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        max_sse_event_size: usize,
    ) -> Result<BoxStream<'static, Result<Sse, SseError>>, StreamableHttpError<Self::Error>> {
        let events = self
            .0
            .get_stream_with_max_sse_event_size(
                uri,
                session_id,
                last_event_id,
                auth_header,
                custom_headers,
                max_sse_event_size,
            )
            .await?;
        Ok(pruned_events(events))
    }
}

/// A request to send again, as it was sent.
struct Resend {
    uri: Arc<str>,
    message: ClientJsonRpcMessage,
    session_id: Option<Arc<str>>,
    auth_header: Option<String>,
    custom_headers: HashMap<HeaderName, HeaderValue>,
    /// Largest body read, as rmcp's own limit.
    max_bytes: usize,
}

impl PruningClient {
    /// Send `again` and decode its plain JSON answer after pruning; `None` when that does not
    /// give a message either (the caller keeps rmcp's own error).
    async fn resend_pruned(&self, again: Resend) -> Option<StreamableHttpPostResponse> {
        let mut request = self
            .0
            .post(again.uri.as_ref())
            .header(http::header::ACCEPT, "application/json, text/event-stream")
            .json(&again.message);
        if let Some(token) = again.auth_header {
            request = request.bearer_auth(token);
        }
        for (name, value) in again.custom_headers {
            request = request.header(name, value);
        }
        if let Some(session) = again.session_id {
            request = request.header(SESSION_HEADER, session.as_ref());
        }
        let mut response = request.send().await.ok()?;
        if !response.status().is_success() {
            return None;
        }
        let session = response
            .headers()
            .get(SESSION_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.ok()? {
            if body.len() + chunk.len() > again.max_bytes {
                return None;
            }
            body.extend_from_slice(&chunk);
        }
        let message: ServerJsonRpcMessage =
            serde_json::from_slice(&prune(&body, MAX_MESSAGE_DEPTH)).ok()?;
        Some(StreamableHttpPostResponse::Json(message, session))
    }
}

/// The session header of Streamable HTTP.
const SESSION_HEADER: &str = "mcp-session-id";

/// Whether `message` asks for a page of tools: the one request worth sending twice.
fn is_listing(message: &ClientJsonRpcMessage) -> bool {
    matches!(
        message,
        ClientJsonRpcMessage::Request(JsonRpcRequest {
            request: ClientRequest::ListToolsRequest(_),
            ..
        })
    )
}

/// `events` with each event's data pruned.
fn pruned_events(
    events: BoxStream<'static, Result<Sse, SseError>>,
) -> BoxStream<'static, Result<Sse, SseError>> {
    events
        .map(|event| {
            event.map(|mut event| {
                if let Some(data) = &event.data
                    && let std::borrow::Cow::Owned(pruned) =
                        prune(data.as_bytes(), MAX_MESSAGE_DEPTH)
                {
                    // Pruning cuts at brackets and inserts ASCII: still UTF-8.
                    event.data = Some(String::from_utf8_lossy(&pruned).into_owned());
                }
                event
            })
        })
        .boxed()
}

/// The `server.outbound` refusal (a refused address, a redirect to another origin) that failed
/// a request of this transport, if that is why. rmcp's HTTP client error does not give reqwest's
/// error as its source, so the chain is unwrapped here, where the transport is known.
pub(crate) fn blocked<'a>(
    err: &'a (dyn std::error::Error + 'static),
) -> Option<&'a crate::outbound::Blocked> {
    let mut current = Some(err);
    while let Some(err) = current {
        if let Some(StreamableHttpError::Client(inner)) =
            err.downcast_ref::<StreamableHttpError<reqwest::Error>>()
        {
            return crate::outbound::blocked_in(inner);
        }
        if let Some(blocked) = err.downcast_ref::<crate::outbound::Blocked>() {
            return Some(blocked);
        }
        current = err.source();
    }
    None
}

/// Convert configured headers, rejecting ones HTTP cannot carry.
///
/// # Errors
/// Names the offending header; values are secrets and are never echoed.
pub fn header_map(
    headers: &BTreeMap<String, String>,
) -> Result<HashMap<HeaderName, HeaderValue>, String> {
    headers
        .iter()
        .map(|(name, value)| {
            let header = HeaderName::try_from(name.as_str())
                .map_err(|_| format!("header name `{name}` is not valid in HTTP"))?;
            let mut value = HeaderValue::try_from(value.as_str())
                .map_err(|_| format!("value of header `{name}` is not valid in HTTP"))?;
            value.set_sensitive(true);
            Ok((header, value))
        })
        .collect()
}
