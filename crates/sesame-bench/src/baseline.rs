//! `sesame-bench --baseline-server PORT`: the least each measured endpoint can do, for comparison.
//!
//! Bare axum handlers on the same runtime flavour as sesamed (multi-thread, one worker per CPU
//! it may use), each doing the same per-request work as sesamed's path with sesame-core's own
//! functions, and nothing else: no tenant or client cache, no metrics, no logging, no routing
//! table to speak of.
//!
//! * `POST /t/{tenant}/token`: parse the Basic header (`client_auth::parse_basic`), SHA-256 the
//!   secret and compare it in constant time (`secret::verify_secret`), serialize the same RFC 9068
//!   claims, sign them (`jwt::sign`), and answer the same JSON. Tenant `default` signs with
//!   EdDSA, `es256` with ES256, `rs256` with RS256, so that each token rate has its own floor.
//! * `POST /t/{tenant}/introspect`: the same client authentication, the form's `token`,
//!   `token::validate_access_token` (the signature is verified on every request), the revocation
//!   check through sesame-store's `is_access_token_revoked` on an SQLite file (the same code and
//!   the same read as sesamed's), and `token::introspection_response`.
//! * `POST /t/{tenant}/device_authorization` and the device-code grant at `POST /t/{tenant}/token`
//!   (RFC 8628), for the public client `bench-device`: a code pair inserted through sesame-store's
//!   `insert_device_authorization`; a poll is the form, the device code's SHA-256 and the same
//!   `poll_device_authorization` on an SQLite file, answered `authorization_pending`.
//! * `GET /t/{tenant}/.well-known/openid-configuration` and `GET /t/{tenant}/jwks`: sesamed's
//!   own bytes (the bench fetches them and hands them over in files), with the same
//!   `Content-Type`, `Cache-Control` and `ETag`, and the same `If-None-Match` check.

use crate::sign::{self, AccessClaims};
use axum::body::Bytes;
use axum::extract::Request;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Serialize;
use sesame_core::client_auth::{self, PresentedClient};
use sesame_core::crypto::MasterKey;
use sesame_core::ids::TenantId;
use sesame_core::keys::{ActiveKey, Keyring};
use sesame_core::model::{KeyState, SigningAlg, DEFAULT_ACCESS_TOKEN_TTL};
use sesame_core::secret::{hash_secret, verify_secret, Secret};
use sesame_core::store::{DeviceStore, Store};
use sesame_core::token;
use sesame_store::{SqlStore, StoreUrl};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// Environment variables through which the bench gives the baseline the client it will use.
pub const ENV_CLIENT_ID: &str = "SESAME_BENCH_CLIENT_ID";
pub const ENV_CLIENT_SECRET: &str = "SESAME_BENCH_CLIENT_SECRET";
/// Files holding sesamed's discovery document and JWKS, served as they are.
pub const ENV_DISCOVERY: &str = "SESAME_BENCH_DISCOVERY";
pub const ENV_JWKS: &str = "SESAME_BENCH_JWKS";
/// The SQLite file of the revocation check (created on the first introspection).
pub const ENV_STORE: &str = "SESAME_BENCH_STORE";

struct Baseline {
    client_id: String,
    secret_hash: [u8; 32],
    /// One active key per algorithm, loaded the way sesamed loads a tenant's.
    keyring: Keyring,
    tenant: TenantId,
    issuer: String,
    discovery: Option<Document>,
    jwks: Option<Document>,
    store_path: Option<PathBuf>,
    store: tokio::sync::OnceCell<SqlStore>,
}

/// Prepared bytes with a strong ETag, as sesamed's `Published`.
struct Document {
    body: Bytes,
    etag: HeaderValue,
}

