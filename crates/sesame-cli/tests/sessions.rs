//! `sesame sessions create|list|revoke` on the person's cached sign-in (`sesame login`), against
//! a real sesamed started in-process: a job client binds the session the CLI created, the list
//! shows it, revoking it ends the job's token at once, and another revocation, or a profile that
//! is not signed in, is an error that says so. The test plays the person's browser as
//! `tests/signin.rs` does (its helpers are copied here).

use sesame_server::bootstrap::AdminToken;
use sesame_store::testing::TestDb;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use tokio::io::{AsyncBufReadExt, BufReader};

const PW: &str = "correct horse battery";

struct Server {
    running: sesame_server::Running,
    admin_token: String,
    issuer: String,
    client_id: String,
    config_root: tempfile::TempDir,
    _db: TestDb,
    _dir: tempfile::TempDir,
}

/// A sesamed with user `alice` and a public client registered for terminal sign-in (loopback
/// and `/oob` redirect URIs, code and refresh grants, consent shown).
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
        _db: db,
        _dir: dir,
    }
}

impl Server {
    /// Not created by the test: `sesame` creates it, private.
    fn config_dir(&self) -> PathBuf {
        self.config_root.path().join("sesame")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_sesame"));
        c.args(args)
            .env("SESAME_CONFIG_DIR", self.config_dir())
            // `$BROWSER` is the command that opens the URL: `true` opens nothing, the test is
            // the browser.
            .env("BROWSER", "true")
            // The person's own keyring is never touched by a test (tests/keyring.rs uses one).
            .env("SESAME_CREDENTIAL_STORE", "file")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    /// Runs `sesame ARGS` to the end: (status, stdout, stderr).
    async fn sesame(&self, args: &[&str]) -> (i32, String, String) {
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
    async fn start(&self, args: &[&str]) -> (tokio::process::Child, String, Lines) {
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
}

type Lines = tokio::io::Lines<BufReader<tokio::process::ChildStderr>>;

async fn rest_of(mut lines: Lines) -> String {
    let mut out = String::new();
    while let Ok(Some(l)) = lines.next_line().await {
        out.push_str(&l);
        out.push('\n');
    }
    out
}

/// The person's browser: follows the authorization URL, signs in as alice, answers the
/// consent page, and returns the `Location` the issuer redirects to at the end.
async fn browser(url: &str, allow: bool) -> String {
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
fn hidden(page: &str, name: &str) -> String {
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

/// `sesame login` through the loopback redirect, with the test as the browser.
async fn login_loopback(s: &Server, extra: &[&str]) {
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

const SESSION_NONCE: &str = "urn:sesame:params:oauth:grant-type:session-nonce";

/// A confidential job client with the delegated-session grants; (id, secret).
async fn job_client(s: &Server) -> (String, String) {
    let resp = reqwest::Client::new()
        .post(format!(
            "{}/admin/v1/tenants/default/clients",
            s.running.public_url
        ))
        .bearer_auth(&s.admin_token)
        .json(&serde_json::json!({
            "name": "nightly job",
            "grant_types": [SESSION_NONCE, "urn:sesame:params:oauth:grant-type:session-key"],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let v: serde_json::Value = resp.json().await.unwrap();
    (
        v["client"]["client_id"].as_str().unwrap().to_owned(),
        v["client_secret"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_person_creates_lists_and_revokes_a_delegated_session_from_the_cli() {
    let s = server().await;
    login_loopback(&s, &[]).await;
    let (job, job_secret) = job_client(&s).await;

    let (code, out, err) = s
        .sesame(&[
            "sessions", "create", "--client", &job, "--scope", "openid", "--json",
        ])
        .await;
    assert_eq!(code, 0, "{err}");
    let created: serde_json::Value = serde_json::from_str(&out).unwrap();
    let id = created["session_id"].as_str().unwrap().to_owned();
    assert_eq!(created["client_id"], job.as_str());
    assert_eq!(created["scope"], "openid");

    // The job binds the nonce with its own credentials.
    let http = reqwest::Client::new();
    let bound = http
        .post(format!("{}/token", s.issuer))
        .basic_auth(&job, Some(&job_secret))
        .form(&[
            ("grant_type", SESSION_NONCE),
            ("nonce", created["nonce"].as_str().unwrap()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(bound.status(), 200);
    let bound: serde_json::Value = bound.json().await.unwrap();
    let job_token = bound["access_token"].as_str().unwrap().to_owned();
    let userinfo = |token: String| {
        let http = http.clone();
        let url = format!("{}/userinfo", s.issuer);
        async move {
            http.get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(userinfo(job_token.clone()).await, 200);

    let (code, out, err) = s.sesame(&["sessions", "list"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&id) && out.contains(&job), "{out}");
    let (code, out, _) = s.sesame(&["sessions", "list", "--json"]).await;
    assert_eq!(code, 0);
    let listed: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(listed["sessions"][0]["id"], id.as_str(), "{listed}");

    let (code, out, err) = s.sesame(&["sessions", "revoke", &id]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&id), "{out}");
    // The job's token ends with the session, at once.
    assert_eq!(userinfo(job_token).await, 401);
    let (code, out, _) = s.sesame(&["sessions", "list"]).await;
    assert_eq!(code, 0);
    assert!(out.contains("No delegated sessions"), "{out}");

    // Revoking it again, or a session that is not the person's, is an error that names it.
    let (code, _, err) = s.sesame(&["sessions", "revoke", &id]).await;
    assert_eq!(code, 1);
    assert!(err.contains("not_found"), "{err}");
    // A scope wider than the person's sign-in is refused by the issuer.
    let (code, _, err) = s
        .sesame(&[
            "sessions",
            "create",
            "--client",
            &job,
            "--scope",
            "openid admin:everything",
        ])
        .await;
    assert_eq!(code, 1);
    assert!(err.contains("invalid_scope") || err.contains("scope"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_profile_that_is_not_signed_in_is_told_to_log_in() {
    let s = server().await;
    let (code, _, err) = s.sesame(&["sessions", "list", "--profile", "nobody"]).await;
    assert_eq!(code, 1);
    assert!(
        err.contains("not signed in") && err.contains("sesame login"),
        "{err}"
    );
}
