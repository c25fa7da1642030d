//! What Sesame needs from storage. `sesame-store` implements it for SQLite and PostgreSQL;
//! one conformance suite there runs against both.
//!
//! Every mutation of tenants, clients or keys advances a store-wide *generation*, which each
//! replica polls to drop its caches: that is how a change made on one replica reaches all.

use crate::device::{DeviceAuthorization, DeviceDecision, DevicePoll};
use crate::federation::{AdminFlag, FederatedSignIn, SsoConnection};
use crate::ids::ConnectionId;
use crate::ids::{ClientId, TenantId, UserId};
use crate::model::{
    AuthorizationCode, BrowserSession, Consent, ImplicitGrant, LoginAttempt, LoginFailures, LoginLimit,
    RefreshToken, User,
};
use crate::model::{Client, SigningAlg, StoredKey, Tenant};
use crate::sessions::DelegatedSession;
use crate::workload::{Source, SourceId, WorkloadSettings};
use crate::Result;

/// Device authorization requests (RFC 8628, see `device`).
#[async_trait::async_trait]
pub trait DeviceStore: Send + Sync {
    /// `Conflict` if the user code is taken in the tenant.
    async fn insert_device_authorization(&self, request: &DeviceAuthorization) -> Result<()>;
    /// The request a (normalised) user code names, in any state.
    async fn get_device_authorization(
        &self,
        tenant: &TenantId,
        user_code: &str,
    ) -> Result<Option<DeviceAuthorization>>;
    /// One poll of the token endpoint: notes `now` as the last poll and answers the request.
    /// If the previous poll was less than `interval` seconds ago, the interval grows by
    /// `device::SLOW_DOWN_STEP` in the same statement and `too_fast` is set. Each step is one
    /// conditional statement, so concurrent polls on any replica cannot both be in time.
    async fn poll_device_authorization(
        &self,
        tenant: &TenantId,
        device_code_hash: &[u8; 32],
        now: i64,
    ) -> Result<Option<DevicePoll>>;
    /// Records the person's decision, only while the request is pending and unexpired at
    /// `now`; returns whether this call decided it.
    async fn decide_device_authorization(
        &self,
        tenant: &TenantId,
        user_code: &str,
        decision: &DeviceDecision,
        now: i64,
    ) -> Result<bool>;
    /// Marks an approved request redeemed for the access token `access_jti` and inserts the
    /// grant's first refresh token, if any, in one transaction, unless it was redeemed already:
    /// returns whether this call redeemed it (of concurrent redemptions, one wins).
    async fn redeem_device_authorization(
        &self,
        tenant: &TenantId,
        device_code_hash: &[u8; 32],
        now: i64,
        access_jti: &str,
        access_exp: i64,
        refresh: Option<&RefreshToken>,
    ) -> Result<bool>;
    /// Deletes requests that expired and whose access token (if any) expired too.
    async fn purge_device_authorizations(&self, now: i64) -> Result<u64>;
}

/// Trust policies for outside issuers, and the single use of client assertions.
#[async_trait::async_trait]
pub trait TrustStore: Send + Sync {
    /// `Conflict` if the tenant has a policy of that name. Advances the generation (policies
    /// are cached with the tenant).
    async fn create_trust_policy(&self, policy: &crate::trust::TrustPolicy) -> Result<()>;
    /// Replaces a policy's spec and `updated_at`; `false` if there is no such policy.
    async fn update_trust_policy(&self, policy: &crate::trust::TrustPolicy) -> Result<bool>;
    async fn get_trust_policy(
        &self,
        tenant: &TenantId,
        name: &str,
    ) -> Result<Option<crate::trust::TrustPolicy>>;
    async fn list_trust_policies(&self, tenant: &TenantId) -> Result<Vec<crate::trust::TrustPolicy>>;
    /// `Conflict` naming a client while a client of the tenant names the policy
    /// (`Client::trust_policy`): the client would authenticate nobody. Checked in the deleting
    /// transaction.
    async fn delete_trust_policy(&self, tenant: &TenantId, name: &str) -> Result<bool>;
    /// Records the `jti` of a client's assertion until `expires_at`, unless it is recorded
    /// already: returns whether this call recorded it. One insert on a unique key, so one
    /// assertion authenticates once across every replica (RFC 7523 §3 item 7).
    async fn use_assertion_jti(
        &self,
        tenant: &TenantId,
        client: &ClientId,
        jti: &str,
        expires_at: i64,
    ) -> Result<bool>;
    /// Forgets the `jti`s of assertions expired before `now`; returns how many.
    async fn purge_assertion_jtis(&self, now: i64) -> Result<u64>;
}

