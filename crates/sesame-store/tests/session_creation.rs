//! Clients allowed to create delegated sessions for users (`DelegatedSessionStore::
//! session_creator`), on SQLite always and on PostgreSQL when `SESAME_TEST_DATABASE_URL` is set:
//! not allowed unless set, set and taken back, refused for an unknown client, and gone with the
//! client.

use serde_json::json;
use sesame_core::ids::{ClientId, TenantId};
use sesame_core::model::Tenant;
use sesame_core::store::{DelegatedSessionStore, Store};
use sesame_store::SqlStore;

async fn the_allowance_goes_with_the_client(s: &SqlStore) {
    let a = TenantId::parse("alpha").unwrap();
    let b = TenantId::parse("beta").unwrap();
    s.create_tenant(&Tenant::new(a.clone(), 1), &[]).await.unwrap();
    s.create_tenant(&Tenant::new(b.clone(), 1), &[]).await.unwrap();
    let spec = || {
        serde_json::from_value(
            json!({"client_id": "bot", "name": "bot", "grant_types": ["client_credentials"]}),
        )
        .unwrap()
    };
    let (c, _) = sesame_core::admin::create_client(s, &a, spec(), 1).await.unwrap();
    sesame_core::admin::create_client(s, &b, spec(), 1).await.unwrap();
    let id = c.client_id.clone();
    assert!(!s.session_creator(&a, &id).await.unwrap());
    assert!(s.set_session_creator(&a, &id, true, 2).await.unwrap());
    // Setting it twice is fine; the same client id in another tenant is not allowed by it.
    assert!(s.set_session_creator(&a, &id, true, 3).await.unwrap());
    assert!(s.session_creator(&a, &id).await.unwrap());
    assert!(!s.session_creator(&b, &id).await.unwrap());
    assert!(s.set_session_creator(&a, &id, false, 4).await.unwrap());
    assert!(!s.session_creator(&a, &id).await.unwrap());
    let ghost = ClientId::parse("ghost").unwrap();
    assert!(!s.set_session_creator(&a, &ghost, true, 5).await.unwrap());
    assert!(!s.session_creator(&a, &ghost).await.unwrap());
    // Deleted with the client: one created again under its id is not allowed.
    assert!(s.set_session_creator(&a, &id, true, 6).await.unwrap());
    assert!(s.delete_client(&a, &id).await.unwrap());
    sesame_core::admin::create_client(s, &a, spec(), 7).await.unwrap();
    assert!(!s.session_creator(&a, &id).await.unwrap());
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

both_dialects!(the_allowance_goes_with_the_client);
