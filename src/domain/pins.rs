//! A pinned tool definition, as the catalog's pin book (`tools::pins`) decides on it and the
//! store keeps it: here because both speak it and neither may import the other.

use serde_json::Value;

/// One version of a tool's definition.
#[derive(Debug, Clone, PartialEq)]
pub struct Pin {
    /// SHA-256 (hex) of the definition's JSON text.
    pub hash: String,
    pub definition: Value,
}

/// What is pinned for one tool of one server.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Pinned {
    /// The definition in force; `None` for a new tool held before it was ever accepted.
    pub accepted: Option<Pin>,
    /// A definition seen and held, waiting for an admin.
    pub pending: Option<Pin>,
}
