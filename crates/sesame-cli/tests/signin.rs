//! `sesame login`, `token`, `whoami`, `logout` and `profiles` against a real sesamed started
//! in-process. The test plays the person's browser with reqwest: it follows the URL the CLI
//! prints, submits the login and consent forms (with their CSRF cookie and field), and follows
//! the redirect back to the CLI's loopback listener or reads the code `/oob` would show.

use sesame_server::bootstrap::AdminToken;
use sesame_store::testing::TestDb;
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

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

    fn credentials_path(&self) -> PathBuf {
        self.config_dir().join("credentials.json")
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

    /// `sesame_tokens_issued_total{grant_type="refresh_token"}` at `/metrics`.
    async fn refreshes(&self) -> u64 {
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

    async fn userinfo(&self, token: &str) -> (u16, serde_json::Value) {
        let resp = reqwest::Client::new()
            .get(format!("{}/userinfo", self.issuer))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or_default())
    }

    fn read_credentials(&self) -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(self.credentials_path()).unwrap()).unwrap()
    }

    /// Rewrites the cached credentials of `profile` (keeping the file's mode).
    fn edit_credentials(&self, profile: &str, edit: impl FnOnce(&mut serde_json::Value)) {
        let mut all = self.read_credentials();
        edit(&mut all["profiles"][profile]);
        std::fs::write(self.credentials_path(), serde_json::to_vec(&all).unwrap()).unwrap();
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

fn query_param(url: &str, name: &str) -> Option<String> {
    reqwest::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
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

#[tokio::test(flavor = "multi_thread")]
async fn loopback_sign_in_then_token_is_accepted_by_userinfo_and_whoami_names_the_person() {
    let s = server().await;
    login_loopback(&s, &[]).await;

    let (code, token, err) = s.sesame(&["token"]).await;
    assert_eq!(code, 0, "{err}");
    let (status, info) = s.userinfo(token.trim()).await;
    assert_eq!(status, 200, "{info}");
    assert_eq!(info["preferred_username"], "alice");

    let (code, out, err) = s.sesame(&["whoami"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("alice@example.com") && out.contains("Alice Example"),
        "{out}"
    );
    assert!(out.contains(&s.issuer), "{out}");

    // The credentials file is the person's alone; the config remembers the profile.
    let mode = std::fs::metadata(s.credentials_path())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let dir_mode = std::fs::metadata(s.config_dir()).unwrap().permissions().mode();
    assert_eq!(dir_mode & 0o077, 0, "the directory is private too");
    let (code, out, _) = s.sesame(&["profiles", "show", "default"]).await;
    assert_eq!(code, 0);
    assert!(out.contains(&s.issuer) && out.contains("sesame-cli"), "{out}");
    assert!(
        out.contains("openid profile email offline_access") && out.contains("signed in"),
        "{out}"
    );

    // A second `sesame login` needs no flags: the profile remembers issuer, client and scopes.
    let (mut child, url, lines) = s.start(&["login"]).await;
    assert_eq!(query_param(&url, "client_id").as_deref(), Some("sesame-cli"));
    let redirect = browser(&url, true).await;
    reqwest::get(&redirect).await.unwrap();
    assert!(child.wait().await.unwrap().success(), "{}", rest_of(lines).await);

    // `--format k8s` is an ExecCredential kubectl accepts; `json` carries the expiry.
    let (code, out, err) = s.sesame(&["token", "--format", "k8s"]).await;
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["apiVersion"], "client.authentication.k8s.io/v1");
    assert_eq!(v["kind"], "ExecCredential");
    let stamp = v["status"]["expirationTimestamp"].as_str().unwrap();
    assert!(stamp.len() == 20 && stamp.ends_with('Z'), "{stamp}");
    let (code, out, _) = s.sesame(&["token", "--format", "json"]).await;
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["token_type"], "Bearer");
    assert!(v["expires_at"].as_i64().unwrap() > sesame_client::now() + 60);
    assert_eq!(s.userinfo(v["access_token"].as_str().unwrap()).await.0, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pasted_code_signs_in_after_a_wrong_one_is_refused() {
    let s = server().await;
    let (mut child, url, lines) = s
        .start(&[
            "login",
            "--issuer",
            &s.issuer,
            "--client-id",
            &s.client_id,
            "--no-browser",
        ])
        .await;
    assert_eq!(
        query_param(&url, "redirect_uri").as_deref(),
        Some(format!("{}/oob", s.issuer).as_str())
    );
    let redirect = browser(&url, true).await;
    assert!(redirect.starts_with(&format!("{}/oob?", s.issuer)), "{redirect}");
    let code = query_param(&redirect, "code").unwrap();
    // What the person sees on /oob is that code.
    let page = reqwest::get(&redirect).await.unwrap().text().await.unwrap();
    assert!(page.contains(&code), "{page}");

    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"not-the-code\n").await.unwrap();
    stdin.write_all(format!("  {code}\n").as_bytes()).await.unwrap();
    drop(stdin);
    let status = child.wait().await.unwrap();
    let err = rest_of(lines).await;
    assert!(status.success(), "{err}");
    assert!(err.contains("That code was not accepted"), "{err}");
    assert!(!err.contains(&code), "the code is not echoed: {err}");
    let (code, token, err) = s.sesame(&["token"]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(s.userinfo(token.trim()).await.0, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn ten_token_processes_after_expiry_refresh_once_and_print_the_same_token() {
    let s = server().await;
    login_loopback(&s, &[]).await;
    let old = s.read_credentials()["profiles"]["default"]["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    // As if the hour had passed.
    s.edit_credentials("default", |c| c["expires_at"] = (sesame_client::now() - 5).into());
    let before = s.refreshes().await;

    let children: Vec<_> = (0..10).map(|_| s.command(&["token"]).spawn().unwrap()).collect();
    let outputs = tokio::task::spawn_blocking(move || {
        children
            .into_iter()
            .map(|c| c.wait_with_output().unwrap())
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    let mut tokens = Vec::new();
    for out in &outputs {
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        tokens.push(String::from_utf8(out.stdout.clone()).unwrap());
    }
    assert!(tokens.iter().all(|t| *t == tokens[0]), "{tokens:?}");
    let token = tokens[0].trim();
    assert_ne!(token, old);
    assert_eq!(
        s.refreshes().await,
        before + 1,
        "exactly one refresh at the server"
    );
    assert_eq!(s.userinfo(token).await.0, 200);

    // Once the refresh token is revoked, `sesame token` says so and names the command to run.
    let refresh = s.read_credentials()["profiles"]["default"]["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let resp = reqwest::Client::new()
        .post(format!("{}/revoke", s.issuer))
        .form(&[("token", refresh.as_str()), ("client_id", "sesame-cli")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    s.edit_credentials("default", |c| c["expires_at"] = (sesame_client::now() - 5).into());
    let (code, _, err) = s.sesame(&["token"]).await;
    assert_eq!(code, 1);
    assert!(
        err.contains("has ended") && err.contains("run `sesame login`"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_credentials_file_others_can_read_is_refused_and_a_torn_write_is_never_read() {
    let s = server().await;
    login_loopback(&s, &[]).await;
    let (_, token, _) = s.sesame(&["token"]).await;
    let path = s.credentials_path();

    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, out, err) = s.sesame(&["token"]).await;
    assert_eq!((code, out.as_str()), (1, ""));
    assert!(err.contains(&format!("chmod 600 '{}'", path.display())), "{err}");
    for args in [&["whoami"][..], &["logout"], &["profiles", "list"]] {
        let (code, _, err) = s.sesame(args).await;
        assert_eq!(code, 1, "{args:?}");
        assert!(err.contains("chmod 600"), "{args:?}: {err}");
    }
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();

    // A crash mid-write leaves a temporary file beside the cache; it is never read.
    let full = std::fs::read(&path).unwrap();
    let torn = s.config_dir().join(".credentials.json.4242.00ff00ff00ff00ff.tmp");
    std::fs::write(&torn, &full[..full.len() / 2]).unwrap();
    let (code, again, err) = s.sesame(&["token"]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(again, token);
    // …and a write replaces the file whole, never in place.
    s.edit_credentials("default", |c| c["expires_at"] = (sesame_client::now() - 5).into());
    let (code, _, err) = s.sesame(&["token"]).await;
    assert_eq!(code, 0, "{err}");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(serde_json::from_slice::<serde_json::Value>(&std::fs::read(&path).unwrap()).is_ok());
    let leftovers: Vec<_> = std::fs::read_dir(s.config_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".tmp") && !n.contains("4242"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // A cache that is not JSON at all is reported, with what to do.
    std::fs::write(&path, &full[..full.len() / 2]).unwrap();
    let (code, _, err) = s.sesame(&["token"]).await;
    assert_eq!(code, 1);
    assert!(
        err.contains("cannot be read") && err.contains("sesame login"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn logout_revokes_the_grant_then_forgets_it_and_works_offline_with_a_warning() {
    let s = server().await;
    login_loopback(&s, &[]).await;
    let creds = s.read_credentials()["profiles"]["default"].clone();
    let refresh = creds["refresh_token"].as_str().unwrap().to_owned();
    let (code, _, err) = s.sesame(&["logout"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("warning"), "{err}");
    // Revoking the refresh token ended the grant: neither it nor its access token works.
    let resp = reqwest::Client::new()
        .post(format!("{}/token", s.issuer))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh.as_str()),
            ("client_id", "sesame-cli"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(s.userinfo(creds["access_token"].as_str().unwrap()).await.0, 401);
    let (code, _, err) = s.sesame(&["token"]).await;
    assert_eq!(code, 1);
    assert!(
        err.contains("not signed in") && err.contains("sesame login"),
        "{err}"
    );
    // The profile stays, signed out.
    let (_, out, _) = s.sesame(&["profiles", "list"]).await;
    assert!(
        out.starts_with("default\t") && out.contains("signed out"),
        "{out}"
    );

    // Offline: the issuer cannot be reached, so the local copy goes with a warning.
    login_loopback(&s, &["--profile", "work"]).await;
    s.edit_credentials("work", |c| c["issuer"] = "http://127.0.0.1:9/t/default".into());
    let (code, _, err) = s.sesame(&["logout", "--profile", "work"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("warning: could not revoke"), "{err}");
    assert!(s.read_credentials()["profiles"].get("work").is_none());

    let (code, _, _) = s.sesame(&["profiles", "remove", "work"]).await;
    assert_eq!(code, 0);
    let (code, _, err) = s.sesame(&["profiles", "show", "work"]).await;
    assert_eq!(code, 1);
    assert!(err.contains("no profile"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn errors_a_person_can_act_on() {
    let s = server().await;
    let login = |issuer: &str| {
        vec![
            "login".to_owned(),
            "--issuer".to_owned(),
            issuer.to_owned(),
            "--client-id".to_owned(),
            s.client_id.clone(),
        ]
    };
    let run = async |args: Vec<String>| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, _, err) = s.sesame(&args).await;
        assert_eq!(code, 1, "{err}");
        err
    };

    // Mix-up defence: the document names another issuer (here: the same server reached by
    // another name, or with a trailing slash); nothing is sent to its endpoints.
    let other_name = s.issuer.replace("127.0.0.1", "localhost");
    let err = run(login(&other_name)).await;
    assert!(
        err.contains(&format!("names the issuer \"{}\"", s.issuer)),
        "{err}"
    );
    let err = run(login(&format!("{}/", s.issuer))).await;
    assert!(err.contains("names the issuer"), "{err}");
    assert!(
        !s.config_dir().join("config.toml").exists(),
        "no profile is saved"
    );

    // Nothing listens there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let err = run(login(&format!("http://127.0.0.1:{port}/t/default"))).await;
    assert!(err.contains("cannot reach"), "{err}");

    // TLS to a server that does not speak it.
    let err = run(login(&s.issuer.replace("http://", "https://"))).await;
    assert!(err.contains("TLS error"), "{err}");

    // Not an issuer at all.
    let err = run(login(&format!("{}/t/nope", s.running.public_url))).await;
    assert!(err.contains("unexpected answer"), "{err}");

    // Nobody comes back from the browser.
    let mut args = login(&s.issuer);
    args.extend(["--timeout".to_owned(), "1".to_owned()]);
    let err = run(args).await;
    assert!(
        err.contains("no sign-in arrived from the browser within 1 s"),
        "{err}"
    );

    // The person declines on the consent page.
    let (mut child, url, lines) = s
        .start(&["login", "--issuer", &s.issuer, "--client-id", &s.client_id])
        .await;
    let redirect = browser(&url, false).await;
    let page = reqwest::get(&redirect).await.unwrap().text().await.unwrap();
    assert!(page.contains("You declined"), "{page}");
    assert_eq!(child.wait().await.unwrap().code(), Some(1));
    let err = rest_of(lines).await;
    assert!(err.contains("declined (access_denied)"), "{err}");

    // A forged callback (wrong state) is answered and ignored; the real one still works.
    let (mut child, url, lines) = s
        .start(&["login", "--issuer", &s.issuer, "--client-id", &s.client_id])
        .await;
    let redirect = browser(&url, true).await;
    let state = query_param(&redirect, "state").unwrap();
    let forged = redirect.replace(&state, "forged-state");
    assert_eq!(reqwest::get(&forged).await.unwrap().status(), 400);
    let wrong_iss = redirect.replace(
        &format!(
            "iss={}",
            form_urlencoded::byte_serialize(s.issuer.as_bytes()).collect::<String>()
        ),
        "iss=https%3A%2F%2Fevil.example",
    );
    assert_ne!(wrong_iss, redirect);
    // A response from another issuer ends the sign-in (RFC 9207).
    assert_eq!(reqwest::get(&wrong_iss).await.unwrap().status(), 400);
    assert_eq!(child.wait().await.unwrap().code(), Some(1));
    let err = rest_of(lines).await;
    assert!(
        err.contains("came from the issuer \"https://evil.example\""),
        "{err}"
    );

    // A second login with no flags and no profile says what is missing.
    let err = run(vec!["login".into()]).await;
    assert!(err.contains("--issuer URL is needed"), "{err}");
    let (code, _, err) = s.sesame(&["token", "--profile", "nobody"]).await;
    assert_eq!(code, 1);
    assert!(err.contains("run `sesame login --profile nobody`"), "{err}");
    let err = run(vec!["token".into(), "--profile".into(), "../x".into()]).await;
    assert!(err.contains("profile name"), "{err}");
}

/// Reads the pty's output until it contains `want` (after `from`); the output so far.
async fn read_until(out: &mut tokio::process::ChildStdout, seen: &mut String, from: usize, want: &str) {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 4096];
    while !seen[from.min(seen.len())..].contains(want) {
        let n = tokio::time::timeout(std::time::Duration::from_secs(20), out.read(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("waited for {want:?}; the terminal shows: {seen}"))
            .unwrap();
        assert!(n > 0, "the terminal closed before {want:?}: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pasted_code_at_a_real_terminal_is_not_echoed_and_may_be_retried() {
    let s = server().await;
    // `script` runs the command on a new pseudo-terminal and copies what we write to its
    // keyboard; everything the terminal shows (echo included) comes back on its stdout.
    let command = format!(
        "'{}' login --no-browser --issuer '{}' --client-id '{}'",
        env!("CARGO_BIN_EXE_sesame"),
        s.issuer,
        s.client_id
    );
    let mut child = tokio::process::Command::new("script")
        .args(["-qfec", &command, "/dev/null"])
        .env("SESAME_CONFIG_DIR", s.config_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("script(1) from util-linux");
    let mut out = child.stdout.take().unwrap();
    let mut keys = child.stdin.take().unwrap();
    let mut seen = String::new();
    read_until(&mut out, &mut seen, 0, "Paste the code: ").await;
    let url = seen
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with(&format!("{}/authorize?", s.issuer)))
        .unwrap_or_else(|| panic!("no URL: {seen}"))
        .to_owned();
    let redirect = browser(&url, true).await;
    let code = query_param(&redirect, "code").unwrap();

    let mark = seen.len();
    keys.write_all(b"typo-in-the-code\r").await.unwrap();
    read_until(&mut out, &mut seen, mark, "Paste the code: ").await;
    let mark = seen.len();
    keys.write_all(format!("{code}\r").as_bytes()).await.unwrap();
    read_until(&mut out, &mut seen, mark, "Signed in").await;
    let status = child.wait().await.unwrap();
    assert!(status.success(), "{seen}");
    assert!(seen.contains("That code was not accepted"), "{seen}");
    assert!(!seen.contains("typo-in-the-code"), "no echo: {seen}");
    assert!(!seen.contains(&code), "no echo: {seen}");
    let (code, token, err) = s.sesame(&["token"]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(s.userinfo(token.trim()).await.0, 200);
}
