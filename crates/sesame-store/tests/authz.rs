//! The `AuthzStore` on SQLite always and on PostgreSQL when `SESAME_TEST_DATABASE_URL` is set:
//! teams and members, IdP-group teams following SSO sign-ins, resources (cycles refused), grants
//! (the last owner stays), the version that moves with every change, tenants kept apart, and a
//! property test: random grant / revoke / move / team changes answer as a plain reference
//! evaluation does.

use proptest::prelude::*;
use sesame_core::authz::{
    self, AuthzCache, Grant, Graph, IdpGroup, NewResourceType, NewTeam, ResourceRef, Step, Subject, TeamRole,
};
use sesame_core::crypto::MasterKey;
use sesame_core::federation::{self, ConnectionSpec, UpstreamIdentity};
use sesame_core::ids::{TeamId, TenantId, UserId, Username};
use sesame_core::model::{Tenant, User};
use sesame_core::store::{AuthzStore, Store};
use sesame_core::Error;
use sesame_store::testing::TestDb;
use sesame_store::SqlStore;
use std::collections::{BTreeMap, BTreeSet, HashMap};

async fn stores() -> Vec<(TestDb, SqlStore)> {
    let mut out = Vec::new();
    let db = TestDb::sqlite();
    let s = SqlStore::connect(&db.url).await.unwrap();
    out.push((db, s));
    if let Some(db) = TestDb::postgres().await {
        let s = SqlStore::connect(&db.url).await.unwrap();
        out.push((db, s));
    }
    out
}

async fn tenant(s: &SqlStore, name: &str) -> TenantId {
    let t = TenantId::parse(name).unwrap();
    s.create_tenant(&Tenant::new(t.clone(), 100), &[]).await.unwrap();
    t
}

async fn user(s: &SqlStore, t: &TenantId, name: &str) -> UserId {
    let u = User {
        tenant_id: t.clone(),
        id: UserId::generate(),
        username: Username::parse(name).unwrap(),
        email: Some(format!("{name}@example.com")),
        email_verified: true,
        name: None,
        picture: None,
        disabled: false,
        password_hash: None,
        created_at: 100,
        updated_at: 100,
    };
    s.create_user(&u).await.unwrap();
    u.id
}

fn team_spec(id: &str) -> NewTeam {
    NewTeam {
        id: id.into(),
        name: None,
        idp_group: None,
    }
}

fn r(kind: &str, id: &str) -> ResourceRef {
    ResourceRef::new(kind, id)
}

fn grant(res: &ResourceRef, relation: &str, subject: Subject) -> Grant {
    Grant {
        resource: res.clone(),
        relation: relation.into(),
        subject,
    }
}

