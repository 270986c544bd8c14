//! Run one bundled server over stdio without the rest of Switchboard, for debugging:
//!
//! ```sh
//! cargo run -p switchboard-mcp-servers --example serve -- clock
//! cargo run -p switchboard-mcp-servers --example serve -- notes /tmp/notes.db
//! cargo run -p switchboard-mcp-servers --example serve -- files ./some/dir
//! cargo run -p switchboard-mcp-servers --example serve -- http calc   # prints the URL on stderr
//! ```
//!
//! The real entry point is `switchboard mcp-server <name>`.

use std::path::PathBuf;

use switchboard_mcp_servers::{BundledServer, serve_http, serve_stdio};
use tokio_util::sync::CancellationToken;

fn usage() -> ! {
    eprintln!("usage: serve [http] clock|calc|testkit|notes <db>|files <root>");
    std::process::exit(2)
}

fn parse(args: &[String]) -> BundledServer {
    let path = || PathBuf::from(args.get(1).cloned().unwrap_or_else(|| usage()));
    match args.first().map(String::as_str) {
        Some("clock") => BundledServer::Clock,
        Some("calc") => BundledServer::Calc,
        Some("testkit") => BundledServer::Testkit,
        Some("notes") => BundledServer::Notes { db_path: path() },
        Some("files") => BundledServer::Files { root: path() },
        _ => usage(),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("http") {
        let server = parse(&args[1..]);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        eprintln!(
            "serving {} at http://{}/mcp",
            server.name(),
            listener.local_addr()?
        );
        let shutdown = CancellationToken::new();
        let on_signal = shutdown.clone();
        tokio::spawn(async move {
            let _ = tokio::signal::ctrl_c().await;
            on_signal.cancel();
        });
        serve_http(server, listener, shutdown).await?;
    } else {
        serve_stdio(parse(&args)).await?;
    }
    Ok(())
}
