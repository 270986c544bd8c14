-- Conversations, messages, runs, steps and step edges (design.md §3–§4).
-- Same schema as ../postgres/0001_init.sql, in SQLite's dialect.
-- Ids are UUID strings, times are Unix milliseconds, JSON is TEXT: the store's SQL is then
-- identical on both backends.

CREATE TABLE conversations (
    id         TEXT    PRIMARY KEY NOT NULL,
    title      TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE messages (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id TEXT    NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    role            TEXT    NOT NULL CHECK (role IN ('user', 'assistant')),
    content         TEXT    NOT NULL,
    -- No foreign key: a message may name a run whose rows are still on their way.
    run_id          TEXT,
    created_at      INTEGER NOT NULL
);

CREATE INDEX messages_by_conversation ON messages (conversation_id, id);

CREATE TABLE runs (
    id              TEXT    PRIMARY KEY NOT NULL,
    -- No foreign key: runs outlive their conversation (set to NULL when it is deleted).
    conversation_id TEXT,
    agent           TEXT,
    model           TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    user_message    TEXT    NOT NULL,
    answer          TEXT,
    error           TEXT,
    trace_id        TEXT,
    started_at      INTEGER NOT NULL,
    finished_at     INTEGER,
    input_tokens    INTEGER NOT NULL DEFAULT 0,
    output_tokens   INTEGER NOT NULL DEFAULT 0
);

CREATE INDEX runs_by_started ON runs (started_at DESC, id DESC);
CREATE INDEX runs_by_status ON runs (status, started_at DESC, id DESC);
CREATE INDEX runs_by_agent ON runs (agent, started_at DESC, id DESC);
CREATE INDEX runs_by_model ON runs (model, started_at DESC, id DESC);
CREATE INDEX runs_by_conversation ON runs (conversation_id);

CREATE TABLE steps (
    run_id        TEXT    NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    idx           INTEGER NOT NULL,
    kind          TEXT    NOT NULL,
    name          TEXT    NOT NULL,
    server        TEXT,
    status        TEXT    NOT NULL,
    started_at    INTEGER NOT NULL,
    finished_at   INTEGER,
    input         TEXT    NOT NULL,
    output        TEXT,
    error         TEXT,
    input_tokens  INTEGER,
    output_tokens INTEGER,
    attempt       INTEGER NOT NULL,
    PRIMARY KEY (run_id, idx)
);

CREATE INDEX steps_running ON steps (status) WHERE status = 'running';

CREATE TABLE step_edges (
    run_id   TEXT    NOT NULL,
    from_idx INTEGER NOT NULL,
    to_idx   INTEGER NOT NULL,
    PRIMARY KEY (run_id, from_idx, to_idx),
    -- Only the dependent side is checked: it is inserted with its step.
    FOREIGN KEY (run_id, to_idx) REFERENCES steps (run_id, idx) ON DELETE CASCADE
);
