//! The tool hub: the MCP manager and the merged catalog kept in step, and the one path every
//! tool call takes (HTTP API, CLI, runs): role → look up → approval policy → validate → quota →
//! call → check output → cap.
//!
//! It joins `mcp` (IO) and `tools` (pure) so neither has to know the other.

pub mod context;
mod truncate;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use rmcp::model::CallToolResult;
use serde_json::Value;
use tokio::sync::watch;

use crate::access::{AuditEvent, AuditLog, Caller, Limiter, NoAudit, Refused};
use crate::config::model::{ApprovalPolicy, McpServerConfig, ToolFilter, ToolSettings, Trust};
use crate::mcp::{ApplySummary, CallOptions, ManagerSettings, McpError, McpManager, ToolsEvent};
use crate::tools::approval::{self, Verdict};
use crate::tools::pins::{PinBook, PinWrites, Pinned};
use crate::tools::{ArgumentError, Catalog, DroppedTool, Listing, ServerTools, ToolEntry};

pub use truncate::Truncation;

/// Why a tool call did not produce a result.
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    #[error("no tool named `{name}` in the catalog")]
    UnknownTool { name: String },
    #[error("the role `{role}` may not use the tool `{tool}`")]
    Forbidden { tool: String, role: String },
    #[error(transparent)]
    Limited(Refused),
    #[error("arguments for `{tool}` do not match its input schema")]
    InvalidArguments {
        tool: String,
        errors: Vec<ArgumentError>,
    },
    /// The tool answered, but its result breaks the output schema it declares (or lacks the
    /// `structuredContent` the schema promises): the answer is not used.
    #[error("the result of `{tool}` does not match its declared output schema")]
    InvalidOutput {
        tool: String,
        errors: Vec<ArgumentError>,
    },
    /// The approval policy refuses this tool (`approval:` rules).
    #[error("the approval policy refuses `{tool}`: {reason}")]
    ApprovalDenied { tool: String, reason: String },
    /// A model asked for the call and the policy wants a person to approve it first.
    #[error("calling `{tool}` needs a person's approval: {reason}")]
    ApprovalRequired { tool: String, reason: String },
    #[error(transparent)]
    Mcp(#[from] McpError),
}

/// Who stands behind a call, which decides what the approval policy's `ask` means for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Initiator {
    /// The caller chose the tool and its arguments themselves (a direct invoke, `switchboard
    /// call`): they are the person an approval would ask, so `ask` passes; `deny` still refuses.
    Caller,
    /// A model chose them on the caller's behalf: `ask` needs `approved`, the SHA-256 of the
    /// exact arguments a person approved ([`arguments_hash`]).
    Model { approved: Option<String> },
}

/// The hash an approval is bound to: SHA-256 of the arguments' JSON text.
pub fn arguments_hash(arguments: &Value) -> String {
    crate::access::sha256_hex(arguments.to_string().as_bytes())
}

/// Where changed pins are written (the store), set by `app` with the pins it loaded.
pub type PinSaver = Arc<dyn Fn(PinWrites) + Send + Sync>;

/// The pinned tool definitions, and each server's last listing (to rebuild its tools when an
/// admin accepts a held one).
#[derive(Default)]
struct Pins {
    book: PinBook,
    save: Option<PinSaver>,
    listings: HashMap<String, (Arc<Listing>, ToolFilter)>,
}

/// Why a held tool could not be accepted.
#[derive(Debug, thiserror::Error)]
pub enum AcceptError {
    #[error("no tool `{tool}` of server `{server}` is held for review")]
    NotHeld { server: String, tool: String },
}

/// The approval policy and each server's trust, replaced whole on reload.
#[derive(Debug, Default)]
struct Approvals {
    policy: ApprovalPolicy,
    trust: BTreeMap<String, Trust>,
}

/// A finished call: the tool's result (possibly truncated) and how long it took.
#[derive(Debug)]
pub struct InvokeOutcome {
    pub tool: Arc<ToolEntry>,
    pub result: CallToolResult,
    pub truncated: Option<Truncation>,
    pub duration: Duration,
}

/// Cheap to clone; shares the manager and catalog.
#[derive(Clone)]
pub struct Hub {
    mcp: McpManager,
    catalog: watch::Sender<Arc<Catalog>>,
    settings: Arc<RwLock<ToolSettings>>,
    /// Counts every call against its caller's tool-call quota.
    limiter: Limiter,
    /// Where every call (allowed, refused, failed) is recorded.
    audit: Arc<dyn AuditLog>,
    approvals: Arc<RwLock<Approvals>>,
    pins: Arc<std::sync::Mutex<Pins>>,
}

