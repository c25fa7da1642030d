//! Brokered SSO: a tenant's connections to upstream identity providers, and the rules that turn
//! an upstream identity into a Sesame user.
//!
//! A connection is of a `kind`, `oidc` or `saml` (what only one kind has lives in the row's
//! `settings` JSON; SAML's protocol side is `crate::saml`). Whatever the protocol, a connector hands over one normalised
//! [`UpstreamIdentity`]; [`sign_in`] then links it by (connection, unique id), matches an
//! existing user by email only when the IdP says the address is verified or the connection is
//! trusted for email, creates the user on first sign-in, refuses disabled users, refreshes the
//! profile, replaces the groups and sets the admin flag that SSO owns (`admin_by_sso`), never
//! the one set by hand.
//!
//! The HTTP side (authorization request, callback, ID token checks) is the server's; this
//! module is what can be decided without a socket.

use crate::crypto::MasterKey;
use crate::ids::{ConnectionId, TenantId, UserId, Username};
use crate::keys::SigningKeyPair;
use crate::model::{SigningAlg, User};
use crate::saml::{SamlBinding, SamlSettings};
use crate::store::Store;
use crate::{Error, Result};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use zeroize::Zeroize;

/// The protocol a connection speaks to its IdP.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConnectionKind {
    Oidc,
    /// SAML 2.0 service provider (`crate::saml`).
    Saml,
}

impl ConnectionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionKind::Oidc => "oidc",
            ConnectionKind::Saml => "saml",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "oidc" => Ok(ConnectionKind::Oidc),
            "saml" => Ok(ConnectionKind::Saml),
            other => Err(Error::InvalidRequest(format!(
                "kind '{}' is not known: use oidc or saml",
                other.escape_debug()
            ))),
        }
    }
}

/// How Sesame authenticates to the upstream token endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum UpstreamClientAuth {
    #[default]
    ClientSecretBasic,
    ClientSecretPost,
    /// RFC 7523 §2.2 with an RS256 key Sesame generates for the connection and publishes at
    /// `/t/{tenant}/sso/{connection}/jwks`.
    PrivateKeyJwt,
}

/// Which claim (OIDC) or attribute (SAML) carries what.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimNames {
    pub email: String,
    pub unique_id: String,
    pub display_name: Option<String>,
    pub groups: Option<String>,
}

impl Default for ClaimNames {
    fn default() -> Self {
        ClaimNames {
            email: "email".into(),
            unique_id: "sub".into(),
            display_name: Some("name".into()),
            groups: None,
        }
    }
}

/// The settings only an OpenID Connect connection has.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OidcSettings {
    /// The upstream issuer, compared exactly (no normalisation) with `iss`.
    pub issuer: String,
    /// Endpoints from `{issuer}/.well-known/openid-configuration` (true) or the fields below.
    pub discovery: bool,
    pub authorization_endpoint: Option<String>,
    pub token_endpoint: Option<String>,
    pub userinfo_endpoint: Option<String>,
    pub jwks_uri: Option<String>,
    pub client_id: String,
    pub client_auth: UpstreamClientAuth,
    pub scopes: Vec<String>,
    /// Call userinfo at every sign-in (it is called anyway when a mapped claim is missing).
    pub userinfo: bool,
    /// Keep the IdP's refresh token at sign-in and refresh it at the IdP whenever Sesame's
    /// refresh token of that sign-in is used: a refusal there ends the Sesame grant
    /// ([`recheck_upstream`]).
    pub recheck_on_refresh: bool,
}

/// A tenant's connection to one upstream IdP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SsoConnection {
    pub tenant_id: TenantId,
    pub id: ConnectionId,
    pub kind: ConnectionKind,
    pub display_name: String,
    pub button_text: String,
    pub button_image_url: Option<String>,
    pub enabled: bool,
    /// `login_hint` domains routed straight to this connection (lower-case).
    pub email_domains: Vec<String>,
    /// Match existing users by email even without `email_verified`.
    pub trusted_email: bool,
    /// Upstream groups that make a person tenant admin.
    pub admin_groups: Vec<String>,
    pub claims: ClaimNames,
    /// Present exactly when `kind` is `oidc`.
    pub oidc: Option<OidcSettings>,
    /// Present exactly when `kind` is `saml`.
    pub saml: Option<SamlSettings>,
    /// The upstream client secret, sealed (AAD: [`secret_aad`]).
    pub sealed_secret: Option<Vec<u8>>,
    /// PKCS#8 of the connection's RS256 key, sealed (AAD: [`key_aad`]).
    pub sealed_private_key: Option<Vec<u8>>,
    /// The public half as a JWK (JSON text), published at the connection's JWKS URL.
    pub public_jwk: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// What an administrator sends to create or change a connection (JSON). Secrets are write-only.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionSpec {
    pub id: String,
    #[serde(default = "default_kind")]
    pub kind: String,
    pub display_name: Option<String>,
    pub button_text: Option<String>,
    pub button_image_url: Option<String>,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub email_domains: Vec<String>,
    #[serde(default)]
    pub trusted_email: bool,
    #[serde(default)]
    pub admin_groups: Vec<String>,
    pub email_claim: Option<String>,
    pub unique_id_claim: Option<String>,
    pub display_name_claim: Option<String>,
    pub groups_claim: Option<String>,
    pub issuer: Option<String>,
    #[serde(default = "yes")]
    pub discovery: bool,
    pub authorization_endpoint: Option<String>,
    pub token_endpoint: Option<String>,
    pub userinfo_endpoint: Option<String>,
    pub jwks_uri: Option<String>,
    pub client_id: Option<String>,
    /// Write-only; never shown back.
    #[serde(skip_serializing)]
    pub client_secret: Option<String>,
    pub client_auth: Option<UpstreamClientAuth>,
    pub scopes: Option<Vec<String>>,
    #[serde(default)]
    pub userinfo: bool,
    #[serde(default)]
    pub recheck_on_refresh: bool,
    // --- SAML (kind `saml`) ---
    /// The IdP's metadata (XML), given inline or fetched by the server from
    /// `idp_metadata_url`; when present its entity id, SSO URL and binding, and signing
    /// certificates replace the four fields below. Write-only.
    #[serde(default, skip_serializing)]
    pub idp_metadata_xml: Option<String>,
    pub idp_metadata_url: Option<String>,
    pub idp_entity_id: Option<String>,
    pub sso_url: Option<String>,
    pub sso_binding: Option<SamlBinding>,
    /// PEM or base64 DER; several for rollover.
    pub idp_certificates: Option<Vec<String>>,
}

