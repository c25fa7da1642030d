//! Browser sign-in: the authorization endpoint, the login and consent forms it shows, and the
//! `/oob` page. The protocol decisions are `sesame_core::authorize`'s; this module carries
//! the request through the pages and renders what the core decided.
//!
//! The pages post the original request back in a hidden field, sealed with the master key
//! (AES-GCM, bound to the tenant) so the browser can neither read nor alter it: the flow
//! needs no server-side state until a session exists, and a replica that never saw the
//! start of a flow can finish it.

use crate::browser::{self, Browser, CookieJar, CSRF_COOKIE, SESSION_COOKIE};
use crate::form::{BrowserForm, Form};
use crate::pages::{self, Brand};
use crate::state::{AppState, TenantState};
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};
use sesame_core::authorize::{
    self, AuthorizationResponse, AuthorizeError, AuthorizeRequest, Interaction, Params, ResponseMode, Step,
};
use sesame_core::login::{self, Attempt, Outcome};
use sesame_core::model::{BrowserSession, Client, Consent, User};
use sesame_core::token::{IssueContext, Signer};
use sesame_core::{logout, Error};
use std::sync::Arc;
use zeroize::Zeroizing;

/// How long a sign-in form stays valid.
const PENDING_TTL: i64 = 3600;

pub async fn authorize_get(
    State(app): State<AppState>,
    Path(tenant): Path<String>,
    browser: Browser,
    RawQuery(query): RawQuery,
) -> Response {
    let params = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .into_owned()
        .collect();
    arrive(app, tenant, browser, Arrival::Request(params)).await
}

/// OpenID Connect Core §3.1.2.1: the authorization endpoint also accepts POST.
pub async fn authorize_post(
    State(app): State<AppState>,
    Path(tenant): Path<String>,
    browser: Browser,
    BrowserForm(form): BrowserForm,
) -> Response {
    match form {
        Ok(form) => arrive(app, tenant, browser, Arrival::Request(form.pairs().to_vec())).await,
        Err(e) => core_error_page(None, e),
    }
}

/// The login form's submission.
pub async fn login(
    State(app): State<AppState>,
    Path(tenant): Path<String>,
    browser: Browser,
    BrowserForm(form): BrowserForm,
) -> Response {
    arrive(app, tenant, browser, Arrival::Login(form)).await
}

/// The consent form's submission.
pub async fn consent(
    State(app): State<AppState>,
    Path(tenant): Path<String>,
    browser: Browser,
    BrowserForm(form): BrowserForm,
) -> Response {
    arrive(app, tenant, browser, Arrival::Consent(form)).await
}

/// How a request reaches the sign-in flow.
enum Arrival {
    /// An authorization request from a client.
    Request(Vec<(String, String)>),
    /// The login form, submitted.
    Login(sesame_core::Result<Form>),
    /// The consent form, submitted.
    Consent(sesame_core::Result<Form>),
}

async fn arrive(app: AppState, tenant: String, browser: Browser, arrival: Arrival) -> Response {
    let t = match app.tenant(&tenant).await {
        Ok(t) => t,
        Err(e) => return core_error_page(None, e),
    };
    let flow = Flow {
        app: &app,
        t: &t,
        browser: &browser,
    };
    match arrival {
        Arrival::Request(params) => {
            let pending = Pending {
                params,
                signed_in_session: None,
                issued_at: sesame_core::now(),
            };
            match flow.validate(&pending.params).await {
                Ok((client, req)) => flow.proceed(&client, &req, pending, Done::Nothing).await,
                Err(resp) => resp,
            }
        }
        Arrival::Login(form) => match flow.submitted(form).await {
            Ok(submitted) => flow.sign_in(submitted).await,
            Err(resp) => resp,
        },
        Arrival::Consent(form) => match flow.submitted(form).await {
            Ok(submitted) => flow.consented(submitted).await,
            Err(resp) => resp,
        },
    }
}

