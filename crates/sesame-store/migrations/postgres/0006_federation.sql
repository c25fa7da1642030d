-- Brokered SSO: connections to a tenant's upstream identity providers, the external identities
-- that link an upstream account to a `user_account`, the groups each sign-in brings, and the
-- admin flag with its source.
--
-- `kind` is 'oidc' or 'saml'. What only one kind has lives in `settings` (JSON), and the key
-- material any kind may need (a client secret, an RS256 key for private_key_jwt or for signing
-- SAML AuthnRequests) in the sealed columns, so that SAML comes without a migration.
CREATE TABLE sso_connection (
    tenant_id          TEXT NOT NULL REFERENCES tenant (id),
    id                 TEXT NOT NULL,     -- the connection's name, a URL segment
    kind               TEXT NOT NULL,     -- 'oidc' | 'saml'
    display_name       TEXT NOT NULL,
    button_text        TEXT NOT NULL,
    button_image_url   TEXT,
    enabled            BOOLEAN NOT NULL,
    email_domains      TEXT NOT NULL,     -- JSON array: login_hint routing
    trusted_email      BOOLEAN NOT NULL,  -- match existing users by email even when not verified
    admin_groups       TEXT NOT NULL,     -- JSON array: upstream groups that make a tenant admin
    claim_email        TEXT NOT NULL,
    claim_unique_id    TEXT NOT NULL,
    claim_display_name TEXT,
    claim_groups       TEXT,
    settings           TEXT NOT NULL,     -- JSON: the kind's own settings
    -- Sealed with the master key; the associated data names tenant and connection.
    sealed_secret      BYTEA,
    sealed_private_key BYTEA,
    public_jwk         TEXT,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

-- (connection, upstream unique id) -> user. A user may have several.
CREATE TABLE external_identity (
    tenant_id       TEXT NOT NULL REFERENCES tenant (id),
    connection_id   TEXT NOT NULL,
    subject         TEXT NOT NULL,
    user_id         TEXT NOT NULL,
    email           TEXT,
    created_at      BIGINT NOT NULL,
    last_sign_in_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, connection_id, subject),
    FOREIGN KEY (tenant_id, user_id) REFERENCES user_account (tenant_id, id)
);
CREATE INDEX external_identity_user ON external_identity (tenant_id, user_id);

-- The upstream groups of a user, per connection, replaced at every sign-in through it.
CREATE TABLE user_group (
    tenant_id     TEXT NOT NULL REFERENCES tenant (id),
    user_id       TEXT NOT NULL,
    connection_id TEXT NOT NULL,
    name          TEXT NOT NULL,
    PRIMARY KEY (tenant_id, user_id, connection_id, name)
);

-- The tenant admin flag, by source: `admin` is set by hand and only by hand; `admin_by_sso`
-- follows the admin groups at every sign-in. A person is admin when either is set.
ALTER TABLE user_account ADD COLUMN admin BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE user_account ADD COLUMN admin_by_sso BOOLEAN NOT NULL DEFAULT FALSE;

-- Per-tenant sign-in options of brokered SSO (no row: the defaults).
CREATE TABLE sso_setting (
    tenant_id         TEXT NOT NULL REFERENCES tenant (id) PRIMARY KEY,
    password_sign_in  BOOLEAN NOT NULL
);
