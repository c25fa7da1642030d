//! `sesame login --device` (RFC 8628) against a real sesamed started in-process. The test
//! plays the person's browser with reqwest on `/device` while the CLI polls: approval, denial,
//! expiry, and a client that did not opt in, each with the message the person sees.

use sesame_server::bootstrap::AdminToken;
use sesame_store::testing::TestDb;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};

const PW: &str = "correct horse battery";

struct Server {
    running: sesame_server::Running,
    issuer: String,
    config_root: tempfile::TempDir,
    _db: TestDb,
    _dir: tempfile::TempDir,
}

/// A sesamed with user `alice` and public clients `device-cli` (device and refresh grants) and
/// `web-only` (authorization code only); device codes live `ttl` seconds.
async fn server(ttl: Option<i64>) -> Server {
    let db = TestDb::sqlite();
    let dir = tempfile::tempdir().unwrap();
    let config = sesame_server::config::Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.path().to_path_buf(),
        store: Some(db.url.as_str().to_owned()),
        master_key: Some(sesame_core::crypto::MasterKey::generate().1),
        device_code_ttl: ttl,
        ..Default::default()
    };
    let running = sesame_server::start(&config, false).await.unwrap();
    let AdminToken::Created(t, _) = &running.admin_token else {
        panic!("fresh store")
    };
    let admin_token = t.expose().to_owned();
    let issuer = running.issuer("default");
    let http = reqwest::Client::new();
    for (path, body) in [
        (
            "/tenants/default/users",
            serde_json::json!({"username": "alice", "password": PW, "email": "alice@example.com"}),
        ),
        (
            "/tenants/default/clients",
            serde_json::json!({"client_id": "device-cli", "name": "Device CLI", "client_type": "public",
                "grant_types": ["device_code", "refresh_token"]}),
        ),
        (
            "/tenants/default/clients",
            serde_json::json!({"client_id": "web-only", "name": "Web only", "client_type": "public",
                "grant_types": ["authorization_code"], "redirect_uris": ["http://127.0.0.1/callback"]}),
        ),
    ] {
        let resp = http
            .post(format!("{}/admin/v1{path}", running.public_url))
            .bearer_auth(&admin_token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
    }
    Server {
        running,
        issuer,
        config_root: tempfile::tempdir().unwrap(),
        _db: db,
        _dir: dir,
    }
}

type Lines = tokio::io::Lines<BufReader<tokio::process::ChildStderr>>;

impl Server {
    fn config_dir(&self) -> PathBuf {
        self.config_root.path().join("sesame")
    }

