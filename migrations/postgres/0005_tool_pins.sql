-- Pinned tool definitions (tools::pins): per server and tool, the definition in force and one
-- waiting for an admin's review, each with the SHA-256 of its JSON text. A row is written the
-- first time a tool is seen and whenever its pin changes; it is never deleted (a tool that
-- leaves and comes back is compared with what was pinned).
CREATE TABLE tool_pins (
    server          TEXT NOT NULL,
    tool            TEXT NOT NULL,
    accepted_hash   TEXT,
    accepted        TEXT,
    pending_hash    TEXT,
    pending         TEXT,
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (server, tool)
);
