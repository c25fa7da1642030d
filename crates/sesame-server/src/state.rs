//! Shared state: the store, the master key, and the per-tenant cache that makes the hot paths
//! (token, JWKS, discovery, introspection) free of store reads except revocation checks.
//!
//! Consistency across replicas: every change to tenants, clients or keys advances the store's
//! generation; each replica polls it every `cache_refresh_ms` and drops its cache when it
//! moves. A loader that read the store before a change never installs its (stale) result.

use crate::metrics::Metrics;
use crate::password_checks::PasswordChecks;
use axum::body::Bytes;
use axum::http::HeaderValue;
use sesame_core::crypto::MasterKey;
use sesame_core::ids::{ClientId, TenantId};
use sesame_core::keys::Keyring;
use sesame_core::model::{Client, StoredKey, Tenant};
use sesame_core::store::Store;
use sesame_core::token::{self, ValidAccessToken};
use sesame_core::{discovery, Error, Result};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

pub struct App {
    pub store: Arc<dyn Store>,
    /// Where a trusted reverse proxy puts the client address (`client_address_header`).
    pub client_address_header: Option<axum::http::HeaderName>,
    /// The peers whose `client_address_header` is believed (`trusted_proxies`).
    pub trusted_proxies: Vec<crate::browser::AddressRange>,
    /// SHA-256 of the bearer token `/metrics` requires, if one is configured.
    pub metrics_token: Option<[u8; 32]>,
    /// For calls to clients (back-channel logout).
    pub http: reqwest::Client,
    pub master: Arc<MasterKey>,
    pub public_url: String,
    pub metrics: Arc<Metrics>,
    /// The bound on concurrent password checks (`password_check_concurrency`).
    pub password_checks: PasswordChecks,
    /// How long a device code waits for approval (config `device_code_ttl`).
    pub device_code_ttl: i64,
    /// Outside issuers' and `private_key_jwt` clients' keys, fetched and cached.
    pub outside_keys: crate::outside_keys::OutsideKeys,
    /// Brokered SSO: the HTTP client towards IdPs and their cached discovery and JWKS.
    pub upstreams: crate::upstream::Upstreams,
    cache: RwLock<Cache>,
    // Admin roles and the audit log (access) ----------------------------------------------------
    /// The audit log's queue (see `audit`).
    pub audit: crate::audit::Auditor,
    /// Audit events older than this many days are swept (`audit_retention_days`).
    pub audit_retention_days: u32,
    /// Whether every issued token is an audit event (`audit_token_issued`, default false).
    pub audit_token_issued: bool,
    /// Authorization: each tenant's graph, used only at the store's current `authz_version`.
    pub authz: sesame_core::authz::AuthzCache,
}

pub type AppState = Arc<App>;

#[derive(Default)]
struct Cache {
    generation: i64,
    tenants: HashMap<TenantId, Arc<TenantState>>,
}

/// A document served as prepared bytes with a strong ETag.
pub struct Published {
    pub body: Bytes,
    pub etag: HeaderValue,
}

impl Published {
    fn json(value: &serde_json::Value) -> Published {
        Self::bytes(serde_json::to_vec(value).expect("value serializes"))
    }

    fn bytes(body: Vec<u8>) -> Published {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &body);
        let etag = format!("\"{}\"", hex::encode(&digest.as_ref()[..16]));
        Published {
            body: Bytes::from(body),
            etag: HeaderValue::from_str(&etag).expect("hex is a valid header"),
        }
    }
}

/// One tenant as the hot paths need it, built once per generation.
pub struct TenantState {
    pub tenant: Tenant,
    pub issuer: String,
    /// `/t/{tenant}`: the path the tenant's cookies are scoped to.
    cookie_path: String,
    pub keyring: Keyring,
    pub openid_configuration: Published,
    pub oauth_metadata: Published,
    pub jwks: Published,
    /// The tenant's trust policies for outside issuers (token exchange).
    pub trust_policies: Vec<sesame_core::trust::TrustPolicy>,
    /// `None`: a client that signed tokens once and no longer exists (see `token_client`).
    clients: RwLock<HashMap<ClientId, Option<Arc<Client>>>>,
    verified: RwLock<HashMap<[u8; 32], Arc<ValidAccessToken>>>,
}

/// How many verified access tokens a tenant remembers. Introspection of a token seen before
/// skips its signature check (37 µs for Ed25519 here); at a few hundred bytes each this bounds
/// the memory to about 2 MB a tenant.
const VERIFIED_TOKENS: usize = 4096;

impl TenantState {
    pub fn cookie_path(&self) -> &str {
        &self.cookie_path
    }

