//! What the CLI's process-level tests share (a copy of the helpers of `tests/signin.rs`): a
//! real sesamed started in-process with user `alice` and a public client for terminal sign-in,
//! the `sesame` binary run against it, and the test playing the person's browser.

#![allow(dead_code)]

use sesame_server::bootstrap::AdminToken;
use sesame_store::testing::TestDb;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use tokio::io::{AsyncBufReadExt, BufReader};

pub const PW: &str = "correct horse battery";

pub struct Server {
    pub running: sesame_server::Running,
    pub admin_token: String,
    pub issuer: String,
    pub client_id: String,
    pub config_root: tempfile::TempDir,
    /// Set for every `sesame` the test runs, after the defaults (a keyring's bus, the store).
    pub env: Vec<(String, String)>,
    _db: TestDb,
    _dir: tempfile::TempDir,
}

/// A sesamed with user `alice` and a public client registered for terminal sign-in (loopback
/// and `/oob` redirect URIs, code and refresh grants, consent shown).
pub async fn server() -> Server {
    server_on(TestDb::sqlite(), None).await
}

/// The same on `db`, started with the `[[tenants]]` of this config file applied (as
/// `sesamed --config FILE` applies them; the file's server settings are the test's).
pub async fn server_on(db: TestDb, config_file: Option<&std::path::Path>) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let tenants = match config_file {
        Some(f) => {
            sesame_server::config::Config::load(Some(f), &Default::default())
                .unwrap()
                .tenants
        }
        None => Vec::new(),
    };
    let config = sesame_server::config::Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.path().to_path_buf(),
        store: Some(db.url.as_str().to_owned()),
        master_key: Some(sesame_core::crypto::MasterKey::generate().1),
        tenants,
        ..Default::default()
    };
    let running = sesame_server::start(&config, false).await.unwrap();
    let AdminToken::Created(t, _) = &running.admin_token else {
        panic!("fresh store")
    };
    let admin_token = t.expose().to_owned();
    let issuer = running.issuer("default");
    let http = reqwest::Client::new();
    let admin = |path: &str, body: serde_json::Value| {
        http.post(format!("{}/admin/v1{path}", running.public_url))
            .bearer_auth(&admin_token)
            .json(&body)
            .send()
    };
    let resp = admin(
        "/tenants/default/users",
        serde_json::json!({
            "username": "alice", "password": PW, "email": "alice@example.com",
            "email_verified": true, "name": "Alice Example",
        }),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 201);
    let resp = admin(
        "/tenants/default/clients",
        serde_json::json!({
            "client_id": "sesame-cli", "name": "Sesame CLI", "client_type": "public",
            "redirect_uris": ["http://127.0.0.1/callback", format!("{issuer}/oob")],
        }),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
    Server {
        running,
        admin_token,
        issuer,
        client_id: "sesame-cli".into(),
        config_root: tempfile::tempdir().unwrap(),
        env: Vec::new(),
        _db: db,
        _dir: dir,
    }
}

impl Server {
    /// Not created by the test: `sesame` creates it, private.
    pub fn config_dir(&self) -> PathBuf {
        self.config_root.path().join("sesame")
    }

    pub fn credentials_path(&self) -> PathBuf {
        self.config_dir().join("credentials.json")
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_sesame"));
        c.args(args)
            .env("SESAME_CONFIG_DIR", self.config_dir())
            // `$BROWSER` is the command that opens the URL: `true` opens nothing, the test is
            // the browser.
            .env("BROWSER", "true")
            // The person's own keyring is never touched by a test: tests that want one say so.
            .env("SESAME_CREDENTIAL_STORE", "file")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    /// Runs `sesame ARGS` to the end: (status, stdout, stderr).
    pub async fn sesame(&self, args: &[&str]) -> (i32, String, String) {
        let mut c = self.command(args);
        let out = tokio::task::spawn_blocking(move || c.output().unwrap())
            .await
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Starts `sesame ARGS` and reads its stderr up to the authorization URL it prints.
    pub async fn start(&self, args: &[&str]) -> (tokio::process::Child, String, Lines) {
        let mut c = tokio::process::Command::from(self.command(args));
        c.stdin(Stdio::piped()).kill_on_drop(true);
        let mut child = c.spawn().unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut seen = String::new();
        let url = loop {
            let line = tokio::time::timeout(std::time::Duration::from_secs(20), lines.next_line())
                .await
                .unwrap_or_else(|_| panic!("no URL printed; so far: {seen}"))
                .unwrap()
                .unwrap_or_else(|| panic!("stderr ended without a URL: {seen}"));
            seen.push_str(&line);
            seen.push('\n');
            let line = line.trim();
            if line.starts_with(&format!("{}/authorize?", self.issuer)) {
                break line.to_owned();
            }
        };
        (child, url, lines)
    }

    /// `sesame_tokens_issued_total{grant_type="refresh_token"}` at `/metrics`.
    pub async fn refreshes(&self) -> u64 {
        let text = reqwest::Client::new()
            .get(format!("{}/metrics", self.running.public_url))
            .bearer_auth(&self.admin_token)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix("sesame_tokens_issued_total{grant_type=\"refresh_token\"} "))
            .map_or(0, |n| n.trim().parse().unwrap())
    }

    pub async fn userinfo(&self, token: &str) -> (u16, serde_json::Value) {
        let resp = reqwest::Client::new()
            .get(format!("{}/userinfo", self.issuer))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or_default())
    }

