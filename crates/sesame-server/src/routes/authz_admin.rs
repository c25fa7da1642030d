//! Admin API of authorization (`/admin/v1/tenants/{tenant}/…`): teams and their members,
//! resource types, resources and their grants, and a check on anyone's behalf.
//! Permissions for the admin policy table: reads need `authz:read`, changes `authz:write`
//! (noted on each handler).

use super::authz::{idp_aware, run_checks, run_list, Caller, ListRequest};
use crate::error::ApiResult;
use crate::form::{Json, Path};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{json, Value};
use sesame_core::authz::{self, Grant, NewResourceType, NewTeam, ResourceRef, Subject, TeamRole};
use sesame_core::ids::TenantId;
use sesame_core::{Error, Result};

fn tenant_id(s: &str) -> Result<TenantId> {
    TenantId::parse(s).map_err(|_| Error::NotFound(format!("tenant '{}' does not exist", s.escape_debug())))
}

async fn tenant(app: &AppState, s: &str) -> Result<TenantId> {
    let id = tenant_id(s)?;
    sesame_core::admin::require_tenant(&*app.store, &id).await?;
    Ok(id)
}

fn resource(kind: &str, id: &str) -> Result<ResourceRef> {
    ResourceRef::parse(kind, id)
}

// Teams ----------------------------------------------------------------------------------------

/// `authz:read`
pub async fn list_teams(State(app): State<AppState>, Path(t): Path<String>) -> ApiResult<Response> {
    let tid = tenant(&app, &t).await?;
    let teams = app.store.list_teams(&tid).await?;
    Ok(axum::Json(json!({ "teams": teams })).into_response())
}

/// `authz:write`
pub async fn create_team(
    State(app): State<AppState>,
    Path(t): Path<String>,
    Json(new): Json<NewTeam>,
) -> ApiResult<Response> {
    let tid = tenant_id(&t)?;
    let team = authz::create_team(&*app.store, &tid, new, sesame_core::now()).await?;
    Ok((StatusCode::CREATED, axum::Json(team)).into_response())
}

/// `authz:read`: the team and its members.
pub async fn show_team(
    State(app): State<AppState>,
    Path((t, team)): Path<(String, String)>,
) -> ApiResult<Response> {
    let tid = tenant(&app, &t).await?;
    let team = authz::require_team(&*app.store, &tid, &team).await?;
    let members = app.store.list_team_members(&tid, &team.id).await?;
    let mut v = serde_json::to_value(&team).expect("team serializes");
    v["members"] = json!(members);
    Ok(axum::Json(v).into_response())
}

