//! Sesame's protocol logic. No HTTP, no SQL: the server turns requests into the typed values
//! here, and the store implements [`store::Store`].

pub mod admin;
pub mod authorize;
pub mod claims;
pub mod client_auth;
pub mod crypto;
pub mod device;
pub mod discovery;
pub mod error;
pub mod federation;
pub mod ids;
pub mod jwt;
pub mod keys;
pub mod login;
pub mod logout;
pub mod model;
pub mod password;
pub mod secret;
pub mod sessions;
pub mod store;
pub mod token;
pub mod trust;
pub mod workload;
// Admin roles and the audit log.
pub mod access;
pub mod audit;
// Authorization: teams, resources, grants, the check.
pub mod authz;
// SAML 2.0 service provider (brokered SSO)
pub mod saml;
pub mod xmldsig;

pub use error::{Error, Result};

/// Seconds since the Unix epoch. Every core function takes `now` as an argument so that the
/// rules are testable at any instant; this is the one place that reads the clock.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
