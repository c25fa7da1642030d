//! The `FederationStore` on SQLite always and on PostgreSQL when `SESAME_TEST_DATABASE_URL` is
//! set: connections (secrets sealed, settings kept), the federated sign-in rules of
//! `sesame_core::federation` against real rows (linking, email matching, groups replaced, the
//! admin flag by source), and connection deletion.

use sesame_core::crypto::MasterKey;
use sesame_core::federation::{self, ConnectionSpec, Refusal, SsoConnection, UpstreamIdentity};
use sesame_core::ids::{TenantId, UserId, Username};
use sesame_core::model::{Tenant, User};
use sesame_core::store::FederationStore;
use sesame_core::store::Store;
use sesame_core::Error;
use sesame_store::testing::TestDb;
use sesame_store::SqlStore;

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

fn spec(id: &str) -> ConnectionSpec {
    ConnectionSpec {
        id: id.into(),
        kind: "oidc".into(),
        issuer: Some("https://idp.example".into()),
        discovery: true,
        client_id: Some("sesame".into()),
        client_secret: Some("s3cret".into()),
        enabled: true,
        admin_groups: vec!["admins".into()],
        groups_claim: Some("groups".into()),
        ..Default::default()
    }
}

fn person(sub: &str, email: &str, verified: bool, groups: &[&str]) -> UpstreamIdentity {
    UpstreamIdentity {
        subject: sub.into(),
        email: Some(email.into()),
        email_verified: verified,
        name: Some("Person".into()),
        groups: groups.iter().map(|g| g.to_string()).collect(),
    }
}

async fn local(s: &SqlStore, t: &TenantId, name: &str, email: &str) -> User {
    let u = User {
        tenant_id: t.clone(),
        id: UserId::generate(),
        username: Username::parse(name).unwrap(),
        email: Some(email.into()),
        email_verified: true,
        name: None,
        picture: None,
        disabled: false,
        password_hash: None,
        created_at: 100,
        updated_at: 100,
    };
    s.create_user(&u).await.unwrap();
    u
}

#[tokio::test]
async fn connections_are_stored_with_sealed_secrets_and_deleted_with_their_links() {
    let master = MasterKey::generate().0;
    for (_db, s) in stores().await {
        let t = tenant(&s, "acme").await;
        let other = tenant(&s, "other").await;
        let c = federation::create_connection(&s, &master, &t, spec("corp"), 100)
            .await
            .unwrap();
        let read = s.get_sso_connection(&t, &c.id).await.unwrap().unwrap();
        assert_eq!(read, c);
        assert_eq!(read.client_secret(&master).unwrap().as_deref(), Some("s3cret"));
        assert_ne!(read.sealed_secret.as_deref(), Some(b"s3cret".as_slice()));
        // Bound to tenant and connection: the blob does not open under another name.
        let moved = SsoConnection {
            tenant_id: other.clone(),
            ..read.clone()
        };
        assert!(moved.client_secret(&master).is_err());
        assert!(s.get_sso_connection(&other, &c.id).await.unwrap().is_none());
        assert!(matches!(
            federation::create_connection(&s, &master, &t, spec("corp"), 100).await,
            Err(Error::Conflict(_))
        ));
        let patch = serde_json::json!({ "display_name": "Corp", "enabled": false })
            .as_object()
            .cloned()
            .unwrap();
        let updated = federation::update_connection(&s, &master, &t, "corp", patch, 200)
            .await
            .unwrap();
        assert_eq!((updated.display_name.as_str(), updated.enabled), ("Corp", false));
        assert_eq!(updated.client_secret(&master).unwrap().as_deref(), Some("s3cret"));
        assert_eq!(s.list_sso_connections(&t).await.unwrap(), vec![updated.clone()]);

        let user = federation::sign_in(&s, &updated, person("p1", "p1@acme.example", true, &["g"]), 300)
            .await
            .unwrap()
            .unwrap()
            .user;
        assert!(s.delete_sso_connection(&t, &c.id).await.unwrap());
        assert!(!s.delete_sso_connection(&t, &c.id).await.unwrap());
        assert!(s.find_external_identity(&t, &c.id, "p1").await.unwrap().is_none());
        assert!(s.user_groups(&t, &user.id).await.unwrap().is_empty());
        assert!(
            s.get_user(&t, user.id.as_str()).await.unwrap().is_some(),
            "users stay"
        );
        s.close().await;
    }
}

