//! Who may call which admin route: the actors, the permissions, the one policy table every
//! admin route is listed in, and the one decision. The server's middleware authenticates the
//! actor, finds the matched route here and asks [`decide`]; a route missing from the table is
//! refused (deny by default).

use crate::ids::{ClientId, TenantId, UserId};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// The audience (RFC 8707 resource indicator) of access tokens for the admin API. A client
/// gets it when `urn:sesame:admin` is among its `allowed_audiences`.
pub const ADMIN_AUDIENCE: &str = "urn:sesame:admin";

/// What an admin route needs. Its string form (`clients:write`) is what tokens, client
/// settings, error descriptions and docs name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Permission {
    /// Creating, listing, disabling and enabling tenants: server-wide, operators only.
    #[serde(rename = "tenants:manage")]
    TenantsManage,
    #[serde(rename = "tenants:read")]
    TenantsRead,
    #[serde(rename = "tenants:write")]
    TenantsWrite,
    #[serde(rename = "clients:read")]
    ClientsRead,
    #[serde(rename = "clients:write")]
    ClientsWrite,
    #[serde(rename = "users:read")]
    UsersRead,
    #[serde(rename = "users:write")]
    UsersWrite,
    /// Who is admin: the hand-set admin flag and clients' admin permissions.
    #[serde(rename = "admins:write")]
    AdminsWrite,
    #[serde(rename = "keys:read")]
    KeysRead,
    #[serde(rename = "keys:write")]
    KeysWrite,
    #[serde(rename = "trust:read")]
    TrustRead,
    #[serde(rename = "trust:write")]
    TrustWrite,
    #[serde(rename = "sso:read")]
    SsoRead,
    #[serde(rename = "sso:write")]
    SsoWrite,
    #[serde(rename = "workload:read")]
    WorkloadRead,
    #[serde(rename = "workload:write")]
    WorkloadWrite,
    /// Teams, resource types, resources and grants, and checks on anyone's behalf.
    #[serde(rename = "authz:read")]
    AuthzRead,
    #[serde(rename = "authz:write")]
    AuthzWrite,
    #[serde(rename = "audit:read")]
    AuditRead,
    /// Every tenant's audit events and the server-wide ones: operators only.
    #[serde(rename = "audit:all")]
    AuditAll,
}

impl Permission {
    pub const ALL: &'static [Permission] = &[
        Permission::TenantsManage,
        Permission::TenantsRead,
        Permission::TenantsWrite,
        Permission::ClientsRead,
        Permission::ClientsWrite,
        Permission::UsersRead,
        Permission::UsersWrite,
        Permission::AdminsWrite,
        Permission::KeysRead,
        Permission::KeysWrite,
        Permission::TrustRead,
        Permission::TrustWrite,
        Permission::SsoRead,
        Permission::SsoWrite,
        Permission::WorkloadRead,
        Permission::WorkloadWrite,
        Permission::AuthzRead,
        Permission::AuthzWrite,
        Permission::AuditRead,
        Permission::AuditAll,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Permission::TenantsManage => "tenants:manage",
            Permission::TenantsRead => "tenants:read",
            Permission::TenantsWrite => "tenants:write",
            Permission::ClientsRead => "clients:read",
            Permission::ClientsWrite => "clients:write",
            Permission::UsersRead => "users:read",
            Permission::UsersWrite => "users:write",
            Permission::AdminsWrite => "admins:write",
            Permission::KeysRead => "keys:read",
            Permission::KeysWrite => "keys:write",
            Permission::TrustRead => "trust:read",
            Permission::TrustWrite => "trust:write",
            Permission::SsoRead => "sso:read",
            Permission::SsoWrite => "sso:write",
            Permission::WorkloadRead => "workload:read",
            Permission::WorkloadWrite => "workload:write",
            Permission::AuthzRead => "authz:read",
            Permission::AuthzWrite => "authz:write",
            Permission::AuditRead => "audit:read",
            Permission::AuditAll => "audit:all",
        }
    }

    pub fn parse(s: &str) -> Result<Permission> {
        Permission::ALL
            .iter()
            .copied()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| {
                let known: Vec<_> = Permission::ALL.iter().map(|p| p.as_str()).collect();
                Error::invalid_request(format!(
                    "unknown permission '{}' (known: {})",
                    s.escape_debug(),
                    known.join(", ")
                ))
            })
    }

    /// Server-wide permissions cannot be held within one tenant.
    pub fn server_wide(self) -> bool {
        matches!(self, Permission::TenantsManage | Permission::AuditAll)
    }
}

