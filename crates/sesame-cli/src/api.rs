//! Turns a parsed admin command into the admin-API request it stands for (docs/admin-api.md),
//! without any I/O but reading a JWKS file a flag names, so the mapping is tested without a
//! server.

use crate::cli::{
    AdminCommand, ClientCreate, ClientRef, ClientUpdate, ClientsCommand, DelegatedSessionsCommand,
    KeysCommand, SourcesCommand, SsoCommand, SsoCreate, SsoRef, TenantCreate, TenantUpdate, TenantsCommand,
    TrustPoliciesCommand, TrustPolicyCreate, UserCreate, UserRef, UserUpdate, UsersCommand,
    WorkloadIssuerCommand,
};
use crate::Failure;
use serde_json::{json, Map, Value};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
    Patch,
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
    User,
    Users {
        tenant: String,
    },
    Sessions {
        user: String,
    },
    /// A 204 from ending one session.
    SessionRevoked {
        user: String,
        session: String,
    },
    TrustPolicy,
    TrustPolicies {
        tenant: String,
    },
    /// A 204 from deleting a trust policy.
    TrustPolicyDeleted {
        tenant: String,
        name: String,
    },
    /// `{"deleted": n}`.
    SessionsRevoked {
        user: String,
    },
    Consents {
        user: String,
    },
    /// `{"client_id", "consent_deleted", "refresh_tokens_revoked"}`.
    ConsentRevoked {
        user: String,
    },
    /// The answer as indented JSON (sources, workload settings and documents, delegated sessions).
    Document,
    /// A 204, and what to say about it.
    Done(String),
    /// A brokered-SSO connection.
    Sso,
    SsoList {
        tenant: String,
    },
    SsoDeleted {
        tenant: String,
        connection: String,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    pub method: Method,
    /// Below `/admin/v1`; each one is percent-encoded on its own.
    pub path: Vec<String>,
    pub body: Option<Value>,
    pub shape: Shape,
    /// A password to add to `body` as `"password"`. It is read (by `password`) only once the
    /// rest of the command and the admin token have been checked, so nobody types a password
    /// for a command that fails anyway.
    pub password: Option<PasswordInput>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasswordInput {
    /// `--password-stdin`: the first line of stdin; otherwise a prompt when stdin is a terminal.
    pub from_stdin: bool,
    /// `set-password` cannot do without one; `create` can (`--no-password`, or an empty answer
    /// at the prompt), but only when asked.
    pub required: bool,
    /// Whose password it is, for the prompt.
    pub user: String,
}

impl Request {
    pub fn with_password(mut self, password: String) -> Self {
        match &mut self.body {
            Some(Value::Object(body)) => {
                body.insert("password".into(), Value::String(password));
            }
            body => *body = Some(json!({ "password": password })),
        }
        self.password = None;
        self
    }
}

pub fn plan(command: &AdminCommand) -> Result<Request, Failure> {
    match command {
        AdminCommand::Tenants(c) => plan_tenants(c),
        AdminCommand::Clients(c) => plan_clients(c),
        AdminCommand::Keys(c) => plan_keys(c),
        AdminCommand::Users(c) => plan_users(c),
        AdminCommand::TrustPolicies(c) => plan_trust_policies(c),
        AdminCommand::Sources(c) => plan_sources(c),
        AdminCommand::WorkloadIssuer(c) => plan_workload_issuer(c),
        AdminCommand::DelegatedSessions(c) => plan_delegated_sessions(c),
        AdminCommand::Sso(c) => plan_sso(c),
        AdminCommand::Teams(c) => crate::authz::plan_teams(c),
        AdminCommand::Resources(c) => crate::authz::plan_resources(c),
        // Pages and a follow loop rather than one request: see `audit.rs`.
        AdminCommand::Audit(_) => Err(Failure("the audit log is read by `audit::run`".into())),
    }
}

fn read_json_file(what: &str, path: &std::path::Path) -> Result<Value, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure(format!("cannot read {what} {}: {e}", path.display())))?;
    serde_json::from_str(&text).map_err(|e| Failure(format!("{what} {} is not JSON: {e}", path.display())))
}

fn plan_trust_policies(command: &TrustPoliciesCommand) -> Result<Request, Failure> {
    let path = |tenant: &str| -> Result<Vec<String>, Failure> {
        Ok(vec![
            "tenants".into(),
            segment("tenant", tenant)?,
            "trust-policies".into(),
        ])
    };
    Ok(match command {
        TrustPoliciesCommand::Create(c) => Request {
            method: Method::Post,
            path: path(&c.tenant.tenant)?,
            body: Some(trust_policy_body(c)?),
            shape: Shape::TrustPolicy,
            password: None,
        },
        TrustPoliciesCommand::List(t) => get(
            path(&t.tenant)?,
            Shape::TrustPolicies {
                tenant: t.tenant.clone(),
            },
        ),
        TrustPoliciesCommand::Show(r) => {
            let mut p = path(&r.tenant.tenant)?;
            p.push(segment("trust policy", &r.name)?);
            get(p, Shape::TrustPolicy)
        }
        TrustPoliciesCommand::Delete(r) => {
            let mut p = path(&r.tenant.tenant)?;
            p.push(segment("trust policy", &r.name)?);
            Request {
                method: Method::Delete,
                path: p,
                body: None,
                shape: Shape::TrustPolicyDeleted {
                    tenant: r.tenant.tenant.clone(),
                    name: r.name.clone(),
                },
                password: None,
            }
        }
    })
}

