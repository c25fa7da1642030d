//! The HTML pages a person sees: sign-in, consent, errors, sign-out, the out-of-band code page and
//! the form_post auto-submit page. Templates live in `templates/` and are compiled by askama, which
//! escapes every `{{ value }}` for HTML; user-controlled values are never marked `|safe`.
//!
//! Every page is answered with `no-store` and a strict Content-Security-Policy: no network access
//! at all except the tenant logo (`img-src`), the one stylesheet and, on the two pages that have
//! one, the one inline script, each allowed by its SHA-256 hash. Pages work without JavaScript.

use askama::Template;
use aws_lc_rs::digest;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use std::sync::LazyLock;

/// The stylesheet, inlined in every page's `<style>` and allowed by its hash.
pub(crate) const STYLE: &str = include_str!("../templates/style.css");
/// The Copy button of the `/oob` page.
pub(crate) const OOB_SCRIPT: &str = include_str!("../templates/oob.js");
/// Submits the form_post page's form.
pub(crate) const FORM_POST_SCRIPT: &str = include_str!("../templates/form_post.js");

static STYLE_HASH: LazyLock<String> = LazyLock::new(|| sha256_source(STYLE));
static OOB_SCRIPT_HASH: LazyLock<String> = LazyLock::new(|| sha256_source(OOB_SCRIPT));
static FORM_POST_SCRIPT_HASH: LazyLock<String> = LazyLock::new(|| sha256_source(FORM_POST_SCRIPT));

/// What every page shows at the top.
#[derive(Debug, Clone, Copy)]
pub struct Brand<'a> {
    pub tenant_name: &'a str,
    pub logo_url: Option<&'a str>,
}

#[derive(Debug, Clone, Copy)]
pub struct LoginView<'a> {
    /// URL the form POSTs to.
    pub action: &'a str,
    /// Hidden field `csrf`.
    pub csrf: &'a str,
    /// Opaque hidden field `request`, carried through unchanged.
    pub request: &'a str,
    /// "Sign in to continue to {client_name}".
    pub client_name: &'a str,
    /// Pre-filled `username` (login_hint or the last attempt).
    pub username: &'a str,
    /// Shown in an alert, e.g. "The username or password is incorrect."
    pub error: Option<&'a str>,
    /// One button per enabled brokered-SSO connection.
    pub sso: &'a [SsoButton],
    /// Whether the password form is shown (the tenant may turn it off when it has connections).
    pub passwords: bool,
}

/// A sign-in page button that starts a sign-in at an upstream IdP (a link: a form's redirect
/// to the IdP would be held to the page's `form-action`).
#[derive(Debug)]
pub struct SsoButton {
    pub href: String,
    pub text: String,
    pub image_url: Option<String>,
}

#[derive(Debug, Clone, Copy)]
pub struct ScopeView<'a> {
    pub name: &'a str,
    pub description: &'a str,
}

#[derive(Debug, Clone, Copy)]
pub struct ConsentView<'a> {
    pub action: &'a str,
    pub csrf: &'a str,
    pub request: &'a str,
    pub client_name: &'a str,
    pub username: &'a str,
    pub scopes: &'a [ScopeView<'a>],
}

#[derive(Debug, Clone, Copy)]
pub struct ErrorView<'a> {
    pub title: &'a str,
    /// Already a sentence for a person, never internals.
    pub message: &'a str,
}

/// "Sign out of {tenant}?"
#[derive(Debug, Clone, Copy)]
pub struct LogoutView<'a> {
    pub action: &'a str,
    pub csrf: &'a str,
    /// Extra hidden fields carried through, as (name, value).
    pub hidden: &'a [(&'a str, &'a str)],
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    brand: Option<&'a Brand<'a>>,
    v: &'a LoginView<'a>,
}

#[derive(Template)]
#[template(path = "consent.html")]
struct ConsentPage<'a> {
    brand: Option<&'a Brand<'a>>,
    v: &'a ConsentView<'a>,
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    brand: Option<&'a Brand<'a>>,
    v: &'a ErrorView<'a>,
}