fn default_kind() -> String {
    "oidc".into()
}

fn yes() -> bool {
    true
}

pub const DEFAULT_SCOPES: &[&str] = &["openid", "email", "profile"];

pub fn secret_aad(tenant: &TenantId, connection: &ConnectionId) -> String {
    format!("sesame:sso-client-secret:{tenant}:{connection}")
}

pub fn key_aad(tenant: &TenantId, connection: &ConnectionId) -> String {
    format!("sesame:sso-key:{tenant}:{connection}")
}

fn check_url(field: &str, url: &str) -> Result<()> {
    let ok = (url.starts_with("https://") || url.starts_with("http://"))
        && url.len() > "https://".len()
        && url.len() <= 2000
        && !url
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '"' | '<' | '>'));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidRequest(format!(
            "{field} '{}' is not an http(s) URL",
            url.escape_debug()
        )))
    }
}

fn check_text(field: &str, value: &str, max: usize) -> Result<()> {
    if value.trim().is_empty() || value.chars().count() > max || value.chars().any(char::is_control) {
        return Err(Error::InvalidRequest(format!(
            "{field} must be 1 to {max} printable characters"
        )));
    }
    Ok(())
}

impl SsoConnection {
    /// The connection a spec describes; `previous` keeps what the spec leaves out of secrets and
    /// keys (an update that does not name a new secret keeps the sealed one).
    pub fn from_spec(
        master: &MasterKey,
        tenant: &TenantId,
        mut spec: ConnectionSpec,
        previous: Option<&SsoConnection>,
        now: i64,
    ) -> Result<SsoConnection> {
        let id = ConnectionId::parse(&spec.id)?;
        let kind = ConnectionKind::parse(&spec.kind)?;
        // Before the spec's fields move out below.
        let saml = match kind {
            ConnectionKind::Saml => Some(saml_settings(master, tenant, &id, &spec, previous)?),
            ConnectionKind::Oidc => None,
        };
        let display_name = spec.display_name.unwrap_or_else(|| id.to_string());
        check_text("display_name", &display_name, 200)?;
        let button_text = spec
            .button_text
            .unwrap_or_else(|| format!("Sign in with {display_name}"));
        check_text("button_text", &button_text, 200)?;
        if let Some(u) = &spec.button_image_url {
            check_url("button_image_url", u)?;
        }
        let mut email_domains = Vec::new();
        for d in std::mem::take(&mut spec.email_domains) {
            let d = d.trim().trim_start_matches('@').to_lowercase();
            if d.is_empty()
                || d.len() > 253
                || !d
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
            {
                return Err(Error::InvalidRequest(format!(
                    "email domain '{}' is not a domain name",
                    d.escape_debug()
                )));
            }
            email_domains.push(d);
        }
        for g in &spec.admin_groups {
            check_text("admin_groups", g, 256)?;
        }
        let claims = ClaimNames {
            email: spec.email_claim.clone().unwrap_or_else(|| "email".into()),
            unique_id: spec.unique_id_claim.clone().unwrap_or_else(|| match kind {
                ConnectionKind::Oidc => "sub".into(),
                // The Subject's NameID (`crate::saml::NAME_ID`).
                ConnectionKind::Saml => crate::saml::NAME_ID.into(),
            }),
            display_name: Some(spec.display_name_claim.clone().unwrap_or_else(|| "name".into())),
            groups: spec.groups_claim.clone(),
        };
        for c in [&claims.email, &claims.unique_id]
            .into_iter()
            .chain(claims.groups.iter())
        {
            check_text("claim name", c, 128)?;
        }
        if let Some(saml) = saml {
            return Ok(SsoConnection {
                tenant_id: tenant.clone(),
                id,
                kind,
                display_name,
                button_text,
                button_image_url: spec.button_image_url,
                enabled: spec.enabled,
                email_domains,
                trusted_email: spec.trusted_email,
                admin_groups: spec.admin_groups,
                claims,
                oidc: None,
                saml: Some(saml.0),
                sealed_secret: None,
                sealed_private_key: Some(saml.1),
                public_jwk: None,
                created_at: previous.map_or(now, |p| p.created_at),
                updated_at: now,
            });
        }
        let issuer = spec
            .issuer
            .ok_or_else(|| Error::invalid_request("an oidc connection needs issuer"))?;
        check_url("issuer", &issuer)?;
        let endpoints = [
            ("authorization_endpoint", &spec.authorization_endpoint),
            ("token_endpoint", &spec.token_endpoint),
            ("userinfo_endpoint", &spec.userinfo_endpoint),
            ("jwks_uri", &spec.jwks_uri),
        ];
        for (field, value) in endpoints {
            match value {
                Some(url) => check_url(field, url)?,
                None if !spec.discovery && field != "userinfo_endpoint" => {
                    return Err(Error::InvalidRequest(format!(
                        "without discovery, {field} must be set"
                    )))
                }
                None => {}
            }
        }
        let client_id = spec
            .client_id
            .filter(|c| !c.is_empty() && c.len() <= 256)
            .ok_or_else(|| Error::invalid_request("an oidc connection needs client_id"))?;
        let client_auth = spec
            .client_auth
            .or(previous.and_then(|p| p.oidc.as_ref()).map(|o| o.client_auth))
            .unwrap_or_default();
        let scopes = spec
            .scopes
            .unwrap_or_else(|| DEFAULT_SCOPES.iter().map(|s| s.to_string()).collect());
        if !scopes.iter().any(|s| s == "openid") {
            return Err(Error::invalid_request("scopes must include openid"));
        }
        let mut sealed_secret = previous.and_then(|p| p.sealed_secret.clone());
        if let Some(mut secret) = spec.client_secret {
            sealed_secret = Some(master.seal(&secret_aad(tenant, &id), secret.as_bytes()));
            secret.zeroize();
        }
        let (mut sealed_private_key, mut public_jwk) = match previous {
            Some(p) => (p.sealed_private_key.clone(), p.public_jwk.clone()),
            None => (None, None),
        };
        match client_auth {
            UpstreamClientAuth::PrivateKeyJwt if sealed_private_key.is_none() => {
                // Generated once per connection; kept across updates so the IdP's registration
                // of the JWKS stays valid.
                let pair = SigningKeyPair::generate(SigningAlg::RS256)?;
                let kid = pair.thumbprint();
                let mut der = pair.to_pkcs8()?;
                sealed_private_key = Some(master.seal(&key_aad(tenant, &id), &der));
                der.zeroize();
                public_jwk = Some(pair.public_jwk(&kid));
            }
            UpstreamClientAuth::ClientSecretBasic | UpstreamClientAuth::ClientSecretPost
                if sealed_secret.is_none() =>
            {
                return Err(Error::invalid_request(
                    "client_secret is required unless client_auth is private_key_jwt",
                ));
            }
            _ => {}
        }
        Ok(SsoConnection {
            tenant_id: tenant.clone(),
            id,
            kind,
            display_name,
            button_text,
            button_image_url: spec.button_image_url,
            enabled: spec.enabled,
            email_domains,
            trusted_email: spec.trusted_email,
            admin_groups: spec.admin_groups,
            claims,
            oidc: Some(OidcSettings {
                issuer,
                discovery: spec.discovery,
                authorization_endpoint: spec.authorization_endpoint,
                token_endpoint: spec.token_endpoint,
                userinfo_endpoint: spec.userinfo_endpoint,
                jwks_uri: spec.jwks_uri,
                client_id,
                client_auth,
                scopes,
                userinfo: spec.userinfo,
                recheck_on_refresh: spec.recheck_on_refresh,
            }),
            saml: None,
            sealed_secret,
            sealed_private_key,
            public_jwk,
            created_at: previous.map_or(now, |p| p.created_at),
            updated_at: now,
        })
    }

