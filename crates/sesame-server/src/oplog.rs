//! The operator's log lines at `info`: one per sign-in outcome and one per admin change, so that
//! a sign-in (a failed password included) or an administrator's change always leaves a line.
//! Never a secret: no password, token or request body; and for an unknown user not even the
//! name typed, which is sometimes a password typed into the wrong field.

use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use sesame_core::login::Outcome;

/// A password sign-in's outcome, told everywhere it is told: the log line, the metric and the
/// audit log (`via`: `login` or `device`).
pub fn report_sign_in(
    app: &crate::state::AppState,
    tenant: &sesame_core::ids::TenantId,
    via: &'static str,
    outcome: &sesame_core::Result<Outcome>,
    address: Option<&str>,
) {
    sign_in(tenant.as_str(), via, outcome, address);
    app.metrics.sign_in(match outcome {
        Ok(Outcome::SignedIn(_)) => "signed_in",
        Ok(Outcome::Refused { .. }) => "refused",
        Ok(Outcome::Throttled { .. }) => "throttled",
        Ok(Outcome::Busy { .. }) => "busy",
        Err(_) => "error",
    });
    crate::audit::sign_in(app, tenant, via, outcome);
}

/// Logs one sign-in attempt: tenant, user (id and username when known, else "unknown user"),
/// outcome, client address and the page it came through (`login` or `device`).
fn sign_in(tenant: &str, via: &str, outcome: &sesame_core::Result<Outcome>, address: Option<&str>) {
    let address = address.unwrap_or("unknown address");
    match outcome {
        Ok(Outcome::SignedIn(user)) => tracing::info!(
            target: "sesame::sign_in",
            tenant,
            via,
            user_id = %user.id,
            username = %user.username,
            outcome = "signed_in",
            address,
            "sign-in"
        ),
        Ok(Outcome::Refused { user_id }) => match user_id {
            Some(id) => tracing::info!(
                target: "sesame::sign_in",
                tenant,
                via,
                user_id = %id,
                outcome = "refused",
                address,
                "sign-in"
            ),
            None => tracing::info!(
                target: "sesame::sign_in",
                tenant,
                via,
                user_id = "unknown user",
                outcome = "refused",
                address,
                "sign-in"
            ),
        },
        Ok(Outcome::Throttled { retry_after }) => tracing::info!(
            target: "sesame::sign_in",
            tenant,
            via,
            user_id = "not looked up",
            outcome = "throttled",
            retry_after,
            address,
            "sign-in"
        ),
        Ok(Outcome::Busy { retry_after }) => tracing::info!(
            target: "sesame::sign_in",
            tenant,
            via,
            user_id = "not looked up",
            outcome = "busy",
            retry_after,
            address,
            "sign-in"
        ),
        Err(e) => tracing::warn!(
            target: "sesame::sign_in",
            tenant,
            via,
            outcome = "error",
            error = %e,
            address,
            "sign-in"
        ),
    }
}

/// Around every admin API route: one line per change (any method but GET/HEAD), with the
/// route, the path (tenant, client, user names; never a body) and the answer's status, so that
/// refusals are seen too.
pub async fn admin_change(matched: Option<MatchedPath>, req: Request, next: Next) -> Response {
    let method = req.method().clone();
    if method == Method::GET || method == Method::HEAD {
        return next.run(req).await;
    }
    let path = req.uri().path().to_owned();
    let route = matched.map(|m| m.as_str().to_owned()).unwrap_or_default();
    let response = next.run(req).await;
    // Named by the admin gate (`routes::access::authorize`) once it knows who is calling.
    let actor = response.extensions().get::<sesame_core::access::Actor>();
    tracing::info!(
        target: "sesame::admin",
        method = %method,
        path = %path,
        route = %route,
        status = response.status().as_u16(),
        actor_kind = actor.map_or("unauthenticated", |a| a.kind()),
        actor = actor.map_or("", |a| a.id()),
        "admin change"
    );
    response
}
