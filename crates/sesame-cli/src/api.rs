//! Turns a parsed admin command into the admin-API request it stands for (docs/admin-api.md),
//! without any I/O, so the mapping is tested without a server.

use crate::cli::{
    AdminCommand, ClientCreate, ClientRef, ClientsCommand, KeysCommand, TenantCreate, TenantsCommand,
};
use crate::Failure;
use serde_json::{json, Map, Value};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Delete,
}

/// How the answer is shown without `--json`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Shape {
    Tenant,
    Tenants,
    Client,
    Clients {
        tenant: String,
    },
    /// `{"client", "client_secret"?}` from create and rotate-secret.
    ClientWithSecret,
    Keys {
        tenant: String,
        /// After a rotation: which algorithms were rotated.
        rotated: Option<String>,
    },
    Deleted {
        tenant: String,
        client_id: String,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    pub method: Method,
    /// Below `/admin/v1`; each one is percent-encoded on its own.
    pub path: Vec<String>,
    pub body: Option<Value>,
    pub shape: Shape,
}

pub fn plan(command: &AdminCommand) -> Result<Request, Failure> {
    match command {
        AdminCommand::Tenants(c) => plan_tenants(c),
        AdminCommand::Clients(c) => plan_clients(c),
        AdminCommand::Keys(c) => plan_keys(c),
    }
}

fn plan_tenants(command: &TenantsCommand) -> Result<Request, Failure> {
    Ok(match command {
        TenantsCommand::Create(c) => Request {
            method: Method::Post,
            path: vec!["tenants".into()],
            body: Some(tenant_body(c)),
            shape: Shape::Tenant,
        },
        TenantsCommand::List => get(vec!["tenants".into()], Shape::Tenants),
        TenantsCommand::Show(t) => get(vec!["tenants".into(), segment("tenant", &t.name)?], Shape::Tenant),
        TenantsCommand::Disable(t) => tenant_action(&t.name, "disable")?,
        TenantsCommand::Enable(t) => tenant_action(&t.name, "enable")?,
    })
}

fn plan_clients(command: &ClientsCommand) -> Result<Request, Failure> {
    Ok(match command {
        ClientsCommand::Create(c) => Request {
            method: Method::Post,
            path: vec![
                "tenants".into(),
                segment("tenant", &c.tenant.tenant)?,
                "clients".into(),
            ],
            body: Some(client_body(c)),
            shape: Shape::ClientWithSecret,
        },
        ClientsCommand::List(t) => get(
            vec!["tenants".into(), segment("tenant", &t.tenant)?, "clients".into()],
            Shape::Clients {
                tenant: t.tenant.clone(),
            },
        ),
        ClientsCommand::Show(c) => get(client_path(c)?, Shape::Client),
        ClientsCommand::RotateSecret(c) => client_action(c, "rotate-secret", Shape::ClientWithSecret)?,
        ClientsCommand::Disable(c) => client_action(c, "disable", Shape::Client)?,
        ClientsCommand::Enable(c) => client_action(c, "enable", Shape::Client)?,
        ClientsCommand::Delete(c) => Request {
            method: Method::Delete,
            path: client_path(c)?,
            body: None,
            shape: Shape::Deleted {
                tenant: c.tenant.tenant.clone(),
                client_id: c.client_id.clone(),
            },
        },
    })
}

fn plan_keys(command: &KeysCommand) -> Result<Request, Failure> {
    Ok(match command {
        KeysCommand::List(t) => get(
            vec!["tenants".into(), segment("tenant", &t.tenant)?, "keys".into()],
            Shape::Keys {
                tenant: t.tenant.clone(),
                rotated: None,
            },
        ),
        KeysCommand::Rotate(r) => {
            let mut body = Map::new();
            if let Some(alg) = r.alg {
                body.insert("alg".into(), json!(alg.as_str()));
            }
            if r.force {
                body.insert("force".into(), json!(true));
            }
            Request {
                method: Method::Post,
                path: vec![
                    "tenants".into(),
                    segment("tenant", &r.tenant.tenant)?,
                    "keys".into(),
                    "rotate".into(),
                ],
                body: Some(Value::Object(body)),
                shape: Shape::Keys {
                    tenant: r.tenant.tenant.clone(),
                    rotated: Some(r.alg.map_or("all algorithms", |a| a.as_str()).into()),
                },
            }
        }
    })
}

