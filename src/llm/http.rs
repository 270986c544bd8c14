//! What both providers share on the wire: sending with retries (429 honouring `Retry-After`,
//! 5xx, connection errors; never other 4xx), mapping HTTP failures to [`LlmError`], and reading
//! an SSE body with a first-token timeout, a total deadline and bounded buffers.

use std::time::{Duration, Instant};

use futures::StreamExt;
use reqwest::{RequestBuilder, Response, StatusCode};

use super::error::{LlmError, scrub};
use crate::config::model::{ModelConfig, RetryPolicy};
use crate::sse::{SseDecoder, SseEvent};

/// Longest SSE line / event accepted from a provider: a 10 MB line is an error, not a buffer.
const MAX_SSE_LINE: usize = 4 * 1024 * 1024;
const MAX_SSE_EVENT: usize = 8 * 1024 * 1024;
/// Largest non-streamed response body we read.
const MAX_JSON_BODY: usize = 32 * 1024 * 1024;

/// Everything a provider client needs about its model, resolved once from config.
pub(crate) struct ModelContext {
    pub(crate) name: String,
    pub(crate) config: ModelConfig,
    pub(crate) http: reqwest::Client,
}

impl ModelContext {
    pub(crate) fn key(&self) -> Option<&str> {
        self.config.api_key.as_ref().map(|k| k.expose())
    }

    /// Configured headers plus `traceparent`, applied to a request.
    pub(crate) fn decorate(
        &self,
        mut request: RequestBuilder,
        traceparent: Option<&str>,
    ) -> RequestBuilder {
        for (name, value) in &self.config.headers {
            request = request.header(name, value);
        }
        if let Some(traceparent) = traceparent {
            request = request.header("traceparent", traceparent);
        }
        request.timeout(self.config.timeout)
    }

    pub(crate) fn malformed(&self, message: impl Into<String>) -> LlmError {
        LlmError::Malformed {
            model: self.name.clone(),
            message: scrub(&message.into(), self.key()),
        }
    }

    pub(crate) fn timeout(&self, what: &'static str, after: Duration) -> LlmError {
        LlmError::Timeout {
            model: self.name.clone(),
            what,
            after,
        }
    }
}

/// Pulls the human message out of a provider's error body (each provider has its own shape).
pub(crate) type ErrorMessage = fn(&serde_json::Value) -> Option<String>;

/// Send the request built by `build` until it succeeds, a non-retryable failure occurs, the
/// attempts run out, or the retry deadline would pass. Returns the successful response.
pub(crate) async fn send_with_retry(
    ctx: &ModelContext,
    error_message: ErrorMessage,
    build: impl Fn() -> RequestBuilder,
) -> Result<Response, LlmError> {
    let started = Instant::now();
    let mut attempt = 1;
    loop {
        let error = match send_once(ctx, error_message, &build).await {
            Ok(response) => return Ok(response),
            Err(error) => error,
        };
        let Some(delay) = next_delay(&ctx.config.retry, attempt, started, &error) else {
            return Err(error);
        };
        tracing::warn!(model = %ctx.name, attempt, delay_ms = delay.as_millis() as u64, error = %error, "model call failed; retrying");
        tokio::time::sleep(delay).await;
        attempt += 1;
    }
}

/// One attempt: the response when its status is a success, else the classified failure.
pub(crate) async fn send_once(
    ctx: &ModelContext,
    error_message: ErrorMessage,
    build: &impl Fn() -> RequestBuilder,
) -> Result<Response, LlmError> {
    match build().send().await {
        Ok(response) if response.status().is_success() => Ok(response),
        Ok(response) => Err(classify_response(ctx, response, error_message).await),
        Err(err) => Err(classify_transport(ctx, &err)),
    }
}

/// `Some(delay)` when another attempt should be made after `error`.
pub(crate) fn next_delay(
    policy: &RetryPolicy,
    attempt: u32,
    started: Instant,
    error: &LlmError,
) -> Option<Duration> {
    let hint = error.retry_hint()?;
    if attempt >= policy.max_attempts {
        return None;
    }
    let exp = policy
        .initial_backoff
        .saturating_mul(1 << (attempt - 1).min(16))
        .min(policy.max_backoff);
    let jittered = exp.mul_f64(0.8 + fastrand::f64() * 0.4);
    // The provider's Retry-After wins over our own schedule, even when longer than max_backoff.
    let delay = hint.unwrap_or(jittered);
    if started.elapsed() + delay > policy.deadline {
        return None;
    }
    Some(delay)
}

