//! Authorization server metadata (RFC 8414 §2) and OpenID Provider metadata (OpenID Connect
//! Discovery 1.0 §3). Both list only what this build implements.

use crate::model::{GrantType, SigningAlg};
use serde_json::{json, Value};

/// The endpoints of a tenant, all under its issuer.
pub fn endpoint(issuer: &str, path: &str) -> String {
    format!("{issuer}{path}")
}

/// RFC 8414 metadata.
pub fn authorization_server_metadata(issuer: &str) -> Value {
    let auth_methods = ["client_secret_basic", "client_secret_post"];
    json!({
        "issuer": issuer,
        "jwks_uri": endpoint(issuer, "/jwks"),
        "token_endpoint": endpoint(issuer, "/token"),
        "token_endpoint_auth_methods_supported": auth_methods,
        "grant_types_supported": GrantType::ALL.iter().map(|g| g.as_str()).collect::<Vec<_>>(),
        // RFC 8414 §2 requires this member. There is no authorization endpoint yet, so the
        // truthful value is an empty list; some validators (authlib) read that as missing.
        // The authorization endpoint and `code` come with browser sign-in.
        "response_types_supported": [],
        "introspection_endpoint": endpoint(issuer, "/introspect"),
        "introspection_endpoint_auth_methods_supported": auth_methods,
        "revocation_endpoint": endpoint(issuer, "/revoke"),
        "revocation_endpoint_auth_methods_supported": auth_methods,
    })
}

/// OpenID Provider metadata: the RFC 8414 members plus the ones OIDC Discovery requires.
pub fn openid_configuration(issuer: &str) -> Value {
    let mut doc = authorization_server_metadata(issuer);
    let obj = doc.as_object_mut().expect("object");
    obj.insert("subject_types_supported".into(), json!(["public"]));
    obj.insert(
        "id_token_signing_alg_values_supported".into(),
        json!(SigningAlg::ALL.iter().map(|a| a.as_str()).collect::<Vec<_>>()),
    );
    doc
}
