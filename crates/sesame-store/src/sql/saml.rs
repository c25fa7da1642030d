//! SAML 2.0 brokered SSO: the single use of assertions (`impl SamlStore for SqlStore`, table
//! `saml_assertion`).

use super::{db, Pool, SqlStore};
use sesame_core::ids::{ConnectionId, TenantId};
use sesame_core::store::SamlStore;
use sesame_core::Result;

#[async_trait::async_trait]
impl SamlStore for SqlStore {
    async fn use_saml_assertion(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        assertion_id: &str,
        expires_at: i64,
    ) -> Result<bool> {
        // Insert-if-absent on the primary key: of concurrent uses, on any replica, one inserts.
        let sql = "INSERT INTO saml_assertion (tenant_id, connection_id, assertion_id, expires_at) \
                   VALUES ($1, $2, $3, $4) \
                   ON CONFLICT (tenant_id, connection_id, assertion_id) DO NOTHING";
        let n = with_pool!(self, pool => sqlx::query(sql)
            .bind(tenant.as_str())
            .bind(connection.as_str())
            .bind(assertion_id)
            .bind(expires_at)
            .execute(pool)
            .await
            .map_err(db)?
            .rows_affected());
        Ok(n == 1)
    }

    async fn purge_saml_assertions(&self, now: i64) -> Result<u64> {
        let n = with_pool!(self, pool => sqlx::query("DELETE FROM saml_assertion WHERE expires_at < $1")
            .bind(now)
            .execute(pool)
            .await
            .map_err(db)?
            .rows_affected());
        Ok(n)
    }
}
