//! Who may call the admin API: the one middleware in front of every admin route (it replaced a
//! single global admin token check), the audit log's query, and clients' admin permissions.
//!
//! The middleware authenticates the actor (an admin token, or an access token for
//! `urn:sesame:admin` verified with its tenant's keyring as userinfo does, revocation included),
//! finds the matched route's line in `sesame_core::access::ADMIN_ROUTES` and asks
//! `access::decide`. It records every non-GET call in the audit log with its outcome.

use crate::error::{ApiError, ApiResult};
use crate::form::{Form, Json, Path};
use crate::state::AppState;
use axum::extract::{MatchedPath, RawPathParams, RawQuery, Request, State};
use axum::http::{HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Extension, RequestExt};
use base64::Engine;
use serde::Deserialize;
use serde_json::json;
use sesame_core::access::{self, Actor, Permission, Target, ADMIN_AUDIENCE};
use sesame_core::audit::{self, AuditEvent, AuditQuery, EventType, Order, Outcome};
use sesame_core::ids::{ClientId, TenantId};
use sesame_core::secret::hash_secret;
use sesame_core::{Error, Result};

/// The admin API's gate. See the module comment.
pub async fn authorize(State(app): State<AppState>, mut req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let matched = req.extensions().get::<MatchedPath>().map(|m| {
        m.as_str()
            .strip_prefix("/admin/v1")
            .unwrap_or(m.as_str())
            .to_owned()
    });
    let route = matched
        .as_deref()
        .and_then(|p| access::find_route(method.as_str(), p));
    let params = req.extract_parts::<RawPathParams>().await.ok();
    let param = |name: &str| -> Option<String> {
        params
            .as_ref()?
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_owned())
    };
    let (tenant, user) = (param("tenant"), param("user"));
    let concrete = req
        .uri()
        .path()
        .strip_prefix("/admin/v1")
        .unwrap_or(req.uri().path())
        .to_owned();
    let changes = method != Method::GET && method != Method::HEAD;
    let audit = |actor: Option<&Actor>, status: u16| {
        if !changes {
            return;
        }
        let mut event = AuditEvent::new(
            EventType::AdminChange,
            tenant.as_deref(),
            Outcome::of_status(status),
            sesame_core::now(),
        )
        .target(concrete.clone())
        .details(json!({
            "method": method.as_str(),
            "route": matched,
            "permission": route.map(|r| r.permission.as_str()),
            "status": status,
        }));
        if let Some(a) = actor {
            event = event.by(a);
        }
        app.audit.record(event);
    };
    // Start applying the config file (`crate::declared`), in-process: no token to present.
    let from_start = req.extensions().get::<crate::declared::StartRequest>().is_some();
    let authenticated = if from_start {
        Ok(crate::declared::start_actor())
    } else {
        authenticate(&app, req.headers()).await
    };
    let actor = match authenticated {
        Ok(a) => a,
        Err(e) => {
            let resp = ApiError(e).into_response();
            audit(None, resp.status().as_u16());
            return resp;
        }
    };
    let target = Target {
        tenant: tenant.as_deref(),
        user: user.as_deref(),
    };
    let mut resp = match access::decide(&actor, route, target) {
        Err(e) => ApiError(e).into_response(),
        Ok(()) => {
            req.extensions_mut().insert(actor.clone());
            crate::audit::ADMIN_ACTOR
                .scope(actor.clone(), next.run(req))
                .await
        }
    };
    audit(Some(&actor), resp.status().as_u16());
    // For the operator's log line (`oplog::admin_change`), which runs around this gate.
    resp.extensions_mut().insert(actor);
    resp
}

