//! The admin API of workload identity: sources, the tenant's workload settings, the workload
//! issuer's documents for export, and delegated sessions.

use super::no_store;
use crate::error::ApiResult;
use crate::form::{Json, Path};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use sesame_core::ids::{TenantId, UserId};
use sesame_core::workload::{self, SettingsPatch, Source, SourceId, SourceSpec};
use sesame_core::{admin, Error, Result};

fn tenant_id(s: &str) -> Result<TenantId> {
    TenantId::parse(s).map_err(|_| Error::NotFound(format!("tenant '{}' does not exist", s.escape_debug())))
}

fn source_id(s: &str) -> Result<SourceId> {
    SourceId::parse(s).map_err(|_| Error::NotFound(format!("source '{}' does not exist", s.escape_debug())))
}

fn source_view(s: &Source) -> serde_json::Value {
    let mut v = serde_json::to_value(s).expect("serializes");
    v["resource_id"] = s.resource_id().into();
    v
}

pub async fn list_sources(State(app): State<AppState>, Path(t): Path<String>) -> ApiResult<Response> {
    let tid = tenant_id(&t)?;
    admin::require_tenant(&*app.store, &tid).await?;
    let list: Vec<_> = app
        .store
        .list_sources(&tid)
        .await?
        .iter()
        .map(source_view)
        .collect();
    Ok(axum::Json(json!({ "sources": list })).into_response())
}

pub async fn create_source(
    State(app): State<AppState>,
    Path(t): Path<String>,
    Json(mut spec): Json<SourceSpec>,
) -> ApiResult<Response> {
    // Ids are chosen by the server; only the config file names its own.
    spec.id = None;
    let source = workload::create_source(&*app.store, &tenant_id(&t)?, spec, sesame_core::now()).await?;
    Ok((StatusCode::CREATED, axum::Json(source_view(&source))).into_response())
}

pub async fn show_source(
    State(app): State<AppState>,
    Path((t, s)): Path<(String, String)>,
) -> ApiResult<Response> {
    let source = app
        .store
        .get_source(&tenant_id(&t)?, &source_id(&s)?)
        .await?
        .ok_or_else(|| Error::NotFound(format!("source '{}' does not exist", s.escape_debug())))?;
    Ok(axum::Json(source_view(&source)).into_response())
}

/// Creates or replaces the source with this id: the config file names its sources, so that
/// `sesame apply` and sesamed's start find them again.
pub async fn put_source(
    State(app): State<AppState>,
    Path((t, s)): Path<(String, String)>,
    Json(spec): Json<SourceSpec>,
) -> ApiResult<Response> {
    let id = SourceId::parse(&s)
        .map_err(|_| Error::invalid_request(format!("source id '{}' is not a UUID", s.escape_debug())))?;
    let source = workload::put_source(&*app.store, &tenant_id(&t)?, id, spec, sesame_core::now()).await?;
    Ok(axum::Json(source_view(&source)).into_response())
}

