//! The authorization endpoint: RFC 6749 §3.1 and §4.1.1/§4.2.1, OpenID Connect Core §3.1.2,
//! PKCE (RFC 7636), response modes (OAuth 2.0 Multiple Response Types, Form Post Response
//! Mode) and the `iss` response parameter (RFC 9207).
//!
//! The server calls, in order: [`client_id`] (to look the client up), [`validate`] (the
//! request against the client), [`next_step`] (login, consent or issue, given the browser's
//! session), and [`issue`] (the code and/or tokens, as an [`AuthorizationResponse`]).

use crate::claims;
use crate::ids::ClientId;
use crate::model::{
    AuthorizationCode, BrowserSession, Client, ClientType, Consent, GrantType, ImplicitGrant, User,
};
use crate::secret::hash_secret;
use crate::token::{self, IssueContext};
use crate::Result;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;

/// How long an authorization code lives (RFC 6749 §4.1.2 recommends at most 10 minutes).
pub const CODE_TTL: i64 = 60;

/// The OpenID Connect scopes every sign-in client may request without listing them.
/// `groups` is not an OpenID Connect scope: it asks for the groups brokered SSO brought.
pub const STANDARD_SCOPES: [&str; 6] = ["openid", "profile", "email", "address", "phone", "groups"];
pub const OFFLINE_ACCESS: &str = "offline_access";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseType {
    Code,
    Token,
    IdToken,
    IdTokenToken,
}

impl ResponseType {
    /// The space-separated list is a set (OAuth 2.0 Multiple Response Types §5).
    fn parse(s: &str) -> Option<ResponseType> {
        let mut words: Vec<&str> = s.split(' ').filter(|w| !w.is_empty()).collect();
        words.sort_unstable();
        match words.as_slice() {
            ["code"] => Some(ResponseType::Code),
            ["token"] => Some(ResponseType::Token),
            ["id_token"] => Some(ResponseType::IdToken),
            ["id_token", "token"] => Some(ResponseType::IdTokenToken),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ResponseType::Code => "code",
            ResponseType::Token => "token",
            ResponseType::IdToken => "id_token",
            ResponseType::IdTokenToken => "id_token token",
        }
    }

    pub const ALL: [ResponseType; 4] = [
        ResponseType::Code,
        ResponseType::IdToken,
        ResponseType::Token,
        ResponseType::IdTokenToken,
    ];

    fn has_code(self) -> bool {
        self == ResponseType::Code
    }
    fn has_access_token(self) -> bool {
        matches!(self, ResponseType::Token | ResponseType::IdTokenToken)
    }
    fn has_id_token(self) -> bool {
        matches!(self, ResponseType::IdToken | ResponseType::IdTokenToken)
    }
    fn default_mode(self) -> ResponseMode {
        if self.has_code() {
            ResponseMode::Query
        } else {
            ResponseMode::Fragment
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseMode {
    Query,
    Fragment,
    FormPost,
}

impl ResponseMode {
    fn parse(s: &str) -> Option<ResponseMode> {
        match s {
            "query" => Some(ResponseMode::Query),
            "fragment" => Some(ResponseMode::Fragment),
            "form_post" => Some(ResponseMode::FormPost),
            _ => None,
        }
    }
}

/// OpenID Connect Core §3.1.2.1 `prompt`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Prompt {
    pub none: bool,
    pub login: bool,
    pub consent: bool,
}

/// A request that names a known client and a redirect URI registered for it: from here on,
/// errors go back to the client.
#[derive(Clone, Debug)]
pub struct AuthorizeRequest {
    pub client_id: ClientId,
    pub redirect_uri: String,
    pub response_type: ResponseType,
    pub response_mode: ResponseMode,
    /// Requested scopes, each allowed for the client, without duplicates.
    pub scopes: Vec<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub prompt: Prompt,
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
    pub id_token_hint: Option<String>,
}

impl AuthorizeRequest {
    pub fn wants_openid(&self) -> bool {
        self.scopes.iter().any(|s| s == "openid")
    }

    /// An error response for this request, sent back to the client.
    pub fn error(&self, issuer: &str, code: &'static str, description: impl Into<String>) -> AuthorizeError {
        AuthorizeError::Redirect(AuthorizationResponse::error(
            issuer,
            &self.redirect_uri,
            self.response_mode,
            self.state.as_deref(),
            code,
            description.into(),
        ))
    }
}

/// Where an authorization error goes. RFC 6749 §4.1.2.1: when the client or the redirect URI
/// is unknown or wrong, the person is told, and the browser is not redirected.
#[derive(Debug)]
pub enum AuthorizeError {
    Page { message: String },
    Redirect(AuthorizationResponse),
}

impl AuthorizeError {
    fn page(message: impl Into<String>) -> AuthorizeError {
        AuthorizeError::Page {
            message: message.into(),
        }
    }
}

/// What goes back to the client: `params` at `redirect_uri`, carried as `mode` says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthorizationResponse {
    pub redirect_uri: String,
    pub mode: ResponseMode,
    pub params: Vec<(String, String)>,
}

impl AuthorizationResponse {
    fn error(
        issuer: &str,
        redirect_uri: &str,
        mode: ResponseMode,
        state: Option<&str>,
        code: &'static str,
        description: String,
    ) -> AuthorizationResponse {
        let mut params = vec![
            ("error".to_owned(), code.to_owned()),
            ("error_description".to_owned(), description),
        ];
        finish_params(&mut params, issuer, state);
        AuthorizationResponse {
            redirect_uri: redirect_uri.to_owned(),
            mode,
            params,
        }
    }

