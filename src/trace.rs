//! Logging set-up: one `tracing` subscriber writing to stderr (stdout belongs to the MCP
//! protocol when we run as a bundled stdio server), filtered by `RUST_LOG`.

use tracing_subscriber::EnvFilter;

/// Install the global subscriber; `default_filter` applies when `RUST_LOG` is unset.
pub fn init(default_filter: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}
