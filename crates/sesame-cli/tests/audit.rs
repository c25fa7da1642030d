//! `sesame admin audit` against a real sesamed: the newest events, JSON lines, filters, and
//! `--follow` seeing an event recorded after it started.

use sesame_server::bootstrap::AdminToken;
use sesame_store::testing::TestDb;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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

fn sesame(s: &Server, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sesame"));
    c.arg("admin")
        .arg("--url")
        .arg(&s.running.public_url)
        .args(args)
        .env("SESAME_ADMIN_TOKEN", &s.token)
        .env_remove("SESAME_TENANT");
    c
}

async fn create_client(s: &Server, name: &str) {
    let resp = reqwest::Client::new()
        .post(format!(
            "{}/admin/v1/tenants/default/clients",
            s.running.public_url
        ))
        .bearer_auth(&s.token)
        .json(&serde_json::json!({ "name": name, "grant_types": ["client_credentials"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_prints_json_lines_and_follows_new_events() {
    let s = server().await;
    create_client(&s, "first").await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let mut cmd = sesame(
        &s,
        &["audit", "--tenant", "default", "--type", "admin.change", "--json"],
    );
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 1, "{text}");
    assert_eq!(lines[0]["type"], "admin.change");
    assert_eq!(lines[0]["target"], "/tenants/default/clients");
    assert_eq!(lines[0]["actor_id"], "bootstrap");
    assert!(!text.contains(&s.token));

    // --follow: a change made after it started shows up.
    let mut child = sesame(
        &s,
        &[
            "audit",
            "--tenant",
            "default",
            "--type",
            "admin.change",
            "--follow",
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let first = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(first.contains("admin.change"), "{first}");
    create_client(&s, "second").await;
    let started = Instant::now();
    let mut seen = false;
    while started.elapsed() < Duration::from_secs(10) {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            assert!(
                line.contains("admin.change") && line.contains("/tenants/default/clients"),
                "{line}"
            );
            seen = true;
            break;
        }
    }
    child.kill().unwrap();
    let _ = child.wait();
    assert!(seen, "--follow did not print the new event");
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_refuses_bad_filters_with_a_message() {
    let s = server().await;
    let mut cmd = sesame(&s, &["audit", "--since", "yesterday"]);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--since"));
    let mut cmd = sesame(&s, &["audit", "--type", "nope"]);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unknown audit event type"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
