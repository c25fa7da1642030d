//! Client authentication at the token, introspection and revocation endpoints
//! (RFC 6749 §2.3.1: `client_secret_basic` and `client_secret_post`; RFC 7523 §2.2 and OpenID
//! Connect Core §9: `private_key_jwt`).
//!
//! `client_secret_jwt` is not offered: it is an HMAC keyed with the client secret, and Sesame
//! keeps only a hash of each secret.

use crate::ids::ClientId;
use crate::model::{Client, ClientType};
use crate::secret::{hash_secret, verify_secret};
use crate::{Error, Result};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use zeroize::Zeroizing;

/// How the client presented itself.
#[derive(Debug)]
pub enum AuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
    /// A public client names itself with `client_id` alone (RFC 6749 §3.2.1).
    None,
    /// A JWT signed with one of the client's registered keys (RFC 7523 §2.2).
    PrivateKeyJwt,
}

/// What the client presented: its id and secret, and how.
pub struct PresentedClient {
    pub client_id: ClientId,
    /// `None` for a public client.
    pub secret: Option<Zeroizing<String>>,
    pub method: AuthMethod,
}

impl PresentedClient {
    fn basic(&self) -> bool {
        matches!(self.method, AuthMethod::ClientSecretBasic)
    }
}

/// Parses the value of an `Authorization` header (bytes, since it may not be UTF-8).
/// Returns `Ok(None)` for a scheme other than Basic, which is not client authentication.
pub fn parse_basic(header: &[u8]) -> Result<Option<PresentedClient>> {
    let malformed = || Error::InvalidClient { basic: true };
    let Some(rest) = header
        .get(..6)
        .filter(|s| s.eq_ignore_ascii_case(b"basic "))
        .map(|_| &header[6..])
    else {
        return Ok(None);
    };
    let decoded = Zeroizing::new(STANDARD.decode(rest.trim_ascii()).map_err(|_| malformed())?);
    let colon = decoded.iter().position(|&b| b == b':').ok_or_else(malformed)?;
    // RFC 6749 §2.3.1: id and secret are form-urlencoded before they are joined.
    let id = form_decode(&decoded[..colon]).ok_or_else(malformed)?;
    let secret = Zeroizing::new(form_decode(&decoded[colon + 1..]).ok_or_else(malformed)?);
    let client_id = ClientId::parse(&id).map_err(|_| malformed())?;
    Ok(Some(PresentedClient {
        client_id,
        secret: Some(secret),
        method: AuthMethod::ClientSecretBasic,
    }))
}

fn form_decode(bytes: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(bytes).ok()?;
    let plus_fixed = text.replace('+', " ");
    let mut out = Vec::with_capacity(plus_fixed.len());
    let b = plus_fixed.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// `client_id` and `client_secret` from the body (`client_secret_post`), or `client_id`
/// alone (a public client).
pub fn from_post(client_id: Option<&str>, client_secret: Option<&str>) -> Result<Option<PresentedClient>> {
    let parse = |id: &str| ClientId::parse(id).map_err(|_| Error::InvalidClient { basic: false });
    match (client_id, client_secret) {
        (None, None) => Ok(None),
        (Some(id), Some(secret)) => Ok(Some(PresentedClient {
            client_id: parse(id)?,
            secret: Some(Zeroizing::new(secret.to_owned())),
            method: AuthMethod::ClientSecretPost,
        })),
        (Some(id), None) => Ok(Some(PresentedClient {
            client_id: parse(id)?,
            secret: None,
            method: AuthMethod::None,
        })),
        (None, Some(_)) => Err(Error::invalid_request("client_secret without client_id")),
    }
}

/// Checks a presented secret against the stored client. Unknown and disabled clients, wrong
/// secrets, a secret for a public client and none for a confidential one all give the same
/// `invalid_client`, after the same hashing work.
pub fn authenticate<'c>(client: Option<&'c Client>, presented: &PresentedClient) -> Result<&'c Client> {
    let refused = Error::InvalidClient {
        basic: presented.basic(),
    };
    let Some(secret) = &presented.secret else {
        return match client {
            Some(c) if c.client_type == ClientType::Public && !c.disabled => Ok(c),
            _ => Err(refused),
        };
    };
    let Some(client) = client else {
        let _ = hash_secret(secret.as_bytes());
        return Err(refused);
    };
    let ok = match (&client.secret_hash, client.client_type) {
        (Some(hash), ClientType::Confidential) => verify_secret(secret.as_bytes(), hash),
        _ => {
            let _ = hash_secret(secret.as_bytes());
            false
        }
    };
    if !ok || client.disabled {
        return Err(refused);
    }
    Ok(client)
}

/// RFC 7523 §2.2 `client_assertion_type`.
pub const CLIENT_ASSERTION_TYPE_JWT: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// The longest an assertion may still be valid when it arrives: it is a one-time credential,
/// and its `jti` is kept until then. Ten minutes: pyoidc (and so the OpenID conformance tool)
/// signs its assertions for 600 s.
pub const MAX_ASSERTION_LIFETIME: i64 = 600;
/// The same for an outside token a trust policy accepts: such tokens are minted by their
/// issuer (a Kubernetes projected token lives 10 minutes to a day), not for this one request.
/// It bounds how long a used `jti` is kept.
pub const MAX_OUTSIDE_ASSERTION_LIFETIME: i64 = 24 * 3600;

