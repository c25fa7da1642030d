//! The admin API of brokered SSO (`/admin/v1/tenants/{t}/sso…`): connections, the tenant's
//! password option, and a user's admin flag, groups and external identities. Secrets go in,
//! never out: a connection is shown with `client_secret_set`, never its secret.

use super::no_store;
use crate::error::ApiResult;
use crate::form::{Json, Path};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use sesame_core::federation::{self, ConnectionSpec};
use sesame_core::ids::TenantId;
use sesame_core::{admin, Error, Result};

fn tenant_id(s: &str) -> Result<TenantId> {
    TenantId::parse(s).map_err(|_| Error::NotFound(format!("tenant '{}' does not exist", s.escape_debug())))
}

pub async fn list(State(app): State<AppState>, Path(t): Path<String>) -> ApiResult<Response> {
    let tid = tenant_id(&t)?;
    admin::require_tenant(&*app.store, &tid).await?;
    let conns = app.store.list_sso_connections(&tid).await?;
    let views: Vec<Value> = conns.iter().map(|c| c.view()).collect();
    Ok(axum::Json(json!({ "connections": views })).into_response())
}

pub async fn create(
    State(app): State<AppState>,
    Path(t): Path<String>,
    Json(mut spec): Json<ConnectionSpec>,
) -> ApiResult<Response> {
    let tid = tenant_id(&t)?;
    crate::saml_metadata::fill(&mut spec).await?;
    let conn =
        federation::create_connection(&*app.store, &app.master, &tid, spec, sesame_core::now()).await?;
    Ok((StatusCode::CREATED, no_store(axum::Json(conn.view()))).into_response())
}

pub async fn show(State(app): State<AppState>, Path((t, c)): Path<(String, String)>) -> ApiResult<Response> {
    let conn = federation::require_connection(&*app.store, &tenant_id(&t)?, &c).await?;
    Ok(axum::Json(conn.view()).into_response())
}

pub async fn update(
    State(app): State<AppState>,
    Path((t, c)): Path<(String, String)>,
    Json(mut patch): Json<Map<String, Value>>,
) -> ApiResult<Response> {
    let tid = tenant_id(&t)?;
    // SAML: naming idp_metadata_url (even the same one) fetches the IdP's metadata again.
    if let (Some(Value::String(url)), false) = (
        patch.get("idp_metadata_url"),
        patch.contains_key("idp_metadata_xml"),
    ) {
        let xml = crate::saml_metadata::fetch(url).await?;
        patch.insert("idp_metadata_xml".into(), Value::String(xml));
    }
    let conn =
        federation::update_connection(&*app.store, &app.master, &tid, &c, patch, sesame_core::now()).await?;
    Ok(no_store(axum::Json(conn.view())))
}

pub async fn delete(
    State(app): State<AppState>,
    Path((t, c)): Path<(String, String)>,
) -> ApiResult<Response> {
    let tid = tenant_id(&t)?;
    let conn = federation::require_connection(&*app.store, &tid, &c).await?;
    app.store.delete_sso_connection(&tid, &conn.id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    password_sign_in: bool,
}

pub async fn show_settings(State(app): State<AppState>, Path(t): Path<String>) -> ApiResult<Response> {
    let tid = tenant_id(&t)?;
    admin::require_tenant(&*app.store, &tid).await?;
    let allowed = app.store.password_sign_in(&tid).await?;
    Ok(axum::Json(json!({ "password_sign_in": allowed })).into_response())
}

pub async fn put_settings(
    State(app): State<AppState>,
    Path(t): Path<String>,
    Json(s): Json<Settings>,
) -> ApiResult<Response> {
    let tid = tenant_id(&t)?;
    admin::require_tenant(&*app.store, &tid).await?;
    app.store.set_password_sign_in(&tid, s.password_sign_in).await?;
    Ok(axum::Json(json!({ "password_sign_in": s.password_sign_in })).into_response())
}

/// A user's admin flag by source, groups and linked identities.
pub async fn show_user(
    State(app): State<AppState>,
    Path((t, u)): Path<(String, String)>,
) -> ApiResult<Response> {
    let tid = tenant_id(&t)?;
    let user = admin::require_user(&*app.store, &tid, &u).await?;
    let flag = app.store.user_admin(&tid, &user.id).await?;
    let groups = app.store.user_groups(&tid, &user.id).await?;
    let identities: Vec<Value> = app
        .store
        .user_external_identities(&tid, &user.id)
        .await?
        .into_iter()
        .map(|(c, s)| json!({ "connection": c, "subject": s }))
        .collect();
    Ok(axum::Json(json!({
        "user_id": user.id,
        "admin": flag.is_admin(),
        "admin_by_hand": flag.by_hand,
        "admin_by_sso": flag.by_sso,
        "groups": groups,
        "external_identities": identities,
    }))
    .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminChange {
    admin: bool,
}

/// Sets the hand-set admin flag (SSO never changes it).
pub async fn put_admin(
    State(app): State<AppState>,
    Path((t, u)): Path<(String, String)>,
    Json(change): Json<AdminChange>,
) -> ApiResult<Response> {
    let tid = tenant_id(&t)?;
    let user = admin::require_user(&*app.store, &tid, &u).await?;
    app.store.set_user_admin(&tid, &user.id, change.admin).await?;
    show_user(State(app), Path((t, u))).await
}
