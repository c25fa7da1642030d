//! Checks `--url` and sends one planned admin request through `sesame-client`'s
//! `AdminClient` (the one HTTP layer of the CLI), turning its error into the message the user
//! sees.

use crate::api::{Method, Request};
use crate::output::clean;
use crate::Failure;
use serde_json::Value;
use sesame_client::reqwest::{self, Url};
use sesame_client::AdminClient;

#[cfg(test)]
pub use sesame_client::admin::endpoint;

/// The admin API client of `sesame-client`, fed from a planned [`Request`].
pub struct Admin {
    client: AdminClient,
}

impl Admin {
    pub fn new(base: Url, _shown: &str, token: String) -> Result<Self, Failure> {
        let client = AdminClient::new(base, &token).map_err(|e| Failure(e.to_string()))?;
        Ok(Admin { client })
    }

    /// `Ok(None)` for an answer without a body (204).
    pub async fn send(&self, req: &Request) -> Result<Option<Value>, Failure> {
        let method = match req.method {
            Method::Get => reqwest::Method::GET,
            Method::Post => reqwest::Method::POST,
            Method::Put => reqwest::Method::PUT,
            Method::Patch => reqwest::Method::PATCH,
            Method::Delete => reqwest::Method::DELETE,
        };
        self.client
            .send(method, &req.path, req.body.as_ref())
            .await
            .map_err(|e| Failure(e.to_string()))
    }
}

/// The `--url` as given, checked early so that a typo is reported as such and not as a failure
/// to connect.
pub fn base_url(url: &str) -> Result<Url, Failure> {
    let bad = |why: String| Failure(format!("--url {}: {why}", clean(url)));
    let parsed = Url::parse(url).map_err(|e| bad(e.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(bad("must be an http:// or https:// URL".into()));
    }
    if parsed.cannot_be_a_base() || parsed.host().is_none() {
        return Err(bad("has no host".into()));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(bad("must not have a query or a fragment".into()));
    }
    // The issuer (`…/t/default`) is the URL people see most; the admin API is at the root.
    let path = parsed.path();
    if let Some(i) = path.find("/t/").filter(|_| !path.contains("/admin/")) {
        let mut root = parsed.clone();
        root.set_path(&path[..i]);
        let root = root.as_str().trim_end_matches('/').to_owned();
        return Err(bad(format!(
            "is a tenant's issuer, not the server: give the server's base URL, --url {}",
            clean(&root)
        )));
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_base_urls_are_refused() {
        for bad in [
            "127.0.0.1:8080",
            "ftp://h/",
            "mailto:x@y",
            "http://h/?q=1",
            "not a url",
        ] {
            assert!(base_url(bad).is_err(), "{bad}");
        }
        assert!(base_url("https://example.com/sesame/").is_ok());
        let err = base_url("http://127.0.0.1:8080/t/default").unwrap_err().0;
        assert!(
            err.contains("--url http://127.0.0.1:8080") && err.contains("issuer"),
            "{err}"
        );
        let err = base_url("https://id.example/sesame/t/acme/").unwrap_err().0;
        assert!(err.contains("--url https://id.example/sesame"), "{err}");
    }
}
