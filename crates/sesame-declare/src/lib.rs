//! The declarative part of Sesame's config file — `[[tenants]]`, their `[[tenants.clients]]`
//! and `[[tenants.trust_policies]]` — and the plan that brings a server's state to it: what to
//! create, what to change (only the fields the file sets) and, when asked, what to delete.
//!
//! No HTTP and no SQL: the current state comes in as the admin API's JSON renderings
//! (`Tenant`, `Client`, docs/admin-api.md) and the plan comes out as [`Action`]s whose bodies are
//! admin API request bodies. `sesame apply` feeds it from GETs and executes it over HTTP.
//!
//! Each kind is one [`Kind`] table entry (its id field, its fields and their types, which of
//! them only the file knows about), so a new kind is a new entry plus its routes.

use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;

/// The tenant that every server has; never deleted or pruned.
pub const DEFAULT_TENANT: &str = "default";

/// A field's type in the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Type {
    Str,
    StrList,
    Bool,
    Int,
    /// Any value (a JWKS, a table of claim rules), passed on as JSON.
    Json,
}

impl Type {
    fn name(self) -> &'static str {
        match self {
            Type::Str => "a string",
            Type::StrList => "an array of strings",
            Type::Bool => "a boolean",
            Type::Int => "an integer",
            Type::Json => "a value",
        }
    }
}

/// How a field is applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Use {
    /// Sent on creation and changed in place (PATCH).
    Patch,
    /// Sent on creation; a difference later is reported, not applied (no route changes it).
    CreateOnly,
    /// Read by `sesamed` at start only (secrets from a file or the environment, `disabled`);
    /// never sent, compared or printed by `sesame apply`.
    StartOnly,
}

/// One kind of declared object.
pub struct Kind {
    /// As printed in the plan (`client`).
    pub name: &'static str,
    /// The field that names an object within its tenant (or among tenants).
    pub id_field: &'static str,
    pub fields: &'static [(&'static str, Type, Use)],
    /// Changed by replacing it whole (PUT of the file's object) rather than by a PATCH of the
    /// fields that differ.
    pub replace: bool,
}

pub const TENANT: Kind = Kind {
    name: "tenant",
    id_field: "id",
    fields: &[
        ("id", Type::Str, Use::CreateOnly),
        ("display_name", Type::Str, Use::Patch),
        ("logo_url", Type::Str, Use::Patch),
        ("session_ttl", Type::Int, Use::Patch),
        ("refresh_token_ttl", Type::Int, Use::Patch),
        ("signing_alg", Type::Str, Use::CreateOnly),
        ("access_token_ttl", Type::Int, Use::CreateOnly),
        // Kinds `sesame apply` does not manage yet (applied by sesamed at start); accepted so
        // that the server's own file applies, and named in the plan's notes.
        ("workload_issuer", Type::Str, Use::StartOnly),
        ("session_max_ttl", Type::Int, Use::StartOnly),
    ],
    replace: false,
};

pub const CLIENT: Kind = Kind {
    name: "client",
    id_field: "client_id",
    fields: &[
        ("client_id", Type::Str, Use::CreateOnly),
        ("name", Type::Str, Use::Patch),
        ("client_type", Type::Str, Use::CreateOnly),
        ("secret_env", Type::Str, Use::StartOnly),
        ("secret_file", Type::Str, Use::StartOnly),
        ("grant_types", Type::StrList, Use::Patch),
        ("redirect_uris", Type::StrList, Use::Patch),
        ("post_logout_redirect_uris", Type::StrList, Use::Patch),
        ("require_pkce", Type::Bool, Use::Patch),
        ("first_party", Type::Bool, Use::Patch),
        ("refresh_without_offline_access", Type::Bool, Use::Patch),
        ("backchannel_logout_uri", Type::Str, Use::Patch),
        ("allowed_scopes", Type::StrList, Use::Patch),
        ("allowed_audiences", Type::StrList, Use::Patch),
        ("signing_alg", Type::Str, Use::Patch),
        ("access_token_ttl", Type::Int, Use::Patch),
        ("introspect_any", Type::Bool, Use::Patch),
        ("jwks", Type::Str, Use::Patch),
        ("jwks_uri", Type::Str, Use::Patch),
        ("trust_policy", Type::Str, Use::Patch),
        ("token_exchange_impersonation", Type::Bool, Use::Patch),
        ("disabled", Type::Bool, Use::StartOnly),
    ],
    replace: false,
};

