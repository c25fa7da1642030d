//! `sesame-client`: a Rust client for a Sesame issuer (or any OAuth 2.0 / OpenID Connect
//! issuer that follows the same RFCs), for programs that act as a person from a terminal.
//!
//! - [`Client::discover`] fetches the discovery document and checks that it names the issuer
//!   asked for (mix-up defence).
//! - [`Client::login_loopback`] signs a person in with the authorization code flow, PKCE S256
//!   and a loopback redirect to `http://127.0.0.1:{random port}/callback` (RFC 8252 §7.3);
//!   [`Client::pasted_code_request`] and [`Client::finish`] do the same with a code the person
//!   copies from `{issuer}/oob` into the terminal; [`Client::login_device`] with the device
//!   authorization grant (RFC 8628), for a terminal with no browser at hand.
//! - [`Client::refresh`], [`Client::userinfo`], [`Client::revoke`], [`Client::client_credentials`].
//! - [`Cache`] keeps profiles on disk and credentials in the OS keyring when one answers, else
//!   on disk (0600, atomic writes), with a lock held across refreshes; [`Session`] hands out
//!   requests with an access token it keeps fresh.
//! - [`AdminClient`] sends requests to Sesame's admin API.
//!
//! The client must be registered as public with the redirect URIs `http://127.0.0.1/callback`
//! (any port) and `{issuer}/oob`, and the grants `authorization_code` and `refresh_token`.
//!
//! ```no_run
//! # async fn run() -> Result<(), sesame_client::Error> {
//! use sesame_client::{Cache, Client, Credentials, Session};
//! let client = Client::discover("https://id.example.com/t/acme", "my-cli").await?;
//! let scopes = vec!["openid".to_string(), "offline_access".to_string()];
//! let tokens = client
//!     .login_loopback(&scopes, std::time::Duration::from_secs(300), |url| println!("Open {url}"))
//!     .await?;
//! let cache = Cache::from_env()?;
//! cache.store_credentials("default", Credentials {
//!     issuer: client.issuer().to_owned(),
//!     client_id: client.client_id().to_owned(),
//!     tokens,
//! })?;
//! let me = Session::new(cache, "default")?.userinfo().await?;
//! println!("{me}");
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

pub mod admin;
mod cache;
mod client;
mod device;
mod error;
mod keyring;
mod login;
mod session;
mod tokens;

pub use admin::AdminClient;
pub use cache::{
    check_profile_name, Cache, CredentialStore, Credentials, Lock, Profile, DEFAULT_PROFILE, DEFAULT_SCOPES,
};
pub use client::{discover, http_client, Client, Metadata};
pub use device::DeviceAuthorization;
pub use error::{Error, Result};
pub use login::{AuthorizationRequest, Loopback, LOOPBACK_PATH};
/// The HTTP library of this crate's API ([`Session::request`] returns its request builder).
pub use reqwest;
pub use session::Session;
pub use tokens::{now, TokenSet};
