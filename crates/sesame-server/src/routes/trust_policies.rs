//! Admin API for a tenant's trust policies (`/admin/v1/tenants/{tenant}/trust-policies`).
//! Every change refreshes this replica's cache at once; other replicas see it within
//! `cache_refresh_ms`.

use crate::error::ApiResult;
use crate::form::{Json, Path};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use sesame_core::ids::TenantId;
use sesame_core::trust::{self, TrustPolicySpec};
use sesame_core::{Error, Result};

fn tenant_id(s: &str) -> Result<TenantId> {
    TenantId::parse(s).map_err(|_| Error::NotFound(format!("tenant '{}' does not exist", s.escape_debug())))
}

fn not_found(tenant: &TenantId, name: &str) -> Error {
    Error::NotFound(format!(
        "trust policy '{}' does not exist in tenant '{tenant}'",
        name.escape_debug()
    ))
}

pub async fn list(State(app): State<AppState>, Path(t): Path<String>) -> ApiResult<Response> {
    let tid = tenant_id(&t)?;
    sesame_core::admin::require_tenant(&*app.store, &tid).await?;
    let policies = app.store.list_trust_policies(&tid).await?;
    let views: Vec<_> = policies.iter().map(|p| p.view()).collect();
    Ok(axum::Json(json!({ "trust_policies": views })).into_response())
}

pub async fn create(
    State(app): State<AppState>,
    Path(t): Path<String>,
    Json(spec): Json<TrustPolicySpec>,
) -> ApiResult<Response> {
    let tid = tenant_id(&t)?;
    let policy = trust::create_policy(&*app.store, &tid, spec, sesame_core::now()).await?;
    app.refresh_cache().await?;
    Ok((StatusCode::CREATED, axum::Json(policy.view())).into_response())
}

pub async fn show(
    State(app): State<AppState>,
    Path((t, name)): Path<(String, String)>,
) -> ApiResult<Response> {
    let tid = tenant_id(&t)?;
    let policy = app
        .store
        .get_trust_policy(&tid, &name)
        .await?
        .ok_or_else(|| not_found(&tid, &name))?;
    Ok(axum::Json(policy.view()).into_response())
}

/// Replaces a policy whole (its name is the path's).
pub async fn replace(
    State(app): State<AppState>,
    Path((t, name)): Path<(String, String)>,
    Json(spec): Json<TrustPolicySpec>,
) -> ApiResult<Response> {
    let tid = tenant_id(&t)?;
    if spec.name != name {
        return Err(Error::invalid_request("the policy's name differs from the one in the path").into());
    }
    let policy = trust::replace_policy(&*app.store, &tid, spec, sesame_core::now())
        .await?
        .ok_or_else(|| not_found(&tid, &name))?;
    app.refresh_cache().await?;
    Ok(axum::Json(policy.view()).into_response())
}

pub async fn delete(
    State(app): State<AppState>,
    Path((t, name)): Path<(String, String)>,
) -> ApiResult<Response> {
    let tid = tenant_id(&t)?;
    if !app.store.delete_trust_policy(&tid, &name).await? {
        return Err(not_found(&tid, &name).into());
    }
    app.refresh_cache().await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