/// `[[tenants.trust_policies]]` (token exchange), replaced whole when it differs.
pub const TRUST_POLICY: Kind = Kind {
    name: "trust_policy",
    id_field: "name",
    fields: &[
        ("name", Type::Str, Use::Patch),
        ("issuer", Type::Str, Use::Patch),
        ("discovery_url", Type::Str, Use::Patch),
        ("jwks_uri", Type::Str, Use::Patch),
        ("jwks", Type::Json, Use::Patch),
        ("audience", Type::Str, Use::Patch),
        ("subject", Type::Str, Use::Patch),
        ("claims", Type::Json, Use::Patch),
        ("max_age", Type::Int, Use::Patch),
        ("typ", Type::Str, Use::Patch),
        ("identity", Type::Str, Use::Patch),
        ("scopes", Type::StrList, Use::Patch),
        ("audiences", Type::StrList, Use::Patch),
        ("assertion_reuse", Type::Bool, Use::Patch),
    ],
    replace: true,
};

/// Sub-tables of a tenant that `sesame apply` does not manage yet.
const UNMANAGED_KINDS: [&str; 2] = ["sources", "sso"];

/// One declared object: its id and the fields the file sets (JSON, as the admin API takes them).
#[derive(Clone, Debug, PartialEq)]
pub struct Object {
    pub id: String,
    pub fields: Map<String, Value>,
}

/// One `[[tenants]]` entry.
#[derive(Clone, Debug, PartialEq)]
pub struct TenantDecl {
    pub tenant: Object,
    /// `None` when the file says nothing about this tenant's clients (not even `clients = []`):
    /// then they are not managed, and `--prune` leaves them alone.
    pub clients: Option<Vec<Object>>,
    /// `[[tenants.trust_policies]]`, managed the same way as the clients.
    pub trust_policies: Option<Vec<Object>>,
    /// Sub-tables present in the file that are applied at start only (`sso`, …).
    pub unmanaged: Vec<String>,
}

/// The declarative part of a config file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Declared {
    pub tenants: Vec<TenantDecl>,
}

impl Declared {
    /// Reads the `tenants` of a config file; the server's other settings (`listen`, …) are
    /// ignored. Errors name the field (`tenants[0].clients[1].redirect_uris: …`).
    pub fn from_toml(text: &str) -> Result<Declared, String> {
        let root: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| format!("not valid TOML: {}", e.to_string().trim_end()))?;
        let Some(tenants) = root.get("tenants") else {
            return Ok(Declared::default());
        };
        let tenants = tenants
            .as_array()
            .ok_or("tenants: expected an array of tables ([[tenants]])")?;
        let mut out = Declared::default();
        for (i, t) in tenants.iter().enumerate() {
            let at = format!("tenants[{i}]");
            let table = t.as_table().ok_or_else(|| format!("{at}: expected a table"))?;
            let mut own = toml::Table::new();
            let mut clients = None;
            let mut trust_policies = None;
            let mut unmanaged = Vec::new();
            for (k, v) in table {
                if k == "clients" {
                    clients = Some(children(&CLIENT, v, &format!("{at}.{k}"))?);
                } else if k == "trust_policies" {
                    trust_policies = Some(children(&TRUST_POLICY, v, &format!("{at}.{k}"))?);
                } else if UNMANAGED_KINDS.contains(&k.as_str()) {
                    unmanaged.push(k.clone());
                } else {
                    own.insert(k.clone(), v.clone());
                }
            }
            let tenant = object(&TENANT, &own, &at)?;
            if out.tenants.iter().any(|t| t.tenant.id == tenant.id) {
                return Err(format!("{at}.id: tenant '{}' is declared twice", tenant.id));
            }
            out.tenants.push(TenantDecl {
                tenant,
                clients,
                trust_policies,
                unmanaged,
            });
        }
        Ok(out)
    }
}

