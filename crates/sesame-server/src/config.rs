//! `sesamed` configuration: defaults, then a TOML file, then `SESAME_*` environment variables.
//! Errors name the field and the problem.

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};
use sesame_core::ids::{ClientId, TenantId};
use sesame_core::model::{ClientType, GrantType, SigningAlg};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Top-level fields; each is also `SESAME_<FIELD>` in the environment.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// The URL people and clients reach Sesame at; issuers are `{public_url}/t/{tenant}`.
    /// Defaults to `http://{listen}`.
    pub public_url: Option<String>,
    /// Where the embedded store, the master key file (if generated) and the admin token go.
    pub data_dir: PathBuf,
    /// `sqlite:PATH` or `postgres://…`. Defaults to `sqlite://{data_dir}/sesame.db`.
    pub store: Option<String>,
    /// The master key, base64 (prefer `master_key_file` or the environment for this one).
    pub master_key: Option<String>,
    /// A file holding the master key in base64.
    pub master_key_file: Option<PathBuf>,
    /// `text` or `json`.
    pub log_format: LogFormat,
    /// A `tracing` filter such as `info` or `sesame_server=debug,info`.
    pub log_level: String,
    /// How often each replica checks the store for changes made by others, in milliseconds.
    pub cache_refresh_ms: u64,
    /// Behind a reverse proxy: the header in which it appends the client address (such as
    /// `x-forwarded-for`), for sign-in throttling. Read only from `trusted_proxies`. Unset, the
    /// peer address is used, which behind a proxy is the proxy's (so everyone shares one limit).
    pub client_address_header: Option<String>,
    /// The proxies (addresses or CIDR ranges) whose `client_address_header` is believed; the
    /// client is the right-most address in it that is not one of them.
    pub trusted_proxies: Vec<String>,
    /// A second address for the operators' surfaces, `/admin/v1` and `/metrics`. When set, the
    /// public listener answers 404 for them; put this one on a private interface.
    pub admin_listen: Option<SocketAddr>,
    /// Name of an environment variable holding the bearer token `/metrics` requires. The token
    /// is never inline in the file.
    pub metrics_token_env: Option<String>,
    /// A file holding the bearer token `/metrics` requires (trailing newline ignored).
    pub metrics_token_file: Option<PathBuf>,
    /// How many password checks (Argon2id, 19 MiB each while it runs) may run at once; more
    /// sign-ins wait up to 2 s, then are asked to retry. Peak memory is about this × 19 MiB
    /// above the baseline. Defaults to twice the CPU cores.
    pub password_check_concurrency: Option<usize>,
    /// How long a device code (RFC 8628) waits for the person to approve it, in seconds
    /// (default 600).
    pub device_code_ttl: Option<i64>,
    /// Tenants (and their clients) applied idempotently at start.
    pub tenants: Vec<TenantConfig>,
    // Audit log (access) ---------------------------------------------------------------------------
    /// Audit events older than this many days are deleted by the sweep (default 90).
    pub audit_retention_days: Option<u32>,
    /// Record a `token.issued` event for every token the token endpoint issues (default false:
    /// on SQLite it halves the token endpoint's rate on one core; see BENCHMARKS.md).
    pub audit_token_issued: Option<bool>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// One `[[tenants]]` table: its typed fields (checked when the config loads) and the table as
/// written, which is what start applies (`sesame_declare`, as `sesame apply` does), so that a
/// field the file leaves out is left alone rather than reset to a default.
#[derive(Clone, Debug)]
pub struct TenantConfig {
    fields: TenantFields,
    written: serde_json::Value,
}

impl std::ops::Deref for TenantConfig {
    type Target = TenantFields;
    fn deref(&self) -> &TenantFields {
        &self.fields
    }
}

impl TenantConfig {
    /// The table as the file (or the environment) wrote it.
    pub fn written(&self) -> &serde_json::Value {
        &self.written
    }
}

impl<'de> Deserialize<'de> for TenantConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let written = serde_json::Value::deserialize(d)?;
        // The path inside the table (`signing_alg`, `clients[0].redirect_uris`), which the
        // outer error's key (`tenants.0`) does not reach.
        let fields: TenantFields = serde_path_to_error::deserialize(&written).map_err(|e| {
            let path = e.path().to_string();
            match path.as_str() {
                "." | "" => D::Error::custom(e.into_inner()),
                _ => D::Error::custom(format!("{path}: {}", e.into_inner())),
            }
        })?;
        Ok(TenantConfig { fields, written })
    }
}

