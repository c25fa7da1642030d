//! The token endpoint's grants and the rules of introspection and revocation.
//!
//! One dispatcher, [`issue`], takes a typed [`TokenRequest`]; each grant is a function beside it.

use crate::jwt;
use crate::keys::Keyring;
use crate::model::{Client, GrantType, Tenant};
use crate::{Error, Result};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use serde::Serialize;

/// A token request after parsing and client authentication.
#[derive(Debug)]
pub enum TokenRequest {
    /// RFC 6749 §4.4.2.
    ClientCredentials {
        scope: Option<String>,
        /// RFC 8707 `resource` values (and the widely used `audience` alias).
        audiences: Vec<String>,
    },
}

impl TokenRequest {
    pub fn grant_type(&self) -> GrantType {
        match self {
            TokenRequest::ClientCredentials { .. } => GrantType::ClientCredentials,
        }
    }
}

/// Everything a grant needs to know about where it runs.
pub struct IssueContext<'a> {
    pub issuer: &'a str,
    pub tenant: &'a Tenant,
    pub keyring: &'a Keyring,
    pub now: i64,
}

/// RFC 6749 §5.1 successful response.
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

/// Issues tokens for an authenticated client.
pub fn issue(ctx: &IssueContext, client: &Client, request: TokenRequest) -> Result<TokenResponse> {
    let grant = request.grant_type();
    if !client.grant_types.contains(&grant) {
        return Err(Error::UnauthorizedClient(format!(
            "the client is not allowed to use the {} grant",
            grant.as_str()
        )));
    }
    match request {
        TokenRequest::ClientCredentials { scope, audiences } => {
            client_credentials(ctx, client, scope.as_deref(), &audiences)
        }
    }
}

fn client_credentials(
    ctx: &IssueContext,
    client: &Client,
    scope: Option<&str>,
    audiences: &[String],
) -> Result<TokenResponse> {
    let scope = granted_scope(client, scope)?;
    let aud = granted_audience(client, audiences)?;
    let ttl = client.access_token_ttl.unwrap_or(ctx.tenant.access_token_ttl);
    let access_token = sign_access_token(
        ctx,
        client,
        &AccessClaims {
            iss: ctx.issuer,
            // RFC 9068 §2.2: for client credentials the subject is the client itself.
            sub: client.client_id.as_str(),
            aud: &aud,
            client_id: client.client_id.as_str(),
            scope: scope.as_deref(),
            iat: ctx.now,
            nbf: ctx.now,
            exp: ctx.now + ttl,
            jti: &new_jti(),
        },
    )?;
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: ttl,
        scope,
    })
}

/// RFC 9068 §2.2 access-token claims.
#[derive(Serialize)]
struct AccessClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a Audience,
    client_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<&'a str>,
    iat: i64,
    nbf: i64,
    exp: i64,
    jti: &'a str,
}

/// `aud` is a string for one audience and an array for several (RFC 7519 §4.1.3).
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

fn sign_access_token(ctx: &IssueContext, client: &Client, claims: &AccessClaims) -> Result<String> {
    let alg = client.signing_alg.unwrap_or(ctx.tenant.signing_alg);
    let key = ctx.keyring.active(alg)?;
    let json = serde_json::to_vec(claims).map_err(|e| Error::Internal(e.to_string()))?;
    jwt::sign(key, &json)
}

fn new_jti() -> String {
    B64.encode(crate::crypto::random_bytes::<16>())
}

/// RFC 6749 §3.3: the requested scopes must all be allowed; none requested means all allowed.
fn granted_scope(client: &Client, requested: Option<&str>) -> Result<Option<String>> {
    let Some(requested) = requested else {
        return Ok((!client.allowed_scopes.is_empty()).then(|| client.allowed_scopes.join(" ")));
    };
    let mut granted: Vec<&str> = Vec::new();
    for s in requested.split(' ').filter(|s| !s.is_empty()) {
        crate::model::validate_scope_token(s)
            .map_err(|_| Error::InvalidScope(format!("scope '{}' is malformed", s.escape_debug())))?;
        if !client.allowed_scopes.iter().any(|a| a == s) {
            return Err(Error::InvalidScope(format!(
                "the client may not request scope '{s}'"
            )));
        }
        if !granted.contains(&s) {
            granted.push(s);
        }
    }
    Ok((!granted.is_empty()).then(|| granted.join(" ")))
}