/// An array of tables of one kind, each id once.
fn children(kind: &Kind, value: &toml::Value, at: &str) -> Result<Vec<Object>, String> {
    let list = value
        .as_array()
        .ok_or_else(|| format!("{at}: expected an array of tables"))?;
    let mut objs: Vec<Object> = Vec::new();
    for (j, c) in list.iter().enumerate() {
        let at = format!("{at}[{j}]");
        let c = c.as_table().ok_or_else(|| format!("{at}: expected a table"))?;
        let obj = object(kind, c, &at)?;
        if objs.iter().any(|o| o.id == obj.id) {
            return Err(format!(
                "{at}.{}: {} '{}' is declared twice",
                kind.id_field, kind.name, obj.id
            ));
        }
        objs.push(obj);
    }
    Ok(objs)
}

/// Checks one table against its kind: known fields, right types, the id present.
fn object(kind: &Kind, table: &toml::Table, at: &str) -> Result<Object, String> {
    let mut fields = Map::new();
    for (k, v) in table {
        let Some(&(_, ty, _)) = kind.fields.iter().find(|(n, _, _)| n == k) else {
            let known: Vec<&str> = kind.fields.iter().map(|(n, _, _)| *n).collect();
            return Err(format!(
                "{at}: unknown field `{k}`, expected one of {}",
                known.join(", ")
            ));
        };
        let json = match (ty, v) {
            (Type::Str, toml::Value::String(s)) => Value::String(s.clone()),
            (Type::Bool, toml::Value::Boolean(b)) => Value::Bool(*b),
            (Type::Int, toml::Value::Integer(n)) => Value::from(*n),
            (Type::StrList, toml::Value::Array(items)) => {
                let mut out = Vec::new();
                for (n, item) in items.iter().enumerate() {
                    let toml::Value::String(s) = item else {
                        return Err(format!(
                            "{at}.{k}[{n}]: expected a string, found {}",
                            item.type_str()
                        ));
                    };
                    out.push(Value::String(s.clone()));
                }
                Value::Array(out)
            }
            (Type::Json, v) => serde_json::to_value(v).map_err(|e| format!("{at}.{k}: {e}"))?,
            (ty, v) => {
                return Err(format!(
                    "{at}.{k}: expected {}, found {}",
                    ty.name(),
                    v.type_str()
                ))
            }
        };
        fields.insert(k.clone(), json);
    }
    let id = match fields.get(kind.id_field) {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => {
            return Err(format!(
                "{at}.{}: missing (every {} needs one)",
                kind.id_field, kind.name
            ))
        }
    };
    Ok(Object { id, fields })
}

/// The server's state for the tenants in the file, as the admin API renders it.
#[derive(Clone, Debug, Default)]
pub struct Current {
    /// Tenant id → `Tenant`.
    pub tenants: BTreeMap<String, Value>,
    /// Tenant id → client id → `Client` (for the tenants that exist).
    pub clients: BTreeMap<String, BTreeMap<String, Value>>,
    /// Tenant id → policy name → `TrustPolicy`.
    pub trust_policies: BTreeMap<String, BTreeMap<String, Value>>,
}

/// One field that differs: the server's value and the file's.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    pub field: String,
    pub from: Value,
    pub to: Value,
}

/// One step of a plan.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Create `id` (within `tenant` for a client) with the admin API body `body`.
    Create {
        kind: &'static str,
        tenant: String,
        id: String,
        body: Value,
    },
    /// Change these fields: a PATCH of the `to` of each, or, for a kind replaced whole, a PUT
    /// of `replace` (the file's object).
    Update {
        kind: &'static str,
        tenant: String,
        id: String,
        changes: Vec<Change>,
        replace: Option<Value>,
    },
    Delete {
        kind: &'static str,
        tenant: String,
        id: String,
    },
}

impl Action {
    /// The PATCH body of an update.
    pub fn patch_body(changes: &[Change]) -> Value {
        Value::Object(changes.iter().map(|c| (c.field.clone(), c.to.clone())).collect())
    }

    fn label(kind: &str, tenant: &str, id: &str) -> String {
        if kind == TENANT.name {
            format!("{kind} {id}")
        } else {
            format!("{kind} {tenant}/{id}")
        }
    }
}