#[tokio::test]
async fn federated_sign_ins_link_match_and_refuse_by_the_rules() {
    let master = MasterKey::generate().0;
    for (_db, s) in stores().await {
        let t = tenant(&s, "acme").await;
        let c = federation::create_connection(&s, &master, &t, spec("corp"), 100)
            .await
            .unwrap();

        // First sign-in: a new user, linked; the admin group sets admin_by_sso.
        let a = federation::sign_in(
            &s,
            &c,
            person("a", "A@acme.example", true, &["admins", "x", "x"]),
            200,
        )
        .await
        .unwrap()
        .unwrap();
        assert_eq!((a.new_link, a.new_user), (true, true));
        let a = a.user;
        assert_eq!(a.username.as_str(), "a@acme.example");
        assert_eq!(
            s.find_external_identity(&t, &c.id, "a").await.unwrap(),
            Some(a.id.clone())
        );
        assert_eq!(s.user_groups(&t, &a.id).await.unwrap(), vec!["admins", "x"]);
        assert!(s.user_admin(&t, &a.id).await.unwrap().by_sso);

        // Again: the same user, groups replaced, admin_by_sso gone; the hand-set flag stays.
        assert!(s.set_user_admin(&t, &a.id, true).await.unwrap());
        let again = federation::sign_in(&s, &c, person("a", "a@acme.example", true, &["y"]), 300)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (again.new_link, again.new_user),
            (false, false),
            "linked once, at the first sign-in"
        );
        assert_eq!(again.user.id, a.id);
        assert_eq!(s.user_groups(&t, &a.id).await.unwrap(), vec!["y"]);
        let flag = s.user_admin(&t, &a.id).await.unwrap();
        assert_eq!((flag.by_hand, flag.by_sso, flag.is_admin()), (true, false, true));

        // An existing local user: not linked on an unverified email, linked on a verified one.
        let bob = local(&s, &t, "bob", "Bob@acme.example").await;
        let refused = federation::sign_in(&s, &c, person("b", "bob@acme.example", false, &[]), 400)
            .await
            .unwrap();
        assert_eq!(refused, Err(Refusal::UnverifiedEmail));
        assert!(s.find_external_identity(&t, &c.id, "b").await.unwrap().is_none());
        let linked = federation::sign_in(&s, &c, person("b", "bob@acme.example", true, &[]), 500)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((linked.new_link, linked.new_user), (true, false));
        assert_eq!(linked.user.id, bob.id);

        // Two users with one email: no guess.
        local(&s, &t, "c1", "c@acme.example").await;
        local(&s, &t, "c2", "C@acme.example").await;
        let refused = federation::sign_in(&s, &c, person("c", "c@acme.example", true, &[]), 600)
            .await
            .unwrap();
        assert_eq!(refused, Err(Refusal::AmbiguousEmail));

        // Disabled: refused, though linked.
        let mut disabled = s.get_user(&t, bob.id.as_str()).await.unwrap().unwrap();
        disabled.disabled = true;
        s.update_user(&disabled).await.unwrap();
        let refused = federation::sign_in(&s, &c, person("b", "bob@acme.example", true, &[]), 700)
            .await
            .unwrap();
        assert_eq!(refused, Err(Refusal::Disabled));

        // A username taken by someone else: the new user gets another one.
        local(&s, &t, "d@acme.example", "someone@else.example").await;
        let d = federation::sign_in(&s, &c, person("d", "d@acme.example", true, &[]), 800)
            .await
            .unwrap()
            .unwrap()
            .user;
        assert!(d.username.as_str().starts_with("corp-"), "{}", d.username);

        // Password sign-in option.
        assert!(s.password_sign_in(&t).await.unwrap());
        s.set_password_sign_in(&t, false).await.unwrap();
        assert!(!s.password_sign_in(&t).await.unwrap());
        s.set_password_sign_in(&t, true).await.unwrap();
        assert!(s.password_sign_in(&t).await.unwrap());
        s.close().await;
    }
}
