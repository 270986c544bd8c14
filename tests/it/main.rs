//! Integration tests: real processes and real sockets (bundled servers, the reference MCP server
//! from npm), driven through the same `Hub` and HTTP API the binary uses.

mod support;

mod api;
mod browser;
mod bundled;
mod chat;
mod edges;
mod everything;
mod faults;
mod guard;
mod llm;
mod plan;
mod restart;
mod startup;
mod store;
mod telemetry;
