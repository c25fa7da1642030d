//! Delegated (on-behalf-of) sessions: a person lends a subset of their access to a client for
//! up to the tenant's `session_max_ttl` (7 days by default).
//!
//! 1. The person (with their access token) creates a session for a client and scopes: they get
//!    its id and a one-time nonce, valid [`NONCE_TTL`] seconds.
//! 2. A job binds the nonce once, with that client's credentials, at `/token` with the
//!    [`SESSION_NONCE_GRANT`] grant: an access token and a session key (in `refresh_token`).
//! 3. With the key ([`SESSION_KEY_GRANT`]) it gets fresh access tokens while the session lives;
//!    each use rotates the key, and a retry within [`REFRESH_REUSE_GRACE`] gets the same answer.
//!
//! Access tokens of a session carry `sub` = the person, `act` = {sub: the client} (RFC 8693
//! §4.1) and `sid` = the session id. Introspection and userinfo check the session by `sid` (one
//! read by primary key, only for such tokens), so revoking a session ends every token of it at
//! once without recording their `jti`s.

use crate::ids::{ClientId, TenantId, UserId};
use crate::jwt;
use crate::model::{Client, GrantType, User};
use crate::secret::hash_secret;
use crate::store::Store;
use crate::token::{Act, IssueContext, Signer, TokenResponse, REFRESH_REUSE_GRACE};
use crate::workload::WorkloadSettings;
use crate::{Error, Result};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use serde::Serialize;
use serde_json::{json, Value};

/// Binds a session's nonce (parameter `nonce`).
pub const SESSION_NONCE_GRANT: &str = "urn:sesame:params:oauth:grant-type:session-nonce";
/// Gets a fresh access token with a session key (parameter `session_key`).
pub const SESSION_KEY_GRANT: &str = "urn:sesame:params:oauth:grant-type:session-key";
/// How long a nonce can be bound.
pub const NONCE_TTL: i64 = 60;
/// The shortest session.
pub const MIN_SESSION_TTL: i64 = 60;

/// One delegated session. Secrets are kept as SHA-256 only.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DelegatedSession {
    pub tenant_id: TenantId,
    pub id: String,
    pub user_id: UserId,
    pub client_id: ClientId,
    pub scope: String,
    /// The session whose token created this one: a child may not create another.
    pub parent_id: Option<String>,
    #[serde(skip)]
    pub nonce_hash: [u8; 32],
    pub nonce_expires_at: i64,
    pub bound_at: Option<i64>,
    #[serde(skip)]
    pub key_hash: Option<[u8; 32]>,
    #[serde(skip)]
    pub prev_key_hash: Option<[u8; 32]>,
    pub rotated_at: Option<i64>,
    /// The sealed answer of the last rotation, for a retry of it.
    #[serde(skip)]
    pub last_response: Option<Vec<u8>>,
    pub created_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
}

impl DelegatedSession {
    pub fn is_live(&self, now: i64) -> bool {
        self.revoked_at.is_none() && now < self.expires_at
    }
}

/// Who creates a session: a person, through an access token that verified (its `scope`, and
/// its `sid` if the token itself came from a delegated session).
pub struct Creator<'a> {
    pub user: &'a User,
    pub token_scope: &'a str,
    pub parent_sid: Option<&'a str>,
}

/// A new session and its nonce (shown once).
pub struct Created {
    pub session: DelegatedSession,
    pub nonce: String,
}