/// `/oob`: shows an authorization code for a person to paste into a terminal.
pub async fn oob(
    State(app): State<AppState>,
    Path(tenant): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let t = match app.tenant(&tenant).await {
        Ok(t) => t,
        Err(e) => return core_error_page(None, e),
    };
    let params: Vec<(String, String)> = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .into_owned()
        .collect();
    let get = |k: &str| params.iter().find(|(pk, _)| pk == k).map(|(_, v)| v.as_str());
    let brand = brand(&t);
    // Anyone can link to this page, so it shows only what has the shape of a code or an
    // error code, never free text from the query (no phishing text on Sesame's own page).
    let token_like = |v: &&str| {
        (1..=256).contains(&v.len())
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    match (get("code").filter(token_like), get("error")) {
        (Some(code), None) => pages::oob(&brand, Some(code), None),
        (_, Some("access_denied")) => pages::oob(
            &brand,
            None,
            Some("You declined the request. You can close this page."),
        ),
        (_, Some(error)) => {
            let message = match Some(error).filter(token_like) {
                Some(code) => {
                    format!("The sign-in did not complete ({code}). Start again from the terminal.")
                }
                None => "The sign-in did not complete. Start again from the terminal.".to_owned(),
            };
            pages::oob(&brand, None, Some(&message))
        }
        (None, None) => pages::oob(&brand, None, Some("There is no code to show here.")),
    }
}

/// What happened in this request before deciding the next step.
enum Done {
    Nothing,
    SignedIn(Box<(BrowserSession, User)>),
    Consented,
}

/// The authorization request as carried through the pages.
#[derive(Serialize, Deserialize)]
struct Pending {
    params: Vec<(String, String)>,
    /// The session signed in during this flow, so `prompt=login` and `max_age` are met once
    /// and not asked again on the consent page.
    signed_in_session: Option<String>,
    issued_at: i64,
}

/// A login or consent form as submitted.
struct Submitted {
    form: Form,
    pending: Pending,
    client: Arc<Client>,
    req: AuthorizeRequest,
}

struct Flow<'a> {
    app: &'a AppState,
    t: &'a Arc<TenantState>,
    browser: &'a Browser,
}

