//! OpenID Connect Back-Channel Logout 1.0: when a browser session ends (logout, a new sign-in
//! in the same browser, an administrator ending it, the user disabled), every client with a
//! `backchannel_logout_uri` that signed in with it (the store notes them at /authorize) gets a
//! logout token POSTed to it.
//!
//! The calls run in the background, after the answer to whoever ended the session: a slow or
//! unreachable client delays nobody. Each gets one attempt with a 5 s timeout and no redirects
//! (§2.5: the RP answers the POST itself); failures are logged.

use crate::state::{AppState, TenantState};
use sesame_core::claims;
use sesame_core::model::BrowserSession;
use sesame_core::token::Signer;
use std::sync::Arc;
use std::time::Duration;

pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("the HTTP client builds")
}

/// Tells the clients of each of `sessions` that it has ended.
pub fn sessions_ended(app: &AppState, t: &Arc<TenantState>, sessions: Vec<BrowserSession>) {
    if sessions.is_empty() {
        return;
    }
    let (app, t) = (app.clone(), t.clone());
    tokio::spawn(async move {
        for session in sessions {
            notify(&app, &t, &session).await;
        }
    });
}

async fn notify(app: &AppState, t: &TenantState, session: &BrowserSession) {
    let tenant = &t.tenant.id;
    let client_ids = match app.store.session_clients(tenant, &session.id).await {
        Ok(ids) => ids,
        Err(e) => {
            tracing::warn!(error = %e, %tenant, "back-channel logout: cannot read the session's clients");
            return;
        }
    };
    for id in client_ids {
        let client = match t.client(&*app.store, &id).await {
            Ok(Some(c)) if !c.disabled => c,
            Ok(_) => continue,
            Err(e) => {
                tracing::warn!(error = %e, %tenant, client = %id, "back-channel logout: client lookup failed");
                continue;
            }
        };
        let Some(uri) = client.backchannel_logout_uri.as_deref() else {
            continue;
        };
        let signer = Signer {
            issuer: &t.issuer,
            tenant: &t.tenant,
            keyring: &t.keyring,
            now: sesame_core::now(),
        };
        let token = match claims::logout_token(&signer, &client, session.user_id.as_str(), &session.id) {
            Ok(token) => token,
            Err(e) => {
                tracing::error!(error = %e, %tenant, client = %id, "back-channel logout: cannot sign");
                continue;
            }
        };
        // §2.5: application/x-www-form-urlencoded with one parameter, logout_token.
        let sent = app.http.post(uri).form(&[("logout_token", token)]).send().await;
        match sent {
            Ok(resp) if resp.status().is_success() => {
                tracing::debug!(%tenant, client = %id, "back-channel logout delivered");
            }
            Ok(resp) => {
                tracing::warn!(%tenant, client = %id, status = resp.status().as_u16(), "back-channel logout refused");
            }
            Err(e) => {
                tracing::warn!(error = %e, %tenant, client = %id, "back-channel logout not delivered");
            }
        }
    }
}
