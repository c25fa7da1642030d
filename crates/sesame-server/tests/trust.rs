//! Trust policies, token exchange (RFC 8693) and private_key_jwt (RFC 7523 §2.2) against a real
//! `sesamed`, with a small outside issuer on loopback (discovery + JWKS, its own key, claims
//! like a CI system's) and another tenant of the same `sesamed` as a second trusted issuer.

mod common;

use axum::http::header;
use axum::routing::get;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use common::{expect_error, jwt_parts, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sesame_core::keys::SigningKeyPair;
use sesame_core::model::SigningAlg;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};

const JWT: &str = "urn:ietf:params:oauth:token-type:jwt";
const AT: &str = "urn:ietf:params:oauth:token-type:access_token";
const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const SOURCE: &str = "ri.sesame.acme.source.7f3b8e21-4d9a-6c2e-1b7d-8a5f3c9e0b4f";

fn now() -> i64 {
    sesame_core::now()
}

fn jwk(pair: &SigningKeyPair, kid: &str) -> Value {
    serde_json::from_str(&pair.public_jwk(kid)).unwrap()
}

/// A compact JWS of `claims` under `header`, signed by `pair`.
fn sign(pair: &SigningKeyPair, header: &Value, claims: &Value) -> String {
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

fn unsigned(claims: &Value) -> String {
    format!(
        "{}.{}.",
        B64.encode(r#"{"alg":"none","typ":"JWT","kid":"k1"}"#),
        B64.encode(claims.to_string())
    )
}

/// The HS256 attack: an HMAC keyed with the issuer's public key, which anyone can read.
fn hmac_with_public_key(pair: &SigningKeyPair, kid: &str, claims: &Value) -> String {
    let input = format!(
        "{}.{}",
        B64.encode(json!({"alg": "HS256", "typ": "JWT", "kid": kid}).to_string()),
        B64.encode(claims.to_string())
    );
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, pair.public_jwk(kid).as_bytes());
    let tag = aws_lc_rs::hmac::sign(&key, input.as_bytes());
    format!("{input}.{}", B64.encode(tag.as_ref()))
}

fn with(base: &Value, changes: &[(&str, Value)]) -> Value {
    let mut v = base.clone();
    for (k, val) in changes {
        v[*k] = val.clone();
    }
    v
}

fn random_jti() -> String {
    B64.encode(sesame_core::crypto::random_bytes::<16>())
}

/// A small outside issuer on loopback: a discovery document, a JWKS (each fetch counted), and
/// its own ES256 keys, which it can rotate.
struct Issuer {
    url: String,
    keys: Arc<Mutex<Vec<(String, SigningKeyPair)>>>,
    fetches: Arc<AtomicUsize>,
}

impl Issuer {
    async fn start() -> Issuer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let keys = Arc::new(Mutex::new(vec![(
            "k1".to_owned(),
            SigningKeyPair::generate(SigningAlg::ES256).unwrap(),
        )]));
        let fetches = Arc::new(AtomicUsize::new(0));
        let (k, f, u) = (keys.clone(), fetches.clone(), url.clone());
        let app = axum::Router::new()
            .route(
                "/.well-known/openid-configuration",
                get(move || {
                    let u = u.clone();
                    async move { axum::Json(json!({ "issuer": u, "jwks_uri": format!("{u}/jwks") })) }
                }),
            )
            .route(
                "/jwks",
                get(move || {
                    let (k, f) = (k.clone(), f.clone());
                    async move {
                        f.fetch_add(1, SeqCst);
                        let keys: Vec<Value> = k.lock().unwrap().iter().map(|(kid, p)| jwk(p, kid)).collect();
                        (
                            [(header::CACHE_CONTROL, "public, max-age=600")],
                            axum::Json(json!({ "keys": keys })),
                        )
                    }
                }),
            );
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Issuer { url, keys, fetches }
    }

    fn discovery_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.url)
    }

    /// Claims like a CI system's ID token for a workflow on `main` of `acme/app`.
    fn claims(&self) -> Value {
        let t = now();
        json!({
            "iss": self.url,
            "aud": "sesame-ci",
            "sub": "repo:acme/app:ref:refs/heads/main",
            "repository": "acme/app",
            "ref": "refs/heads/main",
            "workflow": "deploy",
            "iat": t,
            "nbf": t,
            "exp": t + 300,
            "jti": random_jti(),
        })
    }

    fn sign_kid(&self, kid: &str, claims: &Value) -> String {
        let keys = self.keys.lock().unwrap();
        let (_, pair) = keys
            .iter()
            .find(|(k, _)| k == kid)
            .expect("the issuer has this key");
        sign(pair, &json!({"alg": "ES256", "typ": "JWT", "kid": kid}), claims)
    }

    fn token(&self, claims: &Value) -> String {
        self.sign_kid("k1", claims)
    }

    fn hmac_token(&self, claims: &Value) -> String {
        let keys = self.keys.lock().unwrap();
        hmac_with_public_key(&keys[0].1, "k1", claims)
    }

    /// Publishes a new key `k2` in place of `k1`.
    fn rotate(&self) {
        *self.keys.lock().unwrap() =
            vec![("k2".into(), SigningKeyPair::generate(SigningAlg::ES256).unwrap())];
    }
}

fn ci_policy(issuer: &Issuer) -> Value {
    json!({
        "name": "ci",
        "issuer": issuer.url,
        "discovery_url": issuer.discovery_url(),
        "audience": "sesame-ci",
        "subject": "repo:acme/*:ref:refs/heads/main",
        "claims": { "repository": "acme/app", "ref": ["refs/heads/main", "refs/heads/release"] },
        "max_age": 600,
        "identity": SOURCE,
        "scopes": ["deploy", "read"],
        "audiences": ["deploy-api"],
    })
}

