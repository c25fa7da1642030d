//! The command line, as clap types. Only parsing lives here; `api` turns a parsed command into a
//! request and `output` turns the answer into text.

use clap::{ArgAction, ArgGroup, Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

pub const DEFAULT_URL: &str = "http://127.0.0.1:8080";

#[derive(Debug, Parser)]
#[command(
    name = "sesame",
    version,
    about = "Sesame, a self-hosted OAuth 2.0 / OpenID Connect server"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Where sign-in commands keep tokens: the OS keyring, the 0600 file, or the keyring when
    /// one answers (auto)
    #[arg(
        long,
        global = true,
        value_enum,
        env = "SESAME_CREDENTIAL_STORE",
        value_name = "STORE"
    )]
    pub credential_store: Option<CredentialStoreArg>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CredentialStoreArg {
    Auto,
    Keyring,
    File,
}

impl CredentialStoreArg {
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialStoreArg::Auto => "auto",
            CredentialStoreArg::Keyring => "keyring",
            CredentialStoreArg::File => "file",
        }
    }
}

// Parsed once per process; boxing the admin arguments would only complicate their matches.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Manage tenants, clients, signing keys and users through the admin API
    Admin(AdminArgs),
    /// Sign in to an issuer from this terminal (browser on this machine, a pasted code, or a device code)
    Login(crate::signin::LoginArgs),
    /// Print a valid access token of a profile, refreshing it first if needed
    Token(crate::signin::TokenArgs),
    /// Show who a profile is signed in as (OpenID Connect userinfo)
    Whoami(crate::signin::WhoamiArgs),
    /// Revoke a profile's sign-in at the issuer and delete its local credentials
    Logout(crate::signin::ProfileArg),
    /// List, show or remove sign-in profiles
    #[command(subcommand)]
    Profiles(crate::signin::ProfilesCommand),
    /// git credential helper: answers `get` with a profile's access token (see README)
    CredentialHelper(crate::credential_helper::HelperArgs),
    // Delegated sessions of the signed-in person.
    /// Lend a job client part of your access (delegated sessions): create, list, revoke
    #[command(subcommand)]
    Sessions(crate::sessions::SessionsCommand),
    // Declarative configuration (apply).
    /// Apply a config file's tenants and clients to a running server, showing the diff first
    Apply(crate::apply::ApplyArgs),
}

#[derive(Debug, Args)]
pub struct AdminArgs {
    #[command(flatten, next_help_heading = "Global options")]
    pub conn: ConnArgs,
    #[command(subcommand)]
    pub command: AdminCommand,
}

/// Global so that they may be given before or after the subcommand.
#[derive(Debug, Args)]
pub struct ConnArgs {
    /// Base URL of the Sesame server
    #[arg(long, global = true, env = "SESAME_URL", default_value = DEFAULT_URL, value_name = "URL")]
    pub url: String,
    /// Admin token; other local users may see it in the process list, so prefer --token-file
    /// [env: SESAME_ADMIN_TOKEN]
    // The environment is read by `token::resolve`, not by clap, so that a value given on the
    // command line beats one from the environment whichever of the two options it is.
    #[arg(long, global = true, value_name = "TOKEN")]
    pub token: Option<String>,
    /// File holding the admin token [env: SESAME_ADMIN_TOKEN_FILE]
    /// [default: ./sesame-data/admin-token if it exists]
    #[arg(long, global = true, value_name = "PATH")]
    pub token_file: Option<PathBuf>,
    /// Print the server's JSON answer instead of a human-readable summary
    #[arg(long, global = true)]
    pub json: bool,
    /// Call as yourself: the access token of this `sesame login` profile (its client must have
    /// urn:sesame:admin among its audiences) instead of an admin token
    #[arg(long, global = true, value_name = "NAME", conflicts_with_all = ["token", "token_file"])]
    pub profile: Option<String>,
}

// Parsed once per run; boxing the SSO options would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Tenants: each has its own issuer, clients and signing keys
    #[command(subcommand)]
    Tenants(TenantsCommand),
    /// OAuth clients of a tenant
    #[command(subcommand)]
    Clients(ClientsCommand),
    /// Signing keys of a tenant
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Local user accounts of a tenant
    #[command(subcommand)]
    Users(UsersCommand),
    /// Outside issuers a tenant trusts, for token exchange
    #[command(subcommand)]
    TrustPolicies(TrustPoliciesCommand),
    /// Sources: what gets workload tokens (sub = its resource id) for outside systems
    #[command(subcommand)]
    Sources(SourcesCommand),
    /// The workload issuer's discovery document and JWKS, as static files
    #[command(subcommand, name = "workload-issuer")]
    WorkloadIssuer(WorkloadIssuerCommand),
    /// Delegated (on-behalf-of) sessions of a tenant
    #[command(subcommand, name = "delegated-sessions")]
    DelegatedSessions(DelegatedSessionsCommand),
    /// Brokered SSO connections of a tenant (upstream OpenID Connect identity providers)
    #[command(subcommand)]
    Sso(SsoCommand),
    /// Teams of a tenant, for authorization (members, managers, IdP-group teams)
    #[command(subcommand)]
    Teams(crate::authz::TeamsCommand),
    /// Authorization: resource types, resources, grants, and checks
    #[command(subcommand)]
    Resources(crate::authz::ResourcesCommand),
    // Admin roles and the audit log (access) ------------------------------------------------
    /// The audit log: admin changes and security events, oldest first (--json: JSON lines)
    Audit(AuditArgs),
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// The tenant whose events to show [default: every tenant's, for operators]
    #[arg(long, env = "SESAME_TENANT")]
    pub tenant: Option<String>,
    /// Only events since then: a duration ago (30m, 12h, 7d) or Unix seconds
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
    /// Only events before then: a duration ago or Unix seconds
    #[arg(long, value_name = "WHEN")]
    pub until: Option<String>,
    /// Only this event type (admin.change, signin.success, signin.failure, token.issued,
    /// token.revoked, sso.linked, user.disabled, session.revoked, token_exchange.refused,
    /// session.created, authz.denied)
    #[arg(long = "type", value_name = "TYPE")]
    pub event_type: Option<String>,
    /// Only this actor (a token name, user id or client id)
    #[arg(long)]
    pub actor: Option<String>,
    /// Only this outcome (success, denied, failure)
    #[arg(long)]
    pub outcome: Option<String>,
    /// How many of the newest events to show [default: 100]
    #[arg(long)]
    pub limit: Option<u32>,
    /// Keep printing new events as they are recorded
    #[arg(long)]
    pub follow: bool,
}

