//! Browser sign-in: sessions, authorization codes, refresh tokens, grants, consents and sign-in
//! throttling, for the `Store` impl in `sql.rs`, which delegates here.
//!
//! None of these rows is cached, so none of these writes advances the generation. Bearer
//! secrets are stored and looked up only by their SHA-256.

use super::{corrupt, db, hash32, json_list, to_json, Pool, SqlStore};
use sesame_core::ids::{ClientId, TenantId, UserId};
use sesame_core::login;
use sesame_core::model::{
    AuthorizationCode, BrowserSession, Consent, ImplicitGrant, LoginAttempt, LoginFailures, LoginLimit,
    RefreshToken,
};
use sesame_core::Result;

/// Login failures older than this are purged whatever the throttling window (a day).
const LOGIN_FAILURE_RETENTION: i64 = 24 * 3600;

fn tenant_id(what: &str, s: &str) -> Result<TenantId> {
    TenantId::parse(s).map_err(|e| corrupt(what, e))
}

fn user_id(what: &str, s: &str) -> Result<UserId> {
    UserId::parse(s).map_err(|e| corrupt(what, e))
}

fn client_id(what: &str, s: &str) -> Result<ClientId> {
    ClientId::parse(s).map_err(|e| corrupt(what, e))
}

// Sessions ------------------------------------------------------------------------------------

const SESSION_COLUMNS: &str =
    "tenant_id, id, secret_hash, user_id, auth_time, amr, user_agent, ip, created_at, expires_at";

#[derive(sqlx::FromRow)]
struct SessionRow {
    tenant_id: String,
    id: String,
    secret_hash: Vec<u8>,
    user_id: String,
    auth_time: i64,
    amr: String,
    user_agent: Option<String>,
    ip: Option<String>,
    created_at: i64,
    expires_at: i64,
}

impl SessionRow {
    fn into_session(self) -> Result<BrowserSession> {
        Ok(BrowserSession {
            tenant_id: tenant_id("session tenant", &self.tenant_id)?,
            id: self.id,
            secret_hash: hash32("session secret hash", &self.secret_hash)?,
            user_id: user_id("session user", &self.user_id)?,
            auth_time: self.auth_time,
            amr: json_list("session amr", &self.amr)?,
            user_agent: self.user_agent,
            ip: self.ip,
            created_at: self.created_at,
            expires_at: self.expires_at,
        })
    }
}

pub(super) async fn insert_session(s: &SqlStore, x: &BrowserSession) -> Result<()> {
    let sql = format!(
        "INSERT INTO browser_session ({SESSION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
    );
    with_pool!(s, p => sqlx::query(&sql)
        .bind(x.tenant_id.as_str())
        .bind(&x.id)
        .bind(x.secret_hash.as_slice())
        .bind(x.user_id.as_str())
        .bind(x.auth_time)
        .bind(to_json(&x.amr))
        .bind(&x.user_agent)
        .bind(&x.ip)
        .bind(x.created_at)
        .bind(x.expires_at)
        .execute(p)
        .await
        .map(|_| ())
        .map_err(db))
}

pub(super) async fn get_session(
    s: &SqlStore,
    tenant: &TenantId,
    secret_hash: &[u8; 32],
    now: i64,
) -> Result<Option<BrowserSession>> {
    let sql = format!(
        "SELECT {SESSION_COLUMNS} FROM browser_session \
         WHERE tenant_id = $1 AND secret_hash = $2 AND expires_at > $3"
    );
    let params = (tenant.as_str(), secret_hash.as_slice(), now);
    let row: Option<SessionRow> = match s.read_now(&sql, params, session_row) {
        Some(read) => read?,
        None => with_pool!(s, p => sqlx::query_as(&sql)
            .bind(tenant.as_str())
            .bind(secret_hash.as_slice())
            .bind(now)
            .fetch_optional(p)
            .await
            .map_err(db))?,
    };
    row.map(SessionRow::into_session).transpose()
}

fn session_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SessionRow> {
    Ok(from_rusqlite!(
        r,
        SessionRow {
            tenant_id,
            id,
            secret_hash,
            user_id,
            auth_time,
            amr,
            user_agent,
            ip,
            created_at,
            expires_at,
        }
    ))
}

