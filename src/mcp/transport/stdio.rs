//! The stdio transport: newline-delimited JSON-RPC over a child's stdin and stdout, built for the
//! hot path of tool calls.
//!
//! rmcp's `AsyncRwTransport` would work, but every call pays for what a hub with many calls in
//! flight does not need: each outgoing message takes an async mutex and flushes its own write,
//! and each answer is decoded by trying every shape of message and of result in turn (serde's
//! buffered untagged enums). This transport
//! - encodes a message as it is handed over and queues the bytes; one writer task writes
//!   whatever has queued up in one go, so a burst of calls costs one pipe write, not one each;
//! - remembers which requests in flight are `tools/call`, and decodes their answers straight
//!   into a `CallToolResult`; everything else takes rmcp's general decoding;
//! - caps a stdout frame, failing the stream (and saying so through [`FrameOverflow`]) instead
//!   of buffering a server that writes without newlines;
//! - answers a call whose response cannot be decoded with an error for that call at once,
//!   instead of leaving it to its timeout, and refuses a request from the server that cannot be
//!   decoded (Invalid Request) instead of leaving the server waiting;
//! - cuts what is nested too deep for serde_json out of a frame first ([`super::depth`]), so one
//!   deep value spoils only itself, not the whole message.

use std::collections::HashSet;
use std::io;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rmcp::RoleClient;
use rmcp::model::{
    CallToolResult, ClientNotification, ClientRequest, ErrorData, JsonRpcMessage, RequestId,
    ServerResult,
};
use rmcp::service::{RxJsonRpcMessage, TxJsonRpcMessage};
use rmcp::transport::Transport;
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::depth;

/// Largest JSON-RPC frame (one line) accepted from a stdio server.
pub const MAX_FRAME_BYTES: usize = 16 * 1024 * 1024;

/// Frames queued for the writer before senders wait: enough for every call of a busy server in
/// flight at once, small enough that a child that stops reading cannot grow our memory.
const WRITE_QUEUE: usize = 1024;
/// Most frames the writer joins into one write.
const WRITE_BATCH: usize = 64;
/// How long `close` lets queued frames drain to a child that is still reading.
const CLOSE_DRAIN: Duration = Duration::from_millis(200);
/// Bytes read from stdout at a time.
const READ_CHUNK: usize = 64 * 1024;
/// Bound on remembered `tools/call` ids: a server that never answers cancelled calls must not
/// grow this set; forgetting an id only means its answer takes the general decoding.
const MAX_TRACKED_CALLS: usize = 4096;

/// Whether the transport failed its stdout stream for a frame over the cap, and why. rmcp only
/// sees a closed connection, so the session keeps this to say what happened.
#[derive(Debug, Clone, Default)]
pub struct FrameOverflow(Arc<OnceLock<String>>);

impl FrameOverflow {
    /// The reason the stream failed, once it has.
    pub fn message(&self) -> Option<String> {
        self.0.get().cloned()
    }
}

/// A client transport over a child's stdout (`reader`) and stdin (`writer`).
pub struct StdioTransport<R> {
    reader: R,
    buf: Vec<u8>,
    /// Start of the first frame not yet handed out.
    start: usize,
    /// Bytes before this offset (and after `start`) are known to hold no newline.
    scanned: usize,
    max_frame: usize,
    overflow: FrameOverflow,
    /// Ids of `tools/call` requests sent and not yet answered.
    calls: HashSet<RequestId>,
    queue: Option<mpsc::Sender<Vec<u8>>>,
    writer: Option<JoinHandle<()>>,
}