// Parsed once per run: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum TrustPoliciesCommand {
    /// Trust an outside issuer's tokens under conditions, as a Sesame service identity
    Create(TrustPolicyCreate),
    /// List the trust policies of a tenant
    List(TenantOpt),
    /// Show one trust policy
    Show(TrustPolicyRef),
    /// Delete a trust policy
    Delete(TrustPolicyRef),
}

#[derive(Debug, Args)]
pub struct TrustPolicyRef {
    #[command(flatten)]
    pub tenant: TenantOpt,
    /// The policy's name
    #[arg(value_name = "NAME")]
    pub name: String,
}

/// One key source is required: `--discovery-url`, `--jwks-uri` or `--jwks-file`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("key_source").required(true).multiple(false)))]
pub struct TrustPolicyCreate {
    #[command(flatten)]
    pub tenant: TenantOpt,
    /// The policy's name
    #[arg(value_name = "NAME")]
    pub name: String,
    /// The outside issuer, compared exactly with the token's iss
    #[arg(long, value_name = "URL")]
    pub issuer: String,
    /// The issuer's OpenID configuration document (its jwks_uri gives the keys)
    #[arg(long, value_name = "URL", group = "key_source")]
    pub discovery_url: Option<String>,
    /// The issuer's JWKS
    #[arg(long, value_name = "URL", group = "key_source")]
    pub jwks_uri: Option<String>,
    /// A file holding the issuer's JWKS
    #[arg(long, value_name = "PATH", group = "key_source")]
    pub jwks_file: Option<PathBuf>,
    /// Condition: the token's aud names this
    #[arg(long, value_name = "A")]
    pub audience: String,
    /// Condition: sub equals this, or matches it as a glob with `*`
    #[arg(long, value_name = "S")]
    pub subject: Option<String>,
    /// Condition: NAME=VALUE (a dotted NAME reaches into nested claims); repeat a NAME for a
    /// set of allowed values
    #[arg(long = "claim", value_name = "NAME=VALUE")]
    pub claims: Vec<String>,
    /// Condition: iat at most this many seconds ago
    #[arg(long, value_name = "SECS")]
    pub max_age: Option<u64>,
    /// Condition: the token's typ header
    #[arg(long, value_name = "T")]
    pub typ: Option<String>,
    /// The Sesame service identity a matching token becomes (the exchanged token's sub)
    #[arg(long, value_name = "ID")]
    pub identity: String,
    /// A scope the exchanged token may carry; repeat, or give several separated by spaces
    #[arg(long = "scope", value_name = "S")]
    pub scopes: Vec<String>,
    /// An audience the exchanged token may be for; repeat for several
    #[arg(long = "token-audience", value_name = "A")]
    pub audiences: Vec<String>,
    /// Client authentication with this policy: a token may authenticate more than once (a
    /// Kubernetes projected token is reused until it is rotated); needs --max-age
    #[arg(long, requires = "max_age")]
    pub assertion_reuse: bool,
}

#[derive(Debug, Subcommand)]
pub enum SourcesCommand {
    /// Register a source; it authenticates with a client that has the workload-token grant
    Create(SourceCreate),
    /// List the sources of a tenant
    List(TenantOpt),
    /// Show one source
    Show(SourceRef),
    /// Delete a source; its client gets no more workload tokens
    Delete(SourceRef),
}

#[derive(Debug, Args)]
pub struct SourceCreate {
    #[command(flatten)]
    pub tenant: TenantOpt,
    /// A name for people
    #[arg(long)]
    pub name: String,
    /// The client the source authenticates with
    #[arg(long = "client", value_name = "CLIENT_ID")]
    pub client_id: String,
    /// An audience of its tokens (the outside system); repeat for several
    #[arg(long = "audience", value_name = "AUD", required = true)]
    pub audiences: Vec<String>,
    /// A scope its tokens may carry (`scp`); repeat for several
    #[arg(long = "scope", value_name = "SCOPE")]
    pub scopes: Vec<String>,
    /// Token lifetime in seconds [default: 3600]
    #[arg(long, value_name = "SECONDS")]
    pub token_ttl: Option<i64>,
}

#[derive(Debug, Args)]
pub struct SourceRef {
    #[command(flatten)]
    pub tenant: TenantOpt,
    /// The source's id (a UUID)
    #[arg(value_name = "SOURCE")]
    pub source: String,
}

