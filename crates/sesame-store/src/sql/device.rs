//! Device authorization requests (RFC 8628): `impl DeviceStore for SqlStore`.
//!
//! Rows are read from the store on every use, never cached, so no write here advances the
//! generation. The device code is stored and looked up only by its SHA-256.

use super::{corrupt, db, hash32, json_list, to_json, Pool, SqlStore};
use sesame_core::device::{DeviceAuthorization, DeviceDecision, DevicePoll, DeviceStatus, SLOW_DOWN_STEP};
use sesame_core::ids::{ClientId, TenantId, UserId};
use sesame_core::model::RefreshToken;
use sesame_core::store::DeviceStore;
use sesame_core::Result;

const COLUMNS: &str = "tenant_id, device_code_hash, user_code, client_id, scope, status, user_id, \
     session_id, auth_time, amr, grant_id, created_at, expires_at, last_poll_at, poll_interval, \
     access_jti, access_exp";

#[derive(sqlx::FromRow)]
struct Row {
    tenant_id: String,
    device_code_hash: Vec<u8>,
    user_code: String,
    client_id: String,
    scope: String,
    status: String,
    user_id: Option<String>,
    session_id: Option<String>,
    auth_time: Option<i64>,
    amr: String,
    grant_id: Option<String>,
    created_at: i64,
    expires_at: i64,
    last_poll_at: Option<i64>,
    poll_interval: i64,
    access_jti: Option<String>,
    access_exp: Option<i64>,
}

impl Row {
    fn into_authorization(self) -> Result<DeviceAuthorization> {
        let what = "device authorization";
        Ok(DeviceAuthorization {
            tenant_id: TenantId::parse(&self.tenant_id).map_err(|e| corrupt(what, e))?,
            device_code_hash: hash32("device code hash", &self.device_code_hash)?,
            user_code: self.user_code,
            client_id: ClientId::parse(&self.client_id).map_err(|e| corrupt(what, e))?,
            scope: self.scope,
            status: DeviceStatus::parse(&self.status)
                .ok_or_else(|| corrupt("device authorization status", &self.status))?,
            user_id: self
                .user_id
                .map(|u| UserId::parse(&u).map_err(|e| corrupt(what, e)))
                .transpose()?,
            session_id: self.session_id,
            auth_time: self.auth_time,
            amr: json_list("device authorization amr", &self.amr)?,
            grant_id: self.grant_id,
            created_at: self.created_at,
            expires_at: self.expires_at,
            last_poll_at: self.last_poll_at,
            interval: self.poll_interval,
            access_jti: self.access_jti,
            access_exp: self.access_exp,
        })
    }
}

#[async_trait::async_trait]
impl DeviceStore for SqlStore {
    async fn insert_device_authorization(&self, d: &DeviceAuthorization) -> Result<()> {
        let sql = format!(
            "INSERT INTO device_authorization ({COLUMNS}) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)"
        );
        with_pool!(self, p => sqlx::query(&sql)
            .bind(d.tenant_id.as_str())
            .bind(d.device_code_hash.as_slice())
            .bind(&d.user_code)
            .bind(d.client_id.as_str())
            .bind(&d.scope)
            .bind(d.status.as_str())
            .bind(d.user_id.as_ref().map(UserId::as_str))
            .bind(&d.session_id)
            .bind(d.auth_time)
            .bind(to_json(&d.amr))
            .bind(&d.grant_id)
            .bind(d.created_at)
            .bind(d.expires_at)
            .bind(d.last_poll_at)
            .bind(d.interval)
            .bind(&d.access_jti)
            .bind(d.access_exp)
            .execute(p)
            .await
            .map(|_| ())
            .map_err(db))
    }

    async fn get_device_authorization(
        &self,
        tenant: &TenantId,
        user_code: &str,
    ) -> Result<Option<DeviceAuthorization>> {
        let sql =
            format!("SELECT {COLUMNS} FROM device_authorization WHERE tenant_id = $1 AND user_code = $2");
        let row: Option<Row> = with_pool!(self, p => sqlx::query_as(&sql)
            .bind(tenant.as_str())
            .bind(user_code)
            .fetch_optional(p)
            .await
            .map_err(db))?;
        row.map(Row::into_authorization).transpose()
    }

