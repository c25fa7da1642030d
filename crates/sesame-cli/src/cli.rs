//! The command line, as clap types. Only parsing lives here; `api` turns a parsed command into a
//! request and `output` turns the answer into text.

use clap::{Args, Parser, Subcommand, ValueEnum};
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
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Manage tenants, clients and signing keys through the admin API
    Admin(AdminArgs),
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
}

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
}

#[derive(Debug, Subcommand)]
pub enum TenantsCommand {
    /// Create a tenant (and its signing keys)
    Create(TenantCreate),
    /// List tenants
    List,
    /// Show one tenant
    Show(TenantName),
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
}

#[derive(Debug, Subcommand)]
pub enum ClientsCommand {
    /// Create a client; prints the secret of a confidential client once
    Create(ClientCreate),
    /// List the clients of a tenant
    List(TenantOpt),
    /// Show one client
    Show(ClientRef),
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
    /// Allowed grant type; repeat for several
    /// [default: client_credentials for confidential clients, none for public ones]
    #[arg(long = "grant", value_name = "G")]
    pub grants: Vec<String>,
    /// Allowed redirect URI; repeat for several
    #[arg(long = "redirect-uri", value_name = "U")]
    pub redirect_uris: Vec<String>,
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
            let Command::Admin(a) = parse(args).expect("parses").command;
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
        .command;
        let AdminCommand::Clients(ClientsCommand::Create(c)) = a.command else {
            panic!("wrong command: {:?}", a.command);
        };
        assert_eq!(c.tenant.tenant, "acme");
        assert_eq!(c.client_type, Some(ClientType::Public));
        assert_eq!(c.grants, ["a", "b"]);
        assert_eq!(c.redirect_uris, ["https://x/cb"]);
        assert_eq!(c.signing_alg, Some(SigningAlg::EdDsa));
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
    }
}