    /// [`token::validate_access_token`] through a cache of tokens whose signature was verified,
    /// keyed by the token's SHA-256. Only the signature and claim checks are skipped on a hit:
    /// the validity window is checked again, and everything the caller does with the answer
    /// (revocation, which is read from the store, the client and audience) still happens on
    /// every request. The cache lives and dies with this tenant state, so a key change, which
    /// moves the store's generation, empties it.
    pub fn validate_access_token(&self, presented: &str, now: i64) -> Option<Arc<ValidAccessToken>> {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, presented.as_bytes());
        let key: [u8; 32] = digest.as_ref().try_into().expect("SHA-256 is 32 bytes");
        let hit = self.verified.read().expect("lock").get(&key).cloned();
        if let Some(valid) = hit {
            let nbf = valid.claims.get("nbf").and_then(|v| v.as_i64()).unwrap_or(0);
            return (now < valid.exp() && now >= nbf).then_some(valid);
        }
        let valid = Arc::new(token::validate_access_token(
            &self.issuer,
            &self.keyring,
            presented,
            now,
        )?);
        let mut cache = self.verified.write().expect("lock");
        if cache.len() >= VERIFIED_TOKENS {
            cache.retain(|_, v| v.exp() > now);
            if cache.len() >= VERIFIED_TOKENS {
                cache.clear();
            }
        }
        cache.insert(key, valid.clone());
        Some(valid)
    }

    /// A client of this tenant, read through the cache.
    pub async fn client(&self, store: &dyn Store, id: &ClientId) -> Result<Option<Arc<Client>>> {
        self.cached_client(store, id, false).await
    }

    /// The client a verified access token names (`client_id`), read through the cache. Its
    /// absence is cached too, so that the tokens of a deleted client cost no store read on
    /// the hot paths; only ids from signed tokens are remembered that way, never the ids an
    /// unauthenticated caller makes up.
    pub async fn token_client(&self, store: &dyn Store, id: &str) -> Result<Option<Arc<Client>>> {
        // By `&str` first: the hot path builds no `ClientId`.
        if let Some(c) = self.clients.read().expect("lock").get(id) {
            return Ok(c.clone());
        }
        match ClientId::parse(id) {
            Ok(id) => self.cached_client(store, &id, true).await,
            Err(_) => Ok(None),
        }
    }

    async fn cached_client(
        &self,
        store: &dyn Store,
        id: &ClientId,
        remember_absent: bool,
    ) -> Result<Option<Arc<Client>>> {
        if let Some(c) = self.clients.read().expect("lock").get(id) {
            return Ok(c.clone());
        }
        let client = store.get_client(&self.tenant.id, id).await?.map(Arc::new);
        if client.is_some() || remember_absent {
            self.clients
                .write()
                .expect("lock")
                .insert(id.clone(), client.clone());
        }
        Ok(client)
    }
}

impl App {
    pub fn new(store: Arc<dyn Store>, master: MasterKey, public_url: String, metrics: Arc<Metrics>) -> App {
        let metrics_audit_dropped = metrics.audit_dropped.clone();
        App {
            store,
            client_address_header: None,
            trusted_proxies: Vec::new(),
            metrics_token: None,
            http: crate::backchannel::http_client(),
            master: Arc::new(master),
            public_url,
            password_checks: PasswordChecks::new(None, metrics.password_checks.clone()),
            device_code_ttl: sesame_core::device::DEVICE_CODE_TTL,
            outside_keys: Default::default(),
            metrics,
            upstreams: crate::upstream::Upstreams::default(),
            cache: RwLock::default(),
            audit: crate::audit::Auditor::new(metrics_audit_dropped),
            audit_retention_days: sesame_core::audit::DEFAULT_RETENTION_DAYS,
            audit_token_issued: false,
            authz: Default::default(),
        }
    }

    pub fn issuer(&self, tenant: &TenantId) -> String {
        format!("{}/t/{}", self.public_url, tenant)
    }

    /// A new tenant's keys, generated off the async workers: RSA takes tens of milliseconds.
    pub async fn generate_initial_keys(&self, tenant: &TenantId, now: i64) -> Result<Vec<StoredKey>> {
        let (master, tenant) = (self.master.clone(), tenant.clone());
        tokio::task::spawn_blocking(move || sesame_core::admin::initial_keys(&master, &tenant, now))
            .await
            .map_err(|e| Error::Internal(format!("key generation task: {e}")))?
    }

    /// A tenant that exists and is enabled. Unknown, malformed and disabled names all answer
    /// the same `not_found`.
    pub async fn tenant(&self, name: &str) -> Result<Arc<TenantState>> {
        let not_found = || Error::NotFound(format!("tenant '{}' does not exist", name.escape_debug()));
        // A cached tenant's name is valid, so the hit needs no parsing (and no allocation).
        let cached = self.cache.read().expect("lock").tenants.get(name).cloned();
        if let Some(state) = cached.filter(|s| !s.tenant.disabled) {
            return Ok(state);
        }
        let id = TenantId::parse(name).map_err(|_| not_found())?;
        let state = self.tenant_state(&id).await?.ok_or_else(not_found)?;
        if state.tenant.disabled {
            return Err(not_found());
        }
        Ok(state)
    }

    async fn tenant_state(&self, id: &TenantId) -> Result<Option<Arc<TenantState>>> {
        let generation = {
            let cache = self.cache.read().expect("lock");
            if let Some(t) = cache.tenants.get(id) {
                return Ok(Some(t.clone()));
            }
            cache.generation
        };
        let Some(tenant) = self.store.get_tenant(id).await? else {
            return Ok(None);
        };
        let keys = self.store.list_keys(id).await?;
        let trust_policies = self.store.list_trust_policies(id).await?;
        let keyring = Keyring::load(&self.master, &keys, sesame_core::now())?;
        let issuer = self.issuer(id);
        let state = Arc::new(TenantState {
            openid_configuration: Published::json(&discovery::openid_configuration(&issuer)),
            oauth_metadata: Published::json(&discovery::authorization_server_metadata(&issuer)),
            jwks: Published::bytes(keyring.jwks().to_vec()),
            keyring,
            trust_policies,
            issuer,
            cookie_path: format!("/t/{id}"),
            tenant,
            clients: RwLock::default(),
            verified: RwLock::default(),
        });
        let mut cache = self.cache.write().expect("lock");
        if cache.generation == generation {
            cache.tenants.insert(id.clone(), state.clone());
        }
        Ok(Some(state))
    }

    /// Drops every cached tenant if the store's generation moved (or always, after a local
    /// change, so that the next request here sees it at once).
    pub async fn refresh_cache(&self) -> Result<()> {
        let generation = self.store.generation().await?;
        let mut cache = self.cache.write().expect("lock");
        if cache.generation != generation {
            cache.generation = generation;
            cache.tenants.clear();
        }
        Ok(())
    }
}
