//! A client of Sesame's admin API (`/admin/v1`, docs/admin-api.md): one authenticated JSON
//! request at a time, with the same HTTP set-up and the same error sorting (unreachable, TLS,
//! timeout) as the rest of this crate.

use crate::error::{clean, from_reqwest, Error, Result};
use reqwest::{StatusCode, Url};
use serde_json::Value;
use std::time::Duration;

/// Generous: creating a tenant or rotating keys generates RSA keys on the server.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(60);

/// Sends admin API requests to one server with one admin token. `Debug` does not show the
/// token.
#[derive(Clone)]
pub struct AdminClient {
    http: reqwest::Client,
    base: Url,
    token: String,
}

impl std::fmt::Debug for AdminClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminClient")
            .field("base", &self.base.as_str())
            .finish_non_exhaustive()
    }
}

impl AdminClient {
    /// A client of the server at `base` (its public or admin listener; a path in it, for a
    /// server behind a reverse proxy under a prefix, is kept).
    pub fn new(base: Url, token: &str) -> Result<AdminClient> {
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(Error::Invalid(format!(
                "{} is not an http(s) URL",
                clean(base.as_str())
            )));
        }
        Ok(AdminClient {
            http: crate::client::http_client_with_timeout(ADMIN_TIMEOUT)?,
            base,
            token: token.to_owned(),
        })
    }

    /// `{base}/admin/v1/{path...}`, each segment percent-encoded on its own.
    pub fn endpoint(&self, path: &[String]) -> Url {
        endpoint(&self.base, path)
    }

    /// Sends `method` to `/admin/v1/{path...}` with `body` as JSON. The answer's JSON, or
    /// `None` for an answer without a body (204). An error object from the server is
    /// [`Error::Api`]; an answer that is not one (a proxy's page, a redirect) is
    /// [`Error::Protocol`] with the status and the start of the body.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &[String],
        body: Option<&Value>,
    ) -> Result<Option<Value>> {
        self.send_to(method, self.endpoint(path), body).await
    }

    /// A GET of `/admin/v1/{path...}?{query}` (the audit log's filters and cursor).
    pub async fn get_with_query(&self, path: &[String], query: &[(&str, String)]) -> Result<Option<Value>> {
        let mut url = self.endpoint(path);
        if !query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        self.send_to(reqwest::Method::GET, url, None).await
    }

    async fn send_to(
        &self,
        method: reqwest::Method,
        url: Url,
        body: Option<&Value>,
    ) -> Result<Option<Value>> {
        let shown = url.to_string();
        let post = method == reqwest::Method::POST;
        let mut request = self.http.request(method, url).bearer_auth(&self.token);
        request = match body {
            Some(body) => request.json(body),
            // RFC 9110 §8.6: a POST without content still says so, which some proxies insist on.
            None if post => request.header(reqwest::header::CONTENT_LENGTH, "0"),
            None => request,
        };
        let response = request.send().await.map_err(|e| from_reqwest(&shown, e))?;
        let status = response.status();
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response.bytes().await.map_err(|e| from_reqwest(&shown, e))?;
        interpret(&shown, status, location.as_deref(), &body)
    }
}

/// `{base}/admin/v1/{path...}`, each segment percent-encoded on its own, a path in `base` kept.
pub fn endpoint(base: &Url, path: &[String]) -> Url {
    let mut url = base.clone();
    if let Ok(mut segments) = url.path_segments_mut() {
        segments.pop_if_empty().extend(["admin", "v1"]).extend(path);
    }
    url
}

