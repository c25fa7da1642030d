//! The declarative part of Sesame's config file — `[[tenants]]` with their workload settings,
//! `[[tenants.clients]]`, `[[tenants.trust_policies]]`, `[[tenants.sources]]` and
//! `[[tenants.sso]]` — and the plan that brings a server's state to it: what to create, what to
//! change (only the fields the file sets) and, when asked, what to delete.
//!
//! No HTTP and no SQL: the current state comes in as the admin API's JSON renderings
//! (docs/admin-api.md) and the plan comes out as [`Action`]s whose bodies are admin API request
//! bodies. `sesame apply` feeds it from GETs and executes it over HTTP; sesamed feeds it from the
//! same GETs on its own admin router at start and executes it there, so both apply a file alike.
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
    /// Read by `sesamed` at start only (a client's secret from a file or the environment,
    /// `disabled`); never sent, compared or printed by `sesame apply`.
    StartOnly,
    /// Where the kind's write-only secret comes from (`client_secret_file`, `…_env`): read on
    /// the machine that applies the file ([`Declared::resolve_secrets`]), sent as
    /// [`Kind::secret`], never printed.
    SecretSource,
    /// Sent, never rendered back (a SAML IdP's metadata XML): compared through what the server
    /// derived from it ([`Kind::write_only_matches`]), shown in a diff as `(changed)`.
    WriteOnly,
}

/// One kind of declared object.
pub struct Kind {
    /// As printed in the plan (`client`).
    pub name: &'static str,
    /// The sub-table of `[[tenants]]` that declares them (`clients`); empty for the tenant.
    pub table: &'static str,
    /// The admin API collection under `/tenants/{tenant}/` (`clients`).
    pub collection: &'static str,
    /// The key of the list in the collection's GET answer.
    pub list_key: &'static str,
    /// The field that names an object within its tenant (or among tenants).
    pub id_field: &'static str,
    pub fields: &'static [(&'static str, Type, Use)],
    /// Changed by replacing it whole (PUT of the file's object) rather than by a PATCH of the
    /// fields that differ.
    pub replace: bool,
    /// A write-only secret: (the field sent, the rendering's flag that says one is set).
    pub secret: Option<(&'static str, &'static str)>,
    /// Created by a PUT to its id (the file names it) rather than a POST to the collection.
    pub put_creates: bool,
}

pub const TENANT: Kind = Kind {
    name: "tenant",
    table: "",
    collection: "",
    list_key: "tenants",
    id_field: "id",
    fields: &[
        ("id", Type::Str, Use::CreateOnly),
        ("display_name", Type::Str, Use::Patch),
        ("logo_url", Type::Str, Use::Patch),
        ("session_ttl", Type::Int, Use::Patch),
        ("refresh_token_ttl", Type::Int, Use::Patch),
        ("signing_alg", Type::Str, Use::CreateOnly),
        ("access_token_ttl", Type::Int, Use::CreateOnly),
        // The tenant's workload settings ([`WORKLOAD`]), a resource of their own in the API.
        ("workload_issuer", Type::Str, Use::Patch),
        ("session_max_ttl", Type::Int, Use::Patch),
    ],
    replace: false,
    secret: None,
    put_creates: false,
};

/// A tenant's workload settings (`GET/PATCH /tenants/{t}/workload`), declared as fields of the
/// `[[tenants]]` table; one per tenant, its id the tenant's.
pub const WORKLOAD: Kind = Kind {
    name: "workload",
    table: "",
    collection: "workload",
    list_key: "",
    id_field: "",
    fields: &[
        ("workload_issuer", Type::Str, Use::Patch),
        ("session_max_ttl", Type::Int, Use::Patch),
    ],
    replace: false,
    secret: None,
    put_creates: false,
};

pub const CLIENT: Kind = Kind {
    name: "client",
    table: "clients",
    collection: "clients",
    list_key: "clients",
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
    secret: None,
    put_creates: false,
};

/// `[[tenants.trust_policies]]` (token exchange), replaced whole when it differs.
pub const TRUST_POLICY: Kind = Kind {
    name: "trust_policy",
    table: "trust_policies",
    collection: "trust-policies",
    list_key: "trust_policies",
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
    secret: None,
    put_creates: false,
};

