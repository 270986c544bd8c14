-- Run leases (same as ../sqlite/0002_run_leases.sql, in Postgres' dialect): the store instance
-- executing a run, and when it last said so. Another process sharing the database marks a run
-- `interrupted` only once its heartbeat is older than the lease, never while its owner lives.
ALTER TABLE runs ADD COLUMN owner TEXT;
ALTER TABLE runs ADD COLUMN heartbeat_at BIGINT;
