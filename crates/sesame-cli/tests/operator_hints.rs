//! `sesame admin` where a newcomer goes wrong, against a real sesamed: a user created without a
//! terminal and without a password flag is refused naming `--no-password` (and nothing is
//! created, so the retry does not hit "username is taken"); `--url` given a tenant's issuer is
//! refused with the server's base URL; admin validation errors come without parser positions.

use sesame_server::bootstrap::AdminToken;
use sesame_store::testing::TestDb;
use std::io::Write;
use std::process::{Command, Stdio};

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

/// `sesame admin ARGS` with stdin from `input` (never a terminal), in a blocking thread.
async fn sesame(s: &Server, url: Option<&str>, args: &[&str], input: &str) -> (i32, String, String) {
    let url = url.map_or_else(|| s.running.public_url.clone(), str::to_owned);
    let token = s.token.clone();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let input = input.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sesame"))
            .arg("admin")
            .arg("--url")
            .arg(url)
            .args(&args)
            .env("SESAME_ADMIN_TOKEN", token)
            .env_remove("SESAME_ADMIN_TOKEN_FILE")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // A command may refuse (and exit) before it reads its input: a closed pipe is fine.
        if let Err(e) = child.stdin.take().unwrap().write_all(input.as_bytes()) {
            assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
        }
        let out = child.wait_with_output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_without_a_password_needs_no_password_and_nothing_is_created_before() {
    let s = server().await;
    let (code, _, err) = sesame(&s, None, &["users", "create", "alice"], "").await;
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("--no-password") && err.contains("--password-stdin"),
        "{err}"
    );
    // Nothing was created: the retry with a password works, it does not find "username is taken".
    let (code, out, err) = sesame(
        &s,
        None,
        &["users", "create", "alice", "--password-stdin"],
        "a long enough password\n",
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("alice"), "{out}");
    let (code, _, err) = sesame(&s, None, &["users", "create", "bob", "--no-password"], "").await;
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = sesame(
        &s,
        None,
        &["users", "create", "carol", "--no-password", "--password-stdin"],
        "x\n",
    )
    .await;
    assert_eq!(code, 2, "the two flags conflict: {err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_issuer_given_as_url_is_refused_with_the_servers_base_url() {
    let s = server().await;
    let issuer = s.running.issuer("default");
    let (code, _, err) = sesame(&s, Some(&issuer), &["tenants", "list"], "").await;
    assert_eq!(code, 1);
    assert!(
        err.contains("issuer") && err.contains(&format!("--url {}", s.running.public_url)),
        "{err}"
    );
    let (code, out, err) = sesame(&s, None, &["tenants", "list"], "").await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("default"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_validation_errors_reach_the_terminal_without_parser_positions() {
    let s = server().await;
    let http = reqwest::Client::new();
    let resp = http
        .post(format!(
            "{}/admin/v1/tenants/default/clients",
            s.running.public_url
        ))
        .bearer_auth(&s.token)
        .header("content-type", "application/json")
        .body(r#"{"name": "x", "grant_types": "client_credentials"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: serde_json::Value = resp.json().await.unwrap();
    let d = body["error_description"].as_str().unwrap();
    assert!(d.contains("field `grant_types`"), "{d}");
    assert!(!d.contains("line") && !d.contains("column"), "{d}");
}
