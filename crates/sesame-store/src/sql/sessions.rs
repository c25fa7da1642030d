//! Delegated (on-behalf-of) sessions (`DelegatedSessionStore`). Nonces and keys are stored and
//! looked up by their SHA-256 only. The read by id is on introspection's path for session
//! tokens, so on SQLite it goes through the read-only connection like the revocation check.

use super::{corrupt, db, hash32, Pool, SqlStore};
use sesame_core::ids::{ClientId, TenantId, UserId};
use sesame_core::sessions::DelegatedSession;
use sesame_core::store::DelegatedSessionStore;
use sesame_core::store::Store;
use sesame_core::Result;

const COLUMNS: &str = "tenant_id, id, user_id, client_id, scope, parent_id, nonce_hash, nonce_expires_at, \
     bound_at, key_hash, prev_key_hash, rotated_at, last_response, created_at, expires_at, revoked_at";

#[derive(sqlx::FromRow)]
struct Row {
    tenant_id: String,
    id: String,
    user_id: String,
    client_id: String,
    scope: String,
    parent_id: Option<String>,
    nonce_hash: Vec<u8>,
    nonce_expires_at: i64,
    bound_at: Option<i64>,
    key_hash: Option<Vec<u8>>,
    prev_key_hash: Option<Vec<u8>>,
    rotated_at: Option<i64>,
    last_response: Option<Vec<u8>>,
    created_at: i64,
    expires_at: i64,
    revoked_at: Option<i64>,
}

impl Row {
    fn into_session(self) -> Result<DelegatedSession> {
        Ok(DelegatedSession {
            tenant_id: TenantId::parse(&self.tenant_id).map_err(|e| corrupt("session tenant", e))?,
            id: self.id,
            user_id: UserId::parse(&self.user_id).map_err(|e| corrupt("session user", e))?,
            client_id: ClientId::parse(&self.client_id).map_err(|e| corrupt("session client", e))?,
            scope: self.scope,
            parent_id: self.parent_id,
            nonce_hash: hash32("session nonce hash", &self.nonce_hash)?,
            nonce_expires_at: self.nonce_expires_at,
            bound_at: self.bound_at,
            key_hash: self
                .key_hash
                .map(|h| hash32("session key hash", &h))
                .transpose()?,
            prev_key_hash: self
                .prev_key_hash
                .map(|h| hash32("session key hash", &h))
                .transpose()?,
            rotated_at: self.rotated_at,
            last_response: self.last_response,
            created_at: self.created_at,
            expires_at: self.expires_at,
            revoked_at: self.revoked_at,
        })
    }
}

fn rusqlite_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    Ok(from_rusqlite!(
        r,
        Row {
            tenant_id,
            id,
            user_id,
            client_id,
            scope,
            parent_id,
            nonce_hash,
            nonce_expires_at,
            bound_at,
            key_hash,
            prev_key_hash,
            rotated_at,
            last_response,
            created_at,
            expires_at,
            revoked_at,
        }
    ))
}

impl SqlStore {
    async fn one_session(
        &self,
        condition: &str,
        tenant: &TenantId,
        value: &[u8],
    ) -> Result<Option<DelegatedSession>> {
        let sql = format!("SELECT {COLUMNS} FROM delegated_session WHERE tenant_id = $1 AND {condition}");
        let row: Option<Row> = with_pool!(self, p => sqlx::query_as(&sql)
            .bind(tenant.as_str())
            .bind(value)
            .fetch_optional(p)
            .await
            .map_err(db))?;
        row.map(Row::into_session).transpose()
    }
}

