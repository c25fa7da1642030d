//! The router: every route in one table, and which listener serves which.

mod access;
mod admin;
mod admin_sso;
mod authorize;
mod device;
mod discovery;
mod health;
mod logout;
mod oauth;
mod sessions;
mod sso;
// SAML 2.0 brokered SSO (after `sso`, whose cookie it shares).
mod saml;
mod trust_policies;
mod userinfo;
mod workload_admin;
// Authorization: the public check/list API, team managers, the admin API.
mod authz;
mod authz_admin;

use crate::form::BODY_LIMIT;
use crate::metrics::{Metrics, TrackLayer};
use crate::state::AppState;
use axum::extract::{DefaultBodyLimit, Request};
use axum::handler::Handler;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put, MethodRouter};
use axum::Router;
use std::convert::Infallible;

/// The methods of one route, each handler wrapped in the route's metrics layer itself (a layer
/// on the `MethodRouter` would box the service and its future once more on every request), and
/// the 405 answer too, so that it is counted under the route.
macro_rules! tracked {
    ($($method:ident($handler:expr)),+ $(,)?) => {
        |track: &TrackLayer| {
            MethodRouter::new()
                $(.$method($handler.layer(track.clone())))+
                .fallback(health::method_not_allowed.layer(track.clone()))
        }
    };
}

/// What a listener serves: a router inside the body cap.
pub trait Routes:
    tower::Service<Request, Response = Response, Error = Infallible, Future: Send> + Clone + Send + Sync + 'static
{
}

impl<S> Routes for S where
    S: tower::Service<Request, Response = Response, Error = Infallible, Future: Send>
        + Clone
        + Send
        + Sync
        + 'static
{
}

/// Every route on one listener: the public endpoints and the operators' (`/admin/v1`, `/metrics`).
pub fn router(app: AppState) -> impl Routes {
    capped(
        &app,
        Table::new(&app).public().operators(&app).finish(app.clone()),
    )
}

/// The public endpoints only, for when the operators' have a listener of their own
/// (`admin_listen`): `/admin/v1` and `/metrics` are then unknown here and answer 404.
pub fn public_router(app: AppState) -> impl Routes {
    capped(&app, Table::new(&app).public().finish(app.clone()))
}

/// `/admin/v1` and `/metrics` (and the health checks, for probes on the private side).
pub fn operators_router(app: AppState) -> impl Routes {
    capped(
        &app,
        Table::new(&app).operators(&app).health().finish(app.clone()),
    )
}

/// The patterns of every admin route the router serves (each method of one is in
/// `sesame_core::access::ADMIN_ROUTES`, or the middleware refuses it).
pub fn admin_paths(app: &AppState) -> Vec<String> {
    Table::new(app).operators(app).admin_paths
}

/// The 64 KiB body cap, once around the whole router: `Router::layer` would wrap every route
/// in one more boxed service, cloned (and its future boxed) on every request. Outside it, the
/// request context (request id, client address) the audit log reads.
fn capped(app: &AppState, router: Router) -> impl Routes {
    let capped = tower::Layer::layer(&DefaultBodyLimit::max(BODY_LIMIT), router);
    tower::Layer::layer(&crate::audit::RequestContextLayer::new(app.clone()), capped)
}

/// The routing table under construction. Routes are added with their full pattern (no `nest`,
/// whose prefix stripping rewrites every request's URI), each with its own metrics layer.
struct Table {
    router: Router<AppState>,
    metrics: std::sync::Arc<Metrics>,
    /// The admin routes' patterns, for the test that holds them against the policy table.
    admin_paths: Vec<String>,
}

impl Table {
    fn new(app: &AppState) -> Table {
        Table {
            router: Router::new(),
            metrics: app.metrics.clone(),
            admin_paths: Vec::new(),
        }
    }

    /// A route whose handlers carry its metrics layer themselves (see [`tracked!`]).
    fn route(mut self, path: &str, methods: impl FnOnce(&TrackLayer) -> MethodRouter<AppState>) -> Table {
        let track = self.metrics.track(path);
        self.router = self.router.route(path, methods(&track));
        self
    }

    fn tenant(self, path: &str, methods: impl FnOnce(&TrackLayer) -> MethodRouter<AppState>) -> Table {
        self.route(&format!("/t/{{tenant}}{path}"), methods)
    }

    /// An admin API route. Not a hot path: its layers go on the `MethodRouter`, the metrics
    /// outermost so that refusals of the admin token are counted too.
    fn admin(mut self, app: &AppState, path: &str, methods: MethodRouter<AppState>) -> Table {
        let path = format!("/admin/v1{path}");
        self.admin_paths.push(path.clone());
        let methods = methods
            .route_layer(axum::middleware::from_fn_with_state(
                app.clone(),
                access::authorize,
            ))
            // One log line per admin change (refusals included), outside the gate that names the actor.
            .route_layer(axum::middleware::from_fn(crate::oplog::admin_change))
            .fallback(health::method_not_allowed)
            .layer(self.metrics.track(&path));
        self.router = self.router.route(&path, methods);
        self
    }

