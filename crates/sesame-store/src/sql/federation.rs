//! Brokered SSO: connections, external identities, groups, the admin flag by source, and the
//! tenant's sign-in options (`FederationStore`). Nothing here is cached, so no write advances
//! the generation.

use super::{corrupt, db, json_list, to_json, Pool, SqlStore, USER_COLUMNS};
use sesame_core::federation::{
    AdminFlag, ClaimNames, ConnectionKind, FederatedSignIn, OidcSettings, SsoConnection, UpstreamRefreshToken,
};
use sesame_core::ids::{ConnectionId, TenantId, UserId};
use sesame_core::store::FederationStore;
use sesame_core::Result;

const CONNECTION_COLUMNS: &str = "tenant_id, id, kind, display_name, button_text, button_image_url, \
     enabled, email_domains, trusted_email, admin_groups, claim_email, claim_unique_id, \
     claim_display_name, claim_groups, settings, sealed_secret, sealed_private_key, public_jwk, \
     created_at, updated_at";

#[derive(sqlx::FromRow)]
struct ConnectionRow {
    tenant_id: String,
    id: String,
    kind: String,
    display_name: String,
    button_text: String,
    button_image_url: Option<String>,
    enabled: bool,
    email_domains: String,
    trusted_email: bool,
    admin_groups: String,
    claim_email: String,
    claim_unique_id: String,
    claim_display_name: Option<String>,
    claim_groups: Option<String>,
    settings: String,
    sealed_secret: Option<Vec<u8>>,
    sealed_private_key: Option<Vec<u8>>,
    public_jwk: Option<String>,
    created_at: i64,
    updated_at: i64,
}

