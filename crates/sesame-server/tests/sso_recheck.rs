//! Brokered SSO with `recheck_on_refresh`: the IdP's refresh token is kept at sign-in and used
//! at each use of Sesame's refresh token, so a person disabled at the IdP loses Sesame's grant.
//!
//! The upstream IdP is a second tenant (`idp`) of the same real `sesamed`, as in `tests/sso.rs`:
//! password sign-in there, its refresh tokens rotate, and a disabled user's refresh is refused
//! with `invalid_grant`, which is what Sesame must carry over.

mod common;

use common::{expect_error, jwt_parts, unescape, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

const T: &str = "default";
const CB: &str = "https://app.example/cb";
const PW: &str = "correct horse battery";

// ---------------------------------------------------------------------------------------------
// A browser that keeps cookies per path and follows no redirects (as in tests/sso.rs).

struct Page {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Page {
    fn location(&self) -> &str {
        assert_eq!(
            self.status,
            StatusCode::SEE_OTHER,
            "expected a redirect, got {}: {}",
            self.status,
            self.body
        );
        self.headers["location"].to_str().unwrap()
    }

    fn hidden(&self, name: &str) -> Option<String> {
        let marker = format!("name=\"{name}\" value=\"");
        let start = self.body.find(&marker)? + marker.len();
        let len = self.body[start..].find('"')?;
        Some(unescape(&self.body[start..start + len]))
    }

    fn sso_button(&self, connection: &str) -> Option<String> {
        let marker = format!("/sso/{connection}/start?");
        let at = self.body.find(&marker)?;
        let start = self.body[..at].rfind("href=\"")? + "href=\"".len();
        let len = self.body[start..].find('"')?;
        Some(unescape(&self.body[start..start + len]))
    }
}

fn query_of(url: &str) -> HashMap<String, String> {
    let q = url.split_once('?').map_or("", |(_, q)| q);
    form_urlencoded::parse(q.as_bytes()).into_owned().collect()
}

struct Browser {
    http: reqwest::Client,
    jar: Mutex<BTreeMap<(String, String), String>>,
}

impl Browser {
    fn new() -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            jar: Mutex::new(BTreeMap::new()),
        }
    }

    async fn send(&self, url: &str, req: reqwest::RequestBuilder) -> Page {
        let path = url
            .split_once("://")
            .and_then(|(_, rest)| rest.find('/').map(|i| rest[i..].to_owned()))
            .unwrap_or_else(|| "/".into());
        let cookies = self
            .jar
            .lock()
            .unwrap()
            .iter()
            .filter(|((p, _), _)| path.starts_with(p.as_str()))
            .map(|((_, n), v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
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
            let mut parts = sc.split(';');
            let Some((name, value)) = parts.next().and_then(|p| p.split_once('=')) else {
                continue;
            };
            let path = parts
                .filter_map(|a| a.trim().strip_prefix("Path="))
                .next()
                .unwrap_or("/")
                .to_owned();
            let key = (path, name.to_owned());
            let mut jar = self.jar.lock().unwrap();
            if value.is_empty() || sc.contains("Max-Age=0") {
                jar.remove(&key);
            } else {
                jar.insert(key, value.to_owned());
            }
        }
        Page {
            status,
            headers,
            body,
        }
    }

    async fn get(&self, url: &str) -> Page {
        self.send(url, self.http.get(url)).await
    }

    async fn post(&self, url: &str, form: &[(&str, &str)]) -> Page {
        self.send(url, self.http.post(url).form(form)).await
    }
}

// ---------------------------------------------------------------------------------------------
// Two tenants: `idp` upstream, `default` brokering it to an application.

struct World {
    s: TestServer,
    rp: (String, String),
    /// Frank's user id at the upstream tenant.
    frank: String,
}

/// `upstream_refresh`: whether the IdP's client gets refresh tokens with every code.
async fn world(recheck: bool, upstream_refresh: bool) -> World {
    let s = TestServer::sqlite().await;
    s.tenant("idp", json!({})).await;
    let callback = format!("{}/sso/upstream/callback", s.issuer(T));
    let (status, idp_client) = s
        .admin(
            Method::POST,
            "/tenants/idp/clients",
            Some(json!({
                "name": "Broker", "redirect_uris": [callback], "first_party": true,
                "refresh_without_offline_access": upstream_refresh,
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{idp_client}");
    let (status, frank) = s
        .admin(
            Method::POST,
            "/tenants/idp/users",
            Some(json!({
                "username": "frank", "password": PW, "email": "frank@corp.test",
                "email_verified": true, "name": "Frank Upstream",
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{frank}");
    let (status, body) = s
        .admin(
            Method::POST,
            &format!("/tenants/{T}/sso"),
            Some(json!({
                "id": "upstream",
                "display_name": "Upstream Sesame",
                "issuer": s.issuer("idp"),
                "client_id": idp_client["client"]["client_id"],
                "client_secret": idp_client["client_secret"],
                "recheck_on_refresh": recheck,
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["recheck_on_refresh"], recheck, "{body}");
    let (status, rp) = s
        .admin(
            Method::POST,
            &format!("/tenants/{T}/clients"),
            Some(json!({
                "name": "App", "redirect_uris": [CB], "first_party": true,
                "refresh_without_offline_access": true,
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{rp}");
    World {
        rp: (
            rp["client"]["client_id"].as_str().unwrap().to_owned(),
            rp["client_secret"].as_str().unwrap().to_owned(),
        ),
        frank: frank["id"].as_str().unwrap_or("frank").to_owned(),
        s,
    }
}

impl World {
    fn rp(&self) -> (&str, &str) {
        (&self.rp.0, &self.rp.1)
    }

    /// Through Sesame's sign-in page, the SSO button, the upstream tenant's password page and
    /// back: the callback's answer, and the PKCE verifier of the application's request.
    async fn sign_in(&self) -> (Page, String) {
        let s = &self.s;
        let b = Browser::new();
        let verifier = "recheck-test-pkce-verifier-0123456789-abcdefghijklmnop".to_owned();
        let challenge = {
            use base64::Engine;
            let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(d.as_ref())
        };
        let mut q = form_urlencoded::Serializer::new(String::new());
        q.extend_pairs([
            ("client_id", self.rp.0.as_str()),
            ("redirect_uri", CB),
            ("response_type", "code"),
            ("scope", "openid profile email"),
            ("state", "app-state"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ]);
        let login = b.get(&format!("{}/authorize?{}", s.issuer(T), q.finish())).await;
        assert_eq!(login.status, StatusCode::OK, "{}", login.body);
        let start = b.get(&login.sso_button("upstream").expect("button")).await;
        let idp_login = b.get(start.location()).await;
        assert_eq!(idp_login.status, StatusCode::OK, "{}", idp_login.body);
        let back = b
            .post(
                &format!("{}/login", s.issuer("idp")),
                &[
                    ("csrf", &idp_login.hidden("csrf").expect("csrf")),
                    ("request", &idp_login.hidden("request").expect("request")),
                    ("username", "frank"),
                    ("password", PW),
                ],
            )
            .await;
        let cb = back.location().to_owned();
        (b.get(&cb).await, verifier)
    }

    /// A whole sign-in; the application's tokens.
    async fn tokens(&self) -> Value {
        let (page, verifier) = self.sign_in().await;
        let location = page.location();
        assert!(location.starts_with(CB), "{location}");
        let code = query_of(location)["code"].clone();
        let (status, _, body) = self
            .s
            .post_form(
                T,
                "/token",
                Some(self.rp()),
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", CB),
                    ("code_verifier", &verifier),
                ],
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            jwt_parts(body["id_token"].as_str().unwrap()).1["amr"],
            json!(["fed"])
        );
        body
    }

    async fn refresh(&self, refresh_token: &str) -> (StatusCode, Value) {
        let (status, _, body) = self
            .s
            .post_form(
                T,
                "/token",
                Some(self.rp()),
                &[("grant_type", "refresh_token"), ("refresh_token", refresh_token)],
            )
            .await;
        (status, body)
    }

    async fn set_upstream_disabled(&self, disabled: bool) {
        let action = if disabled { "disable" } else { "enable" };
        let (status, body) = self
            .s
            .admin(
                Method::POST,
                &format!("/tenants/idp/users/{}/{action}", self.frank),
                None,
            )
            .await;
        assert!(status.is_success(), "{status} {body}");
    }
}

// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_person_disabled_upstream_loses_the_sesame_grant_at_its_next_refresh() {
    let w = world(true, true).await;
    let tokens = w.tokens().await;
    // While the IdP still vouches for Frank, refreshes go through (and the IdP's rotated
    // refresh token is kept: a second refresh uses it, past the IdP's grace for the first).
    let (status, first) = w.refresh(tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let (status, second) = w.refresh(first["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    let access = second["access_token"].as_str().unwrap();
    assert_eq!(w.s.introspect(T, w.rp(), access).await["active"], true);

    w.set_upstream_disabled(true).await;
    let (status, refused) = w.refresh(second["refresh_token"].as_str().unwrap()).await;
    expect_error(status, &refused, StatusCode::BAD_REQUEST, "invalid_grant");
    assert!(
        refused["error_description"]
            .as_str()
            .unwrap()
            .contains("upstream"),
        "names the connection: {refused}"
    );
    // The grant is revoked: its access token is no longer active ...
    assert_eq!(w.s.introspect(T, w.rp(), access).await["active"], false);
    // ... and enabling Frank upstream again does not revive the refresh token.
    w.set_upstream_disabled(false).await;
    let (status, again) = w.refresh(second["refresh_token"].as_str().unwrap()).await;
    expect_error(status, &again, StatusCode::BAD_REQUEST, "invalid_grant");
    // A new sign-in works again.
    let tokens = w.tokens().await;
    let (status, body) = w.refresh(tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn without_the_flag_a_refresh_does_not_ask_the_idp() {
    let w = world(false, true).await;
    let tokens = w.tokens().await;
    w.set_upstream_disabled(true).await;
    let (status, body) = w.refresh(tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn a_connection_that_rechecks_needs_a_refresh_token_from_the_idp() {
    // The IdP's client gets no refresh token without offline_access, which the connection
    // does not ask for: the sign-in is refused with a page that says what to change, and no
    // user is created.
    let w = world(true, false).await;
    let (page, _) = w.sign_in().await;
    assert_eq!(page.status, StatusCode::BAD_GATEWAY, "{}", page.body);
    let text = unescape(&page.body);
    assert!(
        text.contains("no refresh token") && text.contains("offline_access"),
        "{text}"
    );
    let (_, users) = w.s.admin(Method::GET, &format!("/tenants/{T}/users"), None).await;
    assert!(!users.to_string().contains("frank@corp.test"), "{users}");
    // Asking for offline_access fixes it.
    let (status, body) =
        w.s.admin(
            Method::PATCH,
            &format!("/tenants/{T}/sso/upstream"),
            Some(json!({ "scopes": ["openid", "email", "profile", "offline_access"] })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let tokens = w.tokens().await;
    let (status, body) = w.refresh(tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    w.set_upstream_disabled(true).await;
    let (status, body) = w.refresh(body["refresh_token"].as_str().unwrap()).await;
    expect_error(status, &body, StatusCode::BAD_REQUEST, "invalid_grant");
}
