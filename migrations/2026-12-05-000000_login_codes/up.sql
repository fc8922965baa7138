-- Single sign-on hands the SPA a login code in the URL fragment, which it exchanges once,
-- within 60 s, for the normal login answer. Only a SHA-256 of the code is stored.
CREATE TABLE login_codes (
    code_hash   BYTEA PRIMARY KEY CHECK (octet_length(code_hash) = 32),
    user_id     BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at  TIMESTAMPTZ NOT NULL,
    used_at     TIMESTAMPTZ
);
CREATE INDEX login_codes_expires_idx ON login_codes (expires_at);
