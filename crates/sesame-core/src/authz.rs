//! Authorization for applications: teams, resources with relations, grants, and the check.
//!
//! - A **team** belongs to a tenant; its members are `member` or `manager`. A team may follow an
//!   IdP group (connection + group name): its members are then set at each SSO sign-in
//!   ([`sync_idp_teams`]) and refused as manual edits.
//! - A **resource type** names its relations and the actions each allows (by default
//!   `viewer` ⊂ `editor` ⊂ `owner`). A **resource** is `(type, id)` with an optional parent.
//! - A **grant** gives a relation on a resource to a user or a team. A relation granted on a
//!   resource holds on every descendant too (by the same name), and an action is allowed when
//!   the person holds, directly or through a team, a relation of the resource's own type that
//!   lists the action.
//!
//! Answers come from a [`Graph`] of the whole tenant, built from one consistent
//! [`AuthzSnapshot`]. Every change advances the tenant's `authz_version` in its own transaction;
//! [`AuthzCache::graph`] reads that version (one primary-key read) before every answer and
//! uses a graph only if it was built at that version, so a change is seen by every replica's
//! next check once the changing call has returned.

use crate::ids::{ConnectionId, TeamId, TenantId, UserId};
use crate::store::Store;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};

/// At most this many checks in one batch request.
pub const MAX_BATCH: usize = 100;
/// At most this many ids in one `list` answer (the default when no limit is asked).
pub const MAX_LIST: usize = 1000;
/// The relation whose last grant on a resource cannot be removed.
pub const OWNER: &str = "owner";
/// How many answers a tenant graph remembers before it forgets them all.
const MEMO_ANSWERS: usize = 100_000;

/// A member's role in a team: managers may add and remove members.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TeamRole {
    Member,
    Manager,
}

impl TeamRole {
    pub fn as_str(self) -> &'static str {
        match self {
            TeamRole::Member => "member",
            TeamRole::Manager => "manager",
        }
    }

    pub fn parse(s: &str) -> Result<TeamRole> {
        match s {
            "member" => Ok(TeamRole::Member),
            "manager" => Ok(TeamRole::Manager),
            other => Err(Error::InvalidRequest(format!(
                "unknown team role '{}': valid roles are member, manager",
                other.escape_debug()
            ))),
        }
    }
}

/// The IdP group a team follows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdpGroup {
    pub connection: ConnectionId,
    pub group: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Team {
    #[serde(skip)]
    pub tenant_id: TenantId,
    pub id: TeamId,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idp_group: Option<IdpGroup>,
    pub created_at: i64,
}

