//! What the server knows about a browser: its cookies (session and CSRF), its address and
//! user agent; and the `Set-Cookie` values that change them.
//!
//! Cookies are scoped to the tenant's path (`/t/{tenant}`), so each tenant has its own
//! sessions. Both are `HttpOnly; SameSite=Lax`, and `Secure` when the server is served over
//! https. The CSRF token is the double-submit kind: a random value in a cookie that every
//! form repeats in a hidden field; a cross-site page can make the browser send the cookie
//! but cannot read it to fill in the field.

use crate::state::AppState;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use std::convert::Infallible;
use std::net::SocketAddr;

pub const SESSION_COOKIE: &str = "sesame_session";
pub const CSRF_COOKIE: &str = "sesame_csrf";

/// The request's browser-side facts.
pub struct Browser {
    pub session_secret: Option<String>,
    pub csrf_cookie: Option<String>,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
}

impl FromRequestParts<AppState> for Browser {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, Self::Rejection> {
        let forwarded = app.client_address_header.as_ref().and_then(|name| {
            // The proxy appends the address it saw; earlier entries are the client's to invent.
            let last = parts.headers.get_all(name).iter().next_back()?.to_str().ok()?;
            let addr = last.rsplit(',').next()?.trim();
            addr.parse::<std::net::IpAddr>().ok().map(|ip| ip.to_string())
        });
        Ok(Browser {
            session_secret: cookie(&parts.headers, SESSION_COOKIE),
            csrf_cookie: cookie(&parts.headers, CSRF_COOKIE),
            user_agent: parts
                .headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            ip: forwarded.or_else(|| {
                parts
                    .extensions
                    .get::<ConnectInfo<SocketAddr>>()
                    .map(|c| c.0.ip().to_string())
            }),
        })
    }
}

/// The value of cookie `name` (the first, if the browser sent several), if it looks like one
/// of ours: base64url only, so nothing odd is ever echoed or looked up.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
        .filter(|v| {
            (16..=128).contains(&v.len())
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// A new CSRF token.
pub fn new_csrf() -> String {
    B64.encode(sesame_core::crypto::random_bytes::<24>())
}

/// Whether a submitted form's token matches the browser's CSRF cookie (constant time).
pub fn csrf_ok(cookie: Option<&str>, submitted: Option<&str>) -> bool {
    match (cookie, submitted) {
        (Some(c), Some(s)) => subtle::ConstantTimeEq::ct_eq(c.as_bytes(), s.as_bytes()).into(),
        _ => false,
    }
}

/// Builds `Set-Cookie` values for one tenant.
pub struct CookieJar<'a> {
    pub path: &'a str,
    pub secure: bool,
}

impl CookieJar<'_> {
    /// A cookie that lives `max_age` seconds (or for the browser session if `None`).
    pub fn set(&self, name: &str, value: &str, max_age: Option<i64>) -> HeaderValue {
        let mut c = format!("{name}={value}; Path={}; HttpOnly; SameSite=Lax", self.path);
        if let Some(age) = max_age {
            c.push_str(&format!("; Max-Age={age}"));
        }
        if self.secure {
            c.push_str("; Secure");
        }
        HeaderValue::from_str(&c).expect("cookie values are base64url and paths are tenant names")
    }

    pub fn clear(&self, name: &str) -> HeaderValue {
        self.set(name, "", Some(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_read_strictly() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; sesame_session=abcdefghijklmnopqrstuvwx; sesame_csrf=bad value!"),
        );
        assert_eq!(
            cookie(&h, SESSION_COOKIE).as_deref(),
            Some("abcdefghijklmnopqrstuvwx")
        );
        assert_eq!(cookie(&h, CSRF_COOKIE), None);
        assert_eq!(cookie(&h, "missing"), None);
    }

    #[test]
    fn csrf_needs_both_halves_equal() {
        assert!(csrf_ok(Some("abc"), Some("abc")));
        assert!(!csrf_ok(Some("abc"), Some("abd")));
        assert!(!csrf_ok(None, Some("abc")));
        assert!(!csrf_ok(Some("abc"), None));
    }

    #[test]
    fn set_cookie_has_the_flags() {
        let jar = CookieJar {
            path: "/t/acme",
            secure: true,
        };
        let v = jar.set(SESSION_COOKIE, "xyz", Some(60));
        assert_eq!(
            v.to_str().unwrap(),
            "sesame_session=xyz; Path=/t/acme; HttpOnly; SameSite=Lax; Max-Age=60; Secure"
        );
        assert!(jar.clear(CSRF_COOKIE).to_str().unwrap().contains("Max-Age=0"));
    }
}
