//! Browser sign-in end to end over HTTP: the authorization endpoint, the login and consent pages,
//! the token endpoint's code and refresh grants, userinfo and logout; and the attacks on each
//! (redirect URI tampering, PKCE downgrade, code and refresh token replay, CSRF, session
//! fixation, open redirects at logout, password guessing and account enumeration).
//!
//! The "browser" is a reqwest client that never follows redirects and keeps the `sesame_*`
//! cookies by hand, so every hop is seen and asserted.

mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use common::{expect_error, jwt_parts, unescape, TestServer};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const T: &str = "default";
const CB: &str = "https://app.example/cb";
const BYE: &str = "https://app.example/bye";
const PW: &str = "correct horse battery";
const SCOPE: &str = "openid profile email";

// ---------------------------------------------------------------------------------------------
// The test-side browser

/// One HTTP answer as a browser sees it.
struct Page {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

/// Where a redirect goes: the URI before `?` or `#`, which of the two, and the parameters.
#[derive(Debug)]
struct Redirect {
    base: String,
    sep: Option<char>,
    params: Vec<(String, String)>,
}

impl Redirect {
    fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl Page {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn location(&self) -> Option<&str> {
        self.header("location")
    }

    /// The whole `Set-Cookie` header for cookie `name`, if one was set.
    fn set_cookie(&self, name: &str) -> Option<&str> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with(&format!("{name}=")))
    }

    /// The value of the hidden (or any) input called `name`, HTML-unescaped.
    fn hidden(&self, name: &str) -> Option<String> {
        let marker = format!("name=\"{name}\" value=\"");
        let start = self.body.find(&marker)? + marker.len();
        let len = self.body[start..].find('"')?;
        Some(unescape(&self.body[start..start + len]))
    }

    /// The body with HTML entities decoded, for looking for sentences.
    fn text(&self) -> String {
        unescape(&self.body)
    }

    /// The text of the page's alert (the login error), if any.
    fn alert(&self) -> Option<String> {
        let start = self.body.find("role=\"alert\"")?;
        let open = start + self.body[start..].find('>')? + 1;
        let len = self.body[open..].find("</p>")?;
        Some(unescape(&self.body[open..open + len]))
    }

    fn is_login(&self) -> bool {
        self.body.contains("name=\"password\"") && self.body.contains("name=\"request\"")
    }

    fn is_consent(&self) -> bool {
        self.status == StatusCode::OK && self.body.contains("name=\"decision\"")
    }

    /// Asserts a 303 and parses its `Location`.
    fn redirect(&self) -> Redirect {
        assert_eq!(
            self.status,
            StatusCode::SEE_OTHER,
            "expected a redirect, got this page: {}",
            self.body
        );
        let loc = self.location().expect("a redirect has a Location");
        let (base, sep, rest) = match loc.find(['?', '#']) {
            Some(i) => (&loc[..i], loc[i..].chars().next(), &loc[i + 1..]),
            None => (loc, None, ""),
        };
        Redirect {
            base: base.to_owned(),
            sep,
            params: form_urlencoded::parse(rest.as_bytes()).into_owned().collect(),
        }
    }
}

/// A browser for one tenant: its own cookie jar (the `sesame_*` cookies, by hand), no automatic
/// redirects.
struct Browser<'s> {
    s: &'s TestServer,
    tenant: String,
    http: reqwest::Client,
    jar: Mutex<BTreeMap<String, String>>,
}

impl<'s> Browser<'s> {
    fn new(s: &'s TestServer) -> Self {
        Self::for_tenant(s, T)
    }

    fn for_tenant(s: &'s TestServer, tenant: &str) -> Self {
        Browser {
            s,
            tenant: tenant.to_owned(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            jar: Mutex::new(BTreeMap::new()),
        }
    }

    fn cookie(&self, name: &str) -> Option<String> {
        self.jar.lock().unwrap().get(name).cloned()
    }

    fn set_cookie(&self, name: &str, value: &str) {
        self.jar.lock().unwrap().insert(name.to_owned(), value.to_owned());
    }

    fn drop_cookie(&self, name: &str) {
        self.jar.lock().unwrap().remove(name);
    }

    fn url(&self, endpoint: &str) -> String {
        format!("{}{endpoint}", self.s.issuer(&self.tenant))
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Page {
        let cookies = {
            let jar = self.jar.lock().unwrap();
            jar.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ")
        };
        let req = if cookies.is_empty() {
            req
        } else {
            req.header("cookie", cookies)
        };
        let resp = req.send().await.unwrap();
        let (status, headers) = (resp.status(), resp.headers().clone());
        let body = resp.text().await.unwrap();
        for sc in headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
        {
            let Some((name, value)) = sc.split(';').next().and_then(|p| p.split_once('=')) else {
                continue;
            };
            if !name.starts_with("sesame_") {
                continue;
            }
            if value.is_empty() || sc.contains("Max-Age=0") {
                self.drop_cookie(name);
            } else {
                self.set_cookie(name, value);
            }
        }
        Page {
            status,
            headers,
            body,
        }
    }

    async fn get(&self, endpoint: &str, query: &[(&str, &str)]) -> Page {
        let q = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(query)
            .finish();
        self.send(self.http.get(format!("{}?{q}", self.url(endpoint))))
            .await
    }

    async fn post(&self, endpoint: &str, form: &[(&str, &str)]) -> Page {
        self.send(self.http.post(self.url(endpoint)).form(form)).await
    }

    async fn authorize(&self, params: &[(&str, &str)]) -> Page {
        self.get("/authorize", params).await
    }

    /// Submits the login form of `page`.
    async fn login(&self, page: &Page, user: &str, password: &str) -> Page {
        assert!(
            page.is_login(),
            "expected the login page, got {}: {}",
            page.status,
            page.body
        );
        let csrf = page.hidden("csrf").expect("csrf field");
        let request = page.hidden("request").expect("request field");
        self.post(
            "/login",
            &[
                ("csrf", &csrf),
                ("request", &request),
                ("username", user),
                ("password", password),
            ],
        )
        .await
    }

    /// Submits the consent form of `page`.
    async fn consent(&self, page: &Page, allow: bool) -> Page {
        assert!(
            page.is_consent(),
            "expected the consent page, got {}: {}",
            page.status,
            page.body
        );
        let csrf = page.hidden("csrf").expect("csrf field");
        let request = page.hidden("request").expect("request field");
        let decision = if allow { "allow" } else { "deny" };
        self.post(
            "/consent",
            &[("csrf", &csrf), ("request", &request), ("decision", decision)],
        )
        .await
    }
}

// ---------------------------------------------------------------------------------------------
// Relying parties, users, PKCE

/// A registered client, and the token endpoint as it calls it.
struct Rp {
    id: String,
    secret: Option<String>,
    redirect_uri: String,
}

impl Rp {
    /// Registers a client; `spec` adds to (or replaces) a name, [`CB`] and [`BYE`].
    async fn create(s: &TestServer, spec: Value) -> Rp {
        let mut body = json!({
            "name": "Example App",
            "redirect_uris": [CB],
            "post_logout_redirect_uris": [BYE],
        });
        body.as_object_mut()
            .unwrap()
            .extend(spec.as_object().cloned().unwrap_or_default());
        let (status, resp) = s
            .admin(Method::POST, &format!("/tenants/{T}/clients"), Some(body))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{resp}");
        Rp {
            id: resp["client"]["client_id"].as_str().unwrap().to_owned(),
            secret: resp["client_secret"].as_str().map(str::to_owned),
            redirect_uri: resp["client"]["redirect_uris"][0].as_str().unwrap().to_owned(),
        }
    }

    /// POST /token as this client: Basic for a confidential client, `client_id` in the body for
    /// a public one.
    async fn token(&self, s: &TestServer, form: &[(&str, &str)]) -> (StatusCode, Value) {
        let mut form = form.to_vec();
        let basic = match &self.secret {
            Some(secret) => Some((self.id.as_str(), secret.as_str())),
            None => {
                form.push(("client_id", &self.id));
                None
            }
        };
        let (status, headers, body) = s.post_form(T, "/token", basic, &form).await;
        if status == StatusCode::OK {
            assert_eq!(headers["cache-control"], "no-store");
        }
        (status, body)
    }

    async fn exchange(&self, s: &TestServer, code: &str, verifier: Option<&str>) -> (StatusCode, Value) {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &self.redirect_uri),
        ];
        if let Some(v) = verifier {
            form.push(("code_verifier", v));
        }
        self.token(s, &form).await
    }

    async fn refresh(&self, s: &TestServer, refresh_token: &str) -> (StatusCode, Value) {
        self.token(
            s,
            &[("grant_type", "refresh_token"), ("refresh_token", refresh_token)],
        )
        .await
    }
}

