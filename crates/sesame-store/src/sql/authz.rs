//! Authorization: teams, resource types, resources, grants (`AuthzStore`). Every write starts
//! its transaction by advancing the tenant's `authz_version`, which also locks that row, so a
//! tenant's writers take turns and the cycle and last-owner checks that follow see no race.

use super::{corrupt, db, Pool, SqlStore};
use sesame_core::authz::{
    AuthzSnapshot, Grant, IdpGroup, Resource, ResourceRef, ResourceType, Subject, Team, TeamMember, TeamRole,
    OWNER,
};
use sesame_core::ids::{ConnectionId, TeamId, TenantId, UserId};
use sesame_core::store::AuthzStore;
use sesame_core::{Error, Result};

/// Advances (or starts at 1) the tenant's version; on PostgreSQL it also locks the row until
/// the transaction ends.
pub(super) const BUMP_VERSION: &str = "INSERT INTO authz_version (tenant_id, version) VALUES ($1, 1) \
     ON CONFLICT (tenant_id) DO UPDATE SET version = authz_version.version + 1";
const VERSION: &str = "SELECT version FROM authz_version WHERE tenant_id = $1";
const TEAM_COLUMNS: &str = "tenant_id, id, name, idp_connection, idp_group, created_at";

/// Deepest parent chain walked when looking for a cycle.
const MAX_DEPTH: usize = 10_000;

type TeamRow = (String, String, String, Option<String>, Option<String>, i64);

fn team_from_row(r: TeamRow) -> Result<Team> {
    let idp_group = match (r.3, r.4) {
        (Some(c), Some(g)) => Some(IdpGroup {
            connection: ConnectionId::parse(&c).map_err(|e| corrupt("team connection", e))?,
            group: g,
        }),
        _ => None,
    };
    Ok(Team {
        tenant_id: TenantId::parse(&r.0).map_err(|e| corrupt("team tenant", e))?,
        id: TeamId::parse(&r.1).map_err(|e| corrupt("team id", e))?,
        name: r.2,
        idp_group,
        created_at: r.5,
    })
}

fn role(s: &str) -> Result<TeamRole> {
    TeamRole::parse(s).map_err(|e| corrupt("team role", e))
}

fn subject(kind: &str, id: &str) -> Result<Subject> {
    Subject::parse(kind, id).map_err(|e| corrupt("grant subject", e))
}

fn type_from_row(tenant: &TenantId, r: (String, String, i64)) -> Result<ResourceType> {
    Ok(ResourceType {
        tenant_id: tenant.clone(),
        name: r.0,
        relations: serde_json::from_str(&r.1).map_err(|e| corrupt("resource type relations", e))?,
        created_at: r.2,
    })
}

type ResourceRow = (String, String, Option<String>, Option<String>, i64);

fn resource_from_row(tenant: &TenantId, r: ResourceRow) -> Resource {
    Resource {
        tenant_id: tenant.clone(),
        resource: ResourceRef { kind: r.0, id: r.1 },
        parent: match (r.2, r.3) {
            (Some(kind), Some(id)) => Some(ResourceRef { kind, id }),
            _ => None,
        },
        created_at: r.4,
    }
}

type GrantRow = (String, String, String, String, String);

fn grant_from_row(r: GrantRow) -> Result<Grant> {
    Ok(Grant {
        resource: ResourceRef { kind: r.0, id: r.1 },
        relation: r.2,
        subject: subject(&r.3, &r.4)?,
    })
}

fn last_owner(grant: &Grant) -> Error {
    Error::Refused(format!(
        "{} {} is the last owner of {}: grant another owner first",
        grant.subject.kind(),
        grant.subject.id(),
        grant.resource
    ))
}

#[async_trait::async_trait]
impl AuthzStore for SqlStore {
    async fn authz_version(&self, tenant: &TenantId) -> Result<i64> {
        // On SQLite, on the caller's thread (a check's one store read).
        if let Some(read) = self.read_now(VERSION, [tenant.as_str()], |row| row.get::<_, i64>(0)) {
            return Ok(read?.unwrap_or(0));
        }
        let v: Option<i64> = with_pool!(self, p => sqlx::query_scalar(VERSION)
            .bind(tenant.as_str())
            .fetch_optional(p)
            .await
            .map_err(db))?;
        Ok(v.unwrap_or(0))
    }

