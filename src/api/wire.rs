//! Every shape that goes on the wire, as serde types: what clients read is declared here, in one
//! place, not assembled from `json!` trees in handlers or derived from other modules' records.
//! Handlers convert the hub's, store's and registry's values into these.

pub(super) mod access;
pub(super) mod agents;
pub(super) mod approvals;
pub mod catalog;
pub(super) mod context;
pub(super) mod conversations;
pub(super) mod errors;
pub(super) mod events;
pub(super) mod models;
pub(super) mod openai;
pub(super) mod reload;
pub(super) mod runs;
