//! The records Sesame keeps: tenants, clients, signing keys. Every record names its tenant.

use crate::ids::{ClientId, TenantId, UserId, Username};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Longest access-token lifetime a tenant or client may configure. Retired signing keys stay
/// published for this long plus a margin, so every token they signed can still be verified.
pub const MAX_ACCESS_TOKEN_TTL: i64 = 24 * 3600;
pub const DEFAULT_ACCESS_TOKEN_TTL: i64 = 3600;
pub const DEFAULT_SESSION_TTL: i64 = 24 * 3600;
/// Refresh tokens slide: each rotation starts this lifetime again.
pub const DEFAULT_REFRESH_TOKEN_TTL: i64 = 7 * 24 * 3600;
const MAX_SESSION_TTL: i64 = 30 * 24 * 3600;
const MAX_REFRESH_TOKEN_TTL: i64 = 365 * 24 * 3600;

/// JWS algorithms Sesame signs with (RFC 7518 §3.1, RFC 8037 §3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SigningAlg {
    RS256,
    ES256,
    EdDSA,
}

impl SigningAlg {
    pub const ALL: [SigningAlg; 3] = [SigningAlg::RS256, SigningAlg::ES256, SigningAlg::EdDSA];

    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlg::RS256 => "RS256",
            SigningAlg::ES256 => "ES256",
            SigningAlg::EdDSA => "EdDSA",
        }
    }
}

impl FromStr for SigningAlg {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "RS256" => Ok(SigningAlg::RS256),
            "ES256" => Ok(SigningAlg::ES256),
            "EdDSA" => Ok(SigningAlg::EdDSA),
            other => Err(Error::InvalidRequest(format!(
                "signing algorithm '{}' is not supported (RS256, ES256, EdDSA)",
                other.escape_debug()
            ))),
        }
    }
}

impl fmt::Display for SigningAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// RFC 6749 §2.1 client types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientType {
    Confidential,
    Public,
}

impl ClientType {
    pub fn as_str(self) -> &'static str {
        match self {
            ClientType::Confidential => "confidential",
            ClientType::Public => "public",
        }
    }
}

impl FromStr for ClientType {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "confidential" => Ok(ClientType::Confidential),
            "public" => Ok(ClientType::Public),
            other => Err(Error::InvalidRequest(format!(
                "client type '{}' is not valid (confidential, public)",
                other.escape_debug()
            ))),
        }
    }
}

/// Grant types a client may be allowed, named as in RFC 7591 §2. Only the grants this build
/// implements are listed, so that a client can never be configured for a grant Sesame would not
/// honour. `implicit` is the opt-in for the `token` and `id_token` response types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum GrantType {
    #[serde(rename = "authorization_code")]
    AuthorizationCode,
    #[serde(rename = "implicit")]
    Implicit,
    #[serde(rename = "refresh_token")]
    RefreshToken,
    #[serde(rename = "client_credentials")]
    ClientCredentials,
    /// RFC 8628 §3.4. `device_code` is accepted as a short alias when configuring a client.
    #[serde(
        rename = "urn:ietf:params:oauth:grant-type:device_code",
        alias = "device_code"
    )]
    DeviceCode,
    /// RFC 8693 §2.1.
    #[serde(rename = "urn:ietf:params:oauth:grant-type:token-exchange")]
    TokenExchange,
    /// A source's workload token (`workload::WORKLOAD_TOKEN_GRANT`).
    #[serde(rename = "urn:sesame:params:oauth:grant-type:workload-token")]
    WorkloadToken,
    /// Binding a delegated session's nonce (`sessions::SESSION_NONCE_GRANT`).
    #[serde(rename = "urn:sesame:params:oauth:grant-type:session-nonce")]
    SessionNonce,
    /// A delegated session's fresh access token (`sessions::SESSION_KEY_GRANT`).
    #[serde(rename = "urn:sesame:params:oauth:grant-type:session-key")]
    SessionKey,
}

