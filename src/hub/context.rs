//! The upstream servers' resources and prompts, for a caller: listed live from every connected
//! server that declared them (nothing is cached: a listing is as fresh as the server), each
//! named per server like a tool, and filtered by the caller's role with the same globs.
//!
//! The rule a role's `tools` globs apply: a prompt is `server__PROMPT`; a server's resources
//! and resource templates are the server's as a whole, granted by a glob that matches
//! `server__` (`notes__*`, `*`), since a read names a URI, not a listed resource.

use rmcp::model::{
    ClientRequest, GetPromptRequest, GetPromptRequestParams, GetPromptResult, ListPromptsRequest,
    ListResourceTemplatesRequest, ListResourcesRequest, PaginatedRequestParams, Prompt,
    ReadResourceRequest, ReadResourceRequestParams, ReadResourceResult, Resource, ResourceTemplate,
    ServerResult,
};
use serde_json::{Map, Value};

use super::Hub;
use crate::access::{AuditEvent, Caller};
use crate::mcp::McpError;

/// Pages read of one server's listing before the rest is left out (and logged).
const MAX_PAGES: usize = 20;

/// Why a resource or prompt was not served.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("the role `{role}` may not use `{name}`")]
    Forbidden { name: String, role: String },
    #[error("no connected server `{server}` offers {what}")]
    NotOffered { server: String, what: &'static str },
    #[error(transparent)]
    Mcp(#[from] McpError),
}

/// One listed item and the server it is from.
#[derive(Debug, Clone)]
pub struct FromServer<T> {
    pub server: String,
    pub item: T,
}

/// Whether `caller` may see `server`'s resources.
fn may_read(caller: &Caller, server: &str) -> bool {
    caller.may_use_tool(&format!("{server}__"))
}

impl Hub {
    /// The resources of every server `caller` may read, server by server.
    pub async fn resources(&self, caller: &Caller) -> Vec<FromServer<Resource>> {
        let servers = self.context_servers(|_, resources, _| resources, caller, may_read);
        self.gather(
            servers,
            "resources/list",
            |cursor| {
                ClientRequest::ListResourcesRequest(ListResourcesRequest::with_param(page(cursor)))
            },
            |result| match result {
                ServerResult::ListResourcesResult(r) => Some((r.resources, r.next_cursor)),
                _ => None,
            },
        )
        .await
    }

    /// The resource templates of every server `caller` may read.
    pub async fn resource_templates(&self, caller: &Caller) -> Vec<FromServer<ResourceTemplate>> {
        let servers = self.context_servers(|_, resources, _| resources, caller, may_read);
        self.gather(
            servers,
            "resources/templates/list",
            |cursor| {
                ClientRequest::ListResourceTemplatesRequest(
                    ListResourceTemplatesRequest::with_param(page(cursor)),
                )
            },
            |result| match result {
                ServerResult::ListResourceTemplatesResult(r) => {
                    Some((r.resource_templates, r.next_cursor))
                }
                _ => None,
            },
        )
        .await
    }

    /// The prompts `caller` may use (`server__PROMPT` granted), server by server.
    pub async fn prompts(&self, caller: &Caller) -> Vec<FromServer<Prompt>> {
        let servers = self.context_servers(|_, _, prompts| prompts, caller, |_, _| true);
        let listed = self
            .gather(
                servers,
                "prompts/list",
                |cursor| {
                    ClientRequest::ListPromptsRequest(ListPromptsRequest::with_param(page(cursor)))
                },
                |result| match result {
                    ServerResult::ListPromptsResult(r) => Some((r.prompts, r.next_cursor)),
                    _ => None,
                },
            )
            .await;
        listed
            .into_iter()
            .filter(|p| caller.may_use_tool(&format!("{}__{}", p.server, p.item.name)))
            .collect()
    }

    /// Read `uri` from `server`, if `caller` may read its resources.
    ///
    /// # Errors
    /// See [`ContextError`].
    pub async fn read_resource(
        &self,
        caller: &Caller,
        server: &str,
        uri: &str,
    ) -> Result<ReadResourceResult, ContextError> {
        let outcome = async {
            if !may_read(caller, server) {
                return Err(ContextError::Forbidden {
                    name: format!("{server}__ resources"),
                    role: caller.role().to_owned(),
                });
            }
            self.offered(server, true)?;
            let request = ClientRequest::ReadResourceRequest(ReadResourceRequest::new(
                ReadResourceRequestParams::new(uri),
            ));
            match self.mcp.request(server, request).await? {
                ServerResult::ReadResourceResult(result) => Ok(result),
                other => Err(unexpected(server, "resources/read", &other)),
            }
        }
        .await;
        self.audit_context(caller, "resource_read", format!("{server} {uri}"), &outcome);
        outcome
    }

    /// Get prompt `name` of `server` with `arguments`, if `caller` may use it.
    ///
    /// # Errors
    /// See [`ContextError`].
    pub async fn get_prompt(
        &self,
        caller: &Caller,
        server: &str,
        name: &str,
        arguments: Option<Map<String, Value>>,
    ) -> Result<GetPromptResult, ContextError> {
        let exposed = format!("{server}__{name}");
        let outcome = async {
            if !caller.may_use_tool(&exposed) {
                return Err(ContextError::Forbidden {
                    name: exposed.clone(),
                    role: caller.role().to_owned(),
                });
            }
            self.offered(server, false)?;
            let mut params = GetPromptRequestParams::new(name);
            params.arguments = arguments;
            let request = ClientRequest::GetPromptRequest(GetPromptRequest::new(params));
            match self.mcp.request(server, request).await? {
                ServerResult::GetPromptResult(result) => Ok(result),
                other => Err(unexpected(server, "prompts/get", &other)),
            }
        }
        .await;
        self.audit_context(caller, "prompt_get", exposed.clone(), &outcome);
        outcome
    }

    /// The connected servers that declared what `offers` picks and that `allowed` lets
    /// `caller` see.
    fn context_servers(
        &self,
        offers: impl Fn(&str, bool, bool) -> bool,
        caller: &Caller,
        allowed: impl Fn(&Caller, &str) -> bool,
    ) -> Vec<String> {
        let mut servers: Vec<String> = self
            .mcp
            .offering_context()
            .into_iter()
            .filter(|(server, resources, prompts)| offers(server, *resources, *prompts))
            .map(|(server, _, _)| server)
            .filter(|server| allowed(caller, server))
            .collect();
        servers.sort();
        servers
    }

    fn offered(&self, server: &str, resources: bool) -> Result<(), ContextError> {
        let offers = self
            .mcp
            .offering_context()
            .into_iter()
            .any(|(name, r, p)| name == server && if resources { r } else { p });
        if offers {
            Ok(())
        } else {
            Err(ContextError::NotOffered {
                server: server.to_owned(),
                what: if resources { "resources" } else { "prompts" },
            })
        }
    }

    /// Every page of one listing from each of `servers`, concurrently; a server that fails is
    /// left out (and logged), so one broken server does not hide the others'.
    async fn gather<T>(
        &self,
        servers: Vec<String>,
        method: &'static str,
        request: impl Fn(Option<String>) -> ClientRequest,
        items: impl Fn(ServerResult) -> Option<(Vec<T>, Option<String>)>,
    ) -> Vec<FromServer<T>> {
        let request = &request;
        let items = &items;
        let per_server = servers.into_iter().map(|server| async move {
            let mut listed = Vec::new();
            let mut cursor = None;
            for _ in 0..MAX_PAGES {
                let answer = self.mcp.request(&server, request(cursor.take())).await;
                match answer.map(items) {
                    Ok(Some((page, next))) => {
                        listed.extend(page.into_iter().map(|item| FromServer {
                            server: server.clone(),
                            item,
                        }));
                        match next {
                            Some(next) => cursor = Some(next),
                            None => return listed,
                        }
                    }
                    Ok(None) => {
                        tracing::warn!(server = %server, method, "answered with another result type");
                        return listed;
                    }
                    Err(err) => {
                        tracing::warn!(server = %server, method, error = %err, "listing failed");
                        return listed;
                    }
                }
            }
            tracing::warn!(server = %server, method, pages = MAX_PAGES, "listing cut after too many pages");
            listed
        });
        futures::future::join_all(per_server)
            .await
            .into_iter()
            .flatten()
            .collect()
    }

    fn audit_context<T>(
        &self,
        caller: &Caller,
        action: &'static str,
        target: String,
        outcome: &Result<T, ContextError>,
    ) {
        let result = match outcome {
            Ok(_) => "ok",
            Err(ContextError::Forbidden { .. }) => "denied",
            Err(_) => "failed",
        };
        self.audit
            .record(AuditEvent::by(caller, action, Some(target), result));
    }
}

fn page(cursor: Option<String>) -> PaginatedRequestParams {
    PaginatedRequestParams::default().with_cursor(cursor)
}

fn unexpected(server: &str, method: &str, other: &ServerResult) -> ContextError {
    ContextError::Mcp(McpError::Protocol {
        server: server.to_owned(),
        code: -32603,
        message: format!("answered {method} with another result type ({other:?})"),
    })
}
