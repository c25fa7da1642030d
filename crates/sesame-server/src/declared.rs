//! The config file's `[[tenants]]` applied at start, by the same plan as `sesame apply`
//! (`sesame_declare`): the current state is read as the admin API renders it, and the plan's
//! requests are sent to this server's own admin router in-process. So start and `sesame apply`
//! agree on every field (what an omitted field means, when nothing changes), and start gets the
//! admin API's validation, audit events, log lines and cache refresh. Start never prunes.
//!
//! What only start can do comes after the plan: a client's secret from `secret_env` /
//! `secret_file` (the admin API generates client secrets and takes none) and `disabled`. An SSO
//! connection's secret goes through the plan; here the reader can open the stored one with the
//! master key and say whether it is the file's, so it is sent only when it changed.

use crate::config::TenantConfig;
use crate::state::AppState;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::Value;
use sesame_core::access::Actor;
use sesame_core::ids::{ClientId, ConnectionId, TenantId};
use sesame_core::secret::{hash_secret, verify_secret};
use sesame_declare::{Action, Current, Declared, Kind, CHILD_KINDS, SSO};
use tower::ServiceExt;

/// Marks a request sent in-process by start. Only code in this process can put an extension
/// on a request (a client sends headers, never extensions), so it cannot be forged.
#[derive(Clone, Copy, Debug)]
pub struct StartRequest;

/// The actor that start's admin changes are recorded as.
pub fn start_actor() -> Actor {
    Actor::Operator {
        token: "config file".into(),
    }
}

/// The admin API, in-process.
struct InProcess<R> {
    router: R,
}

/// An admin API refusal: its status and its description.
struct Refused(StatusCode, String);

impl<R: crate::routes::Routes> InProcess<R> {
    async fn send(&self, method: &str, path: &[String], body: Option<&Value>) -> Result<Value, Refused> {
        let mut uri = String::from("/admin/v1");
        for p in path {
            uri.push('/');
            uri.push_str(&encode(p));
        }
        let method = Method::from_bytes(method.as_bytes()).expect("a method");
        let mut req = Request::builder().method(method).uri(uri);
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        let mut req = req
            .body(Body::from(body.map(|b| b.to_string()).unwrap_or_default()))
            .expect("a request");
        req.extensions_mut().insert(StartRequest);
        let resp = match self.router.clone().oneshot(req).await {
            Ok(r) => r,
            Err(never) => match never {},
        };
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), 16 << 20)
            .await
            .map_err(|e| Refused(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
        let json: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if status.is_success() {
            Ok(json)
        } else {
            let said = json["error_description"]
                .as_str()
                .or(json["error"].as_str())
                .map_or_else(|| status.to_string(), str::to_owned);
            Err(Refused(status, said))
        }
    }
}

/// A path segment, percent-encoded (ids are plain, but a segment is a segment).
fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// How a refusal names what it is about: `config: tenant 'acme' client 'web'`.
fn label(kind: &str, tenant: &str, id: &str) -> String {
    match kind {
        "tenant" => format!("config: tenant '{tenant}'"),
        "workload" => format!("config: tenant '{tenant}' workload settings"),
        "sso" => format!("config: tenant '{tenant}' sso connection '{id}'"),
        k => format!("config: tenant '{tenant}' {} '{id}'", k.replace('_', " ")),
    }
}

/// Applies the declared tenants: the plan, then the start-only fields. Running it again with the
/// same file changes nothing; a changed file changes what it declares and leaves the rest alone.
pub async fn apply(app: &AppState, tenants: &[TenantConfig]) -> Result<(), String> {
    if tenants.is_empty() {
        return Ok(());
    }
    for t in tenants {
        if let Some(s) = t.sources.iter().find(|s| s.id.is_none()) {
            return Err(format!(
                "config: tenant '{}' source '{}' needs an id (a UUID) so that applying the file \
                 again finds it",
                t.id, s.name
            ));
        }
    }
    let written: Vec<Value> = tenants.iter().map(|t| t.written().clone()).collect();
    let mut declared = Declared::from_json(&written).map_err(|e| format!("config: {e}"))?;
    declared.resolve_secrets().map_err(|e| format!("config: {e}"))?;
    let api = InProcess {
        router: crate::routes::operators_router(app.clone()),
    };
    let current = current(app, &api, &declared).await?;
    let plan = sesame_declare::plan(&declared, &current, false);
    for note in &plan.notes {
        // Start applies the start-only fields itself; the rest (a field set only at creation
        // that the file now changes) is worth the operator's eye.
        if !note.contains("at start only") {
            tracing::warn!("config: {note}");
        }
    }
    for action in &plan.actions {
        let (kind, tenant, id) = match action {
            Action::Create { kind, tenant, id, .. }
            | Action::Update { kind, tenant, id, .. }
            | Action::Delete { kind, tenant, id } => (*kind, tenant.as_str(), id.as_str()),
        };
        let at = label(kind, tenant, id);
        let Some((method, path, body)) = action.request() else {
            return Err(format!("{at}: cannot {action}"));
        };
        match api.send(method, &path, body.as_ref()).await {
            Ok(_) => tracing::info!(change = %action, "config file applied"),
            // Another replica starting with the same file created it a moment ago.
            Err(Refused(StatusCode::CONFLICT, _)) if matches!(action, Action::Create { .. }) => {}
            Err(Refused(_, e)) => return Err(format!("{at}: {e}")),
        }
    }
    start_only(app, &api, tenants).await?;
    app.refresh_cache().await.map_err(|e| e.to_string())
}