#[derive(Debug, Subcommand)]
pub enum WorkloadIssuerCommand {
    /// Write DIR/.well-known/openid-configuration and DIR/jwks.json for the workload issuer's
    /// URL; with --check, fetch the published copies and warn when they are stale
    Export(WorkloadExport),
    /// Show or change the tenant's workload issuer and longest delegated session
    Settings(WorkloadSettingsArgs),
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("what").required(true).multiple(true).args(["out", "check"])))]
pub struct WorkloadExport {
    #[command(flatten)]
    pub tenant: TenantOpt,
    /// The directory served at the workload issuer's URL
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Fetch the published documents and compare them with what would be exported
    #[arg(long)]
    pub check: bool,
}

#[derive(Debug, Args)]
pub struct WorkloadSettingsArgs {
    #[command(flatten)]
    pub tenant: TenantOpt,
    /// The workload issuer (an https URL); "default" for the sign-in issuer
    #[arg(long, value_name = "URL")]
    pub issuer: Option<String>,
    /// The longest a delegated session may last, in seconds
    #[arg(long, value_name = "SECONDS")]
    pub session_max_ttl: Option<i64>,
}

#[derive(Debug, Subcommand)]
pub enum DelegatedSessionsCommand {
    /// List the live delegated sessions of a tenant, or of one user
    List(DelegatedSessionsList),
    /// Revoke a delegated session (and its child): refresh stops and its tokens turn inactive
    Revoke(DelegatedSessionRef),
}

#[derive(Debug, Args)]
pub struct DelegatedSessionsList {
    #[command(flatten)]
    pub tenant: TenantOpt,
    /// Only this user's (id or username)
    #[arg(long)]
    pub user: Option<String>,
}

#[derive(Debug, Args)]
pub struct DelegatedSessionRef {
    #[command(flatten)]
    pub tenant: TenantOpt,
    #[arg(value_name = "SESSION")]
    pub session: String,
}

#[derive(Debug, Subcommand)]
pub enum TenantsCommand {
    /// Create a tenant (and its signing keys)
    Create(TenantCreate),
    /// List tenants
    List,
    /// Show one tenant
    Show(TenantName),
    /// Change a tenant's display name or logo; only the fields given change
    Update(TenantUpdate),
    /// Disable a tenant
    Disable(TenantName),
    /// Enable a disabled tenant
    Enable(TenantName),
}

#[derive(Debug, Args)]
pub struct TenantName {
    /// Tenant name (1-63 of a-z, 0-9, -)
    pub name: String,
}

#[derive(Debug, Args)]
pub struct TenantCreate {
    /// Tenant name (1-63 of a-z, 0-9, -); the last segment of its issuer URL
    pub name: String,
    /// Human-readable name [default: the tenant name]
    #[arg(long, value_name = "S")]
    pub display_name: Option<String>,
    /// Algorithm of access tokens for clients that do not choose their own [default: RS256]
    #[arg(long, value_name = "ALG", ignore_case = true)]
    pub signing_alg: Option<SigningAlg>,
    /// Access-token lifetime in seconds [default: 3600]
    #[arg(long, value_name = "SECS")]
    pub access_token_ttl: Option<u64>,
    /// http(s) URL of a logo shown on the sign-in pages
    #[arg(long, value_name = "URL")]
    pub logo_url: Option<String>,
    /// Browser session lifetime in seconds [default: 86400]
    #[arg(long, value_name = "SECS")]
    pub session_ttl: Option<u64>,
    /// Refresh-token lifetime in seconds, started again at each use [default: 604800]
    #[arg(long, value_name = "SECS")]
    pub refresh_token_ttl: Option<u64>,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("fields").required(true).multiple(true)))]
pub struct TenantUpdate {
    /// Tenant name
    pub name: String,
    /// New human-readable name
    #[arg(
        long,
        value_name = "S",
        group = "fields",
        conflicts_with = "reset_display_name"
    )]
    pub display_name: Option<String>,
    /// Go back to the tenant name as the display name
    #[arg(long, group = "fields")]
    pub reset_display_name: bool,
    /// http(s) URL of a logo shown on the sign-in pages
    #[arg(long, value_name = "URL", group = "fields", conflicts_with = "clear_logo_url")]
    pub logo_url: Option<String>,
    /// Remove the logo
    #[arg(long, group = "fields")]
    pub clear_logo_url: bool,
    /// Browser session lifetime in seconds
    #[arg(long, value_name = "SECS", group = "fields")]
    pub session_ttl: Option<u64>,
    /// Refresh-token lifetime in seconds, started again at each use
    #[arg(long, value_name = "SECS", group = "fields")]
    pub refresh_token_ttl: Option<u64>,
}

#[derive(Debug, Subcommand)]
pub enum ClientsCommand {
    /// Create a client; prints the secret of a confidential client once
    Create(ClientCreate),
    /// List the clients of a tenant
    List(TenantOpt),
    /// Show one client
    Show(ClientRef),
    /// Change a client's settings; only the options given change, and a repeatable option
    /// replaces the whole list
    Update(ClientUpdate),
    /// Replace a confidential client's secret; prints the new secret once
    RotateSecret(ClientRef),
    /// Disable a client
    Disable(ClientRef),
    /// Enable a disabled client
    Enable(ClientRef),
    /// Delete a client
    Delete(ClientRef),
}

#[derive(Debug, Args)]
pub struct TenantOpt {
    /// Tenant
    #[arg(long, env = "SESAME_TENANT", default_value = "default", value_name = "T")]
    pub tenant: String,
}

