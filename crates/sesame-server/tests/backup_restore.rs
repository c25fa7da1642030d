//! Backup and restore as docs/production.md tells an operator: `sesamed backup` while the server
//! runs, plus the master key; wipe; put both back; the old refresh token still refreshes and the
//! signing keys (hence every token already issued) are the same. And a restore with another
//! master key refuses to start.

use reqwest::StatusCode;
use serde_json::{json, Value};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const PASSWORD: &str = "a long enough password";
// RFC 7636 appendix B's verifier and its S256 challenge.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const CB: &str = "https://app.example/cb";

struct Sesamed {
    child: Child,
    base: String,
}

fn command(sub: &str, data: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sesamed"));
    cmd.arg(sub).arg("--data-dir").arg(data);
    for var in [
        "SESAME_STORE",
        "SESAME_MASTER_KEY",
        "SESAME_DATA_DIR",
        "SESAME_LISTEN",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

async fn spawn(data: &Path) -> Result<Sesamed, String> {
    let mut cmd = command("serve", data);
    cmd.args([
        "--dev",
        "--listen",
        "127.0.0.1:0",
        "--public-url",
        "http://id.example.test",
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .kill_on_drop(true);
    let mut child = cmd.spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut base = None;
    let read = async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(rest) = line.strip_prefix("Sesame is listening on ") {
                base = rest.split(' ').next().map(|a| format!("http://{a}"));
            }
            if line.contains("curl -u") {
                return true;
            }
        }
        false
    };
    if !tokio::time::timeout(Duration::from_secs(30), read)
        .await
        .unwrap_or(false)
    {
        let out = child.wait_with_output().await.unwrap();
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(Sesamed {
        child,
        base: base.unwrap(),
    })
}

impl Sesamed {
    async fn stop(mut self) {
        let pid = self.child.id().unwrap().to_string();
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        let status = tokio::time::timeout(Duration::from_secs(15), self.child.wait())
            .await
            .unwrap()
            .unwrap();
        assert!(status.success());
    }
}

async fn admin(s: &Sesamed, token: &str, path: &str, body: Value) -> Value {
    let resp = reqwest::Client::new()
        .post(format!("{}/admin/v1{path}", s.base))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    resp.json().await.unwrap()
}

async fn token_request(s: &Sesamed, client: &(String, String), form: &[(&str, &str)]) -> (StatusCode, Value) {
    let resp = reqwest::Client::new()
        .post(format!("{}/t/default/token", s.base))
        .basic_auth(&client.0, Some(&client.1))
        .form(form)
        .send()
        .await
        .unwrap();
    (resp.status(), resp.json().await.unwrap_or(Value::Null))
}

/// Signs alice in through the login page and redeems the code: the token response.
async fn sign_in(s: &Sesamed, client: &(String, String)) -> Value {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let issuer = format!("{}/t/default", s.base);
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("client_id", client.0.as_str()),
            ("redirect_uri", CB),
            ("response_type", "code"),
            ("scope", "openid offline_access"),
            ("state", "st"),
            ("code_challenge", CHALLENGE),
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
        body[start..start + len].to_owned()
    };
    let done = http
        .post(format!("{issuer}/login"))
        .header("cookie", cookies.join("; "))
        .form(&[
            ("csrf", hidden("csrf").as_str()),
            ("request", hidden("request").as_str()),
            ("username", "alice"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    let location = done.headers()["location"].to_str().unwrap().to_owned();
    let code = form_urlencoded::parse(location.split_once('?').unwrap().1.as_bytes())
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .expect("a code");
    let (status, tokens) = token_request(
        s,
        client,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CB),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    tokens
}

async fn kids(s: &Sesamed) -> Vec<String> {
    let jwks: Value = reqwest::get(format!("{}/t/default/jwks", s.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut kids: Vec<String> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect();
    kids.sort();
    kids
}

async fn active(s: &Sesamed, client: &(String, String), token: &str) -> bool {
    let resp = reqwest::Client::new()
        .post(format!("{}/t/default/introspect", s.base))
        .basic_auth(&client.0, Some(&client.1))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    body["active"] == true
}

#[tokio::test]
async fn a_backup_and_the_master_key_restore_sign_ins_keys_and_refresh_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let s = spawn(&data).await.unwrap();
    let admin_token = std::fs::read_to_string(data.join("admin-token"))
        .unwrap()
        .trim()
        .to_owned();
    let created = admin(
        &s,
        &admin_token,
        "/tenants/default/clients",
        json!({"name": "app", "redirect_uris": [CB], "first_party": true,
               "grant_types": ["authorization_code", "refresh_token"]}),
    )
    .await;
    let client = (
        created["client"]["client_id"].as_str().unwrap().to_owned(),
        created["client_secret"].as_str().unwrap().to_owned(),
    );
    admin(
        &s,
        &admin_token,
        "/tenants/default/users",
        json!({"username": "alice", "password": PASSWORD}),
    )
    .await;
    let tokens = sign_in(&s, &client).await;
    let refresh = tokens["refresh_token"]
        .as_str()
        .expect("a refresh token")
        .to_owned();
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let keys_before = kids(&s).await;

    // The backup, taken while sesamed runs (it holds the store's lock; backup needs none).
    let backup_dir = dir.path().join("backup");
    std::fs::create_dir(&backup_dir).unwrap();
    let out = command("backup", &data)
        .arg("--out")
        .arg(backup_dir.join("sesame.db"))
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(backup_dir.join("sesame.db"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "the backup is owner-only");
    }
    std::fs::copy(data.join("master.key"), backup_dir.join("master.key")).unwrap();
    // A second backup never overwrites the first.
    let again = command("backup", &data)
        .arg("--out")
        .arg(backup_dir.join("sesame.db"))
        .output()
        .await
        .unwrap();
    assert!(!again.status.success());

    // Wipe.
    s.stop().await;
    std::fs::remove_dir_all(&data).unwrap();

    // A restore with another master key refuses to start and changes nothing.
    let wrong = dir.path().join("wrong");
    std::fs::create_dir(&wrong).unwrap();
    std::fs::copy(backup_dir.join("sesame.db"), wrong.join("sesame.db")).unwrap();
    std::fs::write(
        wrong.join("master.key"),
        sesame_core::crypto::MasterKey::generate().1,
    )
    .unwrap();
    let err = spawn(&wrong).await.err().expect("refused");
    assert!(err.contains("does not match"), "{err}");

    // Restore: the database file and the master key, back where they were.
    std::fs::create_dir(&data).unwrap();
    std::fs::copy(backup_dir.join("sesame.db"), data.join("sesame.db")).unwrap();
    std::fs::copy(backup_dir.join("master.key"), data.join("master.key")).unwrap();
    let s = spawn(&data).await.unwrap();
    assert_eq!(kids(&s).await, keys_before, "the same signing keys");
    assert!(
        active(&s, &client, &access).await,
        "a token issued before the backup verifies"
    );
    let (status, refreshed) = token_request(
        &s,
        &client,
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
    )
    .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the old refresh token refreshes: {refreshed}"
    );
    assert!(active(&s, &client, refreshed["access_token"].as_str().unwrap()).await);
    s.stop().await;
}