impl fmt::Display for Action {
    /// `+ client acme/web`, `~ client acme/web: redirect_uris [..] -> [..]`, `- client acme/old`.
    /// Only fields the file sets appear, and start-only ones (secrets) never do.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Create { kind, tenant, id, .. } => write!(f, "+ {}", Action::label(kind, tenant, id)),
            Action::Update {
                kind,
                tenant,
                id,
                changes,
                ..
            } => {
                write!(f, "~ {}:", Action::label(kind, tenant, id))?;
                for (i, c) in changes.iter().enumerate() {
                    let sep = if i == 0 { " " } else { ", " };
                    write!(f, "{sep}{} {} -> {}", c.field, c.from, c.to)?;
                }
                Ok(())
            }
            Action::Delete { kind, tenant, id } => {
                write!(f, "- {}", Action::label(kind, tenant, id))
            }
        }
    }
}

/// What to do, in order (tenants before their clients), and what the file asks that this plan
/// cannot do (`notes`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    pub actions: Vec<Action>,
    pub notes: Vec<String>,
}

/// Compares the file with the server. Creates what is missing; for what exists, changes only
/// the fields the file sets and that differ; with `prune`, deletes the clients of a tenant whose
/// clients the file manages that the file no longer names. Tenants are never deleted (the admin
/// API disables them instead), and tenant `default` is never touched by pruning.
pub fn plan(desired: &Declared, current: &Current, prune: bool) -> Plan {
    let mut plan = Plan::default();
    for decl in &desired.tenants {
        let tid = &decl.tenant.id;
        for k in &decl.unmanaged {
            plan.notes.push(format!(
                "tenant {tid}: `{k}` is applied by sesamed at start, not by `sesame apply` yet"
            ));
        }
        match current.tenants.get(tid) {
            None => plan.actions.push(Action::Create {
                kind: TENANT.name,
                tenant: tid.clone(),
                id: tid.clone(),
                body: create_body(&TENANT, &decl.tenant, tid, &mut plan.notes),
            }),
            Some(now) => {
                diff(&TENANT, tid, &decl.tenant, now, &mut plan);
            }
        }
        // Trust policies before the clients that name them, and deleted after them.
        let policies = (&decl.trust_policies, current.trust_policies.get(tid));
        children_plan(
            &TRUST_POLICY,
            tid,
            policies.0,
            policies.1,
            Steps::Upsert,
            &mut plan,
        );
        let client_steps = if prune { Steps::Both } else { Steps::Upsert };
        children_plan(
            &CLIENT,
            tid,
            &decl.clients,
            current.clients.get(tid),
            client_steps,
            &mut plan,
        );
        if prune {
            children_plan(
                &TRUST_POLICY,
                tid,
                policies.0,
                policies.1,
                Steps::Prune,
                &mut plan,
            );
        }
    }
    plan
}

/// Which actions of a kind to plan: creations and changes, deletions (`--prune`), or both.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Steps {
    Upsert,
    Prune,
    Both,
}

/// One kind of a tenant's objects, when the file manages it (`Some`, even empty).
fn children_plan(
    kind: &Kind,
    tid: &str,
    desired: &Option<Vec<Object>>,
    existing: Option<&BTreeMap<String, Value>>,
    steps: Steps,
    plan: &mut Plan,
) {
    let Some(desired) = desired else {
        return;
    };
    for c in desired.iter().filter(|_| steps != Steps::Prune) {
        match existing.and_then(|e| e.get(&c.id)) {
            None => plan.actions.push(Action::Create {
                kind: kind.name,
                tenant: tid.to_owned(),
                id: c.id.clone(),
                body: create_body(kind, c, &format!("{tid}/{}", c.id), &mut plan.notes),
            }),
            Some(now) => diff(kind, tid, c, now, plan),
        }
    }
    if steps != Steps::Upsert {
        for id in existing.into_iter().flat_map(|e| e.keys()) {
            if !desired.iter().any(|c| &c.id == id) {
                plan.actions.push(Action::Delete {
                    kind: kind.name,
                    tenant: tid.to_owned(),
                    id: id.clone(),
                });
            }
        }
    }
}