impl std::fmt::Display for Permission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One admin route: the method and the pattern after `/admin/v1`, as the router has it.
#[derive(Clone, Copy, Debug)]
pub struct AdminRoute {
    pub method: &'static str,
    pub path: &'static str,
    pub permission: Permission,
    /// A member (a person of the tenant who is not admin) may call it about themselves: the
    /// path's `{user}` names them.
    pub own_user: bool,
}

const fn route(method: &'static str, path: &'static str, permission: Permission) -> AdminRoute {
    AdminRoute {
        method,
        path,
        permission,
        own_user: false,
    }
}

/// A route a member may also call about themselves.
const fn own(method: &'static str, path: &'static str, permission: Permission) -> AdminRoute {
    AdminRoute {
        method,
        path,
        permission,
        own_user: true,
    }
}

use Permission as P;

/// Every admin route and what it needs. Adding a route to the router without a line here
/// leaves it refused to everyone (and fails the test that compares the two).
pub const ADMIN_ROUTES: &[AdminRoute] = &[
    // Tenants
    route("GET", "/tenants", P::TenantsManage),
    route("POST", "/tenants", P::TenantsManage),
    route("GET", "/tenants/{tenant}", P::TenantsRead),
    route("PATCH", "/tenants/{tenant}", P::TenantsWrite),
    route("POST", "/tenants/{tenant}/disable", P::TenantsManage),
    route("POST", "/tenants/{tenant}/enable", P::TenantsManage),
    // Clients
    route("GET", "/tenants/{tenant}/clients", P::ClientsRead),
    route("POST", "/tenants/{tenant}/clients", P::ClientsWrite),
    route("GET", "/tenants/{tenant}/clients/{client}", P::ClientsRead),
    route("PATCH", "/tenants/{tenant}/clients/{client}", P::ClientsWrite),
    route("DELETE", "/tenants/{tenant}/clients/{client}", P::ClientsWrite),
    route(
        "POST",
        "/tenants/{tenant}/clients/{client}/rotate-secret",
        P::ClientsWrite,
    ),
    route(
        "POST",
        "/tenants/{tenant}/clients/{client}/disable",
        P::ClientsWrite,
    ),
    route(
        "POST",
        "/tenants/{tenant}/clients/{client}/enable",
        P::ClientsWrite,
    ),
    // Users
    route("GET", "/tenants/{tenant}/users", P::UsersRead),
    route("POST", "/tenants/{tenant}/users", P::UsersWrite),
    own("GET", "/tenants/{tenant}/users/{user}", P::UsersRead),
    route("PATCH", "/tenants/{tenant}/users/{user}", P::UsersWrite),
    route("PUT", "/tenants/{tenant}/users/{user}/password", P::UsersWrite),
    route("POST", "/tenants/{tenant}/users/{user}/disable", P::UsersWrite),
    route("POST", "/tenants/{tenant}/users/{user}/enable", P::UsersWrite),
    own("GET", "/tenants/{tenant}/users/{user}/sessions", P::UsersRead),
    route("DELETE", "/tenants/{tenant}/users/{user}/sessions", P::UsersWrite),
    route(
        "DELETE",
        "/tenants/{tenant}/users/{user}/sessions/{session}",
        P::UsersWrite,
    ),
    own("GET", "/tenants/{tenant}/users/{user}/consents", P::UsersRead),
    route(
        "DELETE",
        "/tenants/{tenant}/users/{user}/consents/{client}",
        P::UsersWrite,
    ),
    // Trust policies
    route("GET", "/tenants/{tenant}/trust-policies", P::TrustRead),
    route("POST", "/tenants/{tenant}/trust-policies", P::TrustWrite),
    route("GET", "/tenants/{tenant}/trust-policies/{name}", P::TrustRead),
    route("PUT", "/tenants/{tenant}/trust-policies/{name}", P::TrustWrite),
    route("DELETE", "/tenants/{tenant}/trust-policies/{name}", P::TrustWrite),
    // Brokered SSO
    route("GET", "/tenants/{tenant}/sso", P::SsoRead),
    route("POST", "/tenants/{tenant}/sso", P::SsoWrite),
    route("GET", "/tenants/{tenant}/sso/{connection}", P::SsoRead),
    route("PATCH", "/tenants/{tenant}/sso/{connection}", P::SsoWrite),
    route("DELETE", "/tenants/{tenant}/sso/{connection}", P::SsoWrite),
    route("GET", "/tenants/{tenant}/sso-settings", P::SsoRead),
    route("PUT", "/tenants/{tenant}/sso-settings", P::SsoWrite),
    own("GET", "/tenants/{tenant}/users/{user}/sso", P::UsersRead),
    route("PUT", "/tenants/{tenant}/users/{user}/admin", P::AdminsWrite),
    // Signing keys
    route("GET", "/tenants/{tenant}/keys", P::KeysRead),
    route("POST", "/tenants/{tenant}/keys/rotate", P::KeysWrite),
    // Workload identity and delegated sessions
    route("GET", "/tenants/{tenant}/sources", P::WorkloadRead),
    route("POST", "/tenants/{tenant}/sources", P::WorkloadWrite),
    route("GET", "/tenants/{tenant}/sources/{source}", P::WorkloadRead),
    route("PUT", "/tenants/{tenant}/sources/{source}", P::WorkloadWrite),
    route("DELETE", "/tenants/{tenant}/sources/{source}", P::WorkloadWrite),
    route("GET", "/tenants/{tenant}/workload", P::WorkloadRead),
    route("PATCH", "/tenants/{tenant}/workload", P::WorkloadWrite),
    route("GET", "/tenants/{tenant}/workload-issuer", P::WorkloadRead),
    route("GET", "/tenants/{tenant}/delegated-sessions", P::WorkloadRead),
    route(
        "DELETE",
        "/tenants/{tenant}/delegated-sessions/{session}",
        P::WorkloadWrite,
    ),
    own(
        "GET",
        "/tenants/{tenant}/users/{user}/delegated-sessions",
        P::WorkloadRead,
    ),
    // Clients allowed to create delegated sessions for users
    route(
        "GET",
        "/tenants/{tenant}/clients/{client}/session-creation",
        P::ClientsRead,
    ),
    route(
        "PUT",
        "/tenants/{tenant}/clients/{client}/session-creation",
        P::ClientsWrite,
    ),
    // Roles, credentials and the audit log
    route("GET", "/audit", P::AuditAll),
    route("GET", "/tenants/{tenant}/audit", P::AuditRead),
    route(
        "GET",
        "/tenants/{tenant}/clients/{client}/admin-permissions",
        P::ClientsRead,
    ),
    route(
        "PUT",
        "/tenants/{tenant}/clients/{client}/admin-permissions",
        P::AdminsWrite,
    ),
    // Authorization: teams, resource types, resources, grants, checks
    route("GET", "/tenants/{tenant}/teams", P::AuthzRead),
    route("POST", "/tenants/{tenant}/teams", P::AuthzWrite),
    route("GET", "/tenants/{tenant}/teams/{team}", P::AuthzRead),
    route("DELETE", "/tenants/{tenant}/teams/{team}", P::AuthzWrite),
    route(
        "PUT",
        "/tenants/{tenant}/teams/{team}/members/{user}",
        P::AuthzWrite,
    ),
    route(
        "DELETE",
        "/tenants/{tenant}/teams/{team}/members/{user}",
        P::AuthzWrite,
    ),
    route("GET", "/tenants/{tenant}/resource-types", P::AuthzRead),
    route("PUT", "/tenants/{tenant}/resource-types/{type}", P::AuthzWrite),
    route("GET", "/tenants/{tenant}/resources/{type}/{id}", P::AuthzRead),
    route("PUT", "/tenants/{tenant}/resources/{type}/{id}", P::AuthzWrite),
    route("DELETE", "/tenants/{tenant}/resources/{type}/{id}", P::AuthzWrite),
    route(
        "GET",
        "/tenants/{tenant}/resources/{type}/{id}/grants",
        P::AuthzRead,
    ),
    route(
        "POST",
        "/tenants/{tenant}/resources/{type}/{id}/grants",
        P::AuthzWrite,
    ),
    route(
        "DELETE",
        "/tenants/{tenant}/resources/{type}/{id}/grants/{relation}/{subject_type}/{subject_id}",
        P::AuthzWrite,
    ),
    route("POST", "/tenants/{tenant}/authz/check", P::AuthzRead),
    route("POST", "/tenants/{tenant}/authz/list", P::AuthzRead),
];

