//! Switchboard: an MCP-native hub between language models and tools.
//!
//! Modules in reading order: `config` (typed settings from YAML), `tools` (the merged catalog:
//! naming, schemas, validation; pure), `mcp` (servers, sessions, supervision; IO), `sse`
//! (bounded event-stream decoding).

pub mod api;
pub mod app;
pub mod cli;
pub mod config;
pub mod conformance;
pub mod domain;
pub mod engine;
pub mod hub;
pub mod llm;
pub mod mcp;
pub mod runs;
pub mod sse;
pub mod store;
pub mod telemetry;
pub mod tools;
pub mod trace;
