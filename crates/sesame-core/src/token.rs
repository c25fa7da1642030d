//! The token endpoint's grants and the rules of introspection and revocation.
//!
//! One dispatcher, [`issue`], takes a typed [`TokenRequest`]; each grant is a function beside it.

use crate::authorize::{self, OFFLINE_ACCESS};
use crate::claims::{self, IdTokenFacts};
use crate::crypto::MasterKey;
use crate::jwt;
use crate::keys::Keyring;
use crate::model::{Client, GrantType, RefreshToken, Tenant, User};
use crate::secret::hash_secret;
use crate::store::Store;
use crate::{Error, Result};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};

/// How long after a rotation the old refresh token still gets the same answer, for a client
/// whose first answer was lost or that refreshed twice at once.
pub const REFRESH_REUSE_GRACE: i64 = 30;

/// A token request after parsing and client authentication.
#[derive(Debug)]
pub enum TokenRequest {
    /// RFC 6749 §4.1.3, with RFC 7636 §4.5 `code_verifier`.
    AuthorizationCode {
        code: String,
        redirect_uri: Option<String>,
        code_verifier: Option<String>,
    },
    /// RFC 6749 §6.
    RefreshToken {
        refresh_token: String,
        scope: Option<String>,
    },
    /// RFC 6749 §4.4.2.
    ClientCredentials {
        scope: Option<String>,
        /// RFC 8707 `resource` values (and the widely used `audience` alias).
        audiences: Vec<String>,
    },
    /// RFC 8628 §3.4.
    DeviceCode { device_code: String },
    /// RFC 8693 §2.1.
    TokenExchange(Box<TokenExchange>),
    /// A source's workload token (`workload::WORKLOAD_TOKEN_GRANT`).
    WorkloadToken {
        scope: Option<String>,
        audiences: Vec<String>,
    },
    /// Binds a delegated session's nonce (`sessions::SESSION_NONCE_GRANT`).
    SessionNonce { nonce: String },
    /// A fresh access token of a delegated session (`sessions::SESSION_KEY_GRANT`).
    SessionKey {
        session_key: String,
        scope: Option<String>,
    },
}

/// RFC 8693 §3: the token types a subject or actor token may have here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenType {
    /// `urn:ietf:params:oauth:token-type:jwt`: a JWT of an outside issuer, matched against the
    /// tenant's trust policies.
    Jwt,
    /// `urn:ietf:params:oauth:token-type:access_token`: an access token of this tenant.
    AccessToken,
}

pub const TOKEN_TYPE_JWT: &str = "urn:ietf:params:oauth:token-type:jwt";
pub const TOKEN_TYPE_ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";

impl TokenType {
    /// RFC 8693 §2.2.2: an unsupported token type is `invalid_request`.
    pub fn parse(param: &str, value: &str) -> Result<TokenType> {
        match value {
            TOKEN_TYPE_JWT => Ok(TokenType::Jwt),
            TOKEN_TYPE_ACCESS_TOKEN => Ok(TokenType::AccessToken),
            other => Err(Error::InvalidRequest(format!(
                "{param} '{}' is not supported ({TOKEN_TYPE_JWT}, {TOKEN_TYPE_ACCESS_TOKEN})",
                other.escape_debug()
            ))),
        }
    }
}

/// RFC 8693 §2.1 request parameters. Tokens are redacted in `Debug`.
pub struct TokenExchange {
    pub subject_token: String,
    pub subject_token_type: TokenType,
    /// `actor_token` with its `actor_token_type`: delegation (RFC 8693 §1.1).
    pub actor: Option<(String, TokenType)>,
    /// `audience` and `resource` values.
    pub audiences: Vec<String>,
    pub scope: Option<String>,
}

impl std::fmt::Debug for TokenExchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenExchange")
            .field("subject_token_type", &self.subject_token_type)
            .field("actor_token_type", &self.actor.as_ref().map(|a| a.1))
            .field("audiences", &self.audiences)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// RFC 8693 §2.1 `requested_token_type`: only access tokens are issued.
pub fn check_requested_token_type(requested: Option<&str>) -> Result<()> {
    match requested {
        None | Some(TOKEN_TYPE_ACCESS_TOKEN) => Ok(()),
        Some(other) => Err(Error::InvalidRequest(format!(
            "requested_token_type '{}' is not supported (only {TOKEN_TYPE_ACCESS_TOKEN})",
            other.escape_debug()
        ))),
    }
}

/// The longest life of an exchanged token (it is never longer than its subject token's either).
pub const EXCHANGED_TOKEN_TTL: i64 = 900;

/// RFC 8693 §4.1: the acting party, nested for a chain of delegations.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Act {
    pub sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Box<Act>>,
}

impl TokenRequest {
    pub fn grant_type(&self) -> GrantType {
        match self {
            TokenRequest::AuthorizationCode { .. } => GrantType::AuthorizationCode,
            TokenRequest::RefreshToken { .. } => GrantType::RefreshToken,
            TokenRequest::ClientCredentials { .. } => GrantType::ClientCredentials,
            TokenRequest::DeviceCode { .. } => GrantType::DeviceCode,
            TokenRequest::TokenExchange(_) => GrantType::TokenExchange,
            TokenRequest::WorkloadToken { .. } => GrantType::WorkloadToken,
            TokenRequest::SessionNonce { .. } => GrantType::SessionNonce,
            TokenRequest::SessionKey { .. } => GrantType::SessionKey,
        }
    }
}

/// What signing a token needs: whose, with which keys, when.
pub struct Signer<'a> {
    pub issuer: &'a str,
    pub tenant: &'a Tenant,
    pub keyring: &'a Keyring,
    pub now: i64,
}

/// Everything a grant needs: the signer, and the store for codes and refresh tokens.
pub struct IssueContext<'a> {
    pub signer: Signer<'a>,
    pub store: &'a dyn Store,
    pub master: &'a MasterKey,
    /// The tenant's trust policies and the outside keys, for token exchange (`None` where no
    /// exchange can happen).
    pub trust: Option<Trust<'a>>,
    /// Brokered SSO's re-check at the IdP on refresh (`None`: no re-check, e.g. at /authorize).
    pub upstream: Option<&'a dyn crate::federation::UpstreamRefresher>,
}

/// What token exchange needs to accept outside tokens.
pub struct Trust<'a> {
    pub policies: &'a [crate::trust::TrustPolicy],
    pub keys: &'a dyn crate::trust::KeyFetcher,
}