impl<R: AsyncRead + Unpin + Send> StdioTransport<R> {
    /// Start the writer task for `writer` and read frames of at most `max_frame` bytes from
    /// `reader`. Must be called inside a tokio runtime.
    pub fn new<W>(reader: R, writer: W, max_frame: usize) -> Self
    where
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let (queue, frames) = mpsc::channel(WRITE_QUEUE);
        Self {
            reader,
            buf: Vec::new(),
            start: 0,
            scanned: 0,
            max_frame,
            overflow: FrameOverflow::default(),
            calls: HashSet::new(),
            queue: Some(queue),
            writer: Some(tokio::spawn(write_frames(writer, frames))),
        }
    }

    /// A handle that tells, later, whether this transport tripped its frame cap.
    pub fn overflow(&self) -> FrameOverflow {
        self.overflow.clone()
    }

    /// Remember or forget call ids as messages go out.
    fn track_outgoing(&mut self, message: &TxJsonRpcMessage<RoleClient>) {
        match message {
            JsonRpcMessage::Request(request)
                if matches!(request.request, ClientRequest::CallToolRequest(_)) =>
            {
                if self.calls.len() >= MAX_TRACKED_CALLS {
                    self.calls.clear();
                }
                self.calls.insert(request.id.clone());
            }
            JsonRpcMessage::Notification(notification) => {
                if let ClientNotification::CancelledNotification(cancelled) =
                    &notification.notification
                    && let Some(id) = &cancelled.params.request_id
                {
                    self.calls.remove(id);
                }
            }
            _ => {}
        }
    }

    /// Answer a request we could not read with Invalid Request, without waiting: if the queue
    /// is full or closed the server is past hearing it anyway.
    fn refuse(&self, id: RequestId) {
        let refusal: TxJsonRpcMessage<RoleClient> = JsonRpcMessage::error(
            ErrorData::invalid_request("the request could not be read", None),
            Some(id),
        );
        if let (Some(queue), Ok(frame)) = (&self.queue, frame(&refusal)) {
            let _ = queue.try_send(frame);
        }
    }

    /// The next complete line in the buffer, if there is one, as a range of `buf`.
    fn next_line(&mut self) -> Option<(usize, usize)> {
        let newline = self.buf[self.scanned..].iter().position(|b| *b == b'\n');
        match newline {
            Some(offset) => {
                let end = self.scanned + offset;
                let line = (self.start, end);
                self.start = end + 1;
                self.scanned = self.start;
                Some(line)
            }
            None => {
                self.scanned = self.buf.len();
                None
            }
        }
    }

    /// Read more of stdout into the buffer. `Ok(false)` at end of stream.
    async fn fill(&mut self) -> io::Result<bool> {
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
            self.scanned = 0;
        } else if self.start > 0 {
            self.buf.drain(..self.start);
            self.scanned -= self.start;
            self.start = 0;
        }
        if self.buf.len() > self.max_frame {
            let message = format!(
                "stdout frame exceeded {} bytes without a newline",
                self.max_frame
            );
            let _ = self.overflow.0.set(message.clone());
            return Err(io::Error::new(io::ErrorKind::InvalidData, message));
        }
        self.buf.reserve(READ_CHUNK);
        // Cancel-safe: bytes are either appended to `buf` or not read at all.
        Ok(self.reader.read_buf(&mut self.buf).await? > 0)
    }
}

impl<R: AsyncRead + Unpin + Send> Transport<RoleClient> for StdioTransport<R> {
    type Error = io::Error;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleClient>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        self.track_outgoing(&item);
        let frame = frame(&item);
        let queue = self.queue.clone();
        async move {
            let frame = frame.map_err(io::Error::other)?;
            let closed =
                || io::Error::new(io::ErrorKind::BrokenPipe, "the server's stdin is closed");
            queue
                .ok_or_else(closed)?
                .send(frame)
                .await
                .map_err(|_| closed())
        }
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleClient>> {
        loop {
            while let Some((start, end)) = self.next_line() {
                match decode(&self.buf[start..end], &mut self.calls) {
                    Decoded::Message(message) => return Some(message),
                    Decoded::Refuse(id) => self.refuse(id),
                    Decoded::Skip => {}
                }
            }
            match self.fill().await {
                Ok(true) => {}
                Ok(false) => return None,
                Err(err) => {
                    tracing::debug!(error = %err, "stdio transport: stdout ended");
                    return None;
                }
            }
        }
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        // Dropping the queue lets the writer drain what is queued and exit, which closes the
        // child's stdin: the first step of its shutdown.
        self.queue = None;
        if let Some(mut writer) = self.writer.take()
            && tokio::time::timeout(CLOSE_DRAIN, &mut writer)
                .await
                .is_err()
        {
            writer.abort();
        }
        Ok(())
    }
}

