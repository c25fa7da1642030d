//! The audit log end to end: each recorded event type with its actor, tenant, outcome and
//! request id; paging; the retention sweep; and no secret or token in any row.

mod access_support;
mod common;

use access_support::{admin_app, call, machine, sign_in, user, PW};
use common::TestServer;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sesame_core::audit::{AuditEvent, AuditQuery, EventType, Outcome};
use sesame_store::testing::TestDb;
use std::time::Duration;

/// The tenant's events of `kind` (newest first), waiting up to 5 s for at least `want`.
async fn events(s: &TestServer, tenant: &str, kind: &str, want: usize) -> Vec<Value> {
    for _ in 0..100 {
        let (st, body) = s
            .admin(
                Method::GET,
                &format!("/tenants/{tenant}/audit?type={kind}&limit=1000"),
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
    panic!("fewer than {want} {kind} events in {tenant}");
}

/// The newest event of `kind` that `matches`, waiting up to 5 s for it (events are written in
/// the background).
async fn find(s: &TestServer, tenant: &str, kind: &str, matches: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..100 {
        if let Some(e) = events(s, tenant, kind, 0).await.into_iter().find(|e| matches(e)) {
            return e;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no such {kind} event in {tenant}");
}

fn assert_event(e: &Value, tenant: &str, actor_kind: &str, outcome: &str) {
    assert_eq!(e["tenant"], tenant, "{e}");
    assert_eq!(e["actor_kind"], actor_kind, "{e}");
    assert_eq!(e["outcome"], outcome, "{e}");
    assert!(e["request_id"].as_str().is_some_and(|r| !r.is_empty()), "{e}");
    assert!(
        e["client_address"].as_str().is_some_and(|a| a == "127.0.0.1"),
        "{e}"
    );
    assert!(e["time"].as_i64().unwrap() > 1_700_000_000, "{e}");
}

#[tokio::test]
async fn security_events_are_recorded_without_secrets_on_each_store() {
    let mut servers = vec![TestServer::start(TestDb::sqlite(), |c| c.audit_token_issued = Some(true)).await];
    if let Some(db) = TestDb::postgres().await {
        servers.push(TestServer::start(db, |c| c.audit_token_issued = Some(true)).await);
    }
    for s in servers {
        recorded(&s).await;
    }
}

async fn recorded(s: &TestServer) {
    s.tenant("acme", json!({})).await;
    let app = admin_app(s, "acme").await;
    let alice_id = user(s, "acme", "alice").await;
    s.admin(
        Method::PUT,
        "/tenants/acme/users/alice/admin",
        Some(json!({"admin": true})),
    )
    .await;
    let mut secrets: Vec<String> = vec![s.admin_token.clone(), app.1.clone(), PW.to_owned()];

    // Admin changes: by the operator, and refused for a member.
    let mine = &find(s, "acme", "admin.change", |e| {
        e["target"] == "/tenants/acme/users/alice/admin"
    })
    .await;
    assert_event(mine, "acme", "operator", "success");
    assert_eq!(mine["actor_id"], "bootstrap");
    assert_eq!(mine["details"]["permission"], "admins:write");
    assert_eq!(mine["details"]["status"], 200);

    // Sign-in: a failure (the typed name is a user's: it is named), then a success.
    assert!(sign_in(s, "acme", &app, "alice", "wrong password!")
        .await
        .is_none());
    assert!(sign_in(s, "acme", &app, "not-a-user", "whatever pw")
        .await
        .is_none());
    let tokens = sign_in(s, "acme", &app, "alice", PW).await.unwrap();
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    secrets.push(access.clone());
    if let Some(id) = tokens["id_token"].as_str() {
        secrets.push(id.to_owned());
    }
    if let Some(r) = tokens["refresh_token"].as_str() {
        secrets.push(r.to_owned());
    }
    let named = &find(s, "acme", "signin.failure", |e| {
        e["actor_id"] == alice_id.as_str()
    })
    .await;
    assert_event(named, "acme", "user", "denied");
    assert_eq!(named["details"]["reason"], "refused");
    // The unknown name is not recorded (it may be a password typed in the wrong field).
    let anonymous = find(s, "acme", "signin.failure", |e| e["actor_id"].is_null()).await;
    assert!(anonymous["target"].is_null());
    let ok = events(s, "acme", "signin.success", 1).await;
    assert_event(&ok[0], "acme", "user", "success");
    assert_eq!(ok[0]["target"], format!("user:{alice_id}"));

    // A member's refused admin call is an admin.change with outcome denied.
    let (st, _) = call(
        s,
        &access,
        Method::POST,
        "/tenants/acme/users/alice/disable",
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK, "alice is admin");
    s.admin(Method::POST, "/tenants/acme/users/alice/enable", None)
        .await;
    let bob_id = user(s, "acme", "bob").await;
    let bob = sign_in(s, "acme", &app, "bob", PW).await.unwrap();
    let bob_access = bob["access_token"].as_str().unwrap().to_owned();
    secrets.push(bob_access.clone());
    let (st, _) = call(
        s,
        &bob_access,
        Method::POST,
        "/tenants/acme/clients",
        Some(json!({"name": "x"})),
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let refused = &find(s, "acme", "admin.change", |e| e["actor_id"] == bob_id.as_str()).await;
    assert_event(refused, "acme", "member", "denied");
    assert_eq!(refused["details"]["status"], 403);
    let by_alice = &find(s, "acme", "admin.change", |e| e["actor_id"] == alice_id.as_str()).await;
    assert_event(by_alice, "acme", "tenant_admin", "success");

    // User disabled, by whom.
    let disabled = events(s, "acme", "user.disabled", 1).await;
    assert_eq!(disabled[0]["target"], format!("user:{alice_id}"));
    assert_event(&disabled[0], "acme", "tenant_admin", "success");

    // Session revoked by an admin.
    let (st, body) = s
        .admin(Method::DELETE, "/tenants/acme/users/bob/sessions", None)
        .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let revoked = events(s, "acme", "session.revoked", 1).await;
    assert_event(&revoked[0], "acme", "operator", "success");
    assert!(revoked[0]["target"].as_str().unwrap().starts_with("session:"));

    // Tokens issued and revoked, with the caller's request id carried through.
    let bot = machine(s, "acme", "bot").await;
    secrets.push(bot.1.clone());
    let resp = s
        .http
        .post(format!("{}/token", s.issuer("acme")))
        .basic_auth(&bot.0, Some(&bot.1))
        .header("x-request-id", "audit-test-42")
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-request-id"], "audit-test-42");
    let body: Value = resp.json().await.unwrap();
    let cc = body["access_token"].as_str().unwrap().to_owned();
    secrets.push(cc.clone());
    let ours = &find(s, "acme", "token.issued", |e| e["request_id"] == "audit-test-42").await;
    assert_event(ours, "acme", "client", "success");
    assert_eq!(ours["actor_id"], bot.0.as_str());
    assert_eq!(ours["details"]["grant_type"], "client_credentials");
    // A made-up request id that is not plausible is replaced, on the answer too.
    let resp = s
        .http
        .get(format!("{}/jwks", s.issuer("acme")))
        .header("x-request-id", "no spaces allowed")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-request-id"].len(), 32);

    let (st, _, _) = s
        .post_form("acme", "/revoke", Some((&bot.0, &bot.1)), &[("token", &cc)])
        .await;
    assert_eq!(st, StatusCode::OK);
    let rev = events(s, "acme", "token.revoked", 1).await;
    assert_event(&rev[0], "acme", "client", "success");
    assert_eq!(rev[0]["details"]["token_type"], "access_token");

    // A token exchange refused: names the condition, never the token.
    let (ex_id, ex_secret) = s
        .client(
            "acme",
            json!({"name": "exchanger", "grant_types": ["urn:ietf:params:oauth:grant-type:token-exchange"]}),
        )
        .await;
    secrets.push(ex_secret.clone());
    let (st, _, body) = s
        .post_form(
            "acme",
            "/token",
            Some((&ex_id, &ex_secret)),
            &[
                ("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"),
                ("subject_token", &access),
                (
                    "subject_token_type",
                    "urn:ietf:params:oauth:token-type:access_token",
                ),
            ],
        )
        .await;
    assert!(st.is_client_error(), "{body}");
    let refusals = events(s, "acme", "token_exchange.refused", 1).await;
    assert_event(&refusals[0], "acme", "client", "denied");
    assert!(refusals[0]["details"]["error"].is_string());

    // Not one secret or token anywhere in the table.
    let rows = s
        .running
        .app
        .store
        .query_audit_events(&AuditQuery {
            limit: 10_000,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(rows.len() >= 15, "{}", rows.len());
    let dump = serde_json::to_string(&rows).unwrap();
    for secret in &secrets {
        assert!(
            !dump.contains(secret.as_str()),
            "a secret in the audit log: {secret}"
        );
        // Nor a token's signature or payload alone.
        for part in secret.split('.').filter(|p| p.len() > 20) {
            assert!(!dump.contains(part));
        }
    }
}

#[tokio::test]
async fn pages_follow_the_cursor_and_access_to_the_log_follows_roles() {
    let s = TestServer::sqlite().await;
    s.tenant("acme", json!({})).await;
    s.tenant("other", json!({})).await;
    let store = &*s.running.app.store;
    let now = sesame_core::now();
    let mut batch = Vec::new();
    for i in 0..25 {
        let mut e = AuditEvent::new(
            EventType::TokenIssued,
            Some("acme"),
            Outcome::Success,
            now - 100 + i,
        )
        .actor("client", Some(if i % 2 == 0 { "even" } else { "odd" }))
        .details(json!({ "i": i }));
        e.request_id = Some(format!("r{i}"));
        batch.push(e);
    }
    batch.push(AuditEvent::new(
        EventType::TokenIssued,
        Some("other"),
        Outcome::Success,
        now,
    ));
    store.append_audit_events(&batch).await.unwrap();

    // Newest first, 10 a page, no repeats, none missed.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = match &cursor {
            Some(c) => format!("?type=token.issued&limit=10&cursor={c}"),
            None => "?type=token.issued&limit=10".into(),
        };
        let (st, body) = s
            .admin(Method::GET, &format!("/tenants/acme/audit{q}"), None)
            .await;
        assert_eq!(st, StatusCode::OK, "{body}");
        for e in body["events"].as_array().unwrap() {
            seen.push(e["details"]["i"].as_i64().unwrap());
        }
        match body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, (0..25).rev().collect::<Vec<_>>());
    // Oldest first, filtered by actor and time.
    let (_, body) = s
        .admin(
            Method::GET,
            &format!(
                "/tenants/acme/audit?order=oldest&actor=odd&since={}&limit=3",
                now - 95
            ),
            None,
        )
        .await;
    let got: Vec<_> = body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["details"]["i"].as_i64().unwrap())
        .collect();
    assert_eq!(got, vec![5, 7, 9]);
    // Bad parameters name themselves.
    for q in [
        "limit=0",
        "limit=x",
        "type=nope",
        "outcome=maybe",
        "cursor=-1",
        "order=up",
    ] {
        let (st, body) = s
            .admin(Method::GET, &format!("/tenants/acme/audit?{q}"), None)
            .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{q}: {body}");
    }

    // A tenant admin reads their tenant's log only; a member not at all; operators all.
    let app = admin_app(&s, "acme").await;
    user(&s, "acme", "alice").await;
    user(&s, "acme", "bob").await;
    s.admin(
        Method::PUT,
        "/tenants/acme/users/alice/admin",
        Some(json!({"admin": true})),
    )
    .await;
    let alice = sign_in(&s, "acme", &app, "alice", PW).await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let bob = sign_in(&s, "acme", &app, "bob", PW).await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        call(&s, &alice, Method::GET, "/tenants/acme/audit", None).await.0,
        StatusCode::OK
    );
    assert_eq!(
        call(&s, &alice, Method::GET, "/tenants/other/audit", None)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(&s, &alice, Method::GET, "/audit", None).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        call(&s, &bob, Method::GET, "/tenants/acme/audit", None).await.0,
        StatusCode::FORBIDDEN
    );
    let (st, body) = s.admin(Method::GET, "/audit?limit=1000", None).await;
    assert_eq!(st, StatusCode::OK);
    let tenants: Vec<_> = body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["tenant"].clone())
        .collect();
    assert!(tenants.contains(&json!("other")) && tenants.contains(&json!("acme")));
    // Creating a tenant is server-wide: no tenant on its event.
    assert!(tenants.contains(&Value::Null));
}

#[tokio::test]
async fn the_retention_sweep_deletes_old_events_only() {
    for s in TestServer::each_store().await {
        let store = &*s.running.app.store;
        let now = sesame_core::now();
        let old = AuditEvent::new(
            EventType::SignInFailure,
            Some("default"),
            Outcome::Denied,
            now - 91 * 86400,
        );
        let recent = AuditEvent::new(
            EventType::SignInFailure,
            Some("default"),
            Outcome::Denied,
            now - 89 * 86400,
        );
        store.append_audit_events(&[old, recent]).await.unwrap();
        let q = AuditQuery {
            tenant: Some("default".into()),
            event_type: Some(EventType::SignInFailure),
            limit: 100,
            ..Default::default()
        };
        assert_eq!(store.query_audit_events(&q).await.unwrap().len(), 2);
        assert_eq!(s.running.app.audit_retention_days, 90);
        let swept = sesame_server::audit::sweep(&s.running.app, now).await.unwrap();
        assert!(swept >= 1);
        let left = store.query_audit_events(&q).await.unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].time, now - 89 * 86400);
    }
}

