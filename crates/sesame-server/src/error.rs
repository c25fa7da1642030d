//! The one place where a core error becomes an HTTP answer: RFC 6749 §5.2 JSON error object,
//! the status, and `WWW-Authenticate` where the spec asks for it.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sesame_core::Error;

/// Wraps a core error so that handlers can use `?` and return it.
#[derive(Debug)]
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError(e)
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

pub fn status_of(e: &Error) -> StatusCode {
    match e {
        Error::InvalidClient { .. }
        | Error::Unauthorized
        | Error::InvalidToken(_)
        | Error::BearerRequired => StatusCode::UNAUTHORIZED,
        Error::InsufficientScope(_) | Error::Forbidden(_) => StatusCode::FORBIDDEN,
        Error::NotFound(_) => StatusCode::NOT_FOUND,
        Error::Conflict(_) | Error::Refused(_) => StatusCode::CONFLICT,
        Error::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        Error::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        Error::InvalidRequest(_)
        | Error::InvalidGrant(_)
        | Error::UnauthorizedClient(_)
        | Error::UnsupportedGrantType(_)
        | Error::InvalidScope(_)
        | Error::InvalidTarget(_)
        | Error::UnsupportedTokenType(_)
        // RFC 8628 §3.5: the polling answers are token-endpoint errors, 400.
        | Error::AuthorizationPending
        | Error::SlowDown { .. }
        | Error::ExpiredToken
        | Error::AccessDenied(_) => StatusCode::BAD_REQUEST,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let e = self.0;
        if e.is_internal() {
            // The detail goes to the log only; the caller gets a generic description.
            tracing::error!(error = %e, "request failed");
        }
        let body = serde_json::json!({ "error": e.code(), "error_description": e.description() });
        let mut resp = (status_of(&e), axum::Json(body)).into_response();
        let headers = resp.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        match e {
            // RFC 6749 §5.2: 401 with the scheme the client tried (Basic, the one HTTP scheme
            // for client secrets, also for a client that sent its secret in the body: RFC 9110
            // §15.5.2 wants a challenge with every 401), naming the error.
            Error::InvalidClient { .. } => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"sesame\", error=\"invalid_client\""),
                );
            }
            // RFC 6750 §3 for the admin API's bearer tokens.
            Error::Unauthorized => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"sesame-admin\""),
                );
            }
            Error::BearerRequired => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"sesame\""),
                );
            }
            // RFC 6750 §3: the resource's bearer challenge names the error.
            Error::InvalidToken(_) | Error::InsufficientScope(_) => {
                let challenge = format!("Bearer realm=\"sesame\", error=\"{}\"", e.code());
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_str(&challenge).expect("ASCII"),
                );
            }
            _ => {}
        }
        resp
    }
}