pub(super) async fn list_sessions(
    s: &SqlStore,
    tenant: &TenantId,
    user: &UserId,
    now: i64,
) -> Result<Vec<BrowserSession>> {
    let sql = format!(
        "SELECT {SESSION_COLUMNS} FROM browser_session \
         WHERE tenant_id = $1 AND user_id = $2 AND expires_at > $3 ORDER BY created_at DESC, id"
    );
    let rows: Vec<SessionRow> = with_pool!(s, p => sqlx::query_as(&sql)
        .bind(tenant.as_str())
        .bind(user.as_str())
        .bind(now)
        .fetch_all(p)
        .await
        .map_err(db))?;
    rows.into_iter().map(SessionRow::into_session).collect()
}

pub(super) async fn delete_session(s: &SqlStore, tenant: &TenantId, id: &str) -> Result<bool> {
    with_pool!(s, p => sqlx::query("DELETE FROM browser_session WHERE tenant_id = $1 AND id = $2")
        .bind(tenant.as_str())
        .bind(id)
        .execute(p)
        .await
        .map(|r| r.rows_affected() == 1)
        .map_err(db))
}

pub(super) async fn delete_user_sessions(s: &SqlStore, tenant: &TenantId, user: &UserId) -> Result<u64> {
    with_pool!(s, p => sqlx::query("DELETE FROM browser_session WHERE tenant_id = $1 AND user_id = $2")
        .bind(tenant.as_str())
        .bind(user.as_str())
        .execute(p)
        .await
        .map(|r| r.rows_affected())
        .map_err(db))
}

pub(super) async fn add_session_client(
    s: &SqlStore,
    tenant: &TenantId,
    session_id: &str,
    client: &ClientId,
    expires_at: i64,
) -> Result<()> {
    with_pool!(s, p => sqlx::query(
        "INSERT INTO session_client (tenant_id, session_id, client_id, expires_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (tenant_id, session_id, client_id) DO NOTHING")
        .bind(tenant.as_str())
        .bind(session_id)
        .bind(client.as_str())
        .bind(expires_at)
        .execute(p)
        .await
        .map(|_| ())
        .map_err(db))
}

pub(super) async fn session_clients(
    s: &SqlStore,
    tenant: &TenantId,
    session_id: &str,
) -> Result<Vec<ClientId>> {
    let ids: Vec<String> = with_pool!(s, p => sqlx::query_scalar(
        "SELECT client_id FROM session_client WHERE tenant_id = $1 AND session_id = $2 ORDER BY client_id")
        .bind(tenant.as_str())
        .bind(session_id)
        .fetch_all(p)
        .await
        .map_err(db))?;
    ids.iter().map(|id| client_id("session client", id)).collect()
}

// Authorization codes -------------------------------------------------------------------------

const CODE_COLUMNS: &str =
    "tenant_id, code_hash, grant_id, client_id, user_id, session_id, redirect_uri, scope, nonce, \
     code_challenge, auth_time, amr, created_at, expires_at, redeemed_at, access_jti, access_exp";

#[derive(sqlx::FromRow)]
struct CodeRow {
    tenant_id: String,
    code_hash: Vec<u8>,
    grant_id: String,
    client_id: String,
    user_id: String,
    session_id: String,
    redirect_uri: String,
    scope: String,
    nonce: Option<String>,
    code_challenge: Option<String>,
    auth_time: i64,
    amr: String,
    created_at: i64,
    expires_at: i64,
    redeemed_at: Option<i64>,
    access_jti: Option<String>,
    access_exp: Option<i64>,
}