impl<'a> std::ops::Deref for IssueContext<'a> {
    type Target = Signer<'a>;
    fn deref(&self) -> &Signer<'a> {
        &self.signer
    }
}

/// RFC 6749 §5.1 successful response.
#[derive(Debug, Serialize, Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// RFC 8693 §2.2.1: required in a token exchange answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_token_type: Option<String>,
}

/// Issues tokens for an authenticated client.
pub async fn issue(ctx: &IssueContext<'_>, client: &Client, request: TokenRequest) -> Result<TokenResponse> {
    check_grant_allowed(client, request.grant_type())?;
    match request {
        TokenRequest::AuthorizationCode {
            code,
            redirect_uri,
            code_verifier,
        } => {
            authorization_code(
                ctx,
                client,
                &code,
                redirect_uri.as_deref(),
                code_verifier.as_deref(),
            )
            .await
        }
        TokenRequest::RefreshToken { refresh_token, scope } => {
            refresh(ctx, client, &refresh_token, scope.as_deref()).await
        }
        TokenRequest::ClientCredentials { scope, audiences } => {
            client_credentials(ctx, client, scope.as_deref(), &audiences)
        }
        TokenRequest::DeviceCode { device_code } => device_code_grant(ctx, client, &device_code).await,
        TokenRequest::TokenExchange(request) => token_exchange(ctx, client, *request).await,
        TokenRequest::WorkloadToken { scope, audiences } => {
            crate::workload::issue_token(ctx, ctx.store, client, &audiences, scope.as_deref()).await
        }
        TokenRequest::SessionNonce { nonce } => crate::sessions::bind(ctx, client, &nonce).await,
        TokenRequest::SessionKey { session_key, scope } => {
            crate::sessions::refresh(ctx, client, &session_key, scope.as_deref()).await
        }
    }
}

fn check_grant_allowed(client: &Client, grant: GrantType) -> Result<()> {
    if client.grant_types.contains(&grant) {
        Ok(())
    } else {
        Err(Error::UnauthorizedClient(format!(
            "the client is not allowed to use the {} grant",
            grant.as_str()
        )))
    }
}

/// RFC 6749 §4.1.3 and §10.5: a code is redeemed once, by the client it was issued to, with
/// the redirect URI and PKCE verifier of its request. A second redemption revokes what the
/// first one issued.
async fn authorization_code(
    ctx: &IssueContext<'_>,
    client: &Client,
    code: &str,
    redirect_uri: Option<&str>,
    code_verifier: Option<&str>,
) -> Result<TokenResponse> {
    let invalid = || Error::InvalidGrant("the authorization code is not valid".into());
    let code_hash = hash_secret(code.as_bytes());
    let Some(stored) = ctx.store.get_code(&ctx.tenant.id, &code_hash).await? else {
        return Err(invalid());
    };
    if stored.client_id != client.client_id {
        return Err(invalid());
    }
    if stored.redeemed_at.is_some() {
        ctx.store
            .revoke_grant(&ctx.tenant.id, &stored.grant_id, ctx.now)
            .await?;
        return Err(Error::InvalidGrant(
            "the authorization code was already used; the tokens issued for it are revoked".into(),
        ));
    }
    if ctx.now >= stored.expires_at {
        return Err(Error::InvalidGrant("the authorization code has expired".into()));
    }
    // RFC 6749 §4.1.3: the same redirect_uri as in the authorization request. Omitting it is
    // only possible when the client has that one URI registered.
    let redirect_ok = match redirect_uri {
        Some(uri) => uri == stored.redirect_uri,
        None => client.redirect_uris == [stored.redirect_uri.as_str()],
    };
    if !redirect_ok {
        return Err(Error::InvalidGrant(
            "redirect_uri differs from the authorization request".into(),
        ));
    }
    match (&stored.code_challenge, code_verifier) {
        (Some(challenge), Some(verifier)) => {
            if !authorize::valid_verifier(verifier) {
                return Err(Error::invalid_request(
                    "code_verifier must be 43 to 128 unreserved characters (RFC 7636 §4.1)",
                ));
            }
            if !authorize::pkce_verifies(challenge, verifier) {
                return Err(Error::InvalidGrant(
                    "code_verifier does not match the code_challenge".into(),
                ));
            }
        }
        (Some(_), None) => return Err(Error::invalid_request("code_verifier is missing")),
        // RFC 9700 §2.1.1: a verifier for a code issued without a challenge is a downgrade.
        (None, Some(_)) => {
            return Err(Error::InvalidGrant(
                "code_verifier sent for a code issued without code_challenge".into(),
            ))
        }
        (None, None) => {}
    }
    let user = active_user(ctx, &stored.user_id).await?;
    let extra = crate::authz::access_claims_if_asked(ctx.store, &user, &stored.scope).await?;
    let access = user_access_token_with(ctx, client, &user, &stored.scope, extra.as_ref())?;
    let refresh = issues_refresh(client, &stored.scope).then(|| {
        new_refresh_token(
            ctx,
            client,
            &user,
            &stored.grant_id,
            &stored.scope,
            stored.auth_time,
            &stored.amr,
            &access,
        )
    });
    // The refresh token is stored with the redemption, in one transaction.
    if !ctx
        .store
        .redeem_code(
            &ctx.tenant.id,
            &code_hash,
            ctx.now,
            &access.jti,
            access.exp,
            refresh.as_ref().map(|(_, row)| row),
        )
        .await?
    {
        // Another request redeemed it between our read and now.
        ctx.store
            .revoke_grant(&ctx.tenant.id, &stored.grant_id, ctx.now)
            .await?;
        return Err(Error::InvalidGrant(
            "the authorization code was already used".into(),
        ));
    }
    let refresh_token = refresh.map(|(token, _)| token);
    let groups = groups_if_asked(ctx.store, &user, &stored.scope).await?;
    let id_token = id_token_if_openid(
        ctx,
        client,
        &user,
        IdTokenFacts {
            scope: &stored.scope,
            nonce: stored.nonce.as_deref(),
            auth_time: stored.auth_time,
            amr: &stored.amr,
            access_token: Some(&access.token),
            with_profile_claims: true,
            sid: Some(&stored.session_id),
            groups: groups.as_deref(),
        },
    )?;
    Ok(TokenResponse {
        access_token: access.token,
        token_type: "Bearer".into(),
        expires_in: access.expires_in,
        refresh_token,
        id_token,
        scope: Some(stored.scope),
        issued_token_type: None,
    })
}

