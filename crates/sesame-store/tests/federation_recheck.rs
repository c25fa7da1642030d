//! Re-check upstream on refresh, in the store (SQLite always, PostgreSQL when
//! `SESAME_TEST_DATABASE_URL` is set): the upstream refresh token kept on an external identity,
//! sealed, listed by user, cleared, and never another tenant's or another user's.

use sesame_core::crypto::MasterKey;
use sesame_core::federation::{self, ConnectionSpec, SsoConnection, UpstreamIdentity};
use sesame_core::ids::{ConnectionId, TenantId};
use sesame_core::model::{Tenant, User};
use sesame_core::store::{FederationStore, Store};
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

async fn connection(s: &SqlStore, master: &MasterKey, tenant: &str, recheck: bool) -> SsoConnection {
    let t = TenantId::parse(tenant).unwrap();
    s.create_tenant(&Tenant::new(t.clone(), 100), &[]).await.unwrap();
    let spec = ConnectionSpec {
        id: "corp".into(),
        kind: "oidc".into(),
        issuer: Some("https://idp.example".into()),
        discovery: true,
        client_id: Some("sesame".into()),
        client_secret: Some("s3cret".into()),
        enabled: true,
        recheck_on_refresh: recheck,
        ..Default::default()
    };
    federation::create_connection(s, master, &t, spec, 100)
        .await
        .unwrap()
}

async fn sign_in(s: &SqlStore, conn: &SsoConnection, sub: &str) -> User {
    let person = UpstreamIdentity {
        subject: sub.into(),
        email: Some(format!("{sub}@corp.example")),
        email_verified: true,
        name: None,
        groups: Vec::new(),
    };
    federation::sign_in(s, conn, person, 200)
        .await
        .unwrap()
        .unwrap()
        .user
}

#[tokio::test]
async fn upstream_refresh_tokens_are_kept_sealed_per_link_and_cleared() {
    let master = MasterKey::generate().0;
    for (_db, s) in stores().await {
        let conn = connection(&s, &master, "acme", true).await;
        let alice = sign_in(&s, &conn, "alice").await;
        let bob = sign_in(&s, &conn, "bob").await;
        assert!(s
            .upstream_refresh_tokens(&conn.tenant_id, &alice.id)
            .await
            .unwrap()
            .is_empty());

        federation::keep_refresh_token(&s, &master, &conn, "alice", Some("upstream-rt-1".into()))
            .await
            .unwrap();
        let kept = s
            .upstream_refresh_tokens(&conn.tenant_id, &alice.id)
            .await
            .unwrap();
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].connection, conn.id);
        assert_eq!(kept[0].subject, "alice");
        // Sealed: not the token's bytes, and it opens only under its own link's name.
        assert!(!kept[0].sealed.windows(13).any(|w| w == b"upstream-rt-1"));
        let aad = federation::refresh_token_aad(&conn.tenant_id, &conn.id, "alice");
        assert_eq!(master.open(&aad, &kept[0].sealed).unwrap(), b"upstream-rt-1");
        let other = federation::refresh_token_aad(&conn.tenant_id, &conn.id, "bob");
        assert!(master.open(&other, &kept[0].sealed).is_err());
        // Another user's list does not show it.
        assert!(s
            .upstream_refresh_tokens(&conn.tenant_id, &bob.id)
            .await
            .unwrap()
            .is_empty());

        // A rotation replaces it; a sign-in without the flag clears it.
        let sealed = master.seal(&aad, b"upstream-rt-2");
        assert!(s
            .set_upstream_refresh_token(&conn.tenant_id, &conn.id, "alice", Some(&sealed))
            .await
            .unwrap());
        let kept = s
            .upstream_refresh_tokens(&conn.tenant_id, &alice.id)
            .await
            .unwrap();
        assert_eq!(master.open(&aad, &kept[0].sealed).unwrap(), b"upstream-rt-2");
        let mut plain = conn.clone();
        plain.oidc.as_mut().unwrap().recheck_on_refresh = false;
        federation::keep_refresh_token(&s, &master, &plain, "alice", Some("ignored".into()))
            .await
            .unwrap();
        assert!(s
            .upstream_refresh_tokens(&conn.tenant_id, &alice.id)
            .await
            .unwrap()
            .is_empty());

        // No link, no row: nothing is written.
        let nobody = ConnectionId::parse("nobody").unwrap();
        assert!(!s
            .set_upstream_refresh_token(&conn.tenant_id, &nobody, "alice", Some(&sealed))
            .await
            .unwrap());
        assert!(!s
            .set_upstream_refresh_token(&conn.tenant_id, &conn.id, "carol", Some(&sealed))
            .await
            .unwrap());
    }
}

#[tokio::test]
async fn another_tenants_links_are_never_listed() {
    let master = MasterKey::generate().0;
    for (_db, s) in stores().await {
        let acme = connection(&s, &master, "acme", true).await;
        let umbrella = connection(&s, &master, "umbrella", true).await;
        let a = sign_in(&s, &acme, "same-sub").await;
        let u = sign_in(&s, &umbrella, "same-sub").await;
        federation::keep_refresh_token(&s, &master, &acme, "same-sub", Some("acme-rt".into()))
            .await
            .unwrap();
        assert_eq!(
            s.upstream_refresh_tokens(&acme.tenant_id, &a.id)
                .await
                .unwrap()
                .len(),
            1
        );
        assert!(s
            .upstream_refresh_tokens(&umbrella.tenant_id, &u.id)
            .await
            .unwrap()
            .is_empty());
        // The acme user's id asked in the other tenant finds nothing.
        assert!(s
            .upstream_refresh_tokens(&umbrella.tenant_id, &a.id)
            .await
            .unwrap()
            .is_empty());
    }
}

#[tokio::test]
async fn a_rechecking_connection_needs_a_refresh_token_at_sign_in() {
    let master = MasterKey::generate().0;
    for (_db, s) in stores().await {
        let conn = connection(&s, &master, "acme", true).await;
        let stored = s
            .get_sso_connection(&conn.tenant_id, &conn.id)
            .await
            .unwrap()
            .unwrap();
        assert!(stored.rechecks_on_refresh(), "the flag is stored");
        assert_eq!(
            federation::check_refresh_token_given(&conn, None),
            Err(federation::Refusal::NoRefreshToken)
        );
        assert_eq!(
            federation::check_refresh_token_given(&conn, Some("")),
            Err(federation::Refusal::NoRefreshToken)
        );
        assert!(federation::check_refresh_token_given(&conn, Some("rt")).is_ok());
        let mut plain = conn.clone();
        plain.oidc.as_mut().unwrap().recheck_on_refresh = false;
        assert!(federation::check_refresh_token_given(&plain, None).is_ok());
    }
}
