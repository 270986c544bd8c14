//! A scripted fake LLM server that speaks the providers' real wire protocols: OpenAI Chat
//! Completions (`POST /v1/chat/completions`, `GET /v1/models`) and Anthropic Messages
//! (`POST /v1/messages`, `GET /v1/models`), both as whole JSON answers and as Server-Sent Events.
//!
//! Tests queue [`Reply`]s; each chat request of either protocol takes the next one (FIFO) and gets
//! it rendered in the protocol it asked in, streamed when its body says `"stream": true`. Every
//! request is recorded as received. When the queue is empty the [`Fallback`] decides: a 500 that
//! says so (the default), or the deterministic offline demo of `demo.rs`.
//!
//! It deliberately is not a model: nothing here interprets prompts except the demo fallback, and
//! that one labels every answer "(fake model)". It does not check API keys.
//!
//! This crate is the fake of the integration tests (`tests/it`) and of `bench-runs`
//! (`tests/bench`), and the library of the `fake-llm` binary (`src/main.rs`) that the offline
//! demo runs.

mod anthropic;
mod demo;
mod openai;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::Response;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// A running fake server on `127.0.0.1`. Dropping it stops accepting connections; responses
/// already streaming finish on their own.
pub struct FakeLlm {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
}

/// One scripted answer, rendered in whichever protocol the request that takes it speaks.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A plain answer. Streamed as several deltas of a few characters each. Without `usage`, token
    /// counts are estimated from the request and answer lengths (about four bytes a token).
    Text { text: String, usage: Option<Usage> },
    /// One or several parallel tool calls, after an optional text. Streamed arguments are split
    /// into fragments of a few characters. OpenAI: `id`, `type` and `name` only in the first delta
    /// of each index; with two or more calls the indexes are interleaved round-robin and the
    /// last fragments of all calls share one delta. Anthropic: one `tool_use` block per call,
    /// in order (its blocks cannot interleave), with `input_json_delta` fragments.
    ToolCalls {
        calls: Vec<FakeToolCall>,
        text: Option<String>,
    },
    /// An HTTP error, never streamed (the real APIs fail before the stream starts). `body`:
    /// `Null` gives the provider's real error shape with a stock message for `status`; a string
    /// gives that shape with this message; anything else is sent verbatim. `retry_after` becomes
    /// the `retry-after` header.
    Status {
        status: u16,
        retry_after: Option<String>,
        body: Value,
    },
    /// Streaming: the preamble and one valid text delta, then `data: {not json`, then the normal
    /// rest of the stream (so a client that skips bad lines sees a whole message and a strict one
    /// fails on the bad line). Not streaming: a 200 `application/json` body that is not JSON.
    MalformedChunk,
    /// Streaming: the preamble and two text deltas, then the connection is aborted (no final
    /// chunk of the chunked body, no `[DONE]`/`message_stop`): the client sees a transport error.
    /// Not streaming: half of the JSON body, then the same abort.
    DisconnectMidStream,
    /// Like [`Reply::DisconnectMidStream`], but the body then ends cleanly: no transport error,
    /// only the protocol's end marker is missing (a proxy that cut the stream).
    TruncatedStream,
    /// Streaming: only the preamble (OpenAI's role chunk, Anthropic's `message_start` and
    /// `content_block_start`), then the body ends cleanly: no content, no finish reason, no end
    /// marker. Not streaming: like [`Reply::TruncatedStream`].
    EmptyStream,
    /// Streaming: the preamble and two text deltas, then the protocol's in-band error (Anthropic
    /// `event: error`, OpenAI a `data: {"error": ..}` line) shaped like an HTTP `status` error
    /// (e.g. 529 gives `overloaded_error`), then the body ends. Not streaming: that HTTP error.
    StreamError { status: u16 },
    /// Sends the response head (status and headers) at once, then waits `delay` before the
    /// first byte of `then`'s body. Same for streaming and whole answers.
    SlowFirstToken { delay: Duration, then: Box<Reply> },
    /// Streaming: a 200 event stream whose body is one line of exactly `bytes` bytes
    /// (`data: {"pad":"xxxx…`) that never ends with a newline; then the body ends. Not streaming:
    /// a 200 `application/json` body of exactly `bytes` bytes of unterminated JSON. Sent in 64 KiB
    /// pieces, never held in memory whole.
    HugeLine { bytes: usize },
}