impl Document {
    fn read(var: &str) -> Option<Document> {
        let body = std::fs::read(std::env::var_os(var)?).ok()?;
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &body);
        let etag = format!("\"{}\"", hex(&digest.as_ref()[..16]));
        Some(Document {
            body: Bytes::from(body),
            etag: HeaderValue::from_str(&etag).expect("hex is a valid header"),
        })
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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
    let alg = match tenant.as_str() {
        "default" => SigningAlg::EdDSA,
        "es256" => SigningAlg::ES256,
        "rs256" => SigningAlg::RS256,
        _ => return refuse(StatusCode::NOT_FOUND, "not_found"),
    };
    let Ok(key) = b.keyring.active(alg) else {
        return refuse(StatusCode::INTERNAL_SERVER_ERROR, "server_error");
    };
    if body.starts_with(b"grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code") {
        return device_poll(&b, &body).await;
    }
    if !body
        .split(|&c| c == b'&')
        .any(|p| p == b"grant_type=client_credentials")
    {
        return refuse(StatusCode::BAD_REQUEST, "unsupported_grant_type");
    }
    if authenticate(&b, &headers).is_none() {
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
    let key: &ActiveKey = key;
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
    no_store(axum::Json(body).into_response())
}

fn no_store(mut resp: Response) -> Response {
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    resp
}

/// Basic credentials of the one client; the secret is hashed and compared first, whatever the
/// client_id, as sesame-core's authenticate does.
fn authenticate(b: &Baseline, headers: &HeaderMap) -> Option<PresentedClient> {
    let presented = client_auth::parse_basic(headers.get(header::AUTHORIZATION)?.as_bytes()).ok()??;
    let secret_ok = verify_secret(presented.secret.as_ref()?.as_bytes(), &b.secret_hash);
    (secret_ok && presented.client_id.as_str() == b.client_id).then_some(presented)
}

/// RFC 7662 introspection of an access token, verified on every request.
async fn introspect(
    State(b): State<Arc<Baseline>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if tenant != "default" {
        return refuse(StatusCode::NOT_FOUND, "not_found");
    }
    let form = headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes() == b"application/x-www-form-urlencoded");
    if !form {
        return refuse(StatusCode::BAD_REQUEST, "invalid_request");
    }
    if authenticate(&b, &headers).is_none() {
        return refuse(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    let mut tokens = form_urlencoded::parse(&body).filter(|(k, _)| k == "token");
    let (Some((_, presented)), None) = (tokens.next(), tokens.next()) else {
        return refuse(StatusCode::BAD_REQUEST, "invalid_request");
    };
    let now = sesame_core::now();
    let mut valid = token::validate_access_token(&b.issuer, &b.keyring, &presented, now);
    if let Some(jti) = valid.as_ref().and_then(|v| v.jti()) {
        match store(&b).await {
            Ok(store) => match store.is_access_token_revoked(&b.tenant, jti).await {
                Ok(false) => {}
                Ok(true) => valid = None,
                Err(_) => return refuse(StatusCode::SERVICE_UNAVAILABLE, "server_error"),
            },
            Err(()) => return refuse(StatusCode::SERVICE_UNAVAILABLE, "server_error"),
        }
    }
    no_store(axum::Json(token::introspection_response(valid.as_ref())).into_response())
}

/// The one public client of the device loads.
const DEVICE_CLIENT: &str = "bench-device";

/// The SQLite store of the revocation check and the device codes, opened on first use, with
/// the tenant row the device codes' rows refer to.
async fn store(b: &Baseline) -> Result<&SqlStore, ()> {
    b.store
        .get_or_try_init(|| async {
            let path = b.store_path.as_deref().ok_or(())?;
            let store = SqlStore::connect(&StoreUrl::sqlite_file(path))
                .await
                .map_err(|e| eprintln!("baseline: {e}"))?;
            let tenant = sesame_core::model::Tenant::new(b.tenant.clone(), sesame_core::now());
            match store.create_tenant(&tenant, &[]).await {
                Ok(()) | Err(sesame_core::Error::Conflict(_)) => Ok(store),
                Err(e) => {
                    eprintln!("baseline: tenant: {e}");
                    Err(())
                }
            }
        })
        .await
}

/// The form's single value of `name`.
fn form_value(body: &[u8], name: &str) -> Option<String> {
    let mut values = form_urlencoded::parse(body).filter(|(k, _)| k == name);
    match (values.next(), values.next()) {
        (Some((_, v)), None) => Some(v.into_owned()),
        _ => None,
    }
}

/// RFC 8628 §3.1–§3.2 for the one public client.
async fn device_authorization(State(b): State<Arc<Baseline>>, body: Bytes) -> Response {
    if form_value(&body, "client_id").as_deref() != Some(DEVICE_CLIENT) {
        return refuse(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    let now = sesame_core::now();
    let device_code = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        sesame_core::crypto::random_bytes::<32>(),
    );
    let request = sesame_core::device::DeviceAuthorization {
        tenant_id: b.tenant.clone(),
        device_code_hash: hash_secret(device_code.as_bytes()),
        user_code: sesame_core::device::new_user_code(),
        client_id: sesame_core::ids::ClientId::parse(DEVICE_CLIENT).expect("valid id"),
        scope: form_value(&body, "scope").unwrap_or_default(),
        status: sesame_core::device::DeviceStatus::Pending,
        user_id: None,
        session_id: None,
        auth_time: None,
        amr: Vec::new(),
        grant_id: None,
        created_at: now,
        expires_at: now + sesame_core::device::DEVICE_CODE_TTL,
        last_poll_at: None,
        interval: sesame_core::device::POLL_INTERVAL,
        access_jti: None,
        access_exp: None,
    };
    let Ok(store) = store(&b).await else {
        return refuse(StatusCode::SERVICE_UNAVAILABLE, "server_error");
    };
    if store.insert_device_authorization(&request).await.is_err() {
        return refuse(StatusCode::SERVICE_UNAVAILABLE, "server_error");
    }
    no_store(
        axum::Json(serde_json::json!({
            "device_code": device_code,
            "user_code": sesame_core::device::format_user_code(&request.user_code),
            "expires_in": sesame_core::device::DEVICE_CODE_TTL,
            "interval": sesame_core::device::POLL_INTERVAL,
        }))
        .into_response(),
    )
}

/// RFC 8628 §3.4–§3.5: a poll of a pending device code.
async fn device_poll(b: &Baseline, body: &[u8]) -> Response {
    if form_value(body, "client_id").as_deref() != Some(DEVICE_CLIENT) {
        return refuse(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    let Some(code) = form_value(body, "device_code").filter(|c| c.len() == 43) else {
        return refuse(StatusCode::BAD_REQUEST, "invalid_grant");
    };
    let Ok(store) = store(b).await else {
        return refuse(StatusCode::SERVICE_UNAVAILABLE, "server_error");
    };
    let poll = store
        .poll_device_authorization(&b.tenant, &hash_secret(code.as_bytes()), sesame_core::now())
        .await;
    let (error, description) = match poll {
        Ok(Some(p)) if p.too_fast => ("slow_down", "polling too fast"),
        Ok(Some(_)) => (
            "authorization_pending",
            "the person has not yet approved or denied the request",
        ),
        Ok(None) => ("invalid_grant", "the device code is not valid"),
        Err(_) => return refuse(StatusCode::SERVICE_UNAVAILABLE, "server_error"),
    };
    let body = serde_json::json!({ "error": error, "error_description": description });
    no_store((StatusCode::BAD_REQUEST, axum::Json(body)).into_response())
}

/// sesamed's discovery and JWKS answer, with its RFC 9110 §13.1.2 `If-None-Match` check.
fn document(doc: Option<&Document>, content_type: &'static str, tenant: &str, req: &Request) -> Response {
    let Some(doc) = doc.filter(|_| tenant == "default") else {
        return refuse(StatusCode::NOT_FOUND, "not_found");
    };
    let cache = [
        (
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=300"),
        ),
        (header::ETAG, doc.etag.clone()),
    ];
    let matches = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .map(str::trim)
                .any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t) == doc.etag)
        });
    if matches {
        return (StatusCode::NOT_MODIFIED, cache).into_response();
    }
    let ct = [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))];
    (ct, cache, doc.body.clone()).into_response()
}