impl Serialize for TenantConfig {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.fields.serialize(s)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantFields {
    pub id: TenantId,
    pub display_name: Option<String>,
    pub signing_alg: Option<SigningAlg>,
    pub access_token_ttl: Option<i64>,
    /// Browser session lifetime in seconds (default one day).
    pub session_ttl: Option<i64>,
    /// Refresh token lifetime in seconds, started again at each rotation (default 7 days).
    pub refresh_token_ttl: Option<i64>,
    /// Shown on the sign-in pages (an http(s) URL).
    pub logo_url: Option<String>,
    #[serde(default)]
    pub clients: Vec<ClientConfig>,
    /// Outside issuers this tenant trusts (`[[tenants.trust_policies]]`, token exchange).
    #[serde(default)]
    pub trust_policies: Vec<sesame_core::trust::TrustPolicySpec>,
    /// Where workload tokens say they come from (default: the sign-in issuer).
    pub workload_issuer: Option<String>,
    /// The longest delegated session, in seconds (default and most: 7 days).
    pub session_max_ttl: Option<i64>,
    /// Sources (`[[tenants.sources]]`), each with its own `id` (a UUID) so that applying the
    /// file again finds it; applied after the clients they name.
    #[serde(default)]
    pub sources: Vec<sesame_core::workload::SourceSpec>,
    /// Brokered SSO connections (`[[tenants.sso]]`), the fields of the admin API's, with the
    /// client secret from `client_secret_file` or `client_secret_env`.
    #[serde(default)]
    pub sso: Vec<SsoConnectionConfig>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    pub client_id: ClientId,
    pub name: Option<String>,
    #[serde(default = "confidential")]
    pub client_type: ClientType,
    /// Name of an environment variable that holds the secret. Secrets are never inline.
    pub secret_env: Option<String>,
    /// A file that holds the secret (trailing newline ignored).
    pub secret_file: Option<PathBuf>,
    #[serde(default)]
    pub grant_types: Vec<GrantType>,
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// Where RP-initiated logout may return to.
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    /// PKCE on every authorization request; a public client cannot turn it off.
    #[serde(default = "yes")]
    pub require_pkce: bool,
    /// Skips the consent page (the tenant's own applications).
    #[serde(default)]
    pub first_party: bool,
    /// A refresh token with every authorization code, not only for `offline_access`.
    #[serde(default)]
    pub refresh_without_offline_access: bool,
    /// Where logout tokens go when a session this client signed in with ends.
    pub backchannel_logout_uri: Option<String>,
    #[serde(default)]
    pub allowed_scopes: Vec<String>,
    #[serde(default)]
    pub allowed_audiences: Vec<String>,
    pub signing_alg: Option<SigningAlg>,
    pub access_token_ttl: Option<i64>,
    /// May introspect tokens issued to other clients (a resource server, RFC 7662 §4).
    #[serde(default)]
    pub introspect_any: bool,
    /// `private_key_jwt`: the client's JWKS (JSON text); such a client has no secret.
    pub jwks: Option<String>,
    /// `private_key_jwt` with the keys at this URL.
    pub jwks_uri: Option<String>,
    /// `private_key_jwt` with outside tokens: the name of a trust policy of the tenant
    /// (`[[tenants.trust_policies]]` or the admin API); such a client has no secret and no keys.
    pub trust_policy: Option<String>,
    /// May exchange a person's token without an actor token (RFC 8693 impersonation).
    #[serde(default)]
    pub token_exchange_impersonation: bool,
    #[serde(default)]
    pub disabled: bool,
}

fn confidential() -> ClientType {
    ClientType::Confidential
}

fn yes() -> bool {
    true
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: None,
            data_dir: PathBuf::from("./sesame-data"),
            store: None,
            master_key: None,
            master_key_file: None,
            log_format: LogFormat::Text,
            log_level: "info".into(),
            cache_refresh_ms: 1000,
            client_address_header: None,
            trusted_proxies: Vec::new(),
            admin_listen: None,
            metrics_token_env: None,
            metrics_token_file: None,
            password_check_concurrency: None,
            device_code_ttl: None,
            tenants: Vec::new(),
            audit_retention_days: None,
            audit_token_issued: None,
        }
    }
}