impl GrantType {
    pub const ALL: [GrantType; 9] = [
        GrantType::AuthorizationCode,
        GrantType::Implicit,
        GrantType::RefreshToken,
        GrantType::ClientCredentials,
        GrantType::DeviceCode,
        GrantType::TokenExchange,
        GrantType::WorkloadToken,
        GrantType::SessionNonce,
        GrantType::SessionKey,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            GrantType::AuthorizationCode => "authorization_code",
            GrantType::Implicit => "implicit",
            GrantType::RefreshToken => "refresh_token",
            GrantType::ClientCredentials => "client_credentials",
            GrantType::DeviceCode => crate::device::GRANT_TYPE,
            GrantType::TokenExchange => "urn:ietf:params:oauth:grant-type:token-exchange",
            GrantType::WorkloadToken => crate::workload::WORKLOAD_TOKEN_GRANT,
            GrantType::SessionNonce => crate::sessions::SESSION_NONCE_GRANT,
            GrantType::SessionKey => crate::sessions::SESSION_KEY_GRANT,
        }
    }
}

impl FromStr for GrantType {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        if s == "device_code" {
            return Ok(GrantType::DeviceCode);
        }
        GrantType::ALL
            .into_iter()
            .find(|g| g.as_str() == s)
            .ok_or_else(|| {
                Error::InvalidRequest(format!(
                    "grant type '{}' is not supported ({})",
                    s.escape_debug(),
                    GrantType::ALL.map(|g| g.as_str()).join(", ")
                ))
            })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tenant {
    pub id: TenantId,
    pub display_name: String,
    pub disabled: bool,
    /// The algorithm for clients that do not choose their own.
    pub signing_alg: SigningAlg,
    pub access_token_ttl: i64,
    /// How long a browser session lasts after sign-in.
    pub session_ttl: i64,
    /// A refresh token's lifetime, started again at each rotation.
    pub refresh_token_ttl: i64,
    /// Shown on the sign-in pages beside the display name (an https URL).
    pub logo_url: Option<String>,
    pub created_at: i64,
}

impl Tenant {
    pub fn new(id: TenantId, now: i64) -> Self {
        Tenant {
            display_name: id.as_str().to_owned(),
            id,
            disabled: false,
            signing_alg: SigningAlg::RS256,
            access_token_ttl: DEFAULT_ACCESS_TOKEN_TTL,
            session_ttl: DEFAULT_SESSION_TTL,
            refresh_token_ttl: DEFAULT_REFRESH_TOKEN_TTL,
            logo_url: None,
            created_at: now,
        }
    }