#[derive(Debug, Args)]
pub struct ClientRef {
    #[command(flatten)]
    pub tenant: TenantOpt,
    /// client_id
    #[arg(value_name = "ID")]
    pub client_id: String,
}

#[derive(Debug, Args)]
pub struct ClientCreate {
    #[command(flatten)]
    pub tenant: TenantOpt,
    /// client_id [default: chosen at random by the server]
    #[arg(long, value_name = "ID")]
    pub client_id: Option<String>,
    /// Human-readable name
    #[arg(long, value_name = "S")]
    pub name: Option<String>,
    /// Client type [default: confidential]
    #[arg(long = "type", value_name = "TYPE")]
    pub client_type: Option<ClientType>,
    /// Allowed grant type (authorization_code, implicit, refresh_token, client_credentials,
    /// device_code for urn:ietf:params:oauth:grant-type:device_code); repeat for several [default: authorization_code and refresh_token for a client with
    /// redirect URIs, else client_credentials for confidential clients and none for public ones]
    #[arg(long = "grant-type", visible_alias = "grant", value_name = "G")]
    pub grants: Vec<String>,
    /// Allowed redirect URI; repeat for several
    #[arg(long = "redirect-uri", value_name = "U")]
    pub redirect_uris: Vec<String>,
    /// Where RP-initiated logout may return to; repeat for several
    #[arg(long = "post-logout-redirect-uri", value_name = "U")]
    pub post_logout_redirect_uris: Vec<String>,
    /// Do not require PKCE (confidential clients only)
    #[arg(long)]
    pub no_pkce: bool,
    /// Skip the consent page: for the tenant's own applications
    #[arg(long)]
    pub first_party: bool,
    /// Issue a refresh token with every authorization code, not only for offline_access
    #[arg(long)]
    pub refresh_without_offline_access: bool,
    /// Allow this client to introspect tokens issued to other clients (a resource server)
    #[arg(long)]
    pub introspect_any: bool,
    /// Where logout tokens go when a session this client signed in with ends (OpenID Connect
    /// Back-Channel Logout)
    #[arg(long, value_name = "URL")]
    pub backchannel_logout_uri: Option<String>,
    /// Allowed scope; repeat, or give several separated by spaces
    #[arg(long = "scope", value_name = "S")]
    pub scopes: Vec<String>,
    /// Allowed audience; repeat for several
    #[arg(long = "audience", value_name = "A")]
    pub audiences: Vec<String>,
    /// Algorithm of this client's access tokens [default: the tenant's]
    #[arg(long, value_name = "ALG", ignore_case = true)]
    pub signing_alg: Option<SigningAlg>,
    /// Access-token lifetime in seconds [default: the tenant's]
    #[arg(long, value_name = "SECS")]
    pub access_token_ttl: Option<u64>,
    /// private_key_jwt: a file holding the client's JWKS (the client gets no secret)
    #[arg(long, value_name = "PATH", conflicts_with = "jwks_uri")]
    pub jwks_file: Option<PathBuf>,
    /// private_key_jwt: the URL of the client's JWKS (the client gets no secret)
    #[arg(long, value_name = "URL")]
    pub jwks_uri: Option<String>,
    /// private_key_jwt with outside tokens (a Kubernetes service-account or CI token) that this
    /// trust policy of the tenant accepts; the client names itself with client_id and gets no
    /// secret
    #[arg(long, value_name = "NAME", conflicts_with_all = ["jwks_file", "jwks_uri"])]
    pub trust_policy: Option<String>,
    /// Allow token exchange of a person's token without an actor token (impersonation)
    #[arg(long)]
    pub token_exchange_impersonation: bool,
}

