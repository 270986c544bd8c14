-- Access (same as ../postgres/0003_access.sql, in this backend's dialect): API keys, browser
-- sessions, the audit log, and the user each conversation and run belongs to.
-- Secrets are never stored: keys and session tokens only as their SHA-256 (hex), and the audit
-- log holds no keys, Authorization headers or configured secret values.

CREATE TABLE api_keys (
    id         TEXT    PRIMARY KEY NOT NULL,
    user_name  TEXT    NOT NULL,
    role       TEXT    NOT NULL,
    hash       TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    revoked_at INTEGER
);

CREATE INDEX api_keys_by_user ON api_keys (user_name);

CREATE TABLE sessions (
    hash       TEXT    PRIMARY KEY NOT NULL,
    key_id     TEXT    NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);

CREATE INDEX sessions_by_key ON sessions (key_id);

-- Append-only: the store has no statement that updates or deletes these rows.
CREATE TABLE audit (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    at        INTEGER NOT NULL,
    user_name TEXT,
    key_id    TEXT,
    action    TEXT    NOT NULL,
    target    TEXT,
    outcome   TEXT    NOT NULL,
    client    TEXT,
    trace_id  TEXT
);

CREATE INDEX audit_by_time ON audit (at DESC, id DESC);

-- Append-only: a row, once written, is never changed or removed (retention, when it comes,
-- is a migration of its own that says so).
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;

CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
CREATE INDEX audit_by_user ON audit (user_name, id DESC);
CREATE INDEX audit_by_action ON audit (action, id DESC);

-- NULL: made before users existed; only administrators (who see everything) see those.
ALTER TABLE runs ADD COLUMN user_name TEXT;
ALTER TABLE conversations ADD COLUMN user_name TEXT;

CREATE INDEX runs_by_user ON runs (user_name, started_at DESC, id DESC);
CREATE INDEX conversations_by_user ON conversations (user_name, id DESC);