    async fn load_authz(&self, tenant: &TenantId) -> Result<AuthzSnapshot> {
        let postgres = matches!(self.pool, Pool::Postgres(_));
        let t = tenant.as_str();
        let (version, types, resources, grants, members, disabled) = with_pool!(self, p => {
            let mut tx = p.begin().await.map_err(db)?;
            // One snapshot for every read below (SQLite's read transaction is one already).
            if postgres {
                sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
            }
            let version: Option<i64> =
                sqlx::query_scalar(VERSION).bind(t).fetch_optional(&mut *tx).await.map_err(db)?;
            let types: Vec<(String, String, i64)> = sqlx::query_as(
                "SELECT name, relations, created_at FROM resource_type WHERE tenant_id = $1")
                .bind(t).fetch_all(&mut *tx).await.map_err(db)?;
            let resources: Vec<ResourceRow> = sqlx::query_as(
                "SELECT resource_type, resource_id, parent_type, parent_id, created_at \
                 FROM authz_resource WHERE tenant_id = $1")
                .bind(t).fetch_all(&mut *tx).await.map_err(db)?;
            let grants: Vec<GrantRow> = sqlx::query_as(
                "SELECT resource_type, resource_id, relation, subject_type, subject_id \
                 FROM authz_grant WHERE tenant_id = $1")
                .bind(t).fetch_all(&mut *tx).await.map_err(db)?;
            let members: Vec<(String, String, String)> = sqlx::query_as(
                "SELECT team_id, user_id, role FROM team_member WHERE tenant_id = $1")
                .bind(t).fetch_all(&mut *tx).await.map_err(db)?;
            let disabled: Vec<String> = sqlx::query_scalar(
                "SELECT id FROM user_account WHERE tenant_id = $1 AND disabled = TRUE")
                .bind(t).fetch_all(&mut *tx).await.map_err(db)?;
            tx.commit().await.map_err(db)?;
            (version, types, resources, grants, members, disabled)
        });
        Ok(AuthzSnapshot {
            version: version.unwrap_or(0),
            types: types
                .into_iter()
                .map(|r| type_from_row(tenant, r))
                .collect::<Result<_>>()?,
            resources: resources
                .into_iter()
                .map(|r| resource_from_row(tenant, r))
                .collect(),
            grants: grants.into_iter().map(grant_from_row).collect::<Result<_>>()?,
            members: members
                .into_iter()
                .map(|(team, user, r)| {
                    Ok((
                        TeamId::parse(&team).map_err(|e| corrupt("member team", e))?,
                        UserId::parse(&user).map_err(|e| corrupt("member user", e))?,
                        role(&r)?,
                    ))
                })
                .collect::<Result<_>>()?,
            disabled: disabled
                .iter()
                .map(|u| UserId::parse(u).map_err(|e| corrupt("disabled user", e)))
                .collect::<Result<_>>()?,
        })
    }

    async fn create_team(&self, team: &Team) -> Result<()> {
        let sql = format!("INSERT INTO team ({TEAM_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)");
        let (conn, group) = match &team.idp_group {
            Some(g) => (Some(g.connection.as_str()), Some(g.group.as_str())),
            None => (None, None),
        };
        with_pool!(self, p => {
            let mut tx = p.begin().await.map_err(db)?;
            sqlx::query(BUMP_VERSION).bind(team.tenant_id.as_str()).execute(&mut *tx).await.map_err(db)?;
            sqlx::query(&sql)
                .bind(team.tenant_id.as_str())
                .bind(team.id.as_str())
                .bind(&team.name)
                .bind(conn)
                .bind(group)
                .bind(team.created_at)
                .execute(&mut *tx)
                .await
                .map_err(|e| match db(e) {
                    Error::Conflict(_) => Error::Conflict(format!(
                        "team '{}' exists in tenant '{}'", team.id, team.tenant_id)),
                    other => other,
                })?;
            tx.commit().await.map_err(db)
        })
    }

    async fn get_team(&self, tenant: &TenantId, id: &TeamId) -> Result<Option<Team>> {
        let sql = format!("SELECT {TEAM_COLUMNS} FROM team WHERE tenant_id = $1 AND id = $2");
        let row: Option<TeamRow> = with_pool!(self, p => sqlx::query_as(&sql)
            .bind(tenant.as_str())
            .bind(id.as_str())
            .fetch_optional(p)
            .await
            .map_err(db))?;
        row.map(team_from_row).transpose()
    }

