//! `sesame credential-helper` driven by real `git` (`git credential fill / reject / approve`),
//! configured as a person would, against a real sesamed.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use support::{login_loopback, server, Server};

const HOST: &str = "git.example.com";

/// Runs `git credential ACTION` with `input` in a home whose `.gitconfig` names the helper for
/// `https://git.example.com` (and, to be refused, for a plain-http host).
async fn git(s: &Server, home: &Path, action: &str, input: &str) -> (i32, BTreeMap<String, String>, String) {
    let mut c = Command::new("git");
    c.args(["credential", action])
        .env("HOME", home)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        // No prompt when no helper answers: git fails instead.
        .env("GIT_TERMINAL_PROMPT", "0")
        .env_remove("GIT_ASKPASS")
        .env_remove("SSH_ASKPASS")
        .env("SESAME_CONFIG_DIR", s.config_dir())
        .env("SESAME_CREDENTIAL_STORE", "file")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let input = input.to_owned();
    let out = tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut child = c.spawn().expect("git");
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    let answer = String::from_utf8(out.stdout).unwrap();
    let map = answer
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    (
        out.status.code().unwrap_or(-1),
        map,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn configure(home: &Path, url: &str, helper_args: &str) {
    let helper = format!(
        "!'{}' credential-helper {helper_args}",
        env!("CARGO_BIN_EXE_sesame")
    );
    let status = Command::new("git")
        .args(["config", "--global", &format!("credential.{url}.helper"), &helper])
        .env("HOME", home)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .status()
        .unwrap();
    assert!(status.success());
}

fn cached_token(s: &Server) -> String {
    s.read_credentials()["profiles"]["default"]["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn git_gets_a_fresh_token_and_a_refused_one_is_refreshed_on_the_next_get() {
    let s = server().await;
    login_loopback(&s, &[]).await;
    let home = tempfile::tempdir().unwrap();
    configure(home.path(), &format!("https://{HOST}"), "--profile default");
    configure(home.path(), "http://plain.example.com", "--profile default");
    let ask = format!("protocol=https\nhost={HOST}\n\n");

    // get: the cached access token, with the user name GitLab-style servers expect for OAuth
    // tokens, and its expiry for git >= 2.41.
    let token = cached_token(&s);
    let before = s.refreshes().await;
    let (code, answer, err) = git(&s, home.path(), "fill", &ask).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(answer["password"], token);
    assert_eq!(answer["username"], "oauth2");
    let expiry: i64 = answer["password_expiry_utc"].parse().unwrap();
    assert!(expiry > sesame_client::now() + 60, "{expiry}");
    assert_eq!(s.userinfo(&answer["password"]).await.0, 200);
    assert_eq!(s.refreshes().await, before, "a valid token is not refreshed");

    // A user name in git's request (from the remote URL) is kept.
    let (code, answer, err) = git(
        &s,
        home.path(),
        "fill",
        &format!("protocol=https\nhost={HOST}\nusername=alice\n\n"),
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        (answer["username"].as_str(), answer["password"].as_str()),
        ("alice", token.as_str())
    );

    // store (git approves a credential that worked) changes nothing.
    let approve = format!("protocol=https\nhost={HOST}\nusername=oauth2\npassword={token}\n\n");
    let (code, _, err) = git(&s, home.path(), "approve", &approve).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(cached_token(&s), token);

    // erase of an older token (not the cached one) changes nothing either.
    let stale = format!("protocol=https\nhost={HOST}\nusername=oauth2\npassword=an-older-token\n\n");
    let (code, _, err) = git(&s, home.path(), "reject", &stale).await;
    assert_eq!(code, 0, "{err}");
    let (_, answer, _) = git(&s, home.path(), "fill", &ask).await;
    assert_eq!(answer["password"], token);
    assert_eq!(s.refreshes().await, before);

    // The server refused the token: git erases it, and the next get refreshes (once).
    let (code, _, err) = git(&s, home.path(), "reject", &approve).await;
    assert_eq!(code, 0, "{err}");
    let (code, answer, err) = git(&s, home.path(), "fill", &ask).await;
    assert_eq!(code, 0, "{err}");
    let fresh = answer["password"].clone();
    assert_ne!(fresh, token);
    assert_eq!(s.refreshes().await, before + 1);
    assert_eq!(s.userinfo(&fresh).await.0, 200);
    assert_eq!(cached_token(&s), fresh);

    // Hosts the helper is not configured for get nothing from it.
    let (code, answer, _) = git(
        &s,
        home.path(),
        "fill",
        "protocol=https\nhost=elsewhere.example\n\n",
    )
    .await;
    assert_ne!(code, 0);
    assert!(!answer.contains_key("password"));
    // Nor does plain http to another machine, even when configured.
    let (code, answer, err) = git(
        &s,
        home.path(),
        "fill",
        "protocol=http\nhost=plain.example.com\n\n",
    )
    .await;
    assert_ne!(code, 0);
    assert!(!answer.contains_key("password"));
    assert!(err.contains("tokens go over https only"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_helper_says_how_to_sign_in_and_ignores_actions_it_does_not_know() {
    let s = server().await;
    let home = tempfile::tempdir().unwrap();
    configure(home.path(), &format!("https://{HOST}"), "--profile work");
    let (code, answer, err) = git(
        &s,
        home.path(),
        "fill",
        &format!("protocol=https\nhost={HOST}\n\n"),
    )
    .await;
    assert_ne!(code, 0);
    assert!(!answer.contains_key("password"));
    assert!(err.contains("run `sesame login --profile work`"), "{err}");

    // git-credential(1): a helper ignores operations it does not know, successfully.
    let mut c = s.command(&["credential-helper", "frobnicate"]);
    c.stdin(Stdio::piped());
    let out = tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut child = c.spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"protocol=https\nhost=h\n\n")
            .unwrap();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    assert!(out.status.success());
    assert!(out.stdout.is_empty() && out.stderr.is_empty());
}
