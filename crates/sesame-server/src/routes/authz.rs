//! The public authorization API: `/t/{tenant}/authz/check` (one question or a batch),
//! `/t/{tenant}/authz/list`, and team managers' member changes
//! (`/t/{tenant}/teams/{team}/members/{user}`).
//!
//! Callers: a client of the tenant with its own credentials (HTTP Basic, as at `/introspect`)
//! may ask about anyone; a person with their own access token (Bearer) only about themselves.

use super::no_store;
use crate::error::ApiResult;
use crate::form::{Form, Json, Path};
use crate::state::{AppState, TenantState};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{json, Value};
use sesame_core::authz::{self, Check, CheckSubject, Decision, Graph, TeamRole};
use sesame_core::ids::UserId;
use sesame_core::model::ClientType;
use sesame_core::{Error, Result};

/// Who is asking.
pub(super) enum Caller {
    /// An authenticated, confidential client of the tenant.
    Client,
    /// A person, by their own access token.
    Person(UserId),
}

/// A JSON error answer with a status and code of its own (the ones `Error` has no variant for).
pub(super) fn refusal(status: StatusCode, code: &str, description: &str) -> Response {
    let mut resp = (
        status,
        axum::Json(json!({ "error": code, "error_description": description })),
    )
        .into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// 403: a person asking about someone else, or a member who is not a manager.
fn forbidden(description: &str) -> Response {
    refusal(StatusCode::FORBIDDEN, "access_denied", description)
}

/// 409 `invalid_request`: a manual member change of a team that follows an IdP group.
pub(super) fn follows_idp(description: &str) -> Response {
    refusal(StatusCode::CONFLICT, "invalid_request", description)
}

pub(super) async fn caller(app: &AppState, t: &TenantState, headers: &HeaderMap) -> Result<Caller> {
    let scheme = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .map(|(s, _)| s.to_ascii_lowercase());
    match scheme.as_deref() {
        Some("bearer") => person(app, t, headers).await.map(Caller::Person),
        Some("basic") => {
            // The body is JSON: the client's credentials come in the header only.
            let client = super::oauth::authenticate(app, t, headers, &Form::parse(b"")?, "/authz").await?;
            // As at introspection (RFC 7662 §2.1): a public client has no credentials to show.
            if client.client_type == ClientType::Public {
                return Err(Error::InvalidClient { basic: true });
            }
            Ok(Caller::Client)
        }
        _ => Err(Error::InvalidClient { basic: false }),
    }
}

/// The person an access token of this tenant speaks for, checked as userinfo checks it:
/// signature and time, its client still there and enabled, not revoked, its delegated session
/// live, the user there and enabled.
pub(super) async fn person(app: &AppState, t: &TenantState, headers: &HeaderMap) -> Result<UserId> {
    let presented = super::userinfo::bearer(headers)?.ok_or(Error::BearerRequired)?;
    let invalid = || Error::InvalidToken("the access token is not valid".into());
    let now = sesame_core::now();
    let valid = t.validate_access_token(&presented, now).ok_or_else(invalid)?;
    let jti = valid.jti().ok_or_else(invalid)?;
    let issued_to = match valid.client_id() {
        Some(id) => t.token_client(&*app.store, id).await?,
        None => None,
    };
    if !valid.client_honours(issued_to.as_deref()) {
        return Err(invalid());
    }
    if app.store.is_access_token_revoked(&t.tenant.id, jti).await? {
        return Err(invalid());
    }
    if !sesame_core::sessions::token_session_live(&*app.store, &t.tenant.id, &valid.claims, now).await? {
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
        .ok_or_else(invalid)?;
    Ok(user.id)
}

/// One answer, or the error of that one question within a batch.
fn answer_json(result: Result<std::sync::Arc<Decision>>) -> Value {
    match result {
        Ok(d) => serde_json::to_value(&*d).expect("decision serializes"),
        Err(e) => json!({ "error": e.code(), "error_description": e.description() }),
    }
}

fn parse_check(v: Value) -> Result<Check> {
    serde_json::from_value(v).map_err(|e| Error::InvalidRequest(format!("the check is not valid: {e}")))
}

/// Where a denial is recorded: in the audit log when the caller asked (`"audit": true`).
pub(super) struct Recorder<'a> {
    app: &'a AppState,
    tenant: &'a sesame_core::ids::TenantId,
    audit: bool,
}

/// Answers a check from the graph; a denial is handed to [`denied`].
pub(super) fn decide(
    graph: &Graph,
    check: &Check,
    recorder: &Recorder<'_>,
) -> Result<std::sync::Arc<Decision>> {
    let decision = graph.check(check.subject.user(), &check.action, &check.resource)?;
    if let Some(denial) = authz::denial(check, &decision) {
        denied(denial, recorder);
    }
    Ok(decision)
}

/// The one point every denied check passes.
fn denied(check: &Check, recorder: &Recorder<'_>) {
    tracing::debug!(user = %check.subject.user(), action = %check.action, resource = %check.resource, "authz check denied");
    if recorder.audit {
        crate::audit::authz_denied(recorder.app, recorder.tenant, check);
    }
}

/// Takes the request's `"audit"` member (a boolean, default false) out of a check body.
fn take_audit(body: &mut Value) -> Result<bool> {
    match body.as_object_mut().and_then(|o| o.remove("audit")) {
        None => Ok(false),
        Some(Value::Bool(b)) => Ok(b),
        Some(_) => Err(Error::invalid_request("'audit' must be true or false")),
    }
}

/// Runs a single check (`{subject, action, resource}`) or a batch (`{checks: […]}`, at most
/// [`authz::MAX_BATCH`]) against the tenant's current graph.
pub(super) async fn run_checks(
    app: &AppState,
    t: &TenantState,
    caller: &Caller,
    mut body: Value,
) -> ApiResult<Response> {
    let recorder = Recorder {
        app,
        tenant: &t.tenant.id,
        audit: take_audit(&mut body)?,
    };
    let batch = match body {
        Value::Object(mut o) if o.contains_key("checks") => match o.remove("checks") {
            Some(Value::Array(items)) if o.is_empty() => Some(items),
            _ => {
                return Err(
                    Error::invalid_request("'checks' must be the only member, an array of checks").into(),
                )
            }
        },
        other => {
            let check = parse_check(other)?;
            if let Caller::Person(me) = caller {
                if check.subject.user() != me {
                    return Ok(forbidden("a person may ask only about themselves"));
                }
            }
            let graph = app.authz.graph(&*app.store, &t.tenant.id).await?;
            let d = decide(&graph, &check, &recorder)?;
            return Ok(no_store(axum::Json(&*d)));
        }
    };
    let items = batch.unwrap_or_default();
    if items.is_empty() || items.len() > authz::MAX_BATCH {
        return Err(Error::InvalidRequest(format!("a batch has 1 to {} checks", authz::MAX_BATCH)).into());
    }
    let checks = items.into_iter().map(parse_check).collect::<Result<Vec<_>>>()?;
    if let Caller::Person(me) = caller {
        if checks.iter().any(|c| c.subject.user() != me) {
            return Ok(forbidden("a person may ask only about themselves"));
        }
    }
    let graph = app.authz.graph(&*app.store, &t.tenant.id).await?;
    let results: Vec<Value> = checks
        .iter()
        .map(|c| answer_json(decide(&graph, c, &recorder)))
        .collect();
    Ok(no_store(axum::Json(json!({ "results": results }))))
}

pub async fn check(
    State(app): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> ApiResult<Response> {
    let t = app.tenant(&tenant).await?;
    let caller = caller(&app, &t, &headers).await?;
    run_checks(&app, &t, &caller, body).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListRequest {
    subject: CheckSubject,
    action: String,
    #[serde(rename = "type")]
    kind: String,
    limit: Option<usize>,
    cursor: Option<String>,
}

pub(super) async fn run_list(
    app: &AppState,
    t: &TenantState,
    caller: &Caller,
    req: ListRequest,
) -> ApiResult<Response> {
    if let Caller::Person(me) = caller {
        if req.subject.user() != me {
            return Ok(forbidden("a person may ask only about themselves"));
        }
    }
    let graph = app.authz.graph(&*app.store, &t.tenant.id).await?;
    let (ids, next) = graph.list(
        req.subject.user(),
        &req.action,
        &req.kind,
        req.cursor.as_deref(),
        req.limit.unwrap_or(authz::MAX_LIST),
    )?;
    Ok(no_store(axum::Json(json!({ "ids": ids, "next_cursor": next }))))
}

pub async fn list(
    State(app): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    Json(req): Json<ListRequest>,
) -> ApiResult<Response> {
    let t = app.tenant(&tenant).await?;
    let caller = caller(&app, &t, &headers).await?;
    run_list(&app, &t, &caller, req).await
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct MemberBody {
    role: Option<String>,
}

/// The team, if the person manages it; else the answer to give.
async fn managed_team(
    app: &AppState,
    t: &TenantState,
    headers: &HeaderMap,
    team: &str,
) -> ApiResult<std::result::Result<(authz::Team, UserId), Response>> {
    let me = person(app, t, headers).await?;
    let team = authz::require_team(&*app.store, &t.tenant.id, team).await?;
    let manages = app
        .store
        .user_teams(&t.tenant.id, &me)
        .await?
        .iter()
        .any(|(id, role)| *id == team.id && *role == TeamRole::Manager);
    if !manages {
        return Ok(Err(forbidden("only the team's managers may change its members")));
    }
    if let Some(refusal) = team.manual_edit_refusal() {
        return Ok(Err(follows_idp(&refusal)));
    }
    Ok(Ok((team, me)))
}

/// A manager adds a member (role `member` only; managers are made by tenant admins).
pub async fn put_member(
    State(app): State<AppState>,
    Path((tenant, team, user)): Path<(String, String, String)>,
    headers: HeaderMap,
    Json(body): Json<MemberBody>,
) -> ApiResult<Response> {
    let t = app.tenant(&tenant).await?;
    let (team, _) = match managed_team(&app, &t, &headers, &team).await? {
        Ok(v) => v,
        Err(resp) => return Ok(resp),
    };
    let role = TeamRole::parse(body.role.as_deref().unwrap_or("member"))?;
    if role != TeamRole::Member {
        return Ok(forbidden(
            "managers may add members; a tenant admin makes managers",
        ));
    }
    if let Some(member) = current_role(&app, &t, &team, &user).await? {
        if member == TeamRole::Manager {
            return Ok(forbidden("a manager's role is changed by a tenant admin"));
        }
    }
    let user = authz::put_member(&*app.store, &t.tenant.id, &team, &user, role).await?;
    Ok(no_store(axum::Json(
        json!({ "team": team.id, "user_id": user, "role": role }),
    )))
}

async fn current_role(
    app: &AppState,
    t: &TenantState,
    team: &authz::Team,
    user: &str,
) -> Result<Option<TeamRole>> {
    let Ok(user) = authz::find_user(&*app.store, &t.tenant.id, user).await else {
        return Ok(None);
    };
    Ok(app
        .store
        .list_team_members(&t.tenant.id, &team.id)
        .await?
        .into_iter()
        .find(|m| m.user_id == user)
        .map(|m| m.role))
}

/// A manager removes a member, or themselves; another manager only a tenant admin removes.
pub async fn delete_member(
    State(app): State<AppState>,
    Path((tenant, team, user)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let t = app.tenant(&tenant).await?;
    let (team, me) = match managed_team(&app, &t, &headers, &team).await? {
        Ok(v) => v,
        Err(resp) => return Ok(resp),
    };
    let target = authz::find_user(&*app.store, &t.tenant.id, &user).await?;
    if target != me && current_role(&app, &t, &team, target.as_str()).await? == Some(TeamRole::Manager) {
        return Ok(forbidden("a manager is removed by a tenant admin"));
    }
    if !authz::remove_member(&*app.store, &t.tenant.id, &team, target.as_str()).await? {
        return Err(Error::NotFound(format!(
            "user '{}' is not a member of team {}",
            user.escape_debug(),
            team.id
        ))
        .into());
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// For handlers that map a core refusal of an IdP-backed team to its 409 answer.
pub(super) fn idp_aware(e: Error) -> Response {
    match &e {
        Error::Refused(m) if m.contains("follows IdP group") => follows_idp(m),
        _ => crate::error::ApiError(e).into_response(),
    }
}