/// Every option is optional, but at least one must be given. A repeatable option replaces the
/// whole list; `--clear-…` empties it.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("fields").required(true).multiple(true)))]
pub struct ClientUpdate {
    #[command(flatten)]
    pub client: ClientRef,
    /// New human-readable name
    #[arg(long, value_name = "S", group = "fields")]
    pub name: Option<String>,
    /// Allowed grant type; repeat for several
    #[arg(
        long = "grant-type",
        visible_alias = "grant",
        value_name = "G",
        group = "fields"
    )]
    pub grants: Vec<String>,
    /// Allowed redirect URI; repeat for several
    #[arg(
        long = "redirect-uri",
        value_name = "U",
        group = "fields",
        conflicts_with = "clear_redirect_uris"
    )]
    pub redirect_uris: Vec<String>,
    /// Remove every redirect URI
    #[arg(long, group = "fields")]
    pub clear_redirect_uris: bool,
    /// Where RP-initiated logout may return to; repeat for several
    #[arg(
        long = "post-logout-redirect-uri",
        value_name = "U",
        group = "fields",
        conflicts_with = "clear_post_logout_redirect_uris"
    )]
    pub post_logout_redirect_uris: Vec<String>,
    /// Remove every post-logout redirect URI
    #[arg(long, group = "fields")]
    pub clear_post_logout_redirect_uris: bool,
    /// Require PKCE
    #[arg(long, group = "fields", conflicts_with = "no_pkce")]
    pub pkce: bool,
    /// Do not require PKCE (confidential clients only)
    #[arg(long, group = "fields")]
    pub no_pkce: bool,
    /// Skip the consent page
    #[arg(long, group = "fields", conflicts_with = "no_first_party")]
    pub first_party: bool,
    /// Show the consent page
    #[arg(long, group = "fields")]
    pub no_first_party: bool,
    /// Issue a refresh token with every authorization code
    #[arg(long, group = "fields", conflicts_with = "no_refresh_without_offline_access")]
    pub refresh_without_offline_access: bool,
    /// Issue refresh tokens only for offline_access
    #[arg(long, group = "fields")]
    pub no_refresh_without_offline_access: bool,
    /// Allow introspecting tokens issued to other clients (a resource server)
    #[arg(long, group = "fields", conflicts_with = "no_introspect_any")]
    pub introspect_any: bool,
    /// Allow introspecting only tokens issued to this client or naming it as audience
    #[arg(long, group = "fields")]
    pub no_introspect_any: bool,
    /// Where logout tokens go when a session this client signed in with ends
    #[arg(
        long,
        value_name = "URL",
        group = "fields",
        conflicts_with = "clear_backchannel_logout_uri"
    )]
    pub backchannel_logout_uri: Option<String>,
    /// Stop sending logout tokens
    #[arg(long, group = "fields")]
    pub clear_backchannel_logout_uri: bool,
    /// Allowed scope; repeat, or give several separated by spaces
    #[arg(
        long = "scope",
        value_name = "S",
        group = "fields",
        conflicts_with = "clear_scopes"
    )]
    pub scopes: Vec<String>,
    /// Remove every allowed scope
    #[arg(long, group = "fields")]
    pub clear_scopes: bool,
    /// Allowed audience; repeat for several
    #[arg(
        long = "audience",
        value_name = "A",
        group = "fields",
        conflicts_with = "clear_audiences"
    )]
    pub audiences: Vec<String>,
    /// Remove every allowed audience
    #[arg(long, group = "fields")]
    pub clear_audiences: bool,
    /// Algorithm of this client's access tokens
    #[arg(
        long,
        value_name = "ALG",
        ignore_case = true,
        group = "fields",
        conflicts_with = "tenant_signing_alg"
    )]
    pub signing_alg: Option<SigningAlg>,
    /// Sign with the tenant's algorithm again
    #[arg(long, group = "fields")]
    pub tenant_signing_alg: bool,
    /// Access-token lifetime in seconds
    #[arg(
        long,
        value_name = "SECS",
        group = "fields",
        conflicts_with = "tenant_access_token_ttl"
    )]
    pub access_token_ttl: Option<u64>,
    /// Use the tenant's access-token lifetime again
    #[arg(long, group = "fields")]
    pub tenant_access_token_ttl: bool,
    /// Authenticate with outside tokens that this trust policy accepts (private_key_jwt)
    #[arg(
        long,
        value_name = "NAME",
        group = "fields",
        conflicts_with = "clear_trust_policy"
    )]
    pub trust_policy: Option<String>,
    /// Stop naming a trust policy
    #[arg(long, group = "fields")]
    pub clear_trust_policy: bool,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// List a tenant's signing keys (next, active and retired)
    List(TenantOpt),
    /// Rotate signing keys: the published next key starts signing
    Rotate(KeysRotate),
}

#[derive(Debug, Args)]
pub struct KeysRotate {
    #[command(flatten)]
    pub tenant: TenantOpt,
    /// Rotate only this algorithm [default: all three]
    #[arg(long, value_name = "ALG", ignore_case = true)]
    pub alg: Option<SigningAlg>,
    /// Rotate even if the next key was published too recently for relying parties to have seen it
    #[arg(long)]
    pub force: bool,
}

/// Passwords are never command-line arguments, which other local users see in the process list
/// and which stay in shell history: they come from stdin or from a prompt without echo.
#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Create a user; prompts for a password on a terminal, else needs --password-stdin or
    /// --no-password
    Create(UserCreate),
    /// List the users of a tenant
    List(TenantOpt),
    /// Show one user
    Show(UserRef),
    /// Change a user's email, name or picture; only the fields given change
    Update(UserUpdate),
    /// Set a user's password (ending their browser sessions): read from stdin with
    /// --password-stdin, else prompted for
    SetPassword(UserPassword),
    /// Disable a user; ends their browser sessions and revokes their tokens at once
    Disable(UserRef),
    /// Enable a disabled user
    Enable(UserRef),
    /// List a user's browser sessions
    Sessions(UserRef),
    /// End one browser session of a user
    RevokeSession(UserSession),
    /// End every browser session of a user
    RevokeSessions(UserRef),
    /// List the clients a user has consented to
    Consents(UserRef),
    /// Withdraw a user's consent to a client and revoke the user's tokens of that client
    RevokeConsent(UserConsent),
}

#[derive(Debug, Args)]
pub struct UserSession {
    #[command(flatten)]
    pub user: UserRef,
    /// Session id (from `users sessions`)
    #[arg(value_name = "ID")]
    pub session: String,
}

#[derive(Debug, Args)]
pub struct UserConsent {
    #[command(flatten)]
    pub user: UserRef,
    /// client_id
    #[arg(value_name = "CLIENT")]
    pub client_id: String,
}

#[derive(Debug, Args)]
pub struct UserRef {
    #[command(flatten)]
    pub tenant: TenantOpt,
    /// The user's id or username
    #[arg(value_name = "USER")]
    pub user: String,
}

