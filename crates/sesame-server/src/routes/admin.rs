//! The admin API (`/admin/v1`, see docs/admin-api.md). Every change refreshes this replica's
//! cache at once; other replicas see it within `cache_refresh_ms`.

use super::no_store;
use crate::error::ApiResult;
use crate::form::{Json, Path};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sesame_core::admin::{self, ClientPatch, ClientSpec, TenantPatch, UserPatch, UserSpec};
use sesame_core::ids::{ClientId, TenantId};
use sesame_core::keys::new_stored_key;
use sesame_core::model::{BrowserSession, Client, Consent, KeyState, SigningAlg, Tenant, User};
use sesame_core::{Error, Result};

fn tenant_id(s: &str) -> Result<TenantId> {
    TenantId::parse(s).map_err(|_| Error::NotFound(format!("tenant '{}' does not exist", s.escape_debug())))
}

fn client_id(tenant: &TenantId, s: &str) -> Result<ClientId> {
    ClientId::parse(s).map_err(|_| {
        Error::NotFound(format!(
            "client '{}' does not exist in tenant '{tenant}'",
            s.escape_debug()
        ))
    })
}

#[derive(Serialize)]
struct TenantView<'a> {
    #[serde(flatten)]
    tenant: &'a Tenant,
    issuer: String,
}

fn tenant_view(app: &AppState, t: &Tenant) -> serde_json::Value {
    serde_json::to_value(TenantView {
        tenant: t,
        issuer: app.issuer(&t.id),
    })
    .expect("serializes")
}

async fn changed(app: &AppState) -> Result<()> {
    app.refresh_cache().await
}

