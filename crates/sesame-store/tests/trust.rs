//! `TrustStore` on SQLite always, and on PostgreSQL when `SESAME_TEST_DATABASE_URL` is set:
//! trust policies, and the single use of client assertion `jti`s.

use serde_json::json;
use sesame_core::ids::{ClientId, TenantId};
use sesame_core::model::{Client, ClientType, GrantType, Tenant};
use sesame_core::store::{Store, TrustStore};
use sesame_core::trust::{TrustPolicy, TrustPolicySpec};
use sesame_core::Error;
use sesame_store::SqlStore;

fn tid(s: &str) -> TenantId {
    TenantId::parse(s).unwrap()
}

fn policy(t: &TenantId, name: &str, now: i64) -> TrustPolicy {
    let spec: TrustPolicySpec = serde_json::from_value(json!({
        "name": name,
        "issuer": "https://ci.example",
        "discovery_url": "https://ci.example/.well-known/openid-configuration",
        "audience": "sesame",
        "subject": "repo:acme/*",
        "claims": { "repository": "acme/app", "ref": ["refs/heads/main", "refs/heads/release"] },
        "max_age": 600,
        "typ": "JWT",
        "identity": format!("ri.sesame.{t}.source.7f3b8e21-4d9a-6c2e-1b7d-8a5f3c9e0b4f"),
        "scopes": ["deploy"],
        "audiences": ["deploy-api"],
    }))
    .unwrap();
    spec.validate().unwrap();
    TrustPolicy {
        tenant_id: t.clone(),
        spec,
        created_at: now,
        updated_at: now,
    }
}

async fn policies_are_created_read_replaced_and_deleted_per_tenant(s: &SqlStore) {
    let (a, b) = (tid("alpha"), tid("beta"));
    s.create_tenant(&Tenant::new(a.clone(), 1), &[]).await.unwrap();
    s.create_tenant(&Tenant::new(b.clone(), 1), &[]).await.unwrap();
    let g0 = s.generation().await.unwrap();
    let p = policy(&a, "ci", 10);
    s.create_trust_policy(&p).await.unwrap();
    assert!(
        s.generation().await.unwrap() > g0,
        "policies are cached: a change moves the generation"
    );
    assert!(matches!(s.create_trust_policy(&p).await, Err(Error::Conflict(_))));
    // The same name in another tenant is another policy.
    s.create_trust_policy(&policy(&b, "ci", 10)).await.unwrap();
    s.create_trust_policy(&policy(&a, "k8s", 10)).await.unwrap();
    assert_eq!(s.get_trust_policy(&a, "ci").await.unwrap(), Some(p.clone()));
    assert_eq!(s.get_trust_policy(&a, "nope").await.unwrap(), None);
    let names: Vec<_> = s
        .list_trust_policies(&a)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.spec.name)
        .collect();
    assert_eq!(names, ["ci", "k8s"]);

    let mut changed = p.clone();
    changed.spec.scopes = vec!["read".into()];
    changed.updated_at = 20;
    assert!(s.update_trust_policy(&changed).await.unwrap());
    assert_eq!(s.get_trust_policy(&a, "ci").await.unwrap(), Some(changed));
    assert_eq!(
        s.get_trust_policy(&b, "ci").await.unwrap().unwrap().spec.scopes,
        ["deploy"],
        "the other tenant's policy is untouched"
    );
    assert!(!s.update_trust_policy(&policy(&a, "missing", 1)).await.unwrap());

    assert!(s.delete_trust_policy(&a, "ci").await.unwrap());
    assert!(!s.delete_trust_policy(&a, "ci").await.unwrap());
    assert!(s.get_trust_policy(&b, "ci").await.unwrap().is_some());
}

