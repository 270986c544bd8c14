//! `fake-llm`: the integration tests' FAKE language-model server, run by hand for offline demos.
//!
//! It speaks the OpenAI Chat Completions and Anthropic Messages protocols, but there is no model
//! behind them: with nothing scripted it answers with the deterministic demo of
//! `src/demo.rs` of this crate, and every text it writes starts with "(fake model)".

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;
use switchboard_fake_llm::{FakeLlm, Fallback};

/// FAKE LLM server for offline demos and tests. NOT a real model.
///
/// Serves the OpenAI Chat Completions API (POST /v1/chat/completions, GET /v1/models) and the
/// Anthropic Messages API (POST /v1/messages, GET /v1/models) with canned, deterministic answers
/// that all start with "(fake model)": it calls a tool ending in `evaluate` for arithmetic, a
/// tool ending in `now` when asked for the time, summarizes tool results, and otherwise echoes.
#[derive(Parser)]
#[command(name = "fake-llm", version)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9999")]
    bind: SocketAddr,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let fake = match FakeLlm::bind(args.bind).await {
        Ok(fake) => fake,
        Err(error) => {
            eprintln!("fake-llm: cannot listen on {}: {error}", args.bind);
            return ExitCode::FAILURE;
        }
    };
    fake.set_fallback(Fallback::Demo);
    eprintln!("fake-llm: FAKE model server (no real model; every answer says \"(fake model)\")");
    eprintln!("  OpenAI-compatible base URL: {}", fake.openai_base_url());
    eprintln!(
        "  Anthropic base URL:         {}",
        fake.anthropic_base_url()
    );
    eprintln!("  any model name and API key are accepted; Ctrl-C stops");
    if let Err(error) = tokio::signal::ctrl_c().await {
        eprintln!("fake-llm: cannot wait for Ctrl-C: {error}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
