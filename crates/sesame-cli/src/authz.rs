//! `sesame admin teams …` and `sesame admin resources …`: authorization's admin commands and
//! the admin-API requests they stand for (docs/authz.md).

use crate::api::{Method, Request, Shape};
use crate::cli::TenantOpt;
use crate::Failure;
use clap::{Args, Subcommand};
use serde_json::{json, Map, Value};

#[derive(Debug, Subcommand)]
pub enum TeamsCommand {
    /// Create a team (with --idp-connection/--idp-group, its members follow that IdP group)
    Create(TeamCreate),
    /// List the teams of a tenant
    List(TenantOpt),
    /// Show a team and its members
    Show(TeamRef),
    /// Delete a team, its members and its grants
    Delete(TeamRef),
    /// Add a member, or change a member's role
    AddMember(TeamMember),
    /// Remove a member
    RemoveMember(TeamMemberRef),
}

#[derive(Debug, Args)]
pub struct TeamRef {
    #[command(flatten)]
    pub tenant: TenantOpt,
    /// The team's id
    #[arg(value_name = "TEAM")]
    pub team: String,
}

#[derive(Debug, Args)]
pub struct TeamCreate {
    #[command(flatten)]
    pub tenant: TenantOpt,
    /// The team's id (a-z, 0-9, '-', '_')
    #[arg(value_name = "TEAM")]
    pub team: String,
    /// Display name (default: the id)
    #[arg(long)]
    pub name: Option<String>,
    /// The SSO connection whose group the team follows
    #[arg(long, value_name = "CONNECTION", requires = "idp_group")]
    pub idp_connection: Option<String>,
    /// The IdP group the team follows
    #[arg(long, value_name = "GROUP", requires = "idp_connection")]
    pub idp_group: Option<String>,
}

#[derive(Debug, Args)]
pub struct TeamMemberRef {
    #[command(flatten)]
    pub tenant: TenantOpt,
    #[arg(value_name = "TEAM")]
    pub team: String,
    /// The user's id or username
    #[arg(value_name = "USER")]
    pub user: String,
}

#[derive(Debug, Args)]
pub struct TeamMember {
    #[command(flatten)]
    pub member: TeamMemberRef,
    /// member or manager
    #[arg(long, default_value = "member")]
    pub role: String,
}

#[derive(Debug, Subcommand)]
pub enum ResourcesCommand {
    /// Declare a resource type (default relations: viewer ⊂ editor ⊂ owner)
    DeclareType(TypeDeclare),
    /// List the resource types of a tenant
    Types(TenantOpt),
    /// Create a resource, or move it under another parent
    Put(ResourcePut),
    /// Show a resource and its grants
    Show(ResourceRef),
    /// Delete a resource (it must have no children)
    Delete(ResourceRef),
    /// Grant a relation on a resource to a user or a team
    Grant(GrantArgs),
    /// Remove a grant (the last owner stays)
    Revoke(GrantArgs),
    /// May a user do an action on a resource? Prints the answer and the grants behind it
    Check(CheckArgs),
}

