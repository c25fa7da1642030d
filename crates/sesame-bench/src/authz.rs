//! `sesame-bench --authz`: authorization checks on one core, in-process, on a real SQLite store
//! of 10⁵ resources and 10³ teams, next to the raw EdDSA signing rate.
//!
//! - *check, cached*: the version read (one primary-key read) and a remembered answer;
//! - *check, uncached*: the version read and a walk of the graph (resource → parents, grants,
//!   team memberships) for an answer not asked before;
//! - *check after a change*: the version moved, so the whole tenant is loaded and built again;
//! - *list*: the ids of one type a person may act on, among the 10⁵.

use sesame_core::authz::{self, AuthzCache, Grant, NewResourceType, NewTeam, ResourceRef, Subject, TeamRole};
use sesame_core::ids::{TenantId, UserId, Username};
use sesame_core::model::{SigningAlg, Tenant, User};
use sesame_core::store::Store;
use sesame_store::SqlStore;
use std::time::{Duration, Instant};

const WORKSPACES: usize = 1_000;
const PROJECTS_PER_WORKSPACE: usize = 9;
const MODELS_PER_PROJECT: usize = 10;
const TEAMS: usize = 1_000;
const USERS: usize = 2_000;

/// Runs the measurement and prints its lines; `core` is where the bench is pinned.
pub fn run(seconds: f64, core: Option<usize>) -> Result<(), String> {
    let sign = crate::sign::measure(SigningAlg::EdDSA, Duration::from_secs_f64(seconds.min(1.5)), core);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(measure(Duration::from_secs_f64(seconds), sign.per_second))
}

fn e(e: sesame_core::Error) -> String {
    e.to_string()
}

