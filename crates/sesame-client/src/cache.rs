//! The credential cache: profiles in `config.toml`, tokens in `credentials.json` (mode 0600),
//! under `$SESAME_CONFIG_DIR`, else `$XDG_CONFIG_HOME/sesame`, else `~/.config/sesame`.
//!
//! Every write goes to a temporary file in the same directory, is synced, and is renamed over
//! the old file, so a crash leaves either the old or the new file, never half of one. Readers
//! look only at the final names. `credentials.lock` is held (`flock`) across every
//! read-modify-write, and across a refresh, so that concurrent processes refresh once.
//!
//! Credentials go to the OS keyring instead of `credentials.json` when one answers (see
//! [`CredentialStore`]); profiles, which hold no secret, stay in `config.toml`, and the lock
//! stays a file, so the refresh-once rule holds whichever store keeps the tokens.

use crate::client::Client;
use crate::error::{Error, Result};
use crate::tokens::TokenSet;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The profile used when none is named.
pub const DEFAULT_PROFILE: &str = "default";
/// The scopes asked for when a profile names none: an ID token, the person's name and email,
/// and a refresh token.
pub const DEFAULT_SCOPES: &[&str] = &["openid", "profile", "email", "offline_access"];

const CONFIG: &str = "config.toml";
const CREDENTIALS: &str = "credentials.json";
const LOCK: &str = "credentials.lock";

/// Where a profile signs in: issuer, client and scopes. Kept in `config.toml`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Profile {
    /// The issuer URL, exactly as its discovery document names it.
    pub issuer: String,
    /// The (public) client the terminal signs in as.
    pub client_id: String,
    /// The scopes asked for.
    pub scopes: Vec<String>,
}

/// The tokens of one profile, with the issuer and client they belong to.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Credentials {
    /// The issuer that issued them.
    pub issuer: String,
    /// The client they were issued to.
    pub client_id: String,
    /// The tokens.
    #[serde(flatten)]
    pub tokens: TokenSet,
}

#[derive(Default, Serialize, Deserialize)]
struct ConfigFile {
    #[serde(default)]
    profiles: BTreeMap<String, Profile>,
}

#[derive(Default, Serialize, Deserialize)]
struct CredentialsFile {
    #[serde(default)]
    profiles: BTreeMap<String, Credentials>,
}

/// Where credentials are kept. Profiles are always in `config.toml`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CredentialStore {
    /// The OS keyring when one answers, else the file (the default of [`Cache::from_env`]).
    Auto,
    /// The OS keyring only: a keyring that does not answer is an error.
    Keyring,
    /// `credentials.json` (mode 0600) only.
    File,
}

impl std::str::FromStr for CredentialStore {
    type Err = Error;

    fn from_str(s: &str) -> Result<CredentialStore> {
        match s {
            "auto" => Ok(CredentialStore::Auto),
            "keyring" => Ok(CredentialStore::Keyring),
            "file" => Ok(CredentialStore::File),
            other => Err(Error::Invalid(format!(
                "credential store {:?}: use keyring, file or auto",
                crate::error::clean(other)
            ))),
        }
    }
}

/// The store an `Auto` cache settled on, decided once per process (on first use).
#[derive(Clone, Debug)]
enum Resolved {
    Keyring,
    /// The file; with the reason when the keyring was wanted but did not answer.
    File(Option<String>),
}

/// The cache directory, and where its credentials are kept.
#[derive(Clone, Debug)]
pub struct Cache {
    dir: PathBuf,
    store: CredentialStore,
    resolved: std::sync::Arc<std::sync::Mutex<Option<Resolved>>>,
}

/// An exclusive hold on the cache; released when dropped.
#[derive(Debug)]
pub struct Lock {
    _file: File,
}

/// Checks a profile name: it becomes a TOML key and appears in commands people copy.
pub fn check_profile_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "profile name {:?}: use 1-64 of a-z, A-Z, 0-9, '-', '_', '.'",
            crate::error::clean(name)
        )))
    }
}

