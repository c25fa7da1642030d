//! Delegated sessions created by a client with its own credentials, over HTTP on each store:
//! only a client the tenant allowed (admin `session-creation`), only for an enabled user, only
//! scopes the client itself may get; the client binds the nonce and acts as the user; the
//! creation is audited.

mod common;

use common::{expect_error, jwt_parts, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;

const T: &str = "default";
const PW: &str = "correct horse battery";
const NONCE: &str = "urn:sesame:params:oauth:grant-type:session-nonce";
const KEY: &str = "urn:sesame:params:oauth:grant-type:session-key";

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

/// POST a form to a tenant endpoint with Basic credentials.
async fn post(s: &TestServer, path: &str, creds: (&str, &str), form: &[(&str, &str)]) -> (StatusCode, Value) {
    let resp = s
        .http
        .post(format!("{}{path}", s.issuer(T)))
        .basic_auth(creds.0, Some(creds.1))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn allow(s: &TestServer, client: &str, allowed: bool) -> (StatusCode, Value) {
    s.admin(
        Method::PUT,
        &format!("/tenants/{T}/clients/{client}/session-creation"),
        Some(json!({ "allowed": allowed })),
    )
    .await
}

fn s_of<'v>(v: &'v Value, k: &str) -> &'v str {
    v[k].as_str().unwrap_or_else(|| panic!("no {k} in {v}"))
}

