//! The upstream side of brokered SSO over OpenID Connect: Sesame as a relying party of a
//! tenant's IdP, through the `openidconnect` crate (ramosbugs). The crate does the protocol
//! checks of the ID token (signature against the IdP's JWKS, `iss`, `aud`, `azp`, `exp`,
//! `nonce`); this module adds what it leaves to its user: the HTTP client (no redirects,
//! short timeouts), the cache of discovery and JWKS with one refetch on an unknown `kid`,
//! the `iat` window, `private_key_jwt`, and userinfo merged under the ID token's `sub`.
//!
//! No decision about users is made here: the claims go to `sesame_core::federation`.

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreJsonWebKeySet, CoreJwsSigningAlgorithm, CoreProviderMetadata,
    CoreResponseType, CoreSubjectIdentifierType,
};
use openidconnect::{
    AsyncHttpClient, AuthType, AuthUrl, AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret,
    CsrfToken, EmptyAdditionalProviderMetadata, HttpRequest, HttpResponse, IssuerUrl, JsonWebKeySetUrl,
    Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, ResponseTypes, Scope,
    SignatureVerificationError, TokenResponse, TokenUrl, UserInfoUrl,
};
use serde_json::{Map, Value};
use sesame_core::crypto::MasterKey;
use sesame_core::federation::{
    OidcSettings, RecheckFailure, SsoConnection, UpstreamClientAuth, UpstreamRefreshed, UpstreamRefresher,
};
use sesame_core::ids::{ConnectionId, TenantId};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long discovery and JWKS answers are reused before asking again.
const METADATA_TTL: Duration = Duration::from_secs(300);
/// How far in the future an ID token's `iat` may be (clock skew), and how old it may be.
const IAT_SKEW: i64 = 60;
const IAT_MAX_AGE: i64 = 600;
/// Asymmetric algorithms only (the crate's default is RS256 alone); never HMAC, which would make
/// the client secret a signing key.
const ALLOWED_ALGS: [CoreJwsSigningAlgorithm; 7] = [
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512,
    CoreJwsSigningAlgorithm::RsaSsaPssSha256,
    CoreJwsSigningAlgorithm::EcdsaP256Sha256,
    CoreJwsSigningAlgorithm::EcdsaP384Sha384,
    CoreJwsSigningAlgorithm::EdDsa,
];
/// Upstream answers larger than this are refused.
const MAX_RESPONSE: usize = 256 * 1024;

/// Why the upstream part of a sign-in failed. Each maps to a page that says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The IdP could not be reached or answered something that is not HTTP/JSON.
    #[error("the identity provider is unreachable: {0}")]
    Unreachable(String),
    /// The IdP's token endpoint refused the code (e.g. `invalid_grant`, `invalid_client`).
    #[error("the identity provider refused the sign-in: {0}")]
    Refused(String),
    /// The ID token failed a check (signature, issuer, audience, expiry, nonce, …).
    #[error("the identity provider's ID token is not valid: {0}")]
    BadToken(String),
    /// The connection's settings cannot work (e.g. no token endpoint, no secret).
    #[error("the connection is misconfigured: {0}")]
    Misconfigured(String),
}

/// Sesame's HTTP client towards IdPs, as the `openidconnect` crate wants it.
///
/// Each request runs in a task of its own: the crate asks for a `Sync` future, which a task's
/// join handle is.
#[derive(Clone)]
pub struct UpstreamHttp(reqwest::Client);

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HttpError(String);

impl UpstreamHttp {
    pub fn new() -> UpstreamHttp {
        UpstreamHttp(
            reqwest::Client::builder()
                // The crate's advice: following redirects would let an IdP's answer point
                // Sesame's requests anywhere (SSRF).
                .redirect(reqwest::redirect::Policy::none())
                .connect_timeout(Duration::from_secs(5))
                .timeout(Duration::from_secs(10))
                .build()
                .expect("reqwest client builds"),
        )
    }
}

impl Default for UpstreamHttp {
    fn default() -> Self {
        Self::new()
    }
}