/// RFC 8628 §3.4–§3.5: a poll for the tokens of a device authorization. Until the person
/// decides: `authorization_pending`, or `slow_down` when polled sooner than the interval (held
/// in the store, so across replicas). Once approved, the tokens an authorization code would
/// give, once: the redemption is atomic, and a second one revokes what the first issued.
async fn device_code_grant(
    ctx: &IssueContext<'_>,
    client: &Client,
    device_code: &str,
) -> Result<TokenResponse> {
    use crate::device::DeviceStatus;
    let invalid = || Error::InvalidGrant("the device code is not valid".into());
    // Device codes are 43 base64url characters; anything else is not one (no store write).
    if device_code.len() != 43 {
        return Err(invalid());
    }
    let code_hash = hash_secret(device_code.as_bytes());
    let Some(poll) = ctx
        .store
        .poll_device_authorization(&ctx.tenant.id, &code_hash, ctx.now)
        .await?
    else {
        return Err(invalid());
    };
    let stored = poll.authorization;
    // RFC 8628 §3.4 / RFC 6749 §5.2: a device code issued to another client is not valid.
    if stored.client_id != client.client_id {
        return Err(invalid());
    }
    let grant_id = stored.grant_id.clone().unwrap_or_default();
    match stored.status {
        DeviceStatus::Redeemed => {
            ctx.store.revoke_grant(&ctx.tenant.id, &grant_id, ctx.now).await?;
            return Err(Error::InvalidGrant(
                "the device code was already used; the tokens issued for it are revoked".into(),
            ));
        }
        _ if ctx.now >= stored.expires_at => return Err(Error::ExpiredToken),
        DeviceStatus::Denied => return Err(Error::AccessDenied("the person denied the request".into())),
        DeviceStatus::Pending if poll.too_fast => {
            return Err(Error::SlowDown {
                interval: stored.interval,
            })
        }
        DeviceStatus::Pending => return Err(Error::AuthorizationPending),
        DeviceStatus::Approved => {}
    }
    let (Some(user_id), Some(auth_time)) = (&stored.user_id, stored.auth_time) else {
        return Err(Error::Internal(
            "an approved device authorization names no user".into(),
        ));
    };
    let user = active_user(ctx, user_id).await?;
    let extra = crate::authz::access_claims_if_asked(ctx.store, &user, &stored.scope).await?;
    let access = user_access_token_with(ctx, client, &user, &stored.scope, extra.as_ref())?;
    let refresh = issues_refresh(client, &stored.scope).then(|| {
        new_refresh_token(
            ctx,
            client,
            &user,
            &grant_id,
            &stored.scope,
            auth_time,
            &stored.amr,
            &access,
        )
    });
    if !ctx
        .store
        .redeem_device_authorization(
            &ctx.tenant.id,
            &code_hash,
            ctx.now,
            &access.jti,
            access.exp,
            refresh.as_ref().map(|(_, row)| row),
        )
        .await?
    {
        ctx.store.revoke_grant(&ctx.tenant.id, &grant_id, ctx.now).await?;
        return Err(Error::InvalidGrant("the device code was already used".into()));
    }
    let groups = groups_if_asked(ctx.store, &user, &stored.scope).await?;
    let id_token = id_token_if_openid(
        ctx,
        client,
        &user,
        IdTokenFacts {
            scope: &stored.scope,
            nonce: None,
            auth_time,
            amr: &stored.amr,
            access_token: Some(&access.token),
            with_profile_claims: true,
            sid: stored.session_id.as_deref(),
            groups: groups.as_deref(),
        },
    )?;
    Ok(TokenResponse {
        access_token: access.token,
        token_type: "Bearer".into(),
        expires_in: access.expires_in,
        refresh_token: refresh.map(|(token, _)| token),
        id_token,
        scope: Some(stored.scope),
        issued_token_type: None,
    })
}

/// RFC 6749 §6 with rotation (RFC 9700 §4.14.2): each refresh token is exchanged once for a
/// successor. A replay inside [`REFRESH_REUSE_GRACE`] gets the answer already given; a later
/// replay means the token leaked, and the whole grant is revoked.
async fn refresh(
    ctx: &IssueContext<'_>,
    client: &Client,
    presented: &str,
    scope: Option<&str>,
) -> Result<TokenResponse> {
    let invalid = || Error::InvalidGrant("the refresh token is not valid".into());
    let token_hash = hash_secret(presented.as_bytes());
    let Some(stored) = ctx.store.get_refresh_token(&ctx.tenant.id, &token_hash).await? else {
        return Err(invalid());
    };
    if stored.client_id != client.client_id {
        return Err(invalid());
    }
    if stored.rotated_at.is_some() {
        return replayed(ctx, &stored).await;
    }
    if ctx.now >= stored.expires_at {
        return Err(Error::InvalidGrant("the refresh token has expired".into()));
    }
    // RFC 6749 §6: a narrower scope may be asked for; the grant itself keeps its scope.
    let scope = match scope {
        None => stored.scope.clone(),
        Some(requested) => {
            let mut narrowed = Vec::new();
            for s in requested.split(' ').filter(|s| !s.is_empty()) {
                if !has_scope(&stored.scope, s) {
                    return Err(Error::InvalidScope(format!(
                        "scope '{}' was not granted to this refresh token",
                        s.escape_debug()
                    )));
                }
                if !narrowed.contains(&s) {
                    narrowed.push(s);
                }
            }
            narrowed.join(" ")
        }
    };
    let user = active_user(ctx, &stored.user_id).await?;
    // Brokered SSO: a grant of a federated sign-in asks the IdP again when its connection says
    // so. Only such grants (`amr` in the row already read) look further, so the others read
    // nothing more.
    if let Some(upstream) = ctx.upstream {
        if stored.amr.iter().any(|a| a == crate::federation::AMR_FEDERATED) {
            crate::federation::recheck_upstream(
                ctx.store,
                ctx.master,
                upstream,
                &user,
                &stored.grant_id,
                ctx.now,
            )
            .await?;
        }
    }
    let extra = crate::authz::access_claims_if_asked(ctx.store, &user, &scope).await?;
    let access = user_access_token_with(ctx, client, &user, &scope, extra.as_ref())?;
    let (token, successor) = new_refresh_token(
        ctx,
        client,
        &user,
        &stored.grant_id,
        &stored.scope,
        stored.auth_time,
        &stored.amr,
        &access,
    );
    // OpenID Connect Core §12.2: an ID token may come back, without a nonce.
    let groups = groups_if_asked(ctx.store, &user, &scope).await?;
    let id_token = id_token_if_openid(
        ctx,
        client,
        &user,
        IdTokenFacts {
            scope: &scope,
            nonce: None,
            auth_time: stored.auth_time,
            amr: &stored.amr,
            access_token: Some(&access.token),
            with_profile_claims: true,
            // A refresh can outlive the browser session; it names none.
            sid: None,
            groups: groups.as_deref(),
        },
    )?;
    let response = TokenResponse {
        access_token: access.token,
        token_type: "Bearer".into(),
        expires_in: access.expires_in,
        refresh_token: Some(token),
        id_token,
        scope: Some(scope),
        issued_token_type: None,
    };
    // The answer is stored with the rotation, before it leaves: a retry gets this same answer.
    let json = serde_json::to_vec(&response).map_err(|e| Error::Internal(e.to_string()))?;
    let sealed = ctx.master.seal(&successor_aad(ctx, &token_hash), &json);
    if ctx
        .store
        .rotate_refresh_token(&ctx.tenant.id, &token_hash, ctx.now, &successor, &sealed)
        .await?
    {
        return Ok(response);
    }
    // A concurrent exchange of the same token won; answer as it did.
    let stored = ctx
        .store
        .get_refresh_token(&ctx.tenant.id, &token_hash)
        .await?
        .ok_or_else(invalid)?;
    replayed(ctx, &stored).await
}

