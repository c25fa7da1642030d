//! Workload identity out and delegated sessions over HTTP: sources and their workload tokens
//! (claims, verified with the exported workload-issuer JWKS, before and after a key rotation),
//! the export documents, and on-behalf-of sessions end to end (create, bind once, refresh,
//! retry, scopes, child sessions, revocation by owner and admin, a disabled owner), also across
//! two `sesamed` sharing one PostgreSQL.

mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use common::{expect_error, jwt_parts, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::BTreeMap;

const T: &str = "default";
const CB: &str = "https://app.example/cb";
const PW: &str = "correct horse battery";
const WORKLOAD: &str = "urn:sesame:params:oauth:grant-type:workload-token";
const NONCE: &str = "urn:sesame:params:oauth:grant-type:session-nonce";
const KEY: &str = "urn:sesame:params:oauth:grant-type:session-key";

// ---------------------------------------------------------------------------------------------
// Helpers

/// Verifies an EdDSA JWT against a JWKS document by `kid`; the claims if it verifies.
fn verify_with_jwks(token: &str, jwks: &Value) -> Option<Value> {
    let (header, claims) = jwt_parts(token);
    assert_eq!(header["alg"], "EdDSA");
    let kid = header["kid"].as_str()?;
    let jwk = jwks["keys"].as_array()?.iter().find(|k| k["kid"] == kid)?;
    let x = B64.decode(jwk["x"].as_str()?).ok()?;
    let (signed, sig) = token.rsplit_once('.')?;
    let sig = B64.decode(sig).ok()?;
    aws_lc_rs::signature::UnparsedPublicKey::new(&aws_lc_rs::signature::ED25519, x)
        .verify(signed.as_bytes(), &sig)
        .ok()?;
    Some(claims)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Creates a user with password [`PW`]; its id.
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

/// A person's access token for `scope`, through the code flow of a first-party client (no
/// consent page): authorize, log in, redeem the code with PKCE.
async fn person_token(s: &TestServer, username: &str, scope: &str) -> String {
    let (rp, rp_secret) = s
        .client(
            T,
            json!({"redirect_uris": [CB], "first_party": true, "allowed_scopes": ["read", "write"]}),
        )
        .await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut jar: BTreeMap<String, String> = BTreeMap::new();
    let remember = |headers: &reqwest::header::HeaderMap, jar: &mut BTreeMap<String, String>| {
        for sc in headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
        {
            if let Some((k, v)) = sc.split(';').next().and_then(|p| p.split_once('=')) {
                jar.insert(k.to_owned(), v.to_owned());
            }
        }
    };
    let verifier = B64.encode([7u8; 32]);
    let challenge =
        B64.encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes()).as_ref());
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("client_id", rp.as_str()),
            ("redirect_uri", CB),
            ("response_type", "code"),
            ("scope", scope),
            ("state", "st"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ])
        .finish();
    let resp = http
        .get(format!("{}/authorize?{query}", s.issuer(T)))
        .send()
        .await
        .unwrap();
    remember(resp.headers(), &mut jar);
    let page = resp.text().await.unwrap();
    let hidden = |name: &str| {
        let marker = format!("name=\"{name}\" value=\"");
        let start = page
            .find(&marker)
            .unwrap_or_else(|| panic!("no {name} in {page}"))
            + marker.len();
        common::unescape(&page[start..start + page[start..].find('"').unwrap()])
    };
    let (csrf, request) = (hidden("csrf"), hidden("request"));
    let cookies: Vec<String> = jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let resp = http
        .post(format!("{}/login", s.issuer(T)))
        .header("cookie", cookies.join("; "))
        .form(&[
            ("csrf", csrf.as_str()),
            ("request", request.as_str()),
            ("username", username),
            ("password", PW),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    let params: BTreeMap<String, String> =
        form_urlencoded::parse(location.split_once('?').unwrap().1.as_bytes())
            .into_owned()
            .collect();
    let code = params
        .get("code")
        .unwrap_or_else(|| panic!("no code in {location}"));
    let (status, _, body) = s
        .post_form(
            T,
            "/token",
            Some((&rp, &rp_secret)),
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", CB),
                ("code_verifier", &verifier),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

/// A request to a tenant endpoint of `base` with a bearer token.
async fn bearer(
    s: &TestServer,
    base: &str,
    method: Method,
    path: &str,
    token: &str,
    form: &[(&str, &str)],
) -> (StatusCode, Value) {
    let mut req = s
        .http
        .request(method, format!("{base}/t/{T}{path}"))
        .bearer_auth(token);
    if !form.is_empty() {
        req = req.form(form);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// POST a form to `base`'s tenant endpoint with Basic credentials.
async fn post(base: &str, path: &str, creds: (&str, &str), form: &[(&str, &str)]) -> (StatusCode, Value) {
    let resp = reqwest::Client::new()
        .post(format!("{base}/t/{T}{path}"))
        .basic_auth(creds.0, Some(creds.1))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn s_of<'v>(v: &'v Value, k: &str) -> &'v str {
    v[k].as_str().unwrap_or_else(|| panic!("no {k} in {v}"))
}

// ---------------------------------------------------------------------------------------------
// Sources and workload tokens

#[tokio::test]
async fn sources_get_workload_tokens_verifiable_from_the_exported_jwks_before_and_after_a_rotation() {
    for s in TestServer::each_store().await {
        let static_iss = "https://static.example/sesame";
        let (status, body) = s
            .admin(
                Method::PATCH,
                &format!("/tenants/{T}/workload"),
                Some(json!({"workload_issuer": static_iss})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["effective_workload_issuer"], static_iss);
        let (id, secret) = s
            .client(T, json!({"grant_types": [WORKLOAD], "signing_alg": "EdDSA"}))
            .await;
        let (status, source) = s
            .admin(
                Method::POST,
                &format!("/tenants/{T}/sources"),
                Some(json!({
                    "name": "warehouse sync",
                    "client_id": id,
                    "audiences": ["https://warehouse.example", "other"],
                    "scopes": ["sync", "read"],
                })),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{source}");
        let rid = s_of(&source, "resource_id").to_owned();
        assert_eq!(rid, format!("ri.sesame.{T}.source.{}", s_of(&source, "id")));

        let (status, _, body) = s
            .post_form(
                T,
                "/token",
                Some((&id, &secret)),
                &[
                    ("grant_type", WORKLOAD),
                    ("audience", "https://warehouse.example"),
                ],
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["token_type"], "N_A");
        assert_eq!(body["expires_in"], 3600);
        let token = s_of(&body, "access_token").to_owned();
        let (header, claims) = jwt_parts(&token);
        assert_eq!(header["typ"], "JWT");
        assert_eq!(claims["iss"], static_iss);
        assert_eq!(claims["sub"], rid.as_str());
        assert_eq!(claims["aud"], "https://warehouse.example");
        assert_eq!(claims["scp"], "sync read");
        let iat = claims["iat"].as_i64().unwrap();
        assert!((iat - now()).abs() < 10);
        assert_eq!(claims["nbf"], iat);
        assert_eq!(claims["exp"].as_i64().unwrap() - iat, 3600);
        assert!(s_of(&claims, "jti").len() >= 22);

        // The export: discovery names the workload issuer and its JWKS; the JWKS verifies.
        let (status, export) = s
            .admin(Method::GET, &format!("/tenants/{T}/workload-issuer"), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{export}");
        let conf = &export["openid_configuration"];
        assert_eq!(conf["issuer"], static_iss);
        assert_eq!(conf["jwks_uri"], format!("{static_iss}/jwks.json"));
        assert!(conf["id_token_signing_alg_values_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("EdDSA")));
        assert_eq!(
            verify_with_jwks(&token, &export["jwks"]).unwrap()["sub"],
            rid.as_str()
        );

        // A workload token is not an access token of Sesame.
        let rs = s.client(T, json!({"introspect_any": true})).await;
        assert_eq!(s.introspect(T, (&rs.0, &rs.1), &token).await["active"], false);
        let (status, _) = bearer(&s, &s.base, Method::GET, "/userinfo", &token, &[]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);

        // After a rotation, a fresh export still verifies the old token, and the new one.
        let (status, body) = s
            .admin(
                Method::POST,
                &format!("/tenants/{T}/keys/rotate"),
                Some(json!({"alg": "EdDSA", "force": true})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (_, _, body) = s
            .post_form(T, "/token", Some((&id, &secret)), &[("grant_type", WORKLOAD)])
            .await;
        let rotated = s_of(&body, "access_token").to_owned();
        let (h_old, _) = jwt_parts(&token);
        let (h_new, claims) = jwt_parts(&rotated);
        assert_ne!(h_old["kid"], h_new["kid"]);
        assert_eq!(claims["aud"], json!(["https://warehouse.example", "other"]));
        let (_, export) = s
            .admin(Method::GET, &format!("/tenants/{T}/workload-issuer"), None)
            .await;
        assert!(
            verify_with_jwks(&token, &export["jwks"]).is_some(),
            "the old token"
        );
        assert!(
            verify_with_jwks(&rotated, &export["jwks"]).is_some(),
            "the new token"
        );

        // Bad input.
        let (status, _, body) = s
            .post_form(
                T,
                "/token",
                Some((&id, &secret)),
                &[("grant_type", WORKLOAD), ("audience", "https://evil.example")],
            )
            .await;
        expect_error(status, &body, StatusCode::BAD_REQUEST, "invalid_target");
        let (status, _, body) = s
            .post_form(
                T,
                "/token",
                Some((&id, &secret)),
                &[("grant_type", WORKLOAD), ("scope", "admin")],
            )
            .await;
        expect_error(status, &body, StatusCode::BAD_REQUEST, "invalid_scope");
        let (no_source, no_source_secret) = s.client(T, json!({"grant_types": [WORKLOAD]})).await;
        let (status, _, body) = s
            .post_form(
                T,
                "/token",
                Some((&no_source, &no_source_secret)),
                &[("grant_type", WORKLOAD)],
            )
            .await;
        expect_error(status, &body, StatusCode::BAD_REQUEST, "unauthorized_client");
        let (cc, cc_secret) = s.client(T, json!({})).await;
        let (status, _, body) = s
            .post_form(T, "/token", Some((&cc, &cc_secret)), &[("grant_type", WORKLOAD)])
            .await;
        expect_error(status, &body, StatusCode::BAD_REQUEST, "unauthorized_client");
        // A source's client must have the grant; a source needs an audience.
        let (status, body) = s
            .admin(
                Method::POST,
                &format!("/tenants/{T}/sources"),
                Some(json!({"name": "x", "client_id": cc, "audiences": ["a"]})),
            )
            .await;
        expect_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
        let (status, body) = s
            .admin(
                Method::POST,
                &format!("/tenants/{T}/sources"),
                Some(json!({"name": "x", "client_id": no_source, "audiences": []})),
            )
            .await;
        expect_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");

        // Listing, showing, deleting; a deleted source gets no more tokens.
        let (status, list) = s.admin(Method::GET, &format!("/tenants/{T}/sources"), None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(list["sources"].as_array().unwrap().len(), 1);
        let path = format!("/tenants/{T}/sources/{}", s_of(&source, "id"));
        assert_eq!(
            s.admin(Method::GET, &path, None).await.1["resource_id"],
            rid.as_str()
        );
        assert_eq!(
            s.admin(Method::DELETE, &path, None).await.0,
            StatusCode::NO_CONTENT
        );
        assert_eq!(s.admin(Method::GET, &path, None).await.0, StatusCode::NOT_FOUND);
        let (status, _, _) = s
            .post_form(T, "/token", Some((&id, &secret)), &[("grant_type", WORKLOAD)])
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(
            s.admin(Method::GET, &format!("/tenants/{T}/sources/not-a-uuid"), None)
                .await
                .0,
            StatusCode::NOT_FOUND
        );
    }
}

#[tokio::test]
async fn the_workload_issuer_defaults_to_the_sign_in_issuer_and_discovery_lists_the_grants() {
    let s = TestServer::sqlite().await;
    let (status, body) = s
        .admin(Method::GET, &format!("/tenants/{T}/workload"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["workload_issuer"], Value::Null);
    assert_eq!(body["effective_workload_issuer"], s.issuer(T));
    assert_eq!(body["session_max_ttl"], 7 * 24 * 3600);
    let (_, export) = s
        .admin(Method::GET, &format!("/tenants/{T}/workload-issuer"), None)
        .await;
    assert_eq!(export["issuer"], s.issuer(T));
    for bad in [
        json!({"workload_issuer": "http://evil.example"}),
        json!({"session_max_ttl": 8 * 24 * 3600}),
        json!({"nope": 1}),
    ] {
        let (status, body) = s
            .admin(Method::PATCH, &format!("/tenants/{T}/workload"), Some(bad))
            .await;
        expect_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
    }
    let disc: Value = s
        .http
        .get(format!("{}/.well-known/openid-configuration", s.issuer(T)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let grants = disc["grant_types_supported"].as_array().unwrap();
    for g in [WORKLOAD, NONCE, KEY] {
        assert!(grants.contains(&json!(g)), "{g} in {disc}");
    }
}

// ---------------------------------------------------------------------------------------------
// Delegated sessions

struct Job {
    id: String,
    secret: String,
}

impl Job {
    async fn new(s: &TestServer) -> Job {
        let (id, secret) = s
            .client(T, json!({"grant_types": [NONCE, KEY], "introspect_any": true}))
            .await;
        Job { id, secret }
    }

    fn creds(&self) -> (&str, &str) {
        (&self.id, &self.secret)
    }
}

async fn create_session(
    s: &TestServer,
    base: &str,
    token: &str,
    job: &Job,
    scope: &str,
) -> (StatusCode, Value) {
    bearer(
        s,
        base,
        Method::POST,
        "/sessions",
        token,
        &[("client_id", &job.id), ("scope", scope)],
    )
    .await
}

#[tokio::test]
async fn a_person_lends_access_to_a_job_through_a_session_on_each_store() {
    for s in TestServer::each_store().await {
        let base = s.base.clone();
        let alice = user(&s, "alice").await;
        let token = person_token(&s, "alice", "openid read").await;
        let job = Job::new(&s).await;

        // Creating: a bearer token is needed, and never more scope than it has.
        let resp = s
            .http
            .post(format!("{}/sessions", s.issuer(T)))
            .form(&[("client_id", job.id.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        let (status, body) = create_session(&s, &base, &token, &job, "openid read write").await;
        expect_error(status, &body, StatusCode::BAD_REQUEST, "invalid_scope");
        let (status, body) = bearer(
            &s,
            &base,
            Method::POST,
            "/sessions",
            &token,
            &[("client_id", "nobody")],
        )
        .await;
        expect_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
        let (status, created) = create_session(&s, &base, &token, &job, "openid read").await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        assert_eq!(created["nonce_expires_in"], 60);
        let sid = s_of(&created, "session_id").to_owned();

        // Binding: once, by the job's client.
        let other = Job::new(&s).await;
        let nonce = s_of(&created, "nonce").to_owned();
        let (status, body) = post(
            &base,
            "/token",
            other.creds(),
            &[("grant_type", NONCE), ("nonce", &nonce)],
        )
        .await;
        expect_error(status, &body, StatusCode::BAD_REQUEST, "invalid_grant");
        let (status, bound) = post(
            &base,
            "/token",
            job.creds(),
            &[("grant_type", NONCE), ("nonce", &nonce)],
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{bound}");
        let (_, claims) = jwt_parts(s_of(&bound, "access_token"));
        assert_eq!(claims["sub"], alice.as_str());
        assert_eq!(claims["act"], json!({"sub": job.id}));
        assert_eq!(claims["sid"], sid.as_str());
        assert_eq!(claims["scope"], "openid read");
        let (status, body) = post(
            &base,
            "/token",
            job.creds(),
            &[("grant_type", NONCE), ("nonce", &nonce)],
        )
        .await;
        expect_error(status, &body, StatusCode::BAD_REQUEST, "invalid_grant");
        assert!(
            s_of(&body, "error_description").contains("already used"),
            "{body}"
        );

        // Refreshing with the key; a retry of a lost answer gets the same answer.
        let key0 = s_of(&bound, "refresh_token").to_owned();
        let (status, fresh) = post(
            &base,
            "/token",
            job.creds(),
            &[("grant_type", KEY), ("session_key", &key0)],
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{fresh}");
        let (status, retry) = post(
            &base,
            "/token",
            job.creds(),
            &[("grant_type", KEY), ("session_key", &key0)],
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{retry}");
        assert_eq!(retry["access_token"], fresh["access_token"]);
        assert_eq!(retry["refresh_token"], fresh["refresh_token"]);
        let job_token = s_of(&fresh, "access_token").to_owned();
        let key1 = s_of(&fresh, "refresh_token").to_owned();
        let (status, body) = post(
            &base,
            "/token",
            job.creds(),
            &[("grant_type", KEY), ("session_key", &key1), ("scope", "write")],
        )
        .await;
        expect_error(status, &body, StatusCode::BAD_REQUEST, "invalid_scope");

        // The job acts as the person.
        let (status, info) = bearer(&s, &base, Method::GET, "/userinfo", &job_token, &[]).await;
        assert_eq!(status, StatusCode::OK, "{info}");
        assert_eq!(info["sub"], alice.as_str());
        let intro = s.introspect(T, job.creds(), &job_token).await;
        assert_eq!(intro["active"], true, "{intro}");
        assert_eq!(intro["sub"], alice.as_str());

        // One child session from the session's token; none from the child's.
        let (status, child) = create_session(&s, &base, &job_token, &job, "read").await;
        assert_eq!(status, StatusCode::CREATED, "{child}");
        assert_eq!(child["parent_id"], sid.as_str());
        let (status, body) = create_session(&s, &base, &job_token, &job, "read").await;
        expect_error(status, &body, StatusCode::CONFLICT, "refused");
        let (status, child_bound) = post(
            &base,
            "/token",
            job.creds(),
            &[("grant_type", NONCE), ("nonce", s_of(&child, "nonce"))],
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{child_bound}");
        let (status, body) =
            create_session(&s, &base, s_of(&child_bound, "access_token"), &job, "read").await;
        expect_error(status, &body, StatusCode::CONFLICT, "refused");

        // The owner lists and revokes; then refresh fails and every token is inactive.
        let (status, list) = bearer(&s, &base, Method::GET, "/sessions", &token, &[]).await;
        assert_eq!(status, StatusCode::OK, "{list}");
        assert_eq!(list["sessions"].as_array().unwrap().len(), 2, "{list}");
        assert!(list.to_string().find("nonce_hash").is_none());
        let bob_token = {
            user(&s, "bob").await;
            person_token(&s, "bob", "openid read").await
        };
        let (status, _) = bearer(
            &s,
            &base,
            Method::DELETE,
            &format!("/sessions/{sid}"),
            &bob_token,
            &[],
        )
        .await;
        assert_eq!(
            status,
            StatusCode::NOT_FOUND,
            "another person's session is unknown to bob"
        );
        let (status, _) = bearer(
            &s,
            &base,
            Method::DELETE,
            &format!("/sessions/{sid}"),
            &token,
            &[],
        )
        .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (status, body) = post(
            &base,
            "/token",
            job.creds(),
            &[("grant_type", KEY), ("session_key", &key1)],
        )
        .await;
        expect_error(status, &body, StatusCode::BAD_REQUEST, "invalid_grant");
        assert_eq!(s.introspect(T, job.creds(), &job_token).await["active"], false);
        assert_eq!(
            s.introspect(T, job.creds(), s_of(&bound, "access_token")).await["active"],
            false
        );
        assert_eq!(
            s.introspect(T, job.creds(), s_of(&child_bound, "access_token"))
                .await["active"],
            false,
            "the child ends with its parent"
        );
        let (status, _) = bearer(&s, &base, Method::GET, "/userinfo", &job_token, &[]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);

        // An administrator lists and revokes too.
        let (_, created) = create_session(&s, &base, &token, &job, "read").await;
        let (status, list) = s
            .admin(
                Method::GET,
                &format!("/tenants/{T}/users/{alice}/delegated-sessions"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{list}");
        assert_eq!(list["sessions"].as_array().unwrap().len(), 1, "{list}");
        let path = format!("/tenants/{T}/delegated-sessions/{}", s_of(&created, "session_id"));
        assert_eq!(
            s.admin(Method::DELETE, &path, None).await.0,
            StatusCode::NO_CONTENT
        );
        assert_eq!(
            s.admin(Method::DELETE, &path, None).await.0,
            StatusCode::NOT_FOUND
        );
        let (status, body) = post(
            &base,
            "/token",
            job.creds(),
            &[("grant_type", NONCE), ("nonce", s_of(&created, "nonce"))],
        )
        .await;
        expect_error(status, &body, StatusCode::BAD_REQUEST, "invalid_grant");

        // Disabling the person revokes their sessions and the tokens of them.
        let (_, created) = create_session(&s, &base, &token, &job, "read").await;
        let (_, bound) = post(
            &base,
            "/token",
            job.creds(),
            &[("grant_type", NONCE), ("nonce", s_of(&created, "nonce"))],
        )
        .await;
        let t2 = s_of(&bound, "access_token").to_owned();
        assert_eq!(s.introspect(T, job.creds(), &t2).await["active"], true);
        let (status, body) = s
            .admin(Method::POST, &format!("/tenants/{T}/users/{alice}/disable"), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(s.introspect(T, job.creds(), &t2).await["active"], false);
        let (status, body) = post(
            &base,
            "/token",
            job.creds(),
            &[
                ("grant_type", KEY),
                ("session_key", s_of(&bound, "refresh_token")),
            ],
        )
        .await;
        expect_error(status, &body, StatusCode::BAD_REQUEST, "invalid_grant");
    }
}

#[tokio::test]
async fn a_second_sesamed_sharing_postgresql_binds_refreshes_and_sees_revocation() {
    let Some(a) = TestServer::postgres().await else {
        return;
    };
    let mut config = a.config.clone();
    // Replicas share the public URL (hence the issuer), the store and the master key.
    config.public_url = Some(a.base.clone());
    let b = sesame_server::start(&config, false)
        .await
        .expect("second sesamed starts");
    let b_base = format!("http://{}", b.addr);
    let alice = user(&a, "alice").await;
    let token = person_token(&a, "alice", "openid read").await;
    let job = Job::new(&a).await;
    let (status, created) = create_session(&a, &a.base, &token, &job, "openid").await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let (status, bound) = post(
        &b_base,
        "/token",
        job.creds(),
        &[("grant_type", NONCE), ("nonce", s_of(&created, "nonce"))],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "bound on the second: {bound}");
    let (status, fresh) = post(
        &a.base,
        "/token",
        job.creds(),
        &[
            ("grant_type", KEY),
            ("session_key", s_of(&bound, "refresh_token")),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "refreshed on the first: {fresh}");
    let (status, retry) = post(
        &b_base,
        "/token",
        job.creds(),
        &[
            ("grant_type", KEY),
            ("session_key", s_of(&bound, "refresh_token")),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "a retry on the second: {retry}");
    assert_eq!(retry["access_token"], fresh["access_token"]);
    let (status, info) = bearer(
        &a,
        &b_base,
        Method::GET,
        "/userinfo",
        s_of(&fresh, "access_token"),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{info}");
    assert_eq!(info["sub"], alice.as_str());
    let sid = s_of(&created, "session_id");
    let (status, _) = bearer(
        &a,
        &b_base,
        Method::DELETE,
        &format!("/sessions/{sid}"),
        &token,
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = post(
        &a.base,
        "/token",
        job.creds(),
        &[
            ("grant_type", KEY),
            ("session_key", s_of(&fresh, "refresh_token")),
        ],
    )
    .await;
    expect_error(status, &body, StatusCode::BAD_REQUEST, "invalid_grant");
    let (_, intro) = post(
        &a.base,
        "/introspect",
        job.creds(),
        &[("token", s_of(&fresh, "access_token"))],
    )
    .await;
    assert_eq!(intro["active"], false);
    b.shutdown().await.unwrap();
}

#[tokio::test]
async fn declared_sources_and_workload_settings_are_applied_idempotently() {
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("sync-secret");
    let secret = "s".repeat(40);
    std::fs::write(&secret_file, &secret).unwrap();
    let source_id = "7f3b8e21-4d9a-4c2e-9b7d-8a5f3c9e0b4f";
    let declare = |audience: &str, id: Option<&str>| -> sesame_server::config::TenantConfig {
        let mut source = json!({"name": "sync", "client_id": "sync", "audiences": [audience]});
        if let Some(id) = id {
            source["id"] = id.into();
        }
        serde_json::from_value(json!({
            "id": "acme",
            "workload_issuer": "https://static.example/acme",
            "clients": [{"client_id": "sync", "secret_file": secret_file, "grant_types": [WORKLOAD]}],
            "sources": [source],
        }))
        .unwrap()
    };
    let tenant = declare("https://wh.example", Some(source_id));
    let declared = tenant.clone();
    let s = TestServer::start(sesame_store::testing::TestDb::sqlite(), move |c| {
        c.tenants = vec![declared]
    })
    .await;
    let (status, source) = s
        .admin(Method::GET, &format!("/tenants/acme/sources/{source_id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{source}");
    assert_eq!(
        source["resource_id"],
        format!("ri.sesame.acme.source.{source_id}")
    );
    let (status, _, body) = s
        .post_form(
            "acme",
            "/token",
            Some(("sync", &secret)),
            &[("grant_type", WORKLOAD)],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, claims) = jwt_parts(s_of(&body, "access_token"));
    assert_eq!(claims["iss"], "https://static.example/acme");
    assert_eq!(claims["sub"], format!("ri.sesame.acme.source.{source_id}"));
    // Applying the same file again changes nothing; a changed audience replaces the source.
    sesame_server::bootstrap::apply_declared(&s.running.app, std::slice::from_ref(&tenant))
        .await
        .unwrap();
    let (_, again) = s
        .admin(Method::GET, &format!("/tenants/acme/sources/{source_id}"), None)
        .await;
    assert_eq!(again, source);
    let changed = declare("https://other.example", Some(source_id));
    sesame_server::bootstrap::apply_declared(&s.running.app, &[changed])
        .await
        .unwrap();
    let (_, again) = s
        .admin(Method::GET, &format!("/tenants/acme/sources/{source_id}"), None)
        .await;
    assert_eq!(again["audiences"], json!(["https://other.example"]));
    // A declared source without an id is refused with a sentence naming it.
    let no_id = declare("https://other.example", None);
    let err = sesame_server::bootstrap::apply_declared(&s.running.app, &[no_id])
        .await
        .unwrap_err();
    assert!(err.contains("needs an id"), "{err}");
}
