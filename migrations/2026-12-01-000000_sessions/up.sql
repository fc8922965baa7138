-- Accounts and sessions (API v2, section 1).

-- A user whose password was reset has none until they use an activation code.
ALTER TABLE users ALTER COLUMN password_hash DROP NOT NULL;
ALTER TABLE users ADD COLUMN disabled BOOLEAN NOT NULL DEFAULT false;

-- Every login, refresh and activation belongs to a session; access tokens name it (`sid`).
CREATE TABLE sessions (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id       BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at    TIMESTAMPTZ NOT NULL,
    last_used_at  TIMESTAMPTZ NOT NULL,
    expires_at    TIMESTAMPTZ NOT NULL,
    revoked_at    TIMESTAMPTZ,
    user_agent    TEXT CHECK (char_length(user_agent) <= 512),
    ip            TEXT CHECK (char_length(ip) <= 64)
);
CREATE INDEX sessions_user_id_idx ON sessions (user_id, created_at);

-- Every refresh token a session was given, as a SHA-256: the current one is unused; a used
-- one presented again revokes its session (reuse detection).
CREATE TABLE refresh_tokens (
    token_hash  BYTEA PRIMARY KEY CHECK (octet_length(token_hash) = 32),
    session_id  BIGINT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    issued_at   TIMESTAMPTZ NOT NULL,
    used_at     TIMESTAMPTZ
);
CREATE INDEX refresh_tokens_session_id_idx ON refresh_tokens (session_id);

-- At most one live activation code per user, as a SHA-256.
CREATE TABLE activation_codes (
    user_id     BIGINT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    code_hash   BYTEA NOT NULL UNIQUE CHECK (octet_length(code_hash) = 32),
    expires_at  TIMESTAMPTZ NOT NULL
);

-- A ticket opens the stream for the session that asked for it, so revoking the session
-- closes that stream too.
ALTER TABLE ws_tickets ADD COLUMN session_id BIGINT REFERENCES sessions (id) ON DELETE CASCADE;

-- A login attempt is recorded before its password is checked (so concurrent guesses cannot
-- slip past the throttle while their hashes run) as pending; it becomes a failure if the
-- password was wrong and is deleted if it was right.
ALTER TABLE login_failures ADD COLUMN pending BOOLEAN NOT NULL DEFAULT false;