/// Creates a session for `client` (the one that will bind it) with at most the creator's scopes.
#[allow(clippy::too_many_arguments)]
pub async fn create(
    store: &dyn Store,
    tenant: &TenantId,
    settings: &WorkloadSettings,
    creator: Creator<'_>,
    client: Option<&Client>,
    scope: Option<&str>,
    ttl: Option<i64>,
    now: i64,
) -> Result<Created> {
    let client = client
        .filter(|c| !c.disabled)
        .ok_or_else(|| Error::invalid_request("client_id names no client of this tenant"))?;
    if !client.grant_types.contains(&GrantType::SessionNonce) {
        return Err(Error::invalid_request(format!(
            "the client is not allowed the {SESSION_NONCE_GRANT} grant"
        )));
    }
    let scope = subset_scope(creator.token_scope, scope, "the creator's token")?;
    let ttl = ttl.unwrap_or(settings.session_max_ttl);
    if !(MIN_SESSION_TTL..=settings.session_max_ttl).contains(&ttl) {
        return Err(Error::InvalidRequest(format!(
            "ttl must be between {MIN_SESSION_TTL} and {} seconds, not {ttl}",
            settings.session_max_ttl
        )));
    }
    let mut expires_at = now + ttl;
    let mut parent_id = None;
    if let Some(sid) = creator.parent_sid {
        let parent = store
            .get_delegated_session(tenant, sid)
            .await?
            .filter(|p| p.is_live(now) && p.user_id == creator.user.id)
            .ok_or_else(|| Error::InvalidToken("the access token's session has ended".into()))?;
        if parent.parent_id.is_some() {
            return Err(Error::Refused(
                "a child session cannot create another session".into(),
            ));
        }
        expires_at = expires_at.min(parent.expires_at);
        parent_id = Some(parent.id);
    }
    let nonce = B64.encode(crate::crypto::random_bytes::<32>());
    let session = DelegatedSession {
        tenant_id: tenant.clone(),
        // Hex, not base64url: people pass the id to commands, and one starting with `-` would
        // read as a flag.
        id: hex::encode(crate::crypto::random_bytes::<16>()),
        user_id: creator.user.id.clone(),
        client_id: client.client_id.clone(),
        scope,
        parent_id,
        nonce_hash: hash_secret(nonce.as_bytes()),
        nonce_expires_at: now + NONCE_TTL,
        bound_at: None,
        key_hash: None,
        prev_key_hash: None,
        rotated_at: None,
        last_response: None,
        created_at: now,
        expires_at,
        revoked_at: None,
    };
    match store.insert_delegated_session(&session).await {
        Ok(()) => Ok(Created { session, nonce }),
        // The store keeps one child per session, also when two requests race.
        Err(Error::Conflict(_)) if session.parent_id.is_some() => Err(Error::Refused(
            "this session has already created its one child session".into(),
        )),
        Err(e) => Err(e),
    }
}

/// A session created by a client, with its own credentials, for a user it names (by id or
/// username): only a client the tenant allowed it ([`DelegatedSessionStore::session_creator`]),
/// only for an enabled user, and with at most the scopes the client itself may get. The session
/// is the client's own: it binds the nonce with the same credentials.
///
/// [`DelegatedSessionStore::session_creator`]: crate::store::DelegatedSessionStore::session_creator
#[allow(clippy::too_many_arguments)]
pub async fn create_by_client(
    store: &dyn Store,
    tenant: &TenantId,
    settings: &WorkloadSettings,
    client: &Client,
    user: &str,
    scope: Option<&str>,
    ttl: Option<i64>,
    now: i64,
) -> Result<Created> {
    if !store.session_creator(tenant, &client.client_id).await? {
        return Err(Error::UnauthorizedClient(
            "the client is not allowed to create sessions for users".into(),
        ));
    }
    // Disabled, unknown and malformed all read the same: nothing to learn about other users.
    let user = store
        .get_user(tenant, user)
        .await?
        .filter(|u| !u.disabled)
        .ok_or_else(|| Error::invalid_request("user names no enabled user of this tenant"))?;
    let client_scope = client.allowed_scopes.join(" ");
    let creator = Creator {
        user: &user,
        token_scope: &client_scope,
        parent_sid: None,
    };
    create(store, tenant, settings, creator, Some(client), scope, ttl, now).await
}

/// `requested` (space-separated, or all of `allowed` when absent) if every scope is in `allowed`.
fn subset_scope(allowed: &str, requested: Option<&str>, whose: &str) -> Result<String> {
    let Some(requested) = requested else {
        return Ok(allowed.to_owned());
    };
    let mut out: Vec<&str> = Vec::new();
    for s in requested.split(' ').filter(|s| !s.is_empty()) {
        crate::model::validate_scope_token(s)
            .map_err(|_| Error::InvalidScope(format!("scope '{}' is malformed", s.escape_debug())))?;
        if !allowed.split(' ').any(|a| a == s) {
            return Err(Error::InvalidScope(format!(
                "scope '{}' is wider than {whose} allows",
                s.escape_debug()
            )));
        }
        if !out.contains(&s) {
            out.push(s);
        }
    }
    Ok(out.join(" "))
}

