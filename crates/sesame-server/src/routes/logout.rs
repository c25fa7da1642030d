//! RP-Initiated Logout (OpenID Connect RP-Initiated Logout 1.0). The request is checked
//! before anything happens: a post-logout redirect must be registered for the client named by
//! `id_token_hint` or `client_id`, or nobody is redirected anywhere (no open redirect).
//!
//! With a valid `id_token_hint` for the signed-in person, the session ends at once. Otherwise
//! the person is asked to confirm (§2: the OP SHOULD ask), on a form with a CSRF token, so a
//! third-party page cannot sign people out.
//!
//! Success is only reported for a session that was ended, or that the request shows does not
//! exist. A cross-site POST (an RP's form) carries no `SameSite=Lax` cookie, so "no cookie"
//! proves nothing: then the session the hint names by `sid` is ended, or, failing that, the
//! confirmation page asks, and its same-origin submit does carry the cookie.

use super::authorize::{brand, core_error_page, error_page};
use crate::browser::{self, Browser, CookieJar, CSRF_COOKIE, SESSION_COOKIE};
use crate::form::{BrowserForm, Form};
use crate::pages;
use crate::state::{AppState, TenantState};
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use sesame_core::{login, logout, Result};

pub async fn get(
    State(app): State<AppState>,
    Path(tenant): Path<String>,
    browser: Browser,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let cookies_sent = lax_cookies_sent(&Method::GET, &headers);
    match Form::parse(query.unwrap_or_default().as_bytes()) {
        Ok(form) => end_session(&app, &tenant, &browser, &form, false, cookies_sent).await,
        Err(e) => error_page(None, StatusCode::BAD_REQUEST, &e.to_string()),
    }
}

pub async fn post(
    State(app): State<AppState>,
    Path(tenant): Path<String>,
    browser: Browser,
    headers: HeaderMap,
    BrowserForm(form): BrowserForm,
) -> Response {
    let cookies_sent = lax_cookies_sent(&Method::POST, &headers);
    match form {
        Ok(form) => {
            // The confirmation page's own form, or an RP posting its request (§2 allows POST).
            let confirmed = form.single("confirm").ok().flatten() == Some("yes");
            end_session(&app, &tenant, &browser, &form, confirmed, cookies_sent).await
        }
        Err(e) => core_error_page(None, e),
    }
}

/// Whether the browser says (Fetch Metadata) that it sent our `SameSite=Lax` cookies, so that a
/// missing session cookie means there is no session: a same-site request, or a top-level GET
/// navigation. Browsers do not let pages forge these headers; without them nobody can tell.
fn lax_cookies_sent(method: &Method, headers: &HeaderMap) -> bool {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    match get("sec-fetch-site") {
        Some("same-origin" | "same-site" | "none") => true,
        Some("cross-site") => {
            method == Method::GET
                && get("sec-fetch-mode") == Some("navigate")
                && get("sec-fetch-dest") == Some("document")
        }
        _ => false,
    }
}

