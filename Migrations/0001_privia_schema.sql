-- The tables of Privia's Python backend at its last Alembic revision (b4e2c3d5f6a7), in the
-- same shape, so a database that backend made passes through the same migrations as a new one:
-- on such a database every statement here is a no-op.
CREATE TABLE IF NOT EXISTS users (
    id VARCHAR NOT NULL PRIMARY KEY,
    email VARCHAR NOT NULL,
    full_name VARCHAR,
    password_hash VARCHAR NOT NULL,
    role VARCHAR NOT NULL DEFAULT 'member',
    provider VARCHAR,
    provider_account_id VARCHAR,
    avatar_url VARCHAR
);
CREATE UNIQUE INDEX IF NOT EXISTS ix_users_email ON users (email);

CREATE TABLE IF NOT EXISTS conversations (
    id VARCHAR NOT NULL PRIMARY KEY,
    user_id VARCHAR NOT NULL REFERENCES users (id),
    title VARCHAR NOT NULL,
    created_at DATETIME NOT NULL,
    updated_at DATETIME NOT NULL,
    status VARCHAR NOT NULL DEFAULT 'empty'
);
-- At most one empty conversation per user: "new chat" is idempotent because of it.
CREATE UNIQUE INDEX IF NOT EXISTS ix_conversations_one_empty_per_user
    ON conversations (user_id) WHERE status = 'empty';

CREATE TABLE IF NOT EXISTS messages (
    id VARCHAR NOT NULL PRIMARY KEY,
    conversation_id VARCHAR NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    role VARCHAR NOT NULL,
    content VARCHAR NOT NULL,
    timestamp DATETIME NOT NULL
);