impl CodeRow {
    fn into_code(self) -> Result<AuthorizationCode> {
        Ok(AuthorizationCode {
            tenant_id: tenant_id("code tenant", &self.tenant_id)?,
            code_hash: hash32("code hash", &self.code_hash)?,
            grant_id: self.grant_id,
            client_id: client_id("code client", &self.client_id)?,
            user_id: user_id("code user", &self.user_id)?,
            session_id: self.session_id,
            redirect_uri: self.redirect_uri,
            scope: self.scope,
            nonce: self.nonce,
            code_challenge: self.code_challenge,
            auth_time: self.auth_time,
            amr: json_list("code amr", &self.amr)?,
            created_at: self.created_at,
            expires_at: self.expires_at,
            redeemed_at: self.redeemed_at,
            access_jti: self.access_jti,
            access_exp: self.access_exp,
        })
    }
}

pub(super) async fn insert_code(s: &SqlStore, c: &AuthorizationCode) -> Result<()> {
    let sql = format!(
        "INSERT INTO authorization_code ({CODE_COLUMNS}) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)"
    );
    with_pool!(s, p => sqlx::query(&sql)
        .bind(c.tenant_id.as_str())
        .bind(c.code_hash.as_slice())
        .bind(&c.grant_id)
        .bind(c.client_id.as_str())
        .bind(c.user_id.as_str())
        .bind(&c.session_id)
        .bind(&c.redirect_uri)
        .bind(&c.scope)
        .bind(&c.nonce)
        .bind(&c.code_challenge)
        .bind(c.auth_time)
        .bind(to_json(&c.amr))
        .bind(c.created_at)
        .bind(c.expires_at)
        .bind(c.redeemed_at)
        .bind(&c.access_jti)
        .bind(c.access_exp)
        .execute(p)
        .await
        .map(|_| ())
        .map_err(db))
}

pub(super) async fn get_code(
    s: &SqlStore,
    tenant: &TenantId,
    code_hash: &[u8; 32],
) -> Result<Option<AuthorizationCode>> {
    let sql =
        format!("SELECT {CODE_COLUMNS} FROM authorization_code WHERE tenant_id = $1 AND code_hash = $2");
    let row: Option<CodeRow> = match s.read_now(&sql, (tenant.as_str(), code_hash.as_slice()), code_row) {
        Some(read) => read?,
        None => with_pool!(s, p => sqlx::query_as(&sql)
            .bind(tenant.as_str())
            .bind(code_hash.as_slice())
            .fetch_optional(p)
            .await
            .map_err(db))?,
    };
    row.map(CodeRow::into_code).transpose()
}

fn code_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<CodeRow> {
    Ok(from_rusqlite!(
        r,
        CodeRow {
            tenant_id,
            code_hash,
            grant_id,
            client_id,
            user_id,
            session_id,
            redirect_uri,
            scope,
            nonce,
            code_challenge,
            auth_time,
            amr,
            created_at,
            expires_at,
            redeemed_at,
            access_jti,
            access_exp,
        }
    ))
}

const REFRESH_COLUMNS: &str =
    "tenant_id, token_hash, grant_id, client_id, user_id, scope, auth_time, amr, created_at, \
     expires_at, access_jti, access_exp, rotated_at, successor_response";

const INSERT_REFRESH: &str = "INSERT INTO refresh_token (tenant_id, token_hash, grant_id, client_id, \
     user_id, scope, auth_time, amr, created_at, expires_at, access_jti, access_exp, rotated_at, \
     successor_response) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)";

/// Binds a refresh token's columns in `INSERT_REFRESH` order to a query of either dialect.
macro_rules! bind_refresh {
    ($q:expr, $t:expr) => {
        $q.bind($t.tenant_id.as_str())
            .bind($t.token_hash.as_slice())
            .bind(&$t.grant_id)
            .bind($t.client_id.as_str())
            .bind($t.user_id.as_str())
            .bind(&$t.scope)
            .bind($t.auth_time)
            .bind(to_json(&$t.amr))
            .bind($t.created_at)
            .bind($t.expires_at)
            .bind(&$t.access_jti)
            .bind($t.access_exp)
            .bind($t.rotated_at)
            .bind(&$t.successor_response)
    };
}

