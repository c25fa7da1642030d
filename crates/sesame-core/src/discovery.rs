//! Authorization server metadata (RFC 8414 §2) and OpenID Provider metadata (OpenID Connect
//! Discovery 1.0 §3). Both list only what this build implements.

use crate::authorize::{ResponseType, OFFLINE_ACCESS};
use crate::model::{GrantType, SigningAlg};
use serde_json::{json, Value};

/// The endpoints of a tenant, all under its issuer.
pub fn endpoint(issuer: &str, path: &str) -> String {
    format!("{issuer}{path}")
}

/// RFC 8414 metadata.
pub fn authorization_server_metadata(issuer: &str) -> Value {
    // `client_secret_jwt` is not offered: it needs the client secret itself as an HMAC key,
    // and Sesame keeps only a hash of each secret.
    let auth_methods = ["client_secret_basic", "client_secret_post", "private_key_jwt"];
    // RFC 7523 / OpenID Connect Core §9: the algorithms of the keys a client may register.
    let assertion_algs: Vec<_> = SigningAlg::ALL.iter().map(|a| a.as_str()).collect();
    // Only scopes that do something: `openid` (ID tokens, userinfo), the claims of `profile`
    // and `email` (`claims::scope_claims`), and refresh tokens for `offline_access`. `address`
    // and `phone` are accepted in requests but yield nothing, so they are not advertised.
    let scopes = ["openid", "profile", "email", OFFLINE_ACCESS];
    json!({
        "issuer": issuer,
        "authorization_endpoint": endpoint(issuer, "/authorize"),
        "jwks_uri": endpoint(issuer, "/jwks"),
        "token_endpoint": endpoint(issuer, "/token"),
        // `none` is a public client naming itself with client_id (and PKCE).
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"],
        "token_endpoint_auth_signing_alg_values_supported": assertion_algs,
        "grant_types_supported": GrantType::ALL.iter().map(|g| g.as_str()).collect::<Vec<_>>(),
        "response_types_supported": ResponseType::ALL.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "scopes_supported": scopes,
        "code_challenge_methods_supported": ["S256"],
        // RFC 9207 §3.
        "authorization_response_iss_parameter_supported": true,
        "introspection_endpoint": endpoint(issuer, "/introspect"),
        "introspection_endpoint_auth_methods_supported": auth_methods,
        "introspection_endpoint_auth_signing_alg_values_supported": assertion_algs,
        "revocation_endpoint": endpoint(issuer, "/revoke"),
        // RFC 8628 §4.
        "device_authorization_endpoint": endpoint(issuer, "/device_authorization"),
        // RFC 7009 §2.1: a public client may revoke its own tokens with its client_id.
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"],
        "revocation_endpoint_auth_signing_alg_values_supported": assertion_algs,
    })
}

/// OpenID Provider metadata: the RFC 8414 members plus the ones OIDC Discovery requires.
pub fn openid_configuration(issuer: &str) -> Value {
    let mut doc = authorization_server_metadata(issuer);
    let obj = doc.as_object_mut().expect("object");
    obj.insert("userinfo_endpoint".into(), endpoint(issuer, "/userinfo").into());
    obj.insert("end_session_endpoint".into(), endpoint(issuer, "/logout").into());
    // OpenID Connect Back-Channel Logout 1.0 §2.1.
    obj.insert("backchannel_logout_supported".into(), true.into());
    obj.insert("backchannel_logout_session_supported".into(), true.into());
    obj.insert("subject_types_supported".into(), json!(["public"]));
    obj.insert("claims_supported".into(), json!(crate::claims::SUPPORTED));
    obj.insert("claims_parameter_supported".into(), false.into());
    obj.insert("request_parameter_supported".into(), true.into());
    obj.insert(
        "request_object_signing_alg_values_supported".into(),
        json!(["none"]),
    );
    obj.insert("request_uri_parameter_supported".into(), false.into());
    obj.insert(
        "id_token_signing_alg_values_supported".into(),
        json!(SigningAlg::ALL.iter().map(|a| a.as_str()).collect::<Vec<_>>()),
    );
    doc
}