    /// The spec that describes this connection (no secret), for showing and for PATCH.
    pub fn to_spec(&self) -> ConnectionSpec {
        let o = self.oidc.clone();
        ConnectionSpec {
            id: self.id.to_string(),
            kind: self.kind.as_str().into(),
            display_name: Some(self.display_name.clone()),
            button_text: Some(self.button_text.clone()),
            button_image_url: self.button_image_url.clone(),
            enabled: self.enabled,
            email_domains: self.email_domains.clone(),
            trusted_email: self.trusted_email,
            admin_groups: self.admin_groups.clone(),
            email_claim: Some(self.claims.email.clone()),
            unique_id_claim: Some(self.claims.unique_id.clone()),
            display_name_claim: self.claims.display_name.clone(),
            groups_claim: self.claims.groups.clone(),
            issuer: o.as_ref().map(|o| o.issuer.clone()),
            discovery: o.as_ref().is_none_or(|o| o.discovery),
            authorization_endpoint: o.as_ref().and_then(|o| o.authorization_endpoint.clone()),
            token_endpoint: o.as_ref().and_then(|o| o.token_endpoint.clone()),
            userinfo_endpoint: o.as_ref().and_then(|o| o.userinfo_endpoint.clone()),
            jwks_uri: o.as_ref().and_then(|o| o.jwks_uri.clone()),
            client_id: o.as_ref().map(|o| o.client_id.clone()),
            client_secret: None,
            client_auth: o.as_ref().map(|o| o.client_auth),
            scopes: o.as_ref().map(|o| o.scopes.clone()),
            userinfo: o.as_ref().is_some_and(|o| o.userinfo),
            recheck_on_refresh: o.as_ref().is_some_and(|o| o.recheck_on_refresh),
            idp_metadata_xml: None,
            idp_metadata_url: self.saml.as_ref().and_then(|s| s.idp_metadata_url.clone()),
            idp_entity_id: self.saml.as_ref().map(|s| s.idp_entity_id.clone()),
            sso_url: self.saml.as_ref().map(|s| s.sso_url.clone()),
            sso_binding: self.saml.as_ref().map(|s| s.sso_binding),
            idp_certificates: self.saml.as_ref().map(|s| s.idp_certificates.clone()),
        }
    }