/// `authz:write`
pub async fn delete_team(
    State(app): State<AppState>,
    Path((t, team)): Path<(String, String)>,
) -> ApiResult<Response> {
    let tid = tenant(&app, &t).await?;
    let team = authz::require_team(&*app.store, &tid, &team).await?;
    app.store.delete_team(&tid, &team.id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct MemberBody {
    role: Option<String>,
}

/// `authz:write`: adds a member or sets its role (`member` by default).
pub async fn put_member(
    State(app): State<AppState>,
    Path((t, team, user)): Path<(String, String, String)>,
    Json(body): Json<MemberBody>,
) -> ApiResult<Response> {
    let tid = tenant(&app, &t).await?;
    let team = authz::require_team(&*app.store, &tid, &team).await?;
    let role = TeamRole::parse(body.role.as_deref().unwrap_or("member"))?;
    match authz::put_member(&*app.store, &tid, &team, &user, role).await {
        Ok(user) => Ok(axum::Json(json!({ "team": team.id, "user_id": user, "role": role })).into_response()),
        Err(e) => Ok(idp_aware(e)),
    }
}

/// `authz:write`
pub async fn delete_member(
    State(app): State<AppState>,
    Path((t, team, user)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    let tid = tenant(&app, &t).await?;
    let team = authz::require_team(&*app.store, &tid, &team).await?;
    match authz::remove_member(&*app.store, &tid, &team, &user).await {
        Ok(true) => Ok(StatusCode::NO_CONTENT.into_response()),
        Ok(false) => Err(Error::NotFound(format!(
            "user '{}' is not a member of team {}",
            user.escape_debug(),
            team.id
        ))
        .into()),
        Err(e) => Ok(idp_aware(e)),
    }
}

// Resource types -------------------------------------------------------------------------------

/// `authz:read`
pub async fn list_types(State(app): State<AppState>, Path(t): Path<String>) -> ApiResult<Response> {
    let tid = tenant(&app, &t).await?;
    let types = app.store.list_resource_types(&tid).await?;
    Ok(axum::Json(json!({ "resource_types": types })).into_response())
}

/// `authz:write`: declares a type or replaces its relations (absent: the default ones).
pub async fn put_type(
    State(app): State<AppState>,
    Path((t, name)): Path<(String, String)>,
    Json(spec): Json<NewResourceType>,
) -> ApiResult<Response> {
    let tid = tenant_id(&t)?;
    let rt = authz::put_resource_type(&*app.store, &tid, &name, spec, sesame_core::now()).await?;
    Ok(axum::Json(rt).into_response())
}

// Resources ------------------------------------------------------------------------------------

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ResourceBody {
    parent: Option<ResourceRef>,
    /// Grants `owner` to this subject when the resource is created.
    owner: Option<Subject>,
}

/// `authz:write`: creates a resource or moves it (the body's `parent`, or none).
pub async fn put_resource(
    State(app): State<AppState>,
    Path((t, kind, id)): Path<(String, String, String)>,
    Json(body): Json<ResourceBody>,
) -> ApiResult<Response> {
    let tid = tenant_id(&t)?;
    let r = resource(&kind, &id)?;
    let parent = body
        .parent
        .map(|p| ResourceRef::parse(&p.kind, &p.id))
        .transpose()?;
    let now = sesame_core::now();
    let created = authz::put_resource(&*app.store, &tid, r.clone(), parent, now).await?;
    if let Some(owner) = body.owner {
        let grant = Grant {
            resource: r,
            relation: authz::OWNER.into(),
            subject: owner,
        };
        authz::add_grant(&*app.store, &tid, &grant, now).await?;
    }
    Ok(axum::Json(created).into_response())
}

/// `authz:read`: the resource and its grants.
pub async fn show_resource(
    State(app): State<AppState>,
    Path((t, kind, id)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    let tid = tenant(&app, &t).await?;
    let r = resource(&kind, &id)?;
    let found = app
        .store
        .get_resource(&tid, &r)
        .await?
        .ok_or_else(|| Error::NotFound(format!("resource {r} does not exist")))?;
    let grants = app.store.list_grants(&tid, &r).await?;
    let mut v = serde_json::to_value(&found).expect("resource serializes");
    v["grants"] = json!(grants);
    Ok(axum::Json(v).into_response())
}

/// `authz:write`: refused while it has children.
pub async fn delete_resource(
    State(app): State<AppState>,
    Path((t, kind, id)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    let tid = tenant(&app, &t).await?;
    let r = resource(&kind, &id)?;
    if !app.store.delete_resource(&tid, &r).await? {
        return Err(Error::NotFound(format!("resource {r} does not exist")).into());
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantBody {
    relation: String,
    subject: Subject,
}

/// `authz:write`
pub async fn add_grant(
    State(app): State<AppState>,
    Path((t, kind, id)): Path<(String, String, String)>,
    Json(body): Json<GrantBody>,
) -> ApiResult<Response> {
    let tid = tenant_id(&t)?;
    let grant = Grant {
        resource: resource(&kind, &id)?,
        relation: body.relation,
        subject: body.subject,
    };
    authz::add_grant(&*app.store, &tid, &grant, sesame_core::now()).await?;
    Ok((StatusCode::CREATED, axum::Json(grant)).into_response())
}

/// `authz:read`
pub async fn list_grants(
    State(app): State<AppState>,
    Path((t, kind, id)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    let tid = tenant(&app, &t).await?;
    let r = resource(&kind, &id)?;
    if app.store.get_resource(&tid, &r).await?.is_none() {
        return Err(Error::NotFound(format!("resource {r} does not exist")).into());
    }
    let grants = app.store.list_grants(&tid, &r).await?;
    Ok(axum::Json(json!({ "grants": grants })).into_response())
}

/// `authz:write`: `…/grants/{relation}/{subject_type}/{subject_id}`. The last owner stays (409).
pub async fn delete_grant(
    State(app): State<AppState>,
    Path((t, kind, id, relation, stype, sid)): Path<(String, String, String, String, String, String)>,
) -> ApiResult<Response> {
    let tid = tenant(&app, &t).await?;
    let grant = Grant {
        resource: resource(&kind, &id)?,
        relation,
        subject: Subject::parse(&stype, &sid)?,
    };
    if !authz::remove_grant(&*app.store, &tid, &grant).await? {
        return Err(Error::NotFound("no such grant".into()).into());
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

// Checks on anyone's behalf ---------------------------------------------------------------------

/// `authz:read`: the public check's body and answer.
pub async fn check(
    State(app): State<AppState>,
    Path(t): Path<String>,
    Json(body): Json<Value>,
) -> ApiResult<Response> {
    let state = app.tenant(&t).await?;
    run_checks(&app, &state, &Caller::Client, body).await
}

/// `authz:read`: the public list's body and answer.
pub async fn list(
    State(app): State<AppState>,
    Path(t): Path<String>,
    Json(req): Json<ListRequest>,
) -> ApiResult<Response> {
    let state = app.tenant(&t).await?;
    run_list(&app, &state, &Caller::Client, req).await
}
