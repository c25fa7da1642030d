//! Password guessing under concurrency, over HTTP: many sign-ins sent at once get no more
//! password checks than the throttling policy allows (3 free failures per account, 20 per
//! address), on one server and on two processes sharing one PostgreSQL; and however many
//! arrive, no more Argon2 checks run at once than `password_check_concurrency`.
//!
//! The checks are counted by the server's own metrics (`sesame_password_checks_total`, and the
//! highest number running at once, `sesame_password_checks_running_max`); the memory bound is
//! read from a spawned `sesamed`'s `/proc/PID/status`.

mod common;

use common::TestServer;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::task::JoinSet;

const PW: &str = "correct horse battery";
const CB: &str = "https://app.example/cb";
/// RFC 7636 Appendix B's challenge: any valid one will do, no code is redeemed here.
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A login form as a browser holds it: its cookies and hidden fields. One form may be
/// submitted many times (each failure shows it again).
#[derive(Clone)]
struct LoginForm {
    cookies: String,
    csrf: String,
    request: String,
}

/// The answer to a login form, reduced to what these tests look at.
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    retry_after: Option<String>,
    body: String,
}

impl Answer {
    fn signed_in(&self) -> bool {
        self.status == StatusCode::SEE_OTHER && self.body.is_empty()
    }
}

fn hidden(body: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = body.find(&marker).expect("hidden field") + marker.len();
    let len = body[start..].find('"').unwrap();
    // The sealed request and the CSRF token are base64url: nothing to unescape.
    body[start..start + len].to_owned()
}

/// Creates user `alice` (password [`PW`]) and a first-party client in `tenant` through the
/// admin API at `base`, and opens a login form.
async fn login_form(base: &str, admin: &str, tenant: &str) -> LoginForm {
    let http = browser();
    let post = |path: String, body: Value| {
        http.post(format!("{base}/admin/v1{path}"))
            .bearer_auth(admin)
            .json(&body)
            .send()
    };
    let resp = post(
        format!("/tenants/{tenant}/users"),
        json!({"username": "alice", "password": PW}),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let resp = post(
        format!("/tenants/{tenant}/clients"),
        json!({"name": "App", "redirect_uris": [CB], "first_party": true}),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let client: Value = resp.json().await.unwrap();
    let client_id = client["client"]["client_id"].as_str().unwrap();
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("client_id", client_id),
            ("redirect_uri", CB),
            ("response_type", "code"),
            ("scope", "openid"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ])
        .finish();
    let resp = http
        .get(format!("{base}/t/{tenant}/authorize?{query}"))
        .send()
        .await
        .unwrap();
    let cookies = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok()?.split(';').next().map(str::to_owned))
        .collect::<Vec<_>>()
        .join("; ");
    let body = resp.text().await.unwrap();
    LoginForm {
        cookies,
        csrf: hidden(&body, "csrf"),
        request: hidden(&body, "request"),
    }
}

async fn submit(http: &reqwest::Client, url: &str, form: &LoginForm, user: &str, password: &str) -> Answer {
    let resp = http
        .post(url)
        .header("cookie", &form.cookies)
        .form(&[
            ("csrf", form.csrf.as_str()),
            ("request", form.request.as_str()),
            ("username", user),
            ("password", password),
        ])
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = resp.text().await.unwrap();
    Answer {
        status,
        retry_after,
        body,
    }
}

