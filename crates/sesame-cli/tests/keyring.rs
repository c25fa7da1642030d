//! Credentials in the OS keyring: a real Secret Service (gnome-keyring-daemon on a private D-Bus
//! session bus, its login keyring unlocked with a test password), and the fallback to the 0600
//! file when no keyring answers.
//!
//! The Secret Service test needs `dbus-daemon`, `gnome-keyring-daemon` and `secret-tool`
//! (Debian: dbus-daemon, gnome-keyring, libsecret-tools), which `scripts/test` installs and then
//! sets `SESAME_TEST_KEYRING=1`; without them it says it was skipped, unless that variable asks
//! for it, when it fails.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Command, Stdio};
use support::{browser, rest_of, server, Server};

/// A private session bus with gnome-keyring-daemon's Secret Service on it; both are stopped
/// when this is dropped.
struct SecretService {
    address: String,
    env: Vec<(String, String)>,
    dbus: Child,
    keyring: Child,
    _home: tempfile::TempDir,
}

impl Drop for SecretService {
    fn drop(&mut self) {
        for child in [&mut self.keyring, &mut self.dbus] {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn installed(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn secret_service() -> Option<SecretService> {
    let needed = ["dbus-daemon", "dbus-send", "gnome-keyring-daemon", "secret-tool"];
    let missing: Vec<_> = needed.iter().filter(|p| !installed(p)).collect();
    if !missing.is_empty() {
        assert!(
            std::env::var_os("SESAME_TEST_KEYRING").is_none(),
            "SESAME_TEST_KEYRING is set but {missing:?} are not installed"
        );
        eprintln!("skipped: no Secret Service to test against ({missing:?} not installed; scripts/test installs them)");
        return None;
    }
    let home = tempfile::tempdir().unwrap();
    let runtime = home.path().join("run");
    std::fs::create_dir(&runtime).unwrap();
    std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700)).unwrap();
    // gnome-keyring keeps its keyring files under the data home and its control socket under
    // the runtime directory: both private to this test.
    let env = vec![
        ("HOME".to_owned(), home.path().display().to_string()),
        (
            "XDG_DATA_HOME".to_owned(),
            home.path().join("data").display().to_string(),
        ),
        ("XDG_RUNTIME_DIR".to_owned(), runtime.display().to_string()),
    ];
    let mut dbus = Command::new("dbus-daemon")
        .args(["--session", "--nofork", "--print-address=1"])
        .envs(env.iter().cloned())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut address = String::new();
    BufReader::new(dbus.stdout.take().unwrap())
        .read_line(&mut address)
        .unwrap();
    let address = address.trim().to_owned();
    assert!(address.starts_with("unix:"), "{address:?}");
    let mut keyring = Command::new("gnome-keyring-daemon")
        .args(["--foreground", "--components=secrets", "--unlock"])
        .envs(env.iter().cloned())
        .env("DBUS_SESSION_BUS_ADDRESS", &address)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // --unlock reads the login keyring's password from stdin (creating the keyring).
    keyring.stdin.take().unwrap().write_all(b"test-password").unwrap();
    let service = SecretService {
        address,
        env,
        dbus,
        keyring,
        _home: home,
    };
    for _ in 0..100 {
        let out = Command::new("dbus-send")
            .args([
                "--session",
                "--print-reply",
                "--dest=org.freedesktop.DBus",
                "/org/freedesktop/DBus",
                "org.freedesktop.DBus.NameHasOwner",
                "string:org.freedesktop.secrets",
            ])
            .env("DBUS_SESSION_BUS_ADDRESS", &service.address)
            .output()
            .unwrap();
        if String::from_utf8_lossy(&out.stdout).contains("boolean true") {
            return Some(service);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("gnome-keyring-daemon did not appear on the session bus");
}

impl SecretService {
    /// `secret-tool lookup` of the entry of `profile`: what the keyring holds for it.
    fn lookup(&self, s: &Server, profile: &str) -> Option<serde_json::Value> {
        let account = format!("{profile}@{}", s.config_dir().display());
        let out = Command::new("secret-tool")
            .args(["lookup", "service", "sesame", "username", &account])
            .envs(self.env.iter().cloned())
            .env("DBUS_SESSION_BUS_ADDRESS", &self.address)
            .output()
            .unwrap();
        out.status
            .success()
            .then(|| serde_json::from_slice(&out.stdout).unwrap())
    }
}

/// `sesame login` with the test as the browser; its stderr after the URL.
async fn login(s: &Server, extra: &[&str]) -> String {
    let mut args = vec!["login", "--issuer", &s.issuer, "--client-id", &s.client_id];
    args.extend_from_slice(extra);
    let (mut child, url, lines) = s.start(&args).await;
    let redirect = browser(&url, true).await;
    reqwest::get(&redirect).await.unwrap();
    let status = child.wait().await.unwrap();
    let err = rest_of(lines).await;
    assert!(status.success(), "{err}");
    err
}

async fn run_token(s: &Server, n: usize) -> Vec<String> {
    let children: Vec<_> = (0..n).map(|_| s.command(&["token"]).spawn().unwrap()).collect();
    let outputs = tokio::task::spawn_blocking(move || {
        children
            .into_iter()
            .map(|c| c.wait_with_output().unwrap())
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    outputs
        .into_iter()
        .map(|out| {
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            String::from_utf8(out.stdout).unwrap().trim().to_owned()
        })
        .collect()
}

/// git's `erase` through the helper: the cached access token is marked expired.
async fn expire(s: &Server, token: &str) {
    let mut c = s.command(&["credential-helper", "erase"]);
    c.stdin(Stdio::piped());
    let input = format!("protocol=https\nhost=h\npassword={token}\n\n");
    let out = tokio::task::spawn_blocking(move || {
        let mut child = c.spawn().unwrap();
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_live_in_the_secret_service_and_ten_processes_still_refresh_once() {
    let Some(keyring) = secret_service() else {
        return;
    };
    let mut s = server().await;
    s.env
        .push(("DBUS_SESSION_BUS_ADDRESS".into(), keyring.address.clone()));
    s.env.push(("SESAME_CREDENTIAL_STORE".into(), "keyring".into()));

    let err = login(&s, &[]).await;
    assert!(!err.contains("no OS keyring"), "{err}");
    // The tokens are in the keyring, not in a file; the profile (no secret) is in config.toml.
    assert!(!s.credentials_path().exists());
    assert!(s.config_dir().join("config.toml").exists());
    let held = keyring.lookup(&s, "default").expect("an entry in the keyring");
    let (code, token, err) = s.sesame(&["token"]).await;
    assert_eq!(code, 0, "{err}");
    let token = token.trim().to_owned();
    assert_eq!(held["access_token"], token.as_str());
    assert_eq!(held["issuer"], s.issuer.as_str());
    assert_eq!(s.userinfo(&token).await.0, 200);
    // The file store knows nothing of it.
    let (code, _, err) = s.sesame(&["--credential-store", "file", "token"]).await;
    assert_eq!(code, 1);
    assert!(err.contains("not signed in"), "{err}");

    // Ten processes find the token expired at once: one refresh at the server, one new token.
    expire(&s, &token).await;
    let before = s.refreshes().await;
    let tokens = run_token(&s, 10).await;
    assert!(tokens.iter().all(|t| *t == tokens[0]), "{tokens:?}");
    assert_ne!(tokens[0], token);
    assert_eq!(
        s.refreshes().await,
        before + 1,
        "exactly one refresh at the server"
    );
    assert_eq!(s.userinfo(&tokens[0]).await.0, 200);
    assert_eq!(
        keyring.lookup(&s, "default").unwrap()["access_token"],
        tokens[0].as_str()
    );

    let (code, out, err) = s.sesame(&["whoami"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("alice@example.com"), "{out}");

    // A sign-in kept in the file before the keyring was used is still found, and moves to
    // the keyring at its next refresh.
    let mut file = server().await;
    support::login_loopback(&file, &[]).await;
    file.env = s.env.clone();
    let (code, old, err) = file.sesame(&["token"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(keyring.lookup(&file, "default").is_none());
    expire(&file, old.trim()).await;
    let (code, new, err) = file.sesame(&["token"]).await;
    assert_eq!(code, 0, "{err}");
    assert_ne!(new, old);
    assert_eq!(
        keyring.lookup(&file, "default").unwrap()["access_token"],
        new.trim()
    );
    assert!(file.read_credentials()["profiles"].get("default").is_none());

    // logout deletes the entry.
    let (code, _, err) = s.sesame(&["logout"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(keyring.lookup(&s, "default").is_none());
    let (code, _, err) = s.sesame(&["token"]).await;
    assert_eq!(code, 1);
    assert!(err.contains("not signed in"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_keyring_login_says_so_once_and_keeps_the_tokens_in_a_private_file() {
    let mut s = server().await;
    // A session bus that is not there: nothing answers for the Secret Service.
    let nowhere = format!("unix:path={}/no-bus", s.config_root.path().display());
    s.env.push(("DBUS_SESSION_BUS_ADDRESS".into(), nowhere));
    s.env.push(("SESAME_CREDENTIAL_STORE".into(), "auto".into()));

    let err = login(&s, &[]).await;
    assert_eq!(err.matches("no OS keyring answered").count(), 1, "{err}");
    assert!(err.contains(&s.credentials_path().display().to_string()), "{err}");
    let mode = std::fs::metadata(s.credentials_path())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let (code, token, err) = s.sesame(&["token"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(err.is_empty(), "only login mentions the fallback: {err}");
    assert_eq!(s.userinfo(token.trim()).await.0, 200);

    // Asking for the keyring when there is none is an error that names the way out.
    let (code, out, err) = s.sesame(&["token", "--credential-store", "keyring"]).await;
    assert_eq!((code, out.as_str()), (1, ""));
    assert!(
        err.contains("the OS keyring failed") && err.contains("--credential-store file"),
        "{err}"
    );
    // Choosing the file says nothing at login.
    s.env.retain(|(k, _)| k != "SESAME_CREDENTIAL_STORE");
    s.env.push(("SESAME_CREDENTIAL_STORE".into(), "file".into()));
    let err = login(&s, &["--profile", "work"]).await;
    assert!(!err.contains("keyring"), "{err}");
    let (code, _, err) = s.sesame(&["token", "--credential-store", "nonsense"]).await;
    assert_eq!(code, 2, "a usage error: {err}");
}