/// Map a connection-level failure. A request `server.outbound` stopped (a refused address, a
/// redirect to another origin) makes the model unavailable with that reason: it is the same at
/// every attempt, so it is not retried.
pub(crate) fn classify_transport(ctx: &ModelContext, err: &reqwest::Error) -> LlmError {
    if let Some(blocked) = crate::outbound::blocked_in(err) {
        return LlmError::Unavailable {
            model: ctx.name.clone(),
            reason: blocked.to_string(),
        };
    }
    if err.is_timeout() {
        return ctx.timeout("request", ctx.config.timeout);
    }
    LlmError::ProviderDown {
        model: ctx.name.clone(),
        message: scrub(&describe_reqwest(err), ctx.key()),
    }
}

fn describe_reqwest(err: &reqwest::Error) -> String {
    // reqwest's Display includes the URL, which may carry a key in its query; show the cause chain instead.
    let mut text = if err.is_connect() {
        "could not connect".to_owned()
    } else {
        "request failed".to_owned()
    };
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Map a non-success HTTP response (reads a bounded part of its body for the message).
pub(crate) async fn classify_response(
    ctx: &ModelContext,
    response: Response,
    error_message: ErrorMessage,
) -> LlmError {
    let status = response.status();
    let retry_after = retry_after(&response);
    let body = read_capped(response, 64 * 1024).await.unwrap_or_default();
    let json: Option<serde_json::Value> = serde_json::from_slice(&body).ok();
    let raw_message = json
        .as_ref()
        .and_then(error_message)
        .unwrap_or_else(|| String::from_utf8_lossy(&body).trim().to_owned());
    let message = scrub(&raw_message, ctx.key());
    let lower = message.to_lowercase();
    let model = ctx.name.clone();
    match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => LlmError::Auth {
            model,
            status: status.as_u16(),
        },
        StatusCode::TOO_MANY_REQUESTS => LlmError::RateLimited { model, retry_after },
        StatusCode::NOT_FOUND if lower.contains("model") || lower.is_empty() => {
            LlmError::ModelNotFound {
                model,
                provider_model: ctx.config.model_name.clone(),
            }
        }
        _ if status.is_server_error() || status.as_u16() == 529 => LlmError::ProviderDown {
            model,
            message: format!("HTTP {}: {message}", status.as_u16()),
        },
        _ if is_context_overflow(&lower) => LlmError::ContextTooLong { model, message },
        _ => LlmError::BadRequest {
            model,
            status: status.as_u16(),
            message,
        },
    }
}

fn is_context_overflow(lower: &str) -> bool {
    [
        "context_length_exceeded",
        "context length",
        "maximum context",
        "prompt is too long",
        "too many tokens",
    ]
    .iter()
    .any(|needle| lower.contains(needle))
}

/// `Retry-After` in seconds or as an HTTP date, or OpenAI's `retry-after-ms`.
fn retry_after(response: &Response) -> Option<Duration> {
    let headers = response.headers();
    if let Some(ms) = headers
        .get("retry-after-ms")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|ms| ms.is_finite() && *ms >= 0.0)
    {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    let value = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0)
            .then(|| Duration::from_secs_f64(secs.min(3600.0)));
    }
    let when = httpdate_to_unix(value)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs();
    Some(Duration::from_secs(when.saturating_sub(now).min(3600)))
}

/// Parse an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) to Unix seconds.
fn httpdate_to_unix(value: &str) -> Option<u64> {
    let parts: Vec<&str> = value.split_whitespace().collect();
    let [_, day, month, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| m == month)? as i64
        + 1;
    let (day, year): (i64, i64) = (day.parse().ok()?, year.parse().ok()?);
    let mut hms = time.split(':').map(|p| p.parse::<i64>().ok());
    let (h, m, s) = (hms.next()??, hms.next()??, hms.next()??);
    // Days from civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + h * 3600 + m * 60 + s).ok()
}

/// Read at most `cap` bytes of a body.
pub(crate) async fn read_capped(response: Response, cap: usize) -> Result<Vec<u8>, reqwest::Error> {
    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        let room = cap.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= cap {
            break;
        }
    }
    Ok(body)
}

