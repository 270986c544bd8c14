// The official TypeScript MCP clients against a server's /mcp, one spec era per mode:
//   sdk1    @modelcontextprotocol/sdk 1.x (the 2025-11-25 `initialize` era, with a session)
//   legacy  @modelcontextprotocol/client 2.x, its default 2025 handshake
//   modern  @modelcontextprotocol/client 2.x pinned to 2026-07-28 (stateless, server/discover)
// Usage: node ts-clients.mjs URL MODE [BEARER_KEY]. Lists every tool, calls calc__evaluate
// with 6*7, and prints one JSON line: {mode, protocol, tools, names, text, isError, meta}.
// Any failure is printed to stderr and exits 1.
const [url, mode, key] = process.argv.slice(2);
if (!url || !["sdk1", "legacy", "modern"].includes(mode)) {
  console.error("usage: node ts-clients.mjs URL sdk1|legacy|modern [KEY]");
  process.exit(2);
}
const requestInit = key ? { headers: { Authorization: `Bearer ${key}` } } : undefined;

async function connect() {
  if (mode === "sdk1") {
    const { Client } = await import("@modelcontextprotocol/sdk/client/index.js");
    const { StreamableHTTPClientTransport } = await import(
      "@modelcontextprotocol/sdk/client/streamableHttp.js"
    );
    const client = new Client({ name: "ts-sdk1", version: "1.0.0" });
    const transport = new StreamableHTTPClientTransport(new URL(url), { requestInit });
    await client.connect(transport);
    return { client, protocol: transport.protocolVersion };
  }
  const { Client, StreamableHTTPClientTransport } = await import("@modelcontextprotocol/client");
  const options =
    mode === "modern" ? { versionNegotiation: { mode: { pin: "2026-07-28" } } } : {};
  const client = new Client({ name: `ts-v2-${mode}`, version: "2.0.0" }, options);
  const transport = new StreamableHTTPClientTransport(new URL(url), { requestInit });
  await client.connect(transport);
  return { client, protocol: client.getNegotiatedProtocolVersion?.() ?? transport.protocolVersion };
}

try {
  const { client, protocol } = await connect();
  const names = [];
  let cursor;
  do {
    const page = await client.listTools(cursor ? { cursor } : {});
    names.push(...page.tools.map((t) => t.name));
    cursor = page.nextCursor;
  } while (cursor);
  const result = await client.callTool({ name: "calc__evaluate", arguments: { expression: "6*7" } });
  const text = result.content.filter((c) => c.type === "text").map((c) => c.text).join("");
  console.log(
    JSON.stringify({ mode, protocol, tools: names.length, names, text, isError: !!result.isError, meta: result._meta ?? null }),
  );
  await client.close();
  process.exit(0);
} catch (err) {
  console.error(`${mode}: ${err?.stack ?? err}`);
  process.exit(1);
}
