//! What Sesame says about a person: ID tokens (OpenID Connect Core §2, §3.1.3.6) and the
//! userinfo response (§5.3), with the claims of the granted scopes (§5.4).

use crate::jwt;
use crate::model::{Client, SigningAlg, User};
use crate::token::Signer;
use crate::{Error, Result};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use serde_json::{json, Map, Value};

/// Facts about the sign-in that the ID token states.
pub struct IdTokenFacts<'a> {
    pub scope: &'a str,
    pub nonce: Option<&'a str>,
    pub auth_time: i64,
    pub amr: &'a [String],
    /// The access token issued alongside, for `at_hash`.
    pub access_token: Option<&'a str>,
    /// Whether the profile and email claims go into the ID token itself (when no access token
    /// comes with it, there is no other way to get them).
    pub with_profile_claims: bool,
    /// The browser session's id (`sid`, Back-Channel Logout §2.4), when issued from one.
    pub sid: Option<&'a str>,
    /// The user's groups (from brokered SSO), read only when the grant has the `groups` scope.
    pub groups: Option<&'a [String]>,
}

/// A level of assurance for password sign-in (ISO/IEC 29115 level 1 has the URI "0" in the
/// OpenID Connect examples; Sesame says plainly what it did instead).
pub const ACR_PASSWORD: &str = "urn:sesame:acr:pwd";
/// The `acr` of a sign-in at an upstream IdP (brokered SSO, `amr` `fed`).
pub const ACR_FEDERATED: &str = "urn:sesame:acr:fed";

/// Signs an ID token for `user`, for `client`, with the client's algorithm.
pub fn id_token(ctx: &Signer, client: &Client, user: &User, facts: &IdTokenFacts) -> Result<String> {
    let alg = client.signing_alg.unwrap_or(ctx.tenant.signing_alg);
    let key = ctx.keyring.active(alg)?;
    let ttl = client.access_token_ttl.unwrap_or(ctx.tenant.access_token_ttl);
    let mut claims = Map::new();
    claims.insert("iss".into(), ctx.issuer.into());
    claims.insert("sub".into(), user.id.as_str().into());
    claims.insert("aud".into(), client.client_id.as_str().into());
    // OpenID Connect Core §2: azp when the ID token has one audience that is the client.
    claims.insert("azp".into(), client.client_id.as_str().into());
    claims.insert("iat".into(), ctx.now.into());
    claims.insert("exp".into(), (ctx.now + ttl).into());
    claims.insert("auth_time".into(), facts.auth_time.into());
    if let Some(nonce) = facts.nonce {
        claims.insert("nonce".into(), nonce.into());
    }
    if let Some(sid) = facts.sid {
        claims.insert("sid".into(), sid.into());
    }
    let acr = if facts.amr.iter().any(|a| a == "fed") {
        ACR_FEDERATED
    } else {
        ACR_PASSWORD
    };
    claims.insert("acr".into(), acr.into());
    if let Some(groups) = facts.groups {
        claims.insert("groups".into(), json!(groups));
    }
    claims.insert("amr".into(), json!(facts.amr));
    if let Some(at) = facts.access_token {
        claims.insert("at_hash".into(), half_hash(alg, at).into());
    }
    if facts.with_profile_claims {
        scope_claims(user, facts.scope, &mut claims);
    }
    let json = serde_json::to_vec(&claims).map_err(|e| Error::Internal(e.to_string()))?;
    jwt::sign(key, jwt::Kind::IdToken, &json)
}

/// How long a logout token is valid (Back-Channel Logout §2.4 recommends at most two minutes).
pub const LOGOUT_TOKEN_TTL: i64 = 120;
pub const BACKCHANNEL_LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// A logout token (OpenID Connect Back-Channel Logout 1.0 §2.4) telling `client` that the
/// session `sid` of `sub` has ended.
pub fn logout_token(ctx: &Signer, client: &Client, sub: &str, sid: &str) -> Result<String> {
    let alg = client.signing_alg.unwrap_or(ctx.tenant.signing_alg);
    let key = ctx.keyring.active(alg)?;
    let claims = json!({
        "iss": ctx.issuer,
        "sub": sub,
        "aud": client.client_id.as_str(),
        "iat": ctx.now,
        "exp": ctx.now + LOGOUT_TOKEN_TTL,
        "jti": B64.encode(crate::crypto::random_bytes::<16>()),
        "sid": sid,
        "events": { BACKCHANNEL_LOGOUT_EVENT: {} },
    });
    let json = serde_json::to_vec(&claims).map_err(|e| Error::Internal(e.to_string()))?;
    jwt::sign(key, jwt::Kind::LogoutToken, &json)
}

