//! Provider failures in user terms, each saying whether (and after how long) a retry may help.
//! Messages never contain API keys: provider error text is scrubbed before it is stored here.

use std::time::Duration;

/// A model call that failed.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum LlmError {
    #[error("model `{model}` is unavailable: {reason}")]
    Unavailable { model: String, reason: String },
    #[error(
        "the provider rejected the API key for model `{model}` (HTTP {status}); check its api_key"
    )]
    Auth { model: String, status: u16 },
    #[error("the provider does not know model `{provider_model}` (configured as `{model}`)")]
    ModelNotFound {
        model: String,
        provider_model: String,
    },
    #[error("model `{model}` is rate limited{}", retry_after.map(|d| format!("; retry after {} s", d.as_secs_f64())).unwrap_or_default())]
    RateLimited {
        model: String,
        retry_after: Option<Duration>,
    },
    #[error("the conversation is too long for model `{model}`: {message}")]
    ContextTooLong { model: String, message: String },
    #[error("model `{model}` refused the request (HTTP {status}): {message}")]
    BadRequest {
        model: String,
        status: u16,
        message: String,
    },
    #[error("the provider of model `{model}` is down or unreachable: {message}")]
    ProviderDown { model: String, message: String },
    #[error("model `{model}` did not answer within {} ms ({what})", after.as_millis())]
    Timeout {
        model: String,
        what: &'static str,
        after: Duration,
    },
    #[error("model `{model}` sent a malformed response: {message}")]
    Malformed { model: String, message: String },
    #[error(
        "the answer of model `{model}` broke off after output had been sent ({message}); not retried"
    )]
    Interrupted { model: String, message: String },
}

impl LlmError {
    /// `Some(delay)` when retrying may help (the delay is the provider's `Retry-After`, if any).
    pub fn retry_hint(&self) -> Option<Option<Duration>> {
        match self {
            LlmError::RateLimited { retry_after, .. } => Some(*retry_after),
            LlmError::ProviderDown { .. } => Some(None),
            LlmError::Timeout { what, .. } if *what == "first token" => Some(None),
            _ => None,
        }
    }

    /// A stable machine-readable code for APIs and traces.
    pub fn code(&self) -> &'static str {
        match self {
            LlmError::Unavailable { .. } => "model_unavailable",
            LlmError::Auth { .. } => "model_auth",
            LlmError::ModelNotFound { .. } => "model_not_found",
            LlmError::RateLimited { .. } => "model_rate_limited",
            LlmError::ContextTooLong { .. } => "context_too_long",
            LlmError::BadRequest { .. } => "model_bad_request",
            LlmError::ProviderDown { .. } => "provider_down",
            LlmError::Timeout { .. } => "model_timeout",
            LlmError::Malformed { .. } => "model_malformed_response",
            LlmError::Interrupted { .. } => "model_interrupted",
        }
    }
}

/// Remove every trace of `secret` from provider text (some providers echo part of a bad key),
/// and cap the length: this text reaches users and logs.
pub(crate) fn scrub(text: &str, secret: Option<&str>) -> String {
    let mut out = text.to_owned();
    if let Some(secret) = secret.filter(|s| s.len() >= 4) {
        out = out.replace(secret, "[redacted]");
        // Also catch a recognisable head or tail of the key (e.g. "sk-abc…xyz" echoes).
        for window in [
            secret.get(..8),
            secret.get(secret.len().saturating_sub(8)..),
        ]
        .into_iter()
        .flatten()
        .filter(|w| w.len() >= 8)
        {
            out = out.replace(window, "[redacted]");
        }
    }
    if out.chars().count() > 500 {
        out = out.chars().take(500).collect::<String>() + "…";
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_removes_the_key_and_its_echoed_ends() {
        let key = "sk-SENTINEL-0123456789abcdef";
        let text = format!("Incorrect API key provided: {key}. Also sk-SENTI***cdef and 89abcdef.");
        let out = scrub(&text, Some(key));
        assert!(!out.contains(key));
        assert!(!out.contains("sk-SENTI"), "{out}");
        assert!(!out.contains("89abcdef"), "{out}");
    }

    #[test]
    fn scrub_caps_length() {
        assert!(scrub(&"x".repeat(2000), None).chars().count() <= 501);
    }

    #[test]
    fn only_transient_failures_are_retryable() {
        let model = "m".to_owned();
        assert!(
            LlmError::ProviderDown {
                model: model.clone(),
                message: String::new()
            }
            .retry_hint()
            .is_some()
        );
        assert_eq!(
            LlmError::RateLimited {
                model: model.clone(),
                retry_after: Some(Duration::from_secs(2))
            }
            .retry_hint(),
            Some(Some(Duration::from_secs(2)))
        );
        assert!(
            LlmError::BadRequest {
                model: model.clone(),
                status: 400,
                message: String::new()
            }
            .retry_hint()
            .is_none()
        );
        assert!(LlmError::Auth { model, status: 401 }.retry_hint().is_none());
    }
}
