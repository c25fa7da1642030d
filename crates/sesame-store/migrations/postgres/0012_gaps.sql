-- Brokered SSO, re-check upstream on refresh: the upstream refresh token of an external
-- identity, kept only for connections with `recheck_on_refresh`, sealed with the master key
-- (the associated data names tenant, connection and subject). Replaced at every sign-in and
-- at every upstream refresh that rotates it.
ALTER TABLE external_identity ADD COLUMN sealed_refresh_token BYTEA;