/// The state of the declared tenants, read through the admin API as `sesame apply` reads it,
/// plus whether each declared SSO secret is the stored one (start holds the master key).
async fn current<R: crate::routes::Routes>(
    app: &AppState,
    api: &InProcess<R>,
    declared: &Declared,
) -> Result<Current, String> {
    let read = |e: Refused| format!("config: reading the current state: {}", e.1);
    let mut current = Current::default();
    let listed = api.send("GET", &["tenants".into()], None).await.map_err(read)?;
    for decl in &declared.tenants {
        let tid = decl.tenant.id.as_str();
        let Some(t) = listed["tenants"]
            .as_array()
            .and_then(|ts| ts.iter().find(|t| t["id"] == tid))
        else {
            continue;
        };
        current.tenants.insert(tid.to_owned(), t.clone());
        let path = |rest: &str| vec!["tenants".to_owned(), tid.to_owned(), rest.to_owned()];
        if decl.workload.is_some() {
            let w = api.send("GET", &path("workload"), None).await.map_err(read)?;
            current.workload.insert(tid.to_owned(), w);
        }
        for kind in CHILD_KINDS {
            if decl.of(kind).is_some() {
                let l = api
                    .send("GET", &path(kind.collection), None)
                    .await
                    .map_err(read)?;
                current.insert_listed(kind, tid, &l);
            }
        }
        for conn in decl.of(&SSO).into_iter().flatten() {
            let Some(secret) = &conn.secret else { continue };
            let same = stored_secret(app, tid, &conn.id).await?.as_deref() == Some(secret.0.as_str());
            if let Some(shown) = current
                .objects
                .get_mut(SSO.name)
                .and_then(|t| t.get_mut(tid))
                .and_then(|c| c.get_mut(&conn.id))
            {
                shown["client_secret_same"] = Value::Bool(same);
            }
        }
    }
    Ok(current)
}

async fn stored_secret(app: &AppState, tenant: &str, conn: &str) -> Result<Option<String>, String> {
    let at = |e: sesame_core::Error| format!("{}: {e}", label(SSO.name, tenant, conn));
    let (Ok(tid), Ok(cid)) = (TenantId::parse(tenant), ConnectionId::parse(conn)) else {
        return Ok(None);
    };
    match app.store.get_sso_connection(&tid, &cid).await.map_err(at)? {
        Some(c) => c.client_secret(&app.master).map_err(at),
        None => Ok(None),
    }
}

/// A client's secret from `secret_env` / `secret_file`, and `disabled` where the file sets it.
async fn start_only<R: crate::routes::Routes>(
    app: &AppState,
    api: &InProcess<R>,
    tenants: &[TenantConfig],
) -> Result<(), String> {
    const CLIENT: &Kind = &sesame_declare::CLIENT;
    for t in tenants {
        for (i, c) in t.clients.iter().enumerate() {
            let at = label(CLIENT.name, t.id.as_str(), c.client_id.as_str());
            let store_err = |e: sesame_core::Error| format!("{at}: {e}");
            if let Some(secret) = c.read_secret(&t.id)? {
                let Some(mut client) = app
                    .store
                    .get_client(&t.id, &c.client_id)
                    .await
                    .map_err(store_err)?
                else {
                    continue;
                };
                let same = client
                    .secret_hash
                    .as_ref()
                    .is_some_and(|h| verify_secret(secret.as_bytes(), h));
                if !same {
                    client.secret_hash = Some(hash_secret(secret.as_bytes()));
                    client.updated_at = sesame_core::now();
                    app.store.update_client(&client).await.map_err(store_err)?;
                    tracing::info!(tenant = %t.id, client = %c.client_id, "config file: client secret set");
                }
            }
            let written = &t.written()["clients"][i];
            if let Some(want) = written.get("disabled").and_then(Value::as_bool) {
                set_disabled(app, api, &t.id, &c.client_id, want, &at).await?;
            }
        }
    }
    Ok(())
}

async fn set_disabled<R: crate::routes::Routes>(
    app: &AppState,
    api: &InProcess<R>,
    tenant: &TenantId,
    client: &ClientId,
    want: bool,
    at: &str,
) -> Result<(), String> {
    let now = app
        .store
        .get_client(tenant, client)
        .await
        .map_err(|e| format!("{at}: {e}"))?;
    if now.is_none_or(|c| c.disabled == want) {
        return Ok(());
    }
    let verb = if want { "disable" } else { "enable" };
    let path: Vec<String> = ["tenants", tenant.as_str(), "clients", client.as_str(), verb]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    api.send("POST", &path, None)
        .await
        .map(|_| ())
        .map_err(|Refused(_, e)| format!("{at}: {e}"))
}