pub fn trust_policy_body(c: &TrustPolicyCreate) -> Result<Value, Failure> {
    let mut body = Map::new();
    body.insert("name".into(), json!(c.name));
    body.insert("issuer".into(), json!(c.issuer));
    if let Some(u) = &c.discovery_url {
        body.insert("discovery_url".into(), json!(u));
    }
    if let Some(u) = &c.jwks_uri {
        body.insert("jwks_uri".into(), json!(u));
    }
    if let Some(f) = &c.jwks_file {
        body.insert("jwks".into(), read_json_file("JWKS file", f)?);
    }
    body.insert("audience".into(), json!(c.audience));
    if let Some(s) = &c.subject {
        body.insert("subject".into(), json!(s));
    }
    // A NAME given once is one value; given again, a set of allowed values.
    let mut claims: Map<String, Value> = Map::new();
    for pair in &c.claims {
        let (name, value) = pair
            .split_once('=')
            .ok_or_else(|| Failure(format!("--claim '{pair}' is not NAME=VALUE")))?;
        match claims.get_mut(name) {
            None => {
                claims.insert(name.into(), json!(value));
            }
            Some(Value::Array(list)) => list.push(json!(value)),
            Some(one) => *one = json!([one.clone(), value]),
        }
    }
    if !claims.is_empty() {
        body.insert("claims".into(), Value::Object(claims));
    }
    if let Some(age) = c.max_age {
        body.insert("max_age".into(), json!(age));
    }
    if let Some(t) = &c.typ {
        body.insert("typ".into(), json!(t));
    }
    body.insert("identity".into(), json!(c.identity));
    let scopes: Vec<&str> = c.scopes.iter().flat_map(|s| s.split_whitespace()).collect();
    body.insert("scopes".into(), json!(scopes));
    body.insert("audiences".into(), json!(c.audiences));
    if c.assertion_reuse {
        body.insert("assertion_reuse".into(), json!(true));
    }
    Ok(Value::Object(body))
}

fn plan_sources(command: &SourcesCommand) -> Result<Request, Failure> {
    let sources = |t: &str| -> Result<Vec<String>, Failure> {
        Ok(vec!["tenants".into(), segment("tenant", t)?, "sources".into()])
    };
    Ok(match command {
        SourcesCommand::Create(c) => {
            let mut body = json!({
                "name": c.name,
                "client_id": c.client_id,
                "audiences": c.audiences,
                "scopes": c.scopes,
            });
            if let Some(ttl) = c.token_ttl {
                body["token_ttl"] = json!(ttl);
            }
            Request {
                method: Method::Post,
                path: sources(&c.tenant.tenant)?,
                body: Some(body),
                shape: Shape::Document,
                password: None,
            }
        }
        SourcesCommand::List(t) => get(sources(&t.tenant)?, Shape::Document),
        SourcesCommand::Show(r) => {
            let mut path = sources(&r.tenant.tenant)?;
            path.push(segment("source", &r.source)?);
            get(path, Shape::Document)
        }
        SourcesCommand::Delete(r) => {
            let mut path = sources(&r.tenant.tenant)?;
            path.push(segment("source", &r.source)?);
            Request {
                method: Method::Delete,
                path,
                body: None,
                shape: Shape::Done(format!("deleted source '{}'", r.source)),
                password: None,
            }
        }
    })
}

fn plan_workload_issuer(command: &WorkloadIssuerCommand) -> Result<Request, Failure> {
    Ok(match command {
        WorkloadIssuerCommand::Export(e) => get(
            vec![
                "tenants".into(),
                segment("tenant", &e.tenant.tenant)?,
                "workload-issuer".into(),
            ],
            Shape::Document,
        ),
        WorkloadIssuerCommand::Settings(s) => {
            let path = vec![
                "tenants".into(),
                segment("tenant", &s.tenant.tenant)?,
                "workload".into(),
            ];
            if s.issuer.is_none() && s.session_max_ttl.is_none() {
                return Ok(get(path, Shape::Document));
            }
            let mut body = Map::new();
            if let Some(iss) = &s.issuer {
                let value = if iss == "default" { Value::Null } else { json!(iss) };
                body.insert("workload_issuer".into(), value);
            }
            if let Some(ttl) = s.session_max_ttl {
                body.insert("session_max_ttl".into(), json!(ttl));
            }
            Request {
                method: Method::Patch,
                path,
                body: Some(Value::Object(body)),
                shape: Shape::Document,
                password: None,
            }
        }
    })
}

fn plan_delegated_sessions(command: &DelegatedSessionsCommand) -> Result<Request, Failure> {
    Ok(match command {
        DelegatedSessionsCommand::List(l) => {
            let mut path = vec!["tenants".into(), segment("tenant", &l.tenant.tenant)?];
            if let Some(u) = &l.user {
                path.extend(["users".into(), segment("user", u)?]);
            }
            path.push("delegated-sessions".into());
            get(path, Shape::Document)
        }
        DelegatedSessionsCommand::Revoke(r) => Request {
            method: Method::Delete,
            path: vec![
                "tenants".into(),
                segment("tenant", &r.tenant.tenant)?,
                "delegated-sessions".into(),
                segment("session", &r.session)?,
            ],
            body: None,
            shape: Shape::Done(format!("revoked delegated session '{}'", r.session)),
            password: None,
        },
    })
}

fn sso_path(r: &SsoRef) -> Result<Vec<String>, Failure> {
    Ok(vec![
        "tenants".into(),
        segment("tenant", &r.tenant.tenant)?,
        "sso".into(),
        segment("connection", &r.id)?,
    ])
}