fn field_use(kind: &Kind, name: &str) -> Use {
    kind.fields
        .iter()
        .find(|(n, _, _)| *n == name)
        .map_or(Use::StartOnly, |(_, _, u)| *u)
}

fn create_body(kind: &Kind, obj: &Object, label: &str, notes: &mut Vec<String>) -> Value {
    let mut body = Map::new();
    for (k, v) in &obj.fields {
        if field_use(kind, k) == Use::StartOnly {
            notes.push(start_only_note(kind, label, k));
        } else {
            body.insert(k.clone(), v.clone());
        }
    }
    Value::Object(body)
}

fn start_only_note(kind: &Kind, label: &str, field: &str) -> String {
    if field.starts_with("secret_") {
        format!(
            "{} {label}: `{field}` is read by sesamed at start only; the admin API generates the \
             secret of a client it creates (printed once)",
            kind.name
        )
    } else {
        format!(
            "{} {label}: `{field}` is applied by sesamed at start only",
            kind.name
        )
    }
}

fn diff(kind: &Kind, tenant: &str, want: &Object, now: &Value, plan: &mut Plan) {
    let label = if kind.name == TENANT.name {
        want.id.clone()
    } else {
        format!("{tenant}/{}", want.id)
    };
    let mut changes = Vec::new();
    for (k, v) in &want.fields {
        if k == kind.id_field {
            continue;
        }
        let have = now.get(k).cloned().unwrap_or(Value::Null);
        if same(&have, v) {
            continue;
        }
        match field_use(kind, k) {
            Use::Patch => changes.push(Change {
                field: k.clone(),
                from: have,
                to: v.clone(),
            }),
            Use::CreateOnly => plan.notes.push(format!(
                "{} {label}: `{k}` is {have} on the server and {v} in the file; it is set only \
                 when the {} is created",
                kind.name, kind.name
            )),
            Use::StartOnly => {}
        }
    }
    if !changes.is_empty() {
        plan.actions.push(Action::Update {
            kind: kind.name,
            tenant: tenant.to_owned(),
            id: want.id.clone(),
            changes,
            replace: kind.replace.then(|| Value::Object(want.fields.clone())),
        });
    }
}