/// One message as a stdio frame: its JSON on one line.
fn frame(message: &TxJsonRpcMessage<RoleClient>) -> serde_json::Result<Vec<u8>> {
    let mut bytes = serde_json::to_vec(message)?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// The writer task: waits for a frame, then writes it together with every frame queued behind
/// it. Ends (closing the child's stdin) when the transport closes or a write fails.
async fn write_frames<W: AsyncWrite + Unpin>(mut writer: W, mut frames: mpsc::Receiver<Vec<u8>>) {
    let mut batch = Vec::with_capacity(WRITE_BATCH);
    let mut joined = Vec::new();
    while frames.recv_many(&mut batch, WRITE_BATCH).await > 0 {
        let result = if let [frame] = batch.as_slice() {
            writer.write_all(frame).await
        } else {
            joined.clear();
            for frame in &batch {
                joined.extend_from_slice(frame);
            }
            writer.write_all(&joined).await
        };
        batch.clear();
        if let Err(err) = result {
            tracing::debug!(error = %err, "stdio transport: writing to the server's stdin failed");
            return;
        }
    }
    let _ = writer.shutdown().await;
}

/// A response whose request was a `tools/call`, decoded straight into its result type.
#[derive(Deserialize)]
struct CallResponse {
    id: RequestId,
    result: CallToolResult,
}

/// Just enough of a message to route a failure to the call waiting for it.
#[derive(Deserialize)]
struct Envelope {
    id: Option<RequestId>,
    method: Option<serde::de::IgnoredAny>,
}

/// What one line from the server turned out to be.
#[expect(
    clippy::large_enum_variant,
    reason = "returned and consumed at once; boxing would allocate for every message"
)]
enum Decoded {
    /// A message for the service (possibly an error standing in for an unreadable answer).
    Message(RxJsonRpcMessage<RoleClient>),
    /// A request the server sent that we cannot read: it gets an Invalid Request error back,
    /// so the server is not left waiting.
    Refuse(RequestId),
    /// Nothing to do: a blank line, a notification we cannot type, a line that is not JSON-RPC.
    Skip,
}

/// One line from the server, decoded.
fn decode(line: &[u8], calls: &mut HashSet<RequestId>) -> Decoded {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
    if line.iter().all(u8::is_ascii_whitespace) {
        return Decoded::Skip;
    }
    let line = depth::prune(line, depth::MAX_MESSAGE_DEPTH);
    let line = &line[..];
    if !calls.is_empty()
        && let Ok(response) = serde_json::from_slice::<CallResponse>(line)
        && calls.remove(&response.id)
    {
        return Decoded::Message(JsonRpcMessage::response(
            ServerResult::CallToolResult(response.result),
            response.id,
        ));
    }
    match serde_json::from_slice::<RxJsonRpcMessage<RoleClient>>(line) {
        Ok(message) => {
            if let JsonRpcMessage::Response(response) = &message {
                calls.remove(&response.id);
            } else if let JsonRpcMessage::Error(error) = &message
                && let Some(id) = &error.id
            {
                calls.remove(id);
            }
            Decoded::Message(message)
        }
        Err(err) => unreadable(line, &err, calls),
    }
}