pub async fn list_tenants(State(app): State<AppState>) -> ApiResult<Response> {
    let tenants = app.store.list_tenants().await?;
    let list: Vec<_> = tenants.iter().map(|t| tenant_view(&app, t)).collect();
    Ok(axum::Json(json!({ "tenants": list })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTenant {
    id: TenantId,
    display_name: Option<String>,
    signing_alg: Option<SigningAlg>,
    access_token_ttl: Option<i64>,
    session_ttl: Option<i64>,
    refresh_token_ttl: Option<i64>,
    logo_url: Option<String>,
}

pub async fn create_tenant(State(app): State<AppState>, Json(body): Json<NewTenant>) -> ApiResult<Response> {
    let now = sesame_core::now();
    let mut tenant = Tenant::new(body.id, now);
    if let Some(name) = body.display_name {
        tenant.display_name = name;
    }
    if let Some(alg) = body.signing_alg {
        tenant.signing_alg = alg;
    }
    if let Some(ttl) = body.access_token_ttl {
        tenant.access_token_ttl = ttl;
    }
    if let Some(ttl) = body.session_ttl {
        tenant.session_ttl = ttl;
    }
    if let Some(ttl) = body.refresh_token_ttl {
        tenant.refresh_token_ttl = ttl;
    }
    tenant.logo_url = body.logo_url;
    tenant.validate()?;
    if app.store.get_tenant(&tenant.id).await?.is_some() {
        return Err(Error::Conflict(format!("tenant '{}' already exists", tenant.id)).into());
    }
    let keys = app.generate_initial_keys(&tenant.id, now).await?;
    admin::create_tenant(&*app.store, &tenant, &keys).await?;
    changed(&app).await?;
    Ok((StatusCode::CREATED, axum::Json(tenant_view(&app, &tenant))).into_response())
}

pub async fn show_tenant(State(app): State<AppState>, Path(t): Path<String>) -> ApiResult<Response> {
    let tenant = admin::require_tenant(&*app.store, &tenant_id(&t)?).await?;
    Ok(axum::Json(tenant_view(&app, &tenant)).into_response())
}

pub async fn update_tenant(
    State(app): State<AppState>,
    Path(t): Path<String>,
    Json(patch): Json<TenantPatch>,
) -> ApiResult<Response> {
    let tenant = admin::update_tenant(&*app.store, &tenant_id(&t)?, patch).await?;
    changed(&app).await?;
    Ok(axum::Json(tenant_view(&app, &tenant)).into_response())
}

async fn set_tenant_disabled(app: AppState, t: String, disabled: bool) -> ApiResult<Response> {
    let id = tenant_id(&t)?;
    if !app.store.set_tenant_disabled(&id, disabled).await? {
        return Err(Error::NotFound(format!("tenant '{id}' does not exist")).into());
    }
    changed(&app).await?;
    let tenant = admin::require_tenant(&*app.store, &id).await?;
    Ok(axum::Json(tenant_view(&app, &tenant)).into_response())
}

pub async fn disable_tenant(State(app): State<AppState>, Path(t): Path<String>) -> ApiResult<Response> {
    set_tenant_disabled(app, t, true).await
}

pub async fn enable_tenant(State(app): State<AppState>, Path(t): Path<String>) -> ApiResult<Response> {
    set_tenant_disabled(app, t, false).await
}

pub async fn list_clients(State(app): State<AppState>, Path(t): Path<String>) -> ApiResult<Response> {
    let id = tenant_id(&t)?;
    admin::require_tenant(&*app.store, &id).await?;
    let clients = app.store.list_clients(&id).await?;
    Ok(axum::Json(json!({ "clients": clients })).into_response())
}

fn client_with_secret(client: &Client, secret: Option<&str>) -> serde_json::Value {
    let mut v = json!({ "client": client });
    if let Some(s) = secret {
        v["client_secret"] = s.into();
    }
    v
}

pub async fn create_client(
    State(app): State<AppState>,
    Path(t): Path<String>,
    Json(spec): Json<ClientSpec>,
) -> ApiResult<Response> {
    let id = tenant_id(&t)?;
    let (client, secret) = admin::create_client(&*app.store, &id, spec, sesame_core::now()).await?;
    changed(&app).await?;
    let body = client_with_secret(&client, secret.as_ref().map(|s| s.expose()));
    Ok((StatusCode::CREATED, no_store(axum::Json(body))).into_response())
}

pub async fn show_client(
    State(app): State<AppState>,
    Path((t, c)): Path<(String, String)>,
) -> ApiResult<Response> {
    let tid = tenant_id(&t)?;
    let client = admin::require_client(&*app.store, &tid, &client_id(&tid, &c)?).await?;
    Ok(axum::Json(client).into_response())
}

pub async fn update_client(
    State(app): State<AppState>,
    Path((t, c)): Path<(String, String)>,
    Json(patch): Json<ClientPatch>,
) -> ApiResult<Response> {
    let tid = tenant_id(&t)?;
    let cid = client_id(&tid, &c)?;
    let client = admin::update_client(&*app.store, &tid, &cid, patch, sesame_core::now()).await?;
    changed(&app).await?;
    Ok(axum::Json(client).into_response())
}

pub async fn delete_client(
    State(app): State<AppState>,
    Path((t, c)): Path<(String, String)>,
) -> ApiResult<Response> {
    let tid = tenant_id(&t)?;
    let cid = client_id(&tid, &c)?;
    if !app.store.delete_client(&tid, &cid).await? {
        return Err(Error::NotFound(format!("client '{cid}' does not exist in tenant '{tid}'")).into());
    }
    changed(&app).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn rotate_secret(
    State(app): State<AppState>,
    Path((t, c)): Path<(String, String)>,
) -> ApiResult<Response> {
    let tid = tenant_id(&t)?;
    let cid = client_id(&tid, &c)?;
    let (client, secret) = admin::rotate_client_secret(&*app.store, &tid, &cid, sesame_core::now()).await?;
    changed(&app).await?;
    Ok(no_store(axum::Json(client_with_secret(
        &client,
        Some(secret.expose()),
    ))))
}

async fn set_client_disabled(app: AppState, t: String, c: String, disabled: bool) -> ApiResult<Response> {
    let tid = tenant_id(&t)?;
    let cid = client_id(&tid, &c)?;
    let client = admin::set_client_disabled(&*app.store, &tid, &cid, disabled, sesame_core::now()).await?;
    changed(&app).await?;
    Ok(axum::Json(client).into_response())
}

pub async fn disable_client(
    State(app): State<AppState>,
    Path((t, c)): Path<(String, String)>,
) -> ApiResult<Response> {
    set_client_disabled(app, t, c, true).await
}

pub async fn enable_client(
    State(app): State<AppState>,
    Path((t, c)): Path<(String, String)>,
) -> ApiResult<Response> {
    set_client_disabled(app, t, c, false).await
}

#[derive(Serialize)]
struct KeyView<'a> {
    kid: &'a str,
    alg: SigningAlg,
    state: KeyState,
    created_at: i64,
    activated_at: Option<i64>,
    publish_until: Option<i64>,
}

async fn keys_response(app: &AppState, tenant: &TenantId) -> Result<Response> {
    let keys = app.store.list_keys(tenant).await?;
    let views: Vec<_> = keys
        .iter()
        .map(|k| KeyView {
            kid: &k.kid,
            alg: k.alg,
            state: k.state,
            created_at: k.created_at,
            activated_at: k.activated_at,
            publish_until: k.publish_until,
        })
        .collect();
    Ok(axum::Json(json!({ "keys": views })).into_response())
}

pub async fn list_keys(State(app): State<AppState>, Path(t): Path<String>) -> ApiResult<Response> {
    let id = tenant_id(&t)?;
    admin::require_tenant(&*app.store, &id).await?;
    Ok(keys_response(&app, &id).await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rotate {
    alg: Option<SigningAlg>,
    #[serde(default)]
    force: bool,
}

pub async fn rotate_keys(
    State(app): State<AppState>,
    Path(t): Path<String>,
    Json(body): Json<Rotate>,
) -> ApiResult<Response> {
    let id = tenant_id(&t)?;
    let tenant = admin::require_tenant(&*app.store, &id).await?;
    let algs: Vec<SigningAlg> = body.alg.map_or_else(|| SigningAlg::ALL.to_vec(), |a| vec![a]);
    let now = sesame_core::now();
    // Check every algorithm first so that a refusal leaves all keys as they were.
    let keys = app.store.list_keys(&id).await?;
    for alg in &algs {
        admin::check_rotation(&keys, *alg, now, body.force)?;
    }
    for alg in algs {
        let (master, tid) = (app.master.clone(), id.clone());
        let next =
            tokio::task::spawn_blocking(move || new_stored_key(&master, &tid, alg, KeyState::Next, now))
                .await
                .map_err(|e| Error::Internal(format!("key generation task: {e}")))??;
        admin::rotate_keys(&*app.store, &tenant, alg, &next, now, body.force).await?;
    }
    changed(&app).await?;
    Ok(keys_response(&app, &id).await?)
}

#[derive(Serialize)]
struct UserView<'a> {
    #[serde(flatten)]
    user: &'a User,
    has_password: bool,
}

fn user_view(user: &User) -> Response {
    axum::Json(UserView {
        user,
        has_password: user.password_hash.is_some(),
    })
    .into_response()
}

/// Argon2id off the async workers: it takes tens of milliseconds of CPU by design.
async fn hash_password(password: String) -> Result<String> {
    sesame_core::password::check_policy(&password)?;
    tokio::task::spawn_blocking(move || sesame_core::password::hash(&password))
        .await
        .map_err(|e| Error::Internal(format!("password hashing task: {e}")))?
}

pub async fn list_users(State(app): State<AppState>, Path(t): Path<String>) -> ApiResult<Response> {
    let id = tenant_id(&t)?;
    admin::require_tenant(&*app.store, &id).await?;
    let users = app.store.list_users(&id).await?;
    let views: Vec<_> = users
        .iter()
        .map(|u| UserView {
            user: u,
            has_password: u.password_hash.is_some(),
        })
        .collect();
    Ok(axum::Json(json!({ "users": views })).into_response())
}

pub async fn create_user(
    State(app): State<AppState>,
    Path(t): Path<String>,
    Json(mut spec): Json<UserSpec>,
) -> ApiResult<Response> {
    let id = tenant_id(&t)?;
    let hash = match spec.password.take() {
        Some(p) => Some(hash_password(p).await?),
        None => None,
    };
    let user = admin::create_user(&*app.store, &id, spec, hash, sesame_core::now()).await?;
    Ok((StatusCode::CREATED, user_view(&user)).into_response())
}

pub async fn show_user(
    State(app): State<AppState>,
    Path((t, u)): Path<(String, String)>,
) -> ApiResult<Response> {
    let user = admin::require_user(&*app.store, &tenant_id(&t)?, &u).await?;
    Ok(user_view(&user))
}

pub async fn update_user(
    State(app): State<AppState>,
    Path((t, u)): Path<(String, String)>,
    Json(patch): Json<UserPatch>,
) -> ApiResult<Response> {
    if patch.is_empty() {
        return Err(
            Error::invalid_request("nothing to change: give email, email_verified, name or picture").into(),
        );
    }
    let user = admin::update_user(
        &*app.store,
        &tenant_id(&t)?,
        &u,
        |user| patch.apply(user),
        sesame_core::now(),
    )
    .await?;
    Ok(user_view(&user))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewPassword {
    password: String,
}

/// Ends the user's browser sessions too (see `admin::set_user_password`).
pub async fn set_password(
    State(app): State<AppState>,
    Path((t, u)): Path<(String, String)>,
    Json(body): Json<NewPassword>,
) -> ApiResult<Response> {
    let tid = tenant_id(&t)?;
    admin::require_user(&*app.store, &tid, &u).await?;
    let hash = hash_password(body.password).await?;
    let (user, ended) = admin::set_user_password(&*app.store, &tid, &u, hash, sesame_core::now()).await?;
    sessions_ended(&app, &tid, ended).await;
    Ok(user_view(&user))
}

/// Disabling ends the user's sessions and revokes their grants (see `admin::set_user_disabled`).
async fn set_user_disabled(app: AppState, t: String, u: String, disabled: bool) -> ApiResult<Response> {
    let tid = tenant_id(&t)?;
    let (user, ended) = admin::set_user_disabled(&*app.store, &tid, &u, disabled, sesame_core::now()).await?;
    if disabled {
        crate::audit::user_disabled(&app, &tid, &user.id);
    }
    sessions_ended(&app, &tid, ended).await;
    Ok(user_view(&user))
}

pub async fn disable_user(
    State(app): State<AppState>,
    Path((t, u)): Path<(String, String)>,
) -> ApiResult<Response> {
    set_user_disabled(app, t, u, true).await
}

pub async fn enable_user(
    State(app): State<AppState>,
    Path((t, u)): Path<(String, String)>,
) -> ApiResult<Response> {
    set_user_disabled(app, t, u, false).await
}

/// Back-channel logout for sessions an administrator ended. A disabled tenant has no clients
/// to tell, so nothing is sent for it.
async fn sessions_ended(app: &AppState, tenant: &TenantId, sessions: Vec<BrowserSession>) {
    if let Ok(t) = app.tenant(tenant.as_str()).await {
        crate::backchannel::sessions_ended(app, &t, sessions);
    }
}

/// What the admin API shows of a browser session: never the cookie or its hash.
#[derive(Serialize)]
struct SessionView<'a> {
    id: &'a str,
    created_at: i64,
    expires_at: i64,
    auth_time: i64,
    amr: &'a [String],
    user_agent: Option<&'a str>,
    ip: Option<&'a str>,
}

impl<'a> From<&'a BrowserSession> for SessionView<'a> {
    fn from(s: &'a BrowserSession) -> Self {
        SessionView {
            id: &s.id,
            created_at: s.created_at,
            expires_at: s.expires_at,
            auth_time: s.auth_time,
            amr: &s.amr,
            user_agent: s.user_agent.as_deref(),
            ip: s.ip.as_deref(),
        }
    }
}

pub async fn list_sessions(
    State(app): State<AppState>,
    Path((t, u)): Path<(String, String)>,
) -> ApiResult<Response> {
    let sessions = admin::list_user_sessions(&*app.store, &tenant_id(&t)?, &u, sesame_core::now()).await?;
    let views: Vec<SessionView> = sessions.iter().map(SessionView::from).collect();
    Ok(axum::Json(json!({ "sessions": views })).into_response())
}

pub async fn delete_session(
    State(app): State<AppState>,
    Path((t, u, id)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    let tid = tenant_id(&t)?;
    let ended = admin::end_user_session(&*app.store, &tid, &u, &id, sesame_core::now()).await?;
    crate::audit::session_revoked(&app, &tid, &ended.id, "browser");
    sessions_ended(&app, &tid, vec![ended]).await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn delete_sessions(
    State(app): State<AppState>,
    Path((t, u)): Path<(String, String)>,
) -> ApiResult<Response> {
    let tid = tenant_id(&t)?;
    let ended = admin::end_user_sessions(&*app.store, &tid, &u, sesame_core::now()).await?;
    for s in &ended {
        crate::audit::session_revoked(&app, &tid, &s.id, "browser");
    }
    let deleted = ended.len();
    sessions_ended(&app, &tid, ended).await;
    Ok(axum::Json(json!({ "deleted": deleted })).into_response())
}

#[derive(Serialize)]
struct ConsentView<'a> {
    client_id: &'a ClientId,
    scopes: &'a [String],
    granted_at: i64,
}

pub async fn list_consents(
    State(app): State<AppState>,
    Path((t, u)): Path<(String, String)>,
) -> ApiResult<Response> {
    let consents: Vec<Consent> = admin::list_user_consents(&*app.store, &tenant_id(&t)?, &u).await?;
    let views: Vec<_> = consents
        .iter()
        .map(|c| ConsentView {
            client_id: &c.client_id,
            scopes: &c.scopes,
            granted_at: c.granted_at,
        })
        .collect();
    Ok(axum::Json(json!({ "consents": views })).into_response())
}

/// Withdraws the consent and revokes the user's grants to that client (as Ory Hydra does).
pub async fn delete_consent(
    State(app): State<AppState>,
    Path((t, u, c)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    let tid = tenant_id(&t)?;
    let user = admin::require_user(&*app.store, &tid, &u).await?;
    let cid = ClientId::parse(&c).map_err(|_| {
        Error::NotFound(format!(
            "user '{}' has no consent or grant for client '{}'",
            user.username,
            c.escape_debug()
        ))
    })?;
    let done = admin::revoke_user_consent(&*app.store, &tid, &u, &cid, sesame_core::now()).await?;
    Ok(axum::Json(json!({
        "client_id": cid,
        "consent_deleted": done.consent_deleted,
        "refresh_tokens_revoked": done.refresh_tokens_revoked,
    }))
    .into_response())
}