/// Only what was given is sent, so the server's defaults apply to the rest.
pub fn tenant_body(c: &TenantCreate) -> Value {
    let mut body = Map::new();
    body.insert("id".into(), json!(c.name));
    if let Some(name) = &c.display_name {
        body.insert("display_name".into(), json!(name));
    }
    if let Some(alg) = c.signing_alg {
        body.insert("signing_alg".into(), json!(alg.as_str()));
    }
    if let Some(ttl) = c.access_token_ttl {
        body.insert("access_token_ttl".into(), json!(ttl));
    }
    Value::Object(body)
}

/// Only what was given is sent, so the server's defaults apply to the rest; in particular no
/// `--grant` means the type's default grants, not an empty list.
pub fn client_body(c: &ClientCreate) -> Value {
    let mut body = Map::new();
    if let Some(id) = &c.client_id {
        body.insert("client_id".into(), json!(id));
    }
    if let Some(name) = &c.name {
        body.insert("name".into(), json!(name));
    }
    if let Some(t) = c.client_type {
        body.insert("client_type".into(), json!(t.as_str()));
    }
    // An OAuth scope parameter is a space-separated list, so `--scope "a b"` is two scopes.
    let scopes: Vec<&str> = c.scopes.iter().flat_map(|s| s.split_whitespace()).collect();
    for (key, list) in [
        (
            "grant_types",
            c.grants.iter().map(String::as_str).collect::<Vec<_>>(),
        ),
        (
            "redirect_uris",
            c.redirect_uris.iter().map(String::as_str).collect(),
        ),
        ("allowed_scopes", scopes),
        (
            "allowed_audiences",
            c.audiences.iter().map(String::as_str).collect(),
        ),
    ] {
        if !list.is_empty() {
            body.insert(key.into(), json!(list));
        }
    }
    if let Some(alg) = c.signing_alg {
        body.insert("signing_alg".into(), json!(alg.as_str()));
    }
    if let Some(ttl) = c.access_token_ttl {
        body.insert("access_token_ttl".into(), json!(ttl));
    }
    Value::Object(body)
}

fn get(path: Vec<String>, shape: Shape) -> Request {
    Request {
        method: Method::Get,
        path,
        body: None,
        shape,
    }
}

fn tenant_action(name: &str, action: &str) -> Result<Request, Failure> {
    Ok(Request {
        method: Method::Post,
        path: vec!["tenants".into(), segment("tenant", name)?, action.into()],
        body: None,
        shape: Shape::Tenant,
    })
}

fn client_path(c: &ClientRef) -> Result<Vec<String>, Failure> {
    Ok(vec![
        "tenants".into(),
        segment("tenant", &c.tenant.tenant)?,
        "clients".into(),
        segment("client_id", &c.client_id)?,
    ])
}

fn client_action(c: &ClientRef, action: &str, shape: Shape) -> Result<Request, Failure> {
    let mut path = client_path(c)?;
    path.push(action.into());
    Ok(Request {
        method: Method::Post,
        path,
        body: None,
        shape,
    })
}