/// An admin API answer as JSON or as the error it reports.
fn interpret(url: &str, status: StatusCode, location: Option<&str>, body: &[u8]) -> Result<Option<Value>> {
    let protocol = |problem: String| Error::Protocol {
        url: url.to_owned(),
        problem,
    };
    if status.is_success() {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        return serde_json::from_slice(body)
            .map(Some)
            .map_err(|e| protocol(format!("HTTP {status} with a body that is not JSON: {e}")));
    }
    if let Ok(Value::Object(obj)) = serde_json::from_slice::<Value>(body) {
        if let Some(error) = obj.get("error").and_then(Value::as_str) {
            return Err(Error::Api {
                status: status.as_u16(),
                error: clean(error),
                description: obj
                    .get("error_description")
                    .and_then(Value::as_str)
                    .filter(|d| !d.is_empty())
                    .map(clean),
            });
        }
    }
    if status.is_redirection() {
        let to = location.map(|l| format!(" to {}", clean(l))).unwrap_or_default();
        return Err(protocol(format!(
            "HTTP {status} (a redirect{to}); is this the address of the Sesame server?"
        )));
    }
    // Not an error object: probably a proxy in between. The start of its body often says why.
    let text = String::from_utf8_lossy(body);
    let snippet: String = text
        .trim()
        .lines()
        .next()
        .unwrap_or("")
        .chars()
        .take(200)
        .collect();
    if snippet.is_empty() {
        Err(protocol(format!("HTTP {status}")))
    } else {
        Err(protocol(format!("HTTP {status}: {}", clean(&snippet))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn path(p: &[&str]) -> Vec<String> {
        p.iter().map(|s| s.to_string()).collect()
    }

    const URL: &str = "http://h/admin/v1/tenants";

    #[test]
    fn endpoints_keep_a_base_path_and_encode_segments() {
        let base = Url::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!(
            endpoint(&base, &path(&["tenants"])).as_str(),
            "http://127.0.0.1:8080/admin/v1/tenants"
        );
        let base = Url::parse("https://example.com/sesame/").unwrap();
        assert_eq!(
            endpoint(&base, &path(&["tenants", "a/b?c#d%", "clients"])).as_str(),
            "https://example.com/sesame/admin/v1/tenants/a%2Fb%3Fc%23d%25/clients"
        );
        assert!(AdminClient::new(Url::parse("mailto:x@y").unwrap(), "t").is_err());
    }

    #[test]
    fn success_answers() {
        assert_eq!(interpret(URL, StatusCode::NO_CONTENT, None, b"").unwrap(), None);
        assert_eq!(
            interpret(URL, StatusCode::CREATED, None, br#"{"id":"a"}"#).unwrap(),
            Some(json!({"id": "a"}))
        );
        assert!(interpret(URL, StatusCode::OK, None, b"<html>").is_err());
    }

    #[test]
    fn error_objects_become_error_colon_description() {
        let body = br#"{"error":"not_found","error_description":"tenant 'x' does not exist"}"#;
        let err = interpret(URL, StatusCode::NOT_FOUND, None, body).unwrap_err();
        assert!(matches!(err, Error::Api { status: 404, .. }), "{err:?}");
        assert_eq!(err.to_string(), "not_found: tenant 'x' does not exist");
        let err = interpret(
            URL,
            StatusCode::UNAUTHORIZED,
            None,
            br#"{"error":"unauthorized"}"#,
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "unauthorized");
    }

    #[test]
    fn other_errors_name_the_status() {
        let err = interpret(
            URL,
            StatusCode::BAD_GATEWAY,
            None,
            b"\n<h1>502 Bad Gateway</h1>\n<p>nginx",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("unexpected answer from {URL}: HTTP 502 Bad Gateway: <h1>502 Bad Gateway</h1>")
        );
        let err = interpret(URL, StatusCode::INTERNAL_SERVER_ERROR, None, b"").unwrap_err();
        assert!(
            err.to_string().ends_with("HTTP 500 Internal Server Error"),
            "{err}"
        );
        let err = interpret(
            URL,
            StatusCode::MOVED_PERMANENTLY,
            Some("https://h/admin/v1/tenants"),
            b"",
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("redirect to https://h/admin/v1/tenants"),
            "{err}"
        );
    }
}
