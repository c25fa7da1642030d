//! The audit log (`AuditStore`): batches appended with one multi-row INSERT, pages read by
//! `seq` (the cursor), old events swept by time.

use super::{corrupt, db, Pool, SqlStore};
use sesame_core::audit::{AuditEvent, AuditQuery, EventType, Order, Outcome};
use sesame_core::store::AuditStore;
use sesame_core::Result;

#[derive(sqlx::FromRow)]
struct EventRow {
    seq: i64,
    time: i64,
    tenant_id: Option<String>,
    #[sqlx(rename = "type")]
    event_type: String,
    actor_kind: String,
    actor_id: Option<String>,
    target: Option<String>,
    outcome: String,
    client_address: Option<String>,
    request_id: Option<String>,
    details: String,
}

const COLUMNS: &str =
    "time, tenant_id, type, actor_kind, actor_id, target, outcome, client_address, request_id, details";

fn event_from_row(r: EventRow) -> Result<AuditEvent> {
    Ok(AuditEvent {
        seq: Some(r.seq),
        time: r.time,
        tenant: r.tenant_id,
        event_type: EventType::parse(&r.event_type).map_err(|e| corrupt("audit event type", e))?,
        actor_kind: r.actor_kind,
        actor_id: r.actor_id,
        target: r.target,
        outcome: Outcome::parse(&r.outcome).map_err(|e| corrupt("audit outcome", e))?,
        client_address: r.client_address,
        request_id: r.request_id,
        details: serde_json::from_str(&r.details).map_err(|e| corrupt("audit details", e))?,
    })
}

/// A value bound to a query built at run time.
enum Bind {
    Text(String),
    Int(i64),
}

#[async_trait::async_trait]
impl AuditStore for SqlStore {
    async fn append_audit_events(&self, events: &[AuditEvent]) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let mut sql = format!("INSERT INTO audit_event ({COLUMNS}) VALUES ");
        for i in 0..events.len() {
            let b = i * 10;
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!(
                "(${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${})",
                b + 1,
                b + 2,
                b + 3,
                b + 4,
                b + 5,
                b + 6,
                b + 7,
                b + 8,
                b + 9,
                b + 10
            ));
        }
        with_pool!(self, p => {
            let mut q = sqlx::query(&sql);
            for e in events {
                q = q
                    .bind(e.time)
                    .bind(e.tenant.as_deref())
                    .bind(e.event_type.as_str())
                    .bind(e.actor_kind.as_str())
                    .bind(e.actor_id.as_deref())
                    .bind(e.target.as_deref())
                    .bind(e.outcome.as_str())
                    .bind(e.client_address.as_deref())
                    .bind(e.request_id.as_deref())
                    .bind(e.details.to_string());
            }
            q.execute(p).await.map(|_| ()).map_err(db)
        })
    }

    async fn query_audit_events(&self, query: &AuditQuery) -> Result<Vec<AuditEvent>> {
        let mut conditions: Vec<String> = Vec::new();
        let mut binds: Vec<Bind> = Vec::new();
        let mut add = |cond: &str, value: Bind| {
            binds.push(value);
            conditions.push(cond.replace('?', &format!("${}", binds.len())));
        };
        if let Some(t) = &query.tenant {
            add("tenant_id = ?", Bind::Text(t.clone()));
        }
        if let Some(s) = query.since {
            add("time >= ?", Bind::Int(s));
        }
        if let Some(u) = query.until {
            add("time < ?", Bind::Int(u));
        }
        if let Some(a) = &query.actor {
            add("actor_id = ?", Bind::Text(a.clone()));
        }
        if let Some(t) = query.event_type {
            add("type = ?", Bind::Text(t.as_str().into()));
        }
        if let Some(o) = query.outcome {
            add("outcome = ?", Bind::Text(o.as_str().into()));
        }
        let (after, order) = match query.order {
            Order::NewestFirst => ("seq < ?", "DESC"),
            Order::OldestFirst => ("seq > ?", "ASC"),
        };
        if let Some(c) = query.after_seq {
            add(after, Bind::Int(c));
        }
        let filter = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        };
        let sql = format!(
            "SELECT seq, {COLUMNS} FROM audit_event {filter} ORDER BY seq {order} LIMIT {}",
            query.limit.max(1)
        );
        let rows: Vec<EventRow> = with_pool!(self, p => {
            let mut q = sqlx::query_as(&sql);
            for b in &binds {
                q = match b {
                    Bind::Text(s) => q.bind(s.as_str()),
                    Bind::Int(i) => q.bind(*i),
                };
            }
            q.fetch_all(p).await.map_err(db)
        })?;
        rows.into_iter().map(event_from_row).collect()
    }

    async fn purge_audit_events(&self, before: i64) -> Result<u64> {
        with_pool!(self, p => sqlx::query("DELETE FROM audit_event WHERE time < $1")
            .bind(before)
            .execute(p)
            .await
            .map(|r| r.rows_affected())
            .map_err(db))
    }
}
