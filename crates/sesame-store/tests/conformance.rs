//! One conformance suite for the Store trait, run against SQLite always and against the real
//! PostgreSQL when `SESAME_TEST_DATABASE_URL` is set (CI always sets it).

use sesame_core::crypto::MasterKey;
use sesame_core::ids::{ClientId, TenantId};
use sesame_core::keys::new_stored_key;
use sesame_core::model::{Client, ClientType, GrantType, KeyState, SigningAlg, StoredKey, Tenant};
use sesame_core::store::Store;
use sesame_core::Error;
use sesame_store::testing::TestDb;
use sesame_store::SqlStore;

fn tid(s: &str) -> TenantId {
    TenantId::parse(s).unwrap()
}

fn initial_keys(master: &MasterKey, t: &TenantId) -> Vec<StoredKey> {
    [KeyState::Active, KeyState::Next]
        .into_iter()
        .map(|st| new_stored_key(master, t, SigningAlg::EdDSA, st, 100).unwrap())
        .collect()
}

fn client(t: &TenantId, id: &str) -> Client {
    Client {
        tenant_id: t.clone(),
        client_id: ClientId::parse(id).unwrap(),
        name: format!("client {id}"),
        client_type: ClientType::Confidential,
        secret_hash: Some([7; 32]),
        grant_types: vec![GrantType::ClientCredentials],
        redirect_uris: vec!["https://app.example/cb".into()],
        allowed_scopes: vec!["read".into()],
        allowed_audiences: vec!["api".into()],
        signing_alg: Some(SigningAlg::ES256),
        access_token_ttl: Some(60),
        disabled: false,
        created_at: 100,
        updated_at: 100,
    }
}

async fn tenants_are_created_read_listed_and_disabled(s: SqlStore) {
    let master = MasterKey::generate().0;
    let g0 = s.generation().await.unwrap();
    let a = Tenant::new(tid("acme"), 100);
    s.create_tenant(&a, &initial_keys(&master, &a.id)).await.unwrap();
    assert!(
        s.generation().await.unwrap() > g0,
        "creating a tenant advances the generation"
    );
    let err = s.create_tenant(&a, &[]).await.unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err:?}");
    assert_eq!(s.get_tenant(&a.id).await.unwrap().unwrap(), a);
    assert!(s.get_tenant(&tid("nope")).await.unwrap().is_none());
    s.create_tenant(&Tenant::new(tid("beta"), 100), &[])
        .await
        .unwrap();
    let names: Vec<_> = s
        .list_tenants()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.id.to_string())
        .collect();
    assert_eq!(names, ["acme", "beta"]);
    assert!(s.set_tenant_disabled(&a.id, true).await.unwrap());
    assert!(s.get_tenant(&a.id).await.unwrap().unwrap().disabled);
    assert!(!s.set_tenant_disabled(&tid("nope"), true).await.unwrap());
    let mut changed = a.clone();
    changed.display_name = "Acme Corp".into();
    changed.signing_alg = SigningAlg::EdDSA;
    assert!(s.update_tenant(&changed).await.unwrap());
    let got = s.get_tenant(&a.id).await.unwrap().unwrap();
    assert_eq!(
        (got.display_name.as_str(), got.signing_alg),
        ("Acme Corp", SigningAlg::EdDSA)
    );
}

async fn clients_round_trip_every_field(s: SqlStore) {
    let t = tid("acme");
    s.create_tenant(&Tenant::new(t.clone(), 1), &[]).await.unwrap();
    let mut c = client(&t, "svc");
    s.create_client(&c).await.unwrap();
    assert!(matches!(s.create_client(&c).await, Err(Error::Conflict(_))));
    assert_eq!(s.get_client(&t, &c.client_id).await.unwrap().unwrap(), c);
    c.secret_hash = Some([9; 32]);
    c.disabled = true;
    c.signing_alg = None;
    c.access_token_ttl = None;
    c.updated_at = 200;
    let g = s.generation().await.unwrap();
    assert!(s.update_client(&c).await.unwrap());
    assert!(s.generation().await.unwrap() > g);
    assert_eq!(s.get_client(&t, &c.client_id).await.unwrap().unwrap(), c);
    let mut public = client(&t, "spa");
    public.client_type = ClientType::Public;
    public.secret_hash = None;
    public.grant_types = vec![];
    s.create_client(&public).await.unwrap();
    assert_eq!(
        s.list_clients(&t).await.unwrap(),
        vec![public.clone(), c.clone()],
        "ordered by client_id"
    );
    assert!(s.delete_client(&t, &c.client_id).await.unwrap());
    assert!(!s.delete_client(&t, &c.client_id).await.unwrap());
    assert!(s.get_client(&t, &c.client_id).await.unwrap().is_none());
}