async fn an_assertion_jti_is_used_once_and_purged_after_expiry(s: &SqlStore) {
    let (a, b) = (tid("alpha"), tid("beta"));
    s.create_tenant(&Tenant::new(a.clone(), 1), &[]).await.unwrap();
    s.create_tenant(&Tenant::new(b.clone(), 1), &[]).await.unwrap();
    let (c1, c2) = (ClientId::parse("c1").unwrap(), ClientId::parse("c2").unwrap());
    assert!(s.use_assertion_jti(&a, &c1, "j1", 100).await.unwrap());
    assert!(
        !s.use_assertion_jti(&a, &c1, "j1", 100).await.unwrap(),
        "a replay is refused"
    );
    // jtis are per client and per tenant.
    assert!(s.use_assertion_jti(&a, &c2, "j1", 100).await.unwrap());
    assert!(s.use_assertion_jti(&b, &c1, "j1", 100).await.unwrap());
    assert!(s.use_assertion_jti(&a, &c1, "j2", 300).await.unwrap());
    assert_eq!(
        s.purge_assertion_jtis(100).await.unwrap(),
        0,
        "kept until after expiry"
    );
    assert_eq!(s.purge_assertion_jtis(101).await.unwrap(), 3);
    assert!(!s.use_assertion_jti(&a, &c1, "j2", 300).await.unwrap());
    assert!(
        s.use_assertion_jti(&a, &c1, "j1", 400).await.unwrap(),
        "purged after expiry"
    );
}

/// Concurrent uses of one jti (two replicas, or two requests at once): exactly one wins.
async fn concurrent_uses_of_one_jti_have_one_winner(s: &SqlStore) {
    let a = tid("alpha");
    s.create_tenant(&Tenant::new(a.clone(), 1), &[]).await.unwrap();
    let c = ClientId::parse("c1").unwrap();
    let (r1, r2, r3, r4) = tokio::join!(
        s.use_assertion_jti(&a, &c, "same", 100),
        s.use_assertion_jti(&a, &c, "same", 100),
        s.use_assertion_jti(&a, &c, "same", 100),
        s.use_assertion_jti(&a, &c, "same", 100),
    );
    let results = [r1.unwrap(), r2.unwrap(), r3.unwrap(), r4.unwrap()];
    assert_eq!(results.iter().filter(|r| **r).count(), 1, "{results:?}");
}

async fn clients_keep_their_keys_and_exchange_flag(s: &SqlStore) {
    let a = tid("alpha");
    s.create_tenant(&Tenant::new(a.clone(), 1), &[]).await.unwrap();
    let pair = sesame_core::keys::SigningKeyPair::generate(sesame_core::model::SigningAlg::ES256).unwrap();
    let jwks =
        json!({ "keys": [serde_json::from_str::<serde_json::Value>(&pair.public_jwk("k1")).unwrap()] });
    let mut c = Client {
        tenant_id: a.clone(),
        client_id: ClientId::parse("keyed").unwrap(),
        name: "keyed".into(),
        client_type: ClientType::Confidential,
        secret_hash: None,
        grant_types: vec![GrantType::ClientCredentials, GrantType::TokenExchange],
        redirect_uris: vec![],
        post_logout_redirect_uris: vec![],
        require_pkce: true,
        first_party: false,
        refresh_without_offline_access: false,
        backchannel_logout_uri: None,
        allowed_scopes: vec![],
        allowed_audiences: vec![],
        signing_alg: None,
        access_token_ttl: None,
        introspect_any: false,
        jwks: Some(jwks.to_string()),
        jwks_uri: None,
        trust_policy: None,
        token_exchange_impersonation: true,
        disabled: false,
        revoked_before: 1,
        created_at: 1,
        updated_at: 1,
    };
    c.validate().unwrap();
    s.create_client(&c).await.unwrap();
    assert_eq!(s.get_client(&a, &c.client_id).await.unwrap(), Some(c.clone()));
    c.jwks = None;
    c.jwks_uri = Some("https://keys.example/jwks".into());
    c.token_exchange_impersonation = false;
    c.updated_at = 2;
    assert!(s.update_client(&c).await.unwrap());
    assert_eq!(s.get_client(&a, &c.client_id).await.unwrap(), Some(c));
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
    policies_are_created_read_replaced_and_deleted_per_tenant,
    an_assertion_jti_is_used_once_and_purged_after_expiry,
    concurrent_uses_of_one_jti_have_one_winner,
    clients_keep_their_keys_and_exchange_flag,
);