async fn audit_events(s: &TestServer, kind: &str, want: usize) -> Vec<Value> {
    for _ in 0..100 {
        let (st, body) = s
            .admin(
                Method::GET,
                &format!("/tenants/{T}/audit?type={kind}&limit=1000"),
                None,
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{body}");
        let list = body["events"].as_array().unwrap().clone();
        if list.len() >= want {
            return list;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("fewer than {want} {kind} events");
}

#[tokio::test]
async fn an_allowed_client_creates_a_session_for_a_user_and_acts_as_them_on_each_store() {
    for s in TestServer::each_store().await {
        let alice = user(&s, "alice").await;
        let bob = user(&s, "bob").await;
        let spec = json!({
            "grant_types": [NONCE, KEY],
            "allowed_scopes": ["openid", "read"],
            "introspect_any": true,
        });
        let (job, secret) = s.client(T, spec.clone()).await;
        let creds = (job.as_str(), secret.as_str());
        let create = |user: &'static str, scope: &'static str| {
            let s = &s;
            async move { post(s, "/client-sessions", creds, &[("user", user), ("scope", scope)]).await }
        };

        // Not allowed until the tenant says so.
        let (status, body) = s
            .admin(
                Method::GET,
                &format!("/tenants/{T}/clients/{job}/session-creation"),
                None,
            )
            .await;
        assert_eq!(
            (status, &body["allowed"]),
            (StatusCode::OK, &json!(false)),
            "{body}"
        );
        let (status, body) = create("alice", "openid read").await;
        expect_error(status, &body, StatusCode::BAD_REQUEST, "unauthorized_client");
        let (status, body) = allow(&s, &job, true).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, body) = allow(&s, "ghost", true).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        let (status, body) = s
            .admin(
                Method::GET,
                &format!("/tenants/{T}/clients/{job}/session-creation"),
                None,
            )
            .await;
        assert_eq!(
            (status, &body["allowed"]),
            (StatusCode::OK, &json!(true)),
            "{body}"
        );

        // Its credentials are needed: a wrong secret, or none, is refused.
        let (status, body) = post(&s, "/client-sessions", (&job, "wrong"), &[("user", "alice")]).await;
        expect_error(status, &body, StatusCode::UNAUTHORIZED, "invalid_client");
        let resp = s
            .http
            .post(format!("{}/client-sessions", s.issuer(T)))
            .form(&[("user", "alice"), ("client_id", job.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);

        // Never wider than the client's own scopes; never an unknown user.
        let (status, body) = create("alice", "openid read write").await;
        expect_error(status, &body, StatusCode::BAD_REQUEST, "invalid_scope");
        let (status, body) = create("nobody", "read").await;
        expect_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");

        // By username, then binding the nonce: the client acts as alice.
        let (status, created) = create("alice", "openid read").await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        assert_eq!(created["user_id"], alice.as_str());
        assert_eq!(created["client_id"], job.as_str());
        let sid = s_of(&created, "session_id").to_owned();
        let (status, bound) = post(
            &s,
            "/token",
            creds,
            &[("grant_type", NONCE), ("nonce", s_of(&created, "nonce"))],
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{bound}");
        let token = s_of(&bound, "access_token").to_owned();
        let (_, claims) = jwt_parts(&token);
        assert_eq!(claims["sub"], alice.as_str());
        assert_eq!(claims["act"], json!({"sub": job}));
        assert_eq!(claims["sid"], sid.as_str());
        assert_eq!(claims["scope"], "openid read");
        let resp = s
            .http
            .get(format!("{}/userinfo", s.issuer(T)))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let info: Value = resp.json().await.unwrap();
        assert_eq!(info["sub"], alice.as_str());
        let intro = s.introspect(T, creds, &token).await;
        assert_eq!(
            (&intro["active"], &intro["sub"]),
            (&json!(true), &json!(alice)),
            "{intro}"
        );
        let (status, fresh) = post(
            &s,
            "/token",
            creds,
            &[
                ("grant_type", KEY),
                ("session_key", s_of(&bound, "refresh_token")),
            ],
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{fresh}");

        // By id, all of the client's scopes when none are named.
        let (status, created) = create_by_id(&s, creds, &bob).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        assert_eq!(
            (&created["user_id"], &created["scope"]),
            (&json!(bob), &json!("openid read"))
        );

        // A disabled user is refused.
        let (status, body) = s
            .admin(Method::POST, &format!("/tenants/{T}/users/{bob}/disable"), None)
            .await;
        assert!(status.is_success(), "{body}");
        let (status, body) = create("bob", "read").await;
        expect_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");

        // Another client, even with the same grants, is not allowed; taking it back refuses again.
        let (other, other_secret) = s.client(T, spec.clone()).await;
        let (status, body) = post(
            &s,
            "/client-sessions",
            (&other, &other_secret),
            &[("user", "alice")],
        )
        .await;
        expect_error(status, &body, StatusCode::BAD_REQUEST, "unauthorized_client");
        let (status, _) = allow(&s, &job, false).await;
        assert_eq!(status, StatusCode::OK);
        let (status, body) = create("alice", "read").await;
        expect_error(status, &body, StatusCode::BAD_REQUEST, "unauthorized_client");

        // Audited: who created which session for whom.
        let events = audit_events(&s, "session.created", 2).await;
        let e = events
            .iter()
            .find(|e| e["target"] == format!("session:{sid}"))
            .unwrap_or_else(|| panic!("no event for {sid} in {events:?}"));
        assert_eq!(
            (&e["actor_kind"], &e["actor_id"]),
            (&json!("client"), &json!(job)),
            "{e}"
        );
        assert_eq!(e["details"]["user"], alice.as_str(), "{e}");
    }
}

async fn create_by_id(s: &TestServer, creds: (&str, &str), user: &str) -> (StatusCode, Value) {
    post(s, "/client-sessions", creds, &[("user", user)]).await
}

/// A compact ES256 JWS of `claims`, signed by `pair` under `kid`.
fn assertion(pair: &sesame_core::keys::SigningKeyPair, kid: &str, claims: &Value) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    use base64::Engine;
    let header = json!({"alg": "ES256", "typ": "JWT", "kid": kid});
    let mut out = format!(
        "{}.{}",
        B64.encode(header.to_string()),
        B64.encode(claims.to_string())
    );
    let sig = pair.sign(out.as_bytes()).unwrap();
    out.push('.');
    out.push_str(&B64.encode(sig));
    out
}

#[tokio::test]
async fn a_private_key_jwt_client_creates_a_session_with_a_single_use_assertion() {
    let s = TestServer::sqlite().await;
    let alice = user(&s, "alice").await;
    let key = sesame_core::keys::SigningKeyPair::generate(sesame_core::model::SigningAlg::ES256).unwrap();
    let jwk: Value = serde_json::from_str(&key.public_jwk("c1")).unwrap();
    let (status, body) = s
        .admin(
            Method::POST,
            &format!("/tenants/{T}/clients"),
            Some(json!({
                "client_id": "keyed-job",
                "token_endpoint_auth_method": "private_key_jwt",
                "jwks": { "keys": [jwk] },
                "grant_types": [NONCE, KEY],
                "allowed_scopes": ["read"],
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = allow(&s, "keyed-job", true).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let endpoint = format!("{}/client-sessions", s.issuer(T));
    let t = sesame_core::now();
    let claims = json!({
        "iss": "keyed-job", "sub": "keyed-job", "aud": endpoint,
        "iat": t, "exp": t + 60, "jti": format!("j-{t}-1"),
    });
    let signed = assertion(&key, "c1", &claims);
    let form = [
        (
            "client_assertion_type",
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        ),
        ("client_assertion", signed.as_str()),
        ("user", "alice"),
    ];
    let (status, _, created) = s.post_form(T, "/client-sessions", None, &form).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(
        (&created["user_id"], &created["scope"]),
        (&json!(alice), &json!("read"))
    );
    // The same assertion again is a replay.
    let (status, _, body) = s.post_form(T, "/client-sessions", None, &form).await;
    expect_error(status, &body, StatusCode::UNAUTHORIZED, "invalid_client");
    // Binding needs a fresh assertion, for the token endpoint.
    let claims = json!({
        "iss": "keyed-job", "sub": "keyed-job", "aud": format!("{}/token", s.issuer(T)),
        "iat": t, "exp": t + 60, "jti": format!("j-{t}-2"),
    });
    let signed = assertion(&key, "c1", &claims);
    let (status, _, bound) = s
        .post_form(
            T,
            "/token",
            None,
            &[
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_assertion", signed.as_str()),
                ("grant_type", NONCE),
                ("nonce", s_of(&created, "nonce")),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{bound}");
    let (_, claims) = jwt_parts(s_of(&bound, "access_token"));
    assert_eq!(
        (&claims["sub"], &claims["act"]),
        (&json!(alice), &json!({"sub": "keyed-job"}))
    );
}
