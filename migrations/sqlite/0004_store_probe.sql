-- The write probe (same as ../postgres/0004_store_probe.sql, in SQLite's dialect): one row the
-- store's writer rewrites, while writes fail (a full disk, a lost connection), to learn whether
-- the database takes writes again. A real write, because a full disk still answers reads.
CREATE TABLE store_probe (
    id         INTEGER PRIMARY KEY,
    written_at INTEGER NOT NULL
);