#[async_trait::async_trait]
pub trait Store:
    DeviceStore
    + TrustStore
    + WorkloadStore
    + DelegatedSessionStore
    + FederationStore
    + AccessStore
    + AuditStore
    + AuthzStore
    + SamlStore
    + Send
    + Sync
    + 'static
{
    /// `sqlite` or `postgres`, for logs and metrics.
    fn backend(&self) -> &'static str;

    /// Cheap round trip for readiness checks.
    async fn ping(&self) -> Result<()>;

    /// Store-wide settings (the master-key check value, …).
    async fn get_setting(&self, name: &str) -> Result<Option<Vec<u8>>>;
    /// Inserts a setting unless it exists; returns whether this call inserted it.
    async fn insert_setting_if_absent(&self, name: &str, value: &[u8]) -> Result<bool>;

    /// The generation counter; it changes whenever tenants, clients or keys change.
    async fn generation(&self) -> Result<i64>;

    // Tenants ---------------------------------------------------------------------------------
    /// Creates a tenant with its first keys; `Conflict` if the name is taken.
    async fn create_tenant(&self, tenant: &Tenant, keys: &[StoredKey]) -> Result<()>;
    /// Updates display name, logo, algorithm and lifetimes; `false` if there is no such tenant.
    async fn update_tenant(&self, tenant: &Tenant) -> Result<bool>;
    async fn get_tenant(&self, id: &TenantId) -> Result<Option<Tenant>>;
    async fn list_tenants(&self) -> Result<Vec<Tenant>>;
    async fn set_tenant_disabled(&self, id: &TenantId, disabled: bool) -> Result<bool>;

    // Clients ---------------------------------------------------------------------------------
    /// `Conflict` if the client_id is taken in the tenant.
    async fn create_client(&self, client: &Client) -> Result<()>;
    /// Replaces every field but `created_at` and `revoked_before`; `false` if there is no such
    /// client. When it disables the client, in the same transaction: revokes everything the
    /// client was given (as `delete_client`) and moves `revoked_before` past now, so that
    /// enabling it again revives nothing.
    async fn update_client(&self, client: &Client) -> Result<bool>;
    async fn get_client(&self, tenant: &TenantId, id: &ClientId) -> Result<Option<Client>>;
    async fn list_clients(&self, tenant: &TenantId) -> Result<Vec<Client>>;
    /// Deletes a client and, in the same transaction, what it was given: its grants (refresh
    /// tokens deleted, unredeemed codes expired, noted access tokens recorded as revoked, as
    /// `revoke_grant`) and the users' consents to it.
    async fn delete_client(&self, tenant: &TenantId, id: &ClientId) -> Result<bool>;

    // Users -----------------------------------------------------------------------------------
    /// `Conflict` if the username is taken in the tenant.
    async fn create_user(&self, user: &User) -> Result<()>;
    /// Replaces every field but `id`, `username` and `created_at`; `false` if there is no such user.
    async fn update_user(&self, user: &User) -> Result<bool>;
    /// A user by id, or else by username.
    async fn get_user(&self, tenant: &TenantId, id_or_username: &str) -> Result<Option<User>>;
    async fn list_users(&self, tenant: &TenantId) -> Result<Vec<User>>;

    // Signing keys ----------------------------------------------------------------------------
    async fn list_keys(&self, tenant: &TenantId) -> Result<Vec<StoredKey>>;
    /// In one transaction: the `active` key of `alg` becomes `retired` until `retire_until`,
    /// the `next` key becomes `active`, and `new_next` is inserted.
    async fn rotate_keys(
        &self,
        tenant: &TenantId,
        alg: SigningAlg,
        new_next: &StoredKey,
        retire_until: i64,
        now: i64,
    ) -> Result<()>;
    /// Inserts keys for a tenant that lacks them (for example a new algorithm).
    async fn insert_keys(&self, keys: &[StoredKey]) -> Result<()>;
    /// Deletes retired keys whose publication ended before `now`; returns how many.
    async fn delete_expired_keys(&self, now: i64) -> Result<u64>;

    // Revocation ------------------------------------------------------------------------------
    /// Records a revoked access token by its `jti` until `expires_at` (idempotent).
    async fn revoke_access_token(&self, tenant: &TenantId, jti: &str, expires_at: i64) -> Result<()>;
    async fn is_access_token_revoked(&self, tenant: &TenantId, jti: &str) -> Result<bool>;
    /// Forgets revocations of tokens that have expired anyway; returns how many.
    async fn purge_revocations(&self, now: i64) -> Result<u64>;

    // Admin tokens ----------------------------------------------------------------------------
    async fn insert_admin_token(&self, name: &str, token_hash: &[u8; 32], now: i64) -> Result<()>;
    async fn admin_token_exists(&self, token_hash: &[u8; 32]) -> Result<bool>;
    async fn count_admin_tokens(&self) -> Result<i64>;

    // Browser sessions --------------------------------------------------------------------------
    async fn insert_session(&self, session: &BrowserSession) -> Result<()>;
    /// The session whose cookie secret hashes to `secret_hash`, if it has not expired at `now`.
    async fn get_session(
        &self,
        tenant: &TenantId,
        secret_hash: &[u8; 32],
        now: i64,
    ) -> Result<Option<BrowserSession>>;
    /// A user's sessions that have not expired at `now`, newest first.
    async fn list_sessions(&self, tenant: &TenantId, user: &UserId, now: i64) -> Result<Vec<BrowserSession>>;
    /// Ends one session by its public id; `false` if there was none.
    async fn delete_session(&self, tenant: &TenantId, id: &str) -> Result<bool>;
    /// Ends all of a user's sessions; returns how many.
    async fn delete_user_sessions(&self, tenant: &TenantId, user: &UserId) -> Result<u64>;
    /// Notes that `client` (one with a back-channel logout URI) signed in with a session, until
    /// `expires_at` (the session's end); idempotent.
    async fn add_session_client(
        &self,
        tenant: &TenantId,
        session_id: &str,
        client: &ClientId,
        expires_at: i64,
    ) -> Result<()>;
    /// The clients noted for a session, also after the session itself has ended.
    async fn session_clients(&self, tenant: &TenantId, session_id: &str) -> Result<Vec<ClientId>>;

    // Authorization codes -----------------------------------------------------------------------
    async fn insert_code(&self, code: &AuthorizationCode) -> Result<()>;
    async fn get_code(&self, tenant: &TenantId, code_hash: &[u8; 32]) -> Result<Option<AuthorizationCode>>;
    /// Marks the code redeemed for the access token `access_jti` and inserts the grant's first
    /// refresh token, if any, in one transaction, unless the code was redeemed already: returns
    /// whether this call redeemed it. Atomic, so two concurrent redemptions cannot both win,
    /// and a redeemed code always has its refresh token.
    async fn redeem_code(
        &self,
        tenant: &TenantId,
        code_hash: &[u8; 32],
        now: i64,
        access_jti: &str,
        access_exp: i64,
        refresh: Option<&RefreshToken>,
    ) -> Result<bool>;

    // Implicit grants ---------------------------------------------------------------------------
    /// Notes an access token issued at the authorization endpoint under its grant.
    async fn insert_implicit_grant(&self, grant: &ImplicitGrant) -> Result<()>;

    // Refresh tokens ----------------------------------------------------------------------------
    async fn insert_refresh_token(&self, token: &RefreshToken) -> Result<()>;
    async fn get_refresh_token(
        &self,
        tenant: &TenantId,
        token_hash: &[u8; 32],
    ) -> Result<Option<RefreshToken>>;
    /// In one transaction: marks `old_hash` rotated with the sealed `successor_response`, and
    /// inserts `successor`, unless `old_hash` was rotated already. Returns whether this call
    /// rotated it (a concurrent exchange that lost the race gets `false` and nothing changes).
    async fn rotate_refresh_token(
        &self,
        tenant: &TenantId,
        old_hash: &[u8; 32],
        now: i64,
        successor: &RefreshToken,
        successor_response: &[u8],
    ) -> Result<bool>;

    // Grants ------------------------------------------------------------------------------------
    /// Revokes everything issued under one grant, in one transaction: deletes its refresh
    /// tokens, expires its unredeemed code, and records as revoked every unexpired access token
    /// noted on its code, refresh tokens and implicit grant. Returns how many refresh tokens
    /// were deleted.
    async fn revoke_grant(&self, tenant: &TenantId, grant_id: &str, now: i64) -> Result<u64>;
    /// The same for every grant of a user, or of a user and one client.
    async fn revoke_user_grants(
        &self,
        tenant: &TenantId,
        user: &UserId,
        client: Option<&ClientId>,
        now: i64,
    ) -> Result<u64>;

    // Consents ----------------------------------------------------------------------------------
    async fn get_consent(
        &self,
        tenant: &TenantId,
        user: &UserId,
        client: &ClientId,
    ) -> Result<Option<Consent>>;
    /// Inserts or replaces the consent of (user, client).
    async fn put_consent(&self, consent: &Consent) -> Result<()>;
    async fn list_consents(&self, tenant: &TenantId, user: &UserId) -> Result<Vec<Consent>>;
    async fn delete_consent(&self, tenant: &TenantId, user: &UserId, client: &ClientId) -> Result<bool>;

    // Sign-in throttling ------------------------------------------------------------------------
    /// The failures counted under `key` (`user:…` or `ip:…`), if any.
    async fn get_login_failures(&self, tenant: &TenantId, key: &str) -> Result<Option<LoginFailures>>;
    /// Counts one more failure under `key` at `now` and returns the new tally. A tally whose
    /// last failure is older than `now - window` starts again at 1.
    async fn add_login_failure(
        &self,
        tenant: &TenantId,
        key: &str,
        now: i64,
        window: i64,
    ) -> Result<LoginFailures>;
    async fn clear_login_failures(&self, tenant: &TenantId, key: &str) -> Result<()>;
    /// The gate before a password is checked. In one transaction: unless some key of `limits`
    /// must still wait at `now` ([`login::retry_after`] of its tally and `free`), counts one
    /// failure at `now` under every key (a tally whose last failure is [`login::FAILURE_WINDOW`]
    /// or more old starts again at 1) and answers `Counted`; otherwise counts nothing and answers
    /// `Throttled` with the longest wait. Concurrent calls on any replica are serialised on
    /// each key's row, so no more attempts pass than the tallies allow, and a throttled
    /// attempt changes no tally (it cannot extend a delay).
    ///
    /// [`login::retry_after`]: crate::login::retry_after
    /// [`login::FAILURE_WINDOW`]: crate::login::FAILURE_WINDOW
    async fn count_login_attempt(
        &self,
        tenant: &TenantId,
        limits: &[LoginLimit<'_>],
        now: i64,
    ) -> Result<LoginAttempt>;
    /// Takes back one failure counted under `key` by [`count_login_attempt`](Store::count_login_attempt)
    /// (the attempt succeeded, or its password was never checked). The tally keeps its
    /// `last_failed_at` and never goes below 0; a missing tally stays missing.
    async fn uncount_login_attempt(&self, tenant: &TenantId, key: &str) -> Result<()>;

    // Housekeeping ------------------------------------------------------------------------------
    /// Deletes expired sessions (and their noted clients), implicit grants, codes (kept `code_grace` seconds past expiry so that a late
    /// replay still revokes), refresh tokens and stale login failures; returns how many rows.
    async fn purge_expired(&self, now: i64, code_grace: i64) -> Result<u64>;
}

/// Sources and the tenant's workload settings. Nothing here is cached, so no write advances the
/// generation: the workload-token grant reads its source (one row by a unique key) per token,
/// which a source asks for about once an hour.
#[async_trait::async_trait]
pub trait WorkloadStore: Send + Sync {
    async fn get_workload_settings(&self, tenant: &TenantId) -> Result<Option<WorkloadSettings>>;
    /// Inserts or replaces the tenant's settings.
    async fn put_workload_settings(&self, settings: &WorkloadSettings) -> Result<()>;
    /// `Conflict` if the id is taken or the client already serves another source.
    async fn create_source(&self, source: &Source) -> Result<()>;
    async fn get_source(&self, tenant: &TenantId, id: &SourceId) -> Result<Option<Source>>;
    async fn get_source_by_client(&self, tenant: &TenantId, client: &ClientId) -> Result<Option<Source>>;
    async fn list_sources(&self, tenant: &TenantId) -> Result<Vec<Source>>;
    async fn delete_source(&self, tenant: &TenantId, id: &SourceId) -> Result<bool>;
}

/// Delegated (on-behalf-of) sessions. Nonces and keys are looked up by their SHA-256 only.
#[async_trait::async_trait]
pub trait DelegatedSessionStore: Send + Sync {
    /// `Conflict` if its parent already has a child (one child per session).
    async fn insert_delegated_session(&self, session: &DelegatedSession) -> Result<()>;
    async fn get_delegated_session(&self, tenant: &TenantId, id: &str) -> Result<Option<DelegatedSession>>;
    async fn get_delegated_session_by_nonce(
        &self,
        tenant: &TenantId,
        nonce_hash: &[u8; 32],
    ) -> Result<Option<DelegatedSession>>;
    /// The session whose current or previous key hashes to `key_hash`.
    async fn get_delegated_session_by_key(
        &self,
        tenant: &TenantId,
        key_hash: &[u8; 32],
    ) -> Result<Option<DelegatedSession>>;
    /// Marks the session bound with its first key, unless it was bound already or revoked:
    /// returns whether this call bound it (of two concurrent binds, one wins).
    async fn bind_delegated_session(
        &self,
        tenant: &TenantId,
        id: &str,
        key_hash: &[u8; 32],
        now: i64,
    ) -> Result<bool>;
    /// Replaces the key `old_hash` with `new_hash`, keeping `old_hash` and the sealed `response`
    /// for a retry, unless `old_hash` is no longer the current key or the session was revoked:
    /// returns whether this call rotated it.
    async fn rotate_session_key(
        &self,
        tenant: &TenantId,
        id: &str,
        old_hash: &[u8; 32],
        new_hash: &[u8; 32],
        now: i64,
        response: &[u8],
    ) -> Result<bool>;
    /// The sessions that have not ended at `now`, of one user or of the whole tenant, newest first.
    async fn list_delegated_sessions(
        &self,
        tenant: &TenantId,
        user: Option<&UserId>,
        now: i64,
    ) -> Result<Vec<DelegatedSession>>;
    /// Revokes a session (only if it is `user`'s, when given) and its child; `false` if there
    /// was no such live session.
    async fn revoke_delegated_session(
        &self,
        tenant: &TenantId,
        id: &str,
        user: Option<&UserId>,
        now: i64,
    ) -> Result<bool>;
    /// Revokes every session of a user; returns how many.
    async fn revoke_user_delegated_sessions(&self, tenant: &TenantId, user: &UserId, now: i64)
        -> Result<u64>;
    /// Deletes sessions that ended by expiry before `now`, revoked or not. No token outlives its
    /// session, and a session that is not found reads as ended, so nothing revives.
    async fn purge_delegated_sessions(&self, now: i64) -> Result<u64>;

    // Clients allowed to create sessions for users (`sessions::create_by_client`) ---------------
    /// Whether the client may create delegated sessions for the tenant's users (not unless set).
    async fn session_creator(&self, tenant: &TenantId, client: &ClientId) -> Result<bool>;
    /// Allows or forbids it; `false` if there is no such client. The allowance goes with the client.
    async fn set_session_creator(
        &self,
        tenant: &TenantId,
        client: &ClientId,
        allowed: bool,
        now: i64,
    ) -> Result<bool>;
}

/// Brokered SSO: connections, external identities, groups, the admin flag by source, and the
/// tenant's sign-in options. None of it is cached, so none of it advances the generation.
#[async_trait::async_trait]
pub trait FederationStore: Send + Sync {
    /// `Conflict` if the tenant has a connection of that name.
    async fn create_sso_connection(&self, connection: &SsoConnection) -> Result<()>;
    /// Replaces every field but `created_at`; `false` if there is no such connection.
    async fn update_sso_connection(&self, connection: &SsoConnection) -> Result<bool>;
    async fn get_sso_connection(&self, tenant: &TenantId, id: &ConnectionId)
        -> Result<Option<SsoConnection>>;
    async fn list_sso_connections(&self, tenant: &TenantId) -> Result<Vec<SsoConnection>>;
    /// Deletes a connection with its external identities and the groups it brought, in one
    /// transaction; the users stay. `false` if there was none.
    async fn delete_sso_connection(&self, tenant: &TenantId, id: &ConnectionId) -> Result<bool>;

    /// The user linked to (connection, subject), if any.
    async fn find_external_identity(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        subject: &str,
    ) -> Result<Option<UserId>>;
    /// The users whose email is `email`, compared without case.
    async fn find_users_by_email(&self, tenant: &TenantId, email: &str) -> Result<Vec<UserId>>;
    /// One federated sign-in in one transaction: inserts the user or updates its profile,
    /// inserts or touches the link, replaces the user's groups at the connection, sets
    /// `admin_by_sso`.
    async fn record_federated_sign_in(&self, sign_in: &FederatedSignIn) -> Result<()>;
    /// The user's groups, from every connection, sorted and without repeats.
    async fn user_groups(&self, tenant: &TenantId, user: &UserId) -> Result<Vec<String>>;
    /// The (connection, subject) pairs linked to a user.
    async fn user_external_identities(
        &self,
        tenant: &TenantId,
        user: &UserId,
    ) -> Result<Vec<(ConnectionId, String)>>;
    async fn user_admin(&self, tenant: &TenantId, user: &UserId) -> Result<AdminFlag>;
    /// Sets the hand-set admin flag; `false` if there is no such user.
    async fn set_user_admin(&self, tenant: &TenantId, user: &UserId, admin: bool) -> Result<bool>;

    /// Whether the tenant's people may sign in with a password (default true).
    async fn password_sign_in(&self, tenant: &TenantId) -> Result<bool>;
    async fn set_password_sign_in(&self, tenant: &TenantId, allowed: bool) -> Result<()>;

    // Re-check upstream on refresh (`federation::recheck_upstream`) -----------------------------
    /// Keeps (or with `None`, forgets) the sealed upstream refresh token of the link
    /// (connection, subject); `false` if there is no such link.
    async fn set_upstream_refresh_token(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        subject: &str,
        sealed: Option<&[u8]>,
    ) -> Result<bool>;
    /// The user's links that hold an upstream refresh token, by connection.
    async fn upstream_refresh_tokens(
        &self,
        tenant: &TenantId,
        user: &UserId,
    ) -> Result<Vec<crate::federation::UpstreamRefreshToken>>;
}

// Admin roles and the audit log (access) ------------------------------------------------------

/// Admin tokens (server-wide or scoped to a tenant) and clients' admin permissions.
#[async_trait::async_trait]
pub trait AccessStore: Send + Sync {
    /// Stores a token by its SHA-256; `Conflict` if the name is taken.
    async fn create_admin_token(
        &self,
        info: &crate::access::AdminTokenInfo,
        token_hash: &[u8; 32],
    ) -> Result<()>;
    /// The token whose SHA-256 is `token_hash`, expired or not.
    async fn get_admin_token(&self, token_hash: &[u8; 32]) -> Result<Option<crate::access::AdminTokenInfo>>;
    async fn list_admin_tokens(&self) -> Result<Vec<crate::access::AdminTokenInfo>>;
    /// Deletes a token by name: it stops working at once. `false` if there was none.
    async fn delete_admin_token(&self, name: &str) -> Result<bool>;
    /// The admin permissions granted to a client (none unless set); they go with the client.
    async fn client_admin_permissions(
        &self,
        tenant: &TenantId,
        client: &ClientId,
    ) -> Result<Vec<crate::access::Permission>>;
    /// Replaces a client's admin permissions (empty: none); `false` if there is no such client.
    async fn set_client_admin_permissions(
        &self,
        tenant: &TenantId,
        client: &ClientId,
        permissions: &[crate::access::Permission],
        now: i64,
    ) -> Result<bool>;
}

/// The audit log: appended in batches, read by query, swept by age.
#[async_trait::async_trait]
pub trait AuditStore: Send + Sync {
    /// Appends events in one statement (a multi-row INSERT), in order.
    async fn append_audit_events(&self, events: &[crate::audit::AuditEvent]) -> Result<()>;
    /// One page of events matching `query`, in its order, at most `query.limit`.
    async fn query_audit_events(
        &self,
        query: &crate::audit::AuditQuery,
    ) -> Result<Vec<crate::audit::AuditEvent>>;
    /// Deletes events older than `before`; returns how many.
    async fn purge_audit_events(&self, before: i64) -> Result<u64>;
}

// Authorization (teams, resources, grants) ------------------------------------------------------

/// Teams, resource types, resources and grants (see `authz`). Every write advances the
/// tenant's `authz_version` in its own transaction, first, which also makes the tenant's
/// writers take turns (the cycle and last-owner rules hold under concurrency).
#[async_trait::async_trait]
pub trait AuthzStore: Send + Sync {
    /// The tenant's authorization version (0 before any change): one primary-key read.
    async fn authz_version(&self, tenant: &TenantId) -> Result<i64>;
    /// Everything the check needs, read in one transaction with the version it is at.
    async fn load_authz(&self, tenant: &TenantId) -> Result<crate::authz::AuthzSnapshot>;

    /// `Conflict` if the id is taken.
    async fn create_team(&self, team: &crate::authz::Team) -> Result<()>;
    async fn get_team(
        &self,
        tenant: &TenantId,
        id: &crate::ids::TeamId,
    ) -> Result<Option<crate::authz::Team>>;
    async fn list_teams(&self, tenant: &TenantId) -> Result<Vec<crate::authz::Team>>;
    /// Deletes a team, its members and its grants; `Refused` if it is the last owner of a
    /// resource. `false` if there was none.
    async fn delete_team(&self, tenant: &TenantId, id: &crate::ids::TeamId) -> Result<bool>;
    /// Adds a member or changes its role; `false` if there is no such team.
    async fn put_team_member(
        &self,
        tenant: &TenantId,
        team: &crate::ids::TeamId,
        user: &UserId,
        role: crate::authz::TeamRole,
    ) -> Result<bool>;
    async fn remove_team_member(
        &self,
        tenant: &TenantId,
        team: &crate::ids::TeamId,
        user: &UserId,
    ) -> Result<bool>;
    async fn list_team_members(
        &self,
        tenant: &TenantId,
        team: &crate::ids::TeamId,
    ) -> Result<Vec<crate::authz::TeamMember>>;
    /// The teams of a user, with the role, by team id.
    async fn user_teams(
        &self,
        tenant: &TenantId,
        user: &UserId,
    ) -> Result<Vec<(crate::ids::TeamId, crate::authz::TeamRole)>>;
    /// Sets the user's membership of every team following (connection, one of `groups`) and
    /// removes it from the connection's other teams, in one transaction.
    async fn sync_idp_teams(
        &self,
        tenant: &TenantId,
        user: &UserId,
        connection: &ConnectionId,
        groups: &[String],
    ) -> Result<()>;

    /// Inserts or replaces a type's relations.
    async fn put_resource_type(&self, t: &crate::authz::ResourceType) -> Result<()>;
    async fn list_resource_types(&self, tenant: &TenantId) -> Result<Vec<crate::authz::ResourceType>>;

    /// Creates a resource or moves it (a new parent, or none). `NotFound` if the parent does
    /// not exist; `Refused` if the parent is the resource or one of its descendants.
    async fn put_resource(&self, resource: &crate::authz::Resource) -> Result<()>;
    async fn get_resource(
        &self,
        tenant: &TenantId,
        resource: &crate::authz::ResourceRef,
    ) -> Result<Option<crate::authz::Resource>>;
    /// Deletes a resource and its grants; `Refused` while it has children. `false` if none.
    async fn delete_resource(&self, tenant: &TenantId, resource: &crate::authz::ResourceRef) -> Result<bool>;

    /// Adds a grant (idempotent); `NotFound` if the resource does not exist.
    async fn add_grant(&self, tenant: &TenantId, grant: &crate::authz::Grant, now: i64) -> Result<()>;
    /// Removes a grant; `Refused` if it is the resource's last `owner` grant. `false` if none.
    async fn remove_grant(&self, tenant: &TenantId, grant: &crate::authz::Grant) -> Result<bool>;
    async fn list_grants(
        &self,
        tenant: &TenantId,
        resource: &crate::authz::ResourceRef,
    ) -> Result<Vec<crate::authz::Grant>>;
}

/// SAML 2.0 brokered SSO: the single use of assertions.
#[async_trait::async_trait]
pub trait SamlStore: Send + Sync {
    /// Records an assertion's ID until `expires_at` unless it is recorded already: returns
    /// whether this call recorded it. One insert on a unique key, so an assertion signs in once
    /// across every replica (SAML Profiles §4.1.4.5).
    async fn use_saml_assertion(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        assertion_id: &str,
        expires_at: i64,
    ) -> Result<bool>;
    /// Forgets the IDs of assertions expired before `now`; returns how many.
    async fn purge_saml_assertions(&self, now: i64) -> Result<u64>;
}
