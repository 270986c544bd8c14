#!/usr/bin/env bash
# The whole MCP conformance client suite (`--suite all`: core, extensions, backcompat, draft)
# against `switchboard conformance-client`, which drives the hub itself (src/conformance.rs).
# Builds nothing: pass the switchboard binary (default target/debug/switchboard, which
# `cargo test` builds). Needs the npm test peers (`npm ci --prefix tests/node`), which include
# Node 22; runs offline. Exits non-zero on a failure not listed in expected-failures.yml, or on
# a listed scenario that now passes.
set -euo pipefail
cd "$(dirname "$0")/../.."

bin="${1:-target/debug/switchboard}"
[[ -x "$bin" ]] || { echo "conformance: no executable at $bin (run cargo build first)" >&2; exit 1; }
bin="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"
case "$bin" in *" "*) echo "conformance: the binary path must not contain spaces: $bin" >&2; exit 1 ;; esac

export PATH="$PWD/tests/node/node_modules/.bin:$PATH"
command -v conformance >/dev/null || { echo "conformance: not installed; run npm ci --prefix tests/node" >&2; exit 1; }
node --version | grep -q '^v22\.' || { echo "conformance: needs the local Node 22 (tests/node)" >&2; exit 1; }

out="$(mktemp -d "${TMPDIR:-/tmp}/switchboard-conformance.XXXXXX")"
trap 'rm -rf "$out"' EXIT

# The suite runs every scenario in parallel; each has a 30 s cap (the client gives up at 20 s).
status=0
timeout 300 conformance client \
  --command "$bin conformance-client" \
  --suite all \
  --expected-failures tests/conformance/expected-failures.yml \
  -o "$out" >"$out/log.txt" 2>&1 || status=$?

# Per-scenario detail (checks, stdout, stderr) is in $out; show the summary, and everything on failure.
if [[ $status -ne 0 ]]; then
  cat "$out/log.txt"
  echo "conformance: failed (exit $status)" >&2
  exit "$status"
fi
sed -n '/=== SUITE SUMMARY ===/,$p' "$out/log.txt"

# The suite counts a scenario with no checks at all as passed (e.g. `initialize` when the client
# never connects); require at least one SUCCESS from every scenario not listed as failing.
node - "$out" tests/conformance/expected-failures.yml <<'JS'
const fs = require("fs"), path = require("path");
const [out, baseline] = process.argv.slice(2);
const expected = new Set(
  fs.readFileSync(baseline, "utf8").split("\n").map((l) => l.match(/^\s*-\s*(\S+)/)).filter(Boolean).map((m) => m[1]));
const hollow = [];
for (const file of fs.globSync("**/checks.json", { cwd: out })) {
  const scenario = path.dirname(file).replace(/-\d{4}-\d{2}-\d{2}T[\d-]+Z$/, "");
  const checks = JSON.parse(fs.readFileSync(path.join(out, file), "utf8"));
  if (!expected.has(scenario) && !checks.some((c) => c.status === "SUCCESS")) hollow.push(scenario);
}
if (hollow.length) {
  console.error(`conformance: no successful check in: ${hollow.join(", ")}`);
  process.exit(1);
}
JS