    async fn poll_device_authorization(
        &self,
        tenant: &TenantId,
        device_code_hash: &[u8; 32],
        now: i64,
    ) -> Result<Option<DevicePoll>> {
        // In time: one conditional UPDATE, so of two polls at once only one can match.
        let in_time = format!(
            "UPDATE device_authorization SET last_poll_at = $3 \
             WHERE tenant_id = $1 AND device_code_hash = $2 \
             AND (last_poll_at IS NULL OR $3 - last_poll_at >= poll_interval) RETURNING {COLUMNS}"
        );
        // RFC 8628 §3.5: too soon, so the interval grows, for this and every later poll.
        let too_fast = format!(
            "UPDATE device_authorization SET last_poll_at = $3, poll_interval = poll_interval + $4 \
             WHERE tenant_id = $1 AND device_code_hash = $2 RETURNING {COLUMNS}"
        );
        for (sql, slowed) in [(&in_time, false), (&too_fast, true)] {
            let row: Option<Row> = with_pool!(self, p => {
                let q = sqlx::query_as(sql)
                    .bind(tenant.as_str())
                    .bind(device_code_hash.as_slice())
                    .bind(now);
                // Only the second statement has $4.
                let q = if slowed { q.bind(SLOW_DOWN_STEP) } else { q };
                q.fetch_optional(p).await.map_err(db)
            })?;
            if let Some(row) = row {
                return Ok(Some(DevicePoll {
                    authorization: row.into_authorization()?,
                    too_fast: slowed,
                }));
            }
        }
        Ok(None)
    }

    async fn decide_device_authorization(
        &self,
        tenant: &TenantId,
        user_code: &str,
        decision: &DeviceDecision,
        now: i64,
    ) -> Result<bool> {
        let waiting = "tenant_id = $1 AND user_code = $2 AND status = 'pending' AND expires_at > $3";
        let affected = match decision {
            DeviceDecision::Deny => {
                let sql = format!("UPDATE device_authorization SET status = 'denied' WHERE {waiting}");
                with_pool!(self, p => sqlx::query(&sql)
                    .bind(tenant.as_str())
                    .bind(user_code)
                    .bind(now)
                    .execute(p)
                    .await
                    .map(|r| r.rows_affected())
                    .map_err(db))?
            }
            DeviceDecision::Approve {
                user_id,
                session_id,
                auth_time,
                amr,
                grant_id,
            } => {
                let sql = format!(
                    "UPDATE device_authorization SET status = 'approved', user_id = $4, \
                     session_id = $5, auth_time = $6, amr = $7, grant_id = $8 WHERE {waiting}"
                );
                with_pool!(self, p => sqlx::query(&sql)
                    .bind(tenant.as_str())
                    .bind(user_code)
                    .bind(now)
                    .bind(user_id.as_str())
                    .bind(session_id.as_str())
                    .bind(*auth_time)
                    .bind(to_json(amr))
                    .bind(grant_id.as_str())
                    .execute(p)
                    .await
                    .map(|r| r.rows_affected())
                    .map_err(db))?
            }
        };
        Ok(affected == 1)
    }

    async fn redeem_device_authorization(
        &self,
        tenant: &TenantId,
        device_code_hash: &[u8; 32],
        now: i64,
        access_jti: &str,
        access_exp: i64,
        refresh: Option<&RefreshToken>,
    ) -> Result<bool> {
        super::signin::redeem_once(
            self,
            "UPDATE device_authorization SET status = 'redeemed', access_jti = $4, access_exp = $5 \
             WHERE tenant_id = $1 AND device_code_hash = $2 AND status = 'approved' AND expires_at > $3",
            tenant,
            device_code_hash,
            now,
            (access_jti, access_exp),
            refresh,
        )
        .await
    }

    async fn purge_device_authorizations(&self, now: i64) -> Result<u64> {
        with_pool!(self, p => sqlx::query(
            "DELETE FROM device_authorization \
             WHERE expires_at <= $1 AND (access_exp IS NULL OR access_exp <= $1)")
            .bind(now)
            .execute(p)
            .await
            .map(|r| r.rows_affected())
            .map_err(db))
    }
}
