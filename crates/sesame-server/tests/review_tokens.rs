//! A security review's token findings, each tried as an attack over HTTP
//! against a running `sesamed`: what a deleted or disabled client was given ends with it;
//! implicit-flow access tokens are revocable; and the protocol points of client
//! authentication, discovery, introspection and revocation.

mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use common::{expect_error, unescape, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

const T: &str = "default";
const CB: &str = "https://app.example/cb";
const PW: &str = "correct horse battery";

// ---------------------------------------------------------------------------------------------
// A browser that signs in (cookies by hand, no automatic redirects)

struct Page {
    status: StatusCode,
    location: Option<String>,
    body: String,
}

impl Page {
    fn hidden(&self, name: &str) -> Option<String> {
        let marker = format!("name=\"{name}\" value=\"");
        let start = self.body.find(&marker)? + marker.len();
        let len = self.body[start..].find('"')?;
        Some(unescape(&self.body[start..start + len]))
    }

    fn is_consent(&self) -> bool {
        self.status == StatusCode::OK && self.body.contains("name=\"decision\"")
    }

    fn is_login(&self) -> bool {
        self.body.contains("name=\"password\"")
    }

    /// The parameters of a 303 to the client (query or fragment).
    fn redirect_params(&self) -> BTreeMap<String, String> {
        assert_eq!(
            self.status,
            StatusCode::SEE_OTHER,
            "expected a redirect: {}",
            self.body
        );
        let loc = self.location.as_deref().expect("Location");
        assert!(loc.starts_with(CB), "{loc}");
        let rest = loc.find(['?', '#']).map_or("", |i| &loc[i + 1..]);
        form_urlencoded::parse(rest.as_bytes()).into_owned().collect()
    }
}

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
        let cookies = self
            .jar
            .lock()
            .unwrap()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let req = if cookies.is_empty() {
            req
        } else {
            req.header("cookie", cookies)
        };
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
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
        let location = headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Page {
            status,
            location,
            body: resp.text().await.unwrap(),
        }
    }

    async fn authorize(&self, params: &[(&str, &str)]) -> Page {
        let q = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params)
            .finish();
        let url = format!("{}/authorize?{q}", self.s.issuer(T));
        self.send(self.http.get(url)).await
    }

    async fn submit(&self, endpoint: &str, page: &Page, fields: &[(&str, &str)]) -> Page {
        let csrf = page.hidden("csrf").expect("csrf field");
        let request = page.hidden("request").expect("request field");
        let mut form = vec![("csrf", csrf.as_str()), ("request", request.as_str())];
        form.extend_from_slice(fields);
        let url = format!("{}{endpoint}", self.s.issuer(T));
        self.send(self.http.post(url).form(&form)).await
    }

    /// Authorizes, signing in as `username` and consenting if asked; the redirect's parameters.
    async fn sign_in(&self, params: &[(&str, &str)], username: &str) -> BTreeMap<String, String> {
        let mut page = self.authorize(params).await;
        if page.is_login() {
            page = self
                .submit("/login", &page, &[("username", username), ("password", PW)])
                .await;
        }
        if page.is_consent() {
            page = self.submit("/consent", &page, &[("decision", "allow")]).await;
        }
        page.redirect_params()
    }
}

// ---------------------------------------------------------------------------------------------
// Clients, users and the endpoints as a client calls them

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

/// A web application with the code, refresh and client-credentials grants; (id, secret).
async fn web_client(s: &TestServer, client_id: &str) -> (String, String) {
    s.client(
        T,
        json!({
            "client_id": client_id,
            "redirect_uris": [CB],
            "grant_types": ["authorization_code", "refresh_token", "client_credentials"],
        }),
    )
    .await
}

/// A resource server: may introspect every client's tokens.
async fn resource_server(s: &TestServer) -> (String, String) {
    s.client(T, json!({"introspect_any": true})).await
}

fn pkce() -> (String, String) {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).unwrap();
    let verifier = B64.encode(bytes);
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    (verifier, B64.encode(digest.as_ref()))
}

