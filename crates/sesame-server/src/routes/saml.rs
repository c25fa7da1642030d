//! SAML 2.0 brokered SSO in the browser: the AuthnRequest (from `sso::start`), the assertion
//! consumer service and the SP metadata. The protocol checks are `sesame_core::saml`'s, the
//! rules about users `sesame_core::federation`'s.
//!
//! The AuthnRequest's ID and the `RelayState` travel in the same sealed `sesame_sso` cookie as
//! OIDC's `state` (`sso::SsoPending`), so a Response is accepted only in the browser that
//! started the sign-in, and only for that request (`InResponseTo`).
//!
//! The IdP posts the Response cross-site, and the cookie is `SameSite=Lax`, so a browser may
//! leave it out of that POST. The ACS then answers with a page of Sesame's own origin that
//! posts the same form again (marked `resubmitted`): that POST is same-site and carries the
//! cookie. Without a cookie the second time, the sign-in is refused.

use super::authorize::{self as authz, brand, error_page};
use super::sso::{self, SsoPending, SSO_COOKIE, SSO_TTL};
use crate::browser::Browser;
use crate::form::BrowserForm;
use crate::pages;
use crate::state::{AppState, TenantState};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use sesame_core::federation::{self, ConnectionKind, SsoConnection};
use sesame_core::ids::ConnectionId;
use sesame_core::saml::{self, SamlBinding, SamlError};
use sesame_core::xmldsig::Bergshamra;
use std::sync::Arc;

/// Sesame's entity id for a connection: the URL of its SP metadata (a common convention that
/// lets the IdP find the metadata from the id).
pub fn sp_entity_id(t: &TenantState, connection: &ConnectionId) -> String {
    format!("{}/sso/{connection}/saml/metadata", t.issuer)
}

/// The assertion consumer service (HTTP-POST binding).
pub fn acs_url(t: &TenantState, connection: &ConnectionId) -> String {
    format!("{}/sso/{connection}/saml/acs", t.issuer)
}

fn misconfigured(t: &TenantState, conn: &SsoConnection, reason: &str) -> Response {
    tracing::warn!(tenant = %t.tenant.id, connection = %conn.id, reason, "saml sign-in failed");
    error_page(
        Some(&brand(t)),
        StatusCode::BAD_GATEWAY,
        &format!(
            "This sign-in option is misconfigured ({reason}). Ask your administrator to fix the connection."
        ),
    )
}

/// The AuthnRequest, signed, to the IdP by its binding; the pending sign-in in the cookie.
pub(super) fn start(app: &AppState, t: &TenantState, conn: &SsoConnection, request: String) -> Response {
    let Some(settings) = &conn.saml else {
        return misconfigured(t, conn, "no SAML settings");
    };
    let key = match conn.saml_key(&app.master) {
        Ok(k) => zeroize::Zeroizing::new(k),
        Err(_) => return misconfigured(t, conn, "the AuthnRequest key cannot be opened"),
    };
    let now = sesame_core::now();
    let id = saml::new_request_id();
    let relay_state = B64.encode(sesame_core::crypto::random_bytes::<16>());
    let xml = saml::authn_request(
        &id,
        &sp_entity_id(t, &conn.id),
        &acs_url(t, &conn.id),
        &settings.sso_url,
        now,
    );
    let pending = SsoPending {
        connection: conn.id.to_string(),
        state: relay_state.clone(),
        nonce: String::new(),
        pkce_verifier: String::new(),
        request,
        issued_at: now,
        saml_request_id: Some(id.clone()),
    };
    let Some(sealed) = sso::seal_pending(app, t, &pending) else {
        return misconfigured(t, conn, "connection name");
    };
    let mut resp = match settings.sso_binding {
        SamlBinding::Redirect => {
            let query = match saml::redirect_query(&xml, &relay_state, &key) {
                Ok(q) => q,
                Err(_) => return misconfigured(t, conn, "the AuthnRequest cannot be signed"),
            };
            let sep = if settings.sso_url.contains('?') { '&' } else { '?' };
            let Ok(location) = HeaderValue::from_str(&format!("{}{sep}{query}", settings.sso_url)) else {
                return misconfigured(t, conn, "sso_url");
            };
            let mut resp = StatusCode::SEE_OTHER.into_response();
            resp.headers_mut().insert(header::LOCATION, location);
            resp
        }
        SamlBinding::Post => {
            let cert = match base64::engine::general_purpose::STANDARD.decode(&settings.sp_certificate) {
                Ok(c) => c,
                Err(_) => return misconfigured(t, conn, "sp_certificate"),
            };
            let body = match saml::post_request(&Bergshamra, &xml, &id, &key, &cert) {
                Ok(b) => b,
                Err(_) => return misconfigured(t, conn, "the AuthnRequest cannot be signed"),
            };
            pages::form_post(
                &settings.sso_url,
                &[
                    ("SAMLRequest".to_owned(), body),
                    ("RelayState".to_owned(), relay_state),
                ],
            )
        }
    };
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.append(
        header::SET_COOKIE,
        sso::jar(app, t).set(SSO_COOKIE, &sealed, Some(SSO_TTL)),
    );
    resp
}