impl Flow<'_> {
    async fn sign_in(&self, submitted: Submitted) -> Response {
        let Submitted {
            form,
            pending,
            client,
            req,
        } = submitted;
        let username = form.single("username").ok().flatten().unwrap_or("");
        match self.passwords_allowed().await {
            Ok(true) => {}
            Ok(false) => {
                return self
                    .login_page(
                        &client,
                        &req,
                        &pending,
                        username,
                        Some("This organisation signs in through its own sign-in service: choose it below."),
                    )
                    .await
            }
            Err(e) => return self.unavailable(e),
        }
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
        crate::oplog::report_sign_in(self.app, tenant, "login", &outcome, self.browser.ip.as_deref());
        let user = match outcome {
            Ok(Outcome::SignedIn(user)) => user,
            Ok(Outcome::Refused { .. }) => {
                // RFC 9110 §15.5.2: a 401 must carry a WWW-Authenticate challenge, and a login
                // form is none, so the page comes back as an ordinary 200 with its alert.
                return self
                    .login_page(
                        &client,
                        &req,
                        &pending,
                        username,
                        Some("The username or password is incorrect."),
                    )
                    .await;
            }
            Ok(Outcome::Throttled { retry_after }) => {
                let why = "Too many failed sign-ins.";
                return self
                    .wait_page(&client, &req, &pending, username, why, retry_after)
                    .await;
            }
            // Too many checks under way is answered like throttling: wait, then retry.
            Ok(Outcome::Busy { retry_after }) => {
                let why = "Too many sign-ins right now.";
                return self
                    .wait_page(&client, &req, &pending, username, why, retry_after)
                    .await;
            }
            Err(e) => return self.unavailable(e),
        };
        self.start_session(&client, &req, pending, *user, &["pwd"]).await
    }

    /// A new browser session for a person who just signed in (with a password, or at an
    /// upstream IdP), then the next step of the request.
    async fn start_session(
        &self,
        client: &Client,
        req: &AuthorizeRequest,
        pending: Pending,
        user: User,
        amr: &[&str],
    ) -> Response {
        // A new session, with a new secret, at every sign-in: whatever session cookie the browser
        // had (perhaps one planted by someone else) is never promoted (session fixation).
        let now = sesame_core::now();
        let ttl = self.t.tenant.session_ttl;
        let (secret, session) = login::new_session(
            &user,
            amr,
            self.browser.user_agent.as_deref(),
            self.browser.ip.as_deref(),
            ttl,
            now,
        );
        if let Err(e) = self.app.store.insert_session(&session).await {
            return self.unavailable(e);
        }
        // The browser's previous session, if any, ends: one person per browser and tenant.
        if let Ok(Some((old, _))) = self.current_session().await {
            if self
                .app
                .store
                .delete_session(&self.t.tenant.id, &old.id)
                .await
                .is_ok()
            {
                crate::backchannel::sessions_ended(self.app, self.t, vec![old]);
            }
        }
        let mut resp = self
            .proceed(
                client,
                req,
                Pending {
                    signed_in_session: Some(session.id.clone()),
                    ..pending
                },
                Done::SignedIn(Box::new((session, user))),
            )
            .await;
        resp.headers_mut().append(
            header::SET_COOKIE,
            self.jar().set(SESSION_COOKIE, &secret, Some(ttl)),
        );
        resp
    }

    /// The login page again, asking to wait `retry_after` seconds (429 with `Retry-After`).
    async fn wait_page(
        &self,
        client: &Client,
        req: &AuthorizeRequest,
        pending: &Pending,
        username: &str,
        why: &str,
        retry_after: i64,
    ) -> Response {
        let message = format!(
            "{why} Wait {retry_after} second{} and try again.",
            if retry_after == 1 { "" } else { "s" }
        );
        let mut resp = self
            .login_page(client, req, pending, username, Some(&message))
            .await;
        *resp.status_mut() = StatusCode::TOO_MANY_REQUESTS;
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
        resp
    }

    async fn consented(&self, submitted: Submitted) -> Response {
        let Submitted {
            form,
            pending,
            client,
            req,
        } = submitted;
        match form.single("decision") {
            Ok(Some("allow")) => self.proceed(&client, &req, pending, Done::Consented).await,
            // RFC 6749 §4.1.2.1 `access_denied`.
            Ok(Some("deny")) => {
                self.authorize_error(req.error(&self.t.issuer, "access_denied", "the person declined"))
            }
            _ => error_page(
                Some(&self.brand()),
                StatusCode::BAD_REQUEST,
                "The consent form was incomplete.",
            ),
        }
    }

    fn brand(&self) -> Brand<'_> {
        brand(self.t)
    }

    /// Whether the password form is offered and accepted: unless the tenant turned it off and
    /// has an enabled SSO connection to sign in with instead (never locking everyone out).
    async fn passwords_allowed(&self) -> sesame_core::Result<bool> {
        let tenant = &self.t.tenant.id;
        if self.app.store.password_sign_in(tenant).await? {
            return Ok(true);
        }
        let conns = self.app.store.list_sso_connections(tenant).await?;
        Ok(!conns.iter().any(|c| c.enabled))
    }

    fn jar(&self) -> CookieJar<'_> {
        CookieJar {
            path: self.t.cookie_path(),
            secure: self.app.public_url.starts_with("https://"),
        }
    }

    fn unavailable(&self, e: Error) -> Response {
        tracing::error!(error = %e, "sign-in failed");
        error_page(
            Some(&self.brand()),
            StatusCode::SERVICE_UNAVAILABLE,
            "Signing in is not possible right now. Try again in a moment.",
        )
    }

    fn aad(&self) -> String {
        format!("sesame:authorize-request:{}", self.t.tenant.id)
    }

    fn seal(&self, pending: &Pending) -> String {
        let json = serde_json::to_vec(pending).expect("pending request serializes");
        B64.encode(self.app.master.seal(&self.aad(), &json))
    }

    fn open(&self, sealed: &str) -> Option<Pending> {
        open_pending(self.app, self.t, sealed)
    }

    /// A submitted page form: its CSRF token checked, its sealed request opened and checked
    /// again against the client as it is now.
    async fn submitted(&self, form: sesame_core::Result<Form>) -> Result<Submitted, Response> {
        let (form, pending) = self.read_form(form)?;
        let (client, req) = self.validate(&pending.params).await?;
        Ok(Submitted {
            form,
            pending,
            client,
            req,
        })
    }

    #[allow(clippy::result_large_err)]
    fn read_form(&self, form: sesame_core::Result<Form>) -> Result<(Form, Pending), Response> {
        read_sealed_form(
            &self.brand(),
            self.browser.csrf_cookie.as_deref(),
            form,
            |r| self.open(r),
            "Go back to the application and start again.",
            "This sign-in has expired. Go back to the application and start again.",
        )
    }

    /// The client and the checked request, or the response for a request that fails.
    async fn validate(
        &self,
        params: &[(String, String)],
    ) -> Result<(Arc<Client>, AuthorizeRequest), Response> {
        let params =
            authorize::expand_request_object(params.to_vec()).map_err(|e| self.authorize_error(e))?;
        let p = Params(&params);
        let page = |message: &str| error_page(Some(&self.brand()), StatusCode::BAD_REQUEST, message);
        let client_id = authorize::client_id(&p).map_err(|e| self.authorize_error(e))?;
        let client = match self.t.client(&*self.app.store, &client_id).await {
            Ok(Some(c)) if !c.disabled => c,
            Ok(_) => return Err(page("The application named in the request does not exist.")),
            Err(e) => return Err(self.unavailable(e)),
        };
        let req = authorize::validate(&self.t.issuer, &p, &client).map_err(|e| self.authorize_error(e))?;
        Ok((client, req))
    }

    fn authorize_error(&self, e: AuthorizeError) -> Response {
        match e {
            AuthorizeError::Page { message } => {
                error_page(Some(&self.brand()), StatusCode::BAD_REQUEST, &message)
            }
            AuthorizeError::Redirect(resp) => self.respond(&resp),
        }
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

    /// The next step of a checked request (see `validate`).
    async fn proceed(
        &self,
        client: &Client,
        req: &AuthorizeRequest,
        pending: Pending,
        done: Done,
    ) -> Response {
        let store = &*self.app.store;
        let tenant = &self.t.tenant.id;
        let consented_now = matches!(done, Done::Consented);
        let signed_in = match done {
            Done::SignedIn(signed_in) => Some(*signed_in),
            _ => match self.current_session().await {
                Ok(s) => s,
                Err(e) => return self.unavailable(e),
            },
        };
        let hint_subject = match &req.id_token_hint {
            None => None,
            Some(hint) => match logout::read_hint(&self.t.issuer, &self.t.keyring, hint) {
                Ok(h) => Some(h.sub),
                Err(e) => {
                    return self.authorize_error(req.error(&self.t.issuer, "invalid_request", e.to_string()))
                }
            },
        };
        let mut consent = None;
        // A first-party client never asks, so its consent is not read.
        if let Some((_, user)) = signed_in.as_ref().filter(|_| !client.first_party) {
            consent = match store.get_consent(tenant, &user.id, &client.client_id).await {
                Ok(c) => c,
                Err(e) => return self.unavailable(e),
            };
            if consented_now {
                // Remembered per user and client; a later request for more scopes asks again.
                let mut scopes = consent.map(|c| c.scopes).unwrap_or_default();
                for s in &req.scopes {
                    if !scopes.contains(s) {
                        scopes.push(s.clone());
                    }
                }
                let updated = Consent {
                    tenant_id: tenant.clone(),
                    user_id: user.id.clone(),
                    client_id: client.client_id.clone(),
                    scopes,
                    granted_at: sesame_core::now(),
                };
                if let Err(e) = store.put_consent(&updated).await {
                    return self.unavailable(e);
                }
                consent = Some(updated);
            }
        }
        let signed_in_now = match (&signed_in, &pending.signed_in_session) {
            (Some((s, _)), Some(id)) => s.id == *id,
            _ => false,
        };
        let interaction = Interaction {
            session: signed_in.as_ref().map(|(s, u)| (s, u)),
            consent: consent.as_ref(),
            signed_in_now,
            consented_now,
            hint_subject: hint_subject.as_deref(),
        };
        let now = sesame_core::now();
        match authorize::next_step(&self.t.issuer, req, client, &interaction, now) {
            Err(e) => self.authorize_error(e),
            Ok(Step::Login) => {
                let hint = req.login_hint.clone().unwrap_or_default();
                // A login_hint whose email domain belongs to a connection goes straight there.
                match self.app.store.list_sso_connections(tenant).await {
                    Ok(conns) => {
                        if let Some(c) = sesame_core::federation::route_hint(&conns, &hint) {
                            return see_other(&super::sso::start_url(self.t, &c.id, &self.seal(&pending)));
                        }
                    }
                    Err(e) => return self.unavailable(e),
                }
                self.login_page(client, req, &pending, &hint, None).await
            }
            Ok(Step::Consent(scopes)) => {
                let username = signed_in
                    .as_ref()
                    .map(|(_, u)| u.username.to_string())
                    .unwrap_or_default();
                self.consent_page(client, req, &pending, &username, &scopes)
            }
            Ok(Step::Issue) => {
                let (session, user) = signed_in.as_ref().expect("issue follows a sign-in");
                let ctx = IssueContext {
                    signer: Signer {
                        issuer: &self.t.issuer,
                        tenant: &self.t.tenant,
                        keyring: &self.t.keyring,
                        now,
                    },
                    store,
                    master: &self.app.master,
                    trust: None,
                    upstream: None,
                };
                match authorize::issue(&ctx, client, req, session, user).await {
                    Ok(resp) => self.respond(&resp),
                    Err(e) => self.unavailable(e),
                }
            }
        }
    }

    /// Sends the authorization response back to the client.
    fn respond(&self, resp: &AuthorizationResponse) -> Response {
        match resp.mode {
            ResponseMode::FormPost => pages::form_post(&resp.redirect_uri, &resp.params),
            ResponseMode::Query | ResponseMode::Fragment => {
                let location = resp.location();
                let mut r = StatusCode::SEE_OTHER.into_response();
                match HeaderValue::from_str(&location) {
                    Ok(v) => {
                        r.headers_mut().insert(header::LOCATION, v);
                        r.headers_mut()
                            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                        r
                    }
                    Err(_) => error_page(
                        Some(&self.brand()),
                        StatusCode::BAD_REQUEST,
                        "The application's request cannot be answered.",
                    ),
                }
            }
        }
    }

    /// The CSRF token for a page's form, and the cookie that sets it if the browser has none.
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

    async fn login_page(
        &self,
        client: &Client,
        req: &AuthorizeRequest,
        pending: &Pending,
        username: &str,
        error: Option<&str>,
    ) -> Response {
        let (csrf, cookie) = self.csrf();
        let action = format!("{}/login", self.t.issuer);
        let origin = pages::origin_of(&req.redirect_uri);
        let sealed = self.seal(pending);
        // Read on each login page (not cached): a page a person waits on, not a token path.
        let tenant = &self.t.tenant.id;
        let (conns, passwords) = match (
            self.app.store.list_sso_connections(tenant).await,
            self.app.store.password_sign_in(tenant).await,
        ) {
            (Ok(c), Ok(p)) => (c, p),
            (Err(e), _) | (_, Err(e)) => return self.unavailable(e),
        };
        let buttons: Vec<pages::SsoButton> = conns
            .iter()
            .filter(|c| c.enabled)
            .map(|c| pages::SsoButton {
                href: super::sso::start_url(self.t, &c.id, &sealed),
                text: c.button_text.clone(),
                image_url: c.button_image_url.clone(),
            })
            .collect();
        let view = pages::LoginView {
            action: &action,
            csrf: &csrf,
            request: &sealed,
            client_name: &client.name,
            username,
            error,
            sso: &buttons,
            passwords: passwords || buttons.is_empty(),
        };
        with_cookie(pages::login(&self.brand(), &view, &origin_list(&origin)), cookie)
    }

    fn consent_page(
        &self,
        client: &Client,
        req: &AuthorizeRequest,
        pending: &Pending,
        username: &str,
        scopes: &[String],
    ) -> Response {
        let (csrf, cookie) = self.csrf();
        let action = format!("{}/consent", self.t.issuer);
        let origin = pages::origin_of(&req.redirect_uri);
        let sealed = self.seal(pending);
        let described: Vec<pages::ScopeView> = scopes
            .iter()
            .map(|s| pages::ScopeView {
                name: s,
                description: scope_description(s),
            })
            .collect();
        let view = pages::ConsentView {
            action: &action,
            csrf: &csrf,
            request: &sealed,
            client_name: &client.name,
            username,
            scopes: &described,
        };
        with_cookie(
            pages::consent(&self.brand(), &view, &origin_list(&origin)),
            cookie,
        )
    }
}