    /// The JSON the admin API shows: the spec, whether a secret is set, and the JWKS URL
    /// material — never the secret or the private key.
    pub fn view(&self) -> Value {
        let mut v = serde_json::to_value(self.to_spec()).expect("spec serializes");
        let m = v.as_object_mut().expect("an object");
        m.insert(
            "client_secret_set".into(),
            Value::Bool(self.sealed_secret.is_some()),
        );
        if let Some(saml) = &self.saml {
            m.insert(
                "sp_certificate".into(),
                Value::String(saml.sp_certificate.clone()),
            );
        }
        m.insert("created_at".into(), self.created_at.into());
        m.insert("updated_at".into(), self.updated_at.into());
        v
    }

    /// The upstream client secret, opened.
    pub fn client_secret(&self, master: &MasterKey) -> Result<Option<String>> {
        let Some(sealed) = &self.sealed_secret else {
            return Ok(None);
        };
        let bytes = master.open(&secret_aad(&self.tenant_id, &self.id), sealed)?;
        String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| Error::Internal("sealed client secret is not UTF-8".into()))
    }

    /// The connection's JWKS (`{"keys": [...]}`), empty without a key.
    pub fn jwks(&self) -> Value {
        let keys: Vec<Value> = self
            .public_jwk
            .iter()
            .filter_map(|j| serde_json::from_str(j).ok())
            .collect();
        serde_json::json!({ "keys": keys })
    }

    /// Whether this connection takes people whose email is in `domain` (login_hint routing).
    pub fn routes_domain(&self, domain: &str) -> bool {
        self.enabled && self.email_domains.iter().any(|d| d.eq_ignore_ascii_case(domain))
    }

    /// RFC 7523 §2.2 client assertion for `private_key_jwt` at `token_endpoint`: signed with
    /// the connection's RS256 key, audience the token endpoint, one minute, random `jti`.
    pub fn client_assertion(&self, master: &MasterKey, token_endpoint: &str, now: i64) -> Result<String> {
        let (Some(sealed), Some(jwk), Some(oidc)) = (&self.sealed_private_key, &self.public_jwk, &self.oidc)
        else {
            return Err(Error::Internal(
                "the connection has no private_key_jwt key".into(),
            ));
        };
        let mut der = master.open(&key_aad(&self.tenant_id, &self.id), sealed)?;
        let pair = SigningKeyPair::from_pkcs8(SigningAlg::RS256, &der);
        der.zeroize();
        let pair = pair?;
        let kid = serde_json::from_str::<Value>(jwk)
            .ok()
            .and_then(|v| v["kid"].as_str().map(str::to_owned))
            .unwrap_or_default();
        let header = serde_json::json!({ "alg": "RS256", "typ": "JWT", "kid": kid });
        let claims = serde_json::json!({
            "iss": oidc.client_id,
            "sub": oidc.client_id,
            "aud": token_endpoint,
            "iat": now,
            "exp": now + 60,
            "jti": B64.encode(crate::crypto::random_bytes::<16>()),
        });
        let mut out = B64.encode(header.to_string());
        out.push('.');
        out.push_str(&B64.encode(claims.to_string()));
        let sig = pair.sign(out.as_bytes())?;
        out.push('.');
        out.push_str(&B64.encode(sig));
        Ok(out)
    }
}

