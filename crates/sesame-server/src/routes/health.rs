use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
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

pub async fn metrics(State(app): State<AppState>) -> Response {
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