/// A page's form as posted: its CSRF token checked against the cookie, then its sealed `request`
/// field opened. Either failure is an error page; `again` tells the person where to start over.
#[allow(clippy::result_large_err)]
pub(super) fn read_sealed_form<T>(
    brand: &Brand,
    csrf_cookie: Option<&str>,
    form: sesame_core::Result<Form>,
    open: impl FnOnce(&str) -> Option<T>,
    again: &str,
    expired: &str,
) -> Result<(Form, T), Response> {
    let form = form.map_err(|e| core_error_page(Some(brand), e))?;
    let submitted = form.single("csrf").ok().flatten();
    if !browser::csrf_ok(csrf_cookie, submitted) {
        return Err(error_page(
            Some(brand),
            StatusCode::FORBIDDEN,
            &format!("This form has expired or was sent from another site, so it was not accepted. {again}"),
        ));
    }
    let sealed = form.single("request").ok().flatten().and_then(open);
    match sealed {
        Some(value) => Ok((form, value)),
        None => Err(error_page(Some(brand), StatusCode::BAD_REQUEST, expired)),
    }
}

fn open_pending(app: &AppState, t: &TenantState, sealed: &str) -> Option<Pending> {
    let bytes = B64.decode(sealed).ok()?;
    let aad = format!("sesame:authorize-request:{}", t.tenant.id);
    let json = app.master.open(&aad, &bytes).ok()?;
    let pending: Pending = serde_json::from_slice(&json).ok()?;
    (sesame_core::now() - pending.issued_at < PENDING_TTL).then_some(pending)
}