async fn discovery(State(b): State<Arc<Baseline>>, Path(tenant): Path<String>, req: Request) -> Response {
    document(b.discovery.as_ref(), "application/json", &tenant, &req)
}

async fn jwks(State(b): State<Arc<Baseline>>, Path(tenant): Path<String>, req: Request) -> Response {
    document(b.jwks.as_ref(), "application/jwk-set+json", &tenant, &req)
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
    // One key per algorithm, generated (the same work as before this baseline had a keyring),
    // sealed and loaded as sesamed loads a tenant's keys, so that introspection verifies with
    // the same `Keyring`.
    let tenant = TenantId::parse("default").expect("valid name");
    let (master, _) = MasterKey::generate();
    let now = sesame_core::now();
    let keys: Result<Vec<_>, _> = SigningAlg::ALL
        .into_iter()
        .map(|alg| sesame_core::keys::new_stored_key(&master, &tenant, alg, KeyState::Active, now))
        .collect();
    let keyring = match keys.and_then(|k| Keyring::load(&master, &k, now)) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("baseline: keys: {e}");
            return ExitCode::FAILURE;
        }
    };
    let state = Arc::new(Baseline {
        secret_hash: hash_secret(secret.expose().as_bytes()),
        client_id,
        keyring,
        tenant,
        issuer: format!("http://127.0.0.1:{port}/t/default"),
        discovery: Document::read(ENV_DISCOVERY),
        jwks: Document::read(ENV_JWKS),
        store_path: std::env::var_os(ENV_STORE).map(PathBuf::from),
        store: tokio::sync::OnceCell::new(),
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
            .route("/t/{tenant}/introspect", post(introspect))
            .route("/t/{tenant}/device_authorization", post(device_authorization))
            .route("/t/{tenant}/.well-known/openid-configuration", get(discovery))
            .route("/t/{tenant}/jwks", get(jwks))
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
