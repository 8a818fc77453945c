-- Usage metering: one row per generation, whatever its outcome.
CREATE TABLE usage_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id VARCHAR NOT NULL,
    conversation_id VARCHAR,
    message_id VARCHAR,
    provider VARCHAR NOT NULL,
    model VARCHAR NOT NULL,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    -- 1 when the provider reported no usage and the counts are estimates.
    estimated INTEGER NOT NULL DEFAULT 0,
    latency_ms INTEGER NOT NULL,
    time_to_first_token_ms INTEGER,
    status VARCHAR NOT NULL,
    cost REAL NOT NULL DEFAULT 0,
    created_at DATETIME NOT NULL
);
CREATE INDEX ix_usage_events_user_created ON usage_events (user_id, created_at);

-- Idempotent turns: a key seen twice replays the first turn's result.
CREATE TABLE turn_requests (
    user_id VARCHAR NOT NULL,
    idempotency_key VARCHAR NOT NULL,
    conversation_id VARCHAR NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    user_message_id VARCHAR NOT NULL,
    assistant_message_id VARCHAR,
    created_at DATETIME NOT NULL,
    PRIMARY KEY (user_id, idempotency_key)
);
