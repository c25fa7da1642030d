//! Periodic work. Each job is idempotent and safe to run on every replica at once.

use crate::state::AppState;
use std::time::Duration;

/// Notices changes other replicas made (see `state`).
pub async fn refresh_cache(app: AppState, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = app.refresh_cache().await {
            tracing::warn!(error = %e, "cache refresh: store unreachable");
        }
    }
}

/// Deletes retired keys past their publication, revocations of tokens expired anyway, and
/// expired sessions, codes, refresh tokens and sign-in failure tallies.
pub async fn sweep(app: AppState, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let now = sesame_core::now();
        match app.store.delete_expired_keys(now).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(keys = n, "deleted retired signing keys past their publication"),
            Err(e) => tracing::warn!(error = %e, "key sweep failed"),
        }
        if let Err(e) = app.store.purge_revocations(now).await {
            tracing::warn!(error = %e, "revocation sweep failed");
        }
        if let Err(e) = app.store.purge_assertion_jtis(now).await {
            tracing::warn!(error = %e, "client assertion jti sweep failed");
        }
        // Redeemed codes are kept a day past expiry, so a late replay still revokes its grant.
        if let Err(e) = app.store.purge_expired(now, 24 * 3600).await {
            tracing::warn!(error = %e, "session and token sweep failed");
        }
        if let Err(e) = app.store.purge_device_authorizations(now).await {
            tracing::warn!(error = %e, "device authorization sweep failed");
        }
        if let Err(e) = app.store.purge_delegated_sessions(now).await {
            tracing::warn!(error = %e, "delegated session sweep failed");
        }
        // Audit log (access).
        if let Err(e) = crate::audit::sweep(&app, now).await {
            tracing::warn!(error = %e, "audit log sweep failed");
        }
        // SAML: assertion IDs past their expiry (a replay would be refused as expired anyway).
        if let Err(e) = app.store.purge_saml_assertions(now).await {
            tracing::warn!(error = %e, "saml assertion sweep failed");
        }
    }
}
