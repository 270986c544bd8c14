//! The resolver of every outbound client: the system resolver, then the policy on each address.
//!
//! A name is refused before it is looked up when the policy refuses it by itself (a metadata
//! name); otherwise the addresses it resolves to that the policy refuses are dropped, and only
//! when none is left does the connection fail, with every address and its rule. This runs at
//! each new connection, so a name whose records change (DNS rebinding) is checked again.

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use super::{Blocked, Policy};

/// A lookup's answer: the addresses of a name.
type LookupFuture = Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send>>;
/// How names are looked up: the system resolver, or a table in tests.
type Lookup = Arc<dyn Fn(String) -> LookupFuture + Send + Sync>;

/// A [`Resolve`] that applies a [`Policy`] to what the lookup returns.
pub(super) struct PolicyResolver {
    policy: Policy,
    lookup: Lookup,
}

impl PolicyResolver {
    /// Resolve with the system resolver (`getaddrinfo`, as reqwest's default does).
    pub(super) fn system(policy: Policy) -> Self {
        Self::with_lookup(policy, Arc::new(|host| Box::pin(system_lookup(host))))
    }

    /// Resolve with `lookup` instead.
    pub(super) fn with_lookup(policy: Policy, lookup: Lookup) -> Self {
        Self { policy, lookup }
    }
}

async fn system_lookup(host: String) -> io::Result<Vec<IpAddr>> {
    let found = tokio::net::lookup_host((host.as_str(), 0)).await?;
    Ok(found.map(|address| address.ip()).collect())
}

impl Resolve for PolicyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        let policy = self.policy.clone();
        let lookup = self.lookup.clone();
        Box::pin(async move {
            policy.check_name(&host)?;
            let found = lookup(host.clone()).await?;
            let (allowed, refusals) = policy.split(found);
            if allowed.is_empty() {
                if refusals.is_empty() {
                    let message = format!("`{host}` resolved to no address");
                    return Err(io::Error::new(io::ErrorKind::NotFound, message).into());
                }
                let blocked = Blocked::Resolved { host, refusals };
                tracing::warn!(error = %blocked, "connection refused by server.outbound");
                return Err(blocked.into());
            }
            if !refusals.is_empty() {
                tracing::debug!(host = %host, refused = %super::list(&refusals), "addresses refused by server.outbound were dropped");
            }
            let addrs: Addrs = Box::new(allowed.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::Duration;

    use super::*;
    use crate::outbound::{Cidr, blocked_in, redirect};

    /// A client with `policy` whose resolver answers from `table` (no DNS involved).
    fn client(policy: Policy, table: &[(&str, &[&str])]) -> reqwest::Client {
        let table: HashMap<String, Vec<IpAddr>> = table
            .iter()
            .map(|(name, ips)| {
                let ips = ips.iter().map(|ip| ip.parse().expect("test ip")).collect();
                ((*name).to_owned(), ips)
            })
            .collect();
        let table = Arc::new(table);
        let lookup: Lookup = Arc::new(move |host| {
            let found = table.get(&host).cloned();
            Box::pin(async move {
                found.ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "unknown test name"))
            })
        });
        reqwest::Client::builder()
            .redirect(redirect::same_origin())
            .dns_resolver(PolicyResolver::with_lookup(policy, lookup))
            .timeout(Duration::from_secs(10))
            .build()
            .expect("test client")
    }

    /// A local HTTP server answering 200 `ok`; returns its port.
    async fn ok_server() -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let app = axum::Router::new().fallback(|| async { "ok" });
        tokio::spawn(async move { axum::serve(listener, app).await });
        port
    }

    #[tokio::test]
    async fn a_name_resolving_to_a_refused_address_is_refused_before_connecting() {
        let port = ok_server().await;
        let policy = Policy::new(true, false, Vec::new(), Vec::new());
        let client = client(
            policy,
            &[
                ("meta.test", &["169.254.169.254"]),
                ("local.test", &["127.0.0.1", "::1"]),
                ("mixed.test", &["::1", "127.0.0.1"]),
            ],
        );
        let err = client
            .get(format!("http://meta.test:{port}/"))
            .send()
            .await
            .expect_err("refused");
        assert_eq!(
            blocked_in(&err).map(ToString::to_string).as_deref(),
            Some(
                "every address of `meta.test` is refused by server.outbound: 169.254.169.254 \
                 (a cloud metadata endpoint)"
            )
        );
        let err = client
            .get(format!("http://local.test:{port}/"))
            .send()
            .await
            .expect_err("refused");
        let shown = blocked_in(&err).expect("blocked").to_string();
        assert!(
            shown.contains("127.0.0.1 (loopback") && shown.contains("::1 (loopback"),
            "{shown}"
        );
        assert!(crate::outbound::describe(&err).starts_with("every address of `local.test`"));
        // A metadata name is refused without being looked up (the table does not know it).
        let err = client
            .get(format!("http://metadata.google.internal:{port}/"))
            .send()
            .await
            .expect_err("refused");
        assert!(
            matches!(blocked_in(&err), Some(Blocked::Name { .. })),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn allowed_addresses_of_a_name_are_used_and_refused_ones_dropped() {
        let port = ok_server().await;
        // `mixed.test` lists a refused ::1 first; the connection goes to 127.0.0.1.
        let policy = Policy::new(
            true,
            false,
            vec![Cidr::parse("127.0.0.0/8").expect("range")],
            Vec::new(),
        );
        let client = client(policy, &[("mixed.test", &["::1", "127.0.0.1"])]);
        let body = client
            .get(format!("http://mixed.test:{port}/"))
            .send()
            .await
            .expect("allowed")
            .text()
            .await
            .expect("body");
        assert_eq!(body, "ok");
    }
}
