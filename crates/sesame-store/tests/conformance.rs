//! One conformance suite for the Store trait, run against SQLite always and against the real
//! PostgreSQL when `SESAME_TEST_DATABASE_URL` is set (CI always sets it).

use sesame_core::crypto::MasterKey;
use sesame_core::ids::{ClientId, TenantId, UserId};
use sesame_core::keys::new_stored_key;
use sesame_core::model::{
    AuthorizationCode, BrowserSession, Consent, ImplicitGrant, LoginAttempt, LoginFailures, LoginLimit,
    RefreshToken,
};
use sesame_core::model::{Client, ClientType, GrantType, KeyState, SigningAlg, StoredKey, Tenant};
use sesame_core::store::Store;
use sesame_core::Error;
use sesame_store::testing::TestDb;
use sesame_store::{SqlStore, StoreUrl};

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
        post_logout_redirect_uris: vec!["https://app.example/bye".into()],
        require_pkce: false,
        first_party: false,
        refresh_without_offline_access: false,
        backchannel_logout_uri: Some("https://app.example/backchannel".into()),
        allowed_scopes: vec!["read".into()],
        allowed_audiences: vec!["api".into()],
        signing_alg: Some(SigningAlg::ES256),
        access_token_ttl: Some(60),
        introspect_any: false,
        jwks: None,
        jwks_uri: None,
        trust_policy: None,
        token_exchange_impersonation: false,
        disabled: false,
        revoked_before: 100,
        created_at: 100,
        updated_at: 100,
    }
}

async fn tenants_are_created_read_listed_and_disabled(s: &SqlStore) {
    let master = MasterKey::generate().0;
    let g0 = s.generation().await.unwrap();
    let a = Tenant {
        logo_url: Some("https://acme.example/logo.svg".into()),
        session_ttl: 7_200,
        refresh_token_ttl: 86_400,
        ..Tenant::new(tid("acme"), 100)
    };
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
    changed.logo_url = Some("https://cdn.example/acme.png".into());
    changed.session_ttl = 600;
    changed.refresh_token_ttl = 3_600;
    assert!(s.update_tenant(&changed).await.unwrap());
    let got = s.get_tenant(&a.id).await.unwrap().unwrap();
    assert_eq!((got.session_ttl, got.refresh_token_ttl), (600, 3_600));
    assert_eq!(
        (got.display_name.as_str(), got.signing_alg),
        ("Acme Corp", SigningAlg::EdDSA)
    );
    assert_eq!(got.logo_url.as_deref(), Some("https://cdn.example/acme.png"));
    changed.logo_url = None;
    assert!(s.update_tenant(&changed).await.unwrap());
    assert_eq!(s.get_tenant(&a.id).await.unwrap().unwrap().logo_url, None);
}