    pub fn validate(&self) -> Result<()> {
        validate_ttl("access_token_ttl", self.access_token_ttl)?;
        for (field, ttl, max) in [
            ("session_ttl", self.session_ttl, MAX_SESSION_TTL),
            ("refresh_token_ttl", self.refresh_token_ttl, MAX_REFRESH_TOKEN_TTL),
        ] {
            if !(60..=max).contains(&ttl) {
                return Err(Error::InvalidRequest(format!(
                    "{field} must be between 60 and {max} seconds, not {ttl}"
                )));
            }
        }
        if self.display_name.chars().count() > 200 {
            return Err(Error::invalid_request(
                "display_name is longer than 200 characters",
            ));
        }
        if let Some(logo) = &self.logo_url {
            validate_http_url("logo_url", logo)?;
        }
        Ok(())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Client {
    pub tenant_id: TenantId,
    pub client_id: ClientId,
    pub name: String,
    pub client_type: ClientType,
    /// SHA-256 of the secret; `None` for public clients.
    #[serde(skip)]
    pub secret_hash: Option<[u8; 32]>,
    pub grant_types: Vec<GrantType>,
    /// Compared exactly (RFC 6749 §3.1.2.3), except the port of a loopback redirect of a
    /// public client (RFC 8252 §7.3).
    pub redirect_uris: Vec<String>,
    /// Where RP-initiated logout may return to (OpenID RP-Initiated Logout §3), compared exactly.
    pub post_logout_redirect_uris: Vec<String>,
    /// PKCE (RFC 7636) on every authorization request. Always on for public clients.
    pub require_pkce: bool,
    /// Skips the consent page: for the tenant's own applications.
    pub first_party: bool,
    /// Issues a refresh token with every authorization code, not only for `offline_access`.
    pub refresh_without_offline_access: bool,
    /// Where Sesame POSTs a logout token when a browser session this client signed in with
    /// ends (OpenID Connect Back-Channel Logout 1.0 §2.8).
    pub backchannel_logout_uri: Option<String>,
    pub allowed_scopes: Vec<String>,
    pub allowed_audiences: Vec<String>,
    /// Overrides the tenant's algorithm for this client's tokens.
    pub signing_alg: Option<SigningAlg>,
    /// Overrides the tenant's access-token lifetime for this client.
    pub access_token_ttl: Option<i64>,
    /// May introspect tokens issued to other clients (a resource server, RFC 7662 §4). Without
    /// it, introspection answers only for tokens issued to this client or naming it in `aud`.
    pub introspect_any: bool,
    /// `private_key_jwt` (RFC 7523 §2.2): the client's public keys as a JWKS document (JSON
    /// text). A client with keys (here or at `jwks_uri`) authenticates with signed assertions
    /// and has no secret.
    #[serde(default)]
    pub jwks: Option<String>,
    /// `private_key_jwt` with keys fetched from this URL (OpenID Connect Registration §2).
    #[serde(default)]
    pub jwks_uri: Option<String>,
    /// `private_key_jwt` with an outside token (a Kubernetes service-account token, a CI
    /// system's OIDC token): the name of the tenant's trust policy such a token must satisfy.
    /// The client names itself with `client_id` (RFC 7521 §4.2); it has no secret and no keys.
    #[serde(default)]
    pub trust_policy: Option<String>,
    /// May exchange a person's access token for one that names no actor (RFC 8693 §1.1
    /// impersonation); without it, token exchange of a person's token needs an actor token.
    #[serde(default)]
    pub token_exchange_impersonation: bool,
    pub disabled: bool,
    /// Access tokens of this client issued before this time (`iat`) are no longer honoured:
    /// it starts at creation (a client created again with the same id does not revive the
    /// first one's tokens) and moves past the moment the client is disabled (re-enabling does
    /// not revive them). The store sets it; it is not part of the admin API.
    #[serde(skip)]
    pub revoked_before: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Client {
    /// Whether the client authenticates with `private_key_jwt` (it has keys, or a trust
    /// policy for outside tokens, instead of a secret).
    pub fn uses_private_key_jwt(&self) -> bool {
        self.jwks.is_some() || self.jwks_uri.is_some() || self.trust_policy.is_some()
    }

    /// RFC 7591 §2 `token_endpoint_auth_method`, as the client's configuration implies it.
    pub fn token_endpoint_auth_method(&self) -> &'static str {
        if self.uses_private_key_jwt() {
            "private_key_jwt"
        } else if self.client_type == ClientType::Public {
            "none"
        } else {
            "client_secret_basic"
        }
    }

    /// Checks what a client may be configured with, whoever configures it (admin API or config).
    pub fn validate(&self) -> Result<()> {
        if self.jwks.is_some() && self.jwks_uri.is_some() {
            return Err(Error::invalid_request("a client has jwks or jwks_uri, not both"));
        }
        if self.trust_policy.is_some() && (self.jwks.is_some() || self.jwks_uri.is_some()) {
            return Err(Error::invalid_request(
                "a client with a trust_policy has no keys of its own (jwks, jwks_uri): the policy's issuer signs its assertions",
            ));
        }
        if self.trust_policy.is_some()
            && (self.client_type != ClientType::Confidential || self.secret_hash.is_some())
        {
            return Err(Error::invalid_request(
                "a client with a trust_policy is confidential and has no secret: it authenticates with the outside tokens the policy trusts",
            ));
        }
        if let Some(name) = &self.trust_policy {
            crate::trust::validate_policy_name(name)?;
        }
        if self.uses_private_key_jwt() {
            if self.client_type != ClientType::Confidential || self.secret_hash.is_some() {
                return Err(Error::invalid_request(
                    "a client with keys (private_key_jwt) is confidential and has no secret",
                ));
            }
            if let Some(jwks) = &self.jwks {
                crate::trust::OutsideJwks::parse(jwks.as_bytes())
                    .map_err(|e| Error::InvalidRequest(format!("jwks: {e}")))?;
            }
            if let Some(uri) = &self.jwks_uri {
                crate::trust::validate_key_url("jwks_uri", uri)?;
            }
        }
        match (self.client_type, &self.secret_hash) {
            (ClientType::Confidential, None) if !self.uses_private_key_jwt() => {
                return Err(Error::invalid_request("a confidential client needs a secret"))
            }
            (ClientType::Public, Some(_)) => {
                return Err(Error::invalid_request("a public client has no secret"))
            }
            _ => {}
        }
        // RFC 6749 §4.4: client credentials are for confidential clients only; so are the
        // workload and delegated-session grants, which act without a person present.
        if self.client_type == ClientType::Public
            && self.grant_types.iter().any(|g| {
                matches!(
                    g,
                    GrantType::ClientCredentials
                        | GrantType::WorkloadToken
                        | GrantType::SessionNonce
                        | GrantType::SessionKey
                )
            })
        {
            return Err(Error::invalid_request(
                "a public client cannot use the client_credentials grant (nor the workload-token and session grants)",
            ));
        }
        // RFC 8693 §2.1: the exchanging client authenticates, so it is confidential.
        if self.client_type == ClientType::Public && self.grant_types.contains(&GrantType::TokenExchange) {
            return Err(Error::invalid_request(
                "a public client cannot use the token exchange grant",
            ));
        }
        if self.name.chars().count() > 200 {
            return Err(Error::invalid_request("name is longer than 200 characters"));
        }
        for uri in self.redirect_uris.iter().chain(&self.post_logout_redirect_uris) {
            validate_redirect_uri(uri)?;
        }
        if let Some(uri) = &self.backchannel_logout_uri {
            validate_http_url("backchannel_logout_uri", uri)?;
            // Back-Channel Logout §2.2: no fragment.
            if uri.contains('#') {
                return Err(Error::invalid_request(
                    "backchannel_logout_uri must not contain a fragment",
                ));
            }
        }
        if self.client_type == ClientType::Public && !self.require_pkce {
            return Err(Error::invalid_request("a public client must use PKCE"));
        }
        for scope in &self.allowed_scopes {
            validate_scope_token(scope)?;
        }
        for aud in &self.allowed_audiences {
            if aud.is_empty() || aud.len() > 512 || aud.chars().any(|c| c.is_control() || c == ' ') {
                return Err(Error::InvalidRequest(format!(
                    "audience '{}' is not valid: 1 to 512 printable characters without spaces",
                    aud.escape_debug()
                )));
            }
        }
        if let Some(ttl) = self.access_token_ttl {
            validate_ttl("access_token_ttl", ttl)?;
        }
        Ok(())
    }
}

fn validate_ttl(field: &str, ttl: i64) -> Result<()> {
    if !(1..=MAX_ACCESS_TOKEN_TTL).contains(&ttl) {
        return Err(Error::InvalidRequest(format!(
            "{field} must be between 1 and {MAX_ACCESS_TOKEN_TTL} seconds, not {ttl}"
        )));
    }
    Ok(())
}

/// RFC 6749 §3.3: `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`.
pub fn validate_scope_token(s: &str) -> Result<()> {
    let ok = !s.is_empty()
        && s.len() <= 256
        && s.bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidRequest(format!(
            "scope '{}' is not a valid scope token",
            s.escape_debug()
        )))
    }
}

/// RFC 6749 §3.1.2: an absolute URI without a fragment. Stored and later compared exactly.
fn validate_redirect_uri(uri: &str) -> Result<()> {
    let bad = |why: &str| {
        Err(Error::InvalidRequest(format!(
            "redirect URI '{}' {why}",
            uri.escape_debug()
        )))
    };
    let Some((scheme, rest)) = uri.split_once(':') else {
        return bad("is not an absolute URI");
    };
    let scheme_ok = scheme.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !scheme_ok || rest.is_empty() {
        return bad("is not an absolute URI");
    }
    if uri.contains('#') {
        return bad("must not contain a fragment");
    }
    if uri.len() > 2000 || uri.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad("is too long or contains spaces");
    }
    if (scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https"))
        && !rest.starts_with("//")
    {
        return bad("has no host");
    }
    Ok(())
}

fn validate_http_url(field: &str, url: &str) -> Result<()> {
    let ok = (url.starts_with("https://") || url.starts_with("http://"))
        && url.len() <= 2000
        && !url
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '"' | '<' | '>'));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidRequest(format!(
            "{field} '{}' is not an http(s) URL",
            url.escape_debug()
        )))
    }
}