/// A tool call the fake model makes.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeToolCall {
    pub id: String,
    pub name: String,
    pub arguments: Value,
}

/// Token counts reported by a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub input_tokens: u32,
    pub output_tokens: u32,
}

/// One request as the server received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    /// The path without the query string.
    pub path: String,
    /// Every header, names lower-case (as HTTP/1 parsing yields them), values lossily UTF-8.
    pub headers: Vec<(String, String)>,
    /// The JSON body; `Null` when empty, a JSON string of the raw text when it is not JSON.
    pub body: Value,
}

/// What a chat request gets when no scripted reply is left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fallback {
    /// A 500 in the provider's error shape saying that the script ran out.
    #[default]
    Error,
    /// The deterministic offline demo (see `demo.rs`); every answer starts with
    /// "(fake model)".
    Demo,
}

impl FakeLlm {
    /// Start on `127.0.0.1` with a free port.
    ///
    /// # Panics
    /// If no local port can be bound, which leaves a test nothing to do.
    pub async fn start() -> FakeLlm {
        FakeLlm::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .await
            .expect("bind the fake llm to a free local port")
    }

    /// Start on `addr` (the dev binary's `--bind`).
    ///
    /// # Errors
    /// When `addr` cannot be bound.
    pub async fn bind(addr: SocketAddr) -> io::Result<FakeLlm> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::default());
        let app = Router::new()
            .fallback(handle)
            // Large prompts are legitimate test input; axum's 2 MB default would reject them
            // before they are recorded.
            .layer(DefaultBodyLimit::max(64 * 1024 * 1024))
            .with_state(shared.clone());
        let (shutdown, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            // Like the real server: without TCP_NODELAY small responses stall ~40 ms on delayed ACKs.
            let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
                let _ = tcp.set_nodelay(true);
            });
            let serve = axum::serve(listener, app).with_graceful_shutdown(async {
                // A dropped sender is the signal too.
                let _ = stopped.await;
            });
            if let Err(error) = serve.await {
                tracing::warn!(error = %error, "fake llm server failed");
            }
        });
        Ok(FakeLlm {
            addr,
            shared,
            shutdown: Some(shutdown),
        })
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT/v1`: OpenAI clients append `/chat/completions` and `/models`.
    pub fn openai_base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// `http://127.0.0.1:PORT`: Anthropic clients append `/v1/messages` and `/v1/models`.
    pub fn anthropic_base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Queue one reply for the next chat request of either protocol.
    pub fn push(&self, reply: Reply) {
        self.shared.lock().queue.push_back(reply);
    }

    /// How many pushed replies no request has taken yet.
    pub fn remaining(&self) -> usize {
        self.shared.lock().queue.len()
    }

    /// Every request so far, in arrival order (including rejected and non-chat ones).
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.lock().requests.clone()
    }

    /// Choose what an empty queue answers.
    pub fn set_fallback(&self, fallback: Fallback) {
        self.shared.lock().fallback = fallback;
    }
}

impl Drop for FakeLlm {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

impl Reply {
    /// [`Reply::Text`] without explicit usage.
    pub fn text(text: impl Into<String>) -> Reply {
        Reply::Text {
            text: text.into(),
            usage: None,
        }
    }

    /// [`Reply::ToolCalls`] with one call and no text.
    pub fn tool_call(id: impl Into<String>, name: impl Into<String>, arguments: Value) -> Reply {
        Reply::ToolCalls {
            calls: vec![FakeToolCall::new(id, name, arguments)],
            text: None,
        }
    }

    /// [`Reply::Status`] with the provider's stock error body.
    pub fn status(status: u16) -> Reply {
        Reply::Status {
            status,
            retry_after: None,
            body: Value::Null,
        }
    }