async fn send(http: reqwest::Client, request: HttpRequest) -> Result<HttpResponse, HttpError> {
    let req = reqwest::Request::try_from(request).map_err(|e| HttpError(e.to_string()))?;
    let resp = http.execute(req).await.map_err(|e| HttpError(e.to_string()))?;
    let mut builder = axum::http::Response::builder().status(resp.status());
    for (k, v) in resp.headers() {
        builder = builder.header(k, v);
    }
    let body = resp.bytes().await.map_err(|e| HttpError(e.to_string()))?;
    if body.len() > MAX_RESPONSE {
        return Err(HttpError("the answer is too large".into()));
    }
    builder.body(body.to_vec()).map_err(|e| HttpError(e.to_string()))
}

impl<'c> AsyncHttpClient<'c> for UpstreamHttp {
    type Error = HttpError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, HttpError>> + Send + Sync + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        let task = tokio::spawn(send(self.0.clone(), request));
        Box::pin(async move { task.await.map_err(|e| HttpError(e.to_string()))? })
    }
}

struct Cached {
    updated_at: i64,
    fetched: Instant,
    metadata: CoreProviderMetadata,
}

/// Discovery documents and JWKS of the connections, per process.
#[derive(Default)]
pub struct Upstreams {
    pub http: UpstreamHttp,
    cache: Mutex<HashMap<(TenantId, ConnectionId), Cached>>,
}

/// What the start of a sign-in hands to the browser's sealed cookie.
pub struct Started {
    pub url: String,
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
}

fn settings(conn: &SsoConnection) -> Result<&OidcSettings, UpstreamError> {
    conn.oidc
        .as_ref()
        .ok_or_else(|| UpstreamError::Misconfigured("not an OpenID Connect connection".into()))
}

fn misconfigured<E: std::fmt::Display>(field: &str) -> impl Fn(E) -> UpstreamError + '_ {
    move |e| UpstreamError::Misconfigured(format!("{field}: {e}"))
}

impl Upstreams {
    /// The IdP's metadata (with its JWKS): from the cache, discovery, or the connection's own
    /// endpoints.
    async fn metadata(&self, conn: &SsoConnection) -> Result<CoreProviderMetadata, UpstreamError> {
        let key = (conn.tenant_id.clone(), conn.id.clone());
        if let Some(c) = self.cache.lock().expect("cache lock").get(&key) {
            if c.updated_at == conn.updated_at && c.fetched.elapsed() < METADATA_TTL {
                return Ok(c.metadata.clone());
            }
        }
        let metadata = self.fetch_metadata(conn).await?;
        self.remember(conn, metadata.clone());
        Ok(metadata)
    }

    fn remember(&self, conn: &SsoConnection, metadata: CoreProviderMetadata) {
        let key = (conn.tenant_id.clone(), conn.id.clone());
        self.cache.lock().expect("cache lock").insert(
            key,
            Cached {
                updated_at: conn.updated_at,
                fetched: Instant::now(),
                metadata,
            },
        );
    }

    async fn fetch_metadata(&self, conn: &SsoConnection) -> Result<CoreProviderMetadata, UpstreamError> {
        let o = settings(conn)?;
        let issuer = IssuerUrl::new(o.issuer.clone()).map_err(misconfigured("issuer"))?;
        let mut metadata = if o.discovery {
            // The crate checks that the document's `issuer` is the one asked for.
            CoreProviderMetadata::discover_async(issuer, &self.http)
                .await
                .map_err(|e| UpstreamError::Unreachable(format!("discovery: {}", error_chain(&e))))?
        } else {
            let auth = o
                .authorization_endpoint
                .clone()
                .ok_or_else(|| UpstreamError::Misconfigured("no authorization_endpoint".into()))?;
            let jwks = o
                .jwks_uri
                .clone()
                .ok_or_else(|| UpstreamError::Misconfigured("no jwks_uri".into()))?;
            let m = CoreProviderMetadata::new(
                issuer,
                AuthUrl::new(auth).map_err(misconfigured("authorization_endpoint"))?,
                JsonWebKeySetUrl::new(jwks).map_err(misconfigured("jwks_uri"))?,
                vec![ResponseTypes::new(vec![CoreResponseType::Code])],
                vec![CoreSubjectIdentifierType::Public],
                Vec::new(),
                EmptyAdditionalProviderMetadata {},
            );
            let jwks = CoreJsonWebKeySet::fetch_async(m.jwks_uri(), &self.http)
                .await
                .map_err(|e| UpstreamError::Unreachable(format!("JWKS: {}", error_chain(&e))))?;
            m.set_jwks(jwks)
        };
        // Endpoints set by hand win over discovered ones.
        if let Some(t) = &o.token_endpoint {
            metadata = metadata.set_token_endpoint(Some(
                TokenUrl::new(t.clone()).map_err(misconfigured("token_endpoint"))?,
            ));
        }
        if let Some(u) = &o.userinfo_endpoint {
            metadata = metadata.set_userinfo_endpoint(Some(
                UserInfoUrl::new(u.clone()).map_err(misconfigured("userinfo_endpoint"))?,
            ));
        }
        Ok(metadata)
    }

