//! Workload identity out: *sources* and the workload tokens Sesame issues for them, signed by
//! the tenant's keyring under the tenant's *workload issuer* (which may differ from the sign-in
//! issuer, e.g. a static site that serves exported discovery and JWKS files).
//!
//! A source authenticates with a client of its own and asks for its token with the
//! [`WORKLOAD_TOKEN_GRANT`] grant at `/token` (a grant of its own rather than a changed
//! `client_credentials`: that grant stays untouched and free of store reads, and a client must be
//! explicitly allowed to obtain workload tokens). Outsiders verify a workload token from the
//! workload issuer's discovery document and JWKS alone: `iss`, `aud`, `exp`, `nbf`, and `sub`
//! (the source's resource id) to decide which source is calling.

use crate::ids::{ClientId, TenantId};
use crate::jwt;
use crate::keys::Keyring;
use crate::model::{Client, MAX_ACCESS_TOKEN_TTL};
use crate::store::Store;
use crate::token::{Signer, TokenResponse};
use crate::{Error, Result};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::fmt;

/// The grant a source's client uses at `/token` to get its workload token.
pub const WORKLOAD_TOKEN_GRANT: &str = "urn:sesame:params:oauth:grant-type:workload-token";
/// Workload tokens last an hour unless the source says otherwise.
pub const DEFAULT_WORKLOAD_TOKEN_TTL: i64 = 3600;
/// Never shorter than this; never longer than [`MAX_ACCESS_TOKEN_TTL`], which is how long a
/// retired key stays published, so that every token stays verifiable after a rotation.
pub const MIN_WORKLOAD_TOKEN_TTL: i64 = 60;
/// Delegated sessions last at most this long unless the tenant allows less.
pub const DEFAULT_SESSION_MAX_TTL: i64 = 7 * 24 * 3600;
/// RFC 8693 §3: what the workload-token grant issues.
pub const JWT_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";

/// A source's id: a UUID (lower-case, hyphenated).
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SourceId(String);

impl SourceId {
    /// A random (version 4) UUID.
    pub fn generate() -> SourceId {
        let mut b = crate::crypto::random_bytes::<16>();
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        let h = hex::encode(b);
        SourceId(format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        ))
    }

    pub fn parse(s: &str) -> Result<SourceId> {
        let groups: Vec<&str> = s.split('-').collect();
        let ok = groups.len() == 5
            && groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
            && groups
                .iter()
                .all(|g| g.chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)));
        if ok {
            Ok(SourceId(s.to_owned()))
        } else {
            Err(Error::InvalidRequest(format!(
                "source id '{}' is not a lower-case UUID",
                s.escape_debug()
            )))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for SourceId {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        Self::parse(&s)
    }
}

impl From<SourceId> for String {
    fn from(v: SourceId) -> String {
        v.0
    }
}

impl fmt::Display for SourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SourceId({:?})", self.0)
    }
}

/// Something of the tenant that outside systems trust by its workload tokens.
///
/// How it authenticates: `client_id`, a client of its own. A `trust_policy` (an outside token
/// satisfying one of the tenant's trust policies) is the other way the issue names; it belongs
/// to the trust-policy work and is not modelled here yet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    pub tenant_id: TenantId,
    pub id: SourceId,
    pub name: String,
    pub client_id: ClientId,
    /// At least one; a token names them all unless the request picks some.
    pub audiences: Vec<String>,
    pub scopes: Vec<String>,
    pub token_ttl: i64,
    pub created_at: i64,
}

impl Source {
    /// `ri.sesame.<tenant>.source.<uuid>`: the `sub` of its tokens.
    pub fn resource_id(&self) -> String {
        resource_id(&self.tenant_id, &self.id)
    }

    pub fn validate(&self) -> Result<()> {
        if self.name.is_empty() || self.name.chars().count() > 200 {
            return Err(Error::invalid_request("name must be 1 to 200 characters"));
        }
        if self.audiences.is_empty() {
            return Err(Error::invalid_request("a source needs at least one audience"));
        }
        for aud in &self.audiences {
            if aud.is_empty() || aud.len() > 512 || aud.chars().any(|c| c.is_control() || c == ' ') {
                return Err(Error::InvalidRequest(format!(
                    "audience '{}' is not valid: 1 to 512 printable characters without spaces",
                    aud.escape_debug()
                )));
            }
        }
        for scope in &self.scopes {
            crate::model::validate_scope_token(scope)?;
        }
        if !(MIN_WORKLOAD_TOKEN_TTL..=MAX_ACCESS_TOKEN_TTL).contains(&self.token_ttl) {
            return Err(Error::InvalidRequest(format!(
                "token_ttl must be between {MIN_WORKLOAD_TOKEN_TTL} and {MAX_ACCESS_TOKEN_TTL} seconds, not {}",
                self.token_ttl
            )));
        }
        Ok(())
    }
}