    async fn list_teams(&self, tenant: &TenantId) -> Result<Vec<Team>> {
        let sql = format!("SELECT {TEAM_COLUMNS} FROM team WHERE tenant_id = $1 ORDER BY id");
        let rows: Vec<TeamRow> = with_pool!(self, p => sqlx::query_as(&sql)
            .bind(tenant.as_str())
            .fetch_all(p)
            .await
            .map_err(db))?;
        rows.into_iter().map(team_from_row).collect()
    }

    async fn delete_team(&self, tenant: &TenantId, id: &TeamId) -> Result<bool> {
        let (t, team) = (tenant.as_str(), id.as_str());
        with_pool!(self, p => {
            let mut tx = p.begin().await.map_err(db)?;
            sqlx::query(BUMP_VERSION).bind(t).execute(&mut *tx).await.map_err(db)?;
            // A resource the team alone owns would be left without an owner.
            let sole: Option<(String, String)> = sqlx::query_as(
                "SELECT g.resource_type, g.resource_id FROM authz_grant g \
                 WHERE g.tenant_id = $1 AND g.subject_type = 'team' AND g.subject_id = $2 \
                 AND g.relation = $3 AND NOT EXISTS (SELECT 1 FROM authz_grant o \
                   WHERE o.tenant_id = g.tenant_id AND o.resource_type = g.resource_type \
                   AND o.resource_id = g.resource_id AND o.relation = $3 \
                   AND NOT (o.subject_type = 'team' AND o.subject_id = $2)) \
                 ORDER BY g.resource_type, g.resource_id LIMIT 1")
                .bind(t).bind(team).bind(OWNER)
                .fetch_optional(&mut *tx).await.map_err(db)?;
            if let Some((kind, rid)) = sole {
                return Err(Error::Refused(format!(
                    "team {team} is the last owner of {kind}/{rid}: grant another owner first")));
            }
            for sql in [
                "DELETE FROM authz_grant WHERE tenant_id = $1 AND subject_type = 'team' AND subject_id = $2",
                "DELETE FROM team_member WHERE tenant_id = $1 AND team_id = $2",
            ] {
                sqlx::query(sql).bind(t).bind(team).execute(&mut *tx).await.map_err(db)?;
            }
            let n = sqlx::query("DELETE FROM team WHERE tenant_id = $1 AND id = $2")
                .bind(t).bind(team).execute(&mut *tx).await.map_err(db)?.rows_affected();
            tx.commit().await.map_err(db)?;
            Ok(n == 1)
        })
    }

    async fn put_team_member(
        &self,
        tenant: &TenantId,
        team: &TeamId,
        user: &UserId,
        r: TeamRole,
    ) -> Result<bool> {
        let t = tenant.as_str();
        with_pool!(self, p => {
            let mut tx = p.begin().await.map_err(db)?;
            sqlx::query(BUMP_VERSION).bind(t).execute(&mut *tx).await.map_err(db)?;
            let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM team WHERE tenant_id = $1 AND id = $2")
                .bind(t).bind(team.as_str()).fetch_optional(&mut *tx).await.map_err(db)?;
            if exists.is_none() {
                return Ok(false);
            }
            sqlx::query(
                "INSERT INTO team_member (tenant_id, team_id, user_id, role) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (tenant_id, team_id, user_id) DO UPDATE SET role = excluded.role")
                .bind(t).bind(team.as_str()).bind(user.as_str()).bind(r.as_str())
                .execute(&mut *tx).await.map_err(db)?;
            tx.commit().await.map_err(db)?;
            Ok(true)
        })
    }

    async fn remove_team_member(&self, tenant: &TenantId, team: &TeamId, user: &UserId) -> Result<bool> {
        let t = tenant.as_str();
        with_pool!(self, p => {
            let mut tx = p.begin().await.map_err(db)?;
            sqlx::query(BUMP_VERSION).bind(t).execute(&mut *tx).await.map_err(db)?;
            let n = sqlx::query("DELETE FROM team_member WHERE tenant_id = $1 AND team_id = $2 AND user_id = $3")
                .bind(t).bind(team.as_str()).bind(user.as_str())
                .execute(&mut *tx).await.map_err(db)?.rows_affected();
            tx.commit().await.map_err(db)?;
            Ok(n == 1)
        })
    }