/// The nonce grant: binds the session once, for the client it was created for.
pub async fn bind(ctx: &IssueContext<'_>, client: &Client, nonce: &str) -> Result<TokenResponse> {
    let invalid = || Error::InvalidGrant("the nonce is not valid".into());
    let Some(session) = ctx
        .store
        .get_delegated_session_by_nonce(&ctx.tenant.id, &hash_secret(nonce.as_bytes()))
        .await?
    else {
        return Err(invalid());
    };
    if session.client_id != client.client_id {
        return Err(invalid());
    }
    if session.bound_at.is_some() {
        return Err(Error::InvalidGrant("the nonce was already used".into()));
    }
    if ctx.now >= session.nonce_expires_at {
        return Err(Error::InvalidGrant("the nonce has expired".into()));
    }
    if !session.is_live(ctx.now) {
        return Err(Error::InvalidGrant("the session has ended".into()));
    }
    let user = active_user(ctx, &session.user_id).await?;
    let key = B64.encode(crate::crypto::random_bytes::<32>());
    let response = session_response(ctx, client, &user, &session, &session.scope, &key)?;
    if !ctx
        .store
        .bind_delegated_session(&ctx.tenant.id, &session.id, &hash_secret(key.as_bytes()), ctx.now)
        .await?
    {
        return Err(Error::InvalidGrant("the nonce was already used".into()));
    }
    Ok(response)
}

/// The session-key grant: a fresh access token and the next key. A retried request whose answer
/// was lost gets that same answer within the grace window; a key used again after that means a
/// copy exists, and the session is revoked.
pub async fn refresh(
    ctx: &IssueContext<'_>,
    client: &Client,
    presented: &str,
    scope: Option<&str>,
) -> Result<TokenResponse> {
    let invalid = || Error::InvalidGrant("the session key is not valid".into());
    let key_hash = hash_secret(presented.as_bytes());
    let Some(session) = ctx
        .store
        .get_delegated_session_by_key(&ctx.tenant.id, &key_hash)
        .await?
    else {
        return Err(invalid());
    };
    if session.client_id != client.client_id {
        return Err(invalid());
    }
    if !session.is_live(ctx.now) {
        return Err(Error::InvalidGrant("the session has ended".into()));
    }
    if session.key_hash != Some(key_hash) {
        return replayed(ctx, &session, &key_hash).await;
    }
    let scope = subset_scope(&session.scope, scope, "the session")?;
    let user = active_user(ctx, &session.user_id).await?;
    let key = B64.encode(crate::crypto::random_bytes::<32>());
    let response = session_response(ctx, client, &user, &session, &scope, &key)?;
    // Stored with the rotation, before it leaves: a retry gets this same answer.
    let json = serde_json::to_vec(&response).map_err(|e| Error::Internal(e.to_string()))?;
    let sealed = ctx
        .master
        .seal(&successor_aad(ctx, &session.id, &key_hash), &json);
    if ctx
        .store
        .rotate_session_key(
            &ctx.tenant.id,
            &session.id,
            &key_hash,
            &hash_secret(key.as_bytes()),
            ctx.now,
            &sealed,
        )
        .await?
    {
        return Ok(response);
    }
    // A concurrent use of the same key won: answer as it did.
    let session = ctx
        .store
        .get_delegated_session_by_key(&ctx.tenant.id, &key_hash)
        .await?
        .ok_or_else(invalid)?;
    replayed(ctx, &session, &key_hash).await
}

async fn replayed(
    ctx: &IssueContext<'_>,
    session: &DelegatedSession,
    key_hash: &[u8; 32],
) -> Result<TokenResponse> {
    let rotated_at = session.rotated_at.unwrap_or(i64::MIN);
    if let (Some(sealed), true) = (
        session.last_response.as_deref(),
        session.prev_key_hash.as_ref() == Some(key_hash),
    ) {
        if ctx.now - rotated_at <= REFRESH_REUSE_GRACE {
            let json = ctx
                .master
                .open(&successor_aad(ctx, &session.id, key_hash), sealed)?;
            let mut response: TokenResponse = serde_json::from_slice(&json)
                .map_err(|e| Error::Internal(format!("sealed session response: {e}")))?;
            // Only while the key it handed out is still the current one (unused).
            let successor = response
                .refresh_token
                .as_deref()
                .map(|k| hash_secret(k.as_bytes()));
            if successor.is_some() && successor == session.key_hash {
                response.expires_in = (response.expires_in - (ctx.now - rotated_at)).max(1);
                return Ok(response);
            }
        }
    }
    ctx.store
        .revoke_delegated_session(&ctx.tenant.id, &session.id, None, ctx.now)
        .await?;
    tracing::warn!(tenant = %ctx.tenant.id, client = %session.client_id, "session key replayed; session revoked");
    Err(Error::InvalidGrant(
        "the session key was already used; the session is revoked".into(),
    ))
}

