//! `sesame sessions create|list|revoke`: the person signed in with a profile (`sesame login`)
//! lends a subset of their access to a job client, sees what they lent, and takes it back,
//! through `sesame_client::Session` (the profile's cached sign-in, refreshed as needed).

use crate::output::{clean, rfc3339};
use crate::Failure;
use clap::{Args, Subcommand};
use sesame_client::{Cache, Error, Session};

#[derive(Debug, Subcommand)]
pub enum SessionsCommand {
    /// Create a delegated session for a job client; prints its id and one-time nonce (60 s),
    /// which the job binds with its own credentials
    Create(CreateArgs),
    /// List your delegated sessions that have not ended
    List(ListArgs),
    /// Revoke one of your delegated sessions (its tokens stop working at once)
    Revoke(RevokeArgs),
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    #[command(flatten)]
    pub profile: crate::signin::ProfileArg,
    /// The job's client id
    #[arg(long, value_name = "CLIENT_ID")]
    pub client: String,
    /// Space-separated scopes, at most those of your sign-in (default: all of them)
    #[arg(long)]
    pub scope: Option<String>,
    /// How long the session may last, in seconds (at most the tenant's session_max_ttl)
    #[arg(long, value_name = "SECONDS")]
    pub ttl: Option<i64>,
    /// Print the issuer's answer as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub profile: crate::signin::ProfileArg,
    /// Print the issuer's answer as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RevokeArgs {
    #[command(flatten)]
    pub profile: crate::signin::ProfileArg,
    /// The session's id
    pub id: String,
}

fn fail(e: Error) -> Failure {
    Failure(e.to_string())
}

fn session(profile: &str) -> Result<Session, Failure> {
    sesame_client::check_profile_name(profile).map_err(fail)?;
    let cache = Cache::from_env().map_err(fail)?;
    Session::new(cache, profile).map_err(fail)
}

fn block_on<T>(f: impl std::future::Future<Output = sesame_client::Result<T>>) -> Result<T, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure(format!("cannot start the async runtime: {e}")))?
        .block_on(f)
        .map_err(fail)
}

fn text(v: &serde_json::Value, name: &str) -> String {
    match &v[name] {
        serde_json::Value::String(s) => clean(s),
        serde_json::Value::Null => "-".into(),
        other => clean(&other.to_string()),
    }
}

fn time(v: &serde_json::Value, name: &str) -> String {
    v[name].as_i64().map_or_else(|| "-".into(), rfc3339)
}

pub fn run(command: SessionsCommand) -> Result<(), Failure> {
    match command {
        SessionsCommand::Create(a) => {
            let s = session(&a.profile.profile)?;
            let v = block_on(s.create_delegated_session(&a.client, a.scope.as_deref(), a.ttl))?;
            if a.json {
                return crate::print(&format!("{v:#}\n"));
            }
            crate::print(&format!(
                "session:  {}\nnonce:    {}\nclient:   {}\nscope:    {}\nexpires:  {}\n\
                 The job binds the nonce within {} s with its own credentials \
                 (grant_type=urn:sesame:params:oauth:grant-type:session-nonce).\n",
                text(&v, "session_id"),
                text(&v, "nonce"),
                text(&v, "client_id"),
                text(&v, "scope"),
                time(&v, "expires_at"),
                v["nonce_expires_in"].as_i64().unwrap_or(60),
            ))
        }
        SessionsCommand::List(a) => {
            let s = session(&a.profile.profile)?;
            let v = block_on(s.delegated_sessions())?;
            if a.json {
                return crate::print(&format!("{v:#}\n"));
            }
            let list = v["sessions"].as_array().cloned().unwrap_or_default();
            if list.is_empty() {
                return crate::print("No delegated sessions.\n");
            }
            let mut out = format!(
                "{:<38} {:<24} {:<20} {}\n",
                "SESSION", "CLIENT", "EXPIRES", "SCOPE"
            );
            for s in &list {
                out.push_str(&format!(
                    "{:<38} {:<24} {:<20} {}\n",
                    text(s, "id"),
                    text(s, "client_id"),
                    time(s, "expires_at"),
                    text(s, "scope")
                ));
            }
            crate::print(&out)
        }
        SessionsCommand::Revoke(a) => {
            let s = session(&a.profile.profile)?;
            block_on(s.revoke_delegated_session(&a.id))?;
            crate::print(&format!("Revoked session {}.\n", clean(&a.id)))
        }
    }
}
