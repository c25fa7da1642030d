//! The device authorization grant (RFC 8628): a device without a browser asks for a code pair,
//! shows the person a short user code, and polls the token endpoint while the person approves
//! the request on `/device` with a browser signed in elsewhere.
//!
//! The device code is a 256-bit bearer secret stored only as its SHA-256. The user code is short
//! (8 letters from an alphabet without vowels or look-alikes, ~34 bits), so guessing it is
//! throttled per browser session and per address like password sign-ins, in the store.
//! The polling rate is held in the store too (`last_poll_at`, `interval`), so `slow_down`
//! holds across replicas. Redeeming an approved code is one conditional update, so a device
//! code is used once; tokens are issued by `token::issue` like those of an authorization code.

use crate::authorize;
use crate::ids::{ClientId, TenantId, UserId};
use crate::model::{BrowserSession, Client, Consent, GrantType, LoginAttempt, LoginLimit, User};
use crate::secret::hash_secret;
use crate::store::Store;
use crate::{Error, Result};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};

/// RFC 8628 §3.4 grant type.
pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// How long a device code waits for the person by default (RFC 8628 §3.2 `expires_in`).
pub const DEVICE_CODE_TTL: i64 = 600;
/// RFC 8628 §3.2 `interval`: the seconds a client waits between polls.
pub const POLL_INTERVAL: i64 = 5;
/// RFC 8628 §3.5: each `slow_down` adds 5 seconds to the interval.
pub const SLOW_DOWN_STEP: i64 = 5;
/// RFC 8628 §6.1: letters only, no vowels (no words), none that look alike.
pub const USER_CODE_ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";
/// Characters in a user code (shown as `XXXX-XXXX`).
pub const USER_CODE_LEN: usize = 8;
/// Wrong user codes a browser session may enter before delays start, and an address.
pub const SESSION_FREE_GUESSES: i64 = 5;
pub const ADDRESS_FREE_GUESSES: i64 = 20;

/// Where a device authorization is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceStatus {
    /// Waiting for the person.
    Pending,
    /// Approved; the next poll gets tokens.
    Approved,
    /// Denied; polls get `access_denied`.
    Denied,
    /// Tokens were issued for it; it can never be used again.
    Redeemed,
}

impl DeviceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceStatus::Pending => "pending",
            DeviceStatus::Approved => "approved",
            DeviceStatus::Denied => "denied",
            DeviceStatus::Redeemed => "redeemed",
        }
    }

    pub fn parse(s: &str) -> Option<DeviceStatus> {
        Some(match s {
            "pending" => DeviceStatus::Pending,
            "approved" => DeviceStatus::Approved,
            "denied" => DeviceStatus::Denied,
            "redeemed" => DeviceStatus::Redeemed,
            _ => return None,
        })
    }
}

/// A device authorization request (RFC 8628 §3.1) as stored, by the SHA-256 of its device code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceAuthorization {
    pub tenant_id: TenantId,
    pub device_code_hash: [u8; 32],
    /// Normalised: 8 letters of [`USER_CODE_ALPHABET`], no dash.
    pub user_code: String,
    pub client_id: ClientId,
    /// Space-separated granted scopes.
    pub scope: String,
    pub status: DeviceStatus,
    /// Set at approval: who approved, from which session, and when they signed in.
    pub user_id: Option<UserId>,
    pub session_id: Option<String>,
    pub auth_time: Option<i64>,
    pub amr: Vec<String>,
    /// Set at approval; the refresh tokens that follow share it.
    pub grant_id: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    pub last_poll_at: Option<i64>,
    /// Seconds the client must wait between polls; grows with each `slow_down`.
    pub interval: i64,
    /// Set at redemption, so that revoking the grant revokes the access token.
    pub access_jti: Option<String>,
    pub access_exp: Option<i64>,
}

/// The person's answer on the `/device` page, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceDecision {
    Approve {
        user_id: UserId,
        session_id: String,
        auth_time: i64,
        amr: Vec<String>,
        grant_id: String,
    },
    Deny,
}

/// What one poll found: the authorization, and whether the poll came sooner than its interval
/// allowed (the store has then already added [`SLOW_DOWN_STEP`] to `interval`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DevicePoll {
    pub authorization: DeviceAuthorization,
    pub too_fast: bool,
}

/// RFC 8628 §3.2 device authorization response.
#[derive(Debug, Serialize, Deserialize)]
pub struct DeviceAuthorizationResponse {
    pub device_code: String,
    /// Shown as `XXXX-XXXX`.
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: String,
    pub expires_in: i64,
    pub interval: i64,
}

/// The `/device` page of a tenant.
pub fn verification_uri(issuer: &str) -> String {
    format!("{issuer}/device")
}

