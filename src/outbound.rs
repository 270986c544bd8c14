//! Outbound HTTP: where Switchboard's requests to remote MCP servers and model providers may go.
//!
//! Three walls, each for a way a request could end up somewhere nobody configured:
//! - the address policy ([`Policy`], `server.outbound`): link-local and cloud-metadata addresses
//!   are refused by default, loopback and private networks are allowed but can be refused, and
//!   explicit `allow:` / `deny:` ranges override the defaults (deny wins). `config` checks every
//!   configured URL whose host is a literal address when it reads it, so `switchboard check`
//!   reports it with its position;
//! - the resolver ([`client_builder`] installs it): a host name is resolved with the system
//!   resolver and the addresses the policy refuses are dropped before any connection is made, so
//!   a name cannot smuggle a refused address past the literal check (DNS rebinding included: the
//!   check runs at every connection, not once);
//! - redirects: followed only within the origin they came from, at most
//!   [`MAX_REDIRECTS`] times, so a server cannot bounce a request, its configured headers and
//!   its body to another host.
//!
//! Every client for remote MCP servers and model providers is built from [`client_builder`];
//! `hyper` does not resolve literal addresses (so only the config check sees them), and a
//! `ClientBuilder::resolve` override would bypass the resolver, so the builder sets none and
//! callers must not add any. Behind an HTTP proxy (the `*_PROXY` variables) the proxy resolves
//! the target's name: the policy then checks the proxy's address and literal targets only.
//!
//! Pure policy lives in `outbound/policy.rs`; the resolver and the redirect rule are the IO.
//! This module imports nothing of ours: `config` reads `server.outbound` into its [`Policy`].

mod policy;
mod redirect;
mod resolve;

use std::error::Error as StdError;

pub use policy::{Cidr, CidrError, Policy, Refusal, Rule};
pub use redirect::MAX_REDIRECTS;

/// Why an outbound request was not sent, or not sent on. Shown to users as is (server status
/// `last_error`, a model's unavailable reason): it names the rule, and never a URL's path or
/// query, which may carry a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Blocked {
    /// A literal address the policy refuses.
    #[error("address {} is refused by server.outbound ({})", .0.shown(), .0.rule)]
    Address(Refusal),
    /// A host name every address of which the policy refuses.
    #[error(
        "every address of `{host}` is refused by server.outbound: {}",
        list(refusals)
    )]
    Resolved {
        /// The name that was resolved.
        host: String,
        /// Each address it resolved to, with the rule that refused it.
        refusals: Vec<Refusal>,
    },
    /// A host name the policy refuses by itself (a cloud metadata endpoint's name).
    #[error("host `{host}` is refused by server.outbound ({rule})")]
    Name {
        /// The refused name, lower case.
        host: String,
        /// Why.
        rule: Rule,
    },
    /// A redirect that was not followed.
    #[error("redirect from {from} to {to} not followed: {reason}")]
    Redirect {
        /// The origin that answered with the redirect.
        from: String,
        /// Where it pointed: an origin (scheme, host, port), never a path.
        to: String,
        /// Why it was not followed.
        reason: RedirectRefusal,
    },
}

/// Why a redirect was not followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RedirectRefusal {
    /// It pointed to another origin (scheme, host or port differ).
    #[error(
        "it points to another origin, and requests with their headers and bodies go only where they were configured to"
    )]
    CrossOrigin,
    /// The chain grew longer than [`MAX_REDIRECTS`].
    #[error("more than {MAX_REDIRECTS} redirects in a row")]
    TooMany,
}

fn list(refusals: &[Refusal]) -> String {
    refusals
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// The builder every reqwest client for remote MCP servers and model providers starts from:
/// `policy` checked at every name resolution, redirects kept within their origin, no Nagle
/// delay on small writes. Callers add their own options (timeouts, pools), never
/// `.redirect(…)`, `.dns_resolver(…)` or `.resolve(…)`, which would undo the policy.
pub fn client_builder(policy: &Policy) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .redirect(redirect::same_origin())
        .dns_resolver(resolve::PolicyResolver::system(policy.clone()))
        .tcp_nodelay(true)
}

/// The [`Blocked`] somewhere in `err`'s chain of sources, if one of ours stopped the request.
/// Callers whose wrappers hide their cause (rmcp's HTTP client error) unwrap those first.
pub fn blocked_in<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a Blocked> {
    let mut current = Some(err);
    while let Some(err) = current {
        if let Some(blocked) = err.downcast_ref::<Blocked>() {
            return Some(blocked);
        }
        current = err.source();
    }
    None
}

/// A reqwest failure in words: what failed, then each cause, without the URL reqwest's own
/// `Display` starts with (its query may carry a key). A [`Blocked`] cause is the whole story.
pub fn describe(err: &reqwest::Error) -> String {
    if let Some(blocked) = blocked_in(err) {
        return blocked.to_string();
    }
    let mut text = if err.is_connect() {
        "could not connect".to_owned()
    } else if err.is_timeout() {
        "timed out".to_owned()
    } else {
        "request failed".to_owned()
    };
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocked_errors_name_the_rule_and_the_target_origin_only() {
        let refusal = Policy::default()
            .check_ip("169.254.169.254".parse().unwrap())
            .unwrap_err();
        assert_eq!(
            Blocked::Address(refusal.clone()).to_string(),
            "address 169.254.169.254 is refused by server.outbound (a cloud metadata endpoint)"
        );
        let strict = Policy::new(false, false, Vec::new(), Vec::new());
        let loopback = strict.check_ip("127.0.0.1".parse().unwrap()).unwrap_err();
        let v6 = strict.check_ip("::1".parse().unwrap()).unwrap_err();
        assert_eq!(
            Blocked::Resolved {
                host: "localhost".to_owned(),
                refusals: vec![loopback, v6],
            }
            .to_string(),
            "every address of `localhost` is refused by server.outbound: 127.0.0.1 (loopback, \
             in 127.0.0.0/8, and allow_loopback is false); ::1 (loopback, in ::1/128, and \
             allow_loopback is false)"
        );
        assert_eq!(
            Blocked::Redirect {
                from: "http://127.0.0.1:1".to_owned(),
                to: "http://127.0.0.1:2".to_owned(),
                reason: RedirectRefusal::CrossOrigin,
            }
            .to_string(),
            "redirect from http://127.0.0.1:1 to http://127.0.0.1:2 not followed: it points to \
             another origin, and requests with their headers and bodies go only where they were \
             configured to"
        );
    }

    #[test]
    fn a_blocked_cause_is_found_through_boxed_sources() {
        #[derive(Debug, thiserror::Error)]
        #[error("outer")]
        struct Outer(#[source] Box<dyn StdError + Send + Sync>);
        let blocked = Blocked::Name {
            host: "metadata".to_owned(),
            rule: Rule::Metadata,
        };
        let outer = Outer(Box::new(Outer(Box::new(blocked.clone()))));
        assert_eq!(blocked_in(&outer), Some(&blocked));
        let plain = Outer(Box::new(std::io::Error::other("nope")));
        assert_eq!(blocked_in(&plain), None);
    }
}