async fn clients_round_trip_every_field(s: &SqlStore) {
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
    c.grant_types = vec![
        GrantType::AuthorizationCode,
        GrantType::RefreshToken,
        GrantType::Implicit,
    ];
    c.post_logout_redirect_uris = vec!["https://app.example/a".into(), "com.example.app:/b".into()];
    c.require_pkce = true;
    c.first_party = true;
    c.refresh_without_offline_access = true;
    c.introspect_any = true;
    c.updated_at = 200;
    let g = s.generation().await.unwrap();
    assert!(s.update_client(&c).await.unwrap());
    assert!(s.generation().await.unwrap() > g);
    // Disabling moves the horizon just past the moment it happened; the store decides it.
    c.revoked_before = 201;
    assert_eq!(s.get_client(&t, &c.client_id).await.unwrap().unwrap(), c);
    c.updated_at = 300;
    c.revoked_before = 0;
    assert!(s.update_client(&c).await.unwrap());
    c.disabled = false;
    c.updated_at = 400;
    assert!(s.update_client(&c).await.unwrap());
    c.revoked_before = 201;
    assert_eq!(
        s.get_client(&t, &c.client_id).await.unwrap().unwrap(),
        c,
        "the horizon moves when a client becomes disabled, not on later changes or enabling"
    );
    let mut public = client(&t, "spa");
    public.client_type = ClientType::Public;
    public.secret_hash = None;
    public.grant_types = vec![];
    public.post_logout_redirect_uris = vec![];
    public.require_pkce = true;
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

async fn clients_are_scoped_to_their_tenant(s: &SqlStore) {
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

async fn key_rotation_promotes_next_and_retires_active(s: &SqlStore) {
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

async fn a_tenant_has_at_most_one_active_key_per_alg(s: &SqlStore) {
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

async fn revocations_are_tenant_scoped_idempotent_and_purged(s: &SqlStore) {
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

async fn settings_and_admin_tokens(s: &SqlStore) {
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

async fn users_round_trip_and_usernames_are_unique_per_tenant(s: &SqlStore) {
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

// Browser sign-in ---------------------------------------------------------------------------------

fn cid(s: &str) -> ClientId {
    ClientId::parse(s).unwrap()
}

/// A store with tenants `a` and `b`, for the sign-in records that must name an existing tenant.
async fn with_tenants(s: &SqlStore) -> (TenantId, TenantId) {
    let (a, b) = (tid("a"), tid("b"));
    s.create_tenant(&Tenant::new(a.clone(), 1), &[]).await.unwrap();
    s.create_tenant(&Tenant::new(b.clone(), 1), &[]).await.unwrap();
    (a, b)
}

fn session(
    t: &TenantId,
    id: &str,
    secret: u8,
    user: &UserId,
    created_at: i64,
    expires_at: i64,
) -> BrowserSession {
    BrowserSession {
        tenant_id: t.clone(),
        id: id.into(),
        secret_hash: [secret; 32],
        user_id: user.clone(),
        auth_time: created_at - 5,
        amr: vec!["pwd".into()],
        user_agent: None,
        ip: None,
        created_at,
        expires_at,
    }
}

fn code(t: &TenantId, hash: u8, grant: &str, client: &str, user: &UserId) -> AuthorizationCode {
    AuthorizationCode {
        tenant_id: t.clone(),
        code_hash: [hash; 32],
        grant_id: grant.into(),
        client_id: cid(client),
        user_id: user.clone(),
        session_id: "sess-1".into(),
        redirect_uri: "https://app.example/cb".into(),
        scope: "openid profile".into(),
        nonce: Some("n-0S6_WzA2Mj".into()),
        code_challenge: Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into()),
        auth_time: 90,
        amr: vec!["pwd".into(), "mfa".into()],
        created_at: 100,
        expires_at: 160,
        redeemed_at: None,
        access_jti: None,
        access_exp: None,
    }
}

/// A redeemed code, which notes the access token it was redeemed for.
fn redeemed_code(
    t: &TenantId,
    hash: u8,
    grant: &str,
    client: &str,
    user: &UserId,
    jti: &str,
    exp: i64,
) -> AuthorizationCode {
    AuthorizationCode {
        redeemed_at: Some(120),
        access_jti: Some(jti.into()),
        access_exp: Some(exp),
        ..code(t, hash, grant, client, user)
    }
}

fn refresh(
    t: &TenantId,
    hash: u8,
    grant: &str,
    client: &str,
    user: &UserId,
    access: Option<(&str, i64)>,
) -> RefreshToken {
    RefreshToken {
        tenant_id: t.clone(),
        token_hash: [hash; 32],
        grant_id: grant.into(),
        client_id: cid(client),
        user_id: user.clone(),
        scope: "openid offline_access".into(),
        auth_time: 90,
        amr: vec!["pwd".into()],
        created_at: 100,
        expires_at: 100 + 30 * 86_400,
        access_jti: access.map(|(jti, _)| jti.to_owned()),
        access_exp: access.map(|(_, exp)| exp),
        rotated_at: None,
        successor_response: None,
    }
}

async fn sessions_round_trip_expire_and_end(s: &SqlStore) {
    let (a, b) = with_tenants(s).await;
    let (alice, bob) = (UserId::generate(), UserId::generate());
    let g = s.generation().await.unwrap();
    let s1 = BrowserSession {
        amr: vec!["pwd".into(), "otp".into()],
        user_agent: Some("Mozilla/5.0 (X11; Linux x86_64)".into()),
        ip: Some("2001:db8::1".into()),
        ..session(&a, "s1", 1, &alice, 100, 1_000)
    };
    let s2 = session(&a, "s2", 2, &alice, 200, 2_000);
    let s3 = session(&a, "s3", 3, &bob, 300, 3_000);
    for x in [&s1, &s2, &s3] {
        s.insert_session(x).await.unwrap();
    }
    assert_eq!(s.get_session(&a, &[1; 32], 500).await.unwrap(), Some(s1.clone()));
    assert_eq!(s.get_session(&a, &[1; 32], 999).await.unwrap(), Some(s1.clone()));
    assert_eq!(
        s.get_session(&a, &[1; 32], 1_000).await.unwrap(),
        None,
        "a session has expired at its expires_at"
    );
    assert_eq!(
        s.get_session(&b, &[1; 32], 500).await.unwrap(),
        None,
        "tenant-scoped"
    );
    assert_eq!(s.get_session(&a, &[9; 32], 500).await.unwrap(), None);
    assert_eq!(
        s.list_sessions(&a, &alice, 500).await.unwrap(),
        vec![s2.clone(), s1.clone()],
        "newest first"
    );
    assert_eq!(
        s.list_sessions(&a, &alice, 1_500).await.unwrap(),
        vec![s2.clone()]
    );
    assert!(s.list_sessions(&b, &alice, 500).await.unwrap().is_empty());
    // The id and the secret are each unique.
    let same_id = session(&a, "s1", 7, &alice, 100, 1_000);
    assert!(matches!(
        s.insert_session(&same_id).await,
        Err(Error::Conflict(_))
    ));
    let same_secret = session(&a, "s7", 1, &alice, 100, 1_000);
    assert!(matches!(
        s.insert_session(&same_secret).await,
        Err(Error::Conflict(_))
    ));
    // A session needs an existing tenant.
    assert!(s
        .insert_session(&session(&tid("ghost"), "s9", 9, &alice, 1, 2))
        .await
        .is_err());

    assert!(s.delete_session(&a, "s1").await.unwrap());
    assert!(!s.delete_session(&a, "s1").await.unwrap());
    assert!(!s.delete_session(&b, "s2").await.unwrap(), "tenant-scoped");
    assert_eq!(s.get_session(&a, &[1; 32], 500).await.unwrap(), None);
    assert_eq!(s.delete_user_sessions(&a, &alice).await.unwrap(), 1);
    assert_eq!(s.delete_user_sessions(&a, &alice).await.unwrap(), 0);
    assert!(s.list_sessions(&a, &alice, 0).await.unwrap().is_empty());
    assert_eq!(
        s.list_sessions(&a, &bob, 0).await.unwrap(),
        vec![s3],
        "other users keep theirs"
    );
    assert_eq!(s.generation().await.unwrap(), g, "sessions are not cached");
}

async fn session_clients_are_noted_once_and_outlive_the_session(s: &SqlStore) {
    let (a, b) = with_tenants(s).await;
    let alice = UserId::generate();
    s.insert_session(&session(&a, "s1", 1, &alice, 100, 1_000))
        .await
        .unwrap();
    for client in ["web", "app", "web"] {
        s.add_session_client(&a, "s1", &cid(client), 1_000).await.unwrap();
    }
    s.add_session_client(&a, "s2", &cid("cli"), 2_000).await.unwrap();
    assert_eq!(
        s.session_clients(&a, "s1").await.unwrap(),
        [cid("app"), cid("web")]
    );
    assert_eq!(s.session_clients(&a, "s2").await.unwrap(), [cid("cli")]);
    assert!(
        s.session_clients(&b, "s1").await.unwrap().is_empty(),
        "tenant-scoped"
    );
    // Ending the session keeps its clients, so that they can still be told.
    assert!(s.delete_session(&a, "s1").await.unwrap());
    assert_eq!(s.session_clients(&a, "s1").await.unwrap().len(), 2);
    // Until the session would have expired.
    s.purge_expired(1_000, 0).await.unwrap();
    assert!(s.session_clients(&a, "s1").await.unwrap().is_empty());
    assert_eq!(s.session_clients(&a, "s2").await.unwrap(), [cid("cli")]);
}

async fn codes_are_redeemed_once(s: &SqlStore) {
    let (a, b) = with_tenants(s).await;
    let alice = UserId::generate();
    let g = s.generation().await.unwrap();
    let c = code(&a, 1, "grant-1", "web", &alice);
    s.insert_code(&c).await.unwrap();
    assert!(matches!(s.insert_code(&c).await, Err(Error::Conflict(_))));
    assert_eq!(s.get_code(&a, &[1; 32]).await.unwrap(), Some(c.clone()));
    assert_eq!(s.get_code(&b, &[1; 32]).await.unwrap(), None, "tenant-scoped");
    assert_eq!(s.get_code(&a, &[2; 32]).await.unwrap(), None);
    let bare = AuthorizationCode {
        nonce: None,
        code_challenge: None,
        amr: vec![],
        ..code(&a, 2, "grant-2", "web", &alice)
    };
    s.insert_code(&bare).await.unwrap();
    assert_eq!(s.get_code(&a, &[2; 32]).await.unwrap(), Some(bare));

    assert!(s
        .redeem_code(&a, &[1; 32], 130, "at-1", 3_730, None)
        .await
        .unwrap());
    let redeemed = AuthorizationCode {
        redeemed_at: Some(130),
        access_jti: Some("at-1".into()),
        access_exp: Some(3_730),
        ..c.clone()
    };
    assert_eq!(s.get_code(&a, &[1; 32]).await.unwrap(), Some(redeemed.clone()));
    assert!(
        !s.redeem_code(&a, &[1; 32], 140, "at-2", 3_740, None)
            .await
            .unwrap(),
        "a code is redeemed once"
    );
    assert_eq!(
        s.get_code(&a, &[1; 32]).await.unwrap(),
        Some(redeemed),
        "the losing redemption changes nothing"
    );
    assert!(!s
        .redeem_code(&a, &[9; 32], 130, "at-3", 3_730, None)
        .await
        .unwrap());
    assert!(!s
        .redeem_code(&b, &[2; 32], 130, "at-3", 3_730, None)
        .await
        .unwrap());

    // Two concurrent redemptions: exactly one wins.
    s.insert_code(&code(&a, 3, "grant-3", "web", &alice))
        .await
        .unwrap();
    let (x, y) = tokio::join!(
        s.redeem_code(&a, &[3; 32], 130, "at-x", 3_730, None),
        s.redeem_code(&a, &[3; 32], 130, "at-y", 3_730, None),
    );
    assert!(x.unwrap() ^ y.unwrap());

    // The refresh token is stored with the redemption that wins, and only with it.
    s.insert_code(&code(&a, 4, "grant-4", "web", &alice))
        .await
        .unwrap();
    let first = refresh(&a, 41, "grant-4", "web", &alice, Some(("at-4", 3_730)));
    assert!(s
        .redeem_code(&a, &[4; 32], 130, "at-4", 3_730, Some(&first))
        .await
        .unwrap());
    assert_eq!(s.get_refresh_token(&a, &[41; 32]).await.unwrap(), Some(first));
    let late = refresh(&a, 42, "grant-4", "web", &alice, Some(("at-5", 3_740)));
    assert!(!s
        .redeem_code(&a, &[4; 32], 140, "at-5", 3_740, Some(&late))
        .await
        .unwrap());
    assert_eq!(
        s.get_refresh_token(&a, &[42; 32]).await.unwrap(),
        None,
        "a losing redemption stores no refresh token"
    );
    // A refresh token that cannot be stored undoes the redemption.
    s.insert_code(&code(&a, 5, "grant-5", "web", &alice))
        .await
        .unwrap();
    let clash = refresh(&a, 41, "grant-5", "web", &alice, Some(("at-6", 3_730)));
    assert!(s
        .redeem_code(&a, &[5; 32], 130, "at-6", 3_730, Some(&clash))
        .await
        .is_err());
    assert_eq!(
        s.get_code(&a, &[5; 32]).await.unwrap().unwrap().redeemed_at,
        None,
        "both or neither"
    );
    assert_eq!(s.generation().await.unwrap(), g, "codes are not cached");
}

async fn refresh_tokens_rotate_once(s: &SqlStore) {
    let (a, b) = with_tenants(s).await;
    let alice = UserId::generate();
    let r1 = refresh(&a, 1, "grant-1", "web", &alice, Some(("at-1", 3_700)));
    s.insert_refresh_token(&r1).await.unwrap();
    assert!(matches!(
        s.insert_refresh_token(&r1).await,
        Err(Error::Conflict(_))
    ));
    assert_eq!(s.get_refresh_token(&a, &[1; 32]).await.unwrap(), Some(r1.clone()));
    assert_eq!(
        s.get_refresh_token(&b, &[1; 32]).await.unwrap(),
        None,
        "tenant-scoped"
    );

    let r2 = RefreshToken {
        created_at: 500,
        ..refresh(&a, 2, "grant-1", "web", &alice, Some(("at-2", 4_100)))
    };
    assert!(s
        .rotate_refresh_token(&a, &[1; 32], 500, &r2, b"sealed-1")
        .await
        .unwrap());
    let rotated = RefreshToken {
        rotated_at: Some(500),
        successor_response: Some(b"sealed-1".to_vec()),
        ..r1.clone()
    };
    assert_eq!(
        s.get_refresh_token(&a, &[1; 32]).await.unwrap(),
        Some(rotated.clone())
    );
    assert_eq!(s.get_refresh_token(&a, &[2; 32]).await.unwrap(), Some(r2.clone()));

    let r3 = refresh(&a, 3, "grant-1", "web", &alice, None);
    assert!(
        !s.rotate_refresh_token(&a, &[1; 32], 600, &r3, b"sealed-2")
            .await
            .unwrap(),
        "a refresh token is rotated once"
    );
    assert_eq!(
        s.get_refresh_token(&a, &[3; 32]).await.unwrap(),
        None,
        "no second successor"
    );
    assert_eq!(s.get_refresh_token(&a, &[1; 32]).await.unwrap(), Some(rotated));
    assert!(!s
        .rotate_refresh_token(&a, &[9; 32], 600, &r3, b"x")
        .await
        .unwrap());
    assert!(!s
        .rotate_refresh_token(&b, &[2; 32], 600, &r3, b"x")
        .await
        .unwrap());
    assert_eq!(s.get_refresh_token(&a, &[3; 32]).await.unwrap(), None);

    // A successor that cannot be inserted leaves the old token unrotated.
    let clash = refresh(&a, 1, "grant-1", "web", &alice, None);
    assert!(s
        .rotate_refresh_token(&a, &[2; 32], 700, &clash, b"x")
        .await
        .is_err());
    assert_eq!(s.get_refresh_token(&a, &[2; 32]).await.unwrap(), Some(r2));

    // Two concurrent exchanges of one token: exactly one rotates it, and only its successor exists.
    let (r5, r6) = (
        refresh(&a, 5, "grant-1", "web", &alice, None),
        refresh(&a, 6, "grant-1", "web", &alice, None),
    );
    let (x, y) = tokio::join!(
        s.rotate_refresh_token(&a, &[2; 32], 800, &r5, b"five"),
        s.rotate_refresh_token(&a, &[2; 32], 800, &r6, b"six"),
    );
    let (x, y) = (x.unwrap(), y.unwrap());
    assert!(x ^ y);
    assert_eq!(s.get_refresh_token(&a, &[5; 32]).await.unwrap().is_some(), x);
    assert_eq!(s.get_refresh_token(&a, &[6; 32]).await.unwrap().is_some(), y);
    let winner = if x { b"five".to_vec() } else { b"six".to_vec() };
    assert_eq!(
        s.get_refresh_token(&a, &[2; 32])
            .await
            .unwrap()
            .unwrap()
            .successor_response,
        Some(winner)
    );
}

async fn revoking_a_grant_revokes_its_family_only(s: &SqlStore) {
    let (a, b) = with_tenants(s).await;
    let alice = UserId::generate();
    let now = 1_000;
    let g = s.generation().await.unwrap();
    // Grant 1: a code redeemed for at-c, whose first refresh token notes at-c too (with another
    // expiry, to be sure the two are not merged into one row), rotated into one noting at-r2;
    // a third noting an access token that has expired anyway.
    s.insert_code(&redeemed_code(&a, 1, "g1", "web", &alice, "at-c", 5_000))
        .await
        .unwrap();
    s.insert_refresh_token(&refresh(&a, 1, "g1", "web", &alice, Some(("at-c", 5_001))))
        .await
        .unwrap();
    let r2 = refresh(&a, 2, "g1", "web", &alice, Some(("at-r2", 6_000)));
    assert!(s
        .rotate_refresh_token(&a, &[1; 32], 900, &r2, b"sealed")
        .await
        .unwrap());
    s.insert_refresh_token(&refresh(&a, 3, "g1", "web", &alice, Some(("at-old", now))))
        .await
        .unwrap();
    s.insert_refresh_token(&refresh(&a, 4, "g1", "web", &alice, None))
        .await
        .unwrap();
    // Grant 2, same user and client; and a grant of the same id in another tenant.
    s.insert_refresh_token(&refresh(&a, 9, "g2", "web", &alice, Some(("at-g2", 5_000))))
        .await
        .unwrap();
    s.insert_refresh_token(&refresh(&b, 1, "g1", "web", &alice, Some(("at-b", 5_000))))
        .await
        .unwrap();

    assert_eq!(s.revoke_grant(&a, "g1", now).await.unwrap(), 4);
    assert!(s.is_access_token_revoked(&a, "at-c").await.unwrap());
    assert!(s.is_access_token_revoked(&a, "at-r2").await.unwrap());
    assert!(
        !s.is_access_token_revoked(&a, "at-old").await.unwrap(),
        "expired access tokens need no revocation"
    );
    assert!(!s.is_access_token_revoked(&a, "at-g2").await.unwrap());
    assert!(!s.is_access_token_revoked(&b, "at-b").await.unwrap());
    for h in 1..=4 {
        assert_eq!(s.get_refresh_token(&a, &[h; 32]).await.unwrap(), None);
    }
    assert!(s.get_refresh_token(&a, &[9; 32]).await.unwrap().is_some());
    assert!(s.get_refresh_token(&b, &[1; 32]).await.unwrap().is_some());
    assert!(
        s.get_code(&a, &[1; 32]).await.unwrap().is_some(),
        "the code stays, so that its replay is still recognised"
    );
    // Revoked until the access tokens expire: at-c until 5_000 or 5_001, at-r2 until 6_000.
    assert_eq!(s.purge_revocations(4_999).await.unwrap(), 0);
    assert_eq!(s.purge_revocations(5_002).await.unwrap(), 1);
    assert!(s.is_access_token_revoked(&a, "at-r2").await.unwrap());
    // Again: nothing left to delete, and no error on the revocation already recorded.
    assert_eq!(s.revoke_grant(&a, "g1", now).await.unwrap(), 0);
    assert_eq!(s.revoke_grant(&a, "no-such-grant", now).await.unwrap(), 0);
    assert_eq!(s.generation().await.unwrap(), g, "grants are not cached");
}

async fn revoking_a_users_grants_by_client_or_all(s: &SqlStore) {
    let (a, b) = with_tenants(s).await;
    let (alice, bob) = (UserId::generate(), UserId::generate());
    let now = 1_000;
    // alice/web: a refresh token; alice/web: a grant with only a redeemed code; alice/cli: a
    // refresh token; bob/web: a refresh token; alice in tenant b: a refresh token.
    s.insert_refresh_token(&refresh(&a, 1, "ga1", "web", &alice, Some(("a1", 5_000))))
        .await
        .unwrap();
    s.insert_code(&redeemed_code(&a, 2, "ga2", "web", &alice, "a2", 5_000))
        .await
        .unwrap();
    s.insert_refresh_token(&refresh(&a, 3, "ga3", "cli", &alice, Some(("a3", 5_000))))
        .await
        .unwrap();
    s.insert_refresh_token(&refresh(&a, 4, "gb", "web", &bob, Some(("b1", 5_000))))
        .await
        .unwrap();
    s.insert_refresh_token(&refresh(&b, 5, "gx", "web", &alice, Some(("x1", 5_000))))
        .await
        .unwrap();

    let revoked =
        |t: TenantId, jti: &'static str| async move { s.is_access_token_revoked(&t, jti).await.unwrap() };
    assert_eq!(
        s.revoke_user_grants(&a, &alice, Some(&cid("web")), now)
            .await
            .unwrap(),
        1
    );
    assert!(revoked(a.clone(), "a1").await);
    assert!(
        revoked(a.clone(), "a2").await,
        "a grant with only a code is revoked too"
    );
    assert!(!revoked(a.clone(), "a3").await, "another client's grant stays");
    assert!(!revoked(a.clone(), "b1").await);
    assert!(s.get_refresh_token(&a, &[1; 32]).await.unwrap().is_none());
    assert!(s.get_refresh_token(&a, &[3; 32]).await.unwrap().is_some());

    assert_eq!(s.revoke_user_grants(&a, &alice, None, now).await.unwrap(), 1);
    assert!(revoked(a.clone(), "a3").await);
    assert!(s.get_refresh_token(&a, &[3; 32]).await.unwrap().is_none());
    assert!(!revoked(a.clone(), "b1").await, "other users keep theirs");
    assert!(s.get_refresh_token(&a, &[4; 32]).await.unwrap().is_some());
    assert!(!revoked(b.clone(), "x1").await, "tenant-scoped");
    assert!(s.get_refresh_token(&b, &[5; 32]).await.unwrap().is_some());
    assert_eq!(s.revoke_user_grants(&a, &alice, None, now).await.unwrap(), 0);
    assert_eq!(
        s.revoke_user_grants(&a, &UserId::generate(), None, now)
            .await
            .unwrap(),
        0
    );
}

fn implicit(t: &TenantId, grant: &str, client: &str, user: &UserId, jti: &str, exp: i64) -> ImplicitGrant {
    ImplicitGrant {
        tenant_id: t.clone(),
        grant_id: grant.into(),
        client_id: cid(client),
        user_id: user.clone(),
        access_jti: jti.into(),
        access_exp: exp,
    }
}

async fn implicit_grants_are_revoked_with_their_grant_or_user_and_purged(s: &SqlStore) {
    let (a, b) = with_tenants(s).await;
    let (alice, bob) = (UserId::generate(), UserId::generate());
    let now = 1_000;
    s.insert_implicit_grant(&implicit(&a, "i1", "spa", &alice, "i-1", 5_000))
        .await
        .unwrap();
    assert!(matches!(
        s.insert_implicit_grant(&implicit(&a, "i1", "spa", &alice, "i-x", 5_000))
            .await,
        Err(Error::Conflict(_))
    ));
    s.insert_implicit_grant(&implicit(&a, "i2", "spa", &alice, "i-2", 5_000))
        .await
        .unwrap();
    s.insert_implicit_grant(&implicit(&a, "i3", "other", &alice, "i-3", 5_000))
        .await
        .unwrap();
    s.insert_implicit_grant(&implicit(&a, "i4", "spa", &bob, "i-4", 5_000))
        .await
        .unwrap();
    s.insert_implicit_grant(&implicit(&b, "i5", "spa", &alice, "i-5", 5_000))
        .await
        .unwrap();
    s.insert_implicit_grant(&implicit(&a, "i6", "spa", &alice, "i-6", now))
        .await
        .unwrap();

    s.revoke_grant(&a, "i1", now).await.unwrap();
    assert!(s.is_access_token_revoked(&a, "i-1").await.unwrap());
    assert!(!s.is_access_token_revoked(&a, "i-2").await.unwrap());
    // A withdrawn consent: alice's grants with `spa`.
    s.revoke_user_grants(&a, &alice, Some(&cid("spa")), now)
        .await
        .unwrap();
    assert!(s.is_access_token_revoked(&a, "i-2").await.unwrap());
    assert!(
        !s.is_access_token_revoked(&a, "i-3").await.unwrap(),
        "another client's"
    );
    assert!(
        !s.is_access_token_revoked(&a, "i-6").await.unwrap(),
        "expired tokens need no revocation"
    );
    // A disabled user: all of alice's grants.
    s.revoke_user_grants(&a, &alice, None, now).await.unwrap();
    assert!(s.is_access_token_revoked(&a, "i-3").await.unwrap());
    assert!(!s.is_access_token_revoked(&a, "i-4").await.unwrap(), "bob's");
    assert!(
        !s.is_access_token_revoked(&b, "i-5").await.unwrap(),
        "tenant-scoped"
    );

    // Purged once their access token has expired: i6 at `now`, the others at 5_000.
    assert_eq!(s.purge_expired(now, 0).await.unwrap(), 1);
    assert_eq!(s.purge_expired(5_000, 0).await.unwrap(), 5);
}

async fn deleting_or_disabling_a_client_revokes_what_it_was_given(s: &SqlStore) {
    let (a, b) = with_tenants(s).await;
    let (alice, bob) = (UserId::generate(), UserId::generate());
    let now = sesame_core::now();
    let exp = now + 3_600;
    let consent = |t: &TenantId, user: &UserId, client: &str| Consent {
        tenant_id: t.clone(),
        user_id: user.clone(),
        client_id: cid(client),
        scopes: vec!["openid".into()],
        granted_at: 100,
    };
    let code_live = |t: &TenantId, hash: u8, grant: &str, client: &str| AuthorizationCode {
        expires_at: now + 60,
        ..code(t, hash, grant, client, &alice)
    };
    // For each of `web` and `cli` in tenant a, and `web` in tenant b: an unredeemed code, a
    // redeemed one with its refresh token, an implicit grant, consents.
    for (t, client, n) in [(&a, "web", 10), (&a, "cli", 20), (&b, "web", 30)] {
        let mut c = self::client(t, client);
        c.created_at = now;
        c.revoked_before = now;
        s.create_client(&c).await.unwrap();
        let g = |k: u8| format!("{client}-{}", n + k);
        s.insert_code(&code_live(t, n, &g(0), client)).await.unwrap();
        s.insert_code(&AuthorizationCode {
            redeemed_at: Some(now),
            access_jti: Some(format!("{client}-code")),
            access_exp: Some(exp),
            ..code_live(t, n + 1, &g(1), client)
        })
        .await
        .unwrap();
        s.insert_refresh_token(&refresh(
            t,
            n + 1,
            &g(1),
            client,
            &alice,
            Some((&format!("{client}-refresh"), exp)),
        ))
        .await
        .unwrap();
        s.insert_implicit_grant(&implicit(
            t,
            &g(2),
            client,
            &bob,
            &format!("{client}-implicit"),
            exp,
        ))
        .await
        .unwrap();
        s.put_consent(&consent(t, &alice, client)).await.unwrap();
        s.put_consent(&consent(t, &bob, client)).await.unwrap();
    }
    let revoked =
        |t: TenantId, jti: &'static str| async move { s.is_access_token_revoked(&t, jti).await.unwrap() };

    let g0 = s.generation().await.unwrap();
    assert!(s.delete_client(&a, &cid("web")).await.unwrap());
    assert!(s.generation().await.unwrap() > g0);
    for jti in ["web-code", "web-refresh", "web-implicit"] {
        assert!(revoked(a.clone(), jti).await, "{jti}");
        assert!(!revoked(b.clone(), jti).await, "{jti} in another tenant");
    }
    assert!(!revoked(a.clone(), "cli-code").await, "another client's");
    assert!(s.get_refresh_token(&a, &[11; 32]).await.unwrap().is_none());
    let unredeemed = s.get_code(&a, &[10; 32]).await.unwrap().unwrap();
    assert!(
        unredeemed.expires_at <= sesame_core::now(),
        "the unredeemed code expired"
    );
    for user in [&alice, &bob] {
        assert!(s.get_consent(&a, user, &cid("web")).await.unwrap().is_none());
        assert!(s.get_consent(&a, user, &cid("cli")).await.unwrap().is_some());
        assert!(s.get_consent(&b, user, &cid("web")).await.unwrap().is_some());
    }
    assert!(s.get_refresh_token(&a, &[21; 32]).await.unwrap().is_some());
    assert!(s.get_refresh_token(&b, &[31; 32]).await.unwrap().is_some());

    // Created again with the same id: it starts with nothing of the old one's.
    let mut again = self::client(&a, "web");
    again.created_at = now;
    again.revoked_before = now;
    s.create_client(&again).await.unwrap();
    assert!(s.get_refresh_token(&a, &[11; 32]).await.unwrap().is_none());
    assert!(s.get_consent(&a, &alice, &cid("web")).await.unwrap().is_none());

    // Disabling does the same, and enabling again revives nothing.
    let mut cli = s.get_client(&a, &cid("cli")).await.unwrap().unwrap();
    cli.disabled = true;
    cli.updated_at = now;
    assert!(s.update_client(&cli).await.unwrap());
    for jti in ["cli-code", "cli-refresh", "cli-implicit"] {
        assert!(revoked(a.clone(), jti).await, "{jti}");
    }
    assert!(s.get_refresh_token(&a, &[21; 32]).await.unwrap().is_none());
    assert!(s.get_code(&a, &[20; 32]).await.unwrap().unwrap().expires_at <= sesame_core::now());
    assert!(s.get_consent(&a, &alice, &cid("cli")).await.unwrap().is_none());
    cli.disabled = false;
    cli.updated_at = now + 5;
    assert!(s.update_client(&cli).await.unwrap());
    let enabled = s.get_client(&a, &cid("cli")).await.unwrap().unwrap();
    assert!(!enabled.disabled);
    assert_eq!(
        enabled.revoked_before,
        now + 1,
        "tokens issued up to the second it was disabled stay dead"
    );
    assert!(revoked(a.clone(), "cli-refresh").await);
    assert!(s.get_refresh_token(&a, &[21; 32]).await.unwrap().is_none());
    assert!(!revoked(b.clone(), "web-code").await, "tenant b untouched");
}

async fn consents_are_put_replaced_listed_and_deleted(s: &SqlStore) {
    let (a, b) = with_tenants(s).await;
    let (alice, bob) = (UserId::generate(), UserId::generate());
    let web = Consent {
        tenant_id: a.clone(),
        user_id: alice.clone(),
        client_id: cid("web"),
        scopes: vec!["openid".into(), "profile".into()],
        granted_at: 10,
    };
    assert_eq!(s.get_consent(&a, &alice, &cid("web")).await.unwrap(), None);
    s.put_consent(&web).await.unwrap();
    assert_eq!(
        s.get_consent(&a, &alice, &cid("web")).await.unwrap(),
        Some(web.clone())
    );
    let web = Consent {
        scopes: vec!["openid".into(), "email".into(), "offline_access".into()],
        granted_at: 20,
        ..web
    };
    s.put_consent(&web).await.unwrap();
    assert_eq!(
        s.get_consent(&a, &alice, &cid("web")).await.unwrap(),
        Some(web.clone()),
        "a second consent replaces the first"
    );
    let cli = Consent {
        client_id: cid("cli"),
        scopes: vec![],
        ..web.clone()
    };
    s.put_consent(&cli).await.unwrap();
    s.put_consent(&Consent {
        user_id: bob.clone(),
        ..web.clone()
    })
    .await
    .unwrap();
    assert_eq!(
        s.list_consents(&a, &alice).await.unwrap(),
        vec![cli.clone(), web.clone()]
    );
    assert!(
        s.list_consents(&b, &alice).await.unwrap().is_empty(),
        "tenant-scoped"
    );
    assert_eq!(s.get_consent(&b, &alice, &cid("web")).await.unwrap(), None);
    assert!(s.delete_consent(&a, &alice, &cid("web")).await.unwrap());
    assert!(!s.delete_consent(&a, &alice, &cid("web")).await.unwrap());
    assert_eq!(s.get_consent(&a, &alice, &cid("web")).await.unwrap(), None);
    assert_eq!(s.list_consents(&a, &alice).await.unwrap(), vec![cli]);
    assert!(s.get_consent(&a, &bob, &cid("web")).await.unwrap().is_some());
}

async fn login_failures_count_within_a_window(s: &SqlStore) {
    let (a, b) = with_tenants(s).await;
    let f = |count, last_failed_at| LoginFailures {
        count,
        last_failed_at,
    };
    let key = "user:alice";
    assert_eq!(s.get_login_failures(&a, key).await.unwrap(), None);
    assert_eq!(s.add_login_failure(&a, key, 100, 60).await.unwrap(), f(1, 100));
    assert_eq!(s.add_login_failure(&a, key, 130, 60).await.unwrap(), f(2, 130));
    // 130 is not older than 190 - 60: still counting.
    assert_eq!(s.add_login_failure(&a, key, 190, 60).await.unwrap(), f(3, 190));
    // 190 is older than 251 - 60: the tally starts again.
    assert_eq!(s.add_login_failure(&a, key, 251, 60).await.unwrap(), f(1, 251));
    assert_eq!(s.get_login_failures(&a, key).await.unwrap(), Some(f(1, 251)));
    // Keys and tenants count separately.
    assert_eq!(
        s.add_login_failure(&a, "ip:192.0.2.1", 260, 60).await.unwrap(),
        f(1, 260)
    );
    assert_eq!(s.add_login_failure(&b, key, 260, 60).await.unwrap(), f(1, 260));
    assert_eq!(s.get_login_failures(&a, key).await.unwrap(), Some(f(1, 251)));
    // Concurrent failures are all counted.
    let (x, y) = tokio::join!(
        s.add_login_failure(&a, key, 270, 60),
        s.add_login_failure(&a, key, 270, 60),
    );
    let mut counts = [x.unwrap().count, y.unwrap().count];
    counts.sort_unstable();
    assert_eq!(counts, [2, 3]);
    s.clear_login_failures(&a, key).await.unwrap();
    s.clear_login_failures(&a, key).await.unwrap();
    assert_eq!(s.get_login_failures(&a, key).await.unwrap(), None);
    assert_eq!(
        s.get_login_failures(&a, "ip:192.0.2.1").await.unwrap(),
        Some(f(1, 260))
    );
    assert_eq!(s.get_login_failures(&b, key).await.unwrap(), Some(f(1, 260)));
    assert_eq!(s.add_login_failure(&a, key, 280, 60).await.unwrap(), f(1, 280));
}

type Pending<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + 'a>>;

/// Runs `futures` concurrently (the store's pool gives each its own connection where it has
/// several) and returns their outputs in order.
async fn all<T>(futures: Vec<Pending<'_, T>>) -> Vec<T> {
    let mut futures: Vec<_> = futures.into_iter().map(Some).collect();
    let mut outputs: Vec<Option<T>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        for (f, out) in futures.iter_mut().zip(outputs.iter_mut()) {
            if let Some(fut) = f {
                if let std::task::Poll::Ready(v) = fut.as_mut().poll(cx) {
                    *out = Some(v);
                    *f = None;
                }
            }
        }
        if futures.iter().all(Option::is_none) {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    outputs.into_iter().map(Option::unwrap).collect()
}

async fn login_attempts_are_counted_before_the_check_within_the_limits(s: &SqlStore) {
    let (a, b) = with_tenants(s).await;
    let f = |count, last_failed_at| {
        Some(LoginFailures {
            count,
            last_failed_at,
        })
    };
    let alice = LoginLimit {
        key: "user:alice",
        free: 3,
    };
    let ip = LoginLimit {
        key: "ip:192.0.2.1",
        free: 5,
    };
    let get = |key: &'static str| s.get_login_failures(&a, key);
    let now = 10_000;
    // The free attempts are counted as they are let through.
    for n in 1..=3 {
        assert_eq!(
            s.count_login_attempt(&a, &[alice, ip], now).await.unwrap(),
            LoginAttempt::Counted
        );
        assert_eq!(get(alice.key).await.unwrap(), f(n, now));
        assert_eq!(get(ip.key).await.unwrap(), f(n, now));
    }
    // Then 2 s from the last one (login::delay_after); waiting changes no tally.
    assert_eq!(
        s.count_login_attempt(&a, &[alice, ip], now + 1).await.unwrap(),
        LoginAttempt::Throttled { retry_after: 1 }
    );
    assert_eq!(get(alice.key).await.unwrap(), f(3, now));
    assert_eq!(get(ip.key).await.unwrap(), f(3, now));
    assert_eq!(
        s.count_login_attempt(&a, &[alice, ip], now + 2).await.unwrap(),
        LoginAttempt::Counted
    );
    assert_eq!(get(alice.key).await.unwrap(), f(4, now + 2));
    // Another account from the address uses the address's last free failure; a third is held
    // back by the address alone, and nothing is counted for it, not even an empty tally.
    let bob = LoginLimit {
        key: "user:bob",
        free: 3,
    };
    let carol = LoginLimit {
        key: "user:carol",
        free: 3,
    };
    assert_eq!(
        s.count_login_attempt(&a, &[bob, ip], now + 2).await.unwrap(),
        LoginAttempt::Counted
    );
    assert_eq!(get(ip.key).await.unwrap(), f(5, now + 2));
    assert_eq!(
        s.count_login_attempt(&a, &[ip, carol], now + 2).await.unwrap(),
        LoginAttempt::Throttled { retry_after: 2 }
    );
    assert_eq!(get(carol.key).await.unwrap(), None);
    // Taking back one attempt (it succeeded) frees the address for carol.
    s.uncount_login_attempt(&a, ip.key).await.unwrap();
    assert_eq!(get(ip.key).await.unwrap(), f(4, now + 2));
    assert_eq!(
        s.count_login_attempt(&a, &[carol, ip], now + 2).await.unwrap(),
        LoginAttempt::Counted
    );
    // Taking back never goes below 0 nor creates a tally.
    s.uncount_login_attempt(&a, "user:nobody").await.unwrap();
    assert_eq!(get("user:nobody").await.unwrap(), None);
    s.uncount_login_attempt(&a, carol.key).await.unwrap();
    s.uncount_login_attempt(&a, carol.key).await.unwrap();
    assert_eq!(get(carol.key).await.unwrap(), f(0, now + 2));
    // Tenants count apart.
    assert_eq!(
        s.count_login_attempt(&b, &[alice], now + 2).await.unwrap(),
        LoginAttempt::Counted
    );
    assert_eq!(s.get_login_failures(&b, alice.key).await.unwrap(), f(1, now + 2));
    assert_eq!(get(alice.key).await.unwrap(), f(4, now + 2));
    // A window after the last failure, the tally starts again.
    let later = now + 2 + sesame_core::login::FAILURE_WINDOW;
    assert_eq!(
        s.count_login_attempt(&a, &[alice], later).await.unwrap(),
        LoginAttempt::Counted
    );
    assert_eq!(get(alice.key).await.unwrap(), f(1, later));

    // 25 attempts at once on one account (from 25 addresses): exactly the free 3 pass.
    let addresses: Vec<String> = (0..25).map(|i| format!("ip:198.51.100.{i}")).collect();
    let tenant = &a;
    let attempts = addresses
        .iter()
        .map(|addr| {
            let limits = [
                LoginLimit {
                    key: "user:dave",
                    free: 3,
                },
                LoginLimit { key: addr, free: 20 },
            ];
            Box::pin(async move { s.count_login_attempt(tenant, &limits, now).await.unwrap() })
                as Pending<'_, _>
        })
        .collect();
    let decisions = all(attempts).await;
    let counted = decisions.iter().filter(|d| **d == LoginAttempt::Counted).count();
    assert_eq!(counted, 3, "{decisions:?}");
    assert_eq!(get("user:dave").await.unwrap(), f(3, now));
    // Only the addresses of the attempts let through were counted.
    let mut addresses_counted = 0;
    for addr in &addresses {
        if let Some(t) = s.get_login_failures(&a, addr).await.unwrap() {
            assert_eq!(
                t,
                LoginFailures {
                    count: 1,
                    last_failed_at: now
                }
            );
            addresses_counted += 1;
        }
    }
    assert_eq!(addresses_counted, 3);
}

async fn expired_sign_in_records_are_purged(s: &SqlStore) {
    let (a, _) = with_tenants(s).await;
    let alice = UserId::generate();
    let now = 100_000;
    let grace = 50;
    s.insert_session(&session(&a, "gone", 1, &alice, 1, now))
        .await
        .unwrap();
    s.insert_session(&session(&a, "kept", 2, &alice, 1, now + 1))
        .await
        .unwrap();
    let code_expiring = |hash, expires_at| AuthorizationCode {
        expires_at,
        ..code(&a, hash, "g", "web", &alice)
    };
    s.insert_code(&code_expiring(1, now - grace)).await.unwrap();
    s.insert_code(&code_expiring(2, now - grace + 1)).await.unwrap();
    let refresh_expiring = |hash, expires_at| RefreshToken {
        expires_at,
        ..refresh(&a, hash, "g", "web", &alice, None)
    };
    s.insert_refresh_token(&refresh_expiring(1, now)).await.unwrap();
    s.insert_refresh_token(&refresh_expiring(2, now + 1))
        .await
        .unwrap();
    s.add_login_failure(&a, "user:stale", now - 86_400, 60)
        .await
        .unwrap();
    s.add_login_failure(&a, "user:recent", now - 86_399, 60)
        .await
        .unwrap();
    s.revoke_access_token(&a, "unrelated", 1).await.unwrap();

    assert_eq!(s.purge_expired(now, grace).await.unwrap(), 4);
    assert_eq!(s.get_session(&a, &[2; 32], 0).await.unwrap().unwrap().id, "kept");
    assert!(s.delete_session(&a, "kept").await.unwrap());
    assert!(!s.delete_session(&a, "gone").await.unwrap(), "purged");
    assert!(s.get_code(&a, &[1; 32]).await.unwrap().is_none());
    assert!(
        s.get_code(&a, &[2; 32]).await.unwrap().is_some(),
        "an expired code is kept for its grace period"
    );
    assert!(s.get_refresh_token(&a, &[1; 32]).await.unwrap().is_none());
    assert!(s.get_refresh_token(&a, &[2; 32]).await.unwrap().is_some());
    assert!(s.get_login_failures(&a, "user:stale").await.unwrap().is_none());
    assert!(s.get_login_failures(&a, "user:recent").await.unwrap().is_some());
    assert!(
        s.is_access_token_revoked(&a, "unrelated").await.unwrap(),
        "revocations have their own purge"
    );
    assert_eq!(s.purge_expired(now, grace).await.unwrap(), 0);
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
                    // Before `db` drops the schema: closing waits for every connection to be
                    // returned, which ends any transaction a dropped `Transaction` left open.
                    store.close().await;
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
    sessions_round_trip_expire_and_end,
    session_clients_are_noted_once_and_outlive_the_session,
    codes_are_redeemed_once,
    refresh_tokens_rotate_once,
    revoking_a_grant_revokes_its_family_only,
    revoking_a_users_grants_by_client_or_all,
    implicit_grants_are_revoked_with_their_grant_or_user_and_purged,
    deleting_or_disabling_a_client_revokes_what_it_was_given,
    consents_are_put_replaced_listed_and_deleted,
    login_failures_count_within_a_window,
    login_attempts_are_counted_before_the_check_within_the_limits,
    expired_sign_in_records_are_purged,
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

/// A store migrated before sign-in existed: its clients and tenants read back with the defaults
/// of the columns added since.
async fn store_from_before_signin(url: &StoreUrl) -> SqlStore {
    let dialect = match url {
        StoreUrl::Sqlite(_) => "sqlite",
        StoreUrl::Postgres(_) => "postgres",
    };
    let old = tempfile::tempdir().unwrap();
    for f in ["0001_foundation.sql", "0002_user.sql"] {
        let from = format!("{}/migrations/{dialect}/{f}", env!("CARGO_MANIFEST_DIR"));
        std::fs::copy(from, old.path().join(f)).unwrap();
    }
    let migrator = sqlx::migrate::Migrator::new(old.path()).await.unwrap();
    let rows = [
        "INSERT INTO tenant (id, display_name, disabled, signing_alg, access_token_ttl, created_at) \
         VALUES ('old', 'Old', FALSE, 'RS256', 3600, 1)",
        "INSERT INTO client (tenant_id, client_id, name, client_type, secret_hash, grant_types, \
         redirect_uris, allowed_scopes, allowed_audiences, signing_alg, access_token_ttl, disabled, \
         created_at, updated_at) VALUES ('old', 'svc', 'svc', 'public', NULL, \
         '[]', '[]', '[]', '[]', NULL, NULL, FALSE, 1, 1)",
    ];
    match url {
        StoreUrl::Sqlite(u) => {
            use std::str::FromStr;
            let opts = sqlx::sqlite::SqliteConnectOptions::from_str(u)
                .unwrap()
                .create_if_missing(true);
            let pool = sqlx::SqlitePool::connect_with(opts).await.unwrap();
            migrator.run(&pool).await.unwrap();
            for r in rows {
                sqlx::query(r).execute(&pool).await.unwrap();
            }
            pool.close().await;
        }
        StoreUrl::Postgres(u) => {
            let pool = sqlx::PgPool::connect(u).await.unwrap();
            migrator.run(&pool).await.unwrap();
            for r in rows {
                sqlx::query(r).execute(&pool).await.unwrap();
            }
            pool.close().await;
        }
    }
    SqlStore::connect(url).await.unwrap()
}

#[tokio::test]
async fn clients_from_before_signin_get_the_new_columns_defaults() {
    let sqlite = TestDb::sqlite();
    let pg = TestDb::postgres().await;
    for db in std::iter::once(&sqlite).chain(pg.as_ref()) {
        let s = store_from_before_signin(&db.url).await;
        let t = s.get_tenant(&tid("old")).await.unwrap().unwrap();
        assert_eq!(t.logo_url, None);
        let c = s.get_client(&t.id, &cid("svc")).await.unwrap().unwrap();
        assert!(c.post_logout_redirect_uris.is_empty());
        assert!(c.require_pkce);
        assert!(!c.first_party);
        assert!(!c.refresh_without_offline_access);
        assert!(!c.introspect_any);
        assert_eq!(
            c.revoked_before, 1,
            "the horizon of an existing client is its creation"
        );
        assert_eq!(c.client_type, ClientType::Public);
        s.close().await;
    }
}