pub(super) async fn redeem_code(
    s: &SqlStore,
    tenant: &TenantId,
    code_hash: &[u8; 32],
    now: i64,
    access_jti: &str,
    access_exp: i64,
    refresh: Option<&RefreshToken>,
) -> Result<bool> {
    redeem_once(
        s,
        "UPDATE authorization_code SET redeemed_at = $3, access_jti = $4, access_exp = $5 \
         WHERE tenant_id = $1 AND code_hash = $2 AND redeemed_at IS NULL",
        tenant,
        code_hash,
        now,
        (access_jti, access_exp),
        refresh,
    )
    .await
}

/// Redeems a one-time credential (an authorization code, a device code): `update` is one
/// conditional UPDATE over `$1` tenant, `$2` hash, `$3` now, `$4` access `jti`, `$5` its expiry,
/// so that of two concurrent redemptions the database lets one match. The refresh token goes in
/// with the redemption, so that a crash between the two cannot leave a redeemed credential whose
/// refresh token was never stored. False: someone else redeemed it (or it is not redeemable).
pub(super) async fn redeem_once(
    s: &SqlStore,
    update: &'static str,
    tenant: &TenantId,
    hash: &[u8; 32],
    now: i64,
    (access_jti, access_exp): (&str, i64),
    refresh: Option<&RefreshToken>,
) -> Result<bool> {
    with_pool!(s, p => {
        let mut tx = p.begin().await.map_err(db)?;
        let won = sqlx::query(update)
            .bind(tenant.as_str())
            .bind(hash.as_slice())
            .bind(now)
            .bind(access_jti)
            .bind(access_exp)
            .execute(&mut *tx)
            .await
            .map_err(db)?
            .rows_affected()
            == 1;
        // Rolled back explicitly, as in `rotate_refresh_token`.
        if !won {
            tx.rollback().await.map_err(db)?;
            return Ok(false);
        }
        if let Some(t) = refresh {
            if let Err(e) = bind_refresh!(sqlx::query(INSERT_REFRESH), t).execute(&mut *tx).await {
                let _ = tx.rollback().await;
                return Err(db(e));
            }
        }
        tx.commit().await.map_err(db)?;
        Ok(true)
    })
}

// Implicit grants -----------------------------------------------------------------------------