impl Team {
    /// The refusal of a manual member edit, for a team whose members follow an IdP group.
    pub fn manual_edit_refusal(&self) -> Option<String> {
        self.idp_group.as_ref().map(|g| {
            format!(
                "team {} follows IdP group {} of connection {}: its members change only at sign-in",
                self.id, g.group, g.connection
            )
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TeamMember {
    pub user_id: UserId,
    pub role: TeamRole,
}

/// A resource type and its relations → actions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ResourceType {
    #[serde(skip)]
    pub tenant_id: TenantId,
    pub name: String,
    pub relations: BTreeMap<String, BTreeSet<String>>,
    pub created_at: i64,
}

/// `viewer`: read; `editor`: read, write; `owner`: read, write, share, delete.
pub fn default_relations() -> BTreeMap<String, BTreeSet<String>> {
    let set = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    BTreeMap::from([
        ("viewer".to_owned(), set(&["read"])),
        ("editor".to_owned(), set(&["read", "write"])),
        (OWNER.to_owned(), set(&["read", "write", "share", "delete"])),
    ])
}

impl ResourceType {
    /// Every action some relation of the type allows.
    pub fn actions(&self) -> BTreeSet<&str> {
        self.relations.values().flatten().map(String::as_str).collect()
    }

    /// `InvalidRequest` naming the valid relations.
    pub fn require_relation(&self, relation: &str) -> Result<()> {
        if self.relations.contains_key(relation) {
            return Ok(());
        }
        Err(Error::InvalidRequest(format!(
            "unknown relation '{}' for type '{}': valid relations are {}",
            relation.escape_debug(),
            self.name,
            join(self.relations.keys().map(String::as_str))
        )))
    }

    /// `InvalidRequest` naming the valid actions.
    pub fn require_action(&self, action: &str) -> Result<()> {
        if self.relations.values().any(|a| a.contains(action)) {
            return Ok(());
        }
        Err(Error::InvalidRequest(format!(
            "unknown action '{}' for type '{}': valid actions are {}",
            action.escape_debug(),
            self.name,
            join(self.actions().into_iter())
        )))
    }
}

fn join<'a>(items: impl Iterator<Item = &'a str>) -> String {
    items.collect::<Vec<_>>().join(", ")
}

/// A name of a type, relation or action: 1–64 of lower-case letters, digits, `-`, `_`, `.`.
pub fn parse_name(what: &str, s: &str) -> Result<String> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'));
    if !ok {
        return Err(Error::InvalidRequest(format!(
            "{what} '{}' is not valid: use 1 to 64 of a-z, 0-9, '-', '_', '.'",
            s.escape_debug()
        )));
    }
    Ok(s.to_owned())
}

/// A resource id: 1–200 printable ASCII characters without spaces.
pub fn parse_resource_id(s: &str) -> Result<String> {
    if s.is_empty() || s.len() > 200 || !s.chars().all(|c| c.is_ascii_graphic()) {
        return Err(Error::InvalidRequest(format!(
            "resource id '{}' is not valid: use 1 to 200 printable ASCII characters without spaces",
            s.escape_debug()
        )));
    }
    Ok(s.to_owned())
}

/// A resource by type and id, within a tenant.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ResourceRef {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
}

impl ResourceRef {
    pub fn new(kind: &str, id: &str) -> ResourceRef {
        ResourceRef {
            kind: kind.to_owned(),
            id: id.to_owned(),
        }
    }

    /// Validates both parts.
    pub fn parse(kind: &str, id: &str) -> Result<ResourceRef> {
        Ok(ResourceRef {
            kind: parse_name("resource type", kind)?,
            id: parse_resource_id(id)?,
        })
    }
}

impl std::fmt::Display for ResourceRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.kind, self.id)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Resource {
    #[serde(skip)]
    pub tenant_id: TenantId,
    #[serde(flatten)]
    pub resource: ResourceRef,
    pub parent: Option<ResourceRef>,
    pub created_at: i64,
}

/// Who a grant is to: `{"type": "user", "id": …}` or `{"type": "team", "id": …}`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "type", content = "id", rename_all = "lowercase")]
pub enum Subject {
    User(UserId),
    Team(TeamId),
}

impl Subject {
    pub fn kind(&self) -> &'static str {
        match self {
            Subject::User(_) => "user",
            Subject::Team(_) => "team",
        }
    }

    pub fn id(&self) -> &str {
        match self {
            Subject::User(u) => u.as_str(),
            Subject::Team(t) => t.as_str(),
        }
    }

    pub fn parse(kind: &str, id: &str) -> Result<Subject> {
        match kind {
            "user" => Ok(Subject::User(UserId::parse(id)?)),
            "team" => Ok(Subject::Team(TeamId::parse(id)?)),
            other => Err(Error::InvalidRequest(format!(
                "unknown subject type '{}': valid types are user, team",
                other.escape_debug()
            ))),
        }
    }
}

/// A relation on a resource, given to a subject.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Grant {
    pub resource: ResourceRef,
    pub relation: String,
    pub subject: Subject,
}

/// A tenant's authorization data as of `version`, read in one transaction.
#[derive(Clone, Debug, Default)]
pub struct AuthzSnapshot {
    pub version: i64,
    pub types: Vec<ResourceType>,
    pub resources: Vec<Resource>,
    pub grants: Vec<Grant>,
    pub members: Vec<(TeamId, UserId, TeamRole)>,
    /// The tenant's disabled people: their grants answer no until they are enabled again.
    pub disabled: Vec<UserId>,
}