/// A SAML connection's settings and its sealed AuthnRequest key: from the metadata when given,
/// else the fields set by hand. The key is generated once and kept across updates, so the IdP's
/// copy of the SP metadata stays valid.
fn saml_settings(
    master: &MasterKey,
    tenant: &TenantId,
    id: &ConnectionId,
    spec: &ConnectionSpec,
    previous: Option<&SsoConnection>,
) -> Result<(SamlSettings, Vec<u8>)> {
    if let Some(u) = &spec.idp_metadata_url {
        check_url("idp_metadata_url", u)?;
    }
    let (entity_id, sso_url, binding, certificates) = match &spec.idp_metadata_xml {
        Some(xml) => {
            let m = crate::saml::parse_idp_metadata(xml)?;
            (m.entity_id, m.sso_url, m.sso_binding, m.certificates)
        }
        None => {
            let need = |field: &str| {
                Error::InvalidRequest(format!(
                    "a saml connection needs {field}, or idp_metadata_xml / idp_metadata_url"
                ))
            };
            let certs = spec
                .idp_certificates
                .as_ref()
                .filter(|c| !c.is_empty())
                .ok_or_else(|| need("idp_certificates"))?
                .iter()
                .map(|c| crate::saml::normalise_certificate(c))
                .collect::<Result<Vec<_>>>()?;
            (
                spec.idp_entity_id.clone().ok_or_else(|| need("idp_entity_id"))?,
                spec.sso_url.clone().ok_or_else(|| need("sso_url"))?,
                spec.sso_binding.unwrap_or_default(),
                certs,
            )
        }
    };
    check_text("idp_entity_id", &entity_id, 1024)?;
    check_url("sso_url", &sso_url)?;
    let kept = previous.filter(|p| p.kind == ConnectionKind::Saml).and_then(|p| {
        Some((
            p.saml.as_ref()?.sp_certificate.clone(),
            p.sealed_private_key.clone()?,
        ))
    });
    let (sp_certificate, sealed) = match kept {
        Some(k) => k,
        None => {
            let (mut der, cert) = crate::saml::generate_sp_key(&format!("Sesame {tenant}/{id}"))?;
            let sealed = master.seal(&key_aad(tenant, id), &der);
            der.zeroize();
            (base64::engine::general_purpose::STANDARD.encode(cert), sealed)
        }
    };
    Ok((
        SamlSettings {
            idp_metadata_url: spec.idp_metadata_url.clone(),
            idp_entity_id: entity_id,
            sso_url,
            sso_binding: binding,
            idp_certificates: certificates,
            sp_certificate,
        },
        sealed,
    ))
}

impl SsoConnection {
    /// The PKCS#8 of a SAML connection's AuthnRequest key, opened.
    pub fn saml_key(&self, master: &MasterKey) -> Result<Vec<u8>> {
        let sealed = self
            .sealed_private_key
            .as_ref()
            .ok_or_else(|| Error::Internal("the SAML connection has no key".into()))?;
        master.open(&key_aad(&self.tenant_id, &self.id), sealed)
    }
}

/// An identity as any connector hands it over, after the protocol's own checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpstreamIdentity {
    /// The value of the unique id claim: stable per person at this IdP.
    pub subject: String,
    pub email: Option<String>,
    /// OIDC `email_verified` (SAML has none: false).
    pub email_verified: bool,
    pub name: Option<String>,
    pub groups: Vec<String>,
}

/// Why a federated sign-in was refused: each is a page that says what to fix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// A mapped claim the rules need is absent (the unique id, or the email for a new user).
    MissingClaim(String),
    /// An existing user has this email, but the IdP did not say it is verified and the
    /// connection is not trusted for email.
    UnverifiedEmail,
    /// Several users have this email: linking would be a guess.
    AmbiguousEmail,
    /// The linked (or matched) user is disabled.
    Disabled,
    /// The connection re-checks on refresh, but the IdP issued no refresh token.
    NoRefreshToken,
}

/// Reads the mapped claims. `claims` is the ID token's claims merged with userinfo's.
pub fn identity_from_claims(
    names: &ClaimNames,
    claims: &Map<String, Value>,
) -> Result<UpstreamIdentity, Refusal> {
    let text = |name: &str| match claims.get(name) {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    let subject = text(&names.unique_id).ok_or_else(|| Refusal::MissingClaim(names.unique_id.clone()))?;
    let email = text(&names.email).map(|e| e.trim().to_owned());
    // Some IdPs send the boolean as a string.
    let email_verified = matches!(claims.get("email_verified"), Some(Value::Bool(true)))
        || matches!(claims.get("email_verified"), Some(Value::String(s)) if s == "true");
    let name = names.display_name.as_deref().and_then(text);
    let groups = match names.groups.as_deref().and_then(|g| claims.get(g)) {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    };
    Ok(UpstreamIdentity {
        subject,
        email,
        email_verified,
        name,
        groups,
    })
}

/// One federated sign-in, written in one transaction by
/// [`FederationStore::record_federated_sign_in`](crate::store::FederationStore::record_federated_sign_in).
#[derive(Clone, Debug)]
pub struct FederatedSignIn {
    /// The user with its refreshed profile.
    pub user: User,
    /// Whether `user` is new (inserted) or existing (its profile updated).
    pub new_user: bool,
    pub connection: ConnectionId,
    pub subject: String,
    /// Whether the (connection, subject) link is new.
    pub new_link: bool,
    /// The user's groups at this connection, replacing the previous ones.
    pub groups: Vec<String>,
    pub admin_by_sso: bool,
    pub now: i64,
}

/// The admin flag of a user, by source.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct AdminFlag {
    /// Set by hand; SSO never changes it.
    pub by_hand: bool,
    /// Follows the connection's admin groups at every sign-in.
    pub by_sso: bool,
}

impl AdminFlag {
    pub fn is_admin(self) -> bool {
        self.by_hand || self.by_sso
    }
}

/// Who an upstream identity signed in as, and whether this sign-in linked the identity (so
/// that the link is recorded once, not at every sign-in).
#[derive(Clone, Debug, PartialEq)]
pub struct SignedIn {
    pub user: User,
    /// The upstream identity was linked by this sign-in, to `user`.
    pub new_link: bool,
    /// `user` was created by this sign-in.
    pub new_user: bool,
}