/// Read a whole JSON response body (bounded) and parse it.
pub(crate) async fn read_json(
    ctx: &ModelContext,
    response: Response,
) -> Result<serde_json::Value, LlmError> {
    let body = read_capped(response, MAX_JSON_BODY + 1)
        .await
        .map_err(|err| classify_transport(ctx, &err))?;
    if body.len() > MAX_JSON_BODY {
        return Err(ctx.malformed(format!("response body larger than {MAX_JSON_BODY} bytes")));
    }
    serde_json::from_slice(&body)
        .map_err(|err| ctx.malformed(format!("response is not JSON: {err}")))
}

/// Reads SSE events from a streamed response, enforcing the first-event timeout and the
/// request deadline.
pub(crate) struct SseReader {
    body: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    decoder: SseDecoder,
    pending: std::collections::VecDeque<SseEvent>,
    deadline: tokio::time::Instant,
    first_deadline: Option<tokio::time::Instant>,
}

/// Why reading the stream stopped early.
pub(crate) enum SseReadError {
    FirstTokenTimeout,
    Deadline,
    Broken(String),
}

impl SseReader {
    pub(crate) fn new(
        response: Response,
        ctx: &ModelContext,
        started: tokio::time::Instant,
    ) -> Self {
        Self {
            body: response.bytes_stream().boxed(),
            decoder: SseDecoder::new(MAX_SSE_LINE, MAX_SSE_EVENT),
            pending: std::collections::VecDeque::new(),
            deadline: started + ctx.config.timeout,
            first_deadline: Some(started + ctx.config.first_token_timeout),
        }
    }

    /// Called once the first meaningful output arrived: the first-token clock stops.
    pub(crate) fn got_first_token(&mut self) {
        self.first_deadline = None;
    }

    /// The next event, `Ok(None)` at the end of the body.
    pub(crate) async fn next(&mut self) -> Result<Option<SseEvent>, SseReadError> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Ok(Some(event));
            }
            let limit = self
                .first_deadline
                .map_or(self.deadline, |f| f.min(self.deadline));
            let chunk = match tokio::time::timeout_at(limit, self.body.next()).await {
                Ok(chunk) => chunk,
                Err(_) if self.first_deadline.is_some_and(|f| f <= self.deadline) => {
                    return Err(SseReadError::FirstTokenTimeout);
                }
                Err(_) => return Err(SseReadError::Deadline),
            };
            match chunk {
                None => return Ok(None),
                Some(Err(err)) => return Err(SseReadError::Broken(describe_reqwest(&err))),
                Some(Ok(bytes)) => {
                    let events = self
                        .decoder
                        .push(&bytes)
                        .map_err(|err| SseReadError::Broken(err.to_string()))?;
                    self.pending.extend(events);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
            deadline: Duration::from_secs(10),
        }
    }

    fn down() -> LlmError {
        LlmError::ProviderDown {
            model: "m".into(),
            message: String::new(),
        }
    }

    #[test]
    fn retries_transient_errors_until_attempts_run_out() {
        let started = Instant::now();
        assert!(next_delay(&policy(), 1, started, &down()).is_some());
        assert!(next_delay(&policy(), 2, started, &down()).is_some());
        assert!(next_delay(&policy(), 3, started, &down()).is_none());
    }

    #[test]
    fn never_retries_a_bad_request() {
        let err = LlmError::BadRequest {
            model: "m".into(),
            status: 400,
            message: String::new(),
        };
        assert!(next_delay(&policy(), 1, Instant::now(), &err).is_none());
    }

    #[test]
    fn retry_after_is_honoured_even_above_max_backoff() {
        let err = LlmError::RateLimited {
            model: "m".into(),
            retry_after: Some(Duration::from_secs(3)),
        };
        assert_eq!(
            next_delay(&policy(), 1, Instant::now(), &err),
            Some(Duration::from_secs(3))
        );
    }

    #[test]
    fn no_retry_past_the_deadline() {
        let err = LlmError::RateLimited {
            model: "m".into(),
            retry_after: Some(Duration::from_secs(30)),
        };
        assert!(next_delay(&policy(), 1, Instant::now(), &err).is_none());
    }

    #[test]
    fn http_dates_parse() {
        assert_eq!(
            httpdate_to_unix("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777)
        );
        assert_eq!(httpdate_to_unix("yesterday"), None);
    }
}