    fn public(self) -> Table {
        self.tenant(
            "/.well-known/openid-configuration",
            tracked![get(discovery::openid_configuration)],
        )
        .tenant(
            "/.well-known/oauth-authorization-server",
            tracked![get(discovery::oauth_metadata)],
        )
        .tenant("/jwks", tracked![get(discovery::jwks)])
        .tenant(
            "/authorize",
            tracked![get(authorize::authorize_get), post(authorize::authorize_post)],
        )
        .tenant("/login", tracked![post(authorize::login)])
        .tenant("/consent", tracked![post(authorize::consent)])
        .tenant("/oob", tracked![get(authorize::oob)])
        .tenant("/userinfo", tracked![get(userinfo::get), post(userinfo::post)])
        .tenant("/logout", tracked![get(logout::get), post(logout::post)])
        .tenant("/token", tracked![post(oauth::token)])
        .tenant("/introspect", tracked![post(oauth::introspect)])
        .tenant("/revoke", tracked![post(oauth::revoke)])
        .tenant(
            "/device_authorization",
            tracked![post(device::device_authorization)],
        )
        .tenant(
            "/device",
            tracked![get(device::page_get), post(device::page_post)],
        )
        .tenant("/sessions", tracked![get(sessions::list), post(sessions::create)])
        .tenant("/sessions/{session}", tracked![delete(sessions::revoke)])
        .tenant("/client-sessions", tracked![post(sessions::create_by_client)])
        .tenant("/sso/{connection}/start", tracked![get(sso::start)])
        .tenant("/sso/{connection}/callback", tracked![get(sso::callback)])
        .tenant("/sso/{connection}/jwks", tracked![get(sso::jwks)])
        // SAML 2.0 brokered SSO: the assertion consumer service and the SP metadata.
        .tenant("/sso/{connection}/saml/acs", tracked![post(saml::acs)])
        .tenant("/sso/{connection}/saml/metadata", tracked![get(saml::metadata)])
        // RFC 8414 §3.1: for an issuer with a path, the well-known segment goes before it.
        .route(
            "/.well-known/oauth-authorization-server/t/{tenant}",
            tracked![get(discovery::oauth_metadata)],
        )
        // Authorization: checks and lists for applications, member changes by team managers.
        .tenant("/authz/check", tracked![post(authz::check)])
        .tenant("/authz/list", tracked![post(authz::list)])
        .tenant(
            "/teams/{team}/members/{user}",
            tracked![put(authz::put_member), delete(authz::delete_member)],
        )
        .health()
    }

    fn health(self) -> Table {
        self.route("/healthz", tracked![get(health::healthz)])
            .route("/readyz", tracked![get(health::readyz)])
    }

    fn operators(self, app: &AppState) -> Table {
        self.admin(
            app,
            "/tenants",
            get(admin::list_tenants).post(admin::create_tenant),
        )
        .admin(
            app,
            "/tenants/{tenant}",
            get(admin::show_tenant).patch(admin::update_tenant),
        )
        .admin(app, "/tenants/{tenant}/disable", post(admin::disable_tenant))
        .admin(app, "/tenants/{tenant}/enable", post(admin::enable_tenant))
        .admin(
            app,
            "/tenants/{tenant}/clients",
            get(admin::list_clients).post(admin::create_client),
        )
        .admin(
            app,
            "/tenants/{tenant}/clients/{client}",
            get(admin::show_client)
                .patch(admin::update_client)
                .delete(admin::delete_client),
        )
        .admin(
            app,
            "/tenants/{tenant}/clients/{client}/rotate-secret",
            post(admin::rotate_secret),
        )
        .admin(
            app,
            "/tenants/{tenant}/clients/{client}/disable",
            post(admin::disable_client),
        )
        .admin(
            app,
            "/tenants/{tenant}/clients/{client}/enable",
            post(admin::enable_client),
        )
        .admin(
            app,
            "/tenants/{tenant}/users",
            get(admin::list_users).post(admin::create_user),
        )
        .admin(
            app,
            "/tenants/{tenant}/users/{user}",
            get(admin::show_user).patch(admin::update_user),
        )
        .admin(
            app,
            "/tenants/{tenant}/users/{user}/password",
            put(admin::set_password),
        )
        .admin(
            app,
            "/tenants/{tenant}/users/{user}/disable",
            post(admin::disable_user),
        )
        .admin(
            app,
            "/tenants/{tenant}/users/{user}/enable",
            post(admin::enable_user),
        )
        .admin(
            app,
            "/tenants/{tenant}/users/{user}/sessions",
            get(admin::list_sessions).delete(admin::delete_sessions),
        )
        .admin(
            app,
            "/tenants/{tenant}/users/{user}/sessions/{session}",
            axum::routing::delete(admin::delete_session),
        )
        .admin(
            app,
            "/tenants/{tenant}/users/{user}/consents",
            get(admin::list_consents),
        )
        .admin(
            app,
            "/tenants/{tenant}/users/{user}/consents/{client}",
            axum::routing::delete(admin::delete_consent),
        )
        .admin(
            app,
            "/tenants/{tenant}/trust-policies",
            get(trust_policies::list).post(trust_policies::create),
        )
        .admin(
            app,
            "/tenants/{tenant}/trust-policies/{name}",
            get(trust_policies::show)
                .put(trust_policies::replace)
                .delete(trust_policies::delete),
        )
        .admin(
            app,
            "/tenants/{tenant}/sso",
            get(admin_sso::list).post(admin_sso::create),
        )
        .admin(
            app,
            "/tenants/{tenant}/sso/{connection}",
            get(admin_sso::show)
                .patch(admin_sso::update)
                .delete(admin_sso::delete),
        )
        .admin(
            app,
            "/tenants/{tenant}/sso-settings",
            get(admin_sso::show_settings).put(admin_sso::put_settings),
        )
        .admin(
            app,
            "/tenants/{tenant}/users/{user}/sso",
            get(admin_sso::show_user),
        )
        .admin(
            app,
            "/tenants/{tenant}/users/{user}/admin",
            put(admin_sso::put_admin),
        )
        .admin(app, "/tenants/{tenant}/keys", get(admin::list_keys))
        .admin(app, "/tenants/{tenant}/keys/rotate", post(admin::rotate_keys))
        .workload_admin(app)
        .access_admin(app)
        .authz_admin(app)
        .route("/metrics", tracked![get(health::metrics)])
    }

