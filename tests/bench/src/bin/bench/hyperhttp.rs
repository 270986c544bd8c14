//! A `--breakdown` load generator: hyper's own HTTP/1.1 client connection
//! (`hyper::client::conn::http1`), one keep-alive connection per caller in flight, as load tools
//! built on hyper drive a server. It costs more CPU per call than the judged wrk-style client
//! (`rawhttp.rs`: a connection task, a header map and a body stream per response) and less than
//! reqwest (a pool, URL parsing and a tower stack per request); the report shows all three.

use std::net::SocketAddr;

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::idle::Idle;

/// Idle connections: a caller takes one (or opens one) and puts it back after its call.
#[derive(Clone)]
pub(crate) struct HyperClient {
    addr: SocketAddr,
    idle: Idle<SendRequest<Full<Bytes>>>,
}

impl HyperClient {
    pub(crate) fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            idle: Idle::new(),
        }
    }

    /// Sends `method path` with `body` (JSON when present); fails unless the answer is a 2xx.
    /// The whole response body is read, so the connection is ready for the next request.
    pub(crate) async fn send(
        &self,
        method: &http::Method,
        path: &str,
        body: Option<&Bytes>,
    ) -> anyhow::Result<()> {
        let pooled = self.idle.take();
        let mut sender = match pooled {
            Some(sender) => sender,
            None => self.connect().await?,
        };
        let mut request = http::Request::builder()
            .method(method)
            .uri(path)
            .header(http::header::HOST, self.addr.to_string());
        if body.is_some() {
            request = request.header(http::header::CONTENT_TYPE, "application/json");
        }
        let request = request.body(Full::new(body.cloned().unwrap_or_default()))?;
        sender.ready().await.context("connection not ready")?;
        let response = sender.send_request(request).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        anyhow::ensure!(
            status.is_success(),
            "{method} {path} answered {status}: {}",
            String::from_utf8_lossy(&body)
        );
        self.idle.put(sender);
        Ok(())
    }

    async fn connect(&self) -> anyhow::Result<SendRequest<Full<Bytes>>> {
        let stream = TcpStream::connect(self.addr).await.context("connecting")?;
        stream.set_nodelay(true)?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .context("HTTP/1.1 handshake")?;
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                eprintln!("bench: HTTP connection failed: {err}");
            }
        });
        Ok(sender)
    }
}