/// RFC 6750 §2.1 bearer token: an admin token (compared by its SHA-256 in the store) or a
/// Sesame access token (a JWS, so it has dots; admin tokens are base64url without them).
async fn authenticate(app: &AppState, headers: &HeaderMap) -> Result<Actor> {
    let token = crate::routes::userinfo::bearer(headers)
        .map_err(|_| Error::Unauthorized)?
        .ok_or(Error::Unauthorized)?;
    if token.contains('.') {
        return person_or_client(app, &token).await;
    }
    match app.store.get_admin_token(&hash_secret(token.as_bytes())).await? {
        Some(info) if !info.expired(sesame_core::now()) => Ok(info.actor()),
        _ => Err(Error::Unauthorized),
    }
}

/// The tenant named by an access token's `iss`, read before verification only to pick the
/// keyring that verifies it (which checks `iss` again).
fn claimed_tenant<'a>(app: &AppState, payload: &'a serde_json::Value) -> Option<&'a str> {
    let iss = payload.get("iss")?.as_str()?;
    iss.strip_prefix(app.public_url.as_str())?.strip_prefix("/t/")
}

async fn person_or_client(app: &AppState, presented: &str) -> Result<Actor> {
    let invalid = || Error::InvalidToken("the access token is not valid".into());
    let payload = presented.split('.').nth(1).ok_or_else(invalid)?;
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| invalid())?;
    let payload: serde_json::Value = serde_json::from_slice(&payload).map_err(|_| invalid())?;
    let tenant_name = claimed_tenant(app, &payload).ok_or_else(invalid)?;
    let t = app.tenant(tenant_name).await.map_err(|_| invalid())?;
    let now = sesame_core::now();
    let valid = t.validate_access_token(presented, now).ok_or_else(invalid)?;
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
    if !valid.has_audience(ADMIN_AUDIENCE) {
        return Err(Error::InvalidToken(format!(
            "the access token is not for the admin API: its audience must include {ADMIN_AUDIENCE}"
        )));
    }
    if valid.claims.get("act").is_some() {
        return Err(Error::Forbidden(
            "a delegated (acting) token cannot call the admin API".into(),
        ));
    }
    let sub = valid
        .claims
        .get("sub")
        .and_then(|v| v.as_str())
        .ok_or_else(invalid)?;
    let client = issued_to.ok_or_else(invalid)?;
    let tenant = t.tenant.id.clone();
    // RFC 9068 §2.2: a client-credentials token's subject is the client itself.
    if sub == client.client_id.as_str() {
        let permissions = app
            .store
            .client_admin_permissions(&tenant, &client.client_id)
            .await?;
        return Ok(Actor::Client {
            tenant,
            client: client.client_id.clone(),
            permissions,
        });
    }
    let user = app
        .store
        .get_user(&tenant, sub)
        .await?
        .filter(|u| u.id.as_str() == sub && !u.disabled)
        .ok_or_else(invalid)?;
    let admin = app.store.user_admin(&tenant, &user.id).await?.is_admin();
    Ok(Actor::Person {
        tenant,
        user: user.id,
        username: user.username.as_str().to_owned(),
        admin,
    })
}

fn tenant_id(s: &str) -> Result<TenantId> {
    TenantId::parse(s).map_err(|_| Error::NotFound(format!("tenant '{}' does not exist", s.escape_debug())))
}

/// `GET /admin/v1/tenants/{tenant}/audit?since=&until=&actor=&type=&outcome=&limit=&cursor=&order=`:
/// newest first unless `order=oldest`; `next_cursor` continues in the same order. `since` and
/// `until` are Unix seconds (`until` exclusive).
pub async fn query(
    State(app): State<AppState>,
    Path(t): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let tid = tenant_id(&t)?;
    sesame_core::admin::require_tenant(&*app.store, &tid).await?;
    query_events(&app, Some(tid.as_str().to_owned()), q).await
}

/// `GET /admin/v1/audit`: every tenant's events and the server-wide ones (operators only).
pub async fn query_all(State(app): State<AppState>, RawQuery(q): RawQuery) -> ApiResult<Response> {
    query_events(&app, None, q).await
}