/// Only the options given: the same body creates (with `id`) or patches.
fn sso_body(c: &SsoCreate, with_id: bool) -> Value {
    let mut b = Map::new();
    if with_id {
        b.insert("id".into(), json!(c.sso.id));
    }
    let texts = [
        ("issuer", &c.issuer),
        ("client_id", &c.client_id),
        ("client_secret", &c.client_secret),
        ("client_auth", &c.client_auth),
        ("display_name", &c.display_name),
        ("button_text", &c.button_text),
        ("button_image_url", &c.button_image_url),
        ("email_claim", &c.email_claim),
        ("unique_id_claim", &c.unique_id_claim),
        ("display_name_claim", &c.display_name_claim),
        ("groups_claim", &c.groups_claim),
        ("authorization_endpoint", &c.authorization_endpoint),
        ("token_endpoint", &c.token_endpoint),
        ("userinfo_endpoint", &c.userinfo_endpoint),
        ("jwks_uri", &c.jwks_uri),
        ("kind", &c.kind),
        ("idp_metadata_url", &c.idp_metadata_url),
        ("idp_entity_id", &c.idp_entity_id),
        ("sso_url", &c.sso_url),
        ("sso_binding", &c.sso_binding),
    ];
    for (k, v) in texts {
        if let Some(v) = v {
            b.insert(k.into(), json!(v));
        }
    }
    for (k, v) in [
        ("trusted_email", c.trusted_email),
        ("discovery", c.discovery),
        ("userinfo", c.userinfo),
        ("enabled", c.enabled),
    ] {
        if let Some(v) = v {
            b.insert(k.into(), json!(v));
        }
    }
    for (k, v) in [
        ("email_domains", &c.email_domains),
        ("admin_groups", &c.admin_groups),
        ("scopes", &c.scopes),
    ] {
        if !v.is_empty() {
            b.insert(k.into(), json!(v));
        }
    }
    Value::Object(b)
}

/// SAML: the metadata and certificate files, read into the body.
fn saml_files(c: &SsoCreate, mut body: Value) -> Result<Value, Failure> {
    let read = |what: &str, path: &std::path::Path| {
        std::fs::read_to_string(path)
            .map_err(|e| Failure(format!("cannot read {what} {}: {e}", path.display())))
    };
    let b = body.as_object_mut().expect("an object");
    if let Some(path) = &c.idp_metadata_file {
        b.insert("idp_metadata_xml".into(), json!(read("IdP metadata", path)?));
    }
    if !c.idp_certificates.is_empty() {
        let certs = c
            .idp_certificates
            .iter()
            .map(|p| read("IdP certificate", p))
            .collect::<Result<Vec<_>, _>>()?;
        b.insert("idp_certificates".into(), json!(certs));
    }
    Ok(body)
}

fn plan_sso(command: &SsoCommand) -> Result<Request, Failure> {
    Ok(match command {
        SsoCommand::Create(c) => Request {
            method: Method::Post,
            path: vec![
                "tenants".into(),
                segment("tenant", &c.sso.tenant.tenant)?,
                "sso".into(),
            ],
            body: Some(saml_files(c, sso_body(c, true))?),
            shape: Shape::Sso,
            password: None,
        },
        SsoCommand::List(t) => get(
            vec!["tenants".into(), segment("tenant", &t.tenant)?, "sso".into()],
            Shape::SsoList {
                tenant: t.tenant.clone(),
            },
        ),
        SsoCommand::Show(r) => get(sso_path(r)?, Shape::Sso),
        SsoCommand::Update(c) => Request {
            method: Method::Patch,
            path: sso_path(&c.sso)?,
            body: Some(saml_files(c, sso_body(c, false))?),
            shape: Shape::Sso,
            password: None,
        },
        SsoCommand::Delete(r) => Request {
            method: Method::Delete,
            path: sso_path(r)?,
            body: None,
            shape: Shape::SsoDeleted {
                tenant: r.tenant.tenant.clone(),
                connection: r.id.clone(),
            },
            password: None,
        },
    })
}

fn plan_tenants(command: &TenantsCommand) -> Result<Request, Failure> {
    Ok(match command {
        TenantsCommand::Create(c) => Request {
            method: Method::Post,
            path: vec!["tenants".into()],
            body: Some(tenant_body(c)),
            shape: Shape::Tenant,
            password: None,
        },
        TenantsCommand::List => get(vec!["tenants".into()], Shape::Tenants),
        TenantsCommand::Show(t) => get(vec!["tenants".into(), segment("tenant", &t.name)?], Shape::Tenant),
        TenantsCommand::Update(t) => Request {
            method: Method::Patch,
            path: vec!["tenants".into(), segment("tenant", &t.name)?],
            body: Some(tenant_patch(t)),
            shape: Shape::Tenant,
            password: None,
        },
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
            body: Some(client_body(c)?),
            shape: Shape::ClientWithSecret,
            password: None,
        },
        ClientsCommand::List(t) => get(
            vec!["tenants".into(), segment("tenant", &t.tenant)?, "clients".into()],
            Shape::Clients {
                tenant: t.tenant.clone(),
            },
        ),
        ClientsCommand::Show(c) => get(client_path(c)?, Shape::Client),
        ClientsCommand::Update(c) => Request {
            method: Method::Patch,
            path: client_path(&c.client)?,
            body: Some(client_patch(c)),
            shape: Shape::Client,
            password: None,
        },
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
            password: None,
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
                password: None,
            }
        }
    })
}

