-- Access (same as ../sqlite/0003_access.sql, in this backend's dialect): API keys, browser
-- sessions, the audit log, and the user each conversation and run belongs to.
-- Secrets are never stored: keys and session tokens only as their SHA-256 (hex), and the audit
-- log holds no keys, Authorization headers or configured secret values.

CREATE TABLE api_keys (
    id         TEXT    PRIMARY KEY NOT NULL,
    user_name  TEXT    NOT NULL,
    role       TEXT    NOT NULL,
    hash       TEXT    NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    revoked_at BIGINT
);

CREATE INDEX api_keys_by_user ON api_keys (user_name);

CREATE TABLE sessions (
    hash       TEXT    PRIMARY KEY NOT NULL,
    key_id     TEXT    NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE INDEX sessions_by_key ON sessions (key_id);

-- Append-only: the store has no statement that updates or deletes these rows.
CREATE TABLE audit (
    id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at        BIGINT NOT NULL,
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
CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only';
END;
$$;

CREATE TRIGGER audit_no_change BEFORE UPDATE OR DELETE ON audit
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();

CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
CREATE INDEX audit_by_user ON audit (user_name, id DESC);
CREATE INDEX audit_by_action ON audit (action, id DESC);

-- NULL: made before users existed; only administrators (who see everything) see those.
ALTER TABLE runs ADD COLUMN user_name TEXT;
ALTER TABLE conversations ADD COLUMN user_name TEXT;

CREATE INDEX runs_by_user ON runs (user_name, started_at DESC, id DESC);
CREATE INDEX conversations_by_user ON conversations (user_name, id DESC);