/// A person with a local account in a tenant. External identities (brokered SSO) will attach
/// to `id` in a table of their own, so a user can gain them without changing this record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub tenant_id: TenantId,
    pub id: UserId,
    pub username: Username,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
    pub picture: Option<String>,
    pub disabled: bool,
    /// Argon2id PHC string; `None` for an account that cannot sign in with a password.
    #[serde(skip)]
    pub password_hash: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl User {
    pub fn validate(&self) -> Result<()> {
        if let Some(email) = &self.email {
            let ok = email.len() <= 254
                && email.matches('@').count() == 1
                && !email.starts_with('@')
                && !email.ends_with('@')
                && !email.chars().any(|c| c.is_whitespace() || c.is_control());
            if !ok {
                return Err(Error::InvalidRequest(format!(
                    "email '{}' is not an address",
                    email.escape_debug()
                )));
            }
        }
        if let Some(name) = &self.name {
            if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
                return Err(Error::invalid_request(
                    "name must be 1 to 200 printable characters",
                ));
            }
        }
        if let Some(picture) = &self.picture {
            validate_http_url("picture", picture)?;
        }
        Ok(())
    }
}

/// A person's sign-in at the tenant's pages, kept server-side so every replica sees it. The
/// browser holds only the cookie secret; the store holds its SHA-256.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrowserSession {
    pub tenant_id: TenantId,
    /// Public handle for listing and revoking; not the cookie.
    pub id: String,
    #[serde(skip)]
    pub secret_hash: [u8; 32],
    pub user_id: UserId,
    /// When the person last proved who they are (OpenID Connect `auth_time`).
    pub auth_time: i64,
    /// RFC 8176 authentication method references, such as `pwd`.
    pub amr: Vec<String>,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
}