/// RFC 8628 §3.1: a client that opted in to the grant asks for a code pair, for scopes it may
/// request (the same rule as at the authorization endpoint), valid `ttl` seconds.
pub async fn authorize(
    store: &dyn Store,
    issuer: &str,
    client: &Client,
    scope: Option<&str>,
    ttl: i64,
    now: i64,
) -> Result<DeviceAuthorizationResponse> {
    if !client.grant_types.contains(&GrantType::DeviceCode) {
        return Err(Error::UnauthorizedClient(format!(
            "the client is not allowed to use the {GRANT_TYPE} grant"
        )));
    }
    let scopes = authorize::requested_scopes(scope, client).map_err(Error::InvalidScope)?;
    let device_code = B64.encode(crate::crypto::random_bytes::<32>());
    let mut row = DeviceAuthorization {
        tenant_id: client.tenant_id.clone(),
        device_code_hash: hash_secret(device_code.as_bytes()),
        user_code: String::new(),
        client_id: client.client_id.clone(),
        scope: scopes.join(" "),
        status: DeviceStatus::Pending,
        user_id: None,
        session_id: None,
        auth_time: None,
        amr: Vec::new(),
        grant_id: None,
        created_at: now,
        expires_at: now + ttl,
        last_poll_at: None,
        interval: POLL_INTERVAL,
        access_jti: None,
        access_exp: None,
    };
    // User codes are unique per tenant; a collision (one in billions) draws again.
    let mut attempts = 0;
    loop {
        row.user_code = new_user_code();
        match store.insert_device_authorization(&row).await {
            Ok(()) => break,
            Err(Error::Conflict(_)) if attempts < 3 => attempts += 1,
            Err(e) => return Err(e),
        }
    }
    let uri = verification_uri(issuer);
    let shown = format_user_code(&row.user_code);
    Ok(DeviceAuthorizationResponse {
        device_code,
        verification_uri_complete: format!("{uri}?user_code={shown}"),
        user_code: shown,
        verification_uri: uri,
        expires_in: ttl,
        interval: POLL_INTERVAL,
    })
}

/// 8 letters of [`USER_CODE_ALPHABET`], uniformly: bytes of 240 and above are drawn again, so
/// that every letter is equally likely (256 is not a multiple of 20).
pub fn new_user_code() -> String {
    let mut out = String::with_capacity(USER_CODE_LEN);
    while out.len() < USER_CODE_LEN {
        for b in crate::crypto::random_bytes::<16>() {
            if b < 240 && out.len() < USER_CODE_LEN {
                out.push(USER_CODE_ALPHABET[(b % 20) as usize] as char);
            }
        }
    }
    out
}

/// `BCDFGHJK` → `BCDF-GHJK`.
pub fn format_user_code(code: &str) -> String {
    if code.len() == USER_CODE_LEN {
        format!("{}-{}", &code[..4], &code[4..])
    } else {
        code.to_owned()
    }
}

/// RFC 8628 §6.1: what a person typed, without case, dashes and spaces; `None` when it cannot
/// be a user code (so it is not worth a store read, but still counts as a wrong guess).
pub fn normalize_user_code(input: &str) -> Option<String> {
    let code: String = input
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let ok = code.len() == USER_CODE_LEN && code.bytes().all(|b| USER_CODE_ALPHABET.contains(&b));
    ok.then_some(code)
}

/// What a typed user code led to on the `/device` page.
#[derive(Debug)]
pub enum CodeCheck {
    /// A request waiting for this person's decision.
    Found(Box<DeviceAuthorization>),
    /// No such request, or it expired or was decided: counted as a wrong guess.
    Unknown,
    /// Too many wrong codes: try again in this many seconds; nothing was checked.
    Throttled { retry_after: i64 },
}

/// The throttling keys of user-code guesses: per browser session and per address.
fn guess_keys(session_id: &str, ip: Option<&str>) -> Vec<String> {
    let mut keys = vec![format!("device-session:{session_id}")];
    if let Some(ip) = ip {
        keys.push(format!("device-ip:{ip}"));
    }
    keys
}

