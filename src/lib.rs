//! Switchboard: an MCP-native hub between language models and tools.
//!
//! Modules in reading order: `config` (typed settings from YAML), `tools` (the merged catalog:
//! naming, schemas, validation; pure), `mcp` (servers, sessions, supervision; IO), `sse`
//! (bounded event-stream decoding).

pub mod access;
pub mod api;
pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod domain;
pub mod engine;
pub mod gateway;
pub mod hub;
pub mod llm;
pub mod mcp;
pub mod outbound;
pub mod redact;
pub mod runs;
pub mod sse;
pub mod store;
pub mod telemetry;
pub mod tools;
pub mod trace;
pub mod web;

// Every binary that links this crate (the server, the bundled MCP servers it spawns, the bench
// and test binaries) allocates through mimalloc: tokio moves tasks between worker threads, so
// buffers are often freed on another thread than the one that allocated them, and glibc's arena
// locks then cost ~20 % of a busy server's CPU in futex wake-ups (see docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
