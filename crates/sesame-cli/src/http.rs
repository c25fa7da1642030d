//! Sends one admin request and turns the answer into JSON or a `Failure` with the message the
//! user sees.

use crate::api::{Method, Request};
use crate::output::clean;
use crate::Failure;
use reqwest::{StatusCode, Url};
use serde_json::Value;
use std::time::Duration;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Generous: creating a tenant or rotating keys generates RSA keys on the server.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

pub struct Admin {
    http: reqwest::Client,
    base: Url,
    /// The `--url` as the user wrote it, for messages.
    shown: String,
    token: String,
}

impl Admin {
    pub fn new(base: Url, shown: &str, token: String) -> Result<Self, Failure> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("sesame-cli/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            // A redirected POST turns into a GET and the admin API never redirects, so a
            // redirect means a wrong --url; say so instead of following it.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Failure(format!("cannot set up the HTTP client: {}", causes(&e))))?;
        Ok(Admin {
            http,
            base,
            shown: clean(shown),
            token,
        })
    }

    /// `Ok(None)` for an answer without a body (204).
    pub async fn send(&self, req: &Request) -> Result<Option<Value>, Failure> {
        let url = endpoint(&self.base, &req.path);
        let method = match req.method {
            Method::Get => reqwest::Method::GET,
            Method::Post => reqwest::Method::POST,
            Method::Put => reqwest::Method::PUT,
            Method::Patch => reqwest::Method::PATCH,
            Method::Delete => reqwest::Method::DELETE,
        };
        let mut builder = self.http.request(method, url).bearer_auth(&self.token);
        builder = match &req.body {
            Some(body) => builder.json(body),
            // RFC 9110 §8.6: a POST without content still says so, which some proxies insist on.
            None if req.method == Method::Post => builder.header(reqwest::header::CONTENT_LENGTH, "0"),
            None => builder,
        };
        let unreachable = |e: reqwest::Error, doing: &str| {
            let cause = if e.is_timeout() {
                "timed out".to_string()
            } else {
                causes(&e)
            };
            Failure(format!("{doing} {}: {cause}", self.shown))
        };
        let response = builder
            .send()
            .await
            .map_err(|e| unreachable(e, "cannot reach the Sesame server at"))?;
        let status = response.status();
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response
            .bytes()
            .await
            .map_err(|e| unreachable(e, "lost the connection to the Sesame server at"))?;
        interpret(status, location.as_deref(), &body)
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
    Ok(parsed)
}

/// `{base}/admin/v1/{path...}`; each segment is percent-encoded, and a path in the base URL (a
/// server behind a reverse proxy under a prefix) is kept.
pub fn endpoint(base: &Url, path: &[String]) -> Url {
    let mut url = base.clone();
    if let Ok(mut segments) = url.path_segments_mut() {
        segments.pop_if_empty().extend(["admin", "v1"]).extend(path);
    }
    url
}

pub fn interpret(status: StatusCode, location: Option<&str>, body: &[u8]) -> Result<Option<Value>, Failure> {
    if status.is_success() {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        return serde_json::from_slice(body).map(Some).map_err(|e| {
            Failure(format!(
                "the server answered {status} with a body that is not JSON: {e}"
            ))
        });
    }
    if let Ok(Value::Object(obj)) = serde_json::from_slice::<Value>(body) {
        if let Some(error) = obj.get("error").and_then(Value::as_str) {
            return Err(match obj.get("error_description").and_then(Value::as_str) {
                Some(d) if !d.is_empty() => Failure(format!("{}: {}", clean(error), clean(d))),
                _ => Failure(clean(error)),
            });
        }
    }
    if status.is_redirection() {
        let to = location.map(|l| format!(" to {}", clean(l))).unwrap_or_default();
        return Err(Failure(format!(
            "the server answered {status} (a redirect{to}); is --url the address of the Sesame server?"
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
        Err(Failure(format!("the server answered {status}")))
    } else {
        Err(Failure(format!(
            "the server answered {status}: {}",
            clean(&snippet)
        )))
    }
}

/// reqwest's own message repeats the URL and says only "error sending request"; the innermost
/// cause ("Connection refused", "dns error", a TLS failure) is the useful part.
fn causes(e: &reqwest::Error) -> String {
    let mut cause: &dyn std::error::Error = e;
    while let Some(inner) = cause.source() {
        cause = inner;
    }
    clean(&cause.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn path(p: &[&str]) -> Vec<String> {
        p.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn endpoints_keep_a_base_path_and_encode_segments() {
        let base = base_url("http://127.0.0.1:8080").expect("valid");
        assert_eq!(
            endpoint(&base, &path(&["tenants"])).as_str(),
            "http://127.0.0.1:8080/admin/v1/tenants"
        );
        let base = base_url("https://example.com/sesame/").expect("valid");
        assert_eq!(
            endpoint(&base, &path(&["tenants", "a/b?c#d%", "clients"])).as_str(),
            "https://example.com/sesame/admin/v1/tenants/a%2Fb%3Fc%23d%25/clients"
        );
    }

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
    }

    #[test]
    fn success_answers() {
        assert_eq!(interpret(StatusCode::NO_CONTENT, None, b"").expect("ok"), None);
        assert_eq!(
            interpret(StatusCode::CREATED, None, br#"{"id":"a"}"#).expect("ok"),
            Some(json!({"id": "a"}))
        );
        assert!(interpret(StatusCode::OK, None, b"<html>").is_err());
    }

    #[test]
    fn error_objects_become_error_colon_description() {
        let body = br#"{"error":"not_found","error_description":"tenant 'x' does not exist"}"#;
        let err = interpret(StatusCode::NOT_FOUND, None, body).expect_err("error");
        assert_eq!(err.0, "not_found: tenant 'x' does not exist");
        let err =
            interpret(StatusCode::UNAUTHORIZED, None, br#"{"error":"unauthorized"}"#).expect_err("error");
        assert_eq!(err.0, "unauthorized");
    }

    #[test]
    fn other_errors_name_the_status() {
        let err = interpret(
            StatusCode::BAD_GATEWAY,
            None,
            b"\n<h1>502 Bad Gateway</h1>\n<p>nginx",
        )
        .expect_err("error");
        assert_eq!(
            err.0,
            "the server answered 502 Bad Gateway: <h1>502 Bad Gateway</h1>"
        );
        let err = interpret(StatusCode::INTERNAL_SERVER_ERROR, None, b"").expect_err("error");
        assert_eq!(err.0, "the server answered 500 Internal Server Error");
        let err = interpret(
            StatusCode::MOVED_PERMANENTLY,
            Some("https://h/admin/v1/tenants"),
            b"",
        )
        .expect_err("error");
        assert!(
            err.0.contains("redirect to https://h/admin/v1/tenants"),
            "{}",
            err.0
        );
    }
}
