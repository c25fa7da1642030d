//! `AccessStore` and `AuditStore` on SQLite always, and on PostgreSQL when
//! `SESAME_TEST_DATABASE_URL` is set: admin tokens by hash and name, clients' admin
//! permissions (which go with the client), and the audit log's batches, pages and sweep.

use serde_json::json;
use sesame_core::access::{AdminTokenInfo, Permission};
use sesame_core::audit::{AuditEvent, AuditQuery, EventType, Order, Outcome};
use sesame_core::ids::{ClientId, TenantId};
use sesame_core::model::Tenant;
use sesame_core::store::{AccessStore, AuditStore, Store};
use sesame_core::Error;
use sesame_store::SqlStore;

fn tid(s: &str) -> TenantId {
    TenantId::parse(s).unwrap()
}

async fn admin_tokens_are_found_by_hash_listed_and_deleted_by_name(s: &SqlStore) {
    let a = tid("alpha");
    s.create_tenant(&Tenant::new(a.clone(), 1), &[]).await.unwrap();
    let root = AdminTokenInfo {
        name: "root".into(),
        tenant: None,
        permissions: vec![],
        created_at: 5,
        expires_at: None,
    };
    let ci = AdminTokenInfo {
        name: "ci".into(),
        tenant: Some(a.clone()),
        permissions: vec![Permission::ClientsRead, Permission::AuditRead],
        created_at: 6,
        expires_at: Some(100),
    };
    s.create_admin_token(&root, &[1; 32]).await.unwrap();
    s.create_admin_token(&ci, &[2; 32]).await.unwrap();
    // Names are unique, and so are hashes.
    let again = AdminTokenInfo {
        name: "root".into(),
        ..ci.clone()
    };
    assert!(matches!(
        s.create_admin_token(&again, &[3; 32]).await,
        Err(Error::Conflict(_))
    ));
    assert_eq!(s.get_admin_token(&[1; 32]).await.unwrap(), Some(root.clone()));
    assert_eq!(s.get_admin_token(&[2; 32]).await.unwrap(), Some(ci.clone()));
    assert_eq!(s.get_admin_token(&[9; 32]).await.unwrap(), None);
    assert_eq!(s.list_admin_tokens().await.unwrap(), vec![root, ci]);
    // The tokens of before (bootstrap) are server-wide.
    s.insert_admin_token("bootstrap", &[4; 32], 7).await.unwrap();
    let boot = s.get_admin_token(&[4; 32]).await.unwrap().unwrap();
    assert_eq!(
        (boot.tenant, boot.permissions, boot.expires_at),
        (None, vec![], None)
    );
    assert!(s.delete_admin_token("ci").await.unwrap());
    assert!(!s.delete_admin_token("ci").await.unwrap());
    assert_eq!(s.get_admin_token(&[2; 32]).await.unwrap(), None);
}

async fn client_admin_permissions_go_with_the_client(s: &SqlStore) {
    let a = tid("alpha");
    s.create_tenant(&Tenant::new(a.clone(), 1), &[]).await.unwrap();
    let spec = serde_json::from_value(json!({"name": "bot", "grant_types": ["client_credentials"]})).unwrap();
    let (c, _) = sesame_core::admin::create_client(s, &a, spec, 1).await.unwrap();
    let id = c.client_id.clone();
    assert_eq!(s.client_admin_permissions(&a, &id).await.unwrap(), vec![]);
    let perms = [Permission::UsersRead, Permission::ClientsWrite];
    assert!(s.set_client_admin_permissions(&a, &id, &perms, 2).await.unwrap());
    assert_eq!(s.client_admin_permissions(&a, &id).await.unwrap(), perms.to_vec());
    assert!(s
        .set_client_admin_permissions(&a, &id, &perms[..1], 3)
        .await
        .unwrap());
    assert_eq!(
        s.client_admin_permissions(&a, &id).await.unwrap(),
        perms[..1].to_vec()
    );
    let ghost = ClientId::parse("ghost").unwrap();
    assert!(!s
        .set_client_admin_permissions(&a, &ghost, &perms, 3)
        .await
        .unwrap());
    // Deleted with the client: one created again under its id starts with none.
    assert!(s.delete_client(&a, &id).await.unwrap());
    let spec = serde_json::from_value(
        json!({"client_id": id.as_str(), "name": "bot", "grant_types": ["client_credentials"]}),
    )
    .unwrap();
    sesame_core::admin::create_client(s, &a, spec, 4).await.unwrap();
    assert_eq!(s.client_admin_permissions(&a, &id).await.unwrap(), vec![]);
}