async fn declare(s: &SqlStore, t: &TenantId, kinds: &[&str]) {
    for k in kinds {
        authz::put_resource_type(s, t, k, NewResourceType::default(), 100)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn grants_resources_and_teams_follow_the_rules() {
    for (_db, s) in stores().await {
        let t = tenant(&s, "acme").await;
        let other = tenant(&s, "other").await;
        let alice = user(&s, &t, "alice").await;
        let bob = user(&s, &t, "bob").await;
        let mallory = user(&s, &other, "mallory").await;
        assert_eq!(s.authz_version(&t).await.unwrap(), 0);
        declare(&s, &t, &["workspace", "project"]).await;
        let v1 = s.authz_version(&t).await.unwrap();
        assert!(v1 > 0, "a change moves the version");
        assert_eq!(s.authz_version(&other).await.unwrap(), 0, "per tenant");

        let (w, p) = (r("workspace", "w1"), r("project", "p1"));
        authz::put_resource(&s, &t, w.clone(), None, 100).await.unwrap();
        authz::put_resource(&s, &t, p.clone(), Some(w.clone()), 100)
            .await
            .unwrap();
        // A parent that does not exist, an unknown type, a cycle.
        assert!(matches!(
            authz::put_resource(&s, &t, r("project", "p2"), Some(r("workspace", "nope")), 100).await,
            Err(Error::NotFound(_))
        ));
        let e = authz::put_resource(&s, &t, r("model", "m1"), None, 100)
            .await
            .unwrap_err();
        assert!(
            e.to_string().contains("valid types are project, workspace"),
            "{e}"
        );
        let e = authz::put_resource(&s, &t, w.clone(), Some(p.clone()), 100)
            .await
            .unwrap_err();
        assert!(matches!(&e, Error::Refused(m) if m.contains("cycle")), "{e}");

        // Grants: unknown relation, users of another tenant, the last owner.
        let e = authz::add_grant(&s, &t, &grant(&w, "admin", Subject::User(alice.clone())), 100)
            .await
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("valid relations are editor, owner, viewer"),
            "{e}"
        );
        assert!(matches!(
            authz::add_grant(&s, &t, &grant(&w, "owner", Subject::User(mallory.clone())), 100).await,
            Err(Error::NotFound(_))
        ));
        let own = grant(&w, "owner", Subject::User(alice.clone()));
        authz::add_grant(&s, &t, &own, 100).await.unwrap();
        authz::add_grant(&s, &t, &own, 100).await.unwrap();
        let e = authz::remove_grant(&s, &t, &own).await.unwrap_err();
        assert!(matches!(&e, Error::Refused(m) if m.contains("last owner")), "{e}");
        assert_eq!(
            s.list_grants(&t, &w).await.unwrap(),
            vec![own.clone()],
            "nothing removed"
        );
        // A team as owner too: then alice may go, but the team may not be deleted after that.
        let eng = authz::create_team(&s, &t, team_spec("eng"), 100).await.unwrap();
        assert!(matches!(
            authz::create_team(&s, &t, team_spec("eng"), 100).await,
            Err(Error::Conflict(_))
        ));
        let team_owner = grant(&w, "owner", Subject::Team(eng.id.clone()));
        authz::add_grant(&s, &t, &team_owner, 100).await.unwrap();
        assert!(authz::remove_grant(&s, &t, &own).await.unwrap());
        assert!(!authz::remove_grant(&s, &t, &own).await.unwrap());
        assert!(matches!(s.delete_team(&t, &eng.id).await, Err(Error::Refused(_))));
        // Resources with children stay.
        assert!(matches!(s.delete_resource(&t, &w).await, Err(Error::Refused(_))));

        // Members; the graph answers through the team and up the parent.
        authz::put_member(&s, &t, &eng, "bob", TeamRole::Member)
            .await
            .unwrap();
        let g = Graph::build(s.load_authz(&t).await.unwrap());
        assert_eq!(g.version, s.authz_version(&t).await.unwrap());
        let d = g.check(&bob, "delete", &p).unwrap();
        assert!(d.allowed);
        assert_eq!(
            d.path,
            vec![
                Step::Parent {
                    resource: p.clone(),
                    parent: w.clone()
                },
                Step::Grant(team_owner.clone()),
                Step::Member {
                    team: eng.id.clone(),
                    user: bob.clone(),
                    role: TeamRole::Member
                },
            ]
        );
        assert!(!g.check(&alice, "read", &p).unwrap().allowed);
        assert!(g
            .check(&bob, "fly", &p)
            .unwrap_err()
            .to_string()
            .contains("valid actions are delete, read, share, write"));
        assert!(matches!(
            g.check(&bob, "read", &r("project", "zz")),
            Err(Error::NotFound(_))
        ));
        assert_eq!(
            g.list(&bob, "read", "project", None, 10).unwrap(),
            (vec!["p1".to_owned()], None)
        );
        // Another tenant sees none of it.
        let go = Graph::build(s.load_authz(&other).await.unwrap());
        assert!(go.resource_type("workspace").is_err());
        assert!(s.get_resource(&other, &w).await.unwrap().is_none());
        assert!(s.get_team(&other, &eng.id).await.unwrap().is_none());

        assert!(s.remove_team_member(&t, &eng.id, &bob).await.unwrap());
        assert_eq!(s.user_teams(&t, &bob).await.unwrap(), vec![]);
        s.close().await;
    }
}

#[tokio::test]
async fn idp_group_teams_follow_each_sign_in() {
    let master = MasterKey::generate().0;
    for (_db, s) in stores().await {
        let t = tenant(&s, "acme").await;
        let spec = ConnectionSpec {
            id: "corp".into(),
            kind: "oidc".into(),
            issuer: Some("https://idp.example".into()),
            discovery: true,
            client_id: Some("sesame".into()),
            client_secret: Some("s3cret".into()),
            enabled: true,
            groups_claim: Some("groups".into()),
            ..Default::default()
        };
        let c = federation::create_connection(&s, &master, &t, spec, 100)
            .await
            .unwrap();
        let backed = |id: &str, group: &str| NewTeam {
            id: id.into(),
            name: None,
            idp_group: Some(IdpGroup {
                connection: c.id.clone(),
                group: group.into(),
            }),
        };
        let eng = authz::create_team(&s, &t, backed("eng", "engineering"), 100)
            .await
            .unwrap();
        let ops = authz::create_team(&s, &t, backed("ops", "operations"), 100)
            .await
            .unwrap();
        let person = |groups: &[&str]| UpstreamIdentity {
            subject: "p1".into(),
            email: Some("p1@acme.example".into()),
            email_verified: true,
            name: None,
            groups: groups.iter().map(|g| g.to_string()).collect(),
        };
        let u = federation::sign_in(&s, &c, person(&["engineering", "other"]), 200)
            .await
            .unwrap()
            .unwrap()
            .user;
        let teams =
            |v: Vec<(TeamId, TeamRole)>| v.into_iter().map(|(t, _)| t.to_string()).collect::<Vec<_>>();
        assert_eq!(teams(s.user_teams(&t, &u.id).await.unwrap()), ["eng"]);
        let v = s.authz_version(&t).await.unwrap();
        federation::sign_in(&s, &c, person(&["engineering", "other"]), 210)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(s.authz_version(&t).await.unwrap(), v, "no change, no new version");
        federation::sign_in(&s, &c, person(&["operations"]), 300)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(teams(s.user_teams(&t, &u.id).await.unwrap()), ["ops"]);
        assert!(s.authz_version(&t).await.unwrap() > v);
        // Manual edits are refused with the team, the group and the connection named.
        let e = authz::put_member(&s, &t, &eng, u.id.as_str(), TeamRole::Member)
            .await
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "team eng follows IdP group engineering of connection corp: its members change only at sign-in"
        );
        assert!(authz::remove_member(&s, &t, &ops, u.id.as_str()).await.is_err());
        s.close().await;
    }
}

