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
use axum::http::{header, HeaderMap, HeaderName, HeaderValue};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};

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
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        let ip = client_address(
            peer,
            &parts.headers,
            app.client_address_header.as_ref(),
            &app.trusted_proxies,
        );
        Ok(Browser {
            session_secret: cookie(&parts.headers, SESSION_COOKIE),
            csrf_cookie: cookie(&parts.headers, CSRF_COOKIE),
            user_agent: parts
                .headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            ip: ip.map(|ip| ip.to_string()),
        })
    }
}

/// An address or a CIDR range from `trusted_proxies`, such as `10.0.0.0/8` or `::1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddressRange {
    addr: IpAddr,
    prefix: u32,
}

impl AddressRange {
    /// Parses `ADDRESS` or `ADDRESS/PREFIX`; the error names the entry.
    pub fn parse(text: &str) -> Result<AddressRange, String> {
        let bad = |why: &str| format!("'{}' {why}", text.escape_debug());
        let (addr, prefix) = match text.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text.trim(), None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| bad("is not an IP address or CIDR range (such as 10.0.0.0/8)"))?;
        let addr = addr.to_canonical();
        let bits = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => bits,
            Some(p) => p
                .parse::<u32>()
                .ok()
                .filter(|p| *p <= bits)
                .ok_or_else(|| bad(&format!("has a prefix length that is not 0 to {bits}")))?,
        };
        Ok(AddressRange { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        fn masked(bits: u128, prefix: u32, width: u32) -> u128 {
            if prefix == 0 {
                0
            } else {
                bits >> (width - prefix)
            }
        }
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                masked(u32::from(net).into(), self.prefix, 32)
                    == masked(u32::from(ip).into(), self.prefix, 32)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                masked(net.into(), self.prefix, 128) == masked(ip.into(), self.prefix, 128)
            }
            _ => false,
        }
    }
}

/// The client's address, for sign-in throttling: the TCP peer's, unless the peer is a trusted
/// proxy. Then `header` is read from the right (each proxy appends the address it saw, so
/// entries further left are anyone's to invent), past the addresses of trusted proxies, to the
/// first one that is not (RFC 7239 §5.2; the `X-Forwarded-For` convention). If every entry is
/// trusted, the left-most is the client; an entry that is not an address stops the walk at
/// the last hop that was believed.
pub fn client_address(
    peer: Option<IpAddr>,
    headers: &HeaderMap,
    header: Option<&HeaderName>,
    trusted: &[AddressRange],
) -> Option<IpAddr> {
    let peer = peer?.to_canonical();
    let is_trusted = |ip: IpAddr| trusted.iter().any(|r| r.contains(ip));
    let Some(name) = header.filter(|_| is_trusted(peer)) else {
        return Some(peer);
    };
    let mut client = peer;
    for value in headers.get_all(name).iter().rev() {
        let Ok(value) = value.to_str() else {
            return Some(client);
        };
        for entry in value.rsplit(',') {
            let Some(ip) = forwarded_address(entry) else {
                return Some(client);
            };
            client = ip;
            if !is_trusted(ip) {
                return Some(client);
            }
        }
    }
    Some(client)
}

/// One entry of `X-Forwarded-For` (`192.0.2.1`, `2001:db8::1`) or of RFC 7239 `Forwarded`
/// (`for=192.0.2.1:8080;proto=https`, `for="[2001:db8::1]:80"`); a port is dropped.
fn forwarded_address(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    let node = if entry.contains('=') {
        entry
            .split(';')
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("for"))?
            .1
            .trim()
            .trim_matches('"')
    } else {
        entry
    };
    if let Some(rest) = node.strip_prefix('[') {
        return rest
            .split_once(']')?
            .0
            .parse::<IpAddr>()
            .ok()
            .map(|ip| ip.to_canonical());
    }
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    // IPv4 with a port.
    let (host, port) = node.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    host.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
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
    fn trusted_proxies_parse_and_match() {
        let net = AddressRange::parse("10.0.0.0/8").unwrap();
        assert!(net.contains("10.200.1.2".parse().unwrap()));
        assert!(net.contains("::ffff:10.0.0.1".parse().unwrap()));
        assert!(!net.contains("11.0.0.1".parse().unwrap()));
        assert!(!net.contains("::1".parse().unwrap()));
        let one = AddressRange::parse("192.0.2.7").unwrap();
        assert!(one.contains("192.0.2.7".parse().unwrap()) && !one.contains("192.0.2.8".parse().unwrap()));
        let v6 = AddressRange::parse("2001:db8::/32").unwrap();
        assert!(v6.contains("2001:db8:1::5".parse().unwrap()) && !v6.contains("2001:db9::".parse().unwrap()));
        assert!(AddressRange::parse("0.0.0.0/0")
            .unwrap()
            .contains("203.0.113.1".parse().unwrap()));
        for bad in [
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/",
            "proxy.example",
            "10.0.0.0/8/8",
            "",
        ] {
            let err = AddressRange::parse(bad).unwrap_err();
            assert!(err.contains(&format!("'{bad}'")), "{err}");
        }
    }

    #[test]
    fn the_client_is_the_right_most_untrusted_address() {
        let name = HeaderName::from_static("x-forwarded-for");
        let trusted = [
            AddressRange::parse("127.0.0.1").unwrap(),
            AddressRange::parse("10.0.0.0/8").unwrap(),
        ];
        let at = |peer: &str, values: &[&str]| {
            let mut h = HeaderMap::new();
            for v in values {
                h.append(&name, HeaderValue::from_str(v).unwrap());
            }
            client_address(Some(peer.parse().unwrap()), &h, Some(&name), &trusted).map(|ip| ip.to_string())
        };
        let some = |s: &str| Some(s.to_owned());
        // An untrusted peer's header is not read at all.
        assert_eq!(at("198.51.100.9", &["1.2.3.4"]), some("198.51.100.9"));
        // Entries left of the first untrusted one (from the right) are the client's to invent.
        assert_eq!(
            at("127.0.0.1", &["6.6.6.6, 198.51.100.9, 10.1.1.1"]),
            some("198.51.100.9")
        );
        assert_eq!(
            at("127.0.0.1", &["6.6.6.6", "198.51.100.9", "10.1.1.1"]),
            some("198.51.100.9")
        );
        assert_eq!(at("::ffff:127.0.0.1", &["198.51.100.9"]), some("198.51.100.9"));
        // All trusted: the left-most.
        assert_eq!(at("127.0.0.1", &["10.0.0.5, 10.0.0.6"]), some("10.0.0.5"));
        // No header: the proxy itself.
        assert_eq!(at("127.0.0.1", &[]), some("127.0.0.1"));
        // Garbage stops at the last hop believed.
        assert_eq!(at("127.0.0.1", &["198.51.100.9, unknown"]), some("127.0.0.1"));
        assert_eq!(at("127.0.0.1", &["junk, 10.0.0.2"]), some("10.0.0.2"));
        // Forwarded (RFC 7239) and ports.
        assert_eq!(
            at(
                "127.0.0.1",
                &["for=6.6.6.6, for=\"[2001:db8::1]:443\";proto=https, for=10.0.0.2:80"]
            ),
            some("2001:db8::1")
        );
        assert_eq!(at("127.0.0.1", &["198.51.100.9:5555"]), some("198.51.100.9"));
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
