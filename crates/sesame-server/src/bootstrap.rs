//! Start-up: the master key, the declared tenants and clients, the first tenant and admin token.

use crate::config::{Config, TenantConfig};
use crate::state::AppState;
use sesame_core::admin;
use sesame_core::crypto::MasterKey;
use sesame_core::ids::TenantId;
use sesame_core::model::Tenant;
use sesame_core::secret::Secret;
use sesame_core::store::Store;
use std::io::Write;
use std::path::{Path, PathBuf};

pub const MASTER_KEY_CHECK: &str = "master_key_check";
pub const DEFAULT_TENANT: &str = "default";

/// Finds the master key and proves it is the one the store was initialised with. In `--dev`
/// a missing key file is generated, but only for a store that has never had a key: a lost or
/// wrong key refuses to start and never replaces the keys in the store.
/// Also says whether the key was generated now (`--dev`, first start), for the banner.
pub async fn master_key(config: &Config, dev: bool, store: &dyn Store) -> Result<(MasterKey, bool), String> {
    let check = store
        .get_setting(MASTER_KEY_CHECK)
        .await
        .map_err(|e| e.to_string())?;
    let default_file = config.data_dir.join("master.key");
    let mut generated = false;
    let key = if let Some(text) = &config.master_key {
        MasterKey::from_base64(text).map_err(|e| format!("config: master_key: {e}"))?
    } else if let Some(path) = config.master_key_file.as_ref().or(dev.then_some(&default_file)) {
        if path.exists() {
            read_key_file(path)?
        } else if !dev {
            return Err(format!("master_key_file {} does not exist", path.display()));
        } else if check.is_some() {
            return Err(format!(
                "the store was initialised with a master key, and {} does not exist; \
                 restore that file (or set SESAME_MASTER_KEY); refusing to start",
                path.display()
            ));
        } else {
            generated = true;
            generate_key_file(path)?
        }
    } else {
        return Err(
            "no master key: set master_key_file or SESAME_MASTER_KEY to 32 random bytes in base64 \
                    (for example from `openssl rand -base64 32`), or run with --dev"
                .into(),
        );
    };
    match check {
        Some(value) if key.matches_check_value(&value) => Ok((key, generated)),
        Some(_) => Err(
            "the master key does not match the one this store was initialised with; \
                        refusing to start (nothing was changed)"
                .into(),
        ),
        None => {
            // Two replicas may start on an empty store at once: the first check value wins,
            // and a replica with another key then refuses like any wrong key.
            store
                .insert_setting_if_absent(MASTER_KEY_CHECK, &key.check_value())
                .await
                .map_err(|e| e.to_string())?;
            let stored = store
                .get_setting(MASTER_KEY_CHECK)
                .await
                .map_err(|e| e.to_string())?;
            match stored {
                Some(v) if key.matches_check_value(&v) => Ok((key, generated)),
                _ => Err("another sesamed initialised this store with a different master key".into()),
            }
        }
    }
}

fn read_key_file(path: &Path) -> Result<MasterKey, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read master key {}: {e}", path.display()))?;
    MasterKey::from_base64(&text).map_err(|e| format!("master key file {}: {e}", path.display()))
}

fn generate_key_file(path: &Path) -> Result<MasterKey, String> {
    let (key, text) = MasterKey::generate();
    write_secret_file(path, &text).map_err(|e| format!("cannot write master key {}: {e}", path.display()))?;
    tracing::info!(path = %path.display(), "generated a master key");
    Ok(key)
}

/// Creates a directory (and any missing parents) that only its owner can enter (0700,
/// whatever the umask); an existing one is left as it is.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Warns when an existing data directory lets others in. It is not tightened: the operator
/// made it (perhaps shared with a backup group on purpose), and the files in it that matter
/// (the store, the master key, the admin token) are owner-only whatever the directory's mode.
pub fn warn_if_shared(dir: &Path) {
    #[cfg(unix)]
    if let Ok(meta) = std::fs::metadata(dir) {
        let mode = std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(
                data_dir = %dir.display(),
                mode = format!("{mode:o}"),
                "the data directory is open to other users; `chmod 700` it unless that is intended"
            );
        }
    }
}

/// Creates a file readable by its owner only; never overwrites one.
pub fn write_secret_file(path: &Path, text: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        private_dir(dir)?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(path)?;
    f.write_all(text.as_bytes())?;
    f.write_all(b"\n")?;
    f.sync_all()
}

/// Applies the declared tenants with the plan `sesame apply` uses (see [`crate::declared`]).
/// Running it again with the same file changes nothing; a changed file updates what it declares
/// and leaves everything else alone.
pub async fn apply_declared(app: &AppState, tenants: &[TenantConfig]) -> Result<(), String> {
    crate::declared::apply(app, tenants).await
}

/// Creates a tenant with fresh keys unless another replica just did.
pub async fn ensure_tenant(app: &AppState, tenant: &Tenant) -> sesame_core::Result<()> {
    let keys = app.generate_initial_keys(&tenant.id, tenant.created_at).await?;
    match admin::create_tenant(&*app.store, tenant, &keys).await {
        Ok(()) | Err(sesame_core::Error::Conflict(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Tenant `default` on a first start: always in `--dev`, otherwise only when nothing declares
/// or holds a tenant.
pub async fn default_tenant(app: &AppState, dev: bool, declared: usize) -> Result<(), String> {
    let store = &*app.store;
    let id = TenantId::parse(DEFAULT_TENANT).expect("valid name");
    let empty = store.list_tenants().await.map_err(|e| e.to_string())?.is_empty();
    if (dev || (empty && declared == 0)) && store.get_tenant(&id).await.map_err(|e| e.to_string())?.is_none()
    {
        ensure_tenant(app, &Tenant::new(id, sesame_core::now()))
            .await
            .map_err(|e| e.to_string())?;
        app.refresh_cache().await.map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// What start-up did about the admin credential, for the banner.
pub enum AdminToken {
    /// Created now; shown this once (and, in `--dev`, written to this file).
    Created(Secret, Option<PathBuf>),
    /// One exists already; in `--dev` it is in this file.
    Exists(Option<PathBuf>),
}

pub async fn admin_token(store: &dyn Store, config: &Config, dev: bool) -> Result<AdminToken, String> {
    // One file per store, so that another store's `--dev` start never touches this one's;
    // absolute, so that the banner's `export SESAME_ADMIN_TOKEN_FILE=…` works from anywhere.
    let file = dev.then(|| {
        let f = crate::admin_tokens::dev_token_file(config);
        std::path::absolute(&f).unwrap_or(f)
    });
    if store.count_admin_tokens().await.map_err(|e| e.to_string())? > 0 {
        return Ok(AdminToken::Exists(file.filter(|f| f.exists())));
    }
    let token = Secret::generate();
    store
        .insert_admin_token("bootstrap", &token.hash(), sesame_core::now())
        .await
        .map_err(|e| e.to_string())?;
    if let Some(f) = &file {
        // A stale file from an earlier store would hold a token that no longer works.
        let _ = std::fs::remove_file(f);
        write_secret_file(f, token.expose()).map_err(|e| format!("cannot write {}: {e}", f.display()))?;
    }
    Ok(AdminToken::Created(token, file))
}
