//! Brokered SSO in the browser: the start of a sign-in at a tenant's IdP, the callback, and a
//! connection's JWKS (for `private_key_jwt`). The rules about users are
//! `sesame_core::federation`'s; the OpenID Connect exchange is `crate::upstream`'s.
//!
//! Between the start and the callback, what the callback must check (the connection, `state`,
//! `nonce`, the PKCE verifier) and the application's authorization request travel in a cookie
//! sealed with the master key, bound to tenant and connection, ten minutes. A cookie rather
//! than a sealed `state`: the cookie ties the callback to the browser that started the
//! sign-in, so a callback URL made in another browser (login CSRF, a leaked code) finds no
//! cookie there and is refused; `state` is then a random value compared with the cookie's.

use super::authorize::{self as authz, brand, error_page};
use crate::browser::{Browser, CookieJar};
use crate::state::{AppState, TenantState};
use crate::upstream::UpstreamError;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};
use sesame_core::federation::{self, ConnectionKind, Refusal, SsoConnection};
use sesame_core::ids::ConnectionId;
use std::sync::Arc;

pub const SSO_COOKIE: &str = "sesame_sso";
/// How long a person has at the IdP.
pub(super) const SSO_TTL: i64 = 600;

#[derive(Serialize, Deserialize)]
pub(super) struct SsoPending {
    pub(super) connection: String,
    /// OIDC `state`; SAML's `RelayState`.
    pub(super) state: String,
    pub(super) nonce: String,
    pub(super) pkce_verifier: String,
    /// The authorization request, as sealed in the login page's hidden field.
    pub(super) request: String,
    pub(super) issued_at: i64,
    /// SAML: the AuthnRequest's ID, which the Response's `InResponseTo` must name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) saml_request_id: Option<String>,
}

/// The pending sign-in sealed for the cookie (AAD: tenant and connection).
pub(super) fn seal_pending(app: &AppState, t: &TenantState, pending: &SsoPending) -> Option<String> {
    let id = ConnectionId::parse(&pending.connection).ok()?;
    let json = serde_json::to_vec(pending).expect("pending serializes");
    Some(B64.encode(app.master.seal(&aad(t, &id), &json)))
}

fn aad(t: &TenantState, connection: &ConnectionId) -> String {
    format!("sesame:sso-request:{}:{connection}", t.tenant.id)
}

pub(super) fn jar<'a>(app: &AppState, t: &'a TenantState) -> CookieJar<'a> {
    CookieJar {
        path: t.cookie_path(),
        secure: app.public_url.starts_with("https://"),
    }
}

/// The redirect URI registered at the IdP for a connection.
pub fn callback_url(t: &TenantState, connection: &ConnectionId) -> String {
    format!("{}/sso/{connection}/callback", t.issuer)
}

/// The sign-in page's link to a connection, carrying the sealed authorization request.
pub fn start_url(t: &TenantState, connection: &ConnectionId, sealed_request: &str) -> String {
    let q: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("request", sealed_request)
        .finish();
    format!("{}/sso/{connection}/start?{q}", t.issuer)
}

