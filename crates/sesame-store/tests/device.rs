//! `DeviceStore` (RFC 8628 device authorizations) on SQLite always, and on PostgreSQL when
//! `SESAME_TEST_DATABASE_URL` is set.

use sesame_core::device::{DeviceAuthorization, DeviceDecision, DeviceStatus};
use sesame_core::ids::{ClientId, TenantId, UserId};
use sesame_core::model::{RefreshToken, Tenant};
use sesame_core::store::{DeviceStore, Store};
use sesame_core::Error;
use sesame_store::testing::TestDb;
use sesame_store::SqlStore;

fn tid(s: &str) -> TenantId {
    TenantId::parse(s).unwrap()
}

fn request(t: &TenantId, hash: u8, user_code: &str, client: &str) -> DeviceAuthorization {
    DeviceAuthorization {
        tenant_id: t.clone(),
        device_code_hash: [hash; 32],
        user_code: user_code.into(),
        client_id: ClientId::parse(client).unwrap(),
        scope: "openid offline_access".into(),
        status: DeviceStatus::Pending,
        user_id: None,
        session_id: None,
        auth_time: None,
        amr: vec![],
        grant_id: None,
        created_at: 100,
        expires_at: 700,
        last_poll_at: None,
        interval: 5,
        access_jti: None,
        access_exp: None,
    }
}

fn approve(user: &UserId, grant: &str) -> DeviceDecision {
    DeviceDecision::Approve {
        user_id: user.clone(),
        session_id: "sess".into(),
        auth_time: 90,
        amr: vec!["pwd".into()],
        grant_id: grant.into(),
    }
}

async fn each_store(case: impl AsyncFn(&SqlStore)) {
    let sqlite = TestDb::sqlite();
    let pg = TestDb::postgres().await;
    for db in std::iter::once(&sqlite).chain(pg.as_ref()) {
        let s = SqlStore::connect(&db.url).await.unwrap();
        s.create_tenant(&Tenant::new(tid("acme"), 1), &[]).await.unwrap();
        s.create_tenant(&Tenant::new(tid("other"), 1), &[]).await.unwrap();
        case(&s).await;
        s.close().await;
    }
}

#[tokio::test]
async fn requests_are_stored_by_device_code_hash_and_found_by_user_code_per_tenant() {
    each_store(async |s: &SqlStore| {
        let t = tid("acme");
        let r = request(&t, 1, "BCDFGHJK", "cli");
        s.insert_device_authorization(&r).await.unwrap();
        assert_eq!(
            s.get_device_authorization(&t, "BCDFGHJK").await.unwrap(),
            Some(r.clone())
        );
        assert_eq!(s.get_device_authorization(&t, "BCDFGHJL").await.unwrap(), None);
        assert_eq!(
            s.get_device_authorization(&tid("other"), "BCDFGHJK")
                .await
                .unwrap(),
            None,
            "another tenant's"
        );
        // A user code is unique within a tenant: the core draws again on Conflict.
        let err = s
            .insert_device_authorization(&request(&t, 2, "BCDFGHJK", "cli"))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Conflict(_)), "{err:?}");
        s.insert_device_authorization(&request(&tid("other"), 2, "BCDFGHJK", "cli"))
            .await
            .unwrap();
    })
    .await;
}