/// A rotated refresh token presented again. Inside the grace window, and only while its
/// successor is still unused, it gets the answer already given (a retry, or two tabs at once).
/// Otherwise someone else holds a copy: the grant is revoked.
async fn replayed(ctx: &IssueContext<'_>, stored: &RefreshToken) -> Result<TokenResponse> {
    let rotated_at = stored.rotated_at.unwrap_or(i64::MIN);
    if let Some(sealed) = stored.successor_response.as_deref() {
        if ctx.now - rotated_at <= REFRESH_REUSE_GRACE {
            let json = ctx.master.open(&successor_aad(ctx, &stored.token_hash), sealed)?;
            let mut response: TokenResponse = serde_json::from_slice(&json)
                .map_err(|e| Error::Internal(format!("sealed token response: {e}")))?;
            let successor = match &response.refresh_token {
                Some(t) => {
                    ctx.store
                        .get_refresh_token(&ctx.tenant.id, &hash_secret(t.as_bytes()))
                        .await?
                }
                None => None,
            };
            if successor.is_some_and(|s| s.rotated_at.is_none()) {
                response.expires_in = (response.expires_in - (ctx.now - rotated_at)).max(1);
                return Ok(response);
            }
        }
    }
    ctx.store
        .revoke_grant(&ctx.tenant.id, &stored.grant_id, ctx.now)
        .await?;
    tracing::warn!(tenant = %ctx.tenant.id, client = %stored.client_id, "refresh token replayed; grant revoked");
    Err(Error::InvalidGrant(
        "the refresh token was already used; every token of its grant is revoked".into(),
    ))
}

fn successor_aad(ctx: &Signer, token_hash: &[u8; 32]) -> String {
    format!(
        "sesame:refresh-successor:{}:{}",
        ctx.tenant.id,
        hex::encode(token_hash)
    )
}

/// The `groups` claim's value when the grant has the `groups` scope: the store is read only then.
pub async fn groups_if_asked(
    store: &dyn crate::store::Store,
    user: &User,
    scope: &str,
) -> Result<Option<Vec<String>>> {
    if !has_scope(scope, "groups") {
        return Ok(None);
    }
    crate::store::FederationStore::user_groups(store, &user.tenant_id, &user.id)
        .await
        .map(Some)
}

async fn active_user(ctx: &IssueContext<'_>, id: &crate::ids::UserId) -> Result<User> {
    match ctx.store.get_user(&ctx.tenant.id, id.as_str()).await? {
        Some(user) if !user.disabled && user.id == *id => Ok(user),
        _ => Err(Error::InvalidGrant(
            "the user is disabled or no longer exists".into(),
        )),
    }
}

/// An ID token when the grant has the `openid` scope (an OAuth-only grant gets none).
fn id_token_if_openid(
    ctx: &Signer,
    client: &Client,
    user: &User,
    facts: IdTokenFacts,
) -> Result<Option<String>> {
    if !has_scope(facts.scope, "openid") {
        return Ok(None);
    }
    claims::id_token(ctx, client, user, &facts).map(Some)
}

fn has_scope(scope: &str, wanted: &str) -> bool {
    scope.split(' ').any(|s| s == wanted)
}

/// OpenID Connect Core §11: refresh tokens for `offline_access`, or for every code of a
/// client configured so.
fn issues_refresh(client: &Client, scope: &str) -> bool {
    client.grant_types.contains(&GrantType::RefreshToken)
        && (has_scope(scope, OFFLINE_ACCESS) || client.refresh_without_offline_access)
}

#[allow(clippy::too_many_arguments)]
fn new_refresh_token(
    ctx: &Signer,
    client: &Client,
    user: &User,
    grant_id: &str,
    scope: &str,
    auth_time: i64,
    amr: &[String],
    access: &IssuedAccessToken,
) -> (String, RefreshToken) {
    let token = B64.encode(crate::crypto::random_bytes::<32>());
    let row = RefreshToken {
        tenant_id: ctx.tenant.id.clone(),
        token_hash: hash_secret(token.as_bytes()),
        grant_id: grant_id.to_owned(),
        client_id: client.client_id.clone(),
        user_id: user.id.clone(),
        scope: scope.to_owned(),
        auth_time,
        amr: amr.to_vec(),
        created_at: ctx.now,
        expires_at: ctx.now + ctx.tenant.refresh_token_ttl,
        access_jti: Some(access.jti.clone()),
        access_exp: Some(access.exp),
        rotated_at: None,
        successor_response: None,
    };
    (token, row)
}

/// A new grant's id: the thread through a code and the refresh tokens that follow it.
pub fn new_grant_id() -> String {
    B64.encode(crate::crypto::random_bytes::<16>())
}

/// An access token issued for a person.
pub struct IssuedAccessToken {
    pub token: String,
    pub jti: String,
    pub exp: i64,
    pub expires_in: i64,
}

/// RFC 9068 access token for `user`, acting through `client`, with `scope`.
pub fn user_access_token(
    ctx: &Signer,
    client: &Client,
    user: &User,
    scope: &str,
) -> Result<IssuedAccessToken> {
    user_access_token_with(ctx, client, user, scope, None)
}

