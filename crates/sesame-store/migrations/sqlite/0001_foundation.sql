-- Foundation: tenants, clients, signing keys, revoked access tokens, admin tokens.
-- Every row names its tenant. Times are Unix seconds (INTEGER) in both dialects.

CREATE TABLE setting (
    name  TEXT PRIMARY KEY,
    value BLOB NOT NULL
);

-- Advanced by every change to tenants, clients or keys; replicas poll it to drop caches.
CREATE TABLE generation (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    value INTEGER NOT NULL
);
INSERT INTO generation (id, value) VALUES (1, 0);

CREATE TABLE tenant (
    id               TEXT PRIMARY KEY,
    display_name     TEXT NOT NULL,
    disabled         BOOLEAN NOT NULL,
    signing_alg      TEXT NOT NULL,
    access_token_ttl INTEGER NOT NULL,
    created_at       INTEGER NOT NULL
);

CREATE TABLE client (
    tenant_id         TEXT NOT NULL REFERENCES tenant (id),
    client_id         TEXT NOT NULL,
    name              TEXT NOT NULL,
    client_type       TEXT NOT NULL,
    secret_hash       BLOB,
    grant_types       TEXT NOT NULL, -- JSON array
    redirect_uris     TEXT NOT NULL, -- JSON array
    allowed_scopes    TEXT NOT NULL, -- JSON array
    allowed_audiences TEXT NOT NULL, -- JSON array
    signing_alg       TEXT,
    access_token_ttl  INTEGER,
    disabled          BOOLEAN NOT NULL,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, client_id)
);

CREATE TABLE signing_key (
    tenant_id          TEXT NOT NULL REFERENCES tenant (id),
    kid                TEXT NOT NULL,
    alg                TEXT NOT NULL,
    state              TEXT NOT NULL CHECK (state IN ('next', 'active', 'retired')),
    sealed_private_key BLOB NOT NULL,
    public_jwk         TEXT NOT NULL,
    created_at         INTEGER NOT NULL,
    activated_at       INTEGER,
    publish_until      INTEGER,
    PRIMARY KEY (tenant_id, kid)
);
CREATE UNIQUE INDEX signing_key_one_active ON signing_key (tenant_id, alg) WHERE state = 'active';
CREATE UNIQUE INDEX signing_key_one_next ON signing_key (tenant_id, alg) WHERE state = 'next';

CREATE TABLE revoked_token (
    tenant_id  TEXT NOT NULL REFERENCES tenant (id),
    jti        TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, jti)
);
CREATE INDEX revoked_token_expires_at ON revoked_token (expires_at);

CREATE TABLE admin_token (
    token_hash BLOB PRIMARY KEY,
    name       TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