pub(super) async fn insert_implicit_grant(s: &SqlStore, g: &ImplicitGrant) -> Result<()> {
    with_pool!(s, p => sqlx::query(
        "INSERT INTO implicit_grant (tenant_id, grant_id, client_id, user_id, access_jti, access_exp) \
         VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(g.tenant_id.as_str())
        .bind(&g.grant_id)
        .bind(g.client_id.as_str())
        .bind(g.user_id.as_str())
        .bind(&g.access_jti)
        .bind(g.access_exp)
        .execute(p)
        .await
        .map(|_| ())
        .map_err(db))
}

// Refresh tokens ------------------------------------------------------------------------------

#[derive(sqlx::FromRow)]
struct RefreshRow {
    tenant_id: String,
    token_hash: Vec<u8>,
    grant_id: String,
    client_id: String,
    user_id: String,
    scope: String,
    auth_time: i64,
    amr: String,
    created_at: i64,
    expires_at: i64,
    access_jti: Option<String>,
    access_exp: Option<i64>,
    rotated_at: Option<i64>,
    successor_response: Option<Vec<u8>>,
}

impl RefreshRow {
    fn into_token(self) -> Result<RefreshToken> {
        Ok(RefreshToken {
            tenant_id: tenant_id("refresh token tenant", &self.tenant_id)?,
            token_hash: hash32("refresh token hash", &self.token_hash)?,
            grant_id: self.grant_id,
            client_id: client_id("refresh token client", &self.client_id)?,
            user_id: user_id("refresh token user", &self.user_id)?,
            scope: self.scope,
            auth_time: self.auth_time,
            amr: json_list("refresh token amr", &self.amr)?,
            created_at: self.created_at,
            expires_at: self.expires_at,
            access_jti: self.access_jti,
            access_exp: self.access_exp,
            rotated_at: self.rotated_at,
            successor_response: self.successor_response,
        })
    }
}

pub(super) async fn insert_refresh_token(s: &SqlStore, t: &RefreshToken) -> Result<()> {
    with_pool!(s, p => bind_refresh!(sqlx::query(INSERT_REFRESH), t)
        .execute(p)
        .await
        .map(|_| ())
        .map_err(db))
}

pub(super) async fn get_refresh_token(
    s: &SqlStore,
    tenant: &TenantId,
    token_hash: &[u8; 32],
) -> Result<Option<RefreshToken>> {
    let sql = format!("SELECT {REFRESH_COLUMNS} FROM refresh_token WHERE tenant_id = $1 AND token_hash = $2");
    let row: Option<RefreshRow> = match s.read_now(&sql, (tenant.as_str(), token_hash.as_slice()), |r| {
        Ok(from_rusqlite!(
            r,
            RefreshRow {
                tenant_id,
                token_hash,
                grant_id,
                client_id,
                user_id,
                scope,
                auth_time,
                amr,
                created_at,
                expires_at,
                access_jti,
                access_exp,
                rotated_at,
                successor_response,
            }
        ))
    }) {
        Some(read) => read?,
        None => with_pool!(s, p => sqlx::query_as(&sql)
            .bind(tenant.as_str())
            .bind(token_hash.as_slice())
            .fetch_optional(p)
            .await
            .map_err(db))?,
    };
    row.map(RefreshRow::into_token).transpose()
}

pub(super) async fn rotate_refresh_token(
    s: &SqlStore,
    tenant: &TenantId,
    old_hash: &[u8; 32],
    now: i64,
    successor: &RefreshToken,
    successor_response: &[u8],
) -> Result<bool> {
    with_pool!(s, p => {
        let mut tx = p.begin().await.map_err(db)?;
        // The conditional UPDATE decides the race: PostgreSQL makes a concurrent one wait for
        // this row and then find it rotated; SQLite runs one writer at a time.
        let won = sqlx::query(
            "UPDATE refresh_token SET rotated_at = $3, successor_response = $4 \
             WHERE tenant_id = $1 AND token_hash = $2 AND rotated_at IS NULL")
            .bind(tenant.as_str())
            .bind(old_hash.as_slice())
            .bind(now)
            .bind(successor_response)
            .execute(&mut *tx)
            .await
            .map_err(db)?
            .rows_affected()
            == 1;
        // Rolled back explicitly: a dropped transaction ends only when its pooled connection is
        // next used, and keeps its locks until then.
        if !won {
            tx.rollback().await.map_err(db)?;
            return Ok(false);
        }
        let inserted = bind_refresh!(sqlx::query(INSERT_REFRESH), successor).execute(&mut *tx).await;
        if let Err(e) = inserted {
            let _ = tx.rollback().await;
            return Err(db(e));
        }
        tx.commit().await.map_err(db)?;
        Ok(true)
    })
}

// Grants --------------------------------------------------------------------------------------

pub(super) async fn revoke_grant(s: &SqlStore, tenant: &TenantId, grant_id: &str, now: i64) -> Result<u64> {
    revoke_grants_where(s, "grant_id = $3", tenant, now, grant_id, None).await
}

pub(super) async fn revoke_user_grants(
    s: &SqlStore,
    tenant: &TenantId,
    user: &UserId,
    client: Option<&ClientId>,
    now: i64,
) -> Result<u64> {
    let only_client = if client.is_some() {
        " AND client_id = $4"
    } else {
        ""
    };
    // A grant may have only a code so far (not yet redeemed, or without a refresh token), or
    // be an implicit grant.
    let grants = format!(
        "grant_id IN (\
         SELECT grant_id FROM refresh_token WHERE tenant_id = $1 AND user_id = $3{only_client} \
         UNION \
         SELECT grant_id FROM authorization_code WHERE tenant_id = $1 AND user_id = $3{only_client} \
         UNION \
         SELECT grant_id FROM implicit_grant WHERE tenant_id = $1 AND user_id = $3{only_client} \
         UNION \
         SELECT grant_id FROM device_authorization WHERE tenant_id = $1 AND user_id = $3{only_client})"
    );
    revoke_grants_where(s, &grants, tenant, now, user.as_str(), client).await
}

/// Revokes, in one transaction, the grants that `grants` selects: a condition on `grant_id`
/// over the parameters $1 = tenant, $2 = now, $3 = `key` (a grant id or a user id) and
/// $4 = `client` when given. Returns how many refresh tokens it deleted.
async fn revoke_grants_where(
    s: &SqlStore,
    grants: &str,
    tenant: &TenantId,
    now: i64,
    key: &str,
    client: Option<&ClientId>,
) -> Result<u64> {
    let statements = grant_revocation(grants);
    let client = client.map(ClientId::as_str);
    with_pool!(s, p => {
        let mut tx = p.begin().await.map_err(db)?;
        let deleted = run_revocation!(tx, statements, tenant.as_str(), now, key, client);
        tx.commit().await.map_err(db)?;
        Ok(deleted)
    })
}

/// The statements that revoke the grants `grants` selects (a condition over the parameters
/// of `run_revocation!`), in this order: the grant selection for a user reads the tables the
/// later statements change. The last one deletes the refresh tokens.
pub(super) fn grant_revocation(grants: &str) -> Vec<String> {
    // Every unexpired access token noted on the grants' codes, refresh tokens and implicit
    // grants. (SQLite needs the WHERE before ON CONFLICT to parse an upsert from a SELECT;
    // every branch has one.)
    let noted = |table: &str| {
        format!(
            "SELECT tenant_id, access_jti, access_exp, $2 FROM {table} \
             WHERE tenant_id = $1 AND {grants} AND access_jti IS NOT NULL AND access_exp > $2"
        )
    };
    let revoke = format!(
        "INSERT INTO revoked_token (tenant_id, jti, expires_at, revoked_at) {} UNION {} UNION {} \
         UNION {} ON CONFLICT (tenant_id, jti) DO NOTHING",
        noted("authorization_code"),
        noted("refresh_token"),
        noted("implicit_grant"),
        noted("device_authorization"),
    );
    // A code not yet redeemed expires now: it must not start the grant again. The row stays,
    // so that a replay is still recognised.
    let expire_codes = format!(
        "UPDATE authorization_code SET expires_at = $2 \
         WHERE tenant_id = $1 AND {grants} AND redeemed_at IS NULL AND expires_at > $2"
    );
    // `now` ($2) is bound but unused here, so that the numbering is the same as above.
    let delete = format!("DELETE FROM refresh_token WHERE tenant_id = $1 AND {grants}");
    vec![revoke, expire_codes, delete]
}

/// What a deleted or disabled client was given ($3 = its id): every grant, as above, and the
/// users' consents, so that a client created again with the same id starts with none.
pub(super) fn client_revocation() -> Vec<String> {
    let mut statements = grant_revocation("client_id = $3");
    // Before the grants' last statement, whose count is the caller's answer.
    statements.insert(
        statements.len() - 1,
        "DELETE FROM consent WHERE tenant_id = $1 AND client_id = $3".into(),
    );
    statements
}

// Consents ------------------------------------------------------------------------------------

const CONSENT_COLUMNS: &str = "tenant_id, user_id, client_id, scopes, granted_at";

#[derive(sqlx::FromRow)]
struct ConsentRow {
    tenant_id: String,
    user_id: String,
    client_id: String,
    scopes: String,
    granted_at: i64,
}

impl ConsentRow {
    fn into_consent(self) -> Result<Consent> {
        Ok(Consent {
            tenant_id: tenant_id("consent tenant", &self.tenant_id)?,
            user_id: user_id("consent user", &self.user_id)?,
            client_id: client_id("consent client", &self.client_id)?,
            scopes: json_list("consent scopes", &self.scopes)?,
            granted_at: self.granted_at,
        })
    }
}

pub(super) async fn get_consent(
    s: &SqlStore,
    tenant: &TenantId,
    user: &UserId,
    client: &ClientId,
) -> Result<Option<Consent>> {
    let sql = format!(
        "SELECT {CONSENT_COLUMNS} FROM consent WHERE tenant_id = $1 AND user_id = $2 AND client_id = $3"
    );
    let params = (tenant.as_str(), user.as_str(), client.as_str());
    let row: Option<ConsentRow> = match s.read_now(&sql, params, |r| {
        Ok(from_rusqlite!(
            r,
            ConsentRow {
                tenant_id,
                user_id,
                client_id,
                scopes,
                granted_at
            }
        ))
    }) {
        Some(read) => read?,
        None => with_pool!(s, p => sqlx::query_as(&sql)
            .bind(tenant.as_str())
            .bind(user.as_str())
            .bind(client.as_str())
            .fetch_optional(p)
            .await
            .map_err(db))?,
    };
    row.map(ConsentRow::into_consent).transpose()
}

pub(super) async fn put_consent(s: &SqlStore, c: &Consent) -> Result<()> {
    let sql = format!(
        "INSERT INTO consent ({CONSENT_COLUMNS}) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (tenant_id, user_id, client_id) \
         DO UPDATE SET scopes = excluded.scopes, granted_at = excluded.granted_at"
    );
    with_pool!(s, p => sqlx::query(&sql)
        .bind(c.tenant_id.as_str())
        .bind(c.user_id.as_str())
        .bind(c.client_id.as_str())
        .bind(to_json(&c.scopes))
        .bind(c.granted_at)
        .execute(p)
        .await
        .map(|_| ())
        .map_err(db))
}

pub(super) async fn list_consents(s: &SqlStore, tenant: &TenantId, user: &UserId) -> Result<Vec<Consent>> {
    let sql = format!(
        "SELECT {CONSENT_COLUMNS} FROM consent WHERE tenant_id = $1 AND user_id = $2 ORDER BY client_id"
    );
    let rows: Vec<ConsentRow> = with_pool!(s, p => sqlx::query_as(&sql)
        .bind(tenant.as_str())
        .bind(user.as_str())
        .fetch_all(p)
        .await
        .map_err(db))?;
    rows.into_iter().map(ConsentRow::into_consent).collect()
}

pub(super) async fn delete_consent(
    s: &SqlStore,
    tenant: &TenantId,
    user: &UserId,
    client: &ClientId,
) -> Result<bool> {
    with_pool!(s, p => sqlx::query(
        "DELETE FROM consent WHERE tenant_id = $1 AND user_id = $2 AND client_id = $3")
        .bind(tenant.as_str())
        .bind(user.as_str())
        .bind(client.as_str())
        .execute(p)
        .await
        .map(|r| r.rows_affected() == 1)
        .map_err(db))
}

// Sign-in throttling --------------------------------------------------------------------------

pub(super) async fn get_login_failures(
    s: &SqlStore,
    tenant: &TenantId,
    key: &str,
) -> Result<Option<LoginFailures>> {
    let row: Option<(i64, i64)> = with_pool!(s, p => sqlx::query_as(
        "SELECT count, last_failed_at FROM login_failure WHERE tenant_id = $1 AND key = $2")
        .bind(tenant.as_str())
        .bind(key)
        .fetch_optional(p)
        .await
        .map_err(db))?;
    Ok(row.map(|(count, last_failed_at)| LoginFailures {
        count,
        last_failed_at,
    }))
}

pub(super) async fn add_login_failure(
    s: &SqlStore,
    tenant: &TenantId,
    key: &str,
    now: i64,
    window: i64,
) -> Result<LoginFailures> {
    // One upsert, so that concurrent failures are all counted.
    let (count, last_failed_at): (i64, i64) = with_pool!(s, p => sqlx::query_as(
        "INSERT INTO login_failure (tenant_id, key, count, last_failed_at) VALUES ($1, $2, 1, $3) \
         ON CONFLICT (tenant_id, key) DO UPDATE SET \
         count = CASE WHEN login_failure.last_failed_at < $3 - $4 THEN 1 \
                      ELSE login_failure.count + 1 END, \
         last_failed_at = $3 \
         RETURNING count, last_failed_at")
        .bind(tenant.as_str())
        .bind(key)
        .bind(now)
        .bind(window)
        .fetch_one(p)
        .await
        .map_err(db))?;
    Ok(LoginFailures {
        count,
        last_failed_at,
    })
}

pub(super) async fn clear_login_failures(s: &SqlStore, tenant: &TenantId, key: &str) -> Result<()> {
    with_pool!(s, p => sqlx::query("DELETE FROM login_failure WHERE tenant_id = $1 AND key = $2")
        .bind(tenant.as_str())
        .bind(key)
        .execute(p)
        .await
        .map(|_| ())
        .map_err(db))
}

pub(super) async fn count_login_attempt(
    s: &SqlStore,
    tenant: &TenantId,
    limits: &[LoginLimit<'_>],
    now: i64,
) -> Result<LoginAttempt> {
    // Rows are locked in key order, so that two attempts sharing keys cannot deadlock.
    let mut limits = limits.to_vec();
    limits.sort_by_key(|l| l.key);
    limits.dedup_by_key(|l| l.key);
    with_pool!(s, p => {
        let mut tx = p.begin().await.map_err(db)?;
        let mut wait = 0;
        let mut counts = Vec::with_capacity(limits.len());
        for l in &limits {
            // Reads the tally with its row locked until the end of the transaction, inserting an
            // empty one first if there is none (`SELECT … FOR UPDATE` cannot lock a row that does
            // not exist yet). On SQLite the first write takes the database's one write lock.
            let (count, last_failed_at): (i64, i64) = sqlx::query_as(
                "INSERT INTO login_failure (tenant_id, key, count, last_failed_at) VALUES ($1, $2, 0, 0) \
                 ON CONFLICT (tenant_id, key) DO UPDATE SET count = login_failure.count \
                 RETURNING count, last_failed_at")
                .bind(tenant.as_str())
                .bind(l.key)
                .fetch_one(&mut *tx)
                .await
                .map_err(db)?;
            let tally = LoginFailures { count, last_failed_at };
            wait = wait.max(login::retry_after(Some(tally), l.free, now));
            let forgotten = now - last_failed_at >= login::FAILURE_WINDOW;
            counts.push(if forgotten { 1 } else { count + 1 });
        }
        if wait > 0 {
            // Leaves no trace, not even the empty rows: a throttled attempt changes no tally.
            tx.rollback().await.map_err(db)?;
            return Ok(LoginAttempt::Throttled { retry_after: wait });
        }
        for (l, count) in limits.iter().zip(counts) {
            sqlx::query(
                "UPDATE login_failure SET count = $3, last_failed_at = $4 WHERE tenant_id = $1 AND key = $2")
                .bind(tenant.as_str())
                .bind(l.key)
                .bind(count)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        Ok(LoginAttempt::Counted)
    })
}

pub(super) async fn uncount_login_attempt(s: &SqlStore, tenant: &TenantId, key: &str) -> Result<()> {
    with_pool!(s, p => sqlx::query(
        "UPDATE login_failure SET count = count - 1 WHERE tenant_id = $1 AND key = $2 AND count > 0")
        .bind(tenant.as_str())
        .bind(key)
        .execute(p)
        .await
        .map(|_| ())
        .map_err(db))
}

// Housekeeping --------------------------------------------------------------------------------

pub(super) async fn purge_expired(s: &SqlStore, now: i64, code_grace: i64) -> Result<u64> {
    // Separate statements, not one transaction: each is complete on its own, and SQLite's
    // single writer is held for one table at a time.
    let purges: [(&str, i64); 6] = [
        ("DELETE FROM browser_session WHERE expires_at <= $1", now),
        ("DELETE FROM session_client WHERE expires_at <= $1", now),
        (
            "DELETE FROM authorization_code WHERE expires_at <= $1",
            now - code_grace,
        ),
        ("DELETE FROM refresh_token WHERE expires_at <= $1", now),
        ("DELETE FROM implicit_grant WHERE access_exp <= $1", now),
        (
            "DELETE FROM login_failure WHERE last_failed_at <= $1",
            now - LOGIN_FAILURE_RETENTION,
        ),
    ];
    let mut total = 0;
    for (sql, before) in purges {
        total += with_pool!(s, p => sqlx::query(sql)
            .bind(before)
            .execute(p)
            .await
            .map(|r| r.rows_affected())
            .map_err(db))?;
    }
    Ok(total)
}