fn plan_users(command: &UsersCommand) -> Result<Request, Failure> {
    Ok(match command {
        UsersCommand::Create(c) => Request {
            method: Method::Post,
            path: vec![
                "tenants".into(),
                segment("tenant", &c.tenant.tenant)?,
                "users".into(),
            ],
            body: Some(user_body(c)),
            shape: Shape::User,
            // Without a terminal or stdin a password cannot be had, and a user quietly made
            // without one cannot be made again ("username is taken"): say so instead.
            password: (!c.no_password).then(|| PasswordInput {
                from_stdin: c.password_stdin,
                required: false,
                user: c.username.clone(),
            }),
        },
        UsersCommand::List(t) => get(
            vec!["tenants".into(), segment("tenant", &t.tenant)?, "users".into()],
            Shape::Users {
                tenant: t.tenant.clone(),
            },
        ),
        UsersCommand::Show(u) => get(user_path(u)?, Shape::User),
        UsersCommand::Update(u) => Request {
            method: Method::Patch,
            path: user_path(&u.user)?,
            body: Some(user_patch(u)),
            shape: Shape::User,
            password: None,
        },
        UsersCommand::SetPassword(p) => {
            let mut path = user_path(&p.user)?;
            path.push("password".into());
            Request {
                method: Method::Put,
                path,
                // `{"password"}`, filled in by `with_password`.
                body: Some(json!({})),
                shape: Shape::User,
                password: Some(PasswordInput {
                    from_stdin: p.password_stdin,
                    required: true,
                    user: p.user.user.clone(),
                }),
            }
        }
        UsersCommand::Disable(u) => user_action(u, "disable")?,
        UsersCommand::Enable(u) => user_action(u, "enable")?,
        UsersCommand::Sessions(u) => get(
            user_sub(u, &["sessions"])?,
            Shape::Sessions { user: u.user.clone() },
        ),
        UsersCommand::RevokeSession(s) => Request {
            method: Method::Delete,
            path: user_sub(&s.user, &["sessions", &segment("session id", &s.session)?])?,
            body: None,
            shape: Shape::SessionRevoked {
                user: s.user.user.clone(),
                session: s.session.clone(),
            },
            password: None,
        },
        UsersCommand::RevokeSessions(u) => Request {
            method: Method::Delete,
            path: user_sub(u, &["sessions"])?,
            body: None,
            shape: Shape::SessionsRevoked { user: u.user.clone() },
            password: None,
        },
        UsersCommand::Consents(u) => get(
            user_sub(u, &["consents"])?,
            Shape::Consents { user: u.user.clone() },
        ),
        UsersCommand::RevokeConsent(c) => Request {
            method: Method::Delete,
            path: user_sub(&c.user, &["consents", &segment("client_id", &c.client_id)?])?,
            body: None,
            shape: Shape::ConsentRevoked {
                user: c.user.user.clone(),
            },
            password: None,
        },
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
    if let Some(logo) = &c.logo_url {
        body.insert("logo_url".into(), json!(logo));
    }
    for (key, ttl) in [
        ("session_ttl", c.session_ttl),
        ("refresh_token_ttl", c.refresh_token_ttl),
    ] {
        if let Some(ttl) = ttl {
            body.insert(key.into(), json!(ttl));
        }
    }
    Value::Object(body)
}

/// A PATCH: `null` clears the logo and restores the default display name.
pub fn tenant_patch(t: &TenantUpdate) -> Value {
    let mut body = Map::new();
    for (key, value, clear) in [
        ("display_name", &t.display_name, t.reset_display_name),
        ("logo_url", &t.logo_url, t.clear_logo_url),
    ] {
        if clear {
            body.insert(key.into(), Value::Null);
        } else if let Some(value) = value {
            body.insert(key.into(), json!(value));
        }
    }
    for (key, ttl) in [
        ("session_ttl", t.session_ttl),
        ("refresh_token_ttl", t.refresh_token_ttl),
    ] {
        if let Some(ttl) = ttl {
            body.insert(key.into(), json!(ttl));
        }
    }
    Value::Object(body)
}

/// Only what was given is sent, so the server's defaults apply to the rest; in particular no
/// `--grant` means the type's default grants, not an empty list.
pub fn client_body(c: &ClientCreate) -> Result<Value, Failure> {
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
        (
            "post_logout_redirect_uris",
            c.post_logout_redirect_uris.iter().map(String::as_str).collect(),
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
    // Flags are sent only when given, so that the server's defaults apply otherwise.
    for (key, given, value) in [
        ("require_pkce", c.no_pkce, false),
        ("first_party", c.first_party, true),
        (
            "refresh_without_offline_access",
            c.refresh_without_offline_access,
            true,
        ),
        ("introspect_any", c.introspect_any, true),
    ] {
        if given {
            body.insert(key.into(), json!(value));
        }
    }
    if let Some(uri) = &c.backchannel_logout_uri {
        body.insert("backchannel_logout_uri".into(), json!(uri));
    }
    if let Some(alg) = c.signing_alg {
        body.insert("signing_alg".into(), json!(alg.as_str()));
    }
    if let Some(ttl) = c.access_token_ttl {
        body.insert("access_token_ttl".into(), json!(ttl));
    }
    if let Some(f) = &c.jwks_file {
        body.insert("jwks".into(), read_json_file("JWKS file", f)?);
    }
    if let Some(u) = &c.jwks_uri {
        body.insert("jwks_uri".into(), json!(u));
    }
    if let Some(p) = &c.trust_policy {
        body.insert("trust_policy".into(), json!(p));
    }
    if c.token_exchange_impersonation {
        body.insert("token_exchange_impersonation".into(), json!(true));
    }
    Ok(Value::Object(body))
}

/// A PATCH of only what was given: a repeated option replaces the whole list, `--clear-…`
/// sends an empty list, and `--tenant-…` sends `null` (the tenant's default). clap makes sure
/// that at least one option is given and that no field is both set and cleared.
pub fn client_patch(c: &ClientUpdate) -> Value {
    let mut body = Map::new();
    if let Some(name) = &c.name {
        body.insert("name".into(), json!(name));
    }
    let scopes: Vec<&str> = c.scopes.iter().flat_map(|s| s.split_whitespace()).collect();
    for (key, list, clear) in [
        ("grant_types", as_strs(&c.grants), false),
        ("redirect_uris", as_strs(&c.redirect_uris), c.clear_redirect_uris),
        (
            "post_logout_redirect_uris",
            as_strs(&c.post_logout_redirect_uris),
            c.clear_post_logout_redirect_uris,
        ),
        ("allowed_scopes", scopes, c.clear_scopes),
        ("allowed_audiences", as_strs(&c.audiences), c.clear_audiences),
    ] {
        if clear || !list.is_empty() {
            body.insert(key.into(), json!(list));
        }
    }
    for (key, on, off) in [
        ("require_pkce", c.pkce, c.no_pkce),
        ("first_party", c.first_party, c.no_first_party),
        (
            "refresh_without_offline_access",
            c.refresh_without_offline_access,
            c.no_refresh_without_offline_access,
        ),
        ("introspect_any", c.introspect_any, c.no_introspect_any),
    ] {
        if on || off {
            body.insert(key.into(), json!(on));
        }
    }
    if c.clear_backchannel_logout_uri {
        body.insert("backchannel_logout_uri".into(), Value::Null);
    } else if let Some(uri) = &c.backchannel_logout_uri {
        body.insert("backchannel_logout_uri".into(), json!(uri));
    }
    if c.tenant_signing_alg {
        body.insert("signing_alg".into(), Value::Null);
    } else if let Some(alg) = c.signing_alg {
        body.insert("signing_alg".into(), json!(alg.as_str()));
    }
    if c.tenant_access_token_ttl {
        body.insert("access_token_ttl".into(), Value::Null);
    } else if let Some(ttl) = c.access_token_ttl {
        body.insert("access_token_ttl".into(), json!(ttl));
    }
    if c.clear_trust_policy {
        body.insert("trust_policy".into(), Value::Null);
    } else if let Some(p) = &c.trust_policy {
        body.insert("trust_policy".into(), json!(p));
    }
    Value::Object(body)
}

fn as_strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// The password, if any, is added later by `Request::with_password`.
pub fn user_body(c: &UserCreate) -> Value {
    let mut body = Map::new();
    body.insert("username".into(), json!(c.username));
    if let Some(email) = &c.email {
        body.insert("email".into(), json!(email));
    }
    if c.email_verified {
        body.insert("email_verified".into(), json!(true));
    }
    if let Some(name) = &c.name {
        body.insert("name".into(), json!(name));
    }
    if let Some(picture) = &c.picture {
        body.insert("picture".into(), json!(picture));
    }
    Value::Object(body)
}

/// A PATCH: a field left out stays as it is and `null` clears it. clap makes sure that at least
/// one field is given and that no field is both set and cleared.
pub fn user_patch(u: &UserUpdate) -> Value {
    let mut body = Map::new();
    for (key, value, clear) in [
        ("email", &u.email, u.clear_email),
        ("name", &u.name, u.clear_name),
        ("picture", &u.picture, u.clear_picture),
    ] {
        if clear {
            body.insert(key.into(), Value::Null);
        } else if let Some(value) = value {
            body.insert(key.into(), json!(value));
        }
    }
    if let Some(verified) = u.email_verified {
        body.insert("email_verified".into(), json!(verified));
    }
    Value::Object(body)
}

fn get(path: Vec<String>, shape: Shape) -> Request {
    Request {
        method: Method::Get,
        path,
        body: None,
        shape,
        password: None,
    }
}

fn tenant_action(name: &str, action: &str) -> Result<Request, Failure> {
    Ok(Request {
        method: Method::Post,
        path: vec!["tenants".into(), segment("tenant", name)?, action.into()],
        body: None,
        shape: Shape::Tenant,
        password: None,
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
        password: None,
    })
}

fn user_path(u: &UserRef) -> Result<Vec<String>, Failure> {
    Ok(vec![
        "tenants".into(),
        segment("tenant", &u.tenant.tenant)?,
        "users".into(),
        segment("user", &u.user)?,
    ])
}

/// A path below one user, such as `…/users/{user}/sessions/{id}`.
fn user_sub(u: &UserRef, rest: &[&str]) -> Result<Vec<String>, Failure> {
    let mut path = user_path(u)?;
    path.extend(rest.iter().map(|s| s.to_string()));
    Ok(path)
}

fn user_action(u: &UserRef, action: &str) -> Result<Request, Failure> {
    let mut path = user_path(u)?;
    path.push(action.into());
    Ok(Request {
        method: Method::Post,
        path,
        body: None,
        shape: Shape::User,
        password: None,
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
        let Command::Admin(a) = cli.command else {
            panic!("an admin command")
        };
        plan(&a.command)
    }

    fn ok(args: &[&str]) -> Request {
        plan_of(args).expect("plans")
    }

    fn route(r: &Request) -> String {
        format!("{:?} /{}", r.method, r.path.join("/"))
    }

    #[test]
    fn trust_policy_create_collects_claim_sets_and_one_key_source() {
        let r = ok(&[
            "trust-policies",
            "create",
            "ci",
            "--tenant",
            "acme",
            "--issuer",
            "https://ci.example",
            "--jwks-uri",
            "https://ci.example/jwks",
            "--audience",
            "sesame",
            "--claim",
            "repository=acme/app",
            "--claim",
            "ref=refs/heads/main",
            "--claim",
            "ref=refs/heads/release",
            "--identity",
            "deployer",
            "--scope",
            "deploy read",
        ]);
        assert_eq!(route(&r), "Post /tenants/acme/trust-policies");
        let body = r.body.unwrap();
        assert_eq!(
            body["claims"],
            json!({"repository": "acme/app", "ref": ["refs/heads/main", "refs/heads/release"]})
        );
        assert_eq!(body["scopes"], json!(["deploy", "read"]));
        assert_eq!(body["jwks_uri"], "https://ci.example/jwks");
        assert!(body.get("discovery_url").is_none());
        let r = ok(&["trust-policies", "delete", "ci", "--tenant", "acme"]);
        assert_eq!(route(&r), "Delete /tenants/acme/trust-policies/ci");
        // Exactly one key source.
        let two = Cli::try_parse_from([
            "sesame",
            "admin",
            "trust-policies",
            "create",
            "ci",
            "--issuer",
            "i",
            "--audience",
            "a",
            "--identity",
            "x",
            "--jwks-uri",
            "u",
            "--discovery-url",
            "d",
        ]);
        assert!(two.is_err());
        assert!(plan_of(&[
            "trust-policies",
            "create",
            "ci",
            "--issuer",
            "i",
            "--audience",
            "a",
            "--identity",
            "x",
            "--jwks-uri",
            "u",
            "--claim",
            "novalue"
        ])
        .is_err());
    }

    #[test]
    fn workload_commands_map_to_paths() {
        let r = ok(&[
            "sources",
            "create",
            "--tenant",
            "acme",
            "--name",
            "sync",
            "--client",
            "c1",
            "--audience",
            "a1",
            "--audience",
            "a2",
            "--scope",
            "read",
            "--token-ttl",
            "600",
        ]);
        assert_eq!(route(&r), "Post /tenants/acme/sources");
        assert_eq!(
            r.body,
            Some(
                json!({"name": "sync", "client_id": "c1", "audiences": ["a1", "a2"], "scopes": ["read"], "token_ttl": 600})
            )
        );
        assert!(plan_of_parse_fails(&[
            "sources", "create", "--name", "x", "--client", "c"
        ]));
        assert_eq!(route(&ok(&["sources", "list"])), "Get /tenants/default/sources");
        let r = ok(&["sources", "delete", "7f3b8e21-4d9a-4c2e-9b7d-8a5f3c9e0b4f"]);
        assert_eq!(
            route(&r),
            "Delete /tenants/default/sources/7f3b8e21-4d9a-4c2e-9b7d-8a5f3c9e0b4f"
        );
        let r = ok(&["workload-issuer", "export", "--out", "/tmp/x"]);
        assert_eq!(route(&r), "Get /tenants/default/workload-issuer");
        assert!(
            plan_of_parse_fails(&["workload-issuer", "export"]),
            "--out or --check is needed"
        );
        assert_eq!(
            route(&ok(&["workload-issuer", "settings"])),
            "Get /tenants/default/workload"
        );
        let r = ok(&[
            "workload-issuer",
            "settings",
            "--issuer",
            "default",
            "--session-max-ttl",
            "3600",
        ]);
        assert_eq!(route(&r), "Patch /tenants/default/workload");
        assert_eq!(
            r.body,
            Some(json!({"workload_issuer": null, "session_max_ttl": 3600}))
        );
        let r = ok(&["delegated-sessions", "list", "--user", "alice"]);
        assert_eq!(route(&r), "Get /tenants/default/users/alice/delegated-sessions");
        let r = ok(&["delegated-sessions", "revoke", "s1"]);
        assert_eq!(route(&r), "Delete /tenants/default/delegated-sessions/s1");
    }

    fn plan_of_parse_fails(args: &[&str]) -> bool {
        Cli::try_parse_from(["sesame", "admin"].into_iter().chain(args.iter().copied())).is_err()
    }

    #[test]
    fn sso_commands_map_to_the_sso_admin_api() {
        let r = ok(&[
            "sso",
            "create",
            "corp",
            "--tenant",
            "acme",
            "--issuer",
            "https://idp.example",
            "--client-id",
            "sesame",
            "--client-secret",
            "s",
            "--email-domain",
            "acme.example",
            "--admin-group",
            "admins",
            "--trusted-email",
            "true",
        ]);
        assert_eq!(route(&r), "Post /tenants/acme/sso");
        assert_eq!(
            r.body,
            Some(json!({
                "id": "corp", "issuer": "https://idp.example", "client_id": "sesame",
                "client_secret": "s", "email_domains": ["acme.example"], "admin_groups": ["admins"],
                "trusted_email": true,
            }))
        );
        assert_eq!(r.shape, Shape::Sso);
        let r = ok(&[
            "sso",
            "create",
            "okta",
            "--kind",
            "saml",
            "--idp-metadata-url",
            "https://idp.example/metadata",
            "--groups-claim",
            "memberOf",
        ]);
        assert_eq!(
            r.body,
            Some(json!({
                "id": "okta", "kind": "saml", "idp_metadata_url": "https://idp.example/metadata",
                "groups_claim": "memberOf",
            }))
        );
        assert!(plan_of(&[
            "sso",
            "create",
            "x",
            "--kind",
            "saml",
            "--idp-metadata-file",
            "/nonexistent/md.xml"
        ])
        .is_err());
        let r = ok(&["sso", "update", "corp", "--tenant", "acme", "--enabled", "false"]);
        assert_eq!(route(&r), "Patch /tenants/acme/sso/corp");
        assert_eq!(r.body, Some(json!({ "enabled": false })));
        assert_eq!(
            route(&ok(&["sso", "list", "--tenant", "acme"])),
            "Get /tenants/acme/sso"
        );
        assert_eq!(
            route(&ok(&["sso", "show", "corp"])),
            "Get /tenants/default/sso/corp"
        );
        let r = ok(&["sso", "delete", "corp"]);
        assert_eq!(route(&r), "Delete /tenants/default/sso/corp");
        assert!(plan_of(&["sso", "show", ".."]).is_err());
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
    fn user_create_sends_only_given_fields_and_asks_for_an_optional_password() {
        let r = ok(&["users", "create", "alice"]);
        assert_eq!(route(&r), "Post /tenants/default/users");
        assert_eq!(
            (r.body.clone(), r.shape.clone()),
            (Some(json!({"username": "alice"})), Shape::User)
        );
        let input = PasswordInput {
            from_stdin: false,
            required: false,
            user: "alice".into(),
        };
        assert_eq!(r.password, Some(input));
        // Without a password (none given, or none asked for) the body is as planned.
        assert_eq!(r.body, Some(json!({"username": "alice"})));
        let r = ok(&["users", "create", "alice", "--no-password"]);
        assert_eq!((r.password, r.body), (None, Some(json!({"username": "alice"}))));

        let r = ok(&[
            "users",
            "create",
            "--tenant",
            "acme",
            "alice",
            "--email",
            "alice@example.com",
            "--email-verified",
            "--name",
            "Alice Liddell",
            "--picture",
            "https://example.com/a.png",
            "--password-stdin",
        ]);
        assert_eq!(route(&r), "Post /tenants/acme/users");
        assert_eq!(
            r.password.as_ref().map(|p| (p.from_stdin, p.required)),
            Some((true, false))
        );
        let r = r.with_password("correct horse".into());
        assert_eq!(
            r.body,
            Some(json!({
                "username": "alice",
                "email": "alice@example.com",
                "email_verified": true,
                "name": "Alice Liddell",
                "picture": "https://example.com/a.png",
                "password": "correct horse",
            }))
        );
        assert_eq!(r.password, None);
    }

    #[test]
    fn user_commands_map_to_paths() {
        let r = ok(&["users", "list", "--tenant", "acme"]);
        assert_eq!(
            (route(&r), r.body, r.shape),
            (
                "Get /tenants/acme/users".into(),
                None,
                Shape::Users {
                    tenant: "acme".into()
                }
            )
        );
        let r = ok(&["users", "show", "--tenant", "acme", "alice"]);
        assert_eq!(
            (route(&r), r.shape),
            ("Get /tenants/acme/users/alice".into(), Shape::User)
        );
        for action in ["disable", "enable"] {
            let r = ok(&["users", action, "alice", "--tenant", "acme"]);
            assert_eq!(route(&r), format!("Post /tenants/acme/users/alice/{action}"));
            assert_eq!((r.body, r.shape, r.password), (None, Shape::User, None));
        }
    }

    #[test]
    fn tenant_of_user_commands_defaults_like_clients() {
        assert_eq!(route(&ok(&["users", "list"])), "Get /tenants/default/users");
        assert_eq!(
            route(&ok(&["users", "show", "u1"])),
            "Get /tenants/default/users/u1"
        );
    }

    #[test]
    fn set_password_puts_a_required_password() {
        let r = ok(&["users", "set-password", "--tenant", "acme", "alice"]);
        assert_eq!(route(&r), "Put /tenants/acme/users/alice/password");
        let input = PasswordInput {
            from_stdin: false,
            required: true,
            user: "alice".into(),
        };
        assert_eq!(r.password, Some(input));
        let r = ok(&["users", "set-password", "alice", "--password-stdin"]);
        assert!(r.password.as_ref().is_some_and(|p| p.from_stdin && p.required));
        let r = r.with_password("hunter2hunter2".into());
        assert_eq!(r.body, Some(json!({"password": "hunter2hunter2"})));
        assert_eq!(r.shape, Shape::User);
    }

    #[test]
    fn user_update_patches_only_given_fields() {
        let r = ok(&["users", "update", "--tenant", "acme", "alice", "--name", "Alice"]);
        assert_eq!(route(&r), "Patch /tenants/acme/users/alice");
        assert_eq!(
            (r.body, r.shape, r.password),
            (Some(json!({"name": "Alice"})), Shape::User, None)
        );

        let r = ok(&[
            "users",
            "update",
            "alice",
            "--email",
            "a@example.com",
            "--email-verified",
            "false",
            "--picture",
            "https://example.com/a.png",
        ]);
        assert_eq!(
            r.body,
            Some(
                json!({"email": "a@example.com", "email_verified": false, "picture": "https://example.com/a.png"})
            )
        );
        let r = ok(&["users", "update", "alice", "--email-verified=true"]);
        assert_eq!(r.body, Some(json!({"email_verified": true})));
    }

    #[test]
    fn user_update_clear_sends_null() {
        let r = ok(&["users", "update", "alice", "--clear-email"]);
        assert_eq!(r.body, Some(json!({"email": null})));
        let r = ok(&[
            "users",
            "update",
            "alice",
            "--clear-name",
            "--clear-picture",
            "--email",
            "a@b.c",
        ]);
        assert_eq!(
            r.body,
            Some(json!({"email": "a@b.c", "name": null, "picture": null}))
        );
        // Present and null, not absent: absent would leave the field unchanged.
        let body = r.body.expect("body");
        assert!(body.as_object().is_some_and(|o| o.contains_key("name")));
    }

    #[test]
    fn user_names_are_percent_encoded_in_the_path() {
        let base = crate::http::base_url("http://127.0.0.1:8080").expect("valid");
        let r = ok(&["users", "show", "--tenant", "acme", "a/b?c#d%e f"]);
        assert_eq!(r.path.last().map(String::as_str), Some("a/b?c#d%e f"));
        assert_eq!(
            crate::http::endpoint(&base, &r.path).as_str(),
            "http://127.0.0.1:8080/admin/v1/tenants/acme/users/a%2Fb%3Fc%23d%25e%20f"
        );
        let r = ok(&["users", "set-password", "x/../y"]);
        assert_eq!(
            crate::http::endpoint(&base, &r.path).as_str(),
            "http://127.0.0.1:8080/admin/v1/tenants/default/users/x%2F..%2Fy/password"
        );
        // Characters a username may hold are valid in a path segment as they are.
        let r = ok(&["users", "disable", "jo.e+x_1@example.com"]);
        assert_eq!(
            crate::http::endpoint(&base, &r.path).as_str(),
            "http://127.0.0.1:8080/admin/v1/tenants/default/users/jo.e+x_1@example.com/disable"
        );
    }

    #[test]
    fn tenant_update_patches_only_given_fields() {
        let r = ok(&[
            "tenants",
            "update",
            "acme",
            "--logo-url",
            "https://acme.example/l.svg",
        ]);
        assert_eq!(route(&r), "Patch /tenants/acme");
        assert_eq!(
            (r.body, r.shape),
            (
                Some(json!({"logo_url": "https://acme.example/l.svg"})),
                Shape::Tenant
            )
        );
        let r = ok(&[
            "tenants",
            "update",
            "acme",
            "--clear-logo-url",
            "--display-name",
            "Acme",
        ]);
        assert_eq!(r.body, Some(json!({"display_name": "Acme", "logo_url": null})));
        let r = ok(&["tenants", "update", "acme", "--reset-display-name"]);
        assert_eq!(r.body, Some(json!({"display_name": null})));
        let r = ok(&["tenants", "create", "acme", "--logo-url", "https://a/l.png"]);
        assert_eq!(r.body, Some(json!({"id": "acme", "logo_url": "https://a/l.png"})));
    }

    #[test]
    fn client_create_sends_the_sign_in_options_only_when_given() {
        let r = ok(&[
            "clients",
            "create",
            "--type",
            "confidential",
            "--redirect-uri",
            "https://app/cb",
            "--post-logout-redirect-uri",
            "https://app/",
            "--post-logout-redirect-uri",
            "https://app/bye",
            "--grant-type",
            "authorization_code",
            "--grant",
            "refresh_token",
            "--no-pkce",
            "--first-party",
            "--refresh-without-offline-access",
            "--introspect-any",
            "--scope",
            "openid email",
        ]);
        assert_eq!(
            r.body,
            Some(json!({
                "client_type": "confidential",
                "grant_types": ["authorization_code", "refresh_token"],
                "redirect_uris": ["https://app/cb"],
                "post_logout_redirect_uris": ["https://app/", "https://app/bye"],
                "allowed_scopes": ["openid", "email"],
                "require_pkce": false,
                "first_party": true,
                "refresh_without_offline_access": true,
                "introspect_any": true,
            }))
        );
        let r = ok(&["clients", "create", "--redirect-uri", "https://app/cb"]);
        assert_eq!(r.body, Some(json!({"redirect_uris": ["https://app/cb"]})));
    }

    #[test]
    fn client_update_patches_only_given_fields() {
        let r = ok(&["clients", "update", "--tenant", "acme", "web", "--name", "Web"]);
        assert_eq!(route(&r), "Patch /tenants/acme/clients/web");
        assert_eq!((r.body, r.shape), (Some(json!({"name": "Web"})), Shape::Client));
        let r = ok(&[
            "clients",
            "update",
            "web",
            "--redirect-uri",
            "https://a/cb",
            "--redirect-uri",
            "https://b/cb",
            "--clear-post-logout-redirect-uris",
            "--grant-type",
            "authorization_code",
            "--no-pkce",
            "--first-party",
            "--no-refresh-without-offline-access",
            "--scope",
            "openid profile",
            "--clear-audiences",
            "--tenant-signing-alg",
            "--access-token-ttl",
            "120",
        ]);
        assert_eq!(
            r.body,
            Some(json!({
                "redirect_uris": ["https://a/cb", "https://b/cb"],
                "post_logout_redirect_uris": [],
                "grant_types": ["authorization_code"],
                "require_pkce": false,
                "first_party": true,
                "refresh_without_offline_access": false,
                "allowed_scopes": ["openid", "profile"],
                "allowed_audiences": [],
                "signing_alg": null,
                "access_token_ttl": 120,
            }))
        );
        let r = ok(&["clients", "update", "web", "--pkce", "--tenant-access-token-ttl"]);
        assert_eq!(
            r.body,
            Some(json!({"require_pkce": true, "access_token_ttl": null}))
        );
        let r = ok(&["clients", "update", "web", "--introspect-any"]);
        assert_eq!(r.body, Some(json!({"introspect_any": true})));
        let r = ok(&["clients", "update", "web", "--no-introspect-any"]);
        assert_eq!(r.body, Some(json!({"introspect_any": false})));
        let r = ok(&["clients", "update", "web", "--trust-policy", "k8s"]);
        assert_eq!(r.body, Some(json!({"trust_policy": "k8s"})));
        let r = ok(&["clients", "update", "web", "--clear-trust-policy"]);
        assert_eq!(r.body, Some(json!({"trust_policy": null})));
        let r = ok(&[
            "clients",
            "create",
            "--client-id",
            "deployer",
            "--trust-policy",
            "k8s",
        ]);
        assert_eq!(
            r.body,
            Some(json!({"client_id": "deployer", "trust_policy": "k8s"}))
        );
        assert!(plan_of_parse_fails(&[
            "clients",
            "create",
            "--trust-policy",
            "k8s",
            "--jwks-uri",
            "https://a/j"
        ]));
    }

    #[test]
    fn session_and_consent_commands_map_to_paths() {
        let r = ok(&["users", "sessions", "--tenant", "acme", "alice"]);
        assert_eq!(
            (route(&r), r.body, r.shape),
            (
                "Get /tenants/acme/users/alice/sessions".into(),
                None,
                Shape::Sessions { user: "alice".into() }
            )
        );
        let r = ok(&["users", "revoke-session", "alice", "s_1"]);
        assert_eq!(
            (route(&r), r.body),
            ("Delete /tenants/default/users/alice/sessions/s_1".into(), None)
        );
        assert_eq!(
            r.shape,
            Shape::SessionRevoked {
                user: "alice".into(),
                session: "s_1".into()
            }
        );
        let r = ok(&["users", "revoke-sessions", "alice"]);
        assert_eq!(route(&r), "Delete /tenants/default/users/alice/sessions");
        assert_eq!(r.shape, Shape::SessionsRevoked { user: "alice".into() });
        let r = ok(&["users", "consents", "alice"]);
        assert_eq!(route(&r), "Get /tenants/default/users/alice/consents");
        let r = ok(&["users", "revoke-consent", "alice", "web"]);
        assert_eq!(
            (route(&r), r.body),
            ("Delete /tenants/default/users/alice/consents/web".into(), None)
        );
        assert!(plan_of(&["users", "revoke-session", "alice", ".."]).is_err());
        assert!(plan_of(&["users", "revoke-consent", "alice", ""]).is_err());
    }

    #[test]
    fn dot_segments_and_empty_ids_are_refused() {
        assert!(plan_of(&["tenants", "show", ".."]).is_err());
        assert!(plan_of(&["tenants", "disable", ""]).is_err());
        assert!(plan_of(&["clients", "delete", "--tenant", "acme", "."]).is_err());
        assert!(plan_of(&["clients", "list", "--tenant", ".."]).is_err());
        assert!(plan_of(&["users", "show", ".."]).is_err());
        assert!(plan_of(&["users", "update", ".", "--clear-name"]).is_err());
        assert!(plan_of(&["users", "set-password", ""]).is_err());
    }
}