/// One step of the reason for an answer, from the resource asked about outwards.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "step", rename_all = "lowercase")]
pub enum Step {
    /// The resource is inside `parent`, where the grant was found.
    Parent {
        resource: ResourceRef,
        parent: ResourceRef,
    },
    /// The grant that allows the action.
    Grant(Grant),
    /// The person holds the grant as a member of this team.
    Member {
        team: TeamId,
        user: UserId,
        role: TeamRole,
    },
}

/// A check's answer. `path` is empty when the action is not allowed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub allowed: bool,
    pub path: Vec<Step>,
}

/// One question: may `user` do `action` on `resource`?
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Check {
    pub subject: CheckSubject,
    pub action: String,
    pub resource: ResourceRef,
}

/// Checks are asked about people (`{"type": "user", "id": …}`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", content = "id", rename_all = "lowercase")]
pub enum CheckSubject {
    User(UserId),
}

impl CheckSubject {
    pub fn user(&self) -> &UserId {
        match self {
            CheckSubject::User(u) => u,
        }
    }
}

/// The denial of a check, for the caller to record (an audit event) if it wishes.
pub fn denial<'a>(check: &'a Check, decision: &Decision) -> Option<&'a Check> {
    (!decision.allowed).then_some(check)
}

/// A tenant's authorization graph at one version, with the answers it gave.
pub struct Graph {
    pub version: i64,
    types: HashMap<String, ResourceType>,
    parents: HashMap<ResourceRef, Option<ResourceRef>>,
    children: HashMap<ResourceRef, Vec<ResourceRef>>,
    /// Per resource, its grants: users' before teams', each in a stable order.
    grants_on: HashMap<ResourceRef, Vec<Grant>>,
    /// Per subject, the resources and relations granted to it.
    grants_to: HashMap<Subject, Vec<(ResourceRef, String)>>,
    teams_of: HashMap<UserId, Vec<(TeamId, TeamRole)>>,
    disabled: HashSet<UserId>,
    memo: Mutex<HashMap<(UserId, String, ResourceRef), Arc<Decision>>>,
}

impl Graph {
    pub fn build(snapshot: AuthzSnapshot) -> Graph {
        let mut parents = HashMap::with_capacity(snapshot.resources.len());
        let mut children: HashMap<ResourceRef, Vec<ResourceRef>> = HashMap::new();
        for r in snapshot.resources {
            if let Some(p) = &r.parent {
                children.entry(p.clone()).or_default().push(r.resource.clone());
            }
            parents.insert(r.resource, r.parent);
        }
        let mut grants = snapshot.grants;
        grants.sort();
        let mut grants_on: HashMap<ResourceRef, Vec<Grant>> = HashMap::new();
        let mut grants_to: HashMap<Subject, Vec<(ResourceRef, String)>> = HashMap::new();
        for g in grants {
            grants_to
                .entry(g.subject.clone())
                .or_default()
                .push((g.resource.clone(), g.relation.clone()));
            grants_on.entry(g.resource.clone()).or_default().push(g);
        }
        let mut teams_of: HashMap<UserId, Vec<(TeamId, TeamRole)>> = HashMap::new();
        for (team, user, role) in snapshot.members {
            teams_of.entry(user).or_default().push((team, role));
        }
        for teams in teams_of.values_mut() {
            teams.sort();
        }
        Graph {
            version: snapshot.version,
            types: snapshot.types.into_iter().map(|t| (t.name.clone(), t)).collect(),
            parents,
            children,
            grants_on,
            grants_to,
            teams_of,
            disabled: snapshot.disabled.into_iter().collect(),
            memo: Mutex::new(HashMap::new()),
        }
    }

    /// The type, or `InvalidRequest` naming the valid ones.
    pub fn resource_type(&self, name: &str) -> Result<&ResourceType> {
        self.types.get(name).ok_or_else(|| {
            let mut names: Vec<_> = self.types.keys().map(String::as_str).collect();
            names.sort_unstable();
            Error::InvalidRequest(format!(
                "unknown resource type '{}': valid types are {}",
                name.escape_debug(),
                if names.is_empty() {
                    "(none declared)".to_owned()
                } else {
                    names.join(", ")
                }
            ))
        })
    }