/// A line that is not a message we know. An answer (an id, no method) becomes an error for the
/// request it answers, so the caller hears at once; a request (an id and a method) is refused;
/// anything else is skipped.
fn unreadable(line: &[u8], err: &serde_json::Error, calls: &mut HashSet<RequestId>) -> Decoded {
    match serde_json::from_slice::<Envelope>(line) {
        Ok(Envelope {
            id: Some(id),
            method: None,
        }) => {
            tracing::warn!(error = %err, "stdio transport: a response from the server could not be read");
            calls.remove(&id);
            Decoded::Message(JsonRpcMessage::error(
                ErrorData::internal_error(
                    format!("the server's response could not be read: {err}"),
                    None,
                ),
                Some(id),
            ))
        }
        Ok(Envelope {
            id: Some(id),
            method: Some(_),
        }) => {
            tracing::warn!(error = %err, "stdio transport: refusing a request from the server it cannot read");
            Decoded::Refuse(id)
        }
        // Notifications we cannot type (other protocols sharing stdout, newer methods) are
        // skipped, as rmcp's own transport does.
        Ok(_) => {
            tracing::debug!(error = %err, "stdio transport: skipping a message it cannot read");
            Decoded::Skip
        }
        Err(_) => {
            tracing::debug!(error = %err, "stdio transport: skipping a line that is not JSON-RPC");
            Decoded::Skip
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmcp::model::{CallToolRequest, CallToolRequestParams, NumberOrString};
    use tokio::io::{AsyncBufReadExt, BufReader};

    fn call(id: i64) -> TxJsonRpcMessage<RoleClient> {
        JsonRpcMessage::request(
            ClientRequest::CallToolRequest(CallToolRequest::new(CallToolRequestParams::new(
                "echo",
            ))),
            NumberOrString::Number(id),
        )
    }

    /// A transport whose stdout is `server_out` and whose stdin lines arrive on the returned
    /// reader.
    fn transport(
        server_out: &'static [u8],
        max: usize,
    ) -> (
        StdioTransport<&'static [u8]>,
        tokio::io::Lines<BufReader<tokio::io::DuplexStream>>,
    ) {
        let (ours, theirs) = tokio::io::duplex(1 << 20);
        let transport = StdioTransport::new(server_out, ours, max);
        (transport, BufReader::new(theirs).lines())
    }

    #[tokio::test]
    async fn call_answers_decode_as_call_results() {
        let (mut transport, mut stdin) = transport(
            b"{\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"content\":[{\"type\":\"text\",\"text\":\"hi\"}]}}\n",
            1024,
        );
        transport.send(call(7)).await.expect("queued");
        let sent = stdin.next_line().await.expect("read").expect("a line");
        assert!(
            sent.contains("\"tools/call\"") && sent.contains("\"id\":7"),
            "{sent}"
        );
        let Some(JsonRpcMessage::Response(response)) = transport.receive().await else {
            panic!("expected a response");
        };
        assert_eq!(response.id, NumberOrString::Number(7));
        let ServerResult::CallToolResult(result) = response.result else {
            panic!("expected a call result");
        };
        assert_eq!(result.content.len(), 1);
        assert!(transport.calls.is_empty(), "the answered id is forgotten");
    }

    #[tokio::test]
    async fn other_messages_take_the_general_decoding() {
        let (mut transport, _stdin) = transport(
            b"\r\n{\"jsonrpc\":\"2.0\",\"method\":\"notifications/tools/list_changed\"}\r\n{\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{}}\n",
            1024,
        );
        assert!(matches!(
            transport.receive().await,
            Some(JsonRpcMessage::Notification(_))
        ));
        assert!(matches!(
            transport.receive().await,
            Some(JsonRpcMessage::Response(_))
        ));
        assert!(transport.receive().await.is_none(), "end of stream");
    }

    #[tokio::test]
    async fn an_unreadable_answer_fails_its_call_at_once() {
        let (mut transport, _stdin) = transport(
            b"not json at all\n{\"jsonrpc\":\"2.0\",\"method\":\"x/unknown\"}\n{\"jsonrpc\":\"1.0\",\"id\":9,\"result\":{}}\n",
            1024,
        );
        transport.send(call(9)).await.expect("queued");
        // The line that is not JSON is skipped; an unknown method is still a (custom) notification.
        assert!(matches!(
            transport.receive().await,
            Some(JsonRpcMessage::Notification(_))
        ));
        let Some(JsonRpcMessage::Error(error)) = transport.receive().await else {
            panic!("expected an error for call 9");
        };
        assert_eq!(error.id, Some(NumberOrString::Number(9)));
        assert!(
            error.error.message.contains("could not be read"),
            "{:?}",
            error.error
        );
    }

    #[tokio::test]
    async fn an_unreadable_request_is_refused() {
        let (mut transport, mut stdin) = transport(
            b"{\"jsonrpc\":\"2.0\",\"id\":\"s1\",\"method\":\"sampling/createMessage\",\"params\":7}\n",
            1024,
        );
        assert!(
            transport.receive().await.is_none(),
            "nothing for the service"
        );
        let refusal = stdin.next_line().await.expect("read").expect("a line");
        let refusal: serde_json::Value = serde_json::from_str(&refusal).expect("JSON");
        assert_eq!(refusal["id"], "s1");
        assert_eq!(refusal["error"]["code"], -32600, "{refusal}");
    }

    #[tokio::test]
    async fn a_frame_over_the_cap_fails_the_stream() {
        static FLOOD: [u8; 4096] = [b'x'; 4096];
        let (mut transport, _stdin) = transport(&FLOOD, 1000);
        let overflow = transport.overflow();
        assert!(transport.receive().await.is_none());
        let message = overflow.message().expect("the cap tripped");
        assert!(message.contains("1000 bytes"), "{message}");
    }

    #[tokio::test]
    async fn queued_frames_reach_stdin_in_order_and_close_ends_it() {
        let (mut transport, mut stdin) = transport(b"", 1024);
        for id in 0..200 {
            transport.send(call(id)).await.expect("queued");
        }
        transport.close().await.expect("closed");
        for id in 0..200 {
            let line = stdin.next_line().await.expect("read").expect("a line");
            assert!(line.contains(&format!("\"id\":{id},")), "{line}");
        }
        assert!(
            stdin.next_line().await.expect("read").is_none(),
            "stdin closed"
        );
        assert!(
            transport.send(call(1)).await.is_err(),
            "sending after close fails"
        );
    }
}