#[derive(Debug, Args)]
pub struct UserCreate {
    #[command(flatten)]
    pub tenant: TenantOpt,
    /// Username (1-64 of a-z, 0-9, . _ @ + -; stored lower-case)
    pub username: String,
    /// Email address
    #[arg(long, value_name = "E")]
    pub email: Option<String>,
    /// Mark the email address as verified
    #[arg(long)]
    pub email_verified: bool,
    /// Full name
    #[arg(long, value_name = "N")]
    pub name: Option<String>,
    /// URL of a profile picture
    #[arg(long, value_name = "URL")]
    pub picture: Option<String>,
    /// Read the password from the first line of stdin [default: prompt on a terminal]
    #[arg(long)]
    pub password_stdin: bool,
    /// Create the user without a password (to be set later with `set-password`, or for a
    /// person who signs in through SSO only)
    #[arg(long, conflicts_with = "password_stdin")]
    pub no_password: bool,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("fields").required(true).multiple(true)))]
pub struct UserUpdate {
    #[command(flatten)]
    pub user: UserRef,
    /// New email address
    #[arg(long, value_name = "E", group = "fields", conflicts_with = "clear_email")]
    pub email: Option<String>,
    /// Remove the email address
    #[arg(long, group = "fields")]
    pub clear_email: bool,
    /// Whether the email address is verified
    #[arg(long, value_name = "BOOL", group = "fields", action = ArgAction::Set)]
    pub email_verified: Option<bool>,
    /// New full name
    #[arg(long, value_name = "N", group = "fields", conflicts_with = "clear_name")]
    pub name: Option<String>,
    /// Remove the full name
    #[arg(long, group = "fields")]
    pub clear_name: bool,
    /// New profile picture URL
    #[arg(long, value_name = "URL", group = "fields", conflicts_with = "clear_picture")]
    pub picture: Option<String>,
    /// Remove the profile picture
    #[arg(long, group = "fields")]
    pub clear_picture: bool,
}

#[derive(Debug, Args)]
pub struct UserPassword {
    #[command(flatten)]
    pub user: UserRef,
    /// Read the password from the first line of stdin [default: prompt twice on a terminal]
    #[arg(long)]
    pub password_stdin: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SigningAlg {
    #[value(name = "RS256")]
    Rs256,
    #[value(name = "ES256")]
    Es256,
    #[value(name = "EdDSA")]
    EdDsa,
}

impl SigningAlg {
    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlg::Rs256 => "RS256",
            SigningAlg::Es256 => "ES256",
            SigningAlg::EdDsa => "EdDSA",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ClientType {
    Confidential,
    Public,
}

impl ClientType {
    pub fn as_str(self) -> &'static str {
        match self {
            ClientType::Confidential => "confidential",
            ClientType::Public => "public",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("sesame").chain(args.iter().copied()))
    }

    #[test]
    fn command_tree_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_options_go_before_or_after_the_subcommand() {
        for args in [
            &["admin", "--json", "--url", "http://h:1", "tenants", "list"][..],
            &["admin", "tenants", "list", "--json", "--url", "http://h:1"][..],
        ] {
            let Command::Admin(a) = parse(args).expect("parses").command else {
                panic!("an admin command")
            };
            assert!(a.conn.json);
            assert_eq!(a.conn.url, "http://h:1");
            assert!(matches!(a.command, AdminCommand::Tenants(TenantsCommand::List)));
        }
    }

    #[test]
    fn client_create_collects_repeated_options() {
        let Command::Admin(a) = parse(&[
            "admin",
            "clients",
            "create",
            "--tenant",
            "acme",
            "--type",
            "public",
            "--grant",
            "a",
            "--grant",
            "b",
            "--redirect-uri",
            "https://x/cb",
            "--signing-alg",
            "eddsa",
        ])
        .expect("parses")
        .command
        else {
            panic!("an admin command")
        };
        let AdminCommand::Clients(ClientsCommand::Create(c)) = a.command else {
            panic!("wrong command: {:?}", a.command);
        };
        assert_eq!(c.tenant.tenant, "acme");
        assert_eq!(c.client_type, Some(ClientType::Public));
        assert_eq!(c.grants, ["a", "b"]);
        assert_eq!(c.redirect_uris, ["https://x/cb"]);
        assert_eq!(c.signing_alg, Some(SigningAlg::EdDsa));
    }

    fn clients(args: &[&str]) -> Result<ClientsCommand, clap::Error> {
        let cli = parse(&[&["admin", "clients"][..], args].concat())?;
        let Command::Admin(a) = cli.command else {
            panic!("an admin command")
        };
        match a.command {
            AdminCommand::Clients(c) => Ok(c),
            other => panic!("wrong command: {other:?}"),
        }
    }

    #[test]
    fn updates_need_a_field_and_cannot_set_and_clear_one() {
        let err = clients(&["update", "web"]).expect_err("no field");
        assert_eq!(err.kind(), clap::error::ErrorKind::MissingRequiredArgument);
        for args in [
            &["--pkce", "--no-pkce"][..],
            &["--first-party", "--no-first-party"][..],
            &["--redirect-uri", "https://a/cb", "--clear-redirect-uris"][..],
            &["--scope", "a", "--clear-scopes"][..],
            &["--signing-alg", "ES256", "--tenant-signing-alg"][..],
            &["--access-token-ttl", "60", "--tenant-access-token-ttl"][..],
        ] {
            let err = clients(&[&["update", "web"][..], args].concat()).expect_err("conflict");
            assert_eq!(err.kind(), clap::error::ErrorKind::ArgumentConflict, "{args:?}");
        }
        assert!(clients(&["update", "web", "--clear-scopes"]).is_ok());
        let err = parse(&["admin", "tenants", "update", "acme"]).expect_err("no field");
        assert_eq!(err.kind(), clap::error::ErrorKind::MissingRequiredArgument);
        assert!(parse(&[
            "admin",
            "tenants",
            "update",
            "acme",
            "--logo-url",
            "u",
            "--clear-logo-url"
        ])
        .is_err());
    }