/// An issued authorization code (RFC 6749 §4.1.2), stored by the SHA-256 of the code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthorizationCode {
    pub tenant_id: TenantId,
    pub code_hash: [u8; 32],
    /// Every token issued from this code, and from the refresh tokens that follow, shares it;
    /// a replayed code or refresh token revokes them all.
    pub grant_id: String,
    pub client_id: ClientId,
    pub user_id: UserId,
    pub session_id: String,
    pub redirect_uri: String,
    /// Space-separated granted scopes.
    pub scope: String,
    pub nonce: Option<String>,
    /// RFC 7636 S256 challenge.
    pub code_challenge: Option<String>,
    pub auth_time: i64,
    pub amr: Vec<String>,
    pub created_at: i64,
    pub expires_at: i64,
    /// Set once, when the code is redeemed, with the access token it was redeemed for.
    pub redeemed_at: Option<i64>,
    pub access_jti: Option<String>,
    pub access_exp: Option<i64>,
}

/// An opaque refresh token, stored by its SHA-256.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefreshToken {
    pub tenant_id: TenantId,
    pub token_hash: [u8; 32],
    pub grant_id: String,
    pub client_id: ClientId,
    pub user_id: UserId,
    pub scope: String,
    pub auth_time: i64,
    pub amr: Vec<String>,
    pub created_at: i64,
    pub expires_at: i64,
    /// The access token issued together with this refresh token, revoked with the grant.
    pub access_jti: Option<String>,
    pub access_exp: Option<i64>,
    /// Set once, when the token is exchanged for its successor.
    pub rotated_at: Option<i64>,
    /// The token response that carried the successor, sealed with the master key: a retry of
    /// the same exchange inside the grace window gets that same answer.
    pub successor_response: Option<Vec<u8>>,
}

