#!/usr/bin/env bash
# The whole MCP conformance server suite (`--suite all`) against Switchboard's own MCP server,
# `/mcp` of a `switchboard serve` started here on its embedded defaults (the bundled servers,
# `auth: none` on loopback, a throwaway data directory). Pass the switchboard binary (default
# target/debug/switchboard). Needs the npm test peers (`npm ci --prefix tests/node`); runs
# offline. Exits non-zero on a failure not listed under `server:` in expected-failures.yml, or
# on a listed scenario that now passes.
set -euo pipefail
cd "$(dirname "$0")/../.."

bin="${1:-target/debug/switchboard}"
[[ -x "$bin" ]] || { echo "conformance: no executable at $bin (run cargo build first)" >&2; exit 1; }

export PATH="$PWD/tests/node/node_modules/.bin:$PATH"
command -v conformance >/dev/null || { echo "conformance: not installed; run npm ci --prefix tests/node" >&2; exit 1; }

out="$(mktemp -d "${TMPDIR:-/tmp}/switchboard-conformance-server.XXXXXX")"
server_pid=""
cleanup() {
  [[ -n "$server_pid" ]] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  [[ -n "${KEEP:-}" ]] || rm -rf "$out"
}
trap cleanup EXIT

port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"$bin" serve --bind "127.0.0.1:$port" --data-dir "$out/data" >"$out/server.log" 2>&1 &
server_pid=$!
ready() {
  python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' \
    "http://127.0.0.1:$port/readyz" >/dev/null 2>&1
}
for _ in $(seq 1 150); do
  if ready; then break; fi
  if ! kill -0 "$server_pid" 2>/dev/null; then
    cat "$out/server.log"; echo "conformance: switchboard serve exited" >&2; exit 1
  fi
  sleep 0.2
done
ready || {
  cat "$out/server.log"; echo "conformance: switchboard serve never got ready" >&2; exit 1; }

status=0
timeout 300 conformance server \
  --url "http://127.0.0.1:$port/mcp" \
  --suite all \
  --expected-failures tests/conformance/expected-failures.yml \
  -o "$out/results" >"$out/log.txt" 2>&1 || status=$?
if [[ $status -ne 0 ]]; then
  cat "$out/log.txt"
  echo "conformance: the server suite failed (exit $status)" >&2
  exit "$status"
fi
sed -n '/=== SUMMARY ===/,$p' "$out/log.txt"