#[derive(Debug, Args)]
pub struct TypeDeclare {
    #[command(flatten)]
    pub tenant: TenantOpt,
    #[arg(value_name = "TYPE")]
    pub name: String,
    /// RELATION=ACTION,ACTION (repeat; must include owner). None: the default relations
    #[arg(long = "relation", value_name = "REL=ACTIONS")]
    pub relations: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ResourceRef {
    #[command(flatten)]
    pub tenant: TenantOpt,
    /// TYPE/ID
    #[arg(value_name = "TYPE/ID")]
    pub resource: String,
}

#[derive(Debug, Args)]
pub struct ResourcePut {
    #[command(flatten)]
    pub resource: ResourceRef,
    /// The parent, TYPE/ID
    #[arg(long, value_name = "TYPE/ID")]
    pub parent: Option<String>,
    /// Grant owner to this subject at creation: user:ID or team:ID
    #[arg(long, value_name = "SUBJECT")]
    pub owner: Option<String>,
}

#[derive(Debug, Args)]
pub struct GrantArgs {
    #[command(flatten)]
    pub resource: ResourceRef,
    /// The relation (viewer, editor, owner, or the type's own)
    #[arg(value_name = "RELATION")]
    pub relation: String,
    /// user:ID or team:ID
    #[arg(value_name = "SUBJECT")]
    pub subject: String,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub tenant: TenantOpt,
    /// The user's id
    #[arg(value_name = "USER")]
    pub user: String,
    #[arg(value_name = "ACTION")]
    pub action: String,
    /// TYPE/ID
    #[arg(value_name = "TYPE/ID")]
    pub resource: String,
}

fn seg(what: &str, value: &str) -> Result<String, Failure> {
    if matches!(value, "" | "." | "..") {
        return Err(Failure(format!(
            "'{}' is not a valid {what}",
            value.escape_debug()
        )));
    }
    Ok(value.to_owned())
}

fn request(method: Method, path: Vec<String>, body: Option<Value>, shape: Shape) -> Request {
    Request {
        method,
        path,
        body,
        shape,
        password: None,
    }
}

fn tenant_path(tenant: &str, rest: &[&str]) -> Result<Vec<String>, Failure> {
    let mut p = vec!["tenants".to_owned(), seg("tenant", tenant)?];
    p.extend(rest.iter().map(|s| s.to_string()));
    Ok(p)
}

/// `TYPE/ID` (the id may itself hold `/`).
fn type_id(s: &str) -> Result<(String, String), Failure> {
    match s.split_once('/') {
        Some((t, id)) if !t.is_empty() && !id.is_empty() => Ok((t.to_owned(), id.to_owned())),
        _ => Err(Failure(format!("'{}' is not TYPE/ID", s.escape_debug()))),
    }
}

/// `user:ID` or `team:ID` as the API's subject object.
fn subject(s: &str) -> Result<Value, Failure> {
    match s.split_once(':') {
        Some((kind @ ("user" | "team"), id)) if !id.is_empty() => Ok(json!({"type": kind, "id": id})),
        _ => Err(Failure(format!(
            "'{}' is not user:ID or team:ID",
            s.escape_debug()
        ))),
    }
}

pub fn plan_teams(command: &TeamsCommand) -> Result<Request, Failure> {
    Ok(match command {
        TeamsCommand::Create(c) => {
            let mut body = json!({ "id": c.team });
            if let Some(n) = &c.name {
                body["name"] = json!(n);
            }
            if let (Some(conn), Some(group)) = (&c.idp_connection, &c.idp_group) {
                body["idp_group"] = json!({ "connection": conn, "group": group });
            }
            request(
                Method::Post,
                tenant_path(&c.tenant.tenant, &["teams"])?,
                Some(body),
                Shape::Document,
            )
        }
        TeamsCommand::List(t) => request(
            Method::Get,
            tenant_path(&t.tenant, &["teams"])?,
            None,
            Shape::Document,
        ),
        TeamsCommand::Show(r) => {
            let p = tenant_path(&r.tenant.tenant, &["teams", &seg("team", &r.team)?])?;
            request(Method::Get, p, None, Shape::Document)
        }
        TeamsCommand::Delete(r) => {
            let p = tenant_path(&r.tenant.tenant, &["teams", &seg("team", &r.team)?])?;
            request(
                Method::Delete,
                p,
                None,
                Shape::Done(format!("Deleted team {}", r.team)),
            )
        }
        TeamsCommand::AddMember(m) => {
            let r = &m.member;
            let p = tenant_path(
                &r.tenant.tenant,
                &["teams", &seg("team", &r.team)?, "members", &seg("user", &r.user)?],
            )?;
            request(Method::Put, p, Some(json!({ "role": m.role })), Shape::Document)
        }
        TeamsCommand::RemoveMember(r) => {
            let p = tenant_path(
                &r.tenant.tenant,
                &["teams", &seg("team", &r.team)?, "members", &seg("user", &r.user)?],
            )?;
            request(
                Method::Delete,
                p,
                None,
                Shape::Done(format!("Removed {} from team {}", r.user, r.team)),
            )
        }
    })
}

fn resource_path(r: &ResourceRef, rest: &[&str]) -> Result<Vec<String>, Failure> {
    let (kind, id) = type_id(&r.resource)?;
    let mut p = tenant_path(
        &r.tenant.tenant,
        &["resources", &seg("resource type", &kind)?, &id],
    )?;
    p.extend(rest.iter().map(|s| s.to_string()));
    Ok(p)
}

pub fn plan_resources(command: &ResourcesCommand) -> Result<Request, Failure> {
    Ok(match command {
        ResourcesCommand::DeclareType(d) => {
            let body = if d.relations.is_empty() {
                json!({})
            } else {
                let mut map = Map::new();
                for r in &d.relations {
                    let (rel, actions) = r.split_once('=').ok_or_else(|| {
                        Failure(format!("--relation '{}' is not REL=ACTIONS", r.escape_debug()))
                    })?;
                    map.insert(rel.to_owned(), json!(actions.split(',').collect::<Vec<_>>()));
                }
                json!({ "relations": map })
            };
            let p = tenant_path(
                &d.tenant.tenant,
                &["resource-types", &seg("resource type", &d.name)?],
            )?;
            request(Method::Put, p, Some(body), Shape::Document)
        }
        ResourcesCommand::Types(t) => request(
            Method::Get,
            tenant_path(&t.tenant, &["resource-types"])?,
            None,
            Shape::Document,
        ),
        ResourcesCommand::Put(c) => {
            let mut body = json!({});
            if let Some(parent) = &c.parent {
                let (t, id) = type_id(parent)?;
                body["parent"] = json!({ "type": t, "id": id });
            }
            if let Some(owner) = &c.owner {
                body["owner"] = subject(owner)?;
            }
            request(
                Method::Put,
                resource_path(&c.resource, &[])?,
                Some(body),
                Shape::Document,
            )
        }
        ResourcesCommand::Show(r) => request(Method::Get, resource_path(r, &[])?, None, Shape::Document),
        ResourcesCommand::Delete(r) => request(
            Method::Delete,
            resource_path(r, &[])?,
            None,
            Shape::Done(format!("Deleted {}", r.resource)),
        ),
        ResourcesCommand::Grant(g) => request(
            Method::Post,
            resource_path(&g.resource, &["grants"])?,
            Some(json!({ "relation": g.relation, "subject": subject(&g.subject)? })),
            Shape::Document,
        ),
        ResourcesCommand::Revoke(g) => {
            let s = subject(&g.subject)?;
            let (kind, id) = (
                s["type"].as_str().unwrap_or_default(),
                s["id"].as_str().unwrap_or_default(),
            );
            let p = resource_path(&g.resource, &["grants", &seg("relation", &g.relation)?, kind, id])?;
            request(
                Method::Delete,
                p,
                None,
                Shape::Done(format!(
                    "Removed {} {} on {}",
                    g.relation, g.subject, g.resource.resource
                )),
            )
        }
        ResourcesCommand::Check(c) => {
            let (t, id) = type_id(&c.resource)?;
            let body = json!({
                "subject": { "type": "user", "id": c.user },
                "action": c.action,
                "resource": { "type": t, "id": id },
            });
            request(
                Method::Post,
                tenant_path(&c.tenant.tenant, &["authz", "check"])?,
                Some(body),
                Shape::Document,
            )
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant() -> TenantOpt {
        TenantOpt {
            tenant: "acme".into(),
        }
    }

    #[test]
    fn commands_map_to_the_admin_api() {
        let r = plan_resources(&ResourcesCommand::Revoke(GrantArgs {
            resource: ResourceRef {
                tenant: tenant(),
                resource: "project/p1".into(),
            },
            relation: "editor".into(),
            subject: "team:eng".into(),
        }))
        .unwrap();
        assert_eq!(r.method, Method::Delete);
        assert_eq!(
            r.path,
            [
                "tenants",
                "acme",
                "resources",
                "project",
                "p1",
                "grants",
                "editor",
                "team",
                "eng"
            ]
        );
        let c = plan_resources(&ResourcesCommand::Check(CheckArgs {
            tenant: tenant(),
            user: "u1".into(),
            action: "read".into(),
            resource: "model/m1".into(),
        }))
        .unwrap();
        assert_eq!(c.path, ["tenants", "acme", "authz", "check"]);
        assert_eq!(c.body.unwrap()["resource"], json!({"type": "model", "id": "m1"}));
        let d = plan_resources(&ResourcesCommand::DeclareType(TypeDeclare {
            tenant: tenant(),
            name: "model".into(),
            relations: vec!["owner=read,write".into(), "deployer=deploy".into()],
        }))
        .unwrap();
        assert_eq!(
            d.body.unwrap(),
            json!({"relations": {"owner": ["read", "write"], "deployer": ["deploy"]}})
        );
        assert!(subject("group:x").is_err());
        assert!(type_id("nope").is_err());
        let t = plan_teams(&TeamsCommand::Create(TeamCreate {
            tenant: tenant(),
            team: "eng".into(),
            name: None,
            idp_connection: Some("corp".into()),
            idp_group: Some("engineering".into()),
        }))
        .unwrap();
        assert_eq!(
            t.body.unwrap(),
            json!({"id": "eng", "idp_group": {"connection": "corp", "group": "engineering"}})
        );
    }
}
