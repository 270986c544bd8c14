#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it (.ci/run calls this script).
# Installs what the tests need (Node packages for the reference MCP server and the conformance
# suite), then checks formatting and lints, then runs every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== installing test peers (npm)"
npm ci --prefix tests/node --no-audit --no-fund --loglevel=error
node22="tests/node/node_modules/.bin/node"
"$node22" --version | grep -q '^v22\.' || { echo "the local Node 22 did not install" >&2; exit 1; }

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== cargo test"
cargo test --workspace --locked -- --test-threads=2