/// `[[tenants.sources]]` (workload identity), each with its own `id` (a UUID) so that applying
/// the file again finds it; replaced whole (`PUT`, same id) when it differs.
pub const SOURCE: Kind = Kind {
    name: "source",
    table: "sources",
    collection: "sources",
    list_key: "sources",
    id_field: "id",
    fields: &[
        ("id", Type::Str, Use::Patch),
        ("name", Type::Str, Use::Patch),
        ("client_id", Type::Str, Use::Patch),
        ("audiences", Type::StrList, Use::Patch),
        ("scopes", Type::StrList, Use::Patch),
        ("token_ttl", Type::Int, Use::Patch),
    ],
    replace: true,
    secret: None,
    put_creates: true,
};

/// `[[tenants.sso]]`: brokered OIDC and SAML connections.
pub const SSO: Kind = Kind {
    name: "sso",
    table: "sso",
    collection: "sso",
    list_key: "connections",
    id_field: "id",
    fields: &[
        ("id", Type::Str, Use::CreateOnly),
        ("kind", Type::Str, Use::CreateOnly),
        ("display_name", Type::Str, Use::Patch),
        ("button_text", Type::Str, Use::Patch),
        ("button_image_url", Type::Str, Use::Patch),
        ("enabled", Type::Bool, Use::Patch),
        ("email_domains", Type::StrList, Use::Patch),
        ("trusted_email", Type::Bool, Use::Patch),
        ("admin_groups", Type::StrList, Use::Patch),
        ("email_claim", Type::Str, Use::Patch),
        ("unique_id_claim", Type::Str, Use::Patch),
        ("display_name_claim", Type::Str, Use::Patch),
        ("groups_claim", Type::Str, Use::Patch),
        ("issuer", Type::Str, Use::Patch),
        ("discovery", Type::Bool, Use::Patch),
        ("authorization_endpoint", Type::Str, Use::Patch),
        ("token_endpoint", Type::Str, Use::Patch),
        ("userinfo_endpoint", Type::Str, Use::Patch),
        ("jwks_uri", Type::Str, Use::Patch),
        ("client_id", Type::Str, Use::Patch),
        ("client_secret_file", Type::Str, Use::SecretSource),
        ("client_secret_env", Type::Str, Use::SecretSource),
        ("client_auth", Type::Str, Use::Patch),
        ("scopes", Type::StrList, Use::Patch),
        ("userinfo", Type::Bool, Use::Patch),
        ("recheck_on_refresh", Type::Bool, Use::Patch),
        ("idp_metadata_xml", Type::Str, Use::WriteOnly),
        ("idp_metadata_url", Type::Str, Use::Patch),
        ("idp_entity_id", Type::Str, Use::Patch),
        ("sso_url", Type::Str, Use::Patch),
        ("sso_binding", Type::Str, Use::Patch),
        ("idp_certificates", Type::StrList, Use::Patch),
    ],
    replace: false,
    secret: Some(("client_secret", "client_secret_set")),
    put_creates: false,
};

/// The sub-tables of a tenant, in the order they are applied: a client may name a trust policy
/// and a source names a client, so each comes after what it names (an SSO connection names
/// nothing). Pruning deletes in the reverse order, so nothing is deleted while named.
pub const CHILD_KINDS: [&Kind; 4] = [&TRUST_POLICY, &CLIENT, &SOURCE, &SSO];

fn kind_named(name: &str) -> Option<&'static Kind> {
    [&TENANT, &WORKLOAD, &CLIENT, &TRUST_POLICY, &SOURCE, &SSO]
        .into_iter()
        .find(|k| k.name == name)
}

/// A secret read for sending: never shown by `Debug` or `Display`.
#[derive(Clone, PartialEq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// One declared object: its id and the fields the file sets (JSON, as the admin API takes them).
#[derive(Clone, Debug, PartialEq)]
pub struct Object {
    pub id: String,
    pub fields: Map<String, Value>,
    /// The kind's write-only secret ([`Kind::secret`]), once read by [`Declared::resolve_secrets`]
    /// (or given inline, which only sesamed's own file may do).
    pub secret: Option<Secret>,
}

/// One `[[tenants]]` entry.
#[derive(Clone, Debug, PartialEq)]
pub struct TenantDecl {
    pub tenant: Object,
    /// `workload_issuer` / `session_max_ttl`, when the file sets either.
    pub workload: Option<Object>,
    /// Sub-table name (`clients`) → its objects. A kind absent here is not managed (not even
    /// `clients = []` in the file), and `--prune` leaves it alone.
    pub children: BTreeMap<&'static str, Vec<Object>>,
}

