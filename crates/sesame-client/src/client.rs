//! Discovery and the calls a client makes to the issuer: token exchange, refresh, client
//! credentials, userinfo, revocation.

use crate::error::{clean, from_reqwest, Error, Result};
use crate::tokens::TokenSet;
use reqwest::Url;
use serde::Deserialize;
use std::time::Duration;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Discovery documents and token answers are small; a larger answer is not one of them.
const MAX_BODY: usize = 1 << 20;

/// The parts of the issuer's discovery document this crate uses (RFC 8414 §2, OpenID Connect
/// Discovery 1.0 §3).
#[derive(Clone, Debug, Deserialize)]
#[non_exhaustive]
pub struct Metadata {
    /// The issuer identifier; equal to the URL the document was fetched for.
    pub issuer: String,
    /// Where the browser is sent to sign in.
    pub authorization_endpoint: String,
    /// Where codes and refresh tokens are exchanged.
    pub token_endpoint: String,
    /// OpenID Connect userinfo.
    #[serde(default)]
    pub userinfo_endpoint: Option<String>,
    /// RFC 7009 revocation.
    #[serde(default)]
    pub revocation_endpoint: Option<String>,
    /// RFC 8628 device authorization, where the issuer offers it.
    #[serde(default)]
    pub device_authorization_endpoint: Option<String>,
    /// RFC 9207: the issuer puts `iss` on every authorization response.
    #[serde(default)]
    pub authorization_response_iss_parameter_supported: bool,
    /// PKCE methods the issuer accepts.
    #[serde(default)]
    pub code_challenge_methods_supported: Vec<String>,
}

/// The client's credentials at the token endpoint.
#[derive(Clone)]
enum Auth {
    /// A public client (RFC 6749 §2.1): `client_id` in the body, PKCE instead of a secret.
    Public,
    /// `client_secret_basic` (RFC 6749 §2.3.1).
    Basic(String),
}

/// A client of one issuer: its discovery document, the client id (and secret, for a
/// confidential client) and an HTTP client.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    metadata: Metadata,
    client_id: String,
    auth: Auth,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("issuer", &self.metadata.issuer)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// An HTTP client with the timeouts and user agent this crate uses; it does not follow
/// redirects (no endpoint of the protocol redirects, so one means a wrong URL).
pub fn http_client() -> Result<reqwest::Client> {
    http_client_with_timeout(REQUEST_TIMEOUT)
}