/// The environment variables `sesamed` reads (others, such as the CLI's, are left alone).
const ENV_KEYS: &[&str] = &[
    "listen",
    "public_url",
    "data_dir",
    "store",
    "master_key",
    "master_key_file",
    "log_format",
    "log_level",
    "cache_refresh_ms",
    "client_address_header",
    "trusted_proxies",
    "admin_listen",
    "metrics_token_env",
    "metrics_token_file",
    "password_check_concurrency",
    "device_code_ttl",
    "tenants",
    "audit_retention_days",
    "audit_token_issued",
];

/// Command-line values, which win over the file and the environment.
#[derive(Default, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_format: Option<LogFormat>,
}

impl Config {
    pub fn load(file: Option<&std::path::Path>, overrides: &Overrides) -> Result<Config, String> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.is_file() {
                return Err(format!("config file {} does not exist", path.display()));
            }
            fig = fig.merge(Toml::file_exact(path));
        }
        fig = fig
            .merge(Env::prefixed("SESAME_").only(ENV_KEYS))
            .merge(Serialized::defaults(overrides));
        let config: Config = fig.extract().map_err(|e| {
            e.into_iter()
                .map(|e| format!("config: {e}"))
                .collect::<Vec<_>>()
                .join("\n")
        })?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), String> {
        if let Some(url) = &self.public_url {
            let ok = (url.starts_with("http://") || url.starts_with("https://")) && url.len() > 8;
            if !ok || url.ends_with('/') || url.contains('?') || url.contains('#') {
                return Err(format!(
                    "config: public_url '{url}' must be an http(s) URL without a trailing slash, query or fragment"
                ));
            }
        }
        if let Some(store) = &self.store {
            sesame_store::StoreUrl::parse(store).map_err(|e| format!("config: store: {e}"))?;
        }
        if let Some(n) = self.password_check_concurrency {
            if !(1..=1024).contains(&n) {
                return Err(format!(
                    "config: password_check_concurrency must be between 1 and 1024, not {n}"
                ));
            }
        }
        if let Some(ttl) = self.device_code_ttl {
            if !(1..=86_400).contains(&ttl) {
                return Err(format!(
                    "config: device_code_ttl must be between 1 and 86400 seconds, not {ttl}"
                ));
            }
        }
        if !(50..=60_000).contains(&self.cache_refresh_ms) {
            return Err(format!(
                "config: cache_refresh_ms must be between 50 and 60000, not {}",
                self.cache_refresh_ms
            ));
        }
        if let Some(h) = &self.client_address_header {
            if axum::http::HeaderName::from_bytes(h.as_bytes()).is_err() {
                return Err(format!(
                    "config: client_address_header: '{}' is not a header name",
                    h.escape_debug()
                ));
            }
            // Believed from anyone it is forgeable; believed from no one it silently does nothing.
            if self.trusted_proxies.is_empty() {
                return Err(
                    "config: client_address_header needs trusted_proxies: the addresses of the proxies that set it"
                        .into(),
                );
            }
        }
        for p in &self.trusted_proxies {
            crate::browser::AddressRange::parse(p).map_err(|e| format!("config: trusted_proxies: {e}"))?;
        }
        if self
            .admin_listen
            .is_some_and(|a| a == self.listen && a.port() != 0)
        {
            return Err(format!(
                "config: admin_listen {} is the same address as listen; give it another one (or leave it unset)",
                self.listen
            ));
        }
        if self.metrics_token_env.is_some() && self.metrics_token_file.is_some() {
            return Err("config: give metrics_token_env or metrics_token_file, not both".into());
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log_level).is_err() {
            return Err(format!(
                "config: log_level '{}' is not a valid filter",
                self.log_level
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for t in &self.tenants {
            if !seen.insert(&t.id) {
                return Err(format!("config: tenant '{}' is declared twice", t.id));
            }
            let mut clients = std::collections::HashSet::new();
            for c in &t.clients {
                if !clients.insert(&c.client_id) {
                    return Err(format!(
                        "config: client '{}' is declared twice in tenant '{}'",
                        c.client_id, t.id
                    ));
                }
                let where_ = format!("config: tenant '{}' client '{}'", t.id, c.client_id);
                match (c.client_type, &c.secret_env, &c.secret_file) {
                    (ClientType::Confidential, None, None) => {
                        return Err(format!(
                            "{where_}: a confidential client needs secret_env or secret_file"
                        ))
                    }
                    (_, Some(_), Some(_)) => {
                        return Err(format!("{where_}: give secret_env or secret_file, not both"))
                    }
                    (ClientType::Public, Some(_), _) | (ClientType::Public, _, Some(_)) => {
                        return Err(format!("{where_}: a public client has no secret"))
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }

    pub fn public_url(&self) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.listen))
    }

    /// The token `/metrics` requires, if one is configured. Errors name the field.
    pub fn metrics_token(&self) -> Result<Option<String>, String> {
        let token = if let Some(var) = &self.metrics_token_env {
            std::env::var(var)
                .map_err(|_| format!("config: metrics_token_env: environment variable {var} is not set"))?
        } else if let Some(path) = &self.metrics_token_file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("config: cannot read metrics_token_file {}: {e}", path.display()))?;
            text.trim_end_matches(['\n', '\r']).to_owned()
        } else {
            return Ok(None);
        };
        // Like declared client secrets: long enough that guessing is hopeless.
        if token.len() < 32 {
            return Err("config: the metrics token must be at least 32 characters".into());
        }
        Ok(Some(token))
    }

    pub fn store_url(&self) -> sesame_store::StoreUrl {
        match &self.store {
            Some(s) => sesame_store::StoreUrl::parse(s).expect("validated"),
            None => sesame_store::StoreUrl::sqlite_file(&self.data_dir.join("sesame.db")),
        }
    }
}

impl ClientConfig {
    /// Reads the secret from where the config says it is. Errors name the client and the source.
    pub fn read_secret(&self, tenant: &TenantId) -> Result<Option<String>, String> {
        let where_ = format!("config: tenant '{tenant}' client '{}'", self.client_id);
        let secret = if let Some(var) = &self.secret_env {
            Some(std::env::var(var).map_err(|_| format!("{where_}: environment variable {var} is not set"))?)
        } else if let Some(path) = &self.secret_file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("{where_}: cannot read secret_file {}: {e}", path.display()))?;
            Some(text.trim_end_matches(['\n', '\r']).to_owned())
        } else {
            None
        };
        if let Some(s) = &secret {
            // Declared secrets are not generated by us, so insist on a length worth hashing fast.
            if s.len() < 32 {
                return Err(format!("{where_}: the secret must be at least 32 characters"));
            }
        }
        Ok(secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_toml(text: &str) -> Result<Config, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sesame.toml");
        std::fs::write(&path, text).unwrap();
        Config::load(Some(&path), &Overrides::default())
    }

    #[test]
    fn errors_name_the_field() {
        let err = load_toml("cache_refresh_ms = \"soon\"").unwrap_err();
        assert!(err.contains("cache_refresh_ms"), "{err}");
        let err = load_toml("lisen = \"127.0.0.1:1\"").unwrap_err();
        assert!(err.contains("lisen"), "{err}");
        let err = load_toml("store = \"mysql://x\"").unwrap_err();
        assert!(err.contains("store"), "{err}");
        let err = load_toml("[[tenants]]\nid = \"Bad Name\"").unwrap_err();
        assert!(err.contains("tenant name"), "{err}");
        let err = load_toml("[[tenants]]\nid = \"a\"\n[[tenants.clients]]\nclient_id = \"c\"").unwrap_err();
        assert!(err.contains("secret_env or secret_file"), "{err}");
        let err = load_toml("public_url = \"https://id.example/\"").unwrap_err();
        assert!(err.contains("public_url"), "{err}");
    }

    #[test]
    fn the_client_address_header_needs_trusted_proxies_that_parse() {
        let header = "client_address_header = \"x-forwarded-for\"\n";
        let err = load_toml(header).unwrap_err();
        assert!(err.contains("needs trusted_proxies"), "{err}");
        let err = load_toml(&format!(
            "{header}trusted_proxies = [\"10.0.0.0/8\", \"10.0.0.0/33\"]"
        ))
        .unwrap_err();
        assert!(
            err.contains("trusted_proxies") && err.contains("'10.0.0.0/33'"),
            "{err}"
        );
        let err = load_toml(&format!("{header}trusted_proxies = [\"proxy.internal\"]")).unwrap_err();
        assert!(err.contains("'proxy.internal'"), "{err}");
        let c = load_toml(&format!(
            "{header}trusted_proxies = [\"10.0.0.0/8\", \"::1\", \"192.0.2.7\"]"
        ))
        .unwrap();
        assert_eq!(c.trusted_proxies.len(), 3);
    }

    #[test]
    fn operator_surface_fields_are_checked() {
        let err = load_toml("listen = \"127.0.0.1:9000\"\nadmin_listen = \"127.0.0.1:9000\"").unwrap_err();
        assert!(err.contains("admin_listen"), "{err}");
        let err = load_toml("metrics_token_env = \"T\"\nmetrics_token_file = \"/t\"").unwrap_err();
        assert!(err.contains("metrics_token_env or metrics_token_file"), "{err}");
        let err = load_toml("metrics_token = \"inline-secrets-are-not-accepted\"").unwrap_err();
        assert!(err.contains("metrics_token"), "{err}");
        let c = load_toml("admin_listen = \"10.0.0.5:9090\"\nmetrics_token_env = \"SESAME_TEST_UNSET_VAR\"")
            .unwrap();
        assert_eq!(c.admin_listen, Some("10.0.0.5:9090".parse().unwrap()));
        let err = c.metrics_token().unwrap_err();
        assert!(err.contains("SESAME_TEST_UNSET_VAR"), "{err}");
    }

    #[test]
    fn password_check_concurrency_is_between_1_and_1024() {
        assert_eq!(
            load_toml("password_check_concurrency = 3")
                .unwrap()
                .password_check_concurrency,
            Some(3)
        );
        assert_eq!(load_toml("").unwrap().password_check_concurrency, None);
        for bad in ["0", "1025"] {
            let err = load_toml(&format!("password_check_concurrency = {bad}")).unwrap_err();
            assert!(
                err.contains("password_check_concurrency must be between 1 and 1024"),
                "{err}"
            );
        }
    }

    #[test]
    fn a_full_file_loads() {
        let c = load_toml(
            r#"
listen = "127.0.0.1:9999"
public_url = "https://id.example"
store = "postgres://sesame@db/sesame"
[[tenants]]
id = "acme"
signing_alg = "EdDSA"
[[tenants.clients]]
client_id = "svc"
secret_env = "ACME_SVC_SECRET"
grant_types = ["client_credentials"]
allowed_scopes = ["read"]
"#,
        )
        .unwrap();
        assert_eq!(c.public_url(), "https://id.example");
        assert_eq!(
            c.tenants[0].clients[0].grant_types,
            vec![GrantType::ClientCredentials]
        );
        assert!(matches!(c.store_url(), sesame_store::StoreUrl::Postgres(_)));
        let svc = &c.tenants[0].clients[0];
        assert!(svc.require_pkce && !svc.first_party && svc.post_logout_redirect_uris.is_empty());
    }

    #[test]
    fn declared_clients_take_the_sign_in_fields() {
        let c = load_toml(
            r#"
[[tenants]]
id = "acme"
logo_url = "https://acme.example/logo.svg"
[[tenants.clients]]
client_id = "web"
client_type = "public"
grant_types = ["authorization_code", "refresh_token"]
redirect_uris = ["https://app.example/cb"]
post_logout_redirect_uris = ["https://app.example/"]
first_party = true
refresh_without_offline_access = true
[[tenants.clients]]
client_id = "api"
secret_env = "API_SECRET"
introspect_any = true
"#,
        )
        .unwrap();
        let t = &c.tenants[0];
        assert_eq!(t.logo_url.as_deref(), Some("https://acme.example/logo.svg"));
        let web = &t.clients[0];
        assert_eq!(
            web.grant_types,
            vec![GrantType::AuthorizationCode, GrantType::RefreshToken]
        );
        assert_eq!(web.post_logout_redirect_uris, ["https://app.example/"]);
        assert!(web.require_pkce && web.first_party && web.refresh_without_offline_access);
        assert!(!web.introspect_any && t.clients[1].introspect_any);
        let err = load_toml("[[tenants]]\nid = \"a\"\n[[tenants.clients]]\nclient_id = \"c\"\nclient_type = \"public\"\npkce = false")
            .unwrap_err();
        assert!(err.contains("pkce"), "{err}");
    }
}

