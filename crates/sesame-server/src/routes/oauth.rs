//! The token endpoint (RFC 6749 §3.2), introspection (RFC 7662) and revocation (RFC 7009).
//! Each handler parses into typed values, calls the core, and renders.

use super::no_store;
use crate::error::ApiResult;
use crate::form::{Form, Path};
use crate::state::{AppState, TenantState};
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::Response;
use sesame_core::client_auth::{self, PresentedClient};
use sesame_core::model::Client;
use sesame_core::model::ClientType;
use sesame_core::token::{self, IssueContext, Signer, TokenExchange, TokenRequest, TokenType};
use sesame_core::{Error, Result};
use std::sync::Arc;

pub async fn token(
    State(app): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    form: Form,
) -> ApiResult<Response> {
    let t = app.tenant(&tenant).await?;
    let request = parse_token_request(&form)?;
    let client = authenticate(&app, &t, &headers, &form, "/token").await?;
    let grant = request.grant_type();
    let ctx = IssueContext {
        signer: Signer {
            issuer: &t.issuer,
            tenant: &t.tenant,
            keyring: &t.keyring,
            now: sesame_core::now(),
        },
        store: &*app.store,
        master: &app.master,
        trust: Some(token::Trust {
            policies: &t.trust_policies,
            keys: &app.outside_keys,
        }),
        upstream: Some(&app.upstreams),
    };
    let response = token::issue(&ctx, &client, request).await.inspect_err(|e| {
        if grant == sesame_core::model::GrantType::TokenExchange {
            crate::audit::token_exchange_refused(&app, &t.tenant.id, &client.client_id, e);
        }
    })?;
    app.metrics.token_issued(grant.as_str());
    if app.audit_token_issued {
        crate::audit::token_issued(&app, &t.tenant.id, &client.client_id, grant.as_str());
    }
    Ok(no_store(axum::Json(response)))
}

/// The grant name decides the shape of the request.
fn parse_token_request(form: &Form) -> Result<TokenRequest> {
    match form.required("grant_type")? {
        // RFC 6749 §4.1.3, RFC 7636 §4.5.
        "authorization_code" => Ok(TokenRequest::AuthorizationCode {
            code: form.required("code")?.to_owned(),
            redirect_uri: form.single("redirect_uri")?.map(str::to_owned),
            code_verifier: form.single("code_verifier")?.map(str::to_owned),
        }),
        // RFC 6749 §6.
        "refresh_token" => Ok(TokenRequest::RefreshToken {
            refresh_token: form.required("refresh_token")?.to_owned(),
            scope: form.single("scope")?.map(str::to_owned),
        }),
        "client_credentials" => Ok(TokenRequest::ClientCredentials {
            scope: form.single("scope")?.map(str::to_owned),
            // RFC 8707 `resource` (repeatable), and `audience`, which many clients send instead.
            audiences: form
                .all("resource")
                .chain(form.all("audience"))
                .map(str::to_owned)
                .collect(),
        }),
        // RFC 8628 §3.4.
        sesame_core::device::GRANT_TYPE => Ok(TokenRequest::DeviceCode {
            device_code: form.required("device_code")?.to_owned(),
        }),
        // RFC 8693 §2.1.
        "urn:ietf:params:oauth:grant-type:token-exchange" => {
            token::check_requested_token_type(form.single("requested_token_type")?)?;
            let subject_token = form.required("subject_token")?.to_owned();
            let subject_token_type =
                TokenType::parse("subject_token_type", form.required("subject_token_type")?)?;
            let actor = match (form.single("actor_token")?, form.single("actor_token_type")?) {
                (Some(t), Some(kind)) => Some((t.to_owned(), TokenType::parse("actor_token_type", kind)?)),
                (None, None) => None,
                // RFC 8693 §2.1: actor_token_type is required with an actor_token, and only then.
                _ => {
                    return Err(Error::invalid_request(
                        "actor_token and actor_token_type go together",
                    ))
                }
            };
            Ok(TokenRequest::TokenExchange(Box::new(TokenExchange {
                subject_token,
                subject_token_type,
                actor,
                audiences: form
                    .all("resource")
                    .chain(form.all("audience"))
                    .map(str::to_owned)
                    .collect(),
                scope: form.single("scope")?.map(str::to_owned),
            })))
        }
        sesame_core::workload::WORKLOAD_TOKEN_GRANT => Ok(TokenRequest::WorkloadToken {
            scope: form.single("scope")?.map(str::to_owned),
            audiences: form
                .all("resource")
                .chain(form.all("audience"))
                .map(str::to_owned)
                .collect(),
        }),
        sesame_core::sessions::SESSION_NONCE_GRANT => Ok(TokenRequest::SessionNonce {
            nonce: form.required("nonce")?.to_owned(),
        }),
        sesame_core::sessions::SESSION_KEY_GRANT => Ok(TokenRequest::SessionKey {
            session_key: form.required("session_key")?.to_owned(),
            scope: form.single("scope")?.map(str::to_owned),
        }),
        other => Err(Error::UnsupportedGrantType(other.escape_debug().to_string())),
    }
}

