-- What a client was given ends with it; implicit-flow access tokens are revocable; clients that
-- may introspect tokens issued to others.

-- Access tokens of this client issued (iat) before this time are refused at introspection and
-- userinfo. It starts at the client's creation, so a client deleted and created again with the
-- same id does not revive the tokens of the first one, and moves past the moment the client is
-- disabled, so re-enabling it does not revive its client-credentials tokens (which are noted
-- under no grant).
ALTER TABLE client ADD COLUMN revoked_before INTEGER NOT NULL DEFAULT 0;
UPDATE client SET revoked_before = created_at;

-- RFC 7662 §4: a client (a resource server) that may introspect tokens issued to other clients.
-- Without it, a client learns only about tokens issued to it or meant for it (aud).
ALTER TABLE client ADD COLUMN introspect_any BOOLEAN NOT NULL DEFAULT FALSE;

-- Access tokens issued at /authorize (response type token), each noted under a grant of its own
-- like a code's, so that disabling the user, withdrawing consent or removing the client revokes
-- them in the same transaction as the rest of the grant.
CREATE TABLE implicit_grant (
    tenant_id  TEXT NOT NULL REFERENCES tenant (id),
    grant_id   TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    access_jti TEXT NOT NULL,
    access_exp INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, grant_id)
);
CREATE INDEX implicit_grant_user ON implicit_grant (tenant_id, user_id, client_id);
CREATE INDEX implicit_grant_client ON implicit_grant (tenant_id, client_id);
CREATE INDEX implicit_grant_access_exp ON implicit_grant (access_exp);

-- Grants are revoked by client when the client is deleted or disabled.
CREATE INDEX authorization_code_client ON authorization_code (tenant_id, client_id);
CREATE INDEX refresh_token_client ON refresh_token (tenant_id, client_id);
CREATE INDEX consent_client ON consent (tenant_id, client_id);
