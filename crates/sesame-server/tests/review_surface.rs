//! A security review's findings on Sesame's outer surface (and the sign-in status codes), each
//! tried as an attacker would over HTTP against a running `sesamed`: a cross-site logout that
//! could not see the session, a repeated `state`, a forged `X-Forwarded-For`, files other local
//! users could read, and a 401 without a challenge.

mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use common::{jwt_parts, unescape, TestServer};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

const T: &str = "default";
const CB: &str = "https://app.example/cb";
const BYE: &str = "https://app.example/bye";
const PW: &str = "correct horse battery";

// ---------------------------------------------------------------------------------------------
// A small test-side browser (the sign-in tests have a fuller one)

struct Page {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Page {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn location(&self) -> Option<&str> {
        self.header("location")
    }

    /// The value of the input called `name`, HTML-unescaped.
    fn hidden(&self, name: &str) -> Option<String> {
        let marker = format!("name=\"{name}\" value=\"");
        let start = self.body.find(&marker)? + marker.len();
        let len = self.body[start..].find('"')?;
        Some(unescape(&self.body[start..start + len]))
    }

    fn is_login(&self) -> bool {
        self.body.contains("name=\"password\"") && self.body.contains("name=\"request\"")
    }

    fn is_logout_confirmation(&self) -> bool {
        self.status == StatusCode::OK && self.hidden("confirm").as_deref() == Some("yes")
    }

    /// The parameters of a 303's `Location` (query or fragment).
    fn redirect(&self) -> BTreeMap<String, String> {
        assert_eq!(
            self.status,
            StatusCode::SEE_OTHER,
            "expected a redirect: {}",
            self.body
        );
        let loc = self.location().expect("a redirect has a Location");
        let rest = loc.find(['?', '#']).map_or("", |i| &loc[i + 1..]);
        form_urlencoded::parse(rest.as_bytes()).into_owned().collect()
    }
}

/// A browser with its own `sesame_*` cookies, no automatic redirects. `cross_site` requests
/// arrive as a form on another site would make them: without our `SameSite=Lax` cookies (the
/// answer's cookies are still kept, as a browser keeps them).
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

    fn url(&self, endpoint: &str) -> String {
        format!("{}{endpoint}", self.s.issuer(T))
    }

