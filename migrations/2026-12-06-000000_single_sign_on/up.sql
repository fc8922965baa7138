-- Single sign-on (OpenID Connect).

-- A user created by a provider's sign-in has no password and needs no activation:
-- `activation_pending` is `password_hash IS NULL AND NOT sso_only`. An admin's reset
-- (an activation code) clears the flag: from then on a password is expected.
ALTER TABLE users ADD COLUMN sso_only BOOLEAN NOT NULL DEFAULT false;

-- An identity is a provider's subject, linked to one user; a user has at most one
-- identity per provider.
CREATE TABLE oidc_identities (
    provider      TEXT NOT NULL,
    subject       TEXT NOT NULL,
    user_id       BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at    TIMESTAMPTZ NOT NULL,
    last_login_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (provider, subject),
    UNIQUE (provider, user_id)
);
CREATE INDEX oidc_identities_user_idx ON oidc_identities (user_id);

-- A sign-in between `/start` and the callback: single-use, short-lived, usable on any
-- instance. The state (in the provider's redirect) and the browser-binding cookie are
-- stored only as SHA-256 hashes; the nonce and PKCE verifier are useless without the
-- authorization code, and the row is deleted when the callback uses it.
CREATE TABLE oidc_states (
    state_hash    BYTEA PRIMARY KEY CHECK (octet_length(state_hash) = 32),
    provider      TEXT NOT NULL,
    browser_hash  BYTEA NOT NULL CHECK (octet_length(browser_hash) = 32),
    nonce         TEXT NOT NULL,
    pkce_verifier TEXT NOT NULL,
    expires_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX oidc_states_expires_idx ON oidc_states (expires_at);
