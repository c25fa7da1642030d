-- SAML 2.0 brokered SSO. Connections of kind 'saml' use the 0006 `sso_connection` table as it
-- is (settings JSON, the AuthnRequest key in `sealed_private_key`); what is new is replay
-- protection: an assertion's ID is recorded at its first use and kept until the assertion
-- expires. The primary key makes that insert the single-use check on every replica.
CREATE TABLE saml_assertion (
    tenant_id     TEXT NOT NULL REFERENCES tenant (id),
    connection_id TEXT NOT NULL,
    assertion_id  TEXT NOT NULL,
    expires_at    INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, connection_id, assertion_id)
);
CREATE INDEX saml_assertion_expiry ON saml_assertion (expires_at);