    async fn send(&self, req: reqwest::RequestBuilder, with_cookies: bool) -> Page {
        let cookies = {
            let jar = self.jar.lock().unwrap();
            jar.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ")
        };
        let req = if with_cookies && !cookies.is_empty() {
            req.header("cookie", cookies)
        } else {
            req
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
            let mut jar = self.jar.lock().unwrap();
            if value.is_empty() || sc.contains("Max-Age=0") {
                jar.remove(name);
            } else {
                jar.insert(name.to_owned(), value.to_owned());
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
        self.send(self.http.get(format!("{}?{q}", self.url(endpoint))), true)
            .await
    }

    async fn post(&self, endpoint: &str, form: &[(&str, &str)]) -> Page {
        self.send(self.http.post(self.url(endpoint)).form(form), true)
            .await
    }

    /// A GET without our cookies, with the Fetch Metadata a browser would send.
    async fn get_without_cookies(&self, endpoint: &str, query: &[(&str, &str)], fetch: [&str; 3]) -> Page {
        let q = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(query)
            .finish();
        let mut req = self.http.get(format!("{}?{q}", self.url(endpoint)));
        for (name, value) in ["sec-fetch-site", "sec-fetch-mode", "sec-fetch-dest"]
            .iter()
            .zip(fetch)
        {
            if !value.is_empty() {
                req = req.header(*name, value);
            }
        }
        self.send(req, false).await
    }

    async fn post_cross_site(&self, endpoint: &str, form: &[(&str, &str)]) -> Page {
        let req = self
            .http
            .post(self.url(endpoint))
            .form(form)
            .header("sec-fetch-site", "cross-site")
            .header("sec-fetch-mode", "navigate")
            .header("sec-fetch-dest", "document");
        self.send(req, false).await
    }

    async fn login(&self, page: &Page, user: &str, password: &str, headers: &[(&str, &str)]) -> Page {
        assert!(
            page.is_login(),
            "expected the login page, got {}: {}",
            page.status,
            page.body
        );
        let form = [
            ("csrf", page.hidden("csrf").unwrap()),
            ("request", page.hidden("request").unwrap()),
            ("username", user.to_owned()),
            ("password", password.to_owned()),
        ];
        let mut req = self.http.post(self.url("/login")).form(&form);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        self.send(req, true).await
    }

    /// Posts the confirmation page's form as the person's click would: same-origin, so with
    /// the cookies.
    async fn confirm_logout(&self, page: &Page) -> Page {
        assert!(
            page.is_logout_confirmation(),
            "expected the confirmation page: {}",
            page.body
        );
        let mut form = Vec::new();
        for name in [
            "csrf",
            "confirm",
            "client_id",
            "post_logout_redirect_uri",
            "state",
        ] {
            if let Some(v) = page.hidden(name) {
                form.push((name, v));
            }
        }
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        self.post("/logout", &form).await
    }
}

/// A first-party client (no consent page) with [`CB`] and [`BYE`]; `extra` adds fields.
async fn client(s: &TestServer, extra: Value) -> (String, String) {
    let mut spec = json!({
        "name": "Example App",
        "redirect_uris": [CB],
        "post_logout_redirect_uris": [BYE],
        "first_party": true,
    });
    spec.as_object_mut()
        .unwrap()
        .extend(extra.as_object().cloned().unwrap_or_default());
    let (status, body) = s
        .admin(Method::POST, &format!("/tenants/{T}/clients"), Some(spec))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    (
        body["client"]["client_id"].as_str().unwrap().to_owned(),
        body["client_secret"].as_str().unwrap().to_owned(),
    )
}

async fn user(s: &TestServer, username: &str) -> String {
    let (status, body) = s
        .admin(
            Method::POST,
            &format!("/tenants/{T}/users"),
            Some(json!({"username": username, "password": PW})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

fn pkce() -> (String, String) {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).unwrap();
    let verifier = B64.encode(bytes);
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    (verifier, B64.encode(digest.as_ref()))
}

fn code_request<'a>(client_id: &'a str, challenge: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("client_id", client_id),
        ("redirect_uri", CB),
        ("response_type", "code"),
        ("scope", "openid"),
        ("state", "st-1"),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ]
}

/// Signs `username` in through the login page; returns the token response.
async fn sign_in(s: &TestServer, b: &Browser<'_>, rp: &(String, String), username: &str) -> Value {
    let (verifier, challenge) = pkce();
    let page = b.get("/authorize", &code_request(&rp.0, &challenge)).await;
    let page = b.login(&page, username, PW, &[]).await;
    let code = page.redirect().get("code").expect("a code").clone();
    let (status, _, tok) = s
        .post_form(
            T,
            "/token",
            Some((&rp.0, &rp.1)),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", CB),
                ("code_verifier", &verifier),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{tok}");
    tok
}

/// `prompt=none`: `Some(code)` while the browser is signed in, else the error.
async fn silent(b: &Browser<'_>, rp: &(String, String)) -> Result<String, String> {
    let (_, challenge) = pkce();
    let mut q = code_request(&rp.0, &challenge);
    q.push(("prompt", "none"));
    let r = b.get("/authorize", &q).await.redirect();
    match r.get("code") {
        Some(code) => Ok(code.clone()),
        None => Err(r.get("error").cloned().unwrap_or_default()),
    }
}

/// A client's back-channel logout endpoint (Back-Channel Logout §2.5).
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

/// The `sid` of the next logout token, or `None` if none comes within `wait`.
async fn next_logout_sid(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<String>,
    wait: Duration,
) -> Option<String> {
    let token = tokio::time::timeout(wait, rx.recv()).await.ok()??;
    jwt_parts(&token).1["sid"].as_str().map(str::to_owned)
}

// ---------------------------------------------------------------------------------------------
// 4. Logout that cannot see the session

#[tokio::test]
async fn a_cross_site_logout_post_is_not_told_it_worked_until_the_session_has_ended() {
    let s = TestServer::sqlite().await;
    user(&s, "alice").await;
    let (uri, mut rx) = logout_receiver().await;
    let rp = client(&s, json!({"backchannel_logout_uri": uri})).await;
    let b = Browser::new(&s);
    let tok = sign_in(&s, &b, &rp, "alice").await;
    let sid = jwt_parts(tok["id_token"].as_str().unwrap()).1["sid"]
        .as_str()
        .unwrap()
        .to_owned();

    // The RP's page posts its request to /logout: the browser leaves the Lax cookie behind.
    let request = [
        ("client_id", rp.0.as_str()),
        ("post_logout_redirect_uri", BYE),
        ("state", "bye-1"),
    ];
    let page = b.post_cross_site("/logout", &request).await;
    assert_eq!(
        page.location(),
        None,
        "no success redirect while the session lives"
    );
    assert!(page.is_logout_confirmation(), "{} {}", page.status, page.body);
    assert!(silent(&b, &rp).await.is_ok(), "the session lives on");
    assert_eq!(next_logout_sid(&mut rx, Duration::from_millis(300)).await, None);

    // The person's click on the page is same-origin: the cookie comes, the session ends.
    let page = b.confirm_logout(&page).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(page.location(), Some("https://app.example/bye?state=bye-1"));
    assert_eq!(silent(&b, &rp).await, Err("login_required".into()));
    assert_eq!(next_logout_sid(&mut rx, Duration::from_secs(10)).await, Some(sid));
}

#[tokio::test]
async fn a_cross_site_logout_post_with_an_id_token_hint_ends_the_session_it_names() {
    let s = TestServer::sqlite().await;
    user(&s, "alice").await;
    let (uri, mut rx) = logout_receiver().await;
    let rp = client(&s, json!({"backchannel_logout_uri": uri})).await;
    let b = Browser::new(&s);
    let tok = sign_in(&s, &b, &rp, "alice").await;
    let id_token = tok["id_token"].as_str().unwrap();
    let sid = jwt_parts(id_token).1["sid"].as_str().unwrap().to_owned();

    let request = [
        ("id_token_hint", id_token),
        ("post_logout_redirect_uri", BYE),
        ("state", "bye-2"),
    ];
    let page = b.post_cross_site("/logout", &request).await;
    assert_eq!(
        page.location(),
        Some("https://app.example/bye?state=bye-2"),
        "{}",
        page.body
    );
    assert_eq!(silent(&b, &rp).await, Err("login_required".into()));
    assert_eq!(next_logout_sid(&mut rx, Duration::from_secs(10)).await, Some(sid));

    // Signed in again: the old hint names an ended session, and a cookie-less request cannot
    // show whether the browser has another, so it is asked, and the new session lives on.
    sign_in(&s, &b, &rp, "alice").await;
    let page = b.post_cross_site("/logout", &request).await;
    assert_eq!(page.location(), None);
    assert!(page.is_logout_confirmation(), "{}", page.body);
    assert!(silent(&b, &rp).await.is_ok());
}

#[tokio::test]
async fn an_id_token_hint_cannot_end_a_session_of_someone_else() {
    let s = TestServer::sqlite().await;
    let alice = user(&s, "alice").await;
    user(&s, "bob").await;
    let rp = client(&s, json!({})).await;
    let bob = Browser::new(&s);
    let tok = sign_in(&s, &bob, &rp, "bob").await;
    let bob_sid = jwt_parts(tok["id_token"].as_str().unwrap()).1["sid"]
        .as_str()
        .unwrap()
        .to_owned();

    // A validly signed ID token for alice that carries bob's sid (as if issued by mistake):
    // the session is not alice's, so it is not ended.
    let t = s.running.app.tenant(T).await.unwrap();
    let key = t.keyring.active(t.tenant.signing_alg).unwrap();
    let claims = json!({
        "iss": s.issuer(T), "sub": alice, "aud": rp.0, "sid": bob_sid,
        "iat": sesame_core::now(), "exp": sesame_core::now() + 300,
    });
    let hint = sesame_core::jwt::sign(
        key,
        sesame_core::jwt::Kind::IdToken,
        claims.to_string().as_bytes(),
    )
    .unwrap();
    let page = bob
        .post_cross_site(
            "/logout",
            &[("id_token_hint", &hint), ("post_logout_redirect_uri", BYE)],
        )
        .await;
    assert_eq!(page.location(), None);
    assert!(page.is_logout_confirmation(), "{}", page.body);
    assert!(silent(&bob, &rp).await.is_ok(), "bob is still signed in");

    // A forged signature is refused outright.
    let mut parts: Vec<&str> = hint.split('.').collect();
    parts[2] = "AAAA";
    let forged = parts.join(".");
    let page = bob
        .post_cross_site("/logout", &[("id_token_hint", &forged)])
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(silent(&bob, &rp).await.is_ok());
}

#[tokio::test]
async fn a_logout_without_a_cookie_is_told_it_worked_only_when_the_cookie_would_have_come() {
    let s = TestServer::sqlite().await;
    user(&s, "alice").await;
    let rp = client(&s, json!({})).await;
    let b = Browser::new(&s);
    sign_in(&s, &b, &rp, "alice").await;
    let request = [("client_id", rp.0.as_str()), ("post_logout_redirect_uri", BYE)];
    // Requests that would not carry a SameSite=Lax cookie even if the browser had one: no
    // metadata (nobody can tell), a cross-site frame, a cross-site fetch. The person is asked.
    for fetch in [
        ["", "", ""],
        ["cross-site", "navigate", "iframe"],
        ["cross-site", "cors", "empty"],
    ] {
        let page = b.get_without_cookies("/logout", &request, fetch).await;
        assert_eq!(page.location(), None, "{fetch:?}");
        assert!(page.is_logout_confirmation(), "{fetch:?}: {}", page.body);
    }
    assert!(silent(&b, &rp).await.is_ok());
    // A top-level navigation or a same-origin request would have carried it: without one,
    // there is no session, and saying so is true.
    for fetch in [
        ["cross-site", "navigate", "document"],
        ["same-origin", "navigate", "document"],
    ] {
        let page = b.get_without_cookies("/logout", &request, fetch).await;
        assert_eq!(page.location(), Some(BYE), "{fetch:?}: {}", page.body);
    }
}

// ---------------------------------------------------------------------------------------------
// 5. Repeated state

#[tokio::test]
async fn a_repeated_state_is_invalid_request_and_neither_value_comes_back() {
    let s = TestServer::sqlite().await;
    user(&s, "alice").await;
    let rp = client(&s, json!({})).await;
    let b = Browser::new(&s);
    let (_, challenge) = pkce();
    let mut q = code_request(&rp.0, &challenge);
    q.push(("state", "st-2"));
    for page in [b.get("/authorize", &q).await, b.post("/authorize", &q).await] {
        let r = page.redirect();
        assert!(page.location().unwrap().starts_with(CB));
        assert_eq!(
            r.get("error").map(String::as_str),
            Some("invalid_request"),
            "{r:?}"
        );
        assert!(r["error_description"].contains("state"), "{r:?}");
        assert_eq!(r.get("state"), None, "{r:?}");
        assert_eq!(r.get("iss"), Some(&s.issuer(T)));
        assert_eq!(r.get("code"), None);
    }
    // Signed in, the same: no code comes back for a request with two states.
    sign_in(&s, &b, &rp, "alice").await;
    let r = b.get("/authorize", &q).await.redirect();
    assert_eq!(
        (r.get("error").map(String::as_str), r.get("code")),
        (Some("invalid_request"), None)
    );
}

// ---------------------------------------------------------------------------------------------
// 6. client_address_header only from trusted proxies

async fn failed_sign_in(b: &Browser<'_>, rp: &(String, String), username: &str, forwarded: &str) -> Page {
    let (_, challenge) = pkce();
    let page = b.get("/authorize", &code_request(&rp.0, &challenge)).await;
    b.login(
        &page,
        username,
        "wrong password",
        &[("x-forwarded-for", forwarded)],
    )
    .await
}

#[tokio::test]
async fn a_forged_x_forwarded_for_from_an_untrusted_peer_gets_no_fresh_throttling_bucket() {
    // The header is configured, but the test's peer (127.0.0.1) is not a trusted proxy.
    let s = TestServer::start(sesame_store::testing::TestDb::sqlite(), |c| {
        c.client_address_header = Some("x-forwarded-for".into());
        c.trusted_proxies = vec!["192.0.2.0/24".into()];
    })
    .await;
    let rp = client(&s, json!({})).await;
    let b = Browser::new(&s);
    // A new made-up name (so no account limit) and a new forged address every time: all of
    // them count against the one real address, whose limit (20 today) soon answers 429.
    let mut throttled = None;
    for i in 0..40 {
        let page = failed_sign_in(&b, &rp, &format!("nobody-{i}"), &format!("203.0.113.{i}")).await;
        if page.status == StatusCode::TOO_MANY_REQUESTS {
            throttled = Some((i, page));
            break;
        }
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    }
    let (i, page) = throttled.expect("forged addresses escaped the per-address limit");
    assert!(
        i > 3,
        "throttled after {i} failures: that is an account's limit, not the address's"
    );
    assert!(page.header("retry-after").is_some());
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_client_is_the_right_most_untrusted_address() {
    let s = TestServer::start(sesame_store::testing::TestDb::sqlite(), |c| {
        c.client_address_header = Some("x-forwarded-for".into());
        c.trusted_proxies = vec!["127.0.0.1".into(), "10.0.0.0/8".into()];
    })
    .await;
    user(&s, "alice").await;
    let rp = client(&s, json!({})).await;
    // Each sign-in's session records the address it came from.
    let cases: [&[&str]; 4] = [
        &["198.51.100.7"],
        // The client may prepend anything; the proxy appends what it saw.
        &["6.6.6.6, 198.51.100.7"],
        // Further trusted proxies (10.x) are passed over, on one line or several.
        &["6.6.6.6, 198.51.100.8, 10.1.2.3, 10.4.5.6"],
        &["6.6.6.6, 198.51.100.9", "10.1.2.3"],
    ];
    for forwarded in cases {
        let b = Browser::new(&s);
        let (_, challenge) = pkce();
        let page = b.get("/authorize", &code_request(&rp.0, &challenge)).await;
        let headers: Vec<(&str, &str)> = forwarded.iter().map(|v| ("x-forwarded-for", *v)).collect();
        let page = b.login(&page, "alice", PW, &headers).await;
        assert!(page.redirect().contains_key("code"), "{forwarded:?}");
    }
    let (status, body) = s
        .admin(Method::GET, &format!("/tenants/{T}/users/alice/sessions"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut ips: Vec<&str> = body["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["ip"].as_str().unwrap())
        .collect();
    ips.sort();
    assert_eq!(
        ips,
        ["198.51.100.7", "198.51.100.7", "198.51.100.8", "198.51.100.9"],
        "{body}"
    );
}

// ---------------------------------------------------------------------------------------------
// 7. Private files

#[cfg(unix)]
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[cfg(unix)]
#[tokio::test]
async fn a_fresh_data_dir_and_the_database_files_are_owner_only() {
    let parent = tempfile::tempdir().unwrap();
    let data = parent.path().join("sesame-data");
    let s = TestServer::start(sesame_store::testing::TestDb::sqlite(), |c| {
        c.data_dir = data.clone();
        c.store = None; // the default: sqlite in data_dir
    })
    .await;
    // Some writes, so that the WAL has content.
    user(&s, "alice").await;
    assert_eq!(mode(&data), 0o700, "data dir");
    for file in ["sesame.db", "sesame.db-wal", "sesame.db-shm"] {
        assert_eq!(mode(&data.join(file)), 0o600, "{file}");
    }
}

#[cfg(unix)]
#[tokio::test]
async fn sesamed_tightens_an_existing_database_and_warns_about_an_open_data_dir() {
    use std::os::unix::fs::PermissionsExt;
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    // A database left world-readable by an earlier version (an empty file is an empty database).
    for file in ["sesame.db", "sesame.db-wal"] {
        std::fs::write(data.join(file), b"").unwrap();
        std::fs::set_permissions(data.join(file), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_sesamed"))
        .args(["serve", "--dev", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .env_remove("SESAME_STORE")
        .env_remove("SESAME_MASTER_KEY")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let started = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.starts_with("Sesame is listening on ") {
                return true;
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    child.start_kill().unwrap();
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .await
        .unwrap();
    assert!(started, "sesamed did not start: {log}");
    assert_eq!(mode(&data), 0o755, "the operator's directory is left as it is");
    assert!(log.contains("data directory is open to other users"), "{log}");
    for file in [
        "sesame.db",
        "sesame.db-wal",
        "sesame.db-shm",
        "master.key",
        "admin-token",
    ] {
        assert_eq!(mode(&data.join(file)), 0o600, "{file}");
    }
}

// ---------------------------------------------------------------------------------------------
// 9. A failed sign-in is not a bare 401

#[tokio::test]
async fn a_failed_sign_in_answers_200_with_the_login_page_not_a_401_without_a_challenge() {
    let s = TestServer::sqlite().await;
    user(&s, "alice").await;
    let rp = client(&s, json!({})).await;
    let b = Browser::new(&s);
    let page = failed_sign_in(&b, &rp, "alice", "198.51.100.1").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.is_login(), "the form is shown again");
    assert!(page.body.contains("The username or password is incorrect."));
    assert_eq!(page.header("www-authenticate"), None);
}
