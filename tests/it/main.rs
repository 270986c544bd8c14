//! Integration tests: real processes and real sockets (bundled servers, the reference MCP server
//! from npm), driven through the same `Hub` and HTTP API the binary uses.

mod support;

mod access;
mod api;
mod approvals;
mod asks;
mod browser;
mod bundled;
mod chat;
mod disk;
mod edges;
mod everything;
mod faults;
mod fidelity;
mod gateway;
mod gateway_clients;
mod gateway_context;
mod gateway_replicas;
mod gateway_runs;
mod gateway_stdio;
mod guard;
mod integrity;
mod llm;
mod orphans;
mod outbound;
mod pins;
mod plan;
mod protocol;
mod redaction;
mod restart;
mod roles;
mod startup;
mod store;
mod store_access;
mod telemetry;
mod turns;
