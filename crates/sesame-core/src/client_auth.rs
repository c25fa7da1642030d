//! Client authentication at the token, introspection and revocation endpoints
//! (RFC 6749 §2.3.1: `client_secret_basic` and `client_secret_post`).

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
