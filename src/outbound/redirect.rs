//! The redirect rule of every outbound client: follow a redirect only within its origin.
//!
//! reqwest's default follows up to ten redirects anywhere, re-sending a 307/308's body and every
//! header but `Authorization`, `Cookie` and their kin, so a server could bounce our JSON-RPC
//! bodies and configured headers (`X-Api-Key: …`) to any host. Refusing across origins (scheme,
//! host and port, as browsers compare them) is the rule that needs no list of secret headers;
//! within one origin a moved endpoint (`/v1` → `/v1/`) keeps working.

use reqwest::redirect::{Attempt, Policy};

use super::{Blocked, RedirectRefusal};

/// Most redirects followed in a row, within one origin.
pub const MAX_REDIRECTS: usize = 5;

/// The redirect policy [`super::client_builder`] installs.
pub(super) fn same_origin() -> Policy {
    Policy::custom(decide)
}

fn decide(attempt: Attempt<'_>) -> reqwest::redirect::Action {
    // `previous` starts with the first request, so it is never empty here.
    let Some(from) = attempt.previous().last().cloned() else {
        return attempt.stop();
    };
    let to = attempt.url();
    let reason = if to.origin() != from.origin() {
        RedirectRefusal::CrossOrigin
    } else if attempt.previous().len() > MAX_REDIRECTS {
        RedirectRefusal::TooMany
    } else {
        return attempt.follow();
    };
    let blocked = Blocked::Redirect {
        from: origin(&from),
        to: origin(to),
        reason,
    };
    tracing::warn!(error = %blocked, "redirect refused");
    attempt.error(blocked)
}

/// `scheme://host[:port]`, or the scheme alone for a URL without a host-based origin.
fn origin(url: &url::Url) -> String {
    let origin = url.origin();
    if origin.is_tuple() {
        origin.ascii_serialization()
    } else {
        format!("a `{}:` URL", url.scheme())
    }
}
