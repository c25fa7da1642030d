//! The tokens a sign-in or refresh returns, as kept in the cache.

use serde::{Deserialize, Serialize};

/// Seconds since the Unix epoch, now.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// A successful token response (RFC 6749 §5.1), with `expires_in` turned into a time.
/// `Debug` does not show the tokens.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TokenSet {
    /// The access token.
    pub access_token: String,
    /// Its type; `Bearer` at Sesame.
    pub token_type: String,
    /// When the access token expires (Unix seconds), if the issuer said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    /// The refresh token, if one was issued (Sesame issues one with `offline_access`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// The scopes granted, space-separated, if the issuer said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The ID token, if one was issued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

impl std::fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSet")
            .field("token_type", &self.token_type)
            .field("expires_at", &self.expires_at)
            .field("has_refresh_token", &self.refresh_token.is_some())
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

impl TokenSet {
    /// Parses a token endpoint answer received now.
    pub fn from_response(body: &[u8]) -> Result<TokenSet, String> {
        #[derive(Deserialize)]
        struct Response {
            access_token: String,
            token_type: String,
            expires_in: Option<i64>,
            refresh_token: Option<String>,
            scope: Option<String>,
            id_token: Option<String>,
        }
        let r: Response = serde_json::from_slice(body).map_err(|e| format!("not a token response: {e}"))?;
        // RFC 6749 §5.1: the type is case-insensitive.
        if !r.token_type.eq_ignore_ascii_case("bearer") {
            return Err(format!("token type {:?} is not Bearer", r.token_type));
        }
        Ok(TokenSet {
            access_token: r.access_token,
            token_type: r.token_type,
            expires_at: r.expires_in.map(|s| now().saturating_add(s)),
            refresh_token: r.refresh_token,
            scope: r.scope,
            id_token: r.id_token,
        })
    }

    /// Whether the access token is still valid `margin` seconds from now. A token without an
    /// expiry is taken as valid.
    pub fn valid_for(&self, margin: i64) -> bool {
        self.expires_at.is_none_or(|at| at > now() + margin)
    }

    /// After a refresh: the new set, keeping the refresh token and ID token when the answer
    /// has none (RFC 6749 §6: the issuer may keep the old refresh token).
    pub fn refreshed(&self, mut new: TokenSet) -> TokenSet {
        if new.refresh_token.is_none() {
            new.refresh_token = self.refresh_token.clone();
        }
        if new.id_token.is_none() {
            new.id_token = self.id_token.clone();
        }
        if new.scope.is_none() {
            new.scope = self.scope.clone();
        }
        new
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refresh_keeps_what_the_answer_leaves_out() {
        let old = TokenSet::from_response(
            br#"{"access_token":"a","token_type":"Bearer","expires_in":60,"refresh_token":"r","id_token":"i","scope":"openid"}"#,
        )
        .unwrap();
        assert!(old.valid_for(30) && !old.valid_for(90));
        let new = TokenSet::from_response(br#"{"access_token":"b","token_type":"bearer","expires_in":3600}"#)
            .unwrap();
        let merged = old.refreshed(new);
        assert_eq!(merged.access_token, "b");
        assert_eq!(merged.refresh_token.as_deref(), Some("r"));
        assert_eq!(merged.id_token.as_deref(), Some("i"));
        assert!(!format!("{merged:?}").contains("\"b\""), "Debug hides tokens");
        assert!(TokenSet::from_response(br#"{"access_token":"a","token_type":"DPoP"}"#).is_err());
        assert!(TokenSet::from_response(b"<html>").is_err());
    }
}