#[async_trait::async_trait]
impl DelegatedSessionStore for SqlStore {
    async fn insert_delegated_session(&self, x: &DelegatedSession) -> Result<()> {
        let sql = format!(
            "INSERT INTO delegated_session ({COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
        );
        with_pool!(self, p => sqlx::query(&sql)
            .bind(x.tenant_id.as_str())
            .bind(&x.id)
            .bind(x.user_id.as_str())
            .bind(x.client_id.as_str())
            .bind(&x.scope)
            .bind(&x.parent_id)
            .bind(x.nonce_hash.as_slice())
            .bind(x.nonce_expires_at)
            .bind(x.bound_at)
            .bind(x.key_hash.as_ref().map(|h| h.to_vec()))
            .bind(x.prev_key_hash.as_ref().map(|h| h.to_vec()))
            .bind(x.rotated_at)
            .bind(&x.last_response)
            .bind(x.created_at)
            .bind(x.expires_at)
            .bind(x.revoked_at)
            .execute(p)
            .await
            .map(|_| ())
            .map_err(db))
    }

    async fn get_delegated_session(&self, tenant: &TenantId, id: &str) -> Result<Option<DelegatedSession>> {
        let sql = format!("SELECT {COLUMNS} FROM delegated_session WHERE tenant_id = $1 AND id = $2");
        let row: Option<Row> = match self.read_now(&sql, (tenant.as_str(), id), rusqlite_row) {
            Some(read) => read?,
            None => with_pool!(self, p => sqlx::query_as(&sql)
                .bind(tenant.as_str())
                .bind(id)
                .fetch_optional(p)
                .await
                .map_err(db))?,
        };
        row.map(Row::into_session).transpose()
    }

    async fn get_delegated_session_by_nonce(
        &self,
        tenant: &TenantId,
        nonce_hash: &[u8; 32],
    ) -> Result<Option<DelegatedSession>> {
        self.one_session("nonce_hash = $2", tenant, nonce_hash).await
    }

    async fn get_delegated_session_by_key(
        &self,
        tenant: &TenantId,
        key_hash: &[u8; 32],
    ) -> Result<Option<DelegatedSession>> {
        match self.one_session("key_hash = $2", tenant, key_hash).await? {
            Some(s) => Ok(Some(s)),
            None => self.one_session("prev_key_hash = $2", tenant, key_hash).await,
        }
    }

    async fn bind_delegated_session(
        &self,
        tenant: &TenantId,
        id: &str,
        key_hash: &[u8; 32],
        now: i64,
    ) -> Result<bool> {
        // The conditional UPDATE decides a race between two binds.
        with_pool!(self, p => sqlx::query(
            "UPDATE delegated_session SET bound_at = $3, key_hash = $4 \
             WHERE tenant_id = $1 AND id = $2 AND bound_at IS NULL AND revoked_at IS NULL")
            .bind(tenant.as_str())
            .bind(id)
            .bind(now)
            .bind(key_hash.as_slice())
            .execute(p)
            .await
            .map(|r| r.rows_affected() == 1)
            .map_err(db))
    }

    async fn rotate_session_key(
        &self,
        tenant: &TenantId,
        id: &str,
        old_hash: &[u8; 32],
        new_hash: &[u8; 32],
        now: i64,
        response: &[u8],
    ) -> Result<bool> {
        with_pool!(self, p => sqlx::query(
            "UPDATE delegated_session SET prev_key_hash = key_hash, key_hash = $4, rotated_at = $5, \
             last_response = $6 \
             WHERE tenant_id = $1 AND id = $2 AND key_hash = $3 AND revoked_at IS NULL")
            .bind(tenant.as_str())
            .bind(id)
            .bind(old_hash.as_slice())
            .bind(new_hash.as_slice())
            .bind(now)
            .bind(response)
            .execute(p)
            .await
            .map(|r| r.rows_affected() == 1)
            .map_err(db))
    }