/// An access token issued at the authorization endpoint (implicit flow), noted under a grant of
/// its own so that it is revoked with the user's or the client's grants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImplicitGrant {
    pub tenant_id: TenantId,
    pub grant_id: String,
    pub client_id: ClientId,
    pub user_id: UserId,
    pub access_jti: String,
    pub access_exp: i64,
}

/// A person's consent to a client for a set of scopes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consent {
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub client_id: ClientId,
    pub scopes: Vec<String>,
    pub granted_at: i64,
}

/// Failed sign-ins counted under one key (an account or a client address).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoginFailures {
    pub count: i64,
    pub last_failed_at: i64,
}

/// One key a sign-in attempt is counted under (`user:…` or `ip:…`), with the failures it
/// allows before delays start (see `login::retry_after`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoginLimit<'a> {
    pub key: &'a str,
    pub free: i64,
}

/// What `Store::count_login_attempt` decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoginAttempt {
    /// The attempt may go ahead and is counted as a failure under every key until it is known
    /// to have succeeded.
    Counted,
    /// A key must wait this many seconds more; nothing was counted.
    Throttled { retry_after: i64 },
}

/// Where a signing key is in its life (see `keys`): published before it signs, published
/// after it stops signing until every token it signed has expired.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    /// Published in the JWKS, not yet signing.
    Next,
    /// Signing (one per tenant and algorithm).
    Active,
    /// No longer signing; published until `publish_until`.
    Retired,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Next => "next",
            KeyState::Active => "active",
            KeyState::Retired => "retired",
        }
    }
}

impl FromStr for KeyState {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "next" => Ok(KeyState::Next),
            "active" => Ok(KeyState::Active),
            "retired" => Ok(KeyState::Retired),
            other => Err(Error::Store(format!("unknown key state '{other}'"))),
        }
    }
}

/// A signing key as stored: the private key sealed with the master key.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredKey {
    pub tenant_id: TenantId,
    pub kid: String,
    pub alg: SigningAlg,
    pub state: KeyState,
    /// AEAD-sealed PKCS#8 (see `crypto::MasterKey`).
    pub sealed_private_key: Vec<u8>,
    /// The public JWK, as published.
    pub public_jwk: String,
    pub created_at: i64,
    pub activated_at: Option<i64>,
    pub publish_until: Option<i64>,
}

impl fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredKey")
            .field("tenant_id", &self.tenant_id)
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("state", &self.state)
            .field("sealed_private_key", &"<sealed>")
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris_must_be_absolute_without_fragment() {
        assert!(validate_redirect_uri("https://app.example/cb").is_ok());
        assert!(validate_redirect_uri("com.example.app:/cb").is_ok());
        assert!(validate_redirect_uri("/cb").is_err());
        assert!(validate_redirect_uri("https://app.example/cb#x").is_err());
        assert!(validate_redirect_uri("https:app").is_err());
        assert!(validate_redirect_uri("https://a b").is_err());
    }

    #[test]
    fn scope_tokens_follow_rfc6749() {
        assert!(validate_scope_token("read:all").is_ok());
        assert!(validate_scope_token("a\"b").is_err());
        assert!(validate_scope_token("a\\b").is_err());
        assert!(validate_scope_token("").is_err());
    }
}