#[derive(Template)]
#[template(path = "logout.html")]
struct LogoutPage<'a> {
    brand: Option<&'a Brand<'a>>,
    tenant: &'a str,
    v: &'a LogoutView<'a>,
}

#[derive(Template)]
#[template(path = "logged_out.html")]
struct LoggedOutPage<'a> {
    brand: Option<&'a Brand<'a>>,
    tenant: &'a str,
}

#[derive(Template)]
#[template(path = "oob.html")]
struct OobPage<'a> {
    brand: Option<&'a Brand<'a>>,
    code: Option<&'a str>,
    error: &'a str,
}

#[derive(Template)]
#[template(path = "form_post.html")]
struct FormPostPage<'a> {
    brand: Option<&'a Brand<'a>>,
    redirect_uri: &'a str,
    params: &'a [(String, String)],
}

/// The sign-in form. `form_action` lists where the form's submission may end up besides this
/// server (the client's redirect URI: the POST is answered with a 303 there, and Chromium holds
/// that redirect to CSP `form-action`). Each entry is an origin or a URL; only the origin (or, for
/// a native app's private-use scheme, the scheme) computed from it goes into the CSP.
pub fn login(brand: &Brand, view: &LoginView, form_action: &[&str]) -> Response {
    let page = LoginPage {
        brand: Some(brand),
        v: view,
    };
    respond(StatusCode::OK, page.render(), &csp(None, &self_and(form_action)))
}

/// The consent form: one form, `decision=allow` or `decision=deny`. `form_action` as for [`login`].
pub fn consent(brand: &Brand, view: &ConsentView, form_action: &[&str]) -> Response {
    let page = ConsentPage {
        brand: Some(brand),
        v: view,
    };
    respond(StatusCode::OK, page.render(), &csp(None, &self_and(form_action)))
}

/// An error for a person, with `status`. Without a tenant (`brand` None) the page has no header.
pub fn error(brand: Option<&Brand>, status: StatusCode, view: &ErrorView) -> Response {
    let page = ErrorPage { brand, v: view };
    respond(status, page.render(), &csp(None, "'none'"))
}

/// "Sign out of {tenant}?" `form_action` as for [`login`]: the sign-out POST may be answered
/// with a redirect to the client's post-logout redirect URI.
pub fn logout_confirm(brand: &Brand, view: &LogoutView, form_action: &[&str]) -> Response {
    let page = LogoutPage {
        brand: Some(brand),
        tenant: brand.tenant_name,
        v: view,
    };
    respond(StatusCode::OK, page.render(), &csp(None, &self_and(form_action)))
}

/// "You have signed out."
pub fn logged_out(brand: &Brand) -> Response {
    let page = LoggedOutPage {
        brand: Some(brand),
        tenant: brand.tenant_name,
    };
    respond(StatusCode::OK, page.render(), &csp(None, "'none'"))
}

/// `/oob`: shows an authorization code for a person to copy into a terminal, in a read-only,
/// selectable field, with a Copy button (progressive enhancement: a small inline script using
/// navigator.clipboard; without JS the field is still selectable and the button stays hidden).
/// If `code` is None, shows `error` (already a human sentence) instead.
pub fn oob(brand: &Brand, code: Option<&str>, error: Option<&str>) -> Response {
    let error = error.unwrap_or("The sign-in was not completed.");
    let page = OobPage {
        brand: Some(brand),
        code,
        error,
    };
    let script = code.is_some().then(|| OOB_SCRIPT_HASH.as_str());
    respond(StatusCode::OK, page.render(), &csp(script, "'none'"))
}

