-- private_key_jwt with outside tokens (RFC 7523 §2.2, RFC 7521 §4.2): a client names a trust
-- policy of its tenant, and authenticates with tokens that policy accepts (a Kubernetes
-- service-account token, a CI system's OIDC token) instead of a secret or keys of its own.
-- No foreign key (SQLite cannot add a composite one to an existing table): creating or changing
-- a client checks that the policy exists, and deleting a policy a client names is refused in
-- the deleting transaction. A client whose policy is missing all the same authenticates nobody.
ALTER TABLE client ADD COLUMN trust_policy TEXT;
CREATE INDEX client_trust_policy ON client (tenant_id, trust_policy);
