//! The router: every route in one table.

mod admin;
mod authorize;
mod discovery;
mod health;
mod logout;
mod oauth;
mod userinfo;

use crate::form::BODY_LIMIT;
use crate::state::AppState;
use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::Router;

pub fn router(app: AppState) -> Router {
    let tenant = Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(discovery::openid_configuration),
        )
        .route(
            "/.well-known/oauth-authorization-server",
            get(discovery::oauth_metadata),
        )
        .route("/jwks", get(discovery::jwks))
        .route(
            "/authorize",
            get(authorize::authorize_get).post(authorize::authorize_post),
        )
        .route("/login", post(authorize::login))
        .route("/consent", post(authorize::consent))
        .route("/oob", get(authorize::oob))
        .route("/userinfo", get(userinfo::get).post(userinfo::post))
        .route("/logout", get(logout::get).post(logout::post))
        .route("/token", post(oauth::token))
        .route("/introspect", post(oauth::introspect))
        .route("/revoke", post(oauth::revoke));

    let admin = Router::new()
        .route("/tenants", get(admin::list_tenants).post(admin::create_tenant))
        .route(
            "/tenants/{tenant}",
            get(admin::show_tenant).patch(admin::update_tenant),
        )
        .route("/tenants/{tenant}/disable", post(admin::disable_tenant))
        .route("/tenants/{tenant}/enable", post(admin::enable_tenant))
        .route(
            "/tenants/{tenant}/clients",
            get(admin::list_clients).post(admin::create_client),
        )
        .route(
            "/tenants/{tenant}/clients/{client}",
            get(admin::show_client)
                .patch(admin::update_client)
                .delete(admin::delete_client),
        )
        .route(
            "/tenants/{tenant}/clients/{client}/rotate-secret",
            post(admin::rotate_secret),
        )
        .route(
            "/tenants/{tenant}/clients/{client}/disable",
            post(admin::disable_client),
        )
        .route(
            "/tenants/{tenant}/clients/{client}/enable",
            post(admin::enable_client),
        )
        .route(
            "/tenants/{tenant}/users",
            get(admin::list_users).post(admin::create_user),
        )
        .route(
            "/tenants/{tenant}/users/{user}",
            get(admin::show_user).patch(admin::update_user),
        )
        .route(
            "/tenants/{tenant}/users/{user}/password",
            put(admin::set_password),
        )
        .route(
            "/tenants/{tenant}/users/{user}/disable",
            post(admin::disable_user),
        )
        .route("/tenants/{tenant}/users/{user}/enable", post(admin::enable_user))
        .route(
            "/tenants/{tenant}/users/{user}/sessions",
            get(admin::list_sessions).delete(admin::delete_sessions),
        )
        .route(
            "/tenants/{tenant}/users/{user}/sessions/{session}",
            axum::routing::delete(admin::delete_session),
        )
        .route(
            "/tenants/{tenant}/users/{user}/consents",
            get(admin::list_consents),
        )
        .route(
            "/tenants/{tenant}/users/{user}/consents/{client}",
            axum::routing::delete(admin::delete_consent),
        )
        .route("/tenants/{tenant}/keys", get(admin::list_keys))
        .route("/tenants/{tenant}/keys/rotate", post(admin::rotate_keys))
        .route_layer(axum::middleware::from_fn_with_state(
            app.clone(),
            admin::require_admin,
        ));

    Router::new()
        .nest("/t/{tenant}", tenant)
        // RFC 8414 §3.1: for an issuer with a path, the well-known segment goes before it.
        .route(
            "/.well-known/oauth-authorization-server/t/{tenant}",
            get(discovery::oauth_metadata),
        )
        .nest("/admin/v1", admin)
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .fallback(health::not_found)
        .method_not_allowed_fallback(health::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            app.metrics.clone(),
            crate::metrics::track,
        ))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(app)
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