impl TenantDecl {
    pub fn of(&self, kind: &Kind) -> Option<&Vec<Object>> {
        self.children.get(kind.table)
    }
}

/// The declarative part of a config file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Declared {
    pub tenants: Vec<TenantDecl>,
}

/// The JSON type names the file's (TOML's) errors use.
fn type_str(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "table",
    }
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
        let tenants: Vec<Value> = tenants
            .iter()
            .map(|t| serde_json::to_value(t).map_err(|e| format!("tenants: {e}")))
            .collect::<Result<_, _>>()?;
        Declared::from_json(&tenants)
    }

    /// The same from the `tenants` array as JSON (sesamed keeps each `[[tenants]]` table as the
    /// file wrote it, whatever the source: file, environment or a test's JSON).
    pub fn from_json(tenants: &[Value]) -> Result<Declared, String> {
        let mut out = Declared::default();
        for (i, t) in tenants.iter().enumerate() {
            let at = format!("tenants[{i}]");
            let table = t.as_object().ok_or_else(|| format!("{at}: expected a table"))?;
            let mut own = Map::new();
            let mut children = BTreeMap::new();
            for (k, v) in table {
                if let Some(kind) = CHILD_KINDS.iter().find(|c| c.table == k.as_str()) {
                    children.insert(kind.table, objects(kind, v, &format!("{at}.{k}"))?);
                } else {
                    own.insert(k.clone(), v.clone());
                }
            }
            let mut tenant = object(&TENANT, &own, &at)?;
            if out.tenants.iter().any(|t| t.tenant.id == tenant.id) {
                return Err(format!("{at}.id: tenant '{}' is declared twice", tenant.id));
            }
            let mut workload = Map::new();
            for (f, _, _) in WORKLOAD.fields {
                if let Some(v) = tenant.fields.remove(*f) {
                    workload.insert((*f).to_owned(), v);
                }
            }
            out.tenants.push(TenantDecl {
                workload: (!workload.is_empty()).then(|| Object {
                    id: tenant.id.clone(),
                    fields: workload,
                    secret: None,
                }),
                tenant,
                children,
            });
        }
        Ok(out)
    }

    /// Reads each write-only secret from where the file says it is (`client_secret_file`, a
    /// file on this machine; `client_secret_env`, this process's environment). Errors name the
    /// tenant, the object and the field, never a secret.
    pub fn resolve_secrets(&mut self) -> Result<(), String> {
        for t in &mut self.tenants {
            let tid = t.tenant.id.clone();
            for kind in CHILD_KINDS {
                let Some((secret_field, _)) = kind.secret else {
                    continue;
                };
                for obj in t.children.get_mut(kind.table).into_iter().flatten() {
                    let at = format!("tenant '{tid}' {} '{}'", kind.name, obj.id);
                    let file = obj
                        .fields
                        .get(&format!("{secret_field}_file"))
                        .and_then(Value::as_str);
                    let env = obj
                        .fields
                        .get(&format!("{secret_field}_env"))
                        .and_then(Value::as_str);
                    let value = match (file, env) {
                        (Some(_), Some(_)) => {
                            return Err(format!(
                                "{at}: give {secret_field}_file or {secret_field}_env, not both"
                            ))
                        }
                        (Some(path), None) => {
                            let text = std::fs::read_to_string(path)
                                .map_err(|e| format!("{at}: {secret_field}_file: cannot read {path}: {e}"))?;
                            text.trim_end_matches(['\n', '\r']).to_owned()
                        }
                        (None, Some(var)) => std::env::var(var).map_err(|_| {
                            format!("{at}: {secret_field}_env: environment variable {var} is not set")
                        })?,
                        (None, None) => continue,
                    };
                    if value.is_empty() {
                        let field = if file.is_some() { "file" } else { "env" };
                        return Err(format!("{at}: {secret_field}_{field}: the secret is empty"));
                    }
                    obj.secret = Some(Secret(value));
                }
            }
        }
        Ok(())
    }
}

