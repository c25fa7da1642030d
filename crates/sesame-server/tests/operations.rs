//! Starting and running `sesamed` as an operator does, and what it says when something is off:
//! the banner's absolute data directory and new-store notice, one process per SQLite store,
//! "address in use" naming `--listen`, admin JSON errors without parser positions, and the
//! `info` log lines of sign-ins (never a typed password or an unknown username) and admin
//! changes (never a secret).

use reqwest::StatusCode;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

struct Sesamed {
    child: Child,
    base: String,
    stdout: String,
    log: PathBuf,
    _logdir: tempfile::TempDir,
}

fn sesamed(args: &[&str], cwd: &Path) -> (Command, PathBuf, tempfile::TempDir) {
    let logdir = tempfile::tempdir().unwrap();
    let log = logdir.path().join("stderr.log");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sesamed"));
    cmd.arg("serve").args(args).current_dir(cwd);
    for var in [
        "SESAME_STORE",
        "SESAME_MASTER_KEY",
        "SESAME_DATA_DIR",
        "SESAME_LISTEN",
        "RUST_LOG",
    ] {
        cmd.env_remove(var);
    }
    cmd.stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .kill_on_drop(true);
    (cmd, log, logdir)
}

/// Starts `sesamed serve ARGS` in `cwd` and waits for the banner's last line.
async fn spawn(args: &[&str], cwd: &Path) -> Result<Sesamed, String> {
    let (mut cmd, log, logdir) = sesamed(args, cwd);
    let mut child = cmd.spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut stdout = String::new();
    let read = async {
        while let Ok(Some(line)) = lines.next_line().await {
            stdout.push_str(&line);
            stdout.push('\n');
            if line.contains("curl -u") {
                return true;
            }
        }
        false
    };
    let ready = tokio::time::timeout(Duration::from_secs(30), read)
        .await
        .unwrap_or(false);
    if !ready {
        let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
        return Err(std::fs::read_to_string(&log).unwrap_or_default());
    }
    let base = stdout
        .lines()
        .find_map(|l| l.strip_prefix("Sesame is listening on "))
        .and_then(|l| l.split(' ').next())
        .map(|addr| format!("http://{addr}"))
        .unwrap();
    Ok(Sesamed {
        child,
        base,
        stdout,
        log,
        _logdir: logdir,
    })
}

/// Runs `sesamed serve ARGS` expecting it to stop with an error; its stderr.
async fn fails(args: &[&str], cwd: &Path) -> String {
    let (mut cmd, log, _dir) = sesamed(args, cwd);
    let status = tokio::time::timeout(Duration::from_secs(30), cmd.status())
        .await
        .expect("exits")
        .unwrap();
    assert_eq!(status.code(), Some(1));
    std::fs::read_to_string(log).unwrap()
}

impl Sesamed {
    fn line(&self, prefix: &str) -> Option<&str> {
        self.stdout.lines().find_map(|l| l.trim().strip_prefix(prefix))
    }

    fn token(&self) -> String {
        let file = self
            .line("export SESAME_ADMIN_TOKEN_FILE=")
            .expect("token file in the banner");
        std::fs::read_to_string(file).unwrap().trim().to_owned()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap()
    }