    /// The relations of `kind` that allow `action` (refusing unknown types and actions).
    fn relations_for(&self, kind: &str, action: &str) -> Result<HashSet<&str>> {
        let t = self.resource_type(kind)?;
        t.require_action(action)?;
        Ok(t.relations
            .iter()
            .filter(|(_, actions)| actions.contains(action))
            .map(|(r, _)| r.as_str())
            .collect())
    }

    /// May the person do `action` on `resource`? Unknown types and actions are `InvalidRequest`;
    /// a resource the tenant does not have is `NotFound`.
    pub fn check(&self, user: &UserId, action: &str, resource: &ResourceRef) -> Result<Arc<Decision>> {
        let key = (user.clone(), action.to_owned(), resource.clone());
        if let Some(d) = self.memo.lock().expect("lock").get(&key) {
            return Ok(d.clone());
        }
        let decision = Arc::new(self.evaluate(user, action, resource)?);
        let mut memo = self.memo.lock().expect("lock");
        if memo.len() >= MEMO_ANSWERS {
            memo.clear();
        }
        memo.insert(key, decision.clone());
        Ok(decision)
    }

    /// [`check`](Graph::check) without the remembered answers.
    pub fn evaluate(&self, user: &UserId, action: &str, resource: &ResourceRef) -> Result<Decision> {
        let wanted = self.relations_for(&resource.kind, action)?;
        if !self.parents.contains_key(resource) {
            return Err(Error::NotFound(format!("resource {resource} does not exist")));
        }
        if self.disabled.contains(user) {
            return Ok(Decision {
                allowed: false,
                path: Vec::new(),
            });
        }
        let teams = self.teams_of.get(user).map(Vec::as_slice).unwrap_or(&[]);
        let mut path = Vec::new();
        let mut node = resource.clone();
        // The store refuses cycles; the bound only guards against a corrupt store.
        for _ in 0..=self.parents.len() {
            for g in self.grants_on.get(&node).map(Vec::as_slice).unwrap_or(&[]) {
                if !wanted.contains(g.relation.as_str()) {
                    continue;
                }
                match &g.subject {
                    Subject::User(u) if u == user => {
                        path.push(Step::Grant(g.clone()));
                        return Ok(Decision { allowed: true, path });
                    }
                    Subject::Team(t) => {
                        if let Some((_, role)) = teams.iter().find(|(team, _)| team == t) {
                            path.push(Step::Grant(g.clone()));
                            path.push(Step::Member {
                                team: t.clone(),
                                user: user.clone(),
                                role: *role,
                            });
                            return Ok(Decision { allowed: true, path });
                        }
                    }
                    Subject::User(_) => {}
                }
            }
            match self.parents.get(&node).cloned().flatten() {
                Some(parent) => {
                    path.push(Step::Parent {
                        resource: node,
                        parent: parent.clone(),
                    });
                    node = parent;
                }
                None => break,
            }
        }
        Ok(Decision {
            allowed: false,
            path: Vec::new(),
        })
    }

