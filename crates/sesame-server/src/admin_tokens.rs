//! `sesamed admin-token create | list | revoke`: operators' credentials managed against the
//! store directly (not through the API), so that a lost or leaked token can be replaced by
//! whoever holds the store URL and the master key. Tokens are printed once and stored as their
//! SHA-256 only.

use crate::config::Config;
use sesame_core::access::{self, AdminTokenInfo, Permission};
use sesame_core::ids::TenantId;
use sesame_core::secret::{hash_secret, Secret};
use sesame_core::store::Store;
use std::path::PathBuf;
use std::sync::Arc;

/// What `create` is asked for.
#[derive(Clone, Debug, Default)]
pub struct NewToken {
    pub name: String,
    /// `30d`, `12h`, …
    pub expires_in: Option<String>,
    pub tenant: Option<String>,
    pub permissions: Vec<String>,
}

/// Opens the store the configuration names and checks the master key against it, as `serve`
/// does (a `--dev` data directory's `master.key` is used when nothing else names one). Never
/// creates a store or a key.
pub async fn open_store(config: &Config) -> Result<Arc<dyn Store>, String> {
    let url = config.store_url();
    if let sesame_store::StoreUrl::Sqlite(_) = url {
        if config.store.is_none() && !config.data_dir.join("sesame.db").exists() {
            return Err(format!(
                "no store in {}: give --data-dir or --store (the same as for `sesamed serve`)",
                config.data_dir.display()
            ));
        }
    }
    let store = sesame_store::SqlStore::connect(&url)
        .await
        .map_err(|e| e.to_string())?;
    let store: Arc<dyn Store> = Arc::new(store);
    let mut config = config.clone();
    let dev_key = config.data_dir.join("master.key");
    if config.master_key.is_none() && config.master_key_file.is_none() && dev_key.exists() {
        config.master_key_file = Some(dev_key);
    }
    crate::bootstrap::master_key(&config, false, &*store).await?;
    Ok(store)
}

/// Creates a token and returns it (the one time it is shown).
pub async fn create(store: &dyn Store, new: NewToken, now: i64) -> Result<(Secret, AdminTokenInfo), String> {
    let tenant = match &new.tenant {
        Some(t) => {
            let id = TenantId::parse(t).map_err(|e| format!("--tenant: {e}"))?;
            if store.get_tenant(&id).await.map_err(|e| e.to_string())?.is_none() {
                return Err(format!("tenant '{id}' does not exist"));
            }
            Some(id)
        }
        None => None,
    };
    let permissions = new
        .permissions
        .iter()
        .map(|p| Permission::parse(p).map_err(|e| format!("--permission: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    let expires_at = match &new.expires_in {
        Some(d) => Some(now + access::parse_duration(d).map_err(|e| format!("--expires-in: {e}"))?),
        None => None,
    };
    let info = AdminTokenInfo {
        name: new.name,
        tenant,
        permissions,
        created_at: now,
        expires_at,
    };
    access::check_admin_token(&info, now).map_err(|e| e.to_string())?;
    let token = Secret::generate();
    match store.create_admin_token(&info, &token.hash()).await {
        Ok(()) => Ok((token, info)),
        Err(sesame_core::Error::Conflict(_)) => Err(format!(
            "an admin token named '{}' exists: revoke it first or pick another name",
            info.name
        )),
        Err(e) => Err(e.to_string()),
    }
}

/// Every token's name, scope and times; never a token or its hash.
pub async fn list(store: &dyn Store) -> Result<Vec<AdminTokenInfo>, String> {
    store.list_admin_tokens().await.map_err(|e| e.to_string())
}

pub async fn revoke(store: &dyn Store, name: &str) -> Result<(), String> {
    match store.delete_admin_token(name).await.map_err(|e| e.to_string())? {
        true => Ok(()),
        false => Err(format!("there is no admin token named '{name}'")),
    }
}

/// The lines `list` prints.
pub fn render_list(tokens: &[AdminTokenInfo], now: i64) -> String {
    let mut out = String::from("NAME\tTENANT\tPERMISSIONS\tCREATED\tEXPIRES\n");
    for t in tokens {
        let perms: Vec<_> = t.permissions.iter().map(|p| p.as_str()).collect();
        out.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\n",
            t.name,
            t.tenant.as_ref().map_or("(all)", |t| t.as_str()),
            if perms.is_empty() {
                "(all)".to_owned()
            } else {
                perms.join(",")
            },
            t.created_at,
            match t.expires_at {
                None => "never".to_owned(),
                Some(e) if e <= now => format!("{e} (expired)"),
                Some(e) => e.to_string(),
            }
        ));
    }
    out
}

/// Where `--dev` keeps the bootstrap admin token: `admin-token` in the data directory for the
/// data directory's own SQLite store, else `admin-token-<hash of the store URL>` (password
/// left out), so that starting against another store never replaces this store's file.
pub fn dev_token_file(config: &Config) -> PathBuf {
    let url = config.store_url();
    let own = sesame_store::StoreUrl::sqlite_file(&config.data_dir.join("sesame.db"));
    if url.as_str() == own.as_str() {
        return config.data_dir.join("admin-token");
    }
    let digest = hash_secret(sesame_store::redact(url.as_str()).as_bytes());
    config
        .data_dir
        .join(format!("admin-token-{}", hex::encode(&digest[..6])))
}