fn successor_aad(ctx: &Signer, session_id: &str, key_hash: &[u8; 32]) -> String {
    format!(
        "sesame:session-successor:{}:{}:{}",
        ctx.tenant.id,
        session_id,
        hex::encode(key_hash)
    )
}

async fn active_user(ctx: &IssueContext<'_>, id: &UserId) -> Result<User> {
    match ctx.store.get_user(&ctx.tenant.id, id.as_str()).await? {
        Some(user) if !user.disabled && user.id == *id => Ok(user),
        _ => Err(Error::InvalidGrant(
            "the user is disabled or no longer exists".into(),
        )),
    }
}

/// RFC 9068 §2.2 claims of a session's access token, with RFC 8693 §4.1 `act`.
#[derive(Serialize)]
struct SessionAccessClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: Value,
    client_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<&'a str>,
    iat: i64,
    nbf: i64,
    exp: i64,
    jti: &'a str,
    sid: &'a str,
    act: Act,
}

fn session_response(
    ctx: &Signer,
    client: &Client,
    user: &User,
    session: &DelegatedSession,
    scope: &str,
    key: &str,
) -> Result<TokenResponse> {
    let ttl = client.access_token_ttl.unwrap_or(ctx.tenant.access_token_ttl);
    // A token never outlives its session.
    let exp = (ctx.now + ttl).min(session.expires_at);
    let aud = match client.allowed_audiences.as_slice() {
        [] => json!(client.client_id.as_str()),
        [one] => json!(one),
        many => json!(many),
    };
    let jti = B64.encode(crate::crypto::random_bytes::<16>());
    let claims = SessionAccessClaims {
        iss: ctx.issuer,
        sub: user.id.as_str(),
        aud,
        client_id: client.client_id.as_str(),
        scope: (!scope.is_empty()).then_some(scope),
        iat: ctx.now,
        nbf: ctx.now,
        exp,
        jti: &jti,
        sid: &session.id,
        act: Act {
            sub: client.client_id.to_string(),
            act: None,
        },
    };
    let alg = client.signing_alg.unwrap_or(ctx.tenant.signing_alg);
    let json = serde_json::to_vec(&claims).map_err(|e| Error::Internal(e.to_string()))?;
    let token = jwt::sign(ctx.keyring.active(alg)?, jwt::Kind::AccessToken, &json)?;
    Ok(TokenResponse {
        access_token: token,
        token_type: "Bearer".into(),
        expires_in: exp - ctx.now,
        // The session key travels where OAuth clients keep what renews their access.
        refresh_token: Some(key.to_owned()),
        id_token: None,
        scope: Some(scope.to_owned()),
        issued_token_type: None,
    })
}

/// The session an access token came from, if it came from one: its `sid`, when it also has the
/// `act` of a delegated session's token.
pub fn token_session(claims: &serde_json::Map<String, Value>) -> Option<&str> {
    claims.get("act")?;
    claims.get("sid")?.as_str()
}

/// Whether a verified access token's session (if any) still lives. Tokens of no session pass.
/// The one store read, by primary key, happens only for session tokens.
pub async fn token_session_live(
    store: &dyn Store,
    tenant: &TenantId,
    claims: &serde_json::Map<String, Value>,
    now: i64,
) -> Result<bool> {
    let Some(sid) = token_session(claims) else {
        return Ok(true);
    };
    Ok(store.get_delegated_session(tenant, sid).await?.is_some_and(|s| {
        s.is_live(now) && Some(s.user_id.as_str()) == claims.get("sub").and_then(|v| v.as_str())
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_a_subset() {
        assert_eq!(subset_scope("a b c", None, "x").unwrap(), "a b c");
        assert_eq!(subset_scope("a b c", Some("c a a"), "x").unwrap(), "c a");
        assert!(matches!(
            subset_scope("a b", Some("a admin"), "x"),
            Err(Error::InvalidScope(_))
        ));
        assert!(matches!(
            subset_scope("a b", Some("a \"b"), "x"),
            Err(Error::InvalidScope(_))
        ));
    }

    #[test]
    fn only_tokens_with_act_and_sid_name_a_session() {
        let m = |v: Value| v.as_object().unwrap().clone();
        assert_eq!(
            token_session(&m(json!({"sid": "s", "act": {"sub": "c"}}))),
            Some("s")
        );
        assert_eq!(token_session(&m(json!({"sid": "s"}))), None);
        assert_eq!(token_session(&m(json!({"act": {"sub": "c"}}))), None);
    }
}