async fn clients_are_scoped_to_their_tenant(s: SqlStore) {
    let (a, b) = (tid("a"), tid("b"));
    s.create_tenant(&Tenant::new(a.clone(), 1), &[]).await.unwrap();
    s.create_tenant(&Tenant::new(b.clone(), 1), &[]).await.unwrap();
    s.create_client(&client(&a, "svc")).await.unwrap();
    assert!(s
        .get_client(&b, &ClientId::parse("svc").unwrap())
        .await
        .unwrap()
        .is_none());
    s.create_client(&client(&b, "svc")).await.unwrap();
    assert!(s
        .delete_client(&a, &ClientId::parse("svc").unwrap())
        .await
        .unwrap());
    assert!(s
        .get_client(&b, &ClientId::parse("svc").unwrap())
        .await
        .unwrap()
        .is_some());
    // A client cannot belong to a tenant that does not exist.
    assert!(s.create_client(&client(&tid("ghost"), "svc")).await.is_err());
}

async fn key_rotation_promotes_next_and_retires_active(s: SqlStore) {
    let master = MasterKey::generate().0;
    let t = tid("acme");
    let keys = initial_keys(&master, &t);
    s.create_tenant(&Tenant::new(t.clone(), 1), &keys).await.unwrap();
    let (old_active, old_next) = (keys[0].kid.clone(), keys[1].kid.clone());
    let new_next = new_stored_key(&master, &t, SigningAlg::EdDSA, KeyState::Next, 500).unwrap();
    s.rotate_keys(&t, SigningAlg::EdDSA, &new_next, 9_000, 500)
        .await
        .unwrap();
    let stored = s.list_keys(&t).await.unwrap();
    let state = |kid: &str| {
        stored
            .iter()
            .find(|k| k.kid == kid)
            .map(|k| (k.state, k.publish_until, k.activated_at))
    };
    assert_eq!(
        state(&old_active),
        Some((KeyState::Retired, Some(9_000), Some(100)))
    );
    assert_eq!(state(&old_next), Some((KeyState::Active, None, Some(500))));
    assert_eq!(state(&new_next.kid), Some((KeyState::Next, None, None)));
    let round_tripped = stored.iter().find(|k| k.kid == new_next.kid).unwrap();
    assert_eq!(round_tripped, &new_next, "sealed key and JWK are stored as given");
    // Only expired retired keys are deleted.
    assert_eq!(s.delete_expired_keys(8_999).await.unwrap(), 0);
    assert_eq!(s.delete_expired_keys(9_001).await.unwrap(), 1);
    assert_eq!(s.list_keys(&t).await.unwrap().len(), 2);
    // Without a next key a rotation fails and changes nothing.
    let other = tid("other");
    let only_active = new_stored_key(&master, &other, SigningAlg::ES256, KeyState::Active, 1).unwrap();
    s.create_tenant(&Tenant::new(other.clone(), 1), std::slice::from_ref(&only_active))
        .await
        .unwrap();
    let nn = new_stored_key(&master, &other, SigningAlg::ES256, KeyState::Next, 1).unwrap();
    assert!(s
        .rotate_keys(&other, SigningAlg::ES256, &nn, 10, 1)
        .await
        .is_err());
    assert_eq!(s.list_keys(&other).await.unwrap(), vec![only_active]);
}

async fn a_tenant_has_at_most_one_active_key_per_alg(s: SqlStore) {
    let master = MasterKey::generate().0;
    let t = tid("acme");
    s.create_tenant(&Tenant::new(t.clone(), 1), &initial_keys(&master, &t))
        .await
        .unwrap();
    let second = new_stored_key(&master, &t, SigningAlg::EdDSA, KeyState::Active, 1).unwrap();
    assert!(s.insert_keys(&[second]).await.is_err());
    let es = new_stored_key(&master, &t, SigningAlg::ES256, KeyState::Active, 1).unwrap();
    s.insert_keys(&[es]).await.unwrap();
}

async fn revocations_are_tenant_scoped_idempotent_and_purged(s: SqlStore) {
    let (a, b) = (tid("a"), tid("b"));
    s.create_tenant(&Tenant::new(a.clone(), 1), &[]).await.unwrap();
    s.create_tenant(&Tenant::new(b.clone(), 1), &[]).await.unwrap();
    s.revoke_access_token(&a, "jti-1", 1_000).await.unwrap();
    s.revoke_access_token(&a, "jti-1", 1_000).await.unwrap();
    assert!(s.is_access_token_revoked(&a, "jti-1").await.unwrap());
    assert!(!s.is_access_token_revoked(&b, "jti-1").await.unwrap());
    assert!(!s.is_access_token_revoked(&a, "jti-2").await.unwrap());
    assert_eq!(s.purge_revocations(999).await.unwrap(), 0);
    assert_eq!(s.purge_revocations(1_001).await.unwrap(), 1);
    assert!(!s.is_access_token_revoked(&a, "jti-1").await.unwrap());
}