#[tokio::test]
async fn queued_events_are_written_at_shutdown() {
    let s = TestServer::start(TestDb::sqlite(), |c| c.audit_token_issued = Some(true)).await;
    let url = s.db.url.clone();
    let (id, secret) = machine(&s, "default", "bot").await;
    for _ in 0..50 {
        s.token("default", &id, &secret, &[]).await;
    }
    let store = s.running.app.store.clone();
    s.running.shutdown().await.unwrap();
    let q = AuditQuery {
        tenant: Some("default".into()),
        event_type: Some(EventType::TokenIssued),
        limit: 1000,
        ..Default::default()
    };
    assert_eq!(store.query_audit_events(&q).await.unwrap().len(), 50);
    drop(url);
}

#[tokio::test]
async fn tokens_issued_are_not_recorded_unless_configured() {
    let s = TestServer::sqlite().await;
    let (id, secret) = machine(&s, "default", "bot").await;
    for _ in 0..5 {
        s.token("default", &id, &secret, &[]).await;
    }
    let store = s.running.app.store.clone();
    s.running.shutdown().await.unwrap();
    let q = AuditQuery {
        tenant: Some("default".into()),
        event_type: Some(EventType::TokenIssued),
        limit: 1000,
        ..Default::default()
    };
    assert!(store.query_audit_events(&q).await.unwrap().is_empty());
    // The admin change that created the client was recorded: the log itself is on.
    let q = AuditQuery {
        tenant: Some("default".into()),
        event_type: Some(EventType::AdminChange),
        limit: 1000,
        ..Default::default()
    };
    assert!(!store.query_audit_events(&q).await.unwrap().is_empty());
}