impl Hub {
    /// A hub with no servers yet; call [`Hub::apply`] with the configured servers.
    pub fn new(manager: ManagerSettings, settings: ToolSettings) -> Self {
        let catalog = watch::channel(Arc::new(Catalog::default())).0;
        let settings = Arc::new(RwLock::new(settings));
        let approvals: Arc<RwLock<Approvals>> = Arc::default();
        let pins: Arc<std::sync::Mutex<Pins>> = Arc::default();
        let sink_catalog = catalog.clone();
        let sink_settings = settings.clone();
        let (sink_approvals, sink_pins) = (approvals.clone(), pins.clone());
        let sink = Arc::new(move |event: ToolsEvent| {
            let settings = sink_settings
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            apply_event(&sink_catalog, &settings, &sink_approvals, &sink_pins, event);
        });
        Self {
            mcp: McpManager::new(manager, sink),
            catalog,
            settings,
            limiter: Limiter::default(),
            audit: Arc::new(NoAudit),
            approvals,
            pins,
        }
    }

    /// This hub, holding callers to `limiter`'s quotas and recording calls to `audit` (set by
    /// `app` before the hub is shared).
    #[must_use]
    pub fn with_access(mut self, limiter: Limiter, audit: Arc<dyn AuditLog>) -> Self {
        self.limiter = limiter;
        self.audit = audit;
        self
    }

    /// Where calls are audited (the run service records run starts and cancels there too).
    pub fn audit(&self) -> &Arc<dyn AuditLog> {
        &self.audit
    }

    /// The limiter calls are counted by (the run service shares it for run slots).
    pub fn limiter(&self) -> &Limiter {
        &self.limiter
    }

    /// Start, stop and restart servers to match `servers`; new catalog limits apply to the
    /// next listing of each server.
    pub fn apply(
        &self,
        servers: &BTreeMap<String, McpServerConfig>,
        settings: ToolSettings,
    ) -> ApplySummary {
        *self.settings.write().unwrap_or_else(|p| p.into_inner()) = settings;
        self.approvals
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .trust = servers
            .iter()
            .map(|(name, server)| (name.clone(), server.trusted))
            .collect();
        self.mcp.apply(servers)
    }

    /// Pin tool definitions against `book` (loaded from the store) from now on, writing changes
    /// to `save`. Call before [`Hub::apply`], so no listing is reviewed against an empty book.
    pub fn load_pins(&self, book: PinBook, save: PinSaver) {
        let mut pins = self.pins.lock().unwrap_or_else(|p| p.into_inner());
        pins.book = book;
        pins.save = Some(save);
    }

    /// `server`'s tools held for review: (tool, what is pinned and what waits).
    pub fn held_tools(&self, server: &str) -> Vec<(String, Pinned)> {
        let pins = self.pins.lock().unwrap_or_else(|p| p.into_inner());
        pins.book
            .pending(server)
            .into_iter()
            .map(|(tool, pinned)| (tool.to_owned(), pinned.clone()))
            .collect()
    }

    /// Accept the held definition of `server`'s `tool` (an admin reviewed it): pinned from now
    /// on, and the server's tools rebuilt from its last listing so the tool joins the catalog.
    ///
    /// # Errors
    /// Nothing of that name is held.
    pub fn accept_tool(&self, server: &str, tool: &str) -> Result<(), AcceptError> {
        // The lock is released before the rebuild, which takes it again.
        let listing = {
            let mut pins = self.pins.lock().unwrap_or_else(|p| p.into_inner());
            let accepted = pins
                .book
                .accept(server, tool)
                .ok_or_else(|| AcceptError::NotHeld {
                    server: server.to_owned(),
                    tool: tool.to_owned(),
                })?;
            if let Some(save) = &pins.save {
                save(vec![(server.to_owned(), tool.to_owned(), accepted)]);
            }
            pins.listings.get(server).cloned()
        };
        if let Some((tools, filter)) = listing {
            let settings = self.tool_settings();
            apply_event(
                &self.catalog,
                &settings,
                &self.approvals,
                &self.pins,
                ToolsEvent::Listed {
                    server: server.to_owned(),
                    tools,
                    filter,
                },
            );
        }
        Ok(())
    }

    /// The approval policy in force from now on (start-up and every reload).
    pub fn set_approval_policy(&self, policy: ApprovalPolicy) {
        self.approvals
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .policy = policy;
    }

    /// What a gated call does where nobody follows the run, and how long an approval waits.
    pub fn approval_timing(&self) -> (crate::config::model::Unattended, Duration) {
        let approvals = self.approvals.read().unwrap_or_else(|p| p.into_inner());
        (approvals.policy.unattended, approvals.policy.expire_after)
    }