    async fn list_team_members(&self, tenant: &TenantId, team: &TeamId) -> Result<Vec<TeamMember>> {
        let rows: Vec<(String, String)> = with_pool!(self, p => sqlx::query_as(
            "SELECT user_id, role FROM team_member WHERE tenant_id = $1 AND team_id = $2 ORDER BY user_id")
            .bind(tenant.as_str())
            .bind(team.as_str())
            .fetch_all(p)
            .await
            .map_err(db))?;
        rows.into_iter()
            .map(|(u, r)| {
                Ok(TeamMember {
                    user_id: UserId::parse(&u).map_err(|e| corrupt("member user", e))?,
                    role: role(&r)?,
                })
            })
            .collect()
    }

    async fn user_teams(&self, tenant: &TenantId, user: &UserId) -> Result<Vec<(TeamId, TeamRole)>> {
        let rows: Vec<(String, String)> = with_pool!(self, p => sqlx::query_as(
            "SELECT team_id, role FROM team_member WHERE tenant_id = $1 AND user_id = $2 ORDER BY team_id")
            .bind(tenant.as_str())
            .bind(user.as_str())
            .fetch_all(p)
            .await
            .map_err(db))?;
        rows.into_iter()
            .map(|(t, r)| {
                Ok((
                    TeamId::parse(&t).map_err(|e| corrupt("member team", e))?,
                    role(&r)?,
                ))
            })
            .collect()
    }

    async fn sync_idp_teams(
        &self,
        tenant: &TenantId,
        user: &UserId,
        connection: &ConnectionId,
        groups: &[String],
    ) -> Result<()> {
        let (t, u) = (tenant.as_str(), user.as_str());
        with_pool!(self, p => {
            let mut tx = p.begin().await.map_err(db)?;
            let teams: Vec<(String, String)> = sqlx::query_as(
                "SELECT id, idp_group FROM team WHERE tenant_id = $1 AND idp_connection = $2")
                .bind(t).bind(connection.as_str()).fetch_all(&mut *tx).await.map_err(db)?;
            if teams.is_empty() {
                return Ok(());
            }
            let current: Vec<String> = sqlx::query_scalar(
                "SELECT m.team_id FROM team_member m JOIN team k \
                   ON k.tenant_id = m.tenant_id AND k.id = m.team_id \
                 WHERE m.tenant_id = $1 AND m.user_id = $2 AND k.idp_connection = $3")
                .bind(t).bind(u).bind(connection.as_str()).fetch_all(&mut *tx).await.map_err(db)?;
            let mut add = Vec::new();
            let mut remove = Vec::new();
            for (team, group) in &teams {
                let wanted = groups.iter().any(|g| g == group);
                let is = current.iter().any(|c| c == team);
                if wanted && !is {
                    add.push(team);
                } else if !wanted && is {
                    remove.push(team);
                }
            }
            if add.is_empty() && remove.is_empty() {
                // Nothing changed: the version stays, and with it every replica's cache.
                return Ok(());
            }
            sqlx::query(BUMP_VERSION).bind(t).execute(&mut *tx).await.map_err(db)?;
            for team in add {
                sqlx::query(
                    "INSERT INTO team_member (tenant_id, team_id, user_id, role) VALUES ($1, $2, $3, 'member') \
                     ON CONFLICT (tenant_id, team_id, user_id) DO NOTHING")
                    .bind(t).bind(team).bind(u).execute(&mut *tx).await.map_err(db)?;
            }
            for team in remove {
                sqlx::query("DELETE FROM team_member WHERE tenant_id = $1 AND team_id = $2 AND user_id = $3")
                    .bind(t).bind(team).bind(u).execute(&mut *tx).await.map_err(db)?;
            }
            tx.commit().await.map_err(db)
        })
    }