/// [`user_access_token`] with the `roles` / `groups` claims, when the grant asked for them.
pub fn user_access_token_with(
    ctx: &Signer,
    client: &Client,
    user: &User,
    scope: &str,
    extra: Option<&serde_json::Map<String, serde_json::Value>>,
) -> Result<IssuedAccessToken> {
    let aud = granted_audience(client, &[])?;
    let ttl = client.access_token_ttl.unwrap_or(ctx.tenant.access_token_ttl);
    let jti = new_jti();
    let token = sign_access_token(
        ctx,
        client,
        &AccessClaims {
            iss: ctx.issuer,
            sub: user.id.as_str(),
            aud: &aud,
            client_id: client.client_id.as_str(),
            scope: (!scope.is_empty()).then_some(scope),
            iat: ctx.now,
            nbf: ctx.now,
            exp: ctx.now + ttl,
            jti: &jti,
            act: None,
            extra,
        },
    )?;
    Ok(IssuedAccessToken {
        token,
        jti,
        exp: ctx.now + ttl,
        expires_in: ttl,
    })
}

fn client_credentials(
    ctx: &Signer,
    client: &Client,
    scope: Option<&str>,
    audiences: &[String],
) -> Result<TokenResponse> {
    let scope = granted_scope(client, scope)?;
    let aud = granted_audience(client, audiences)?;
    let ttl = client.access_token_ttl.unwrap_or(ctx.tenant.access_token_ttl);
    let access_token = sign_access_token(
        ctx,
        client,
        &AccessClaims {
            iss: ctx.issuer,
            // RFC 9068 §2.2: for client credentials the subject is the client itself.
            sub: client.client_id.as_str(),
            aud: &aud,
            client_id: client.client_id.as_str(),
            scope: scope.as_deref(),
            iat: ctx.now,
            nbf: ctx.now,
            exp: ctx.now + ttl,
            jti: &new_jti(),
            act: None,
            extra: None,
        },
    )?;
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer".into(),
        expires_in: ttl,
        refresh_token: None,
        id_token: None,
        scope,
        issued_token_type: None,
    })
}

/// One side of a token exchange (the subject or the actor) once its token checked out.
struct Party {
    sub: String,
    act: Option<Act>,
    /// The most an exchanged token may carry.
    scopes: Vec<String>,
    /// For an outside token, the audiences its trust policy allows; `None` for a Sesame token
    /// (the exchanging client's own audiences apply).
    audiences: Option<Vec<String>>,
    /// An exchanged token ends no later than this.
    exp: i64,
    /// A person (an access token issued for a user), as opposed to a client or a workload.
    person: bool,
}

/// RFC 8693 §2: exchanges a subject token (an outside JWT a trust policy accepts, or an access
/// token of this tenant) for a short-lived access token, never wider than the subject token or
/// the policy allows. With an actor token the result names the actor in `act` (nested when the
/// subject token names one already); without, a person's token is exchanged only by a client
/// allowed to impersonate. A refusal is logged with its reason, never with a token.
async fn token_exchange(
    ctx: &IssueContext<'_>,
    client: &Client,
    request: TokenExchange,
) -> Result<TokenResponse> {
    let result = exchange(ctx, client, request).await;
    if let Err(e) = &result {
        if !e.is_internal() {
            tracing::warn!(
                tenant = %ctx.tenant.id,
                client = %client.client_id,
                error = e.code(),
                reason = %e.description(),
                "token exchange refused"
            );
        }
    }
    result
}

async fn exchange(ctx: &IssueContext<'_>, client: &Client, request: TokenExchange) -> Result<TokenResponse> {
    let subject = party(
        ctx,
        client,
        &request.subject_token,
        request.subject_token_type,
        "subject_token",
    )
    .await?;
    let actor = match &request.actor {
        Some((token, kind)) => Some(party(ctx, client, token, *kind, "actor_token").await?),
        None => None,
    };
    if actor.is_none() && subject.person && !client.token_exchange_impersonation {
        return Err(Error::UnauthorizedClient(
            "the client may not impersonate a person (token_exchange_impersonation); send an actor_token"
                .into(),
        ));
    }
    let scope = narrowed_scope(&subject.scopes, request.scope.as_deref())?;
    let aud = match &subject.audiences {
        Some(allowed) => policy_audience(client, allowed, &request.audiences)?,
        None => granted_audience(client, &request.audiences)?,
    };
    let ttl = client
        .access_token_ttl
        .unwrap_or(ctx.tenant.access_token_ttl)
        .min(EXCHANGED_TOKEN_TTL);
    let exp = (ctx.now + ttl).min(subject.exp);
    if exp <= ctx.now {
        return Err(Error::InvalidGrant("the subject_token has expired".into()));
    }
    let act = match actor {
        // RFC 8693 §4.1: the current actor outermost, the earlier ones nested inside.
        Some(a) => Some(Act {
            sub: a.sub,
            act: subject.act.map(Box::new),
        }),
        None => subject.act,
    };
    let access_token = sign_access_token(
        ctx,
        client,
        &AccessClaims {
            iss: ctx.issuer,
            sub: &subject.sub,
            aud: &aud,
            client_id: client.client_id.as_str(),
            scope: scope.as_deref(),
            iat: ctx.now,
            nbf: ctx.now,
            exp,
            jti: &new_jti(),
            act,
            extra: None,
        },
    )?;
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer".into(),
        expires_in: exp - ctx.now,
        refresh_token: None,
        id_token: None,
        scope,
        issued_token_type: Some(TOKEN_TYPE_ACCESS_TOKEN.into()),
    })
}