pub async fn introspect(
    State(app): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    form: Form,
) -> ApiResult<Response> {
    let t = app.tenant(&tenant).await?;
    let client = authenticate(&app, &t, &headers, &form, "/introspect").await?;
    // RFC 7662 §2.1: introspection needs real client authentication, so not a public client.
    if client.client_type == ClientType::Public {
        return Err(Error::InvalidClient { basic: false }.into());
    }
    let presented = form.required("token")?;
    // RFC 7662 §2.1: token_type_hint is optional; the token's shape tells the kinds apart.
    form.single("token_type_hint")?;
    let now = sesame_core::now();
    let mut valid = t.validate_access_token(presented, now);
    if valid.is_none() {
        let refresh =
            token::introspect_refresh_token(&*app.store, &t.tenant.id, &t.issuer, &client, presented, now)
                .await?;
        if let Some(answer) = refresh {
            return Ok(no_store(axum::Json(answer)));
        }
    }
    if let Some(v) = &valid {
        // From the cache: no store read beyond the revocation check below.
        let issued_to = match v.client_id() {
            Some(id) => t.token_client(&*app.store, id).await?,
            None => None,
        };
        if !token::introspection_allowed(v, issued_to.as_deref(), &client) {
            valid = None;
        }
    }
    if let Some(jti) = valid.as_ref().and_then(|v| v.jti()) {
        if app.store.is_access_token_revoked(&t.tenant.id, jti).await? {
            valid = None;
        }
    }
    // A delegated session's token lives only as long as its session.
    if let Some(v) = &valid {
        if !sesame_core::sessions::token_session_live(&*app.store, &t.tenant.id, &v.claims, now).await? {
            valid = None;
        }
    }
    Ok(no_store(axum::Json(token::introspection_response(
        valid.as_deref(),
    ))))
}

pub async fn revoke(
    State(app): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    form: Form,
) -> ApiResult<Response> {
    let t = app.tenant(&tenant).await?;
    let client = authenticate(&app, &t, &headers, &form, "/revoke").await?;
    let presented = form.required("token")?;
    form.single("token_type_hint")?;
    let now = sesame_core::now();
    if token::revoke_refresh_token(&*app.store, &t.tenant.id, &client, presented, now).await? {
        crate::audit::token_revoked(&app, &t.tenant.id, &client.client_id, "refresh_token");
        return Ok(no_store(()));
    }
    // RFC 7009 §2.2: an invalid or expired token is not an error.
    if let Some(valid) = token::validate_access_token(&t.issuer, &t.keyring, presented, now) {
        if let Some((jti, exp)) = token::access_token_to_revoke(&valid, &client) {
            app.store.revoke_access_token(&t.tenant.id, jti, exp).await?;
            crate::audit::token_revoked(&app, &t.tenant.id, &client.client_id, "access_token");
        }
    }
    Ok(no_store(()))
}