/// The user an upstream identity signs in as, or the refusal. See the module comment.
pub async fn sign_in(
    store: &dyn Store,
    conn: &SsoConnection,
    identity: UpstreamIdentity,
    now: i64,
) -> Result<Result<SignedIn, Refusal>> {
    let tenant = &conn.tenant_id;
    let linked = store
        .find_external_identity(tenant, &conn.id, &identity.subject)
        .await?;
    let (mut user, new_user, new_link) = match linked {
        Some(id) => match store.get_user(tenant, id.as_str()).await? {
            Some(u) if u.id == id => (u, false, false),
            _ => return Err(Error::Internal("external identity names a missing user".into())),
        },
        None => {
            let Some(email) = identity.email.clone() else {
                return Ok(Err(Refusal::MissingClaim(conn.claims.email.clone())));
            };
            let matches = store.find_users_by_email(tenant, &email).await?;
            match matches.as_slice() {
                [] => (new_user(store, conn, &identity, &email, now).await?, true, true),
                [id] => {
                    // Linking by email hands this account to whoever controls the address at
                    // the IdP: only when the IdP vouches for it, or the tenant trusts the IdP.
                    if !(identity.email_verified || conn.trusted_email) {
                        return Ok(Err(Refusal::UnverifiedEmail));
                    }
                    match store.get_user(tenant, id.as_str()).await? {
                        Some(u) if u.id == *id => (u, false, true),
                        _ => return Err(Error::Internal("matched user vanished".into())),
                    }
                }
                _ => return Ok(Err(Refusal::AmbiguousEmail)),
            }
        }
    };
    if user.disabled {
        return Ok(Err(Refusal::Disabled));
    }
    // The profile follows the IdP at each sign-in.
    if let Some(email) = &identity.email {
        user.email = Some(email.clone());
        user.email_verified = identity.email_verified || conn.trusted_email;
    }
    if let Some(name) = &identity.name {
        user.name = Some(name.chars().take(200).collect());
    }
    user.updated_at = now;
    let admin_by_sso = identity
        .groups
        .iter()
        .any(|g| conn.admin_groups.iter().any(|a| a == g));
    let record = FederatedSignIn {
        user: user.clone(),
        new_user,
        connection: conn.id.clone(),
        subject: identity.subject,
        new_link,
        groups: identity.groups,
        admin_by_sso,
        now,
    };
    store.record_federated_sign_in(&record).await?;
    // Teams that follow an IdP group of this connection follow the groups just recorded.
    crate::authz::sync_idp_teams(store, tenant, &user.id, &conn.id, &record.groups).await?;
    Ok(Ok(SignedIn {
        user,
        new_link,
        new_user,
    }))
}

/// A just-in-time user: named by the email when that is a free username, else by the
/// connection and a random suffix. No password: it signs in through its IdP.
async fn new_user(
    store: &dyn Store,
    conn: &SsoConnection,
    identity: &UpstreamIdentity,
    email: &str,
    now: i64,
) -> Result<User> {
    let mut username = Username::normalize(email).ok();
    if let Some(name) = &username {
        if store.get_user(&conn.tenant_id, name.as_str()).await?.is_some() {
            username = None;
        }
    }
    let username = match username {
        Some(u) => u,
        None => Username::normalize(&format!(
            "{}-{}",
            conn.id,
            hex::encode(crate::crypto::random_bytes::<5>())
        ))?,
    };
    let user = User {
        tenant_id: conn.tenant_id.clone(),
        id: UserId::generate(),
        username,
        email: Some(email.to_owned()),
        email_verified: identity.email_verified || conn.trusted_email,
        name: identity.name.clone(),
        picture: None,
        disabled: false,
        password_hash: None,
        created_at: now,
        updated_at: now,
    };
    if user.validate().is_err() {
        // An address the user model refuses is kept out rather than failing the sign-in.
        return Ok(User {
            email: None,
            email_verified: false,
            ..user
        });
    }
    Ok(user)
}

/// The enabled connection a `login_hint` routes to by its email domain, if any.
pub fn route_hint<'a>(connections: &'a [SsoConnection], login_hint: &str) -> Option<&'a SsoConnection> {
    let (_, domain) = login_hint.trim().rsplit_once('@')?;
    connections.iter().find(|c| c.routes_domain(domain))
}

/// Admin API: a new connection; `Conflict` if the name is taken.
pub async fn create_connection(
    store: &dyn Store,
    master: &MasterKey,
    tenant: &TenantId,
    spec: ConnectionSpec,
    now: i64,
) -> Result<SsoConnection> {
    crate::admin::require_tenant(store, tenant).await?;
    let conn = SsoConnection::from_spec(master, tenant, spec, None, now)?;
    store.create_sso_connection(&conn).await?;
    Ok(conn)
}

pub async fn require_connection(store: &dyn Store, tenant: &TenantId, name: &str) -> Result<SsoConnection> {
    let missing = || {
        Error::NotFound(format!(
            "connection '{}' does not exist in tenant '{tenant}'",
            name.escape_debug()
        ))
    };
    let id = ConnectionId::parse(name).map_err(|_| missing())?;
    store.get_sso_connection(tenant, &id).await?.ok_or_else(missing)
}