#[tokio::test]
async fn polls_sooner_than_the_interval_slow_down_and_grow_it() {
    each_store(async |s: &SqlStore| {
        let t = tid("acme");
        s.insert_device_authorization(&request(&t, 1, "BCDFGHJK", "cli"))
            .await
            .unwrap();
        let p = s
            .poll_device_authorization(&t, &[1; 32], 200)
            .await
            .unwrap()
            .unwrap();
        assert!(!p.too_fast, "the first poll is in time");
        assert_eq!(
            (p.authorization.last_poll_at, p.authorization.interval),
            (Some(200), 5)
        );
        let p = s
            .poll_device_authorization(&t, &[1; 32], 204)
            .await
            .unwrap()
            .unwrap();
        assert!(p.too_fast);
        assert_eq!(
            (p.authorization.last_poll_at, p.authorization.interval),
            (Some(204), 10)
        );
        let p = s
            .poll_device_authorization(&t, &[1; 32], 213)
            .await
            .unwrap()
            .unwrap();
        assert!(p.too_fast, "9 s < the grown interval of 10 s");
        assert_eq!(p.authorization.interval, 15);
        let p = s
            .poll_device_authorization(&t, &[1; 32], 228)
            .await
            .unwrap()
            .unwrap();
        assert!(!p.too_fast);
        assert_eq!(p.authorization.interval, 15);
        assert!(s
            .poll_device_authorization(&t, &[9; 32], 300)
            .await
            .unwrap()
            .is_none());
        assert!(s
            .poll_device_authorization(&tid("other"), &[1; 32], 300)
            .await
            .unwrap()
            .is_none());
    })
    .await;
}

#[tokio::test]
async fn a_decision_is_taken_once_and_only_while_pending_and_unexpired() {
    each_store(async |s: &SqlStore| {
        let t = tid("acme");
        let alice = UserId::parse("u-alice").unwrap();
        s.insert_device_authorization(&request(&t, 1, "BCDFGHJK", "cli"))
            .await
            .unwrap();
        s.insert_device_authorization(&request(&t, 2, "BCDFGHJL", "cli"))
            .await
            .unwrap();
        s.insert_device_authorization(&request(&t, 3, "BCDFGHJM", "cli"))
            .await
            .unwrap();
        assert!(
            !s.decide_device_authorization(&t, "BCDFGHJK", &approve(&alice, "g1"), 700)
                .await
                .unwrap(),
            "expired at 700"
        );
        assert!(!s
            .decide_device_authorization(&tid("other"), "BCDFGHJK", &approve(&alice, "g1"), 200)
            .await
            .unwrap());
        assert!(s
            .decide_device_authorization(&t, "BCDFGHJK", &approve(&alice, "g1"), 200)
            .await
            .unwrap());
        assert!(
            !s.decide_device_authorization(&t, "BCDFGHJK", &DeviceDecision::Deny, 201)
                .await
                .unwrap(),
            "already decided"
        );
        let approved = s.get_device_authorization(&t, "BCDFGHJK").await.unwrap().unwrap();
        assert_eq!(approved.status, DeviceStatus::Approved);
        assert_eq!(approved.user_id, Some(alice.clone()));
        assert_eq!(approved.session_id.as_deref(), Some("sess"));
        assert_eq!(approved.auth_time, Some(90));
        assert_eq!(approved.amr, ["pwd"]);
        assert_eq!(approved.grant_id.as_deref(), Some("g1"));
        assert!(s
            .decide_device_authorization(&t, "BCDFGHJL", &DeviceDecision::Deny, 200)
            .await
            .unwrap());
        let denied = s.get_device_authorization(&t, "BCDFGHJL").await.unwrap().unwrap();
        assert_eq!((denied.status, denied.user_id), (DeviceStatus::Denied, None));
        assert!(
            !s.redeem_device_authorization(&t, &[2; 32], 210, "jti", 4000, None)
                .await
                .unwrap(),
            "a denied request is never redeemed"
        );
        assert!(
            !s.redeem_device_authorization(&t, &[3; 32], 210, "jti", 4000, None)
                .await
                .unwrap(),
            "nor a pending one"
        );
    })
    .await;
}

