//! Teams that follow an IdP group, end to end: a person signs in to tenant `default` through
//! the test's own upstream OpenID Connect IdP (a real HTTP server on loopback, as in `sso.rs`,
//! whose browser, IdP and helpers come from `common/sso_idp.rs`), and their membership of the IdP-backed
//! teams follows the groups of each sign-in, as the check API sees it.
// The shared IdP can tamper with tokens in ways only `sso.rs` uses.
#![allow(dead_code)]

mod common;

include!("common/sso_idp.rs");

// ---------------------------------------------------------------------------------------------
// Tests

// ---------------------------------------------------------------------------------------------

async fn ok(s: &TestServer, method: Method, path: &str, body: Option<Value>) -> Value {
    let (status, v) = s.admin(method, &format!("/tenants/{T}{path}"), body).await;
    assert!(status.is_success(), "{path}: {status} {v}");
    v
}

#[tokio::test]
async fn team_membership_follows_the_idp_groups_at_each_sign_in() {
    let s = TestServer::sqlite().await;
    let idp = Idp::start().await;
    corp(&s, &idp, json!({})).await;
    let rp = new_rp(&s).await;
    for (id, group) in [("eng", "engineering"), ("ops", "operations")] {
        ok(
            &s,
            Method::POST,
            "/teams",
            Some(json!({"id": id, "idp_group": {"connection": "corp", "group": group}})),
        )
        .await;
    }
    ok(&s, Method::PUT, "/resource-types/project", None).await;
    ok(
        &s,
        Method::PUT,
        "/resources/project/p1",
        Some(json!({"owner": {"type": "team", "id": "ops"}})),
    )
    .await;
    ok(
        &s,
        Method::POST,
        "/resources/project/p1/grants",
        Some(json!({"relation": "editor", "subject": {"type": "team", "id": "eng"}})),
    )
    .await;
    let (checker, secret) = s
        .client(
            T,
            json!({"name": "Checker", "grant_types": ["client_credentials"]}),
        )
        .await;
    let may = |sub: String, action: &'static str| {
        let req = s
            .http
            .post(format!("{}/authz/check", s.issuer(T)))
            .basic_auth(&checker, Some(&secret))
            .json(&json!({"subject": {"type": "user", "id": sub}, "action": action,
                          "resource": {"type": "project", "id": "p1"}}));
        async move {
            let v: Value = req.send().await.unwrap().json().await.unwrap();
            v["allowed"].as_bool().unwrap_or_else(|| panic!("{v}"))
        }
    };
    let members = |team: &'static str| {
        let s = &s;
        async move {
            let t = ok(s, Method::GET, &format!("/teams/{team}"), None).await;
            t["members"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["user_id"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };

    // First sign-in with `engineering`: a member of eng, who may write p1.
    let (page, verifier) = sign_in(&s, &Browser::new(), &rp, &idp, alice(&["engineering", "staff"])).await;
    let tokens = app_tokens(&s, &rp, &page, &verifier).await;
    let sub = jwt_parts(tokens["id_token"].as_str().unwrap()).1["sub"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(members("eng").await, vec![sub.clone()]);
    assert!(members("ops").await.is_empty());
    assert!(may(sub.clone(), "write").await);
    assert!(!may(sub.clone(), "delete").await);

    // Next sign-in with `operations` instead: out of eng, into ops (the owners).
    let (page, _) = sign_in(&s, &Browser::new(), &rp, &idp, alice(&["operations"])).await;
    assert!(page.location().starts_with(CB));
    assert!(members("eng").await.is_empty());
    assert_eq!(members("ops").await, vec![sub.clone()]);
    assert!(may(sub.clone(), "delete").await);

    // No groups at all: in no backed team, and no access.
    let (page, _) = sign_in(&s, &Browser::new(), &rp, &idp, alice(&[])).await;
    assert!(page.location().starts_with(CB));
    assert!(members("ops").await.is_empty());
    assert!(!may(sub.clone(), "read").await);

    // And an admin cannot add the person by hand.
    let (status, body) = s
        .admin(
            Method::PUT,
            &format!("/tenants/{T}/teams/ops/members/{sub}"),
            None,
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::CONFLICT, Some("invalid_request")),
        "{body}"
    );
}