/// The table's line for a matched route (`path` after `/admin/v1`).
pub fn find_route(method: &str, path: &str) -> Option<&'static AdminRoute> {
    ADMIN_ROUTES
        .iter()
        .find(|r| r.method.eq_ignore_ascii_case(method) && r.path == path)
}

/// Who is calling the admin API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Actor {
    /// A server-wide admin token: everything.
    Operator { token: String },
    /// A scoped admin token: its permissions within one tenant.
    ScopedToken {
        token: String,
        tenant: TenantId,
        permissions: Vec<Permission>,
    },
    /// A person of a tenant, with an access token for [`ADMIN_AUDIENCE`].
    Person {
        tenant: TenantId,
        user: UserId,
        username: String,
        /// Admin by hand or by SSO.
        admin: bool,
    },
    /// A client calling with a client-credentials token, with the admin permissions it was granted.
    Client {
        tenant: TenantId,
        client: ClientId,
        permissions: Vec<Permission>,
    },
}

impl Actor {
    /// The tenant a tenant-scoped actor is limited to; `None` for operators.
    pub fn tenant(&self) -> Option<&TenantId> {
        match self {
            Actor::Operator { .. } => None,
            Actor::ScopedToken { tenant, .. }
            | Actor::Person { tenant, .. }
            | Actor::Client { tenant, .. } => Some(tenant),
        }
    }