/// Whether a sealed authorization request (the login page's hidden field) opens and is
/// current; its `login_hint` if so.
pub(crate) fn open_request(app: &AppState, t: &TenantState, sealed: &str) -> Option<Option<String>> {
    let pending = open_pending(app, t, sealed)?;
    Some(
        pending
            .params
            .iter()
            .find(|(k, _)| k == "login_hint")
            .map(|(_, v)| v.clone()),
    )
}

/// A person signed in at an upstream IdP (brokered SSO): a new session exactly as after a
/// password sign-in, then the application's request continues from `sealed_request`.
pub(crate) async fn finish_external_sign_in(
    app: &AppState,
    t: &Arc<TenantState>,
    browser: &Browser,
    sealed_request: &str,
    user: User,
    amr: &[&str],
) -> Response {
    let flow = Flow { app, t, browser };
    let Some(pending) = flow.open(sealed_request) else {
        return error_page(
            Some(&flow.brand()),
            StatusCode::BAD_REQUEST,
            "This sign-in has expired. Go back to the application and start again.",
        );
    };
    match flow.validate(&pending.params).await {
        Ok((client, req)) => flow.start_session(&client, &req, pending, user, amr).await,
        Err(resp) => resp,
    }
}

fn see_other(location: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
        r.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    r
}

