//! The device authorization grant (RFC 8628) end to end over HTTP: `/device_authorization`,
//! the `/device` page (sign-in, user code, Approve / Deny) and the token endpoint's polling
//! answers; and the attacks on each (a device code of another client or used twice, a client
//! that did not opt in, user-code guessing, CSRF, a prefilled link that approves by itself).
//!
//! The "browser" is a reqwest client that never follows redirects and keeps the `sesame_*`
//! cookies by hand.

mod common;

use common::{expect_error, jwt_parts, unescape, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Mutex;

const T: &str = "default";
const PW: &str = "correct horse battery";
const GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

struct Page {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Page {
    fn hidden(&self, name: &str) -> Option<String> {
        let marker = format!("name=\"{name}\" value=\"");
        let start = self.body.find(&marker)? + marker.len();
        let len = self.body[start..].find('"')?;
        Some(unescape(&self.body[start..start + len]))
    }

    fn text(&self) -> String {
        unescape(&self.body)
    }

    fn is_login(&self) -> bool {
        self.body.contains("name=\"password\"")
    }

    fn is_code_form(&self) -> bool {
        self.body.contains("name=\"user_code\"")
    }

    fn is_confirm(&self) -> bool {
        self.body.contains("name=\"decision\"")
    }
}

/// A browser with its own cookie jar, no automatic redirects.
struct Browser<'s> {
    s: &'s TestServer,
    http: reqwest::Client,
    jar: Mutex<BTreeMap<String, String>>,
}

impl<'s> Browser<'s> {
    fn new(s: &'s TestServer) -> Self {
        Browser {
            s,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            jar: Mutex::new(BTreeMap::new()),
        }
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
            if let Some((name, value)) = sc.split(';').next().and_then(|p| p.split_once('=')) {
                if name.starts_with("sesame_") {
                    self.jar.lock().unwrap().insert(name.to_owned(), value.to_owned());
                }
            }
        }
        Page {
            status,
            headers,
            body,
        }
    }

    async fn get(&self, query: &[(&str, &str)]) -> Page {
        let q = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(query)
            .finish();
        let url = format!("{}/device?{q}", self.s.issuer(T));
        self.send(self.http.get(url)).await
    }

    async fn post(&self, form: &[(&str, &str)]) -> Page {
        let url = format!("{}/device", self.s.issuer(T));
        self.send(self.http.post(url).form(form)).await
    }

    /// Submits `page`'s form with its own csrf and request fields, and `extra`.
    async fn submit(&self, page: &Page, extra: &[(&str, &str)]) -> Page {
        let csrf = page.hidden("csrf").expect("csrf field");
        let request = page.hidden("request").expect("request field");
        let mut form = vec![("csrf", csrf.as_str()), ("request", request.as_str())];
        form.extend_from_slice(extra);
        self.post(&form).await
    }

    /// Opens /device and signs in as `user`: the user code form.
    async fn sign_in(&self, user: &str) -> Page {
        let page = self.get(&[]).await;
        assert!(page.is_login(), "{}", page.body);
        let page = self.submit(&page, &[("username", user), ("password", PW)]).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        assert!(page.is_code_form(), "{}", page.body);
        page
    }

    /// From the user code form, enters `code` and decides.
    async fn enter_and_decide(&self, form: &Page, code: &str, allow: bool) -> Page {
        let confirm = self.submit(form, &[("user_code", code)]).await;
        assert!(confirm.is_confirm(), "{}: {}", confirm.status, confirm.body);
        let decision = if allow { "allow" } else { "deny" };
        self.submit(&confirm, &[("decision", decision)]).await
    }
}

