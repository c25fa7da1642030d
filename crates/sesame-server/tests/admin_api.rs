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
    for url in [
        format!("{issuer}/.well-known/openid-configuration"),
        format!("{issuer}/.well-known/oauth-authorization-server"),
        s.url("/.well-known/oauth-authorization-server/t/default"),
    ] {
        let resp = s.http.get(&url).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{url}");
        let etag = resp.headers()["etag"].clone();
        assert_eq!(resp.headers()["cache-control"], "public, max-age=300");
        let doc: Value = resp.json().await.unwrap();
        assert_eq!(doc["issuer"], issuer);
        assert_eq!(doc["token_endpoint"], format!("{issuer}/token"));
        assert_eq!(doc["grant_types_supported"], json!(["client_credentials"]));
        assert!(
            doc.get("authorization_endpoint").is_none(),
            "not implemented yet, so not advertised"
        );
        assert!(doc.get("userinfo_endpoint").is_none());
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
        let (b, b_secret) = s.client("default", json!({})).await;
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
        // B may not revoke A's token; A may, and then it is inactive everywhere
        let (status, _, body) = s
            .post_form("default", "/revoke", Some((&b, &b_secret)), &[("token", &token)])
            .await;
        expect_error(status, &body, StatusCode::BAD_REQUEST, "unauthorized_client");
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
