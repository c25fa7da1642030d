-- Browser sign-in: sessions, authorization codes, refresh tokens, consents, sign-in throttling.
-- None of these tables advances `generation`: their rows are read from the store on every use,
-- never cached. Bearer secrets (session cookies, codes, refresh tokens) are stored only as their
-- SHA-256, so a copy of the database cannot be replayed against the endpoints.
-- Users and clients are not foreign keys here: a deleted client must not fail on (or silently
-- cascade away) the grants whose access tokens still need revoking.

ALTER TABLE tenant ADD COLUMN logo_url TEXT;
-- Sign-in lifetimes per tenant: browser session 1 day, refresh token 7 days (sliding).
ALTER TABLE tenant ADD COLUMN session_ttl BIGINT NOT NULL DEFAULT 86400;
ALTER TABLE tenant ADD COLUMN refresh_token_ttl BIGINT NOT NULL DEFAULT 604800;

ALTER TABLE client ADD COLUMN post_logout_redirect_uris TEXT NOT NULL DEFAULT '[]'; -- JSON array
-- Clients created before this migration could only use client_credentials, where PKCE never
-- applies, so requiring it by default changes nothing for them and is the safe default after.
ALTER TABLE client ADD COLUMN require_pkce BOOLEAN NOT NULL DEFAULT TRUE;
ALTER TABLE client ADD COLUMN first_party BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE client ADD COLUMN refresh_without_offline_access BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE client ADD COLUMN backchannel_logout_uri TEXT;

CREATE TABLE browser_session (
    tenant_id   TEXT NOT NULL REFERENCES tenant (id),
    id          TEXT NOT NULL,         -- public handle for listing and revoking, not the cookie
    secret_hash BYTEA NOT NULL UNIQUE, -- SHA-256 of the cookie secret; looked up on every request
    user_id     TEXT NOT NULL,
    auth_time   BIGINT NOT NULL,
    amr         TEXT NOT NULL,         -- JSON array
    user_agent  TEXT,
    ip          TEXT,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX browser_session_user ON browser_session (tenant_id, user_id);
CREATE INDEX browser_session_expires_at ON browser_session (expires_at);

-- Kept past expiry (see `purge_expired`) so that a replayed code still finds its grant to revoke.
CREATE TABLE authorization_code (
    tenant_id      TEXT NOT NULL REFERENCES tenant (id),
    code_hash      BYTEA NOT NULL,     -- SHA-256 of the code
    grant_id       TEXT NOT NULL,
    client_id      TEXT NOT NULL,
    user_id        TEXT NOT NULL,
    session_id     TEXT NOT NULL,
    redirect_uri   TEXT NOT NULL,
    scope          TEXT NOT NULL,      -- space-separated
    nonce          TEXT,
    code_challenge TEXT,
    auth_time      BIGINT NOT NULL,
    amr            TEXT NOT NULL,      -- JSON array
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    -- Set together, once, by the redemption that wins.
    redeemed_at    BIGINT,
    access_jti     TEXT,
    access_exp     BIGINT,
    PRIMARY KEY (tenant_id, code_hash)
);
CREATE INDEX authorization_code_grant ON authorization_code (tenant_id, grant_id);
CREATE INDEX authorization_code_expires_at ON authorization_code (expires_at);

CREATE TABLE refresh_token (
    tenant_id          TEXT NOT NULL REFERENCES tenant (id),
    token_hash         BYTEA NOT NULL, -- SHA-256 of the token
    grant_id           TEXT NOT NULL,
    client_id          TEXT NOT NULL,
    user_id            TEXT NOT NULL,
    scope              TEXT NOT NULL,  -- space-separated
    auth_time          BIGINT NOT NULL,
    amr                TEXT NOT NULL,  -- JSON array
    created_at         BIGINT NOT NULL,
    expires_at         BIGINT NOT NULL,
    access_jti         TEXT,
    access_exp         BIGINT,
    -- Set together, once, by the exchange that wins; the response is sealed with the master key.
    rotated_at         BIGINT,
    successor_response BYTEA,
    PRIMARY KEY (tenant_id, token_hash)
);
CREATE INDEX refresh_token_grant ON refresh_token (tenant_id, grant_id);
CREATE INDEX refresh_token_user ON refresh_token (tenant_id, user_id, client_id);
CREATE INDEX refresh_token_expires_at ON refresh_token (expires_at);

-- The clients with a back-channel logout URI that a browser session signed in to, so they can
-- be told when it ends. Kept until the session would have expired, so that the clients can still
-- be found after the session row is gone.
CREATE TABLE session_client (
    tenant_id  TEXT NOT NULL REFERENCES tenant (id),
    session_id TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, session_id, client_id)
);
CREATE INDEX session_client_expires_at ON session_client (expires_at);

CREATE TABLE consent (
    tenant_id  TEXT NOT NULL REFERENCES tenant (id),
    user_id    TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    scopes     TEXT NOT NULL,          -- JSON array
    granted_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, user_id, client_id)
);

-- One row per throttled key (`user:…` or `ip:…`), counted by an upsert.
CREATE TABLE login_failure (
    tenant_id      TEXT NOT NULL REFERENCES tenant (id),
    key            TEXT NOT NULL,
    count          BIGINT NOT NULL,
    last_failed_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, key)
);
CREATE INDEX login_failure_last_failed_at ON login_failure (last_failed_at);
