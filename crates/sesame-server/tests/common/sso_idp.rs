// The upstream side of the brokered-SSO tests (`sso.rs`, `authz_sso.rs`), included by each:
// a browser that keeps cookies per path and follows no redirects, a small OpenID Connect IdP
// served by the test (axum: discovery, authorization, token, userinfo, JWKS) that can tamper
// with what it signs, and the helpers that drive a sign-in through it. Included rather than a
// module, so that both files use it as their own code.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode as AxStatus};
use axum::response::{IntoResponse, Redirect as AxRedirect, Response};
use axum::routing::{get, post};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use common::{jwt_parts, unescape, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sesame_core::keys::SigningKeyPair;
use sesame_core::model::SigningAlg;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

const T: &str = "default";
const CB: &str = "https://app.example/cb";
const PW: &str = "correct horse battery";

// ---------------------------------------------------------------------------------------------
// The browser

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

    fn text(&self) -> String {
        unescape(&self.body)
    }

    /// The href of the sign-in page's button for `connection`.
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

/// Cookies by (path, name), sent where the path is a prefix of the request's.
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

    fn cookies_for(&self, url: &str) -> String {
        let path = url
            .split_once("://")
            .and_then(|(_, rest)| rest.find('/').map(|i| &rest[i..]))
            .unwrap_or("/");
        self.jar
            .lock()
            .unwrap()
            .iter()
            .filter(|((p, _), _)| path.starts_with(p.as_str()))
            .map(|((_, n), v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn send(&self, url: &str, req: reqwest::RequestBuilder) -> Page {
        let cookies = self.cookies_for(url);
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
// The test's own IdP

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Tamper {
    None,
    Issuer,
    Audience,
    Expired,
    BadSignature,
    /// Signed with a key whose `kid` the JWKS never lists.
    UnknownKid,
    /// Signed with a new key that the JWKS lists only from now on (a rotation).
    Rotated,
    Nonce,
}

struct Grant {
    claims: Value,
    nonce: String,
    challenge: String,
}

struct IdpInner {
    issuer: String,
    key: SigningKeyPair,
    kid: String,
    new_key: SigningKeyPair,
    new_kid: String,
    publish_new_key: bool,
    /// The claims of whoever signs in next.
    person: Value,
    tamper: Tamper,
    /// RFC 9207 `iss` in the authorization response: None = not sent.
    response_iss: Option<String>,
    /// `error` instead of a code.
    error: Option<String>,
    codes: HashMap<String, Grant>,
    tokens: HashMap<String, Value>,
    jwks_fetches: usize,
    token_calls: usize,
}

#[derive(Clone)]
struct Idp(Arc<Mutex<IdpInner>>);

const IDP_CLIENT: &str = "sesame-broker";
const IDP_SECRET: &str = "broker-secret";

impl Idp {
    async fn start() -> Idp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let key = SigningKeyPair::generate(SigningAlg::RS256).unwrap();
        let new_key = SigningKeyPair::generate(SigningAlg::RS256).unwrap();
        let idp = Idp(Arc::new(Mutex::new(IdpInner {
            issuer: issuer.clone(),
            kid: key.thumbprint(),
            key,
            new_kid: new_key.thumbprint(),
            new_key,
            publish_new_key: false,
            person: json!({}),
            tamper: Tamper::None,
            response_iss: Some(issuer),
            error: None,
            codes: HashMap::new(),
            tokens: HashMap::new(),
            jwks_fetches: 0,
            token_calls: 0,
        })));
        let app = axum::Router::new()
            .route("/.well-known/openid-configuration", get(idp_discovery))
            .route("/authorize", get(idp_authorize))
            .route("/token", post(idp_token))
            .route("/userinfo", get(idp_userinfo))
            .route("/jwks", get(idp_jwks))
            .with_state(idp.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        idp
    }

    fn issuer(&self) -> String {
        self.0.lock().unwrap().issuer.clone()
    }

    fn set(&self, f: impl FnOnce(&mut IdpInner)) {
        f(&mut self.0.lock().unwrap())
    }

    fn get<R>(&self, f: impl FnOnce(&IdpInner) -> R) -> R {
        f(&self.0.lock().unwrap())
    }
}

async fn idp_discovery(State(idp): State<Idp>) -> Response {
    let iss = idp.issuer();
    axum::Json(json!({
        "issuer": iss,
        "authorization_endpoint": format!("{iss}/authorize"),
        "token_endpoint": format!("{iss}/token"),
        "userinfo_endpoint": format!("{iss}/userinfo"),
        "jwks_uri": format!("{iss}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "authorization_response_iss_parameter_supported": true,
    }))
    .into_response()
}

async fn idp_jwks(State(idp): State<Idp>) -> Response {
    let mut i = idp.0.lock().unwrap();
    i.jwks_fetches += 1;
    let mut keys = vec![serde_json::from_str::<Value>(&i.key.public_jwk(&i.kid)).unwrap()];
    if i.publish_new_key {
        keys.push(serde_json::from_str(&i.new_key.public_jwk(&i.new_kid)).unwrap());
    }
    axum::Json(json!({ "keys": keys })).into_response()
}

async fn idp_authorize(State(idp): State<Idp>, Query(q): Query<HashMap<String, String>>) -> Response {
    let i = &mut idp.0.lock().unwrap();
    assert_eq!(q.get("client_id").map(String::as_str), Some(IDP_CLIENT));
    assert_eq!(q.get("response_type").map(String::as_str), Some("code"));
    assert_eq!(
        q.get("code_challenge_method").map(String::as_str),
        Some("S256"),
        "PKCE S256 always"
    );
    assert!(q.get("scope").unwrap().split(' ').any(|s| s == "openid"));
    let redirect = q["redirect_uri"].clone();
    let state = q["state"].clone();
    let mut params = vec![("state", state)];
    if let Some(e) = &i.error {
        params.push(("error", e.clone()));
    } else {
        let code = B64.encode(sesame_core::crypto::random_bytes::<16>());
        let claims = i.person.clone();
        i.codes.insert(
            code.clone(),
            Grant {
                claims,
                nonce: q["nonce"].clone(),
                challenge: q["code_challenge"].clone(),
            },
        );
        params.push(("code", code));
    }
    if let Some(iss) = &i.response_iss {
        params.push(("iss", iss.clone()));
    }
    let q = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    AxRedirect::to(&format!("{redirect}?{q}")).into_response()
}

fn sign(key: &SigningKeyPair, kid: &str, claims: &Value) -> String {
    let header = json!({ "alg": "RS256", "kid": kid, "typ": "JWT" });
    let mut out = format!(
        "{}.{}",
        B64.encode(header.to_string()),
        B64.encode(claims.to_string())
    );
    let sig = key.sign(out.as_bytes()).unwrap();
    out.push('.');
    out.push_str(&B64.encode(sig));
    out
}

async fn idp_token(State(idp): State<Idp>, headers: HeaderMap, body: String) -> Response {
    let f: HashMap<String, String> = form_urlencoded::parse(body.as_bytes()).into_owned().collect();
    let i = &mut idp.0.lock().unwrap();
    i.token_calls += 1;
    let bad = |e: &str| (AxStatus::BAD_REQUEST, axum::Json(json!({ "error": e }))).into_response();
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{IDP_CLIENT}:{IDP_SECRET}"))
    );
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(basic.as_str()) {
        return (
            AxStatus::UNAUTHORIZED,
            axum::Json(json!({ "error": "invalid_client" })),
        )
            .into_response();
    }
    let Some(grant) = f.get("code").and_then(|c| i.codes.remove(c)) else {
        return bad("invalid_grant");
    };
    // RFC 7636 §4.6.
    let verifier = f.get("code_verifier").cloned().unwrap_or_default();
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    if B64.encode(digest.as_ref()) != grant.challenge {
        return bad("invalid_grant");
    }
    let now = sesame_core::now();
    let mut claims = json!({
        "iss": i.issuer,
        "aud": IDP_CLIENT,
        "iat": now,
        "exp": now + 300,
        "nonce": grant.nonce,
    });
    for (k, v) in grant.claims.as_object().unwrap() {
        claims[k] = v.clone();
    }
    match i.tamper {
        Tamper::Issuer => claims["iss"] = json!("https://evil.example"),
        Tamper::Audience => claims["aud"] = json!("someone-else"),
        Tamper::Expired => {
            claims["iat"] = json!(now - 400);
            claims["exp"] = json!(now - 100);
        }
        Tamper::Nonce => claims["nonce"] = json!("not-the-nonce"),
        _ => {}
    }
    let id_token = match i.tamper {
        // Signed by the new key under the old key's kid: the signature does not verify.
        Tamper::BadSignature => sign(&i.new_key, &i.kid, &claims),
        Tamper::UnknownKid => sign(&i.new_key, "never-published", &claims),
        Tamper::Rotated => sign(&i.new_key, &i.new_kid, &claims),
        _ => sign(&i.key, &i.kid, &claims),
    };
    let access_token = B64.encode(sesame_core::crypto::random_bytes::<16>());
    i.tokens.insert(access_token.clone(), grant.claims.clone());
    axum::Json(json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": 300,
        "id_token": id_token,
    }))
    .into_response()
}

async fn idp_userinfo(State(idp): State<Idp>, headers: HeaderMap) -> Response {
    let i = idp.0.lock().unwrap();
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    match i.tokens.get(token) {
        Some(c) => axum::Json(c.clone()).into_response(),
        None => AxStatus::UNAUTHORIZED.into_response(),
    }
}

// ---------------------------------------------------------------------------------------------
// Sesame's side

struct Rp {
    id: String,
    secret: String,
}

async fn new_rp(s: &TestServer) -> Rp {
    let (status, resp) = s
        .admin(
            Method::POST,
            &format!("/tenants/{T}/clients"),
            Some(json!({ "name": "App", "redirect_uris": [CB], "first_party": true, "refresh_without_offline_access": true })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{resp}");
    Rp {
        id: resp["client"]["client_id"].as_str().unwrap().to_owned(),
        secret: resp["client_secret"].as_str().unwrap().to_owned(),
    }
}

async fn connection(s: &TestServer, spec: Value) -> Value {
    let (status, body) = s
        .admin(Method::POST, &format!("/tenants/{T}/sso"), Some(spec))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

/// A connection to the test IdP: groups claim `groups`, admin group `admins`, domain acme.test.
async fn corp(s: &TestServer, idp: &Idp, extra: Value) -> Value {
    let mut spec = json!({
        "id": "corp",
        "display_name": "Acme Corp",
        "issuer": idp.issuer(),
        "client_id": IDP_CLIENT,
        "client_secret": IDP_SECRET,
        "groups_claim": "groups",
        "admin_groups": ["admins"],
        "email_domains": ["acme.test"],
    });
    spec.as_object_mut()
        .unwrap()
        .extend(extra.as_object().cloned().unwrap_or_default());
    connection(s, spec).await
}

fn pkce() -> (String, String) {
    let verifier = B64.encode(sesame_core::crypto::random_bytes::<32>());
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    (verifier, B64.encode(digest.as_ref()))
}

fn authorize_url(s: &TestServer, rp: &Rp, challenge: &str, extra: &[(&str, &str)]) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    q.extend_pairs([
        ("client_id", rp.id.as_str()),
        ("redirect_uri", CB),
        ("response_type", "code"),
        ("scope", "openid profile email groups"),
        ("state", "app-state"),
        ("nonce", "app-nonce"),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ]);
    q.extend_pairs(extra);
    format!("{}/authorize?{}", s.issuer(T), q.finish())
}

/// From the application's request to the IdP's answer (the redirect to Sesame's callback),
/// through the sign-in page's button. Returns the callback URL.
async fn to_callback(s: &TestServer, b: &Browser, rp: &Rp, challenge: &str) -> String {
    let login = b.get(&authorize_url(s, rp, challenge, &[])).await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.body);
    let href = login.sso_button("corp").expect("a button for the connection");
    assert!(login.text().contains("Sign in with Acme"), "{}", login.body);
    let start = b.get(&href).await;
    let at_idp = start.location().to_owned();
    let at_idp_q = query_of(&at_idp);
    for p in ["state", "nonce", "code_challenge"] {
        assert!(at_idp_q.get(p).is_some_and(|v| v.len() >= 16), "{p} in {at_idp}");
    }
    b.get(&at_idp).await.location().to_owned()
}

/// A whole sign-in through the test IdP as `person`; the page the callback answers.
async fn sign_in(s: &TestServer, b: &Browser, rp: &Rp, idp: &Idp, person: Value) -> (Page, String) {
    idp.set(|i| i.person = person);
    let (verifier, challenge) = pkce();
    let callback = to_callback(s, b, rp, &challenge).await;
    (b.get(&callback).await, verifier)
}

/// The application's tokens after a successful sign-in.
async fn app_tokens(s: &TestServer, rp: &Rp, page: &Page, verifier: &str) -> Value {
    let location = page.location();
    assert!(location.starts_with(CB), "{location}");
    let q = query_of(location);
    assert_eq!(q.get("state").map(String::as_str), Some("app-state"));
    let code = q.get("code").expect("a code").clone();
    let (status, _, body) = s
        .post_form(
            T,
            "/token",
            Some((&rp.id, &rp.secret)),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", CB),
                ("code_verifier", verifier),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn sso_user(s: &TestServer, user: &str) -> Value {
    let (status, body) = s
        .admin(Method::GET, &format!("/tenants/{T}/users/{user}/sso"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

fn alice(groups: &[&str]) -> Value {
    json!({
        "sub": "idp-alice-1",
        "email": "alice@acme.test",
        "email_verified": true,
        "name": "Alice Liddell",
        "groups": groups,
    })
}