    /// The authorization request (OIDC Core §3.1.2.1) with `state`, `nonce` and PKCE S256.
    pub async fn start(
        &self,
        conn: &SsoConnection,
        redirect_uri: &str,
        login_hint: Option<&str>,
    ) -> Result<Started, UpstreamError> {
        let o = settings(conn)?;
        let metadata = self.metadata(conn).await?;
        let client = CoreClient::from_provider_metadata(metadata, ClientId::new(o.client_id.clone()), None)
            .set_redirect_uri(
                RedirectUrl::new(redirect_uri.to_owned()).map_err(misconfigured("redirect_uri"))?,
            );
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut req = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .set_pkce_challenge(challenge);
        for s in o.scopes.iter().filter(|s| *s != "openid") {
            req = req.add_scope(Scope::new(s.clone()));
        }
        if let Some(hint) = login_hint {
            req = req.add_extra_param("login_hint", hint.to_owned());
        }
        let (url, state, nonce) = req.url();
        Ok(Started {
            url: url.to_string(),
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
        })
    }

    /// The callback's code exchanged and the ID token checked; returns the ID token's claims,
    /// merged with userinfo's when configured or when a mapped claim is missing, and the IdP's
    /// refresh token if it gave one.
    pub async fn finish(
        &self,
        master: &MasterKey,
        conn: &SsoConnection,
        redirect_uri: &str,
        code: &str,
        nonce: &str,
        pkce_verifier: &str,
    ) -> Result<Finished, UpstreamError> {
        let o = settings(conn)?;
        let mut metadata = self.metadata(conn).await?;
        let secret = conn
            .client_secret(master)
            .map_err(|_| UpstreamError::Misconfigured("the client secret does not open".into()))?;
        let client_id = ClientId::new(o.client_id.clone());
        let redirect = RedirectUrl::new(redirect_uri.to_owned()).map_err(misconfigured("redirect_uri"))?;
        let token_endpoint = metadata
            .token_endpoint()
            .map(|t| t.to_string())
            .ok_or_else(|| UpstreamError::Misconfigured("the IdP has no token endpoint".into()))?;
        let (auth_type, secret) = match o.client_auth {
            UpstreamClientAuth::ClientSecretBasic => (AuthType::BasicAuth, secret.map(ClientSecret::new)),
            UpstreamClientAuth::ClientSecretPost => (AuthType::RequestBody, secret.map(ClientSecret::new)),
            UpstreamClientAuth::PrivateKeyJwt => (AuthType::RequestBody, None),
        };
        let client = CoreClient::from_provider_metadata(metadata.clone(), client_id.clone(), secret.clone())
            .set_redirect_uri(redirect.clone())
            .set_auth_type(auth_type.clone());
        let mut exchange = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| UpstreamError::Misconfigured(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_owned()));
        if o.client_auth == UpstreamClientAuth::PrivateKeyJwt {
            // RFC 7523 §2.2.
            let assertion = conn
                .client_assertion(master, &token_endpoint, sesame_core::now())
                .map_err(|e| UpstreamError::Misconfigured(e.to_string()))?;
            exchange = exchange
                .add_extra_param(
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                )
                .add_extra_param("client_assertion", assertion);
        }
        let token = exchange.request_async(&self.http).await.map_err(|e| match e {
            openidconnect::RequestTokenError::ServerResponse(r) => UpstreamError::Refused(r.to_string()),
            other => UpstreamError::Unreachable(format!("token endpoint: {}", error_chain(&other))),
        })?;
        let id_token = token
            .id_token()
            .ok_or_else(|| UpstreamError::BadToken("the token response has no id_token".into()))?;
        let nonce = Nonce::new(nonce.to_owned());
        let now = sesame_core::now();
        let verify = |metadata: &CoreProviderMetadata| {
            let client =
                CoreClient::from_provider_metadata(metadata.clone(), client_id.clone(), secret.clone());
            let verifier = client
                .id_token_verifier()
                .set_allowed_algs(ALLOWED_ALGS)
                .set_issue_time_verifier_fn(move |iat| {
                    let iat = iat.timestamp();
                    if iat > now + IAT_SKEW {
                        Err(format!("iat {iat} is in the future"))
                    } else if iat < now - IAT_MAX_AGE {
                        Err(format!("iat {iat} is too old"))
                    } else {
                        Ok(())
                    }
                });
            id_token
                .claims(&verifier, &nonce)
                .map(|c| c.subject().to_string())
        };
        let subject = match verify(&metadata) {
            Ok(s) => s,
            // OIDC Core §10.1.1: the IdP may have rotated its keys; fetch the JWKS once more.
            Err(ClaimsVerificationError::SignatureVerification(
                SignatureVerificationError::NoMatchingKey,
            )) => {
                let jwks = CoreJsonWebKeySet::fetch_async(metadata.jwks_uri(), &self.http)
                    .await
                    .map_err(|e| UpstreamError::Unreachable(format!("JWKS: {}", error_chain(&e))))?;
                metadata = metadata.set_jwks(jwks);
                self.remember(conn, metadata.clone());
                verify(&metadata).map_err(|e| UpstreamError::BadToken(e.to_string()))?
            }
            Err(e) => return Err(UpstreamError::BadToken(e.to_string())),
        };
        // The signature checked out, so the payload can be read as it is: the mapped claims may
        // have any name, which the crate's typed claims do not carry.
        let mut claims = jwt_payload(id_token)?;
        let mapped_missing = [
            Some(&conn.claims.email),
            Some(&conn.claims.unique_id),
            conn.claims.groups.as_ref(),
        ]
        .into_iter()
        .flatten()
        .any(|name| !claims.contains_key(name.as_str()));
        if let (true, Some(userinfo)) = (o.userinfo || mapped_missing, metadata.userinfo_endpoint()) {
            let info = self
                .userinfo(userinfo.as_str(), token.access_token().secret())
                .await?;
            // OIDC Core §5.3.2: userinfo's `sub` must be the ID token's.
            if info.get("sub").and_then(Value::as_str) != Some(subject.as_str()) {
                return Err(UpstreamError::BadToken("userinfo names another subject".into()));
            }
            for (k, v) in info {
                claims.entry(k).or_insert(v);
            }
        }
        Ok(Finished {
            claims,
            refresh_token: token.refresh_token().map(|t| t.secret().clone()),
        })
    }

    async fn userinfo(&self, url: &str, access_token: &str) -> Result<Map<String, Value>, UpstreamError> {
        let unreachable = |e: reqwest::Error| UpstreamError::Unreachable(format!("userinfo: {e}"));
        let resp = self
            .http
            .0
            .get(url)
            .bearer_auth(access_token)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(unreachable)?;
        if !resp.status().is_success() {
            return Err(UpstreamError::Refused(format!(
                "userinfo answered {}",
                resp.status()
            )));
        }
        let body = resp.bytes().await.map_err(unreachable)?;
        serde_json::from_slice(&body)
            .map_err(|_| UpstreamError::Unreachable("userinfo is not a JSON object".into()))
    }
}