    /// What the approval policy says of `tool` called by `caller`.
    pub fn verdict(&self, caller: &Caller, tool: &ToolEntry) -> Verdict {
        let approvals = self.approvals.read().unwrap_or_else(|p| p.into_inner());
        let trust = approvals
            .trust
            .get(&tool.server)
            .copied()
            .unwrap_or_default();
        approval::verdict(&approvals.policy, tool, trust, caller.role())
    }

    /// What the policy believes of `tool`'s annotations (the UI shows "read-only" only then).
    pub fn risk(&self, tool: &ToolEntry) -> approval::Risk {
        let approvals = self.approvals.read().unwrap_or_else(|p| p.into_inner());
        let trust = approvals
            .trust
            .get(&tool.server)
            .copied()
            .unwrap_or_default();
        approval::Risk::of(tool, trust)
    }

    /// The `tools:` caps in force (a reload replaces them), for the caps enforced where the
    /// model's raw call is still at hand: the run engine refuses arguments over
    /// `max_argument_bytes` before a call is even parsed into `invoke`'s arguments.
    pub fn tool_settings(&self) -> ToolSettings {
        self.settings
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The MCP manager, for status and shutdown.
    pub fn mcp(&self) -> &McpManager {
        &self.mcp
    }

    /// The current catalog (a cheap snapshot).
    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog.borrow().clone()
    }

    /// Every new catalog snapshot as it is published (a server's listing changed, a server
    /// came or went, a held tool was accepted): what `/mcp` tells its clients about.
    pub fn catalog_changes(&self) -> watch::Receiver<Arc<Catalog>> {
        self.catalog.subscribe()
    }

    /// Check, look up, validate, count, call and cap one tool call: the one path every call
    /// takes (API, CLI, runs), so a caller's role and quota hold whatever path it comes by.
    ///
    /// # Errors
    /// A tool the caller's role does not grant (nothing else is checked, so a refused caller
    /// learns nothing about the catalog), an unknown tool, arguments that fail the input schema
    /// (nothing is sent then), the caller's tool-call quota (only calls that would be sent
    /// count), or the MCP manager's errors.
    pub async fn invoke(
        &self,
        caller: &Caller,
        name: &str,
        arguments: Value,
        options: CallOptions,
    ) -> Result<InvokeOutcome, InvokeError> {
        self.invoke_by(caller, Initiator::Caller, name, arguments, options)
            .await
    }

    /// [`Hub::invoke`] for a call `initiator` chose: a model's call of a tool the approval
    /// policy gates runs only with a person's approval of exactly these arguments.
    ///
    /// # Errors
    /// As [`Hub::invoke`], and [`InvokeError::ApprovalRequired`].
    pub async fn invoke_by(
        &self,
        caller: &Caller,
        initiator: Initiator,
        name: &str,
        arguments: Value,
        options: CallOptions,
    ) -> Result<InvokeOutcome, InvokeError> {
        let trace_id = options.traceparent.as_deref().and_then(trace_id_of);
        let outcome = self
            .checked_invoke(caller, &initiator, name, arguments, options)
            .await;
        let result = match &outcome {
            Ok(_) => "ok",
            Err(InvokeError::Forbidden { .. } | InvokeError::ApprovalDenied { .. }) => "denied",
            Err(InvokeError::ApprovalRequired { .. }) => "approval_required",
            Err(InvokeError::Limited(_)) => "limited",
            Err(_) => "failed",
        };
        self.audit.record(
            AuditEvent::by(caller, "tool_invoke", Some(name.to_owned()), result).in_trace(trace_id),
        );
        outcome
    }

    /// The catalog entry `name` names, if `caller`'s role grants it: the first check of every
    /// call, also made by a path that must answer a refused or unknown tool before it starts
    /// anything (the gateway answers both with a protocol error, as MCP asks).
    ///
    /// # Errors
    /// [`InvokeError::Forbidden`] (checked first, so a refused caller learns nothing about the
    /// catalog) or [`InvokeError::UnknownTool`].
    pub fn tool_for(&self, caller: &Caller, name: &str) -> Result<Arc<ToolEntry>, InvokeError> {
        if !caller.may_use_tool(name) {
            return Err(InvokeError::Forbidden {
                tool: name.to_owned(),
                role: caller.role().to_owned(),
            });
        }
        self.catalog()
            .get(name)
            .cloned()
            .ok_or_else(|| InvokeError::UnknownTool {
                name: name.to_owned(),
            })
    }