pub async fn delete_source(
    State(app): State<AppState>,
    Path((t, s)): Path<(String, String)>,
) -> ApiResult<Response> {
    if !app.store.delete_source(&tenant_id(&t)?, &source_id(&s)?).await? {
        return Err(Error::NotFound(format!("source '{}' does not exist", s.escape_debug())).into());
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn settings_view(app: &AppState, s: &workload::WorkloadSettings) -> serde_json::Value {
    let sign_in = app.issuer(&s.tenant_id);
    json!({
        "workload_issuer": s.workload_issuer,
        "effective_workload_issuer": s.issuer(&sign_in),
        "session_max_ttl": s.session_max_ttl,
    })
}

pub async fn show_settings(State(app): State<AppState>, Path(t): Path<String>) -> ApiResult<Response> {
    let tid = tenant_id(&t)?;
    admin::require_tenant(&*app.store, &tid).await?;
    let s = workload::settings(&*app.store, &tid).await?;
    Ok(axum::Json(settings_view(&app, &s)).into_response())
}

pub async fn update_settings(
    State(app): State<AppState>,
    Path(t): Path<String>,
    Json(patch): Json<SettingsPatch>,
) -> ApiResult<Response> {
    let s = workload::update_settings(&*app.store, &tenant_id(&t)?, patch).await?;
    Ok(axum::Json(settings_view(&app, &s)).into_response())
}

/// Both documents of the workload issuer, as `sesame admin workload-issuer export` writes them.
pub async fn workload_issuer(State(app): State<AppState>, Path(t): Path<String>) -> ApiResult<Response> {
    let tid = tenant_id(&t)?;
    let state = app.tenant(tid.as_str()).await?;
    let s = workload::settings(&*app.store, &tid).await?;
    let doc = workload::export(s.issuer(&state.issuer), &state.keyring)?;
    Ok(no_store(axum::Json(doc)))
}

pub async fn list_delegated_sessions(
    State(app): State<AppState>,
    Path(t): Path<String>,
) -> ApiResult<Response> {
    let tid = tenant_id(&t)?;
    admin::require_tenant(&*app.store, &tid).await?;
    let list = app
        .store
        .list_delegated_sessions(&tid, None, sesame_core::now())
        .await?;
    Ok(axum::Json(json!({ "sessions": list })).into_response())
}

pub async fn list_user_delegated_sessions(
    State(app): State<AppState>,
    Path((t, u)): Path<(String, String)>,
) -> ApiResult<Response> {
    let tid = tenant_id(&t)?;
    let user = admin::require_user(&*app.store, &tid, &u).await?;
    let list = app
        .store
        .list_delegated_sessions(&tid, Some(&user.id), sesame_core::now())
        .await?;
    Ok(axum::Json(json!({ "sessions": list })).into_response())
}

pub async fn revoke_delegated_session(
    State(app): State<AppState>,
    Path((t, id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let tid = tenant_id(&t)?;
    if !app
        .store
        .revoke_delegated_session(&tid, &id, None::<&UserId>, sesame_core::now())
        .await?
    {
        return Err(Error::NotFound(format!("no live session '{}'", id.escape_debug())).into());
    }
    crate::audit::session_revoked(&app, &tid, &id, "delegated");
    Ok(StatusCode::NO_CONTENT.into_response())
}

// Clients allowed to create delegated sessions for users (`POST /t/{tenant}/client-sessions`).

fn client_id(tenant: &TenantId, s: &str) -> Result<sesame_core::ids::ClientId> {
    sesame_core::ids::ClientId::parse(s).map_err(|_| {
        Error::NotFound(format!(
            "client '{}' does not exist in tenant '{tenant}'",
            s.escape_debug()
        ))
    })
}

/// `GET /admin/v1/tenants/{tenant}/clients/{client}/session-creation`.
pub async fn show_session_creation(
    State(app): State<AppState>,
    Path((t, c)): Path<(String, String)>,
) -> ApiResult<Response> {
    let tid = tenant_id(&t)?;
    let cid = client_id(&tid, &c)?;
    admin::require_client(&*app.store, &tid, &cid).await?;
    let allowed = app.store.session_creator(&tid, &cid).await?;
    Ok(axum::Json(json!({ "client_id": cid, "allowed": allowed })).into_response())
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionCreation {
    allowed: bool,
}

/// `PUT /admin/v1/tenants/{tenant}/clients/{client}/session-creation` with `{"allowed": bool}`.
pub async fn put_session_creation(
    State(app): State<AppState>,
    Path((t, c)): Path<(String, String)>,
    Json(body): Json<SessionCreation>,
) -> ApiResult<Response> {
    let tid = tenant_id(&t)?;
    let cid = client_id(&tid, &c)?;
    if !app
        .store
        .set_session_creator(&tid, &cid, body.allowed, sesame_core::now())
        .await?
    {
        return Err(Error::NotFound(format!("client '{cid}' does not exist in tenant '{tid}'")).into());
    }
    Ok(axum::Json(json!({ "client_id": cid, "allowed": body.allowed })).into_response())
}