/// Submits `form` once per (login URL, username, password), all at once, starting just after
/// the start of a wall-clock second; then, 300 ms later, while the checks of those let through
/// still run, submits `last` (login URL, password) as alice. Returns the answers in order,
/// `last`'s at the end.
///
/// `last` is sent well after the burst's attempts were counted (counting is the first thing a
/// sign-in does, milliseconds), and within the 2 s delay that the third counted failure starts
/// (delays are whole seconds, so 300 ms into a second leaves at least 700 ms of it).
async fn all_at_once_then(
    form: LoginForm,
    attempts: Vec<(String, String, String)>,
    last: (String, &str),
) -> Vec<Answer> {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_millis() as u64;
    tokio::time::sleep(Duration::from_millis(1000 - ms + 10)).await;
    let form = Arc::new(form);
    let mut set = JoinSet::new();
    for (i, (url, user, password)) in attempts.into_iter().enumerate() {
        let form = form.clone();
        set.spawn(async move { (i, submit(&browser(), &url, &form, &user, &password).await) });
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let last = submit(&browser(), &last.0, &form, "alice", last.1).await;
    let mut answers: Vec<(usize, Answer)> = set.join_all().await;
    answers.sort_by_key(|(i, _)| *i);
    answers
        .into_iter()
        .map(|(_, a)| a)
        .chain(std::iter::once(last))
        .collect()
}

/// A sample from `/metrics` at `base` (0 when the series does not exist yet).
async fn metric(base: &str, series: &str) -> f64 {
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

const CHECKS: &str = "sesame_password_checks_total";
const RUNNING_MAX: &str = "sesame_password_checks_running_max";
const BUSY: &str = "sesame_password_checks_busy_total";

fn count(answers: &[Answer], status: StatusCode) -> usize {
    answers.iter().filter(|a| a.status == status).count()
}

/// Every answer is a refusal (checked) or "wait" (not checked), never a sign-in.
fn assert_refused_or_throttled(answers: &[Answer]) {
    for a in answers {
        assert!(
            a.status == StatusCode::OK
                || (a.status == StatusCode::TOO_MANY_REQUESTS && a.retry_after.is_some()),
            "{a:?}"
        );
        assert!(!a.signed_in());
    }
}

#[tokio::test]
async fn guesses_sent_at_once_get_only_the_free_checks_and_the_right_password_then_waits() {
    let s = TestServer::sqlite().await;
    let form = login_form(&s.base, &s.admin_token, "default").await;
    let login = s.url("/t/default/login");
    let guesses = (0..25)
        .map(|i| (login.clone(), "alice".to_owned(), format!("wrong guess {i}")))
        .collect();
    let mut answers = all_at_once_then(form.clone(), guesses, (login.clone(), PW)).await;
    // The right password, sent while the guesses let through were still being checked, waits
    // like the others and costs no check.
    let right = answers.pop().unwrap();
    assert_eq!(right.status, StatusCode::TOO_MANY_REQUESTS, "{right:?}");
    assert!(right.body.contains("Too many failed sign-ins."));
    let wait: i64 = right.retry_after.as_deref().unwrap().parse().unwrap();
    assert!((1..=2).contains(&wait), "Retry-After {wait}");
    assert_refused_or_throttled(&answers);
    let checks = metric(&s.base, CHECKS).await;
    // Each refusal is a check; every other guess waited without one. The 3 let through are
    // checked one at a time (one account); on a slow machine the last may give up its turn
    // after 2 s ("busy", not counted), which is still no more than 3.
    assert_eq!(checks as usize, count(&answers, StatusCode::OK));
    let busy = metric(&s.base, BUSY).await;
    assert_eq!(checks + busy, 3.0, "3 free failures per account: {answers:?}");
    assert!(checks >= 1.0);
    assert_eq!(
        metric(&s.base, "sesame_sign_ins_total{outcome=\"throttled\"}").await,
        23.0
    );

    // Once the delay is over, it gets in.
    tokio::time::sleep(Duration::from_secs(wait as u64 + 1)).await;
    let right = submit(&browser(), &login, &form, "alice", PW).await;
    assert!(right.signed_in(), "{right:?}");
}

#[tokio::test]
async fn sign_ins_with_made_up_usernames_never_run_more_checks_at_once_than_permitted() {
    let db = sesame_store::testing::TestDb::sqlite();
    let s = TestServer::start(db, |c| c.password_check_concurrency = Some(1)).await;
    // Each tenant counts an address's failures apart (20 free), so ten tenants let 200
    // sign-ins from this one address reach the password check.
    let mut forms = Vec::new();
    for i in 0..10 {
        let tenant = format!("t{i}");
        s.tenant(&tenant, json!({})).await;
        forms.push((tenant.clone(), login_form(&s.base, &s.admin_token, &tenant).await));
    }
    let mut set = JoinSet::new();
    for (tenant, form) in &forms {
        let url = s.url(&format!("/t/{tenant}/login"));
        for i in 0..20 {
            let (url, form, tenant) = (url.clone(), form.clone(), tenant.clone());
            set.spawn(async move {
                let answer = submit(&browser(), &url, &form, &format!("ghost-{i}"), "guess").await;
                (tenant, answer)
            });
        }
    }
    let answers: Vec<(String, Answer)> = set.join_all().await;
    let all: Vec<&Answer> = answers.iter().map(|(_, a)| a).collect();
    for a in &all {
        assert!(
            a.status == StatusCode::OK || a.status == StatusCode::TOO_MANY_REQUESTS,
            "{a:?}"
        );
    }
    let refused = all.iter().filter(|a| a.status == StatusCode::OK).count();
    assert_eq!(metric(&s.base, CHECKS).await as usize, refused);
    assert_eq!(
        metric(&s.base, RUNNING_MAX).await,
        1.0,
        "one check at a time, never more, with 200 waiting"
    );
    // None of these used up its free failures, so every 429 is "busy": more than one permit
    // can check within the 2 s a sign-in waits for it (200 checks of over 10 ms each).
    // (The spawned-process test below runs 2 at a time.)
    let busy: Vec<&&Answer> = all
        .iter()
        .filter(|a| a.status == StatusCode::TOO_MANY_REQUESTS)
        .collect();
    assert!(
        !busy.is_empty(),
        "200 checks cannot all start within 2 s on 1 permit"
    );
    for a in &busy {
        assert_eq!(a.retry_after.as_deref(), Some("1"));
        assert!(a.body.contains("Too many sign-ins right now."), "{}", a.body);
    }
    assert_eq!(metric(&s.base, BUSY).await as usize, busy.len());
    // A sign-in that was not checked is not counted as a failure: a tenant that answered some
    // "busy" still has free failures for this address, and checks the next guess at once.
    let (tenant, form) = forms
        .iter()
        .find(|(t, _)| {
            answers
                .iter()
                .any(|(at, a)| at == t && a.status == StatusCode::TOO_MANY_REQUESTS)
        })
        .unwrap();
    let url = s.url(&format!("/t/{tenant}/login"));
    let next = submit(&browser(), &url, form, "ghost-next", "guess").await;
    assert_eq!(next.status, StatusCode::OK, "{next:?}");
}

// ---------------------------------------------------------------------------------------------
// Two processes on one PostgreSQL

struct Sesamed {
    _child: Child,
    base: String,
    stdout: String,
}

/// Starts `sesamed serve ARGS` on an ephemeral port and waits for its banner (as in
/// `processes.rs`).
async fn spawn(args: &[&str], env: &[(&str, &str)]) -> Sesamed {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sesamed"));
    cmd.arg("serve").arg("--listen").arg("127.0.0.1:0").args(args);
    cmd.env_remove("SESAME_STORE").env_remove("SESAME_MASTER_KEY");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
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
    assert!(
        tokio::time::timeout(Duration::from_secs(30), read)
            .await
            .unwrap_or(false),
        "sesamed starts"
    );
    let base = stdout
        .lines()
        .find_map(|l| l.strip_prefix("Sesame is listening on "))
        .and_then(|l| l.split(' ').next())
        .map(|addr| format!("http://{addr}"))
        .unwrap();
    Sesamed {
        _child: child,
        base,
        stdout,
    }
}

#[tokio::test]
async fn guesses_spread_over_two_processes_on_one_postgres_get_only_the_free_checks() {
    let Some(db) = sesame_store::testing::TestDb::postgres().await else {
        return;
    };
    let key = sesame_core::crypto::MasterKey::generate().1;
    let env = [
        ("SESAME_MASTER_KEY", key.as_str()),
        ("SESAME_CACHE_REFRESH_MS", "100"),
        ("SESAME_PUBLIC_URL", "http://sesame.test"),
    ];
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let dir = |d: &tempfile::TempDir| d.path().to_str().unwrap().to_owned();
    let a = spawn(&["--store", db.url.as_str(), "--data-dir", &dir(&dirs.0)], &env).await;
    let b = spawn(&["--store", db.url.as_str(), "--data-dir", &dir(&dirs.1)], &env).await;
    let admin = a
        .stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("admin token (shown once): "))
        .unwrap()
        .to_owned();
    let form = login_form(&a.base, &admin, "default").await;
    // B learns of the client made on A within its cache refresh (100 ms).
    tokio::time::sleep(Duration::from_millis(500)).await;

    let logins = [
        format!("{}/t/default/login", a.base),
        format!("{}/t/default/login", b.base),
    ];
    let guesses = (0..26)
        .map(|i| {
            (
                logins[i % 2].clone(),
                "alice".to_owned(),
                format!("wrong guess {i}"),
            )
        })
        .collect();
    let mut answers = all_at_once_then(form.clone(), guesses, (logins[1].clone(), PW)).await;
    let right = answers.pop().unwrap();
    assert_eq!(right.status, StatusCode::TOO_MANY_REQUESTS, "{right:?}");
    assert_refused_or_throttled(&answers);
    let checks = metric(&a.base, CHECKS).await + metric(&b.base, CHECKS).await;
    assert_eq!(checks as usize, count(&answers, StatusCode::OK));
    let busy = metric(&a.base, BUSY).await + metric(&b.base, BUSY).await;
    assert_eq!(checks + busy, 3.0, "3 free failures between both: {answers:?}");
    assert!(checks >= 1.0);
}

/// A field of `/proc/PID/status` in kB.
#[cfg(target_os = "linux")]
fn status_kb(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .map(|v| v.trim().parse().unwrap())
        .unwrap()
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_burst_of_sign_ins_keeps_the_process_within_its_stated_memory_bound() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap().to_owned();
    let s = spawn(
        &["--dev", "--data-dir", &data],
        &[("SESAME_PASSWORD_CHECK_CONCURRENCY", "2")],
    )
    .await;
    let pid = s._child.id().unwrap();
    let admin = s
        .stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("admin token (shown once): "))
        .unwrap()
        .to_owned();
    // Three tenants, so that 60 sign-ins from this one address are all within its allowance
    // (20 per tenant) and reach the check.
    let mut forms = Vec::new();
    for i in 0..3 {
        let tenant = format!("t{i}");
        let resp = reqwest::Client::new()
            .post(format!("{}/admin/v1/tenants", s.base))
            .bearer_auth(&admin)
            .json(&json!({"id": tenant}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::CREATED);
        forms.push((tenant.clone(), login_form(&s.base, &admin, &tenant).await));
    }
    let before = status_kb(pid, "VmRSS");
    let mut set = JoinSet::new();
    for (tenant, form) in &forms {
        for i in 0..20 {
            let url = format!("{}/t/{tenant}/login", s.base);
            let form = form.clone();
            set.spawn(async move { submit(&browser(), &url, &form, &format!("ghost-{i}"), "guess").await });
        }
    }
    let answers = set.join_all().await;
    assert_refused_or_throttled(&answers);
    assert!(metric(&s.base, CHECKS).await >= 2.0);
    assert_eq!(metric(&s.base, RUNNING_MAX).await, 2.0);
    let peak = status_kb(pid, "VmHWM");
    // The stated bound: 2 checks × 19 MiB (19,456 kB) above where it was, and some slack for
    // the 60 connections and the pages; without the bound this burst takes over 1 GB.
    let bound = before + 2 * 19_456 + 16 * 1024;
    assert!(
        peak <= bound,
        "peak {peak} kB > {bound} kB (RSS {before} kB before the burst)"
    );
    // And the blocks are returned: afterwards it is back near where it was.
    let after = status_kb(pid, "VmRSS");
    assert!(
        after <= before + 16 * 1024,
        "RSS {after} kB after, {before} kB before"
    );
}
