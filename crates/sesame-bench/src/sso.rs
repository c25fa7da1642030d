//! The brokered-SSO callback load: a minimal OpenID Connect IdP inside the bench (so on the
//! bench's CPU, beside the load generator, and not on sesamed's), with a real ES256 key, and a
//! connection of tenant `default` to it.
//!
//! The IdP serves discovery, its JWKS and a token endpoint. Its authorization page is never
//! visited: the bench takes the `nonce` from Sesame's redirect to it as the code, and the token
//! endpoint signs an ID token for the person with that nonce. So each sign-in costs sesamed the
//! start (state, nonce, PKCE, the sealed cookie), the code exchange over HTTP, one ES256
//! verification, the sign-in's store work (link, profile, groups, session) and a code for the
//! application: the callback as a browser would bring it back.

use crate::load::{self, SsoSignIn, Template};
use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use serde_json::{json, Value};
use sesame_core::keys::SigningKeyPair;
use sesame_core::model::SigningAlg;
use std::net::SocketAddr;
use std::sync::Arc;

/// The connection's name in tenant `default`.
pub const CONNECTION: &str = "bench-idp";
const IDP_CLIENT: &str = "sesame-bench";
const IDP_SECRET: &str = "sesame-bench-idp-client-secret-0123456789";

struct Idp {
    issuer: String,
    key: SigningKeyPair,
    kid: String,
}

async fn discovery(State(idp): State<Arc<Idp>>) -> Json<Value> {
    let i = &idp.issuer;
    Json(json!({
        "issuer": i,
        "authorization_endpoint": format!("{i}/authorize"),
        "token_endpoint": format!("{i}/token"),
        "jwks_uri": format!("{i}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
    }))
}

async fn jwks(State(idp): State<Arc<Idp>>) -> Json<Value> {
    let jwk: Value = serde_json::from_str(&idp.key.public_jwk(&idp.kid)).expect("a JWK");
    Json(json!({ "keys": [jwk] }))
}

/// The code is the nonce of the sign-in (see the module comment).
async fn token(State(idp): State<Arc<Idp>>, body: String) -> Json<Value> {
    let nonce = form_urlencoded::parse(body.as_bytes())
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    let claims = json!({
        "iss": idp.issuer, "sub": "bench-person-1", "aud": IDP_CLIENT,
        "iat": now, "exp": now + 300, "nonce": nonce,
        "email": "person@bench.example", "email_verified": true, "name": "Bench Person",
    });
    let header = json!({ "alg": "ES256", "typ": "JWT", "kid": idp.kid });
    let mut jws = format!(
        "{}.{}",
        B64.encode(header.to_string()),
        B64.encode(claims.to_string())
    );
    let sig = idp.key.sign(jws.as_bytes()).expect("ES256 signs");
    jws.push('.');
    jws.push_str(&B64.encode(sig));
    Json(json!({
        "access_token": "bench-upstream-access-token",
        "token_type": "Bearer",
        "expires_in": 300,
        "id_token": jws,
    }))
}

/// Starts the IdP on a loopback port in this process; returns its issuer.
async fn start_idp() -> Result<String, String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("bench IdP: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let key = SigningKeyPair::generate(SigningAlg::ES256).map_err(|e| e.to_string())?;
    let idp = Arc::new(Idp {
        issuer: format!("http://{addr}"),
        kid: key.thumbprint(),
        key,
    });
    let issuer = idp.issuer.clone();
    let app = Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/jwks", get(jwks))
        .route("/token", post(token))
        .with_state(idp);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(issuer)
}

/// The IdP, the connection, a first-party client, and the start URL that the sign-in page's
/// button carries (its sealed authorization request lasts an hour, longer than the load).
/// One sign-in is made before the load: it creates the user, so the load measures the sign-ins
/// that follow (link found, profile and groups written).
pub async fn setup(addr: SocketAddr, admin_token: &str, redirect_uri: &str) -> Result<SsoSignIn, String> {
    let issuer = start_idp().await?;
    let spec = json!({
        "id": CONNECTION, "display_name": "Bench IdP", "issuer": issuer,
        "client_id": IDP_CLIENT, "client_secret": IDP_SECRET,
    });
    let t = Template::post_json(addr, "/admin/v1/tenants/default/sso", &spec, admin_token);
    load::once_ok(addr, &t).await?;
    let client = json!({
        "name": "bench-sso", "redirect_uris": [redirect_uri],
        "grant_types": ["authorization_code"], "first_party": true, "allowed_scopes": [],
    });
    let t = Template::post_json(addr, "/admin/v1/tenants/default/clients", &client, admin_token);
    let body = load::once_ok(addr, &t).await?;
    let v: Value = serde_json::from_slice(&body).map_err(|e| format!("client answer: {e}"))?;
    let client_id = v["client"]["client_id"]
        .as_str()
        .ok_or("no client_id")?
        .to_owned();
    // PKCE S256 (RFC 7636 §4.2) of a fixed verifier: the code is never redeemed here.
    let challenge = B64.encode(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        b"sesame-bench-sso-fixed-pkce-code-verifier-0123456789",
    ));
    let authorize = format!(
        "/t/default/authorize?response_type=code&client_id={}&redirect_uri={}&scope=openid&state=s&nonce=n\
         &code_challenge={challenge}&code_challenge_method=S256",
        load::form_encode(&client_id),
        load::form_encode(redirect_uri)
    );
    let page = load::exchange(addr, &Template::get(addr, &authorize)).await?;
    let html = String::from_utf8_lossy(&page.body);
    let marker = format!("/t/default/sso/{CONNECTION}/start?");
    let start = html
        .find(&marker)
        .map(|at| {
            let rest = &html[at..];
            rest[..rest.find('"').unwrap_or(rest.len())].replace("&amp;", "&")
        })
        .ok_or_else(|| {
            format!(
                "the sign-in page has no button for {CONNECTION} ({}, Location {:?}): {}",
                page.status,
                page.header(hyper::header::LOCATION),
                html.chars().take(300).collect::<String>()
            )
        })?;
    let callback = format!("/t/default/sso/{CONNECTION}/callback");
    let sso = SsoSignIn::new(
        Template::get(addr, &start),
        Template::get(addr, &callback),
        redirect_uri,
    );
    sso.once(addr)
        .await
        .map_err(|e| format!("the first SSO sign-in failed: {e}"))?;
    Ok(sso)
}
