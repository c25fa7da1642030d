//! A thin JWS compact serialization (RFC 7515 §7.1) over the keyring: Sesame signs its own
//! tokens and verifies only its own tokens, so only the three algorithms it issues are accepted.

use crate::keys::{ActiveKey, Keyring};
use crate::{Error, Result};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use serde::Deserialize;

/// What a JWT is for; it decides the `typ` header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `at+jwt` (RFC 9068 §2.1).
    AccessToken,
    /// `JWT`: ID tokens.
    IdToken,
    /// `logout+jwt`: back-channel logout tokens.
    LogoutToken,
}

/// Signs `claims` (JSON bytes) with the header pre-encoded in `key`.
pub fn sign(key: &ActiveKey, kind: Kind, claims: &[u8]) -> Result<String> {
    let header = match kind {
        Kind::AccessToken => &key.at_jwt_header_b64,
        Kind::IdToken => &key.jwt_header_b64,
        Kind::LogoutToken => &key.logout_header_b64,
    };
    let mut out = String::with_capacity(header.len() + 1 + claims.len() * 4 / 3 + 4 + 360);
    out.push_str(header);
    out.push('.');
    B64.encode_string(claims, &mut out);
    let sig = key.pair.sign(out.as_bytes())?;
    out.push('.');
    B64.encode_string(sig, &mut out);
    Ok(out)
}

#[derive(Deserialize)]
struct Header<'a> {
    alg: &'a str,
    kid: Option<&'a str>,
    typ: Option<&'a str>,
}

/// A token whose signature checked out against one of the tenant's published keys.
pub struct Verified {
    pub typ: Option<String>,
    pub claims: serde_json::Map<String, serde_json::Value>,
}

/// Verifies the signature of `token` with the tenant's keyring. Time and issuer are the
/// caller's to check. Every failure is the same `InvalidGrant`: callers answer "inactive".
pub fn verify(keyring: &Keyring, token: &str) -> Result<Verified> {
    let invalid = || Error::InvalidGrant("the token is not valid".into());
    if token.len() > 16 * 1024 {
        return Err(invalid());
    }
    let mut parts = token.splitn(3, '.');
    let (Some(h), Some(p), Some(s)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(invalid());
    };
    if s.contains('.') {
        return Err(invalid());
    }
    let header_bytes = B64.decode(h).map_err(|_| invalid())?;
    let header: Header = serde_json::from_slice(&header_bytes).map_err(|_| invalid())?;
    let verifier = keyring
        .verifier(header.kid.ok_or_else(invalid)?)
        .ok_or_else(invalid)?;
    // RFC 8725 §3.1: the algorithm comes from the key, never from the token alone.
    if header.alg != verifier.alg().as_str() {
        return Err(invalid());
    }
    let sig = B64.decode(s).map_err(|_| invalid())?;
    let signed_len = h.len() + 1 + p.len();
    if !verifier.verify(&token.as_bytes()[..signed_len], &sig) {
        return Err(invalid());
    }
    let payload = B64.decode(p).map_err(|_| invalid())?;
    let claims = serde_json::from_slice(&payload).map_err(|_| invalid())?;
    Ok(Verified {
        typ: header.typ.map(str::to_owned),
        claims,
    })
}
