-- Answers still streaming, saved as they grow (about once a second a turn, TurnStore), so a
-- worker process that dies mid-answer loses at most that much of it. The pool's master turns
-- the rows of a worker it has reaped, and at start those of processes no longer alive (a pool
-- that died whole), into answers with status `interrupted`. A turn that ends deletes its row
-- in the write that stores its answer; a turn shorter than the interval never has one.
CREATE TABLE running_turns (
    -- The id the answer will have in `messages`.
    message_id VARCHAR NOT NULL PRIMARY KEY,
    conversation_id VARCHAR NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    user_id VARCHAR NOT NULL,
    idempotency_key VARCHAR,
    -- The process producing it: its pid and its start time (clock ticks after boot, from
    -- /proc/PID/stat; 0 where unknown), so a pid the kernel gave to a new process is not it.
    owner_pid INTEGER NOT NULL,
    owner_started INTEGER NOT NULL,
    content TEXT NOT NULL,
    mode VARCHAR NOT NULL,
    model VARCHAR NOT NULL,
    -- The usage to record if it is interrupted, as of the last save (usage_events' columns).
    provider VARCHAR NOT NULL,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    latency_ms INTEGER NOT NULL,
    time_to_first_token_ms INTEGER,
    cost REAL NOT NULL,
    saved_at DATETIME NOT NULL
);
CREATE INDEX ix_running_turns_owner ON running_turns (owner_pid, owner_started);