    pub fn read_credentials(&self) -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(self.credentials_path()).unwrap()).unwrap()
    }

    /// Rewrites the cached credentials of `profile` (keeping the file's mode).
    pub fn edit_credentials(&self, profile: &str, edit: impl FnOnce(&mut serde_json::Value)) {
        let mut all = self.read_credentials();
        edit(&mut all["profiles"][profile]);
        std::fs::write(self.credentials_path(), serde_json::to_vec(&all).unwrap()).unwrap();
    }
}

pub type Lines = tokio::io::Lines<BufReader<tokio::process::ChildStderr>>;

pub async fn rest_of(mut lines: Lines) -> String {
    let mut out = String::new();
    while let Ok(Some(l)) = lines.next_line().await {
        out.push_str(&l);
        out.push('\n');
    }
    out
}

/// The person's browser: follows the authorization URL, signs in as alice, answers the
/// consent page, and returns the `Location` the issuer redirects to at the end.
pub async fn browser(url: &str, allow: bool) -> String {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut jar: BTreeMap<String, String> = BTreeMap::new();
    let base = url.split("/authorize?").next().unwrap().to_owned();
    let mut send = async |req: reqwest::RequestBuilder| {
        let cookies: Vec<String> = jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let resp = req.header("cookie", cookies.join("; ")).send().await.unwrap();
        for sc in resp.headers().get_all("set-cookie") {
            let sc = sc.to_str().unwrap();
            if let Some((k, v)) = sc.split(';').next().and_then(|p| p.split_once('=')) {
                jar.insert(k.to_owned(), v.to_owned());
            }
        }
        let status = resp.status().as_u16();
        let location = resp
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_owned());
        (status, location, resp.text().await.unwrap())
    };
    let (mut status, mut location, mut page) = send(http.get(url)).await;
    let mut seen_login = false;
    for _ in 0..6 {
        if status == 303 {
            let to = location.clone().unwrap();
            // Sesame's own pages (back to /authorize after signing in) are followed; the first
            // redirect elsewhere is the answer to the client.
            if !to.starts_with(&format!("{base}/authorize")) {
                assert!(seen_login, "signed in before leaving");
                return to;
            }
            (status, location, page) = send(http.get(&to)).await;
        } else if page.contains("name=\"password\"") {
            seen_login = true;
            (status, location, page) = send(http.post(format!("{base}/login")).form(&[
                ("csrf", hidden(&page, "csrf").as_str()),
                ("request", hidden(&page, "request").as_str()),
                ("username", "alice"),
                ("password", PW),
            ]))
            .await;
        } else if page.contains("name=\"decision\"") {
            (status, location, page) = send(http.post(format!("{base}/consent")).form(&[
                ("csrf", hidden(&page, "csrf").as_str()),
                ("request", hidden(&page, "request").as_str()),
                ("decision", if allow { "allow" } else { "deny" }),
            ]))
            .await;
        } else {
            panic!("an unexpected page ({status}): {page}");
        }
    }
    panic!("the sign-in went round in circles: {page}");
}

/// The value of a hidden field, with the HTML escapes askama writes undone.
pub fn hidden(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {page}"))
        + marker.len();
    let len = page[start..].find('"').unwrap();
    page[start..start + len]
        .replace("&#43;", "+")
        .replace("&#x2b;", "+")
        .replace("&#x2f;", "/")
        .replace("&#47;", "/")
        .replace("&#61;", "=")
        .replace("&#x3d;", "=")
        .replace("&quot;", "\"")
        .replace("&#34;", "\"")
        .replace("&amp;", "&")
}

pub fn query_param(url: &str, name: &str) -> Option<String> {
    reqwest::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// `sesame login` through the loopback redirect, with the test as the browser.
pub async fn login_loopback(s: &Server, extra: &[&str]) {
    let mut args = vec!["login", "--issuer", &s.issuer, "--client-id", &s.client_id];
    args.extend_from_slice(extra);
    let (mut child, url, lines) = s.start(&args).await;
    let redirect = browser(&url, true).await;
    assert!(redirect.starts_with("http://127.0.0.1:"), "{redirect}");
    assert!(redirect.contains("/callback?"), "{redirect}");
    let page = reqwest::get(&redirect).await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("You may close this tab"));
    let status = child.wait().await.unwrap();
    let err = rest_of(lines).await;
    assert!(status.success(), "{err}");
}
