//! `sesame login`, `token`, `whoami`, `logout` and `profiles` against a real sesamed started
//! in-process. The test plays the person's browser with reqwest: it follows the URL the CLI
//! prints, submits the login and consent forms (with their CSRF cookie and field), and follows
//! the redirect back to the CLI's loopback listener or reads the code `/oob` would show.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;
use support::*;
use tokio::io::AsyncWriteExt;

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