    /// The `Location` for the query and fragment modes (RFC 6749 §4.1.2, §4.2.2). A redirect
    /// URI may carry a query of its own, which is kept (§3.1.2).
    pub fn location(&self) -> String {
        let encoded = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(self.params.iter())
            .finish();
        let sep = match self.mode {
            ResponseMode::Fragment => '#',
            _ if self.redirect_uri.contains('?') => '&',
            _ => '?',
        };
        format!("{}{sep}{encoded}", self.redirect_uri)
    }
}

fn finish_params(params: &mut Vec<(String, String)>, issuer: &str, state: Option<&str>) {
    if let Some(state) = state {
        params.push(("state".to_owned(), state.to_owned()));
    }
    // RFC 9207 §2: the issuer in every authorization response, so a client talking to several
    // servers can tell which one answered (mix-up attacks).
    params.push(("iss".to_owned(), issuer.to_owned()));
}

/// The request's parameters, from the query or a POSTed form (OpenID Connect Core §3.1.2.1).
pub struct Params<'a>(pub &'a [(String, String)]);

impl Params<'_> {
    /// A parameter that may appear at most once (RFC 6749 §3.1). Empty counts as absent.
    fn single(&self, name: &str) -> std::result::Result<Option<&str>, String> {
        let mut found = self.0.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str());
        let first = found.next();
        if found.next().is_some() {
            return Err(format!("the parameter '{name}' is repeated"));
        }
        Ok(first.filter(|v| !v.is_empty()))
    }
}

