//! Admin roles end to end: every admin route called by every kind of actor (operator token,
//! scoped token in and out of its tenant and permissions, tenant admin's and member's access
//! tokens, client-credentials tokens with and without admin permissions, expired and revoked
//! tokens), against the policy table the server enforces; `sesamed admin-token`; the `--dev`
//! token file per store.

mod access_support;
mod common;

use access_support::{admin_app, call, machine, scoped_token, sign_in, user, CB, PW};
use common::TestServer;
use reqwest::{Method, StatusCode};
use serde_json::json;
use sesame_core::access::{AdminTokenInfo, Permission, ADMIN_AUDIENCE, ADMIN_ROUTES};
use sesame_core::ids::TenantId;
use sesame_server::admin_tokens::{self, NewToken};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Role {
    Operator,
    TenantAdmin,
    Member,
    Scoped,
    Bot,
    PlainClient,
    Expired,
    Revoked,
    WrongAudience,
}

/// The answer each role must get on `route`.
fn expected(role: Role, route: &sesame_core::access::AdminRoute) -> Result<(), (StatusCode, &'static str)> {
    let forbidden = Err((StatusCode::FORBIDDEN, "forbidden"));
    let scope = Err((StatusCode::FORBIDDEN, "insufficient_scope"));
    let server_wide = route.permission.server_wide();
    match role {
        Role::Operator => Ok(()),
        Role::TenantAdmin if server_wide => forbidden,
        Role::TenantAdmin => Ok(()),
        Role::Member if route.own_user => Ok(()),
        Role::Member => forbidden,
        Role::Scoped | Role::Bot | Role::PlainClient if server_wide => forbidden,
        Role::Scoped | Role::Bot if route.permission == Permission::ClientsRead => Ok(()),
        Role::Scoped | Role::Bot | Role::PlainClient => scope,
        Role::Expired | Role::Revoked | Role::WrongAudience => Err((StatusCode::UNAUTHORIZED, "")),
    }
}

/// A concrete path for a route pattern: ids that exist where a read is harmless (`bob`, the
/// member, for the routes about one's own user), made-up ids elsewhere so that an allowed
/// change finds nothing to change (404, not 403).
fn concrete(pattern: &str, tenant: &str, method: &str) -> String {
    let user = if method == "GET" { "bob" } else { "ghost" };
    pattern
        .replace("{tenant}", tenant)
        .replace("{user}", user)
        .replace("{client}", "ghost")
        .replace("{session}", "ghost")
        .replace("{connection}", "ghost")
        .replace("{name}", "ghost")
        .replace("{source}", "00000000-0000-4000-8000-000000000000")
}

