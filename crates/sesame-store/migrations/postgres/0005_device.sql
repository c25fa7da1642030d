-- The device authorization grant (RFC 8628). A request is stored by the SHA-256 of its device
-- code (a bearer secret); the user code is what a person types on /device, unique per tenant.
-- The polling rate is held here (`last_poll_at`, `poll_interval`), so `slow_down` holds across
-- replicas. Rows stay until the request has expired and the access token issued for it too,
-- so that revoking its grant still finds that token.
CREATE TABLE device_authorization (
    tenant_id        TEXT NOT NULL REFERENCES tenant (id),
    device_code_hash BYTEA NOT NULL,    -- SHA-256 of the device code
    user_code        TEXT NOT NULL,     -- normalised: 8 letters, no dash
    client_id        TEXT NOT NULL,
    scope            TEXT NOT NULL,     -- space-separated
    status           TEXT NOT NULL,     -- pending, approved, denied, redeemed
    user_id          TEXT,              -- set at approval
    session_id       TEXT,
    auth_time        BIGINT,
    amr              TEXT NOT NULL,     -- JSON array
    grant_id         TEXT,              -- set at approval
    created_at       BIGINT NOT NULL,
    expires_at       BIGINT NOT NULL,
    last_poll_at     BIGINT,
    poll_interval    BIGINT NOT NULL,
    access_jti       TEXT,              -- set at redemption
    access_exp       BIGINT,
    PRIMARY KEY (tenant_id, device_code_hash)
);
CREATE UNIQUE INDEX device_authorization_user_code ON device_authorization (tenant_id, user_code);
CREATE INDEX device_authorization_user ON device_authorization (tenant_id, user_id, client_id);
CREATE INDEX device_authorization_client ON device_authorization (tenant_id, client_id);
CREATE INDEX device_authorization_expires_at ON device_authorization (expires_at);
