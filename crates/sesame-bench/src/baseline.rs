//! `sesame-bench --baseline-server PORT`: the least a token endpoint can do, for comparison.
//!
//! One bare axum handler on the same runtime flavour as sesamed (multi-thread, one worker per
//! CPU it may use), doing the same per-request work as sesamed's client-credentials path with
//! sesame-core's own functions: parse the Basic header (`client_auth::parse_basic`), SHA-256
//! the secret and compare it in constant time (`secret::verify_secret`), serialize the same
//! RFC 9068 claims, sign them (`jwt::sign`), and answer the same JSON. Nothing else: no form
//! parser, no tenant cache, no store, no metrics, no routing table to speak of.
//!
//! `POST /t/default/token` signs with EdDSA, `/t/es256/token` with ES256, `/t/rs256/token`
//! with RS256, so that each of sesamed's token rates has its own floor.

use crate::sign::{self, AccessClaims};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Serialize;
use sesame_core::client_auth;
use sesame_core::keys::ActiveKey;
use sesame_core::model::{SigningAlg, DEFAULT_ACCESS_TOKEN_TTL};
use sesame_core::secret::{hash_secret, verify_secret, Secret};
use std::process::ExitCode;
use std::sync::Arc;

/// Environment variables through which the bench gives the baseline the client it will use.
pub const ENV_CLIENT_ID: &str = "SESAME_BENCH_CLIENT_ID";
pub const ENV_CLIENT_SECRET: &str = "SESAME_BENCH_CLIENT_SECRET";

struct Baseline {
    client_id: String,
    secret_hash: [u8; 32],
    eddsa: ActiveKey,
    es256: ActiveKey,
    rs256: ActiveKey,
    issuer: String,
}

#[derive(Serialize)]
struct TokenResponse<'a> {
    access_token: String,
    token_type: &'static str,
    expires_in: i64,
    scope: Option<&'a str>,
}

fn refuse(status: StatusCode, error: &str) -> Response {
    (status, axum::Json(serde_json::json!({ "error": error }))).into_response()
}

/// The path of the baseline's token endpoint for `alg`.
pub fn token_path(alg: SigningAlg) -> &'static str {
    match alg {
        SigningAlg::EdDSA => "/t/default/token",
        SigningAlg::ES256 => "/t/es256/token",
        SigningAlg::RS256 => "/t/rs256/token",
    }
}

async fn token(
    State(b): State<Arc<Baseline>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let key = match tenant.as_str() {
        "default" => &b.eddsa,
        "es256" => &b.es256,
        "rs256" => &b.rs256,
        _ => return refuse(StatusCode::NOT_FOUND, "not_found"),
    };
    if !body
        .split(|&c| c == b'&')
        .any(|p| p == b"grant_type=client_credentials")
    {
        return refuse(StatusCode::BAD_REQUEST, "unsupported_grant_type");
    }
    let presented = match headers
        .get(header::AUTHORIZATION)
        .map(|v| client_auth::parse_basic(v.as_bytes()))
    {
        Some(Ok(Some(p))) => p,
        _ => return refuse(StatusCode::UNAUTHORIZED, "invalid_client"),
    };
    let Some(secret) = &presented.secret else {
        return refuse(StatusCode::UNAUTHORIZED, "invalid_client");
    };
    // Hash and compare first, whatever the client_id, as sesame-core's authenticate does.
    let secret_ok = verify_secret(secret.as_bytes(), &b.secret_hash);
    if !secret_ok || presented.client_id.as_str() != b.client_id {
        return refuse(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    let now = sesame_core::now();
    let jti = sign::new_jti();
    let claims = AccessClaims {
        iss: &b.issuer,
        sub: &b.client_id,
        aud: "api",
        client_id: &b.client_id,
        scope: Some("read"),
        iat: now,
        nbf: now,
        exp: now + DEFAULT_ACCESS_TOKEN_TTL,
        jti: &jti,
    };
    let json = match serde_json::to_vec(&claims) {
        Ok(j) => j,
        Err(_) => return refuse(StatusCode::INTERNAL_SERVER_ERROR, "server_error"),
    };
    let access_token = match sesame_core::jwt::sign(key, sesame_core::jwt::Kind::AccessToken, &json) {
        Ok(t) => t,
        Err(_) => return refuse(StatusCode::INTERNAL_SERVER_ERROR, "server_error"),
    };
    let body = TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: DEFAULT_ACCESS_TOKEN_TTL,
        scope: Some("read"),
    };
    let mut resp = axum::Json(body).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    resp
}

/// Runs the baseline server on 127.0.0.1:`port` until SIGTERM or ctrl-c.
pub fn serve(port: u16) -> ExitCode {
    let (client_id, secret) = match (std::env::var(ENV_CLIENT_ID), std::env::var(ENV_CLIENT_SECRET)) {
        (Ok(id), Ok(secret)) => (id, Secret::from_string(secret)),
        _ => {
            let secret = Secret::generate();
            eprintln!(
                "baseline: {ENV_CLIENT_ID}/{ENV_CLIENT_SECRET} not set; use client_id 'bench' and secret {}",
                secret.expose()
            );
            ("bench".to_owned(), secret)
        }
    };
    let state = Arc::new(Baseline {
        secret_hash: hash_secret(secret.expose().as_bytes()),
        client_id,
        eddsa: sign::active_key(SigningAlg::EdDSA),
        es256: sign::active_key(SigningAlg::ES256),
        rs256: sign::active_key(SigningAlg::RS256),
        issuer: format!("http://127.0.0.1:{port}/t/default"),
    });
    drop(secret);
    // The same runtime as sesamed: multi-thread, as many workers as CPUs we may run on.
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("baseline: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let app = Router::new()
            .route("/t/{tenant}/token", post(token))
            .route("/readyz", get(|| async { "ready" }))
            .with_state(state);
        let listener = match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("baseline: cannot listen on 127.0.0.1:{port}: {e}");
                return ExitCode::FAILURE;
            }
        };
        eprintln!("baseline: listening on 127.0.0.1:{port}");
        match axum::serve(listener, app)
            .with_graceful_shutdown(shutdown_signal())
            .await
        {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("baseline: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}