/// An array of tables of one kind, each id once.
fn objects(kind: &Kind, value: &Value, at: &str) -> Result<Vec<Object>, String> {
    let list = value
        .as_array()
        .ok_or_else(|| format!("{at}: expected an array of tables"))?;
    let mut objs: Vec<Object> = Vec::new();
    for (j, c) in list.iter().enumerate() {
        let at = format!("{at}[{j}]");
        let c = c.as_object().ok_or_else(|| format!("{at}: expected a table"))?;
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

/// Checks one table against its kind: known fields, right types, the id present. An inline
/// secret (sesamed's own file may hold one) is kept aside, never among the fields.
fn object(kind: &Kind, table: &Map<String, Value>, at: &str) -> Result<Object, String> {
    let mut fields = Map::new();
    let mut secret = None;
    for (k, v) in table {
        if kind.secret.is_some_and(|(f, _)| f == k) {
            match v {
                Value::String(s) => secret = Some(Secret(s.clone())),
                v => return Err(format!("{at}.{k}: expected a string, found {}", type_str(v))),
            }
            continue;
        }
        let Some(&(_, ty, _)) = kind.fields.iter().find(|(n, _, _)| n == k) else {
            let known: Vec<&str> = kind.fields.iter().map(|(n, _, _)| *n).collect();
            return Err(format!(
                "{at}: unknown field `{k}`, expected one of {}",
                known.join(", ")
            ));
        };
        let ok = match (ty, v) {
            (Type::Str, Value::String(_)) | (Type::Bool, Value::Bool(_)) | (Type::Json, _) => true,
            (Type::Int, Value::Number(n)) => n.is_i64(),
            (Type::StrList, Value::Array(items)) => {
                if let Some((n, item)) = items.iter().enumerate().find(|(_, i)| !i.is_string()) {
                    return Err(format!(
                        "{at}.{k}[{n}]: expected a string, found {}",
                        type_str(item)
                    ));
                }
                true
            }
            _ => false,
        };
        if !ok {
            return Err(format!("{at}.{k}: expected {}, found {}", ty.name(), type_str(v)));
        }
        fields.insert(k.clone(), v.clone());
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
    Ok(Object { id, fields, secret })
}

/// The server's state for the tenants in the file, as the admin API renders it.
#[derive(Clone, Debug, Default)]
pub struct Current {
    /// Tenant id → `Tenant`.
    pub tenants: BTreeMap<String, Value>,
    /// Tenant id → its workload settings.
    pub workload: BTreeMap<String, Value>,
    /// Kind name → tenant id → object id → rendering (for the tenants that exist and the kinds
    /// the file manages). A reader that can tell whether a write-only secret is the file's (sesamed
    /// at start, which holds the master key) adds `"{secret}_same": bool` to the rendering.
    pub objects: BTreeMap<&'static str, BTreeMap<String, BTreeMap<String, Value>>>,
}

impl Current {
    pub fn insert(&mut self, kind: &Kind, tenant: &str, id: &str, rendering: Value) {
        self.objects
            .entry(kind.name)
            .or_default()
            .entry(tenant.to_owned())
            .or_default()
            .insert(id.to_owned(), rendering);
    }

    pub fn of(&self, kind: &Kind, tenant: &str) -> Option<&BTreeMap<String, Value>> {
        self.objects.get(kind.name)?.get(tenant)
    }

    /// Adds a collection's GET answer (`{"clients": [...]}`) for a tenant.
    pub fn insert_listed(&mut self, kind: &Kind, tenant: &str, listed: &Value) {
        self.objects
            .entry(kind.name)
            .or_default()
            .entry(tenant.to_owned())
            .or_default();
        for o in listed[kind.list_key].as_array().into_iter().flatten() {
            if let Some(id) = o[kind.id_field].as_str() {
                self.insert(kind, tenant, id, o.clone());
            }
        }
    }
}

/// One field that differs: the server's value and the file's. A write-only field's values
/// (a secret, metadata XML) are shown as `(set)`, `(unset)`, `(changed)`, never themselves.
#[derive(Clone, PartialEq)]
pub struct Change {
    pub field: String,
    pub from: Value,
    pub to: Value,
}

impl fmt::Debug for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Change({self})")
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} -> {}", self.field, self.from, self.to)
    }
}

