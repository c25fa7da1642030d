//! The operators' surfaces (`/admin/v1`, `/metrics`): on a listener of their own when
//! `admin_listen` is set, and `/metrics` behind a bearer token when one is configured.

mod common;

use common::TestServer;
use reqwest::{header, Method, StatusCode};
use sesame_store::testing::TestDb;

const METRICS_TOKEN: &str = "metrics-token-0123456789abcdefghijklmnopqrstuvwxyz";

#[tokio::test]
async fn with_admin_listen_the_admin_api_and_metrics_are_not_on_the_public_listener() {
    let s = TestServer::start(TestDb::sqlite(), |c| {
        c.admin_listen = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    let admin = s.running.admin_addr.expect("an admin listener");
    assert_ne!(admin, s.running.addr);
    let http = &s.http;

    // The public listener does not know them, even with the right admin token.
    for path in [
        "/admin/v1/tenants",
        "/admin/v1/tenants/default/clients",
        "/metrics",
    ] {
        let resp = http
            .get(s.url(path))
            .bearer_auth(&s.admin_token)
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.status(),
            StatusCode::NOT_FOUND,
            "{path} on the public listener"
        );
    }
    let resp = http
        .post(s.url("/admin/v1/tenants"))
        .bearer_auth(&s.admin_token)
        .json(&serde_json::json!({"id": "sneaky"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);

    // The admin listener serves them (and the admin API still wants its token there).
    let (status, body) = s.admin(Method::GET, "/tenants", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.to_string().contains("default"), "{body}");
    let resp = http.get(s.admin_url("/admin/v1/tenants")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let (id, secret) = s.client("default", serde_json::json!({})).await;
    s.token("default", &id, &secret, &[]).await;
    let resp = http.get(s.admin_url("/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let text = resp.text().await.unwrap();
    assert!(
        text.contains(
            "sesame_http_requests_total{route=\"/t/{tenant}/token\",method=\"POST\",status=\"200\"} 1"
        ),
        "{text}"
    );
    assert!(
        text.contains("sesame_http_requests_total{route=\"unmatched\",method=\"GET\",status=\"404\"}"),
        "the refused public requests are counted: {text}"
    );

    // The protocol endpoints stay public only.
    let jwks = "/t/default/jwks";
    assert_eq!(
        http.get(s.url(jwks)).send().await.unwrap().status(),
        StatusCode::OK
    );
    let resp = http.get(s.admin_url(jwks)).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    // Probes work on both.
    for url in [s.url("/readyz"), s.admin_url("/readyz")] {
        assert_eq!(http.get(url).send().await.unwrap().status(), StatusCode::OK);
    }
    s.running.shutdown().await.unwrap();
}

#[tokio::test]
async fn metrics_with_a_token_refuses_a_missing_or_wrong_bearer_with_a_challenge() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("metrics-token");
    std::fs::write(&file, format!("{METRICS_TOKEN}\n")).unwrap();
    let s = TestServer::start(TestDb::sqlite(), |c| c.metrics_token_file = Some(file)).await;
    let url = s.url("/metrics");
    let attempts = [
        None,
        Some("Bearer wrong".to_owned()),
        Some(format!("Bearer {}", &METRICS_TOKEN[..METRICS_TOKEN.len() - 1])),
        Some(format!("Bearer {METRICS_TOKEN}x")),
        Some(format!("Basic {METRICS_TOKEN}")),
        // The admin token is not the metrics token.
        Some(format!("Bearer {}", s.admin_token)),
    ];
    for auth in attempts {
        let mut req = s.http.get(&url);
        if let Some(a) = &auth {
            req = req.header(header::AUTHORIZATION, a);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{auth:?}");
        let challenge = resp
            .headers()
            .get(header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert!(challenge.starts_with("Bearer "), "{auth:?}: {challenge:?}");
        let body = resp.text().await.unwrap();
        assert!(!body.contains("sesame_http_requests"), "{body}");
    }
    for scheme in ["Bearer", "bearer"] {
        let resp = s
            .http
            .get(&url)
            .header(header::AUTHORIZATION, format!("{scheme} {METRICS_TOKEN}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let text = resp.text().await.unwrap();
        assert!(
            text.contains("sesame_http_requests_total{route=\"/metrics\",method=\"GET\",status=\"401\"} 6"),
            "{text}"
        );
    }
    s.running.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_metrics_token_that_cannot_be_read_or_is_short_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let short = dir.path().join("short");
    std::fs::write(&short, "too-short\n").unwrap();
    for (file, want) in [
        (dir.path().join("missing"), "metrics_token_file"),
        (short, "at least 32 characters"),
    ] {
        let db = TestDb::sqlite();
        let mut config = common::test_config(&db, dir.path());
        config.metrics_token_file = Some(file);
        let err = sesame_server::start(&config, false).await.err().expect("refused");
        assert!(err.contains(want), "{err}");
    }
}
