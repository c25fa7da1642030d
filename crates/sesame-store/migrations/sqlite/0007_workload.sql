-- Workload identity out (sources and their workload tokens) and delegated (on-behalf-of) sessions.

-- Per-tenant settings of this feature, in a table of their own so that the tenant row (and every
-- query of it) stays as it is. A tenant without a row has the defaults: workload issuer = the
-- sign-in issuer, delegated sessions of at most 7 days.
CREATE TABLE workload_setting (
    tenant_id       TEXT NOT NULL PRIMARY KEY REFERENCES tenant (id),
    workload_issuer TEXT,              -- NULL: the sign-in issuer
    session_max_ttl INTEGER NOT NULL
);

-- A source: something of the tenant that gets workload tokens (sub = its resource id), through
-- a client of its own.
CREATE TABLE source (
    tenant_id  TEXT NOT NULL REFERENCES tenant (id),
    id         TEXT NOT NULL,         -- UUID; the resource id is ri.sesame.<tenant>.source.<id>
    name       TEXT NOT NULL,
    client_id  TEXT NOT NULL,         -- the client that authenticates for it
    audiences  TEXT NOT NULL,         -- JSON array, at least one
    scopes     TEXT NOT NULL,         -- JSON array
    token_ttl  INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, client_id)
);

-- A delegated session: a person's access lent to a client for a while. Secrets (the nonce and
-- the session key) are stored as SHA-256 only.
CREATE TABLE delegated_session (
    tenant_id        TEXT NOT NULL REFERENCES tenant (id),
    id               TEXT NOT NULL,
    user_id          TEXT NOT NULL,    -- the person (sub)
    client_id        TEXT NOT NULL,    -- the client that binds it and acts (act.sub)
    scope            TEXT NOT NULL,    -- space-separated
    parent_id        TEXT,             -- the session whose token created this one
    nonce_hash       BLOB NOT NULL UNIQUE,
    nonce_expires_at INTEGER NOT NULL,
    bound_at         INTEGER,
    key_hash         BLOB UNIQUE,      -- the current session key
    prev_key_hash    BLOB,             -- the key before the last rotation, for a retry
    rotated_at       INTEGER,
    last_response    BLOB,             -- the sealed answer of the last rotation
    created_at       INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL,
    revoked_at       INTEGER,
    PRIMARY KEY (tenant_id, id),
    -- One child per session, decided by the store even when two requests race.
    UNIQUE (tenant_id, parent_id)
);
CREATE INDEX delegated_session_user ON delegated_session (tenant_id, user_id);
CREATE INDEX delegated_session_prev_key ON delegated_session (prev_key_hash);
CREATE INDEX delegated_session_expires_at ON delegated_session (expires_at);