    #[test]
    fn session_and_consent_commands_need_their_ids() {
        assert!(users(&["sessions"]).is_err());
        assert!(users(&["revoke-session", "alice"]).is_err());
        assert!(users(&["revoke-consent", "alice"]).is_err());
        let UsersCommand::RevokeSession(s) = users(&["revoke-session", "alice", "s1"]).expect("parses")
        else {
            panic!("not revoke-session")
        };
        assert_eq!((s.user.user.as_str(), s.session.as_str()), ("alice", "s1"));
        let UsersCommand::RevokeConsent(c) =
            users(&["revoke-consent", "--tenant", "acme", "alice", "web"]).expect("parses")
        else {
            panic!("not revoke-consent")
        };
        assert_eq!(
            (c.user.tenant.tenant.as_str(), c.client_id.as_str()),
            ("acme", "web")
        );
    }

    #[test]
    fn unknown_algorithms_and_types_are_usage_errors() {
        assert!(parse(&["admin", "tenants", "create", "x", "--signing-alg", "HS256"]).is_err());
        assert!(parse(&["admin", "clients", "create", "--type", "secret"]).is_err());
        assert!(parse(&["admin", "tenants", "create", "x", "--access-token-ttl", "-1"]).is_err());
    }

    #[test]
    fn positional_ids_are_required() {
        assert!(parse(&["admin", "tenants", "show"]).is_err());
        assert!(parse(&["admin", "clients", "delete", "--tenant", "t"]).is_err());
        assert!(parse(&["admin", "users", "show", "--tenant", "t"]).is_err());
        assert!(parse(&["admin", "users", "create", "--email", "a@b.c"]).is_err());
        assert!(parse(&["admin", "users", "set-password"]).is_err());
    }

    fn users(args: &[&str]) -> Result<UsersCommand, clap::Error> {
        let cli = parse(&[&["admin", "users"][..], args].concat())?;
        let Command::Admin(a) = cli.command else {
            panic!("an admin command")
        };
        match a.command {
            AdminCommand::Users(u) => Ok(u),
            other => panic!("wrong command: {other:?}"),
        }
    }

    #[test]
    fn user_create_options() {
        let UsersCommand::Create(c) = users(&[
            "create",
            "--tenant",
            "acme",
            "alice",
            "--email",
            "a@example.com",
            "--email-verified",
            "--name",
            "Alice",
            "--picture",
            "https://p/a.png",
            "--password-stdin",
        ])
        .expect("parses") else {
            panic!("not create")
        };
        assert_eq!((c.tenant.tenant.as_str(), c.username.as_str()), ("acme", "alice"));
        assert_eq!(c.email.as_deref(), Some("a@example.com"));
        assert!(c.email_verified && c.password_stdin);
        assert_eq!(
            (c.name.as_deref(), c.picture.as_deref()),
            (Some("Alice"), Some("https://p/a.png"))
        );

        let UsersCommand::Create(c) = users(&["create", "bob"]).expect("parses") else {
            panic!("not create")
        };
        assert_eq!(c.tenant.tenant, "default");
        assert!(!c.email_verified && !c.password_stdin);
        // On create, --email-verified is a flag and takes no value.
        assert!(users(&["create", "bob", "--email-verified", "true"]).is_err());
    }

    #[test]
    fn passwords_are_never_arguments() {
        for args in [
            &["create", "bob", "--password", "hunter2hunter2"][..],
            &["set-password", "bob", "--password", "hunter2hunter2"][..],
            &["set-password", "bob", "hunter2hunter2"][..],
            &["create", "bob", "hunter2hunter2"][..],
        ] {
            assert!(users(args).is_err(), "{args:?}");
        }
        let UsersCommand::SetPassword(p) =
            users(&["set-password", "bob", "--password-stdin"]).expect("parses")
        else {
            panic!("not set-password")
        };
        assert!(p.password_stdin);
        assert_eq!(p.user.user, "bob");
    }

    #[test]
    fn user_update_needs_a_field() {
        let err = users(&["update", "alice"]).expect_err("no field");
        assert_eq!(err.kind(), clap::error::ErrorKind::MissingRequiredArgument);
        // --tenant is not a field to change.
        assert!(users(&["update", "alice", "--tenant", "acme"]).is_err());
        for field in [
            &["--email", "a@b.c"][..],
            &["--clear-email"][..],
            &["--email-verified", "false"][..],
            &["--name", "A"][..],
            &["--clear-name"][..],
            &["--picture", "https://p/a.png"][..],
            &["--clear-picture"][..],
        ] {
            assert!(
                users(&[&["update", "alice"][..], field].concat()).is_ok(),
                "{field:?}"
            );
        }
    }