/// Writers and checkers at once, through the cache: after a revocation has returned, no check
/// that starts later says yes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_returned_revocation_is_seen_by_every_later_check() {
    for (_db, s) in stores().await {
        let s = std::sync::Arc::new(s);
        let t = tenant(&s, "acme").await;
        let alice = user(&s, &t, "alice").await;
        let bob = user(&s, &t, "bob").await;
        declare(&s, &t, &["doc"]).await;
        let docs: Vec<_> = (0..8).map(|i| r("doc", &format!("d{i}"))).collect();
        for d in &docs {
            authz::put_resource(&*s, &t, d.clone(), None, 100).await.unwrap();
            authz::add_grant(&*s, &t, &grant(d, "owner", Subject::User(alice.clone())), 100)
                .await
                .unwrap();
        }
        let cache = std::sync::Arc::new(AuthzCache::default());
        let mut tasks = Vec::new();
        for (i, d) in docs.iter().enumerate() {
            let (s, t, bob, d, cache) = (s.clone(), t.clone(), bob.clone(), d.clone(), cache.clone());
            tasks.push(tokio::spawn(async move {
                for round in 0..6 {
                    let g = grant(&d, "viewer", Subject::User(bob.clone()));
                    authz::add_grant(&*s, &t, &g, 100).await.unwrap();
                    // Someone checks while others write.
                    let _ = cache
                        .graph(&*s, &t)
                        .await
                        .unwrap()
                        .check(&bob, "read", &d)
                        .unwrap();
                    authz::remove_grant(&*s, &t, &g).await.unwrap();
                    let graph = cache.graph(&*s, &t).await.unwrap();
                    assert!(
                        !graph.check(&bob, "read", &d).unwrap().allowed,
                        "doc {i} round {round}: a check after the revocation returned said yes"
                    );
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        s.close().await;
    }
}

#[tokio::test]
async fn a_disabled_person_is_allowed_nothing_until_enabled_again() {
    for (_db, s) in stores().await {
        let t = tenant(&s, "acme").await;
        let alice = user(&s, &t, "alice").await;
        declare(&s, &t, &["doc"]).await;
        let d = r("doc", "d1");
        authz::put_resource(&s, &t, d.clone(), None, 100).await.unwrap();
        authz::add_grant(&s, &t, &grant(&d, "owner", Subject::User(alice.clone())), 100)
            .await
            .unwrap();
        let cache = AuthzCache::default();
        assert!(
            cache
                .graph(&s, &t)
                .await
                .unwrap()
                .check(&alice, "read", &d)
                .unwrap()
                .allowed
        );

        // Disabling is a change to the answers: the version moves with it, so the cached graph
        // is not used again.
        let before = s.authz_version(&t).await.unwrap();
        let mut u = s.get_user(&t, alice.as_str()).await.unwrap().unwrap();
        u.disabled = true;
        assert!(s.update_user(&u).await.unwrap());
        assert!(s.authz_version(&t).await.unwrap() > before);
        let graph = cache.graph(&s, &t).await.unwrap();
        let denied = graph.check(&alice, "read", &d).unwrap();
        assert!(!denied.allowed && denied.path.is_empty());
        assert_eq!(
            graph.list(&alice, "read", "doc", None, 10).unwrap(),
            (vec![], None)
        );

        // Another change to the person (not `disabled`) leaves the version alone.
        let v = s.authz_version(&t).await.unwrap();
        u.name = Some("Alice".into());
        assert!(s.update_user(&u).await.unwrap());
        assert_eq!(s.authz_version(&t).await.unwrap(), v);

        u.disabled = false;
        assert!(s.update_user(&u).await.unwrap());
        let graph = cache.graph(&s, &t).await.unwrap();
        assert!(graph.check(&alice, "read", &d).unwrap().allowed);
        assert_eq!(
            graph.list(&alice, "read", "doc", None, 10).unwrap(),
            (vec!["d1".to_owned()], None)
        );
        s.close().await;
    }
}

// The property test ---------------------------------------------------------------------------

const RESOURCES: [(&str, &str); 7] = [
    ("workspace", "w1"),
    ("workspace", "w2"),
    ("project", "p1"),
    ("project", "p2"),
    ("model", "m1"),
    ("model", "m2"),
    ("model", "m3"),
];
const USERS: usize = 3;
const TEAMS: [&str; 2] = ["t1", "t2"];

/// `model` declares a relation of its own; the others have the defaults.
fn relations(kind: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut rel = authz::default_relations();
    if kind == "model" {
        rel.insert("deployer".into(), ["deploy".to_owned()].into());
    }
    rel
}

#[derive(Clone, Debug)]
enum Op {
    Grant(usize, String, SubjectIx),
    Revoke(usize, String, SubjectIx),
    Move(usize, Option<usize>),
    TeamAdd(usize, usize),
    TeamRemove(usize, usize),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum SubjectIx {
    User(usize),
    Team(usize),
}

fn op() -> impl Strategy<Value = Op> {
    let subject = prop_oneof![
        (0..USERS).prop_map(SubjectIx::User),
        (0..TEAMS.len()).prop_map(SubjectIx::Team)
    ];
    let res = 0..RESOURCES.len();
    let relation = prop_oneof![Just("viewer"), Just("editor"), Just("owner"), Just("deployer")];
    prop_oneof![
        4 => (res.clone(), relation.clone(), subject.clone()).prop_map(|(r, rel, s)| Op::Grant(r, rel.into(), s)),
        3 => (res.clone(), relation, subject).prop_map(|(r, rel, s)| Op::Revoke(r, rel.into(), s)),
        3 => (res.clone(), proptest::option::of(res)).prop_map(|(r, p)| Op::Move(r, p)),
        2 => (0..TEAMS.len(), 0..USERS).prop_map(|(t, u)| Op::TeamAdd(t, u)),
        1 => (0..TEAMS.len(), 0..USERS).prop_map(|(t, u)| Op::TeamRemove(t, u)),
    ]
}

/// The reference: plain sets, evaluated the obvious way.
#[derive(Default)]
struct Model {
    parent: HashMap<usize, usize>,
    grants: BTreeSet<(usize, String, SubjectIx)>,
    members: BTreeSet<(usize, usize)>,
}

impl Model {
    fn ancestors(&self, mut r: usize) -> Vec<usize> {
        let mut out = vec![r];
        while let Some(p) = self.parent.get(&r) {
            out.push(*p);
            r = *p;
        }
        out
    }

    fn allowed(&self, user: usize, action: &str, res: usize) -> bool {
        let rel = relations(RESOURCES[res].0);
        self.ancestors(res).into_iter().any(|a| {
            self.grants.iter().any(|(gr, relation, s)| {
                *gr == a
                    && rel.get(relation).is_some_and(|acts| acts.contains(action))
                    && match s {
                        SubjectIx::User(u) => *u == user,
                        SubjectIx::Team(t) => self.members.contains(&(*t, user)),
                    }
            })
        })
    }
}

async fn run_sequence(ops: Vec<Op>) -> std::result::Result<(), TestCaseError> {
    let db = TestDb::sqlite();
    let s = SqlStore::connect(&db.url).await.unwrap();
    let t = tenant(&s, "acme").await;
    let mut users = Vec::new();
    for i in 0..USERS {
        users.push(user(&s, &t, &format!("u{i}")).await);
    }
    for kind in ["workspace", "project", "model"] {
        let spec = NewResourceType {
            relations: Some(
                relations(kind)
                    .into_iter()
                    .map(|(k, v)| (k, v.into_iter().collect()))
                    .collect(),
            ),
        };
        authz::put_resource_type(&s, &t, kind, spec, 100).await.unwrap();
    }
    let mut teams = Vec::new();
    for id in TEAMS {
        teams.push(authz::create_team(&s, &t, team_spec(id), 100).await.unwrap());
    }
    let refs: Vec<ResourceRef> = RESOURCES.iter().map(|(k, i)| r(k, i)).collect();
    for res in &refs {
        authz::put_resource(&s, &t, res.clone(), None, 100).await.unwrap();
    }
    let subject = |s: SubjectIx| match s {
        SubjectIx::User(u) => Subject::User(users[u].clone()),
        SubjectIx::Team(t) => Subject::Team(teams[t].id.clone()),
    };
    let mut m = Model::default();
    let cache = AuthzCache::default();
    for op in ops {
        match op {
            Op::Grant(res, rel, sub) => {
                let got = authz::add_grant(&s, &t, &grant(&refs[res], &rel, subject(sub)), 100).await;
                if relations(RESOURCES[res].0).contains_key(&rel) {
                    prop_assert!(got.is_ok(), "{got:?}");
                    m.grants.insert((res, rel, sub));
                } else {
                    prop_assert!(matches!(got, Err(Error::InvalidRequest(_))), "{got:?}");
                }
            }
            Op::Revoke(res, rel, sub) => {
                if !relations(RESOURCES[res].0).contains_key(&rel) {
                    continue;
                }
                let got = authz::remove_grant(&s, &t, &grant(&refs[res], &rel, subject(sub))).await;
                let key = (res, rel.clone(), sub);
                let owners = m
                    .grants
                    .iter()
                    .filter(|(g, r, _)| *g == res && r == "owner")
                    .count();
                if !m.grants.contains(&key) {
                    prop_assert!(matches!(got, Ok(false)), "{got:?}");
                } else if rel == "owner" && owners == 1 {
                    prop_assert!(matches!(got, Err(Error::Refused(_))), "{got:?}");
                } else {
                    prop_assert!(matches!(got, Ok(true)), "{got:?}");
                    m.grants.remove(&key);
                }
            }
            Op::Move(res, parent) => {
                let got =
                    authz::put_resource(&s, &t, refs[res].clone(), parent.map(|p| refs[p].clone()), 100)
                        .await;
                let cycle = parent.is_some_and(|p| m.ancestors(p).contains(&res));
                if cycle {
                    prop_assert!(matches!(got, Err(Error::Refused(_))), "{got:?}");
                } else {
                    prop_assert!(got.is_ok(), "{got:?}");
                    match parent {
                        Some(p) => m.parent.insert(res, p),
                        None => m.parent.remove(&res),
                    };
                }
            }
            Op::TeamAdd(team, u) => {
                authz::put_member(&s, &t, &teams[team], users[u].as_str(), TeamRole::Member)
                    .await
                    .unwrap();
                m.members.insert((team, u));
            }
            Op::TeamRemove(team, u) => {
                let got = authz::remove_member(&s, &t, &teams[team], users[u].as_str())
                    .await
                    .unwrap();
                prop_assert_eq!(got, m.members.remove(&(team, u)));
            }
        }
        // After every step, every question, through the cache as a server asks it.
        let graph = cache.graph(&s, &t).await.unwrap();
        for (u, uid) in users.iter().enumerate() {
            for (res, rref) in refs.iter().enumerate() {
                for action in ["read", "write", "share", "delete", "deploy"] {
                    if action == "deploy" && RESOURCES[res].0 != "model" {
                        continue;
                    }
                    let want = m.allowed(u, action, res);
                    let got = graph.check(uid, action, rref).unwrap();
                    prop_assert_eq!(got.allowed, want, "user {} {} {}", u, action, rref);
                    prop_assert_eq!(got.path.is_empty(), !want);
                }
            }
            for (kind, action) in [("model", "deploy"), ("project", "write"), ("workspace", "read")] {
                let mut want: Vec<String> = RESOURCES
                    .iter()
                    .enumerate()
                    .filter(|(i, (k, _))| *k == kind && m.allowed(u, action, *i))
                    .map(|(_, (_, id))| id.to_string())
                    .collect();
                want.sort();
                let (got, next) = graph.list(uid, action, kind, None, 100).unwrap();
                prop_assert_eq!(got, want);
                prop_assert_eq!(next, None);
            }
        }
    }
    s.close().await;
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn random_changes_answer_as_the_reference_does(ops in proptest::collection::vec(op(), 1..40)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(run_sequence(ops))?;
    }
}