    /// A 429 with `retry-after: <retry_after>` and the provider's rate-limit error body.
    pub fn rate_limited(retry_after: impl Into<String>) -> Reply {
        Reply::Status {
            status: 429,
            retry_after: Some(retry_after.into()),
            body: Value::Null,
        }
    }
}

impl FakeToolCall {
    pub fn new(id: impl Into<String>, name: impl Into<String>, arguments: Value) -> FakeToolCall {
        FakeToolCall {
            id: id.into(),
            name: name.into(),
            arguments,
        }
    }
}

impl Recorded {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

// ---------------------------------------------------------------------------------------------
// Server state

/// Everything the handler shares with the test, behind one lock that is never held across an
/// `.await`.
#[derive(Default)]
struct Shared(Mutex<Script>);

#[derive(Default)]
struct Script {
    queue: VecDeque<Reply>,
    requests: Vec<Recorded>,
    fallback: Fallback,
    /// Numbers response ids and demo tool-call ids, so they are unique per server.
    serial: u64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Script> {
        // A test that panicked while holding the lock has already failed; keep serving the rest.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

// ---------------------------------------------------------------------------------------------
// Requests

/// The two wire protocols.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Provider {
    OpenAi,
    Anthropic,
}

/// Where a chat request's reply comes from.
enum Next {
    Scripted(Reply),
    Demo,
    Unscripted,
}

/// A chat request that passed validation.
struct ChatRequest {
    provider: Provider,
    /// The request body (a JSON object with `model` and `messages`).
    body: Value,
    model: String,
    stream: bool,
    /// OpenAI `stream_options.include_usage`.
    include_usage: bool,
    /// Unique per server, for ids.
    serial: u64,
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let body = parse_body(&body);
    shared.lock().requests.push(Recorded {
        method: method.to_string(),
        path: path.clone(),
        headers: headers
            .iter()
            .map(|(name, value)| {
                let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                (name.as_str().to_owned(), value)
            })
            .collect(),
        body: body.clone(),
    });
    let provider = match path.as_str() {
        "/v1/chat/completions" => Provider::OpenAi,
        "/v1/messages" => Provider::Anthropic,
        // Both providers list models at `/v1/models`; only Anthropic clients send this header.
        _ if headers.contains_key("anthropic-version") => Provider::Anthropic,
        _ => Provider::OpenAi,
    };
    tracing::info!(%method, %path, ?provider, "fake llm request");
    let plan = match (&method, path.as_str()) {
        (&Method::POST, "/v1/chat/completions" | "/v1/messages") => {
            chat(&shared, provider, &headers, body)
        }
        (&Method::GET, "/v1/models") => Plan::json(StatusCode::OK, provider.models()),
        _ => Plan::json(StatusCode::NOT_FOUND, provider.no_route(&method, &path)),
    };
    plan.into_response(provider)
}

fn parse_body(raw: &[u8]) -> Value {
    if raw.is_empty() {
        return Value::Null;
    }
    serde_json::from_slice(raw)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(raw).into_owned()))
}

/// Validate, take the next reply (or the fallback) and render it.
fn chat(shared: &Shared, provider: Provider, headers: &HeaderMap, body: Value) -> Plan {
    if let Err(error) = provider.validate(headers, &body) {
        return Plan::json(StatusCode::BAD_REQUEST, error);
    }
    let (next, serial) = {
        let mut script = shared.lock();
        script.serial += 1;
        let next = match script.queue.pop_front() {
            Some(reply) => Next::Scripted(reply),
            None if script.fallback == Fallback::Demo => Next::Demo,
            None => Next::Unscripted,
        };
        (next, script.serial)
    };
    let request = ChatRequest {
        provider,
        model: body["model"].as_str().unwrap_or_default().to_owned(),
        stream: body["stream"].as_bool().unwrap_or(false),
        include_usage: body["stream_options"]["include_usage"]
            .as_bool()
            .unwrap_or(false),
        body,
        serial,
    };
    // The header tells a confused reader of a captured response where it came from.
    let (reply, source) = match next {
        Next::Scripted(reply) => (reply, "scripted"),
        Next::Demo => (demo::reply(&request), "demo"),
        Next::Unscripted => {
            let message = format!(
                "fake llm: no scripted reply left for request #{serial} \
                 (push a Reply, or set Fallback::Demo)"
            );
            return error_plan(provider, 500, None, Value::String(message))
                .with_header("x-fake-llm", "unscripted");
        }
    };
    render(&request, reply).with_header("x-fake-llm", source)
}

impl Provider {
    /// `Err` holds the 400 body.
    fn validate(self, headers: &HeaderMap, body: &Value) -> Result<(), Value> {
        match self {
            Provider::OpenAi => openai::validate(body),
            Provider::Anthropic => anthropic::validate(headers, body),
        }
    }

