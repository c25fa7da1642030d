//! The OS keyring behind the [`Cache`](crate::Cache): macOS Keychain, Windows Credential
//! Manager, or the Secret Service over the D-Bus session bus (GNOME Keyring, KWallet) on Linux
//! and the BSDs, through the `keyring` crate.
//!
//! One entry per profile and cache directory holds that profile's [`Credentials`] as JSON, so
//! that two cache directories (`SESAME_CONFIG_DIR`) never share a sign-in. Every call blocks the
//! calling thread for one round trip to the keyring.

use crate::cache::Credentials;
use std::path::Path;

/// The service name of every entry (what a keyring manager such as Seahorse shows).
pub(crate) const SERVICE: &str = "sesame";

/// Why the keyring could not be used, as the `keyring` crate said it.
#[derive(Debug)]
pub(crate) struct Unavailable(pub(crate) String);

/// The entry's user name: the profile and the cache directory it belongs to.
#[cfg_attr(not(feature = "keyring"), allow(dead_code))]
fn account(dir: &Path, profile: &str) -> String {
    format!("{profile}@{}", dir.display())
}

#[cfg(feature = "keyring")]
mod os {
    use super::{account, Unavailable, SERVICE};
    use std::path::Path;

    fn entry(dir: &Path, profile: &str) -> Result<::keyring::Entry, Unavailable> {
        ::keyring::Entry::new(SERVICE, &account(dir, profile)).map_err(|e| Unavailable(e.to_string()))
    }

    pub(crate) fn get(dir: &Path, profile: &str) -> Result<Option<String>, Unavailable> {
        match entry(dir, profile)?.get_password() {
            Ok(secret) => Ok(Some(secret)),
            Err(::keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(Unavailable(e.to_string())),
        }
    }

    pub(crate) fn set(dir: &Path, profile: &str, secret: &str) -> Result<(), Unavailable> {
        entry(dir, profile)?
            .set_password(secret)
            .map_err(|e| Unavailable(e.to_string()))
    }

    pub(crate) fn delete(dir: &Path, profile: &str) -> Result<bool, Unavailable> {
        match entry(dir, profile)?.delete_credential() {
            Ok(()) => Ok(true),
            Err(::keyring::Error::NoEntry) => Ok(false),
            Err(e) => Err(Unavailable(e.to_string())),
        }
    }
}

#[cfg(not(feature = "keyring"))]
mod os {
    use super::Unavailable;
    use std::path::Path;

    fn off() -> Unavailable {
        Unavailable("sesame-client was built without its `keyring` feature".into())
    }

    pub(crate) fn get(_: &Path, _: &str) -> Result<Option<String>, Unavailable> {
        Err(off())
    }

    pub(crate) fn set(_: &Path, _: &str, _: &str) -> Result<(), Unavailable> {
        Err(off())
    }

    pub(crate) fn delete(_: &Path, _: &str) -> Result<bool, Unavailable> {
        Err(off())
    }
}

/// Whether a keyring answers: a read of an entry nobody writes. "No such entry" is an answer;
/// no session bus, no Secret Service on it, or a keyring that refuses access is not.
pub(crate) fn probe(dir: &Path) -> Result<(), Unavailable> {
    os::get(dir, ".probe").map(|_| ())
}

/// The credentials of `profile` kept in the keyring, if any. An entry that is not ours (not
/// JSON of [`Credentials`]) is reported, not overwritten silently.
pub(crate) fn read(dir: &Path, profile: &str) -> Result<Option<Credentials>, Unavailable> {
    match os::get(dir, profile)? {
        None => Ok(None),
        Some(text) => serde_json::from_str(&text).map(Some).map_err(|e| {
            Unavailable(format!(
                "the keyring entry {:?} of service {SERVICE:?} cannot be read ({e}); sign in again \
                 with `sesame login`",
                account(dir, profile)
            ))
        }),
    }
}

/// Replaces the keyring entry of `profile` (one write: the keyring itself makes it atomic).
pub(crate) fn write(dir: &Path, profile: &str, credentials: &Credentials) -> Result<(), Unavailable> {
    let text = serde_json::to_string(credentials).map_err(|e| Unavailable(e.to_string()))?;
    os::set(dir, profile, &text)
}

/// Deletes the keyring entry of `profile`; whether there was one.
pub(crate) fn remove(dir: &Path, profile: &str) -> Result<bool, Unavailable> {
    os::delete(dir, profile)
}