    async fn put_resource_type(&self, rt: &ResourceType) -> Result<()> {
        let relations = serde_json::to_string(&rt.relations).expect("relations serialize");
        with_pool!(self, p => {
            let mut tx = p.begin().await.map_err(db)?;
            sqlx::query(BUMP_VERSION).bind(rt.tenant_id.as_str()).execute(&mut *tx).await.map_err(db)?;
            sqlx::query(
                "INSERT INTO resource_type (tenant_id, name, relations, created_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (tenant_id, name) DO UPDATE SET relations = excluded.relations")
                .bind(rt.tenant_id.as_str()).bind(&rt.name).bind(&relations).bind(rt.created_at)
                .execute(&mut *tx).await.map_err(db)?;
            tx.commit().await.map_err(db)
        })
    }

    async fn list_resource_types(&self, tenant: &TenantId) -> Result<Vec<ResourceType>> {
        let rows: Vec<(String, String, i64)> = with_pool!(self, p => sqlx::query_as(
            "SELECT name, relations, created_at FROM resource_type WHERE tenant_id = $1 ORDER BY name")
            .bind(tenant.as_str())
            .fetch_all(p)
            .await
            .map_err(db))?;
        rows.into_iter().map(|r| type_from_row(tenant, r)).collect()
    }

    async fn put_resource(&self, r: &Resource) -> Result<()> {
        let t = r.tenant_id.as_str();
        let me = &r.resource;
        with_pool!(self, p => {
            let mut tx = p.begin().await.map_err(db)?;
            sqlx::query(BUMP_VERSION).bind(t).execute(&mut *tx).await.map_err(db)?;
            if let Some(parent) = &r.parent {
                // Walk up from the new parent: meeting the resource itself would close a cycle.
                let mut node = parent.clone();
                let mut depth = 0;
                loop {
                    if node == *me {
                        return Err(Error::Refused(format!(
                            "moving {me} under {parent} would make a cycle: {parent} is inside {me}")));
                    }
                    let row: Option<(Option<String>, Option<String>)> = sqlx::query_as(
                        "SELECT parent_type, parent_id FROM authz_resource \
                         WHERE tenant_id = $1 AND resource_type = $2 AND resource_id = $3")
                        .bind(t).bind(&node.kind).bind(&node.id)
                        .fetch_optional(&mut *tx).await.map_err(db)?;
                    match row {
                        None if depth == 0 => {
                            return Err(Error::NotFound(format!("parent {parent} does not exist")));
                        }
                        Some((Some(kind), Some(id))) if depth < MAX_DEPTH => {
                            node = ResourceRef { kind, id };
                            depth += 1;
                        }
                        Some((Some(_), Some(_))) => {
                            return Err(Error::Refused(format!(
                                "{parent} is more than {MAX_DEPTH} levels deep")));
                        }
                        _ => break,
                    }
                }
            }
            let (pk, pid) = match &r.parent {
                Some(parent) => (Some(parent.kind.as_str()), Some(parent.id.as_str())),
                None => (None, None),
            };
            sqlx::query(
                "INSERT INTO authz_resource (tenant_id, resource_type, resource_id, parent_type, parent_id, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant_id, resource_type, resource_id) \
                 DO UPDATE SET parent_type = excluded.parent_type, parent_id = excluded.parent_id")
                .bind(t).bind(&me.kind).bind(&me.id).bind(pk).bind(pid).bind(r.created_at)
                .execute(&mut *tx).await.map_err(db)?;
            tx.commit().await.map_err(db)
        })
    }

    async fn get_resource(&self, tenant: &TenantId, r: &ResourceRef) -> Result<Option<Resource>> {
        let row: Option<ResourceRow> = with_pool!(self, p => sqlx::query_as(
            "SELECT resource_type, resource_id, parent_type, parent_id, created_at FROM authz_resource \
             WHERE tenant_id = $1 AND resource_type = $2 AND resource_id = $3")
            .bind(tenant.as_str())
            .bind(&r.kind)
            .bind(&r.id)
            .fetch_optional(p)
            .await
            .map_err(db))?;
        Ok(row.map(|r| resource_from_row(tenant, r)))
    }