/// RFC 8707 §2: every requested audience must be allowed. None requested means all the
/// client's audiences; a client with none gets a token whose audience is itself.
fn granted_audience(client: &Client, requested: &[String]) -> Result<Audience> {
    let list: Vec<String> = if requested.is_empty() {
        client.allowed_audiences.clone()
    } else {
        let mut list = Vec::new();
        for aud in requested {
            if !client.allowed_audiences.contains(aud) {
                return Err(Error::InvalidTarget(format!(
                    "the client may not request audience '{}'",
                    aud.escape_debug()
                )));
            }
            if !list.contains(aud) {
                list.push(aud.clone());
            }
        }
        list
    };
    Ok(match list.len() {
        0 => Audience::One(client.client_id.to_string()),
        1 => Audience::One(list.into_iter().next().expect("one")),
        _ => Audience::Many(list),
    })
}

/// An access token that verified: signed by a published key of this tenant, issued by this
/// issuer, inside its lifetime.
pub struct ValidAccessToken {
    pub claims: serde_json::Map<String, serde_json::Value>,
}

impl ValidAccessToken {
    pub fn jti(&self) -> Option<&str> {
        self.claims.get("jti").and_then(|v| v.as_str())
    }
    pub fn client_id(&self) -> Option<&str> {
        self.claims.get("client_id").and_then(|v| v.as_str())
    }
    pub fn exp(&self) -> i64 {
        self.claims.get("exp").and_then(|v| v.as_i64()).unwrap_or(0)
    }
}

/// Checks an access token of this tenant. `None` for anything not valid: wrong signature, a
/// key of another tenant, another issuer, expired or not yet valid, not an `at+jwt`.
pub fn validate_access_token(
    issuer: &str,
    keyring: &Keyring,
    token: &str,
    now: i64,
) -> Option<ValidAccessToken> {
    let verified = jwt::verify(keyring, token).ok()?;
    // RFC 9068 §4: the resource server checks `typ` is at+jwt, so an ID token is not accepted.
    if !verified
        .typ
        .as_deref()
        .is_some_and(|t| t.eq_ignore_ascii_case("at+jwt"))
    {
        return None;
    }
    let claims = verified.claims;
    if claims.get("iss").and_then(|v| v.as_str()) != Some(issuer) {
        return None;
    }
    let exp = claims.get("exp")?.as_i64()?;
    let nbf = claims.get("nbf").and_then(|v| v.as_i64()).unwrap_or(0);
    if now >= exp || now < nbf {
        return None;
    }
    claims.get("jti")?.as_str()?;
    Some(ValidAccessToken { claims })
}

