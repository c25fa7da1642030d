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

/// What the end-session request showed of the browser.
#[derive(Debug)]
pub struct Seen {
    /// The live session its cookie names.
    pub session: Option<BrowserSession>,
    /// Whether it sent a session cookie at all (live or not).
    pub session_cookie: bool,
    /// Whether its `SameSite=Lax` cookies came with this request, so that their absence means
    /// something: a confirmation that passed the CSRF check, or Fetch Metadata that says so.
    pub cookies_came: bool,
    /// The person confirmed on the confirmation page.
    pub confirmed: bool,
}

/// What an end-session request leads to.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// End this session, then report success.
    End(Box<BrowserSession>),
    /// Ask the person first (the confirmation page).
    Ask,
    /// There is no session, and the request shows it: success is true.
    NothingToEnd,
}

/// Decides an end-session request; `named` is the live session the hint names by `sid`
/// ([`hinted_session`]), looked up when the cookie shows none. Success is only ever reported
/// for a session that was ended or that the request shows does not exist: a cross-site POST
/// carries no `SameSite=Lax` cookie, so a missing cookie alone proves nothing.
pub fn decide(hint: Option<&Hint>, seen: Seen, named: Option<BrowserSession>) -> Outcome {
    match seen.session {
        // §2: with a hint for the signed-in person the OP need not ask.
        Some(session) if seen.confirmed || hint.is_some_and(|h| h.sub == session.user_id.as_str()) => {
            Outcome::End(Box::new(session))
        }
        Some(_) => Outcome::Ask,
        None => match named {
            Some(session) => Outcome::End(Box::new(session)),
            // A cookie that names no live session is an ended one.
            None if seen.session_cookie || seen.cookies_came || seen.confirmed => Outcome::NothingToEnd,
            None => Outcome::Ask,
        },
    }
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

    fn session(user: &str, id: &str) -> BrowserSession {
        BrowserSession {
            tenant_id: TenantId::parse("t").unwrap(),
            id: id.into(),
            secret_hash: [0; 32],
            user_id: UserId::parse(user).unwrap(),
            auth_time: 0,
            amr: vec![],
            user_agent: None,
            ip: None,
            created_at: 0,
            expires_at: 1,
        }
    }

    #[test]
    fn success_is_reported_only_for_a_session_ended_or_shown_not_to_exist() {
        let hint = |sub: &str| Hint {
            sub: sub.into(),
            client_id: ClientId::parse("a").unwrap(),
            sid: Some("s1".into()),
        };
        let end = |id: &str, user: &str| Outcome::End(Box::new(session(user, id)));
        let seen = |session: Option<BrowserSession>, cookie: bool, came: bool, confirmed: bool| Seen {
            session,
            session_cookie: cookie,
            cookies_came: came,
            confirmed,
        };
        // Signed in: the hint's own subject, or a confirmation, ends it; anything else asks.
        let alice = || Some(session("alice", "s1"));
        assert_eq!(
            decide(Some(&hint("alice")), seen(alice(), true, false, false), None),
            end("s1", "alice")
        );
        assert_eq!(
            decide(None, seen(alice(), true, true, true), None),
            end("s1", "alice")
        );
        assert_eq!(
            decide(Some(&hint("bob")), seen(alice(), true, false, false), None),
            Outcome::Ask
        );
        assert_eq!(decide(None, seen(alice(), true, true, false), None), Outcome::Ask);
        // No cookie seen: the hint's sid session is ended if alive.
        let named = || Some(session("alice", "s1"));
        assert_eq!(
            decide(Some(&hint("alice")), seen(None, false, false, false), named()),
            end("s1", "alice")
        );
        // Otherwise success only where the request shows its cookies came.
        assert_eq!(
            decide(Some(&hint("alice")), seen(None, false, false, false), None),
            Outcome::Ask
        );
        assert_eq!(decide(None, seen(None, false, false, false), None), Outcome::Ask);
        assert_eq!(
            decide(None, seen(None, true, false, false), None),
            Outcome::NothingToEnd
        );
        assert_eq!(
            decide(None, seen(None, false, true, false), None),
            Outcome::NothingToEnd
        );
        assert_eq!(
            decide(None, seen(None, false, false, true), None),
            Outcome::NothingToEnd
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