pub fn resource_id(tenant: &TenantId, id: &SourceId) -> String {
    format!("ri.sesame.{tenant}.source.{id}")
}

/// The tenant's settings for workload tokens and delegated sessions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkloadSettings {
    pub tenant_id: TenantId,
    /// `None`: the sign-in issuer.
    pub workload_issuer: Option<String>,
    /// The longest a delegated session may last.
    pub session_max_ttl: i64,
}

impl WorkloadSettings {
    pub fn defaults(tenant: &TenantId) -> WorkloadSettings {
        WorkloadSettings {
            tenant_id: tenant.clone(),
            workload_issuer: None,
            session_max_ttl: DEFAULT_SESSION_MAX_TTL,
        }
    }

    /// The workload issuer, given the tenant's sign-in issuer.
    pub fn issuer<'a>(&'a self, sign_in_issuer: &'a str) -> &'a str {
        self.workload_issuer.as_deref().unwrap_or(sign_in_issuer)
    }

    pub fn validate(&self) -> Result<()> {
        if let Some(iss) = &self.workload_issuer {
            // OpenID Connect Discovery §3: an https URL without query or fragment (http only
            // for loopback, for tests and local setups).
            let ok = (iss.starts_with("https://")
                || iss.starts_with("http://127.0.0.1")
                || iss.starts_with("http://localhost"))
                && iss.len() <= 2000
                && !iss.ends_with('/')
                && !iss.contains(['?', '#'])
                && !iss.chars().any(|c| c.is_whitespace() || c.is_control());
            if !ok {
                return Err(Error::InvalidRequest(format!(
                    "workload_issuer '{}' must be an https URL without query, fragment or trailing '/'",
                    iss.escape_debug()
                )));
            }
        }
        if !(60..=DEFAULT_SESSION_MAX_TTL).contains(&self.session_max_ttl) {
            return Err(Error::InvalidRequest(format!(
                "session_max_ttl must be between 60 and {DEFAULT_SESSION_MAX_TTL} seconds, not {}",
                self.session_max_ttl
            )));
        }
        Ok(())
    }
}

/// The tenant's settings, or the defaults.
pub async fn settings(store: &dyn Store, tenant: &TenantId) -> Result<WorkloadSettings> {
    Ok(store
        .get_workload_settings(tenant)
        .await?
        .unwrap_or_else(|| WorkloadSettings::defaults(tenant)))
}

/// What an administrator (API or config file) gives to register a source.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSpec {
    pub name: String,
    /// The client the source authenticates with; it needs the workload-token grant.
    pub client_id: ClientId,
    pub audiences: Vec<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
    pub token_ttl: Option<i64>,
    /// Given only by the config file, so that applying it again finds the same source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<SourceId>,
}

/// Registers a source, after checking that its client exists and may get workload tokens.
pub async fn create_source(
    store: &dyn Store,
    tenant: &TenantId,
    spec: SourceSpec,
    now: i64,
) -> Result<Source> {
    let source = checked_source(store, tenant, spec, now).await?;
    store.create_source(&source).await.map_err(|e| match e {
        Error::Conflict(_) => Error::Conflict(format!(
            "a source with this id, or for client '{}', already exists",
            source.client_id
        )),
        other => other,
    })?;
    Ok(source)
}

/// Creates the source with this id, or replaces the one there (`PUT`, the config file's way:
/// it names its sources). Everything is checked before the old one goes.
pub async fn put_source(
    store: &dyn Store,
    tenant: &TenantId,
    id: SourceId,
    mut spec: SourceSpec,
    now: i64,
) -> Result<Source> {
    if spec.id.as_ref().is_some_and(|given| *given != id) {
        return Err(Error::invalid_request("the body's id is not the one in the path"));
    }
    spec.id = Some(id.clone());
    let source = checked_source(store, tenant, spec, now).await?;
    store.delete_source(tenant, &id).await?;
    store.create_source(&source).await.map_err(|e| match e {
        Error::Conflict(_) => Error::Conflict(format!(
            "a source for client '{}' already exists",
            source.client_id
        )),
        other => other,
    })?;
    Ok(source)
}

