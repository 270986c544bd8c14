//! A minimal HTTP/1.1 keep-alive client for `--breakdown`: one fixed request written as bytes,
//! the response read up to its `Content-Length`. It shows how much of the HTTP path's cost is
//! the load generator (reqwest) rather than the server.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Idle connections, one per caller at most; a caller takes one and puts it back.
#[derive(Clone)]
pub(crate) struct RawClient {
    addr: SocketAddr,
    idle: Arc<Mutex<Vec<TcpStream>>>,
}

impl RawClient {
    pub(crate) fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            idle: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// `POST path` with a JSON body; fails unless the answer is a 2xx with a `Content-Length`.
    pub(crate) fn post_json(&self, path: &str, body: &str) -> Arc<[u8]> {
        format!(
            "POST {path} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            self.addr,
            body.len()
        )
        .into_bytes()
        .into()
    }

    pub(crate) async fn send(&self, request: &[u8]) -> anyhow::Result<()> {
        let pooled = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let mut stream = match pooled {
            Some(stream) => stream,
            None => {
                let stream = TcpStream::connect(self.addr).await.context("connecting")?;
                stream.set_nodelay(true)?;
                stream
            }
        };
        stream.write_all(request).await?;
        read_response(&mut stream).await?;
        self.idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(stream);
        Ok(())
    }
}

async fn read_response(stream: &mut TcpStream) -> anyhow::Result<()> {
    let mut buf = Vec::with_capacity(2048);
    let mut chunk = [0u8; 4096];
    let (head_end, body_len) = loop {
        let n = stream.read(&mut chunk).await?;
        anyhow::ensure!(n > 0, "connection closed mid-response");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = std::str::from_utf8(&buf[..end]).context("response head")?;
            let status = head.split(' ').nth(1).unwrap_or("");
            anyhow::ensure!(status.starts_with('2'), "answered {status}");
            let length = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())?
                })
                .context("no content-length in the response")?;
            break (end + 4, length);
        }
    };
    while buf.len() < head_end + body_len {
        let n = stream.read(&mut chunk).await?;
        anyhow::ensure!(n > 0, "connection closed mid-body");
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(())
}