/// Creates a user with password [`PW`]; returns its id (the `sub`).
async fn user(s: &TestServer, username: &str) -> String {
    let (status, body) = s
        .admin(
            Method::POST,
            &format!("/tenants/{T}/users"),
            Some(json!({
                "username": username,
                "password": PW,
                "email": format!("{username}@example.com"),
                "email_verified": true,
                "name": format!("{username} Example"),
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

/// A random PKCE verifier and its S256 challenge.
fn pkce() -> (String, String) {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).unwrap();
    let verifier = B64.encode(bytes);
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    (verifier, B64.encode(digest.as_ref()))
}

/// `base` with `changes` applied: a key replaced or added; an empty value removes the key.
fn with<'a>(base: &[(&'a str, &'a str)], changes: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut out = base.to_vec();
    for (k, v) in changes {
        match out.iter_mut().find(|(bk, _)| bk == k) {
            Some(slot) => slot.1 = v,
            None => out.push((k, v)),
        }
    }
    out.retain(|(_, v)| !v.is_empty());
    out
}

/// A code request with PKCE, state `st-1` and nonce `n-1`, changed by `extra`.
fn code_request<'a>(rp: &'a Rp, challenge: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    with(
        &[
            ("client_id", &rp.id),
            ("redirect_uri", &rp.redirect_uri),
            ("response_type", "code"),
            ("scope", SCOPE),
            ("state", "st-1"),
            ("nonce", "n-1"),
            ("code_challenge", challenge),
            ("code_challenge_method", "S256"),
        ],
        extra,
    )
}

/// The browser's whole part: authorize, the login page as `user` (if shown), the consent page
/// (if shown, allowed); returns the code from the redirect and the PKCE verifier.
async fn sign_in_and_get_code(
    b: &Browser<'_>,
    rp: &Rp,
    user: &str,
    extra: &[(&str, &str)],
) -> (String, String) {
    let (verifier, challenge) = pkce();
    let params = code_request(rp, &challenge, extra);
    let redirect_uri = params
        .iter()
        .find(|(k, _)| *k == "redirect_uri")
        .map_or(rp.redirect_uri.clone(), |(_, v)| v.to_string());
    let mut page = b.authorize(&params).await;
    if page.is_login() {
        page = b.login(&page, user, PW).await;
    }
    if page.is_consent() {
        page = b.consent(&page, true).await;
    }
    let r = page.redirect();
    assert_eq!(r.base, redirect_uri);
    assert_eq!(r.get("error"), None, "{r:?}");
    (r.get("code").expect("a code").to_owned(), verifier)
}

/// Signs in and redeems the code; the token response.
async fn tokens(s: &TestServer, b: &Browser<'_>, rp: &Rp, user: &str, extra: &[(&str, &str)]) -> Value {
    let (code, verifier) = sign_in_and_get_code(b, rp, user, extra).await;
    let (status, body) = rp.exchange(s, &code, Some(&verifier)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

fn str_of<'v>(v: &'v Value, key: &str) -> &'v str {
    v[key].as_str().unwrap_or_else(|| panic!("no {key} in {v}"))
}

/// OpenID Connect Core §3.1.3.6 with the hash of the signing algorithm (SHA-512 for EdDSA).
fn half_hash(alg: &str, token: &str) -> String {
    let algorithm = match alg {
        "EdDSA" => &aws_lc_rs::digest::SHA512,
        "RS256" | "ES256" => &aws_lc_rs::digest::SHA256,
        other => panic!("unexpected alg {other}"),
    };
    let digest = aws_lc_rs::digest::digest(algorithm, token.as_bytes());
    B64.encode(&digest.as_ref()[..digest.as_ref().len() / 2])
}

fn now() -> i64 {
    sesame_core::now()
}

/// Asserts a person-facing error page: the status, HTML, the sentence, and no redirect at all.
fn assert_error_page(page: &Page, status: StatusCode, says: &str) {
    assert_eq!(page.status, status, "{}", page.body);
    assert_eq!(page.location(), None, "an error page never redirects");
    assert_eq!(page.header("content-type"), Some("text/html; charset=utf-8"));
    assert!(page.text().contains(says), "expected {says:?} in {}", page.body);
}

/// Asserts an authorization error sent back to the client (RFC 6749 §4.1.2.1, RFC 9207).
fn assert_redirect_error(s: &TestServer, page: &Page, error: &str, state: Option<&str>) -> Redirect {
    let r = page.redirect();
    assert_eq!(r.get("error"), Some(error), "{r:?}");
    assert!(r.get("error_description").is_some(), "{r:?}");
    assert_eq!(r.get("state"), state, "{r:?}");
    assert_eq!(r.get("iss"), Some(s.issuer(T).as_str()), "{r:?}");
    assert_eq!(r.get("code"), None);
    r
}

/// A confidential client for introspection (RFC 7662 refuses public clients), allowed to
/// introspect the tokens of other clients.
async fn resource_server(s: &TestServer) -> (String, String) {
    s.client(T, json!({"introspect_any": true})).await
}

async fn active(s: &TestServer, rs: &(String, String), token: &str) -> bool {
    let body = s.introspect(T, (&rs.0, &rs.1), token).await;
    body["active"].as_bool().unwrap()
}

async fn userinfo(s: &TestServer, token: &str) -> (StatusCode, HeaderMap, Value) {
    let resp = s
        .http
        .get(format!("{}/userinfo", s.issuer(T)))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let (status, headers) = (resp.status(), resp.headers().clone());
    (status, headers, resp.json().await.unwrap())
}

/// Asserts that userinfo refuses `token` as RFC 6750 §3.1 says.
async fn assert_userinfo_refuses(s: &TestServer, token: &str) {
    let (status, headers, body) = userinfo(s, token).await;
    expect_error(status, &body, StatusCode::UNAUTHORIZED, "invalid_token");
    let challenge = headers["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.starts_with("Bearer ") && challenge.contains("error=\"invalid_token\""),
        "{challenge}"
    );
}

/// `prompt=none` for a client whose consent exists: a code if the browser is signed in, else
/// `login_required`. Returns the redirect.
async fn silent(b: &Browser<'_>, rp: &Rp) -> Redirect {
    let (_, challenge) = pkce();
    b.authorize(&code_request(rp, &challenge, &[("prompt", "none")]))
        .await
        .redirect()
}

// ---------------------------------------------------------------------------------------------
// 1. The happy path

#[tokio::test]
async fn the_code_flow_signs_in_asks_consent_and_issues_tokens_on_each_store() {
    for s in TestServer::each_store().await {
        let sub = user(&s, "alice").await;
        let rp = Rp::create(&s, json!({"client_type": "public"})).await;
        let b = Browser::new(&s);
        let (verifier, challenge) = pkce();
        let scope = "openid profile email offline_access";
        let page = b
            .authorize(&code_request(&rp, &challenge, &[("scope", scope)]))
            .await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.is_login(), "{}", page.body);
        assert!(page.text().contains("Example App"));
        let before = now();
        let page = b.login(&page, "alice", PW).await;
        let after = now();
        assert!(page.is_consent(), "{}", page.body);
        for asked in ["openid", "profile", "email", "offline_access"] {
            assert!(page.body.contains(&format!("<code>{asked}</code>")), "{asked}");
        }
        assert!(page.text().contains("signed in as <strong>alice</strong>"));
        let page = b.consent(&page, true).await;
        assert_eq!(page.header("cache-control"), Some("no-store"));
        let r = page.redirect();
        assert_eq!((r.base.as_str(), r.sep), (CB, Some('?')));
        assert_eq!(r.get("state"), Some("st-1"));
        // RFC 9207: the issuer in the authorization response.
        assert_eq!(r.get("iss"), Some(s.issuer(T).as_str()));
        let code = r.get("code").unwrap();

        let (status, tok) = rp.exchange(&s, code, Some(&verifier)).await;
        assert_eq!(status, StatusCode::OK, "{tok}");
        assert_eq!(tok["token_type"], "Bearer");
        assert_eq!(tok["expires_in"], 3600);
        assert_eq!(tok["scope"], scope);
        let access_token = str_of(&tok, "access_token");
        let (h, at) = jwt_parts(access_token);
        assert_eq!(h["typ"], "at+jwt");
        assert_eq!(at["iss"], s.issuer(T));
        assert_eq!(at["sub"], sub.as_str());
        assert_eq!(at["client_id"], rp.id.as_str());
        assert_eq!(at["scope"], scope);
        let (h, id) = jwt_parts(str_of(&tok, "id_token"));
        assert_eq!(h["typ"], "JWT");
        assert_eq!(id["iss"], s.issuer(T));
        assert_eq!(id["sub"], sub.as_str());
        assert_eq!(id["aud"], rp.id.as_str());
        assert_eq!(id["azp"], rp.id.as_str());
        assert_eq!(id["nonce"], "n-1");
        let auth_time = id["auth_time"].as_i64().unwrap();
        assert!(
            (before..=after).contains(&auth_time),
            "{auth_time} in {before}..={after}"
        );
        assert_eq!(id["acr"], "urn:sesame:acr:pwd");
        assert_eq!(id["amr"], json!(["pwd"]));
        assert_eq!(id["at_hash"], half_hash(h["alg"].as_str().unwrap(), access_token));
        assert_eq!(id["email"], "alice@example.com");
        assert_eq!(id["email_verified"], true);
        assert_eq!(id["name"], "alice Example");
        assert_eq!(id["preferred_username"], "alice");
        assert!(id["exp"].as_i64().unwrap() > now());
        assert!(
            tok["refresh_token"].as_str().unwrap().len() >= 43,
            "offline_access was asked"
        );

        // userinfo: GET and POST with the Bearer header, POST with the token in the body.
        let (status, headers, info) = userinfo(&s, access_token).await;
        assert_eq!(status, StatusCode::OK, "{info}");
        assert_eq!(headers["cache-control"], "no-store");
        assert_eq!(
            info,
            json!({
                "sub": sub,
                "preferred_username": "alice",
                "name": "alice Example",
                "email": "alice@example.com",
                "email_verified": true,
                "updated_at": info["updated_at"],
            })
        );
        let url = format!("{}/userinfo", s.issuer(T));
        let resp = s.http.post(&url).bearer_auth(access_token).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.json::<Value>().await.unwrap(), info);
        let resp = s
            .http
            .post(&url)
            .form(&[("access_token", access_token)])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.json::<Value>().await.unwrap(), info);
        let resp = s
            .http
            .post(&url)
            .bearer_auth(access_token)
            .form(&[("access_token", access_token)])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "two methods at once");

        // The same browser again: signed in, consent remembered, straight back with a code.
        let (verifier, challenge) = pkce();
        let again = b
            .authorize(&code_request(
                &rp,
                &challenge,
                &[("scope", scope), ("state", "st-2")],
            ))
            .await;
        let r = again.redirect();
        assert_eq!(r.get("state"), Some("st-2"));
        let (status, tok2) = rp.exchange(&s, r.get("code").unwrap(), Some(&verifier)).await;
        assert_eq!(status, StatusCode::OK, "{tok2}");
        let (_, id2) = jwt_parts(str_of(&tok2, "id_token"));
        assert_eq!(id2["auth_time"], auth_time, "no new sign-in happened");

        // prompt=consent asks again, even though the consent is remembered.
        let page = b
            .authorize(&code_request(&rp, &challenge, &[("prompt", "consent")]))
            .await;
        assert!(page.is_consent(), "{}", page.body);
        let r = b.consent(&page, true).await.redirect();
        assert!(r.get("code").is_some(), "{r:?}");
    }
}

#[tokio::test]
async fn refresh_tokens_come_with_offline_access_or_by_client_setting() {
    let s = TestServer::sqlite().await;
    user(&s, "alice").await;
    let plain = Rp::create(&s, json!({"first_party": true})).await;
    let always = Rp::create(
        &s,
        json!({"first_party": true, "refresh_without_offline_access": true}),
    )
    .await;
    let no_refresh = Rp::create(
        &s,
        json!({"first_party": true, "grant_types": ["authorization_code"]}),
    )
    .await;
    let b = Browser::new(&s);
    let tok = tokens(&s, &b, &plain, "alice", &[]).await;
    assert!(
        tok.get("refresh_token").is_none(),
        "no offline_access, no refresh token: {tok}"
    );
    let tok = tokens(&s, &b, &plain, "alice", &[("scope", "openid offline_access")]).await;
    assert!(tok["refresh_token"].is_string(), "{tok}");
    let tok = tokens(&s, &b, &always, "alice", &[]).await;
    assert!(tok["refresh_token"].is_string(), "{tok}");
    // offline_access is not for a client that cannot refresh (OpenID Connect Core §11).
    let (_, challenge) = pkce();
    let page = b
        .authorize(&code_request(
            &no_refresh,
            &challenge,
            &[("scope", "openid offline_access")],
        ))
        .await;
    assert_redirect_error(&s, &page, "invalid_scope", Some("st-1"));
    let tok = tokens(&s, &b, &no_refresh, "alice", &[]).await;
    assert!(tok.get("refresh_token").is_none(), "{tok}");
}

#[tokio::test]
async fn id_tokens_carry_the_at_hash_of_each_signing_alg() {
    let s = TestServer::sqlite().await;
    user(&s, "alice").await;
    let b = Browser::new(&s);
    for alg in ["RS256", "ES256", "EdDSA"] {
        let rp = Rp::create(&s, json!({"signing_alg": alg, "first_party": true})).await;
        let tok = tokens(&s, &b, &rp, "alice", &[]).await;
        let access_token = str_of(&tok, "access_token");
        let (h, claims) = jwt_parts(str_of(&tok, "id_token"));
        assert_eq!((h["alg"].as_str(), h["typ"].as_str()), (Some(alg), Some("JWT")));
        assert_eq!(claims["at_hash"], half_hash(alg, access_token), "{alg}");
        assert_eq!(jwt_parts(access_token).0["alg"], alg);
    }
}

// ---------------------------------------------------------------------------------------------
// 2. Redirect URIs