fn origin_list(origin: &Option<String>) -> Vec<&str> {
    origin.iter().map(String::as_str).collect()
}

fn with_cookie(mut resp: Response, cookie: Option<HeaderValue>) -> Response {
    if let Some(c) = cookie {
        resp.headers_mut().append(header::SET_COOKIE, c);
    }
    resp
}

pub(super) fn scope_description(scope: &str) -> &'static str {
    match scope {
        "openid" => "Know who you are (your account identifier)",
        "profile" => "See your name, username and picture",
        "email" => "See your email address",
        "address" => "See your postal address",
        "phone" => "See your phone number",
        "offline_access" => "Stay signed in and act for you while you are away",
        _ => "Access granted by this permission",
    }
}

pub fn brand(t: &TenantState) -> Brand<'_> {
    Brand {
        tenant_name: &t.tenant.display_name,
        logo_url: t.tenant.logo_url.as_deref(),
    }
}

pub fn error_page(brand: Option<&Brand>, status: StatusCode, message: &str) -> Response {
    let title = match status {
        StatusCode::FORBIDDEN => "Request refused",
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::SERVICE_UNAVAILABLE => "Temporarily unavailable",
        _ => "Something is wrong with this request",
    };
    pages::error(brand, status, &pages::ErrorView { title, message })
}

/// A core error on a page route (an unknown tenant, a store failure): no internals shown.
pub fn core_error_page(brand: Option<&Brand>, e: Error) -> Response {
    let status = crate::error::status_of(&e);
    if e.is_internal() {
        tracing::error!(error = %e, "page request failed");
        return error_page(
            brand,
            status,
            "Something went wrong on our side. Try again in a moment.",
        );
    }
    error_page(brand, status, &e.description())
}