async fn query_events(app: &AppState, tenant: Option<String>, q: Option<String>) -> ApiResult<Response> {
    let form = Form::parse(q.unwrap_or_default().as_bytes())?;
    let int = |name: &str| -> Result<Option<i64>> {
        form.single(name)?
            .map(|v| {
                v.parse::<i64>().map_err(|_| {
                    Error::invalid_request(format!("{name} must be a number (Unix seconds for times)"))
                })
            })
            .transpose()
    };
    let limit = int("limit")?.unwrap_or(audit::DEFAULT_LIMIT as i64);
    if !(1..=audit::MAX_LIMIT as i64).contains(&limit) {
        return Err(Error::invalid_request(format!("limit is 1 to {}", audit::MAX_LIMIT)).into());
    }
    let order = match form.single("order")? {
        None | Some("newest") => Order::NewestFirst,
        Some("oldest") => Order::OldestFirst,
        Some(_) => return Err(Error::invalid_request("order is newest or oldest").into()),
    };
    let query = AuditQuery {
        tenant,
        since: int("since")?,
        until: int("until")?,
        actor: form.single("actor")?.map(str::to_owned),
        event_type: form.single("type")?.map(EventType::parse).transpose()?,
        outcome: form.single("outcome")?.map(Outcome::parse).transpose()?,
        limit: limit as u32,
        after_seq: form.single("cursor")?.map(audit::parse_cursor).transpose()?,
        order,
    };
    let events = app.store.query_audit_events(&query).await?;
    let next_cursor = (events.len() == query.limit as usize)
        .then(|| events.last().and_then(|e| e.seq).map(|s| s.to_string()))
        .flatten();
    Ok(axum::Json(json!({ "events": events, "next_cursor": next_cursor })).into_response())
}

fn client_id(tenant: &TenantId, s: &str) -> Result<ClientId> {
    ClientId::parse(s).map_err(|_| {
        Error::NotFound(format!(
            "client '{}' does not exist in tenant '{tenant}'",
            s.escape_debug()
        ))
    })
}

pub async fn show_client_permissions(
    State(app): State<AppState>,
    Path((t, c)): Path<(String, String)>,
) -> ApiResult<Response> {
    let tid = tenant_id(&t)?;
    let cid = client_id(&tid, &c)?;
    sesame_core::admin::require_client(&*app.store, &tid, &cid).await?;
    let permissions = app.store.client_admin_permissions(&tid, &cid).await?;
    Ok(axum::Json(json!({ "client_id": cid, "admin_permissions": permissions })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientPermissions {
    admin_permissions: Vec<String>,
}

/// Grants a client admin permissions for its client-credentials tokens (none: takes them away).
/// Nobody grants what they do not hold, so a scoped credential cannot widen itself through a
/// client.
pub async fn put_client_permissions(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path((t, c)): Path<(String, String)>,
    Json(body): Json<ClientPermissions>,
) -> ApiResult<Response> {
    let tid = tenant_id(&t)?;
    let cid = client_id(&tid, &c)?;
    let mut permissions: Vec<Permission> = Vec::new();
    for p in &body.admin_permissions {
        let p = Permission::parse(p)?;
        if p.server_wide() {
            return Err(Error::invalid_request(format!(
                "'{p}' is server-wide and cannot be granted to a client"
            ))
            .into());
        }
        if !actor.holds(p) {
            return Err(Error::InsufficientScope(format!(
                "'{p}' cannot be granted by a credential that does not hold it"
            ))
            .into());
        }
        if !permissions.contains(&p) {
            permissions.push(p);
        }
    }
    if !app
        .store
        .set_client_admin_permissions(&tid, &cid, &permissions, sesame_core::now())
        .await?
    {
        return Err(Error::NotFound(format!("client '{cid}' does not exist in tenant '{tid}'")).into());
    }
    Ok(axum::Json(json!({ "client_id": cid, "admin_permissions": permissions })).into_response())
}