    /// `operator`, `admin_token`, `tenant_admin`, `member` or `client`: the audit log's actor kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Actor::Operator { .. } => "operator",
            Actor::ScopedToken { .. } => "admin_token",
            Actor::Person { admin: true, .. } => "tenant_admin",
            Actor::Person { admin: false, .. } => "member",
            Actor::Client { .. } => "client",
        }
    }

    /// The actor's id in the audit log: the token's name, the user's id or the client's id.
    pub fn id(&self) -> &str {
        match self {
            Actor::Operator { token } | Actor::ScopedToken { token, .. } => token,
            Actor::Person { user, .. } => user.as_str(),
            Actor::Client { client, .. } => client.as_str(),
        }
    }

    /// Whether the actor holds `permission` in the tenant it is limited to (any, for operators).
    /// Members hold nothing in general; [`decide`] lets them read about themselves.
    pub fn holds(&self, permission: Permission) -> bool {
        match self {
            Actor::Operator { .. } => true,
            _ if permission.server_wide() => false,
            Actor::Person { admin, .. } => *admin,
            Actor::ScopedToken { permissions, .. } | Actor::Client { permissions, .. } => {
                permissions.contains(&permission)
            }
        }
    }
}

/// What the path of a request names, for the decision.
#[derive(Clone, Copy, Debug, Default)]
pub struct Target<'a> {
    /// `{tenant}`, if the route has one.
    pub tenant: Option<&'a str>,
    /// `{user}` (an id or a username), if the route has one.
    pub user: Option<&'a str>,
}