async fn checked_source(store: &dyn Store, tenant: &TenantId, spec: SourceSpec, now: i64) -> Result<Source> {
    crate::admin::require_tenant(store, tenant).await?;
    let client = crate::admin::require_client(store, tenant, &spec.client_id).await?;
    if !client
        .grant_types
        .contains(&crate::model::GrantType::WorkloadToken)
    {
        return Err(Error::InvalidRequest(format!(
            "client '{}' is not allowed the {WORKLOAD_TOKEN_GRANT} grant",
            client.client_id
        )));
    }
    let source = Source {
        tenant_id: tenant.clone(),
        id: spec.id.unwrap_or_else(SourceId::generate),
        name: spec.name,
        client_id: spec.client_id,
        audiences: spec.audiences,
        scopes: spec.scopes,
        token_ttl: spec.token_ttl.unwrap_or(DEFAULT_WORKLOAD_TOKEN_TTL),
        created_at: now,
    };
    source.validate()?;
    Ok(source)
}

/// A change of the tenant's workload settings; absent members stay as they are, and a
/// `workload_issuer` of `null` goes back to the sign-in issuer.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsPatch {
    #[serde(default, deserialize_with = "some_option")]
    pub workload_issuer: Option<Option<String>>,
    pub session_max_ttl: Option<i64>,
}

fn some_option<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

pub async fn update_settings(
    store: &dyn Store,
    tenant: &TenantId,
    patch: SettingsPatch,
) -> Result<WorkloadSettings> {
    crate::admin::require_tenant(store, tenant).await?;
    let mut s = settings(store, tenant).await?;
    if let Some(iss) = patch.workload_issuer {
        s.workload_issuer = iss;
    }
    if let Some(ttl) = patch.session_max_ttl {
        s.session_max_ttl = ttl;
    }
    s.validate()?;
    store.put_workload_settings(&s).await?;
    Ok(s)
}

/// The claims of a workload token (the seed's example token, RFC 7519 §4.1).
#[derive(Debug, Serialize, Deserialize)]
pub struct WorkloadClaims {
    pub iss: String,
    pub sub: String,
    pub aud: Value,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub jti: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scp: Option<String>,
}

/// The workload-token grant: the source whose client authenticated gets a token for its
/// audiences (or the ones asked for, each of them the source's) and scopes (likewise).
pub async fn issue_token(
    ctx: &Signer<'_>,
    store: &dyn Store,
    client: &Client,
    audiences: &[String],
    scope: Option<&str>,
) -> Result<TokenResponse> {
    let Some(source) = store
        .get_source_by_client(&ctx.tenant.id, &client.client_id)
        .await?
    else {
        return Err(Error::UnauthorizedClient(
            "the client is not the client of a source".into(),
        ));
    };
    let settings = settings(store, &ctx.tenant.id).await?;
    let issuer = settings.issuer(ctx.issuer);
    let (token, ttl, scp) = sign_token(
        ctx.keyring,
        ctx.tenant.signing_alg,
        client,
        &source,
        issuer,
        audiences,
        scope,
        ctx.now,
    )?;
    Ok(TokenResponse {
        access_token: token,
        // RFC 8693 §2.2.1: not an access token for Sesame; the outside system decides.
        token_type: "N_A".into(),
        expires_in: ttl,
        refresh_token: None,
        id_token: None,
        scope: scp,
        issued_token_type: None,
    })
}