// ---------------------------------------------------------------------------------------------
// `[[tenants.sso]]`: a connection's spec, with its client secret from a file or the environment

/// One declared SSO connection: the admin API's [`ConnectionSpec`] fields (unknown ones are
/// refused, as there), plus `client_secret_file` / `client_secret_env`, so that the file holds
/// no secret. The admin API takes neither: reading server files is the operator's business.
///
/// [`ConnectionSpec`]: sesame_core::federation::ConnectionSpec
#[derive(Clone, Debug)]
pub struct SsoConnectionConfig {
    pub spec: sesame_core::federation::ConnectionSpec,
    /// A file holding the upstream client secret (trailing newline ignored).
    pub client_secret_file: Option<PathBuf>,
    /// An environment variable holding the upstream client secret.
    pub client_secret_env: Option<String>,
}

impl std::ops::Deref for SsoConnectionConfig {
    type Target = sesame_core::federation::ConnectionSpec;
    fn deref(&self) -> &Self::Target {
        &self.spec
    }
}

impl std::ops::DerefMut for SsoConnectionConfig {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.spec
    }
}

impl From<sesame_core::federation::ConnectionSpec> for SsoConnectionConfig {
    fn from(spec: sesame_core::federation::ConnectionSpec) -> Self {
        SsoConnectionConfig {
            spec,
            client_secret_file: None,
            client_secret_env: None,
        }
    }
}

