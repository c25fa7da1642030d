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