/// OAuth 2.0 Form Post Response Mode: a page whose form POSTs `params` to `redirect_uri`,
/// submitted by a tiny inline script, with a visible Continue button for no-JS.
pub fn form_post(redirect_uri: &str, params: &[(String, String)]) -> Response {
    let page = FormPostPage {
        brand: None,
        redirect_uri,
        params,
    };
    let target = form_action_source(redirect_uri).unwrap_or_else(|| {
        tracing::warn!("form_post: no CSP source can be computed from the redirect URI");
        "'none'".to_owned()
    });
    respond(
        StatusCode::OK,
        page.render(),
        &csp(Some(&FORM_POST_SCRIPT_HASH), &target),
    )
}

/// The SAML ACS's re-post page (`routes::saml::acs`): the form_post page, posting the IdP's
/// fields again to `acs` on Sesame's own origin, so that the SameSite=Lax cookie goes along.
/// Its CSP has no `form-action`: browsers hold the redirects that answer a form submission to
/// that directive too, and the ACS answers with a redirect to the client's redirect URI, which
/// this page cannot name (it is in the cookie that the cross-site POST lacked). The page's only
/// form is this fixed one, and its only script is allowed by hash.
pub fn saml_repost(acs: &str, params: &[(String, String)]) -> Response {
    let page = FormPostPage {
        brand: None,
        redirect_uri: acs,
        params,
    };
    let csp = format!(
        "default-src 'none'; style-src {}; img-src https: http: data:; script-src {}; \
         frame-ancestors 'none'; base-uri 'none'",
        *STYLE_HASH, *FORM_POST_SCRIPT_HASH
    );
    respond(StatusCode::OK, page.render(), &csp)
}

/// The `/device` page (RFC 8628 §3.3): the user code field, for a signed-in person.
#[derive(Debug, Clone, Copy)]
pub struct DeviceView<'a> {
    pub action: &'a str,
    pub csrf: &'a str,
    pub request: &'a str,
    pub username: &'a str,
    /// Prefilled from `verification_uri_complete`, or what was typed.
    pub user_code: &'a str,
    pub error: Option<&'a str>,
}

/// "Allow the device?": the client and the scopes a user code names, with Approve / Deny.
#[derive(Debug, Clone, Copy)]
pub struct DeviceConfirmView<'a> {
    pub action: &'a str,
    pub csrf: &'a str,
    pub request: &'a str,
    pub username: &'a str,
    pub user_code: &'a str,
    pub client_name: &'a str,
    pub scopes: &'a [ScopeView<'a>],
}

#[derive(Template)]
#[template(path = "device.html")]
struct DevicePage<'a> {
    brand: Option<&'a Brand<'a>>,
    v: &'a DeviceView<'a>,
}

#[derive(Template)]
#[template(path = "device_confirm.html")]
struct DeviceConfirmPage<'a> {
    brand: Option<&'a Brand<'a>>,
    v: &'a DeviceConfirmView<'a>,
}

#[derive(Template)]
#[template(path = "device_done.html")]
struct DeviceDonePage<'a> {
    brand: Option<&'a Brand<'a>>,
    title: &'a str,
    message: &'a str,
}

/// The user code form; its POST stays on this server.
pub fn device(brand: &Brand, status: StatusCode, view: &DeviceView) -> Response {
    let page = DevicePage {
        brand: Some(brand),
        v: view,
    };
    respond(status, page.render(), &csp(None, "'self'"))
}

/// The Approve / Deny form; its POST stays on this server.
pub fn device_confirm(brand: &Brand, view: &DeviceConfirmView) -> Response {
    let page = DeviceConfirmPage {
        brand: Some(brand),
        v: view,
    };
    respond(StatusCode::OK, page.render(), &csp(None, "'self'"))
}

/// What the decision did ("Device connected", "Request denied"), with no form.
pub fn device_done(brand: &Brand, title: &str, message: &str) -> Response {
    let page = DeviceDonePage {
        brand: Some(brand),
        title,
        message,
    };
    respond(StatusCode::OK, page.render(), &csp(None, "'none'"))
}

