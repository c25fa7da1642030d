//! An HTTP client for APIs that accept the profile's access token, refreshing it by itself.

use crate::cache::Cache;
use crate::error::{Error, Result};

/// Calls APIs as the person signed in with a profile: every request carries an access token
/// valid for at least [`Session::MARGIN`] seconds, refreshed through the cache (and its lock)
/// when it would expire sooner.
#[derive(Clone, Debug)]
pub struct Session {
    cache: Cache,
    profile: String,
    http: reqwest::Client,
}

impl Session {
    /// Seconds an access token must still be valid for to be sent.
    pub const MARGIN: i64 = 60;

    /// A session on the cached sign-in of `profile`.
    pub fn new(cache: Cache, profile: &str) -> Result<Session> {
        crate::cache::check_profile_name(profile)?;
        Ok(Session {
            cache,
            profile: profile.to_owned(),
            http: crate::client::http_client()?,
        })
    }

    /// A current access token (refreshed first if it expires within [`Session::MARGIN`]).
    pub async fn access_token(&self) -> Result<String> {
        Ok(self
            .cache
            .fresh_credentials(&self.profile, Self::MARGIN)
            .await?
            .tokens
            .access_token)
    }

    /// A request to `url` with `Authorization: Bearer` and a current token.
    pub async fn request(&self, method: reqwest::Method, url: &str) -> Result<reqwest::RequestBuilder> {
        let token = self.access_token().await?;
        Ok(self.http.request(method, url).bearer_auth(token))
    }

    /// `GET url` as the person; the answer whatever its status (see [`Session::send`]).
    pub async fn get(&self, url: &str) -> Result<reqwest::Response> {
        self.send(reqwest::Method::GET, url, |r| r).await
    }

    /// Sends `method url`, shaped by `build` (body, headers), as the person: with a current
    /// access token, and once more with a refreshed one when the server answers 401 (the token
    /// was revoked, or the server's clock runs ahead). The answer whatever its status.
    pub async fn send(
        &self,
        method: reqwest::Method,
        url: &str,
        build: impl Fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response> {
        let token = self.access_token().await?;
        let first = build(self.http.request(method.clone(), url).bearer_auth(&token))
            .send()
            .await
            .map_err(|e| crate::error::from_reqwest(url, e))?;
        if first.status() != reqwest::StatusCode::UNAUTHORIZED {
            return Ok(first);
        }
        let (cache, profile) = (self.cache.clone(), self.profile.clone());
        // Marks nothing when another process already replaced the token: its successor is used.
        tokio::task::spawn_blocking(move || cache.expire_access_token(&profile, Some(&token)))
            .await
            .map_err(|e| Error::Invalid(format!("waiting for the cache lock failed: {e}")))??;
        let token = self.access_token().await?;
        build(self.http.request(method, url).bearer_auth(token))
            .send()
            .await
            .map_err(|e| crate::error::from_reqwest(url, e))
    }

    /// The person's userinfo claims.
    pub async fn userinfo(&self) -> Result<serde_json::Value> {
        let credentials = self.cache.fresh_credentials(&self.profile, Self::MARGIN).await?;
        let client = crate::Client::discover(&credentials.issuer, &credentials.client_id).await?;
        client
            .userinfo(&credentials.tokens.access_token)
            .await
            .map_err(|e| match e {
                Error::OAuth { error, .. } if error == "invalid_token" => Error::SignInEnded {
                    profile: self.profile.clone(),
                    why: "the issuer no longer accepts the access token".into(),
                },
                e => e,
            })
    }
}

// ---------------------------------------------------------------------------------------------
// Delegated sessions (`/t/{tenant}/sessions` of the profile's issuer), as the signed-in person

impl Session {
    /// `{issuer}/sessions` of the profile's cached sign-in.
    fn sessions_url(&self) -> Result<String> {
        let credentials = self
            .cache
            .credentials(&self.profile)?
            .ok_or_else(|| Error::NotSignedIn {
                profile: self.profile.clone(),
            })?;
        Ok(format!("{}/sessions", credentials.issuer.trim_end_matches('/')))
    }

    /// Lends the person's access to the job client `client_id`: the new session's id and its
    /// one-time nonce (with `scope`, `expires_at`, ...), as the issuer answered them.
    pub async fn create_delegated_session(
        &self,
        client_id: &str,
        scope: Option<&str>,
        ttl: Option<i64>,
    ) -> Result<serde_json::Value> {
        let url = self.sessions_url()?;
        let mut form = vec![("client_id", client_id.to_owned())];
        if let Some(s) = scope {
            form.push(("scope", s.to_owned()));
        }
        if let Some(t) = ttl {
            form.push(("ttl", t.to_string()));
        }
        let resp = self.send(reqwest::Method::POST, &url, |r| r.form(&form)).await?;
        answer(&url, resp).await
    }

    /// The person's delegated sessions that have not ended (`{"sessions": [...]}`).
    pub async fn delegated_sessions(&self) -> Result<serde_json::Value> {
        let url = self.sessions_url()?;
        let resp = self.get(&url).await?;
        answer(&url, resp).await
    }

    /// Revokes one of the person's delegated sessions (and its child).
    pub async fn revoke_delegated_session(&self, id: &str) -> Result<()> {
        let base = self.sessions_url()?;
        let mut url = reqwest::Url::parse(&base).map_err(|e| Error::Invalid(format!("{base}: {e}")))?;
        url.path_segments_mut()
            .map_err(|_| Error::Invalid(format!("{base} cannot have a path")))?
            .push(id);
        let url = url.to_string();
        let resp = self.send(reqwest::Method::DELETE, &url, |r| r).await?;
        answer(&url, resp).await.map(drop)
    }
}

/// A JSON answer (or none, for 204), or the server's error object as [`Error::Api`].
async fn answer(url: &str, resp: reqwest::Response) -> Result<serde_json::Value> {
    let status = resp.status();
    let body = resp
        .bytes()
        .await
        .map_err(|e| crate::error::from_reqwest(url, e))?;
    let json: Option<serde_json::Value> = serde_json::from_slice(&body).ok();
    if status.is_success() {
        return Ok(json.unwrap_or(serde_json::Value::Null));
    }
    let field = |name: &str| json.as_ref().and_then(|v| v[name].as_str()).map(str::to_owned);
    Err(Error::Api {
        status: status.as_u16(),
        error: field("error").unwrap_or_else(|| format!("HTTP {status}")),
        description: field("error_description"),
    })
}
