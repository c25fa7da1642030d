//! Discovery documents and the JWKS, served from bytes prepared when the keys change.

use crate::error::ApiResult;
use crate::form::Path;
use crate::state::{AppState, Published};
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sesame_core::admin::JWKS_MAX_AGE;

const CACHE_CONTROL: &str = "public, max-age=300";
const _: () = assert!(JWKS_MAX_AGE == 300, "CACHE_CONTROL must say JWKS_MAX_AGE");

/// The request's `If-None-Match`, alone: taking the whole `HeaderMap` would copy every header.
pub struct IfNoneMatch(Option<HeaderValue>);

impl<S: Send + Sync> FromRequestParts<S> for IfNoneMatch {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(IfNoneMatch(parts.headers.get(header::IF_NONE_MATCH).cloned()))
    }
}

fn serve(doc: &Published, content_type: &'static str, if_none_match: IfNoneMatch) -> Response {
    let cache = [
        (header::CACHE_CONTROL, HeaderValue::from_static(CACHE_CONTROL)),
        (header::ETAG, doc.etag.clone()),
    ];
    // RFC 9110 §13.1.2: If-None-Match uses the weak comparison (a `W/` prefix is ignored),
    // and a match gets 304 without the body.
    let matches = if_none_match
        .0
        .as_ref()
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

pub async fn openid_configuration(
    State(app): State<AppState>,
    Path(tenant): Path<String>,
    if_none_match: IfNoneMatch,
) -> ApiResult<Response> {
    let t = app.tenant(&tenant).await?;
    Ok(serve(&t.openid_configuration, "application/json", if_none_match))
}

pub async fn oauth_metadata(
    State(app): State<AppState>,
    Path(tenant): Path<String>,
    if_none_match: IfNoneMatch,
) -> ApiResult<Response> {
    let t = app.tenant(&tenant).await?;
    Ok(serve(&t.oauth_metadata, "application/json", if_none_match))
}

pub async fn jwks(
    State(app): State<AppState>,
    Path(tenant): Path<String>,
    if_none_match: IfNoneMatch,
) -> ApiResult<Response> {
    let t = app.tenant(&tenant).await?;
    Ok(serve(&t.jwks, "application/jwk-set+json", if_none_match))
}