/// Checks a subject or actor token and says who it stands for and what it allows.
async fn party(
    ctx: &IssueContext<'_>,
    client: &Client,
    token: &str,
    kind: TokenType,
    role: &str,
) -> Result<Party> {
    match kind {
        TokenType::Jwt => {
            let trust = ctx
                .trust
                .as_ref()
                .ok_or_else(|| Error::Internal("token exchange without trust policies".into()))?;
            let matched = crate::trust::match_policy(trust.policies, trust.keys, token, ctx.now)
                .await
                .map_err(|e| match e {
                    Error::InvalidGrant(why) => Error::InvalidGrant(format!("{role}: {why}")),
                    other => other,
                })?;
            let spec = &matched.policy.spec;
            Ok(Party {
                sub: spec.identity.clone(),
                act: None,
                scopes: spec.scopes.clone(),
                audiences: Some(spec.audiences.clone()),
                exp: i64::MAX,
                person: false,
            })
        }
        TokenType::AccessToken => {
            let invalid = |why: &str| Error::InvalidGrant(format!("{role}: {why}"));
            let valid = validate_access_token(ctx.issuer, ctx.keyring, token, ctx.now)
                .ok_or_else(|| invalid("not a valid access token of this tenant"))?;
            // Store reads, unavoidable: revocation must be current on every replica, and the
            // client the token was issued to must still stand behind it.
            if let Some(jti) = valid.jti() {
                if ctx.store.is_access_token_revoked(&ctx.tenant.id, jti).await? {
                    return Err(invalid("the token has been revoked"));
                }
            }
            let issued_to = match valid.client_id().map(crate::ids::ClientId::parse) {
                Some(Ok(id)) => ctx.store.get_client(&ctx.tenant.id, &id).await?,
                _ => None,
            };
            if !valid.client_honours(issued_to.as_ref()) {
                return Err(invalid("the client it was issued to no longer stands behind it"));
            }
            // Only the token's own parties may exchange it: the client it was issued to, or a
            // client it names as audience (a resource server acting on).
            if valid.client_id() != Some(client.client_id.as_str())
                && !valid.has_audience(client.client_id.as_str())
            {
                return Err(invalid(
                    "the token was not issued to this client and does not name it as audience",
                ));
            }
            let sub = valid
                .claims
                .get("sub")
                .and_then(|v| v.as_str())
                .ok_or_else(|| invalid("the token has no sub"))?
                .to_owned();
            let act = match valid.claims.get("act") {
                Some(v) => Some(
                    serde_json::from_value::<Act>(v.clone())
                        .map_err(|_| invalid("the token's act claim is malformed"))?,
                ),
                None => None,
            };
            let scopes = valid
                .claims
                .get("scope")
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            // Client-credentials tokens name the client as subject; every other one a person.
            let person = valid.client_id() != Some(sub.as_str()) && act.is_none();
            Ok(Party {
                sub,
                act,
                scopes,
                audiences: None,
                exp: valid.exp(),
                person,
            })
        }
    }
}

/// RFC 8693 §2.1 `scope`: a subset of what the subject allows; none asked for means all of it.
fn narrowed_scope(allowed: &[String], requested: Option<&str>) -> Result<Option<String>> {
    let Some(requested) = requested else {
        return Ok((!allowed.is_empty()).then(|| allowed.join(" ")));
    };
    let mut granted: Vec<&str> = Vec::new();
    for s in requested.split(' ').filter(|s| !s.is_empty()) {
        if !allowed.iter().any(|a| a == s) {
            return Err(Error::InvalidScope(format!(
                "scope '{}' is wider than the subject token or its trust policy allows",
                s.escape_debug()
            )));
        }
        if !granted.contains(&s) {
            granted.push(s);
        }
    }
    Ok((!granted.is_empty()).then(|| granted.join(" ")))
}

/// RFC 8693 §2.1 `audience`/`resource` for an outside subject: among the policy's audiences;
/// none asked for means all of them, or the exchanging client when the policy names none.
fn policy_audience(client: &Client, allowed: &[String], requested: &[String]) -> Result<Audience> {
    let mut list: Vec<String> = Vec::new();
    for aud in requested {
        if !allowed.contains(aud) {
            return Err(Error::InvalidTarget(format!(
                "audience '{}' is not allowed by the trust policy",
                aud.escape_debug()
            )));
        }
        if !list.contains(aud) {
            list.push(aud.clone());
        }
    }
    if requested.is_empty() {
        list = allowed.to_vec();
    }
    Ok(match list.len() {
        0 => Audience::One(client.client_id.to_string()),
        1 => Audience::One(list.into_iter().next().expect("one")),
        _ => Audience::Many(list),
    })
}

/// RFC 9068 §2.2 access-token claims.
#[derive(Serialize)]
struct AccessClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a Audience,
    client_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<&'a str>,
    iat: i64,
    nbf: i64,
    exp: i64,
    jti: &'a str,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Act>,
    /// `roles` / `groups` for grants with those scopes (`authz::access_claims_if_asked`).
    #[serde(flatten)]
    extra: Option<&'a serde_json::Map<String, serde_json::Value>>,
}

/// `aud` is a string for one audience and an array for several (RFC 7519 §4.1.3).
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

fn sign_access_token(ctx: &Signer, client: &Client, claims: &AccessClaims) -> Result<String> {
    let alg = client.signing_alg.unwrap_or(ctx.tenant.signing_alg);
    let key = ctx.keyring.active(alg)?;
    let json = serde_json::to_vec(claims).map_err(|e| Error::Internal(e.to_string()))?;
    jwt::sign(key, jwt::Kind::AccessToken, &json)
}

fn new_jti() -> String {
    B64.encode(crate::crypto::random_bytes::<16>())
}

/// RFC 6749 §3.3: the requested scopes must all be allowed; none requested means all allowed.
fn granted_scope(client: &Client, requested: Option<&str>) -> Result<Option<String>> {
    let Some(requested) = requested else {
        return Ok((!client.allowed_scopes.is_empty()).then(|| client.allowed_scopes.join(" ")));
    };
    let mut granted: Vec<&str> = Vec::new();
    for s in requested.split(' ').filter(|s| !s.is_empty()) {
        crate::model::validate_scope_token(s)
            .map_err(|_| Error::InvalidScope(format!("scope '{}' is malformed", s.escape_debug())))?;
        if !client.allowed_scopes.iter().any(|a| a == s) {
            return Err(Error::InvalidScope(format!(
                "the client may not request scope '{s}'"
            )));
        }
        if !granted.contains(&s) {
            granted.push(s);
        }
    }
    Ok((!granted.is_empty()).then(|| granted.join(" ")))
}

/// RFC 8707 §2: every requested audience must be allowed. None requested means all the
/// client's audiences; a client with none gets a token whose audience is itself.
fn granted_audience(client: &Client, requested: &[String]) -> Result<Audience> {
    let list: Vec<String> = if requested.is_empty() {
        client.allowed_audiences.clone()
    } else {
        let mut list = Vec::new();
        for aud in requested {
            if !client.allowed_audiences.contains(aud) {
                return Err(Error::InvalidTarget(format!(
                    "the client may not request audience '{}'",
                    aud.escape_debug()
                )));
            }
            if !list.contains(aud) {
                list.push(aud.clone());
            }
        }
        list
    };
    Ok(match list.len() {
        0 => Audience::One(client.client_id.to_string()),
        1 => Audience::One(list.into_iter().next().expect("one")),
        _ => Audience::Many(list),
    })
}