    /// Sources, workload settings and issuer documents, delegated sessions.
    fn workload_admin(self, app: &AppState) -> Table {
        use workload_admin as w;
        self.admin(
            app,
            "/tenants/{tenant}/sources",
            get(w::list_sources).post(w::create_source),
        )
        .admin(
            app,
            "/tenants/{tenant}/sources/{source}",
            get(w::show_source).put(w::put_source).delete(w::delete_source),
        )
        .admin(
            app,
            "/tenants/{tenant}/workload",
            get(w::show_settings).patch(w::update_settings),
        )
        .admin(app, "/tenants/{tenant}/workload-issuer", get(w::workload_issuer))
        .admin(
            app,
            "/tenants/{tenant}/delegated-sessions",
            get(w::list_delegated_sessions),
        )
        .admin(
            app,
            "/tenants/{tenant}/delegated-sessions/{session}",
            axum::routing::delete(w::revoke_delegated_session),
        )
        .admin(
            app,
            "/tenants/{tenant}/users/{user}/delegated-sessions",
            get(w::list_user_delegated_sessions),
        )
        // Clients allowed to create sessions for users with their own credentials.
        .admin(
            app,
            "/tenants/{tenant}/clients/{client}/session-creation",
            get(w::show_session_creation).put(w::put_session_creation),
        )
    }

    /// The audit log and clients' admin permissions.
    fn access_admin(self, app: &AppState) -> Table {
        self.admin(app, "/audit", get(access::query_all))
            .admin(app, "/tenants/{tenant}/audit", get(access::query))
            .admin(
                app,
                "/tenants/{tenant}/clients/{client}/admin-permissions",
                get(access::show_client_permissions).put(access::put_client_permissions),
            )
    }

    /// Authorization: teams, resource types, resources, grants, checks. Reads need
    /// `authz:read`, changes `authz:write` (see each handler).
    fn authz_admin(self, app: &AppState) -> Table {
        use authz_admin as z;
        self.admin(
            app,
            "/tenants/{tenant}/teams",
            get(z::list_teams).post(z::create_team),
        )
        .admin(
            app,
            "/tenants/{tenant}/teams/{team}",
            get(z::show_team).delete(z::delete_team),
        )
        .admin(
            app,
            "/tenants/{tenant}/teams/{team}/members/{user}",
            put(z::put_member).delete(z::delete_member),
        )
        .admin(app, "/tenants/{tenant}/resource-types", get(z::list_types))
        .admin(app, "/tenants/{tenant}/resource-types/{type}", put(z::put_type))
        .admin(
            app,
            "/tenants/{tenant}/resources/{type}/{id}",
            get(z::show_resource)
                .put(z::put_resource)
                .delete(z::delete_resource),
        )
        .admin(
            app,
            "/tenants/{tenant}/resources/{type}/{id}/grants",
            get(z::list_grants).post(z::add_grant),
        )
        .admin(
            app,
            "/tenants/{tenant}/resources/{type}/{id}/grants/{relation}/{subject_type}/{subject_id}",
            axum::routing::delete(z::delete_grant),
        )
        .admin(app, "/tenants/{tenant}/authz/check", post(z::check))
        .admin(app, "/tenants/{tenant}/authz/list", post(z::list))
    }

    fn finish(self, app: AppState) -> Router {
        let not_found = health::not_found.layer(self.metrics.track("unmatched"));
        self.router
            .fallback(not_found)
            .method_not_allowed_fallback(health::method_not_allowed)
            .with_state(app)
    }
}

/// RFC 6749 §5.1: answers that carry tokens or secrets must not be cached.
fn no_store(body: impl IntoResponse) -> Response {
    let mut resp = body.into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    resp
}