    async fn list_delegated_sessions(
        &self,
        tenant: &TenantId,
        user: Option<&UserId>,
        now: i64,
    ) -> Result<Vec<DelegatedSession>> {
        let only_user = if user.is_some() { " AND user_id = $3" } else { "" };
        let sql = format!(
            "SELECT {COLUMNS} FROM delegated_session \
             WHERE tenant_id = $1 AND expires_at > $2 AND revoked_at IS NULL{only_user} \
             ORDER BY created_at DESC, id"
        );
        let rows: Vec<Row> = with_pool!(self, p => {
            let mut q = sqlx::query_as(&sql).bind(tenant.as_str()).bind(now);
            if let Some(u) = user {
                q = q.bind(u.as_str());
            }
            q.fetch_all(p).await.map_err(db)
        })?;
        rows.into_iter().map(Row::into_session).collect()
    }

    async fn revoke_delegated_session(
        &self,
        tenant: &TenantId,
        id: &str,
        user: Option<&UserId>,
        now: i64,
    ) -> Result<bool> {
        let only_user = if user.is_some() { " AND user_id = $4" } else { "" };
        // The session and its child (a child ends with its parent); the owner check applies to
        // both, since a child has its parent's owner.
        let sql = format!(
            "UPDATE delegated_session SET revoked_at = $3 \
             WHERE tenant_id = $1 AND (id = $2 OR parent_id = $2) AND revoked_at IS NULL{only_user}"
        );
        let n = with_pool!(self, p => {
            let mut q = sqlx::query(&sql).bind(tenant.as_str()).bind(id).bind(now);
            if let Some(u) = user {
                q = q.bind(u.as_str());
            }
            q.execute(p).await.map(|r| r.rows_affected()).map_err(db)
        })?;
        Ok(n > 0)
    }

    async fn revoke_user_delegated_sessions(
        &self,
        tenant: &TenantId,
        user: &UserId,
        now: i64,
    ) -> Result<u64> {
        with_pool!(self, p => sqlx::query(
            "UPDATE delegated_session SET revoked_at = $3 \
             WHERE tenant_id = $1 AND user_id = $2 AND revoked_at IS NULL")
            .bind(tenant.as_str())
            .bind(user.as_str())
            .bind(now)
            .execute(p)
            .await
            .map(|r| r.rows_affected())
            .map_err(db))
    }

    async fn purge_delegated_sessions(&self, now: i64) -> Result<u64> {
        with_pool!(self, p => sqlx::query("DELETE FROM delegated_session WHERE expires_at < $1")
            .bind(now)
            .execute(p)
            .await
            .map(|r| r.rows_affected())
            .map_err(db))
    }

    async fn session_creator(&self, tenant: &TenantId, client: &ClientId) -> Result<bool> {
        let found: Option<i64> = with_pool!(self, p => sqlx::query_scalar(
            "SELECT updated_at FROM client_session_creator WHERE tenant_id = $1 AND client_id = $2")
            .bind(tenant.as_str())
            .bind(client.as_str())
            .fetch_optional(p)
            .await
            .map_err(db))?;
        Ok(found.is_some())
    }

    async fn set_session_creator(
        &self,
        tenant: &TenantId,
        client: &ClientId,
        allowed: bool,
        now: i64,
    ) -> Result<bool> {
        if self.get_client(tenant, client).await?.is_none() {
            return Ok(false);
        }
        if !allowed {
            with_pool!(self, p => sqlx::query(
                "DELETE FROM client_session_creator WHERE tenant_id = $1 AND client_id = $2")
                .bind(tenant.as_str())
                .bind(client.as_str())
                .execute(p)
                .await
                .map(|_| ())
                .map_err(db))?;
            return Ok(true);
        }
        // The foreign key refuses a client deleted meanwhile.
        let sql = "INSERT INTO client_session_creator (tenant_id, client_id, updated_at) \
                   VALUES ($1, $2, $3) \
                   ON CONFLICT (tenant_id, client_id) DO UPDATE SET updated_at = excluded.updated_at";
        with_pool!(self, p => sqlx::query(sql)
            .bind(tenant.as_str())
            .bind(client.as_str())
            .bind(now)
            .execute(p)
            .await
            .map(|_| true)
            .map_err(db))
    }
}
