//! The three ways to reach an MCP server, each producing an rmcp client session behind the same
//! [`Session`] type so the supervisor never branches on the transport after connecting.

pub mod depth;
pub mod http;
pub mod sse;
pub mod stdio;
pub mod tap;