/// [`http_client`] with another limit for a whole request (the admin API's key generation
/// takes longer than a token request).
pub(crate) fn http_client_with_timeout(timeout: Duration) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .user_agent(concat!("sesame-client/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| Error::Invalid(format!("cannot set up the HTTP client: {e}")))
}

/// Fetches and checks `{issuer}/.well-known/openid-configuration`. The document's `issuer`
/// must equal `issuer` exactly (RFC 8414 §3.3, OpenID Connect Discovery §4.3): otherwise
/// another server's endpoints could be substituted (a mix-up attack).
pub async fn discover(http: &reqwest::Client, issuer: &str) -> Result<Metadata> {
    let parsed =
        Url::parse(issuer).map_err(|e| Error::Invalid(format!("the issuer {issuer:?} is not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "https" | "http") || parsed.query().is_some() || parsed.fragment().is_some()
    {
        return Err(Error::Invalid(format!(
            "the issuer {issuer:?} must be an http(s) URL without query or fragment"
        )));
    }
    // OpenID Connect Discovery §4.1: a trailing slash is removed before the path is added.
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let response = http.get(&url).send().await.map_err(|e| from_reqwest(&url, e))?;
    let (status, body) = read(&url, response).await?;
    if !status.is_success() {
        return Err(Error::Protocol {
            url,
            problem: format!("HTTP {status}; is this the issuer URL Sesame prints for the tenant?"),
        });
    }
    let metadata: Metadata = serde_json::from_slice(&body).map_err(|e| Error::Protocol {
        url: url.clone(),
        problem: format!("not a discovery document: {e}"),
    })?;
    if metadata.issuer != issuer {
        return Err(Error::IssuerMismatch {
            expected: issuer.to_owned(),
            found: clean(&metadata.issuer),
        });
    }
    Ok(metadata)
}

impl Client {
    /// Discovers `issuer` and returns a public client (PKCE, no secret) called `client_id`.
    pub async fn discover(issuer: &str, client_id: &str) -> Result<Client> {
        let http = http_client()?;
        let metadata = discover(&http, issuer).await?;
        Ok(Client::new(http, metadata, client_id))
    }

    /// A public client of an issuer already discovered.
    pub fn new(http: reqwest::Client, metadata: Metadata, client_id: &str) -> Client {
        Client {
            http,
            metadata,
            client_id: client_id.to_owned(),
            auth: Auth::Public,
        }
    }

    /// The same client, confidential: it authenticates with `client_secret_basic`.
    pub fn with_secret(mut self, secret: &str) -> Client {
        self.auth = Auth::Basic(secret.to_owned());
        self
    }

    /// The issuer's discovery document.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// The issuer identifier.
    pub fn issuer(&self) -> &str {
        &self.metadata.issuer
    }

    /// The client id.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The HTTP client used for every call.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Redeems an authorization code (RFC 6749 §4.1.3) with its PKCE verifier (RFC 7636 §4.5).
    /// A wrong, expired, used or foreign code is [`Error::InvalidGrant`].
    pub async fn exchange_code(&self, code: &str, redirect_uri: &str, verifier: &str) -> Result<TokenSet> {
        self.token(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier),
        ])
        .await
    }

    /// Uses a refresh token (RFC 6749 §6). Sesame rotates it: the answer carries its successor,
    /// and the old one stops working after a short grace window.
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenSet> {
        self.token(&[("grant_type", "refresh_token"), ("refresh_token", refresh_token)])
            .await
    }

    /// Client credentials (RFC 6749 §4.4), for a confidential client.
    pub async fn client_credentials(&self, scopes: &[String]) -> Result<TokenSet> {
        if matches!(self.auth, Auth::Public) {
            return Err(Error::Invalid(
                "client credentials need a client secret (Client::with_secret)".into(),
            ));
        }
        let scope = scopes.join(" ");
        let mut form = vec![("grant_type", "client_credentials")];
        if !scope.is_empty() {
            form.push(("scope", &scope));
        }
        self.token(&form).await
    }

    /// The person behind `access_token`, from the userinfo endpoint (OpenID Connect Core §5.3).
    pub async fn userinfo(&self, access_token: &str) -> Result<serde_json::Value> {
        let Some(url) = self.metadata.userinfo_endpoint.clone() else {
            return Err(Error::Protocol {
                url: self.metadata.issuer.clone(),
                problem: "the issuer has no userinfo endpoint".into(),
            });
        };
        let response = self
            .http
            .get(&url)
            .bearer_auth(access_token)
            .send()
            .await
            .map_err(|e| from_reqwest(&url, e))?;
        let (status, body) = read(&url, response).await?;
        if status == reqwest::StatusCode::UNAUTHORIZED {
            return Err(Error::OAuth {
                error: "invalid_token".into(),
                description: Some("the access token was not accepted".into()),
            });
        }
        json(&url, status, &body)
    }

    /// Revokes a token (RFC 7009 §2.1); `hint` is `refresh_token` or `access_token`.
    /// Revoking a refresh token at Sesame ends the whole grant.
    pub async fn revoke(&self, token: &str, hint: &str) -> Result<()> {
        let Some(url) = self.metadata.revocation_endpoint.clone() else {
            return Err(Error::Protocol {
                url: self.metadata.issuer.clone(),
                problem: "the issuer has no revocation endpoint".into(),
            });
        };
        let (status, body) = self
            .post(&url, &[("token", token), ("token_type_hint", hint)])
            .await?;
        if status.is_success() {
            return Ok(());
        }
        Err(oauth_error(&url, status, &body))
    }

    pub(crate) async fn token(&self, form: &[(&str, &str)]) -> Result<TokenSet> {
        let url = self.metadata.token_endpoint.clone();
        let (status, body) = self.post(&url, form).await?;
        if !status.is_success() {
            return Err(oauth_error(&url, status, &body));
        }
        TokenSet::from_response(&body).map_err(|problem| Error::Protocol { url, problem })
    }

    pub(crate) async fn post(
        &self,
        url: &str,
        form: &[(&str, &str)],
    ) -> Result<(reqwest::StatusCode, Vec<u8>)> {
        let mut form = form.to_vec();
        let mut request = self.http.post(url);
        match &self.auth {
            Auth::Public => form.push(("client_id", &self.client_id)),
            // RFC 6749 §2.3.1: the id and secret are form-encoded before Basic.
            Auth::Basic(secret) => {
                let enc = |s: &str| form_encode(s);
                request = request.basic_auth(enc(&self.client_id), Some(enc(secret)));
            }
        }
        let response = request
            .form(&form)
            .send()
            .await
            .map_err(|e| from_reqwest(url, e))?;
        read(url, response).await
    }
}

fn form_encode(s: &str) -> String {
    // `application/x-www-form-urlencoded` of one value (RFC 6749 Appendix B).
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The status and at most [`MAX_BODY`] bytes of the body.
async fn read(url: &str, mut response: reqwest::Response) -> Result<(reqwest::StatusCode, Vec<u8>)> {
    let status = response.status();
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| from_reqwest(url, e))? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(Error::Protocol {
                url: url.to_owned(),
                problem: "the answer is larger than 1 MiB".into(),
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok((status, body))
}

fn json(url: &str, status: reqwest::StatusCode, body: &[u8]) -> Result<serde_json::Value> {
    if !status.is_success() {
        return Err(oauth_error(url, status, body));
    }
    serde_json::from_slice(body).map_err(|e| Error::Protocol {
        url: url.to_owned(),
        problem: format!("not JSON: {e}"),
    })
}

/// RFC 6749 §5.2: an error answer is a JSON object with `error` and maybe `error_description`.
pub(crate) fn oauth_error(url: &str, status: reqwest::StatusCode, body: &[u8]) -> Error {
    #[derive(Deserialize)]
    struct ErrorObject {
        error: String,
        error_description: Option<String>,
    }
    match serde_json::from_slice::<ErrorObject>(body) {
        Ok(e) => from_code(&e.error, e.error_description),
        Err(_) => Error::Protocol {
            url: url.to_owned(),
            problem: format!("HTTP {status} without an OAuth error object"),
        },
    }
}

/// The typed error for an OAuth `error` code.
pub(crate) fn from_code(error: &str, description: Option<String>) -> Error {
    match error {
        "invalid_grant" => Error::InvalidGrant(description),
        "access_denied" => Error::AccessDenied(description),
        // RFC 8628 §3.5.
        "expired_token" => Error::DeviceCodeExpired,
        other => Error::OAuth {
            error: clean(other),
            description,
        },
    }
}