/// The decision for `actor` calling `route` (`None`: a route missing from the table) on
/// `target`. `Forbidden` / `InsufficientScope` name the permission needed; a tenant-scoped
/// actor asking about another tenant gets `NotFound`, as for a tenant that does not exist.
pub fn decide(actor: &Actor, route: Option<&AdminRoute>, target: Target<'_>) -> Result<()> {
    let Some(route) = route else {
        return Err(Error::Forbidden(
            "this admin route is in no policy, so nobody may call it".into(),
        ));
    };
    let permission = route.permission;
    if let Some(own) = actor.tenant() {
        match target.tenant {
            Some(t) if t != own.as_str() => {
                return Err(Error::NotFound(format!(
                    "tenant '{}' does not exist",
                    t.escape_debug()
                )))
            }
            Some(_) => {}
            None => {
                return Err(Error::Forbidden(format!(
                    "'{permission}' is server-wide: only an operator's admin token may do this"
                )))
            }
        }
    }
    if actor.holds(permission) {
        return Ok(());
    }
    if let Actor::Person {
        user,
        username,
        admin: false,
        ..
    } = actor
    {
        if route.own_user && target.user.is_some_and(|u| u == user.as_str() || u == username) {
            return Ok(());
        }
    }
    if permission.server_wide() {
        return Err(Error::Forbidden(format!(
            "'{permission}' is server-wide: only an operator's admin token may do this"
        )));
    }
    match actor {
        Actor::Person { .. } => Err(Error::Forbidden(format!(
            "'{permission}' is needed: only the tenant's admins may do this"
        ))),
        _ => Err(Error::InsufficientScope(format!(
            "'{permission}' is needed and this credential does not hold it"
        ))),
    }
}

/// A stored admin token: server-wide (no tenant) or scoped to one tenant and some permissions.
/// The token itself is never stored, only its SHA-256.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AdminTokenInfo {
    pub name: String,
    pub tenant: Option<TenantId>,
    /// Empty for a server-wide token (which may do everything).
    pub permissions: Vec<Permission>,
    pub created_at: i64,
    pub expires_at: Option<i64>,
}

impl AdminTokenInfo {
    pub fn expired(&self, now: i64) -> bool {
        self.expires_at.is_some_and(|e| now >= e)
    }

    /// The actor this token makes its bearer.
    pub fn actor(&self) -> Actor {
        match &self.tenant {
            None => Actor::Operator {
                token: self.name.clone(),
            },
            Some(t) => Actor::ScopedToken {
                token: self.name.clone(),
                tenant: t.clone(),
                permissions: self.permissions.clone(),
            },
        }
    }
}

/// Checks a new admin token's shape: a name, permissions only with a tenant (and then at least
/// one, none server-wide), an expiry in the future.
pub fn check_admin_token(info: &AdminTokenInfo, now: i64) -> Result<()> {
    if info.name.is_empty() || info.name.len() > 64 || info.name.chars().any(|c| c.is_control()) {
        return Err(Error::invalid_request(
            "an admin token's name is 1 to 64 characters, none of them control characters",
        ));
    }
    match &info.tenant {
        None if !info.permissions.is_empty() => {
            return Err(Error::invalid_request(
                "permissions limit a token to one tenant: give the tenant too",
            ))
        }
        Some(_) if info.permissions.is_empty() => {
            return Err(Error::invalid_request(
                "a tenant's admin token needs at least one permission",
            ))
        }
        Some(_) => {
            if let Some(p) = info.permissions.iter().find(|p| p.server_wide()) {
                return Err(Error::invalid_request(format!(
                    "'{p}' is server-wide and cannot be held within one tenant"
                )));
            }
        }
        None => {}
    }
    if info.expires_at.is_some_and(|e| e <= now) {
        return Err(Error::invalid_request("the expiry must be in the future"));
    }
    Ok(())
}

