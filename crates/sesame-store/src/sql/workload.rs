//! Sources and the tenant's workload settings (`WorkloadStore`). Nothing here is cached, so no
//! write advances the generation.

use super::{corrupt, db, json_list, to_json, Pool, SqlStore};
use sesame_core::ids::{ClientId, TenantId};
use sesame_core::store::WorkloadStore;
use sesame_core::workload::{Source, SourceId, WorkloadSettings};
use sesame_core::Result;

const SOURCE_COLUMNS: &str = "tenant_id, id, name, client_id, audiences, scopes, token_ttl, created_at";

#[derive(sqlx::FromRow)]
struct SourceRow {
    tenant_id: String,
    id: String,
    name: String,
    client_id: String,
    audiences: String,
    scopes: String,
    token_ttl: i64,
    created_at: i64,
}

impl SourceRow {
    fn into_source(self) -> Result<Source> {
        Ok(Source {
            tenant_id: TenantId::parse(&self.tenant_id).map_err(|e| corrupt("source tenant", e))?,
            id: SourceId::parse(&self.id).map_err(|e| corrupt("source id", e))?,
            name: self.name,
            client_id: ClientId::parse(&self.client_id).map_err(|e| corrupt("source client", e))?,
            audiences: json_list("source audiences", &self.audiences)?,
            scopes: json_list("source scopes", &self.scopes)?,
            token_ttl: self.token_ttl,
            created_at: self.created_at,
        })
    }
}

#[async_trait::async_trait]
impl WorkloadStore for SqlStore {
    async fn get_workload_settings(&self, tenant: &TenantId) -> Result<Option<WorkloadSettings>> {
        let row: Option<(Option<String>, i64)> = with_pool!(self, p => sqlx::query_as(
            "SELECT workload_issuer, session_max_ttl FROM workload_setting WHERE tenant_id = $1")
            .bind(tenant.as_str())
            .fetch_optional(p)
            .await
            .map_err(db))?;
        Ok(row.map(|(workload_issuer, session_max_ttl)| WorkloadSettings {
            tenant_id: tenant.clone(),
            workload_issuer,
            session_max_ttl,
        }))
    }

    async fn put_workload_settings(&self, x: &WorkloadSettings) -> Result<()> {
        with_pool!(self, p => sqlx::query(
            "INSERT INTO workload_setting (tenant_id, workload_issuer, session_max_ttl) VALUES ($1, $2, $3) \
             ON CONFLICT (tenant_id) DO UPDATE SET workload_issuer = excluded.workload_issuer, session_max_ttl = excluded.session_max_ttl")
            .bind(x.tenant_id.as_str())
            .bind(&x.workload_issuer)
            .bind(x.session_max_ttl)
            .execute(p)
            .await
            .map(|_| ())
            .map_err(db))
    }

    async fn create_source(&self, x: &Source) -> Result<()> {
        let sql = format!("INSERT INTO source ({SOURCE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)");
        with_pool!(self, p => sqlx::query(&sql)
            .bind(x.tenant_id.as_str())
            .bind(x.id.as_str())
            .bind(&x.name)
            .bind(x.client_id.as_str())
            .bind(to_json(&x.audiences))
            .bind(to_json(&x.scopes))
            .bind(x.token_ttl)
            .bind(x.created_at)
            .execute(p)
            .await
            .map(|_| ())
            .map_err(db))
    }

    async fn get_source(&self, tenant: &TenantId, id: &SourceId) -> Result<Option<Source>> {
        let sql = format!("SELECT {SOURCE_COLUMNS} FROM source WHERE tenant_id = $1 AND id = $2");
        let row: Option<SourceRow> = with_pool!(self, p => sqlx::query_as(&sql)
            .bind(tenant.as_str())
            .bind(id.as_str())
            .fetch_optional(p)
            .await
            .map_err(db))?;
        row.map(SourceRow::into_source).transpose()
    }

    async fn get_source_by_client(&self, tenant: &TenantId, client: &ClientId) -> Result<Option<Source>> {
        let sql = format!("SELECT {SOURCE_COLUMNS} FROM source WHERE tenant_id = $1 AND client_id = $2");
        let row: Option<SourceRow> = with_pool!(self, p => sqlx::query_as(&sql)
            .bind(tenant.as_str())
            .bind(client.as_str())
            .fetch_optional(p)
            .await
            .map_err(db))?;
        row.map(SourceRow::into_source).transpose()
    }

    async fn list_sources(&self, tenant: &TenantId) -> Result<Vec<Source>> {
        let sql = format!("SELECT {SOURCE_COLUMNS} FROM source WHERE tenant_id = $1 ORDER BY name, id");
        let rows: Vec<SourceRow> = with_pool!(self, p => sqlx::query_as(&sql)
            .bind(tenant.as_str())
            .fetch_all(p)
            .await
            .map_err(db))?;
        rows.into_iter().map(SourceRow::into_source).collect()
    }

    async fn delete_source(&self, tenant: &TenantId, id: &SourceId) -> Result<bool> {
        with_pool!(self, p => sqlx::query("DELETE FROM source WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.as_str())
            .bind(id.as_str())
            .execute(p)
            .await
            .map(|r| r.rows_affected() == 1)
            .map_err(db))
    }
}
