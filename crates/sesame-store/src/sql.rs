use crate::StoreUrl;
use sesame_core::ids::{ClientId, TenantId};
use sesame_core::ids::{UserId, Username};
use sesame_core::model::{
    AuthorizationCode, BrowserSession, Consent, ImplicitGrant, LoginAttempt, LoginFailures, LoginLimit,
    RefreshToken,
};
use sesame_core::model::{Client, KeyState, SigningAlg, StoredKey, Tenant, User};
use sesame_core::store::Store;
use sesame_core::{Error, Result};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use std::str::FromStr;
use std::time::Duration;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` with `$p` bound to the concrete pool: the same code, compiled per dialect.
macro_rules! with_pool {
    ($self:expr, $p:ident => $body:expr) => {
        match &$self.pool {
            Pool::Sqlite($p) => $body,
            Pool::Postgres($p) => $body,
        }
    };
}

pub struct SqlStore {
    pool: Pool,
    /// SQLite only: a read-only connection for the reads on hot paths (revocation checks,
    /// sessions, users, codes, refresh tokens, consents). WAL readers never wait for writers,
    /// so a read is a few microseconds on the caller's thread, where sqlx would hand it to a
    /// worker thread and back.
    reader: Option<std::sync::Mutex<rusqlite::Connection>>,
}

/// Builds a row struct from a `rusqlite` row by column names (the struct's field names).
macro_rules! from_rusqlite {
    ($row:expr, $ty:ident { $($field:ident),* $(,)? }) => {
        $ty { $($field: $row.get(stringify!($field))?,)* }
    };
}

fn db(e: sqlx::Error) -> Error {
    if e.as_database_error().is_some_and(|d| d.is_unique_violation()) {
        return Error::Conflict("it already exists".into());
    }
    Error::Store(e.to_string())
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Store(format!("stored {what} is unreadable: {e}"))
}

const BUMP_GENERATION: &str = "UPDATE generation SET value = value + 1 WHERE id = 1";

type TenantRow = (String, String, bool, String, i64, i64, i64, Option<String>, i64);
const TENANT_COLUMNS: &str = "id, display_name, disabled, signing_alg, access_token_ttl, session_ttl, \
     refresh_token_ttl, logo_url, created_at";

fn tenant_from_row(r: TenantRow) -> Result<Tenant> {
    Ok(Tenant {
        id: TenantId::parse(&r.0).map_err(|e| corrupt("tenant id", e))?,
        display_name: r.1,
        disabled: r.2,
        signing_alg: r.3.parse().map_err(|e| corrupt("tenant signing_alg", e))?,
        access_token_ttl: r.4,
        session_ttl: r.5,
        refresh_token_ttl: r.6,
        logo_url: r.7,
        created_at: r.8,
    })
}

/// A client row, read by column name (it has more columns than sqlx maps to a tuple).
#[derive(sqlx::FromRow)]
struct ClientRow {
    tenant_id: String,
    client_id: String,
    name: String,
    client_type: String,
    secret_hash: Option<Vec<u8>>,
    grant_types: String,
    redirect_uris: String,
    post_logout_redirect_uris: String,
    require_pkce: bool,
    first_party: bool,
    refresh_without_offline_access: bool,
    backchannel_logout_uri: Option<String>,
    allowed_scopes: String,
    allowed_audiences: String,
    signing_alg: Option<String>,
    access_token_ttl: Option<i64>,
    introspect_any: bool,
    jwks: Option<String>,
    jwks_uri: Option<String>,
    token_exchange_impersonation: bool,
    disabled: bool,
    trust_policy: Option<String>,
    revoked_before: i64,
    created_at: i64,
    updated_at: i64,
}
const CLIENT_COLUMNS: &str =
    "tenant_id, client_id, name, client_type, secret_hash, grant_types, redirect_uris, \
     post_logout_redirect_uris, require_pkce, first_party, refresh_without_offline_access, \
     backchannel_logout_uri, allowed_scopes, allowed_audiences, signing_alg, access_token_ttl, introspect_any, \
     jwks, jwks_uri, token_exchange_impersonation, disabled, revoked_before, created_at, updated_at, \
     trust_policy";

fn json_list<T: serde::de::DeserializeOwned>(what: &str, text: &str) -> Result<Vec<T>> {
    serde_json::from_str(text).map_err(|e| corrupt(what, e))
}

fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("lists serialize")
}

fn client_from_row(r: ClientRow) -> Result<Client> {
    let secret_hash = r
        .secret_hash
        .map(|h| hash32("client secret hash", &h))
        .transpose()?;
    Ok(Client {
        tenant_id: TenantId::parse(&r.tenant_id).map_err(|e| corrupt("client tenant", e))?,
        client_id: ClientId::parse(&r.client_id).map_err(|e| corrupt("client_id", e))?,
        name: r.name,
        client_type: r.client_type.parse().map_err(|e| corrupt("client type", e))?,
        secret_hash,
        grant_types: json_list("grant types", &r.grant_types)?,
        redirect_uris: json_list("redirect URIs", &r.redirect_uris)?,
        post_logout_redirect_uris: json_list("post-logout redirect URIs", &r.post_logout_redirect_uris)?,
        require_pkce: r.require_pkce,
        first_party: r.first_party,
        refresh_without_offline_access: r.refresh_without_offline_access,
        backchannel_logout_uri: r.backchannel_logout_uri,
        allowed_scopes: json_list("scopes", &r.allowed_scopes)?,
        allowed_audiences: json_list("audiences", &r.allowed_audiences)?,
        signing_alg: r
            .signing_alg
            .map(|a| a.parse())
            .transpose()
            .map_err(|e| corrupt("client signing_alg", e))?,
        access_token_ttl: r.access_token_ttl,
        introspect_any: r.introspect_any,
        jwks: r.jwks,
        jwks_uri: r.jwks_uri,
        trust_policy: r.trust_policy,
        token_exchange_impersonation: r.token_exchange_impersonation,
        disabled: r.disabled,
        revoked_before: r.revoked_before,
        created_at: r.created_at,
        updated_at: r.updated_at,
    })
}

/// A stored SHA-256 (secret, code or token hash).
fn hash32(what: &str, bytes: &[u8]) -> Result<[u8; 32]> {
    <[u8; 32]>::try_from(bytes).map_err(|_| corrupt(what, format!("{} bytes, not 32", bytes.len())))
}

type UserRow = (
    String,
    String,
    String,
    Option<String>,
    bool,
    Option<String>,
    Option<String>,
    bool,
    Option<String>,
    i64,
    i64,
);
const USER_COLUMNS: &str = "tenant_id, id, username, email, email_verified, name, picture, disabled, \
     password_hash, created_at, updated_at";

fn user_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<UserRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
        r.get(9)?,
        r.get(10)?,
    ))
}

fn user_from_row(r: UserRow) -> Result<User> {
    Ok(User {
        tenant_id: TenantId::parse(&r.0).map_err(|e| corrupt("user tenant", e))?,
        id: UserId::parse(&r.1).map_err(|e| corrupt("user id", e))?,
        username: Username::parse(&r.2).map_err(|e| corrupt("username", e))?,
        email: r.3,
        email_verified: r.4,
        name: r.5,
        picture: r.6,
        disabled: r.7,
        password_hash: r.8,
        created_at: r.9,
        updated_at: r.10,
    })
}

type KeyRow = (
    String,
    String,
    String,
    String,
    Vec<u8>,
    String,
    i64,
    Option<i64>,
    Option<i64>,
);
const KEY_COLUMNS: &str =
    "tenant_id, kid, alg, state, sealed_private_key, public_jwk, created_at, activated_at, publish_until";

fn key_from_row(r: KeyRow) -> Result<StoredKey> {
    Ok(StoredKey {
        tenant_id: TenantId::parse(&r.0).map_err(|e| corrupt("key tenant", e))?,
        kid: r.1,
        alg: SigningAlg::from_str(&r.2).map_err(|e| corrupt("key alg", e))?,
        state: KeyState::from_str(&r.3)?,
        sealed_private_key: r.4,
        public_jwk: r.5,
        created_at: r.6,
        activated_at: r.7,
        publish_until: r.8,
    })
}

const INSERT_KEY: &str =
    "INSERT INTO signing_key (tenant_id, kid, alg, state, sealed_private_key, public_jwk, \
     created_at, activated_at, publish_until) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";

/// Binds a key's columns in `KEY_COLUMNS` order to a query of either dialect.
macro_rules! bind_key {
    ($q:expr, $k:expr) => {
        $q.bind($k.tenant_id.as_str())
            .bind(&$k.kid)
            .bind($k.alg.as_str())
            .bind($k.state.as_str())
            .bind(&$k.sealed_private_key)
            .bind(&$k.public_jwk)
            .bind($k.created_at)
            .bind($k.activated_at)
            .bind($k.publish_until)
    };
}

/// Binds a client's columns in `CLIENT_COLUMNS` order.
macro_rules! bind_client {
    ($q:expr, $c:expr) => {
        $q.bind($c.tenant_id.as_str())
            .bind($c.client_id.as_str())
            .bind(&$c.name)
            .bind($c.client_type.as_str())
            .bind($c.secret_hash.map(|h| h.to_vec()))
            .bind(to_json(&$c.grant_types))
            .bind(to_json(&$c.redirect_uris))
            .bind(to_json(&$c.post_logout_redirect_uris))
            .bind($c.require_pkce)
            .bind($c.first_party)
            .bind($c.refresh_without_offline_access)
            .bind(&$c.backchannel_logout_uri)
            .bind(to_json(&$c.allowed_scopes))
            .bind(to_json(&$c.allowed_audiences))
            .bind($c.signing_alg.map(|a| a.as_str()))
            .bind($c.access_token_ttl)
            .bind($c.introspect_any)
            .bind(&$c.jwks)
            .bind(&$c.jwks_uri)
            .bind($c.token_exchange_impersonation)
            .bind($c.disabled)
            .bind($c.revoked_before)
            .bind($c.created_at)
            .bind($c.updated_at)
            .bind(&$c.trust_policy)
    };
}

/// Runs the statements of `signin::grant_revocation` in the transaction `$tx`, with $1 =
/// tenant, $2 = now, $3 = key and $4 = client when given; evaluates to the last statement's
/// row count (the refresh tokens deleted).
macro_rules! run_revocation {
    ($tx:expr, $statements:expr, $tenant:expr, $now:expr, $key:expr, $client:expr) => {{
        let mut last = 0;
        for sql in $statements.iter() {
            let mut q = sqlx::query(sql).bind($tenant).bind($now).bind($key);
            if let Some(c) = $client {
                q = q.bind(c);
            }
            last = q.execute(&mut *$tx).await.map_err(db)?.rows_affected();
        }
        last
    }};
}

// After the macros above, which they use.
mod sessions;
// After the macros above, which it uses.
mod federation;
mod signin;
// After `signin`, whose refresh-token insert it uses.
mod device;
mod trust;
mod workload;
// Admin roles and the audit log.
mod access;
mod audit;
// Authorization: teams, resources, grants.
mod authz;
// SAML 2.0 brokered SSO: assertion replay.
mod saml;

/// The SQLite file holds password hashes and people's emails: readable by its owner only,
/// whatever the umask. It is created 0600 before SQLite opens it (SQLite would create it
/// 0644), and SQLite gives its `-wal` and `-shm` files the database file's mode. Files left
/// looser by an older version are tightened: they are ours, and nobody else should read them.
fn private_db_file(path: &std::path::Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)?;
        for suffix in ["", "-wal", "-shm"] {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            let file = std::path::Path::new(&name);
            let Ok(meta) = std::fs::metadata(file) else {
                continue;
            };
            if meta.permissions().mode() & 0o077 != 0 {
                std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600))?;
                tracing::warn!(file = %file.display(), "the store was readable by others; made it owner-only (0600)");
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

impl SqlStore {
    /// Connects and runs the migrations. The error names the store (password redacted).
    pub async fn connect(url: &StoreUrl) -> Result<SqlStore> {
        let unreachable = |e: sqlx::Error| Error::Store(format!("cannot open store {url}: {e}"));
        let (pool, reader) = match url {
            StoreUrl::Sqlite(u) => {
                let opts = SqliteConnectOptions::from_str(u)
                    .map_err(unreachable)?
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(10))
                    .foreign_keys(true);
                let path = opts.get_filename();
                if path.as_os_str() != ":memory:" {
                    private_db_file(path)
                        .map_err(|e| Error::Store(format!("cannot make store {url} owner-only: {e}")))?;
                }
                // One connection: SQLite has one writer anyway, and with several connections
                // each commit throws away the others' page caches and they contend for the
                // file locks. The code flow runs 2,500 flows/s with 8 and 3,700 with 1. Hot
                // reads go through `reader` and do not queue behind writes.
                let pool = SqlitePoolOptions::new()
                    .max_connections(1)
                    .min_connections(1)
                    .connect_with(opts.clone())
                    .await
                    .map_err(unreachable)?;
                SQLITE_MIGRATIONS
                    .run(&pool)
                    .await
                    .map_err(|e| Error::Store(format!("migrating store {url}: {e}")))?;
                let reader = if path.as_os_str() == ":memory:" {
                    None
                } else {
                    let conn = rusqlite::Connection::open_with_flags(
                        path,
                        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
                            | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
                    )
                    .and_then(|c| c.busy_timeout(Duration::from_secs(10)).map(|()| c))
                    .map_err(|e| Error::Store(format!("cannot open store {url} for reading: {e}")))?;
                    Some(std::sync::Mutex::new(conn))
                };
                (Pool::Sqlite(pool), reader)
            }
            StoreUrl::Postgres(u) => {
                let opts = PgConnectOptions::from_str(u).map_err(unreachable)?;
                let pool = PgPoolOptions::new()
                    .max_connections(16)
                    .min_connections(1)
                    .acquire_timeout(Duration::from_secs(5))
                    .connect_with(opts)
                    .await
                    .map_err(unreachable)?;
                // sqlx takes an advisory lock, so replicas starting together migrate once.
                POSTGRES_MIGRATIONS
                    .run(&pool)
                    .await
                    .map_err(|e| Error::Store(format!("migrating store {url}: {e}")))?;
                (Pool::Postgres(pool), None)
            }
        };
        Ok(SqlStore { pool, reader })
    }

    pub async fn close(&self) {
        with_pool!(self, p => p.close().await)
    }

    /// On SQLite, runs a one-row read on the read-only connection, on the caller's thread;
    /// `None` on PostgreSQL, where the caller goes through sqlx. The SQL text is the same:
    /// SQLite reads `$N` as parameters numbered in order of first appearance.
    fn read_now<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        map: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Option<Result<Option<T>>> {
        let reader = self.reader.as_ref()?;
        let read = || {
            let conn = reader
                .lock()
                .map_err(|_| Error::Store("store reader poisoned".into()))?;
            let mut stmt = conn
                .prepare_cached(sql)
                .map_err(|e| Error::Store(e.to_string()))?;
            let mut rows = stmt.query(params).map_err(|e| Error::Store(e.to_string()))?;
            match rows.next().map_err(|e| Error::Store(e.to_string()))? {
                Some(row) => map(row).map(Some).map_err(|e| Error::Store(e.to_string())),
                None => Ok(None),
            }
        };
        Some(read())
    }
}

#[async_trait::async_trait]
impl Store for SqlStore {
    fn backend(&self) -> &'static str {
        match self.pool {
            Pool::Sqlite(_) => "sqlite",
            Pool::Postgres(_) => "postgres",
        }
    }

    async fn ping(&self) -> Result<()> {
        with_pool!(self, p => sqlx::query("SELECT 1").execute(p).await.map(|_| ()).map_err(db))
    }

    async fn get_setting(&self, name: &str) -> Result<Option<Vec<u8>>> {
        with_pool!(self, p => sqlx::query_scalar("SELECT value FROM setting WHERE name = $1")
            .bind(name)
            .fetch_optional(p)
            .await
            .map_err(db))
    }

    async fn insert_setting_if_absent(&self, name: &str, value: &[u8]) -> Result<bool> {
        with_pool!(self, p => sqlx::query(
            "INSERT INTO setting (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
            .bind(name)
            .bind(value)
            .execute(p)
            .await
            .map(|r| r.rows_affected() == 1)
            .map_err(db))
    }

    async fn generation(&self) -> Result<i64> {
        with_pool!(self, p => sqlx::query_scalar("SELECT value FROM generation WHERE id = 1")
            .fetch_one(p)
            .await
            .map_err(db))
    }

    async fn create_tenant(&self, tenant: &Tenant, keys: &[StoredKey]) -> Result<()> {
        with_pool!(self, p => {
            let mut tx = p.begin().await.map_err(db)?;
            sqlx::query(&format!("INSERT INTO tenant ({TENANT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"))
                .bind(tenant.id.as_str())
                .bind(&tenant.display_name)
                .bind(tenant.disabled)
                .bind(tenant.signing_alg.as_str())
                .bind(tenant.access_token_ttl)
                .bind(tenant.session_ttl)
                .bind(tenant.refresh_token_ttl)
                .bind(&tenant.logo_url)
                .bind(tenant.created_at)
                .execute(&mut *tx)
                .await
                .map_err(|e| match db(e) {
                    Error::Conflict(_) => Error::Conflict(format!("tenant '{}' already exists", tenant.id)),
                    other => other,
                })?;
            for k in keys {
                bind_key!(sqlx::query(INSERT_KEY), k).execute(&mut *tx).await.map_err(db)?;
            }
            sqlx::query(BUMP_GENERATION).execute(&mut *tx).await.map_err(db)?;
            tx.commit().await.map_err(db)
        })
    }

    async fn update_tenant(&self, tenant: &Tenant) -> Result<bool> {
        with_pool!(self, p => {
            let mut tx = p.begin().await.map_err(db)?;
            let n = sqlx::query(
                "UPDATE tenant SET display_name = $2, signing_alg = $3, access_token_ttl = $4, logo_url = $5, \
                 session_ttl = $6, refresh_token_ttl = $7 WHERE id = $1")
                .bind(tenant.id.as_str())
                .bind(&tenant.display_name)
                .bind(tenant.signing_alg.as_str())
                .bind(tenant.access_token_ttl)
                .bind(&tenant.logo_url)
                .bind(tenant.session_ttl)
                .bind(tenant.refresh_token_ttl)
                .execute(&mut *tx)
                .await
                .map_err(db)?
                .rows_affected();
            sqlx::query(BUMP_GENERATION).execute(&mut *tx).await.map_err(db)?;
            tx.commit().await.map_err(db)?;
            Ok(n == 1)
        })
    }

    async fn get_tenant(&self, id: &TenantId) -> Result<Option<Tenant>> {
        let row: Option<TenantRow> = with_pool!(self, p => sqlx::query_as(
            &format!("SELECT {TENANT_COLUMNS} FROM tenant WHERE id = $1"))
            .bind(id.as_str())
            .fetch_optional(p)
            .await
            .map_err(db))?;
        row.map(tenant_from_row).transpose()
    }

    async fn list_tenants(&self) -> Result<Vec<Tenant>> {
        let rows: Vec<TenantRow> = with_pool!(self, p => sqlx::query_as(
            &format!("SELECT {TENANT_COLUMNS} FROM tenant ORDER BY id"))
            .fetch_all(p)
            .await
            .map_err(db))?;
        rows.into_iter().map(tenant_from_row).collect()
    }

    async fn set_tenant_disabled(&self, id: &TenantId, disabled: bool) -> Result<bool> {
        with_pool!(self, p => {
            let mut tx = p.begin().await.map_err(db)?;
            let n = sqlx::query("UPDATE tenant SET disabled = $2 WHERE id = $1")
                .bind(id.as_str())
                .bind(disabled)
                .execute(&mut *tx)
                .await
                .map_err(db)?
                .rows_affected();
            sqlx::query(BUMP_GENERATION).execute(&mut *tx).await.map_err(db)?;
            tx.commit().await.map_err(db)?;
            Ok(n == 1)
        })
    }

    async fn create_client(&self, client: &Client) -> Result<()> {
        let sql = format!(
            "INSERT INTO client ({CLIENT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, \
         $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25)"
        );
        with_pool!(self, p => {
            let mut tx = p.begin().await.map_err(db)?;
            bind_client!(sqlx::query(&sql), client).execute(&mut *tx).await.map_err(|e| match db(e) {
                Error::Conflict(_) => Error::Conflict(format!(
                    "client '{}' already exists in tenant '{}'", client.client_id, client.tenant_id)),
                other => other,
            })?;
            sqlx::query(BUMP_GENERATION).execute(&mut *tx).await.map_err(db)?;
            tx.commit().await.map_err(db)
        })
    }

    async fn update_client(&self, client: &Client) -> Result<bool> {
        let sql = "UPDATE client SET name = $3, client_type = $4, secret_hash = $5, grant_types = $6, \
                   redirect_uris = $7, post_logout_redirect_uris = $8, require_pkce = $9, first_party = $10, \
                   refresh_without_offline_access = $11, backchannel_logout_uri = $12, allowed_scopes = $13, \
                   allowed_audiences = $14, signing_alg = $15, access_token_ttl = $16, disabled = $17, \
                   updated_at = $18, introspect_any = $19, jwks = $20, jwks_uri = $21, \
                   token_exchange_impersonation = $22, trust_policy = $23, \
                   revoked_before = CASE WHEN $17 AND NOT disabled THEN $18 + 1 ELSE revoked_before END \
                   WHERE tenant_id = $1 AND client_id = $2";
        let c = client;
        with_pool!(self, p => {
            let mut tx = p.begin().await.map_err(db)?;
            let n = sqlx::query(sql)
                .bind(c.tenant_id.as_str())
                .bind(c.client_id.as_str())
                .bind(&c.name)
                .bind(c.client_type.as_str())
                .bind(c.secret_hash.map(|h| h.to_vec()))
                .bind(to_json(&c.grant_types))
                .bind(to_json(&c.redirect_uris))
                .bind(to_json(&c.post_logout_redirect_uris))
                .bind(c.require_pkce)
                .bind(c.first_party)
                .bind(c.refresh_without_offline_access)
                .bind(&c.backchannel_logout_uri)
                .bind(to_json(&c.allowed_scopes))
                .bind(to_json(&c.allowed_audiences))
                .bind(c.signing_alg.map(|a| a.as_str()))
                .bind(c.access_token_ttl)
                .bind(c.disabled)
                .bind(c.updated_at)
                .bind(c.introspect_any)
                .bind(&c.jwks)
                .bind(&c.jwks_uri)
                .bind(c.token_exchange_impersonation)
                .bind(&c.trust_policy)
                .execute(&mut *tx)
                .await
                .map_err(db)?
                .rows_affected();
            if n == 1 && c.disabled {
                // Idempotent: a client disabled before has nothing left to revoke.
                let (tenant, id) = (c.tenant_id.as_str(), c.client_id.as_str());
                run_revocation!(tx, signin::client_revocation(), tenant, c.updated_at, id, None::<&str>);
            }
            sqlx::query(BUMP_GENERATION).execute(&mut *tx).await.map_err(db)?;
            tx.commit().await.map_err(db)?;
            Ok(n == 1)
        })
    }

    async fn get_client(&self, tenant: &TenantId, id: &ClientId) -> Result<Option<Client>> {
        let row: Option<ClientRow> = with_pool!(self, p => sqlx::query_as(
            &format!("SELECT {CLIENT_COLUMNS} FROM client WHERE tenant_id = $1 AND client_id = $2"))
            .bind(tenant.as_str())
            .bind(id.as_str())
            .fetch_optional(p)
            .await
            .map_err(db))?;
        row.map(client_from_row).transpose()
    }

    async fn list_clients(&self, tenant: &TenantId) -> Result<Vec<Client>> {
        let rows: Vec<ClientRow> = with_pool!(self, p => sqlx::query_as(
            &format!("SELECT {CLIENT_COLUMNS} FROM client WHERE tenant_id = $1 ORDER BY client_id"))
            .bind(tenant.as_str())
            .fetch_all(p)
            .await
            .map_err(db))?;
        rows.into_iter().map(client_from_row).collect()
    }

    async fn delete_client(&self, tenant: &TenantId, id: &ClientId) -> Result<bool> {
        with_pool!(self, p => {
            let mut tx = p.begin().await.map_err(db)?;
            let n = sqlx::query("DELETE FROM client WHERE tenant_id = $1 AND client_id = $2")
                .bind(tenant.as_str())
                .bind(id.as_str())
                .execute(&mut *tx)
                .await
                .map_err(db)?
                .rows_affected();
            let now = sesame_core::now();
            run_revocation!(tx, signin::client_revocation(), tenant.as_str(), now, id.as_str(), None::<&str>);
            sqlx::query(BUMP_GENERATION).execute(&mut *tx).await.map_err(db)?;
            tx.commit().await.map_err(db)?;
            Ok(n == 1)
        })
    }

    async fn create_user(&self, user: &User) -> Result<()> {
        let sql = format!(
            "INSERT INTO user_account ({USER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        );
        let u = user;
        with_pool!(self, p => sqlx::query(&sql)
        .bind(u.tenant_id.as_str())
        .bind(u.id.as_str())
        .bind(u.username.as_str())
        .bind(&u.email)
        .bind(u.email_verified)
        .bind(&u.name)
        .bind(&u.picture)
        .bind(u.disabled)
        .bind(&u.password_hash)
        .bind(u.created_at)
        .bind(u.updated_at)
        .execute(p)
        .await
        .map(|_| ())
        .map_err(|e| match db(e) {
            Error::Conflict(_) => Error::Conflict(format!(
                "username '{}' is taken in tenant '{}'", u.username, u.tenant_id)),
            other => other,
        }))
    }

    async fn update_user(&self, user: &User) -> Result<bool> {
        let u = user;
        with_pool!(self, p => {
            let mut tx = p.begin().await.map_err(db)?;
            // Authorization answers no for a disabled person: a change of `disabled` advances
            // the tenant's authorization version in the same transaction (see `sql/authz.rs`).
            let was: Option<bool> = sqlx::query_scalar(
                "SELECT disabled FROM user_account WHERE tenant_id = $1 AND id = $2")
                .bind(u.tenant_id.as_str())
                .bind(u.id.as_str())
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
            if was.is_some_and(|d| d != u.disabled) {
                sqlx::query(authz::BUMP_VERSION)
                    .bind(u.tenant_id.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
            }
            let updated = sqlx::query(
                "UPDATE user_account SET email = $3, email_verified = $4, name = $5, picture = $6, disabled = $7, \
                 password_hash = $8, updated_at = $9 WHERE tenant_id = $1 AND id = $2")
                .bind(u.tenant_id.as_str())
                .bind(u.id.as_str())
                .bind(&u.email)
                .bind(u.email_verified)
                .bind(&u.name)
                .bind(&u.picture)
                .bind(u.disabled)
                .bind(&u.password_hash)
                .bind(u.updated_at)
                .execute(&mut *tx)
                .await
                .map_err(db)?
                .rows_affected()
                == 1;
            tx.commit().await.map_err(db)?;
            Ok(updated)
        })
    }

    async fn get_user(&self, tenant: &TenantId, id_or_username: &str) -> Result<Option<User>> {
        // An id wins over a username that happens to spell it.
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM user_account WHERE tenant_id = $1 AND (id = $2 OR username = $3) \
             ORDER BY CASE WHEN id = $2 THEN 0 ELSE 1 END LIMIT 1"
        );
        let lower = id_or_username.to_lowercase();
        let params = (tenant.as_str(), id_or_username, lower.as_str());
        let row: Option<UserRow> = match self.read_now(&sql, params, user_row) {
            Some(read) => read?,
            None => with_pool!(self, p => sqlx::query_as(&sql)
                .bind(tenant.as_str())
                .bind(id_or_username)
                .bind(&lower)
                .fetch_optional(p)
                .await
                .map_err(db))?,
        };
        row.map(user_from_row).transpose()
    }

    async fn list_users(&self, tenant: &TenantId) -> Result<Vec<User>> {
        let rows: Vec<UserRow> = with_pool!(self, p => sqlx::query_as(
            &format!("SELECT {USER_COLUMNS} FROM user_account WHERE tenant_id = $1 ORDER BY username"))
            .bind(tenant.as_str())
            .fetch_all(p)
            .await
            .map_err(db))?;
        rows.into_iter().map(user_from_row).collect()
    }

    async fn list_keys(&self, tenant: &TenantId) -> Result<Vec<StoredKey>> {
        let rows: Vec<KeyRow> = with_pool!(self, p => sqlx::query_as(
            &format!("SELECT {KEY_COLUMNS} FROM signing_key WHERE tenant_id = $1 ORDER BY created_at, kid"))
            .bind(tenant.as_str())
            .fetch_all(p)
            .await
            .map_err(db))?;
        rows.into_iter().map(key_from_row).collect()
    }

    async fn rotate_keys(
        &self,
        tenant: &TenantId,
        alg: SigningAlg,
        new_next: &StoredKey,
        retire_until: i64,
        now: i64,
    ) -> Result<()> {
        with_pool!(self, p => {
            let mut tx = p.begin().await.map_err(db)?;
            // Order matters for the one-active / one-next unique indexes.
            sqlx::query("UPDATE signing_key SET state = 'retired', publish_until = $3 \
                         WHERE tenant_id = $1 AND alg = $2 AND state = 'active'")
                .bind(tenant.as_str())
                .bind(alg.as_str())
                .bind(retire_until)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            let promoted = sqlx::query("UPDATE signing_key SET state = 'active', activated_at = $3 \
                         WHERE tenant_id = $1 AND alg = $2 AND state = 'next'")
                .bind(tenant.as_str())
                .bind(alg.as_str())
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(db)?
                .rows_affected();
            if promoted != 1 {
                // Explicitly: a dropped transaction rolls back only when its connection is next
                // used, and holds the retired key's row lock until then.
                tx.rollback().await.map_err(db)?;
                return Err(Error::Store(format!("tenant {tenant} has no next {alg} key to promote")));
            }
            bind_key!(sqlx::query(INSERT_KEY), new_next).execute(&mut *tx).await.map_err(db)?;
            sqlx::query(BUMP_GENERATION).execute(&mut *tx).await.map_err(db)?;
            tx.commit().await.map_err(db)
        })
    }

    async fn insert_keys(&self, keys: &[StoredKey]) -> Result<()> {
        with_pool!(self, p => {
            let mut tx = p.begin().await.map_err(db)?;
            for k in keys {
                bind_key!(sqlx::query(INSERT_KEY), k).execute(&mut *tx).await.map_err(db)?;
            }
            sqlx::query(BUMP_GENERATION).execute(&mut *tx).await.map_err(db)?;
            tx.commit().await.map_err(db)
        })
    }

    async fn delete_expired_keys(&self, now: i64) -> Result<u64> {
        with_pool!(self, p => {
            let mut tx = p.begin().await.map_err(db)?;
            let n = sqlx::query("DELETE FROM signing_key WHERE state = 'retired' AND publish_until < $1")
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(db)?
                .rows_affected();
            if n > 0 {
                sqlx::query(BUMP_GENERATION).execute(&mut *tx).await.map_err(db)?;
            }
            tx.commit().await.map_err(db)?;
            Ok(n)
        })
    }

    async fn revoke_access_token(&self, tenant: &TenantId, jti: &str, expires_at: i64) -> Result<()> {
        with_pool!(self, p => sqlx::query(
            "INSERT INTO revoked_token (tenant_id, jti, expires_at, revoked_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (tenant_id, jti) DO NOTHING")
            .bind(tenant.as_str())
            .bind(jti)
            .bind(expires_at)
            .bind(sesame_core::now())
            .execute(p)
            .await
            .map(|_| ())
            .map_err(db))
    }

    async fn is_access_token_revoked(&self, tenant: &TenantId, jti: &str) -> Result<bool> {
        if let Some(reader) = &self.reader {
            let conn = reader
                .lock()
                .map_err(|_| Error::Store("revocation reader poisoned".into()))?;
            let mut stmt = conn
                .prepare_cached("SELECT 1 FROM revoked_token WHERE tenant_id = ?1 AND jti = ?2")
                .map_err(|e| Error::Store(e.to_string()))?;
            return stmt
                .exists((tenant.as_str(), jti))
                .map_err(|e| Error::Store(e.to_string()));
        }
        let found: Option<i32> = with_pool!(self, p => sqlx::query_scalar(
            "SELECT 1 FROM revoked_token WHERE tenant_id = $1 AND jti = $2")
            .bind(tenant.as_str())
            .bind(jti)
            .fetch_optional(p)
            .await
            .map_err(db))?;
        Ok(found.is_some())
    }

    async fn purge_revocations(&self, now: i64) -> Result<u64> {
        with_pool!(self, p => sqlx::query("DELETE FROM revoked_token WHERE expires_at < $1")
            .bind(now)
            .execute(p)
            .await
            .map(|r| r.rows_affected())
            .map_err(db))
    }

    async fn insert_admin_token(&self, name: &str, token_hash: &[u8; 32], now: i64) -> Result<()> {
        with_pool!(self, p => sqlx::query("INSERT INTO admin_token (token_hash, name, created_at) VALUES ($1, $2, $3)")
            .bind(token_hash.as_slice())
            .bind(name)
            .bind(now)
            .execute(p)
            .await
            .map(|_| ())
            .map_err(db))
    }

    async fn admin_token_exists(&self, token_hash: &[u8; 32]) -> Result<bool> {
        let found: Option<i32> = with_pool!(self, p => sqlx::query_scalar(
            "SELECT 1 FROM admin_token WHERE token_hash = $1")
            .bind(token_hash.as_slice())
            .fetch_optional(p)
            .await
            .map_err(db))?;
        Ok(found.is_some())
    }

    async fn count_admin_tokens(&self) -> Result<i64> {
        with_pool!(self, p => sqlx::query_scalar("SELECT COUNT(*) FROM admin_token")
            .fetch_one(p)
            .await
            .map_err(db))
    }

    // Browser sign-in: the SQL is in `signin.rs`.

    async fn insert_session(&self, session: &BrowserSession) -> Result<()> {
        signin::insert_session(self, session).await
    }

    async fn get_session(
        &self,
        tenant: &TenantId,
        secret_hash: &[u8; 32],
        now: i64,
    ) -> Result<Option<BrowserSession>> {
        signin::get_session(self, tenant, secret_hash, now).await
    }

    async fn list_sessions(&self, tenant: &TenantId, user: &UserId, now: i64) -> Result<Vec<BrowserSession>> {
        signin::list_sessions(self, tenant, user, now).await
    }

    async fn delete_session(&self, tenant: &TenantId, id: &str) -> Result<bool> {
        signin::delete_session(self, tenant, id).await
    }

    async fn delete_user_sessions(&self, tenant: &TenantId, user: &UserId) -> Result<u64> {
        signin::delete_user_sessions(self, tenant, user).await
    }

    async fn add_session_client(
        &self,
        tenant: &TenantId,
        session_id: &str,
        client: &ClientId,
        expires_at: i64,
    ) -> Result<()> {
        signin::add_session_client(self, tenant, session_id, client, expires_at).await
    }

    async fn session_clients(&self, tenant: &TenantId, session_id: &str) -> Result<Vec<ClientId>> {
        signin::session_clients(self, tenant, session_id).await
    }

    async fn insert_code(&self, code: &AuthorizationCode) -> Result<()> {
        signin::insert_code(self, code).await
    }

    async fn get_code(&self, tenant: &TenantId, code_hash: &[u8; 32]) -> Result<Option<AuthorizationCode>> {
        signin::get_code(self, tenant, code_hash).await
    }

    async fn redeem_code(
        &self,
        tenant: &TenantId,
        code_hash: &[u8; 32],
        now: i64,
        access_jti: &str,
        access_exp: i64,
        refresh: Option<&RefreshToken>,
    ) -> Result<bool> {
        signin::redeem_code(self, tenant, code_hash, now, access_jti, access_exp, refresh).await
    }

    async fn insert_implicit_grant(&self, grant: &ImplicitGrant) -> Result<()> {
        signin::insert_implicit_grant(self, grant).await
    }

    async fn insert_refresh_token(&self, token: &RefreshToken) -> Result<()> {
        signin::insert_refresh_token(self, token).await
    }

    async fn get_refresh_token(
        &self,
        tenant: &TenantId,
        token_hash: &[u8; 32],
    ) -> Result<Option<RefreshToken>> {
        signin::get_refresh_token(self, tenant, token_hash).await
    }

    async fn rotate_refresh_token(
        &self,
        tenant: &TenantId,
        old_hash: &[u8; 32],
        now: i64,
        successor: &RefreshToken,
        successor_response: &[u8],
    ) -> Result<bool> {
        signin::rotate_refresh_token(self, tenant, old_hash, now, successor, successor_response).await
    }

    async fn revoke_grant(&self, tenant: &TenantId, grant_id: &str, now: i64) -> Result<u64> {
        signin::revoke_grant(self, tenant, grant_id, now).await
    }

    async fn revoke_user_grants(
        &self,
        tenant: &TenantId,
        user: &UserId,
        client: Option<&ClientId>,
        now: i64,
    ) -> Result<u64> {
        signin::revoke_user_grants(self, tenant, user, client, now).await
    }

    async fn get_consent(
        &self,
        tenant: &TenantId,
        user: &UserId,
        client: &ClientId,
    ) -> Result<Option<Consent>> {
        signin::get_consent(self, tenant, user, client).await
    }

    async fn put_consent(&self, consent: &Consent) -> Result<()> {
        signin::put_consent(self, consent).await
    }

    async fn list_consents(&self, tenant: &TenantId, user: &UserId) -> Result<Vec<Consent>> {
        signin::list_consents(self, tenant, user).await
    }

    async fn delete_consent(&self, tenant: &TenantId, user: &UserId, client: &ClientId) -> Result<bool> {
        signin::delete_consent(self, tenant, user, client).await
    }

    async fn get_login_failures(&self, tenant: &TenantId, key: &str) -> Result<Option<LoginFailures>> {
        signin::get_login_failures(self, tenant, key).await
    }

    async fn add_login_failure(
        &self,
        tenant: &TenantId,
        key: &str,
        now: i64,
        window: i64,
    ) -> Result<LoginFailures> {
        signin::add_login_failure(self, tenant, key, now, window).await
    }

    async fn clear_login_failures(&self, tenant: &TenantId, key: &str) -> Result<()> {
        signin::clear_login_failures(self, tenant, key).await
    }

    async fn count_login_attempt(
        &self,
        tenant: &TenantId,
        limits: &[LoginLimit<'_>],
        now: i64,
    ) -> Result<LoginAttempt> {
        signin::count_login_attempt(self, tenant, limits, now).await
    }

    async fn uncount_login_attempt(&self, tenant: &TenantId, key: &str) -> Result<()> {
        signin::uncount_login_attempt(self, tenant, key).await
    }

    async fn purge_expired(&self, now: i64, code_grace: i64) -> Result<u64> {
        signin::purge_expired(self, now, code_grace).await
    }
}