/// Admin API: changes the members of `patch` (a JSON object with the fields of
/// [`ConnectionSpec`]); the others keep their values, the sealed secret unless a new one is given.
pub async fn update_connection(
    store: &dyn Store,
    master: &MasterKey,
    tenant: &TenantId,
    name: &str,
    patch: Map<String, Value>,
    now: i64,
) -> Result<SsoConnection> {
    let current = require_connection(store, tenant, name).await?;
    if patch
        .get("id")
        .is_some_and(|v| v.as_str() != Some(current.id.as_str()))
    {
        return Err(Error::invalid_request("a connection's id cannot change"));
    }
    let mut merged = serde_json::to_value(current.to_spec()).expect("spec serializes");
    let obj = merged.as_object_mut().expect("an object");
    obj.retain(|_, v| !v.is_null());
    for (k, v) in patch {
        obj.insert(k, v);
    }
    let spec: ConnectionSpec = serde_json::from_value(merged)
        .map_err(|e| Error::InvalidRequest(format!("the change is not valid: {e}")))?;
    let updated = SsoConnection::from_spec(master, tenant, spec, Some(&current), now)?;
    if !store.update_sso_connection(&updated).await? {
        return Err(Error::NotFound(format!(
            "connection '{}' does not exist",
            current.id
        )));
    }
    Ok(updated)
}

// ---------------------------------------------------------------------------------------------
// Re-check upstream on refresh (`recheck_on_refresh`)
//
// At sign-in through a connection with the flag, the IdP's refresh token is kept on the link,
// sealed. When Sesame's refresh token of a grant that signed in through an IdP (`amr` "fed") is
// used, each of the user's links that holds one is refreshed at its IdP first: an IdP that
// refuses (`invalid_grant`: the person is gone or disabled there, or the session was ended)
// ends the Sesame grant too. Grants of other sign-ins read nothing more.

/// The `amr` value of a federated sign-in (OIDC Core §2).
pub const AMR_FEDERATED: &str = "fed";

/// A link's kept upstream refresh token, as the store holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpstreamRefreshToken {
    pub connection: ConnectionId,
    pub subject: String,
    /// Sealed with the master key (AAD: [`refresh_token_aad`]).
    pub sealed: Vec<u8>,
}

pub fn refresh_token_aad(tenant: &TenantId, connection: &ConnectionId, subject: &str) -> String {
    format!("sesame:sso-refresh-token:{tenant}:{connection}:{subject}")
}

/// What an IdP answered to a refresh.
#[derive(Clone, Debug, Default)]
pub struct UpstreamRefreshed {
    /// The rotated refresh token, when the IdP rotates them.
    pub refresh_token: Option<String>,
    /// The unique-id claim of a refreshed ID token, when one came back and the connection's
    /// unique id is `sub` (OIDC Core §12.2: it must be the same person).
    pub subject: Option<String>,
}

/// Why a re-check did not pass.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecheckFailure {
    /// The IdP refused (`invalid_grant`): the Sesame grant ends.
    Refused(String),
    /// The IdP could not be asked, or answered something else: the refresh fails, the grant stays.
    Unavailable(String),
}

/// The server's side of the re-check: the refresh-token grant at the connection's IdP.
#[async_trait::async_trait]
pub trait UpstreamRefresher: Send + Sync {
    async fn refresh(
        &self,
        master: &MasterKey,
        conn: &SsoConnection,
        refresh_token: &str,
    ) -> std::result::Result<UpstreamRefreshed, RecheckFailure>;
}

impl SsoConnection {
    /// Whether sign-ins keep the IdP's refresh token to re-check at each Sesame refresh.
    pub fn rechecks_on_refresh(&self) -> bool {
        self.oidc.as_ref().is_some_and(|o| o.recheck_on_refresh)
    }
}

/// At a sign-in through `conn`: keeps the IdP's refresh token on the link (sealed) when the
/// connection re-checks, else forgets any kept one. A re-checking connection whose IdP gave no
/// refresh token is refused before any user is touched (see [`Refusal::NoRefreshToken`]).
pub fn check_refresh_token_given(conn: &SsoConnection, refresh_token: Option<&str>) -> Result<(), Refusal> {
    if conn.rechecks_on_refresh() && refresh_token.is_none_or(str::is_empty) {
        return Err(Refusal::NoRefreshToken);
    }
    Ok(())
}

/// Stores (or clears) the link's upstream refresh token after [`sign_in`] recorded the link.
pub async fn keep_refresh_token(
    store: &dyn Store,
    master: &MasterKey,
    conn: &SsoConnection,
    subject: &str,
    refresh_token: Option<String>,
) -> Result<()> {
    let sealed = match refresh_token {
        Some(mut token) if conn.rechecks_on_refresh() => {
            let sealed = master.seal(
                &refresh_token_aad(&conn.tenant_id, &conn.id, subject),
                token.as_bytes(),
            );
            token.zeroize();
            Some(sealed)
        }
        _ => None,
    };
    store
        .set_upstream_refresh_token(&conn.tenant_id, &conn.id, subject, sealed.as_deref())
        .await?;
    Ok(())
}