/// One step of a plan.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Create `id` (within `tenant` for a tenant's object) with the admin API body `body`
    /// (plus `secret`, see [`Action::body`]).
    Create {
        kind: &'static str,
        tenant: String,
        id: String,
        body: Value,
        secret: Option<Secret>,
    },
    /// Change these fields: a PATCH of the `to` of each, or, for a kind replaced whole, a PUT
    /// of `replace` (the file's object).
    Update {
        kind: &'static str,
        tenant: String,
        id: String,
        changes: Vec<Change>,
        replace: Option<Value>,
        /// Also send the write-only secret, which is not among `changes`' values.
        secret: Option<Secret>,
        /// Write-only fields to send (their `changes` show only `(changed)`).
        write_only: Map<String, Value>,
    },
    Delete {
        kind: &'static str,
        tenant: String,
        id: String,
    },
}

impl Action {
    /// The PATCH body of an update's visible changes.
    pub fn patch_body(changes: &[Change]) -> Value {
        Value::Object(changes.iter().map(|c| (c.field.clone(), c.to.clone())).collect())
    }

    /// The request body to send: the create body, the PUT of the whole object or the PATCH of
    /// the changes, with the secret and write-only fields that the plan shows only as marks.
    pub fn body(&self) -> Option<Value> {
        let (mut body, secret, kind) = match self {
            Action::Create {
                body, secret, kind, ..
            } => (body.clone(), secret, *kind),
            Action::Update {
                changes,
                replace,
                secret,
                write_only,
                kind,
                ..
            } => {
                let mut b = match replace {
                    Some(whole) => whole.clone(),
                    None => Value::Object(
                        changes
                            .iter()
                            .filter(|c| !write_only.contains_key(&c.field) && !is_secret(kind, &c.field))
                            .map(|c| (c.field.clone(), c.to.clone()))
                            .collect(),
                    ),
                };
                if let Some(m) = b.as_object_mut() {
                    m.extend(write_only.clone());
                }
                (b, secret, *kind)
            }
            Action::Delete { .. } => return None,
        };
        if let (Some(s), Some((field, _))) = (secret, kind_named(kind).and_then(|k| k.secret)) {
            if let Some(m) = body.as_object_mut() {
                m.insert(field.to_owned(), Value::String(s.0.clone()));
            }
        }
        Some(body)
    }

    /// The admin API request that carries out this step: method, path segments under
    /// `/admin/v1`, body. `None` for what the admin API does not do (deleting a tenant).
    pub fn request(&self) -> Option<(&'static str, Vec<String>, Option<Value>)> {
        let (kind, tenant, id) = match self {
            Action::Create { kind, tenant, id, .. }
            | Action::Update { kind, tenant, id, .. }
            | Action::Delete { kind, tenant, id } => (kind_named(kind)?, tenant, id),
        };
        let t = |rest: &[&str]| -> Vec<String> {
            ["tenants", tenant.as_str()]
                .iter()
                .chain(rest)
                .map(|s| (*s).to_owned())
                .collect()
        };
        Some(match (self, kind.name) {
            (Action::Create { .. }, "tenant") => ("POST", vec!["tenants".into()], self.body()),
            (Action::Update { .. }, "tenant") => ("PATCH", t(&[]), self.body()),
            (Action::Delete { .. }, "tenant" | "workload") => return None,
            (_, "workload") => ("PATCH", t(&[kind.collection]), self.body()),
            (Action::Create { .. }, _) if kind.put_creates => {
                ("PUT", t(&[kind.collection, id.as_str()]), self.body())
            }
            (Action::Create { .. }, _) => ("POST", t(&[kind.collection]), self.body()),
            (Action::Update { replace, .. }, _) => {
                let method = if replace.is_some() { "PUT" } else { "PATCH" };
                (method, t(&[kind.collection, id.as_str()]), self.body())
            }
            (Action::Delete { .. }, _) => ("DELETE", t(&[kind.collection, id.as_str()]), None),
        })
    }

    fn label(kind: &str, tenant: &str, id: &str) -> String {
        if kind == TENANT.name || kind == WORKLOAD.name {
            format!("{kind} {id}")
        } else {
            format!("{kind} {tenant}/{id}")
        }
    }
}

fn is_secret(kind: &str, field: &str) -> bool {
    kind_named(kind)
        .and_then(|k| k.secret)
        .is_some_and(|(f, _)| f == field)
}

