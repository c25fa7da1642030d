//! `sesame apply -f FILE`: the config file's `[[tenants]]` and their clients applied to a running
//! server through the admin API, with a diff first. The file's types and the plan are
//! `sesame-declare`'s; this module only GETs the current state and sends the plan's requests.

use crate::cli::ConnArgs;
use crate::Failure;
use clap::Args;
use serde_json::Value;
use sesame_client::reqwest::Method;
use sesame_client::AdminClient;
use sesame_declare::{Action, Current, Declared};
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct ApplyArgs {
    #[command(flatten, next_help_heading = "Global options")]
    pub conn: ConnArgs,
    /// The config file (the same TOML as sesamed's; only `[[tenants]]` and their clients are
    /// applied)
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: PathBuf,
    /// Print the plan and change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Also delete the clients of a tenant the file manages that the file no longer names
    #[arg(long)]
    pub prune: bool,
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
    let base = crate::http::base_url(&args.conn.url)?;
    let token = crate::admin_credential(&mut args.conn)?;
    let admin = AdminClient::new(base, &token).map_err(|e| Failure(e.to_string()))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(apply(&admin, &declared, &args))
}

fn path(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|p| (*p).to_owned()).collect()
}

async fn call(
    admin: &AdminClient,
    method: Method,
    parts: &[&str],
    body: Option<&Value>,
) -> Result<Value, Failure> {
    admin
        .send(method, &path(parts), body)
        .await
        .map(Option::unwrap_or_default)
        .map_err(|e| Failure(e.to_string()))
}

/// The server's state for the file's tenants.
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
        if decl.trust_policies.is_some() {
            let listed = call(admin, Method::GET, &["tenants", id, "trust-policies"], None).await?;
            let policies = current.trust_policies.entry(id.to_owned()).or_default();
            for p in listed["trust_policies"].as_array().into_iter().flatten() {
                if let Some(name) = p["name"].as_str() {
                    policies.insert(name.to_owned(), p.clone());
                }
            }
        }
        if decl.clients.is_some() {
            let listed = call(admin, Method::GET, &["tenants", id, "clients"], None).await?;
            let clients = current.clients.entry(id.to_owned()).or_default();
            for c in listed["clients"].as_array().into_iter().flatten() {
                if let Some(cid) = c["client_id"].as_str() {
                    clients.insert(cid.to_owned(), c.clone());
                }
            }
        }
    }
    Ok(current)
}

async fn apply(admin: &AdminClient, declared: &Declared, args: &ApplyArgs) -> Result<(), Failure> {
    let plan = sesame_declare::plan(declared, &current(admin, declared).await?, args.prune);
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

/// The admin API collection of a tenant's objects of one kind.
fn collection(kind: &str) -> &'static str {
    match kind {
        "trust_policy" => "trust-policies",
        _ => "clients",
    }
}

async fn execute(admin: &AdminClient, action: &Action) -> Result<(), Failure> {
    match action {
        Action::Create {
            kind: "tenant", body, ..
        } => {
            call(admin, Method::POST, &["tenants"], Some(body)).await?;
        }
        Action::Create {
            kind,
            tenant,
            id,
            body,
        } => {
            let answer = call(
                admin,
                Method::POST,
                &["tenants", tenant, collection(kind)],
                Some(body),
            )
            .await?;
            // As `admin clients create`: the generated secret, this once.
            if let Some(secret) = answer.get("client_secret").and_then(Value::as_str) {
                crate::print(&format!(
                    "client_secret of {tenant}/{id}: {secret}\n\
                     Store this secret now: it will not be shown again.\n"
                ))?;
            }
        }
        Action::Update {
            kind: "tenant",
            id,
            changes,
            ..
        } => {
            let body = Action::patch_body(changes);
            call(admin, Method::PATCH, &["tenants", id], Some(&body)).await?;
        }
        Action::Update {
            kind,
            tenant,
            id,
            changes,
            replace,
        } => {
            let path = ["tenants", tenant, collection(kind), id];
            match replace {
                Some(whole) => call(admin, Method::PUT, &path, Some(whole)).await?,
                None => call(admin, Method::PATCH, &path, Some(&Action::patch_body(changes))).await?,
            };
        }
        Action::Delete {
            kind: "tenant", id, ..
        } => {
            return Err(Failure(format!(
                "tenant {id}: tenants are not deleted by `sesame apply`"
            )))
        }
        Action::Delete { kind, tenant, id } => {
            call(
                admin,
                Method::DELETE,
                &["tenants", tenant, collection(kind), id],
                None,
            )
            .await?;
        }
    }
    Ok(())
}
