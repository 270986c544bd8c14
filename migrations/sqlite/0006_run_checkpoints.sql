-- Where a durable run can go on from (engine/checkpoint.rs): one row per live run that became
-- durable (it waited for a person), replaced at each checkpoint and deleted when the run ends.
-- `state` is the run service's JSON: the engine's checkpoint and who the run runs as. It holds
-- the conversation as the model sees it, unredacted, like a conversation's messages.
CREATE TABLE run_checkpoints (
    run_id      TEXT PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE,
    state       TEXT NOT NULL,
    saved_at    INTEGER NOT NULL
);
