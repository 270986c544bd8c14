//! The judged load generator: a wrk-style HTTP/1.1 client. Each caller in flight owns one
//! keep-alive connection and drives it from its own task: the request is prepared once and
//! written with one call, the response read into a reused buffer and parsed in place (`httparse`,
//! the parser hyper itself uses). No connection task, no header map, no body stream: the client,
//! the server and the testkit child share two cores, so what the load generator spends is taken
//! from the server it measures. `--breakdown` measures hyper's and reqwest's clients too.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::idle::Idle;

/// Largest response head the client accepts; the bench's answers are a few hundred bytes.
const MAX_HEADERS: usize = 32;
const READ_CHUNK: usize = 8 * 1024;

struct Connection {
    stream: TcpStream,
    buf: Vec<u8>,
}

/// Idle connections: a caller takes one (or opens one) and puts it back after its call.
#[derive(Clone)]
pub(crate) struct RawClient {
    addr: SocketAddr,
    idle: Idle<Connection>,
}

/// One request's bytes, built once and sent for every call.
pub(crate) type RawRequest = Arc<[u8]>;

impl RawClient {
    pub(crate) fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            idle: Idle::new(),
        }
    }

    /// `method path` with a JSON `body` (none when empty), as HTTP/1.1 bytes.
    pub(crate) fn request(&self, method: &str, path: &str, body: &[u8]) -> RawRequest {
        self.request_as(method, path, body, None)
    }

    /// [`RawClient::request`] sent with `Authorization: Bearer token` when there is one.
    pub(crate) fn request_as(
        &self,
        method: &str,
        path: &str,
        body: &[u8],
        bearer: Option<&str>,
    ) -> RawRequest {
        let mut bytes = format!("{method} {path} HTTP/1.1\r\nhost: {}\r\n", self.addr).into_bytes();
        if let Some(token) = bearer {
            bytes.extend_from_slice(format!("authorization: Bearer {token}\r\n").as_bytes());
        }
        if !body.is_empty() {
            bytes.extend_from_slice(
                format!(
                    "content-type: application/json\r\ncontent-length: {}\r\n",
                    body.len()
                )
                .as_bytes(),
            );
        }
        bytes.extend_from_slice(b"\r\n");
        bytes.extend_from_slice(body);
        bytes.into()
    }

    /// Sends `request` and reads the whole response; fails unless it is a 2xx with a
    /// `content-length` (what Switchboard's JSON answers carry).
    pub(crate) async fn send(&self, request: &[u8]) -> anyhow::Result<()> {
        let pooled = self.idle.take();
        let mut connection = match pooled {
            Some(connection) => connection,
            None => self.connect().await?,
        };
        connection.stream.write_all(request).await?;
        connection.buf.clear();
        loop {
            connection.buf.reserve(READ_CHUNK);
            let read = connection.stream.read_buf(&mut connection.buf).await?;
            anyhow::ensure!(read > 0, "the server closed the connection mid-response");
            if let Some(status) = complete_response(&connection.buf)? {
                anyhow::ensure!(
                    (200..300).contains(&status),
                    "answered {status}: {}",
                    String::from_utf8_lossy(&connection.buf)
                );
                break;
            }
        }
        self.idle.put(connection);
        Ok(())
    }

    async fn connect(&self) -> anyhow::Result<Connection> {
        let stream = TcpStream::connect(self.addr).await.context("connecting")?;
        stream.set_nodelay(true)?;
        Ok(Connection {
            stream,
            buf: Vec::with_capacity(READ_CHUNK),
        })
    }
}

/// The status code once `buf` holds a whole response (head and `content-length` body).
fn complete_response(buf: &[u8]) -> anyhow::Result<Option<u16>> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let httparse::Status::Complete(head) = response.parse(buf).context("parsing the response")?
    else {
        return Ok(None);
    };
    let length: usize = response
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
        .and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse().ok())
        .context("the response has no content-length")?;
    Ok((buf.len() >= head + length).then_some(response.code.unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use super::complete_response;

    #[test]
    fn a_response_is_complete_with_its_whole_body() {
        let head = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n";
        assert_eq!(complete_response(&head[..10]).expect("partial head"), None);
        let mut full = head.to_vec();
        full.extend_from_slice(b"hel");
        assert_eq!(complete_response(&full).expect("partial body"), None);
        full.extend_from_slice(b"lo");
        assert_eq!(complete_response(&full).expect("whole"), Some(200));
        let chunked = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n";
        assert!(complete_response(chunked).is_err(), "no content-length");
    }
}