/// `POST /t/{tenant}/sso/{connection}/saml/acs`: the IdP's Response (SAML Profiles §4.1.4.3).
pub async fn acs(
    State(app): State<AppState>,
    Path((tenant, name)): Path<(String, String)>,
    headers: HeaderMap,
    browser: Browser,
    BrowserForm(form): BrowserForm,
) -> Response {
    let t = match app.tenant(&tenant).await {
        Ok(t) => t,
        Err(e) => return authz::core_error_page(None, e),
    };
    let conn = match sso::connection(&app, &t, &name).await {
        Ok(c) if c.kind == ConnectionKind::Saml => c,
        Ok(_) => {
            return error_page(
                Some(&brand(&t)),
                StatusCode::NOT_FOUND,
                "This sign-in option does not exist or is turned off. Go back to the application and choose another.",
            )
        }
        Err(resp) => return resp,
    };
    let form = match form {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!(tenant = %t.tenant.id, connection = %conn.id, reason = %e, "saml sign-in refused");
            return error_page(
                Some(&brand(&t)),
                StatusCode::BAD_REQUEST,
                "The answer from your organisation's sign-in service is not a SAML response. Go back to the application and start again.",
            );
        }
    };
    let cookie = sso::sso_cookie(&headers);
    let resubmitted = matches!(form.single("resubmitted"), Ok(Some(_)));
    if cookie.is_none() && !resubmitted {
        // Post it again from this origin, so that the browser sends the SameSite=Lax cookie.
        let mut params: Vec<(String, String)> = form
            .pairs()
            .iter()
            .filter(|(k, _)| k == "SAMLResponse" || k == "RelayState")
            .cloned()
            .collect();
        params.push(("resubmitted".into(), "1".into()));
        return pages::saml_repost(&acs_url(&t, &conn.id), &params);
    }
    let mut resp = acs_inner(&app, &t, &conn, cookie, &browser, &form).await;
    // One use: whatever happened, the pending sign-in is over.
    resp.headers_mut()
        .append(header::SET_COOKIE, sso::jar(&app, &t).clear(SSO_COOKIE));
    resp
}