impl fmt::Display for Action {
    /// `+ client acme/web`, `~ client acme/web: redirect_uris [..] -> [..]`, `- client acme/old`.
    /// Only fields the file sets appear; secrets and start-only sources never do.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Create {
                kind,
                tenant,
                id,
                secret,
                ..
            } => {
                write!(f, "+ {}", Action::label(kind, tenant, id))?;
                if let (Some(_), Some((field, _))) = (secret, kind_named(kind).and_then(|k| k.secret)) {
                    write!(f, " ({field}: (set))")?;
                }
                Ok(())
            }
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
                    write!(f, "{sep}{c}")?;
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

/// How to plan.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// Delete the objects of a kind the file manages that the file no longer names.
    pub prune: bool,
    /// Send the file's write-only secrets again even where the server has one and cannot say
    /// whether it is the same (`sesame apply --send-secrets`, to rotate one).
    pub send_secrets: bool,
}

/// Compares the file with the server. Creates what is missing; for what exists, changes only
/// the fields the file sets and that differ; with `prune`, deletes the objects of a tenant's
/// kinds that the file manages and no longer names. Tenants are never deleted (the admin API
/// disables them instead), and tenant `default` is never touched by pruning.
pub fn plan(desired: &Declared, current: &Current, prune: bool) -> Plan {
    plan_with(
        desired,
        current,
        Options {
            prune,
            send_secrets: false,
        },
    )
}