/// What a sign-in's callback got from the IdP.
pub struct Finished {
    /// The ID token's claims (with userinfo's, see [`Upstreams::finish`]).
    pub claims: Map<String, Value>,
    /// Kept (sealed) when the connection re-checks on refresh.
    pub refresh_token: Option<String>,
}

/// Re-check on refresh: the refresh-token grant (RFC 6749 §6) at the connection's IdP, with
/// the connection's client authentication. `invalid_grant` is a refusal (the person is gone or
/// disabled there, or the IdP ended the session); anything else leaves the Sesame grant alone.
#[async_trait::async_trait]
impl UpstreamRefresher for Upstreams {
    async fn refresh(
        &self,
        master: &MasterKey,
        conn: &SsoConnection,
        refresh_token: &str,
    ) -> Result<UpstreamRefreshed, RecheckFailure> {
        let unavailable = |e: UpstreamError| RecheckFailure::Unavailable(e.to_string());
        let o = settings(conn).map_err(unavailable)?;
        let metadata = self.metadata(conn).await.map_err(unavailable)?;
        let secret = conn
            .client_secret(master)
            .map_err(|_| RecheckFailure::Unavailable("the client secret does not open".into()))?;
        let token_endpoint = metadata
            .token_endpoint()
            .map(|t| t.to_string())
            .ok_or_else(|| RecheckFailure::Unavailable("the IdP has no token endpoint".into()))?;
        let (auth_type, secret) = match o.client_auth {
            UpstreamClientAuth::ClientSecretBasic => (AuthType::BasicAuth, secret.map(ClientSecret::new)),
            UpstreamClientAuth::ClientSecretPost => (AuthType::RequestBody, secret.map(ClientSecret::new)),
            UpstreamClientAuth::PrivateKeyJwt => (AuthType::RequestBody, None),
        };
        let client_id = ClientId::new(o.client_id.clone());
        let client = CoreClient::from_provider_metadata(metadata.clone(), client_id.clone(), secret.clone())
            .set_auth_type(auth_type);
        let presented = openidconnect::RefreshToken::new(refresh_token.to_owned());
        let mut exchange = client
            .exchange_refresh_token(&presented)
            .map_err(|e| RecheckFailure::Unavailable(e.to_string()))?;
        if o.client_auth == UpstreamClientAuth::PrivateKeyJwt {
            // RFC 7523 §2.2.
            let assertion = conn
                .client_assertion(master, &token_endpoint, sesame_core::now())
                .map_err(|e| RecheckFailure::Unavailable(e.to_string()))?;
            exchange = exchange
                .add_extra_param(
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                )
                .add_extra_param("client_assertion", assertion);
        }
        let token = exchange.request_async(&self.http).await.map_err(|e| match e {
            openidconnect::RequestTokenError::ServerResponse(r)
                if *r.error() == openidconnect::core::CoreErrorResponseType::InvalidGrant =>
            {
                RecheckFailure::Refused(r.to_string())
            }
            openidconnect::RequestTokenError::ServerResponse(r) => RecheckFailure::Unavailable(r.to_string()),
            other => RecheckFailure::Unavailable(format!("token endpoint: {}", error_chain(&other))),
        })?;
        // OIDC Core §12.2: a refreshed ID token must name the same person. Its signature is
        // checked as at sign-in; it carries no nonce.
        let mut subject = None;
        if let (Some(id_token), "sub") = (token.id_token(), conn.claims.unique_id.as_str()) {
            let verifier = client
                .id_token_verifier()
                .set_allowed_algs(ALLOWED_ALGS)
                .set_issue_time_verifier_fn(|_| Ok(()));
            let claims = id_token
                .claims(&verifier, |_: Option<&Nonce>| Ok(()))
                .map_err(|e| RecheckFailure::Unavailable(format!("refreshed ID token: {e}")))?;
            subject = Some(claims.subject().to_string());
        }
        Ok(UpstreamRefreshed {
            refresh_token: token.refresh_token().map(|t| t.secret().clone()),
            subject,
        })
    }
}

/// The (already verified) ID token's payload as JSON.
fn jwt_payload(id_token: &openidconnect::core::CoreIdToken) -> Result<Map<String, Value>, UpstreamError> {
    use base64::Engine;
    let raw = serde_json::to_value(id_token)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .ok_or_else(|| UpstreamError::BadToken("the ID token cannot be read".into()))?;
    raw.split('.')
        .nth(1)
        .and_then(|p| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(p).ok())
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| UpstreamError::BadToken("the ID token's payload is not JSON".into()))
}

/// An error and its sources on one line, for logs and for the operator's page detail.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
