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
/// The longest an assertion may still be valid when it arrives: it is a one-time credential.
pub const MAX_ASSERTION_LIFETIME: i64 = 300;

/// A client assertion as presented, before any check but its shape: the client it names.
pub struct PresentedAssertion {
    pub client_id: ClientId,
    assertion: String,
}

impl std::fmt::Debug for PresentedAssertion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PresentedAssertion")
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// RFC 7521 §4.2 parameters: the assertion type, the assertion, and an optional `client_id`,
/// which must name the client the assertion's `sub` names.
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
    let claims = crate::trust::unverified_claims(assertion).map_err(|_| refused())?;
    let sub = claims.get("sub").and_then(|v| v.as_str()).ok_or_else(refused)?;
    let id = ClientId::parse(sub).map_err(|_| refused())?;
    if client_id.is_some_and(|c| c != id.as_str()) {
        return Err(Error::invalid_request(
            "client_id differs from the client the client_assertion names",
        ));
    }
    Ok(PresentedAssertion {
        client_id: id,
        assertion: assertion.to_owned(),
    })
}

/// RFC 7523 §3 for a client assertion: signed with one of the client's registered keys
/// (the algorithm is the key's), `iss` = `sub` = the client, `aud` one of `audiences` (the
/// endpoint called, the token endpoint, or the issuer), `exp` at most
/// [`MAX_ASSERTION_LIFETIME`] away, and a `jti` used once: it is recorded in the store, whose
/// unique key makes the second use fail on every replica. Every refusal is the same
/// `invalid_client` to the caller; the reason goes to the log.
pub async fn authenticate_assertion<'c>(
    client: Option<&'c Client>,
    presented: &PresentedAssertion,
    keys: &dyn crate::trust::KeyFetcher,
    store: &dyn crate::store::Store,
    audiences: &[&str],
    now: i64,
) -> Result<&'c Client> {
    let outcome = check_assertion(client, presented, keys, audiences, now).await;
    let (client, jti, exp) = match outcome {
        Ok(ok) => ok,
        Err(why) => {
            tracing::info!(client = %presented.client_id, reason = %why, "client assertion refused");
            return Err(Error::InvalidClient { basic: false });
        }
    };
    // Kept a little past exp, for the clock skew `check_times` allows.
    if !store
        .use_assertion_jti(
            &client.tenant_id,
            &client.client_id,
            &jti,
            exp + crate::trust::LEEWAY,
        )
        .await?
    {
        tracing::warn!(client = %client.client_id, "client assertion replayed: its jti was used before");
        return Err(Error::InvalidClient { basic: false });
    }
    Ok(client)
}

async fn check_assertion<'c>(
    client: Option<&'c Client>,
    presented: &PresentedAssertion,
    keys: &dyn crate::trust::KeyFetcher,
    audiences: &[&str],
    now: i64,
) -> std::result::Result<(&'c Client, String, i64), String> {
    let client = client.ok_or("unknown client")?;
    if client.disabled {
        return Err("the client is disabled".into());
    }
    let source = match (&client.jwks, &client.jwks_uri) {
        (Some(jwks), _) => crate::trust::KeySource::Inline(jwks.clone()),
        (None, Some(uri)) => crate::trust::KeySource::JwksUri(uri.clone()),
        (None, None) => return Err("the client has no keys (it does not use private_key_jwt)".into()),
    };
    let verified = crate::trust::verify_with(keys, &source, None, &presented.assertion).await?;
    let claims = &verified.claims;
    let id = client.client_id.as_str();
    if claims.get("iss").and_then(|v| v.as_str()) != Some(id)
        || claims.get("sub").and_then(|v| v.as_str()) != Some(id)
    {
        return Err("iss and sub must both be the client_id".into());
    }
    if !audiences.iter().any(|a| crate::trust::has_audience(claims, a)) {
        return Err("aud names neither this endpoint, the token endpoint nor the issuer".into());
    }
    crate::trust::check_times(claims, now, None)?;
    let exp = claims.get("exp").and_then(|v| v.as_i64()).unwrap_or(0);
    if exp > now + MAX_ASSERTION_LIFETIME + crate::trust::LEEWAY {
        return Err(format!("exp is more than {MAX_ASSERTION_LIFETIME} s away"));
    }
    let jti = claims
        .get("jti")
        .and_then(|v| v.as_str())
        .filter(|j| !j.is_empty() && j.len() <= 256)
        .ok_or("the assertion has no jti")?;
    Ok((client, jti.to_owned(), exp))
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
