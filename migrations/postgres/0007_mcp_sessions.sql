-- Sessions of /mcp clients of the `initialize` era (gateway.rs), so a session begun on one
-- replica goes on on another: `state` is rmcp's SessionState as JSON (the client's initialize
-- parameters, which a replica replays to rebuild the session). Deleted when the client ends
-- the session, and pruned once older than the retention the store is opened with.
CREATE TABLE mcp_sessions (
    id          TEXT PRIMARY KEY NOT NULL,
    state       TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE INDEX mcp_sessions_by_created ON mcp_sessions (created_at);
