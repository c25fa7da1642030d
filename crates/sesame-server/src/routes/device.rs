//! The device authorization grant (RFC 8628): the device authorization endpoint, and the
//! `/device` page where a signed-in person enters a user code and approves or denies it.
//! The rules are `sesame_core::device`'s; this module carries the person through the pages.
//!
//! The page's forms carry their step in a hidden field sealed with the master key (AES-GCM,
//! bound to the tenant, one hour), as the sign-in pages do: the browser cannot skip from the
//! sign-in to a decision, and a decision names the user code it was shown and the session
//! that saw it. Every POST checks the CSRF token first.

use super::authorize::{brand, core_error_page, error_page, read_sealed_form, scope_description};
use super::{no_store, oauth};
use crate::browser::{self, Browser, CookieJar, CSRF_COOKIE, SESSION_COOKIE};
use crate::error::ApiResult;
use crate::form::{BrowserForm, Form, Path};
use crate::pages::{self, Brand};
use crate::state::{AppState, TenantState};
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};
use sesame_core::device::{self, CodeCheck};
use sesame_core::login::{self, Attempt, Outcome};
use sesame_core::model::{BrowserSession, User};
use sesame_core::Error;
use std::sync::Arc;
use zeroize::Zeroizing;

/// How long a page's form stays valid.
const FORM_TTL: i64 = 3600;

/// RFC 8628 §3.1–§3.2: client authentication as at /token, then a code pair.
pub async fn device_authorization(
    State(app): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    form: Form,
) -> ApiResult<Response> {
    let t = app.tenant(&tenant).await?;
    let client = oauth::authenticate(&app, &t, &headers, &form, "/device_authorization").await?;
    let scope = form.single("scope")?;
    let answer = device::authorize(
        &*app.store,
        &t.issuer,
        &client,
        scope,
        app.device_code_ttl,
        sesame_core::now(),
    )
    .await?;
    Ok(no_store(axum::Json(answer)))
}

/// `GET /device[?user_code=…]`: the sign-in form, or the user code form (prefilled, but the
/// person still has to submit it: a link alone never reaches the Approve button).
pub async fn page_get(
    State(app): State<AppState>,
    axum::extract::Path(tenant): axum::extract::Path<String>,
    browser: Browser,
    RawQuery(query): RawQuery,
) -> Response {
    let t = match app.tenant(&tenant).await {
        Ok(t) => t,
        Err(e) => return core_error_page(None, e),
    };
    let page = Page {
        app: &app,
        t: &t,
        browser: &browser,
    };
    let typed = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "user_code")
        .map(|(_, v)| v.into_owned());
    // Only something with the shape of a user code is shown back, never free text from a link.
    let prefill = typed
        .as_deref()
        .and_then(device::normalize_user_code)
        .map(|c| device::format_user_code(&c))
        .unwrap_or_default();
    match page.current_session().await {
        Ok(Some((_, user))) => page.code_form(&user, &prefill, None, StatusCode::OK),
        Ok(None) => page.sign_in_form(&prefill, "", None),
        Err(e) => page.unavailable(e),
    }
}

/// `POST /device`: a submitted sign-in, user code or decision form.
pub async fn page_post(
    State(app): State<AppState>,
    axum::extract::Path(tenant): axum::extract::Path<String>,
    browser: Browser,
    BrowserForm(form): BrowserForm,
) -> Response {
    let t = match app.tenant(&tenant).await {
        Ok(t) => t,
        Err(e) => return core_error_page(None, e),
    };
    let page = Page {
        app: &app,
        t: &t,
        browser: &browser,
    };
    let (form, step) = match page.read_form(form) {
        Ok(read) => read,
        Err(resp) => return resp,
    };
    match step.stage {
        Stage::SignIn => page.sign_in(&form, &step.prefill).await,
        Stage::Code => page.code_entered(&form).await,
        Stage::Decide {
            user_code,
            session_id,
        } => page.decided(&form, &user_code, &session_id).await,
    }
}

