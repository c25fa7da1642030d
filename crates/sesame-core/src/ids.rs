//! Names of tenants and clients. Distinct types so one is never passed where the other belongs.

use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! id_type {
    ($(#[$m:meta])* $name:ident, $what:literal, $max:literal, $valid:expr) => {
        $(#[$m])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn parse(s: &str) -> Result<Self> {
                let valid: fn(char) -> bool = $valid;
                if s.is_empty() || s.len() > $max || !s.chars().all(valid) {
                    return Err(Error::InvalidRequest(format!(
                        concat!($what, " '{}' is not valid: use 1 to {} of the characters allowed"),
                        s.escape_debug(), $max
                    )));
                }
                Ok(Self(s.to_owned()))
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        // Lookups by a borrowed name (a token's claim, a path segment) without building an id:
        // the derived `Hash` and `Eq` are those of the inner `String`, so they agree with `str`'s.
        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }
        impl TryFrom<String> for $name {
            type Error = Error;
            fn try_from(s: String) -> Result<Self> {
                Self::parse(&s)
            }
        }
        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }
    };
}

id_type!(
    /// A tenant's name, which is also the last segment of its issuer (`{public_url}/t/{tenant}`):
    /// lower-case letters, digits and `-`.
    TenantId, "tenant name", 63, |c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'
);
id_type!(
    /// A client's `client_id` (RFC 6749 §2.2): letters, digits, `-`, `_`, `.`.
    ClientId, "client_id", 128, |c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
);
id_type!(
    /// A user's stable id: random, never reused, never shown as a login name.
    UserId, "user id", 64, |c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_')
);
id_type!(
    /// A user's login name, unique per tenant, stored lower-case.
    Username, "username", 64, |c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '@' | '+' | '-')
);

id_type!(
    /// A tenant's brokered-SSO connection (`/t/{tenant}/sso/{connection}/…`): lower-case
    /// letters, digits and `-`.
    ConnectionId, "connection name", 63, |c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'
);

impl UserId {
    /// 128 random bits, base64url.
    pub fn generate() -> UserId {
        UserId(crate::crypto::random_id::<16>())
    }
}

impl Username {
    /// Lower-cases before checking, so `Alice` and `alice` are one account.
    pub fn normalize(s: &str) -> Result<Self> {
        Self::parse(&s.to_lowercase())
    }
}

id_type!(
    /// A team of a tenant (authorization): lower-case letters, digits, `-` and `_`.
    TeamId, "team id", 63, |c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_'
);