/// `scheme://host[:port]` of an `http`/`https` URL, lower-cased and without the default port;
/// None for anything else or anything malformed. The result is safe to put into a CSP: it holds
/// only ASCII letters, digits, `-`, `.`, `:`, `/`, `[` and `]`.
pub fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => 443,
        "http" => 80,
        _ => return None,
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    let (host, port) = if let Some(bracketed) = host_port.strip_prefix('[') {
        let (ip, after) = bracketed.split_once(']')?;
        let ip_ok = ip.contains(':')
            && ip
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
        if !ip_ok {
            return None;
        }
        let port = if after.is_empty() {
            None
        } else {
            Some(after.strip_prefix(':')?)
        };
        (format!("[{}]", ip.to_ascii_lowercase()), port)
    } else {
        let (host, port) = match host_port.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (host_port, None),
        };
        let host = host.strip_suffix('.').unwrap_or(host);
        let label_ok = |l: &str| {
            !l.is_empty()
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        };
        if !host.split('.').all(label_ok) {
            return None;
        }
        (host.to_ascii_lowercase(), port)
    };
    let port = match port {
        None | Some("") => None,
        Some(p) if p.bytes().all(|b| b.is_ascii_digit()) => Some(p.parse::<u16>().ok()?),
        Some(_) => return None,
    };
    Some(match port {
        Some(p) if p != default_port => format!("{scheme}://{host}:{p}"),
        _ => format!("{scheme}://{host}"),
    })
}

/// The CSP source that lets a form submission reach `url`: its origin for http(s), or its scheme
/// (`com.example.app:`) for a native app's private-use URI scheme (RFC 8252 §7.1). None for
/// garbage and for schemes that must never be allowed.
fn form_action_source(url: &str) -> Option<String> {
    if let Some(origin) = origin_of(url) {
        return Some(origin);
    }
    let (scheme, _) = url.split_once(':')?;
    let valid = scheme.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    let scheme = scheme.to_ascii_lowercase();
    let refused = [
        "http",
        "https",
        "javascript",
        "data",
        "blob",
        "filesystem",
        "file",
        "about",
        "ws",
        "wss",
    ];
    (valid && !refused.contains(&scheme.as_str())).then(|| format!("{scheme}:"))
}

/// `'self'` and the CSP sources computed from `extra`, without repeats.
fn self_and(extra: &[&str]) -> String {
    let mut sources = vec!["'self'".to_owned()];
    for url in extra {
        match form_action_source(url) {
            Some(s) if !sources.contains(&s) => sources.push(s),
            Some(_) => {}
            None => tracing::warn!("form-action: no CSP source can be computed from an entry; left out"),
        }
    }
    sources.join(" ")
}

/// `'sha256-…'` of `text`, as CSP wants it.
fn sha256_source(text: &str) -> String {
    let d = digest::digest(&digest::SHA256, text.as_bytes());
    format!("'sha256-{}'", STANDARD.encode(d.as_ref()))
}

fn csp(script: Option<&str>, form_action: &str) -> String {
    let script = script.map(|s| format!("script-src {s}; ")).unwrap_or_default();
    format!(
        "default-src 'none'; style-src {}; img-src https: http: data:; {script}\
         frame-ancestors 'none'; base-uri 'none'; form-action {form_action}",
        *STYLE_HASH
    )
}

fn respond(status: StatusCode, html: askama::Result<String>, csp: &str) -> Response {
    let html = match html {
        Ok(html) => html,
        Err(e) => return render_failed(&e),
    };
    let Ok(csp) = HeaderValue::from_str(csp) else {
        return render_failed(&"the Content-Security-Policy is not a valid header value");
    };
    let mut resp = (status, html).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CONTENT_SECURITY_POLICY, csp);
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    common_headers(h);
    resp
}

fn common_headers(h: &mut axum::http::HeaderMap) {
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
}