/// Which form a POST comes from.
#[derive(Serialize, Deserialize)]
enum Stage {
    SignIn,
    Code,
    /// The confirmation of this (normalised) user code, shown to this session.
    Decide {
        user_code: String,
        session_id: String,
    },
}

#[derive(Serialize, Deserialize)]
struct Step {
    stage: Stage,
    /// The user code to prefill after signing in (already normalised and formatted).
    prefill: String,
    issued_at: i64,
}

struct Page<'a> {
    app: &'a AppState,
    t: &'a Arc<TenantState>,
    browser: &'a Browser,
}

impl Page<'_> {
    fn brand(&self) -> Brand<'_> {
        brand(self.t)
    }

    fn action(&self) -> String {
        device::verification_uri(&self.t.issuer)
    }

    fn jar(&self) -> CookieJar<'_> {
        CookieJar {
            path: self.t.cookie_path(),
            secure: self.app.public_url.starts_with("https://"),
        }
    }

    fn aad(&self) -> String {
        format!("sesame:device-page:{}", self.t.tenant.id)
    }

    fn seal(&self, stage: Stage, prefill: &str) -> String {
        let step = Step {
            stage,
            prefill: prefill.to_owned(),
            issued_at: sesame_core::now(),
        };
        let json = serde_json::to_vec(&step).expect("a device page step serializes");
        B64.encode(self.app.master.seal(&self.aad(), &json))
    }

    fn open(&self, sealed: &str) -> Option<Step> {
        let bytes = B64.decode(sealed).ok()?;
        let json = self.app.master.open(&self.aad(), &bytes).ok()?;
        let step: Step = serde_json::from_slice(&json).ok()?;
        (sesame_core::now() - step.issued_at < FORM_TTL).then_some(step)
    }

    /// The CSRF token for a form, and the cookie that sets it if the browser has none.
    fn csrf(&self) -> (String, Option<HeaderValue>) {
        match &self.browser.csrf_cookie {
            Some(c) => (c.clone(), None),
            None => {
                let token = browser::new_csrf();
                let cookie = self.jar().set(CSRF_COOKIE, &token, None);
                (token, Some(cookie))
            }
        }
    }

    #[allow(clippy::result_large_err)]
    fn read_form(&self, form: sesame_core::Result<Form>) -> Result<(Form, Step), Response> {
        read_sealed_form(
            &self.brand(),
            self.browser.csrf_cookie.as_deref(),
            form,
            |r| self.open(r),
            "Open the device page again.",
            "This page has expired. Open the device page again.",
        )
    }

    fn unavailable(&self, e: Error) -> Response {
        tracing::error!(error = %e, "device page failed");
        error_page(
            Some(&self.brand()),
            StatusCode::SERVICE_UNAVAILABLE,
            "This page is not available right now. Try again in a moment.",
        )
    }

    /// The browser's session and its (enabled) user, if any.
    async fn current_session(&self) -> sesame_core::Result<Option<(BrowserSession, User)>> {
        let Some(secret) = &self.browser.session_secret else {
            return Ok(None);
        };
        let tenant = &self.t.tenant.id;
        let now = sesame_core::now();
        let Some(session) = self
            .app
            .store
            .get_session(tenant, &login::session_hash(secret), now)
            .await?
        else {
            return Ok(None);
        };
        let user = self.app.store.get_user(tenant, session.user_id.as_str()).await?;
        Ok(user
            .filter(|u| u.id == session.user_id && !u.disabled)
            .map(|u| (session, u)))
    }

    /// The tenant's sign-in form, posting back here.
    fn sign_in_form(&self, prefill: &str, username: &str, error: Option<&str>) -> Response {
        let (csrf, cookie) = self.csrf();
        let action = self.action();
        let sealed = self.seal(Stage::SignIn, prefill);
        let view = pages::LoginView {
            action: &action,
            csrf: &csrf,
            request: &sealed,
            client_name: "a device",
            username,
            error,
            // SSO continues an authorization request, which a device sign-in does not have;
            // the device page signs in with a password (or reuses an SSO-made session).
            sso: &[],
            passwords: true,
        };
        with_cookie(pages::login(&self.brand(), &view, &[]), cookie)
    }

    fn code_form(&self, user: &User, typed: &str, error: Option<&str>, status: StatusCode) -> Response {
        let (csrf, cookie) = self.csrf();
        let action = self.action();
        let sealed = self.seal(Stage::Code, "");
        let username = user.username.to_string();
        let view = pages::DeviceView {
            action: &action,
            csrf: &csrf,
            request: &sealed,
            username: &username,
            user_code: typed,
            error,
        };
        with_cookie(pages::device(&self.brand(), status, &view), cookie)
    }

    /// The sign-in form's submission: as at /login (throttled, counted before the password is
    /// checked), then a new session and the user code form.
    async fn sign_in(&self, form: &Form, prefill: &str) -> Response {
        let username = form.single("username").ok().flatten().unwrap_or("");
        let password = Zeroizing::new(form.single("password").ok().flatten().unwrap_or("").to_owned());
        let attempt = Attempt {
            username,
            password,
            ip: self.browser.ip.as_deref(),
        };
        let tenant = &self.t.tenant.id;
        let outcome = login::sign_in(&*self.app.store, tenant, attempt, sesame_core::now(), |check| {
            self.app.password_checks.verify(tenant.as_str(), check)
        })
        .await;
        crate::oplog::report_sign_in(self.app, tenant, "device", &outcome, self.browser.ip.as_deref());
        let user = match outcome {
            Ok(Outcome::SignedIn(user)) => user,
            Ok(Outcome::Refused { .. }) => {
                return self.sign_in_form(prefill, username, Some("The username or password is incorrect."))
            }
            Ok(Outcome::Throttled { retry_after }) | Ok(Outcome::Busy { retry_after }) => {
                let message = format!("Too many sign-ins. Wait {retry_after} seconds and try again.");
                let mut resp = self.sign_in_form(prefill, username, Some(&message));
                too_many(&mut resp, retry_after);
                return resp;
            }
            Err(e) => return self.unavailable(e),
        };
        // A new session at every sign-in (no session fixation), as at /login.
        let now = sesame_core::now();
        let ttl = self.t.tenant.session_ttl;
        let (secret, session) = login::new_session(
            &user,
            &["pwd"],
            self.browser.user_agent.as_deref(),
            self.browser.ip.as_deref(),
            ttl,
            now,
        );
        if let Err(e) = self.app.store.insert_session(&session).await {
            return self.unavailable(e);
        }
        if let Ok(Some((old, _))) = self.current_session().await {
            if self.app.store.delete_session(tenant, &old.id).await.is_ok() {
                crate::backchannel::sessions_ended(self.app, self.t, vec![old]);
            }
        }
        let mut resp = self.code_form(&user, prefill, None, StatusCode::OK);
        resp.headers_mut().append(
            header::SET_COOKIE,
            self.jar().set(SESSION_COOKIE, &secret, Some(ttl)),
        );
        resp
    }

    /// The user code form's submission: a guess counted before it is checked (see
    /// `device::check_user_code`), then the confirmation page.
    async fn code_entered(&self, form: &Form) -> Response {
        let (session, user) = match self.current_session().await {
            Ok(Some(s)) => s,
            Ok(None) => return self.sign_in_form("", "", Some("Sign in again to continue.")),
            Err(e) => return self.unavailable(e),
        };
        let typed = form.single("user_code").ok().flatten().unwrap_or("");
        // Shown back only in the shape of a user code.
        let shown: String = typed
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .take(16)
            .collect();
        let now = sesame_core::now();
        let checked = device::check_user_code(
            &*self.app.store,
            &self.t.tenant.id,
            &session.id,
            self.browser.ip.as_deref(),
            typed,
            now,
        )
        .await;
        let request = match checked {
            Ok(CodeCheck::Found(request)) => request,
            Ok(CodeCheck::Unknown) => {
                return self.code_form(
                    &user,
                    &shown,
                    Some("That code is not valid, or it has expired. Check the code shown on your device."),
                    StatusCode::BAD_REQUEST,
                )
            }
            Ok(CodeCheck::Throttled { retry_after }) => {
                let message = format!(
                    "Too many wrong codes. Wait {retry_after} second{} and try again.",
                    if retry_after == 1 { "" } else { "s" }
                );
                let mut resp = self.code_form(&user, &shown, Some(&message), StatusCode::OK);
                too_many(&mut resp, retry_after);
                return resp;
            }
            Err(e) => return self.unavailable(e),
        };
        let client = match self.t.client(&*self.app.store, &request.client_id).await {
            Ok(Some(c)) if !c.disabled => c,
            Ok(_) => {
                return error_page(
                    Some(&self.brand()),
                    StatusCode::BAD_REQUEST,
                    "The application that asked for this code no longer exists.",
                )
            }
            Err(e) => return self.unavailable(e),
        };
        let (csrf, cookie) = self.csrf();
        let action = self.action();
        let formatted = device::format_user_code(&request.user_code);
        let sealed = self.seal(
            Stage::Decide {
                user_code: request.user_code.clone(),
                session_id: session.id.clone(),
            },
            "",
        );
        let scopes: Vec<pages::ScopeView> = request
            .scope
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(|s| pages::ScopeView {
                name: s,
                description: scope_description(s),
            })
            .collect();
        let username = user.username.to_string();
        let view = pages::DeviceConfirmView {
            action: &action,
            csrf: &csrf,
            request: &sealed,
            username: &username,
            user_code: &formatted,
            client_name: &client.name,
            scopes: &scopes,
        };
        with_cookie(pages::device_confirm(&self.brand(), &view), cookie)
    }

    /// Approve or Deny, by the session that was shown the request.
    async fn decided(&self, form: &Form, user_code: &str, shown_to: &str) -> Response {
        let (session, user) = match self.current_session().await {
            Ok(Some(s)) if s.0.id == shown_to => s,
            Ok(_) => return self.sign_in_form("", "", Some("Sign in again to continue.")),
            Err(e) => return self.unavailable(e),
        };
        let approve = match form.single("decision") {
            Ok(Some("allow")) => true,
            Ok(Some("deny")) => false,
            _ => {
                return error_page(
                    Some(&self.brand()),
                    StatusCode::BAD_REQUEST,
                    "The form was incomplete.",
                )
            }
        };
        let now = sesame_core::now();
        let tenant = &self.t.tenant.id;
        let request = match device::pending_by_user_code(&*self.app.store, tenant, user_code, now).await {
            Ok(r) => r,
            Err(e) => return self.unavailable(e),
        };
        let client = match &request {
            Some(r) => match self.t.client(&*self.app.store, &r.client_id).await {
                Ok(c) => c.filter(|c| !c.disabled),
                Err(e) => return self.unavailable(e),
            },
            None => None,
        };
        let decided = match &client {
            Some(client) => {
                device::decide(&*self.app.store, client, user_code, &session, &user, approve, now).await
            }
            None => Ok(false),
        };
        match (decided, client) {
            (Ok(true), Some(client)) if approve => pages::device_done(
                &self.brand(),
                "Device connected",
                &format!(
                    "{} is now signed in as you. You can close this page and return to your device.",
                    client.name
                ),
            ),
            (Ok(true), _) => pages::device_done(
                &self.brand(),
                "Request denied",
                "The device was not given access. You can close this page.",
            ),
            (Ok(false), _) => error_page(
                Some(&self.brand()),
                StatusCode::BAD_REQUEST,
                "This request is no longer waiting: it expired or was already answered. Start again on your device.",
            ),
            (Err(e), _) => self.unavailable(e),
        }
    }
}

/// 429 with `Retry-After`.
fn too_many(resp: &mut Response, retry_after: i64) {
    *resp.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
}

fn with_cookie(mut resp: Response, cookie: Option<HeaderValue>) -> Response {
    if let Some(c) = cookie {
        resp.headers_mut().append(header::SET_COOKIE, c);
    }
    resp
}
