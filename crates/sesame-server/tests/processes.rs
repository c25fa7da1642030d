//! The `sesamed` binary as an operator runs it: start-up, restarts, the master key, config
//! files, logs, SIGTERM, and two processes sharing one PostgreSQL.

mod common;

use reqwest::StatusCode;
use serde_json::{json, Value};
use sesame_store::testing::TestDb;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

struct Sesamed {
    child: Child,
    base: String,
    stdout: String,
}

/// Starts `sesamed serve ARGS` on an ephemeral port and waits for its banner.
async fn spawn(args: &[&str], env: &[(&str, &str)]) -> Result<Sesamed, String> {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sesamed"));
    cmd.arg("serve").arg("--listen").arg("127.0.0.1:0").args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.env_remove("SESAME_STORE").env_remove("SESAME_MASTER_KEY");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut stdout = String::new();
    let read = async {
        while let Ok(Some(line)) = lines.next_line().await {
            stdout.push_str(&line);
            stdout.push('\n');
            if stdout.contains("Next: create a client") && line.contains("curl") {
                return true;
            }
        }
        false
    };
    let ready = tokio::time::timeout(Duration::from_secs(30), read)
        .await
        .unwrap_or(false);
    if !ready {
        let out = child.wait_with_output().await.unwrap();
        return Err(format!(
            "exit {:?}: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let base = stdout
        .lines()
        .find_map(|l| l.strip_prefix("Sesame is listening on "))
        .and_then(|l| l.split(' ').next())
        .map(|addr| format!("http://{addr}"))
        .unwrap();
    Ok(Sesamed { child, base, stdout })
}

impl Sesamed {
    fn admin_token_shown(&self) -> Option<String> {
        self.stdout.lines().find_map(|l| {
            l.trim()
                .strip_prefix("admin token (shown once): ")
                .map(str::to_owned)
        })
    }

    /// SIGTERM, and the exit status it ends with.
    async fn terminate(mut self) -> (Option<i32>, String) {
        let pid = self.child.id().unwrap().to_string();
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        let out = tokio::time::timeout(Duration::from_secs(15), async {
            let mut err = String::new();
            if let Some(mut e) = self.child.stderr.take() {
                use tokio::io::AsyncReadExt;
                let _ = e.read_to_string(&mut err).await;
            }
            (self.child.wait().await.unwrap().code(), err)
        })
        .await
        .expect("sesamed stops within 15 s of SIGTERM");
        out
    }
}

/// Runs `sesamed serve ARGS` expecting it to fail; returns (exit code, stderr).
async fn fails(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sesamed"));
    cmd.arg("serve").arg("--listen").arg("127.0.0.1:0").args(args);
    cmd.env_remove("SESAME_STORE").env_remove("SESAME_MASTER_KEY");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = tokio::time::timeout(Duration::from_secs(30), cmd.output())
        .await
        .expect("exits")
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn get_json(url: &str) -> Value {
    reqwest::get(url).await.unwrap().json().await.unwrap()
}

async fn admin_post(base: &str, token: &str, path: &str, body: Value) -> (StatusCode, Value) {
    let resp = reqwest::Client::new()
        .post(format!("{base}/admin/v1{path}"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    (resp.status(), resp.json().await.unwrap_or(Value::Null))
}

async fn form(url: &str, creds: (&str, &str), form: &[(&str, &str)]) -> (StatusCode, Value) {
    let resp = reqwest::Client::new()
        .post(url)
        .basic_auth(creds.0, Some(creds.1))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn kids(jwks: &Value) -> Vec<String> {
    let mut v: Vec<String> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect();
    v.sort();
    v
}

fn dir_arg(p: &Path) -> String {
    p.to_str().unwrap().to_owned()
}

#[tokio::test]
async fn dev_mode_starts_prints_the_next_step_and_a_restart_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir_arg(dir.path());
    let first = spawn(&["--dev", "--data-dir", &data], &[]).await.unwrap();
    // Without public_url the issuer is the listening address.
    assert!(
        first
            .stdout
            .contains(&format!("issuer:     {}/t/default", first.base)),
        "{}",
        first.stdout
    );
    let token = first
        .admin_token_shown()
        .expect("first start shows the admin token");
    let file = std::fs::read_to_string(dir.path().join("admin-token")).unwrap();
    assert_eq!(file.trim(), token);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for f in ["admin-token", "master.key"] {
            let mode = std::fs::metadata(dir.path().join(f))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "{f} is readable by its owner only");
        }
    }
    let jwks = get_json(&format!("{}/t/default/jwks", first.base)).await;
    assert_eq!(kids(&jwks).len(), 6, "active and next key for three algorithms");
    let (code, _) = first.terminate().await;
    assert_eq!(code, Some(0), "SIGTERM is a graceful stop");

    let second = spawn(&["--dev", "--data-dir", &data], &[]).await.unwrap();
    assert!(second.admin_token_shown().is_none(), "the token is shown once");
    assert_eq!(
        kids(&get_json(&format!("{}/t/default/jwks", second.base)).await),
        kids(&jwks)
    );
    let (status, _) = admin_post(&second.base, &token, "/tenants", json!({"id": "kept"})).await;
    assert_eq!(status, StatusCode::CREATED, "the admin token still works");
    assert_eq!(second.terminate().await.0, Some(0));
}

#[tokio::test]
async fn a_wrong_or_missing_master_key_refuses_to_start_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir_arg(dir.path());
    let s = spawn(&["--dev", "--data-dir", &data], &[]).await.unwrap();
    let jwks = kids(&get_json(&format!("{}/t/default/jwks", s.base)).await);
    assert_eq!(s.terminate().await.0, Some(0));
    let key_file = dir.path().join("master.key");
    let original = std::fs::read_to_string(&key_file).unwrap();

    std::fs::write(&key_file, sesame_core::crypto::MasterKey::generate().1).unwrap();
    let (code, err) = fails(&["--dev", "--data-dir", &data], &[]).await;
    assert_eq!(code, Some(1));
    assert!(err.contains("does not match"), "{err}");

    std::fs::remove_file(&key_file).unwrap();
    let (code, err) = fails(&["--dev", "--data-dir", &data], &[]).await;
    assert_eq!(code, Some(1));
    assert!(err.contains("refusing to start"), "{err}");
    assert!(
        !key_file.exists(),
        "no new key was generated over an initialised store"
    );

    let (code, err) = fails(
        &["--dev", "--data-dir", &data],
        &[("SESAME_MASTER_KEY", "not-base64!")],
    )
    .await;
    assert_eq!(code, Some(1));
    assert!(err.contains("master_key") && err.contains("base64"), "{err}");

    std::fs::write(&key_file, original).unwrap();
    let s = spawn(&["--dev", "--data-dir", &data], &[]).await.unwrap();
    assert_eq!(
        kids(&get_json(&format!("{}/t/default/jwks", s.base)).await),
        jwks,
        "keys are intact"
    );
    s.terminate().await;
}

#[tokio::test]
async fn without_dev_a_master_key_is_required() {
    let dir = tempfile::tempdir().unwrap();
    let (code, err) = fails(&["--data-dir", &dir_arg(dir.path())], &[]).await;
    assert_eq!(code, Some(1));
    assert!(err.contains("no master key"), "{err}");
}

#[tokio::test]
async fn an_unreachable_store_exits_non_zero_with_the_url_redacted() {
    let key = sesame_core::crypto::MasterKey::generate().1;
    let (code, err) = fails(
        &["--store", "postgres://sesame:hunter2@127.0.0.1:1/sesame"],
        &[("SESAME_MASTER_KEY", &key)],
    )
    .await;
    assert_eq!(code, Some(1));
    assert!(err.contains("postgres://sesame:***@127.0.0.1:1/sesame"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
}

#[tokio::test]
async fn config_errors_name_the_field_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("sesame.toml");
    for (text, needle) in [
        ("data_dir = 5", "data_dir"),
        ("cache_refresh_ms = 5", "cache_refresh_ms"),
        ("client_address_header = \"x forwarded\"", "client_address_header"),
        (
            "[[tenants]]\nid = \"acme\"\nsigning_alg = \"HS256\"",
            "signing_alg",
        ),
        ("stor = \"sqlite://x\"", "stor"),
    ] {
        std::fs::write(&cfg, text).unwrap();
        let (code, err) = fails(&["--config", cfg.to_str().unwrap()], &[]).await;
        assert_eq!(code, Some(2), "{text}: {err}");
        assert!(err.contains(needle), "{text}: {err}");
    }
    let (code, err) = fails(&["--dev"], &[("SESAME_LOG_FORMAT", "xml")]).await;
    assert_eq!(code, Some(2));
    assert!(err.to_lowercase().contains("log_format"), "{err}");
}

#[tokio::test]
async fn declared_tenants_and_clients_apply_idempotently_with_secrets_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("sesame.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"
data_dir = "{}"
[[tenants]]
id = "acme"
display_name = "Acme"
signing_alg = "EdDSA"
[[tenants.clients]]
client_id = "svc"
secret_env = "ACME_SVC_SECRET"
grant_types = ["client_credentials"]
allowed_scopes = ["read"]
"#,
            dir.path().display()
        ),
    )
    .unwrap();
    let key = sesame_core::crypto::MasterKey::generate().1;
    let secret = "s".repeat(40);
    let env = [
        ("SESAME_MASTER_KEY", key.as_str()),
        ("ACME_SVC_SECRET", secret.as_str()),
    ];
    let args = ["--config", cfg.to_str().unwrap()];
    for round in 0..2 {
        let s = spawn(&args, &env).await.unwrap();
        let (status, body) = form(
            &format!("{}/t/acme/token", s.base),
            ("svc", &secret),
            &[("grant_type", "client_credentials")],
        )
        .await;
        assert_eq!(status, StatusCode::OK, "round {round}: {body}");
        let (header, _) = common::jwt_parts(body["access_token"].as_str().unwrap());
        assert_eq!(header["alg"], "EdDSA");
        let tenants = get_json(&format!("{}/t/default/jwks", s.base)).await;
        assert_eq!(
            tenants["error"], "not_found",
            "no default tenant when tenants are declared"
        );
        assert_eq!(s.terminate().await.0, Some(0));
    }
    // A changed secret replaces the old one.
    let new_secret = "n".repeat(40);
    let env = [
        ("SESAME_MASTER_KEY", key.as_str()),
        ("ACME_SVC_SECRET", new_secret.as_str()),
    ];
    let s = spawn(&args, &env).await.unwrap();
    let url = format!("{}/t/acme/token", s.base);
    assert_eq!(
        form(&url, ("svc", &secret), &[("grant_type", "client_credentials")])
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        form(
            &url,
            ("svc", &new_secret),
            &[("grant_type", "client_credentials")]
        )
        .await
        .0,
        StatusCode::OK
    );
    s.terminate().await;
    // A missing secret variable names the client and the variable.
    let (code, err) = fails(&args, &[("SESAME_MASTER_KEY", key.as_str())]).await;
    assert_eq!(code, Some(1));
    assert!(
        err.contains("client 'svc'") && err.contains("ACME_SVC_SECRET"),
        "{err}"
    );
}

#[tokio::test]
async fn json_logs_and_prometheus_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let s = spawn(
        &[
            "--dev",
            "--data-dir",
            &dir_arg(dir.path()),
            "--log-format",
            "json",
        ],
        &[],
    )
    .await
    .unwrap();
    let token = s.admin_token_shown().unwrap();
    let (_, created) = admin_post(&s.base, &token, "/tenants/default/clients", json!({})).await;
    let (id, secret) = (
        created["client"]["client_id"].as_str().unwrap(),
        created["client_secret"].as_str().unwrap(),
    );
    let (status, _) = form(
        &format!("{}/t/default/token", s.base),
        (id, secret),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let metrics = reqwest::get(format!("{}/metrics", s.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("sesame_tokens_issued_total{grant_type=\"client_credentials\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "sesame_http_requests_total{route=\"/t/{tenant}/token\",method=\"POST\",status=\"200\"} 1"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("sesame_http_request_duration_seconds_bucket{"),
        "{metrics}"
    );
    assert_eq!(
        reqwest::get(format!("{}/healthz", s.base))
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        reqwest::get(format!("{}/readyz", s.base)).await.unwrap().status(),
        StatusCode::OK
    );
    let (code, stderr) = s.terminate().await;
    assert_eq!(code, Some(0));
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.is_empty()).collect();
    assert!(!lines.is_empty());
    for line in lines {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON: {line}: {e}"));
        assert!(v["level"].is_string());
    }
    assert!(
        !stderr.contains(&secret.to_string()) && !stderr.contains(&token),
        "secrets are never logged"
    );
}

#[tokio::test]
async fn two_processes_on_one_postgres_behave_as_one_server() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let key = sesame_core::crypto::MasterKey::generate().1;
    // Replicas behind one load balancer share the public URL, hence the issuer.
    let public = "http://sesame.test";
    let env = [
        ("SESAME_MASTER_KEY", key.as_str()),
        ("SESAME_CACHE_REFRESH_MS", "100"),
        ("SESAME_PUBLIC_URL", public),
    ];
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = spawn(
        &["--store", db.url.as_str(), "--data-dir", &dir_arg(dirs.0.path())],
        &env,
    )
    .await
    .unwrap();
    let b = spawn(
        &["--store", db.url.as_str(), "--data-dir", &dir_arg(dirs.1.path())],
        &env,
    )
    .await
    .unwrap();
    let admin = a
        .admin_token_shown()
        .expect("the first process created the admin token");
    assert!(
        b.admin_token_shown().is_none(),
        "the second found it in the shared store"
    );

    // A client created through A authenticates on B.
    let (status, created) = admin_post(
        &a.base,
        &admin,
        "/tenants/default/clients",
        json!({"signing_alg": "EdDSA"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let creds = (
        created["client"]["client_id"].as_str().unwrap(),
        created["client_secret"].as_str().unwrap(),
    );
    let cc = [("grant_type", "client_credentials")];
    let (_, t) = form(&format!("{}/t/default/token", b.base), creds, &cc).await;
    let signed_before_rotation = t["access_token"].as_str().unwrap().to_owned();

    // Issued by A, active on B; revoked on B, inactive on A at once (no cache in between).
    let (_, t) = form(&format!("{}/t/default/token", a.base), creds, &cc).await;
    let token = t["access_token"].as_str().unwrap();
    let (_, seen) = form(
        &format!("{}/t/default/introspect", b.base),
        creds,
        &[("token", token)],
    )
    .await;
    assert_eq!(seen["active"], true, "issued on A, active on B");
    assert_eq!(seen["iss"], format!("{public}/t/default"));
    let (status, _) = form(
        &format!("{}/t/default/revoke", b.base),
        creds,
        &[("token", token)],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (_, seen) = form(
        &format!("{}/t/default/introspect", a.base),
        creds,
        &[("token", token)],
    )
    .await;
    assert_eq!(
        seen,
        json!({"active": false}),
        "revoked on B, inactive on A at once"
    );

    // A key rotated on A is published by B, and B signs with it.
    let before = kids(&get_json(&format!("{}/t/default/jwks", b.base)).await);
    let (status, rotated) = admin_post(
        &a.base,
        &admin,
        "/tenants/default/keys/rotate",
        json!({"alg": "EdDSA", "force": true}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let keys = rotated["keys"].as_array().unwrap();
    let kid_of = |state: &str| {
        keys.iter()
            .find(|k| k["alg"] == "EdDSA" && k["state"] == state)
            .unwrap()["kid"]
            .clone()
    };
    let (new_next, new_active) = (kid_of("next"), kid_of("active"));
    let mut published = false;
    for _ in 0..50 {
        let now = kids(&get_json(&format!("{}/t/default/jwks", b.base)).await);
        if now.contains(&new_next.as_str().unwrap().to_owned()) {
            published = true;
            assert!(
                before.iter().all(|k| now.contains(k)),
                "the retired key stays published"
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(published, "B publishes the key rotated on A");
    let (_, t) = form(&format!("{}/t/default/token", b.base), creds, &cc).await;
    let (header, _) = common::jwt_parts(t["access_token"].as_str().unwrap());
    assert_eq!(header["kid"], new_active, "B signs with the newly active key");
    // A token the retired key signed is still valid until it expires.
    let (_, seen) = form(
        &format!("{}/t/default/introspect", a.base),
        creds,
        &[("token", &signed_before_rotation)],
    )
    .await;
    assert_eq!(seen["active"], true);
    assert_eq!(a.terminate().await.0, Some(0));
    assert_eq!(b.terminate().await.0, Some(0));
}

#[tokio::test]
async fn admin_listen_moves_the_admin_api_and_the_banner_says_where() {
    let dir = tempfile::tempdir().unwrap();
    let s = spawn(
        &[
            "--dev",
            "--data-dir",
            &dir_arg(dir.path()),
            "--admin-listen",
            "127.0.0.1:0",
        ],
        &[],
    )
    .await
    .unwrap();
    let admin = s
        .stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("admin API and metrics: "))
        .and_then(|l| l.split(' ').next())
        .unwrap_or_else(|| panic!("no admin URL in the banner: {}", s.stdout))
        .to_owned();
    assert_ne!(admin, s.base);
    assert!(
        s.stdout.contains(&format!("sesame admin --url {admin} ")),
        "the CLI hint points at the admin listener: {}",
        s.stdout
    );
    let token = s.admin_token_shown().unwrap();
    let (status, _) = admin_post(&admin, &token, "/tenants/default/clients", json!({})).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = admin_post(&s.base, &token, "/tenants/default/clients", json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let public = reqwest::get(format!("{}/metrics", s.base)).await.unwrap();
    assert_eq!(public.status(), StatusCode::NOT_FOUND);
    let private = reqwest::get(format!("{admin}/metrics")).await.unwrap();
    assert_eq!(private.status(), StatusCode::OK);
    let (code, _) = s.terminate().await;
    assert_eq!(code, Some(0));
}
