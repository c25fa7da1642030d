//! The `sign-in-burst` load: 200 sign-ins with made-up usernames and wrong passwords, all sent
//! at once (one connection each), and what they cost the server: its peak RSS (`VmHWM`) and
//! how many sign-ins per second it answered.
//!
//! Every attempt comes from the bench's one address, and the server allows an address 20 free
//! failures per tenant before it delays the next one. So the burst runs twice: once at one
//! tenant, where the throttle answers all but 20 without a password check (what one attacker
//! address gets), and once spread over 10 tenants, 20 each, where every attempt is within the
//! throttle's allowance and reaches the password check (what many addresses, or a botnet, get):
//! that one measures the bound on concurrent Argon2id checks (19 MiB each).

use crate::load::{self, Template};
use crate::server::ServerProcess;
use hyper::header::COOKIE;
use hyper::StatusCode;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

pub const ATTEMPTS: usize = 200;
/// Without a bound on concurrent checks, the last of 200 answers after all 200 checks, which
/// on one busy core can take tens of seconds.
const ANSWER_WITHIN: Duration = Duration::from_secs(120);
const REDIRECT_URI: &str = "http://127.0.0.1:1/cb";

/// One burst and what it did.
pub struct Round {
    pub label: String,
    pub tenants: usize,
    pub elapsed: Duration,
    /// 200 with the login page again (401 in older sesamed builds): the password was checked and refused.
    pub refused: usize,
    /// 429 for too many failures (no check).
    pub throttled: usize,
    /// 429 for too many checks under way (no check).
    pub busy: usize,
    /// Anything else, or no answer within [`ANSWER_WITHIN`].
    pub errors: usize,
    pub first_error: Option<String>,
    /// The server's VmHWM after the round.
    pub peak_rss_kb: Option<u64>,
}

impl Round {
    pub fn rate(&self) -> f64 {
        ATTEMPTS as f64 / self.elapsed.as_secs_f64()
    }
}

/// A login form opened in `tenant`: the request to post, less the username and password.
struct Form {
    tenant: String,
    csrf_cookie: String,
    csrf: String,
    request: String,
}

async fn open_form(
    addr: SocketAddr,
    admin_token: &str,
    tenant: &str,
    create_tenant: bool,
) -> Result<Form, String> {
    if create_tenant {
        let t = Template::post_json(
            addr,
            "/admin/v1/tenants",
            &serde_json::json!({"id": tenant}),
            admin_token,
        );
        load::once_ok(addr, &t).await?;
    }
    let spec = serde_json::json!({
        "name": "burst",
        "redirect_uris": [REDIRECT_URI],
        "grant_types": ["authorization_code"],
        "first_party": true,
    });
    let t = Template::post_json(
        addr,
        &format!("/admin/v1/tenants/{tenant}/clients"),
        &spec,
        admin_token,
    );
    let body = load::once_ok(addr, &t).await?;
    let v: serde_json::Value = serde_json::from_slice(&body).map_err(|e| format!("client answer: {e}"))?;
    let client_id = v["client"]["client_id"]
        .as_str()
        .ok_or("client creation answer has no client.client_id")?;
    let path = format!(
        "/t/{tenant}/authorize?response_type=code&client_id={}&redirect_uri={}&scope=openid\
         &code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256",
        load::form_encode(client_id),
        load::form_encode(REDIRECT_URI)
    );
    let page = load::exchange(addr, &Template::get(addr, &path)).await?;
    let html = String::from_utf8_lossy(&page.body);
    match (
        crate::set_cookie(&page, "sesame_csrf"),
        crate::hidden_input(&html, "csrf"),
        crate::hidden_input(&html, "request"),
    ) {
        (Some(csrf_cookie), Some(csrf), Some(request)) => Ok(Form {
            tenant: tenant.to_owned(),
            csrf_cookie,
            csrf: csrf.to_owned(),
            request: request.to_owned(),
        }),
        _ => Err(format!("{path} did not show the login page ({})", page.status)),
    }
}

