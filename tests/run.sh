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

echo "== installing test peers (Debian: Chromium and ChromeDriver for the browser tests)"
# The browser tests (tests/it/browser) fail rather than skip without them. CI is a clean Debian
# machine running this as root; elsewhere, install the two packages yourself.
if ! command -v chromedriver >/dev/null || ! command -v chromium >/dev/null; then
  if [[ "$(id -u)" -ne 0 ]] || ! command -v apt-get >/dev/null; then
    echo "chromium and chromedriver are missing and this is not a root Debian shell:" \
      "install Debian's chromium and chromium-driver packages" >&2
    exit 1
  fi
  if ! { apt-get update -q \
      && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        chromium chromium-driver; }; then
    echo "installing chromium and chromium-driver with apt-get failed (see above)" >&2
    exit 1
  fi
  if ! command -v chromedriver >/dev/null || ! command -v chromium >/dev/null; then
    echo "chromium-driver installed but chromium or chromedriver is still not on PATH" >&2
    exit 1
  fi
fi
chromium --version 2>/dev/null | grep -v '^\s*$' | tail -n 1 || true
chromedriver --version

echo "== services (PostgreSQL for the store tests)"
export SWITCHBOARD_TEST_POSTGRES_URL="${SWITCHBOARD_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
if command -v pg_isready >/dev/null && ! pg_isready -h 127.0.0.1 -p 5432 -q; then
  # Machines of this kind start PostgreSQL before the session; start it if it stopped.
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start || true
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo deny (licenses, sources, duplicate versions; deny.toml)"
# Installed from crates.io when missing. The advisories check is left out: its database is
# cloned from GitHub, which CI machines cannot reach.
if ! cargo deny --version 2>/dev/null | grep -q '^cargo-deny 0\.20\.'; then
  cargo install --locked --quiet cargo-deny --version '^0.20'
fi
cargo deny --log-level error check licenses sources bans

echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== conformance (client, every suite, through the hub)"
cargo build --locked --bin switchboard
# Its own tally counts the auth scenarios listed as expected failures; reword it so it is not
# mistaken for this script's result line.
tests/conformance/run.sh target/debug/switchboard 2>&1 | sed -E 's/^Total: /conformance scenarios: /'

echo "== conformance (server, every suite, against Switchboard's own /mcp)"
tests/conformance/server.sh target/debug/switchboard 2>&1 | sed -E 's/^Total: /conformance server scenarios: /'

echo "== cargo test"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
cargo test --workspace --locked -- --test-threads=2 2>&1 | tee "$log"
read -r passed failed < <(awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } } END { print p + 0, f + 0 }' "$log")
echo "summary: ${passed} passed, ${failed} failed"