/// Signs in through `client` with the code flow; the code and its PKCE verifier.
async fn code_for(b: &Browser<'_>, client: &str, username: &str) -> (String, String) {
    let (verifier, challenge) = pkce();
    let r = b
        .sign_in(
            &[
                ("client_id", client),
                ("redirect_uri", CB),
                ("response_type", "code"),
                ("scope", "openid profile offline_access"),
                ("state", "st"),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
            ],
            username,
        )
        .await;
    (r["code"].clone(), verifier)
}

async fn exchange(s: &TestServer, creds: (&str, &str), code: &str, verifier: &str) -> (StatusCode, Value) {
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", CB),
        ("code_verifier", verifier),
    ];
    let (status, _, body) = s.post_form(T, "/token", Some(creds), &form).await;
    (status, body)
}

async fn refresh(s: &TestServer, creds: (&str, &str), token: &str) -> (StatusCode, Value) {
    let form = [("grant_type", "refresh_token"), ("refresh_token", token)];
    let (status, _, body) = s.post_form(T, "/token", Some(creds), &form).await;
    (status, body)
}

async fn active(s: &TestServer, rs: &(String, String), token: &str) -> bool {
    s.introspect(T, (&rs.0, &rs.1), token).await["active"] == true
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

/// Waits for the clock's next second: `iat` has a one-second resolution, and a client's
/// revocation horizon is compared with it.
async fn next_second() {
    let now = sesame_core::now();
    while sesame_core::now() == now {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Item 2: what a client was given ends with it

#[tokio::test]
async fn a_deleted_client_leaves_nothing_to_a_client_created_again_with_its_id() {
    for s in TestServer::each_store().await {
        let rs = resource_server(&s).await;
        user(&s, "alice").await;
        let (id, secret) = web_client(&s, "web").await;
        let b = Browser::new(&s);
        let (code, verifier) = code_for(&b, &id, "alice").await;
        let (status, tokens) = exchange(&s, (&id, &secret), &code, &verifier).await;
        assert_eq!(status, StatusCode::OK, "{tokens}");
        let access = tokens["access_token"].as_str().unwrap().to_owned();
        let refresh_token = tokens["refresh_token"].as_str().unwrap().to_owned();
        let service = s.token(T, &id, &secret, &[]).await;
        // A code issued but not yet redeemed (consent is remembered: no page this time).
        let (pending, pending_verifier) = code_for(&b, &id, "alice").await;
        assert!(active(&s, &rs, &access).await && active(&s, &rs, &service).await);
        assert_eq!(userinfo_status(&s, &access).await, StatusCode::OK);

        let (status, _) = s
            .admin(Method::DELETE, &format!("/tenants/{T}/clients/{id}"), None)
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        for token in [&access, &service] {
            assert!(
                !active(&s, &rs, token).await,
                "a deleted client's token is inactive"
            );
        }
        assert_eq!(userinfo_status(&s, &access).await, StatusCode::UNAUTHORIZED);

        // The attacker registers the same client id again and presents the old grant.
        next_second().await;
        let (again, new_secret) = web_client(&s, "web").await;
        assert_eq!(again, id);
        let (status, body) = refresh(&s, (&id, &new_secret), &refresh_token).await;
        expect_error(status, &body, StatusCode::BAD_REQUEST, "invalid_grant");
        let (status, body) = exchange(&s, (&id, &new_secret), &pending, &pending_verifier).await;
        expect_error(status, &body, StatusCode::BAD_REQUEST, "invalid_grant");
        for token in [&access, &service] {
            assert!(
                !active(&s, &rs, token).await,
                "re-creating the client does not revive its tokens"
            );
        }
        assert_eq!(userinfo_status(&s, &access).await, StatusCode::UNAUTHORIZED);
        // alice's consent went with the old client: the new one asks again.
        let (_, challenge) = pkce();
        let page = b
            .authorize(&[
                ("client_id", &id),
                ("redirect_uri", CB),
                ("response_type", "code"),
                ("scope", "openid profile offline_access"),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
            ])
            .await;
        assert!(page.is_consent(), "{} {:?}", page.status, page.location);
        // The new client's own tokens work.
        let fresh = s.token(T, &id, &new_secret, &[]).await;
        assert!(active(&s, &rs, &fresh).await);
    }
}

#[tokio::test]
async fn a_disabled_client_ends_its_tokens_and_enabling_it_revives_none() {
    for s in TestServer::each_store().await {
        let rs = resource_server(&s).await;
        user(&s, "alice").await;
        let (id, secret) = web_client(&s, "web").await;
        let b = Browser::new(&s);
        let (code, verifier) = code_for(&b, &id, "alice").await;
        let (_, tokens) = exchange(&s, (&id, &secret), &code, &verifier).await;
        let access = tokens["access_token"].as_str().unwrap().to_owned();
        let refresh_token = tokens["refresh_token"].as_str().unwrap().to_owned();
        let service = s.token(T, &id, &secret, &[]).await;
        let (pending, pending_verifier) = code_for(&b, &id, "alice").await;

        let (status, body) = s
            .admin(Method::POST, &format!("/tenants/{T}/clients/{id}/disable"), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        for token in [&access, &service] {
            assert!(
                !active(&s, &rs, token).await,
                "a disabled client's token is inactive"
            );
        }
        assert_eq!(userinfo_status(&s, &access).await, StatusCode::UNAUTHORIZED);

        let (status, body) = s
            .admin(Method::POST, &format!("/tenants/{T}/clients/{id}/enable"), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        for token in [&access, &service] {
            assert!(!active(&s, &rs, token).await, "enabling revives nothing");
        }
        assert_eq!(userinfo_status(&s, &access).await, StatusCode::UNAUTHORIZED);
        let (status, body) = refresh(&s, (&id, &secret), &refresh_token).await;
        expect_error(status, &body, StatusCode::BAD_REQUEST, "invalid_grant");
        let (status, body) = exchange(&s, (&id, &secret), &pending, &pending_verifier).await;
        expect_error(status, &body, StatusCode::BAD_REQUEST, "invalid_grant");
        // Tokens issued after it was enabled again (from the next second on) work.
        next_second().await;
        let fresh = s.token(T, &id, &secret, &[]).await;
        assert!(active(&s, &rs, &fresh).await);
    }
}

// ---------------------------------------------------------------------------------------------
// Item 3: implicit-flow access tokens are revocable

/// Signs alice in through `client` with the implicit flow; the access token.
async fn implicit_token(b: &Browser<'_>, client: &str) -> String {
    let r = b
        .sign_in(
            &[
                ("client_id", client),
                ("redirect_uri", CB),
                ("response_type", "id_token token"),
                ("scope", "openid profile"),
                ("nonce", "n-1"),
            ],
            "alice",
        )
        .await;
    r["access_token"].clone()
}

#[tokio::test]
async fn implicit_access_tokens_die_with_the_consent_or_the_user() {
    for s in TestServer::each_store().await {
        let rs = resource_server(&s).await;
        let alice = user(&s, "alice").await;
        let (id, _) = s
            .client(T, json!({"redirect_uris": [CB], "grant_types": ["implicit"]}))
            .await;
        let b = Browser::new(&s);
        let first = implicit_token(&b, &id).await;
        assert!(active(&s, &rs, &first).await);
        let (status, body) = s
            .admin(
                Method::DELETE,
                &format!("/tenants/{T}/users/{alice}/consents/{id}"),
                None,
            )
            .await;
        assert_eq!((status, &body["consent_deleted"]), (StatusCode::OK, &json!(true)));
        assert!(!active(&s, &rs, &first).await, "a withdrawn consent revokes it");

        let second = implicit_token(&b, &id).await;
        assert!(active(&s, &rs, &second).await);
        let (status, _) = s
            .admin(Method::POST, &format!("/tenants/{T}/users/{alice}/disable"), None)
            .await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            !active(&s, &rs, &second).await,
            "a disabled user's token is inactive"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Item 9: protocol points

#[tokio::test]
async fn a_wrong_client_secret_is_challenged_with_invalid_client() {
    let s = TestServer::sqlite().await;
    let (id, _) = s.client(T, json!({})).await;
    for endpoint in ["/token", "/introspect", "/revoke"] {
        let form = [("grant_type", "client_credentials"), ("token", "x")];
        let (status, headers, body) = s.post_form(T, endpoint, Some((&id, "wrong")), &form).await;
        expect_error(status, &body, StatusCode::UNAUTHORIZED, "invalid_client");
        // RFC 6749 §5.2: the scheme the client used, naming the error.
        assert_eq!(
            headers["www-authenticate"], "Basic realm=\"sesame\", error=\"invalid_client\"",
            "{endpoint}"
        );
        let mut form = form.to_vec();
        form.extend([("client_id", id.as_str()), ("client_secret", "wrong")]);
        let (status, headers, _) = s.post_form(T, endpoint, None, &form).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(
            headers["www-authenticate"]
                .to_str()
                .unwrap()
                .contains("error=\"invalid_client\""),
            "{endpoint}: every 401 carries a challenge"
        );
    }
}

#[tokio::test]
async fn discovery_lists_only_scopes_that_do_something() {
    let s = TestServer::sqlite().await;
    for doc in ["openid-configuration", "oauth-authorization-server"] {
        let url = format!("{}/.well-known/{doc}", s.issuer(T));
        let doc: Value = s.http.get(url).send().await.unwrap().json().await.unwrap();
        assert_eq!(
            doc["scopes_supported"],
            json!(["openid", "profile", "email", "offline_access"])
        );
    }
}

#[tokio::test]
async fn introspection_answers_only_the_tokens_owner_audience_or_a_resource_server() {
    for s in TestServer::each_store().await {
        let (api, api_secret) = s.client(T, json!({})).await;
        let (owner, owner_secret) = s.client(T, json!({"allowed_audiences": [api.as_str()]})).await;
        let (bystander, bystander_secret) = s.client(T, json!({})).await;
        let token = s.token(T, &owner, &owner_secret, &[]).await;
        let seen = |creds: (String, String)| {
            let (s, token) = (&s, &token);
            async move { s.introspect(T, (&creds.0, &creds.1), token).await }
        };
        assert_eq!(seen((owner.clone(), owner_secret.clone())).await["active"], true);
        assert_eq!(
            seen((api.clone(), api_secret.clone())).await["client_id"],
            owner.as_str(),
            "the audience may introspect it"
        );
        let bystander_creds = (bystander.clone(), bystander_secret.clone());
        assert_eq!(
            seen(bystander_creds.clone()).await,
            json!({"active": false}),
            "another client learns nothing (RFC 7662 §4)"
        );
        // Made a resource server through the admin API, it may.
        let (status, body) = s
            .admin(
                Method::PATCH,
                &format!("/tenants/{T}/clients/{bystander}"),
                Some(json!({"introspect_any": true})),
            )
            .await;
        assert_eq!(
            (status, body["introspect_any"].clone()),
            (StatusCode::OK, json!(true))
        );
        assert_eq!(seen(bystander_creds).await["active"], true);
    }
}

#[tokio::test]
async fn revoking_another_clients_refresh_token_changes_nothing_and_tells_nothing() {
    for s in TestServer::each_store().await {
        user(&s, "alice").await;
        let (id, secret) = web_client(&s, "web").await;
        let (thief, thief_secret) = s.client(T, json!({})).await;
        let b = Browser::new(&s);
        let (code, verifier) = code_for(&b, &id, "alice").await;
        let (_, tokens) = exchange(&s, (&id, &secret), &code, &verifier).await;
        let refresh_token = tokens["refresh_token"].as_str().unwrap();

        let revoke = |token: &str| {
            let form = [
                ("token", token.to_owned()),
                ("token_type_hint", "refresh_token".to_owned()),
            ];
            let (s, thief, thief_secret) = (&s, &thief, &thief_secret);
            async move {
                let resp = s
                    .http
                    .post(format!("{}/revoke", s.issuer(T)))
                    .basic_auth(thief, Some(thief_secret))
                    .form(&form)
                    .send()
                    .await
                    .unwrap();
                (resp.status(), resp.text().await.unwrap())
            }
        };
        let theirs = revoke(refresh_token).await;
        let unknown = revoke("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").await;
        assert_eq!(theirs.0, StatusCode::OK);
        assert_eq!(
            theirs, unknown,
            "the same answer as for a token that does not exist"
        );
        let (status, body) = refresh(&s, (&id, &secret), refresh_token).await;
        assert_eq!(status, StatusCode::OK, "the grant is untouched: {body}");
    }
}
