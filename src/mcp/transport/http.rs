//! Streamable HTTP transport (protocol 2025-03-26 and later), using rmcp's reqwest client.

use std::collections::{BTreeMap, HashMap};

use http::{HeaderName, HeaderValue};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::{
    StreamableHttpClientTransportConfig, StreamableHttpError,
};

/// Build the rmcp transport for `url`, sending `headers` on every request.
///
/// # Errors
/// A header name or value that HTTP cannot carry; the message names the header, never its value.
pub fn transport(
    client: reqwest::Client,
    url: &url::Url,
    headers: &BTreeMap<String, String>,
) -> Result<StreamableHttpClientTransport<reqwest::Client>, String> {
    let config = StreamableHttpClientTransportConfig::with_uri(url.as_str())
        .custom_headers(header_map(headers)?);
    Ok(StreamableHttpClientTransport::with_client(client, config))
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