impl Cache {
    /// The directory from the environment: `$SESAME_CONFIG_DIR`, `$XDG_CONFIG_HOME/sesame`,
    /// or `$HOME/.config/sesame`; the credential store from `$SESAME_CREDENTIAL_STORE`
    /// (`keyring`, `file` or `auto`, the default).
    pub fn from_env() -> Result<Cache> {
        let store = match std::env::var("SESAME_CREDENTIAL_STORE") {
            Ok(v) if !v.is_empty() => v
                .parse()
                .map_err(|e: Error| Error::Invalid(format!("SESAME_CREDENTIAL_STORE: {e}")))?,
            _ => CredentialStore::Auto,
        };
        Ok(Cache::dir_from_env()?.with_store(store))
    }

    fn dir_from_env() -> Result<Cache> {
        let non_empty = |v: &str| std::env::var_os(v).filter(|s| !s.is_empty()).map(PathBuf::from);
        let dir = non_empty("SESAME_CONFIG_DIR")
            .or_else(|| non_empty("XDG_CONFIG_HOME").map(|d| d.join("sesame")))
            .or_else(|| non_empty("HOME").map(|h| h.join(".config").join("sesame")))
            .ok_or_else(|| {
                Error::Invalid("no place for the credential cache: set SESAME_CONFIG_DIR or HOME".into())
            })?;
        Ok(Cache::at(dir))
    }

    /// A cache in `dir` (created 0700 on the first write) that keeps credentials in the file;
    /// see [`Cache::with_store`].
    pub fn at(dir: impl Into<PathBuf>) -> Cache {
        Cache {
            dir: dir.into(),
            store: CredentialStore::File,
            resolved: Default::default(),
        }
    }

    /// The same cache with credentials kept in `store`.
    pub fn with_store(self, store: CredentialStore) -> Cache {
        Cache {
            dir: self.dir,
            store,
            resolved: Default::default(),
        }
    }

    /// The store asked for.
    pub fn store(&self) -> CredentialStore {
        self.store
    }

    /// Whether credentials are kept in the OS keyring. For [`CredentialStore::Auto`] the first
    /// call asks the keyring whether it answers (and a failed keyring write later switches the
    /// cache to the file).
    pub fn uses_keyring(&self) -> Result<bool> {
        Ok(matches!(self.resolved()?, Resolved::Keyring))
    }

    /// Why an `Auto` cache keeps credentials in the file, when it wanted the keyring and none
    /// answered (to tell the person once, e.g. after signing in).
    pub fn keyring_fallback(&self) -> Option<String> {
        match self.resolved.lock().ok()?.as_ref()? {
            Resolved::File(why) => why.clone(),
            Resolved::Keyring => None,
        }
    }

    fn resolved(&self) -> Result<Resolved> {
        let mut slot = self.resolved.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = slot.as_ref() {
            return Ok(r.clone());
        }
        let r = match self.store {
            CredentialStore::File => Resolved::File(None),
            CredentialStore::Keyring => Resolved::Keyring,
            CredentialStore::Auto => match crate::keyring::probe(&self.dir) {
                Ok(()) => Resolved::Keyring,
                Err(why) => Resolved::File(Some(why.0)),
            },
        };
        *slot = Some(r.clone());
        Ok(r)
    }

    /// After a failed keyring write an `Auto` cache uses the file from then on.
    fn fall_back(&self, why: String) {
        *self.resolved.lock().unwrap_or_else(|e| e.into_inner()) = Some(Resolved::File(Some(why)));
    }

    fn keyring_error(&self, why: crate::keyring::Unavailable) -> Error {
        Error::Keyring(why.0)
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The path of the credentials file.
    pub fn credentials_path(&self) -> PathBuf {
        self.dir.join(CREDENTIALS)
    }

    fn ensure_dir(&self) -> Result<()> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(|e| self.fail(&self.dir, e))
    }

    fn fail(&self, path: &Path, e: impl std::fmt::Display) -> Error {
        Error::Cache {
            path: path.to_owned(),
            problem: e.to_string(),
        }
    }