/// Looks a typed user code up, counting the guess first as `login::sign_in` counts a password
/// attempt: in one store transaction that also refuses it when the session or the address has
/// guessed wrong too often ([`SESSION_FREE_GUESSES`], [`ADDRESS_FREE_GUESSES`], then doubling
/// delays). A code that matches is taken back from the tallies.
pub async fn check_user_code(
    store: &dyn Store,
    tenant: &TenantId,
    session_id: &str,
    ip: Option<&str>,
    typed: &str,
    now: i64,
) -> Result<CodeCheck> {
    let keys = guess_keys(session_id, ip);
    let frees = [SESSION_FREE_GUESSES, ADDRESS_FREE_GUESSES];
    let limits: Vec<LoginLimit> = keys
        .iter()
        .zip(frees)
        .map(|(key, free)| LoginLimit {
            key: key.as_str(),
            free,
        })
        .collect();
    if let LoginAttempt::Throttled { retry_after } = store.count_login_attempt(tenant, &limits, now).await? {
        return Ok(CodeCheck::Throttled { retry_after });
    }
    let found = match normalize_user_code(typed) {
        Some(code) => pending_by_user_code(store, tenant, &code, now).await?,
        None => None,
    };
    let Some(found) = found else {
        return Ok(CodeCheck::Unknown);
    };
    for key in &keys {
        store.uncount_login_attempt(tenant, key).await?;
    }
    Ok(CodeCheck::Found(Box::new(found)))
}

/// The request a normalised user code names, if it still waits for a decision.
pub async fn pending_by_user_code(
    store: &dyn Store,
    tenant: &TenantId,
    user_code: &str,
    now: i64,
) -> Result<Option<DeviceAuthorization>> {
    let found = store.get_device_authorization(tenant, user_code).await?;
    Ok(found.filter(|d| d.status == DeviceStatus::Pending && now < d.expires_at))
}

/// The person approves (`approve`) or denies the request `user_code` names, signed in with
/// `session`. Approval records the consent to its scopes, as the consent page does. Returns
/// `false` when the request is no longer waiting (decided meanwhile, or expired).
pub async fn decide(
    store: &dyn Store,
    client: &Client,
    user_code: &str,
    session: &BrowserSession,
    user: &User,
    approve: bool,
    now: i64,
) -> Result<bool> {
    let tenant = &client.tenant_id;
    let Some(request) = pending_by_user_code(store, tenant, user_code, now).await? else {
        return Ok(false);
    };
    if request.client_id != client.client_id {
        return Ok(false);
    }
    if !approve {
        return store
            .decide_device_authorization(tenant, user_code, &DeviceDecision::Deny, now)
            .await;
    }
    let mut scopes = store
        .get_consent(tenant, &user.id, &client.client_id)
        .await?
        .map(|c| c.scopes)
        .unwrap_or_default();
    for s in request.scope.split(' ').filter(|s| !s.is_empty()) {
        if !scopes.iter().any(|x| x == s) {
            scopes.push(s.to_owned());
        }
    }
    store
        .put_consent(&Consent {
            tenant_id: tenant.clone(),
            user_id: user.id.clone(),
            client_id: client.client_id.clone(),
            scopes,
            granted_at: now,
        })
        .await?;
    let decision = DeviceDecision::Approve {
        user_id: user.id.clone(),
        session_id: session.id.clone(),
        auth_time: session.auth_time,
        amr: session.amr.clone(),
        grant_id: crate::token::new_grant_id(),
    };
    store
        .decide_device_authorization(tenant, user_code, &decision, now)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_codes_use_the_alphabet_and_normalise() {
        for _ in 0..100 {
            let code = new_user_code();
            assert_eq!(code.len(), 8);
            assert!(code.bytes().all(|b| USER_CODE_ALPHABET.contains(&b)), "{code}");
            let shown = format_user_code(&code);
            assert_eq!(shown.len(), 9);
            assert_eq!(normalize_user_code(&shown).as_deref(), Some(code.as_str()));
            let sloppy = format!(" {} ", shown.to_lowercase().replace('-', " - "));
            assert_eq!(normalize_user_code(&sloppy).as_deref(), Some(code.as_str()));
        }
        assert_eq!(normalize_user_code("BCDF-GHJ"), None);
        assert_eq!(
            normalize_user_code("BCDF-GHJA"),
            None,
            "vowels are not in the alphabet"
        );
        assert_eq!(normalize_user_code("BCDF-GHJ0"), None);
        assert_eq!(normalize_user_code(""), None);
    }

    #[test]
    fn the_grant_type_parses_by_name_and_alias() {
        assert_eq!(GRANT_TYPE.parse::<GrantType>().unwrap(), GrantType::DeviceCode);
        assert_eq!("device_code".parse::<GrantType>().unwrap(), GrantType::DeviceCode);
        let g: Vec<GrantType> = serde_json::from_str(r#"["device_code", "authorization_code"]"#).unwrap();
        assert_eq!(g, [GrantType::DeviceCode, GrantType::AuthorizationCode]);
        assert_eq!(
            serde_json::to_string(&GrantType::DeviceCode).unwrap(),
            format!("\"{GRANT_TYPE}\"")
        );
    }
}