    async fn admin(&self, method: reqwest::Method, path: &str, body: Option<&str>) -> (StatusCode, Value) {
        let mut req = reqwest::Client::new()
            .request(method, format!("{}/admin/v1{path}", self.base))
            .bearer_auth(self.token());
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b.to_owned());
        }
        let resp = req.send().await.unwrap();
        (resp.status(), resp.json().await.unwrap_or(Value::Null))
    }

    /// Waits until the log holds a line with every one of `parts` (logs are written as they
    /// happen, but by another process).
    async fn log_line(&self, parts: &[&str]) -> String {
        for _ in 0..50 {
            if let Some(l) = self.log().lines().find(|l| parts.iter().all(|p| l.contains(p))) {
                return l.to_owned();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no log line with {parts:?} in:\n{}", self.log());
    }
}

#[tokio::test]
async fn the_banner_shows_the_absolute_data_dir_and_whether_the_store_is_new() {
    let cwd = tempfile::tempdir().unwrap();
    let data = std::fs::canonicalize(cwd.path()).unwrap().join("sesame-data");
    // The default data directory, relative to where sesamed is started.
    let first = spawn(&["--dev", "--listen", "127.0.0.1:0"], cwd.path())
        .await
        .unwrap();
    let line = first.line("data:").expect("data line").trim().to_owned();
    assert!(line.starts_with(&data.display().to_string()), "{}", first.stdout);
    assert!(line.contains("a new store, created now"), "{line}");
    let token_file = first.line("export SESAME_ADMIN_TOKEN_FILE=").unwrap();
    assert_eq!(Path::new(token_file), data.join("admin-token"));
    drop(first);
    // Killed on drop; its lock goes with the process.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let again = spawn(&["--dev", "--listen", "127.0.0.1:0"], cwd.path())
        .await
        .unwrap();
    let line = again.line("data:").unwrap().trim();
    assert_eq!(line, data.display().to_string(), "{}", again.stdout);
    assert!(
        again.line("export SESAME_ADMIN_TOKEN_FILE=").is_some(),
        "a restart still says where the token is"
    );

    // A new store whose master key comes from the configuration: the banner does not claim a
    // new master key.
    let other = tempfile::tempdir().unwrap();
    let key_file = other.path().join("given.key");
    std::fs::write(&key_file, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=").unwrap();
    let config = other.path().join("sesame.toml");
    std::fs::write(
        &config,
        format!("master_key_file = {:?}\n", key_file.display().to_string()),
    )
    .unwrap();
    let given = spawn(
        &[
            "--dev",
            "--listen",
            "127.0.0.1:0",
            "--config",
            config.to_str().unwrap(),
        ],
        other.path(),
    )
    .await
    .unwrap();
    let line = given.line("data:").unwrap().trim().to_owned();
    assert!(line.contains("a new store, created now"), "{line}");
    assert!(!line.contains("new master key"), "{line}");
    assert!(line.contains("the master key is the configured one"), "{line}");
}

#[tokio::test]
async fn a_second_sesamed_on_one_sqlite_store_is_refused_naming_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let first = spawn(
        &["--dev", "--listen", "127.0.0.1:0", "--data-dir", data],
        dir.path(),
    )
    .await
    .unwrap();
    let err = fails(
        &["--dev", "--listen", "127.0.0.1:0", "--data-dir", data],
        dir.path(),
    )
    .await;
    let pid = first.child.id().unwrap();
    assert!(
        err.contains(&format!("another sesamed (pid {pid}) is already running")),
        "{err}"
    );
    assert!(err.contains("--data-dir"), "{err}");
    // The first one is unharmed.
    let r = reqwest::get(format!("{}/readyz", first.base)).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    drop(first);
    // A killed holder leaves no stale lock: the lock dies with its process.
    tokio::time::sleep(Duration::from_millis(300)).await;
    spawn(
        &["--dev", "--listen", "127.0.0.1:0", "--data-dir", data],
        dir.path(),
    )
    .await
    .expect("starts once the first is gone");
}

#[tokio::test]
async fn an_address_in_use_suggests_listen() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let err = fails(&["--dev", "--listen", &addr], dir.path()).await;
    assert!(
        err.contains(&addr) && err.contains("in use") && err.contains("--listen"),
        "{err}"
    );
}