/// OpenID Connect Core §6.1: parameters passed as a Request Object. Only unsigned objects
/// (`alg: none`) are accepted: they carry nothing the query could not, and Sesame keeps no
/// client keys (or plaintext secrets) to verify a signed one. The object's members take
/// precedence over the query's (§6.3.3); `client_id` and `response_type`, if in both, must
/// agree (§6.3.1). Returns the parameters to validate.
pub fn expand_request_object(
    params: Vec<(String, String)>,
) -> std::result::Result<Vec<(String, String)>, AuthorizeError> {
    let object = Params(&params)
        .single("request")
        .map_err(AuthorizeError::page)?
        .map(str::to_owned);
    let Some(object) = object else {
        return Ok(params);
    };
    let bad = || {
        AuthorizeError::page(
            "The request object is not valid: Sesame accepts unsigned request objects (alg none) only.",
        )
    };
    let mut parts = object.split('.');
    let (Some(header), Some(payload), Some(""), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    let header: serde_json::Value = B64
        .decode(header)
        .ok()
        .and_then(|h| serde_json::from_slice(&h).ok())
        .ok_or_else(bad)?;
    if header.get("alg").and_then(|a| a.as_str()) != Some("none") {
        return Err(bad());
    }
    let claims: serde_json::Map<String, serde_json::Value> = B64
        .decode(payload)
        .ok()
        .and_then(|p| serde_json::from_slice(&p).ok())
        .ok_or_else(bad)?;
    let mut merged: Vec<(String, String)> = params.into_iter().filter(|(k, _)| k != "request").collect();
    for (name, value) in claims {
        let value = match value {
            serde_json::Value::String(s) => s,
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::Bool(b) => b.to_string(),
            // `claims` and other structured members travel as JSON text, as in a query.
            other => other.to_string(),
        };
        if matches!(name.as_str(), "client_id" | "response_type") {
            if let Some((_, outer)) = merged.iter().find(|(k, _)| *k == name) {
                if *outer != value {
                    return Err(AuthorizeError::page(format!(
                        "The request object's {name} differs from the request's."
                    )));
                }
            }
        }
        // Request-object JWT claims that are not authorization parameters.
        if matches!(
            name.as_str(),
            "iss" | "aud" | "exp" | "iat" | "nbf" | "jti" | "request" | "request_uri"
        ) {
            continue;
        }
        merged.retain(|(k, _)| *k != name);
        merged.push((name, value));
    }
    Ok(merged)
}

/// The `client_id`, or the page that says it is missing or malformed.
pub fn client_id(params: &Params) -> std::result::Result<ClientId, AuthorizeError> {
    let id = params
        .single("client_id")
        .map_err(AuthorizeError::page)?
        .ok_or_else(|| {
            AuthorizeError::page("The request does not name an application (client_id is missing).")
        })?;
    ClientId::parse(id)
        .map_err(|_| AuthorizeError::page("The application named in the request does not exist."))
}

/// Checks a request against its (enabled) client.
pub fn validate(
    issuer: &str,
    params: &Params,
    client: &Client,
) -> std::result::Result<AuthorizeRequest, AuthorizeError> {
    let redirect_uri = resolve_redirect_uri(params, client)?;
    // RFC 6749 §3.1: a repeated `state` is refused like any repeated parameter. Neither value
    // is echoed: the client cannot tell which one it would be, so the error carries none.
    let (state, state_repeated) = match params.single("state") {
        Ok(state) => (state.map(str::to_owned), false),
        Err(_) => (None, true),
    };
    // Until the response mode is known, errors go back in the response type's default mode.
    let response_type = params
        .single("response_type")
        .ok()
        .flatten()
        .and_then(ResponseType::parse);
    let fallback_mode = response_type.map_or(ResponseMode::Query, ResponseType::default_mode);
    let fail = |code: &'static str, description: String| {
        AuthorizeError::Redirect(AuthorizationResponse::error(
            issuer,
            &redirect_uri,
            fallback_mode,
            state.as_deref(),
            code,
            description,
        ))
    };
    if state_repeated {
        return Err(fail(
            "invalid_request",
            "the parameter 'state' is repeated".into(),
        ));
    }
    if state.as_ref().is_some_and(|s| s.len() > 4096) {
        return Err(fail("invalid_request", "state is longer than 4096 bytes".into()));
    }
    let single = |name: &str| params.single(name).map_err(|e| fail("invalid_request", e));

    let response_mode = match single("response_mode")? {
        None => fallback_mode,
        Some(m) => ResponseMode::parse(m).ok_or_else(|| {
            fail(
                "invalid_request",
                format!("response_mode '{}' is not supported", m.escape_debug()),
            )
        })?,
    };
    let fail = |code: &'static str, description: String| {
        AuthorizeError::Redirect(AuthorizationResponse::error(
            issuer,
            &redirect_uri,
            response_mode,
            state.as_deref(),
            code,
            description,
        ))
    };
    // OpenID Connect Core §6.2: Sesame does not fetch request objects from URLs.
    if single("request_uri")?.is_some() {
        return Err(fail(
            "request_uri_not_supported",
            "request_uri is not supported".into(),
        ));
    }
    let response_type = match (single("response_type")?, response_type) {
        (None, _) => return Err(fail("invalid_request", "response_type is missing".into())),
        (Some(rt), None) => {
            return Err(fail(
                "unsupported_response_type",
                format!("response_type '{}' is not supported", rt.escape_debug()),
            ))
        }
        (Some(_), Some(rt)) => rt,
    };
    let grant = if response_type.has_code() {
        GrantType::AuthorizationCode
    } else {
        GrantType::Implicit
    };
    if !client.grant_types.contains(&grant) {
        return Err(fail(
            "unauthorized_client",
            format!(
                "the client may not use response_type '{}'",
                response_type.as_str()
            ),
        ));
    }
    // Multiple Response Types §5: tokens never travel in a query string.
    if response_mode == ResponseMode::Query && !response_type.has_code() {
        return Err(fail(
            "invalid_request",
            "response_mode 'query' cannot carry tokens".into(),
        ));
    }

    let scopes = requested_scopes(single("scope")?, client).map_err(|e| fail("invalid_scope", e))?;
    let wants_openid = scopes.iter().any(|s| s == "openid");
    if response_type.has_id_token() && !wants_openid {
        return Err(fail(
            "invalid_request",
            "response_type 'id_token' needs the openid scope".into(),
        ));
    }
    let nonce = single("nonce")?.map(str::to_owned);
    if nonce.as_ref().is_some_and(|n| n.len() > 512) {
        return Err(fail("invalid_request", "nonce is longer than 512 bytes".into()));
    }
    // OpenID Connect Core §3.2.2.1: nonce is required when the ID token comes back directly.
    if response_type.has_id_token() && nonce.is_none() {
        return Err(fail(
            "invalid_request",
            "nonce is required with response_type id_token".into(),
        ));
    }

    let code_challenge = pkce_challenge(
        single("code_challenge")?,
        single("code_challenge_method")?,
        client,
        response_type,
    )
    .map_err(|e| fail("invalid_request", e))?;

    let prompt = parse_prompt(single("prompt")?).map_err(|e| fail("invalid_request", e))?;
    let max_age = match single("max_age")? {
        None => None,
        Some(v) => Some(
            v.parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)
                .ok_or_else(|| fail("invalid_request", "max_age must be a non-negative integer".into()))?,
        ),
    };
    let login_hint = single("login_hint")?.map(|h| h.chars().take(256).collect());
    let id_token_hint = single("id_token_hint")?.map(str::to_owned);

    Ok(AuthorizeRequest {
        client_id: client.client_id.clone(),
        redirect_uri,
        response_type,
        response_mode,
        scopes,
        state,
        nonce,
        code_challenge,
        prompt,
        max_age,
        login_hint,
        id_token_hint,
    })
}