#[tokio::test]
async fn redirect_uri_mismatches_show_an_error_page_and_never_redirect() {
    let s = TestServer::sqlite().await;
    let rp = Rp::create(&s, json!({})).await;
    let b = Browser::new(&s);
    let (_, challenge) = pkce();
    for bad in [
        "https://app.example/c",
        "https://app.example/cb/extra",
        "https://app.example/cb?x=1",
        "https://app.example/cb#frag",
        "https://evil.example/cb",
        "https://app.example.evil.example/cb",
        "https://app.example:8443/cb",
        "http://app.example/cb",
        "https://app.example/CB",
    ] {
        let page = b
            .authorize(&code_request(&rp, &challenge, &[("redirect_uri", bad)]))
            .await;
        assert_error_page(&page, StatusCode::BAD_REQUEST, "is not registered for it");
        // Even a request that is wrong in other ways too is not sent back to that address.
        let page = b
            .authorize(&code_request(
                &rp,
                &challenge,
                &[
                    ("redirect_uri", bad),
                    ("response_type", "bogus"),
                    ("code_challenge", ""),
                ],
            ))
            .await;
        assert_error_page(&page, StatusCode::BAD_REQUEST, "is not registered for it");
    }
    // Two redirect_uri parameters: which one would be meant?
    let mut twice = code_request(&rp, &challenge, &[]);
    twice.push(("redirect_uri", "https://evil.example/cb"));
    let page = b.authorize(&twice).await;
    assert_error_page(&page, StatusCode::BAD_REQUEST, "repeated");
    // The registered one works.
    assert!(b.authorize(&code_request(&rp, &challenge, &[])).await.is_login());
}