/// Sends [`ATTEMPTS`] sign-ins at once, spread evenly over `tenants` tenants (created for the
/// round, except `default` for one).
pub async fn round(
    addr: SocketAddr,
    admin_token: &str,
    label: &str,
    tenants: usize,
    sesame: &ServerProcess,
) -> Result<Round, String> {
    let mut forms = Vec::new();
    for i in 0..tenants {
        forms.push(if tenants == 1 {
            open_form(addr, admin_token, "default", false).await?
        } else {
            open_form(addr, admin_token, &format!("burst-{i}"), true).await?
        });
    }
    let requests: Vec<Template> = (0..ATTEMPTS)
        .map(|n| {
            let f = &forms[n % tenants];
            let body = format!(
                "csrf={}&request={}&username=ghost-{tenants}-{n}&password=not-the-password",
                load::form_encode(&f.csrf),
                load::form_encode(&f.request),
            );
            Template::post_form(addr, &format!("/t/{}/login", f.tenant), &body, None)
                .with_header(COOKIE, &format!("sesame_csrf={}", f.csrf_cookie))
        })
        .collect();
    // Settle between rounds, so that the previous one's threads are idle.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    let mut set = JoinSet::new();
    for t in requests {
        set.spawn(async move { load::exchange_within(addr, &t, ANSWER_WITHIN).await });
    }
    let answers = set.join_all().await;
    let elapsed = started.elapsed();
    let mut r = Round {
        label: label.to_owned(),
        tenants,
        elapsed,
        refused: 0,
        throttled: 0,
        busy: 0,
        errors: 0,
        first_error: None,
        peak_rss_kb: sesame.status_kb("VmHWM"),
    };
    for a in answers {
        let a = match a {
            Ok(a) => a,
            Err(e) => {
                r.errors += 1;
                r.first_error.get_or_insert(e);
                continue;
            }
        };
        let body = String::from_utf8_lossy(&a.body);
        match a.status {
            // Older sesamed builds answered a refusal with 401.
            StatusCode::OK | StatusCode::UNAUTHORIZED => r.refused += 1,
            StatusCode::TOO_MANY_REQUESTS if body.contains("Too many sign-ins right now") => r.busy += 1,
            StatusCode::TOO_MANY_REQUESTS => r.throttled += 1,
            s => {
                r.errors += 1;
                r.first_error.get_or_insert(format!("answered {s}"));
            }
        }
    }
    Ok(r)
}

/// The report's lines for the rounds.
pub fn report(rounds: &[Round], idle_rss_kb: Option<u64>) -> String {
    let mut out = format!(
        "\nsign-in burst: {ATTEMPTS} sign-ins at once (made-up usernames, wrong passwords, one connection each, \
         all from 127.0.0.1)\n"
    );
    out.push_str(&format!(
        "{:<28} {:>8} {:>8} {:>9} {:>9} {:>6} {:>6} {:>11} {:>12}\n",
        "round", "tenants", "checked", "throttled", "busy", "errors", "secs", "sign-ins/s", "VmHWM after"
    ));
    for r in rounds {
        out.push_str(&format!(
            "{:<28} {:>8} {:>8} {:>9} {:>9} {:>6} {:>6.2} {:>11.0} {:>12}\n",
            r.label,
            r.tenants,
            r.refused,
            r.throttled,
            r.busy,
            r.errors,
            r.elapsed.as_secs_f64(),
            r.rate(),
            r.peak_rss_kb.map_or("?".into(), crate::mb),
        ));
        if let Some(e) = &r.first_error {
            out.push_str(&format!("  !!! {}: {} errors; first: {e}\n", r.label, r.errors));
        }
    }
    if let Some(kb) = idle_rss_kb {
        out.push_str(&format!(
            "idle RSS before the bench's loads: {}; each running check adds about 19.9 MB (19 MiB)\n",
            crate::mb(kb)
        ));
    }
    out
}