/// A refresh token that is live: known, not yet rotated, not expired.
async fn live_refresh_token(
    store: &dyn Store,
    tenant: &crate::ids::TenantId,
    presented: &str,
    now: i64,
) -> Result<Option<RefreshToken>> {
    // Refresh tokens are 43 base64url characters; anything else is not one.
    if presented.len() != 43 {
        return Ok(None);
    }
    let stored = store
        .get_refresh_token(tenant, &hash_secret(presented.as_bytes()))
        .await?;
    Ok(stored.filter(|r| r.rotated_at.is_none() && now < r.expires_at))
}

/// RFC 7009 §2.1: revoking a refresh token revokes its grant, with the access tokens issued
/// under it. Only the client it was issued to may revoke it; another client's request changes
/// nothing and gets the answer an unknown token gets (RFC 7009 §2.2), so that it learns nothing
/// about the token. Returns whether it was a live refresh token (revoked or left alone).
pub async fn revoke_refresh_token(
    store: &dyn Store,
    tenant: &crate::ids::TenantId,
    client: &Client,
    presented: &str,
    now: i64,
) -> Result<bool> {
    let Some(token) = live_refresh_token(store, tenant, presented, now).await? else {
        return Ok(false);
    };
    if token.client_id == client.client_id {
        store.revoke_grant(tenant, &token.grant_id, now).await?;
    }
    Ok(true)
}

/// RFC 7009 §2.1 for an access token: only the client it was issued to may revoke it. For
/// another client the answer is the same as for an unknown token (RFC 7009 §2.2) and nothing
/// changes. The `jti` to record as revoked, with its expiry, if any.
pub fn access_token_to_revoke<'t>(token: &'t ValidAccessToken, client: &Client) -> Option<(&'t str, i64)> {
    if token.client_id() != Some(client.client_id.as_str()) {
        return None;
    }
    Some((token.jti()?, token.exp()))
}

/// RFC 7662 §2.2 for a refresh token, answered only to the client it was issued to.
pub async fn introspect_refresh_token(
    store: &dyn Store,
    tenant: &crate::ids::TenantId,
    issuer: &str,
    client: &Client,
    presented: &str,
    now: i64,
) -> Result<Option<serde_json::Value>> {
    let Some(token) = live_refresh_token(store, tenant, presented, now).await? else {
        return Ok(None);
    };
    if token.client_id != client.client_id {
        return Ok(None);
    }
    Ok(Some(serde_json::json!({
        "active": true,
        "token_type": "refresh_token",
        "iss": issuer,
        "sub": token.user_id.as_str(),
        "client_id": token.client_id.as_str(),
        "scope": token.scope,
        "iat": token.created_at,
        "exp": token.expires_at,
    })))
}

/// An access token that verified: signed by a published key of this tenant, issued by this
/// issuer, inside its lifetime.
pub struct ValidAccessToken {
    pub claims: serde_json::Map<String, serde_json::Value>,
}

impl ValidAccessToken {
    pub fn jti(&self) -> Option<&str> {
        self.claims.get("jti").and_then(|v| v.as_str())
    }
    pub fn client_id(&self) -> Option<&str> {
        self.claims.get("client_id").and_then(|v| v.as_str())
    }
    pub fn exp(&self) -> i64 {
        self.claims.get("exp").and_then(|v| v.as_i64()).unwrap_or(0)
    }
    pub fn iat(&self) -> i64 {
        self.claims.get("iat").and_then(|v| v.as_i64()).unwrap_or(0)
    }

    /// Whether `aud` (a string or an array, RFC 7519 §4.1.3) names `wanted`.
    pub fn has_audience(&self, wanted: &str) -> bool {
        match self.claims.get("aud") {
            Some(serde_json::Value::String(a)) => a == wanted,
            Some(serde_json::Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(wanted)),
            _ => false,
        }
    }

    /// Whether the client the token was issued to (`issued_to`, from the cache: `None` if it
    /// no longer exists) still stands behind it. A deleted or disabled client's tokens are
    /// dead, and so are those issued before its `revoked_before`: by an earlier client of the
    /// same id, or before it was disabled. This covers client-credentials tokens, which are
    /// noted under no grant; the grants' tokens are also recorded as revoked.
    pub fn client_honours(&self, issued_to: Option<&Client>) -> bool {
        issued_to.is_some_and(|c| {
            Some(c.client_id.as_str()) == self.client_id() && !c.disabled && self.iat() >= c.revoked_before
        })
    }

    /// RFC 7662 §4: a client learns about a token only if it was issued to it, names it as
    /// audience, or the client is allowed to introspect any token (a resource server).
    pub fn visible_to(&self, caller: &Client) -> bool {
        let id = caller.client_id.as_str();
        caller.introspect_any || self.client_id() == Some(id) || self.has_audience(id)
    }
}

/// Checks an access token of this tenant. `None` for anything not valid: wrong signature, a
/// key of another tenant, another issuer, expired or not yet valid, not an `at+jwt`.
pub fn validate_access_token(
    issuer: &str,
    keyring: &Keyring,
    token: &str,
    now: i64,
) -> Option<ValidAccessToken> {
    let verified = jwt::verify(keyring, token).ok()?;
    // RFC 9068 §4: the resource server checks `typ` is at+jwt, so an ID token is not accepted.
    if !verified
        .typ
        .as_deref()
        .is_some_and(|t| t.eq_ignore_ascii_case("at+jwt"))
    {
        return None;
    }
    let claims = verified.claims;
    if claims.get("iss").and_then(|v| v.as_str()) != Some(issuer) {
        return None;
    }
    let exp = claims.get("exp")?.as_i64()?;
    let nbf = claims.get("nbf").and_then(|v| v.as_i64()).unwrap_or(0);
    if now >= exp || now < nbf {
        return None;
    }
    claims.get("jti")?.as_str()?;
    Some(ValidAccessToken { claims })
}

/// Whether introspection may call `token` active for `caller`, given the client it was issued
/// to (from the cache): that client still stands behind it (`client_honours`) and the caller
/// may see it (`visible_to`). The revocation check comes after, from the store.
pub fn introspection_allowed(token: &ValidAccessToken, issued_to: Option<&Client>, caller: &Client) -> bool {
    token.client_honours(issued_to) && token.visible_to(caller)
}