async fn policy(s: &TestServer, tenant: &str, body: Value) {
    let (status, body) = s
        .admin(
            Method::POST,
            &format!("/tenants/{tenant}/trust-policies"),
            Some(body),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

type Creds = (String, String);

/// Tenant `acme` trusting `issuer` (policy `ci`), an exchanging client `broker` and a resource
/// server `deploy-api` that may introspect.
async fn setup(s: &TestServer, issuer: &Issuer) -> (Creds, Creds) {
    s.tenant("acme", json!({})).await;
    policy(s, "acme", ci_policy(issuer)).await;
    let broker = s
        .client(
            "acme",
            json!({"client_id": "broker", "grant_types": [EXCHANGE, "client_credentials"]}),
        )
        .await;
    let rs = s
        .client("acme", json!({"client_id": "deploy-api", "introspect_any": true}))
        .await;
    (broker, rs)
}

async fn exchange(s: &TestServer, creds: &Creds, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let mut f = vec![("grant_type", EXCHANGE)];
    f.extend_from_slice(form);
    let (status, _, body) = s
        .post_form("acme", "/token", Some((&creds.0, &creds.1)), &f)
        .await;
    (status, body)
}

#[tokio::test]
async fn a_ci_token_that_satisfies_the_policy_becomes_the_mapped_identity() {
    let issuer = Issuer::start().await;
    let s = TestServer::sqlite().await;
    let (broker, rs) = setup(&s, &issuer).await;
    let ci = issuer.token(&issuer.claims());
    let (status, body) = exchange(
        &s,
        &broker,
        &[
            ("subject_token", &ci),
            ("subject_token_type", JWT),
            ("scope", "deploy"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["issued_token_type"], AT);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "deploy");
    let expires_in = body["expires_in"].as_i64().unwrap();
    assert!(0 < expires_in && expires_in <= 900, "short-lived: {expires_in}");
    let access = body["access_token"].as_str().unwrap();
    let (header, claims) = jwt_parts(access);
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(claims["sub"], SOURCE);
    assert_eq!(claims["aud"], "deploy-api");
    assert_eq!(claims["client_id"], "broker");
    assert!(claims.get("act").is_none());

    let intro = s.introspect("acme", (&rs.0, &rs.1), access).await;
    assert_eq!(intro["active"], true, "{intro}");
    assert_eq!(intro["sub"], SOURCE);
    assert_eq!(intro["scope"], "deploy");

    // No scope asked for: everything the policy allows, and nothing more.
    let (status, body) = exchange(
        &s,
        &broker,
        &[
            ("subject_token", &issuer.token(&issuer.claims())),
            ("subject_token_type", JWT),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["scope"], "deploy read");

    // Discovery lists the grant and private_key_jwt, and not client_secret_jwt.
    let doc: Value = s
        .http
        .get(format!("{}/.well-known/openid-configuration", s.issuer("acme")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let has = |member: &str, value: &str| doc[member].as_array().unwrap().iter().any(|v| v == value);
    assert!(has("grant_types_supported", EXCHANGE));
    assert!(has("token_endpoint_auth_methods_supported", "private_key_jwt"));
    assert!(!has("token_endpoint_auth_methods_supported", "client_secret_jwt"));
    assert!(has("token_endpoint_auth_signing_alg_values_supported", "ES256"));
    assert!(has(
        "introspection_endpoint_auth_methods_supported",
        "private_key_jwt"
    ));
}

#[tokio::test]
async fn outside_tokens_are_refused_naming_the_failed_condition() {
    let issuer = Issuer::start().await;
    let s = TestServer::sqlite().await;
    let (broker, _) = setup(&s, &issuer).await;
    let base = issuer.claims();
    let t = now();
    let stranger = SigningKeyPair::generate(SigningAlg::ES256).unwrap();
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "expired",
            issuer.token(&with(
                &base,
                &[
                    ("exp", json!(t - 120)),
                    ("iat", json!(t - 400)),
                    ("nbf", json!(t - 400)),
                ],
            )),
            "expired",
        ),
        (
            "not yet valid",
            issuer.token(&with(&base, &[("nbf", json!(t + 600))])),
            "nbf",
        ),
        (
            "wrong audience",
            issuer.token(&with(&base, &[("aud", json!("someone-else"))])),
            "audience",
        ),
        ("alg none", unsigned(&base), "'none'"),
        (
            "HS256 keyed with the public key",
            issuer.hmac_token(&base),
            "HMAC",
        ),
        (
            "untrusted issuer",
            issuer.token(&with(&base, &[("iss", json!("https://evil.example"))])),
            "untrusted issuer",
        ),
        (
            "subject mismatch",
            issuer.token(&with(
                &base,
                &[("sub", json!("repo:evil/app:ref:refs/heads/main"))],
            )),
            "condition 'subject'",
        ),
        (
            "claim mismatch",
            issuer.token(&with(&base, &[("repository", json!("acme/other"))])),
            "claims.repository",
        ),
        (
            "claim not in the set",
            issuer.token(&with(&base, &[("ref", json!("refs/heads/dev"))])),
            "claims.ref",
        ),
        (
            "too old",
            issuer.token(&with(&base, &[("iat", json!(t - 900))])),
            "max_age",
        ),
        (
            "signed by another key under the issuer's kid",
            sign(&stranger, &json!({"alg": "ES256", "kid": "k1"}), &base),
            "signature",
        ),
        (
            "alg other than the key's",
            issuer.token(&base).replacen(
                &B64.encode(json!({"alg": "ES256", "typ": "JWT", "kid": "k1"}).to_string()),
                &B64.encode(json!({"alg": "RS256", "typ": "JWT", "kid": "k1"}).to_string()),
                1,
            ),
            "algorithm",
        ),
        ("not a JWT", "not-a-token".into(), "not valid"),
    ];
    for (case, token, names) in &cases {
        let (status, body) = exchange(
            &s,
            &broker,
            &[("subject_token", token), ("subject_token_type", JWT)],
        )
        .await;
        expect_error(status, &body, StatusCode::BAD_REQUEST, "invalid_grant");
        let description = body["error_description"].as_str().unwrap();
        assert!(description.contains(names), "{case}: {description}");
        assert!(
            !body.to_string().contains(token.as_str()),
            "{case}: the token is never echoed"
        );
    }

    let good = issuer.token(&issuer.claims());
    let (status, body) = exchange(
        &s,
        &broker,
        &[
            ("subject_token", &good),
            ("subject_token_type", JWT),
            ("scope", "deploy admin"),
        ],
    )
    .await;
    expect_error(status, &body, StatusCode::BAD_REQUEST, "invalid_scope");
    assert!(
        body["error_description"].as_str().unwrap().contains("admin"),
        "{body}"
    );
    let (status, body) = exchange(
        &s,
        &broker,
        &[
            ("subject_token", &good),
            ("subject_token_type", JWT),
            ("audience", "billing-api"),
        ],
    )
    .await;
    expect_error(status, &body, StatusCode::BAD_REQUEST, "invalid_target");
    let (status, body) = exchange(
        &s,
        &broker,
        &[
            ("subject_token", &good),
            ("subject_token_type", "urn:ietf:params:oauth:token-type:saml2"),
        ],
    )
    .await;
    expect_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
    assert!(body["error_description"]
        .as_str()
        .unwrap()
        .contains("subject_token_type"));
    let (status, body) = exchange(
        &s,
        &broker,
        &[
            ("subject_token", &good),
            ("subject_token_type", JWT),
            (
                "requested_token_type",
                "urn:ietf:params:oauth:token-type:id_token",
            ),
        ],
    )
    .await;
    expect_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
    let (status, body) = exchange(&s, &broker, &[("subject_token_type", JWT)]).await;
    expect_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
    let (status, body) = exchange(
        &s,
        &broker,
        &[
            ("subject_token", &good),
            ("subject_token_type", JWT),
            ("actor_token", &good),
        ],
    )
    .await;
    expect_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");

    // Only a client opted in to the grant may exchange.
    let other = s.client("acme", json!({"client_id": "plain"})).await;
    let (status, body) = exchange(
        &s,
        &other,
        &[("subject_token", &good), ("subject_token_type", JWT)],
    )
    .await;
    expect_error(status, &body, StatusCode::BAD_REQUEST, "unauthorized_client");
}

#[tokio::test]
async fn an_unknown_kid_is_fetched_again_once_then_refused() {
    let issuer = Issuer::start().await;
    let s = TestServer::sqlite().await;
    let (broker, _) = setup(&s, &issuer).await;
    let (status, body) = exchange(
        &s,
        &broker,
        &[
            ("subject_token", &issuer.token(&issuer.claims())),
            ("subject_token_type", JWT),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(issuer.fetches.load(SeqCst), 1);
    // Cached: a second good token fetches nothing.
    let (status, _) = exchange(
        &s,
        &broker,
        &[
            ("subject_token", &issuer.token(&issuer.claims())),
            ("subject_token_type", JWT),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(issuer.fetches.load(SeqCst), 1);

    let stranger = SigningKeyPair::generate(SigningAlg::ES256).unwrap();
    let forged = sign(&stranger, &json!({"alg": "ES256", "kid": "k9"}), &issuer.claims());
    for _ in 0..3 {
        let (status, body) = exchange(
            &s,
            &broker,
            &[("subject_token", &forged), ("subject_token_type", JWT)],
        )
        .await;
        expect_error(status, &body, StatusCode::BAD_REQUEST, "invalid_grant");
        assert!(
            body["error_description"]
                .as_str()
                .unwrap()
                .contains("unknown kid"),
            "{body}"
        );
    }
    assert_eq!(
        issuer.fetches.load(SeqCst),
        2,
        "one refetch for the unknown kid, then rate-limited"
    );
}

#[tokio::test]
async fn a_rotated_issuer_key_is_fetched_on_first_sight() {
    let issuer = Issuer::start().await;
    let s = TestServer::sqlite().await;
    let (broker, _) = setup(&s, &issuer).await;
    let (status, _) = exchange(
        &s,
        &broker,
        &[
            ("subject_token", &issuer.token(&issuer.claims())),
            ("subject_token_type", JWT),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    issuer.rotate();
    let rotated = issuer.sign_kid("k2", &issuer.claims());
    let (status, body) = exchange(
        &s,
        &broker,
        &[("subject_token", &rotated), ("subject_token_type", JWT)],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(issuer.fetches.load(SeqCst), 2);
}

#[tokio::test]
async fn another_sesamed_tenant_is_trusted_as_an_issuer() {
    let s = TestServer::sqlite().await;
    s.tenant("acme", json!({})).await;
    s.tenant("upstream", json!({})).await;
    let job = s
        .client(
            "upstream",
            json!({"client_id": "job", "allowed_audiences": ["acme-exchange"], "allowed_scopes": ["build"]}),
        )
        .await;
    let other = s
        .client(
            "upstream",
            json!({"client_id": "other", "allowed_audiences": ["acme-exchange"]}),
        )
        .await;
    let upstream = s.issuer("upstream");
    policy(
        &s,
        "acme",
        json!({
            "name": "upstream-job",
            "issuer": upstream,
            "discovery_url": format!("{upstream}/.well-known/openid-configuration"),
            "audience": "acme-exchange",
            "subject": "job",
            "typ": "at+jwt",
            "claims": { "client_id": "job", "scope": ["build", "build deploy"] },
            "identity": "upstream-job",
            "scopes": ["read"],
        }),
    )
    .await;
    let broker = s
        .client("acme", json!({"client_id": "broker", "grant_types": [EXCHANGE]}))
        .await;
    let rs = s
        .client("acme", json!({"client_id": "api", "introspect_any": true}))
        .await;
    let upstream_token = s.token("upstream", &job.0, &job.1, &[("scope", "build")]).await;
    let (status, body) = exchange(
        &s,
        &broker,
        &[("subject_token", &upstream_token), ("subject_token_type", JWT)],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let access = body["access_token"].as_str().unwrap();
    let intro = s.introspect("acme", (&rs.0, &rs.1), access).await;
    assert_eq!(intro["active"], true, "{intro}");
    assert_eq!(intro["sub"], "upstream-job");
    assert_eq!(intro["scope"], "read");
    assert_eq!(intro["iss"], s.issuer("acme"));

    // Another client of the same issuer is not the subject the policy names.
    let not_job = s.token("upstream", &other.0, &other.1, &[]).await;
    let (status, body) = exchange(
        &s,
        &broker,
        &[("subject_token", &not_job), ("subject_token_type", JWT)],
    )
    .await;
    expect_error(status, &body, StatusCode::BAD_REQUEST, "invalid_grant");
    assert!(
        body["error_description"].as_str().unwrap().contains("subject"),
        "{body}"
    );
    // acme's own tokens are not outside tokens: no policy trusts acme's issuer.
    let own = s.token("acme", &rs.0, &rs.1, &[]).await;
    let (status, body) = exchange(
        &s,
        &broker,
        &[("subject_token", &own), ("subject_token_type", JWT)],
    )
    .await;
    expect_error(status, &body, StatusCode::BAD_REQUEST, "invalid_grant");
    assert!(body["error_description"]
        .as_str()
        .unwrap()
        .contains("untrusted issuer"));
}

#[tokio::test]
async fn sesame_tokens_exchange_with_delegation_nested_act_and_narrowing() {
    let s = TestServer::sqlite().await;
    s.tenant("acme", json!({})).await;
    let svc = s
        .client(
            "acme",
            json!({"client_id": "svc", "allowed_audiences": ["broker"], "allowed_scopes": ["read", "write"]}),
        )
        .await;
    let broker = s
        .client(
            "acme",
            json!({"client_id": "broker", "grant_types": [EXCHANGE, "client_credentials"], "allowed_audiences": ["api", "broker"]}),
        )
        .await;
    let helper = s
        .client(
            "acme",
            json!({"client_id": "helper", "allowed_audiences": ["broker"]}),
        )
        .await;
    let api = s
        .client("acme", json!({"client_id": "api", "introspect_any": true}))
        .await;
    let subject = s.token("acme", &svc.0, &svc.1, &[("scope", "read write")]).await;
    let actor = s
        .token("acme", &broker.0, &broker.1, &[("audience", "broker")])
        .await;
    let (status, body) = exchange(
        &s,
        &broker,
        &[
            ("subject_token", &subject),
            ("subject_token_type", AT),
            ("actor_token", &actor),
            ("actor_token_type", AT),
            ("scope", "read"),
            ("audience", "api"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let delegated = body["access_token"].as_str().unwrap().to_owned();
    let (_, claims) = jwt_parts(&delegated);
    let (_, subject_claims) = jwt_parts(&subject);
    assert_eq!(claims["sub"], "svc");
    assert_eq!(claims["act"], json!({"sub": "broker"}));
    assert_eq!(claims["scope"], "read");
    assert_eq!(claims["aud"], "api");
    assert!(claims["exp"].as_i64() <= subject_claims["exp"].as_i64());
    let intro = s.introspect("acme", (&api.0, &api.1), &delegated).await;
    assert_eq!(intro["active"], true, "{intro}");
    assert_eq!(intro["act"], json!({"sub": "broker"}));

    // A second delegation nests the first actor inside the new one (RFC 8693 §4.1).
    let helper_token = s.token("acme", &helper.0, &helper.1, &[]).await;
    let (status, body) = exchange(
        &s,
        &broker,
        &[
            ("subject_token", &delegated),
            ("subject_token_type", AT),
            ("actor_token", &helper_token),
            ("actor_token_type", AT),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, claims) = jwt_parts(body["access_token"].as_str().unwrap());
    assert_eq!(claims["act"], json!({"sub": "helper", "act": {"sub": "broker"}}));
    assert_eq!(claims["scope"], "read", "never wider than the subject token");

    // Wider than the subject token.
    let (status, body) = exchange(
        &s,
        &broker,
        &[
            ("subject_token", &delegated),
            ("subject_token_type", AT),
            ("scope", "write"),
        ],
    )
    .await;
    expect_error(status, &body, StatusCode::BAD_REQUEST, "invalid_scope");
    // A token that neither was issued to the broker nor names it.
    let api_token = s.token("acme", &api.0, &api.1, &[]).await;
    let (status, body) = exchange(
        &s,
        &broker,
        &[("subject_token", &api_token), ("subject_token_type", AT)],
    )
    .await;
    expect_error(status, &body, StatusCode::BAD_REQUEST, "invalid_grant");
    // A revoked subject token.
    let (status, _, _) = s
        .post_form("acme", "/revoke", Some((&svc.0, &svc.1)), &[("token", &subject)])
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = exchange(
        &s,
        &broker,
        &[("subject_token", &subject), ("subject_token_type", AT)],
    )
    .await;
    expect_error(status, &body, StatusCode::BAD_REQUEST, "invalid_grant");
    assert!(
        body["error_description"].as_str().unwrap().contains("revoked"),
        "{body}"
    );
}

fn assertion(pair: &SigningKeyPair, kid: &str, claims: &Value) -> String {
    sign(pair, &json!({"alg": "ES256", "typ": "JWT", "kid": kid}), claims)
}

fn assertion_claims(client: &str, aud: &str) -> Value {
    let t = now();
    json!({"iss": client, "sub": client, "aud": aud, "iat": t, "exp": t + 60, "jti": random_jti()})
}

async fn with_assertion(
    s: &TestServer,
    endpoint: &str,
    assertion: &str,
    form: &[(&str, &str)],
) -> (StatusCode, Value) {
    let mut f = vec![
        ("client_assertion_type", ASSERTION),
        ("client_assertion", assertion),
    ];
    f.extend_from_slice(form);
    let (status, _, body) = s.post_form("acme", endpoint, None, &f).await;
    (status, body)
}

#[tokio::test]
async fn private_key_jwt_clients_authenticate_with_single_use_assertions() {
    let s = TestServer::sqlite().await;
    s.tenant("acme", json!({})).await;
    let key = SigningKeyPair::generate(SigningAlg::ES256).unwrap();
    let (status, body) = s
        .admin(
            Method::POST,
            "/tenants/acme/clients",
            Some(json!({
                "client_id": "keyed",
                "token_endpoint_auth_method": "private_key_jwt",
                "jwks": { "keys": [jwk(&key, "c1")] },
                "allowed_scopes": ["read"],
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!(
        body["client_secret"].is_null(),
        "no secret for a keyed client: {body}"
    );
    let issuer = s.issuer("acme");
    let token_endpoint = format!("{issuer}/token");
    let cc = [("grant_type", "client_credentials")];

    let good = assertion(&key, "c1", &assertion_claims("keyed", &token_endpoint));
    let (status, body) = with_assertion(&s, "/token", &good, &cc).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let access = body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(jwt_parts(&access).1["sub"], "keyed");

    let (status, body) = with_assertion(&s, "/token", &good, &cc).await;
    expect_error(status, &body, StatusCode::UNAUTHORIZED, "invalid_client");

    let t = now();
    let stranger = SigningKeyPair::generate(SigningAlg::ES256).unwrap();
    let base = assertion_claims("keyed", &token_endpoint);
    let refused: Vec<(&str, String)> = vec![
        (
            "wrong audience",
            assertion(
                &key,
                "c1",
                &with(&base, &[("aud", json!("https://elsewhere/token"))]),
            ),
        ),
        (
            "too long a life",
            assertion(&key, "c1", &with(&base, &[("exp", json!(t + 3600))])),
        ),
        (
            "expired",
            assertion(&key, "c1", &with(&base, &[("exp", json!(t - 120))])),
        ),
        (
            "no jti",
            assertion(&key, "c1", &with(&base, &[("jti", Value::Null)])),
        ),
        (
            "iss is not the client",
            assertion(&key, "c1", &with(&base, &[("iss", json!("other"))])),
        ),
        (
            "another key",
            assertion(&stranger, "c1", &with(&base, &[("jti", json!(random_jti()))])),
        ),
        (
            "unknown kid",
            assertion(&stranger, "c9", &with(&base, &[("jti", json!(random_jti()))])),
        ),
        (
            "alg none",
            unsigned(&with(&base, &[("jti", json!(random_jti()))])),
        ),
        (
            "HS256 keyed with the public key",
            hmac_with_public_key(&key, "c1", &with(&base, &[("jti", json!(random_jti()))])),
        ),
        (
            "unknown client",
            assertion(
                &key,
                "c1",
                &with(&base, &[("iss", json!("ghost")), ("sub", json!("ghost"))]),
            ),
        ),
    ];
    for (case, a) in &refused {
        let (status, body) = with_assertion(&s, "/token", a, &cc).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("invalid_client")),
            "{case}: {body}"
        );
    }

    // Introspection and revocation authenticate the same way (aud: the issuer or the endpoint).
    let a = assertion(&key, "c1", &assertion_claims("keyed", &issuer));
    let (status, body) = with_assertion(&s, "/introspect", &a, &[("token", &access)]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["active"], true, "{body}");
    let a = assertion(
        &key,
        "c1",
        &assertion_claims("keyed", &format!("{issuer}/revoke")),
    );
    let (status, body) = with_assertion(&s, "/revoke", &a, &[("token", &access)]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let a = assertion(&key, "c1", &assertion_claims("keyed", &issuer));
    let (_, body) = with_assertion(&s, "/introspect", &a, &[("token", &access)]).await;
    assert_eq!(body["active"], false, "{body}");

    // One method per request, and only the jwt-bearer assertion type.
    let a = assertion(&key, "c1", &assertion_claims("keyed", &token_endpoint));
    let (status, body) = with_assertion(
        &s,
        "/token",
        &a,
        &[("grant_type", "client_credentials"), ("client_secret", "x")],
    )
    .await;
    expect_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
    let (status, _, body) = s
        .post_form(
            "acme",
            "/token",
            None,
            &[
                ("grant_type", "client_credentials"),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:saml2-bearer",
                ),
                ("client_assertion", &a),
            ],
        )
        .await;
    expect_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
    // client_id in the body names the client (RFC 7521 §4.2); a keyed client's assertion must
    // still have iss = sub = that client, so naming another one is refused.
    s.client("acme", json!({"client_id": "other"})).await;
    let (status, body) = with_assertion(
        &s,
        "/token",
        &a,
        &[("grant_type", "client_credentials"), ("client_id", "other")],
    )
    .await;
    expect_error(status, &body, StatusCode::UNAUTHORIZED, "invalid_client");
    let (status, body) = with_assertion(
        &s,
        "/token",
        &a,
        &[("grant_type", "client_credentials"), ("client_id", "keyed")],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // A keyed client has no secret to rotate.
    let (status, _) = s
        .admin(Method::POST, "/tenants/acme/clients/keyed/rotate-secret", None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_client_with_a_jwks_uri_authenticates_with_the_keys_published_there() {
    let keys = Issuer::start().await;
    let s = TestServer::sqlite().await;
    s.tenant("acme", json!({})).await;
    let (status, body) = s
        .admin(
            Method::POST,
            "/tenants/acme/clients",
            Some(json!({"client_id": "ci-runner", "jwks_uri": format!("{}/jwks", keys.url)})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let token_endpoint = format!("{}/token", s.issuer("acme"));
    let a = keys.sign_kid("k1", &assertion_claims("ci-runner", &token_endpoint));
    let (status, body) = with_assertion(&s, "/token", &a, &[("grant_type", "client_credentials")]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // After the runner's keys rotate, the new key works at once (one refetch on the unknown kid).
    keys.rotate();
    let a = keys.sign_kid("k2", &assertion_claims("ci-runner", &token_endpoint));
    let (status, body) = with_assertion(&s, "/token", &a, &[("grant_type", "client_credentials")]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn trust_policies_are_managed_through_the_admin_api() {
    let issuer = Issuer::start().await;
    let s = TestServer::sqlite().await;
    s.tenant("acme", json!({})).await;
    policy(&s, "acme", ci_policy(&issuer)).await;
    let (status, body) = s.admin(Method::GET, "/tenants/acme/trust-policies", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["trust_policies"][0]["name"], "ci");
    assert_eq!(body["trust_policies"][0]["identity"], SOURCE);
    let (status, _) = s
        .admin(
            Method::POST,
            "/tenants/acme/trust-policies",
            Some(ci_policy(&issuer)),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let mut changed = ci_policy(&issuer);
    changed["scopes"] = json!(["read"]);
    let (status, body) = s
        .admin(Method::PUT, "/tenants/acme/trust-policies/ci", Some(changed))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, body) = s
        .admin(Method::GET, "/tenants/acme/trust-policies/ci", None)
        .await;
    assert_eq!(body["scopes"], json!(["read"]));

    let mut no_source = ci_policy(&issuer);
    no_source.as_object_mut().unwrap().remove("discovery_url");
    no_source["name"] = json!("other");
    let (status, body) = s
        .admin(Method::POST, "/tenants/acme/trust-policies", Some(no_source))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let mut unknown_field = ci_policy(&issuer);
    unknown_field["condition"] = json!("x");
    let (status, _) = s
        .admin(Method::POST, "/tenants/acme/trust-policies", Some(unknown_field))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = s
        .admin(Method::GET, "/tenants/nowhere/trust-policies", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, _) = s
        .admin(Method::DELETE, "/tenants/acme/trust-policies/ci", None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = s
        .admin(Method::GET, "/tenants/acme/trust-policies/ci", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn policies_and_keyed_clients_come_from_the_config_file() {
    let issuer = Issuer::start().await;
    let key = SigningKeyPair::generate(SigningAlg::EdDSA).unwrap();
    let jwks = json!({ "keys": [jwk(&key, "c1")] }).to_string();
    let declared: sesame_server::config::TenantConfig = serde_json::from_value(json!({
        "id": "acme",
        "clients": [
            {"client_id": "broker", "jwks": jwks, "grant_types": [EXCHANGE, "client_credentials"]},
            // Names a policy declared after it in the file: policies are applied first.
            {"client_id": "ci-deployer", "trust_policy": "ci", "grant_types": ["client_credentials"]},
        ],
        "trust_policies": [ci_policy(&issuer)],
    }))
    .unwrap();
    let s = TestServer::start(sesame_store::testing::TestDb::sqlite(), |c| {
        c.tenants = vec![declared]
    })
    .await;
    let (_, body) = s.admin(Method::GET, "/tenants/acme/trust-policies", None).await;
    assert_eq!(body["trust_policies"][0]["name"], "ci", "{body}");
    let token_endpoint = format!("{}/token", s.issuer("acme"));
    let a = sign(
        &key,
        &json!({"alg": "EdDSA", "kid": "c1"}),
        &assertion_claims("broker", &token_endpoint),
    );
    let ci = issuer.token(&issuer.claims());
    let (status, body) = with_assertion(
        &s,
        "/token",
        &a,
        &[
            ("grant_type", EXCHANGE),
            ("subject_token", &ci),
            ("subject_token_type", JWT),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(jwt_parts(body["access_token"].as_str().unwrap()).1["sub"], SOURCE);
    // The declared workload client authenticates with a CI token (its aud names this server too).
    let issuer_url = s.issuer("acme");
    let ci = issuer.token(&with(
        &issuer.claims(),
        &[("aud", json!(["sesame-ci", issuer_url]))],
    ));
    let (status, body) = with_assertion(
        &s,
        "/token",
        &ci,
        &[("grant_type", "client_credentials"), ("client_id", "ci-deployer")],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Without the server in aud, the policy's own audience condition is not enough.
    let ci = issuer.token(&issuer.claims());
    let (status, body) = with_assertion(
        &s,
        "/token",
        &ci,
        &[("grant_type", "client_credentials"), ("client_id", "ci-deployer")],
    )
    .await;
    expect_error(status, &body, StatusCode::UNAUTHORIZED, "invalid_client");
}

/// A person's access token, issued to `client` (a first-party client with redirect URI
/// `https://app.example/cb`) through the sign-in pages and the code grant.
async fn person_token(s: &TestServer, client: &Creds, username: &str, password: &str) -> String {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let verifier = random_jti() + &random_jti();
    let challenge =
        B64.encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes()).as_ref());
    let resp = http
        .get(format!(
            "{}/authorize?{}",
            s.issuer("acme"),
            form_urlencoded::Serializer::new(String::new())
                .extend_pairs([
                    ("client_id", client.0.as_str()),
                    ("redirect_uri", "https://app.example/cb"),
                    ("response_type", "code"),
                    ("scope", "openid read"),
                    ("state", "st"),
                    ("code_challenge", &challenge),
                    ("code_challenge_method", "S256"),
                ])
                .finish()
        ))
        .send()
        .await
        .unwrap();
    let cookies: Vec<String> = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok()?.split(';').next().map(str::to_owned))
        .collect();
    let page = resp.text().await.unwrap();
    let hidden = |name: &str| {
        let marker = format!("name=\"{name}\" value=\"");
        let start = page.find(&marker).expect("the login page") + marker.len();
        let len = page[start..].find('"').unwrap();
        common::unescape(&page[start..start + len])
    };
    let resp = http
        .post(format!("{}/login", s.issuer("acme")))
        .header("cookie", cookies.join("; "))
        .form(&[
            ("csrf", hidden("csrf").as_str()),
            ("request", hidden("request").as_str()),
            ("username", username),
            ("password", password),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    let query = location.split_once('?').unwrap().1;
    let code = form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "code")
        .expect("a code")
        .1
        .into_owned();
    let (status, _, body) = s
        .post_form(
            "acme",
            "/token",
            Some((&client.0, &client.1)),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", "https://app.example/cb"),
                ("code_verifier", &verifier),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_persons_token_loses_its_actor_only_for_a_client_allowed_to_impersonate() {
    let s = TestServer::sqlite().await;
    s.tenant("acme", json!({})).await;
    let (status, body) = s
        .admin(
            Method::POST,
            "/tenants/acme/users",
            Some(json!({"username": "ada", "password": "correct horse battery"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let ada = body["id"].as_str().unwrap().to_owned();
    let broker = s
        .client(
            "acme",
            json!({
                "client_id": "broker",
                "grant_types": ["authorization_code", "client_credentials", EXCHANGE],
                "redirect_uris": ["https://app.example/cb"],
                "first_party": true,
                "allowed_scopes": ["openid", "read"],
            }),
        )
        .await;
    let person = person_token(&s, &broker, "ada", "correct horse battery").await;
    assert_eq!(jwt_parts(&person).1["sub"], ada.as_str());

    let (status, body) = exchange(
        &s,
        &broker,
        &[("subject_token", &person), ("subject_token_type", AT)],
    )
    .await;
    expect_error(status, &body, StatusCode::BAD_REQUEST, "unauthorized_client");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("impersonate"),
        "{body}"
    );

    // Delegation needs no such permission: the result names the actor.
    let actor = s.token("acme", &broker.0, &broker.1, &[]).await;
    let (status, body) = exchange(
        &s,
        &broker,
        &[
            ("subject_token", &person),
            ("subject_token_type", AT),
            ("actor_token", &actor),
            ("actor_token_type", AT),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, claims) = jwt_parts(body["access_token"].as_str().unwrap());
    assert_eq!(claims["sub"], ada.as_str());
    assert_eq!(claims["act"], json!({"sub": "broker"}));

    let (status, body) = s
        .admin(
            Method::PATCH,
            "/tenants/acme/clients/broker",
            Some(json!({"token_exchange_impersonation": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = exchange(
        &s,
        &broker,
        &[
            ("subject_token", &person),
            ("subject_token_type", AT),
            ("scope", "read"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, claims) = jwt_parts(body["access_token"].as_str().unwrap());
    assert_eq!(claims["sub"], ada.as_str());
    assert!(claims.get("act").is_none());
    assert_eq!(claims["scope"], "read");
}

// private_key_jwt through a trust policy: a workload authenticates with an outside token ----------

/// Claims like a Kubernetes projected service-account token of `deploy/ci-runner` for `aud`.
fn k8s_claims(issuer: &Issuer, aud: &str) -> Value {
    let t = now();
    json!({
        "iss": issuer.url,
        "sub": "system:serviceaccount:deploy:ci-runner",
        "aud": [aud],
        "iat": t,
        "nbf": t,
        "exp": t + 600,
        "jti": random_jti(),
        "kubernetes.io": {
            "namespace": "deploy",
            "serviceaccount": { "name": "ci-runner", "uid": "5c1e3f0a-0000-4000-8000-000000000001" },
            "pod": { "name": "ci-runner-7d9f", "uid": "5c1e3f0a-0000-4000-8000-000000000002" },
        },
    })
}

/// A policy trusting the cluster's service accounts of namespace `deploy`, for tokens whose
/// audience is the tenant's issuer.
fn k8s_policy(name: &str, issuer: &Issuer, aud: &str) -> Value {
    json!({
        "name": name,
        "issuer": issuer.url,
        "discovery_url": issuer.discovery_url(),
        "audience": aud,
        "subject": "system:serviceaccount:deploy:*",
        "claims": { "kubernetes.io.namespace": "deploy" },
        "max_age": 900,
        "identity": "k8s-deploy",
    })
}

/// The client authentication of a request with an outside token, naming `client_id` or not.
async fn as_workload(
    s: &TestServer,
    endpoint: &str,
    token: &str,
    client_id: Option<&str>,
    form: &[(&str, &str)],
) -> (StatusCode, Value) {
    let mut f = form.to_vec();
    if let Some(id) = client_id {
        f.push(("client_id", id));
    }
    with_assertion(s, endpoint, token, &f).await
}

/// The audit log's `client_assertion.refused` events of tenant `acme`, waiting for `want`.
async fn refusals(s: &TestServer, want: usize) -> Vec<Value> {
    for _ in 0..100 {
        let (status, body) = s
            .admin(
                Method::GET,
                "/tenants/acme/audit?type=client_assertion.refused&limit=1000",
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let list = body["events"].as_array().unwrap().clone();
        if list.len() >= want {
            return list;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("fewer than {want} client_assertion.refused events");
}

async fn a_workload_authenticates_with_a_token_its_trust_policy_accepts(s: TestServer) {
    let cluster = Issuer::start().await;
    s.tenant("acme", json!({})).await;
    let issuer = s.issuer("acme");
    policy(&s, "acme", k8s_policy("k8s", &cluster, &issuer)).await;
    let (status, body) = s
        .admin(
            Method::POST,
            "/tenants/acme/clients",
            Some(json!({"client_id": "deployer", "trust_policy": "k8s", "allowed_scopes": ["read"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!(body["client_secret"].is_null(), "no secret: {body}");
    assert_eq!(body["client"]["trust_policy"], "k8s", "{body}");
    let cc = [("grant_type", "client_credentials"), ("scope", "read")];

    // The token endpoint, introspection and revocation, each with a token of its own.
    let good = cluster.token(&k8s_claims(&cluster, &issuer));
    let (status, body) = as_workload(&s, "/token", &good, Some("deployer"), &cc).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let access = body["access_token"].as_str().unwrap().to_owned();
    let (_, claims) = jwt_parts(&access);
    assert_eq!(
        (&claims["sub"], &claims["client_id"]),
        (&json!("deployer"), &json!("deployer"))
    );
    let t = cluster.token(&k8s_claims(&cluster, &issuer));
    let (status, body) = as_workload(&s, "/introspect", &t, Some("deployer"), &[("token", &access)]).await;
    assert_eq!(
        (status, &body["active"]),
        (StatusCode::OK, &json!(true)),
        "{body}"
    );
    // The policy's audience condition (the issuer) holds for every endpoint.
    let t = cluster.token(&k8s_claims(&cluster, &issuer));
    let (status, body) = as_workload(&s, "/revoke", &t, Some("deployer"), &[("token", &access)]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let t = cluster.token(&k8s_claims(&cluster, &issuer));
    let (_, body) = as_workload(&s, "/introspect", &t, Some("deployer"), &[("token", &access)]).await;
    assert_eq!(body["active"], false, "{body}");

    // Every refusal is the same invalid_client; the audit log says which check failed.
    let base = k8s_claims(&cluster, &issuer);
    let t = now();
    let fresh = |changes: &[(&str, Value)]| {
        let mut c = with(&base, changes);
        c["jti"] = json!(random_jti());
        c
    };
    let stranger = SigningKeyPair::generate(SigningAlg::ES256).unwrap();
    let elsewhere = Issuer::start().await;
    s.client("acme", json!({"client_id": "plain"})).await;
    let (status, body) = s
        .admin(
            Method::POST,
            "/tenants/acme/clients",
            Some(json!({"client_id": "keyed", "jwks": { "keys": [jwk(&stranger, "k1")] }})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let no_jti = {
        let mut c = fresh(&[]);
        c.as_object_mut().unwrap().remove("jti");
        c
    };
    let cases: Vec<(&str, String, Option<&str>, &str)> = vec![
        (
            "wrong subject",
            cluster.token(&fresh(&[("sub", json!("system:serviceaccount:prod:ci-runner"))])),
            Some("deployer"),
            "condition 'subject' failed",
        ),
        (
            "wrong claim",
            cluster.token(&fresh(&[("kubernetes.io", json!({"namespace": "staging"}))])),
            Some("deployer"),
            "condition 'claims.kubernetes.io.namespace' failed",
        ),
        (
            "wrong aud",
            cluster.token(&fresh(&[("aud", json!(["https://kubernetes.default.svc"]))])),
            Some("deployer"),
            "condition 'audience' failed",
        ),
        (
            "expired",
            cluster.token(&fresh(&[
                ("iat", json!(t - 800)),
                ("nbf", json!(t - 800)),
                ("exp", json!(t - 200)),
            ])),
            Some("deployer"),
            "expired",
        ),
        (
            "too old",
            cluster.token(&fresh(&[("iat", json!(t - 1000)), ("nbf", json!(t - 1000))])),
            Some("deployer"),
            "condition 'max_age' failed",
        ),
        (
            "too long a life",
            cluster.token(&fresh(&[("exp", json!(t + 2 * 24 * 3600))])),
            Some("deployer"),
            "exp is more than 86400 s away",
        ),
        (
            "alg none",
            unsigned(&fresh(&[])),
            Some("deployer"),
            "alg 'none' is refused",
        ),
        (
            "HMAC with the public key",
            cluster.hmac_token(&fresh(&[])),
            Some("deployer"),
            "HMAC would take a public key",
        ),
        (
            "unknown kid",
            sign(&stranger, &json!({"alg": "ES256", "kid": "k9"}), &fresh(&[])),
            Some("deployer"),
            "unknown kid 'k9'",
        ),
        (
            "another key with the issuer's kid",
            sign(&stranger, &json!({"alg": "ES256", "kid": "k1"}), &fresh(&[])),
            Some("deployer"),
            "the signature does not verify",
        ),
        (
            "untrusted issuer",
            elsewhere.token(&fresh(&[("iss", json!(elsewhere.url))])),
            Some("deployer"),
            "untrusted issuer",
        ),
        ("replay", good.clone(), Some("deployer"), "replayed"),
        ("no jti", cluster.token(&no_jti), Some("deployer"), "no jti"),
        (
            "missing client_id",
            cluster.token(&fresh(&[])),
            None,
            "names no client",
        ),
        (
            "a client with a secret",
            cluster.token(&fresh(&[])),
            Some("plain"),
            "the client has no keys",
        ),
        (
            "a client with keys of its own",
            cluster.token(&fresh(&[])),
            Some("keyed"),
            "the signature does not verify",
        ),
    ];
    for (case, token, client_id, _) in &cases {
        let (status, body) = as_workload(&s, "/token", token, *client_id, &cc).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("invalid_client")),
            "{case}: {body}"
        );
        assert_eq!(
            body["error_description"], "client authentication failed",
            "{case}: {body}"
        );
    }
    let events = refusals(&s, cases.len()).await;
    for (case, token, client_id, why) in &cases {
        let client = client_id.map_or(Value::Null, |c| json!(c));
        let found = events.iter().any(|e| {
            e["actor_id"] == client && e["details"]["reason"].as_str().is_some_and(|r| r.contains(why))
        });
        assert!(
            found,
            "{case}: no audit event naming '{why}' for {client} in {events:#?}"
        );
        let signature = token.rsplit('.').next().unwrap();
        assert!(
            signature.is_empty() || !serde_json::to_string(&events).unwrap().contains(signature),
            "{case}: the token is in the audit log"
        );
    }
    assert!(events
        .iter()
        .all(|e| e["outcome"] == "denied" && e["details"]["endpoint"] == "/token"));

    // A policy that allows reuse (Kubernetes tokens are reused until kubelet rotates them):
    // the same token, and one with no jti, authenticate again and again.
    let mut reusable = k8s_policy("k8s-reuse", &cluster, &issuer);
    reusable["assertion_reuse"] = json!(true);
    policy(&s, "acme", reusable.clone()).await;
    s.admin(
        Method::POST,
        "/tenants/acme/clients",
        Some(json!({"client_id": "reuser", "trust_policy": "k8s-reuse"})),
    )
    .await;
    for token in [&good, &cluster.token(&no_jti)] {
        for _ in 0..2 {
            let (status, body) = as_workload(&s, "/token", token, Some("reuser"), &cc[..1]).await;
            assert_eq!(status, StatusCode::OK, "{body}");
        }
    }
    // ... but never without max_age, which then is what bounds a stolen token.
    reusable["name"] = json!("unbounded");
    reusable.as_object_mut().unwrap().remove("max_age");
    let (status, body) = s
        .admin(Method::POST, "/tenants/acme/trust-policies", Some(reusable))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error_description"].as_str().unwrap().contains("max_age"),
        "{body}"
    );

    // What a client with a trust policy may be.
    let refused_clients = [
        (
            json!({"client_id": "x1", "trust_policy": "nope"}),
            "does not exist",
        ),
        (
            json!({"client_id": "x2", "trust_policy": "k8s", "jwks": { "keys": [jwk(&stranger, "k1")] }}),
            "no keys of its own",
        ),
        (
            json!({"client_id": "x3", "trust_policy": "k8s", "client_type": "public", "redirect_uris": ["https://app.example/cb"]}),
            "confidential",
        ),
        (
            json!({"client_id": "x4", "trust_policy": "k8s", "token_endpoint_auth_method": "client_secret_basic"}),
            "does not fit",
        ),
    ];
    for (spec, why) in refused_clients {
        let (status, body) = s
            .admin(Method::POST, "/tenants/acme/clients", Some(spec.clone()))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{spec}: {body}");
        assert!(
            body["error_description"].as_str().unwrap().contains(why),
            "{spec}: {body}"
        );
    }
    let (status, body) = s
        .admin(
            Method::PATCH,
            "/tenants/acme/clients/plain",
            Some(json!({"trust_policy": "k8s"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a client with a secret: {body}");
    let (status, _) = s
        .admin(Method::POST, "/tenants/acme/clients/deployer/rotate-secret", None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // A policy a client names is not deleted from under it.
    let (status, body) = s
        .admin(Method::DELETE, "/tenants/acme/trust-policies/k8s", None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("client 'deployer'"),
        "{body}"
    );
    let (status, _) = s
        .admin(Method::DELETE, "/tenants/acme/clients/deployer", None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = s
        .admin(Method::DELETE, "/tenants/acme/trust-policies/k8s", None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
}

#[tokio::test]
async fn a_workload_authenticates_with_a_token_its_trust_policy_accepts_sqlite() {
    a_workload_authenticates_with_a_token_its_trust_policy_accepts(TestServer::sqlite().await).await;
}

#[tokio::test]
async fn a_workload_authenticates_with_a_token_its_trust_policy_accepts_postgres() {
    let Some(s) = TestServer::postgres().await else {
        eprintln!("SESAME_TEST_DATABASE_URL is not set: PostgreSQL not tested");
        return;
    };
    a_workload_authenticates_with_a_token_its_trust_policy_accepts(s).await;
}