fn resolve_redirect_uri(params: &Params, client: &Client) -> std::result::Result<String, AuthorizeError> {
    let requested = params.single("redirect_uri").map_err(AuthorizeError::page)?;
    let Some(requested) = requested else {
        // RFC 6749 §3.1.2.3: may be omitted when exactly one is registered. OpenID Connect
        // requires it, but a client that registered one URI can only mean that one.
        return match client.redirect_uris.as_slice() {
            [only] => Ok(only.clone()),
            _ => Err(AuthorizeError::page(
                "The request does not say where to return to (redirect_uri is missing).",
            )),
        };
    };
    let registered = client.redirect_uris.iter().any(|r| {
        r == requested || (client.client_type == ClientType::Public && loopback_match(r, requested))
    });
    if !registered {
        return Err(AuthorizeError::page(
            "The address this application asked to return to is not registered for it, so Sesame did not send you there.",
        ));
    }
    Ok(requested.to_owned())
}

/// RFC 8252 §7.3: a native app's loopback redirect may use any port; everything else about
/// it must match the registered URI exactly.
fn loopback_match(registered: &str, requested: &str) -> bool {
    let (Ok(reg), Ok(mut req)) = (url::Url::parse(registered), url::Url::parse(requested)) else {
        return false;
    };
    let loopback = matches!(
        reg.host(),
        Some(url::Host::Ipv4(ip)) if ip.is_loopback()
    ) || matches!(reg.host(), Some(url::Host::Ipv6(ip)) if ip.is_loopback())
        || reg.host_str() == Some("localhost");
    // The requested URI must already be in normal form, so that comparing the parsed forms
    // below is the same as comparing the strings.
    if !loopback || reg.scheme() != "http" || req.as_str() != requested {
        return false;
    }
    if req.set_port(reg.port()).is_err() {
        return false;
    }
    req.as_str() == reg.as_str() || req.as_str() == registered
}

/// Scopes the client may request: the OpenID Connect standard scopes, `offline_access` if it
/// may use refresh tokens, and the scopes listed for it.
pub(crate) fn requested_scopes(
    scope: Option<&str>,
    client: &Client,
) -> std::result::Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for s in scope.unwrap_or("").split(' ').filter(|s| !s.is_empty()) {
        crate::model::validate_scope_token(s)
            .map_err(|_| format!("scope '{}' is malformed", s.escape_debug()))?;
        let allowed = STANDARD_SCOPES.contains(&s)
            || (s == OFFLINE_ACCESS && client.grant_types.contains(&GrantType::RefreshToken))
            || client.allowed_scopes.iter().any(|a| a == s);
        if !allowed {
            return Err(format!("the client may not request scope '{s}'"));
        }
        if !out.iter().any(|o| o == s) {
            out.push(s.to_owned());
        }
    }
    Ok(out)
}

/// RFC 7636 §4.3: only S256; `plain` (also the default when a challenge comes without a
/// method) is refused, because it protects nothing once the request is seen.
fn pkce_challenge(
    challenge: Option<&str>,
    method: Option<&str>,
    client: &Client,
    response_type: ResponseType,
) -> std::result::Result<Option<String>, String> {
    match (challenge, method) {
        (None, Some(_)) => Err("code_challenge_method without code_challenge".into()),
        (None, None) => {
            let required = client.require_pkce || client.client_type == ClientType::Public;
            if required && response_type.has_code() {
                Err("code_challenge is required (PKCE, RFC 7636, with code_challenge_method=S256)".into())
            } else {
                Ok(None)
            }
        }
        (Some(_), None | Some("plain")) => {
            Err("code_challenge_method must be S256; plain is not accepted".into())
        }
        (Some(_), Some(m)) if m != "S256" => Err(format!(
            "code_challenge_method '{}' is not supported (S256)",
            m.escape_debug()
        )),
        (Some(c), Some(_)) => {
            // The base64url of a SHA-256 digest: 43 characters.
            let ok = c.len() == 43
                && c.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if ok {
                Ok(Some(c.to_owned()))
            } else {
                Err("code_challenge is not a base64url SHA-256 digest (43 characters)".into())
            }
        }
    }
}

/// RFC 7636 §4.6: BASE64URL(SHA256(verifier)) == challenge, compared in constant time.
pub fn pkce_verifies(challenge: &str, verifier: &str) -> bool {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    let computed = B64.encode(digest.as_ref());
    subtle::ConstantTimeEq::ct_eq(computed.as_bytes(), challenge.as_bytes()).into()
}

/// RFC 7636 §4.1: 43 to 128 unreserved characters.
pub fn valid_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

fn parse_prompt(prompt: Option<&str>) -> std::result::Result<Prompt, String> {
    let mut out = Prompt::default();
    for word in prompt.unwrap_or("").split(' ').filter(|w| !w.is_empty()) {
        match word {
            "none" => out.none = true,
            "login" => out.login = true,
            "consent" => out.consent = true,
            // One account per browser session: choosing an account is signing in again.
            "select_account" => out.login = true,
            other => return Err(format!("prompt '{}' is not supported", other.escape_debug())),
        }
    }
    // OpenID Connect Core §3.1.2.1: `none` with any other value is an error.
    if out.none && (out.login || out.consent) {
        return Err("prompt 'none' cannot be combined with other values".into());
    }
    Ok(out)
}