async fn measure(window: Duration, sign_per_second: f64) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let url = sesame_store::StoreUrl::sqlite_file(&dir.path().join("authz.db"));
    let s = SqlStore::connect(&url).await.map_err(e)?;
    let t = TenantId::parse("bench").map_err(e)?;
    s.create_tenant(&Tenant::new(t.clone(), 0), &[])
        .await
        .map_err(e)?;
    let fill = Instant::now();
    let mut users = Vec::with_capacity(USERS);
    for i in 0..USERS {
        let u = User {
            tenant_id: t.clone(),
            id: UserId::generate(),
            username: Username::parse(&format!("u{i}")).map_err(e)?,
            email: None,
            email_verified: false,
            name: None,
            picture: None,
            disabled: false,
            password_hash: None,
            created_at: 0,
            updated_at: 0,
        };
        s.create_user(&u).await.map_err(e)?;
        users.push(u.id);
    }
    for kind in ["workspace", "project", "model"] {
        authz::put_resource_type(&s, &t, kind, NewResourceType::default(), 0)
            .await
            .map_err(e)?;
    }
    let mut teams = Vec::with_capacity(TEAMS);
    for i in 0..TEAMS {
        let team = authz::create_team(
            &s,
            &t,
            NewTeam {
                id: format!("team{i}"),
                name: None,
                idp_group: None,
            },
            0,
        )
        .await
        .map_err(e)?;
        // Two members each: 2,000 memberships over 2,000 people.
        for k in 0..2 {
            let u = &users[(i * 2 + k) % USERS];
            authz::put_member(&s, &t, &team, u.as_str(), TeamRole::Member)
                .await
                .map_err(e)?;
        }
        teams.push(team);
    }
    let mut models = Vec::new();
    let mut writes = 0usize;
    let write_start = Instant::now();
    for w in 0..WORKSPACES {
        let ws = ResourceRef::new("workspace", &format!("w{w}"));
        authz::put_resource(&s, &t, ws.clone(), None, 0)
            .await
            .map_err(e)?;
        let owner = Grant {
            resource: ws.clone(),
            relation: "owner".into(),
            subject: Subject::User(users[w % USERS].clone()),
        };
        authz::add_grant(&s, &t, &owner, 0).await.map_err(e)?;
        writes += 2;
        for p in 0..PROJECTS_PER_WORKSPACE {
            let pr = ResourceRef::new("project", &format!("w{w}p{p}"));
            authz::put_resource(&s, &t, pr.clone(), Some(ws.clone()), 0)
                .await
                .map_err(e)?;
            let team = &teams[(w * PROJECTS_PER_WORKSPACE + p) % TEAMS];
            let g = Grant {
                resource: pr.clone(),
                relation: "editor".into(),
                subject: Subject::Team(team.id.clone()),
            };
            authz::add_grant(&s, &t, &g, 0).await.map_err(e)?;
            writes += 2;
            for m in 0..MODELS_PER_PROJECT {
                let mr = ResourceRef::new("model", &format!("w{w}p{p}m{m}"));
                authz::put_resource(&s, &t, mr.clone(), Some(pr.clone()), 0)
                    .await
                    .map_err(e)?;
                writes += 1;
                models.push(mr);
            }
        }
    }
    let write_rate = writes as f64 / write_start.elapsed().as_secs_f64();
    let resources = WORKSPACES * (1 + PROJECTS_PER_WORKSPACE * (1 + MODELS_PER_PROJECT));
    eprintln!(
        "authz store: {resources} resources, {TEAMS} teams, {USERS} people filled in {:.1} s ({:.0} changes/s, each its own transaction)",
        fill.elapsed().as_secs_f64(),
        write_rate
    );

    let cache = AuthzCache::default();
    // Load + build after a change (the first check after any write).
    let mut loads = Vec::new();
    for _ in 0..3 {
        authz::put_resource_type(&s, &t, "workspace", NewResourceType::default(), 0)
            .await
            .map_err(e)?;
        let start = Instant::now();
        cache.graph(&s, &t).await.map_err(e)?;
        loads.push(start.elapsed());
    }
    loads.sort();
    let reload = loads[1];

    // Uncached: every check a question not asked before (one model per person, walking up
    // to its project's team grant and the workspace's owner).
    let graph = cache.graph(&s, &t).await.map_err(e)?;
    let start = Instant::now();
    let mut n = 0usize;
    let mut allowed = 0usize;
    while start.elapsed() < window && n < models.len() {
        let g = cache.graph(&s, &t).await.map_err(e)?;
        let d = g.check(&users[n % USERS], "write", &models[n]).map_err(e)?;
        allowed += d.allowed as usize;
        n += 1;
    }
    let uncached = n as f64 / start.elapsed().as_secs_f64();
    // Cached: the same questions again.
    let asked = n;
    let start = Instant::now();
    let mut m = 0usize;
    while start.elapsed() < window {
        let g = cache.graph(&s, &t).await.map_err(e)?;
        let i = m % asked;
        g.check(&users[i % USERS], "write", &models[i]).map_err(e)?;
        m += 1;
    }
    let cached = m as f64 / start.elapsed().as_secs_f64();
    // The walk alone, without the version read (what a check costs inside the process).
    let start = Instant::now();
    let mut k = 0usize;
    while start.elapsed() < window / 2 {
        let i = k % models.len();
        graph
            .evaluate(&users[i % USERS], "write", &models[i])
            .map_err(e)?;
        k += 1;
    }
    let walk = k as f64 / start.elapsed().as_secs_f64();
    // list: the models a team member may write (90 of 90,000) and an owner may read (900).
    let start = Instant::now();
    let mut l = 0usize;
    let mut found = 0usize;
    while start.elapsed() < window / 2 {
        let g = cache.graph(&s, &t).await.map_err(e)?;
        let (ids, _) = g
            .list(&users[l % USERS], "read", "model", None, 1000)
            .map_err(e)?;
        found += ids.len();
        l += 1;
    }
    let list = l as f64 / start.elapsed().as_secs_f64();
    s.close().await;

    let mode = if cfg!(debug_assertions) {
        " (DEBUG build)"
    } else {
        ""
    };
    println!("authz on one core{mode}, 10^5 resources, 10^3 teams, SQLite:");
    println!("  raw sign EdDSA                 {:>12.0}/s", sign_per_second);
    println!(
        "  check, cached answer           {:>12.0}/s   (version read + remembered answer)",
        cached
    );
    println!(
        "  check, uncached                {:>12.0}/s   (version read + graph walk; {allowed} of {asked} allowed)",
        uncached
    );
    println!("  graph walk alone               {:>12.0}/s", walk);
    println!(
        "  list (models, ≤ 1000 ids)      {:>12.0}/s   ({:.0} ids per answer)",
        list,
        found as f64 / l.max(1) as f64
    );
    println!(
        "  check after a change           {:>12.1} ms   (load + build of the tenant graph)",
        reload.as_secs_f64() * 1e3
    );
    Ok(())
}
