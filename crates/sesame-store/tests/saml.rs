//! The `SamlStore` on SQLite always and on PostgreSQL when `SESAME_TEST_DATABASE_URL` is set:
//! an assertion ID is used once, across two store handles on the same database (two replicas),
//! per connection, and forgotten after it expires.

use sesame_core::ids::{ConnectionId, TenantId};
use sesame_core::model::Tenant;
use sesame_core::store::{SamlStore, Store};
use sesame_store::testing::TestDb;
use sesame_store::SqlStore;

async fn stores() -> Vec<(TestDb, SqlStore, SqlStore)> {
    let mut out = Vec::new();
    let db = TestDb::sqlite();
    let (a, b) = (
        SqlStore::connect(&db.url).await.unwrap(),
        SqlStore::connect(&db.url).await.unwrap(),
    );
    out.push((db, a, b));
    if let Some(db) = TestDb::postgres().await {
        let (a, b) = (
            SqlStore::connect(&db.url).await.unwrap(),
            SqlStore::connect(&db.url).await.unwrap(),
        );
        out.push((db, a, b));
    }
    out
}

#[tokio::test]
async fn an_assertion_is_used_once_on_every_handle_until_it_expires() {
    for (_db, a, b) in stores().await {
        let t = TenantId::parse("acme").unwrap();
        a.create_tenant(&Tenant::new(t.clone(), 100), &[]).await.unwrap();
        let corp = ConnectionId::parse("corp").unwrap();
        let other = ConnectionId::parse("other").unwrap();
        assert!(a.use_saml_assertion(&t, &corp, "_a1", 1_000).await.unwrap());
        // The other replica, and the first again: already used.
        assert!(!b.use_saml_assertion(&t, &corp, "_a1", 1_000).await.unwrap());
        assert!(!a.use_saml_assertion(&t, &corp, "_a1", 1_000).await.unwrap());
        // IDs are the IdP's: another connection's IdP may use the same one.
        assert!(b.use_saml_assertion(&t, &other, "_a1", 1_000).await.unwrap());
        // At once on both handles: exactly one use wins.
        let (x, y) = tokio::join!(
            a.use_saml_assertion(&t, &corp, "_a2", 1_000),
            b.use_saml_assertion(&t, &corp, "_a2", 1_000)
        );
        assert!(x.unwrap() ^ y.unwrap());
        // The sweep forgets expired IDs only.
        assert!(a.use_saml_assertion(&t, &corp, "_late", 5_000).await.unwrap());
        assert_eq!(b.purge_saml_assertions(2_000).await.unwrap(), 3);
        assert!(!a.use_saml_assertion(&t, &corp, "_late", 5_000).await.unwrap());
        assert!(a.use_saml_assertion(&t, &corp, "_a1", 9_000).await.unwrap());
    }
}