/// RFC 7662 §2.2 introspection response: `active` alone for anything not active.
pub fn introspection_response(token: Option<&ValidAccessToken>) -> serde_json::Value {
    let Some(token) = token else {
        return serde_json::json!({ "active": false });
    };
    let mut out = serde_json::Map::new();
    out.insert("active".into(), true.into());
    for name in [
        "iss",
        "sub",
        "aud",
        "client_id",
        "scope",
        "iat",
        "nbf",
        "exp",
        "jti",
    ] {
        if let Some(v) = token.claims.get(name) {
            out.insert(name.into(), v.clone());
        }
    }
    out.insert("token_type".into(), "Bearer".into());
    serde_json::Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::MasterKey;
    use crate::ids::{ClientId, TenantId};
    use crate::keys::new_stored_key;
    use crate::model::{ClientType, KeyState, SigningAlg};

    fn fixture(alg: SigningAlg) -> (Tenant, Client, Keyring) {
        let (master, _) = MasterKey::generate();
        let tid = TenantId::parse("acme").unwrap();
        let tenant = Tenant::new(tid.clone(), 1000);
        let keys: Vec<_> = SigningAlg::ALL
            .iter()
            .map(|a| new_stored_key(&master, &tid, *a, KeyState::Active, 1000).unwrap())
            .collect();
        let client = Client {
            tenant_id: tid,
            client_id: ClientId::parse("svc").unwrap(),
            name: "svc".into(),
            client_type: ClientType::Confidential,
            secret_hash: Some([0; 32]),
            grant_types: vec![GrantType::ClientCredentials],
            redirect_uris: vec![],
            allowed_scopes: vec!["read".into(), "write".into()],
            allowed_audiences: vec!["api".into(), "other".into()],
            signing_alg: Some(alg),
            access_token_ttl: Some(600),
            disabled: false,
            created_at: 1000,
            updated_at: 1000,
        };
        (tenant, client, Keyring::load(&master, &keys, 1000).unwrap())
    }

    fn cc(scope: Option<&str>, aud: &[&str]) -> TokenRequest {
        TokenRequest::ClientCredentials {
            scope: scope.map(str::to_owned),
            audiences: aud.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn client_credentials_issue_rfc9068_tokens_for_each_alg() {
        for alg in SigningAlg::ALL {
            let (tenant, client, ring) = fixture(alg);
            let ctx = IssueContext {
                issuer: "https://id/t/acme",
                tenant: &tenant,
                keyring: &ring,
                now: 2000,
            };
            let resp = issue(&ctx, &client, cc(Some("read"), &["api"])).unwrap();
            assert_eq!(resp.expires_in, 600);
            assert_eq!(resp.scope.as_deref(), Some("read"));
            let tok = validate_access_token("https://id/t/acme", &ring, &resp.access_token, 2000).unwrap();
            assert_eq!(tok.claims["sub"], "svc");
            assert_eq!(tok.claims["aud"], "api");
            assert_eq!(tok.claims["exp"], 2600);
            assert_eq!(tok.claims["nbf"], 2000);
            let header = B64.decode(resp.access_token.split('.').next().unwrap()).unwrap();
            let header: serde_json::Value = serde_json::from_slice(&header).unwrap();
            assert_eq!(header["typ"], "at+jwt");
            assert_eq!(header["alg"], alg.as_str());
            assert!(validate_access_token("https://id/t/other", &ring, &resp.access_token, 2000).is_none());
            assert!(validate_access_token("https://id/t/acme", &ring, &resp.access_token, 2600).is_none());
        }
    }

    #[test]
    fn scopes_and_audiences_are_limited_to_what_the_client_is_allowed() {
        let (tenant, client, ring) = fixture(SigningAlg::EdDSA);
        let ctx = IssueContext {
            issuer: "i",
            tenant: &tenant,
            keyring: &ring,
            now: 1,
        };
        assert!(matches!(
            issue(&ctx, &client, cc(Some("admin"), &[])),
            Err(Error::InvalidScope(_))
        ));
        assert!(matches!(
            issue(&ctx, &client, cc(Some("read \"x"), &[])),
            Err(Error::InvalidScope(_))
        ));
        assert!(matches!(
            issue(&ctx, &client, cc(None, &["evil"])),
            Err(Error::InvalidTarget(_))
        ));
        let all = issue(&ctx, &client, cc(None, &[])).unwrap();
        assert_eq!(all.scope.as_deref(), Some("read write"));
        let tok = validate_access_token("i", &ring, &all.access_token, 1).unwrap();
        assert_eq!(tok.claims["aud"], serde_json::json!(["api", "other"]));
    }

    #[test]
    fn a_client_without_the_grant_is_unauthorized() {
        let (tenant, mut client, ring) = fixture(SigningAlg::EdDSA);
        client.grant_types.clear();
        let ctx = IssueContext {
            issuer: "i",
            tenant: &tenant,
            keyring: &ring,
            now: 1,
        };
        assert!(matches!(
            issue(&ctx, &client, cc(None, &[])),
            Err(Error::UnauthorizedClient(_))
        ));
    }

    #[test]
    fn tampered_tokens_are_not_valid() {
        let (tenant, client, ring) = fixture(SigningAlg::ES256);
        let ctx = IssueContext {
            issuer: "i",
            tenant: &tenant,
            keyring: &ring,
            now: 1,
        };
        let t = issue(&ctx, &client, cc(None, &[])).unwrap().access_token;
        let mut parts: Vec<&str> = t.split('.').collect();
        let forged = B64.encode(br#"{"iss":"i","sub":"root","exp":99999999999,"jti":"x"}"#);
        parts[1] = &forged;
        assert!(validate_access_token("i", &ring, &parts.join("."), 1).is_none());
        assert!(validate_access_token("i", &ring, "a.b", 1).is_none());
        assert!(validate_access_token("i", &ring, "", 1).is_none());
        // alg confusion: the same token with its header claiming another algorithm
        let hdr = B64.encode(br#"{"alg":"RS256","typ":"at+jwt","kid":"x"}"#);
        let t2 = format!("{hdr}.{}", t.split_once('.').unwrap().1);
        assert!(validate_access_token("i", &ring, &t2, 1).is_none());
    }
}