    async fn delete_resource(&self, tenant: &TenantId, r: &ResourceRef) -> Result<bool> {
        let t = tenant.as_str();
        with_pool!(self, p => {
            let mut tx = p.begin().await.map_err(db)?;
            sqlx::query(BUMP_VERSION).bind(t).execute(&mut *tx).await.map_err(db)?;
            let child: Option<(String, String)> = sqlx::query_as(
                "SELECT resource_type, resource_id FROM authz_resource \
                 WHERE tenant_id = $1 AND parent_type = $2 AND parent_id = $3 \
                 ORDER BY resource_type, resource_id LIMIT 1")
                .bind(t).bind(&r.kind).bind(&r.id).fetch_optional(&mut *tx).await.map_err(db)?;
            if let Some((kind, id)) = child {
                return Err(Error::Refused(format!(
                    "{r} has children ({kind}/{id}, …): delete or move them first")));
            }
            sqlx::query("DELETE FROM authz_grant WHERE tenant_id = $1 AND resource_type = $2 AND resource_id = $3")
                .bind(t).bind(&r.kind).bind(&r.id).execute(&mut *tx).await.map_err(db)?;
            let n = sqlx::query(
                "DELETE FROM authz_resource WHERE tenant_id = $1 AND resource_type = $2 AND resource_id = $3")
                .bind(t).bind(&r.kind).bind(&r.id).execute(&mut *tx).await.map_err(db)?.rows_affected();
            tx.commit().await.map_err(db)?;
            Ok(n == 1)
        })
    }

    async fn add_grant(&self, tenant: &TenantId, g: &Grant, now: i64) -> Result<()> {
        let t = tenant.as_str();
        with_pool!(self, p => {
            let mut tx = p.begin().await.map_err(db)?;
            sqlx::query(BUMP_VERSION).bind(t).execute(&mut *tx).await.map_err(db)?;
            let exists: Option<i32> = sqlx::query_scalar(
                "SELECT 1 FROM authz_resource WHERE tenant_id = $1 AND resource_type = $2 AND resource_id = $3")
                .bind(t).bind(&g.resource.kind).bind(&g.resource.id)
                .fetch_optional(&mut *tx).await.map_err(db)?;
            if exists.is_none() {
                return Err(Error::NotFound(format!("resource {} does not exist", g.resource)));
            }
            sqlx::query(
                "INSERT INTO authz_grant (tenant_id, resource_type, resource_id, relation, subject_type, \
                 subject_id, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING")
                .bind(t).bind(&g.resource.kind).bind(&g.resource.id).bind(&g.relation)
                .bind(g.subject.kind()).bind(g.subject.id()).bind(now)
                .execute(&mut *tx).await.map_err(db)?;
            tx.commit().await.map_err(db)
        })
    }

    async fn remove_grant(&self, tenant: &TenantId, g: &Grant) -> Result<bool> {
        let t = tenant.as_str();
        with_pool!(self, p => {
            let mut tx = p.begin().await.map_err(db)?;
            sqlx::query(BUMP_VERSION).bind(t).execute(&mut *tx).await.map_err(db)?;
            let n = sqlx::query(
                "DELETE FROM authz_grant WHERE tenant_id = $1 AND resource_type = $2 AND resource_id = $3 \
                 AND relation = $4 AND subject_type = $5 AND subject_id = $6")
                .bind(t).bind(&g.resource.kind).bind(&g.resource.id).bind(&g.relation)
                .bind(g.subject.kind()).bind(g.subject.id())
                .execute(&mut *tx).await.map_err(db)?.rows_affected();
            if n == 1 && g.relation == OWNER {
                let left: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM authz_grant WHERE tenant_id = $1 AND resource_type = $2 \
                     AND resource_id = $3 AND relation = $4")
                    .bind(t).bind(&g.resource.kind).bind(&g.resource.id).bind(OWNER)
                    .fetch_one(&mut *tx).await.map_err(db)?;
                if left == 0 {
                    // Dropping `tx` rolls the delete back.
                    return Err(last_owner(g));
                }
            }
            tx.commit().await.map_err(db)?;
            Ok(n == 1)
        })
    }

    async fn list_grants(&self, tenant: &TenantId, r: &ResourceRef) -> Result<Vec<Grant>> {
        let rows: Vec<GrantRow> = with_pool!(self, p => sqlx::query_as(
            "SELECT resource_type, resource_id, relation, subject_type, subject_id FROM authz_grant \
             WHERE tenant_id = $1 AND resource_type = $2 AND resource_id = $3 \
             ORDER BY relation, subject_type, subject_id")
            .bind(tenant.as_str())
            .bind(&r.kind)
            .bind(&r.id)
            .fetch_all(p)
            .await
            .map_err(db))?;
        rows.into_iter().map(grant_from_row).collect()
    }
}
