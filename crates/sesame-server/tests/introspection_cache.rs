//! Introspection remembers tokens whose signature it verified, and nothing else: a revoked
//! token stops being active at once, and a token it has not verified is checked in full.

mod common;

use common::TestServer;
use serde_json::json;

#[tokio::test]
async fn a_token_introspected_before_is_inactive_as_soon_as_it_is_revoked() {
    for s in TestServer::each_store().await {
        let (id, secret) = s
            .client(
                "default",
                json!({"allowed_scopes": ["read"], "signing_alg": "EdDSA"}),
            )
            .await;
        let token = s.token("default", &id, &secret, &[("scope", "read")]).await;
        // Twice: the second answer comes from the cache of verified tokens.
        for _ in 0..2 {
            let v = s.introspect("default", (&id, &secret), &token).await;
            assert_eq!(v["active"], true, "{v}");
            assert_eq!(v["scope"], "read", "{v}");
        }
        let (status, _, body) = s
            .post_form("default", "/revoke", Some((&id, &secret)), &[("token", &token)])
            .await;
        assert!(status.is_success(), "{body}");
        let v = s.introspect("default", (&id, &secret), &token).await;
        assert_eq!(
            v,
            json!({"active": false}),
            "the revocation is read on every request"
        );
    }
}

#[tokio::test]
async fn an_altered_copy_of_a_cached_token_is_verified_and_refused() {
    let s = TestServer::sqlite().await;
    let (id, secret) = s.client("default", json!({"signing_alg": "EdDSA"})).await;
    let token = s.token("default", &id, &secret, &[]).await;
    let v = s.introspect("default", (&id, &secret), &token).await;
    assert_eq!(v["active"], true, "{v}");
    // Same header and claims, another signature.
    let (head, sig) = token.rsplit_once('.').unwrap();
    let flipped = if sig.starts_with('A') { "B" } else { "A" };
    let forged = format!("{head}.{flipped}{}", &sig[1..]);
    let v = s.introspect("default", (&id, &secret), &forged).await;
    assert_eq!(v, json!({"active": false}));
}
