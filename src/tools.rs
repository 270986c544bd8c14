//! The tool catalog: what every connected MCP server offers, as the models see it.
//!
//! This module owns the pure, synchronous part of tool handling: filtering a server's listing,
//! naming (`<server>__<tool>`), sanitizing descriptions, refusing hostile schemas, compiling
//! argument validators, converting tools to provider payloads (OpenAI function tools, strict or
//! not, and Anthropic tools) and merging every server's tools into one routable [`Catalog`].
//! It does no IO and knows nothing about connections, retries or refresh timing: the MCP manager
//! calls [`ServerTools::build`] when a server's `tools/list` result arrives and [`Catalog::merge`]
//! whenever any server's tools change.
//!
//! Reading order: `naming` and `sanitize` (leaf helpers), `listing` (reading a raw
//! `tools/list` page entry by entry), `filter`, `schema` (admission checks),
//! `validate` (argument validation), `strict` (OpenAI strict conversion), `steering` (descriptions that steer the model around
//! other tools), `nulls` (undoing strict
//! mode's nulls), `entry` (one tool), `catalog` (one server, then all servers).

pub mod approval;
mod catalog;
mod entry;
mod filter;
mod listing;
mod naming;
mod nulls;
pub mod pins;
mod sanitize;
mod schema;
mod steering;
mod strict;
mod validate;

pub use catalog::{Catalog, DropReason, DroppedTool, ServerTools};
pub use entry::ToolEntry;
pub use filter::{FilterError, ToolMatcher};
pub use listing::{Listing, ListingError, Page, UnreadableTool, read_page};
pub use naming::{MAX_EXPOSED_NAME_LEN, exposed_name};
pub use nulls::remove_null_optional_fields;
pub use schema::{MAX_SCHEMA_BYTES, MAX_SCHEMA_DEPTH, SchemaError};
pub use steering::Steering;
pub use validate::{ArgumentError, validate_against};