/// Parses a duration such as `30d`, `12h`, `45m`, `90s` into seconds.
pub fn parse_duration(s: &str) -> Result<i64> {
    let bad = || {
        Error::invalid_request(format!(
            "'{}' is not a duration: a number and s, m, h or d (e.g. 30d)",
            s.escape_debug()
        ))
    };
    let (n, unit) = s.split_at(s.len().saturating_sub(1));
    let n: i64 = n.parse().map_err(|_| bad())?;
    let per = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return Err(bad()),
    };
    n.checked_mul(per).filter(|v| *v > 0).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tid(s: &str) -> TenantId {
        TenantId::parse(s).unwrap()
    }

    #[test]
    fn every_route_is_listed_once_and_permissions_round_trip() {
        for (i, r) in ADMIN_ROUTES.iter().enumerate() {
            assert!(
                ADMIN_ROUTES[i + 1..]
                    .iter()
                    .all(|o| !(o.method == r.method && o.path == r.path)),
                "{} {} twice",
                r.method,
                r.path
            );
            assert!(!r.own_user || r.path.contains("{user}"));
        }
        for p in Permission::ALL {
            assert_eq!(Permission::parse(p.as_str()).unwrap(), *p);
        }
        assert!(Permission::parse("everything").is_err());
    }

    #[test]
    fn decisions() {
        let users_read = find_route("GET", "/tenants/{tenant}/users/{user}");
        let tenants = find_route("POST", "/tenants");
        let op = Actor::Operator { token: "root".into() };
        let t = Target {
            tenant: Some("acme"),
            user: Some("alice"),
        };
        assert!(decide(&op, tenants, Target::default()).is_ok());
        assert!(matches!(decide(&op, None, t), Err(Error::Forbidden(_))));

        let scoped = Actor::ScopedToken {
            token: "ci".into(),
            tenant: tid("acme"),
            permissions: vec![P::ClientsRead],
        };
        assert!(matches!(
            decide(&scoped, users_read, t),
            Err(Error::InsufficientScope(m)) if m.contains("users:read")
        ));
        assert!(decide(&scoped, find_route("GET", "/tenants/{tenant}/clients"), t).is_ok());
        let other = Target {
            tenant: Some("other"),
            user: None,
        };
        assert!(matches!(
            decide(&scoped, find_route("GET", "/tenants/{tenant}/clients"), other),
            Err(Error::NotFound(_))
        ));
        assert!(matches!(
            decide(&scoped, tenants, Target::default()),
            Err(Error::Forbidden(_))
        ));

        let member = Actor::Person {
            tenant: tid("acme"),
            user: UserId::parse("u1").unwrap(),
            username: "alice".into(),
            admin: false,
        };
        assert!(decide(&member, users_read, t).is_ok());
        let bob = Target {
            tenant: Some("acme"),
            user: Some("bob"),
        };
        assert!(matches!(
            decide(&member, users_read, bob),
            Err(Error::Forbidden(_))
        ));
        assert!(matches!(
            decide(&member, find_route("PATCH", "/tenants/{tenant}/users/{user}"), t),
            Err(Error::Forbidden(_))
        ));
        let admin = Actor::Person {
            tenant: tid("acme"),
            user: UserId::parse("u1").unwrap(),
            username: "alice".into(),
            admin: true,
        };
        assert!(decide(&admin, users_read, bob).is_ok());
        assert!(matches!(
            decide(&admin, find_route("POST", "/tenants/{tenant}/disable"), t),
            Err(Error::Forbidden(_))
        ));
    }

    #[test]
    fn admin_token_shapes_and_durations() {
        let mut info = AdminTokenInfo {
            name: "ci".into(),
            tenant: None,
            permissions: vec![],
            created_at: 0,
            expires_at: Some(100),
        };
        assert!(check_admin_token(&info, 10).is_ok());
        assert!(check_admin_token(&info, 100).is_err());
        info.permissions = vec![P::ClientsRead];
        assert!(check_admin_token(&info, 10).is_err());
        info.tenant = Some(tid("acme"));
        assert!(check_admin_token(&info, 10).is_ok());
        info.permissions.push(P::TenantsManage);
        assert!(check_admin_token(&info, 10).is_err());
        assert_eq!(parse_duration("30d").unwrap(), 30 * 86400);
        assert_eq!(parse_duration("90s").unwrap(), 90);
        assert!(parse_duration("d").is_err());
        assert!(parse_duration("-1h").is_err());
        assert!(parse_duration("5y").is_err());
    }
}
