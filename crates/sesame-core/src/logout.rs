//! OpenID Connect RP-Initiated Logout 1.0: the end-session request, checked before anything
//! is ended or anyone is redirected.

use crate::ids::{ClientId, TenantId, UserId};
use crate::keys::Keyring;
use crate::model::{BrowserSession, Client};
use crate::store::Store;
use crate::{jwt, Error, Result};

/// The subject, audience and session of a valid `id_token_hint`.
#[derive(Debug, PartialEq, Eq)]
pub struct Hint {
    pub sub: String,
    pub client_id: ClientId,
    /// The browser session it was issued from (Back-Channel Logout §2.4), if any.
    pub sid: Option<String>,
}

/// §2: the OP "SHOULD accept ID Tokens when the RP identified by the ID Token's aud claim
/// and/or sid claim has a current session or had a recent session", so expiry is not checked;
/// signature, issuer and type are.
pub fn read_hint(issuer: &str, keyring: &Keyring, id_token: &str) -> Result<Hint> {
    let invalid = || Error::invalid_request("id_token_hint is not an ID token issued here");
    let verified = jwt::verify(keyring, id_token).map_err(|_| invalid())?;
    if verified
        .typ
        .as_deref()
        .is_some_and(|t| t.eq_ignore_ascii_case("at+jwt"))
    {
        return Err(invalid());
    }
    let claims = verified.claims;
    if claims.get("iss").and_then(|v| v.as_str()) != Some(issuer) {
        return Err(invalid());
    }
    let sub = claims.get("sub").and_then(|v| v.as_str()).ok_or_else(invalid)?;
    let aud = match claims.get("aud") {
        Some(serde_json::Value::String(a)) => a.as_str(),
        Some(serde_json::Value::Array(list)) if list.len() == 1 => list[0].as_str().ok_or_else(invalid)?,
        _ => return Err(invalid()),
    };
    let sid = match claims.get("sid") {
        None => None,
        Some(serde_json::Value::String(sid)) => Some(sid.clone()),
        Some(_) => return Err(invalid()),
    };
    Ok(Hint {
        sub: sub.to_owned(),
        client_id: ClientId::parse(aud).map_err(|_| invalid())?,
        sid,
    })
}

/// The live session a verified hint names by `sid`, so that it can be ended when the browser's
/// cookie cannot be seen (a cross-site POST carries no `SameSite=Lax` cookie). The hint's
/// signature, issuer and client were checked by [`read_hint`] and the caller; here the session
/// must also be the hint's subject's: only that subject's sessions are searched.
pub async fn hinted_session(
    store: &dyn Store,
    tenant: &TenantId,
    hint: &Hint,
    now: i64,
) -> Result<Option<BrowserSession>> {
    let Some(sid) = &hint.sid else {
        return Ok(None);
    };
    let Ok(user) = UserId::parse(&hint.sub) else {
        return Ok(None);
    };
    Ok(store
        .list_sessions(tenant, &user, now)
        .await?
        .into_iter()
        .find(|s| s.id == *sid))
}

/// The client named by `client_id` and/or the hint; they must agree (§2).
pub fn client_id(param: Option<&str>, hint: Option<&Hint>) -> Result<Option<ClientId>> {
    let param = param
        .map(|p| ClientId::parse(p).map_err(|_| Error::invalid_request("client_id is malformed")))
        .transpose()?;
    match (param, hint) {
        (Some(p), Some(h)) if p != h.client_id => Err(Error::invalid_request(
            "client_id differs from the audience of id_token_hint",
        )),
        (Some(p), _) => Ok(Some(p)),
        (None, Some(h)) => Ok(Some(h.client_id.clone())),
        (None, None) => Ok(None),
    }
}

/// §3: a post-logout redirect is honoured only when registered for the client, compared
/// exactly; without a known client there is nowhere safe to send the browser.
pub fn check_post_logout_redirect(client: Option<&Client>, uri: &str) -> Result<()> {
    match client {
        Some(c) if c.post_logout_redirect_uris.iter().any(|r| r == uri) => Ok(()),
        Some(_) => Err(Error::invalid_request(
            "post_logout_redirect_uri is not registered for this client",
        )),
        None => Err(Error::invalid_request(
            "post_logout_redirect_uri needs id_token_hint or client_id to name the client",
        )),
    }
}

/// Where to send the browser after logout, with `state` (§3).
pub fn redirect_location(uri: &str, state: Option<&str>) -> String {
    match state {
        None => uri.to_owned(),
        Some(state) => {
            let sep = if uri.contains('?') { '&' } else { '?' };
            let q = form_urlencoded::Serializer::new(String::new())
                .append_pair("state", state)
                .finish();
            format!("{uri}{sep}{q}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_keeps_the_query_and_adds_state() {
        assert_eq!(redirect_location("https://a/x", None), "https://a/x");
        assert_eq!(
            redirect_location("https://a/x?y=1", Some("s t")),
            "https://a/x?y=1&state=s+t"
        );
    }

    #[test]
    fn client_id_and_hint_must_agree() {
        let hint = Hint {
            sub: "u".into(),
            client_id: ClientId::parse("a").unwrap(),
            sid: None,
        };
        assert_eq!(client_id(None, Some(&hint)).unwrap().unwrap().as_str(), "a");
        assert!(client_id(Some("b"), Some(&hint)).is_err());
        assert_eq!(client_id(Some("b"), None).unwrap().unwrap().as_str(), "b");
        assert!(client_id(None, None).unwrap().is_none());
    }
}
