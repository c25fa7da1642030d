//! `sesame admin` against a real sesamed: the commands an operator types, end to end.

use sesame_server::bootstrap::AdminToken;
use sesame_store::testing::TestDb;
use std::process::Command;

struct Server {
    running: sesame_server::Running,
    token: String,
    _db: TestDb,
    _dir: tempfile::TempDir,
}

async fn server() -> Server {
    let db = TestDb::sqlite();
    let dir = tempfile::tempdir().unwrap();
    let config = sesame_server::config::Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.path().to_path_buf(),
        store: Some(db.url.as_str().to_owned()),
        master_key: Some(sesame_core::crypto::MasterKey::generate().1),
        ..Default::default()
    };
    let running = sesame_server::start(&config, false).await.unwrap();
    let AdminToken::Created(t, _) = &running.admin_token else {
        panic!("fresh store")
    };
    let token = t.expose().to_owned();
    Server {
        running,
        token,
        _db: db,
        _dir: dir,
    }
}

/// Runs `sesame admin --url … ARGS` with the admin token in the environment.
async fn sesame(s: &Server, args: &[&str]) -> (i32, String, String) {
    sesame_with_stdin(s, args, "").await
}

/// The same, with `stdin` written to the command's standard input.
async fn sesame_with_stdin(s: &Server, args: &[&str], stdin: &str) -> (i32, String, String) {
    use std::io::Write;
    use std::process::Stdio;
    let (url, token) = (s.running.public_url.clone(), s.token.clone());
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let stdin = stdin.to_owned();
    let out = tokio::task::spawn_blocking(move || {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sesame"))
            .arg("admin")
            .arg("--url")
            .arg(url)
            .args(args)
            .env("SESAME_ADMIN_TOKEN", token)
            .env_remove("SESAME_TENANT")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The user as stored, to check what the server really kept.
async fn stored_user(s: &Server, key: &str) -> sesame_core::model::User {
    let tenant = sesame_core::ids::TenantId::parse("default").unwrap();
    s.running.app.store.get_user(&tenant, key).await.unwrap().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_operator_creates_a_tenant_and_client_and_the_client_gets_a_token() {
    let s = server().await;
    let (code, out, err) = sesame(&s, &["tenants", "create", "acme", "--signing-alg", "EdDSA"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("acme"), "{out}");
    let (code, out, err) = sesame(
        &s,
        &[
            "--json",
            "clients",
            "create",
            "--tenant",
            "acme",
            "--client-id",
            "svc",
            "--scope",
            "read",
            "--audience",
            "api",
        ],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let created: serde_json::Value = serde_json::from_str(&out).unwrap();
    let secret = created["client_secret"].as_str().unwrap();
    let resp = reqwest::Client::new()
        .post(format!("{}/t/acme/token", s.running.public_url))
        .basic_auth("svc", Some(secret))
        .form(&[("grant_type", "client_credentials"), ("scope", "read")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    let (code, out, _) = sesame(&s, &["clients", "list", "--tenant", "acme"]).await;
    assert_eq!(code, 0);
    assert!(out.contains("svc") && !out.contains(secret), "{out}");
    let (code, out, _) = sesame(&s, &["clients", "rotate-secret", "--tenant", "acme", "svc"]).await;
    assert_eq!(code, 0);
    assert!(out.contains("will not be shown again"), "{out}");
    let (code, _, _) = sesame(&s, &["clients", "disable", "--tenant", "acme", "svc"]).await;
    assert_eq!(code, 0);
    let (code, out, _) = sesame(&s, &["--json", "clients", "show", "--tenant", "acme", "svc"]).await;
    assert_eq!(code, 0);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&out).unwrap()["disabled"],
        true
    );
    let (code, out, _) = sesame(&s, &["keys", "list", "--tenant", "acme"]).await;
    assert_eq!(code, 0);
    assert_eq!(out.matches("EdDSA").count(), 2, "{out}");
    let (code, _, err) = sesame(&s, &["keys", "rotate", "--tenant", "acme", "--alg", "EdDSA"]).await;
    assert_eq!(code, 1, "too early without --force");
    assert!(err.starts_with("error: refused:"), "{err}");
    let (code, _, err) = sesame(
        &s,
        &["keys", "rotate", "--tenant", "acme", "--alg", "EdDSA", "--force"],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let (code, _, _) = sesame(&s, &["clients", "delete", "--tenant", "acme", "svc"]).await;
    assert_eq!(code, 0);
    let (code, _, err) = sesame(&s, &["clients", "show", "--tenant", "acme", "svc"]).await;
    assert_eq!(code, 1);
    assert!(err.contains("not_found"), "{err}");
    let (code, out, _) = sesame(&s, &["tenants", "disable", "acme"]).await;
    assert_eq!(code, 0, "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_token_or_an_unreachable_server_is_a_clear_error() {
    let s = server().await;
    let out = Command::new(env!("CARGO_BIN_EXE_sesame"))
        .args([
            "admin",
            "--url",
            &s.running.public_url,
            "--token",
            "wrong",
            "tenants",
            "list",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unauthorized"));
    let out = Command::new(env!("CARGO_BIN_EXE_sesame"))
        .args([
            "admin",
            "--url",
            "http://127.0.0.1:1",
            "--token",
            "x",
            "tenants",
            "list",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("http://127.0.0.1:1"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn users_are_created_with_a_password_from_stdin_never_from_argv() {
    let s = server().await;
    let (code, out, err) = sesame_with_stdin(
        &s,
        &[
            "users",
            "create",
            "Alice",
            "--email",
            "alice@example.com",
            "--password-stdin",
        ],
        "a long passphrase\n",
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("alice") && !out.contains("a long passphrase"),
        "{out}"
    );
    let user = stored_user(&s, "alice").await;
    assert!(sesame_core::password::verify(
        "a long passphrase",
        user.password_hash.as_deref().unwrap()
    ));

    let set_password = ["users", "set-password", "alice", "--password-stdin"];
    let (code, _, err) = sesame_with_stdin(&s, &set_password, "short\n").await;
    assert_eq!(code, 1);
    assert!(err.contains("8 to 1024"), "{err}");
    let (code, _, err) = sesame_with_stdin(&s, &set_password, "another passphrase\n").await;
    assert_eq!(code, 0, "{err}");
    let user = stored_user(&s, "alice").await;
    assert!(sesame_core::password::verify(
        "another passphrase",
        user.password_hash.as_deref().unwrap()
    ));
    let (code, out, _) = sesame(&s, &["users", "list"]).await;
    assert_eq!(code, 0);
    assert!(out.contains("alice@example.com"), "{out}");
    let (code, _, _) = sesame(&s, &["users", "disable", "alice"]).await;
    assert_eq!(code, 0);
    assert!(stored_user(&s, "alice").await.disabled);
}

#[tokio::test(flavor = "multi_thread")]
async fn tenants_and_clients_are_updated_in_place() {
    let s = server().await;
    let (code, out, err) = sesame(
        &s,
        &[
            "tenants",
            "update",
            "default",
            "--logo-url",
            "https://id.example/logo.svg",
            "--display-name",
            "Example",
        ],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("logo_url:") && out.contains("https://id.example/logo.svg"),
        "{out}"
    );
    let (code, _, err) = sesame(
        &s,
        &["tenants", "update", "default", "--logo-url", "javascript:x"],
    )
    .await;
    assert_eq!(code, 1);
    assert!(err.contains("logo_url"), "{err}");

    let (code, out, err) = sesame(
        &s,
        &[
            "--json",
            "clients",
            "create",
            "--client-id",
            "web",
            "--type",
            "public",
            "--redirect-uri",
            "https://app.example/cb",
            "--post-logout-redirect-uri",
            "https://app.example/",
            "--first-party",
            "--scope",
            "openid profile",
        ],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let created: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        created["client"]["grant_types"],
        serde_json::json!(["authorization_code", "refresh_token"])
    );
    assert_eq!(created["client"]["first_party"], true);
    assert_eq!(created["client"]["require_pkce"], true);

    let (code, out, err) = sesame(
        &s,
        &[
            "clients",
            "update",
            "web",
            "--redirect-uri",
            "https://app.example/callback",
            "--redirect-uri",
            "http://127.0.0.1/cb",
            "--no-first-party",
            "--refresh-without-offline-access",
            "--grant-type",
            "authorization_code",
        ],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("https://app.example/callback, http://127.0.0.1/cb"),
        "{out}"
    );
    let stored = s
        .running
        .app
        .store
        .get_client(
            &sesame_core::ids::TenantId::parse("default").unwrap(),
            &sesame_core::ids::ClientId::parse("web").unwrap(),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.redirect_uris,
        ["https://app.example/callback", "http://127.0.0.1/cb"]
    );
    assert_eq!(stored.post_logout_redirect_uris, ["https://app.example/"]);
    assert!(!stored.first_party && stored.refresh_without_offline_access && stored.require_pkce);
    assert_eq!(
        stored.grant_types,
        [sesame_core::model::GrantType::AuthorizationCode]
    );

    // The server's rules apply, and a refused change changes nothing.
    let (code, _, err) = sesame(&s, &["clients", "update", "web", "--no-pkce"]).await;
    assert_eq!(code, 1);
    assert!(err.contains("PKCE"), "{err}");
    let (code, _, err) = sesame(
        &s,
        &[
            "clients",
            "update",
            "web",
            "--redirect-uri",
            "https://app.example/cb#x",
        ],
    )
    .await;
    assert_eq!(code, 1);
    assert!(err.contains("https://app.example/cb#x"), "{err}");
    let (code, _, err) = sesame(&s, &["clients", "update", "web"]).await;
    assert_eq!(code, 2, "a usage error: no field given: {err}");
    let (code, out, _) = sesame(&s, &["--json", "clients", "show", "web"]).await;
    assert_eq!(code, 0);
    let shown: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(shown["require_pkce"], true);
    assert_eq!(shown["redirect_uris"][0], "https://app.example/callback");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_operator_lists_and_ends_sessions_and_withdraws_consents() {
    use sesame_core::ids::{ClientId, TenantId};
    use sesame_core::model::{BrowserSession, Consent, RefreshToken};
    let s = server().await;
    let (code, _, err) = sesame(&s, &["users", "create", "alice", "--no-password"]).await;
    assert_eq!(code, 0, "{err}");
    let alice = stored_user(&s, "alice").await.id;
    let tenant = TenantId::parse("default").unwrap();
    let store = &s.running.app.store;
    let now = sesame_core::now();
    for (id, age) in [("sess-one", 100), ("sess-two", 50)] {
        store
            .insert_session(&BrowserSession {
                tenant_id: tenant.clone(),
                id: id.into(),
                secret_hash: sesame_core::secret::hash_secret(id.as_bytes()),
                user_id: alice.clone(),
                auth_time: now - age,
                amr: vec!["pwd".into()],
                user_agent: Some("curl/8".into()),
                ip: Some("198.51.100.4".into()),
                created_at: now - age,
                expires_at: now + 3600,
            })
            .await
            .unwrap();
    }
    let web = ClientId::parse("web").unwrap();
    store
        .put_consent(&Consent {
            tenant_id: tenant.clone(),
            user_id: alice.clone(),
            client_id: web.clone(),
            scopes: vec!["openid".into(), "email".into()],
            granted_at: now,
        })
        .await
        .unwrap();
    let token_hash = sesame_core::secret::hash_secret(b"alice-web-refresh");
    store
        .insert_refresh_token(&RefreshToken {
            tenant_id: tenant.clone(),
            token_hash,
            grant_id: "g1".into(),
            client_id: web.clone(),
            user_id: alice.clone(),
            scope: "openid email".into(),
            auth_time: now,
            amr: vec!["pwd".into()],
            created_at: now,
            expires_at: now + 86_400,
            access_jti: Some("jti-alice-web".into()),
            access_exp: Some(now + 600),
            rotated_at: None,
            successor_response: None,
        })
        .await
        .unwrap();

    let (code, out, err) = sesame(&s, &["users", "sessions", "alice"]).await;
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("ID ") && lines[0].contains("USER AGENT"),
        "{out}"
    );
    assert!(
        lines[1].starts_with("sess-two") && lines[2].starts_with("sess-one"),
        "{out}"
    );
    assert!(
        out.contains("198.51.100.4") && out.contains("curl/8") && out.contains("pwd"),
        "{out}"
    );
    let (code, out, _) = sesame(&s, &["--json", "users", "sessions", "alice"]).await;
    assert_eq!(code, 0);
    let listed: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(listed["sessions"].as_array().unwrap().len(), 2);

    let (code, out, err) = sesame(&s, &["users", "revoke-session", "alice", "sess-one"]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "ended session 'sess-one' of user 'alice'\n");
    let (code, _, err) = sesame(&s, &["users", "revoke-session", "alice", "sess-one"]).await;
    assert_eq!(code, 1);
    assert!(err.contains("not_found"), "{err}");
    let (code, out, err) = sesame(&s, &["users", "revoke-sessions", "alice"]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "ended 1 session of user 'alice'\n");
    let (code, out, _) = sesame(&s, &["users", "sessions", "alice"]).await;
    assert_eq!((code, out.as_str()), (0, "user 'alice' has no sessions\n"));

    let (code, out, err) = sesame(&s, &["users", "consents", "alice"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("CLIENT ID") && out.contains("web") && out.contains("openid, email"),
        "{out}"
    );
    let (code, out, err) = sesame(&s, &["users", "revoke-consent", "alice", "web"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("withdrew the consent of user 'alice' to client 'web'")
            && out.contains("revoked 1 refresh token "),
        "{out}"
    );
    assert!(store
        .get_refresh_token(&tenant, &token_hash)
        .await
        .unwrap()
        .is_none());
    assert!(store
        .is_access_token_revoked(&tenant, "jti-alice-web")
        .await
        .unwrap());
    let (code, out, _) = sesame(&s, &["--json", "users", "consents", "alice"]).await;
    assert_eq!(code, 0);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&out).unwrap(),
        serde_json::json!({"consents": []})
    );
    let (code, _, err) = sesame(&s, &["users", "revoke-consent", "alice", "web"]).await;
    assert_eq!(code, 1);
    assert!(err.contains("not_found"), "{err}");
}