    #[test]
    fn user_update_cannot_set_and_clear_one_field() {
        for args in [
            &["--email", "a@b.c", "--clear-email"][..],
            &["--clear-name", "--name", "A"][..],
            &["--picture", "https://p/a.png", "--clear-picture"][..],
        ] {
            let err = users(&[&["update", "alice"][..], args].concat()).expect_err("conflict");
            assert_eq!(err.kind(), clap::error::ErrorKind::ArgumentConflict, "{args:?}");
        }
        // Different fields combine.
        let UsersCommand::Update(u) = users(&[
            "update",
            "alice",
            "--clear-email",
            "--name",
            "A",
            "--email-verified",
            "true",
        ])
        .expect("parses") else {
            panic!("not update")
        };
        assert!(u.clear_email && !u.clear_name && !u.clear_picture);
        assert_eq!(
            (u.email, u.name.as_deref(), u.email_verified),
            (None, Some("A"), Some(true))
        );
    }

    #[test]
    fn user_update_email_verified_is_true_or_false() {
        assert!(users(&["update", "alice", "--email-verified"]).is_err());
        assert!(users(&["update", "alice", "--email-verified", "yes"]).is_err());
    }
}

#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum SsoCommand {
    /// Create a connection; its secret is sealed and never shown again
    Create(SsoCreate),
    /// List the connections of a tenant
    List(TenantOpt),
    /// Show one connection (never its secret)
    Show(SsoRef),
    /// Change a connection; only the options given change, a repeatable option replaces the list
    Update(SsoCreate),
    /// Delete a connection with its links to users (the users stay)
    Delete(SsoRef),
}

#[derive(Debug, Args)]
pub struct SsoRef {
    #[command(flatten)]
    pub tenant: TenantOpt,
    /// Connection name (a URL segment: lower-case letters, digits, -)
    #[arg(value_name = "NAME")]
    pub id: String,
}

#[derive(Debug, Args)]
pub struct SsoCreate {
    #[command(flatten)]
    pub sso: SsoRef,
    /// The IdP's issuer (compared exactly with `iss`)
    #[arg(long, value_name = "URL")]
    pub issuer: Option<String>,
    /// Sesame's client_id at the IdP
    #[arg(long, value_name = "ID")]
    pub client_id: Option<String>,
    /// Sesame's client secret at the IdP (better from the environment than the command line)
    #[arg(
        long,
        env = "SESAME_SSO_CLIENT_SECRET",
        hide_env_values = true,
        value_name = "S"
    )]
    pub client_secret: Option<String>,
    /// client_secret_basic, client_secret_post or private_key_jwt
    #[arg(long, value_name = "METHOD")]
    pub client_auth: Option<String>,
    #[arg(long, value_name = "S")]
    pub display_name: Option<String>,
    #[arg(long, value_name = "S")]
    pub button_text: Option<String>,
    #[arg(long, value_name = "URL")]
    pub button_image_url: Option<String>,
    /// Email domain routed straight to this connection by login_hint (repeatable)
    #[arg(long = "email-domain", value_name = "DOMAIN")]
    pub email_domains: Vec<String>,
    /// IdP group that makes a person tenant admin (repeatable)
    #[arg(long = "admin-group", value_name = "GROUP")]
    pub admin_groups: Vec<String>,
    /// Scope to ask the IdP for (repeatable) [default: openid email profile]
    #[arg(long = "scope", value_name = "SCOPE")]
    pub scopes: Vec<String>,
    #[arg(long, value_name = "CLAIM")]
    pub email_claim: Option<String>,
    #[arg(long, value_name = "CLAIM")]
    pub unique_id_claim: Option<String>,
    #[arg(long, value_name = "CLAIM")]
    pub display_name_claim: Option<String>,
    #[arg(long, value_name = "CLAIM")]
    pub groups_claim: Option<String>,
    /// Match existing users by email even when the IdP does not say it is verified
    #[arg(long, value_name = "BOOL")]
    pub trusted_email: Option<bool>,
    /// Endpoints from the issuer's discovery document [default: true]
    #[arg(long, value_name = "BOOL")]
    pub discovery: Option<bool>,
    #[arg(long, value_name = "URL")]
    pub authorization_endpoint: Option<String>,
    #[arg(long, value_name = "URL")]
    pub token_endpoint: Option<String>,
    #[arg(long, value_name = "URL")]
    pub userinfo_endpoint: Option<String>,
    #[arg(long, value_name = "URL")]
    pub jwks_uri: Option<String>,
    /// Call userinfo at every sign-in
    #[arg(long, value_name = "BOOL")]
    pub userinfo: Option<bool>,
    #[arg(long, value_name = "BOOL")]
    pub enabled: Option<bool>,
    // --- SAML connections ---
    /// oidc (default) or saml
    #[arg(long, value_name = "KIND")]
    pub kind: Option<String>,
    /// SAML: the IdP's metadata URL (fetched by sesamed, again at each update naming it)
    #[arg(long, value_name = "URL", conflicts_with = "idp_metadata_file")]
    pub idp_metadata_url: Option<String>,
    /// SAML: the IdP's metadata from a file (sent inline)
    #[arg(long, value_name = "PATH")]
    pub idp_metadata_file: Option<std::path::PathBuf>,
    /// SAML without metadata: the IdP's entity id
    #[arg(long, value_name = "ID")]
    pub idp_entity_id: Option<String>,
    /// SAML without metadata: the IdP's single sign-on URL
    #[arg(long, value_name = "URL")]
    pub sso_url: Option<String>,
    /// SAML: how the AuthnRequest is sent, redirect (default) or post
    #[arg(long, value_name = "BINDING")]
    pub sso_binding: Option<String>,
    /// SAML without metadata: a PEM file of an IdP signing certificate (repeatable, for rollover)
    #[arg(long = "idp-certificate", value_name = "PATH")]
    pub idp_certificates: Vec<std::path::PathBuf>,
}
