//! Trust policies for outside issuers and the single use of client assertions (`TrustStore`).
//!
//! Policies are cached with their tenant, so their changes advance the generation. Assertion
//! `jti`s are not cached: the primary key of `assertion_jti` is the single-use check.

use super::{corrupt, db, Pool, SqlStore, BUMP_GENERATION};
use sesame_core::ids::{ClientId, TenantId};
use sesame_core::store::TrustStore;
use sesame_core::trust::{TrustPolicy, TrustPolicySpec};
use sesame_core::{Error, Result};

#[derive(sqlx::FromRow)]
struct PolicyRow {
    tenant_id: String,
    policy: String,
    created_at: i64,
    updated_at: i64,
}

const POLICY_COLUMNS: &str = "tenant_id, policy, created_at, updated_at";

fn policy_from_row(r: PolicyRow) -> Result<TrustPolicy> {
    let spec: TrustPolicySpec = serde_json::from_str(&r.policy).map_err(|e| corrupt("trust policy", e))?;
    Ok(TrustPolicy {
        tenant_id: TenantId::parse(&r.tenant_id).map_err(|e| corrupt("trust policy tenant", e))?,
        spec,
        created_at: r.created_at,
        updated_at: r.updated_at,
    })
}

fn spec_json(p: &TrustPolicy) -> String {
    serde_json::to_string(&p.spec).expect("spec serializes")
}

#[async_trait::async_trait]
impl TrustStore for SqlStore {
    async fn create_trust_policy(&self, p: &TrustPolicy) -> Result<()> {
        let sql = "INSERT INTO trust_policy (tenant_id, name, issuer, policy, created_at, updated_at) \
                   VALUES ($1, $2, $3, $4, $5, $6)";
        with_pool!(self, pool => {
            let mut tx = pool.begin().await.map_err(db)?;
            sqlx::query(sql)
                .bind(p.tenant_id.as_str())
                .bind(&p.spec.name)
                .bind(&p.spec.issuer)
                .bind(spec_json(p))
                .bind(p.created_at)
                .bind(p.updated_at)
                .execute(&mut *tx)
                .await
                .map_err(|e| match db(e) {
                    Error::Conflict(_) => Error::Conflict(format!(
                        "trust policy '{}' already exists in tenant '{}'", p.spec.name, p.tenant_id)),
                    other => other,
                })?;
            sqlx::query(BUMP_GENERATION).execute(&mut *tx).await.map_err(db)?;
            tx.commit().await.map_err(db)
        })
    }

    async fn update_trust_policy(&self, p: &TrustPolicy) -> Result<bool> {
        let sql = "UPDATE trust_policy SET issuer = $3, policy = $4, updated_at = $5 \
                   WHERE tenant_id = $1 AND name = $2";
        with_pool!(self, pool => {
            let mut tx = pool.begin().await.map_err(db)?;
            let n = sqlx::query(sql)
                .bind(p.tenant_id.as_str())
                .bind(&p.spec.name)
                .bind(&p.spec.issuer)
                .bind(spec_json(p))
                .bind(p.updated_at)
                .execute(&mut *tx)
                .await
                .map_err(db)?
                .rows_affected();
            sqlx::query(BUMP_GENERATION).execute(&mut *tx).await.map_err(db)?;
            tx.commit().await.map_err(db)?;
            Ok(n == 1)
        })
    }

    async fn get_trust_policy(&self, tenant: &TenantId, name: &str) -> Result<Option<TrustPolicy>> {
        let sql = format!("SELECT {POLICY_COLUMNS} FROM trust_policy WHERE tenant_id = $1 AND name = $2");
        let row: Option<PolicyRow> = with_pool!(self, pool => sqlx::query_as(&sql)
            .bind(tenant.as_str())
            .bind(name)
            .fetch_optional(pool)
            .await
            .map_err(db))?;
        row.map(policy_from_row).transpose()
    }

    async fn list_trust_policies(&self, tenant: &TenantId) -> Result<Vec<TrustPolicy>> {
        let sql = format!("SELECT {POLICY_COLUMNS} FROM trust_policy WHERE tenant_id = $1 ORDER BY name");
        let rows: Vec<PolicyRow> = with_pool!(self, pool => sqlx::query_as(&sql)
            .bind(tenant.as_str())
            .fetch_all(pool)
            .await
            .map_err(db))?;
        rows.into_iter().map(policy_from_row).collect()
    }

    async fn delete_trust_policy(&self, tenant: &TenantId, name: &str) -> Result<bool> {
        with_pool!(self, pool => {
            let mut tx = pool.begin().await.map_err(db)?;
            let named_by: Option<(String,)> = sqlx::query_as(
                "SELECT client_id FROM client WHERE tenant_id = $1 AND trust_policy = $2 ORDER BY client_id LIMIT 1",
            )
            .bind(tenant.as_str())
            .bind(name)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?;
            if let Some((client,)) = named_by {
                return Err(Error::Conflict(format!(
                    "trust policy '{name}' is named by client '{client}' of tenant '{tenant}': \
                     change or delete that client first"
                )));
            }
            let n = sqlx::query("DELETE FROM trust_policy WHERE tenant_id = $1 AND name = $2")
                .bind(tenant.as_str())
                .bind(name)
                .execute(&mut *tx)
                .await
                .map_err(db)?
                .rows_affected();
            sqlx::query(BUMP_GENERATION).execute(&mut *tx).await.map_err(db)?;
            tx.commit().await.map_err(db)?;
            Ok(n == 1)
        })
    }

    async fn use_assertion_jti(
        &self,
        tenant: &TenantId,
        client: &ClientId,
        jti: &str,
        expires_at: i64,
    ) -> Result<bool> {
        // Insert-if-absent on the primary key: of concurrent uses, on any replica, one inserts.
        let sql =
            "INSERT INTO assertion_jti (tenant_id, client_id, jti, expires_at) VALUES ($1, $2, $3, $4) \
                   ON CONFLICT (tenant_id, client_id, jti) DO NOTHING";
        let n = with_pool!(self, pool => sqlx::query(sql)
            .bind(tenant.as_str())
            .bind(client.as_str())
            .bind(jti)
            .bind(expires_at)
            .execute(pool)
            .await
            .map_err(db)?
            .rows_affected());
        Ok(n == 1)
    }

    async fn purge_assertion_jtis(&self, now: i64) -> Result<u64> {
        let n = with_pool!(self, pool => sqlx::query("DELETE FROM assertion_jti WHERE expires_at < $1")
            .bind(now)
            .execute(pool)
            .await
            .map_err(db)?
            .rows_affected());
        Ok(n)
    }
}