/// What the browser's state allows: who is signed in, what they consented to, and what they
/// did in this very request.
pub struct Interaction<'a> {
    pub session: Option<(&'a BrowserSession, &'a User)>,
    pub consent: Option<&'a Consent>,
    /// The person signed in as part of this request (so `prompt=login` and `max_age` are met).
    pub signed_in_now: bool,
    /// The person approved the consent page as part of this request.
    pub consented_now: bool,
    /// The `sub` of a valid `id_token_hint`, if one was sent.
    pub hint_subject: Option<&'a str>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    Login,
    /// Ask for these scopes.
    Consent(Vec<String>),
    Issue,
}

/// OpenID Connect Core §3.1.2.3–§3.1.2.4: decides whether the person must sign in, consent,
/// or can be sent back with a response. `prompt=none` turns every interaction into an error.
pub fn next_step(
    issuer: &str,
    req: &AuthorizeRequest,
    client: &Client,
    ix: &Interaction,
    now: i64,
) -> std::result::Result<Step, AuthorizeError> {
    let interaction = |step: Step, error: &'static str, why: &str| {
        if req.prompt.none {
            Err(req.error(issuer, error, why))
        } else {
            Ok(step)
        }
    };
    let Some((session, user)) = ix.session.filter(|(_, u)| !u.disabled) else {
        return interaction(Step::Login, "login_required", "the person is not signed in");
    };
    if !ix.signed_in_now {
        if req.prompt.login {
            return Ok(Step::Login);
        }
        if req.max_age.is_some_and(|max| now - session.auth_time > max) {
            return interaction(Step::Login, "login_required", "the sign-in is older than max_age");
        }
        if ix.hint_subject.is_some_and(|sub| sub != user.id.as_str()) {
            return interaction(
                Step::Login,
                "login_required",
                "another person is signed in than the id_token_hint names",
            );
        }
    }
    if ix.consented_now || client.first_party {
        return Ok(Step::Issue);
    }
    let covered = ix
        .consent
        .is_some_and(|c| req.scopes.iter().all(|s| c.scopes.contains(s)));
    if req.prompt.consent || !covered {
        return interaction(
            Step::Consent(req.scopes.clone()),
            "consent_required",
            "the person has not consented to these scopes",
        );
    }
    Ok(Step::Issue)
}

/// Issues what the response type asks for, for a signed-in person.
pub async fn issue(
    ctx: &IssueContext<'_>,
    client: &Client,
    req: &AuthorizeRequest,
    session: &BrowserSession,
    user: &User,
) -> Result<AuthorizationResponse> {
    let scope = granted_scope(req);
    // Back-Channel Logout: remember that this client is signed in with the session. Only for
    // clients that can be told, so that the others pay no extra write.
    if client.backchannel_logout_uri.is_some() {
        ctx.store
            .add_session_client(&ctx.tenant.id, &session.id, &client.client_id, session.expires_at)
            .await?;
    }
    let mut params = Vec::new();
    if req.response_type.has_code() {
        let code = B64.encode(crate::crypto::random_bytes::<32>());
        ctx.store
            .insert_code(&AuthorizationCode {
                tenant_id: ctx.tenant.id.clone(),
                code_hash: hash_secret(code.as_bytes()),
                grant_id: token::new_grant_id(),
                client_id: client.client_id.clone(),
                user_id: user.id.clone(),
                session_id: session.id.clone(),
                redirect_uri: req.redirect_uri.clone(),
                scope: scope.clone(),
                nonce: req.nonce.clone(),
                code_challenge: req.code_challenge.clone(),
                auth_time: session.auth_time,
                amr: session.amr.clone(),
                created_at: ctx.now,
                expires_at: ctx.now + CODE_TTL,
                redeemed_at: None,
                access_jti: None,
                access_exp: None,
            })
            .await?;
        params.push(("code".to_owned(), code));
    }
    let mut access_token = None;
    if req.response_type.has_access_token() {
        let issued = token::user_access_token(ctx, client, user, &scope)?;
        // Noted under a grant of its own before it leaves, so that disabling the user,
        // withdrawing consent or removing the client revokes it like a code flow's token.
        ctx.store
            .insert_implicit_grant(&ImplicitGrant {
                tenant_id: ctx.tenant.id.clone(),
                grant_id: token::new_grant_id(),
                client_id: client.client_id.clone(),
                user_id: user.id.clone(),
                access_jti: issued.jti.clone(),
                access_exp: issued.exp,
            })
            .await?;
        params.push(("access_token".to_owned(), issued.token.clone()));
        params.push(("token_type".to_owned(), "Bearer".to_owned()));
        params.push(("expires_in".to_owned(), issued.expires_in.to_string()));
        params.push(("scope".to_owned(), scope.clone()));
        access_token = Some(issued.token);
    }
    if req.response_type.has_id_token() {
        let groups = crate::token::groups_if_asked(ctx.store, user, &scope).await?;
        let id_token = claims::id_token(
            ctx,
            client,
            user,
            &claims::IdTokenFacts {
                scope: &scope,
                nonce: req.nonce.as_deref(),
                auth_time: session.auth_time,
                amr: &session.amr,
                access_token: access_token.as_deref(),
                // OpenID Connect Core §5.4: with an access token the claims come from userinfo.
                with_profile_claims: access_token.is_none(),
                sid: Some(&session.id),
                groups: groups.as_deref(),
            },
        )?;
        params.push(("id_token".to_owned(), id_token));
    }
    finish_params(&mut params, ctx.issuer, req.state.as_deref());
    Ok(AuthorizationResponse {
        redirect_uri: req.redirect_uri.clone(),
        mode: req.response_mode,
        params,
    })
}

