-- Browser sessions: a sign-in from the web client starts a family of refresh tokens, and each
-- refresh replaces the token it presents with a successor. Tokens are kept as the hex SHA-256
-- of their text, never in clear.

-- Moved by "sign out everywhere": an access token carries the value its user had when it was
-- issued, and is refused once the user's has moved past it.
ALTER TABLE users ADD COLUMN token_generation INTEGER NOT NULL DEFAULT 0;

CREATE TABLE session_families (
    id VARCHAR NOT NULL PRIMARY KEY,
    user_id VARCHAR NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    -- Set when the session ends: a sign-out, a sign-out everywhere, or a rotated token presented again.
    revoked_at INTEGER,
    revoked_reason VARCHAR
);
CREATE INDEX ix_session_families_user ON session_families (user_id);

CREATE TABLE refresh_tokens (
    token_hash VARCHAR NOT NULL PRIMARY KEY,
    family_id VARCHAR NOT NULL REFERENCES session_families (id) ON DELETE CASCADE,
    expires_at INTEGER NOT NULL,
    -- When its successor was issued. A rotated token is kept until it expires, so that its
    -- reuse is recognized.
    rotated_at INTEGER
);
CREATE INDEX ix_refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX ix_refresh_tokens_expires ON refresh_tokens (expires_at);