    /// The ids of resources of type `kind` on which the person may do `action`, sorted, after
    /// `after` (the previous page's last id), at most `limit`; and the cursor of the next page.
    pub fn list(
        &self,
        user: &UserId,
        action: &str,
        kind: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<String>, Option<String>)> {
        let limit = limit.clamp(1, MAX_LIST);
        // Relation names hold downwards by name, so the relations that allow the action on
        // `kind` are the ones to look for anywhere above it.
        let wanted = self.relations_for(kind, action)?;
        if self.disabled.contains(user) {
            return Ok((Vec::new(), None));
        }
        let mut roots: Vec<&ResourceRef> = Vec::new();
        let mut subjects = vec![Subject::User(user.clone())];
        if let Some(teams) = self.teams_of.get(user) {
            subjects.extend(teams.iter().map(|(t, _)| Subject::Team(t.clone())));
        }
        for s in &subjects {
            for (r, rel) in self.grants_to.get(s).map(Vec::as_slice).unwrap_or(&[]) {
                if wanted.contains(rel.as_str()) {
                    roots.push(r);
                }
            }
        }
        let mut seen: HashSet<&ResourceRef> = HashSet::new();
        let mut ids: Vec<&str> = Vec::new();
        let mut stack = roots;
        while let Some(r) = stack.pop() {
            if !seen.insert(r) {
                continue;
            }
            if r.kind == kind && after.is_none_or(|a| r.id.as_str() > a) {
                ids.push(&r.id);
            }
            if let Some(c) = self.children.get(r) {
                stack.extend(c.iter());
            }
        }
        ids.sort_unstable();
        let more = ids.len() > limit;
        ids.truncate(limit);
        let next = more.then(|| ids.last().map(|s| s.to_string())).flatten();
        Ok((ids.into_iter().map(str::to_owned).collect(), next))
    }

    /// The teams a user is in, with the role.
    pub fn teams_of(&self, user: &UserId) -> &[(TeamId, TeamRole)] {
        self.teams_of.get(user).map(Vec::as_slice).unwrap_or(&[])
    }
}

/// Per-tenant graphs, shared by a process's requests. See the module comment for the rule.
#[derive(Default)]
pub struct AuthzCache {
    graphs: RwLock<HashMap<TenantId, Arc<Graph>>>,
}

impl AuthzCache {
    /// The tenant's graph at the store's current `authz_version`: one primary-key read, plus a
    /// full load when the version moved since the graph was built.
    pub async fn graph(&self, store: &dyn Store, tenant: &TenantId) -> Result<Arc<Graph>> {
        let version = store.authz_version(tenant).await?;
        if let Some(g) = self.graphs.read().expect("lock").get(tenant) {
            if g.version == version {
                return Ok(g.clone());
            }
        }
        // Read after `version`, in one transaction: at least as new as what was asked.
        let graph = Arc::new(Graph::build(store.load_authz(tenant).await?));
        let mut graphs = self.graphs.write().expect("lock");
        match graphs.get(tenant) {
            Some(g) if g.version >= graph.version => {}
            _ => {
                graphs.insert(tenant.clone(), graph.clone());
            }
        }
        Ok(graph)
    }
}

// Changes ------------------------------------------------------------------------------------
// Each validates what it names against the tenant (unknown names are refused with the valid
// ones; another tenant's ids are `NotFound`) and leaves the rest (existence under concurrency,
// cycles, the last owner) to the store's transaction.

async fn require_user(store: &dyn Store, tenant: &TenantId, id_or_name: &str) -> Result<UserId> {
    store
        .get_user(tenant, id_or_name)
        .await?
        .map(|u| u.id)
        .ok_or_else(|| Error::NotFound(format!("user '{}' does not exist", id_or_name.escape_debug())))
}

/// The user a path names, by id or username.
pub async fn find_user(store: &dyn Store, tenant: &TenantId, id_or_name: &str) -> Result<UserId> {
    require_user(store, tenant, id_or_name).await
}

pub async fn require_team(store: &dyn Store, tenant: &TenantId, id: &str) -> Result<Team> {
    let not_found = || Error::NotFound(format!("team '{}' does not exist", id.escape_debug()));
    let id = TeamId::parse(id).map_err(|_| not_found())?;
    store.get_team(tenant, &id).await?.ok_or_else(not_found)
}

/// What the admin API takes to create a team.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTeam {
    pub id: String,
    pub name: Option<String>,
    pub idp_group: Option<IdpGroup>,
}