/// A client assertion as presented, before any check but its shape: the client it names.
pub struct PresentedAssertion {
    pub client_id: ClientId,
    /// Whether the `client_id` parameter named the client (else the assertion's `sub` did).
    named_by_parameter: bool,
    assertion: String,
}

impl std::fmt::Debug for PresentedAssertion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PresentedAssertion")
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// RFC 7521 §4.2 parameters: the assertion type, the assertion, and an optional `client_id`.
/// The client is the one `client_id` names, else the one the assertion's `sub` names. Whether
/// the assertion may stand for that client is decided later, with its keys or trust policy: a
/// client with keys needs `iss` = `sub` = its id; a client with a trust policy is named by
/// `client_id` (an outside token's `sub` is the outside subject).
pub fn from_assertion(
    assertion_type: &str,
    assertion: &str,
    client_id: Option<&str>,
) -> Result<PresentedAssertion> {
    if assertion_type != CLIENT_ASSERTION_TYPE_JWT {
        return Err(Error::InvalidRequest(format!(
            "client_assertion_type '{}' is not supported (only {CLIENT_ASSERTION_TYPE_JWT})",
            assertion_type.escape_debug()
        )));
    }
    let refused = || Error::InvalidClient { basic: false };
    let id = match client_id {
        Some(id) => ClientId::parse(id).map_err(|_| refused())?,
        None => {
            let claims = crate::trust::unverified_claims(assertion).map_err(|_| refused())?;
            let sub = claims.get("sub").and_then(|v| v.as_str()).ok_or_else(refused)?;
            ClientId::parse(sub).map_err(|_| refused())?
        }
    };
    Ok(PresentedAssertion {
        client_id: id,
        named_by_parameter: client_id.is_some(),
        assertion: assertion.to_owned(),
    })
}

/// Where a client assertion is checked: the tenant's keys cache, store and trust policies, and
/// the audiences that name this server at the endpoint called.
pub struct AssertionCheck<'a> {
    pub keys: &'a dyn crate::trust::KeyFetcher,
    pub store: &'a dyn crate::store::Store,
    /// The tenant's trust policies (for clients that name one).
    pub policies: &'a [crate::trust::TrustPolicy],
    /// RFC 7523 §3 item 3: the endpoint called, the token endpoint, the issuer.
    pub audiences: &'a [&'a str],
    pub now: i64,
}

/// Why a client assertion was refused: for the log and the audit log only. The caller gets
/// `invalid_client`, whatever failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssertionRefused {
    pub reason: String,
}

/// RFC 7523 §3 for a client assertion. With the client's own keys: signed with one of them
/// (the algorithm is the key's), `iss` = `sub` = the client, `exp` at most
/// [`MAX_ASSERTION_LIFETIME`] away. With the client's trust policy: signed by the policy's
/// issuer and every condition of the policy met (`trust::TrustPolicySpec::check`, the same
/// evaluation token exchange uses), `exp` at most [`MAX_OUTSIDE_ASSERTION_LIFETIME`] away.
/// Both: `aud` names this server (one of `audiences`), and a `jti` used once: it is recorded in
/// the store, whose unique key makes the second use fail on every replica (unless the policy
/// allows reuse). The outer error is the store's; the inner one why the assertion was refused.
pub async fn authenticate_assertion<'c>(
    client: Option<&'c Client>,
    presented: &PresentedAssertion,
    check: &AssertionCheck<'_>,
) -> Result<std::result::Result<&'c Client, AssertionRefused>> {
    let refused = |reason: String| Ok(Err(AssertionRefused { reason }));
    let (client, jti, exp) = match check_assertion(client, presented, check).await {
        Ok(ok) => ok,
        Err(reason) => return refused(reason),
    };
    let Some(jti) = jti else {
        return Ok(Ok(client));
    };
    // Kept a little past exp, for the clock skew `check_times` allows.
    if !check
        .store
        .use_assertion_jti(
            &client.tenant_id,
            &client.client_id,
            &jti,
            exp + crate::trust::LEEWAY,
        )
        .await?
    {
        return refused("replayed: the assertion's jti was used before".into());
    }
    Ok(Ok(client))
}

