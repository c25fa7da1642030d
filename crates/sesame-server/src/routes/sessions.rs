//! Delegated sessions as their owner sees them: `POST /t/{tenant}/sessions` creates one (its id
//! and one-time nonce), `GET` lists the owner's, `DELETE /t/{tenant}/sessions/{id}` revokes one.
//! Every request carries the person's access token (RFC 6750 §2.1).

use super::no_store;
use crate::error::ApiResult;
use crate::form::{Form, Path};
use crate::state::{AppState, TenantState};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use sesame_core::ids::ClientId;
use sesame_core::model::User;
use sesame_core::sessions::{self, Creator};
use sesame_core::token::ValidAccessToken;
use sesame_core::{workload, Error, Result};
use std::sync::Arc;

/// The person behind a bearer access token: valid, its client still standing behind it, not
/// revoked, its session (if any) live, its subject an enabled user of the tenant.
async fn person(
    app: &AppState,
    t: &TenantState,
    headers: &HeaderMap,
) -> Result<(User, Arc<ValidAccessToken>)> {
    let presented = super::userinfo::bearer(headers)?.ok_or(Error::BearerRequired)?;
    let invalid = || Error::InvalidToken("the access token is not valid".into());
    let now = sesame_core::now();
    let valid = t.validate_access_token(&presented, now).ok_or_else(invalid)?;
    let jti = valid.jti().ok_or_else(invalid)?;
    let issued_to = match valid.client_id() {
        Some(id) => t.token_client(&*app.store, id).await?,
        None => None,
    };
    if !valid.client_honours(issued_to.as_deref())
        || app.store.is_access_token_revoked(&t.tenant.id, jti).await?
    {
        return Err(invalid());
    }
    if !sessions::token_session_live(&*app.store, &t.tenant.id, &valid.claims, now).await? {
        return Err(invalid());
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
        .ok_or_else(|| {
            Error::InvalidToken("the access token does not stand for a person of this tenant".into())
        })?;
    Ok((user, valid))
}

pub async fn create(
    State(app): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    form: Form,
) -> ApiResult<Response> {
    let t = app.tenant(&tenant).await?;
    let (user, token) = person(&app, &t, &headers).await?;
    let client_id = form.required("client_id")?;
    let client = match ClientId::parse(client_id) {
        Ok(id) => t.client(&*app.store, &id).await?,
        Err(_) => None,
    };
    let ttl = match form.single("ttl")? {
        Some(v) => Some(
            v.parse::<i64>()
                .map_err(|_| Error::invalid_request("ttl must be a number of seconds"))?,
        ),
        None => None,
    };
    let settings = workload::settings(&*app.store, &t.tenant.id).await?;
    let token_scope = token.claims.get("scope").and_then(|v| v.as_str()).unwrap_or("");
    let now = sesame_core::now();
    let created = sessions::create(
        &*app.store,
        &t.tenant.id,
        &settings,
        Creator {
            user: &user,
            token_scope,
            parent_sid: sessions::token_session(&token.claims),
        },
        client.as_deref(),
        form.single("scope")?,
        ttl,
        now,
    )
    .await?;
    let s = &created.session;
    let body = json!({
        "session_id": s.id,
        "nonce": created.nonce,
        "nonce_expires_in": s.nonce_expires_at - now,
        "client_id": s.client_id,
        "scope": s.scope,
        "expires_at": s.expires_at,
        "parent_id": s.parent_id,
    });
    Ok((StatusCode::CREATED, no_store(axum::Json(body))).into_response())
}

pub async fn list(
    State(app): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let t = app.tenant(&tenant).await?;
    let (user, _) = person(&app, &t, &headers).await?;
    let list = app
        .store
        .list_delegated_sessions(&t.tenant.id, Some(&user.id), sesame_core::now())
        .await?;
    Ok(no_store(axum::Json(json!({ "sessions": list }))))
}

pub async fn revoke(
    State(app): State<AppState>,
    Path((tenant, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let t = app.tenant(&tenant).await?;
    let (user, _) = person(&app, &t, &headers).await?;
    // Another person's session answers as an unknown one.
    if !app
        .store
        .revoke_delegated_session(&t.tenant.id, &id, Some(&user.id), sesame_core::now())
        .await?
    {
        return Err(Error::NotFound("no such live session of yours".into()).into());
    }
    crate::audit::session_revoked_by_owner(&app, &t.tenant.id, &id, &user.id);
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /t/{tenant}/client-sessions`: a client, with its own credentials (as at `/introspect`),
/// creates a session for a user it names (`user`: id or username) with `scope` (at most the
/// scopes it may get itself) and `ttl`; only a client the tenant allowed it
/// (`PUT /admin/v1/tenants/{tenant}/clients/{client}/session-creation`). It binds the nonce
/// itself at `/token`.
pub async fn create_by_client(
    State(app): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    form: Form,
) -> ApiResult<Response> {
    let t = app.tenant(&tenant).await?;
    let client = super::oauth::authenticate(&app, &t, &headers, &form, "/client-sessions").await?;
    // Real client authentication only: a public client proves nothing about itself.
    if client.client_type == sesame_core::model::ClientType::Public {
        return Err(Error::InvalidClient { basic: false }.into());
    }
    let user = form.required("user")?;
    let ttl = match form.single("ttl")? {
        Some(v) => Some(
            v.parse::<i64>()
                .map_err(|_| Error::invalid_request("ttl must be a number of seconds"))?,
        ),
        None => None,
    };
    let settings = workload::settings(&*app.store, &t.tenant.id).await?;
    let now = sesame_core::now();
    let created = sessions::create_by_client(
        &*app.store,
        &t.tenant.id,
        &settings,
        &client,
        user,
        form.single("scope")?,
        ttl,
        now,
    )
    .await?;
    let s = &created.session;
    crate::audit::session_created_by_client(&app, &t.tenant.id, &s.id, &s.client_id, &s.user_id);
    let body = json!({
        "session_id": s.id,
        "nonce": created.nonce,
        "nonce_expires_in": s.nonce_expires_at - now,
        "client_id": s.client_id,
        "user_id": s.user_id,
        "scope": s.scope,
        "expires_at": s.expires_at,
    });
    Ok((StatusCode::CREATED, no_store(axum::Json(body))).into_response())
}