pub async fn create_team(store: &dyn Store, tenant: &TenantId, new: NewTeam, now: i64) -> Result<Team> {
    crate::admin::require_tenant(store, tenant).await?;
    let id = TeamId::parse(&new.id)?;
    if let Some(g) = &new.idp_group {
        if g.group.is_empty() || g.group.len() > 256 {
            return Err(Error::invalid_request(
                "the IdP group name must be 1 to 256 characters",
            ));
        }
        if store.get_sso_connection(tenant, &g.connection).await?.is_none() {
            return Err(Error::NotFound(format!(
                "connection '{}' does not exist in tenant '{tenant}'",
                g.connection
            )));
        }
    }
    let team = Team {
        tenant_id: tenant.clone(),
        name: new.name.unwrap_or_else(|| id.to_string()),
        id,
        idp_group: new.idp_group,
        created_at: now,
    };
    if team.name.is_empty() || team.name.len() > 200 {
        return Err(Error::invalid_request(
            "the team name must be 1 to 200 characters",
        ));
    }
    store.create_team(&team).await?;
    Ok(team)
}

/// A manual member change (admin or manager): refused for a team that follows an IdP group.
pub async fn put_member(
    store: &dyn Store,
    tenant: &TenantId,
    team: &Team,
    user: &str,
    role: TeamRole,
) -> Result<UserId> {
    if let Some(refusal) = team.manual_edit_refusal() {
        return Err(Error::Refused(refusal));
    }
    let user = require_user(store, tenant, user).await?;
    if !store.put_team_member(tenant, &team.id, &user, role).await? {
        return Err(Error::NotFound(format!("team '{}' does not exist", team.id)));
    }
    Ok(user)
}

/// Removes a member by hand; `false` if the user was not one.
pub async fn remove_member(store: &dyn Store, tenant: &TenantId, team: &Team, user: &str) -> Result<bool> {
    if let Some(refusal) = team.manual_edit_refusal() {
        return Err(Error::Refused(refusal));
    }
    let user = require_user(store, tenant, user).await?;
    store.remove_team_member(tenant, &team.id, &user).await
}

/// What the admin API takes to declare a type; no relations means the default ones.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewResourceType {
    pub relations: Option<BTreeMap<String, Vec<String>>>,
}

pub async fn put_resource_type(
    store: &dyn Store,
    tenant: &TenantId,
    name: &str,
    spec: NewResourceType,
    now: i64,
) -> Result<ResourceType> {
    crate::admin::require_tenant(store, tenant).await?;
    let name = parse_name("resource type", name)?;
    let relations = match spec.relations {
        None => default_relations(),
        Some(map) => {
            let mut out = BTreeMap::new();
            for (rel, actions) in map {
                let rel = parse_name("relation", &rel)?;
                let actions = actions
                    .iter()
                    .map(|a| parse_name("action", a))
                    .collect::<Result<BTreeSet<_>>>()?;
                if actions.is_empty() {
                    return Err(Error::InvalidRequest(format!(
                        "relation '{rel}' allows no action"
                    )));
                }
                out.insert(rel, actions);
            }
            if !out.contains_key(OWNER) || out.len() > 32 {
                return Err(Error::invalid_request(
                    "a type has 1 to 32 relations, one of them 'owner' (the relation that cannot lose its last holder)",
                ));
            }
            out
        }
    };
    let t = ResourceType {
        tenant_id: tenant.clone(),
        name,
        relations,
        created_at: now,
    };
    store.put_resource_type(&t).await?;
    Ok(t)
}

async fn require_type(store: &dyn Store, tenant: &TenantId, name: &str) -> Result<ResourceType> {
    let types = store.list_resource_types(tenant).await?;
    let names: Vec<_> = types.iter().map(|t| t.name.clone()).collect();
    types.into_iter().find(|t| t.name == name).ok_or_else(|| {
        Error::InvalidRequest(format!(
            "unknown resource type '{}': valid types are {}",
            name.escape_debug(),
            if names.is_empty() {
                "(none declared)".to_owned()
            } else {
                names.join(", ")
            }
        ))
    })
}