/// Signs a workload token for `source`. Returns the token, its lifetime and its scope.
#[allow(clippy::too_many_arguments)]
pub fn sign_token(
    keyring: &Keyring,
    tenant_alg: crate::model::SigningAlg,
    client: &Client,
    source: &Source,
    issuer: &str,
    audiences: &[String],
    scope: Option<&str>,
    now: i64,
) -> Result<(String, i64, Option<String>)> {
    let mut aud: Vec<String> = Vec::new();
    for a in audiences {
        if !source.audiences.contains(a) {
            return Err(Error::InvalidTarget(format!(
                "the source may not request audience '{}'",
                a.escape_debug()
            )));
        }
        if !aud.contains(a) {
            aud.push(a.clone());
        }
    }
    if aud.is_empty() {
        aud = source.audiences.clone();
    }
    let scp = match scope {
        None => (!source.scopes.is_empty()).then(|| source.scopes.join(" ")),
        Some(requested) => {
            let mut granted: Vec<&str> = Vec::new();
            for s in requested.split(' ').filter(|s| !s.is_empty()) {
                if !source.scopes.iter().any(|a| a == s) {
                    return Err(Error::InvalidScope(format!(
                        "the source may not request scope '{}'",
                        s.escape_debug()
                    )));
                }
                if !granted.contains(&s) {
                    granted.push(s);
                }
            }
            (!granted.is_empty()).then(|| granted.join(" "))
        }
    };
    let claims = WorkloadClaims {
        iss: issuer.to_owned(),
        sub: source.resource_id(),
        aud: if aud.len() == 1 { json!(aud[0]) } else { json!(aud) },
        iat: now,
        nbf: now,
        exp: now + source.token_ttl,
        jti: B64.encode(crate::crypto::random_bytes::<16>()),
        scp: scp.clone(),
    };
    let alg = client.signing_alg.unwrap_or(tenant_alg);
    let json = serde_json::to_vec(&claims).map_err(|e| Error::Internal(e.to_string()))?;
    // `typ: JWT` (RFC 7519 §5.1): never `at+jwt`, so Sesame's own endpoints refuse it as an
    // access token.
    let token = jwt::sign(keyring.active(alg)?, jwt::Kind::IdToken, &json)?;
    Ok((token, source.token_ttl, scp))
}

/// OpenID Connect Discovery §3 for the workload issuer: what a verifier of workload tokens
/// needs (the issuer, where its keys are, which algorithms), and nothing that would suggest
/// endpoints a static site cannot serve.
pub fn issuer_configuration(issuer: &str) -> Value {
    json!({
        "issuer": issuer,
        "jwks_uri": jwks_uri(issuer),
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": crate::model::SigningAlg::ALL.iter().map(|a| a.as_str()).collect::<Vec<_>>(),
        "claims_supported": ["iss", "sub", "aud", "iat", "nbf", "exp", "jti", "scp"],
        "scopes_supported": ["openid"],
    })
}

/// Under the workload issuer, so that one directory holds both files.
pub fn jwks_uri(issuer: &str) -> String {
    format!("{issuer}/jwks.json")
}

/// Both documents of the workload issuer: discovery and the JWKS (every published key: the next,
/// the active and the retired ones whose tokens may still be unexpired).
pub fn export(issuer: &str, keyring: &Keyring) -> Result<Value> {
    let jwks: Value = serde_json::from_slice(keyring.jwks()).map_err(|e| Error::Internal(e.to_string()))?;
    Ok(json!({
        "issuer": issuer,
        "openid_configuration": issuer_configuration(issuer),
        "jwks": jwks,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_ids_are_uuids_and_resource_ids_name_the_tenant() {
        let id = SourceId::generate();
        assert_eq!(SourceId::parse(id.as_str()).unwrap(), id);
        assert_eq!(id.as_str().len(), 36);
        assert_eq!(&id.as_str()[14..15], "4");
        assert!(SourceId::parse("7f3b8e21-4d9a-6c2e-1b7d-8a5f3c9e0b4f").is_ok());
        assert!(SourceId::parse("7F3B8E21-4d9a-6c2e-1b7d-8a5f3c9e0b4f").is_err());
        assert!(SourceId::parse("../etc").is_err());
        let t = TenantId::parse("acme").unwrap();
        assert_eq!(
            resource_id(
                &t,
                &SourceId::parse("7f3b8e21-4d9a-6c2e-1b7d-8a5f3c9e0b4f").unwrap()
            ),
            "ri.sesame.acme.source.7f3b8e21-4d9a-6c2e-1b7d-8a5f3c9e0b4f"
        );
    }

    #[test]
    fn settings_are_bounded() {
        let t = TenantId::parse("acme").unwrap();
        let mut s = WorkloadSettings::defaults(&t);
        assert!(s.validate().is_ok());
        assert_eq!(s.issuer("https://id/t/acme"), "https://id/t/acme");
        s.workload_issuer = Some("https://static.example/acme".into());
        assert!(s.validate().is_ok());
        assert_eq!(s.issuer("https://id/t/acme"), "https://static.example/acme");
        for bad in ["http://evil.example", "https://x/?a", "https://x/", "ftp://x"] {
            s.workload_issuer = Some(bad.into());
            assert!(s.validate().is_err(), "{bad}");
        }
        s.workload_issuer = None;
        s.session_max_ttl = DEFAULT_SESSION_MAX_TTL + 1;
        assert!(s.validate().is_err());
    }
}