async fn settings_and_admin_tokens(s: SqlStore) {
    assert!(s.get_setting("k").await.unwrap().is_none());
    assert!(s.insert_setting_if_absent("k", b"one").await.unwrap());
    assert!(!s.insert_setting_if_absent("k", b"two").await.unwrap());
    assert_eq!(s.get_setting("k").await.unwrap().unwrap(), b"one");
    assert_eq!(s.count_admin_tokens().await.unwrap(), 0);
    s.insert_admin_token("first", &[1; 32], 5).await.unwrap();
    assert!(s.admin_token_exists(&[1; 32]).await.unwrap());
    assert!(!s.admin_token_exists(&[2; 32]).await.unwrap());
    assert_eq!(s.count_admin_tokens().await.unwrap(), 1);
    s.ping().await.unwrap();
}

async fn users_round_trip_and_usernames_are_unique_per_tenant(s: SqlStore) {
    use sesame_core::ids::{UserId, Username};
    use sesame_core::model::User;
    let (a, b) = (tid("a"), tid("b"));
    s.create_tenant(&Tenant::new(a.clone(), 1), &[]).await.unwrap();
    s.create_tenant(&Tenant::new(b.clone(), 1), &[]).await.unwrap();
    let mut alice = User {
        tenant_id: a.clone(),
        id: UserId::generate(),
        username: Username::parse("alice").unwrap(),
        email: Some("alice@example.com".into()),
        email_verified: true,
        name: Some("Alice".into()),
        picture: None,
        disabled: false,
        password_hash: Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into()),
        created_at: 5,
        updated_at: 5,
    };
    s.create_user(&alice).await.unwrap();
    assert_eq!(s.get_user(&a, alice.id.as_str()).await.unwrap().unwrap(), alice);
    assert_eq!(
        s.get_user(&a, "ALICE").await.unwrap().unwrap(),
        alice,
        "by username, case-insensitive"
    );
    assert!(
        s.get_user(&b, "alice").await.unwrap().is_none(),
        "users are tenant-scoped"
    );
    let twin = User {
        id: UserId::generate(),
        ..alice.clone()
    };
    assert!(matches!(s.create_user(&twin).await, Err(Error::Conflict(_))));
    s.create_user(&User {
        tenant_id: b.clone(),
        id: UserId::generate(),
        ..alice.clone()
    })
    .await
    .unwrap();
    alice.disabled = true;
    alice.email = None;
    alice.password_hash = None;
    alice.updated_at = 9;
    assert!(s.update_user(&alice).await.unwrap());
    assert_eq!(s.get_user(&a, "alice").await.unwrap().unwrap(), alice);
    assert_eq!(s.list_users(&a).await.unwrap(), vec![alice]);
}

macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $case() {
                    let db = sesame_store::testing::TestDb::sqlite();
                    let store = sesame_store::SqlStore::connect(&db.url).await.unwrap();
                    assert_eq!(sesame_core::store::Store::backend(&store), "sqlite");
                    super::$case(store).await;
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
                    super::$case(store).await;
                }
            )*
        }
    };
}

conformance!(
    tenants_are_created_read_listed_and_disabled,
    clients_round_trip_every_field,
    clients_are_scoped_to_their_tenant,
    key_rotation_promotes_next_and_retires_active,
    a_tenant_has_at_most_one_active_key_per_alg,
    revocations_are_tenant_scoped_idempotent_and_purged,
    settings_and_admin_tokens,
    users_round_trip_and_usernames_are_unique_per_tenant,
);

#[tokio::test]
async fn migrations_run_again_on_an_existing_store_and_keep_its_rows() {
    let db = TestDb::sqlite();
    let s = SqlStore::connect(&db.url).await.unwrap();
    s.create_tenant(&Tenant::new(tid("keep"), 1), &[]).await.unwrap();
    s.close().await;
    let again = SqlStore::connect(&db.url).await.unwrap();
    assert!(again.get_tenant(&tid("keep")).await.unwrap().is_some());
    if let Some(pg) = TestDb::postgres().await {
        let s = SqlStore::connect(&pg.url).await.unwrap();
        s.create_tenant(&Tenant::new(tid("keep"), 1), &[]).await.unwrap();
        s.close().await;
        let again = SqlStore::connect(&pg.url).await.unwrap();
        assert!(again.get_tenant(&tid("keep")).await.unwrap().is_some());
    }
}

#[tokio::test]
async fn an_unreachable_postgres_is_named_with_its_password_redacted() {
    let url = sesame_store::StoreUrl::parse("postgres://user:hunter2@127.0.0.1:1/db").unwrap();
    let err = SqlStore::connect(&url)
        .await
        .err()
        .expect("port 1 refuses")
        .to_string();
    assert!(err.contains("postgres://user:***@127.0.0.1:1/db"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
}