/// Creates a resource, or moves it under another parent (or none). A move under one of its own
/// descendants is refused by the store (`Refused`, naming the cycle).
pub async fn put_resource(
    store: &dyn Store,
    tenant: &TenantId,
    resource: ResourceRef,
    parent: Option<ResourceRef>,
    now: i64,
) -> Result<Resource> {
    crate::admin::require_tenant(store, tenant).await?;
    require_type(store, tenant, &resource.kind).await?;
    if let Some(p) = &parent {
        require_type(store, tenant, &p.kind).await?;
        if *p == resource {
            return Err(Error::Refused(format!("{resource} cannot be its own parent")));
        }
    }
    let r = Resource {
        tenant_id: tenant.clone(),
        resource,
        parent,
        created_at: now,
    };
    store.put_resource(&r).await?;
    Ok(r)
}

pub async fn add_grant(store: &dyn Store, tenant: &TenantId, grant: &Grant, now: i64) -> Result<()> {
    crate::admin::require_tenant(store, tenant).await?;
    require_type(store, tenant, &grant.resource.kind)
        .await?
        .require_relation(&grant.relation)?;
    match &grant.subject {
        Subject::User(u) => {
            let found = store.get_user(tenant, u.as_str()).await?;
            if found.is_none_or(|f| f.id != *u) {
                return Err(Error::NotFound(format!("user '{u}' does not exist")));
            }
        }
        Subject::Team(t) => {
            require_team(store, tenant, t.as_str()).await?;
        }
    }
    store.add_grant(tenant, grant, now).await
}

/// Removes a grant; `false` if there was none. The last owner grant is refused by the store.
pub async fn remove_grant(store: &dyn Store, tenant: &TenantId, grant: &Grant) -> Result<bool> {
    require_type(store, tenant, &grant.resource.kind)
        .await?
        .require_relation(&grant.relation)?;
    store.remove_grant(tenant, grant).await
}

/// At an SSO sign-in through `connection`: the person becomes a member of every team that
/// follows one of `groups` at that connection, and stops being one of those that follow a
/// group they no longer have. One store transaction; the version moves only on a change.
pub async fn sync_idp_teams(
    store: &dyn Store,
    tenant: &TenantId,
    user: &UserId,
    connection: &ConnectionId,
    groups: &[String],
) -> Result<()> {
    store.sync_idp_teams(tenant, user, connection, groups).await
}

/// The most entries a `roles` or `groups` claim has in an access token; a longer list is left
/// out of the token (userinfo has it), so tokens stay small.
pub const MAX_CLAIM_ENTRIES: usize = 50;

/// A person's roles: `admin` or `member` in the tenant, then `team:<id>` for each team.
pub async fn roles(store: &dyn Store, user: &crate::model::User) -> Result<Vec<String>> {
    let admin = store.user_admin(&user.tenant_id, &user.id).await?.is_admin();
    let mut roles = vec![if admin { "admin" } else { "member" }.to_owned()];
    let teams = store.user_teams(&user.tenant_id, &user.id).await?;
    roles.extend(teams.iter().map(|(t, _)| format!("team:{t}")));
    Ok(roles)
}

/// The `roles` and `groups` claims of a person's access token, for a grant with the `roles` or
/// `groups` scope; `None` (and no store read: the token path is hot) without either. A list of
/// more than [`MAX_CLAIM_ENTRIES`] is left out.
pub async fn access_claims_if_asked(
    store: &dyn Store,
    user: &crate::model::User,
    scope: &str,
) -> Result<Option<serde_json::Map<String, serde_json::Value>>> {
    let has = |name: &str| scope.split(' ').any(|s| s == name);
    if !has("roles") && !has("groups") {
        return Ok(None);
    }
    let mut claims = serde_json::Map::new();
    if has("roles") {
        let roles = roles(store, user).await?;
        if roles.len() <= MAX_CLAIM_ENTRIES {
            claims.insert("roles".into(), serde_json::json!(roles));
        }
    }
    if has("groups") {
        let groups = store.user_groups(&user.tenant_id, &user.id).await?;
        if groups.len() <= MAX_CLAIM_ENTRIES {
            claims.insert("groups".into(), serde_json::json!(groups));
        }
    }
    Ok(Some(claims))
}
