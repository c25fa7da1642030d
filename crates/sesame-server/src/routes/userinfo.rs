//! The userinfo endpoint (OpenID Connect Core §5.3), a bearer-protected resource (RFC 6750).

use super::no_store;
use crate::error::ApiResult;
use crate::form::{OptionalForm, Path};
use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::Response;
use sesame_core::{claims, token, Error, Result};

pub async fn get(
    State(app): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let token = bearer(&headers)?.ok_or_else(missing)?;
    answer(&app, &tenant, &token).await
}

/// RFC 6750 §2.2: a POST may carry the token in the form body instead of the header.
pub async fn post(
    State(app): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    OptionalForm(form): OptionalForm,
) -> ApiResult<Response> {
    let from_header = bearer(&headers)?;
    let from_body = match &form {
        Some(f) => f.single("access_token")?.map(str::to_owned),
        None => None,
    };
    // RFC 6750 §2: one method per request.
    let token = match (from_header, from_body) {
        (Some(_), Some(_)) => {
            return Err(Error::invalid_request("the token was sent in more than one way").into())
        }
        (Some(t), None) | (None, Some(t)) => t,
        (None, None) => return Err(missing().into()),
    };
    answer(&app, &tenant, &token).await
}

fn missing() -> Error {
    Error::BearerRequired
}

pub(crate) fn bearer(headers: &HeaderMap) -> Result<Option<String>> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| Error::InvalidToken("the Authorization header is malformed".into()))?;
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => {
            Ok(Some(token.trim().to_owned()))
        }
        _ => Err(Error::InvalidToken(
            "the Authorization header is not a Bearer token".into(),
        )),
    }
}

async fn answer(app: &AppState, tenant: &str, presented: &str) -> ApiResult<Response> {
    let t = app.tenant(tenant).await?;
    let invalid = || Error::InvalidToken("the access token is not valid".into());
    let valid = token::validate_access_token(&t.issuer, &t.keyring, presented, sesame_core::now())
        .ok_or_else(invalid)?;
    let jti = valid.jti().ok_or_else(invalid)?;
    // A deleted or disabled client's tokens, from the cache.
    let issued_to = match valid.client_id() {
        Some(id) => t.token_client(&*app.store, id).await?,
        None => None,
    };
    if !valid.client_honours(issued_to.as_deref()) {
        return Err(invalid().into());
    }
    if app.store.is_access_token_revoked(&t.tenant.id, jti).await? {
        return Err(invalid().into());
    }
    if !sesame_core::sessions::token_session_live(
        &*app.store,
        &t.tenant.id,
        &valid.claims,
        sesame_core::now(),
    )
    .await?
    {
        return Err(invalid().into());
    }
    let scope = valid.claims.get("scope").and_then(|v| v.as_str()).unwrap_or("");
    // OpenID Connect Core §5.3: userinfo answers tokens issued for the openid scope.
    if !scope.split(' ').any(|s| s == "openid") {
        return Err(Error::InsufficientScope("the access token lacks the openid scope".into()).into());
    }
    let sub = valid
        .claims
        .get("sub")
        .and_then(|v| v.as_str())
        .ok_or_else(invalid)?;
    let user = app
        .store
        .get_user(&t.tenant.id, sub)
        .await?
        .filter(|u| u.id.as_str() == sub && !u.disabled)
        .ok_or_else(invalid)?;
    let mut answer = claims::userinfo(&user, scope);
    // Brokered SSO's groups: the store is read only for tokens with the groups scope.
    if let Some(groups) = sesame_core::token::groups_if_asked(&*app.store, &user, scope).await? {
        answer["groups"] = serde_json::json!(groups);
    }
    // Authorization's roles (whole, however long): read only for tokens with the roles scope.
    if scope.split(' ').any(|s| s == "roles") {
        answer["roles"] = serde_json::json!(sesame_core::authz::roles(&*app.store, &user).await?);
    }
    Ok(no_store(axum::Json(answer)))
}