#[tokio::test]
async fn redemption_is_single_use_stores_the_refresh_token_and_revoking_the_grant_reaches_the_token() {
    each_store(async |s: &SqlStore| {
        let t = tid("acme");
        let alice = UserId::parse("u-alice").unwrap();
        s.insert_device_authorization(&request(&t, 1, "BCDFGHJK", "cli"))
            .await
            .unwrap();
        s.decide_device_authorization(&t, "BCDFGHJK", &approve(&alice, "g1"), 200)
            .await
            .unwrap();
        let refresh = RefreshToken {
            tenant_id: t.clone(),
            token_hash: [7; 32],
            grant_id: "g1".into(),
            client_id: ClientId::parse("cli").unwrap(),
            user_id: alice.clone(),
            scope: "openid offline_access".into(),
            auth_time: 90,
            amr: vec!["pwd".into()],
            created_at: 210,
            expires_at: 100_000,
            access_jti: Some("jti-1".into()),
            access_exp: Some(4000),
            rotated_at: None,
            successor_response: None,
        };
        assert!(
            !s.redeem_device_authorization(&t, &[1; 32], 700, "jti-1", 4000, Some(&refresh))
                .await
                .unwrap(),
            "not after expiry"
        );
        assert!(s
            .redeem_device_authorization(&t, &[1; 32], 210, "jti-1", 4000, Some(&refresh))
            .await
            .unwrap());
        assert_eq!(
            s.get_refresh_token(&t, &[7; 32]).await.unwrap(),
            Some(refresh.clone())
        );
        let mut again = refresh.clone();
        again.token_hash = [8; 32];
        assert!(!s
            .redeem_device_authorization(&t, &[1; 32], 211, "jti-2", 4000, Some(&again))
            .await
            .unwrap());
        assert_eq!(
            s.get_refresh_token(&t, &[8; 32]).await.unwrap(),
            None,
            "the loser stores nothing"
        );
        let redeemed = s.get_device_authorization(&t, "BCDFGHJK").await.unwrap().unwrap();
        assert_eq!(redeemed.status, DeviceStatus::Redeemed);
        assert_eq!(redeemed.access_jti.as_deref(), Some("jti-1"));
        // The grant's revocation records the access token noted on the device row.
        s.revoke_grant(&t, "g1", 300).await.unwrap();
        assert!(s.is_access_token_revoked(&t, "jti-1").await.unwrap());
        assert_eq!(s.get_refresh_token(&t, &[7; 32]).await.unwrap(), None);
    })
    .await;
}

#[tokio::test]
async fn a_users_grants_include_device_grants_without_refresh_tokens() {
    each_store(async |s: &SqlStore| {
        let t = tid("acme");
        let alice = UserId::parse("u-alice").unwrap();
        s.insert_device_authorization(&request(&t, 1, "BCDFGHJK", "cli"))
            .await
            .unwrap();
        s.decide_device_authorization(&t, "BCDFGHJK", &approve(&alice, "g1"), 200)
            .await
            .unwrap();
        assert!(s
            .redeem_device_authorization(&t, &[1; 32], 210, "jti-1", 4000, None)
            .await
            .unwrap());
        s.revoke_user_grants(&t, &alice, None, 300).await.unwrap();
        assert!(s.is_access_token_revoked(&t, "jti-1").await.unwrap());
    })
    .await;
}

#[tokio::test]
async fn expired_requests_are_purged_once_their_access_token_has_expired_too() {
    each_store(async |s: &SqlStore| {
        let t = tid("acme");
        let alice = UserId::parse("u-alice").unwrap();
        s.insert_device_authorization(&request(&t, 1, "BCDFGHJK", "cli"))
            .await
            .unwrap();
        s.insert_device_authorization(&request(&t, 2, "BCDFGHJL", "cli"))
            .await
            .unwrap();
        s.decide_device_authorization(&t, "BCDFGHJL", &approve(&alice, "g2"), 200)
            .await
            .unwrap();
        s.redeem_device_authorization(&t, &[2; 32], 210, "jti-2", 4000, None)
            .await
            .unwrap();
        assert_eq!(s.purge_device_authorizations(699).await.unwrap(), 0);
        assert_eq!(s.purge_device_authorizations(700).await.unwrap(), 1);
        assert!(s
            .get_device_authorization(&t, "BCDFGHJK")
            .await
            .unwrap()
            .is_none());
        assert!(s
            .get_device_authorization(&t, "BCDFGHJL")
            .await
            .unwrap()
            .is_some());
        assert_eq!(s.purge_device_authorizations(4000).await.unwrap(), 1);
        assert!(s
            .get_device_authorization(&t, "BCDFGHJL")
            .await
            .unwrap()
            .is_none());
    })
    .await;
}
