-- What this server adds to Privia's schema.

-- Emails compare case-insensitively.
CREATE INDEX IF NOT EXISTS ix_users_email_lower ON users (lower(email));
ALTER TABLE users ADD COLUMN created_at DATETIME;

-- Listing a user's conversations, newest activity first, and reading one's messages in order.
CREATE INDEX IF NOT EXISTS ix_conversations_user_updated ON conversations (user_id, updated_at DESC, id);
CREATE INDEX IF NOT EXISTS ix_messages_conversation ON messages (conversation_id);

-- An assistant message's metadata: how it was produced and how it ended
-- (complete, stopped by the user or a client leaving, failed).
ALTER TABLE messages ADD COLUMN mode VARCHAR;
ALTER TABLE messages ADD COLUMN sources TEXT;
ALTER TABLE messages ADD COLUMN model VARCHAR;
ALTER TABLE messages ADD COLUMN status VARCHAR NOT NULL DEFAULT 'complete';

-- Tokens revoked by logout, kept until they would have expired anyway.
CREATE TABLE revoked_tokens (
    jti VARCHAR NOT NULL PRIMARY KEY,
    expires_at INTEGER NOT NULL
);
CREATE INDEX ix_revoked_tokens_expires ON revoked_tokens (expires_at);

-- Live workspace events for the relay to push to every open socket of a user.
CREATE TABLE workspace_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,
    payload TEXT NOT NULL,
    created_at DATETIME NOT NULL
);
CREATE INDEX ix_workspace_events_created ON workspace_events (created_at);
