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

echo "== installing test peers (PyPI: the official openai SDK, used as a real client)"
if [[ ! -x tests/python/.venv/bin/python ]]; then
  python3 -m venv tests/python/.venv
fi
tests/python/.venv/bin/pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt

echo "== services (PostgreSQL for the store tests)"
export SWITCHBOARD_TEST_POSTGRES_URL="${SWITCHBOARD_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
if command -v pg_isready >/dev/null && ! pg_isready -h 127.0.0.1 -p 5432 -q; then
  # Machines of this kind start PostgreSQL before the session; start it if it stopped.
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start || true
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== conformance (client, core suite)"
cargo build --locked --bin switchboard
# Its own tally counts the auth scenarios listed as expected failures; reword it so it is not
# mistaken for this script's result line.
tests/conformance/run.sh target/debug/switchboard 2>&1 | sed -E 's/^Total: /conformance scenarios: /'

echo "== cargo test"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
cargo test --workspace --locked -- --test-threads=2 2>&1 | tee "$log"
read -r passed failed < <(awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } } END { print p + 0, f + 0 }' "$log")
echo "summary: ${passed} passed, ${failed} failed"
