-- Clients allowed to create delegated sessions for the tenant's users with their own
-- credentials (POST /t/{tenant}/client-sessions). A row means allowed; it goes with the client.
CREATE TABLE client_session_creator (
    tenant_id   TEXT NOT NULL,
    client_id   TEXT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, client_id),
    FOREIGN KEY (tenant_id, client_id) REFERENCES client (tenant_id, client_id) ON DELETE CASCADE
);