fn query(raw: Option<String>) -> Vec<(String, String)> {
    form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// The enabled connection named in the path, or the page saying it does not exist.
#[allow(clippy::result_large_err)]
pub(super) async fn connection(
    app: &AppState,
    t: &TenantState,
    name: &str,
) -> Result<SsoConnection, Response> {
    let not_found = || {
        error_page(
            Some(&brand(t)),
            StatusCode::NOT_FOUND,
            "This sign-in option does not exist or is turned off. Go back to the application and choose another.",
        )
    };
    let Ok(id) = ConnectionId::parse(name) else {
        return Err(not_found());
    };
    match app.store.get_sso_connection(&t.tenant.id, &id).await {
        Ok(Some(c)) if c.enabled => Ok(c),
        Ok(_) => Err(not_found()),
        Err(e) => Err(authz::core_error_page(Some(&brand(t)), e)),
    }
}

/// `GET /t/{tenant}/sso/{connection}/start?request=…`: to the IdP.
pub async fn start(
    State(app): State<AppState>,
    Path((tenant, name)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Response {
    let t = match app.tenant(&tenant).await {
        Ok(t) => t,
        Err(e) => return authz::core_error_page(None, e),
    };
    let conn = match connection(&app, &t, &name).await {
        Ok(c) => c,
        Err(resp) => return resp,
    };
    let params = query(raw);
    if conn.kind == ConnectionKind::Saml {
        let Some(request) = param(&params, "request").filter(|r| authz::open_request(&app, &t, r).is_some())
        else {
            return error_page(
                Some(&brand(&t)),
                StatusCode::BAD_REQUEST,
                "This sign-in has expired. Go back to the application and start again.",
            );
        };
        return super::saml::start(&app, &t, &conn, request.to_owned());
    }
    let Some((request, login_hint)) = param(&params, "request")
        .and_then(|r| authz::open_request(&app, &t, r).map(|hint| (r.to_owned(), hint)))
    else {
        return error_page(
            Some(&brand(&t)),
            StatusCode::BAD_REQUEST,
            "This sign-in has expired. Go back to the application and start again.",
        );
    };
    let started = match app
        .upstreams
        .start(&conn, &callback_url(&t, &conn.id), login_hint.as_deref())
        .await
    {
        Ok(s) => s,
        Err(e) => return upstream_failed(&t, &conn, e),
    };
    let pending = SsoPending {
        connection: conn.id.to_string(),
        state: started.state,
        nonce: started.nonce,
        pkce_verifier: started.pkce_verifier,
        request,
        issued_at: sesame_core::now(),
        saml_request_id: None,
    };
    let json = serde_json::to_vec(&pending).expect("pending serializes");
    let sealed = B64.encode(app.master.seal(&aad(&t, &conn.id), &json));
    let mut resp = StatusCode::SEE_OTHER.into_response();
    let h = resp.headers_mut();
    match HeaderValue::from_str(&started.url) {
        Ok(v) => h.insert(header::LOCATION, v),
        Err(_) => {
            return upstream_failed(
                &t,
                &conn,
                UpstreamError::Misconfigured("authorization URL".into()),
            )
        }
    };
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.append(
        header::SET_COOKIE,
        jar(&app, &t).set(SSO_COOKIE, &sealed, Some(SSO_TTL)),
    );
    resp
}

/// The sealed cookie, read without the length limit of the session cookies (it carries the
/// sealed authorization request), base64url only.
pub(super) fn sso_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == SSO_COOKIE)
        .map(|(_, v)| v.to_owned())
        .filter(|v| {
            v.len() <= 8192
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

pub(super) fn open_pending(
    app: &AppState,
    t: &TenantState,
    conn: &SsoConnection,
    sealed: &str,
) -> Option<SsoPending> {
    let bytes = B64.decode(sealed).ok()?;
    let json = app.master.open(&aad(t, &conn.id), &bytes).ok()?;
    let p: SsoPending = serde_json::from_slice(&json).ok()?;
    (p.connection == conn.id.as_str() && sesame_core::now() - p.issued_at < SSO_TTL).then_some(p)
}

/// `GET /t/{tenant}/sso/{connection}/callback`: the IdP's answer (OIDC Core §3.1.2.5).
pub async fn callback(
    State(app): State<AppState>,
    Path((tenant, name)): Path<(String, String)>,
    headers: HeaderMap,
    browser: Browser,
    RawQuery(raw): RawQuery,
) -> Response {
    let t = match app.tenant(&tenant).await {
        Ok(t) => t,
        Err(e) => return authz::core_error_page(None, e),
    };
    let mut resp = match connection(&app, &t, &name).await {
        Ok(conn) if conn.kind != ConnectionKind::Oidc => error_page(
            Some(&brand(&t)),
            StatusCode::NOT_FOUND,
            "This sign-in option does not exist or is turned off. Go back to the application and choose another.",
        ),
        Ok(conn) => callback_inner(&app, &t, &conn, &headers, &browser, query(raw)).await,
        Err(resp) => resp,
    };
    // One use: whatever happened, the pending sign-in is over.
    resp.headers_mut()
        .append(header::SET_COOKIE, jar(&app, &t).clear(SSO_COOKIE));
    resp
}

async fn callback_inner(
    app: &AppState,
    t: &Arc<TenantState>,
    conn: &SsoConnection,
    headers: &HeaderMap,
    browser: &Browser,
    params: Vec<(String, String)>,
) -> Response {
    let page = |status: StatusCode, reason: &str, message: &str| {
        tracing::warn!(tenant = %t.tenant.id, connection = %conn.id, reason, "sso sign-in refused");
        error_page(Some(&brand(t)), status, message)
    };
    let Some(pending) = sso_cookie(headers).and_then(|c| open_pending(app, t, conn, &c)) else {
        return page(
            StatusCode::BAD_REQUEST,
            "no pending sign-in in this browser",
            "This sign-in has expired or was started in another browser. Go back to the application and start again.",
        );
    };
    let state = param(&params, "state").unwrap_or("");
    if !bool::from(subtle::ConstantTimeEq::ct_eq(
        state.as_bytes(),
        pending.state.as_bytes(),
    )) {
        return page(
            StatusCode::BAD_REQUEST,
            "state mismatch",
            "This answer from your organisation's sign-in service does not belong to the sign-in started in this browser. Go back to the application and start again.",
        );
    }
    let display = &conn.display_name;
    let issuer = conn.oidc.as_ref().map(|o| o.issuer.as_str()).unwrap_or("");
    // RFC 9207 §2.4: when the IdP names itself in the response, it must be the expected issuer.
    if let Some(iss) = param(&params, "iss") {
        if iss != issuer {
            return page(
                StatusCode::BAD_REQUEST,
                "iss parameter mismatch",
                &format!("The answer claims to come from another issuer than {display}'s. Your administrator should check the connection's issuer."),
            );
        }
    }
    if let Some(error) = param(&params, "error") {
        return match error {
            "access_denied" => page(
                StatusCode::FORBIDDEN,
                "cancelled at the identity provider",
                &format!("The sign-in at {display} was cancelled or refused. Go back to the application to try again, or ask your administrator whether you may use it."),
            ),
            other => page(
                StatusCode::BAD_GATEWAY,
                "identity provider answered an error",
                &format!(
                    "{display} could not sign you in ({}). Your administrator should check the connection's client id and that {} is registered as its redirect URI.",
                    other.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').take(64).collect::<String>(),
                    callback_url(t, &conn.id)
                ),
            ),
        };
    }
    let Some(code) = param(&params, "code").filter(|c| !c.is_empty()) else {
        return page(
            StatusCode::BAD_REQUEST,
            "no code",
            "The answer from your organisation's sign-in service has no authorization code. Go back to the application and start again.",
        );
    };
    let finished = match app
        .upstreams
        .finish(
            &app.master,
            conn,
            &callback_url(t, &conn.id),
            code,
            &pending.nonce,
            &pending.pkce_verifier,
        )
        .await
    {
        Ok(c) => c,
        Err(e) => return upstream_failed(t, conn, e),
    };
    let identity = match federation::identity_from_claims(&conn.claims, &finished.claims) {
        Ok(i) => i,
        Err(r) => return refused(t, conn, r),
    };
    // Re-check on refresh needs the IdP's refresh token: refused before any user is touched.
    if let Err(r) = federation::check_refresh_token_given(conn, finished.refresh_token.as_deref()) {
        return refused(t, conn, r);
    }
    let subject = identity.subject.clone();
    let signed_in = match federation::sign_in(&*app.store, conn, identity, sesame_core::now()).await {
        Ok(Ok(s)) => s,
        Ok(Err(r)) => return refused(t, conn, r),
        Err(e) => return authz::core_error_page(Some(&brand(t)), e),
    };
    if let Err(e) =
        federation::keep_refresh_token(&*app.store, &app.master, conn, &subject, finished.refresh_token).await
    {
        return authz::core_error_page(Some(&brand(t)), e);
    }
    tracing::info!(tenant = %t.tenant.id, connection = %conn.id, user = %signed_in.user.id, "sso sign-in");
    crate::audit::sso_sign_in(app, &t.tenant.id, conn.id.as_str(), &signed_in);
    let user = signed_in.user;
    // OIDC Core §2 `amr`: "fed", federated authentication (the upstream's own amr is not
    // carried over: it describes another issuer's session).
    authz::finish_external_sign_in(app, t, browser, &pending.request, user, &["fed"]).await
}

pub(super) fn refused(t: &TenantState, conn: &SsoConnection, r: Refusal) -> Response {
    let display = &conn.display_name;
    let (status, reason, message) = match &r {
        Refusal::MissingClaim(c) => (
            StatusCode::BAD_GATEWAY,
            "missing claim",
            format!("{display} did not send the \u{201c}{c}\u{201d} claim that Sesame needs. Your administrator should release it to this application at {display}, or change the claim name in the connection."),
        ),
        Refusal::UnverifiedEmail => (
            StatusCode::FORBIDDEN,
            "unverified email matches an existing user",
            format!("An account with your email address exists, but {display} did not say that the address is verified, so the two were not linked. Verify your email address at {display}, or ask your administrator to mark the connection as trusted for email."),
        ),
        Refusal::AmbiguousEmail => (
            StatusCode::CONFLICT,
            "several users have the email",
            "Several accounts have your email address, so Sesame cannot tell which one is yours. Ask your administrator to fix the duplicate accounts.".to_owned(),
        ),
        Refusal::Disabled => (
            StatusCode::FORBIDDEN,
            "user disabled",
            "Your account is disabled. Ask your administrator to enable it.".to_owned(),
        ),
        Refusal::NoRefreshToken => (
            StatusCode::BAD_GATEWAY,
            "no upstream refresh token for recheck_on_refresh",
            format!("{display} gave Sesame no refresh token, which this connection needs to check your sign-in again later. Your administrator should allow refresh tokens for Sesame at {display} (often the offline_access scope in the connection's scopes), or turn off recheck_on_refresh."),
        ),
    };
    tracing::warn!(tenant = %t.tenant.id, connection = %conn.id, reason, "sso sign-in refused");
    error_page(Some(&brand(t)), status, &message)
}

fn upstream_failed(t: &TenantState, conn: &SsoConnection, e: UpstreamError) -> Response {
    let display = &conn.display_name;
    // The detail is the crate's or reqwest's message: it names the check that failed, never a
    // token (tokens are not part of these errors).
    tracing::warn!(tenant = %t.tenant.id, connection = %conn.id, reason = %e, "sso sign-in failed");
    let (status, message) = match &e {
        UpstreamError::Unreachable(_) => (
            StatusCode::BAD_GATEWAY,
            format!("{display}, your organisation's sign-in service, cannot be reached right now. Try again in a moment; if it keeps failing, your administrator should check the connection's issuer and endpoints."),
        ),
        UpstreamError::Refused(_) => (
            StatusCode::BAD_GATEWAY,
            format!("{display} refused to complete the sign-in. Your administrator should check the connection's client id, secret and redirect URI ({})."
                , callback_url(t, &conn.id)),
        ),
        UpstreamError::BadToken(detail) => (
            StatusCode::BAD_GATEWAY,
            format!("{display} answered with an ID token that failed Sesame's checks ({detail}). Your administrator should check the connection's issuer and client id."),
        ),
        UpstreamError::Misconfigured(detail) => (
            StatusCode::BAD_GATEWAY,
            format!("This sign-in option is misconfigured ({detail}). Ask your administrator to fix the connection."),
        ),
    };
    error_page(Some(&brand(t)), status, &message)
}

/// `GET /t/{tenant}/sso/{connection}/jwks`: the public key of `private_key_jwt` (RFC 7517).
pub async fn jwks(State(app): State<AppState>, Path((tenant, name)): Path<(String, String)>) -> Response {
    let result = async {
        let t = app.tenant(&tenant).await?;
        let id = ConnectionId::parse(&name)?;
        app.store
            .get_sso_connection(&t.tenant.id, &id)
            .await?
            .ok_or_else(|| sesame_core::Error::NotFound(format!("connection '{id}' does not exist")))
    }
    .await;
    match result {
        Ok(conn) => axum::Json(conn.jwks()).into_response(),
        Err(e) => crate::error::ApiError(e).into_response(),
    }
}
