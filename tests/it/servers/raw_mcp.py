"""A stdio MCP server that answers with exactly the JSON text a test gives it.

The integrity tests need answers no well-behaved SDK server would send: a tool listing whose
entries are malformed, a schema nested thousands of levels deep, results that break their own
output schema. This server speaks just enough MCP (2025-11-25 `initialize`, `ping`,
`tools/list` with cursors, `tools/call`) and pastes the test's raw text into each result.

Usage: raw_mcp.py SCENARIO.json, where the scenario is
  {"pages": ["<tools/list result text>", ...],   # page i is asked for with cursor "i"
   "calls": {"<tool name>": "<tools/call result text>", ...},
   "discover": "<server/discover result text>",   # absent: "method not found", as old servers
   "start_delay_ms": 12000,                        # sleep before answering the first message
   "log": "<text>",                                # logged (notifications/message) before each call's result
   "silent_discover": true}                        # never answer server/discover (some old servers ignore it)
Standard library only.
"""

import json
import sys
import time


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as handle:
        scenario = json.load(handle)
    pages = scenario.get("pages", ['{"tools": []}'])
    calls = scenario.get("calls", {})
    discover = scenario.get("discover")
    delay = scenario.get("start_delay_ms", 0) / 1000.0
    log = scenario.get("log")
    out = sys.stdout
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            message = json.loads(line)
        except ValueError:
            continue
        if "id" not in message or "method" not in message:
            continue  # notifications and responses
        if delay:
            time.sleep(delay)
            delay = 0
        ident = json.dumps(message["id"])
        method = message["method"]
        params = message.get("params") or {}
        result = None
        if method == "initialize":
            result = json.dumps(
                {
                    "protocolVersion": "2025-11-25",
                    "capabilities": {"tools": {}},
                    "serverInfo": {"name": "raw", "version": "1.0.0"},
                }
            )
        elif method == "server/discover":
            if scenario.get("silent_discover"):
                continue
            result = discover
        elif method == "ping":
            result = "{}"
        elif method == "tools/list":
            cursor = params.get("cursor") or "0"
            index = int(cursor) if cursor.isdigit() else 0
            result = pages[index] if index < len(pages) else '{"tools": []}'
        elif method == "tools/call":
            result = calls.get(params.get("name"))
            if log is not None:
                note = {"level": "warning", "logger": "raw", "data": log}
                out.write(json.dumps({"jsonrpc": "2.0", "method": "notifications/message", "params": note}) + "\n")
        if result is None:
            error = {"code": -32601, "message": "method not found: " + str(method)}
            out.write('{"jsonrpc":"2.0","id":%s,"error":%s}\n' % (ident, json.dumps(error)))
        else:
            out.write('{"jsonrpc":"2.0","id":%s,"result":%s}\n' % (ident, result))
        out.flush()


if __name__ == "__main__":
    main()
