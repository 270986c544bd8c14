//! Bundled MCP servers that ship inside the `switchboard` binary.
//!
//! Each server is a plain rmcp [`ServerHandler`](rmcp::ServerHandler) built with the
//! `#[tool_router]`/`#[tool]`/`#[tool_handler]` macros. This crate owns the tools and the
//! two ways of serving them ([`serve_stdio`], [`serve_http`]); it does not own a CLI,
//! logging setup or configuration: the `switchboard` binary picks a [`BundledServer`]
//! and calls one of the two functions.
//!
//! Modules, in reading order:
//! - `transport` (private): the fast stdio pipes and the Streamable HTTP listener.
//! - [`clock`]: current time, time-zone conversion and date arithmetic.
//! - [`calc`]: a safe arithmetic expression evaluator.
//! - [`notes`]: a persistent note store in SQLite.
//! - [`files`]: read-only access to one shared directory.
//! - [`testkit`]: misbehaving tools for Switchboard's own fault tests.
//!
//! Every tool reports failures the model should see as `isError` results, never as
//! JSON-RPC errors, and nothing here writes to stdout except the protocol itself.

use std::path::PathBuf;

use tokio_util::sync::CancellationToken;

pub mod calc;
pub mod clock;
pub mod files;
pub mod notes;
pub mod testkit;
mod transport;

/// One of the servers this crate can run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BundledServer {
    /// `now`, `convert_time`, `date_add`, `date_diff`.
    Clock,
    /// `evaluate`, `evaluate_many`.
    Calc,
    /// A note store kept in the SQLite file at `db_path` (created with its parent
    /// directories when missing).
    Notes {
        /// Path of the SQLite database file.
        db_path: PathBuf,
    },
    /// Read-only access to the directory `root` and everything below it.
    Files {
        /// The shared directory; it must exist.
        root: PathBuf,
    },
    /// Tools for fault tests; see [`testkit`] for its environment variables.
    Testkit,
}

impl BundledServer {
    /// The server's short name, as used on the command line and in `serverInfo.name`
    /// (`clock`, `calc`, `notes`, `files`, `testkit`).
    pub fn name(&self) -> &'static str {
        match self {
            BundledServer::Clock => "clock",
            BundledServer::Calc => "calc",
            BundledServer::Notes { .. } => "notes",
            BundledServer::Files { .. } => "files",
            BundledServer::Testkit => "testkit",
        }
    }
}

/// Why a bundled server could not start or stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The notes database could not be opened, created or migrated.
    #[error("cannot open the notes database {path}")]
    NotesDatabase {
        /// The configured database path.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: notes::StoreError,
    },
    /// The files root does not exist, is not a directory, or cannot be resolved.
    #[error("cannot use {path} as the shared directory")]
    FilesRoot {
        /// The configured root.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
    /// The MCP handshake over stdio failed.
    #[error("MCP handshake over stdio failed")]
    Handshake(#[source] Box<rmcp::service::ServerInitializeError>),
    /// The task running the MCP session panicked or was aborted.
    #[error("MCP session task failed")]
    Session(#[source] tokio::task::JoinError),
    /// The HTTP listener failed.
    #[error("HTTP server failed")]
    Http(#[source] std::io::Error),
}

/// Serve `server` over stdin/stdout until the peer closes the connection.
///
/// When fd 0 and 1 are pipes (they are when an MCP client spawns us) they are driven
/// by the tokio reactor instead of the blocking pool (rmcp-notes gotcha 15); otherwise
/// this falls back to `rmcp::transport::stdio()`. A peer that closes before the
/// handshake completes is a normal end, not an error.
///
/// [`BundledServer::Testkit`] first applies its `SWITCHBOARD_TESTKIT_MODE`
/// misbehaviour (see [`testkit`]), which may never return or may exit the process.
///
/// # Errors
///
/// [`Error::NotesDatabase`] or [`Error::FilesRoot`] when the server cannot be set up,
/// [`Error::Handshake`] when the handshake fails for another reason than the peer
/// closing, [`Error::Session`] when the session task dies.
pub async fn serve_stdio(server: BundledServer) -> Result<(), Error> {
    match server {
        BundledServer::Clock => transport::stdio(clock::Clock::new()).await,
        BundledServer::Calc => transport::stdio(calc::Calc::new()).await,
        BundledServer::Notes { db_path } => transport::stdio(open_notes(db_path).await?).await,
        BundledServer::Files { root } => transport::stdio(open_files(root)?).await,
        BundledServer::Testkit => {
            if testkit::apply_start_mode().await {
                let served = transport::stdio(testkit::Testkit::from_env()).await;
                testkit::after_session().await;
                served
            } else {
                Ok(())
            }
        }
    }
}

/// Serve `server` as Streamable HTTP at `/mcp` on `listener` until `shutdown` is
/// cancelled.
///
/// Sessions are stateful (`Mcp-Session-Id`) for clients that use the `initialize`
/// handshake; 2026-07-28 requests are stateless by protocol. Every accepted connection
/// gets `TCP_NODELAY` (rmcp-notes gotcha 14). Only loopback `Host` headers are accepted
/// (rmcp's default DNS-rebinding protection). Shared state (the notes pool, the testkit
/// tool list) lives behind `Arc`s, so it survives the per-request handler instances of
/// stateless mode. The testkit start modes are not applied over HTTP.
///
/// # Errors
///
/// [`Error::NotesDatabase`] or [`Error::FilesRoot`] when the server cannot be set up,
/// [`Error::Http`] when the listener fails.
pub async fn serve_http(
    server: BundledServer,
    listener: tokio::net::TcpListener,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    match server {
        BundledServer::Clock => transport::http(clock::Clock::new(), listener, shutdown).await,
        BundledServer::Calc => transport::http(calc::Calc::new(), listener, shutdown).await,
        BundledServer::Notes { db_path } => {
            transport::http(open_notes(db_path).await?, listener, shutdown).await
        }
        BundledServer::Files { root } => {
            transport::http(open_files(root)?, listener, shutdown).await
        }
        BundledServer::Testkit => {
            transport::http(testkit::Testkit::from_env(), listener, shutdown).await
        }
    }
}

async fn open_notes(db_path: PathBuf) -> Result<notes::Notes, Error> {
    notes::Notes::open(&db_path)
        .await
        .map_err(|source| Error::NotesDatabase {
            path: db_path,
            source,
        })
}

fn open_files(root: PathBuf) -> Result<files::Files, Error> {
    files::Files::new(&root).map_err(|source| Error::FilesRoot { path: root, source })
}