impl<'de> Deserialize<'de> for SsoConnectionConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let mut fields = serde_json::Map::<String, serde_json::Value>::deserialize(d)?;
        let mut text = |name: &str| match fields.remove(name) {
            None => Ok(None),
            Some(serde_json::Value::String(s)) if !s.is_empty() => Ok(Some(s)),
            Some(_) => Err(D::Error::custom(format!("{name} must be a non-empty string"))),
        };
        let client_secret_file = text("client_secret_file")?.map(PathBuf::from);
        let client_secret_env = text("client_secret_env")?;
        let sources = [
            fields.contains_key("client_secret"),
            client_secret_file.is_some(),
            client_secret_env.is_some(),
        ];
        if sources.iter().filter(|s| **s).count() > 1 {
            return Err(D::Error::custom(
                "give one of client_secret_file, client_secret_env or client_secret, not several",
            ));
        }
        let spec = serde_json::from_value(serde_json::Value::Object(fields)).map_err(D::Error::custom)?;
        Ok(SsoConnectionConfig {
            spec,
            client_secret_file,
            client_secret_env,
        })
    }
}

impl Serialize for SsoConnectionConfig {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error as _;
        let mut v = serde_json::to_value(&self.spec).map_err(S::Error::custom)?;
        if let Some(m) = v.as_object_mut() {
            if let Some(f) = &self.client_secret_file {
                m.insert("client_secret_file".into(), f.display().to_string().into());
            }
            if let Some(e) = &self.client_secret_env {
                m.insert("client_secret_env".into(), e.clone().into());
            }
        }
        v.serialize(s)
    }
}