fn render_failed(e: &dyn std::fmt::Display) -> Response {
    tracing::error!(error = %e, "rendering an HTML page failed");
    let mut resp = (
        StatusCode::INTERNAL_SERVER_ERROR,
        "Sorry, this page could not be shown. Please try again later.",
    )
        .into_response();
    common_headers(resp.headers_mut());
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderMap;

    const BRAND: Brand<'static> = Brand {
        tenant_name: "Acme & Co",
        logo_url: None,
    };
    const EVIL: &str = "\"><script>alert(1)</script>";
    const EVIL_ESCAPED: &str = "&#34;&#62;&#60;script&#62;alert(1)&#60;/script&#62;";

    fn parts(resp: Response) -> (StatusCode, HeaderMap, String) {
        let status = resp.status();
        let headers = resp.headers().clone();
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let bytes = rt
            .block_on(axum::body::to_bytes(resp.into_body(), 1 << 20))
            .unwrap();
        (status, headers, String::from_utf8(bytes.to_vec()).unwrap())
    }

    fn header<'h>(h: &'h HeaderMap, name: &str) -> &'h str {
        h.get(name)
            .unwrap_or_else(|| panic!("no {name}"))
            .to_str()
            .unwrap()
    }

    fn assert_security_headers(h: &HeaderMap) {
        assert_eq!(header(h, "content-type"), "text/html; charset=utf-8");
        assert_eq!(header(h, "cache-control"), "no-store");
        assert_eq!(header(h, "pragma"), "no-cache");
        assert_eq!(header(h, "x-frame-options"), "DENY");
        assert_eq!(header(h, "x-content-type-options"), "nosniff");
        assert_eq!(header(h, "referrer-policy"), "no-referrer");
        let csp = header(h, "content-security-policy");
        assert!(csp.starts_with("default-src 'none'; style-src 'sha256-"), "{csp}");
        for part in [
            "img-src https: http: data:",
            "frame-ancestors 'none'",
            "base-uri 'none'",
        ] {
            assert!(csp.contains(part), "{csp}");
        }
    }

    /// The text between `open` and the next `close`.
    fn between<'b>(body: &'b str, open: &str, close: &str) -> &'b str {
        let start = body.find(open).unwrap_or_else(|| panic!("no {open}")) + open.len();
        let len = body[start..].find(close).unwrap();
        &body[start..start + len]
    }

    /// Every `<script` in the body is ours: no value broke out of its attribute.
    fn script_tags(body: &str) -> usize {
        body.matches("<script").count()
    }

    fn login_view<'a>(error: Option<&'a str>) -> LoginView<'a> {
        LoginView {
            action: "/t/acme/authorize/login",
            csrf: EVIL,
            request: "<script>req</script>",
            client_name: "<b>Evil</b> App",
            username: "al'ice\"",
            error,
            sso: &[],
            passwords: true,
        }
    }

    #[test]
    fn login_page_escapes_and_carries_fields() {
        let view = login_view(Some("The username or password is incorrect."));
        let (status, h, body) = parts(login(&BRAND, &view, &["https://app.example.com/cb"]));
        assert_eq!(status, StatusCode::OK);
        assert_security_headers(&h);
        let csp = header(&h, "content-security-policy");
        assert!(
            csp.ends_with("form-action 'self' https://app.example.com"),
            "{csp}"
        );
        assert!(!csp.contains("script-src"), "{csp}");

        assert!(body.contains(r#"<form method="post" action="/t/acme/authorize/login">"#));
        assert!(
            body.contains(&format!(r#"name="csrf" value="{EVIL_ESCAPED}""#)),
            "{body}"
        );
        assert!(body.contains(r#"name="request" value="&#60;script&#62;req&#60;/script&#62;""#));
        assert!(
            body.contains(r#"name="username" type="text" value="al&#39;ice&#34;""#),
            "{body}"
        );
        assert!(body.contains(r#"name="password" type="password" autocomplete="current-password""#));
        assert!(body.contains("to continue to <strong>&#60;b&#62;Evil&#60;/b&#62; App</strong>"));
        assert!(body.contains(r#"role="alert""#) && body.contains("The username or password is incorrect."));
        assert!(body.contains("Acme &#38; Co"), "tenant name in the header");
        assert_eq!(script_tags(&body), 0);
        assert!(!body.contains("<img"), "no logo when none is set");

        let (_, _, body) = parts(login(&BRAND, &login_view(None), &[]));
        assert!(!body.contains(r#"role="alert""#));
    }

    #[test]
    fn login_form_action_sources_are_computed_not_copied() {
        let extra = [
            "https://app.example.com",
            "https://APP.example.com:443/x",
            "http://127.0.0.1:8080/cb",
            "com.example.app:/oauth2redirect",
            "https://evil.example; script-src *",
            "javascript:alert(1)",
        ];
        let (_, h, _) = parts(login(&BRAND, &login_view(None), &extra));
        let csp = header(&h, "content-security-policy");
        assert!(
            csp.ends_with(
                "form-action 'self' https://app.example.com http://127.0.0.1:8080 com.example.app:"
            ),
            "{csp}"
        );
    }

    #[test]
    fn logo_shown_only_when_set() {
        let brand = Brand {
            tenant_name: "Acme",
            logo_url: Some("https://cdn.example.com/l.png?a=1&b=\"2"),
        };
        let (_, _, body) = parts(logged_out(&brand));
        assert!(
            body.contains(r#"<img src="https://cdn.example.com/l.png?a=1&#38;b=&#34;2" alt="">"#),
            "{body}"
        );
        let (_, _, body) = parts(logged_out(&BRAND));
        assert!(!body.contains("<img"));
    }

    #[test]
    fn consent_page() {
        let scopes = [
            ScopeView {
                name: "openid",
                description: "Confirm who you are",
            },
            ScopeView {
                name: "<email>",
                description: "See your <email> address",
            },
        ];
        let view = ConsentView {
            action: "/t/acme/authorize/consent",
            csrf: EVIL,
            request: "r<1>",
            client_name: "Photos & More",
            username: "<alice>",
            scopes: &scopes,
        };
        let (status, h, body) = parts(consent(&BRAND, &view, &["https://photos.example"]));
        assert_eq!(status, StatusCode::OK);
        assert_security_headers(&h);
        assert!(header(&h, "content-security-policy").ends_with("form-action 'self' https://photos.example"));
        assert_eq!(body.matches("<form").count(), 1);
        assert!(body.contains(r#"<button type="submit" name="decision" value="allow""#));
        assert!(body.contains(r#"<button type="submit" name="decision" value="deny""#));
        assert!(body.contains(&format!(r#"name="csrf" value="{EVIL_ESCAPED}""#)));
        assert!(body.contains(r#"name="request" value="r&#60;1&#62;""#));
        assert!(body.contains("See your &#60;email&#62; address <code>&#60;email&#62;</code>"));
        assert!(body.contains("Photos &#38; More") && body.contains("&#60;alice&#62;"));
        assert_eq!(script_tags(&body), 0);
    }

    #[test]
    fn error_page() {
        let view = ErrorView {
            title: "Link expired",
            message: "This <sign-in> link has expired.",
        };
        let (status, h, body) = parts(error(Some(&BRAND), StatusCode::BAD_REQUEST, &view));
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_security_headers(&h);
        assert!(header(&h, "content-security-policy").ends_with("form-action 'none'"));
        assert!(body.contains("<h1>Link expired</h1>"));
        assert!(body.contains("This &#60;sign-in&#62; link has expired."));
        assert!(body.contains("Acme &#38; Co"));

        let (status, _, body) = parts(error(None, StatusCode::NOT_FOUND, &view));
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(!body.contains("<header"));
    }

    #[test]
    fn logout_pages() {
        let hidden = [
            ("post_logout_redirect_uri", "https://rp.example/bye"),
            ("state", EVIL),
        ];
        let view = LogoutView {
            action: "/t/acme/logout",
            csrf: "c\"1",
            hidden: &hidden,
        };
        let (status, h, body) = parts(logout_confirm(&BRAND, &view, &["https://rp.example/bye"]));
        assert_eq!(status, StatusCode::OK);
        assert_security_headers(&h);
        assert!(header(&h, "content-security-policy").ends_with("form-action 'self' https://rp.example"));
        assert!(body.contains("Sign out of Acme &#38; Co?"));
        assert!(body.contains(r#"name="csrf" value="c&#34;1""#));
        assert!(body.contains(r#"name="post_logout_redirect_uri" value="https://rp.example/bye""#));
        assert!(body.contains(&format!(r#"name="state" value="{EVIL_ESCAPED}""#)));
        assert_eq!(script_tags(&body), 0);

        let (status, h, body) = parts(logged_out(&BRAND));
        assert_eq!(status, StatusCode::OK);
        assert_security_headers(&h);
        assert!(body.contains("You have signed out"));
    }

    #[test]
    fn oob_page() {
        let (status, h, body) = parts(oob(&BRAND, Some("abc<def>"), None));
        assert_eq!(status, StatusCode::OK);
        assert_security_headers(&h);
        let csp = header(&h, "content-security-policy");
        let script = between(&body, "<script>", "</script>");
        assert_eq!(script, OOB_SCRIPT);
        assert!(
            csp.contains(&format!("script-src {};", sha256_source(script))),
            "{csp}"
        );
        assert!(csp.ends_with("form-action 'none'"));
        assert!(body.contains(r#"value="abc&#60;def&#62;" readonly"#), "{body}");
        assert!(body.contains(r#"<button type="button" id="copy" hidden>Copy</button>"#));
        assert_eq!(script_tags(&body), 1);

        let (_, h, body) = parts(oob(&BRAND, None, Some("You said no to <App>.")));
        assert!(!header(&h, "content-security-policy").contains("script-src"));
        assert_eq!(script_tags(&body), 0);
        assert!(body.contains("You said no to &#60;App&#62;."));
        assert!(!body.contains(r#"id="code""#));
    }

    #[test]
    fn form_post_page() {
        let params = vec![
            ("code".to_owned(), "c<o>de".to_owned()),
            ("state".to_owned(), EVIL.to_owned()),
            ("submit".to_owned(), "x".to_owned()),
        ];
        let (status, h, body) = parts(form_post("https://App.example.com:8443/cb?x=1&y=2", &params));
        assert_eq!(status, StatusCode::OK);
        assert_security_headers(&h);
        let csp = header(&h, "content-security-policy");
        assert!(csp.ends_with("form-action https://app.example.com:8443"), "{csp}");
        let script = between(&body, "<script>", "</script>");
        assert_eq!(script, FORM_POST_SCRIPT);
        assert!(
            csp.contains(&format!("script-src {};", sha256_source(script))),
            "{csp}"
        );
        assert!(csp.contains("script-src 'sha256-"));
        assert!(body.contains(
            r#"<form id="form-post" method="post" action="https://App.example.com:8443/cb?x=1&#38;y=2">"#
        ));
        assert!(body.contains(r#"<input type="hidden" name="code" value="c&#60;o&#62;de">"#));
        assert!(body.contains(&format!(
            r#"<input type="hidden" name="state" value="{EVIL_ESCAPED}">"#
        )));
        assert!(body.contains(r#"<button type="submit" class="primary">Continue</button>"#));
        assert_eq!(script_tags(&body), 1);

        let (_, h, _) = parts(form_post("not a url", &params));
        assert!(header(&h, "content-security-policy").ends_with("form-action 'none'"));
    }

    #[test]
    fn style_hash_matches_the_style_in_the_body() {
        let view = ErrorView {
            title: "t",
            message: "m",
        };
        for resp in [
            login(&BRAND, &login_view(None), &[]),
            error(None, StatusCode::BAD_REQUEST, &view),
            oob(&BRAND, Some("x"), None),
            form_post("https://a.example/cb", &[]),
        ] {
            let (_, h, body) = parts(resp);
            let style = between(&body, "<style>", "</style>");
            assert!(style.contains("prefers-color-scheme"));
            let csp = header(&h, "content-security-policy");
            let expected = format!("style-src {};", sha256_source(style));
            assert!(csp.contains(&expected), "{csp} vs {expected}");
            assert_eq!(body.matches("<style").count(), 1);
        }
    }

    #[test]
    fn saml_repost_page_lets_the_acs_redirect_anywhere() {
        let params = vec![("SAMLResponse".to_owned(), EVIL.to_owned())];
        let acs = "https://id.example/t/acme/sso/corp/saml/acs";
        let (status, h, body) = parts(saml_repost(acs, &params));
        assert_eq!(status, StatusCode::OK);
        assert_security_headers(&h);
        let csp = header(&h, "content-security-policy");
        // The ACS's answer is a redirect to the client, and form-action would hold it.
        assert!(!csp.contains("form-action"), "{csp}");
        assert!(
            csp.contains(&format!("script-src {};", *FORM_POST_SCRIPT_HASH)),
            "{csp}"
        );
        assert!(csp.contains("default-src 'none'"), "{csp}");
        assert!(body.contains(acs), "{body}");
        assert!(body.contains(EVIL_ESCAPED) && !body.contains(EVIL), "{body}");
    }

    #[test]
    fn origins() {
        let cases = [
            ("https://app.example.com", Some("https://app.example.com")),
            (
                "https://app.example.com/cb?x=1#f",
                Some("https://app.example.com"),
            ),
            ("HTTPS://App.Example.COM/", Some("https://app.example.com")),
            ("https://app.example.com:443/cb", Some("https://app.example.com")),
            (
                "https://app.example.com:8443/cb",
                Some("https://app.example.com:8443"),
            ),
            ("http://localhost:8080/cb", Some("http://localhost:8080")),
            ("http://localhost:80", Some("http://localhost")),
            ("http://127.0.0.1:51234/", Some("http://127.0.0.1:51234")),
            ("http://[::1]:3000/cb", Some("http://[::1]:3000")),
            (
                "https://user:pw@app.example.com/",
                Some("https://app.example.com"),
            ),
            ("https://app.example.com?x", Some("https://app.example.com")),
            ("https://app.example.com:", Some("https://app.example.com")),
            ("https://app.example.com.", Some("https://app.example.com")),
            ("", None),
            ("garbage", None),
            ("/relative/path", None),
            ("https://", None),
            ("https:///path", None),
            ("https:app.example.com", None),
            ("ftp://files.example.com", None),
            ("javascript://%0aalert(1)", None),
            ("com.example.app:/cb", None),
            ("https://a.example:99999", None),
            ("https://a.example:12ab", None),
            ("https://a.example:1:2", None),
            ("https://a b.example", None),
            ("https://a.example;script-src", None),
            ("https://*.example.com", None),
            ("https://-a.example", None),
            ("https://a..example", None),
            ("https://[::1", None),
            ("https://[xyz]", None),
            ("https://[::1]x", None),
            ("https://bücher.example", None),
        ];
        for (url, want) in cases {
            assert_eq!(origin_of(url).as_deref(), want, "{url}");
        }
    }

    #[test]
    fn form_action_sources() {
        assert_eq!(
            form_action_source("com.example.app:/cb").as_deref(),
            Some("com.example.app:")
        );
        assert_eq!(form_action_source("myapp://callback").as_deref(), Some("myapp:"));
        assert_eq!(
            form_action_source("https://a.example/x").as_deref(),
            Some("https://a.example")
        );
        for refused in [
            "javascript:alert(1)",
            "data:text/html,x",
            "https:a.example",
            "1app:/x",
            "a b:/x",
            "x",
        ] {
            assert_eq!(form_action_source(refused), None, "{refused}");
        }
    }
}
