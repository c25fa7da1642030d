//! `sesame apply -f FILE`: the config file's `[[tenants]]` — their settings, clients, trust
//! policies, sources and SSO connections — applied to a running server through the admin API,
//! with a diff first. The file's types, the plan and each step's request are `sesame-declare`'s
//! (sesamed applies its file at start with the same); this module only GETs the current state
//! and sends the plan's requests. SSO client secrets are read here, on the operator's machine,
//! from `client_secret_file` / `client_secret_env`, and never printed.

use crate::cli::ConnArgs;
use crate::Failure;
use clap::Args;
use serde_json::Value;
use sesame_client::reqwest::Method;
use sesame_client::AdminClient;
use sesame_declare::{Action, Current, Declared, Options, CHILD_KINDS};
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct ApplyArgs {
    #[command(flatten, next_help_heading = "Global options")]
    pub conn: ConnArgs,
    /// The config file (the same TOML as sesamed's; only `[[tenants]]` and what they hold are
    /// applied)
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: PathBuf,
    /// Print the plan and change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Also delete what the file no longer names (clients, trust policies, sources, SSO
    /// connections), for each kind a tenant of the file declares (even as `clients = []`)
    #[arg(long)]
    pub prune: bool,
    /// Send the file's SSO client secrets again even where the server already has one (the
    /// server never shows a secret, so `sesame apply` cannot compare them): to rotate one
    #[arg(long)]
    pub send_secrets: bool,
    /// Apply only this tenant of the file
    #[arg(long, value_name = "TENANT")]
    pub tenant: Option<String>,
}

pub fn run(mut args: ApplyArgs) -> Result<(), Failure> {
    let shown = args.file.display().to_string();
    let text =
        std::fs::read_to_string(&args.file).map_err(|e| Failure(format!("cannot read {shown}: {e}")))?;
    let mut declared = Declared::from_toml(&text).map_err(|e| Failure(format!("{shown}: {e}")))?;
    if let Some(only) = &args.tenant {
        declared.tenants.retain(|t| &t.tenant.id == only);
        if declared.tenants.is_empty() {
            return Err(Failure(format!("{shown} declares no tenant '{only}'")));
        }
    }
    declared
        .resolve_secrets()
        .map_err(|e| Failure(format!("{shown}: {e}")))?;
    let base = crate::http::base_url(&args.conn.url)?;
    let token = crate::admin_credential(&mut args.conn)?;
    let admin = AdminClient::new(base, &token).map_err(|e| Failure(e.to_string()))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(apply(&admin, &declared, &args))
}

async fn call(
    admin: &AdminClient,
    method: Method,
    parts: &[&str],
    body: Option<&Value>,
) -> Result<Value, Failure> {
    let path: Vec<String> = parts.iter().map(|p| (*p).to_owned()).collect();
    admin
        .send(method, &path, body)
        .await
        .map(Option::unwrap_or_default)
        .map_err(|e| Failure(e.to_string()))
}

/// The server's state for the file's tenants: for each, the kinds the file manages.
async fn current(admin: &AdminClient, declared: &Declared) -> Result<Current, Failure> {
    let mut current = Current::default();
    let listed = call(admin, Method::GET, &["tenants"], None).await?;
    let tenants = listed["tenants"].as_array().cloned().unwrap_or_default();
    for decl in &declared.tenants {
        let id = decl.tenant.id.as_str();
        let Some(t) = tenants.iter().find(|t| t["id"] == id) else {
            continue;
        };
        current.tenants.insert(id.to_owned(), t.clone());
        if decl.workload.is_some() {
            let settings = call(admin, Method::GET, &["tenants", id, "workload"], None).await?;
            current.workload.insert(id.to_owned(), settings);
        }
        for kind in CHILD_KINDS {
            if decl.of(kind).is_some() {
                let listed = call(admin, Method::GET, &["tenants", id, kind.collection], None).await?;
                current.insert_listed(kind, id, &listed);
            }
        }
    }
    Ok(current)
}

async fn apply(admin: &AdminClient, declared: &Declared, args: &ApplyArgs) -> Result<(), Failure> {
    let opts = Options {
        prune: args.prune,
        send_secrets: args.send_secrets,
    };
    let plan = sesame_declare::plan_with(declared, &current(admin, declared).await?, opts);
    let mut out = String::new();
    for note in &plan.notes {
        out.push_str(&format!("note: {note}\n"));
    }
    if plan.actions.is_empty() {
        out.push_str("nothing to change\n");
        return crate::print(&out);
    }
    for action in &plan.actions {
        out.push_str(&format!("{action}\n"));
    }
    if args.dry_run {
        out.push_str(&format!(
            "dry run: {} change(s) planned, none made\n",
            plan.actions.len()
        ));
        return crate::print(&out);
    }
    crate::print(&out)?;
    for action in &plan.actions {
        execute(admin, action).await.map_err(|Failure(e)| {
            Failure(format!(
                "{action}: {e} (the steps printed before it were applied)"
            ))
        })?;
    }
    crate::print(&format!("applied {} change(s)\n", plan.actions.len()))
}

async fn execute(admin: &AdminClient, action: &Action) -> Result<(), Failure> {
    let Some((method, path, body)) = action.request() else {
        return Err(Failure(
            "the admin API does not do this (tenants are disabled, not deleted)".into(),
        ));
    };
    let method = Method::from_bytes(method.as_bytes()).expect("a method");
    let path: Vec<&str> = path.iter().map(String::as_str).collect();
    let answer = call(admin, method, &path, body.as_ref()).await?;
    // As `admin clients create`: a created client's generated secret, this once.
    if let (Action::Create { tenant, id, .. }, Some(secret)) =
        (action, answer.get("client_secret").and_then(Value::as_str))
    {
        crate::print(&format!(
            "client_secret of {tenant}/{id}: {secret}\n\
             Store this secret now: it will not be shown again.\n"
        ))?;
    }
    Ok(())
}