impl SsoConnectionConfig {
    /// The spec with the client secret read from where the file says it is. Errors name the
    /// tenant, the connection and the field.
    pub fn resolve(&self, tenant: &TenantId) -> Result<sesame_core::federation::ConnectionSpec, String> {
        let where_ = format!("config: tenant '{tenant}' sso connection '{}'", self.spec.id);
        let mut spec = self.spec.clone();
        if let Some(var) = &self.client_secret_env {
            let value = std::env::var(var)
                .map_err(|_| format!("{where_}: client_secret_env: environment variable {var} is not set"))?;
            spec.client_secret = Some(value);
        } else if let Some(path) = &self.client_secret_file {
            let text = std::fs::read_to_string(path).map_err(|e| {
                format!(
                    "{where_}: client_secret_file: cannot read {}: {e}",
                    path.display()
                )
            })?;
            spec.client_secret = Some(text.trim_end_matches(['\n', '\r']).to_owned());
        }
        if spec.client_secret.as_deref() == Some("") {
            let field = match (&self.client_secret_env, &self.client_secret_file) {
                (Some(_), _) => "client_secret_env",
                (_, Some(_)) => "client_secret_file",
                _ => "client_secret",
            };
            return Err(format!("{where_}: {field}: the client secret is empty"));
        }
        Ok(spec)
    }
}

