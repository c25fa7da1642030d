//! `sesame sessions create|list|revoke` on the person's cached sign-in (`sesame login`), against
//! a real sesamed started in-process: a job client binds the session the CLI created, the list
//! shows it, revoking it ends the job's token at once, and another revocation, or a profile that
//! is not signed in, is an error that says so. The test plays the person's browser as
//! `tests/signin.rs` does (with the shared `tests/support`).

mod support;

use support::*;

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