/// OpenID Connect Core §11: `offline_access` only where a code (and so a refresh) follows.
fn granted_scope(req: &AuthorizeRequest) -> String {
    req.scopes
        .iter()
        .filter(|s| req.response_type.has_code() || s.as_str() != OFFLINE_ACCESS)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::TenantId;

    fn client(kind: ClientType) -> Client {
        Client {
            tenant_id: TenantId::parse("t").unwrap(),
            client_id: ClientId::parse("app").unwrap(),
            name: "App".into(),
            client_type: kind,
            secret_hash: (kind == ClientType::Confidential).then_some([0; 32]),
            grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
            redirect_uris: vec!["https://app.example/cb".into(), "http://127.0.0.1/native".into()],
            post_logout_redirect_uris: vec![],
            require_pkce: true,
            first_party: false,
            refresh_without_offline_access: false,
            backchannel_logout_uri: None,
            allowed_scopes: vec!["api".into()],
            allowed_audiences: vec![],
            signing_alg: None,
            access_token_ttl: None,
            introspect_any: false,
            jwks: None,
            jwks_uri: None,
            trust_policy: None,
            token_exchange_impersonation: false,
            disabled: false,
            revoked_before: 0,
            created_at: 0,
            updated_at: 0,
        }
    }

    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn params(extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut p: Vec<(String, String)> = [
            ("client_id", "app"),
            ("redirect_uri", "https://app.example/cb"),
            ("response_type", "code"),
            ("scope", "openid profile"),
            ("state", "xyz"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (k, v) in extra {
            p.retain(|(pk, _)| pk != k);
            if !v.is_empty() {
                p.push((k.to_string(), v.to_string()));
            }
        }
        p
    }

    fn check(
        kind: ClientType,
        extra: &[(&str, &str)],
    ) -> std::result::Result<AuthorizeRequest, AuthorizeError> {
        validate("https://id/t/t", &Params(&params(extra)), &client(kind))
    }

    fn redirect_error(r: std::result::Result<AuthorizeRequest, AuthorizeError>) -> (String, String) {
        match r {
            Err(AuthorizeError::Redirect(resp)) => {
                let get = |k: &str| resp.params.iter().find(|(pk, _)| pk == k).map(|(_, v)| v.clone());
                assert_eq!(get("iss").as_deref(), Some("https://id/t/t"));
                (get("error").unwrap(), get("state").unwrap_or_default())
            }
            other => panic!("expected an error redirect, got {other:?}"),
        }
    }

    #[test]
    fn a_good_request_validates() {
        let r = check(ClientType::Confidential, &[]).unwrap();
        assert_eq!(r.response_type, ResponseType::Code);
        assert_eq!(r.response_mode, ResponseMode::Query);
        assert_eq!(r.scopes, ["openid", "profile"]);
        assert_eq!(r.code_challenge.as_deref(), Some(CHALLENGE));
    }

    #[test]
    fn redirect_uris_must_match_exactly_and_mismatches_never_redirect() {
        for bad in [
            "https://app.example/cb/extra",
            "https://app.example/c",
            "https://app.example/cb?x=1",
            "https://evil.example/cb",
            "https://app.example.evil.example/cb",
            "https://APP.example/cb",
            "https://app.example:443/cb",
            "http://app.example/cb",
            "https://app.example/cb#frag",
        ] {
            let r = check(ClientType::Confidential, &[("redirect_uri", bad)]);
            assert!(matches!(r, Err(AuthorizeError::Page { .. })), "{bad}");
        }
        let repeated = {
            let mut p = params(&[]);
            p.push(("redirect_uri".into(), "https://app.example/cb".into()));
            p
        };
        assert!(matches!(
            validate("i", &Params(&repeated), &client(ClientType::Confidential)),
            Err(AuthorizeError::Page { .. })
        ));
    }

    #[test]
    fn loopback_redirects_of_public_clients_may_use_any_port() {
        assert!(check(
            ClientType::Public,
            &[("redirect_uri", "http://127.0.0.1:53117/native")]
        )
        .is_ok());
        assert!(check(ClientType::Public, &[("redirect_uri", "http://127.0.0.1/native")]).is_ok());
        for bad in [
            "http://127.0.0.1:53117/native/x",
            "http://127.0.0.1:53117/nativ",
            "http://127.0.0.1:53117/native?x",
            "http://127.0.0.2:53117/native",
            "http://localhost:53117/native",
            "https://127.0.0.1:53117/native",
            "http://127.0.0.1:53117/./native",
            "http://user@127.0.0.1:53117/native",
        ] {
            assert!(
                matches!(
                    check(ClientType::Public, &[("redirect_uri", bad)]),
                    Err(AuthorizeError::Page { .. })
                ),
                "{bad}"
            );
        }
        // A confidential client gets no such leeway.
        assert!(matches!(
            check(
                ClientType::Confidential,
                &[("redirect_uri", "http://127.0.0.1:53117/native")]
            ),
            Err(AuthorizeError::Page { .. })
        ));
    }

    #[test]
    fn a_repeated_state_is_refused_and_neither_value_is_echoed() {
        let mut p = params(&[]);
        p.push(("state".into(), "other".into()));
        let r = validate("https://id/t/t", &Params(&p), &client(ClientType::Confidential));
        assert_eq!(redirect_error(r), ("invalid_request".into(), String::new()));
    }

    #[test]
    fn pkce_is_required_and_only_s256() {
        let (e, state) = redirect_error(check(
            ClientType::Public,
            &[("code_challenge", ""), ("code_challenge_method", "")],
        ));
        assert_eq!((e.as_str(), state.as_str()), ("invalid_request", "xyz"));
        let (e, _) = redirect_error(check(
            ClientType::Confidential,
            &[("code_challenge_method", "plain")],
        ));
        assert_eq!(e, "invalid_request");
        let (e, _) = redirect_error(check(ClientType::Confidential, &[("code_challenge_method", "")]));
        assert_eq!(e, "invalid_request");
        let (e, _) = redirect_error(check(ClientType::Confidential, &[("code_challenge", "short")]));
        assert_eq!(e, "invalid_request");
        // A confidential client that opted out may omit it; a public one may not opt out.
        let mut c = client(ClientType::Confidential);
        c.require_pkce = false;
        let p = params(&[("code_challenge", ""), ("code_challenge_method", "")]);
        assert!(validate("i", &Params(&p), &c).unwrap().code_challenge.is_none());
        assert!(pkce_verifies(
            CHALLENGE,
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
        ));
        assert!(!pkce_verifies(
            CHALLENGE,
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXj"
        ));
    }

    #[test]
    fn response_types_modes_and_scopes_are_checked() {
        let (e, _) = redirect_error(check(ClientType::Confidential, &[("response_type", "token")]));
        assert_eq!(e, "unauthorized_client");
        let (e, _) = redirect_error(check(
            ClientType::Confidential,
            &[("response_type", "code token")],
        ));
        assert_eq!(e, "unsupported_response_type");
        let (e, _) = redirect_error(check(ClientType::Confidential, &[("response_type", "")]));
        assert_eq!(e, "invalid_request");
        let (e, _) = redirect_error(check(ClientType::Confidential, &[("scope", "openid admin")]));
        assert_eq!(e, "invalid_scope");
        let (e, _) = redirect_error(check(ClientType::Confidential, &[("request_uri", "https://x/r")]));
        assert_eq!(e, "request_uri_not_supported");
        let (e, _) = redirect_error(check(ClientType::Confidential, &[("prompt", "none login")]));
        assert_eq!(e, "invalid_request");
        let (e, _) = redirect_error(check(ClientType::Confidential, &[("max_age", "-1")]));
        assert_eq!(e, "invalid_request");
        let r = check(
            ClientType::Confidential,
            &[("scope", "openid api offline_access openid")],
        )
        .unwrap();
        assert_eq!(r.scopes, ["openid", "api", "offline_access"]);
        let r = check(ClientType::Confidential, &[("response_mode", "form_post")]).unwrap();
        assert_eq!(r.response_mode, ResponseMode::FormPost);

        let mut c = client(ClientType::Confidential);
        c.grant_types.push(GrantType::Implicit);
        let p = params(&[("response_type", "id_token token")]);
        // implicit needs a nonce, and never travels in a query
        assert!(matches!(
            validate("i", &Params(&p), &c),
            Err(AuthorizeError::Redirect(_))
        ));
        let p = params(&[("response_type", "token id_token"), ("nonce", "n")]);
        let r = validate("i", &Params(&p), &c).unwrap();
        assert_eq!(
            (r.response_type, r.response_mode),
            (ResponseType::IdTokenToken, ResponseMode::Fragment)
        );
        let p = params(&[("response_type", "token"), ("response_mode", "query")]);
        assert!(matches!(
            validate("i", &Params(&p), &c),
            Err(AuthorizeError::Redirect(_))
        ));
    }

    #[test]
    fn unsigned_request_objects_override_the_query() {
        let object = |header: &str, claims: serde_json::Value| {
            format!("{}.{}.", B64.encode(header), B64.encode(claims.to_string()))
        };
        let mut p = params(&[]);
        p.push((
            "request".into(),
            object(
                r#"{"alg":"none"}"#,
                serde_json::json!({"scope": "openid email", "max_age": 5, "iss": "app"}),
            ),
        ));
        let merged = expand_request_object(p).unwrap();
        let r = validate("i", &Params(&merged), &client(ClientType::Confidential)).unwrap();
        assert_eq!(r.scopes, ["openid", "email"]);
        assert_eq!(r.max_age, Some(5));
        assert!(!merged.iter().any(|(k, _)| k == "request" || k == "iss"));

        for bad in [
            object(r#"{"alg":"HS256"}"#, serde_json::json!({})),
            object(r#"{"alg":"none"}"#, serde_json::json!({"client_id": "other"})),
            "not-a-jwt".to_owned(),
            format!("{}.e30.c2ln", B64.encode(r#"{"alg":"none"}"#)),
        ] {
            let mut p = params(&[]);
            p.push(("request".into(), bad.clone()));
            assert!(
                matches!(expand_request_object(p), Err(AuthorizeError::Page { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn unknown_client_ids_show_a_page() {
        let p = vec![("client_id".to_owned(), "bad id!".to_owned())];
        assert!(matches!(client_id(&Params(&p)), Err(AuthorizeError::Page { .. })));
        assert!(matches!(
            client_id(&Params(&[])),
            Err(AuthorizeError::Page { .. })
        ));
    }

    #[test]
    fn responses_keep_the_redirect_query_and_carry_iss() {
        let r = AuthorizationResponse::error(
            "https://id/t/t",
            "https://app.example/cb?a=1",
            ResponseMode::Query,
            Some("s t"),
            "access_denied",
            "no".into(),
        );
        assert_eq!(
            r.location(),
            "https://app.example/cb?a=1&error=access_denied&error_description=no&state=s+t&iss=https%3A%2F%2Fid%2Ft%2Ft"
        );
    }

    fn session(auth_time: i64) -> (BrowserSession, User) {
        let t = TenantId::parse("t").unwrap();
        let user = User {
            tenant_id: t.clone(),
            id: crate::ids::UserId::parse("u1").unwrap(),
            username: crate::ids::Username::parse("alice").unwrap(),
            email: None,
            email_verified: false,
            name: None,
            picture: None,
            disabled: false,
            password_hash: None,
            created_at: 0,
            updated_at: 0,
        };
        let s = BrowserSession {
            tenant_id: t,
            id: "s".into(),
            secret_hash: [0; 32],
            user_id: user.id.clone(),
            auth_time,
            amr: vec!["pwd".into()],
            user_agent: None,
            ip: None,
            created_at: auth_time,
            expires_at: auth_time + 86400,
        };
        (s, user)
    }

    #[test]
    fn steps_follow_prompt_max_age_and_consent() {
        let c = client(ClientType::Confidential);
        let req = check(ClientType::Confidential, &[]).unwrap();
        let (s, u) = session(1000);
        let mut ix = Interaction {
            session: None,
            consent: None,
            signed_in_now: false,
            consented_now: false,
            hint_subject: None,
        };
        assert_eq!(next_step("i", &req, &c, &ix, 2000).unwrap(), Step::Login);
        let none = check(ClientType::Confidential, &[("prompt", "none")]).unwrap();
        let (e, _) = redirect_error(next_step("https://id/t/t", &none, &c, &ix, 2000).map(|_| req.clone()));
        assert_eq!(e, "login_required");

        ix.session = Some((&s, &u));
        assert!(matches!(
            next_step("i", &req, &c, &ix, 2000).unwrap(),
            Step::Consent(_)
        ));
        let (e, _) = redirect_error(next_step("https://id/t/t", &none, &c, &ix, 2000).map(|_| req.clone()));
        assert_eq!(e, "consent_required");
        let consent = Consent {
            tenant_id: s.tenant_id.clone(),
            user_id: u.id.clone(),
            client_id: c.client_id.clone(),
            scopes: vec!["openid".into(), "profile".into(), "email".into()],
            granted_at: 0,
        };
        ix.consent = Some(&consent);
        assert_eq!(next_step("i", &req, &c, &ix, 2000).unwrap(), Step::Issue);
        let login = check(ClientType::Confidential, &[("prompt", "login")]).unwrap();
        assert_eq!(next_step("i", &login, &c, &ix, 2000).unwrap(), Step::Login);
        let consent_again = check(ClientType::Confidential, &[("prompt", "consent")]).unwrap();
        assert!(matches!(
            next_step("i", &consent_again, &c, &ix, 2000).unwrap(),
            Step::Consent(_)
        ));
        let old = check(ClientType::Confidential, &[("max_age", "500")]).unwrap();
        assert_eq!(next_step("i", &old, &c, &ix, 2000).unwrap(), Step::Login);
        ix.signed_in_now = true;
        assert_eq!(next_step("i", &login, &c, &ix, 2000).unwrap(), Step::Issue);
        assert_eq!(next_step("i", &old, &c, &ix, 2000).unwrap(), Step::Issue);
        let more = check(ClientType::Confidential, &[("scope", "openid api")]).unwrap();
        assert!(matches!(
            next_step("i", &more, &c, &ix, 2000).unwrap(),
            Step::Consent(_)
        ));
        // a disabled person is not signed in
        let (s2, mut u2) = session(1000);
        u2.disabled = true;
        ix.session = Some((&s2, &u2));
        assert_eq!(next_step("i", &req, &c, &ix, 2000).unwrap(), Step::Login);
    }
}