#[cfg(test)]
mod sso_secret_tests {
    use super::*;

    fn load(text: &str) -> Result<Config, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sesame.toml");
        std::fs::write(&path, text).unwrap();
        Config::load(Some(&path), &Overrides::default())
    }

    const BASE: &str = "[[tenants]]\nid = \"acme\"\n[[tenants.sso]]\nid = \"corp\"\nissuer = \"https://idp.example\"\nclient_id = \"sesame\"\n";

    #[test]
    fn the_client_secret_comes_from_a_file_or_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("secret");
        std::fs::write(&file, "from-a-file\n").unwrap();
        let c = load(&format!("{BASE}client_secret_file = \"{}\"\n", file.display())).unwrap();
        let tenant = &c.tenants[0];
        let spec = tenant.sso[0].resolve(&tenant.id).unwrap();
        assert_eq!(spec.client_secret.as_deref(), Some("from-a-file"));
        assert_eq!(spec.id, "corp");

        std::env::set_var("SESAME_TEST_SSO_SECRET_A", "from-the-env");
        let c = load(&format!(
            "{BASE}client_secret_env = \"SESAME_TEST_SSO_SECRET_A\"\n"
        ))
        .unwrap();
        let spec = c.tenants[0].sso[0].resolve(&c.tenants[0].id).unwrap();
        assert_eq!(spec.client_secret.as_deref(), Some("from-the-env"));
        // Serialising keeps the source, never a secret.
        let shown = serde_json::to_string(&c.tenants[0].sso[0]).unwrap();
        assert!(
            shown.contains("SESAME_TEST_SSO_SECRET_A") && !shown.contains("from-the-env"),
            "{shown}"
        );
    }

    #[test]
    fn missing_or_unreadable_secrets_name_the_field() {
        let c = load(&format!(
            "{BASE}client_secret_env = \"SESAME_TEST_SSO_SECRET_UNSET\"\n"
        ))
        .unwrap();
        let err = c.tenants[0].sso[0].resolve(&c.tenants[0].id).unwrap_err();
        assert!(
            err.contains("client_secret_env")
                && err.contains("SESAME_TEST_SSO_SECRET_UNSET")
                && err.contains("'corp'"),
            "{err}"
        );
        let c = load(&format!(
            "{BASE}client_secret_file = \"/nonexistent/sesame/secret\"\n"
        ))
        .unwrap();
        let err = c.tenants[0].sso[0].resolve(&c.tenants[0].id).unwrap_err();
        assert!(
            err.contains("client_secret_file") && err.contains("/nonexistent/sesame/secret"),
            "{err}"
        );
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n").unwrap();
        let c = load(&format!("{BASE}client_secret_file = \"{}\"\n", empty.display())).unwrap();
        let err = c.tenants[0].sso[0].resolve(&c.tenants[0].id).unwrap_err();
        assert!(
            err.contains("client_secret_file") && err.contains("empty"),
            "{err}"
        );
        let err = load(&format!(
            "{BASE}client_secret_env = \"X\"\nclient_secret_file = \"/x\"\n"
        ))
        .unwrap_err();
        assert!(
            err.contains("client_secret_file") && err.contains("client_secret_env"),
            "{err}"
        );
        let err = load(&format!("{BASE}client_secret_env = 3\n")).unwrap_err();
        assert!(err.contains("client_secret_env"), "{err}");
        let err = load(&format!("{BASE}client_secret_fil = \"/x\"\n")).unwrap_err();
        assert!(err.contains("client_secret_fil"), "{err}");
    }
}