#[tokio::test]
async fn admin_json_errors_name_the_field_without_parser_positions() {
    let dir = tempfile::tempdir().unwrap();
    let s = spawn(&["--dev", "--listen", "127.0.0.1:0"], dir.path())
        .await
        .unwrap();
    for (body, want) in [
        (
            r#"{"name": "x", "access_token_ttl": "an hour"}"#,
            "field `access_token_ttl`",
        ),
        (
            r#"{"name": "x", "redirect_uris": [5]}"#,
            "field `redirect_uris[0]`",
        ),
        (r#"{"name": "x",}"#, "not valid JSON"),
        (r#"{"nmae": "x"}"#, "unknown field `nmae`, expected one of"),
    ] {
        let (status, err) = s
            .admin(reqwest::Method::POST, "/tenants/default/clients", Some(body))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
        let d = err["error_description"].as_str().unwrap();
        assert!(d.contains(want), "{body}: {d}");
        assert!(!d.contains(" line ") && !d.contains(" column "), "{body}: {d}");
    }
}

/// The login page's form, submitted: the hidden fields and cookies carried over by hand.
async fn sign_in(s: &Sesamed, client_id: &str, username: &str, password: &str) -> reqwest::Response {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let issuer = format!("{}/t/default", s.base);
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("client_id", client_id),
            ("redirect_uri", "https://app.example/cb"),
            ("response_type", "code"),
            ("scope", "openid"),
            ("state", "st"),
            ("code_challenge", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"),
            ("code_challenge_method", "S256"),
        ])
        .finish();
    let page = http
        .get(format!("{issuer}/authorize?{query}"))
        .send()
        .await
        .unwrap();
    let cookies: Vec<String> = page
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok()?.split(';').next().map(str::to_owned))
        .collect();
    let body = page.text().await.unwrap();
    let hidden = |name: &str| {
        let marker = format!("name=\"{name}\" value=\"");
        let start = body
            .find(&marker)
            .unwrap_or_else(|| panic!("no {name} in {body}"))
            + marker.len();
        let len = body[start..].find('"').unwrap();
        body[start..start + len]
            .replace("&#x2b;", "+")
            .replace("&#x2f;", "/")
            .replace("&#x3d;", "=")
    };
    http.post(format!("{issuer}/login"))
        .header("cookie", cookies.join("; "))
        .form(&[
            ("csrf", hidden("csrf").as_str()),
            ("request", hidden("request").as_str()),
            ("username", username),
            ("password", password),
        ])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn sign_ins_and_admin_changes_leave_one_info_line_each_without_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let s = spawn(&["--dev", "--listen", "127.0.0.1:0"], dir.path())
        .await
        .unwrap();
    let (status, client) = s
        .admin(
            reqwest::Method::POST,
            "/tenants/default/clients",
            Some(r#"{"name": "app", "redirect_uris": ["https://app.example/cb"], "first_party": true}"#),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{client}");
    let client_id = client["client"]["client_id"].as_str().unwrap().to_owned();
    let secret = client["client_secret"].as_str().unwrap().to_owned();
    let created = s
        .log_line(&["admin change", "POST", "/admin/v1/tenants/default/clients", "201"])
        .await;
    assert!(!created.contains(&secret), "{created}");

    let (status, user) = s
        .admin(
            reqwest::Method::POST,
            "/tenants/default/users",
            Some(&json!({"username": "alice", "password": "a long enough password"}).to_string()),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{user}");
    let alice = user["id"].as_str().unwrap().to_owned();
    let line = s
        .log_line(&["admin change", "/admin/v1/tenants/default/users"])
        .await;
    assert!(!line.contains("a long enough password"), "{line}");
    // A refused change is a line too.
    let (status, _) = s
        .admin(reqwest::Method::DELETE, "/tenants/default/clients/nope", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    s.log_line(&["admin change", "DELETE", "clients/nope", "404"])
        .await;

    // A wrong password for a known user: the user's id, never the password.
    let r = sign_in(&s, &client_id, "alice", "wrong password typed").await;
    assert_eq!(r.status(), StatusCode::OK, "the login page again");
    let line = s.log_line(&["sign-in", "refused", &alice]).await;
    assert!(
        line.contains("tenant") && line.contains("default") && line.contains("127.0.0.1"),
        "{line}"
    );
    assert!(!line.contains("wrong password typed"), "{line}");
    // A password typed into the username field is never logged.
    let r = sign_in(&s, &client_id, "hunter2-secret-in-username", "x").await;
    assert_eq!(r.status(), StatusCode::OK);
    let line = s.log_line(&["sign-in", "unknown user"]).await;
    assert!(!line.contains("hunter2"), "{line}");
    assert!(!s.log().contains("hunter2"), "nowhere in the log");
    // A success names the user.
    let r = sign_in(&s, &client_id, "alice", "a long enough password").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{:?}", r.text().await);
    let line = s.log_line(&["sign-in", "signed_in", &alice]).await;
    assert!(
        line.contains("alice") && line.contains("via") && line.contains("login"),
        "{line}"
    );
    assert!(!s.log().contains("a long enough password"));
}