/// RFC 7662 §2.2 introspection response: `active` alone for anything not active.
pub fn introspection_response(token: Option<&ValidAccessToken>) -> serde_json::Value {
    let Some(token) = token else {
        return serde_json::json!({ "active": false });
    };
    let mut out = serde_json::Map::new();
    out.insert("active".into(), true.into());
    for name in [
        "iss",
        "sub",
        "aud",
        "client_id",
        "scope",
        "iat",
        "nbf",
        "exp",
        "jti",
        "act",
    ] {
        if let Some(v) = token.claims.get(name) {
            out.insert(name.into(), v.clone());
        }
    }
    out.insert("token_type".into(), "Bearer".into());
    serde_json::Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::MasterKey;
    use crate::ids::{ClientId, TenantId};
    use crate::keys::new_stored_key;
    use crate::model::{ClientType, KeyState, SigningAlg};

    fn fixture(alg: SigningAlg) -> (Tenant, Client, Keyring) {
        let (master, _) = MasterKey::generate();
        let tid = TenantId::parse("acme").unwrap();
        let tenant = Tenant::new(tid.clone(), 1000);
        let keys: Vec<_> = SigningAlg::ALL
            .iter()
            .map(|a| new_stored_key(&master, &tid, *a, KeyState::Active, 1000).unwrap())
            .collect();
        let client = Client {
            tenant_id: tid,
            client_id: ClientId::parse("svc").unwrap(),
            name: "svc".into(),
            client_type: ClientType::Confidential,
            secret_hash: Some([0; 32]),
            grant_types: vec![GrantType::ClientCredentials],
            redirect_uris: vec![],
            post_logout_redirect_uris: vec![],
            require_pkce: true,
            first_party: false,
            refresh_without_offline_access: false,
            backchannel_logout_uri: None,
            allowed_scopes: vec!["read".into(), "write".into()],
            allowed_audiences: vec!["api".into(), "other".into()],
            signing_alg: Some(alg),
            access_token_ttl: Some(600),
            introspect_any: false,
            jwks: None,
            jwks_uri: None,
            trust_policy: None,
            token_exchange_impersonation: false,
            disabled: false,
            revoked_before: 0,
            created_at: 1000,
            updated_at: 1000,
        };
        (tenant, client, Keyring::load(&master, &keys, 1000).unwrap())
    }

    fn cc(ctx: &Signer, client: &Client, scope: Option<&str>, aud: &[&str]) -> Result<TokenResponse> {
        let aud: Vec<String> = aud.iter().map(|s| s.to_string()).collect();
        client_credentials(ctx, client, scope, &aud)
    }

    #[test]
    fn client_credentials_issue_rfc9068_tokens_for_each_alg() {
        for alg in SigningAlg::ALL {
            let (tenant, client, ring) = fixture(alg);
            let ctx = Signer {
                issuer: "https://id/t/acme",
                tenant: &tenant,
                keyring: &ring,
                now: 2000,
            };
            let resp = cc(&ctx, &client, Some("read"), &["api"]).unwrap();
            assert_eq!(resp.expires_in, 600);
            assert_eq!(resp.scope.as_deref(), Some("read"));
            let tok = validate_access_token("https://id/t/acme", &ring, &resp.access_token, 2000).unwrap();
            assert_eq!(tok.claims["sub"], "svc");
            assert_eq!(tok.claims["aud"], "api");
            assert_eq!(tok.claims["exp"], 2600);
            assert_eq!(tok.claims["nbf"], 2000);
            let header = B64.decode(resp.access_token.split('.').next().unwrap()).unwrap();
            let header: serde_json::Value = serde_json::from_slice(&header).unwrap();
            assert_eq!(header["typ"], "at+jwt");
            assert_eq!(header["alg"], alg.as_str());
            assert!(validate_access_token("https://id/t/other", &ring, &resp.access_token, 2000).is_none());
            assert!(validate_access_token("https://id/t/acme", &ring, &resp.access_token, 2600).is_none());
        }
    }

    #[test]
    fn scopes_and_audiences_are_limited_to_what_the_client_is_allowed() {
        let (tenant, client, ring) = fixture(SigningAlg::EdDSA);
        let ctx = Signer {
            issuer: "i",
            tenant: &tenant,
            keyring: &ring,
            now: 1,
        };
        assert!(matches!(
            cc(&ctx, &client, Some("admin"), &[]),
            Err(Error::InvalidScope(_))
        ));
        assert!(matches!(
            cc(&ctx, &client, Some("read \"x"), &[]),
            Err(Error::InvalidScope(_))
        ));
        assert!(matches!(
            cc(&ctx, &client, None, &["evil"]),
            Err(Error::InvalidTarget(_))
        ));
        let all = cc(&ctx, &client, None, &[]).unwrap();
        assert_eq!(all.scope.as_deref(), Some("read write"));
        let tok = validate_access_token("i", &ring, &all.access_token, 1).unwrap();
        assert_eq!(tok.claims["aud"], serde_json::json!(["api", "other"]));
    }

    #[test]
    fn a_client_without_the_grant_is_unauthorized() {
        let (_, mut client, _) = fixture(SigningAlg::EdDSA);
        assert!(check_grant_allowed(&client, GrantType::ClientCredentials).is_ok());
        assert!(check_grant_allowed(&client, GrantType::AuthorizationCode).is_err());
        client.grant_types.clear();
        assert!(matches!(
            check_grant_allowed(&client, GrantType::ClientCredentials),
            Err(Error::UnauthorizedClient(_))
        ));
    }

    #[test]
    fn tampered_tokens_are_not_valid() {
        let (tenant, client, ring) = fixture(SigningAlg::ES256);
        let ctx = Signer {
            issuer: "i",
            tenant: &tenant,
            keyring: &ring,
            now: 1,
        };
        let t = cc(&ctx, &client, None, &[]).unwrap().access_token;
        let mut parts: Vec<&str> = t.split('.').collect();
        let forged = B64.encode(br#"{"iss":"i","sub":"root","exp":99999999999,"jti":"x"}"#);
        parts[1] = &forged;
        assert!(validate_access_token("i", &ring, &parts.join("."), 1).is_none());
        assert!(validate_access_token("i", &ring, "a.b", 1).is_none());
        assert!(validate_access_token("i", &ring, "", 1).is_none());
        // alg confusion: the same token with its header claiming another algorithm
        let hdr = B64.encode(br#"{"alg":"RS256","typ":"at+jwt","kid":"x"}"#);
        let t2 = format!("{hdr}.{}", t.split_once('.').unwrap().1);
        assert!(validate_access_token("i", &ring, &t2, 1).is_none());
    }
}