    /// Waits for the exclusive lock on the cache (blocking).
    pub fn lock(&self) -> Result<Lock> {
        self.ensure_dir()?;
        let path = self.dir.join(LOCK);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| self.fail(&path, e))?;
        rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| self.fail(&path, e))?;
        Ok(Lock { _file: file })
    }

    // ---- profiles

    fn read_config(&self) -> Result<ConfigFile> {
        let path = self.dir.join(CONFIG);
        match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text).map_err(|e| self.fail(&path, e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ConfigFile::default()),
            Err(e) => Err(self.fail(&path, e)),
        }
    }

    /// All profiles by name.
    pub fn profiles(&self) -> Result<BTreeMap<String, Profile>> {
        Ok(self.read_config()?.profiles)
    }

    /// One profile.
    pub fn profile(&self, name: &str) -> Result<Option<Profile>> {
        Ok(self.read_config()?.profiles.remove(name))
    }

    /// Saves (adds or replaces) a profile. Takes the lock.
    pub fn save_profile(&self, name: &str, profile: &Profile) -> Result<()> {
        check_profile_name(name)?;
        let _lock = self.lock()?;
        let mut config = self.read_config()?;
        config.profiles.insert(name.to_owned(), profile.clone());
        let text = toml::to_string(&config).map_err(|e| self.fail(&self.dir.join(CONFIG), e))?;
        self.write_atomic(CONFIG, text.as_bytes(), 0o644)
    }

    /// Removes a profile and its credentials; whether there was one. Takes the lock.
    pub fn remove_profile(&self, name: &str) -> Result<bool> {
        let _lock = self.lock()?;
        let mut config = self.read_config()?;
        let had_profile = config.profiles.remove(name).is_some();
        if had_profile {
            let text = toml::to_string(&config).map_err(|e| self.fail(&self.dir.join(CONFIG), e))?;
            self.write_atomic(CONFIG, text.as_bytes(), 0o644)?;
        }
        let had_credentials = self.remove_credentials_locked(name)?;
        Ok(had_profile || had_credentials)
    }

    // ---- credentials

    fn read_credentials_file(&self) -> Result<CredentialsFile> {
        let path = self.credentials_path();
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(CredentialsFile::default()),
            Err(e) => return Err(self.fail(&path, e)),
        };
        let mode = file
            .metadata()
            .map_err(|e| self.fail(&path, e))?
            .permissions()
            .mode()
            & 0o777;
        // Tokens are as good as a password: refused while anyone else may read them.
        if mode & 0o077 != 0 {
            return Err(Error::InsecureFile { path, mode });
        }
        serde_json::from_reader(std::io::BufReader::new(file)).map_err(|e| {
            self.fail(
                &path,
                format!("cannot be read ({e}); remove it and sign in again with `sesame login`"),
            )
        })
    }

    /// The cached credentials of a profile: from the keyring when it is used (and, for a
    /// profile it does not hold, from the file, where an earlier sign-in may have left them).
    /// Refused when the file is readable by others.
    pub fn credentials(&self, profile: &str) -> Result<Option<Credentials>> {
        if self.uses_keyring()? {
            match crate::keyring::read(&self.dir, profile) {
                Ok(Some(c)) => return Ok(Some(c)),
                Ok(None) => {}
                Err(why) => return Err(self.keyring_error(why)),
            }
        }
        Ok(self.read_credentials_file()?.profiles.remove(profile))
    }

    /// Stores the credentials of a profile. The caller holds the [`Lock`] (so that a
    /// read-modify-write of another process is not lost).
    pub fn store_credentials_locked(
        &self,
        _lock: &Lock,
        profile: &str,
        credentials: Credentials,
    ) -> Result<()> {
        check_profile_name(profile)?;
        if self.uses_keyring()? {
            match crate::keyring::write(&self.dir, profile, &credentials) {
                Ok(()) => {
                    // No second, older copy stays behind in the file.
                    if self.credentials_path().exists() {
                        self.remove_from_file(profile)?;
                    }
                    return Ok(());
                }
                Err(why) if self.store == CredentialStore::Auto => self.fall_back(why.0),
                Err(why) => return Err(self.keyring_error(why)),
            }
        }
        let mut file = self.read_credentials_file()?;
        file.profiles.insert(profile.to_owned(), credentials);
        self.write_credentials(&file)
    }

    /// Marks the cached access token of `profile` as expired, so that the next
    /// [`Cache::fresh_credentials`] refreshes it (git's `erase`: a server refused it). With
    /// `only_if`, only when the cached access token is that one (an older token being refused
    /// says nothing about the current one). Whether one was marked. Takes the lock.
    pub fn expire_access_token(&self, profile: &str, only_if: Option<&str>) -> Result<bool> {
        let lock = self.lock()?;
        let Some(mut credentials) = self.credentials(profile)? else {
            return Ok(false);
        };
        if only_if.is_some_and(|t| t != credentials.tokens.access_token) {
            return Ok(false);
        }
        credentials.tokens.expires_at = Some(0);
        self.store_credentials_locked(&lock, profile, credentials)?;
        Ok(true)
    }

    /// Stores the credentials of a profile, taking the lock.
    pub fn store_credentials(&self, profile: &str, credentials: Credentials) -> Result<()> {
        let lock = self.lock()?;
        self.store_credentials_locked(&lock, profile, credentials)
    }

    /// Deletes the credentials of a profile; whether there were any. Takes the lock.
    pub fn remove_credentials(&self, profile: &str) -> Result<bool> {
        let _lock = self.lock()?;
        self.remove_credentials_locked(profile)
    }

    fn remove_credentials_locked(&self, profile: &str) -> Result<bool> {
        let mut had = false;
        if self.uses_keyring()? {
            had = crate::keyring::remove(&self.dir, profile).map_err(|why| self.keyring_error(why))?;
        }
        Ok(self.remove_from_file(profile)? || had)
    }

    fn remove_from_file(&self, profile: &str) -> Result<bool> {
        // An unreadable file is reported, not rewritten: other profiles' tokens are in it too.
        let mut file = self.read_credentials_file()?;
        let had = file.profiles.remove(profile).is_some();
        if had {
            self.write_credentials(&file)?;
        }
        Ok(had)
    }

    fn write_credentials(&self, file: &CredentialsFile) -> Result<()> {
        let text = serde_json::to_vec_pretty(file).map_err(|e| self.fail(&self.credentials_path(), e))?;
        self.write_atomic(CREDENTIALS, &text, 0o600)
    }

    /// Temp file in the same directory (so the rename stays on one file system), created with
    /// its final mode, synced, renamed over `name`, and the directory synced so the rename
    /// itself survives a crash.
    fn write_atomic(&self, name: &str, bytes: &[u8], mode: u32) -> Result<()> {
        self.ensure_dir()?;
        let path = self.dir.join(name);
        let mut suffix = [0u8; 8];
        aws_lc_rs::rand::fill(&mut suffix).map_err(|_| self.fail(&path, "no randomness"))?;
        let tmp = self.dir.join(format!(
            ".{name}.{}.{}.tmp",
            std::process::id(),
            suffix.iter().map(|b| format!("{b:02x}")).collect::<String>()
        ));
        let written = (|| -> std::io::Result<()> {
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(mode)
                .open(&tmp)?;
            // The umask may have taken bits away from `mode`; never added any.
            f.set_permissions(std::fs::Permissions::from_mode(mode))?;
            f.write_all(bytes)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)?;
            File::open(&self.dir)?.sync_all()
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(self.fail(&path, e));
        }
        Ok(())
    }

    /// An access token of `profile` valid for at least `margin` seconds, refreshing it first if
    /// needed. The lock is held across the refresh and the cache read again after taking it,
    /// so that of several processes that find the token stale, one refreshes and the others
    /// use its result (Sesame rotates refresh tokens; a second use of the old one would only
    /// be saved by the grace window).
    pub async fn fresh_credentials(&self, profile: &str, margin: i64) -> Result<Credentials> {
        let not_signed_in = || Error::NotSignedIn {
            profile: profile.to_owned(),
        };
        let cached = self.credentials(profile)?.ok_or_else(not_signed_in)?;
        if cached.tokens.valid_for(margin) {
            return Ok(cached);
        }
        let cache = self.clone();
        let lock = tokio::task::spawn_blocking(move || cache.lock())
            .await
            .map_err(|e| Error::Invalid(format!("waiting for the cache lock failed: {e}")))??;
        let cached = self.credentials(profile)?.ok_or_else(not_signed_in)?;
        if cached.tokens.valid_for(margin) {
            return Ok(cached);
        }
        let ended = |why: &str| Error::SignInEnded {
            profile: profile.to_owned(),
            why: why.to_owned(),
        };
        let Some(refresh_token) = cached.tokens.refresh_token.clone() else {
            return Err(ended("the access token expired and there is no refresh token"));
        };
        let client = Client::discover(&cached.issuer, &cached.client_id).await?;
        let new = match client.refresh(&refresh_token).await {
            Ok(new) => new,
            Err(Error::InvalidGrant(d)) => {
                return Err(ended(&format!(
                    "the refresh token was refused{}",
                    d.map(|d| format!(": {}", crate::error::clean(&d)))
                        .unwrap_or_default()
                )))
            }
            Err(e) => return Err(e),
        };
        let refreshed = Credentials {
            tokens: cached.tokens.refreshed(new),
            ..cached
        };
        self.store_credentials_locked(&lock, profile, refreshed.clone())?;
        Ok(refreshed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(access: &str) -> TokenSet {
        TokenSet {
            access_token: access.into(),
            token_type: "Bearer".into(),
            expires_at: Some(crate::now() + 3600),
            refresh_token: Some("r".into()),
            scope: None,
            id_token: None,
        }
    }

    fn credentials(access: &str) -> Credentials {
        Credentials {
            issuer: "https://id.example/t/acme".into(),
            client_id: "cli".into(),
            tokens: tokens(access),
        }
    }

    #[test]
    fn credentials_are_written_whole_0600_in_a_private_directory() {
        let root = tempfile::tempdir().unwrap();
        let cache = Cache::at(root.path().join("sesame"));
        cache.store_credentials("default", credentials("a1")).unwrap();
        cache.store_credentials("work", credentials("w1")).unwrap();
        cache.store_credentials("default", credentials("a2")).unwrap();
        assert_eq!(
            cache.credentials("default").unwrap().unwrap().tokens.access_token,
            "a2"
        );
        assert_eq!(
            cache.credentials("work").unwrap().unwrap().tokens.access_token,
            "w1"
        );
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&cache.credentials_path()), 0o600);
        assert_eq!(mode(cache.dir()), 0o700);
        let names: Vec<String> = std::fs::read_dir(cache.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");
        assert!(cache.remove_credentials("work").unwrap());
        assert!(!cache.remove_credentials("work").unwrap());
        assert!(cache.credentials("work").unwrap().is_none());
    }

    #[test]
    fn a_file_others_may_read_is_refused_with_the_command_that_fixes_it() {
        let root = tempfile::tempdir().unwrap();
        let cache = Cache::at(root.path());
        cache.store_credentials("default", credentials("a")).unwrap();
        for bad in [0o640, 0o604, 0o666] {
            std::fs::set_permissions(cache.credentials_path(), std::fs::Permissions::from_mode(bad)).unwrap();
            let err = cache.credentials("default").unwrap_err().to_string();
            let fix = format!("chmod 600 '{}'", cache.credentials_path().display());
            assert!(err.contains(&fix), "{err}");
            // Nor is it rewritten, which would hide the problem.
            assert!(cache.store_credentials("other", credentials("b")).is_err());
        }
    }

    #[test]
    fn profiles_are_remembered_and_names_are_checked() {
        let root = tempfile::tempdir().unwrap();
        let cache = Cache::at(root.path());
        let p = Profile {
            issuer: "https://id.example/t/acme".into(),
            client_id: "cli".into(),
            scopes: vec!["openid".into()],
        };
        cache.save_profile("work", &p).unwrap();
        assert_eq!(cache.profile("work").unwrap(), Some(p));
        assert_eq!(cache.profiles().unwrap().len(), 1);
        assert!(cache.remove_profile("work").unwrap());
        assert!(!cache.remove_profile("work").unwrap());
        for bad in ["", "../x", "a b", "a]", &"x".repeat(65)] {
            assert!(check_profile_name(bad).is_err(), "{bad:?}");
        }
        for good in ["default", "work-2", "acme.prod", "A_b"] {
            assert!(check_profile_name(good).is_ok(), "{good:?}");
        }
    }
}