    async fn checked_invoke(
        &self,
        caller: &Caller,
        initiator: &Initiator,
        name: &str,
        mut arguments: Value,
        options: CallOptions,
    ) -> Result<InvokeOutcome, InvokeError> {
        let tool = self.tool_for(caller, name)?;
        match (self.verdict(caller, &tool), initiator) {
            (Verdict::Allow, _) | (Verdict::Ask { .. }, Initiator::Caller) => {}
            (Verdict::Deny { reason }, _) => {
                return Err(InvokeError::ApprovalDenied {
                    tool: name.to_owned(),
                    reason,
                });
            }
            (Verdict::Ask { reason }, Initiator::Model { approved }) => {
                if approved.as_deref() != Some(arguments_hash(&arguments).as_str()) {
                    return Err(InvokeError::ApprovalRequired {
                        tool: name.to_owned(),
                        reason,
                    });
                }
            }
        }
        tool.strip_nulls_for_optional(&mut arguments);
        tool.validate_arguments(&arguments)
            .map_err(|errors| InvokeError::InvalidArguments {
                tool: name.to_owned(),
                errors,
            })?;
        let Value::Object(arguments) = arguments else {
            // validate_arguments only accepts objects; keep the invariant visible.
            return Err(InvokeError::InvalidArguments {
                tool: name.to_owned(),
                errors: Vec::new(),
            });
        };
        self.limiter
            .tool_call(caller)
            .map_err(InvokeError::Limited)?;
        let started = Instant::now();
        let result = self
            .mcp
            .call(&tool.server, &tool.tool_name, arguments, options)
            .await?;
        let duration = started.elapsed();
        // Checked whole, before any truncation for size.
        tool.check_output(&result)
            .map_err(|errors| InvokeError::InvalidOutput {
                tool: name.to_owned(),
                errors,
            })?;
        let limit = self
            .settings
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .max_result_bytes;
        let (result, truncated) = truncate::cap_result(result, limit);
        Ok(InvokeOutcome {
            tool,
            result,
            truncated,
            duration,
        })
    }
}

/// The trace id of a W3C `traceparent` (`00-<trace id>-<span id>-<flags>`).
fn trace_id_of(traceparent: &str) -> Option<String> {
    let mut parts = traceparent.split('-');
    let (_version, trace) = (parts.next()?, parts.next()?);
    (trace.len() == 32).then(|| trace.to_owned())
}

/// Rebuild the catalog for one server's change and log the refusals it adds. Each is logged once,
/// when it first appears: every rebuild (any server's listing) carries all current refusals, and
/// logging those each time would repeat the same warnings for as long as a bad tool is listed.
fn apply_event(
    catalog: &watch::Sender<Arc<Catalog>>,
    settings: &ToolSettings,
    approvals: &RwLock<Approvals>,
    pins: &std::sync::Mutex<Pins>,
    event: ToolsEvent,
) {
    let refused = match event {
        ToolsEvent::Listed {
            server,
            tools,
            filter,
        } => {
            let trust = approvals
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .trust
                .get(&server)
                .copied()
                .unwrap_or_default();
            let mut listing = tools.as_ref().clone();
            let held = {
                let mut pins = pins.lock().unwrap_or_else(|p| p.into_inner());
                pins.listings
                    .insert(server.clone(), (tools.clone(), filter.clone()));
                let (held, writes) = pins.book.review(&server, &listing.tools, trust);
                if !writes.is_empty()
                    && let Some(save) = &pins.save
                {
                    save(writes);
                }
                held
            };
            listing
                .tools
                .retain(|tool| !held.iter().any(|h| *h.tool == *tool.name));
            // Built before the catalog is locked: schema checks and compilation are the slow part.
            let built = ServerTools::build(&server, listing, &filter, settings).with_held(held);
            let built = Arc::new(built);
            replace_catalog(catalog, |current| current.with_server(built))
        }
        ToolsEvent::Removed { server } => {
            replace_catalog(catalog, |current| current.without_server(&server))
        }
    };
    for dropped in refused {
        // Debug formatting escapes control characters in untrusted names.
        tracing::warn!(server = %dropped.server, tool = ?dropped.tool, reason = %dropped.reason, "tool left out of the catalog");
    }
}

/// Swap in the catalog `change` makes of the current one, under the channel's lock so concurrent
/// listings cannot lose each other's changes; returns the refusals that are new in it.
fn replace_catalog(
    catalog: &watch::Sender<Arc<Catalog>>,
    change: impl FnOnce(&Catalog) -> Catalog,
) -> Vec<DroppedTool> {
    let mut refused = Vec::new();
    catalog.send_modify(|current| {
        let next = change(current);
        refused = next.refused_since(current).into_iter().cloned().collect();
        *current = Arc::new(next);
    });
    refused
}