/// The client, the `jti` to record (none when the trust policy allows reuse) and `exp`.
async fn check_assertion<'c>(
    client: Option<&'c Client>,
    presented: &PresentedAssertion,
    check: &AssertionCheck<'_>,
) -> std::result::Result<(&'c Client, Option<String>, i64), String> {
    let client = client.ok_or("unknown client")?;
    if client.disabled {
        return Err("the client is disabled".into());
    }
    let (claims, max_lifetime, reuse) = match &client.trust_policy {
        Some(name) => {
            let (claims, reuse) = check_outside_token(name, presented, check).await?;
            (claims, MAX_OUTSIDE_ASSERTION_LIFETIME, reuse)
        }
        None => (
            check_own_keys(client, presented, check).await?,
            MAX_ASSERTION_LIFETIME,
            false,
        ),
    };
    let claims = &claims;
    // RFC 7523 §3 item 3, for outside tokens too: the policy's own audience condition may name
    // anything, but an assertion for this client must name this server.
    if !check
        .audiences
        .iter()
        .any(|a| crate::trust::has_audience(claims, a))
    {
        return Err("aud names neither this endpoint, the token endpoint nor the issuer".into());
    }
    crate::trust::check_times(claims, check.now, None)?;
    let exp = claims.get("exp").and_then(|v| v.as_i64()).unwrap_or(0);
    if exp > check.now + max_lifetime + crate::trust::LEEWAY {
        return Err(format!("exp is more than {max_lifetime} s away"));
    }
    let jti = claims
        .get("jti")
        .and_then(|v| v.as_str())
        .filter(|j| !j.is_empty() && j.len() <= 256);
    match (jti, reuse) {
        (_, true) => Ok((client, None, exp)),
        (Some(jti), false) => Ok((client, Some(jti.to_owned()), exp)),
        (None, false) => Err("the assertion has no jti".into()),
    }
}

/// A client with keys of its own: the assertion is signed with one, and `iss` = `sub` = the client.
async fn check_own_keys(
    client: &Client,
    presented: &PresentedAssertion,
    check: &AssertionCheck<'_>,
) -> std::result::Result<serde_json::Map<String, serde_json::Value>, String> {
    let source = match (&client.jwks, &client.jwks_uri) {
        (Some(jwks), _) => crate::trust::KeySource::Inline(jwks.clone()),
        (None, Some(uri)) => crate::trust::KeySource::JwksUri(uri.clone()),
        (None, None) => return Err("the client has no keys (it does not use private_key_jwt)".into()),
    };
    let verified = crate::trust::verify_with(check.keys, &source, None, &presented.assertion).await?;
    let id = client.client_id.as_str();
    if verified.claims.get("iss").and_then(|v| v.as_str()) != Some(id)
        || verified.claims.get("sub").and_then(|v| v.as_str()) != Some(id)
    {
        return Err("iss and sub must both be the client_id".into());
    }
    Ok(verified.claims)
}

/// A client that names a trust policy: the assertion is an outside token that the policy
/// accepts, checked as token exchange checks a subject token. Returns its claims and whether
/// the policy allows reuse.
async fn check_outside_token(
    name: &str,
    presented: &PresentedAssertion,
    check: &AssertionCheck<'_>,
) -> std::result::Result<(serde_json::Map<String, serde_json::Value>, bool), String> {
    // RFC 7521 §4.2: the outside token's sub is not a client id, so client_id names the client.
    if !presented.named_by_parameter {
        return Err("a client with a trust policy is named by the client_id parameter".into());
    }
    let policy = check
        .policies
        .iter()
        .find(|p| p.spec.name == name)
        .ok_or_else(|| format!("the client's trust policy '{name}' does not exist"))?;
    let spec = &policy.spec;
    // Before any key is fetched: a token of another issuer is refused as such.
    let unverified = crate::trust::unverified_claims(&presented.assertion).map_err(|r| r.to_string())?;
    if unverified.get("iss").and_then(|v| v.as_str()) != Some(spec.issuer.as_str()) {
        return Err(format!(
            "trust policy '{name}': untrusted issuer (the policy trusts '{}')",
            spec.issuer
        ));
    }
    let verified = crate::trust::verify_with(
        check.keys,
        &spec.key_source(),
        Some(&spec.issuer),
        &presented.assertion,
    )
    .await
    .map_err(|why| format!("trust policy '{name}': {why}"))?;
    spec.check(&verified, check.now)
        .map_err(|why| format!("trust policy '{name}': {why}"))?;
    Ok((verified.claims, spec.assertion_reuse))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_header_is_decoded_per_rfc6749() {
        let h = format!("Basic {}", STANDARD.encode("my%20app:s%3Acret+x"));
        // a space is not a valid client_id character, so this one is refused
        assert!(parse_basic(h.as_bytes()).is_err());
        let h = format!("basic {}", STANDARD.encode("app:s%3Acret+x"));
        let p = parse_basic(h.as_bytes()).unwrap().unwrap();
        assert_eq!(p.client_id.as_str(), "app");
        assert_eq!(p.secret.as_deref().map(String::as_str), Some("s:cret x"));
    }

    #[test]
    fn malformed_basic_headers_are_invalid_client() {
        for bad in [&b"Basic !!!"[..], b"Basic YWJj", b"Basic \xff\xfe", b"Basic "] {
            assert!(
                matches!(parse_basic(bad), Err(Error::InvalidClient { basic: true })),
                "{bad:?}"
            );
        }
        let no_utf8 = format!("Basic {}", STANDARD.encode(b"\xff:\xfe"));
        assert!(parse_basic(no_utf8.as_bytes()).is_err());
        assert!(parse_basic(b"Bearer abc").unwrap().is_none());
    }
}