impl ConnectionRow {
    fn into_connection(self) -> Result<SsoConnection> {
        let kind = ConnectionKind::parse(&self.kind).map_err(|e| corrupt("connection kind", e))?;
        let (oidc, saml) = match kind {
            ConnectionKind::Oidc => (
                Some(
                    serde_json::from_str::<OidcSettings>(&self.settings)
                        .map_err(|e| corrupt("connection settings", e))?,
                ),
                None,
            ),
            ConnectionKind::Saml => (
                None,
                Some(
                    serde_json::from_str::<sesame_core::saml::SamlSettings>(&self.settings)
                        .map_err(|e| corrupt("connection settings", e))?,
                ),
            ),
        };
        Ok(SsoConnection {
            tenant_id: TenantId::parse(&self.tenant_id).map_err(|e| corrupt("connection tenant", e))?,
            id: ConnectionId::parse(&self.id).map_err(|e| corrupt("connection name", e))?,
            kind,
            display_name: self.display_name,
            button_text: self.button_text,
            button_image_url: self.button_image_url,
            enabled: self.enabled,
            email_domains: json_list("connection email domains", &self.email_domains)?,
            trusted_email: self.trusted_email,
            admin_groups: json_list("connection admin groups", &self.admin_groups)?,
            claims: ClaimNames {
                email: self.claim_email,
                unique_id: self.claim_unique_id,
                display_name: self.claim_display_name,
                groups: self.claim_groups,
            },
            oidc,
            saml,
            sealed_secret: self.sealed_secret,
            sealed_private_key: self.sealed_private_key,
            public_jwk: self.public_jwk,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

fn settings_json(c: &SsoConnection) -> String {
    match (&c.oidc, &c.saml) {
        (Some(o), _) => serde_json::to_string(o).expect("settings serialize"),
        (None, Some(s)) => serde_json::to_string(s).expect("settings serialize"),
        (None, None) => "{}".to_owned(),
    }
}

/// Binds a connection's columns in `CONNECTION_COLUMNS` order.
macro_rules! bind_connection {
    ($q:expr, $c:expr) => {
        $q.bind($c.tenant_id.as_str())
            .bind($c.id.as_str())
            .bind($c.kind.as_str())
            .bind(&$c.display_name)
            .bind(&$c.button_text)
            .bind(&$c.button_image_url)
            .bind($c.enabled)
            .bind(to_json(&$c.email_domains))
            .bind($c.trusted_email)
            .bind(to_json(&$c.admin_groups))
            .bind(&$c.claims.email)
            .bind(&$c.claims.unique_id)
            .bind(&$c.claims.display_name)
            .bind(&$c.claims.groups)
            .bind(settings_json($c))
            .bind(&$c.sealed_secret)
            .bind(&$c.sealed_private_key)
            .bind(&$c.public_jwk)
            .bind($c.created_at)
            .bind($c.updated_at)
    };
}

#[async_trait::async_trait]
impl FederationStore for SqlStore {
    async fn create_sso_connection(&self, c: &SsoConnection) -> Result<()> {
        let sql = format!(
            "INSERT INTO sso_connection ({CONNECTION_COLUMNS}) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)"
        );
        with_pool!(self, p => bind_connection!(sqlx::query(&sql), c)
        .execute(p)
        .await
        .map(|_| ())
        .map_err(|e| match db(e) {
            sesame_core::Error::Conflict(_) => sesame_core::Error::Conflict(format!(
                "connection '{}' exists in tenant '{}'", c.id, c.tenant_id)),
            other => other,
        }))
    }

    async fn update_sso_connection(&self, c: &SsoConnection) -> Result<bool> {
        // The same binding order as the insert; created_at ($19) is not written.
        let sql = "UPDATE sso_connection SET kind = $3, display_name = $4, button_text = $5, \
             button_image_url = $6, enabled = $7, email_domains = $8, trusted_email = $9, \
             admin_groups = $10, claim_email = $11, claim_unique_id = $12, claim_display_name = $13, \
             claim_groups = $14, settings = $15, sealed_secret = $16, sealed_private_key = $17, \
             public_jwk = $18, updated_at = $20 WHERE tenant_id = $1 AND id = $2 AND created_at = $19";
        with_pool!(self, p => bind_connection!(sqlx::query(sql), c)
            .execute(p)
            .await
            .map(|r| r.rows_affected() == 1)
            .map_err(db))
    }

    async fn get_sso_connection(
        &self,
        tenant: &TenantId,
        id: &ConnectionId,
    ) -> Result<Option<SsoConnection>> {
        let sql = format!("SELECT {CONNECTION_COLUMNS} FROM sso_connection WHERE tenant_id = $1 AND id = $2");
        let row: Option<ConnectionRow> = with_pool!(self, p => sqlx::query_as(&sql)
            .bind(tenant.as_str())
            .bind(id.as_str())
            .fetch_optional(p)
            .await
            .map_err(db))?;
        row.map(ConnectionRow::into_connection).transpose()
    }

    async fn list_sso_connections(&self, tenant: &TenantId) -> Result<Vec<SsoConnection>> {
        let sql = format!("SELECT {CONNECTION_COLUMNS} FROM sso_connection WHERE tenant_id = $1 ORDER BY id");
        let rows: Vec<ConnectionRow> = with_pool!(self, p => sqlx::query_as(&sql)
            .bind(tenant.as_str())
            .fetch_all(p)
            .await
            .map_err(db))?;
        rows.into_iter().map(ConnectionRow::into_connection).collect()
    }

    async fn delete_sso_connection(&self, tenant: &TenantId, id: &ConnectionId) -> Result<bool> {
        with_pool!(self, p => {
            let mut tx = p.begin().await.map_err(db)?;
            for sql in [
                "DELETE FROM external_identity WHERE tenant_id = $1 AND connection_id = $2",
                "DELETE FROM user_group WHERE tenant_id = $1 AND connection_id = $2",
            ] {
                sqlx::query(sql)
                    .bind(tenant.as_str())
                    .bind(id.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
            }
            let n = sqlx::query("DELETE FROM sso_connection WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.as_str())
                .bind(id.as_str())
                .execute(&mut *tx)
                .await
                .map_err(db)?
                .rows_affected();
            tx.commit().await.map_err(db)?;
            Ok(n == 1)
        })
    }

    async fn find_external_identity(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        subject: &str,
    ) -> Result<Option<UserId>> {
        let row: Option<(String,)> = with_pool!(self, p => sqlx::query_as(
            "SELECT user_id FROM external_identity WHERE tenant_id = $1 AND connection_id = $2 AND subject = $3")
            .bind(tenant.as_str())
            .bind(connection.as_str())
            .bind(subject)
            .fetch_optional(p)
            .await
            .map_err(db))?;
        row.map(|(id,)| UserId::parse(&id).map_err(|e| corrupt("external identity user", e)))
            .transpose()
    }

    async fn find_users_by_email(&self, tenant: &TenantId, email: &str) -> Result<Vec<UserId>> {
        let rows: Vec<(String,)> = with_pool!(self, p => sqlx::query_as(
            "SELECT id FROM user_account WHERE tenant_id = $1 AND lower(email) = lower($2) ORDER BY id")
            .bind(tenant.as_str())
            .bind(email)
            .fetch_all(p)
            .await
            .map_err(db))?;
        rows.into_iter()
            .map(|(id,)| UserId::parse(&id).map_err(|e| corrupt("user id", e)))
            .collect()
    }

    async fn record_federated_sign_in(&self, s: &FederatedSignIn) -> Result<()> {
        let u = &s.user;
        let tenant = u.tenant_id.as_str();
        with_pool!(self, p => {
            let mut tx = p.begin().await.map_err(db)?;
            if s.new_user {
                let sql = format!(
                    "INSERT INTO user_account ({USER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
                );
                sqlx::query(&sql)
                    .bind(tenant)
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
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
            } else {
                // The profile only: a disabled flag or password set meanwhile is not overwritten.
                sqlx::query(
                    "UPDATE user_account SET email = $3, email_verified = $4, name = $5, updated_at = $6 \
                     WHERE tenant_id = $1 AND id = $2")
                    .bind(tenant)
                    .bind(u.id.as_str())
                    .bind(&u.email)
                    .bind(u.email_verified)
                    .bind(&u.name)
                    .bind(u.updated_at)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
            }
            if s.new_link {
                sqlx::query(
                    "INSERT INTO external_identity (tenant_id, connection_id, subject, user_id, email, \
                     created_at, last_sign_in_at) VALUES ($1, $2, $3, $4, $5, $6, $6)")
                    .bind(tenant)
                    .bind(s.connection.as_str())
                    .bind(&s.subject)
                    .bind(u.id.as_str())
                    .bind(&u.email)
                    .bind(s.now)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
            } else {
                sqlx::query(
                    "UPDATE external_identity SET email = $4, last_sign_in_at = $5 \
                     WHERE tenant_id = $1 AND connection_id = $2 AND subject = $3")
                    .bind(tenant)
                    .bind(s.connection.as_str())
                    .bind(&s.subject)
                    .bind(&u.email)
                    .bind(s.now)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
            }
            // Replaced, never merged: a group the IdP no longer sends is gone.
            sqlx::query("DELETE FROM user_group WHERE tenant_id = $1 AND user_id = $2 AND connection_id = $3")
                .bind(tenant)
                .bind(u.id.as_str())
                .bind(s.connection.as_str())
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            let mut groups: Vec<&String> = s.groups.iter().collect();
            groups.sort();
            groups.dedup();
            for g in groups {
                sqlx::query("INSERT INTO user_group (tenant_id, user_id, connection_id, name) VALUES ($1, $2, $3, $4)")
                    .bind(tenant)
                    .bind(u.id.as_str())
                    .bind(s.connection.as_str())
                    .bind(g)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
            }
            sqlx::query("UPDATE user_account SET admin_by_sso = $3 WHERE tenant_id = $1 AND id = $2")
                .bind(tenant)
                .bind(u.id.as_str())
                .bind(s.admin_by_sso)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            tx.commit().await.map_err(db)?;
            Ok(())
        })
    }

    async fn user_groups(&self, tenant: &TenantId, user: &UserId) -> Result<Vec<String>> {
        let rows: Vec<(String,)> = with_pool!(self, p => sqlx::query_as(
            "SELECT DISTINCT name FROM user_group WHERE tenant_id = $1 AND user_id = $2 ORDER BY name")
            .bind(tenant.as_str())
            .bind(user.as_str())
            .fetch_all(p)
            .await
            .map_err(db))?;
        Ok(rows.into_iter().map(|(g,)| g).collect())
    }

    async fn user_external_identities(
        &self,
        tenant: &TenantId,
        user: &UserId,
    ) -> Result<Vec<(ConnectionId, String)>> {
        let rows: Vec<(String, String)> = with_pool!(self, p => sqlx::query_as(
            "SELECT connection_id, subject FROM external_identity WHERE tenant_id = $1 AND user_id = $2 \
             ORDER BY connection_id, subject")
            .bind(tenant.as_str())
            .bind(user.as_str())
            .fetch_all(p)
            .await
            .map_err(db))?;
        rows.into_iter()
            .map(|(c, s)| {
                Ok((
                    ConnectionId::parse(&c).map_err(|e| corrupt("connection name", e))?,
                    s,
                ))
            })
            .collect()
    }

    async fn user_admin(&self, tenant: &TenantId, user: &UserId) -> Result<AdminFlag> {
        let row: Option<(bool, bool)> = with_pool!(self, p => sqlx::query_as(
            "SELECT admin, admin_by_sso FROM user_account WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.as_str())
            .bind(user.as_str())
            .fetch_optional(p)
            .await
            .map_err(db))?;
        Ok(row
            .map(|(by_hand, by_sso)| AdminFlag { by_hand, by_sso })
            .unwrap_or_default())
    }

    async fn set_user_admin(&self, tenant: &TenantId, user: &UserId, admin: bool) -> Result<bool> {
        with_pool!(self, p => sqlx::query("UPDATE user_account SET admin = $3 WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.as_str())
            .bind(user.as_str())
            .bind(admin)
            .execute(p)
            .await
            .map(|r| r.rows_affected() == 1)
            .map_err(db))
    }

    async fn password_sign_in(&self, tenant: &TenantId) -> Result<bool> {
        let row: Option<(bool,)> = with_pool!(self, p => sqlx::query_as(
            "SELECT password_sign_in FROM sso_setting WHERE tenant_id = $1")
            .bind(tenant.as_str())
            .fetch_optional(p)
            .await
            .map_err(db))?;
        Ok(row.is_none_or(|(allowed,)| allowed))
    }

    async fn set_password_sign_in(&self, tenant: &TenantId, allowed: bool) -> Result<()> {
        with_pool!(self, p => sqlx::query(
            "INSERT INTO sso_setting (tenant_id, password_sign_in) VALUES ($1, $2) \
             ON CONFLICT (tenant_id) DO UPDATE SET password_sign_in = excluded.password_sign_in")
            .bind(tenant.as_str())
            .bind(allowed)
            .execute(p)
            .await
            .map(|_| ())
            .map_err(db))
    }

    // Re-check upstream on refresh ----------------------------------------------------------------

    async fn set_upstream_refresh_token(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        subject: &str,
        sealed: Option<&[u8]>,
    ) -> Result<bool> {
        let n = with_pool!(self, p => sqlx::query(
            "UPDATE external_identity SET sealed_refresh_token = $4 \
             WHERE tenant_id = $1 AND connection_id = $2 AND subject = $3")
            .bind(tenant.as_str())
            .bind(connection.as_str())
            .bind(subject)
            .bind(sealed)
            .execute(p)
            .await
            .map(|r| r.rows_affected())
            .map_err(db))?;
        Ok(n == 1)
    }

    async fn upstream_refresh_tokens(
        &self,
        tenant: &TenantId,
        user: &UserId,
    ) -> Result<Vec<UpstreamRefreshToken>> {
        let rows: Vec<(String, String, Vec<u8>)> = with_pool!(self, p => sqlx::query_as(
            "SELECT connection_id, subject, sealed_refresh_token FROM external_identity \
             WHERE tenant_id = $1 AND user_id = $2 AND sealed_refresh_token IS NOT NULL \
             ORDER BY connection_id, subject")
            .bind(tenant.as_str())
            .bind(user.as_str())
            .fetch_all(p)
            .await
            .map_err(db))?;
        rows.into_iter()
            .map(|(c, subject, sealed)| {
                Ok(UpstreamRefreshToken {
                    connection: ConnectionId::parse(&c).map_err(|e| corrupt("connection name", e))?,
                    subject,
                    sealed,
                })
            })
            .collect()
    }
}