/// At the use of a Sesame refresh token of `user`'s grant `grant_id` that signed in through an
/// IdP: refreshes each kept upstream refresh token at its IdP. A refusal (or a connection turned
/// off, or another person in a refreshed ID token) revokes the grant and answers `invalid_grant`;
/// an IdP that cannot be asked fails this refresh only.
pub async fn recheck_upstream(
    store: &dyn Store,
    master: &MasterKey,
    upstream: &dyn UpstreamRefresher,
    user: &User,
    grant_id: &str,
    now: i64,
) -> Result<()> {
    let tenant = &user.tenant_id;
    for kept in store.upstream_refresh_tokens(tenant, &user.id).await? {
        let Some(conn) = store.get_sso_connection(tenant, &kept.connection).await? else {
            continue;
        };
        if !conn.rechecks_on_refresh() {
            // The flag was turned off since that sign-in: nothing to re-check.
            continue;
        }
        if !conn.enabled {
            return refuse(
                store,
                user,
                grant_id,
                &kept.connection,
                "the connection is turned off",
                now,
            )
            .await;
        }
        let aad = refresh_token_aad(tenant, &kept.connection, &kept.subject);
        let mut token = String::from_utf8(master.open(&aad, &kept.sealed)?)
            .map_err(|_| Error::Internal("sealed upstream refresh token is not UTF-8".into()))?;
        let answer = upstream.refresh(master, &conn, &token).await;
        token.zeroize();
        match answer {
            Ok(r) => {
                if r.subject.as_ref().is_some_and(|s| *s != kept.subject) {
                    return refuse(
                        store,
                        user,
                        grant_id,
                        &kept.connection,
                        "the refreshed ID token names another subject",
                        now,
                    )
                    .await;
                }
                if let Some(mut rotated) = r.refresh_token {
                    let sealed = master.seal(&aad, rotated.as_bytes());
                    rotated.zeroize();
                    store
                        .set_upstream_refresh_token(tenant, &kept.connection, &kept.subject, Some(&sealed))
                        .await?;
                }
            }
            Err(RecheckFailure::Refused(reason)) => {
                return refuse(store, user, grant_id, &kept.connection, &reason, now).await
            }
            Err(RecheckFailure::Unavailable(reason)) => {
                return Err(Error::Internal(format!(
                    "re-checking the sign-in at connection '{}': {reason}",
                    kept.connection
                )))
            }
        }
    }
    Ok(())
}

/// The IdP no longer vouches for the person: the whole grant ends (its refresh tokens and
/// access tokens), and the refresh answers `invalid_grant`.
async fn refuse(
    store: &dyn Store,
    user: &User,
    grant_id: &str,
    connection: &ConnectionId,
    reason: &str,
    now: i64,
) -> Result<()> {
    tracing::warn!(tenant = %user.tenant_id, %connection, user = %user.id, reason,
        "upstream re-check refused; grant revoked");
    store.revoke_grant(&user.tenant_id, grant_id, now).await?;
    Err(Error::InvalidGrant(format!(
        "the sign-in at {connection} is no longer valid; sign in again"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_are_read_by_their_mapped_names() {
        let names = ClaimNames {
            email: "mail".into(),
            unique_id: "oid".into(),
            display_name: Some("name".into()),
            groups: Some("roles".into()),
        };
        let claims: Map<String, Value> = serde_json::from_value(serde_json::json!({
            "oid": 42, "mail": "a@b.example", "email_verified": "true", "roles": ["x", "y"], "name": "A"
        }))
        .unwrap();
        let id = identity_from_claims(&names, &claims).unwrap();
        assert_eq!(id.subject, "42");
        assert_eq!(id.email.as_deref(), Some("a@b.example"));
        assert!(id.email_verified);
        assert_eq!(id.groups, vec!["x", "y"]);
        let empty = Map::new();
        assert_eq!(
            identity_from_claims(&names, &empty),
            Err(Refusal::MissingClaim("oid".into()))
        );
    }

    #[test]
    fn specs_are_checked_and_secrets_sealed() {
        let (master, _) = MasterKey::generate();
        let t = TenantId::parse("acme").unwrap();
        let spec = ConnectionSpec {
            id: "corp".into(),
            kind: "oidc".into(),
            issuer: Some("https://idp.example".into()),
            discovery: true,
            client_id: Some("sesame".into()),
            client_secret: Some("s3cret".into()),
            enabled: true,
            email_domains: vec!["@Acme.example".into()],
            ..Default::default()
        };
        let c = SsoConnection::from_spec(&master, &t, spec.clone(), None, 1).unwrap();
        assert_eq!(c.client_secret(&master).unwrap().as_deref(), Some("s3cret"));
        assert_eq!(c.email_domains, vec!["acme.example"]);
        assert!(!c.view().to_string().contains("s3cret"));
        assert!(route_hint(std::slice::from_ref(&c), "bob@ACME.example").is_some());
        let no_secret = ConnectionSpec {
            client_secret: None,
            ..spec.clone()
        };
        assert!(SsoConnection::from_spec(&master, &t, no_secret.clone(), None, 1).is_err());
        // An update without a secret keeps the sealed one.
        let kept = SsoConnection::from_spec(&master, &t, no_secret, Some(&c), 2).unwrap();
        assert_eq!(kept.client_secret(&master).unwrap().as_deref(), Some("s3cret"));
        // A saml connection needs its IdP's entity id, SSO URL and certificates.
        let saml = ConnectionSpec {
            kind: "saml".into(),
            ..spec
        };
        assert!(SsoConnection::from_spec(&master, &t, saml, None, 1).is_err());
    }
}
