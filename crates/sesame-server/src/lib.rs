//! The axum server: OAuth/OIDC routes, the admin API, metrics, and start-up.
//! `main.rs` is the `sesamed` command line around [`start`].

pub mod admin_tokens;
pub mod audit;
pub mod backchannel;
pub mod bootstrap;
pub mod browser;
pub mod config;
// The config file's tenants applied at start through the admin API, as `sesame apply` does.
pub mod declared;
pub mod error;
pub mod form;
mod jobs;
pub mod lock;
pub mod metrics;
pub mod oplog;
pub mod outside_keys;
pub mod pages;
pub mod password_checks;
pub mod routes;
pub mod state;
pub mod upstream;
// SAML 2.0 brokered SSO: IdP metadata fetched from a URL.
pub mod saml_metadata;

use crate::bootstrap::AdminToken;
use crate::config::Config;
use crate::state::{App, AppState};
use sesame_core::store::Store;
use sesame_store::{SqlStore, StoreUrl};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A running server.
pub struct Running {
    pub addr: SocketAddr,
    /// Where `/admin/v1` and `/metrics` are served when `admin_listen` is set (else on `addr`).
    pub admin_addr: Option<SocketAddr>,
    pub public_url: String,
    pub app: AppState,
    pub admin_token: AdminToken,
    pub store_url: StoreUrl,
    /// The data directory, absolute, for the banner.
    pub data_dir: std::path::PathBuf,
    /// This start created the store (no master key had been recorded in it).
    pub new_store: bool,
    /// This start generated the master key (`--dev`, in the data directory); else it came from
    /// the configuration.
    pub new_master_key: bool,
    /// One process per SQLite store (see `lock`); `None` on PostgreSQL.
    pub store_lock: Option<lock::StoreLock>,
    pub started_in: Duration,
    shutdown: tokio::sync::watch::Sender<bool>,
    servers: Vec<JoinHandle<std::io::Result<()>>>,
    jobs: Vec<JoinHandle<()>>,
    /// The audit log's writer, stopped (after writing what is queued) once the servers are.
    audit_writer: (tokio::sync::watch::Sender<bool>, Option<JoinHandle<()>>),
}

impl Running {
    pub fn issuer(&self, tenant: &str) -> String {
        format!("{}/t/{tenant}", self.public_url)
    }

    /// Stops accepting, lets requests in flight finish, then stops the jobs.
    pub async fn shutdown(self) -> std::io::Result<()> {
        let _ = self.shutdown.send(true);
        let mut result = Ok(());
        for server in self.servers {
            let r = server.await.unwrap_or_else(|e| Err(std::io::Error::other(e)));
            result = result.and(r);
        }
        let _ = self.audit_writer.0.send(true);
        if let Some(w) = self.audit_writer.1 {
            let _ = w.await;
        }
        for j in self.jobs {
            j.abort();
        }
        result
    }

    /// Runs until `signal` completes, then shuts down gracefully.
    pub async fn serve_until(self, signal: impl std::future::Future<Output = ()>) -> std::io::Result<()> {
        signal.await;
        self.shutdown().await
    }
}