/// A public client that opted in to the device grant (and refresh tokens).
async fn device_client(s: &TestServer, grants: &[&str]) -> String {
    let (status, body) = s
        .admin(
            Method::POST,
            &format!("/tenants/{T}/clients"),
            Some(json!({
                "name": "Terminal <App>",
                "client_type": "public",
                "grant_types": grants,
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["client"]["client_id"].as_str().unwrap().to_owned()
}

async fn user(s: &TestServer, username: &str) -> String {
    let (status, body) = s
        .admin(
            Method::POST,
            &format!("/tenants/{T}/users"),
            Some(json!({"username": username, "password": PW, "email": format!("{username}@example.com")})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

async fn start(s: &TestServer, client: &str, scope: &str) -> (StatusCode, Value) {
    let (status, headers, body) = s
        .post_form(
            T,
            "/device_authorization",
            None,
            &[("client_id", client), ("scope", scope)],
        )
        .await;
    if status == StatusCode::OK {
        assert_eq!(headers["cache-control"], "no-store");
    }
    (status, body)
}

async fn poll(s: &TestServer, client: &str, device_code: &str) -> (StatusCode, Value) {
    let (status, _, body) = s
        .post_form(
            T,
            "/token",
            None,
            &[
                ("grant_type", GRANT),
                ("device_code", device_code),
                ("client_id", client),
            ],
        )
        .await;
    (status, body)
}

fn str_of<'v>(v: &'v Value, key: &str) -> &'v str {
    v[key].as_str().unwrap_or_else(|| panic!("no {key} in {v}"))
}

async fn userinfo_status(s: &TestServer, token: &str) -> StatusCode {
    s.http
        .get(format!("{}/userinfo", s.issuer(T)))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn discovery_lists_the_endpoint_and_the_grant() {
    let s = TestServer::sqlite().await;
    for doc in [
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
    ] {
        let d: Value = s
            .http
            .get(format!("{}{doc}", s.issuer(T)))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            d["device_authorization_endpoint"],
            format!("{}/device_authorization", s.issuer(T))
        );
        assert!(
            d["grant_types_supported"]
                .as_array()
                .unwrap()
                .contains(&json!(GRANT)),
            "{d}"
        );
    }
}

#[tokio::test]
async fn approved_device_gets_what_a_code_gets_once_on_each_store() {
    for s in TestServer::each_store().await {
        let client = device_client(&s, &["device_code", "refresh_token"]).await;
        let sub = user(&s, "alice").await;
        let (status, start) = start(&s, &client, "openid profile offline_access").await;
        assert_eq!(status, StatusCode::OK, "{start}");
        let device_code = str_of(&start, "device_code");
        let user_code = str_of(&start, "user_code");
        assert_eq!(device_code.len(), 43);
        assert_eq!(user_code.len(), 9, "XXXX-XXXX: {user_code}");
        assert!(user_code
            .chars()
            .all(|c| c == '-' || "BCDFGHJKLMNPQRSTVWXZ".contains(c)));
        assert_eq!(start["verification_uri"], format!("{}/device", s.issuer(T)));
        assert_eq!(
            start["verification_uri_complete"],
            format!("{}/device?user_code={user_code}", s.issuer(T))
        );
        assert_eq!(start["expires_in"], 600);
        assert_eq!(start["interval"], 5);

        let (status, body) = poll(&s, &client, device_code).await;
        expect_error(status, &body, StatusCode::BAD_REQUEST, "authorization_pending");

        let b = Browser::new(&s);
        let form = b.sign_in("alice").await;
        // Typed sloppily: lower case, spaces instead of the dash.
        let sloppy = user_code.to_lowercase().replace('-', " ");
        let confirm = b.submit(&form, &[("user_code", &sloppy)]).await;
        assert!(confirm.is_confirm(), "{}", confirm.body);
        let text = confirm.text();
        assert!(text.contains("Terminal <App>"), "the client is named: {text}");
        assert!(!confirm.body.contains("Terminal <App>"), "and escaped");
        assert!(
            text.contains("offline_access") && text.contains("profile"),
            "{text}"
        );
        assert!(text.contains(user_code), "{text}");
        let csp = confirm.headers["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("form-action 'self'") && csp.contains("frame-ancestors 'none'"),
            "{csp}"
        );
        let done = b.submit(&confirm, &[("decision", "allow")]).await;
        assert_eq!(done.status, StatusCode::OK, "{}", done.body);
        assert!(done.text().contains("Device connected"), "{}", done.body);

        // Polled again at once: approved beats polling too fast.
        let (status, tokens) = poll(&s, &client, device_code).await;
        assert_eq!(status, StatusCode::OK, "{tokens}");
        assert_eq!(tokens["token_type"], "Bearer");
        assert_eq!(tokens["scope"], "openid profile offline_access");
        let (_, at) = jwt_parts(str_of(&tokens, "access_token"));
        assert_eq!(at["sub"], sub.as_str());
        assert_eq!(at["client_id"], client.as_str());
        let (_, id) = jwt_parts(str_of(&tokens, "id_token"));
        assert_eq!(id["sub"], sub.as_str());
        assert_eq!(id["aud"], client.as_str());
        assert!(id["sid"].is_string() && id["auth_time"].is_i64(), "{id}");
        assert!(id.get("nonce").is_none());
        let access = str_of(&tokens, "access_token").to_owned();
        assert_eq!(userinfo_status(&s, &access).await, StatusCode::OK);

        // The consent is recorded as the consent page records it.
        let (status, consents) = s
            .admin(Method::GET, &format!("/tenants/{T}/users/{sub}/consents"), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{consents}");
        assert!(consents.to_string().contains(&client), "{consents}");

        // The refresh token works, under the same grant.
        let refresh = str_of(&tokens, "refresh_token").to_owned();
        let (status, _, refreshed) = s
            .post_form(
                T,
                "/token",
                None,
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", &refresh),
                    ("client_id", &client),
                ],
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{refreshed}");

        // Single use: the device code again is refused, and what it gave is revoked.
        let (status, body) = poll(&s, &client, device_code).await;
        expect_error(status, &body, StatusCode::BAD_REQUEST, "invalid_grant");
        assert_eq!(userinfo_status(&s, &access).await, StatusCode::UNAUTHORIZED);
        let successor = str_of(&refreshed, "refresh_token");
        let (status, _, body) = s
            .post_form(
                T,
                "/token",
                None,
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", successor),
                    ("client_id", &client),
                ],
            )
            .await;
        expect_error(status, &body, StatusCode::BAD_REQUEST, "invalid_grant");
    }
}

#[tokio::test]
async fn polling_faster_than_the_interval_gets_slow_down_and_a_longer_interval() {
    for s in TestServer::each_store().await {
        let client = device_client(&s, &["device_code"]).await;
        let (_, start) = start(&s, &client, "openid").await;
        let code = str_of(&start, "device_code");
        let (status, body) = poll(&s, &client, code).await;
        expect_error(status, &body, StatusCode::BAD_REQUEST, "authorization_pending");
        let (status, body) = poll(&s, &client, code).await;
        expect_error(status, &body, StatusCode::BAD_REQUEST, "slow_down");
        assert!(
            str_of(&body, "error_description").contains("10 seconds"),
            "{body}"
        );
        // Each further early poll adds 5 s more (RFC 8628 §3.5), in the store, so every
        // replica sees it.
        let (status, body) = poll(&s, &client, code).await;
        expect_error(status, &body, StatusCode::BAD_REQUEST, "slow_down");
        assert!(
            str_of(&body, "error_description").contains("15 seconds"),
            "{body}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_polls_are_not_both_in_time() {
    let s = TestServer::sqlite().await;
    let client = device_client(&s, &["device_code"]).await;
    let (_, start) = start(&s, &client, "").await;
    let code = str_of(&start, "device_code").to_owned();
    let url = format!("{}/token", s.issuer(T));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (http, url, code, client) = (s.http.clone(), url.clone(), code.clone(), client.clone());
        tasks.push(tokio::spawn(async move {
            let form = [
                ("grant_type", GRANT),
                ("device_code", &code),
                ("client_id", &client),
            ];
            let body: Value = http
                .post(url)
                .form(&form)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            body["error"].as_str().unwrap_or_default().to_owned()
        }));
    }
    let mut errors = Vec::new();
    for t in tasks {
        errors.push(t.await.unwrap());
    }
    let pending = errors.iter().filter(|e| *e == "authorization_pending").count();
    let slow = errors.iter().filter(|e| *e == "slow_down").count();
    assert_eq!((pending, slow), (1, 7), "{errors:?}");
}

#[tokio::test]
async fn an_expired_device_code_gets_expired_token() {
    let s = TestServer::start(sesame_store::testing::TestDb::sqlite(), |c| {
        c.device_code_ttl = Some(1)
    })
    .await;
    let client = device_client(&s, &["device_code"]).await;
    user(&s, "alice").await;
    let (_, start) = start(&s, &client, "openid").await;
    assert_eq!(start["expires_in"], 1);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let (status, body) = poll(&s, &client, str_of(&start, "device_code")).await;
    expect_error(status, &body, StatusCode::BAD_REQUEST, "expired_token");
    // Nor can it be approved any more.
    let b = Browser::new(&s);
    let form = b.sign_in("alice").await;
    let page = b
        .submit(&form, &[("user_code", str_of(&start, "user_code"))])
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.is_code_form() && page.text().contains("not valid, or it has expired"));
}

#[tokio::test]
async fn a_denied_device_gets_access_denied_on_each_store() {
    for s in TestServer::each_store().await {
        let client = device_client(&s, &["device_code"]).await;
        user(&s, "alice").await;
        let (_, start) = start(&s, &client, "openid").await;
        let b = Browser::new(&s);
        let form = b.sign_in("alice").await;
        let done = b
            .enter_and_decide(&form, str_of(&start, "user_code"), false)
            .await;
        assert_eq!(done.status, StatusCode::OK);
        assert!(done.text().contains("Request denied"), "{}", done.body);
        let (status, body) = poll(&s, &client, str_of(&start, "device_code")).await;
        expect_error(status, &body, StatusCode::BAD_REQUEST, "access_denied");
        // A denied code cannot be approved afterwards.
        let page = b
            .submit(&form, &[("user_code", str_of(&start, "user_code"))])
            .await;
        assert!(!page.is_confirm() && page.is_code_form(), "{}", page.body);
    }
}

#[tokio::test]
async fn a_device_code_of_another_client_is_not_valid() {
    let s = TestServer::sqlite().await;
    let mine = device_client(&s, &["device_code"]).await;
    let other = device_client(&s, &["device_code"]).await;
    user(&s, "alice").await;
    let (_, start) = start(&s, &mine, "openid").await;
    let code = str_of(&start, "device_code");
    let b = Browser::new(&s);
    let form = b.sign_in("alice").await;
    b.enter_and_decide(&form, str_of(&start, "user_code"), true).await;
    let (status, body) = poll(&s, &other, code).await;
    expect_error(status, &body, StatusCode::BAD_REQUEST, "invalid_grant");
    // The other client's attempt used nothing up.
    let (status, body) = poll(&s, &mine, code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Unknown and malformed device codes.
    for bad in ["", "x", &"A".repeat(43)] {
        let (status, body) = poll(&s, &mine, bad).await;
        let want = if bad.is_empty() {
            "invalid_request"
        } else {
            "invalid_grant"
        };
        expect_error(status, &body, StatusCode::BAD_REQUEST, want);
    }
}

#[tokio::test]
async fn a_client_that_did_not_opt_in_is_refused() {
    let s = TestServer::sqlite().await;
    let client = device_client(&s, &["authorization_code"]).await;
    let (status, body) = start(&s, &client, "openid").await;
    expect_error(status, &body, StatusCode::BAD_REQUEST, "unauthorized_client");
    let (status, body) = poll(&s, &client, &"A".repeat(43)).await;
    expect_error(status, &body, StatusCode::BAD_REQUEST, "unauthorized_client");
    // Scopes are checked as at /authorize, client authentication as at /token.
    let opted = device_client(&s, &["device_code"]).await;
    let (status, body) = start(&s, &opted, "openid admin").await;
    expect_error(status, &body, StatusCode::BAD_REQUEST, "invalid_scope");
    let (status, body) = start(&s, &opted, "offline_access").await;
    expect_error(status, &body, StatusCode::BAD_REQUEST, "invalid_scope");
    let (status, body) = start(&s, "nobody", "openid").await;
    expect_error(status, &body, StatusCode::UNAUTHORIZED, "invalid_client");
    let (confidential, secret) = s
        .client(T, json!({"grant_types": ["client_credentials", GRANT]}))
        .await;
    let (status, _, body) = s
        .post_form(T, "/device_authorization", Some((&confidential, "wrong")), &[])
        .await;
    expect_error(status, &body, StatusCode::UNAUTHORIZED, "invalid_client");
    let (status, _, body) = s
        .post_form(T, "/device_authorization", Some((&confidential, &secret)), &[])
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn guessing_user_codes_is_throttled_per_session() {
    let s = TestServer::sqlite().await;
    let client = device_client(&s, &["device_code"]).await;
    user(&s, "alice").await;
    let (_, start) = start(&s, &client, "openid").await;
    let b = Browser::new(&s);
    let mut form = b.sign_in("alice").await;
    for guess in ["BCDF-GHJK", "bcdf ghjl", "not a code", "BCDF-GHJM", "ZZZZ-ZZZZ"] {
        form = b.submit(&form, &[("user_code", guess)]).await;
        assert_eq!(form.status, StatusCode::BAD_REQUEST, "{guess}: {}", form.body);
        assert!(form.text().contains("not valid"), "{}", form.body);
    }
    // The sixth try, even with the right code, must wait.
    let page = b
        .submit(&form, &[("user_code", str_of(&start, "user_code"))])
        .await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS, "{}", page.body);
    assert!(page.headers.contains_key("retry-after"));
    assert!(
        page.text().contains("Too many wrong codes. Wait"),
        "{}",
        page.body
    );
    assert!(!page.is_confirm());
    // After the delay the right code goes through.
    let wait: u64 = page.headers["retry-after"].to_str().unwrap().parse().unwrap();
    tokio::time::sleep(std::time::Duration::from_secs(wait + 1)).await;
    let page = b
        .submit(&page, &[("user_code", str_of(&start, "user_code"))])
        .await;
    assert!(page.is_confirm(), "{}", page.body);
}

#[tokio::test]
async fn the_device_forms_need_their_csrf_token() {
    let s = TestServer::sqlite().await;
    let client = device_client(&s, &["device_code"]).await;
    user(&s, "alice").await;
    let (_, start) = start(&s, &client, "openid").await;
    let code = str_of(&start, "user_code");
    let b = Browser::new(&s);
    let form = b.sign_in("alice").await;
    let request = form.hidden("request").unwrap();
    // A cross-site form knows neither the cookie's token nor can it read the page.
    for csrf in ["", "forged"] {
        let page = b
            .post(&[("csrf", csrf), ("request", &request), ("user_code", code)])
            .await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.body);
    }
    let confirm = b.submit(&form, &[("user_code", code)]).await;
    assert!(confirm.is_confirm());
    let request = confirm.hidden("request").unwrap();
    let page = b
        .post(&[("csrf", "forged"), ("request", &request), ("decision", "allow")])
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.body);
    let (status, body) = poll(&s, &client, str_of(&start, "device_code")).await;
    expect_error(status, &body, StatusCode::BAD_REQUEST, "authorization_pending");
    // A request field from another step (the code form's) does not decide anything.
    let page = b.submit(&form, &[("decision", "allow"), ("user_code", "")]).await;
    assert!(!page.text().contains("Device connected"));
}

#[tokio::test]
async fn a_prefilled_link_still_needs_the_person_to_confirm() {
    let s = TestServer::sqlite().await;
    let client = device_client(&s, &["device_code"]).await;
    user(&s, "alice").await;
    let (_, start) = start(&s, &client, "openid").await;
    let code = str_of(&start, "user_code");
    let b = Browser::new(&s);
    // Signed out: the sign-in form, which carries the code on to the code form.
    let page = b.get(&[("user_code", code)]).await;
    assert!(page.is_login(), "{}", page.body);
    let page = b.submit(&page, &[("username", "alice"), ("password", PW)]).await;
    assert!(page.is_code_form() && !page.is_confirm(), "{}", page.body);
    assert_eq!(page.hidden("user_code").as_deref(), Some(code));
    // Signed in: the same, prefilled but not submitted.
    let page = b.get(&[("user_code", code)]).await;
    assert!(page.is_code_form() && !page.is_confirm(), "{}", page.body);
    assert_eq!(page.hidden("user_code").as_deref(), Some(code));
    // Free text in the link is never shown.
    let page = b.get(&[("user_code", "Call +1 555 0100 now")]).await;
    assert!(!page.text().contains("555"), "{}", page.body);
    let (status, body) = poll(&s, &client, str_of(&start, "device_code")).await;
    expect_error(status, &body, StatusCode::BAD_REQUEST, "authorization_pending");
}
