use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use sesame_core::secret::verify_secret;
use sesame_core::Error;

/// Liveness: the process answers.
pub async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: the store answers too.
pub async fn readyz(State(app): State<AppState>) -> Response {
    match app.store.ping().await {
        Ok(()) => "ready".into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "store is not reachable");
            (StatusCode::SERVICE_UNAVAILABLE, "store unreachable").into_response()
        }
    }
}

/// Prometheus exposition; behind a bearer token when `metrics_token_env`/`_file` is set.
pub async fn metrics(State(app): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(expected) = &app.metrics_token {
        // RFC 6750 §2.1; the scheme is case-insensitive (RFC 9110 §11.1). Hashing first and
        // comparing in constant time tells nothing about how much of a guess was right.
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim());
        if !presented.is_some_and(|t| verify_secret(t.as_bytes(), expected)) {
            return ApiError(Error::Unauthorized).into_response();
        }
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        app.metrics.render(),
    )
        .into_response()
}

pub async fn not_found() -> ApiError {
    ApiError(Error::NotFound("no such endpoint".into()))
}

pub async fn method_not_allowed() -> Response {
    let body = serde_json::json!({"error": "invalid_request", "error_description": "method not allowed"});
    (StatusCode::METHOD_NOT_ALLOWED, axum::Json(body)).into_response()
}
