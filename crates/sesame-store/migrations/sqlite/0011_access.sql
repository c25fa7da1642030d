-- Admin roles and the audit log.

-- Admin tokens: server-wide (no tenant, may do everything) or scoped to one tenant and a set of
-- permissions (a JSON array of names such as "clients:read"), optionally expiring. Names are
-- unique: `sesamed admin-token revoke NAME` deletes by name.
ALTER TABLE admin_token ADD COLUMN tenant_id TEXT REFERENCES tenant (id);
ALTER TABLE admin_token ADD COLUMN permissions TEXT NOT NULL DEFAULT '[]';
ALTER TABLE admin_token ADD COLUMN expires_at INTEGER;
CREATE UNIQUE INDEX admin_token_name ON admin_token (name);

-- Admin permissions granted to a client (off unless set), used with client-credentials tokens.
-- They go with the client: a client created again under the same id starts with none.
CREATE TABLE client_admin_permission (
    tenant_id   TEXT NOT NULL,
    client_id   TEXT NOT NULL,
    permissions TEXT NOT NULL, -- JSON array
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, client_id),
    FOREIGN KEY (tenant_id, client_id) REFERENCES client (tenant_id, client_id) ON DELETE CASCADE
);

-- The audit log. `seq` orders events and is the paging cursor. `tenant_id` is empty for
-- server-wide actions and is not a foreign key: an event may name a tenant that was refused.
-- Never a secret or a token in any column.
CREATE TABLE audit_event (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    time           INTEGER NOT NULL,
    tenant_id      TEXT,
    type           TEXT NOT NULL,
    actor_kind     TEXT NOT NULL,
    actor_id       TEXT,
    target         TEXT,
    outcome        TEXT NOT NULL,
    client_address TEXT,
    request_id     TEXT,
    details        TEXT NOT NULL -- JSON
);
CREATE INDEX audit_event_tenant_seq ON audit_event (tenant_id, seq);
CREATE INDEX audit_event_time ON audit_event (time);
