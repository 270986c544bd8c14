//! The OTLP exporter's HTTP client: our async `reqwest` client, run on our tokio runtime.
//!
//! The SDK's batch processor exports from its own thread with a plain `block_on`, where an async
//! `reqwest` call would find no tokio reactor. Each request is therefore spawned onto the runtime
//! that started telemetry, and the exporter thread only waits for the result.

use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};

/// Largest collector response we read (OTLP responses are tiny; partial-success details at most).
const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

#[derive(Debug)]
pub(crate) struct RuntimeClient {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

impl RuntimeClient {
    pub(crate) fn new(client: reqwest::Client, runtime: tokio::runtime::Handle) -> Self {
        Self { client, runtime }
    }
}

#[async_trait::async_trait]
impl HttpClient for RuntimeClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let request = reqwest::Request::try_from(request)?;
        let client = self.client.clone();
        self.runtime
            .spawn(async move {
                let mut response = client.execute(request).await?;
                let status = response.status();
                let headers = std::mem::take(response.headers_mut());
                let mut body = Vec::new();
                while let Some(chunk) = response.chunk().await? {
                    if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                        return Err(HttpError::from("the collector's response is too large"));
                    }
                    body.extend_from_slice(&chunk);
                }
                let mut out = Response::builder().status(status).body(Bytes::from(body))?;
                *out.headers_mut() = headers;
                Ok(out)
            })
            .await?
    }
}
