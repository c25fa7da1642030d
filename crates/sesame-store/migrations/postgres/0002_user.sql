-- Local accounts. External identities (brokered SSO) will reference user_account (tenant_id, id).
-- (`user` is a reserved word in PostgreSQL, hence user_account.)
CREATE TABLE user_account (
    tenant_id      TEXT NOT NULL REFERENCES tenant (id),
    id             TEXT NOT NULL,
    username       TEXT NOT NULL,
    email          TEXT,
    email_verified BOOLEAN NOT NULL,
    name           TEXT,
    picture        TEXT,
    disabled       BOOLEAN NOT NULL,
    password_hash  TEXT,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, username)
);