async fn acs_inner(
    app: &AppState,
    t: &Arc<TenantState>,
    conn: &SsoConnection,
    cookie: Option<String>,
    browser: &Browser,
    form: &crate::form::Form,
) -> Response {
    let display = &conn.display_name;
    // The log line names tenant, connection and the check; never the assertion.
    let page = |status: StatusCode, reason: &str, message: &str| {
        tracing::warn!(tenant = %t.tenant.id, connection = %conn.id, reason, "saml sign-in refused");
        error_page(Some(&brand(t)), status, message)
    };
    let Some(pending) = cookie.and_then(|c| sso::open_pending(app, t, conn, &c)) else {
        return page(
            StatusCode::BAD_REQUEST,
            "no pending sign-in in this browser",
            "This sign-in has expired or was started in another browser. Go back to the application and start again.",
        );
    };
    let Some(request_id) = pending.saml_request_id.as_deref() else {
        return page(
            StatusCode::BAD_REQUEST,
            "the pending sign-in is not a SAML one",
            "This sign-in has expired or was started in another browser. Go back to the application and start again.",
        );
    };
    let relay_state = form.single("RelayState").ok().flatten().unwrap_or("");
    if !bool::from(subtle::ConstantTimeEq::ct_eq(
        relay_state.as_bytes(),
        pending.state.as_bytes(),
    )) {
        return page(
            StatusCode::BAD_REQUEST,
            "RelayState mismatch",
            "This answer from your organisation's sign-in service does not belong to the sign-in started in this browser. Go back to the application and start again.",
        );
    }
    let Ok(Some(saml_response)) = form.single("SAMLResponse") else {
        return page(
            StatusCode::BAD_REQUEST,
            "no SAMLResponse",
            "The answer from your organisation's sign-in service has no SAML response. Go back to the application and start again.",
        );
    };
    let Some(settings) = &conn.saml else {
        return misconfigured(t, conn, "no SAML settings");
    };
    let certificates = settings.idp_certificates_der();
    let sp_entity_id = sp_entity_id(t, &conn.id);
    let acs = acs_url(t, &conn.id);
    let now = sesame_core::now();
    let expected = saml::Expected {
        sp_entity_id: &sp_entity_id,
        acs_url: &acs,
        idp_entity_id: &settings.idp_entity_id,
        idp_certificates: &certificates,
        request_id,
        now,
    };
    let assertion = match saml::read_response(&Bergshamra, saml_response, &expected) {
        Ok(a) => a,
        Err(SamlError::Status(status)) => {
            return page(
                StatusCode::FORBIDDEN,
                &format!("the IdP answered status {status}"),
                &format!("{display} did not sign you in ({status}). Go back to the application to try again, or ask your administrator whether you may use it."),
            )
        }
        Err(e @ SamlError::Encrypted) => {
            return page(
                StatusCode::BAD_GATEWAY,
                &e.to_string(),
                &format!("{display} sent an encrypted assertion, which Sesame does not accept. Your administrator should turn off assertion encryption for Sesame at {display}."),
            )
        }
        Err(SamlError::Invalid(reason)) => {
            return page(
                StatusCode::BAD_GATEWAY,
                &reason,
                &format!("The answer from {display} failed Sesame's checks ({reason}). Go back to the application and start again; if it keeps failing, your administrator should check the connection's IdP entity id and certificates."),
            )
        }
    };
    // SAML Profiles §4.1.4.5: an assertion is used once, on whichever replica it arrives.
    match app
        .store
        .use_saml_assertion(&t.tenant.id, &conn.id, &assertion.id, assertion.expires_at)
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            return page(
                StatusCode::BAD_REQUEST,
                "assertion replayed",
                "This answer from your organisation's sign-in service was used already. Go back to the application and start again.",
            )
        }
        Err(e) => return authz::core_error_page(Some(&brand(t)), e),
    }
    let identity = match saml::identity(&conn.claims, &assertion) {
        Ok(i) => i,
        Err(r) => return sso::refused(t, conn, r),
    };
    let signed_in = match federation::sign_in(&*app.store, conn, identity, now).await {
        Ok(Ok(s)) => s,
        Ok(Err(r)) => return sso::refused(t, conn, r),
        Err(e) => return authz::core_error_page(Some(&brand(t)), e),
    };
    tracing::info!(tenant = %t.tenant.id, connection = %conn.id, user = %signed_in.user.id, "saml sign-in");
    crate::audit::sso_sign_in(app, &t.tenant.id, conn.id.as_str(), &signed_in);
    let user = signed_in.user;
    authz::finish_external_sign_in(app, t, browser, &pending.request, user, &["fed"]).await
}

/// `GET /t/{tenant}/sso/{connection}/saml/metadata`: Sesame's SP metadata for the IdP.
pub async fn metadata(State(app): State<AppState>, Path((tenant, name)): Path<(String, String)>) -> Response {
    let result = async {
        let t = app.tenant(&tenant).await?;
        let id = ConnectionId::parse(&name)?;
        let conn = app
            .store
            .get_sso_connection(&t.tenant.id, &id)
            .await?
            .filter(|c| c.kind == ConnectionKind::Saml)
            .ok_or_else(|| sesame_core::Error::NotFound(format!("SAML connection '{id}' does not exist")))?;
        let settings = conn.saml.as_ref().expect("a saml connection has settings");
        Ok::<_, sesame_core::Error>(saml::sp_metadata(
            &sp_entity_id(&t, &id),
            &acs_url(&t, &id),
            &settings.sp_certificate,
        ))
    }
    .await;
    match result {
        Ok(xml) => (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/samlmetadata+xml"),
                ),
                (header::CACHE_CONTROL, HeaderValue::from_static("max-age=300")),
            ],
            xml,
        )
            .into_response(),
        Err(e) => crate::error::ApiError(e).into_response(),
    }
}