/// Opens the store, checks the master key, applies the config, binds, and starts serving.
/// Every error is a sentence that names what is wrong.
pub async fn start(config: &Config, dev: bool) -> Result<Running, String> {
    let t0 = Instant::now();
    let metrics_token = config.metrics_token()?;
    let store_url = config.store_url();
    if matches!(store_url, StoreUrl::Sqlite(_)) {
        bootstrap::private_dir(&config.data_dir)
            .map_err(|e| format!("cannot create data_dir {}: {e}", config.data_dir.display()))?;
    }
    bootstrap::warn_if_shared(&config.data_dir);
    // Before the store is opened, so that a second process changes nothing (not even migrations).
    let store_lock = match &store_url {
        StoreUrl::Sqlite(url) => lock::sqlite_path(url)
            .map(|db| lock::lock_sqlite_store(&db))
            .transpose()?,
        StoreUrl::Postgres(_) => None,
    };
    let store = SqlStore::connect(&store_url).await.map_err(|e| e.to_string())?;
    let store: Arc<dyn Store> = Arc::new(store);
    let store_opened = t0.elapsed();
    let new_store = store
        .get_setting(bootstrap::MASTER_KEY_CHECK)
        .await
        .map_err(|e| e.to_string())?
        .is_none();
    let (master, new_master_key) = bootstrap::master_key(config, dev, &*store).await?;
    let master_checked = t0.elapsed();

    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| bind_error(config.listen, "listen", &e))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let admin_listener = match config.admin_listen {
        Some(a) => Some(
            TcpListener::bind(a)
                .await
                .map_err(|e| bind_error(a, "admin_listen", &e))?,
        ),
        None => None,
    };
    let admin_addr = match &admin_listener {
        Some(l) => Some(l.local_addr().map_err(|e| e.to_string())?),
        None => None,
    };
    let public_url = config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"));

    let metrics = metrics::Metrics::new();
    let mut app = App::new(store.clone(), master, public_url.clone(), metrics);
    app.password_checks = password_checks::PasswordChecks::new(
        config.password_check_concurrency,
        app.metrics.password_checks.clone(),
    );
    app.client_address_header = config
        .client_address_header
        .as_deref()
        .and_then(|h| axum::http::HeaderName::from_bytes(h.as_bytes()).ok());
    app.trusted_proxies = config
        .trusted_proxies
        .iter()
        .filter_map(|p| browser::AddressRange::parse(p).ok())
        .collect();
    if let Some(ttl) = config.device_code_ttl {
        app.device_code_ttl = ttl;
    }
    app.metrics_token = metrics_token.map(|t| sesame_core::secret::hash_secret(t.as_bytes()));
    if let Some(days) = config.audit_retention_days {
        app.audit_retention_days = days;
    }
    app.audit_token_issued = config.audit_token_issued.unwrap_or(false);
    let app: AppState = Arc::new(app);
    let (audit_stop, audit_stopped) = tokio::sync::watch::channel(false);
    let audit_writer = (audit_stop, app.audit.spawn_writer(store.clone(), audit_stopped));
    app.refresh_cache().await.map_err(|e| e.to_string())?;
    bootstrap::apply_declared(&app, &config.tenants).await?;
    bootstrap::default_tenant(&app, dev, config.tenants.len()).await?;
    let tenants_ready = t0.elapsed();
    let admin_token = bootstrap::admin_token(&*store, config, dev).await?;

    let jobs = vec![
        tokio::spawn(jobs::refresh_cache(
            app.clone(),
            Duration::from_millis(config.cache_refresh_ms),
        )),
        tokio::spawn(jobs::sweep(app.clone(), Duration::from_secs(60))),
    ];
    let (shutdown, rx) = tokio::sync::watch::channel(false);
    let mut servers = Vec::new();
    match admin_listener {
        Some(l) => {
            servers.push(serve(listener, routes::public_router(app.clone()), rx.clone()));
            servers.push(serve(l, routes::operators_router(app.clone()), rx));
        }
        None => servers.push(serve(listener, routes::router(app.clone()), rx)),
    }
    let started_in = t0.elapsed();
    // Where start-up goes: opening and migrating the store, the master key (generated on a
    // first `--dev` start), the tenants (key generation on a first start) and the admin token.
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    tracing::info!(
        store_ms = ms(store_opened),
        master_key_ms = ms(master_checked - store_opened),
        tenants_ms = ms(tenants_ready - master_checked),
        admin_token_and_listen_ms = ms(started_in - tenants_ready),
        total_ms = ms(started_in),
        "started"
    );
    Ok(Running {
        addr,
        admin_addr,
        public_url,
        app,
        admin_token,
        store_url,
        data_dir: std::path::absolute(&config.data_dir).unwrap_or_else(|_| config.data_dir.clone()),
        new_store,
        new_master_key,
        store_lock,
        started_in,
        shutdown,
        servers,
        jobs,
        audit_writer,
    })
}

/// A failed bind, with what to do about the usual cause.
fn bind_error(addr: SocketAddr, field: &str, e: &std::io::Error) -> String {
    let flag = field.replace('_', "-");
    match e.kind() {
        std::io::ErrorKind::AddrInUse => format!(
            "cannot listen on {addr} ({field}): the address is in use, probably by another \
             sesamed or another server; stop it, or choose another address with --{flag} \
             (or `{field}` in the config file, SESAME_{})",
            field.to_uppercase()
        ),
        _ => format!("cannot listen on {addr} ({field}): {e}"),
    }
}

/// Serves `routes` on `listener` until `stop` turns true, then lets requests in flight finish.
fn serve(
    listener: TcpListener,
    routes: impl routes::Routes,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> JoinHandle<std::io::Result<()>> {
    use axum::ServiceExt;
    tokio::spawn(async move {
        // The peer address is the client address for sign-in throttling.
        axum::serve(
            listener,
            ServiceExt::<axum::extract::Request>::into_make_service_with_connect_info::<SocketAddr>(routes),
        )
        .with_graceful_shutdown(async move {
            let _ = stop.wait_for(|stop| *stop).await;
        })
        .await
    })
}
