//! Admin tokens and clients' admin permissions (`AccessStore`). Tokens are stored as SHA-256
//! only; permissions as a JSON array of their names.

use super::{corrupt, db, json_list, to_json, Pool, SqlStore};
use sesame_core::access::{AdminTokenInfo, Permission};
use sesame_core::ids::{ClientId, TenantId};
use sesame_core::store::AccessStore;
use sesame_core::store::Store;
use sesame_core::Result;

#[derive(sqlx::FromRow)]
struct TokenRow {
    name: String,
    tenant_id: Option<String>,
    permissions: String,
    created_at: i64,
    expires_at: Option<i64>,
}

const TOKEN_COLUMNS: &str = "name, tenant_id, permissions, created_at, expires_at";

fn token_from_row(r: TokenRow) -> Result<AdminTokenInfo> {
    Ok(AdminTokenInfo {
        name: r.name,
        tenant: r
            .tenant_id
            .map(|t| TenantId::parse(&t))
            .transpose()
            .map_err(|e| corrupt("admin token tenant", e))?,
        permissions: json_list("admin token permissions", &r.permissions)?,
        created_at: r.created_at,
        expires_at: r.expires_at,
    })
}

#[async_trait::async_trait]
impl AccessStore for SqlStore {
    async fn create_admin_token(&self, info: &AdminTokenInfo, token_hash: &[u8; 32]) -> Result<()> {
        let sql =
            "INSERT INTO admin_token (token_hash, name, tenant_id, permissions, created_at, expires_at) \
                   VALUES ($1, $2, $3, $4, $5, $6)";
        with_pool!(self, p => sqlx::query(sql)
            .bind(token_hash.as_slice())
            .bind(&info.name)
            .bind(info.tenant.as_ref().map(|t| t.as_str()))
            .bind(to_json(&info.permissions))
            .bind(info.created_at)
            .bind(info.expires_at)
            .execute(p)
            .await
            .map(|_| ())
            .map_err(db))
    }

    async fn get_admin_token(&self, token_hash: &[u8; 32]) -> Result<Option<AdminTokenInfo>> {
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM admin_token WHERE token_hash = $1");
        let row: Option<TokenRow> = with_pool!(self, p => sqlx::query_as(&sql)
            .bind(token_hash.as_slice())
            .fetch_optional(p)
            .await
            .map_err(db))?;
        row.map(token_from_row).transpose()
    }

    async fn list_admin_tokens(&self) -> Result<Vec<AdminTokenInfo>> {
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM admin_token ORDER BY created_at, name");
        let rows: Vec<TokenRow> = with_pool!(self, p => sqlx::query_as(&sql)
            .fetch_all(p)
            .await
            .map_err(db))?;
        rows.into_iter().map(token_from_row).collect()
    }

    async fn delete_admin_token(&self, name: &str) -> Result<bool> {
        with_pool!(self, p => sqlx::query("DELETE FROM admin_token WHERE name = $1")
            .bind(name)
            .execute(p)
            .await
            .map(|r| r.rows_affected() > 0)
            .map_err(db))
    }

    async fn client_admin_permissions(
        &self,
        tenant: &TenantId,
        client: &ClientId,
    ) -> Result<Vec<Permission>> {
        let text: Option<String> = with_pool!(self, p => sqlx::query_scalar(
            "SELECT permissions FROM client_admin_permission WHERE tenant_id = $1 AND client_id = $2")
            .bind(tenant.as_str())
            .bind(client.as_str())
            .fetch_optional(p)
            .await
            .map_err(db))?;
        match text {
            Some(t) => json_list("client admin permissions", &t),
            None => Ok(Vec::new()),
        }
    }

    async fn set_client_admin_permissions(
        &self,
        tenant: &TenantId,
        client: &ClientId,
        permissions: &[Permission],
        now: i64,
    ) -> Result<bool> {
        if self.get_client(tenant, client).await?.is_none() {
            return Ok(false);
        }
        if permissions.is_empty() {
            with_pool!(self, p => sqlx::query(
                "DELETE FROM client_admin_permission WHERE tenant_id = $1 AND client_id = $2")
                .bind(tenant.as_str())
                .bind(client.as_str())
                .execute(p)
                .await
                .map(|_| ())
                .map_err(db))?;
            return Ok(true);
        }
        // The foreign key refuses a client deleted meanwhile.
        let sql = "INSERT INTO client_admin_permission (tenant_id, client_id, permissions, updated_at) \
                   VALUES ($1, $2, $3, $4) \
                   ON CONFLICT (tenant_id, client_id) DO UPDATE SET permissions = excluded.permissions, \
                   updated_at = excluded.updated_at";
        with_pool!(self, p => sqlx::query(sql)
            .bind(tenant.as_str())
            .bind(client.as_str())
            .bind(to_json(&permissions))
            .bind(now)
            .execute(p)
            .await
            .map(|_| ())
            .map_err(db))?;
        Ok(true)
    }
}
