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
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Manage tenants, clients, signing keys and users through the admin API
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
    /// Local user accounts of a tenant
    #[command(subcommand)]
    Users(UsersCommand),
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

/// Passwords are never command-line arguments, which other local users see in the process list
/// and which stay in shell history: they come from stdin or from a prompt without echo.
#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Create a user; on a terminal, prompts for a password (leave it empty for none)
    Create(UserCreate),
    /// List the users of a tenant
    List(TenantOpt),
    /// Show one user
    Show(UserRef),
    /// Change a user's email, name or picture; only the fields given change
    Update(UserUpdate),
    /// Set a user's password: read from stdin with --password-stdin, else prompted for
    SetPassword(UserPassword),
    /// Disable a user
    Disable(UserRef),
    /// Enable a disabled user
    Enable(UserRef),
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
    /// Read the password from the first line of stdin
    /// [default: prompt on a terminal; no password otherwise]
    #[arg(long)]
    pub password_stdin: bool,
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
        assert!(parse(&["admin", "users", "show", "--tenant", "t"]).is_err());
        assert!(parse(&["admin", "users", "create", "--email", "a@b.c"]).is_err());
        assert!(parse(&["admin", "users", "set-password"]).is_err());
    }

    fn users(args: &[&str]) -> Result<UsersCommand, clap::Error> {
        let cli = parse(&[&["admin", "users"][..], args].concat())?;
        let Command::Admin(a) = cli.command;
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