async fn end_session(
    app: &AppState,
    tenant: &str,
    browser: &Browser,
    form: &Form,
    confirmed: bool,
    cookies_sent: bool,
) -> Response {
    let t = match app.tenant(tenant).await {
        Ok(t) => t,
        Err(e) => return core_error_page(None, e),
    };
    let page_error = |message: String| error_page(Some(&brand(&t)), StatusCode::BAD_REQUEST, &message);
    let request = match read_request(app, &t, form).await {
        Ok(r) => r,
        Err(e) if e.is_internal() => return core_error_page(Some(&brand(&t)), e),
        Err(e) => return page_error(e.to_string()),
    };
    if confirmed && !browser::csrf_ok(browser.csrf_cookie.as_deref(), form.single("csrf").ok().flatten()) {
        return error_page(
            Some(&brand(&t)),
            StatusCode::FORBIDDEN,
            "This sign-out form has expired or was sent from another site, so you are still signed in.",
        );
    }
    let jar = CookieJar {
        path: t.cookie_path(),
        secure: app.public_url.starts_with("https://"),
    };
    let now = sesame_core::now();
    let session = match &browser.session_secret {
        Some(secret) => {
            app.store
                .get_session(&t.tenant.id, &login::session_hash(secret), now)
                .await
        }
        None => Ok(None),
    };
    // A failed lookup must not read as "no session".
    let session = match session {
        Ok(s) => s,
        Err(e) => return core_error_page(Some(&brand(&t)), e),
    };
    let named = match (&session, &request.hint) {
        (None, Some(hint)) => match logout::hinted_session(&*app.store, &t.tenant.id, hint, now).await {
            Ok(s) => s,
            Err(e) => return core_error_page(Some(&brand(&t)), e),
        },
        _ => None,
    };
    let seen = logout::Seen {
        session,
        session_cookie: browser.session_secret.is_some(),
        // A confirmation passed the CSRF check above, so its cookies came.
        cookies_came: cookies_sent || confirmed,
        confirmed,
    };
    match logout::decide(request.hint.as_ref(), seen, named) {
        logout::Outcome::Ask => return confirm_page(&t, browser, &jar, &request),
        logout::Outcome::End(session) => {
            if let Err(e) = app.store.delete_session(&t.tenant.id, &session.id).await {
                return core_error_page(Some(&brand(&t)), e);
            }
            crate::backchannel::sessions_ended(app, &t, vec![*session]);
        }
        logout::Outcome::NothingToEnd => {}
    }
    let mut resp = match &request.post_logout_redirect_uri {
        Some(uri) => {
            let location = logout::redirect_location(uri, request.state.as_deref());
            match HeaderValue::from_str(&location) {
                Ok(v) => (StatusCode::SEE_OTHER, [(header::LOCATION, v)]).into_response(),
                Err(_) => pages::logged_out(&brand(&t)),
            }
        }
        None => pages::logged_out(&brand(&t)),
    };
    resp.headers_mut()
        .append(header::SET_COOKIE, jar.clear(SESSION_COOKIE));
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

struct EndSessionRequest {
    hint: Option<logout::Hint>,
    client_id: Option<String>,
    post_logout_redirect_uri: Option<String>,
    state: Option<String>,
}

async fn read_request(app: &AppState, t: &TenantState, form: &Form) -> Result<EndSessionRequest> {
    let hint = form
        .single("id_token_hint")?
        .map(|h| logout::read_hint(&t.issuer, &t.keyring, h))
        .transpose()?;
    let client_id = logout::client_id(form.single("client_id")?, hint.as_ref())?;
    let client = match &client_id {
        Some(id) => Some(
            t.client(&*app.store, id)
                .await?
                .filter(|c| !c.disabled)
                .ok_or_else(|| {
                    sesame_core::Error::invalid_request("the client named in the request does not exist")
                })?,
        ),
        None => None,
    };
    let post_logout_redirect_uri = form.single("post_logout_redirect_uri")?.map(str::to_owned);
    if let Some(uri) = &post_logout_redirect_uri {
        logout::check_post_logout_redirect(client.as_deref(), uri)?;
    }
    let state = form.single("state")?.map(|s| s.chars().take(4096).collect());
    Ok(EndSessionRequest {
        hint,
        client_id: client_id.map(|c| c.to_string()),
        post_logout_redirect_uri,
        state,
    })
}

fn confirm_page(
    t: &TenantState,
    browser: &Browser,
    jar: &CookieJar,
    request: &EndSessionRequest,
) -> Response {
    let (csrf, cookie) = match &browser.csrf_cookie {
        Some(c) => (c.clone(), None),
        None => {
            let token = browser::new_csrf();
            let cookie = jar.set(CSRF_COOKIE, &token, None);
            (token, Some(cookie))
        }
    };
    let action = format!("{}/logout", t.issuer);
    let mut hidden: Vec<(&str, &str)> = vec![("confirm", "yes")];
    if let Some(c) = &request.client_id {
        hidden.push(("client_id", c));
    }
    if let Some(u) = &request.post_logout_redirect_uri {
        hidden.push(("post_logout_redirect_uri", u));
    }
    if let Some(s) = &request.state {
        hidden.push(("state", s));
    }
    let origin = request
        .post_logout_redirect_uri
        .as_deref()
        .and_then(pages::origin_of);
    let origins: Vec<&str> = origin.iter().map(String::as_str).collect();
    let view = pages::LogoutView {
        action: &action,
        csrf: &csrf,
        hidden: &hidden,
    };
    let mut resp = pages::logout_confirm(&brand(t), &view, &origins);
    if let Some(c) = cookie {
        resp.headers_mut().append(header::SET_COOKIE, c);
    }
    resp
}