#[tokio::test]
async fn every_admin_route_answers_each_role_as_the_policy_table_says() {
    let s = TestServer::sqlite().await;
    s.tenant("acme", json!({})).await;
    s.tenant("other", json!({})).await;
    s.tenant("scratch", json!({})).await;
    let app = admin_app(&s, "acme").await;
    user(&s, "acme", "alice").await;
    user(&s, "acme", "bob").await;
    let (st, body) = s
        .admin(
            Method::PUT,
            "/tenants/acme/users/alice/admin",
            Some(json!({"admin": true})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{body}");

    let alice = sign_in(&s, "acme", &app, "alice", PW).await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let bob = sign_in(&s, "acme", &app, "bob", PW).await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    // A person's token for another audience only.
    let (other_app_id, other_app_secret) = s
        .client(
            "acme",
            json!({"name": "web", "redirect_uris": [CB], "first_party": true, "allowed_audiences": ["api"]}),
        )
        .await;
    let wrong_audience = sign_in(&s, "acme", &(other_app_id, other_app_secret), "alice", PW)
        .await
        .unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();

    let bot = machine(&s, "acme", "bot").await;
    let (st, body) = s
        .admin(
            Method::PUT,
            &format!("/tenants/acme/clients/{}/admin-permissions", bot.0),
            Some(json!({"admin_permissions": ["clients:read"]})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let bot_token = s
        .token("acme", &bot.0, &bot.1, &[("resource", ADMIN_AUDIENCE)])
        .await;
    let plain = machine(&s, "acme", "plain").await;
    let plain_token = s.token("acme", &plain.0, &plain.1, &[]).await;

    let scoped = scoped_token(&s, "ci", Some("acme"), &["clients:read"]).await;
    let revoked = scoped_token(&s, "gone", None, &[]).await;
    admin_tokens::revoke(&*s.running.app.store, "gone").await.unwrap();
    // An expired token, written as it would be after its time passed.
    let expired = sesame_core::secret::Secret::generate();
    s.running
        .app
        .store
        .create_admin_token(
            &AdminTokenInfo {
                name: "old".into(),
                tenant: None,
                permissions: vec![],
                created_at: 0,
                expires_at: Some(1),
            },
            &expired.hash(),
        )
        .await
        .unwrap();

    let roles: Vec<(Role, String)> = vec![
        (Role::TenantAdmin, alice.clone()),
        (Role::Member, bob.clone()),
        (Role::Scoped, scoped.clone()),
        (Role::Bot, bot_token.clone()),
        (Role::PlainClient, plain_token.clone()),
        (Role::Expired, expired.expose().to_owned()),
        (Role::Revoked, revoked.clone()),
        (Role::WrongAudience, wrong_audience.clone()),
        (Role::Operator, s.admin_token.clone()),
    ];
    let mut checked = 0;
    for route in ADMIN_ROUTES {
        let method = Method::from_bytes(route.method.as_bytes()).unwrap();
        let body = (method != Method::GET && method != Method::DELETE).then(|| json!({}));
        for (role, token) in &roles {
            // Operators work in a tenant of their own here, so that what they may change
            // (disable a tenant, rotate keys) leaves the others' tenant as it was.
            let tenant = if *role == Role::Operator {
                "scratch"
            } else {
                "acme"
            };
            let path = concrete(route.path, tenant, route.method);
            let (status, answer) = call(&s, token, method.clone(), &path, body.clone()).await;
            let what = format!("{role:?} {} {path}: {status} {answer}", route.method);
            match expected(*role, route) {
                Ok(()) => {
                    assert!(
                        status != StatusCode::FORBIDDEN && status != StatusCode::UNAUTHORIZED,
                        "allowed, yet refused: {what}"
                    );
                    assert!(status != StatusCode::METHOD_NOT_ALLOWED, "not routed: {what}");
                    if *role == Role::Member {
                        assert!(status.is_success(), "{what}");
                    }
                }
                Err((want, error)) => {
                    assert_eq!(status, want, "{what}");
                    if !error.is_empty() {
                        assert_eq!(answer["error"], error, "{what}");
                        let described = answer["error_description"].as_str().unwrap_or("");
                        assert!(described.contains(route.permission.as_str()), "{what}");
                    } else {
                        assert!(answer["error"].is_string(), "{what}");
                    }
                }
            }
            checked += 1;
        }
        // Tenant-scoped actors asking about another tenant: as if it did not exist.
        if route.path.contains("{tenant}") {
            for token in [&alice, &scoped, &bot_token] {
                let path = concrete(route.path, "other", route.method);
                let (status, answer) = call(&s, token, method.clone(), &path, body.clone()).await;
                assert_eq!(status, StatusCode::NOT_FOUND, "{} {path}: {answer}", route.method);
                assert_eq!(answer["error"], "not_found");
            }
        }
    }
    assert_eq!(checked, ADMIN_ROUTES.len() * roles.len());

    // The router against the table: every admin path the server routes has each of its
    // methods in the table (the operator is never refused as "in no policy"), and every
    // method the table does not list for a path is unrouted (405).
    let paths = sesame_server::routes::admin_paths(&s.running.app);
    assert!(paths.len() >= 30, "{paths:?}");
    for full in &paths {
        let pattern = full.strip_prefix("/admin/v1").unwrap();
        assert!(
            ADMIN_ROUTES.iter().any(|r| r.path == pattern),
            "routed but not in the policy table: {full}"
        );
        for m in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
            let listed = ADMIN_ROUTES.iter().any(|r| r.path == pattern && r.method == m);
            let path = concrete(pattern, "scratch", m);
            let method = Method::from_bytes(m.as_bytes()).unwrap();
            let body = (m != "GET" && m != "DELETE").then(|| json!({}));
            let (status, answer) = call(&s, &s.admin_token, method, &path, body).await;
            assert_ne!(status, StatusCode::FORBIDDEN, "{m} {path}: {answer}");
            assert_eq!(
                status == StatusCode::METHOD_NOT_ALLOWED,
                !listed,
                "{m} {path}: {status} {answer}"
            );
        }
    }
    for route in ADMIN_ROUTES {
        assert!(
            paths.iter().any(|p| p == &format!("/admin/v1{}", route.path)),
            "in the table but not routed: {} {}",
            route.method,
            route.path
        );
    }
}

#[tokio::test]
async fn revoked_withdrawn_and_disabled_people_and_clients_lose_admin_access() {
    let s = TestServer::sqlite().await;
    s.tenant("acme", json!({})).await;
    let app = admin_app(&s, "acme").await;
    user(&s, "acme", "alice").await;
    s.admin(
        Method::PUT,
        "/tenants/acme/users/alice/admin",
        Some(json!({"admin": true})),
    )
    .await;
    let tokens = sign_in(&s, "acme", &app, "alice", PW).await.unwrap();
    let alice = tokens["access_token"].as_str().unwrap();
    let (st, _) = call(&s, alice, Method::GET, "/tenants/acme/users", None).await;
    assert_eq!(st, StatusCode::OK);

    // The hand-set flag taken away: a member now.
    s.admin(
        Method::PUT,
        "/tenants/acme/users/alice/admin",
        Some(json!({"admin": false})),
    )
    .await;
    let (st, body) = call(&s, alice, Method::GET, "/tenants/acme/users", None).await;
    assert_eq!(
        (st, body["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden"))
    );
    s.admin(
        Method::PUT,
        "/tenants/acme/users/alice/admin",
        Some(json!({"admin": true})),
    )
    .await;

    // A token revoked at /revoke (RFC 7009) no longer works.
    let (st, _, _) = s
        .post_form("acme", "/revoke", Some((&app.0, &app.1)), &[("token", alice)])
        .await;
    assert_eq!(st, StatusCode::OK);
    let (st, body) = call(&s, alice, Method::GET, "/tenants/acme/users", None).await;
    assert_eq!(
        (st, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_token"))
    );

    // A disabled person's fresh token neither.
    let alice2 = sign_in(&s, "acme", &app, "alice", PW).await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    s.admin(Method::POST, "/tenants/acme/users/alice/disable", None)
        .await;
    let (st, _) = call(&s, &alice2, Method::GET, "/tenants/acme/users", None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);

    // A client's admin permissions go when they are withdrawn, and with the client.
    let bot = machine(&s, "acme", "bot").await;
    let path = format!("/tenants/acme/clients/{}/admin-permissions", bot.0);
    s.admin(
        Method::PUT,
        &path,
        Some(json!({"admin_permissions": ["users:read"]})),
    )
    .await;
    let t = s.token("acme", &bot.0, &bot.1, &[]).await;
    assert_eq!(
        call(&s, &t, Method::GET, "/tenants/acme/users", None).await.0,
        StatusCode::OK
    );
    s.admin(Method::PUT, &path, Some(json!({"admin_permissions": []})))
        .await;
    assert_eq!(
        call(&s, &t, Method::GET, "/tenants/acme/users", None).await.0,
        StatusCode::FORBIDDEN
    );
    s.admin(
        Method::PUT,
        &path,
        Some(json!({"admin_permissions": ["users:read"]})),
    )
    .await;
    // `iat` has a one-second resolution: a token of the second the client is created again
    // would survive it (see ARCHITECTURE.md), so the re-creation comes a second later.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    s.admin(Method::DELETE, &format!("/tenants/acme/clients/{}", bot.0), None)
        .await;
    // Created again under the same id: nothing comes back (the old token died with the client).
    let (st, body) = s
        .admin(
            Method::POST,
            "/tenants/acme/clients",
            Some(json!({"client_id": bot.0, "name": "bot", "grant_types": ["client_credentials"], "allowed_audiences": [ADMIN_AUDIENCE]})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    let (_, body) = s.admin(Method::GET, &path, None).await;
    assert_eq!(body["admin_permissions"], json!([]));
    let (st, body) = call(&s, &t, Method::GET, "/tenants/acme/users", None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "{body}");

    // Nobody grants what they do not hold: a scoped token with admins:write but not users:write.
    let scoped = scoped_token(&s, "granter", Some("acme"), &["admins:write", "clients:read"]).await;
    let (st, body) = call(
        &s,
        &scoped,
        Method::PUT,
        &path,
        Some(json!({"admin_permissions": ["users:write"]})),
    )
    .await;
    assert_eq!(
        (st, body["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("insufficient_scope")),
        "{body}"
    );
    let (st, _) = call(
        &s,
        &scoped,
        Method::PUT,
        &path,
        Some(json!({"admin_permissions": ["clients:read"]})),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    // Nor anything server-wide.
    let (st, _) = s
        .admin(
            Method::PUT,
            &path,
            Some(json!({"admin_permissions": ["tenants:manage"]})),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn admin_tokens_on_each_store() {
    for s in TestServer::each_store().await {
        admin_tokens_lifecycle(&s).await;
    }
}

async fn admin_tokens_lifecycle(s: &TestServer) {
    let store = &*s.running.app.store;
    s.tenant("acme", json!({})).await;
    let now = sesame_core::now();
    let new = |name: &str, expires: Option<&str>, tenant: Option<&str>, perms: &[&str]| NewToken {
        name: name.into(),
        expires_in: expires.map(str::to_owned),
        tenant: tenant.map(str::to_owned),
        permissions: perms.iter().map(|p| p.to_string()).collect(),
    };
    let (op, info) = admin_tokens::create(store, new("ops", Some("30d"), None, &[]), now)
        .await
        .unwrap();
    assert_eq!(info.expires_at, Some(now + 30 * 86400));
    assert_eq!(
        call(s, op.expose(), Method::GET, "/tenants", None).await.0,
        StatusCode::OK
    );

    // Refused shapes: a taken name, permissions without a tenant, a server-wide permission in a
    // tenant, an unknown permission or tenant, a bad duration.
    assert!(admin_tokens::create(store, new("ops", None, None, &[]), now)
        .await
        .unwrap_err()
        .contains("exists"));
    assert!(
        admin_tokens::create(store, new("x", None, None, &["clients:read"]), now)
            .await
            .is_err()
    );
    assert!(
        admin_tokens::create(store, new("x", None, Some("acme"), &["tenants:manage"]), now)
            .await
            .is_err()
    );
    assert!(
        admin_tokens::create(store, new("x", None, Some("acme"), &["root"]), now)
            .await
            .is_err()
    );
    assert!(
        admin_tokens::create(store, new("x", None, Some("nope"), &["clients:read"]), now)
            .await
            .is_err()
    );
    assert!(
        admin_tokens::create(store, new("x", Some("soon"), None, &[]), now)
            .await
            .is_err()
    );

    // Expiry: a token that expires in a second.
    let (short, _) = admin_tokens::create(store, new("short", Some("1s"), None, &[]), now)
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let (st, body) = call(s, short.expose(), Method::GET, "/tenants", None).await;
    assert_eq!(
        (st, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthorized"))
    );

    // Scoped.
    let (scoped, _) = admin_tokens::create(store, new("acme-ro", None, Some("acme"), &["clients:read"]), now)
        .await
        .unwrap();
    assert_eq!(
        call(s, scoped.expose(), Method::GET, "/tenants/acme/clients", None)
            .await
            .0,
        StatusCode::OK
    );

    // The list names tokens and scopes, and holds no token or hash.
    let list = admin_tokens::list(store).await.unwrap();
    let names: Vec<_> = list.iter().map(|t| t.name.as_str()).collect();
    assert!(
        names.contains(&"bootstrap") && names.contains(&"ops") && names.contains(&"acme-ro"),
        "{names:?}"
    );
    let scoped_info = list.iter().find(|t| t.name == "acme-ro").unwrap();
    assert_eq!(scoped_info.tenant, Some(TenantId::parse("acme").unwrap()));
    assert_eq!(scoped_info.permissions, vec![Permission::ClientsRead]);
    let shown = format!(
        "{}{}",
        admin_tokens::render_list(&list, sesame_core::now()),
        serde_json::to_string(&list).unwrap()
    );
    for secret in [op.expose(), scoped.expose(), short.expose(), &s.admin_token] {
        assert!(!shown.contains(secret));
        let hash = hex::encode(sesame_core::secret::hash_secret(secret.as_bytes()));
        assert!(!shown.contains(&hash));
    }
    assert!(shown.contains("(expired)"), "{shown}");

    // Revoked: 401 at once.
    admin_tokens::revoke(store, "ops").await.unwrap();
    assert_eq!(
        call(s, op.expose(), Method::GET, "/tenants", None).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert!(admin_tokens::revoke(store, "ops").await.is_err());
}

fn sesamed(args: &[&str], master_key: &str) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_sesamed"))
        .args(args)
        .env_clear()
        .env("SESAME_MASTER_KEY", master_key)
        .output()
        .unwrap()
}

#[tokio::test]
async fn the_sesamed_admin_token_command_works_against_the_store() {
    let s = TestServer::sqlite().await;
    let store_url = s.db.url.as_str().to_owned();
    let key = s.config.master_key.clone().unwrap();
    let data_dir = s.dir.path().to_str().unwrap().to_owned();
    let base = ["--data-dir", data_dir.as_str(), "--store", store_url.as_str()];
    let args = |extra: &[&'static str]| -> Vec<String> {
        let mut v: Vec<String> = vec!["admin-token".into(), extra[0].into()];
        v.extend(base.iter().map(|s| s.to_string()));
        v.extend(extra[1..].iter().map(|s| s.to_string()));
        v
    };
    let run = |a: Vec<String>, key: &str| {
        let refs: Vec<&str> = a.iter().map(String::as_str).collect();
        sesamed(&refs, key)
    };

    let out = run(args(&["create", "--name", "cli", "--expires-in", "30d"]), &key);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert_eq!(token.len(), 43);
    assert_eq!(
        call(&s, &token, Method::GET, "/tenants", None).await.0,
        StatusCode::OK
    );

    let out = run(args(&["list"]), &key);
    assert!(out.status.success());
    let listed = String::from_utf8(out.stdout).unwrap();
    assert!(listed.contains("cli") && listed.contains("bootstrap"), "{listed}");
    assert!(!listed.contains(&token) && !listed.contains(&s.admin_token));

    // Another master key: refused, nothing created.
    let wrong = sesame_core::crypto::MasterKey::generate().1;
    let out = run(args(&["create", "--name", "intruder"]), &wrong);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("master key"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = run(args(&["revoke", "cli"]), &key);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        call(&s, &token, Method::GET, "/tenants", None).await.0,
        StatusCode::UNAUTHORIZED
    );
    let out = run(args(&["revoke", "cli"]), &key);
    assert!(!out.status.success());
}

#[tokio::test]
async fn a_dev_start_on_another_store_leaves_the_first_stores_token_file_alone() {
    let dir = tempfile::tempdir().unwrap();
    let config = sesame_server::config::Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.path().to_path_buf(),
        ..Default::default()
    };
    let first = sesame_server::start(&config, true).await.unwrap();
    let first_file = dir.path().join("admin-token");
    let first_token = std::fs::read_to_string(&first_file).unwrap();
    first.shutdown().await.unwrap();

    // Another store, same data directory.
    let other_db = dir.path().join("other.db");
    let other = sesame_server::config::Config {
        store: Some(format!("sqlite://{}", other_db.display())),
        ..config.clone()
    };
    let second = sesame_server::start(&other, true).await.unwrap();
    let second_file = admin_tokens::dev_token_file(&other);
    assert_ne!(second_file, first_file);
    let second_token = std::fs::read_to_string(&second_file).unwrap();
    assert_ne!(second_token, first_token);
    assert_eq!(std::fs::read_to_string(&first_file).unwrap(), first_token);
    second.shutdown().await.unwrap();

    // The first store again: its file still works.
    let again = sesame_server::start(&config, true).await.unwrap();
    let http = reqwest::Client::new();
    let status = http
        .get(format!("{}/admin/v1/tenants", again.public_url))
        .bearer_auth(first_token.trim())
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::OK);
    again.shutdown().await.unwrap();
}