    /// Runs `sesame ARGS` to the end off the runtime, which serves sesamed meanwhile.
    async fn output(&self, args: &[&str]) -> std::process::Output {
        let mut c = self.command(args);
        tokio::task::spawn_blocking(move || c.output().unwrap())
            .await
            .unwrap()
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_sesame"));
        c.args(args)
            .env("SESAME_CONFIG_DIR", self.config_dir())
            .env("BROWSER", "true")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    /// Starts `sesame login --device` and reads its stderr up to the user code it prints:
    /// (child, verification URI, user code, the rest of stderr).
    async fn start_login(&self, client: &str) -> (tokio::process::Child, String, String, Lines) {
        let args = [
            "login",
            "--device",
            "--issuer",
            &self.issuer,
            "--client-id",
            client,
            "--scope",
            "openid offline_access",
        ];
        let mut c = tokio::process::Command::from(self.command(&args));
        c.kill_on_drop(true);
        let mut child = c.spawn().unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let (mut seen, mut uri, mut code) = (String::new(), None, None);
        while code.is_none() {
            let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
                .await
                .unwrap_or_else(|_| panic!("no code printed; so far: {seen}"))
                .unwrap()
                .unwrap_or_else(|| panic!("stderr ended without a code: {seen}"));
            seen.push_str(&line);
            seen.push('\n');
            let line = line.trim();
            if line == format!("{}/device", self.issuer) {
                uri = Some(line.to_owned());
            } else if uri.is_some() && line.len() == 9 && line.as_bytes()[4] == b'-' {
                code = Some(line.to_owned());
            }
        }
        (child, uri.unwrap(), code.unwrap(), lines)
    }
}

async fn finish(child: tokio::process::Child, mut lines: Lines) -> (i32, String) {
    let mut rest = String::new();
    while let Ok(Some(l)) = lines.next_line().await {
        rest.push_str(&l);
        rest.push('\n');
    }
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("sesame exits")
        .unwrap();
    (out.status.code().unwrap_or(-1), rest)
}

/// The person: opens the verification URI, signs in as alice, types the code, decides.
async fn person(uri: &str, code: &str, allow: bool) {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut jar: BTreeMap<String, String> = BTreeMap::new();
    let mut page = String::new();
    let hidden = |page: &str, name: &str| {
        let marker = format!("name=\"{name}\" value=\"");
        let start = page.find(&marker).unwrap_or_else(|| panic!("no {name}: {page}")) + marker.len();
        let len = page[start..].find('"').unwrap();
        page[start..start + len]
            .replace("&#43;", "+")
            .replace("&#47;", "/")
            .replace("&#61;", "=")
    };
    let steps: [Option<Vec<(&str, &str)>>; 4] = [
        None,
        Some(vec![("username", "alice"), ("password", PW)]),
        Some(vec![("user_code", code)]),
        Some(vec![("decision", if allow { "allow" } else { "deny" })]),
    ];
    for step in steps {
        let cookies = jar
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let req = match step {
            None => http.get(uri),
            Some(fields) => {
                let (csrf, request) = (hidden(&page, "csrf"), hidden(&page, "request"));
                let mut form = vec![("csrf", csrf.as_str()), ("request", request.as_str())];
                form.extend(fields);
                let body = form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(form)
                    .finish();
                http.post(uri)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(body)
            }
        };
        let req = if cookies.is_empty() {
            req
        } else {
            req.header("cookie", cookies)
        };
        let resp = req.send().await.unwrap();
        for sc in resp.headers().get_all("set-cookie") {
            let sc = sc.to_str().unwrap();
            if let Some((k, v)) = sc.split(';').next().and_then(|p| p.split_once('=')) {
                jar.insert(k.to_owned(), v.to_owned());
            }
        }
        assert_eq!(resp.status(), 200);
        page = resp.text().await.unwrap();
    }
    let want = if allow {
        "Device connected"
    } else {
        "Request denied"
    };
    assert!(page.contains(want), "{page}");
}

#[tokio::test]
async fn login_device_polls_while_the_person_approves_then_token_works() {
    let s = server(None).await;
    let (child, uri, code, lines) = s.start_login("device-cli").await;
    person(&uri, &code, true).await;
    let (status, stderr) = finish(child, lines).await;
    assert_eq!(status, 0, "{stderr}");
    assert!(stderr.contains("Signed in to"), "{stderr}");
    let out = s.output(&["token"]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8(out.stdout).unwrap();
    let resp = reqwest::Client::new()
        .get(format!("{}/userinfo", s.issuer))
        .bearer_auth(token.trim())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // The profile remembers the issuer and client: `sesame login --device` again needs no flags.
    let profiles = std::fs::read_to_string(s.config_dir().join("config.toml")).unwrap();
    assert!(profiles.contains("device-cli"), "{profiles}");
    drop(s.running);
}

#[tokio::test]
async fn login_device_says_when_the_person_denied() {
    let s = server(None).await;
    let (child, uri, code, lines) = s.start_login("device-cli").await;
    person(&uri, &code, false).await;
    let (status, stderr) = finish(child, lines).await;
    assert_ne!(status, 0);
    assert!(
        stderr.contains("denied in the browser; run `sesame login --device` again"),
        "{stderr}"
    );
    assert!(!s.config_dir().join("credentials.json").exists());
}

#[tokio::test]
async fn login_device_says_when_the_code_expired() {
    let s = server(Some(2)).await;
    let (child, _, _, lines) = s.start_login("device-cli").await;
    let (status, stderr) = finish(child, lines).await;
    assert_ne!(status, 0);
    assert!(
        stderr.contains(
            "the device code expired before the sign-in was approved; run `sesame login --device` again"
        ),
        "{stderr}"
    );
}

#[tokio::test]
async fn login_device_names_the_fix_for_a_client_that_did_not_opt_in() {
    let s = server(None).await;
    let out = s
        .output(&[
            "login",
            "--device",
            "--issuer",
            &s.issuer,
            "--client-id",
            "web-only",
        ])
        .await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("may not use the device flow") && stderr.contains("--grant-type device_code"),
        "{stderr}"
    );
}
