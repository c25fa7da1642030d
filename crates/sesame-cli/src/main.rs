//! `sesame`: `sesame admin ...`, a thin client over the admin API (docs/admin-api.md), and
//! terminal sign-in (`login`, `token`, `whoami`, `logout`, `profiles`) on `sesame-client`.

mod api;
mod audit;
mod cli;
mod credential_helper;
mod http;
mod output;
mod password;
mod signin;
mod token;
mod workload;
// Authorization's admin commands (teams, resources).
mod authz;
// Delegated sessions of the signed-in person.
mod sessions;
// `sesame apply -f FILE`, on sesame-declare.
mod apply;

use clap::Parser;
use cli::{AdminArgs, Cli, Command};
use std::io::Write;
use std::process::ExitCode;

/// A failure with the message shown after `error: `; every one exits with status 1.
#[derive(Debug)]
pub struct Failure(pub String);

fn main() -> ExitCode {
    // `export SESAME_TENANT=$UNSET` leaves an empty variable, which clap would take as an
    // empty value; treat it as unset, as the token variables are. Still single-threaded here.
    for var in ["SESAME_URL", "SESAME_TENANT", "SESAME_CREDENTIAL_STORE"] {
        if std::env::var_os(var).is_some_and(|v| v.is_empty()) {
            std::env::remove_var(var);
        }
    }
    // Usage errors and --help exit here, with clap's own status (2 or 0).
    let cli = Cli::parse();
    // `sesame_client::Cache::from_env` reads the choice from the environment, so an option
    // given on the command line reaches every sign-in command the same way.
    if let Some(store) = cli.credential_store {
        std::env::set_var("SESAME_CREDENTIAL_STORE", store.as_str());
    }
    let result = match cli.command {
        Command::Admin(args) => admin(args),
        Command::Login(args) => signin::login(args),
        Command::Token(args) => signin::token(args),
        Command::Whoami(args) => signin::whoami(args),
        Command::Logout(args) => signin::logout(args),
        Command::Profiles(command) => signin::profiles(command),
        Command::CredentialHelper(args) => credential_helper::run(args),
        Command::Sessions(command) => sessions::run(command),
        Command::Apply(args) => apply::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(message)) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The credential for the admin API: a `sesame login` profile's access token (refreshed as
/// needed) with `--profile`, else an admin token.
fn admin_credential(conn: &mut cli::ConnArgs) -> Result<String, Failure> {
    if let Some(profile) = &conn.profile {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Failure(format!("cannot start the async runtime: {e}")))?;
        return runtime.block_on(async {
            let cache = sesame_client::Cache::from_env().map_err(|e| Failure(e.to_string()))?;
            let session = sesame_client::Session::new(cache, profile).map_err(|e| Failure(e.to_string()))?;
            session.access_token().await.map_err(|e| Failure(e.to_string()))
        });
    }
    token::resolve(token::Sources::from_env(
        conn.token.take(),
        conn.token_file.take(),
    ))
}

fn admin(mut args: AdminArgs) -> Result<(), Failure> {
    if let cli::AdminCommand::Audit(audit) = &args.command {
        let base = http::base_url(&args.conn.url)?;
        let token = admin_credential(&mut args.conn)?;
        return audit::run(base, &token, audit, args.conn.json);
    }
    // Everything that needs no server is checked before the token is looked for, so a typo is
    // reported as such even without a token.
    let mut request = api::plan(&args.command)?;
    let password = request.password.as_ref().map(password::source).transpose()?;
    let base = http::base_url(&args.conn.url)?;
    let token = admin_credential(&mut args.conn)?;
    let admin = http::Admin::new(base, &args.conn.url, token)?;
    // Last, so that nobody types a password for a command that fails anyway.
    if let Some(password) = password {
        if let Some(password) = password.read()? {
            request = request.with_password(password);
        }
    }

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure(format!("cannot start the async runtime: {e}")))?;
    let answer = runtime.block_on(admin.send(&request))?;
    // The files are written (and the published copy checked) whatever is printed.
    if let cli::AdminCommand::WorkloadIssuer(cli::WorkloadIssuerCommand::Export(export)) = &args.command {
        let said = runtime.block_on(workload::export(answer.as_ref(), export))?;
        return print(&if args.conn.json {
            output::json(answer.as_ref())
        } else {
            said
        });
    }

    if args.conn.json {
        return print(&output::json(answer.as_ref()));
    }
    match output::human(&request.shape, answer.as_ref()) {
        Ok(text) => print(&text),
        // The request did happen, and its answer may hold a secret shown only this once.
        Err(Failure(message)) => {
            print(&output::json(answer.as_ref()))?;
            Err(Failure(format!("{message} (printed above as it came)")))
        }
    }
}

/// `print!` panics when stdout is closed (`sesame admin tenants list | head -0`).
fn print(text: &str) -> Result<(), Failure> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()) {
        Ok(()) => Ok(()),
        // The reader went away on purpose; nothing is left to tell it.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Failure(format!("cannot write the answer: {e}"))),
    }
}
