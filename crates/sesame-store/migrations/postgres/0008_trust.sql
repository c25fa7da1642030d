-- Trust in outside issuers (token exchange, RFC 8693) and JWT client authentication
-- (private_key_jwt, RFC 7523 §2.2).

-- A tenant trusts tokens of an outside issuer under conditions, and maps a matching token to a
-- Sesame service identity with scopes. The key source, conditions and mapping are one JSON
-- document (`policy`): they are read and written whole, never queried by part.
CREATE TABLE trust_policy (
    tenant_id  TEXT NOT NULL REFERENCES tenant (id),
    name       TEXT NOT NULL,
    issuer     TEXT NOT NULL,
    policy     TEXT NOT NULL, -- JSON
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, name)
);

-- RFC 7523 §3 item 7: a client assertion's jti is used once. The primary key makes the insert
-- that records it the single-use check on every replica; rows go after the assertion expires.
CREATE TABLE assertion_jti (
    tenant_id  TEXT NOT NULL REFERENCES tenant (id),
    client_id  TEXT NOT NULL,
    jti        TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, client_id, jti)
);
CREATE INDEX assertion_jti_expires_at ON assertion_jti (expires_at);

-- private_key_jwt: the client's public keys, inline (a JWKS document) or by URL. A client with
-- keys has no secret.
ALTER TABLE client ADD COLUMN jwks TEXT;
ALTER TABLE client ADD COLUMN jwks_uri TEXT;
-- RFC 8693 §1.1: may exchange a person's token for one that names no actor (impersonation).
ALTER TABLE client ADD COLUMN token_exchange_impersonation BOOLEAN NOT NULL DEFAULT FALSE;