pub fn plan_with(desired: &Declared, current: &Current, opts: Options) -> Plan {
    let mut plan = Plan::default();
    for decl in &desired.tenants {
        let tid = &decl.tenant.id;
        match current.tenants.get(tid) {
            None => plan.actions.push(Action::Create {
                kind: TENANT.name,
                tenant: tid.clone(),
                id: tid.clone(),
                body: create_body(&TENANT, &decl.tenant, tid, &mut plan.notes),
                secret: None,
            }),
            Some(now) => diff(&TENANT, tid, &decl.tenant, now, opts, &mut plan),
        }
        if let Some(w) = &decl.workload {
            // A new tenant has the default settings: the file's are a change from them.
            let now = current.workload.get(tid).cloned().unwrap_or(Value::Null);
            diff(&WORKLOAD, tid, w, &now, opts, &mut plan);
        }
        for kind in CHILD_KINDS {
            children_plan(kind, tid, decl.of(kind), current.of(kind, tid), opts, &mut plan);
        }
        if opts.prune {
            for kind in CHILD_KINDS.iter().rev() {
                let (Some(desired), Some(existing)) = (decl.of(kind), current.of(kind, tid)) else {
                    continue;
                };
                for id in existing.keys() {
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
    }
    plan
}

/// One kind of a tenant's objects, when the file manages it.
fn children_plan(
    kind: &Kind,
    tid: &str,
    desired: Option<&Vec<Object>>,
    existing: Option<&BTreeMap<String, Value>>,
    opts: Options,
    plan: &mut Plan,
) {
    for c in desired.into_iter().flatten() {
        match existing.and_then(|e| e.get(&c.id)) {
            None => plan.actions.push(Action::Create {
                kind: kind.name,
                tenant: tid.to_owned(),
                id: c.id.clone(),
                body: create_body(kind, c, &format!("{tid}/{}", c.id), &mut plan.notes),
                secret: c.secret.clone(),
            }),
            Some(now) => diff(kind, tid, c, now, opts, plan),
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
        match field_use(kind, k) {
            Use::StartOnly => notes.push(start_only_note(kind, label, k)),
            Use::SecretSource => {}
            _ => {
                body.insert(k.clone(), v.clone());
            }
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

fn diff(kind: &Kind, tenant: &str, want: &Object, now: &Value, opts: Options, plan: &mut Plan) {
    let label = if kind.name == TENANT.name || kind.name == WORKLOAD.name {
        want.id.clone()
    } else {
        format!("{tenant}/{}", want.id)
    };
    let mut changes = Vec::new();
    let mut write_only = Map::new();
    for (k, v) in &want.fields {
        if k == kind.id_field {
            continue;
        }
        let have = now.get(k).cloned().unwrap_or(Value::Null);
        match field_use(kind, k) {
            Use::Patch if !same(&have, v) => changes.push(Change {
                field: k.clone(),
                from: have,
                to: v.clone(),
            }),
            Use::CreateOnly if !same(&have, v) => plan.notes.push(format!(
                "{} {label}: `{k}` is {have} on the server and {v} in the file; it is set only \
                 when the {} is created",
                kind.name, kind.name
            )),
            Use::WriteOnly if !write_only_matches(k, v, now) => {
                changes.push(Change {
                    field: k.clone(),
                    from: Value::String("(other)".into()),
                    to: Value::String("(changed)".into()),
                });
                write_only.insert(k.clone(), v.clone());
            }
            _ => {}
        }
    }
    let mut secret = None;
    if let (Some(s), Some((field, set_flag))) = (&want.secret, kind.secret) {
        let is_set = now.get(set_flag) == Some(&Value::Bool(true));
        match now.get(format!("{field}_same")).and_then(Value::as_bool) {
            _ if !is_set => {
                changes.push(secret_change(field, "(unset)", "(set)"));
                secret = Some(s.clone());
            }
            Some(false) => {
                changes.push(secret_change(field, "(set)", "(changed)"));
                secret = Some(s.clone());
            }
            Some(true) => {}
            None if opts.send_secrets => {
                changes.push(secret_change(field, "(set)", "(sent again)"));
                secret = Some(s.clone());
            }
            None => plan.notes.push(format!(
                "{} {label}: {field}: (set) on the server, which never shows it, so it is not \
                 compared or sent again; `--send-secrets` sends the file's",
                kind.name
            )),
        }
    }
    if !changes.is_empty() {
        plan.actions.push(Action::Update {
            kind: kind.name,
            tenant: tenant.to_owned(),
            id: want.id.clone(),
            changes,
            replace: kind.replace.then(|| Value::Object(want.fields.clone())),
            secret,
            write_only,
        });
    }
}

fn secret_change(field: &str, from: &str, to: &str) -> Change {
    Change {
        field: field.to_owned(),
        from: Value::String(from.into()),
        to: Value::String(to.into()),
    }
}

/// Whether the server's rendering came from this write-only value. For a SAML IdP's metadata
/// (`idp_metadata_xml`), the server keeps what it read from it — the entity id, the SSO URL and
/// the signing certificates — so the XML matches when it holds each of them.
pub fn write_only_matches(field: &str, want: &Value, now: &Value) -> bool {
    let (Some(xml), "idp_metadata_xml") = (want.as_str(), field) else {
        return false;
    };
    let compact: String = xml.chars().filter(|c| !c.is_whitespace()).collect();
    let has = |v: &Value| {
        v.as_str().is_some_and(|s| {
            let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
            compact.contains(&s) || compact.contains(&s.replace('&', "&amp;"))
        })
    };
    let certs = now["idp_certificates"].as_array();
    has(&now["idp_entity_id"])
        && has(&now["sso_url"])
        && certs.is_some_and(|c| !c.is_empty() && c.iter().all(has))
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
        let clients = t.of(&CLIENT).unwrap();
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
        current.insert(
            &CLIENT,
            "acme",
            "web",
            json!({"client_id": "web", "redirect_uris": ["https://old.example/cb"], "name": "web"}),
        );
        current.insert(
            &CLIENT,
            "acme",
            "cli",
            json!({"client_id": "cli", "client_type": "public"}),
        );
        current.insert(&CLIENT, "acme", "old", json!({"client_id": "old"}));
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
        current.insert(
            &CLIENT,
            "acme",
            "old",
            json!({"client_id": "old", "trust_policy": "old"}),
        );
        current.insert(&TRUST_POLICY, "acme", "old", json!({"name": "old"}));
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
        current.insert(&CLIENT, "default", "x", json!({"client_id": "x"}));
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

    const SSO_FILE: &str = r#"
[[tenants]]
id = "acme"
workload_issuer = "https://static.example"
[[tenants.sso]]
id = "corp"
issuer = "https://idp.example"
client_id = "sesame"
client_secret = "hush-hush"
[[tenants.sources]]
id = "7f3b8e21-4d9a-4c2e-9b7d-8a5f3c9e0b4f"
name = "sync"
client_id = "sync"
audiences = ["https://a.example"]
"#;

    #[test]
    fn a_secret_is_sent_but_never_shown() {
        let d = Declared::from_toml(SSO_FILE).unwrap();
        let p = plan(&d, &Current::default(), false);
        let shown: Vec<String> = p.actions.iter().map(|a| a.to_string()).collect();
        assert_eq!(
            shown,
            [
                "+ tenant acme",
                r#"~ workload acme: workload_issuer null -> "https://static.example""#,
                "+ source acme/7f3b8e21-4d9a-4c2e-9b7d-8a5f3c9e0b4f",
                "+ sso acme/corp (client_secret: (set))",
            ]
        );
        assert!(!format!("{p:?}").contains("hush-hush"));
        let (method, path, body) = p.actions[3].request().unwrap();
        assert_eq!((method, path.join("/").as_str()), ("POST", "tenants/acme/sso"));
        assert_eq!(body.unwrap()["client_secret"], "hush-hush");
        // A source is created at its own id.
        let (method, path, _) = p.actions[2].request().unwrap();
        assert_eq!(method, "PUT");
        assert_eq!(path.last().unwrap(), "7f3b8e21-4d9a-4c2e-9b7d-8a5f3c9e0b4f");
        let (method, path, body) = p.actions[1].request().unwrap();
        assert_eq!(
            (method, path.join("/").as_str()),
            ("PATCH", "tenants/acme/workload")
        );
        assert_eq!(
            body.unwrap(),
            json!({"workload_issuer": "https://static.example"})
        );

        // Set on the server: not sent again unless asked, or unless the reader knows it differs.
        let mut current = Current::default();
        current.tenants.insert("acme".into(), json!({"id": "acme"}));
        current.workload.insert(
            "acme".into(),
            json!({"workload_issuer": "https://static.example"}),
        );
        let corp = json!({"id": "corp", "issuer": "https://idp.example", "client_id": "sesame",
                          "client_secret_set": true});
        current.insert(&SSO, "acme", "corp", corp.clone());
        current.insert(
            &SOURCE,
            "acme",
            "7f3b8e21-4d9a-4c2e-9b7d-8a5f3c9e0b4f",
            json!({"name": "sync", "client_id": "sync", "audiences": ["https://a.example"]}),
        );
        let p = plan(&d, &current, false);
        assert!(p.actions.is_empty(), "{:?}", p.actions);
        assert!(
            p.notes.iter().any(|n| n.contains("client_secret: (set)")),
            "{:?}",
            p.notes
        );
        let opts = Options {
            prune: false,
            send_secrets: true,
        };
        let p = plan_with(&d, &current, opts);
        assert_eq!(
            p.actions[0].to_string(),
            r#"~ sso acme/corp: client_secret "(set)" -> "(sent again)""#
        );
        assert_eq!(
            p.actions[0].body().unwrap(),
            json!({"client_secret": "hush-hush"})
        );
        let mut known = corp;
        known["client_secret_same"] = json!(true);
        current.insert(&SSO, "acme", "corp", known);
        assert!(plan_with(&d, &current, opts).actions.is_empty());
    }

    #[test]
    fn saml_metadata_matches_what_the_server_read_from_it() {
        let xml = "<EntityDescriptor entityID=\"https://idp\"><X509Certificate>\n  MIIB\n  AAA=\n\
                   </X509Certificate><SingleSignOnService Location=\"https://idp/sso?a=1&amp;b=2\"/>";
        let now = json!({"idp_entity_id": "https://idp", "sso_url": "https://idp/sso?a=1&b=2",
                         "idp_certificates": ["MIIBAAA="]});
        assert!(write_only_matches("idp_metadata_xml", &json!(xml), &now));
        let rotated = json!({"idp_entity_id": "https://idp", "sso_url": "https://idp/sso?a=1&b=2",
                             "idp_certificates": ["MIIBBBB="]});
        assert!(!write_only_matches("idp_metadata_xml", &json!(xml), &rotated));
    }

    #[test]
    fn prune_deletes_sources_and_connections_the_file_dropped() {
        let d = Declared::from_toml("[[tenants]]\nid = \"acme\"\nsources = []\nsso = []").unwrap();
        let mut current = Current::default();
        current.tenants.insert("acme".into(), json!({"id": "acme"}));
        current.insert(&SOURCE, "acme", "s1", json!({"id": "s1"}));
        current.insert(&SSO, "acme", "corp", json!({"id": "corp"}));
        current.insert(&CLIENT, "acme", "web", json!({"client_id": "web"}));
        let shown: Vec<String> = plan(&d, &current, true)
            .actions
            .iter()
            .map(|a| a.to_string())
            .collect();
        assert_eq!(shown, ["- sso acme/corp", "- source acme/s1"]);
    }
}