fn event(tenant: Option<&str>, time: i64, i: i64) -> AuditEvent {
    let mut e = AuditEvent::new(EventType::AdminChange, tenant, Outcome::Success, time)
        .actor("operator", Some(if i % 3 == 0 { "root" } else { "ci" }))
        .target(format!("/tenants/x/{i}"))
        .details(json!({ "i": i, "nested": { "ok": true } }));
    e.request_id = Some(format!("req-{i}"));
    e.client_address = Some("192.0.2.1".into());
    if i % 5 == 0 {
        e.outcome = Outcome::Denied;
    }
    e
}

async fn audit_events_are_appended_in_batches_paged_and_swept(s: &SqlStore) {
    let batch: Vec<_> = (0..300).map(|i| event(Some("alpha"), 1000 + i, i)).collect();
    s.append_audit_events(&batch).await.unwrap();
    s.append_audit_events(&[event(Some("beta"), 2000, 0), event(None, 2001, 1)])
        .await
        .unwrap();
    s.append_audit_events(&[]).await.unwrap();

    let q = |order, after_seq, limit| AuditQuery {
        tenant: Some("alpha".into()),
        limit,
        after_seq,
        order,
        ..Default::default()
    };
    let first = s
        .query_audit_events(&q(Order::NewestFirst, None, 2))
        .await
        .unwrap();
    assert_eq!(first.len(), 2);
    assert_eq!(first[0].details["i"], 299);
    assert_eq!(first[0].request_id.as_deref(), Some("req-299"));
    assert_eq!(first[0].client_address.as_deref(), Some("192.0.2.1"));
    assert_eq!(first[0].details["nested"]["ok"], true);
    let next = s
        .query_audit_events(&q(Order::NewestFirst, first[1].seq, 2))
        .await
        .unwrap();
    assert_eq!(next[0].details["i"], 297);
    let oldest = s
        .query_audit_events(&q(Order::OldestFirst, None, 3))
        .await
        .unwrap();
    let is: Vec<_> = oldest.iter().map(|e| e.details["i"].as_i64().unwrap()).collect();
    assert_eq!(is, vec![0, 1, 2]);

    // Filters together.
    let filtered = s
        .query_audit_events(&AuditQuery {
            tenant: Some("alpha".into()),
            since: Some(1010),
            until: Some(1040),
            actor: Some("root".into()),
            outcome: Some(Outcome::Denied),
            event_type: Some(EventType::AdminChange),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    let is: Vec<_> = filtered
        .iter()
        .map(|e| e.details["i"].as_i64().unwrap())
        .collect();
    assert_eq!(is, vec![30, 15]);
    let all = s
        .query_audit_events(&AuditQuery {
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 302);
    assert!(all.iter().any(|e| e.tenant.is_none()));

    assert_eq!(s.purge_audit_events(1100).await.unwrap(), 100);
    let left = s
        .query_audit_events(&q(Order::OldestFirst, None, 1))
        .await
        .unwrap();
    assert_eq!(left[0].time, 1100);
}

macro_rules! both_dialects {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $case() {
                    let db = sesame_store::testing::TestDb::sqlite();
                    let store = sesame_store::SqlStore::connect(&db.url).await.unwrap();
                    super::$case(&store).await;
                    store.close().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $case() {
                    let Some(db) = sesame_store::testing::TestDb::postgres().await else { return };
                    let store = sesame_store::SqlStore::connect(&db.url).await.unwrap();
                    assert_eq!(sesame_core::store::Store::backend(&store), "postgres");
                    super::$case(&store).await;
                    store.close().await;
                }
            )*
        }
    };
}

both_dialects!(
    admin_tokens_are_found_by_hash_listed_and_deleted_by_name,
    client_admin_permissions_go_with_the_client,
    audit_events_are_appended_in_batches_paged_and_swept,
);
