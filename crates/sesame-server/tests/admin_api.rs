//! The admin API: bearer auth, tenants, clients, keys, and the discovery documents they shape.

mod common;

use common::{expect_error, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

#[tokio::test]
async fn the_admin_api_requires_a_valid_bearer_token() {
    let s = TestServer::sqlite().await;
    let url = s.url("/admin/v1/tenants");
    let none = s.http.get(&url).send().await.unwrap();
    assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
    assert!(none.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Bearer"));
    assert_eq!(none.json::<Value>().await.unwrap()["error"], "unauthorized");
    for bad in ["Bearer wrong", "Bearer ", "Basic YTpi", "bearer"] {
        let resp = s
            .http
            .get(&url)
            .header("authorization", bad)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{bad}");
    }
    let resp = s.http.get(&url).bearer_auth(&s.admin_token).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn tenants_are_created_listed_shown_disabled_and_enabled() {
    let s = TestServer::sqlite().await;
    let t = s
        .tenant(
            "acme",
            json!({"display_name": "Acme", "signing_alg": "ES256", "access_token_ttl": 600}),
        )
        .await;
    assert_eq!(t["issuer"], s.issuer("acme"));
    assert_eq!(
        (t["signing_alg"].as_str(), t["access_token_ttl"].as_i64()),
        (Some("ES256"), Some(600))
    );
    let (status, body) = s
        .admin(Method::POST, "/tenants", Some(json!({"id": "acme"})))
        .await;
    expect_error(status, &body, StatusCode::CONFLICT, "conflict");
    let (_, list) = s.admin(Method::GET, "/tenants", None).await;
    let ids: Vec<_> = list["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["acme", "default"]);
    let (status, shown) = s.admin(Method::GET, "/tenants/acme", None).await;
    assert_eq!(
        (status, shown["display_name"].as_str()),
        (StatusCode::OK, Some("Acme"))
    );
    let (_, off) = s.admin(Method::POST, "/tenants/acme/disable", None).await;
    assert_eq!(off["disabled"], true);
    let resp = s
        .http
        .get(format!("{}/.well-known/openid-configuration", s.issuer("acme")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let (_, on) = s.admin(Method::POST, "/tenants/acme/enable", None).await;
    assert_eq!(on["disabled"], false);
    let resp = s
        .http
        .get(format!("{}/.well-known/openid-configuration", s.issuer("acme")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    // A client of acme signs with the tenant's algorithm.
    let (id, secret) = s.client("acme", json!({})).await;
    let (header, claims) = common::jwt_parts(&s.token("acme", &id, &secret, &[]).await);
    assert_eq!(header["alg"], "ES256");
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        600
    );
}

#[tokio::test]
async fn bad_admin_input_is_named() {
    let s = TestServer::sqlite().await;
    let cases = [
        (
            Method::POST,
            "/tenants",
            json!({"id": "Bad Name"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/tenants",
            json!({"id": "x", "signing_alg": "HS256"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/tenants",
            json!({"id": "x", "access_token_ttl": 0}),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/tenants",
            json!({"id": "x", "surprise": 1}),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/tenants/default/clients",
            json!({"redirect_uris": ["/relative"]}),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/tenants/default/clients",
            json!({"allowed_scopes": ["a\"b"]}),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/tenants/default/clients",
            json!({"grant_types": ["password"]}),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/tenants/default/clients",
            json!({"client_type": "secret"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/tenants/nope/clients",
            json!({}),
            StatusCode::NOT_FOUND,
        ),
        (Method::GET, "/tenants/nope", Value::Null, StatusCode::NOT_FOUND),
        (
            Method::GET,
            "/tenants/default/clients/nope",
            Value::Null,
            StatusCode::NOT_FOUND,
        ),
        (
            Method::DELETE,
            "/tenants/default/clients/nope",
            Value::Null,
            StatusCode::NOT_FOUND,
        ),
        (
            Method::POST,
            "/tenants/default/keys/rotate",
            json!({"alg": "none"}),
            StatusCode::BAD_REQUEST,
        ),
    ];
    for (method, path, body, status) in cases {
        let body = (!body.is_null()).then_some(body);
        let (got, answer) = s.admin(method.clone(), path, body.clone()).await;
        assert_eq!(got, status, "{method} {path} {body:?}: {answer}");
        assert!(
            answer["error"].is_string() && answer["error_description"].is_string(),
            "{answer}"
        );
    }
    let resp = s
        .http
        .post(s.url("/admin/v1/tenants"))
        .bearer_auth(&s.admin_token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(resp.json::<Value>().await.unwrap()["error"], "invalid_request");
}

#[tokio::test]
async fn a_client_secret_is_shown_once_and_stored_only_as_a_hash() {
    let s = TestServer::sqlite().await;
    let (status, created) = s
        .admin(
            Method::POST,
            "/tenants/default/clients",
            Some(json!({"client_id": "svc", "name": "Service"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    assert_eq!(secret.len(), 43, "256 bits, base64url");
    let (_, shown) = s.admin(Method::GET, "/tenants/default/clients/svc", None).await;
    let (_, listed) = s.admin(Method::GET, "/tenants/default/clients", None).await;
    for v in [&shown, &listed] {
        let text = v.to_string();
        assert!(!text.contains(&secret) && !text.contains("secret_hash"), "{text}");
    }
    let (tenant, client) = (
        sesame_core::ids::TenantId::parse("default").unwrap(),
        sesame_core::ids::ClientId::parse("svc").unwrap(),
    );
    let stored = s
        .running
        .app
        .store
        .get_client(&tenant, &client)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.secret_hash,
        Some(sesame_core::secret::hash_secret(secret.as_bytes()))
    );
}

#[tokio::test]
async fn keys_rotate_only_after_the_next_key_was_published_long_enough_unless_forced() {
    let s = TestServer::sqlite().await;
    let jwks_url = format!("{}/jwks", s.issuer("default"));
    let before: Value = s.http.get(&jwks_url).send().await.unwrap().json().await.unwrap();
    let (status, body) = s
        .admin(Method::POST, "/tenants/default/keys/rotate", Some(json!({})))
        .await;
    expect_error(status, &body, StatusCode::CONFLICT, "refused");
    let (_, keys) = s.admin(Method::GET, "/tenants/default/keys", None).await;
    let states = |k: &Value| -> Vec<(String, String, String)> {
        let mut v: Vec<_> = k["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| {
                (
                    k["alg"].as_str().unwrap().into(),
                    k["state"].as_str().unwrap().into(),
                    k["kid"].as_str().unwrap().into(),
                )
            })
            .collect();
        v.sort();
        v
    };
    let initial = states(&keys);
    assert_eq!(initial.len(), 6);
    let next_rs = initial
        .iter()
        .find(|(a, st, _)| a == "RS256" && st == "next")
        .unwrap()
        .2
        .clone();
    let active_rs = initial
        .iter()
        .find(|(a, st, _)| a == "RS256" && st == "active")
        .unwrap()
        .2
        .clone();
    // the next key is published before it signs
    assert!(before.to_string().contains(&next_rs));

    let (id, secret) = s.client("default", json!({})).await;
    let old_token = s.token("default", &id, &secret, &[]).await;
    assert_eq!(common::jwt_parts(&old_token).0["kid"], active_rs.as_str());

    let (status, rotated) = s
        .admin(
            Method::POST,
            "/tenants/default/keys/rotate",
            Some(json!({"alg": "RS256", "force": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let after = states(&rotated);
    assert!(after.contains(&("RS256".into(), "active".into(), next_rs.clone())));
    assert!(after.contains(&("RS256".into(), "retired".into(), active_rs.clone())));
    let retired = rotated["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == active_rs.as_str())
        .unwrap();
    let until = retired["publish_until"].as_i64().unwrap();
    assert!(
        until >= sesame_core::now() + 3600,
        "published until its last token expires"
    );
    // Other algorithms are untouched.
    assert_eq!(
        after.iter().filter(|(a, _, _)| a != "RS256").collect::<Vec<_>>(),
        initial
            .iter()
            .filter(|(a, _, _)| a != "RS256")
            .collect::<Vec<_>>()
    );
    let new_token = s.token("default", &id, &secret, &[]).await;
    assert_eq!(common::jwt_parts(&new_token).0["kid"], next_rs.as_str());
    let jwks: Value = s.http.get(&jwks_url).send().await.unwrap().json().await.unwrap();
    assert_eq!(
        jwks["keys"].as_array().unwrap().len(),
        7,
        "retired key still published"
    );
    assert!(jwks.to_string().contains(&active_rs));
    assert_eq!(
        s.introspect("default", (&id, &secret), &old_token).await["active"],
        true
    );
}

#[tokio::test]
async fn discovery_is_truthful_and_cacheable() {
    let s = TestServer::sqlite().await;
    let issuer = s.issuer("default");
    for (url, oidc) in [
        (format!("{issuer}/.well-known/openid-configuration"), true),
        (format!("{issuer}/.well-known/oauth-authorization-server"), false),
        (s.url("/.well-known/oauth-authorization-server/t/default"), false),
    ] {
        let resp = s.http.get(&url).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{url}");
        let etag = resp.headers()["etag"].clone();
        assert_eq!(resp.headers()["cache-control"], "public, max-age=300");
        let doc: Value = resp.json().await.unwrap();
        assert_eq!(doc["issuer"], issuer);
        assert_eq!(doc["token_endpoint"], format!("{issuer}/token"));
        // Exactly the grants a client can be configured for (`GrantType`).
        assert_eq!(
            doc["grant_types_supported"],
            json!([
                "authorization_code",
                "implicit",
                "refresh_token",
                "client_credentials",
                "urn:ietf:params:oauth:grant-type:device_code",
                "urn:ietf:params:oauth:grant-type:token-exchange",
                "urn:sesame:params:oauth:grant-type:workload-token",
                "urn:sesame:params:oauth:grant-type:session-nonce",
                "urn:sesame:params:oauth:grant-type:session-key"
            ])
        );
        assert_eq!(doc["authorization_endpoint"], format!("{issuer}/authorize"));
        // UserInfo is an OpenID Connect endpoint, not RFC 8414 metadata.
        assert_eq!(
            doc.get("userinfo_endpoint").and_then(Value::as_str),
            oidc.then(|| format!("{issuer}/userinfo")).as_deref(),
            "{url}"
        );
        let again = s
            .http
            .get(&url)
            .header("if-none-match", etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    }
}

#[tokio::test]
async fn introspection_and_revocation_follow_rfc7662_and_rfc7009() {
    for s in TestServer::each_store().await {
        s.tenant("other", json!({})).await;
        let (a, a_secret) = s.client("default", json!({"allowed_scopes": ["read"]})).await;
        // B is a resource server: it may introspect tokens issued to other clients.
        let (b, b_secret) = s.client("default", json!({"introspect_any": true})).await;
        let (o, o_secret) = s.client("other", json!({})).await;
        let token = s.token("default", &a, &a_secret, &[("scope", "read")]).await;
        let seen = s.introspect("default", (&b, &b_secret), &token).await;
        assert_eq!(
            (seen["active"].as_bool(), seen["scope"].as_str()),
            (Some(true), Some("read"))
        );
        assert_eq!(seen["client_id"], a.as_str());
        // another tenant does not know it
        assert_eq!(
            s.introspect("other", (&o, &o_secret), &token).await,
            json!({"active": false})
        );
        // garbage is inactive, not an error
        assert_eq!(
            s.introspect("default", (&b, &b_secret), "garbage").await,
            json!({"active": false})
        );
        // unauthenticated introspection is refused
        let (status, _, body) = s
            .post_form("default", "/introspect", None, &[("token", &token)])
            .await;
        expect_error(status, &body, StatusCode::UNAUTHORIZED, "invalid_client");
        let (status, _, body) = s
            .post_form("default", "/introspect", Some((&b, &b_secret)), &[])
            .await;
        expect_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
        // B may not revoke A's token: the answer of an unknown token, and nothing changes
        // (RFC 7009 §2.2); A may, and then it is inactive everywhere
        let (status, _, body) = s
            .post_form("default", "/revoke", Some((&b, &b_secret)), &[("token", &token)])
            .await;
        assert_eq!((status, body), (StatusCode::OK, Value::Null));
        assert_eq!(
            s.introspect("default", (&b, &b_secret), &token).await["active"],
            true
        );
        let (status, _, _) = s
            .post_form("default", "/revoke", Some((&a, &a_secret)), &[("token", &token)])
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            s.introspect("default", (&b, &b_secret), &token).await,
            json!({"active": false})
        );
        // revoking again, or revoking garbage, is still 200 (RFC 7009 §2.2)
        for t in [token.as_str(), "garbage"] {
            let (status, _, _) = s
                .post_form("default", "/revoke", Some((&a, &a_secret)), &[("token", t)])
                .await;
            assert_eq!(status, StatusCode::OK);
        }
    }
}

#[tokio::test]
async fn local_accounts_are_managed_and_their_passwords_stored_as_argon2id() {
    for s in TestServer::each_store().await {
        let (status, alice) = s
            .admin(
                Method::POST,
                "/tenants/default/users",
                Some(json!({"username": "Alice", "password": "correct horse battery", "email": "alice@example.com",
                            "email_verified": true, "name": "Alice A."})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{alice}");
        assert_eq!(
            (alice["username"].as_str(), alice["has_password"].as_bool()),
            (Some("alice"), Some(true))
        );
        let text = alice.to_string();
        assert!(
            !text.contains("argon2") && !text.contains("correct horse"),
            "{text}"
        );
        let id = alice["id"].as_str().unwrap().to_owned();
        let tenant = sesame_core::ids::TenantId::parse("default").unwrap();
        let stored = s.running.app.store.get_user(&tenant, &id).await.unwrap().unwrap();
        let phc = stored.password_hash.clone().unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(sesame_core::password::verify("correct horse battery", &phc));

        // by id or by username; usernames are one account whatever their case
        assert_eq!(
            s.admin(Method::GET, &format!("/tenants/default/users/{id}"), None)
                .await
                .1["id"],
            id.as_str()
        );
        assert_eq!(
            s.admin(Method::GET, "/tenants/default/users/ALICE", None).await.1["id"],
            id.as_str()
        );
        let (status, body) = s
            .admin(
                Method::POST,
                "/tenants/default/users",
                Some(json!({"username": "alice"})),
            )
            .await;
        expect_error(status, &body, StatusCode::CONFLICT, "conflict");

        // a new email is unverified unless the change says so; null clears
        let (status, patched) = s
            .admin(
                Method::PATCH,
                "/tenants/default/users/alice",
                Some(json!({"email": "a@new.example", "name": null, "picture": "https://img.example/a.png"})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{patched}");
        assert_eq!(patched["email"], "a@new.example");
        assert_eq!(patched["email_verified"], false);
        assert!(patched["name"].is_null());
        assert_eq!(patched["picture"], "https://img.example/a.png");

        let (status, _) = s
            .admin(
                Method::PUT,
                "/tenants/default/users/alice/password",
                Some(json!({"password": "a new passphrase"})),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        let stored = s.running.app.store.get_user(&tenant, &id).await.unwrap().unwrap();
        assert!(sesame_core::password::verify(
            "a new passphrase",
            stored.password_hash.as_deref().unwrap()
        ));
        assert!(!sesame_core::password::verify(
            "correct horse battery",
            stored.password_hash.as_deref().unwrap()
        ));

        assert_eq!(
            s.admin(Method::POST, "/tenants/default/users/alice/disable", None)
                .await
                .1["disabled"],
            true
        );
        assert_eq!(
            s.admin(Method::POST, "/tenants/default/users/alice/enable", None)
                .await
                .1["disabled"],
            false
        );

        // users are tenant-scoped
        s.tenant("other", json!({})).await;
        let (status, _) = s.admin(Method::GET, "/tenants/other/users/alice", None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (_, list) = s.admin(Method::GET, "/tenants/default/users", None).await;
        assert_eq!(list["users"].as_array().unwrap().len(), 1);
    }
}

#[tokio::test]
async fn bad_user_input_is_named_and_changes_nothing() {
    let s = TestServer::sqlite().await;
    let created = s
        .admin(
            Method::POST,
            "/tenants/default/users",
            Some(json!({"username": "bob"})),
        )
        .await;
    assert_eq!(created.0, StatusCode::CREATED);
    assert_eq!(created.1["has_password"], false);
    let cases = [
        (
            Method::POST,
            "/tenants/default/users",
            json!({"username": "bad name"}),
        ),
        (
            Method::POST,
            "/tenants/default/users",
            json!({"username": "carol", "password": "short"}),
        ),
        (
            Method::POST,
            "/tenants/default/users",
            json!({"username": "carol", "email": "not-an-address"}),
        ),
        (
            Method::POST,
            "/tenants/default/users",
            json!({"username": "carol", "picture": "javascript:alert(1)"}),
        ),
        (
            Method::POST,
            "/tenants/default/users",
            json!({"username": "carol", "role": "admin"}),
        ),
        (Method::PATCH, "/tenants/default/users/bob", json!({})),
        (
            Method::PATCH,
            "/tenants/default/users/bob",
            json!({"email": "two@@example.com"}),
        ),
        (
            Method::PUT,
            "/tenants/default/users/bob/password",
            json!({"password": "1234567"}),
        ),
        (Method::PUT, "/tenants/default/users/bob/password", json!({})),
    ];
    for (method, path, body) in cases {
        let (status, answer) = s.admin(method.clone(), path, Some(body.clone())).await;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "{method} {path} {body}: {answer}"
        );
        assert_eq!(answer["error"], "invalid_request");
        assert!(
            !answer.to_string().contains("1234567"),
            "the password is never echoed"
        );
    }
    let (status, _) = s
        .admin(
            Method::PUT,
            "/tenants/default/users/nobody/password",
            Some(json!({"password": "long enough"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, list) = s.admin(Method::GET, "/tenants/default/users", None).await;
    assert_eq!(list["users"].as_array().unwrap().len(), 1, "no carol was created");
    assert_eq!(list["users"][0]["has_password"], false);
}

// Browser sign-in administration -----------------------------------------------------------------

use sesame_core::ids::{ClientId, TenantId, UserId};
use sesame_core::model::{BrowserSession, Consent, RefreshToken};

fn default_tenant() -> TenantId {
    TenantId::parse("default").unwrap()
}

/// Creates a user over the API; returns its id.
async fn user(s: &TestServer, username: &str) -> UserId {
    let (status, body) = s
        .admin(
            Method::POST,
            "/tenants/default/users",
            Some(json!({"username": username})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    UserId::parse(body["id"].as_str().unwrap()).unwrap()
}

/// A session as the sign-in pages would store it, created `age` seconds ago.
async fn session(s: &TestServer, user: &UserId, id: &str, age: i64, lifetime: i64) -> BrowserSession {
    let now = sesame_core::now();
    let session = BrowserSession {
        tenant_id: default_tenant(),
        id: id.into(),
        secret_hash: sesame_core::secret::hash_secret(format!("cookie-{id}").as_bytes()),
        user_id: user.clone(),
        auth_time: now - age,
        amr: vec!["pwd".into()],
        user_agent: Some("Mozilla/5.0 (test)".into()),
        ip: Some("192.0.2.7".into()),
        created_at: now - age,
        expires_at: now - age + lifetime,
    };
    s.running.app.store.insert_session(&session).await.unwrap();
    session
}

/// A refresh token (and the access token issued with it) of `user` for `client`.
async fn refresh_token(s: &TestServer, user: &UserId, client: &str, name: &str) -> RefreshToken {
    let now = sesame_core::now();
    let token = RefreshToken {
        tenant_id: default_tenant(),
        token_hash: sesame_core::secret::hash_secret(name.as_bytes()),
        grant_id: format!("grant-{name}"),
        client_id: ClientId::parse(client).unwrap(),
        user_id: user.clone(),
        scope: "openid offline_access".into(),
        auth_time: now,
        amr: vec!["pwd".into()],
        created_at: now,
        expires_at: now + 86_400,
        access_jti: Some(format!("jti-{name}")),
        access_exp: Some(now + 600),
        rotated_at: None,
        successor_response: None,
    };
    s.running.app.store.insert_refresh_token(&token).await.unwrap();
    token
}

/// Whether the refresh token is still in the store, and whether its access token is revoked.
async fn token_state(s: &TestServer, t: &RefreshToken) -> (bool, bool) {
    let store = &s.running.app.store;
    let live = store
        .get_refresh_token(&t.tenant_id, &t.token_hash)
        .await
        .unwrap()
        .is_some();
    let revoked = store
        .is_access_token_revoked(&t.tenant_id, t.access_jti.as_deref().unwrap())
        .await
        .unwrap();
    (live, revoked)
}

fn session_ids(body: &Value) -> Vec<&str> {
    body["sessions"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn a_tenant_logo_is_set_at_creation_changed_cleared_and_validated() {
    for s in TestServer::each_store().await {
        let t = s
            .tenant(
                "acme",
                json!({"display_name": "Acme", "logo_url": "https://acme.example/logo.svg"}),
            )
            .await;
        assert_eq!(t["logo_url"], "https://acme.example/logo.svg");
        let (_, list) = s.admin(Method::GET, "/tenants", None).await;
        let listed = list["tenants"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == "acme")
            .unwrap()
            .clone();
        assert_eq!(listed["logo_url"], "https://acme.example/logo.svg");
        let (_, default) = s.admin(Method::GET, "/tenants/default", None).await;
        assert!(default["logo_url"].is_null(), "{default}");

        let (status, t) = s
            .admin(
                Method::PATCH,
                "/tenants/acme",
                Some(json!({"logo_url": "https://cdn.example/acme.png"})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{t}");
        assert_eq!(
            (t["logo_url"].as_str(), t["display_name"].as_str()),
            (Some("https://cdn.example/acme.png"), Some("Acme")),
            "an absent field stays"
        );
        assert_eq!(t["issuer"], s.issuer("acme"));

        for bad in ["javascript:alert(1)", "https://a.example/x y", "/logo.png"] {
            let (status, body) = s
                .admin(Method::PATCH, "/tenants/acme", Some(json!({"logo_url": bad})))
                .await;
            expect_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
            assert!(
                body["error_description"].as_str().unwrap().contains("logo_url"),
                "{body}"
            );
        }
        let (status, body) = s
            .admin(
                Method::POST,
                "/tenants",
                Some(json!({"id": "bad-logo", "logo_url": "ftp://x"})),
            )
            .await;
        expect_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
        assert_eq!(
            s.admin(Method::GET, "/tenants/bad-logo", None).await.0,
            StatusCode::NOT_FOUND
        );
        let (_, shown) = s.admin(Method::GET, "/tenants/acme", None).await;
        assert_eq!(
            shown["logo_url"], "https://cdn.example/acme.png",
            "refused changes change nothing"
        );

        let (status, t) = s
            .admin(
                Method::PATCH,
                "/tenants/acme",
                Some(json!({"logo_url": null, "display_name": "Acme Corp"})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{t}");
        assert!(t["logo_url"].is_null(), "{t}");
        assert_eq!(t["display_name"], "Acme Corp");
        let stored = s
            .running
            .app
            .store
            .get_tenant(&TenantId::parse("acme").unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (stored.logo_url, stored.display_name.as_str()),
            (None, "Acme Corp")
        );

        for (path, body, want) in [
            ("/tenants/acme", json!({}), StatusCode::BAD_REQUEST),
            (
                "/tenants/acme",
                json!({"signing_alg": "ES256"}),
                StatusCode::BAD_REQUEST,
            ),
            ("/tenants/nope", json!({"logo_url": null}), StatusCode::NOT_FOUND),
        ] {
            let (status, answer) = s.admin(Method::PATCH, path, Some(body.clone())).await;
            assert_eq!(status, want, "{path} {body}: {answer}");
            assert!(answer["error_description"].is_string(), "{answer}");
        }
    }
}

#[tokio::test]
async fn clients_take_the_sign_in_fields_and_are_patched_under_the_creation_rules() {
    for s in TestServer::each_store().await {
        let (status, created) = s
            .admin(
                Method::POST,
                "/tenants/default/clients",
                Some(json!({
                    "client_id": "spa", "client_type": "public",
                    "redirect_uris": ["https://app.example/cb"],
                    "post_logout_redirect_uris": ["https://app.example/"],
                    "first_party": true,
                })),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        let spa = &created["client"];
        assert_eq!(spa["grant_types"], json!(["authorization_code", "refresh_token"]));
        assert_eq!(spa["post_logout_redirect_uris"], json!(["https://app.example/"]));
        assert_eq!(
            (
                spa["require_pkce"].as_bool(),
                spa["first_party"].as_bool(),
                spa["refresh_without_offline_access"].as_bool()
            ),
            (Some(true), Some(true), Some(false))
        );
        assert!(created.get("client_secret").is_none());
        let (status, body) = s
            .admin(
                Method::POST,
                "/tenants/default/clients",
                Some(json!({"client_type": "public", "require_pkce": false})),
            )
            .await;
        expect_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");

        // Make updated_at old so that the bump is visible.
        let (tid, spa_id) = (default_tenant(), ClientId::parse("spa").unwrap());
        let store = &s.running.app.store;
        let mut old = store.get_client(&tid, &spa_id).await.unwrap().unwrap();
        old.updated_at = 1000;
        assert!(store.update_client(&old).await.unwrap());

        let (status, patched) = s
            .admin(
                Method::PATCH,
                "/tenants/default/clients/spa",
                Some(json!({
                    "name": "Single-page app",
                    "redirect_uris": ["https://app.example/cb", "http://127.0.0.1/cb"],
                    "post_logout_redirect_uris": [],
                    "grant_types": ["authorization_code"],
                    "allowed_scopes": ["openid", "profile"],
                    "first_party": false,
                    "refresh_without_offline_access": true,
                    "signing_alg": "EdDSA",
                    "access_token_ttl": 300,
                })),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{patched}");
        assert_eq!(patched["name"], "Single-page app");
        assert_eq!(
            patched["redirect_uris"],
            json!(["https://app.example/cb", "http://127.0.0.1/cb"])
        );
        assert_eq!(patched["post_logout_redirect_uris"], json!([]));
        assert_eq!(patched["grant_types"], json!(["authorization_code"]));
        assert_eq!(patched["allowed_scopes"], json!(["openid", "profile"]));
        assert_eq!(
            (
                patched["first_party"].as_bool(),
                patched["refresh_without_offline_access"].as_bool(),
                patched["require_pkce"].as_bool()
            ),
            (Some(false), Some(true), Some(true))
        );
        assert_eq!(
            (
                patched["signing_alg"].as_str(),
                patched["access_token_ttl"].as_i64()
            ),
            (Some("EdDSA"), Some(300))
        );
        assert_eq!(patched["client_type"], "public");
        assert!(patched["updated_at"].as_i64().unwrap() >= sesame_core::now() - 60);
        assert_eq!(
            patched["created_at"], created["client"]["created_at"],
            "created_at never changes"
        );
        let stored = store.get_client(&tid, &spa_id).await.unwrap().unwrap();
        assert_eq!(serde_json::to_value(&stored).unwrap(), patched);

        // null returns to the tenant's defaults; absent fields stay.
        let (status, patched) = s
            .admin(
                Method::PATCH,
                "/tenants/default/clients/spa",
                Some(json!({"signing_alg": null, "access_token_ttl": null})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{patched}");
        assert!(patched["signing_alg"].is_null() && patched["access_token_ttl"].is_null());
        assert_eq!(patched["name"], "Single-page app");

        // Refused changes name the problem and change nothing.
        let before = s.admin(Method::GET, "/tenants/default/clients/spa", None).await.1;
        let cases = [
            (json!({"require_pkce": false}), "PKCE"),
            (
                json!({"redirect_uris": ["https://app.example/cb#frag"]}),
                "https://app.example/cb#frag",
            ),
            (json!({"redirect_uris": ["/relative"]}), "/relative"),
            (json!({"post_logout_redirect_uris": ["nope"]}), "nope"),
            (
                json!({"grant_types": ["client_credentials"]}),
                "client_credentials",
            ),
            (json!({"grant_types": ["password"]}), "password"),
            (json!({"allowed_scopes": ["a\"b"]}), "scope"),
            (json!({"access_token_ttl": 0}), "access_token_ttl"),
            (json!({"client_type": "confidential"}), "client_type"),
            (json!({"disabled": true}), "disabled"),
            (json!({}), "nothing to change"),
        ];
        for (body, named) in cases {
            let (status, answer) = s
                .admin(Method::PATCH, "/tenants/default/clients/spa", Some(body.clone()))
                .await;
            expect_error(status, &answer, StatusCode::BAD_REQUEST, "invalid_request");
            assert!(
                answer["error_description"].as_str().unwrap().contains(named),
                "{body}: {answer}"
            );
        }
        assert_eq!(
            s.admin(Method::GET, "/tenants/default/clients/spa", None).await.1,
            before
        );
        let (status, body) = s
            .admin(
                Method::PATCH,
                "/tenants/default/clients/nope",
                Some(json!({"name": "x"})),
            )
            .await;
        expect_error(status, &body, StatusCode::NOT_FOUND, "not_found");

        // A confidential client may turn PKCE off, and its changes reach the token endpoint at once.
        let (id, secret) = s.client("default", json!({"client_id": "svc"})).await;
        let (status, patched) = s
            .admin(
                Method::PATCH,
                "/tenants/default/clients/svc",
                Some(json!({"require_pkce": false, "allowed_scopes": ["read"]})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{patched}");
        assert_eq!(patched["require_pkce"], false);
        let token = s.token("default", &id, &secret, &[("scope", "read")]).await;
        assert_eq!(common::jwt_parts(&token).1["scope"], "read");
    }
}

#[tokio::test]
async fn a_users_sessions_are_listed_and_ended_one_or_all() {
    for s in TestServer::each_store().await {
        let alice = user(&s, "alice").await;
        let bob = user(&s, "bob").await;
        session(&s, &alice, "s-old", 600, 3600).await;
        session(&s, &alice, "s-new", 60, 3600).await;
        session(&s, &alice, "s-expired", 7200, 3600).await;
        session(&s, &bob, "s-bob", 10, 3600).await;

        let (status, list) = s
            .admin(Method::GET, "/tenants/default/users/alice/sessions", None)
            .await;
        assert_eq!(status, StatusCode::OK, "{list}");
        assert_eq!(session_ids(&list), ["s-new", "s-old"], "unexpired, newest first");
        let first = list["sessions"][0].as_object().unwrap();
        let mut keys: Vec<_> = first.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "amr",
                "auth_time",
                "created_at",
                "expires_at",
                "id",
                "ip",
                "user_agent"
            ]
        );
        assert_eq!(first["amr"], json!(["pwd"]));
        assert_eq!(first["ip"], "192.0.2.7");
        assert_eq!(first["user_agent"], "Mozilla/5.0 (test)");
        assert_eq!(
            first["expires_at"].as_i64().unwrap() - first["created_at"].as_i64().unwrap(),
            3600
        );
        // by id as well as by username
        let (_, by_id) = s
            .admin(
                Method::GET,
                &format!("/tenants/default/users/{alice}/sessions"),
                None,
            )
            .await;
        assert_eq!(by_id, list);

        // Bob's session is not Alice's to end.
        let (status, body) = s
            .admin(
                Method::DELETE,
                "/tenants/default/users/alice/sessions/s-bob",
                None,
            )
            .await;
        expect_error(status, &body, StatusCode::NOT_FOUND, "not_found");
        let (_, bobs) = s
            .admin(Method::GET, "/tenants/default/users/bob/sessions", None)
            .await;
        assert_eq!(session_ids(&bobs), ["s-bob"]);

        let (status, body) = s
            .admin(
                Method::DELETE,
                "/tenants/default/users/alice/sessions/s-old",
                None,
            )
            .await;
        assert_eq!((status, body), (StatusCode::NO_CONTENT, Value::Null));
        let (_, list) = s
            .admin(Method::GET, "/tenants/default/users/alice/sessions", None)
            .await;
        assert_eq!(session_ids(&list), ["s-new"]);
        let (status, body) = s
            .admin(
                Method::DELETE,
                "/tenants/default/users/alice/sessions/s-old",
                None,
            )
            .await;
        expect_error(status, &body, StatusCode::NOT_FOUND, "not_found");

        session(&s, &alice, "s-third", 5, 3600).await;
        let (status, body) = s
            .admin(Method::DELETE, "/tenants/default/users/ALICE/sessions", None)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(body["deleted"].as_u64().unwrap() >= 2, "{body}");
        let (_, list) = s
            .admin(Method::GET, "/tenants/default/users/alice/sessions", None)
            .await;
        assert_eq!(session_ids(&list), Vec::<&str>::new());
        let (_, bobs) = s
            .admin(Method::GET, "/tenants/default/users/bob/sessions", None)
            .await;
        assert_eq!(session_ids(&bobs), ["s-bob"], "other users keep theirs");

        for (method, path) in [
            (Method::GET, "/tenants/default/users/nobody/sessions"),
            (Method::DELETE, "/tenants/default/users/nobody/sessions"),
            (Method::DELETE, "/tenants/default/users/nobody/sessions/s-bob"),
            (Method::GET, "/tenants/nope/users/alice/sessions"),
        ] {
            let (status, body) = s.admin(method.clone(), path, None).await;
            expect_error(status, &body, StatusCode::NOT_FOUND, "not_found");
        }
    }
}

#[tokio::test]
async fn disabling_a_user_ends_their_sessions_and_revokes_their_grants_at_once() {
    for s in TestServer::each_store().await {
        let alice = user(&s, "alice").await;
        let bob = user(&s, "bob").await;
        session(&s, &alice, "s-alice", 60, 3600).await;
        session(&s, &bob, "s-bob", 60, 3600).await;
        let web = refresh_token(&s, &alice, "web", "alice-web").await;
        let cli = refresh_token(&s, &alice, "cli", "alice-cli").await;
        let bobs = refresh_token(&s, &bob, "web", "bob-web").await;
        assert_eq!(token_state(&s, &web).await, (true, false));

        let (status, body) = s
            .admin(Method::POST, "/tenants/default/users/alice/disable", None)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["disabled"], true);
        for t in [&web, &cli] {
            assert_eq!(
                token_state(&s, t).await,
                (false, true),
                "refresh token deleted, access token revoked"
            );
        }
        let (_, list) = s
            .admin(Method::GET, "/tenants/default/users/alice/sessions", None)
            .await;
        assert_eq!(session_ids(&list), Vec::<&str>::new());
        assert_eq!(token_state(&s, &bobs).await, (true, false), "bob is untouched");
        let (_, list) = s
            .admin(Method::GET, "/tenants/default/users/bob/sessions", None)
            .await;
        assert_eq!(session_ids(&list), ["s-bob"]);

        // Enabling gives nothing back.
        let (status, body) = s
            .admin(Method::POST, "/tenants/default/users/alice/enable", None)
            .await;
        assert_eq!(
            (status, body["disabled"].as_bool()),
            (StatusCode::OK, Some(false))
        );
        assert_eq!(token_state(&s, &web).await, (false, true));

        // A new password ends the sessions but leaves the grants.
        session(&s, &bob, "s-bob-2", 30, 3600).await;
        let (status, body) = s
            .admin(
                Method::PUT,
                "/tenants/default/users/bob/password",
                Some(json!({"password": "a brand new passphrase"})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (_, list) = s
            .admin(Method::GET, "/tenants/default/users/bob/sessions", None)
            .await;
        assert_eq!(session_ids(&list), Vec::<&str>::new());
        assert_eq!(token_state(&s, &bobs).await, (true, false));
        // A refused password changes nothing, sessions included.
        session(&s, &bob, "s-bob-3", 30, 3600).await;
        let (status, _) = s
            .admin(
                Method::PUT,
                "/tenants/default/users/bob/password",
                Some(json!({"password": "short"})),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let (_, list) = s
            .admin(Method::GET, "/tenants/default/users/bob/sessions", None)
            .await;
        assert_eq!(session_ids(&list), ["s-bob-3"]);
    }
}

#[tokio::test]
async fn withdrawing_a_consent_revokes_that_clients_grants() {
    for s in TestServer::each_store().await {
        let alice = user(&s, "alice").await;
        let bob = user(&s, "bob").await;
        let store = &s.running.app.store;
        for (user, client, scopes, at) in [
            (&alice, "web", vec!["openid", "email"], 100),
            (&alice, "cli", vec!["openid"], 200),
            (&bob, "web", vec!["openid"], 300),
        ] {
            store
                .put_consent(&Consent {
                    tenant_id: default_tenant(),
                    user_id: user.clone(),
                    client_id: ClientId::parse(client).unwrap(),
                    scopes: scopes.into_iter().map(String::from).collect(),
                    granted_at: at,
                })
                .await
                .unwrap();
        }
        let alice_web = refresh_token(&s, &alice, "web", "alice-web").await;
        let alice_cli = refresh_token(&s, &alice, "cli", "alice-cli").await;
        let bob_web = refresh_token(&s, &bob, "web", "bob-web").await;

        let (status, list) = s
            .admin(Method::GET, "/tenants/default/users/alice/consents", None)
            .await;
        assert_eq!(status, StatusCode::OK, "{list}");
        let mut consents = list["consents"].as_array().unwrap().clone();
        consents.sort_by_key(|c| c["client_id"].as_str().unwrap().to_owned());
        assert_eq!(
            consents,
            [
                json!({"client_id": "cli", "scopes": ["openid"], "granted_at": 200}),
                json!({"client_id": "web", "scopes": ["openid", "email"], "granted_at": 100}),
            ]
        );

        let (status, body) = s
            .admin(
                Method::DELETE,
                &format!("/tenants/default/users/{alice}/consents/web"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            body,
            json!({"client_id": "web", "consent_deleted": true, "refresh_tokens_revoked": 1})
        );
        assert_eq!(token_state(&s, &alice_web).await, (false, true));
        assert_eq!(
            token_state(&s, &alice_cli).await,
            (true, false),
            "other clients keep theirs"
        );
        assert_eq!(
            token_state(&s, &bob_web).await,
            (true, false),
            "other users keep theirs"
        );
        let (_, list) = s
            .admin(Method::GET, "/tenants/default/users/alice/consents", None)
            .await;
        assert_eq!(
            list["consents"],
            json!([{"client_id": "cli", "scopes": ["openid"], "granted_at": 200}])
        );
        assert!(store
            .get_consent(&default_tenant(), &bob, &ClientId::parse("web").unwrap())
            .await
            .unwrap()
            .is_some());

        // Nothing left to withdraw.
        for path in [
            "/tenants/default/users/alice/consents/web",
            "/tenants/default/users/alice/consents/never",
            "/tenants/default/users/alice/consents/bad%20id",
            "/tenants/default/users/nobody/consents/cli",
        ] {
            let (status, body) = s.admin(Method::DELETE, path, None).await;
            expect_error(status, &body, StatusCode::NOT_FOUND, "not_found");
        }
        // A grant without a consent (a first-party client) is still revoked.
        let first_party = refresh_token(&s, &alice, "portal", "alice-portal").await;
        let (status, body) = s
            .admin(
                Method::DELETE,
                "/tenants/default/users/alice/consents/portal",
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["consent_deleted"], false);
        assert_eq!(token_state(&s, &first_party).await, (false, true));
    }
}

#[tokio::test]
async fn declared_tenants_and_clients_carry_the_sign_in_fields() {
    let declare = |require_pkce: Option<bool>| -> sesame_server::config::TenantConfig {
        let mut client = json!({
            "client_id": "portal",
            "client_type": "public",
            "grant_types": ["authorization_code", "refresh_token"],
            "redirect_uris": ["https://portal.acme.example/cb"],
            "post_logout_redirect_uris": ["https://portal.acme.example/"],
            "first_party": true,
            "refresh_without_offline_access": true,
        });
        if let Some(p) = require_pkce {
            client["require_pkce"] = p.into();
        }
        serde_json::from_value(json!({
            "id": "acme",
            "logo_url": "https://acme.example/logo.svg",
            "clients": [client],
        }))
        .unwrap()
    };
    let tenant = declare(None);
    let s = TestServer::start(sesame_store::testing::TestDb::sqlite(), |c| {
        c.tenants = vec![tenant.clone()]
    })
    .await;
    let (_, t) = s.admin(Method::GET, "/tenants/acme", None).await;
    assert_eq!(t["logo_url"], "https://acme.example/logo.svg");
    let (_, c) = s.admin(Method::GET, "/tenants/acme/clients/portal", None).await;
    assert_eq!(
        c["post_logout_redirect_uris"],
        json!(["https://portal.acme.example/"])
    );
    assert_eq!(
        (
            c["require_pkce"].as_bool(),
            c["first_party"].as_bool(),
            c["refresh_without_offline_access"].as_bool()
        ),
        (Some(true), Some(true), Some(true))
    );

    // The rules of the admin API hold for declared clients too.
    let no_pkce = declare(Some(false));
    let dir = tempfile::tempdir().unwrap();
    let db = sesame_store::testing::TestDb::sqlite();
    let mut config = common::test_config(&db, dir.path());
    config.tenants = vec![no_pkce];
    let err = sesame_server::start(&config, false).await.err().expect("refused");
    assert!(err.contains("portal") && err.contains("PKCE"), "{err}");
}