    fn models(self) -> Value {
        match self {
            Provider::OpenAi => openai::models(),
            Provider::Anthropic => anthropic::models(),
        }
    }

    fn no_route(self, method: &Method, path: &str) -> Value {
        match self {
            Provider::OpenAi => openai::no_route(method, path),
            Provider::Anthropic => {
                anthropic::error_body(404, Some(&format!("Not found: {method} {path}")))
            }
        }
    }

    fn error_body(self, status: u16, message: Option<&str>) -> Value {
        match self {
            Provider::OpenAi => openai::error_body(status, message),
            Provider::Anthropic => anthropic::error_body(status, message),
        }
    }

    fn request_id_header(self) -> &'static str {
        match self {
            Provider::OpenAi => "x-request-id",
            Provider::Anthropic => "request-id",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Rendering replies

/// A reply as the protocol shapes it, before it becomes bytes.
struct Answer {
    text: Option<String>,
    calls: Vec<FakeToolCall>,
    usage: Usage,
}

/// One server-sent event. `delta` marks events that carry content, where faults cut in.
struct SseEvent {
    event: Option<&'static str>,
    data: String,
    delta: bool,
}

impl SseEvent {
    fn to_bytes(&self) -> Bytes {
        match self.event {
            Some(name) => format!("event: {name}\ndata: {}\n\n", self.data).into(),
            None => format!("data: {}\n\n", self.data).into(),
        }
    }
}

/// The canned text that fault replies start to stream before they break.
const CUT_SHORT_TEXT: &str = "This answer is cut short on purpose by the fake llm.";

fn render(request: &ChatRequest, reply: Reply) -> Plan {
    match reply {
        Reply::Text { text, usage } => {
            let usage = usage.unwrap_or_else(|| estimate_usage(request, &text));
            whole_or_stream(request, &answer(Some(text), Vec::new(), usage))
        }
        Reply::ToolCalls { calls, text } => {
            let produced = calls
                .iter()
                .fold(text.clone().unwrap_or_default(), |acc, call| {
                    acc + &call.name + &call.arguments.to_string()
                });
            let usage = estimate_usage(request, &produced);
            whole_or_stream(request, &answer(text, calls, usage))
        }
        Reply::Status {
            status,
            retry_after,
            body,
        } => error_plan(request.provider, status, retry_after, body),
        Reply::MalformedChunk if request.stream => {
            let events = cut_short_events(request);
            let cut = nth_delta_end(&events, 1);
            let bad = match request.provider {
                Provider::OpenAi => "data: {not json\n\n",
                Provider::Anthropic => "event: content_block_delta\ndata: {not json\n\n",
            };
            let mut pieces: Vec<Piece> = events[..cut].iter().map(Piece::event).collect();
            pieces.push(Piece::Bytes(Bytes::from_static(bad.as_bytes())));
            pieces.extend(events[cut..].iter().map(Piece::event));
            Plan::stream(pieces)
        }
        Reply::MalformedChunk => Plan {
            status: StatusCode::OK,
            content_type: "application/json",
            headers: Vec::new(),
            pieces: vec![Piece::Bytes(Bytes::from_static(
                b"{\"id\": \"fake\", \"choices\": [{not json",
            ))],
        },
        Reply::DisconnectMidStream => cut_short(request, true),
        Reply::TruncatedStream => cut_short(request, false),
        Reply::EmptyStream if request.stream => {
            let events = cut_short_events(request);
            let first_delta = events.iter().position(|e| e.delta).unwrap_or(events.len());
            Plan::stream(events[..first_delta].iter().map(Piece::event).collect())
        }
        Reply::EmptyStream => cut_short(request, false),
        Reply::StreamError { status } if request.stream => {
            let events = cut_short_events(request);
            let mut pieces: Vec<Piece> = events[..nth_delta_end(&events, 2)]
                .iter()
                .map(Piece::event)
                .collect();
            let error = request.provider.error_body(status, None);
            pieces.push(Piece::event(&match request.provider {
                Provider::OpenAi => SseEvent {
                    event: None,
                    data: error.to_string(),
                    delta: false,
                },
                Provider::Anthropic => SseEvent {
                    event: Some("error"),
                    data: error.to_string(),
                    delta: false,
                },
            }));
            Plan::stream(pieces)
        }
        Reply::StreamError { status } => error_plan(request.provider, status, None, Value::Null),
        Reply::SlowFirstToken { delay, then } => {
            let mut plan = render(request, *then);
            plan.pieces.insert(0, Piece::Pause(delay));
            plan
        }
        Reply::HugeLine { bytes } => {
            let (prefix, content_type): (&[u8], _) = if request.stream {
                (b"data: {\"pad\":\"", "text/event-stream; charset=utf-8")
            } else {
                (b"{\"pad\":\"", "application/json")
            };
            let prefix = &prefix[..prefix.len().min(bytes)];
            Plan {
                status: StatusCode::OK,
                content_type,
                headers: Vec::new(),
                pieces: vec![
                    Piece::Bytes(Bytes::copy_from_slice(prefix)),
                    Piece::Filler(bytes - prefix.len()),
                ],
            }
        }
    }
}

fn answer(text: Option<String>, calls: Vec<FakeToolCall>, usage: Usage) -> Answer {
    Answer { text, calls, usage }
}

fn whole_or_stream(request: &ChatRequest, answer: &Answer) -> Plan {
    if request.stream {
        let events = match request.provider {
            Provider::OpenAi => openai::stream(request, answer),
            Provider::Anthropic => anthropic::stream(request, answer),
        };
        Plan::stream(events.iter().map(Piece::event).collect())
    } else {
        let body = match request.provider {
            Provider::OpenAi => openai::completion(request, answer),
            Provider::Anthropic => anthropic::message(request, answer),
        };
        Plan::json(StatusCode::OK, body)
    }
}

/// The events of the canned answer that fault replies cut short.
fn cut_short_events(request: &ChatRequest) -> Vec<SseEvent> {
    let answer = answer(
        Some(CUT_SHORT_TEXT.to_owned()),
        Vec::new(),
        estimate_usage(request, CUT_SHORT_TEXT),
    );
    match request.provider {
        Provider::OpenAi => openai::stream(request, &answer),
        Provider::Anthropic => anthropic::stream(request, &answer),
    }
}

/// The index just past the `n`-th content delta (or the end).
fn nth_delta_end(events: &[SseEvent], n: usize) -> usize {
    events
        .iter()
        .enumerate()
        .filter(|(_, e)| e.delta)
        .nth(n - 1)
        .map_or(events.len(), |(i, _)| i + 1)
}

/// Start the canned answer and stop halfway, aborting the connection or ending the body cleanly.
fn cut_short(request: &ChatRequest, abort: bool) -> Plan {
    let mut plan = if request.stream {
        let events = cut_short_events(request);
        Plan::stream(
            events[..nth_delta_end(&events, 2)]
                .iter()
                .map(Piece::event)
                .collect(),
        )
    } else {
        let answer = answer(
            Some(CUT_SHORT_TEXT.to_owned()),
            Vec::new(),
            estimate_usage(request, CUT_SHORT_TEXT),
        );
        let body = match request.provider {
            Provider::OpenAi => openai::completion(request, &answer),
            Provider::Anthropic => anthropic::message(request, &answer),
        }
        .to_string();
        let half = body.len() / 2;
        Plan {
            status: StatusCode::OK,
            content_type: "application/json",
            headers: Vec::new(),
            pieces: vec![Piece::Bytes(Bytes::copy_from_slice(
                &body.as_bytes()[..half],
            ))],
        }
    };
    if abort {
        // Pausing first lets hyper flush what was written; an abort right behind the data could
        // discard it with the connection.
        plan.pieces.push(Piece::Pause(Duration::from_millis(20)));
        plan.pieces.push(Piece::Abort);
    }
    plan
}

/// An HTTP error in the provider's shape (see [`Reply::Status`] for `body`).
fn error_plan(provider: Provider, status: u16, retry_after: Option<String>, body: Value) -> Plan {
    let body = match body {
        Value::Null => provider.error_body(status, None),
        Value::String(message) => provider.error_body(status, Some(&message)),
        verbatim => verbatim,
    };
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let plan = Plan::json(status, body);
    match retry_after {
        Some(value) => plan.with_header("retry-after", &value),
        None => plan,
    }
}

/// About four bytes a token, never zero.
fn estimate_usage(request: &ChatRequest, produced: &str) -> Usage {
    let tokens = |len: usize| u32::try_from(len / 4).unwrap_or(u32::MAX).max(1);
    Usage {
        input_tokens: tokens(request.body["messages"].to_string().len()),
        output_tokens: tokens(produced.len()),
    }
}

/// Split `text` into pieces of at most `size` characters (at least one piece).
fn split_chars(text: &str, size: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    if chars.is_empty() {
        return vec![String::new()];
    }
    chars.chunks(size).map(|c| c.iter().collect()).collect()
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

// ---------------------------------------------------------------------------------------------
// Responses

/// A response to send: head, then body pieces in order.
struct Plan {
    status: StatusCode,
    content_type: &'static str,
    headers: Vec<(&'static str, String)>,
    pieces: Vec<Piece>,
}

enum Piece {
    Bytes(Bytes),
    /// Wait before the next piece (the head is already sent).
    Pause(Duration),
    /// This many `x` bytes, sent in 64 KiB pieces.
    Filler(usize),
    /// Abort the connection without finishing the body.
    Abort,
}

impl Piece {
    fn event(event: &SseEvent) -> Piece {
        Piece::Bytes(event.to_bytes())
    }
}

const FILLER_PIECE: usize = 64 * 1024;
static FILLER: [u8; FILLER_PIECE] = [b'x'; FILLER_PIECE];

impl Plan {
    fn json(status: StatusCode, body: Value) -> Plan {
        Plan {
            status,
            content_type: "application/json",
            headers: Vec::new(),
            pieces: vec![Piece::Bytes(body.to_string().into())],
        }
    }

    fn stream(pieces: Vec<Piece>) -> Plan {
        Plan {
            status: StatusCode::OK,
            content_type: "text/event-stream; charset=utf-8",
            headers: vec![("cache-control", "no-cache".to_owned())],
            pieces,
        }
    }

    fn with_header(mut self, name: &'static str, value: &str) -> Plan {
        self.headers.push((name, value.to_owned()));
        self
    }

    fn into_response(self, provider: Provider) -> Response {
        let pieces: VecDeque<Piece> = self.pieces.into();
        let body = futures::stream::unfold(pieces, |mut pieces| async move {
            loop {
                match pieces.pop_front()? {
                    Piece::Bytes(bytes) => return Some((Ok(bytes), pieces)),
                    Piece::Pause(delay) => tokio::time::sleep(delay).await,
                    Piece::Filler(0) => {}
                    Piece::Filler(left) => {
                        let now = left.min(FILLER_PIECE);
                        pieces.push_front(Piece::Filler(left - now));
                        return Some((Ok(Bytes::from_static(&FILLER[..now])), pieces));
                    }
                    Piece::Abort => {
                        pieces.clear();
                        let error = io::Error::new(io::ErrorKind::ConnectionAborted, "fake abort");
                        return Some((Err(error), pieces));
                    }
                }
            }
        });
        let mut response = Response::new(Body::from_stream(body));
        *response.status_mut() = self.status;
        let out = response.headers_mut();
        out.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(self.content_type),
        );
        out.insert(
            provider.request_id_header(),
            HeaderValue::from_static("req_fake_llm"),
        );
        for (name, value) in self.headers {
            if let Ok(value) = HeaderValue::from_str(&value) {
                out.insert(name, value);
            }
        }
        response
    }
}