#[tokio::test]
async fn unknown_missing_and_disabled_clients_show_an_error_page() {
    let s = TestServer::sqlite().await;
    let rp = Rp::create(&s, json!({})).await;
    let b = Browser::new(&s);
    let (_, challenge) = pkce();
    for client_id in ["nobody", "bad id!"] {
        let page = b
            .authorize(&code_request(&rp, &challenge, &[("client_id", client_id)]))
            .await;
        assert_error_page(&page, StatusCode::BAD_REQUEST, "does not exist");
    }
    let page = b
        .authorize(&code_request(&rp, &challenge, &[("client_id", "")]))
        .await;
    assert_error_page(&page, StatusCode::BAD_REQUEST, "client_id is missing");
    let (status, _) = s
        .admin(
            Method::POST,
            &format!("/tenants/{T}/clients/{}/disable", rp.id),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // A disabled client's (cached) registration must not be used either; the cache refreshes
    // every 100 ms in the tests.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let page = b.authorize(&code_request(&rp, &challenge, &[])).await;
    assert_error_page(&page, StatusCode::BAD_REQUEST, "does not exist");
}

#[tokio::test]
async fn loopback_redirects_may_use_any_port_for_public_clients_only() {
    let s = TestServer::sqlite().await;
    user(&s, "alice").await;
    let registered = "http://127.0.0.1/callback";
    let requested = "http://127.0.0.1:54321/callback";
    let native = Rp::create(
        &s,
        json!({"client_type": "public", "redirect_uris": [registered]}),
    )
    .await;
    let confidential = Rp::create(&s, json!({"redirect_uris": [registered]})).await;
    let b = Browser::new(&s);
    // (sign_in_and_get_code asserts that the redirect goes to the requested URI)
    let (code, verifier) = sign_in_and_get_code(&b, &native, "alice", &[("redirect_uri", requested)]).await;
    let (_, challenge) = pkce();
    let (status, body) = native
        .token(
            &s,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", requested),
                ("code_verifier", &verifier),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for bad in [
        "http://127.0.0.1:54321/callback/x",
        "http://127.0.0.1:54321/callback?x=1",
        "http://127.0.0.2:54321/callback",
        "https://127.0.0.1:54321/callback",
    ] {
        let page = b
            .authorize(&code_request(&native, &challenge, &[("redirect_uri", bad)]))
            .await;
        assert_error_page(&page, StatusCode::BAD_REQUEST, "is not registered for it");
    }
    let page = b
        .authorize(&code_request(
            &confidential,
            &challenge,
            &[("redirect_uri", requested)],
        ))
        .await;
    assert_error_page(&page, StatusCode::BAD_REQUEST, "is not registered for it");
}

// ---------------------------------------------------------------------------------------------
// 3. PKCE

#[tokio::test]
async fn pkce_is_required_s256_only_and_checked_at_the_token_endpoint() {
    let s = TestServer::sqlite().await;
    user(&s, "alice").await;
    let public = Rp::create(&s, json!({"client_type": "public", "first_party": true})).await;
    let confidential = Rp::create(&s, json!({"first_party": true})).await;
    let lax = Rp::create(&s, json!({"first_party": true, "require_pkce": false})).await;
    let b = Browser::new(&s);
    let (_, challenge) = pkce();
    for rp in [&public, &confidential] {
        for change in [
            &[("code_challenge", ""), ("code_challenge_method", "")][..],
            &[("code_challenge_method", "plain")],
            &[
                ("code_challenge", "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
                ("code_challenge_method", "plain"),
            ],
            &[("code_challenge_method", "")],
            &[("code_challenge_method", "S512")],
            &[("code_challenge", "")],
            &[("code_challenge", "too-short")],
        ] {
            let page = b.authorize(&code_request(rp, &challenge, change)).await;
            assert_redirect_error(&s, &page, "invalid_request", Some("st-1"));
        }
    }

    let (code, verifier) = sign_in_and_get_code(&b, &public, "alice", &[]).await;
    let (other_verifier, _) = pkce();
    let (status, body) = public.exchange(&s, &code, Some(&other_verifier)).await;
    expect_error(status, &body, StatusCode::BAD_REQUEST, "invalid_grant");
    let (status, body) = public.exchange(&s, &code, None).await;
    expect_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
    let (status, body) = public.exchange(&s, &code, Some("short")).await;
    expect_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
    // The challenge itself is not the verifier.
    let (status, body) = public.exchange(&s, &code, Some(&challenge)).await;
    expect_error(status, &body, StatusCode::BAD_REQUEST, "invalid_grant");
    let (status, body) = public.exchange(&s, &code, Some(&verifier)).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // A client that opted out may omit PKCE; a verifier for a code issued without a challenge
    // is a downgrade attempt (RFC 9700 §2.1.1).
    let (code, _) = sign_in_and_get_code(
        &b,
        &lax,
        "alice",
        &[("code_challenge", ""), ("code_challenge_method", "")],
    )
    .await;
    let (status, body) = lax.exchange(&s, &code, Some(&verifier)).await;
    expect_error(status, &body, StatusCode::BAD_REQUEST, "invalid_grant");
    let (status, body) = lax.exchange(&s, &code, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

// ---------------------------------------------------------------------------------------------
// 4. Codes

#[tokio::test]
async fn a_reused_code_is_refused_and_revokes_what_it_issued_on_each_store() {
    for s in TestServer::each_store().await {
        user(&s, "alice").await;
        let rp = Rp::create(&s, json!({})).await;
        let rs = (rp.id.clone(), rp.secret.clone().unwrap());
        let b = Browser::new(&s);
        let (code, verifier) =
            sign_in_and_get_code(&b, &rp, "alice", &[("scope", "openid offline_access")]).await;
        let (status, first) = rp.exchange(&s, &code, Some(&verifier)).await;
        assert_eq!(status, StatusCode::OK, "{first}");
        let access_token = str_of(&first, "access_token");
        let refresh_token = str_of(&first, "refresh_token");
        assert!(active(&s, &rs, access_token).await);
        assert_eq!(userinfo(&s, access_token).await.0, StatusCode::OK);

        let (status, body) = rp.exchange(&s, &code, Some(&verifier)).await;
        expect_error(status, &body, StatusCode::BAD_REQUEST, "invalid_grant");
        // RFC 6749 §4.1.2: what the first redemption issued is revoked.
        assert!(!active(&s, &rs, access_token).await);
        assert_userinfo_refuses(&s, access_token).await;
        let (status, body) = rp.refresh(&s, refresh_token).await;
        expect_error(status, &body, StatusCode::BAD_REQUEST, "invalid_grant");
        // ... and it stays refused.
        let (status, body) = rp.exchange(&s, &code, Some(&verifier)).await;
        expect_error(status, &body, StatusCode::BAD_REQUEST, "invalid_grant");
    }
}

#[tokio::test]
async fn a_code_is_bound_to_its_client_and_redirect_uri() {
    let s = TestServer::sqlite().await;
    user(&s, "alice").await;
    let other_cb = "https://app.example/other";
    let a = Rp::create(&s, json!({"first_party": true, "redirect_uris": [CB, other_cb]})).await;
    let b_rp = Rp::create(&s, json!({"first_party": true})).await;
    let public = Rp::create(&s, json!({"first_party": true, "client_type": "public"})).await;
    let b = Browser::new(&s);
    let (code, verifier) = sign_in_and_get_code(&b, &a, "alice", &[]).await;
    // Client B (authenticated as itself) redeems A's code.
    let (status, body) = b_rp.exchange(&s, &code, Some(&verifier)).await;
    expect_error(status, &body, StatusCode::BAD_REQUEST, "invalid_grant");
    // A public client naming itself cannot redeem it either.
    let (status, body) = public.exchange(&s, &code, Some(&verifier)).await;
    expect_error(status, &body, StatusCode::BAD_REQUEST, "invalid_grant");
    // Another of A's own redirect URIs, or none when A has two.
    let (status, body) = a
        .token(
            &s,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", other_cb),
                ("code_verifier", &verifier),
            ],
        )
        .await;
    expect_error(status, &body, StatusCode::BAD_REQUEST, "invalid_grant");
    let (status, body) = a
        .token(
            &s,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("code_verifier", &verifier),
            ],
        )
        .await;
    expect_error(status, &body, StatusCode::BAD_REQUEST, "invalid_grant");
    // A made-up code.
    let (status, body) = a.exchange(&s, &B64.encode([7u8; 32]), Some(&verifier)).await;
    expect_error(status, &body, StatusCode::BAD_REQUEST, "invalid_grant");
    // The refusals above did not consume the code: A, properly, gets its tokens.
    let (status, body) = a.exchange(&s, &code, Some(&verifier)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Expiry (60 s) is not tested here: it would need a minute of sleeping or a fake clock.
}

// ---------------------------------------------------------------------------------------------
// 5. Refresh tokens

#[tokio::test]
async fn refresh_tokens_rotate_and_a_retry_in_the_grace_window_gets_the_same_answer_on_each_store() {
    for s in TestServer::each_store().await {
        let sub = user(&s, "alice").await;
        let rp = Rp::create(&s, json!({"first_party": true})).await;
        let other = Rp::create(&s, json!({"first_party": true})).await;
        let b = Browser::new(&s);
        let first = tokens(&s, &b, &rp, "alice", &[("scope", "openid email offline_access")]).await;
        let (_, first_id) = jwt_parts(str_of(&first, "id_token"));
        let rt0 = str_of(&first, "refresh_token");

        let (status, r1) = rp.refresh(&s, rt0).await;
        assert_eq!(status, StatusCode::OK, "{r1}");
        let rt1 = str_of(&r1, "refresh_token");
        assert_ne!(rt1, rt0);
        assert_ne!(r1["access_token"], first["access_token"]);
        assert_eq!(r1["scope"], "openid email offline_access");
        let (_, id) = jwt_parts(str_of(&r1, "id_token"));
        assert_eq!(id["sub"], sub.as_str());
        assert_eq!(id["auth_time"], first_id["auth_time"]);
        assert!(id.get("nonce").is_none(), "{id}");
        assert_eq!(id["email"], "alice@example.com");

        // The client lost the answer and retries with the old token: the same answer.
        let (status, retry) = rp.refresh(&s, rt0).await;
        assert_eq!(status, StatusCode::OK, "{retry}");
        assert_eq!(retry["refresh_token"], rt1);
        assert_eq!(retry["access_token"], r1["access_token"]);

        // The successor is live; the grant's scope can be narrowed, not widened.
        let (status, r2) = rp
            .token(
                &s,
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", rt1),
                    ("scope", "openid"),
                ],
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{r2}");
        assert_eq!(r2["scope"], "openid");
        let rt2 = str_of(&r2, "refresh_token");
        let (status, body) = rp
            .token(
                &s,
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", rt2),
                    ("scope", "openid profile"),
                ],
            )
            .await;
        expect_error(status, &body, StatusCode::BAD_REQUEST, "invalid_scope");
        // Another client cannot use it.
        let (status, body) = other.refresh(&s, rt2).await;
        expect_error(status, &body, StatusCode::BAD_REQUEST, "invalid_grant");
        let (status, body) = rp.refresh(&s, "not-a-refresh-token").await;
        expect_error(status, &body, StatusCode::BAD_REQUEST, "invalid_grant");
        // The narrowing refused above did not use rt2 up, and the full scope is still the grant's.
        let (status, r3) = rp.refresh(&s, rt2).await;
        assert_eq!(status, StatusCode::OK, "{r3}");
        assert_eq!(r3["scope"], "openid email offline_access");

        // rt0's answer (rt1) has been used since, so rt0 now is a copy in someone else's hands:
        // even inside the grace window it revokes the grant, down to the newest token.
        let (status, body) = rp.refresh(&s, rt0).await;
        expect_error(status, &body, StatusCode::BAD_REQUEST, "invalid_grant");
        let (status, body) = rp.refresh(&s, str_of(&r3, "refresh_token")).await;
        expect_error(status, &body, StatusCode::BAD_REQUEST, "invalid_grant");
        let rs = resource_server(&s).await;
        assert!(!active(&s, &rs, str_of(&r3, "access_token")).await);
    }
}

#[tokio::test]
async fn concurrent_refreshes_of_one_token_both_get_the_same_successor_on_each_store() {
    for s in TestServer::each_store().await {
        user(&s, "alice").await;
        let rp = Rp::create(&s, json!({"first_party": true, "client_type": "public"})).await;
        let b = Browser::new(&s);
        let first = tokens(&s, &b, &rp, "alice", &[("scope", "openid offline_access")]).await;
        let rt0 = str_of(&first, "refresh_token");
        for _ in 0..3 {
            let (x, y) = tokio::join!(rp.refresh(&s, rt0), rp.refresh(&s, rt0));
            assert_eq!(x.0, StatusCode::OK, "{}", x.1);
            assert_eq!(y.0, StatusCode::OK, "{}", y.1);
            assert_eq!(x.1["refresh_token"], y.1["refresh_token"]);
            assert_eq!(x.1["access_token"], y.1["access_token"]);
        }
        // Only one successor exists, and it works.
        let (_, again) = rp.refresh(&s, rt0).await;
        let rt1 = str_of(&again, "refresh_token");
        let (status, body) = rp.refresh(&s, rt1).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
}

/// SLOW (about 32 s): a replay is only a replay once the 30 s grace window
/// (`REFRESH_REUSE_GRACE`) after the rotation has passed. Inside it, `replayed()` answers with
/// the sealed successor response (the idempotent retry tested above), so reuse detection cannot
/// be observed without waiting. nextest runs other tests meanwhile.
#[tokio::test]
async fn a_refresh_token_replayed_after_the_grace_window_revokes_the_whole_grant() {
    let s = TestServer::sqlite().await;
    user(&s, "alice").await;
    let rp = Rp::create(&s, json!({"first_party": true})).await;
    let rs = (rp.id.clone(), rp.secret.clone().unwrap());
    let b = Browser::new(&s);
    let first = tokens(&s, &b, &rp, "alice", &[("scope", "openid offline_access")]).await;
    let rt0 = str_of(&first, "refresh_token");
    let (status, r1) = rp.refresh(&s, rt0).await;
    assert_eq!(status, StatusCode::OK, "{r1}");
    let (status, r2) = rp.refresh(&s, str_of(&r1, "refresh_token")).await;
    assert_eq!(status, StatusCode::OK, "{r2}");
    let rt2 = str_of(&r2, "refresh_token");
    let at2 = str_of(&r2, "access_token");
    assert!(active(&s, &rs, at2).await);

    tokio::time::sleep(Duration::from_secs(32)).await;

    // The leaked rt0 comes back: the whole family is revoked.
    let (status, body) = rp.refresh(&s, rt0).await;
    expect_error(status, &body, StatusCode::BAD_REQUEST, "invalid_grant");
    let (status, body) = rp.refresh(&s, rt2).await;
    expect_error(status, &body, StatusCode::BAD_REQUEST, "invalid_grant");
    for at in [at2, str_of(&r1, "access_token"), str_of(&first, "access_token")] {
        assert!(!active(&s, &rs, at).await);
    }
    assert_userinfo_refuses(&s, at2).await;
    // The browser session is not part of the grant: signing in again gives a new family.
    let again = tokens(&s, &b, &rp, "alice", &[("scope", "openid offline_access")]).await;
    let (status, body) = rp.refresh(&s, str_of(&again, "refresh_token")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

// ---------------------------------------------------------------------------------------------
// 6. CSRF and the sealed request

#[tokio::test]
async fn login_and_consent_forms_need_the_csrf_token() {
    let s = TestServer::sqlite().await;
    user(&s, "alice").await;
    let rp = Rp::create(&s, json!({})).await;
    let b = Browser::new(&s);
    let (_, challenge) = pkce();
    let login_page = b.authorize(&code_request(&rp, &challenge, &[])).await;
    let csrf = login_page.hidden("csrf").unwrap();
    assert_eq!(b.cookie("sesame_csrf").as_deref(), Some(csrf.as_str()));
    let request = login_page.hidden("request").unwrap();
    let refused = "was sent from another site";
    let creds = [("username", "alice"), ("password", PW)];

    let page = b.post("/login", &with(&[("request", &request)], &creds)).await;
    assert_error_page(&page, StatusCode::FORBIDDEN, refused);
    let page = b
        .post(
            "/login",
            &with(
                &[
                    ("request", &request),
                    ("csrf", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
                ],
                &creds,
            ),
        )
        .await;
    assert_error_page(&page, StatusCode::FORBIDDEN, refused);
    b.drop_cookie("sesame_csrf");
    let page = b
        .post("/login", &with(&[("request", &request), ("csrf", &csrf)], &creds))
        .await;
    assert_error_page(&page, StatusCode::FORBIDDEN, refused);
    assert_eq!(b.cookie("sesame_session"), None, "no session from a refused form");

    b.set_cookie("sesame_csrf", &csrf);
    let consent_page = b.login(&login_page, "alice", PW).await;
    assert!(consent_page.is_consent(), "{}", consent_page.body);
    let request = consent_page.hidden("request").unwrap();
    let allow = [("decision", "allow")];
    let page = b.post("/consent", &with(&[("request", &request)], &allow)).await;
    assert_error_page(&page, StatusCode::FORBIDDEN, refused);
    let page = b
        .post(
            "/consent",
            &with(
                &[
                    ("request", &request),
                    ("csrf", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
                ],
                &allow,
            ),
        )
        .await;
    assert_error_page(&page, StatusCode::FORBIDDEN, refused);
    b.drop_cookie("sesame_csrf");
    let page = b
        .post(
            "/consent",
            &with(&[("request", &request), ("csrf", &csrf)], &allow),
        )
        .await;
    assert_error_page(&page, StatusCode::FORBIDDEN, refused);
    b.set_cookie("sesame_csrf", &csrf);
    // None of the refused consents was recorded: prompt=none still needs consent.
    let r = silent(&b, &rp).await;
    assert_eq!(r.get("error"), Some("consent_required"), "{r:?}");
    // An incomplete decision is not a decision.
    let page = b
        .post(
            "/consent",
            &[("csrf", &csrf), ("request", &request), ("decision", "maybe")],
        )
        .await;
    assert_error_page(&page, StatusCode::BAD_REQUEST, "incomplete");
    // Deny: access_denied back to the client, with state and iss; nothing remembered.
    let page = b.consent(&consent_page, false).await;
    assert_redirect_error(&s, &page, "access_denied", Some("st-1"));
    assert_eq!(silent(&b, &rp).await.get("error"), Some("consent_required"));
    let page = b.consent(&consent_page, true).await;
    assert!(page.redirect().get("code").is_some());
}

#[tokio::test]
async fn a_tampered_expired_or_foreign_sealed_request_is_refused() {
    let s = TestServer::sqlite().await;
    s.tenant("acme", json!({})).await;
    user(&s, "alice").await;
    let rp = Rp::create(&s, json!({})).await;
    let b = Browser::new(&s);
    let (_, challenge) = pkce();
    let page = b.authorize(&code_request(&rp, &challenge, &[])).await;
    let csrf = page.hidden("csrf").unwrap();
    let request = page.hidden("request").unwrap();
    let expired = "This sign-in has expired.";
    let mut chars: Vec<char> = request.chars().collect();
    let mid = chars.len() / 2;
    chars[mid] = if chars[mid] == 'A' { 'B' } else { 'A' };
    let tampered: String = chars.into_iter().collect();
    for bad in [
        tampered.as_str(),
        "",
        "not base64 !",
        &request[..request.len() - 4],
    ] {
        let form = [
            ("csrf", csrf.as_str()),
            ("request", bad),
            ("username", "alice"),
            ("password", PW),
        ];
        let page = b.post("/login", &with(&form, &[])).await;
        assert_error_page(&page, StatusCode::BAD_REQUEST, expired);
        let page = b
            .post(
                "/consent",
                &[("csrf", &csrf), ("request", bad), ("decision", "allow")],
            )
            .await;
        assert_error_page(&page, StatusCode::BAD_REQUEST, expired);
    }
    assert_eq!(b.cookie("sesame_session"), None);
    // A request sealed for tenant default is not accepted by tenant acme (the AAD binds it).
    let acme = Browser::for_tenant(&s, "acme");
    let (status, body) = s
        .admin(
            Method::POST,
            "/tenants/acme/clients",
            Some(json!({"redirect_uris": [CB], "first_party": true})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let acme_client = body["client"]["client_id"].as_str().unwrap();
    let acme_login = acme
        .authorize(&[
            ("client_id", acme_client),
            ("response_type", "code"),
            ("redirect_uri", CB),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ])
        .await;
    assert!(acme_login.is_login(), "{}", acme_login.body);
    let acme_csrf = acme_login.hidden("csrf").unwrap();
    let page = acme
        .post(
            "/login",
            &[
                ("csrf", &acme_csrf),
                ("request", &request),
                ("username", "alice"),
                ("password", PW),
            ],
        )
        .await;
    assert_error_page(&page, StatusCode::BAD_REQUEST, expired);
    // The untouched request still works where it came from.
    assert!(b
        .login(&page_with(&csrf, &request), "alice", PW)
        .await
        .is_consent());
}

#[tokio::test]
async fn a_consent_form_without_a_session_issues_nothing() {
    let s = TestServer::sqlite().await;
    user(&s, "alice").await;
    let rp = Rp::create(&s, json!({})).await;
    let b = Browser::new(&s);
    let (_, challenge) = pkce();
    let page = b.authorize(&code_request(&rp, &challenge, &[])).await;
    let consent_page = b.login(&page, "alice", PW).await;
    assert!(consent_page.is_consent());
    // Someone who has the form's fields and a matching CSRF cookie, but not alice's session.
    let other = Browser::new(&s);
    other.set_cookie("sesame_csrf", &b.cookie("sesame_csrf").unwrap());
    let page = other.consent(&consent_page, true).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.location(), None);
    assert!(page.is_login(), "signing in comes first: {}", page.body);
    // Nor did it record a consent for alice.
    assert_eq!(silent(&b, &rp).await.get("error"), Some("consent_required"));
}

/// A stand-in login page carrying `csrf` and `request`, for [`Browser::login`].
fn page_with(csrf: &str, request: &str) -> Page {
    Page {
        status: StatusCode::OK,
        headers: HeaderMap::new(),
        body: format!(
            "<input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
             <input type=\"hidden\" name=\"request\" value=\"{request}\">\
             <input name=\"password\" type=\"password\">"
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// 7. Session fixation

#[tokio::test]
async fn a_planted_session_cookie_is_never_promoted_at_sign_in() {
    let s = TestServer::sqlite().await;
    user(&s, "alice").await;
    let rp = Rp::create(&s, json!({"first_party": true})).await;
    let b = Browser::new(&s);
    let planted = B64.encode([42u8; 32]);
    b.set_cookie("sesame_session", &planted);
    let (_, challenge) = pkce();
    let page = b.authorize(&code_request(&rp, &challenge, &[])).await;
    assert!(page.is_login(), "a made-up cookie is nobody's session");
    let page = b.login(&page, "alice", PW).await;
    let set = page
        .set_cookie("sesame_session")
        .expect("a session cookie is set");
    let fresh = b.cookie("sesame_session").unwrap();
    assert_ne!(fresh, planted, "{set}");
    assert!(page.redirect().get("code").is_some());

    // The attacker's copy of the planted value does not authenticate.
    let attacker = Browser::new(&s);
    attacker.set_cookie("sesame_session", &planted);
    let r = silent(&attacker, &rp).await;
    assert_eq!(r.get("error"), Some("login_required"), "{r:?}");
    // The victim's fresh one does.
    assert!(silent(&b, &rp).await.get("code").is_some());

    // Signing in again while signed in also replaces the session; the old cookie stops working.
    let page = b
        .authorize(&code_request(&rp, &challenge, &[("prompt", "login")]))
        .await;
    let page = b.login(&page, "alice", PW).await;
    assert!(page.redirect().get("code").is_some());
    let newer = b.cookie("sesame_session").unwrap();
    assert_ne!(newer, fresh);
    let old = Browser::new(&s);
    old.set_cookie("sesame_session", &fresh);
    assert_eq!(silent(&old, &rp).await.get("error"), Some("login_required"));
}

// ---------------------------------------------------------------------------------------------
// 8. prompt and max_age

#[tokio::test]
async fn prompt_none_answers_login_required_or_consent_required() {
    let s = TestServer::sqlite().await;
    user(&s, "alice").await;
    let rp = Rp::create(&s, json!({})).await;
    let b = Browser::new(&s);
    let (_, challenge) = pkce();
    let none = code_request(&rp, &challenge, &[("prompt", "none")]);
    let page = b.authorize(&none).await;
    assert_redirect_error(&s, &page, "login_required", Some("st-1"));
    // Signed in, but stopped at the consent page.
    let page = b.authorize(&code_request(&rp, &challenge, &[])).await;
    let consent_page = b.login(&page, "alice", PW).await;
    assert!(consent_page.is_consent());
    let page = b.authorize(&none).await;
    assert_redirect_error(&s, &page, "consent_required", Some("st-1"));
    // prompt=none combined with anything else is malformed.
    let page = b
        .authorize(&code_request(&rp, &challenge, &[("prompt", "none login")]))
        .await;
    assert_redirect_error(&s, &page, "invalid_request", Some("st-1"));
    b.consent(&consent_page, true).await.redirect();
    let r = b.authorize(&none).await.redirect();
    assert!(r.get("code").is_some(), "{r:?}");
    assert_eq!(r.get("iss"), Some(s.issuer(T).as_str()));
    // Asking for more than was consented to is consent_required again.
    let more = code_request(
        &rp,
        &challenge,
        &[("prompt", "none"), ("scope", "openid profile email address")],
    );
    let page = b.authorize(&more).await;
    assert_redirect_error(&s, &page, "consent_required", Some("st-1"));

    // id_token_hint naming someone else than the signed-in person: login_required; one that is
    // not an ID token of this issuer: invalid_request.
    user(&s, "bob").await;
    let bob = Browser::new(&s);
    let bob_tokens = tokens(&s, &bob, &rp, "bob", &[]).await;
    let hint = str_of(&bob_tokens, "id_token");
    let page = b
        .authorize(&code_request(
            &rp,
            &challenge,
            &[("prompt", "none"), ("id_token_hint", hint)],
        ))
        .await;
    assert_redirect_error(&s, &page, "login_required", Some("st-1"));
    let access = str_of(&bob_tokens, "access_token");
    let page = b
        .authorize(&code_request(
            &rp,
            &challenge,
            &[("prompt", "none"), ("id_token_hint", access)],
        ))
        .await;
    assert_redirect_error(&s, &page, "invalid_request", Some("st-1"));
    // bob's own hint in bob's browser is fine.
    let r = bob
        .authorize(&code_request(
            &rp,
            &challenge,
            &[("prompt", "none"), ("id_token_hint", hint)],
        ))
        .await
        .redirect();
    assert!(r.get("code").is_some(), "{r:?}");
}

#[tokio::test]
async fn max_age_and_prompt_login_force_a_fresh_sign_in() {
    let s = TestServer::sqlite().await;
    user(&s, "alice").await;
    let rp = Rp::create(&s, json!({})).await;
    let b = Browser::new(&s);
    let first = tokens(&s, &b, &rp, "alice", &[]).await;
    let first_auth = jwt_parts(str_of(&first, "id_token")).1["auth_time"]
        .as_i64()
        .unwrap();

    // prompt=login shows the login page although signed in; after it, no consent is asked
    // again (remembered) and no second login either.
    let (verifier, challenge) = pkce();
    let page = b
        .authorize(&code_request(&rp, &challenge, &[("prompt", "login")]))
        .await;
    assert!(page.is_login(), "{}", page.body);
    let page = b.login(&page, "alice", PW).await;
    let r = page.redirect();
    let (status, tok) = rp.exchange(&s, r.get("code").unwrap(), Some(&verifier)).await;
    assert_eq!(status, StatusCode::OK, "{tok}");

    // max_age: wait until the sign-in is at least a second old, so max_age=0 is exceeded.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let page = b
        .authorize(&code_request(
            &rp,
            &challenge,
            &[("max_age", "0"), ("prompt", "none")],
        ))
        .await;
    assert_redirect_error(&s, &page, "login_required", Some("st-1"));
    let page = b
        .authorize(&code_request(&rp, &challenge, &[("max_age", "3600")]))
        .await;
    assert!(page.redirect().get("code").is_some(), "a recent enough sign-in");
    let (verifier, challenge) = pkce();
    let page = b
        .authorize(&code_request(&rp, &challenge, &[("max_age", "0")]))
        .await;
    assert!(page.is_login(), "{}", page.body);
    let before = now();
    let page = b.login(&page, "alice", PW).await;
    let r = page.redirect();
    let (status, tok) = rp.exchange(&s, r.get("code").unwrap(), Some(&verifier)).await;
    assert_eq!(status, StatusCode::OK, "{tok}");
    let auth_time = jwt_parts(str_of(&tok, "id_token")).1["auth_time"]
        .as_i64()
        .unwrap();
    assert!(
        auth_time >= before && auth_time > first_auth,
        "{auth_time} {before} {first_auth}"
    );
    let page = b
        .authorize(&code_request(&rp, &challenge, &[("max_age", "-1")]))
        .await;
    assert_redirect_error(&s, &page, "invalid_request", Some("st-1"));
}

// ---------------------------------------------------------------------------------------------
// 9. Logout

#[tokio::test]
async fn logout_with_an_id_token_hint_ends_the_session_and_redirects_with_state() {
    let s = TestServer::sqlite().await;
    user(&s, "alice").await;
    user(&s, "bob").await;
    let rp = Rp::create(&s, json!({"first_party": true})).await;
    let b = Browser::new(&s);
    let tok = tokens(&s, &b, &rp, "alice", &[]).await;
    let id_token = str_of(&tok, "id_token");
    let old = b.cookie("sesame_session").unwrap();
    assert!(silent(&b, &rp).await.get("code").is_some());

    // Someone else's ID token as the hint does not sign bob out silently: he is asked.
    let bob = Browser::new(&s);
    tokens(&s, &bob, &rp, "bob", &[]).await;
    let page = bob
        .get(
            "/logout",
            &[("id_token_hint", id_token), ("post_logout_redirect_uri", BYE)],
        )
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.hidden("confirm").as_deref(), Some("yes"));
    assert!(
        silent(&bob, &rp).await.get("code").is_some(),
        "bob is still signed in"
    );

    let page = b
        .get(
            "/logout",
            &[
                ("id_token_hint", id_token),
                ("post_logout_redirect_uri", BYE),
                ("state", "bye 1"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(page.location(), Some("https://app.example/bye?state=bye+1"));
    let cleared = page
        .set_cookie("sesame_session")
        .expect("the session cookie is cleared");
    assert!(
        cleared.starts_with("sesame_session=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
    assert_eq!(b.cookie("sesame_session"), None);
    let r = silent(&b, &rp).await;
    assert_eq!(r.get("error"), Some("login_required"), "{r:?}");
    // The old cookie, kept by someone, is dead on the server too.
    let thief = Browser::new(&s);
    thief.set_cookie("sesame_session", &old);
    assert_eq!(silent(&thief, &rp).await.get("error"), Some("login_required"));
    // An RP may also POST the request. The hint's session is gone, but a request without a
    // cookie cannot show that the browser has no other: it is asked, not told it worked.
    let page = b
        .post(
            "/logout",
            &[("id_token_hint", id_token), ("post_logout_redirect_uri", BYE)],
        )
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_eq!(page.hidden("confirm").as_deref(), Some("yes"));
    let csrf = page.hidden("csrf").unwrap();
    let page = b
        .post(
            "/logout",
            &[
                ("confirm", "yes"),
                ("csrf", &csrf),
                ("client_id", &rp.id),
                ("post_logout_redirect_uri", BYE),
            ],
        )
        .await;
    assert_eq!(page.location(), Some(BYE));
}

#[tokio::test]
async fn logout_never_redirects_to_an_unregistered_uri() {
    let s = TestServer::sqlite().await;
    user(&s, "alice").await;
    let rp = Rp::create(&s, json!({"first_party": true})).await;
    let other = Rp::create(
        &s,
        json!({"first_party": true, "post_logout_redirect_uris": ["https://other.example/bye"]}),
    )
    .await;
    let rs = resource_server(&s).await;
    let b = Browser::new(&s);
    let tok = tokens(&s, &b, &rp, "alice", &[]).await;
    let id_token = str_of(&tok, "id_token");
    let access_token = str_of(&tok, "access_token");
    assert!(active(&s, &rs, access_token).await);
    let mut forged: Vec<&str> = id_token.split('.').collect();
    let forged_claims = B64.encode(json!({"iss": s.issuer(T), "sub": "someone", "aud": rp.id}).to_string());
    forged[1] = &forged_claims;
    let forged = forged.join(".");
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (
            vec![
                ("id_token_hint", id_token),
                ("post_logout_redirect_uri", "https://app.example/by"),
            ],
            "not registered",
        ),
        (
            vec![
                ("id_token_hint", id_token),
                ("post_logout_redirect_uri", "https://app.example/bye/x"),
            ],
            "not registered",
        ),
        (
            vec![
                ("id_token_hint", id_token),
                ("post_logout_redirect_uri", "https://app.example/bye?x=1"),
            ],
            "not registered",
        ),
        (
            vec![
                ("id_token_hint", id_token),
                ("post_logout_redirect_uri", "https://evil.example/bye"),
            ],
            "not registered",
        ),
        (
            vec![
                ("client_id", &rp.id),
                ("post_logout_redirect_uri", "https://evil.example/bye"),
            ],
            "not registered",
        ),
        // registered, but for another client than the one named
        (
            vec![
                ("id_token_hint", id_token),
                ("post_logout_redirect_uri", "https://other.example/bye"),
            ],
            "not registered",
        ),
        (
            vec![("client_id", &other.id), ("post_logout_redirect_uri", BYE)],
            "not registered",
        ),
        // no client named at all
        (
            vec![("post_logout_redirect_uri", BYE)],
            "needs id_token_hint or client_id",
        ),
        (
            vec![("post_logout_redirect_uri", "https://evil.example/bye")],
            "needs id_token_hint or client_id",
        ),
        (
            vec![("client_id", "nobody"), ("post_logout_redirect_uri", BYE)],
            "does not exist",
        ),
        (
            vec![
                ("id_token_hint", id_token),
                ("client_id", &other.id),
                ("post_logout_redirect_uri", BYE),
            ],
            "differs",
        ),
        (
            vec![("id_token_hint", &forged), ("post_logout_redirect_uri", BYE)],
            "not an ID token issued here",
        ),
        // an access token is not an ID token
        (
            vec![("id_token_hint", access_token), ("post_logout_redirect_uri", BYE)],
            "not an ID token issued here",
        ),
    ];
    for (query, says) in &cases {
        let page = b.get("/logout", query).await;
        assert_error_page(&page, StatusCode::BAD_REQUEST, says);
        assert!(page.set_cookie("sesame_session").is_none(), "{query:?}");
        let page = b.post("/logout", query).await;
        assert_error_page(&page, StatusCode::BAD_REQUEST, says);
    }
    // Nothing was ended by the refused requests.
    assert!(silent(&b, &rp).await.get("code").is_some());
}

#[tokio::test]
async fn logout_without_a_hint_asks_and_needs_the_csrf_token() {
    let s = TestServer::sqlite().await;
    user(&s, "alice").await;
    let rp = Rp::create(&s, json!({"first_party": true})).await;
    let b = Browser::new(&s);
    tokens(&s, &b, &rp, "alice", &[]).await;
    let query = [
        ("client_id", rp.id.as_str()),
        ("post_logout_redirect_uri", BYE),
        ("state", "s1"),
    ];
    let page = b.get("/logout", &query).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("<form method=\"post\""), "{}", page.body);
    assert_eq!(page.hidden("confirm").as_deref(), Some("yes"));
    assert_eq!(page.hidden("post_logout_redirect_uri").as_deref(), Some(BYE));
    assert_eq!(page.hidden("state").as_deref(), Some("s1"));
    assert!(page.set_cookie("sesame_session").is_none(), "asking ends nothing");
    let csrf = page.hidden("csrf").unwrap();
    assert_eq!(b.cookie("sesame_csrf").as_deref(), Some(csrf.as_str()));
    let csp = page.header("content-security-policy").unwrap();
    assert!(csp.contains("form-action 'self' https://app.example"), "{csp}");

    // A GET can never confirm (an <img> on another site would be one).
    let page = b
        .get("/logout", &with(&query, &[("confirm", "yes"), ("csrf", &csrf)]))
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.hidden("confirm").is_some());
    assert!(silent(&b, &rp).await.get("code").is_some());
    // Confirming without the token, or with a wrong one, or without the cookie: refused.
    for form in [
        with(&query, &[("confirm", "yes")]),
        with(
            &query,
            &[("confirm", "yes"), ("csrf", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")],
        ),
    ] {
        let page = b.post("/logout", &form).await;
        assert_error_page(&page, StatusCode::FORBIDDEN, "you are still signed in");
        assert!(page.set_cookie("sesame_session").is_none());
    }
    b.drop_cookie("sesame_csrf");
    let page = b
        .post("/logout", &with(&query, &[("confirm", "yes"), ("csrf", &csrf)]))
        .await;
    assert_error_page(&page, StatusCode::FORBIDDEN, "you are still signed in");
    b.set_cookie("sesame_csrf", &csrf);
    assert!(silent(&b, &rp).await.get("code").is_some(), "still signed in");

    let page = b
        .post("/logout", &with(&query, &[("confirm", "yes"), ("csrf", &csrf)]))
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(page.location(), Some("https://app.example/bye?state=s1"));
    assert_eq!(b.cookie("sesame_session"), None);
    assert_eq!(silent(&b, &rp).await.get("error"), Some("login_required"));

    // Without any redirect: the signed-out page.
    tokens(&s, &b, &rp, "alice", &[]).await;
    let page = b.get("/logout", &[]).await;
    let csrf = page.hidden("csrf").unwrap();
    let page = b.post("/logout", &[("confirm", "yes"), ("csrf", &csrf)]).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text().contains("You have signed out"), "{}", page.body);
    assert_eq!(silent(&b, &rp).await.get("error"), Some("login_required"));
}

/// A client's back-channel logout endpoint (Back-Channel Logout §2.5): collects the logout
/// tokens POSTed to it.
async fn logout_receiver() -> (String, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let app = axum::Router::new().route(
        "/backchannel",
        axum::routing::post(move |body: String| {
            let tx = tx.clone();
            async move {
                let token = form_urlencoded::parse(body.as_bytes())
                    .find(|(k, _)| k == "logout_token")
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default();
                let _ = tx.send(token);
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/backchannel"), rx)
}

/// Verifies an EdDSA JWT against the tenant's JWKS; returns (header, claims).
async fn verified_eddsa(s: &TestServer, token: &str) -> (Value, Value) {
    let (header, claims) = jwt_parts(token);
    let jwks: Value = s
        .http
        .get(s.url(&format!("/t/{T}/jwks")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == header["kid"])
        .expect("the kid is published");
    let x = B64.decode(key["x"].as_str().unwrap()).unwrap();
    let (signed, sig) = token.rsplit_once('.').unwrap();
    aws_lc_rs::signature::UnparsedPublicKey::new(&aws_lc_rs::signature::ED25519, x)
        .verify(signed.as_bytes(), &B64.decode(sig).unwrap())
        .expect("the signature verifies");
    (header, claims)
}

async fn next_logout_token(rx: &mut tokio::sync::mpsc::UnboundedReceiver<String>) -> String {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("a logout token arrives")
        .unwrap()
}

#[tokio::test]
async fn ending_a_session_sends_back_channel_logout_tokens_to_its_clients() {
    let s = TestServer::sqlite().await;
    let sub = user(&s, "alice").await;
    let (uri, mut rx) = logout_receiver().await;
    let rp = Rp::create(
        &s,
        json!({"first_party": true, "signing_alg": "EdDSA", "backchannel_logout_uri": uri}),
    )
    .await;
    // Another client in the same session, without a back-channel URI: told nothing.
    let quiet = Rp::create(&s, json!({"first_party": true})).await;
    let b = Browser::new(&s);
    let tok = tokens(&s, &b, &rp, "alice", &[]).await;
    let (_, id) = jwt_parts(str_of(&tok, "id_token"));
    let sid = id["sid"]
        .as_str()
        .expect("the ID token names the session")
        .to_owned();
    assert!(silent(&b, &quiet).await.get("code").is_some());

    // RP-initiated logout ends the session: the client hears of it.
    let page = b
        .get(
            "/logout",
            &[
                ("id_token_hint", str_of(&tok, "id_token")),
                ("post_logout_redirect_uri", BYE),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let token = next_logout_token(&mut rx).await;
    let (header, claims) = verified_eddsa(&s, &token).await;
    assert_eq!(header["typ"], "logout+jwt");
    assert_eq!(claims["iss"], s.url(&format!("/t/{T}")));
    assert_eq!(claims["aud"], rp.id.as_str());
    assert_eq!(claims["sub"], sub.as_str());
    assert_eq!(claims["sid"], sid.as_str());
    assert!(claims["events"]["http://schemas.openid.net/event/backchannel-logout"].is_object());
    assert!(claims.get("nonce").is_none(), "§2.4: a logout token has no nonce");
    assert!(claims["jti"].is_string());
    let iat = claims["iat"].as_i64().unwrap();
    assert!(claims["exp"].as_i64().unwrap() > iat && claims["exp"].as_i64().unwrap() <= iat + 120);

    // An administrator ending the next session: the same.
    let tok = tokens(&s, &b, &rp, "alice", &[]).await;
    let (_, id) = jwt_parts(str_of(&tok, "id_token"));
    let (status, body) = s
        .admin(
            Method::DELETE,
            &format!("/tenants/{T}/users/alice/sessions"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["deleted"], 1);
    let (_, claims) = jwt_parts(&next_logout_token(&mut rx).await);
    assert_eq!(claims["sid"], id["sid"]);
    assert_ne!(claims["sid"].as_str(), Some(sid.as_str()));
    // Nothing else was sent (the quiet client has no URI).
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(rx.try_recv().is_err());
}

#[tokio::test]
async fn session_and_refresh_lifetimes_are_the_tenants() {
    let s = TestServer::sqlite().await;
    let (status, t) = s
        .admin(
            Method::PATCH,
            &format!("/tenants/{T}"),
            Some(json!({"session_ttl": 600, "refresh_token_ttl": 3600})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{t}");
    assert_eq!(
        (t["session_ttl"].as_i64(), t["refresh_token_ttl"].as_i64()),
        (Some(600), Some(3600))
    );
    for bad in [
        json!({"session_ttl": 59}),
        json!({"refresh_token_ttl": 400 * 86_400}),
    ] {
        let (status, body) = s.admin(Method::PATCH, &format!("/tenants/{T}"), Some(bad)).await;
        expect_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
    }

    user(&s, "alice").await;
    let rp = Rp::create(&s, json!({"first_party": true})).await;
    let b = Browser::new(&s);
    let (_, challenge) = pkce();
    let page = b.authorize(&code_request(&rp, &challenge, &[])).await;
    let page = b.login(&page, "alice", PW).await;
    let cookie = page.set_cookie("sesame_session").expect("a session cookie");
    assert!(cookie.contains("; Max-Age=600"), "{cookie}");
    let (status, body) = s
        .admin(Method::GET, &format!("/tenants/{T}/users/alice/sessions"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let session = &body["sessions"][0];
    assert_eq!(
        session["expires_at"].as_i64().unwrap() - session["created_at"].as_i64().unwrap(),
        600
    );

    let tok = tokens(&s, &b, &rp, "alice", &[("scope", "openid offline_access")]).await;
    let refresh = str_of(&tok, "refresh_token");
    let basic = Some((rp.id.as_str(), rp.secret.as_deref().unwrap()));
    let (_, _, info) = s.post_form(T, "/introspect", basic, &[("token", refresh)]).await;
    assert_eq!(info["token_type"], "refresh_token", "{info}");
    assert_eq!(
        info["exp"].as_i64().unwrap() - info["iat"].as_i64().unwrap(),
        3600
    );
}

#[tokio::test]
async fn bad_bodies_get_a_page_or_an_error_object_never_a_bare_answer() {
    let s = TestServer::sqlite().await;
    let big = format!("csrf=x&pad={}", "a".repeat(70 * 1024));
    for endpoint in ["/authorize", "/login", "/consent", "/logout"] {
        let url = format!("{}{endpoint}", s.issuer(T));
        let too_big = s
            .http
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(big.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(too_big.status(), StatusCode::PAYLOAD_TOO_LARGE, "{endpoint}");
        assert!(too_big.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        assert!(
            too_big.text().await.unwrap().contains("larger than"),
            "{endpoint}"
        );
        let json = s
            .http
            .post(&url)
            .json(&json!({"client_id": "x"}))
            .send()
            .await
            .unwrap();
        assert_eq!(json.status(), StatusCode::BAD_REQUEST, "{endpoint}");
        assert!(json
            .text()
            .await
            .unwrap()
            .contains("application/x-www-form-urlencoded"));
    }
    // userinfo (an API): the error object; a body of another type is not read at all.
    let url = format!("{}/userinfo", s.issuer(T));
    let too_big = s
        .http
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(too_big.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: Value = too_big.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
    let other_type = s
        .http
        .post(&url)
        .json(&json!({"access_token": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(other_type.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        other_type.headers()["www-authenticate"],
        "Bearer realm=\"sesame\""
    );
}

// ---------------------------------------------------------------------------------------------
// 10. Disabled users

#[tokio::test]
async fn disabling_a_user_ends_their_sessions_and_revokes_their_tokens() {
    let s = TestServer::sqlite().await;
    user(&s, "alice").await;
    let rp = Rp::create(&s, json!({"first_party": true})).await;
    let rs = (rp.id.clone(), rp.secret.clone().unwrap());
    let b = Browser::new(&s);
    let tok = tokens(&s, &b, &rp, "alice", &[("scope", "openid offline_access")]).await;
    let access_token = str_of(&tok, "access_token");
    let refresh_token = str_of(&tok, "refresh_token");
    // An unredeemed code, too.
    let (pending_code, pending_verifier) = sign_in_and_get_code(&b, &rp, "alice", &[]).await;
    assert!(silent(&b, &rp).await.get("code").is_some());

    let (status, body) = s
        .admin(Method::POST, &format!("/tenants/{T}/users/alice/disable"), None)
        .await;
    assert_eq!(
        (status, body["disabled"].as_bool()),
        (StatusCode::OK, Some(true)),
        "{body}"
    );

    assert_eq!(silent(&b, &rp).await.get("error"), Some("login_required"));
    let (status, body) = rp.refresh(&s, refresh_token).await;
    expect_error(status, &body, StatusCode::BAD_REQUEST, "invalid_grant");
    assert_userinfo_refuses(&s, access_token).await;
    assert!(!active(&s, &rs, access_token).await);
    let (status, body) = rp.exchange(&s, &pending_code, Some(&pending_verifier)).await;
    expect_error(status, &body, StatusCode::BAD_REQUEST, "invalid_grant");
    // The right password now gets the same answer as a wrong one.
    let (_, challenge) = pkce();
    let page = b.authorize(&code_request(&rp, &challenge, &[])).await;
    let page = b.login(&page, "alice", PW).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(
        page.alert().as_deref(),
        Some("The username or password is incorrect.")
    );

    // Enabling gives none of it back: the sessions were ended, not just hidden, and the tokens
    // stay revoked.
    let (status, body) = s
        .admin(Method::POST, &format!("/tenants/{T}/users/alice/enable"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = s
        .admin(Method::GET, &format!("/tenants/{T}/users/alice/sessions"), None)
        .await;
    assert_eq!(
        (status, &body["sessions"]),
        (StatusCode::OK, &json!([])),
        "{body}"
    );
    assert_eq!(silent(&b, &rp).await.get("error"), Some("login_required"));
    let (status, body) = rp.refresh(&s, refresh_token).await;
    expect_error(status, &body, StatusCode::BAD_REQUEST, "invalid_grant");
    assert!(!active(&s, &rs, access_token).await);
    assert_userinfo_refuses(&s, access_token).await;
    // And alice can sign in afresh.
    tokens(&s, &b, &rp, "alice", &[]).await;
    // The code issued before the disabling (still inside its 60 s) belongs to a grant that the
    // disabling revoked: re-enabling the user must not make it redeemable again.
    let (status, body) = rp.exchange(&s, &pending_code, Some(&pending_verifier)).await;
    expect_error(status, &body, StatusCode::BAD_REQUEST, "invalid_grant");
}

#[tokio::test]
async fn withdrawing_consent_leaves_the_client_nothing_not_even_an_unredeemed_code() {
    let s = TestServer::sqlite().await;
    user(&s, "alice").await;
    let rp = Rp::create(&s, json!({})).await;
    let rs = (rp.id.clone(), rp.secret.clone().unwrap());
    let b = Browser::new(&s);
    let tok = tokens(&s, &b, &rp, "alice", &[("scope", "openid offline_access")]).await;
    let access_token = str_of(&tok, "access_token");
    let refresh_token = str_of(&tok, "refresh_token");
    let (pending_code, pending_verifier) =
        sign_in_and_get_code(&b, &rp, "alice", &[("scope", "openid offline_access")]).await;

    let (status, body) = s
        .admin(
            Method::DELETE,
            &format!("/tenants/{T}/users/alice/consents/{}", rp.id),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["consent_deleted"], true);
    let (status, body) = rp.refresh(&s, refresh_token).await;
    expect_error(status, &body, StatusCode::BAD_REQUEST, "invalid_grant");
    assert!(!active(&s, &rs, access_token).await);
    // The person is still signed in, but the client must ask again.
    assert_eq!(silent(&b, &rp).await.get("error"), Some("consent_required"));
    // A code the client got before the withdrawal (still inside its 60 s) must not turn into a
    // fresh access token and refresh token now.
    let (status, body) = rp.exchange(&s, &pending_code, Some(&pending_verifier)).await;
    expect_error(status, &body, StatusCode::BAD_REQUEST, "invalid_grant");
}

// ---------------------------------------------------------------------------------------------
// 11. Password guessing

/// Sleeps until just after the start of a wall-clock second, so that two requests made next
/// fall in the same second of the server's clock (its throttling delays are whole seconds).
async fn start_of_a_second() {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_millis() as u64;
    tokio::time::sleep(Duration::from_millis(1000 - ms + 10)).await;
}

#[tokio::test]
async fn wrong_passwords_and_unknown_users_look_the_same_and_guessing_is_throttled() {
    let s = TestServer::sqlite().await;
    user(&s, "alice").await;
    user(&s, "bob").await;
    let rp = Rp::create(&s, json!({"first_party": true})).await;
    let b = Browser::new(&s);
    let (_, challenge) = pkce();
    let page = b.authorize(&code_request(&rp, &challenge, &[])).await;

    let wrong = b.login(&page, "alice", "wrong password 1").await;
    let unknown = b.login(&page, "nobody", "wrong password 1").await;
    for p in [&wrong, &unknown] {
        assert_eq!(p.status, StatusCode::OK);
        assert!(p.is_login(), "the form is shown again");
        assert_eq!(
            p.alert().as_deref(),
            Some("The username or password is incorrect.")
        );
        assert!(p.set_cookie("sesame_session").is_none());
    }
    assert_eq!(b.cookie("sesame_session"), None);
    assert_eq!(
        wrong.hidden_value_of_id("username").as_deref(),
        Some("alice"),
        "the username is kept"
    );

    // Failures 2 and 3 for alice (and for the unknown name, which must be treated alike).
    for name in ["alice", "nobody"] {
        b.login(&page, name, "wrong password 2").await;
        start_of_a_second().await;
        let started = SystemTime::now();
        let third = b.login(&page, name, "wrong password 3").await;
        assert_eq!(third.status, StatusCode::OK);
        // The fourth attempt, even with the right password, waits.
        let throttled = b.login(&page, name, PW).await;
        let took = started.elapsed().unwrap();
        assert_eq!(
            throttled.status,
            StatusCode::TOO_MANY_REQUESTS,
            "{name}: 3 failures then an attempt {took:?} after the third began: {}",
            throttled.body
        );
        // The delay is 2 s from the second of the third failure: 1 or 2 s are left.
        let wait = throttled.header("retry-after").unwrap_or_default().to_owned();
        assert!(wait == "1" || wait == "2", "Retry-After {wait}");
        let unit = if wait == "1" { "second" } else { "seconds" };
        assert_eq!(
            throttled.alert(),
            Some(format!(
                "Too many failed sign-ins. Wait {wait} {unit} and try again."
            ))
        );
        assert!(throttled.is_login());
        assert_eq!(b.cookie("sesame_session"), None);
    }

    // Another account from the same address is not held back (the address allows 20).
    let page_bob = b.login(&page, "bob", PW).await;
    assert!(page_bob.redirect().get("code").is_some());
    // After the delay, alice can sign in (in another browser).
    tokio::time::sleep(Duration::from_millis(2100)).await;
    start_of_a_second().await;
    let alice = Browser::new(&s);
    let page = alice.authorize(&code_request(&rp, &challenge, &[])).await;
    let page = alice.login(&page, "alice", PW).await;
    assert!(page.redirect().get("code").is_some());
}

// ---------------------------------------------------------------------------------------------
// 12. Response modes and the implicit flow

#[tokio::test]
async fn form_post_and_fragment_response_modes_carry_the_response() {
    let s = TestServer::sqlite().await;
    user(&s, "alice").await;
    let rp = Rp::create(&s, json!({"first_party": true})).await;
    let b = Browser::new(&s);
    tokens(&s, &b, &rp, "alice", &[]).await;

    let (verifier, challenge) = pkce();
    let page = b
        .authorize(&code_request(&rp, &challenge, &[("response_mode", "form_post")]))
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_eq!(page.location(), None);
    assert_eq!(page.header("content-type"), Some("text/html; charset=utf-8"));
    assert_eq!(page.header("cache-control"), Some("no-store"));
    let form_at = page.body.find("<form id=\"form-post\"").expect("the form");
    let form = &page.body[form_at..];
    let action_at = form.find("action=\"").unwrap() + 8;
    let action = unescape(&form[action_at..action_at + form[action_at..].find('"').unwrap()]);
    assert_eq!(action, CB);
    assert!(form.starts_with("<form id=\"form-post\" method=\"post\""));
    assert_eq!(page.hidden("state").as_deref(), Some("st-1"));
    assert_eq!(page.hidden("iss"), Some(s.issuer(T)));
    let code = page.hidden("code").expect("the code");
    let csp = page.header("content-security-policy").unwrap();
    assert!(csp.contains("form-action https://app.example"), "{csp}");
    assert!(csp.contains("script-src 'sha256-"), "{csp}");
    let (status, body) = rp.exchange(&s, &code, Some(&verifier)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Errors go the same way.
    let page = b
        .authorize(&code_request(
            &rp,
            &challenge,
            &[("response_mode", "form_post"), ("scope", "openid nope")],
        ))
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.hidden("error").as_deref(), Some("invalid_scope"));
    assert_eq!(page.hidden("code"), None);

    let (verifier, challenge) = pkce();
    let page = b
        .authorize(&code_request(&rp, &challenge, &[("response_mode", "fragment")]))
        .await;
    let r = page.redirect();
    assert_eq!((r.base.as_str(), r.sep), (CB, Some('#')));
    assert!(!page.location().unwrap().contains('?'));
    assert_eq!(r.get("state"), Some("st-1"));
    assert_eq!(r.get("iss"), Some(s.issuer(T).as_str()));
    let (status, body) = rp.exchange(&s, r.get("code").unwrap(), Some(&verifier)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let page = b
        .authorize(&code_request(&rp, &challenge, &[("response_mode", "bogus")]))
        .await;
    assert_redirect_error(&s, &page, "invalid_request", Some("st-1"));
}

/// An implicit-flow request (no PKCE, state `st-1`, nonce `n-1`), changed by `extra`.
fn implicit_request<'a>(
    rp: &'a Rp,
    response_type: &'a str,
    extra: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    with(
        &[
            ("client_id", &rp.id),
            ("redirect_uri", CB),
            ("response_type", response_type),
            ("scope", SCOPE),
            ("state", "st-1"),
            ("nonce", "n-1"),
        ],
        extra,
    )
}

#[tokio::test]
async fn the_implicit_flow_needs_the_grant_and_a_nonce() {
    let s = TestServer::sqlite().await;
    let sub = user(&s, "alice").await;
    let code_only = Rp::create(&s, json!({"first_party": true})).await;
    let implicit = Rp::create(
        &s,
        json!({"grant_types": ["authorization_code", "implicit", "refresh_token"]}),
    )
    .await;
    let b = Browser::new(&s);

    // Without the implicit grant: unauthorized_client, in the fragment.
    let page = b
        .authorize(&implicit_request(&code_only, "id_token token", &[]))
        .await;
    let r = assert_redirect_error(&s, &page, "unauthorized_client", Some("st-1"));
    assert_eq!(r.sep, Some('#'));
    // id_token without a nonce (OpenID Connect Core §3.2.2.1).
    let page = b
        .authorize(&implicit_request(&implicit, "id_token token", &[("nonce", "")]))
        .await;
    let r = assert_redirect_error(&s, &page, "invalid_request", Some("st-1"));
    assert_eq!(r.sep, Some('#'));
    // Tokens never go in a query string.
    let page = b
        .authorize(&implicit_request(
            &implicit,
            "token",
            &[("response_mode", "query")],
        ))
        .await;
    assert_redirect_error(&s, &page, "invalid_request", Some("st-1"));

    let page = b
        .authorize(&implicit_request(&implicit, "id_token token", &[]))
        .await;
    let page = b.login(&page, "alice", PW).await;
    let page = b.consent(&page, true).await;
    let r = page.redirect();
    assert_eq!((r.base.as_str(), r.sep), (CB, Some('#')));
    assert_eq!(r.get("code"), None);
    assert_eq!(r.get("token_type"), Some("Bearer"));
    assert_eq!(r.get("state"), Some("st-1"));
    assert_eq!(r.get("iss"), Some(s.issuer(T).as_str()));
    let access_token = r.get("access_token").unwrap();
    let (h, at) = jwt_parts(access_token);
    assert_eq!(
        (h["typ"].as_str(), at["sub"].as_str()),
        (Some("at+jwt"), Some(sub.as_str()))
    );
    let (h, id) = jwt_parts(r.get("id_token").unwrap());
    assert_eq!(id["nonce"], "n-1");
    assert_eq!(id["aud"], implicit.id.as_str());
    assert_eq!(id["at_hash"], half_hash(h["alg"].as_str().unwrap(), access_token));
    // With an access token, the profile claims come from userinfo (OpenID Connect Core §5.4).
    assert!(id.get("email").is_none(), "{id}");
    let (status, _, info) = userinfo(&s, access_token).await;
    assert_eq!(
        (status, info["email"].as_str()),
        (StatusCode::OK, Some("alice@example.com"))
    );

    // id_token alone: the claims are in it, and there is no at_hash.
    let r = b
        .authorize(&implicit_request(&implicit, "id_token", &[]))
        .await
        .redirect();
    assert_eq!(r.get("access_token"), None);
    let (_, id) = jwt_parts(r.get("id_token").unwrap());
    assert_eq!(id["email"], "alice@example.com");
    assert!(id.get("at_hash").is_none(), "{id}");
    // No refresh token comes from the implicit flow: offline_access is dropped (Core §11).
    let page = b
        .authorize(&implicit_request(
            &implicit,
            "token",
            &[("scope", "openid offline_access")],
        ))
        .await;
    let page = b.consent(&page, true).await;
    let r = page.redirect();
    assert_eq!(r.get("scope"), Some("openid"), "{r:?}");
    assert_eq!(r.get("refresh_token"), None);
}

#[tokio::test]
async fn sessions_codes_and_tokens_do_not_cross_tenants() {
    let s = TestServer::sqlite().await;
    s.tenant("acme", json!({})).await;
    user(&s, "alice").await;
    let spec = json!({"client_id": "shared", "redirect_uris": [CB], "first_party": true});
    let rp = Rp::create(&s, spec.clone()).await;
    let (status, body) = s.admin(Method::POST, "/tenants/acme/clients", Some(spec)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let acme_secret = body["client_secret"].as_str().unwrap().to_owned();
    let b = Browser::new(&s);
    let (code, verifier) = sign_in_and_get_code(&b, &rp, "alice", &[]).await;

    // default's code at acme's token endpoint, by acme's client of the same id.
    let (status, _, body) = s
        .post_form(
            "acme",
            "/token",
            Some(("shared", &acme_secret)),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", CB),
                ("code_verifier", &verifier),
            ],
        )
        .await;
    expect_error(status, &body, StatusCode::BAD_REQUEST, "invalid_grant");
    // default's session cookie at acme.
    let acme = Browser::for_tenant(&s, "acme");
    acme.set_cookie("sesame_session", &b.cookie("sesame_session").unwrap());
    let (_, challenge) = pkce();
    let page = acme
        .authorize(&[
            ("client_id", "shared"),
            ("redirect_uri", CB),
            ("response_type", "code"),
            ("scope", "openid"),
            ("prompt", "none"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ])
        .await;
    let r = page.redirect();
    assert_eq!(r.get("error"), Some("login_required"), "{r:?}");
    assert_eq!(r.get("iss"), Some(s.issuer("acme").as_str()));
    // default's tokens at acme's userinfo; and an ID token is not an access token anywhere.
    let (status, tok) = rp.exchange(&s, &code, Some(&verifier)).await;
    assert_eq!(status, StatusCode::OK, "{tok}");
    let resp = s
        .http
        .get(format!("{}/userinfo", s.issuer("acme")))
        .bearer_auth(str_of(&tok, "access_token"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_userinfo_refuses(&s, str_of(&tok, "id_token")).await;
    assert_eq!(userinfo(&s, str_of(&tok, "access_token")).await.0, StatusCode::OK);
}

// ---------------------------------------------------------------------------------------------
// 13. Page headers and cookies

#[tokio::test]
async fn sign_in_pages_send_security_headers_and_strict_cookies() {
    let s = TestServer::sqlite().await;
    user(&s, "alice").await;
    let rp = Rp::create(&s, json!({})).await;
    let b = Browser::new(&s);
    let (_, challenge) = pkce();
    let page = b.authorize(&code_request(&rp, &challenge, &[])).await;
    assert!(page.is_login());
    let pages_headers = |p: &Page| {
        assert_eq!(p.header("content-type"), Some("text/html; charset=utf-8"));
        assert_eq!(p.header("x-frame-options"), Some("DENY"));
        assert_eq!(p.header("referrer-policy"), Some("no-referrer"));
        assert_eq!(p.header("cache-control"), Some("no-store"));
        assert_eq!(p.header("x-content-type-options"), Some("nosniff"));
        let csp = p.header("content-security-policy").expect("a CSP");
        for part in ["default-src 'none'", "frame-ancestors 'none'", "base-uri 'none'"] {
            assert!(csp.contains(part), "{csp}");
        }
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        csp.to_owned()
    };
    let csp = pages_headers(&page);
    // The login POST is answered with a redirect to the client, which form-action must allow.
    assert!(csp.ends_with("form-action 'self' https://app.example"), "{csp}");
    let path = format!("Path=/t/{T}");
    let csrf = page.set_cookie("sesame_csrf").expect("the CSRF cookie");
    for flag in [path.as_str(), "HttpOnly", "SameSite=Lax"] {
        assert!(csrf.contains(flag), "{csrf}");
    }
    assert!(!csrf.contains("Secure"), "served over http here: {csrf}");
    let page = b.login(&page, "alice", PW).await;
    pages_headers(&page);
    let session = page.set_cookie("sesame_session").expect("the session cookie");
    for flag in [path.as_str(), "HttpOnly", "SameSite=Lax", "Max-Age=86400"] {
        assert!(session.contains(flag), "{session}");
    }
    // The CSRF cookie is set once, not on every page.
    assert!(page.set_cookie("sesame_csrf").is_none());
    let page = b.consent(&page, true).await;
    assert_eq!(page.header("cache-control"), Some("no-store"));
    // Error pages, too.
    let page = b.authorize(&[("client_id", "nobody")]).await;
    let csp = pages_headers(&page);
    assert!(csp.ends_with("form-action 'none'"), "{csp}");
}

// ---------------------------------------------------------------------------------------------
// 14. /oob

#[tokio::test]
async fn the_oob_page_shows_only_code_shaped_values() {
    let s = TestServer::sqlite().await;
    let b = Browser::new(&s);
    let page = b.get("/oob", &[("code", "abc-DEF_123")]).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.hidden_value_of_id("code").as_deref(), Some("abc-DEF_123"));
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    assert_eq!(page.header("cache-control"), Some("no-store"));
    // Anyone can link here: markup, or free text dressed up as a code, is not shown.
    let page = b.get("/oob", &[("code", "<b>x</b>\"'&")]).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.body.contains("<b>x</b>"), "{}", page.body);
    assert!(page.hidden_value_of_id("code").is_none(), "{}", page.body);
    assert!(page.text().contains("There is no code to show here."));
    let page = b
        .get(
            "/oob",
            &[
                ("error", "server_error"),
                (
                    "error_description",
                    "Call +1 555 0100 to finish <script>alert(1)</script>",
                ),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.body.contains("<script>alert"), "{}", page.body);
    assert!(!page.text().contains("555"), "the description is not shown");
    assert!(page
        .text()
        .contains("The sign-in did not complete (server_error)."));
    let page = b.get("/oob", &[("error", "access_denied")]).await;
    assert!(page.text().contains("You declined the request."));
}

impl Page {
    /// The `value` of the input with `id`, HTML-unescaped.
    fn hidden_value_of_id(&self, id: &str) -> Option<String> {
        let at = self.body.find(&format!("id=\"{id}\""))?;
        let rest = &self.body[at..];
        let start = rest.find("value=\"")? + 7;
        let len = rest[start..].find('"')?;
        Some(unescape(&rest[start..start + len]))
    }
}