/// The URL builder drops `.` and `..` segments and an empty one would address the collection,
/// so either would silently hit a different endpoint than the one asked for.
fn segment(what: &str, value: &str) -> Result<String, Failure> {
    if matches!(value, "" | "." | "..") {
        return Err(Failure(format!(
            "'{}' is not a valid {what}",
            value.escape_debug()
        )));
    }
    Ok(value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn plan_of(args: &[&str]) -> Result<Request, Failure> {
        let cli =
            Cli::try_parse_from(["sesame", "admin"].into_iter().chain(args.iter().copied())).expect("parses");
        let Command::Admin(a) = cli.command;
        plan(&a.command)
    }

    fn ok(args: &[&str]) -> Request {
        plan_of(args).expect("plans")
    }

    fn route(r: &Request) -> String {
        format!("{:?} /{}", r.method, r.path.join("/"))
    }

    #[test]
    fn tenant_create_sends_only_given_fields() {
        let r = ok(&["tenants", "create", "acme"]);
        assert_eq!(route(&r), "Post /tenants");
        assert_eq!(r.body, Some(json!({"id": "acme"})));

        let r = ok(&[
            "tenants",
            "create",
            "acme",
            "--display-name",
            "Acme Corp",
            "--signing-alg",
            "es256",
            "--access-token-ttl",
            "600",
        ]);
        assert_eq!(
            r.body,
            Some(
                json!({"id": "acme", "display_name": "Acme Corp", "signing_alg": "ES256", "access_token_ttl": 600})
            )
        );
        assert_eq!(r.shape, Shape::Tenant);
    }

    #[test]
    fn tenant_commands_map_to_paths() {
        let r = ok(&["tenants", "list"]);
        assert_eq!((route(&r), r.shape), ("Get /tenants".into(), Shape::Tenants));
        let r = ok(&["tenants", "show", "acme"]);
        assert_eq!((route(&r), r.shape), ("Get /tenants/acme".into(), Shape::Tenant));
        for action in ["disable", "enable"] {
            let r = ok(&["tenants", action, "acme"]);
            assert_eq!(route(&r), format!("Post /tenants/acme/{action}"));
            assert_eq!((r.body, r.shape), (None, Shape::Tenant));
        }
    }

    #[test]
    fn client_create_defaults_to_an_empty_spec() {
        let r = ok(&["clients", "create", "--tenant", "acme"]);
        assert_eq!(route(&r), "Post /tenants/acme/clients");
        assert_eq!((r.body, r.shape), (Some(json!({})), Shape::ClientWithSecret));
    }

    #[test]
    fn client_create_builds_the_full_spec() {
        let r = ok(&[
            "clients",
            "create",
            "--tenant",
            "acme",
            "--client-id",
            "svc",
            "--name",
            "Service",
            "--type",
            "confidential",
            "--grant",
            "client_credentials",
            "--redirect-uri",
            "https://a/cb",
            "--redirect-uri",
            "https://b/cb",
            "--scope",
            "read write",
            "--scope",
            "admin",
            "--audience",
            "https://api",
            "--signing-alg",
            "EdDSA",
            "--access-token-ttl",
            "300",
        ]);
        assert_eq!(
            r.body,
            Some(json!({
                "client_id": "svc",
                "name": "Service",
                "client_type": "confidential",
                "grant_types": ["client_credentials"],
                "redirect_uris": ["https://a/cb", "https://b/cb"],
                "allowed_scopes": ["read", "write", "admin"],
                "allowed_audiences": ["https://api"],
                "signing_alg": "EdDSA",
                "access_token_ttl": 300,
            }))
        );
    }

    #[test]
    fn client_commands_map_to_paths() {
        let r = ok(&["clients", "show", "--tenant", "acme", "svc"]);
        assert_eq!(
            (route(&r), r.shape),
            ("Get /tenants/acme/clients/svc".into(), Shape::Client)
        );
        for (action, shape) in [
            ("rotate-secret", Shape::ClientWithSecret),
            ("disable", Shape::Client),
            ("enable", Shape::Client),
        ] {
            let r = ok(&["clients", action, "svc", "--tenant", "acme"]);
            assert_eq!(route(&r), format!("Post /tenants/acme/clients/svc/{action}"));
            assert_eq!((r.body, r.shape), (None, shape));
        }
        let r = ok(&["clients", "delete", "--tenant", "acme", "svc"]);
        assert_eq!(route(&r), "Delete /tenants/acme/clients/svc");
        let deleted = Shape::Deleted {
            tenant: "acme".into(),
            client_id: "svc".into(),
        };
        assert_eq!(r.shape, deleted);
        let r = ok(&["clients", "list", "--tenant", "acme"]);
        assert_eq!(route(&r), "Get /tenants/acme/clients");
    }

    #[test]
    fn key_commands() {
        let r = ok(&["keys", "rotate", "--tenant", "acme"]);
        assert_eq!(
            (route(&r), r.body),
            ("Post /tenants/acme/keys/rotate".into(), Some(json!({})))
        );
        let r = ok(&["keys", "rotate", "--tenant", "acme", "--alg", "ES256", "--force"]);
        assert_eq!(r.body, Some(json!({"alg": "ES256", "force": true})));
        assert_eq!(
            r.shape,
            Shape::Keys {
                tenant: "acme".into(),
                rotated: Some("ES256".into())
            }
        );
        let r = ok(&["keys", "rotate", "--tenant", "acme"]);
        assert_eq!(
            r.shape,
            Shape::Keys {
                tenant: "acme".into(),
                rotated: Some("all algorithms".into())
            }
        );
        let r = ok(&["keys", "list", "--tenant", "acme"]);
        assert_eq!(
            r.shape,
            Shape::Keys {
                tenant: "acme".into(),
                rotated: None
            }
        );
        assert_eq!((route(&r), r.body), ("Get /tenants/acme/keys".into(), None));
    }

    #[test]
    fn dot_segments_and_empty_ids_are_refused() {
        assert!(plan_of(&["tenants", "show", ".."]).is_err());
        assert!(plan_of(&["tenants", "disable", ""]).is_err());
        assert!(plan_of(&["clients", "delete", "--tenant", "acme", "."]).is_err());
        assert!(plan_of(&["clients", "list", "--tenant", ".."]).is_err());
    }
}