/// OpenID Connect Core §3.1.3.6 `at_hash`: the left half of the hash of the token, with the
/// hash of the signature algorithm. Ed25519 signs with SHA-512, so EdDSA uses SHA-512 (as the
/// widely used `oidc-token-hash` does).
pub fn half_hash(alg: SigningAlg, value: &str) -> String {
    let algorithm = match alg {
        SigningAlg::RS256 | SigningAlg::ES256 => &aws_lc_rs::digest::SHA256,
        SigningAlg::EdDSA => &aws_lc_rs::digest::SHA512,
    };
    let digest = aws_lc_rs::digest::digest(algorithm, value.as_bytes());
    let bytes = digest.as_ref();
    B64.encode(&bytes[..bytes.len() / 2])
}

/// The userinfo response (OpenID Connect Core §5.3.2): `sub` and the granted scopes' claims.
pub fn userinfo(user: &User, scope: &str) -> Value {
    let mut claims = Map::new();
    claims.insert("sub".into(), user.id.as_str().into());
    scope_claims(user, scope, &mut claims);
    Value::Object(claims)
}

/// OpenID Connect Core §5.4. Sesame keeps no address or phone number, so those scopes add
/// nothing; claims without a value are left out (§5.3.2).
fn scope_claims(user: &User, scope: &str, claims: &mut Map<String, Value>) {
    for s in scope.split(' ') {
        match s {
            "profile" => {
                claims.insert("preferred_username".into(), user.username.as_str().into());
                if let Some(name) = &user.name {
                    claims.insert("name".into(), name.as_str().into());
                }
                if let Some(picture) = &user.picture {
                    claims.insert("picture".into(), picture.as_str().into());
                }
                claims.insert("updated_at".into(), user.updated_at.into());
            }
            "email" => {
                if let Some(email) = &user.email {
                    claims.insert("email".into(), email.as_str().into());
                    claims.insert("email_verified".into(), user.email_verified.into());
                }
            }
            _ => {}
        }
    }
}

/// The claims Sesame can state, for discovery's `claims_supported`.
pub const SUPPORTED: [&str; 19] = [
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "acr",
    "amr",
    "azp",
    "at_hash",
    "sid",
    "preferred_username",
    "name",
    "picture",
    "updated_at",
    "email",
    "email_verified",
    "groups",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_hash_follows_the_spec_example() {
        // OpenID Connect Core §A.3 example: access_token and at_hash for RS256.
        assert_eq!(
            half_hash(SigningAlg::RS256, "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
        assert_eq!(half_hash(SigningAlg::EdDSA, "x").len(), 43);
    }

    #[test]
    fn userinfo_has_only_the_granted_scopes_claims() {
        let user = User {
            tenant_id: crate::ids::TenantId::parse("t").unwrap(),
            id: crate::ids::UserId::parse("u1").unwrap(),
            username: crate::ids::Username::parse("alice").unwrap(),
            email: Some("alice@example.com".into()),
            email_verified: true,
            name: Some("Alice".into()),
            picture: None,
            disabled: false,
            password_hash: None,
            created_at: 0,
            updated_at: 7,
        };
        let only_openid = userinfo(&user, "openid");
        assert_eq!(only_openid, json!({"sub": "u1"}));
        let all = userinfo(&user, "openid profile email");
        assert_eq!(all["email"], "alice@example.com");
        assert_eq!(all["email_verified"], true);
        assert_eq!(all["name"], "Alice");
        assert_eq!(all["preferred_username"], "alice");
        assert!(all.get("picture").is_none());
    }
}