/// Equal as the admin API means them: a JWKS given as JSON text matches the object rendered.
fn same(have: &Value, want: &Value) -> bool {
    if have == want {
        return true;
    }
    match (have, want) {
        (Value::Object(_), Value::String(text)) => {
            serde_json::from_str::<Value>(text).is_ok_and(|v| &v == have)
        }
        (Value::String(text), Value::Object(_)) => {
            serde_json::from_str::<Value>(text).is_ok_and(|v| &v == want)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const FILE: &str = r#"
listen = "127.0.0.1:8080"
[[tenants]]
id = "acme"
display_name = "Acme"
[[tenants.clients]]
client_id = "web"
redirect_uris = ["https://a.example/cb"]
secret_env = "WEB_SECRET"
[[tenants.clients]]
client_id = "cli"
client_type = "public"
"#;

    #[test]
    fn reads_the_tenants_and_ignores_server_settings() {
        let d = Declared::from_toml(FILE).unwrap();
        assert_eq!(d.tenants.len(), 1);
        let t = &d.tenants[0];
        assert_eq!(t.tenant.id, "acme");
        let clients = t.clients.as_ref().unwrap();
        assert_eq!(clients[0].id, "web");
        assert_eq!(
            clients[0].fields["redirect_uris"],
            json!(["https://a.example/cb"])
        );
    }

    #[test]
    fn errors_name_the_field() {
        let err = Declared::from_toml(
            "[[tenants]]\nid = \"a\"\n[[tenants.clients]]\nclient_id = \"c\"\nredirect_uris = [5]",
        )
        .unwrap_err();
        assert_eq!(
            err,
            "tenants[0].clients[0].redirect_uris[0]: expected a string, found integer"
        );
        let err = Declared::from_toml("[[tenants]]\nid = \"a\"\nnmae = \"x\"").unwrap_err();
        assert!(err.starts_with("tenants[0]: unknown field `nmae`"), "{err}");
        let err = Declared::from_toml("[[tenants]]\ndisplay_name = \"x\"").unwrap_err();
        assert_eq!(err, "tenants[0].id: missing (every tenant needs one)");
        let err = Declared::from_toml("[[tenants]]\nid = \"a\"\nsession_ttl = \"1h\"").unwrap_err();
        assert_eq!(err, "tenants[0].session_ttl: expected an integer, found string");
    }

    #[test]
    fn plans_creates_updates_and_prunes() {
        let d = Declared::from_toml(FILE).unwrap();
        let empty = plan(&d, &Current::default(), true);
        let shown: Vec<String> = empty.actions.iter().map(|a| a.to_string()).collect();
        assert_eq!(shown, ["+ tenant acme", "+ client acme/web", "+ client acme/cli"]);
        // The secret's source is never sent.
        let Action::Create { body, .. } = &empty.actions[1] else {
            panic!()
        };
        assert!(body.get("secret_env").is_none());
        assert!(empty.notes.iter().any(|n| n.contains("secret_env")));

        let mut current = Current::default();
        current
            .tenants
            .insert("acme".into(), json!({"id": "acme", "display_name": "Acme"}));
        let clients = current.clients.entry("acme".into()).or_default();
        clients.insert(
            "web".into(),
            json!({"client_id": "web", "redirect_uris": ["https://old.example/cb"], "name": "web"}),
        );
        clients.insert("cli".into(), json!({"client_id": "cli", "client_type": "public"}));
        clients.insert("old".into(), json!({"client_id": "old"}));
        let p = plan(&d, &current, false);
        let shown: Vec<String> = p.actions.iter().map(|a| a.to_string()).collect();
        assert_eq!(
            shown,
            [r#"~ client acme/web: redirect_uris ["https://old.example/cb"] -> ["https://a.example/cb"]"#]
        );
        let p = plan(&d, &current, true);
        assert_eq!(p.actions.last().unwrap().to_string(), "- client acme/old");
    }

    #[test]
    fn trust_policies_come_before_the_clients_that_name_them_and_go_after() {
        let file = r#"
[[tenants]]
id = "acme"
[[tenants.trust_policies]]
name = "k8s"
issuer = "https://k8s.example"
jwks_uri = "https://k8s.example/jwks"
audience = "https://id.example/t/acme"
max_age = 3600
assertion_reuse = true
identity = "k8s"
[[tenants.clients]]
client_id = "deployer"
trust_policy = "k8s"
"#;
        let d = Declared::from_toml(file).unwrap();
        let mut current = Current::default();
        current.tenants.insert("acme".into(), json!({"id": "acme"}));
        current
            .clients
            .entry("acme".into())
            .or_default()
            .insert("old".into(), json!({"client_id": "old", "trust_policy": "old"}));
        current
            .trust_policies
            .entry("acme".into())
            .or_default()
            .insert("old".into(), json!({"name": "old"}));
        let shown: Vec<String> = plan(&d, &current, true)
            .actions
            .iter()
            .map(|a| a.to_string())
            .collect();
        assert_eq!(
            shown,
            [
                "+ trust_policy acme/k8s",
                "+ client acme/deployer",
                "- client acme/old",
                "- trust_policy acme/old"
            ]
        );
    }

    #[test]
    fn clients_are_not_pruned_where_the_file_does_not_manage_them() {
        let d = Declared::from_toml("[[tenants]]\nid = \"default\"").unwrap();
        let mut current = Current::default();
        current.tenants.insert("default".into(), json!({"id": "default"}));
        current
            .clients
            .entry("default".into())
            .or_default()
            .insert("x".into(), json!({"client_id": "x"}));
        assert!(plan(&d, &current, true).actions.is_empty());
        // `clients = []` manages an empty list: the server's clients go with --prune.
        let d = Declared::from_toml("[[tenants]]\nid = \"default\"\nclients = []").unwrap();
        let shown: Vec<String> = plan(&d, &current, true)
            .actions
            .iter()
            .map(|a| a.to_string())
            .collect();
        assert_eq!(shown, ["- client default/x"]);
    }
}