/// A refused client assertion: the check that failed goes to the log and the audit log, and
/// the caller gets `invalid_client` whatever it was.
fn assertion_refused(
    app: &AppState,
    t: &TenantState,
    client: Option<&sesame_core::ids::ClientId>,
    endpoint: &str,
    refused: &client_auth::AssertionRefused,
) -> Error {
    tracing::info!(
        tenant = %t.tenant.id,
        client = client.map_or("", |c| c.as_str()),
        endpoint,
        reason = %refused.reason,
        "client assertion refused"
    );
    crate::audit::client_assertion_refused(app, &t.tenant.id, client, endpoint, refused);
    Error::InvalidClient { basic: false }
}

/// RFC 6749 §2.3: one method per request. With Basic, a `client_id` in the body is allowed
/// (RFC 6749 §3.2.1) but must name the same client. `endpoint`: the path called, which a
/// client assertion may name as its audience.
pub(super) async fn authenticate(
    app: &AppState,
    t: &TenantState,
    headers: &HeaderMap,
    form: &Form,
    endpoint: &str,
) -> Result<Arc<Client>> {
    let basic = match headers.get(header::AUTHORIZATION) {
        Some(v) => client_auth::parse_basic(v.as_bytes())?,
        None => None,
    };
    let body_id = form.single("client_id")?;
    let body_secret = form.single("client_secret")?;
    let assertion_type = form.single("client_assertion_type")?;
    let assertion = form.single("client_assertion")?;
    if assertion_type.is_some() || assertion.is_some() {
        // RFC 7523 §2.2 (private_key_jwt).
        if basic.is_some() || body_secret.is_some() {
            return Err(Error::invalid_request(
                "the client authenticated with more than one method",
            ));
        }
        let (Some(kind), Some(assertion)) = (assertion_type, assertion) else {
            return Err(Error::invalid_request(
                "client_assertion and client_assertion_type go together",
            ));
        };
        let presented = match client_auth::from_assertion(kind, assertion, body_id) {
            Err(Error::InvalidClient { .. }) => {
                let refused = client_auth::AssertionRefused {
                    reason: "the request names no client: no client_id, and the assertion's sub is not a client id".into(),
                };
                return Err(assertion_refused(app, t, None, endpoint, &refused));
            }
            other => other?,
        };
        let client = t.client(&*app.store, &presented.client_id).await?;
        let endpoint_url = format!("{}{endpoint}", t.issuer);
        let token_endpoint = format!("{}/token", t.issuer);
        let audiences = [endpoint_url.as_str(), token_endpoint.as_str(), t.issuer.as_str()];
        let check = client_auth::AssertionCheck {
            keys: &app.outside_keys,
            store: &*app.store,
            policies: &t.trust_policies,
            audiences: &audiences,
            now: sesame_core::now(),
        };
        if let Err(refused) =
            client_auth::authenticate_assertion(client.as_deref(), &presented, &check).await?
        {
            return Err(assertion_refused(
                app,
                t,
                Some(&presented.client_id),
                endpoint,
                &refused,
            ));
        }
        return client.ok_or(Error::InvalidClient { basic: false });
    }
    let presented: PresentedClient = match basic {
        Some(b) => {
            if body_secret.is_some() {
                return Err(Error::invalid_request(
                    "the client authenticated with more than one method",
                ));
            }
            if body_id.is_some_and(|id| id != b.client_id.as_str()) {
                return Err(Error::invalid_request(
                    "client_id in the body differs from the Basic credentials",
                ));
            }
            b
        }
        None => client_auth::from_post(body_id, body_secret)?.ok_or(Error::InvalidClient { basic: false })?,
    };
    let client = t.client(&*app.store, &presented.client_id).await?;
    client_auth::authenticate(client.as_deref(), &presented)?;
    client.ok_or(Error::InvalidClient { basic: false })
}
