//! Brokered SSO end to end over HTTP: a browser signs in to an application of tenant `default`
//! through a button on Sesame's sign-in page, at an upstream OpenID Connect IdP.
//!
//! Two real upstreams on loopback: a second tenant (`idp`) of the same `sesamed`, and a small
//! IdP served by the test itself (axum: discovery, authorization, token, userinfo, JWKS), which
//! signs ID tokens with keys the test holds so that it can send a wrong issuer, a wrong
//! audience, a bad signature, an unknown `kid`, an expired token or a wrong nonce. Both are
//! real HTTP servers; nothing of the `openidconnect` crate is mocked.
//!
//! The browser keeps cookies per path (`/t/default`, `/t/idp`) as a browser would, and follows
//! no redirects, so every hop is asserted.

mod common;

include!("common/sso_idp.rs");

// ---------------------------------------------------------------------------------------------
// Tests

#[tokio::test]
async fn first_sign_in_creates_the_user_and_the_next_links_to_it_with_groups_and_admin_following() {
    let s = TestServer::sqlite().await;
    let idp = Idp::start().await;
    corp(&s, &idp, json!({})).await;
    let rp = new_rp(&s).await;

    let b = Browser::new();
    let (page, verifier) = sign_in(&s, &b, &rp, &idp, alice(&["admins", "staff"])).await;
    let tokens = app_tokens(&s, &rp, &page, &verifier).await;
    let (_, claims) = jwt_parts(tokens["id_token"].as_str().unwrap());
    assert_eq!(claims["amr"], json!(["fed"]));
    assert_eq!(claims["acr"], "urn:sesame:acr:fed");
    // The groups scope: the groups the IdP sent, in Sesame's ID token and userinfo.
    assert_eq!(claims["groups"], json!(["admins", "staff"]));
    let info: Value = s
        .http
        .get(format!("{}/userinfo", s.issuer(T)))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["groups"], json!(["admins", "staff"]), "{info}");
    assert_eq!(claims["nonce"], "app-nonce");
    let sub = claims["sub"].as_str().unwrap().to_owned();
    let (status, user) = s
        .admin(Method::GET, &format!("/tenants/{T}/users/{sub}"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{user}");
    assert_eq!(user["username"], "alice@acme.test");
    assert_eq!(user["name"], "Alice Liddell");
    assert_eq!(user["email_verified"], true);
    let info = sso_user(&s, &sub).await;
    assert_eq!(info["groups"], json!(["admins", "staff"]));
    assert_eq!(
        (info["admin_by_sso"].as_bool(), info["admin"].as_bool()),
        (Some(true), Some(true))
    );
    assert_eq!(
        info["external_identities"],
        json!([{ "connection": "corp", "subject": "idp-alice-1" }])
    );
    // The user's session works for the next request without the IdP (no second round trip).
    let (_, challenge) = pkce();
    let again = b.get(&authorize_url(&s, &rp, &challenge, &[])).await;
    assert!(again.location().starts_with(CB));

    // Next sign-in, another browser: the same user; profile and groups follow the IdP, and
    // leaving the admin group removes the admin flag SSO had set.
    let b2 = Browser::new();
    let mut person = alice(&["staff"]);
    person["name"] = json!("Alice Pleasance Liddell");
    let (page, verifier) = sign_in(&s, &b2, &rp, &idp, person).await;
    let tokens = app_tokens(&s, &rp, &page, &verifier).await;
    assert_eq!(
        jwt_parts(tokens["id_token"].as_str().unwrap()).1["sub"],
        sub.as_str()
    );
    assert_eq!(
        jwt_parts(tokens["id_token"].as_str().unwrap()).1["groups"],
        json!(["staff"])
    );
    let info = sso_user(&s, &sub).await;
    assert_eq!(info["groups"], json!(["staff"]));
    assert_eq!(info["admin"], false);
    let (_, user) = s
        .admin(Method::GET, &format!("/tenants/{T}/users/{sub}"), None)
        .await;
    assert_eq!(user["name"], "Alice Pleasance Liddell");

    // An admin flag set by hand survives sign-ins without the group.
    let (status, _) = s
        .admin(
            Method::PUT,
            &format!("/tenants/{T}/users/{sub}/admin"),
            Some(json!({ "admin": true })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (page, _) = sign_in(&s, &Browser::new(), &rp, &idp, alice(&[])).await;
    assert!(page.location().starts_with(CB));
    let info = sso_user(&s, &sub).await;
    assert_eq!(
        (
            info["admin"].as_bool(),
            info["admin_by_hand"].as_bool(),
            info["admin_by_sso"].as_bool()
        ),
        (Some(true), Some(true), Some(false))
    );
    assert_eq!(info["groups"], json!([]));

    // Three sign-ins, one link: `sso.linked` is recorded when the identity is linked, not at
    // every sign-in. Events are written in order, so once the third sign-in's is there, so is
    // any link event before it.
    let audit = |kind: &'static str| {
        let s = &s;
        async move {
            let (st, body) = s
                .admin(
                    Method::GET,
                    &format!("/tenants/{T}/audit?type={kind}&limit=100"),
                    None,
                )
                .await;
            assert_eq!(st, StatusCode::OK, "{body}");
            body["events"].as_array().unwrap().clone()
        }
    };
    let mut waited = 0;
    while audit("signin.success").await.len() < 3 {
        waited += 1;
        assert!(waited < 100, "the three sign-ins were not audited");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let linked = audit("sso.linked").await;
    assert_eq!(linked.len(), 1, "{linked:?}");
    assert_eq!(linked[0]["details"]["new_user"], true);
    assert_eq!(linked[0]["details"]["connection"], "corp");

    // Refresh keeps working for a brokered user.
    let refresh = tokens["refresh_token"].as_str().expect("a refresh token");
    let (status, _, body) = s
        .post_form(
            T,
            "/token",
            Some((&rp.id, &rp.secret)),
            &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn local_user(s: &TestServer, username: &str, email: &str) -> String {
    let (status, body) = s
        .admin(
            Method::POST,
            &format!("/tenants/{T}/users"),
            Some(json!({ "username": username, "password": PW, "email": email, "email_verified": true })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn an_existing_user_is_matched_by_email_only_when_verified_or_trusted() {
    let s = TestServer::sqlite().await;
    let idp = Idp::start().await;
    corp(&s, &idp, json!({})).await;
    let rp = new_rp(&s).await;
    let bob = local_user(&s, "bob", "Bob@acme.test").await;

    // Not verified: refused with a page that says what to do; nothing linked.
    let mut person = json!({ "sub": "idp-bob", "email": "bob@acme.test", "email_verified": false });
    let (page, _) = sign_in(&s, &Browser::new(), &rp, &idp, person.clone()).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.body);
    assert!(
        page.text().contains("did not say that the address is verified"),
        "{}",
        page.body
    );
    assert_eq!(sso_user(&s, &bob).await["external_identities"], json!([]));

    // Verified: linked to bob (case-insensitive email).
    person["email_verified"] = json!(true);
    let (page, verifier) = sign_in(&s, &Browser::new(), &rp, &idp, person).await;
    let tokens = app_tokens(&s, &rp, &page, &verifier).await;
    assert_eq!(
        jwt_parts(tokens["id_token"].as_str().unwrap()).1["sub"],
        bob.as_str()
    );

    // A connection trusted for email links without email_verified.
    let s = TestServer::sqlite().await;
    corp(&s, &idp, json!({ "trusted_email": true })).await;
    let rp = new_rp(&s).await;
    let carol = local_user(&s, "carol", "carol@acme.test").await;
    let person = json!({ "sub": "idp-carol", "email": "carol@acme.test" });
    let (page, verifier) = sign_in(&s, &Browser::new(), &rp, &idp, person).await;
    let tokens = app_tokens(&s, &rp, &page, &verifier).await;
    assert_eq!(
        jwt_parts(tokens["id_token"].as_str().unwrap()).1["sub"],
        carol.as_str()
    );
}

#[tokio::test]
async fn a_disabled_user_is_refused_at_the_callback_and_at_refresh() {
    let s = TestServer::sqlite().await;
    let idp = Idp::start().await;
    corp(&s, &idp, json!({})).await;
    let rp = new_rp(&s).await;
    let (page, verifier) = sign_in(&s, &Browser::new(), &rp, &idp, alice(&[])).await;
    let tokens = app_tokens(&s, &rp, &page, &verifier).await;
    let sub = jwt_parts(tokens["id_token"].as_str().unwrap()).1["sub"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _) = s
        .admin(Method::POST, &format!("/tenants/{T}/users/{sub}/disable"), None)
        .await;
    assert!(status.is_success());
    let (page, _) = sign_in(&s, &Browser::new(), &rp, &idp, alice(&[])).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.body);
    assert!(page.text().contains("Your account is disabled"));
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let (status, _, body) = s
        .post_form(
            T,
            "/token",
            Some((&rp.id, &rp.secret)),
            &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_grant");
}

/// Each tampered ID token is refused with a page naming the failed check, and no user is made.
#[tokio::test]
async fn tampered_id_tokens_are_refused() {
    let s = TestServer::sqlite().await;
    let idp = Idp::start().await;
    corp(&s, &idp, json!({})).await;
    let rp = new_rp(&s).await;
    for (tamper, words) in [
        (Tamper::Issuer, "issuer"),
        (Tamper::Audience, "audience"),
        (Tamper::Expired, "xpired"),
        (Tamper::BadSignature, "ignature"),
        (Tamper::Nonce, "nonce"),
    ] {
        idp.set(|i| i.tamper = tamper);
        let (page, _) = sign_in(&s, &Browser::new(), &rp, &idp, alice(&[])).await;
        assert_eq!(page.status, StatusCode::BAD_GATEWAY, "{tamper:?}: {}", page.body);
        let text = page.text();
        assert!(text.contains("failed Sesame's checks"), "{tamper:?}: {text}");
        assert!(
            text.to_lowercase().contains(&words.to_lowercase()),
            "{tamper:?}: {text}"
        );
    }
    let (status, users) = s.admin(Method::GET, &format!("/tenants/{T}/users"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!users.to_string().contains("alice@acme.test"), "{users}");
}

#[tokio::test]
async fn an_unknown_kid_refetches_the_jwks_once() {
    let s = TestServer::sqlite().await;
    let idp = Idp::start().await;
    corp(&s, &idp, json!({})).await;
    let rp = new_rp(&s).await;
    // Warm the cache of discovery and JWKS.
    let (page, _) = sign_in(&s, &Browser::new(), &rp, &idp, alice(&[])).await;
    assert!(page.location().starts_with(CB));
    let fetched = idp.get(|i| i.jwks_fetches);

    // A kid that is never published: one refetch, then a refusal.
    idp.set(|i| i.tamper = Tamper::UnknownKid);
    let (page, _) = sign_in(&s, &Browser::new(), &rp, &idp, alice(&[])).await;
    assert_eq!(page.status, StatusCode::BAD_GATEWAY, "{}", page.body);
    assert_eq!(idp.get(|i| i.jwks_fetches), fetched + 1, "exactly one refetch");

    // A rotation: the new key is published after Sesame cached the JWKS; the refetch finds it.
    idp.set(|i| {
        i.tamper = Tamper::Rotated;
        i.publish_new_key = true;
    });
    let (page, _) = sign_in(&s, &Browser::new(), &rp, &idp, alice(&[])).await;
    assert!(page.location().starts_with(CB), "{}", page.body);
    assert_eq!(idp.get(|i| i.jwks_fetches), fetched + 2);
}

#[tokio::test]
async fn the_callback_belongs_to_the_browser_and_the_state_that_started_it() {
    let s = TestServer::sqlite().await;
    let idp = Idp::start().await;
    corp(&s, &idp, json!({})).await;
    let rp = new_rp(&s).await;
    idp.set(|i| i.person = alice(&[]));

    // State mismatch: the IdP's answer carries another state.
    let b = Browser::new();
    let (_, challenge) = pkce();
    let callback = to_callback(&s, &b, &rp, &challenge).await;
    let q = query_of(&callback);
    let forged = callback.replace(&q["state"], "forged-state");
    let page = b.get(&forged).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.body);
    assert!(page
        .text()
        .contains("does not belong to the sign-in started in this browser"));
    assert_eq!(idp.get(|i| i.token_calls), 0, "the code is never exchanged");

    // The cookie is gone after one use: replaying the real callback is refused.
    let page = b.get(&callback).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.text().contains("expired or was started in another browser"));

    // Another browser (login CSRF: an attacker's callback URL opened by a victim).
    let b = Browser::new();
    let callback = to_callback(&s, &b, &rp, &challenge).await;
    let victim = Browser::new();
    let page = victim.get(&callback).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.text().contains("started in another browser"));

    // RFC 9207: an `iss` in the response that is not the IdP's.
    idp.set(|i| i.response_iss = Some("https://evil.example".into()));
    let b = Browser::new();
    let callback = to_callback(&s, &b, &rp, &challenge).await;
    let page = b.get(&callback).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.text().contains("another issuer"));
    assert_eq!(idp.get(|i| i.token_calls), 0);
}

#[tokio::test]
async fn idp_errors_and_missing_claims_get_pages_that_say_what_to_fix() {
    let s = TestServer::sqlite().await;
    let idp = Idp::start().await;
    corp(&s, &idp, json!({})).await;
    let rp = new_rp(&s).await;

    idp.set(|i| i.error = Some("access_denied".into()));
    let (page, _) = sign_in(&s, &Browser::new(), &rp, &idp, alice(&[])).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(page.text().contains("was cancelled"), "{}", page.body);
    idp.set(|i| i.error = None);

    // No email from the IdP (neither in the ID token nor userinfo) for a new user.
    let (page, _) = sign_in(&s, &Browser::new(), &rp, &idp, json!({ "sub": "x-1" })).await;
    assert_eq!(page.status, StatusCode::BAD_GATEWAY);
    assert!(
        page.text()
            .contains("did not send the \u{201c}email\u{201d} claim"),
        "{}",
        page.body
    );

    // The IdP goes away: the start cannot reach its discovery.
    let gone = TestServer::sqlite().await;
    connection(
        &gone,
        json!({
            "id": "corp", "display_name": "Acme Corp", "issuer": "http://127.0.0.1:9",
            "client_id": "x", "client_secret": "y",
        }),
    )
    .await;
    let rp = rp_of(&gone).await;
    let (_, challenge) = pkce();
    let b = Browser::new();
    let login = b.get(&authorize_url(&gone, &rp, &challenge, &[])).await;
    let page = b.get(&login.sso_button("corp").unwrap()).await;
    assert_eq!(page.status, StatusCode::BAD_GATEWAY);
    assert!(page.text().contains("cannot be reached"), "{}", page.body);
}

async fn rp_of(s: &TestServer) -> Rp {
    new_rp(s).await
}

#[tokio::test]
async fn a_login_hint_in_a_connection_domain_goes_straight_to_it_and_passwords_can_be_turned_off() {
    let s = TestServer::sqlite().await;
    let idp = Idp::start().await;
    corp(&s, &idp, json!({})).await;
    let rp = new_rp(&s).await;
    let b = Browser::new();
    let (_, challenge) = pkce();
    let page = b
        .get(&authorize_url(
            &s,
            &rp,
            &challenge,
            &[("login_hint", "dave@ACME.test")],
        ))
        .await;
    let start = page.location().to_owned();
    assert!(start.contains("/sso/corp/start?"), "{start}");
    let at_idp = b.get(&start).await.location().to_owned();
    assert!(at_idp.starts_with(&idp.issuer()));
    assert_eq!(
        query_of(&at_idp).get("login_hint").map(String::as_str),
        Some("dave@ACME.test")
    );

    // Other domains see the page, with the password form until the tenant turns it off.
    let page = b
        .get(&authorize_url(
            &s,
            &rp,
            &challenge,
            &[("login_hint", "eve@example.com")],
        ))
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("name=\"password\""));
    let (csrf, request) = (page.hidden("csrf").unwrap(), page.hidden("request").unwrap());
    local_user(&s, "eve", "eve@example.com").await;
    let (status, _) = s
        .admin(
            Method::PUT,
            &format!("/tenants/{T}/sso-settings"),
            Some(json!({ "password_sign_in": false })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let page = b.get(&authorize_url(&s, &rp, &challenge, &[])).await;
    assert!(!page.body.contains("name=\"password\""), "{}", page.body);
    assert!(page.sso_button("corp").is_some());
    // A password posted anyway (a form from before) is not checked.
    let page = b
        .post(
            &format!("{}/login", s.issuer(T)),
            &[
                ("csrf", &csrf),
                ("request", &request),
                ("username", "eve"),
                ("password", PW),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.text().contains("signs in through its own sign-in service"),
        "{}",
        page.body
    );
    // Turned off but no enabled connection: passwords are offered again (nobody locked out).
    let (status, _) = s
        .admin(
            Method::PATCH,
            &format!("/tenants/{T}/sso/corp"),
            Some(json!({ "enabled": false })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let page = b.get(&authorize_url(&s, &rp, &challenge, &[])).await;
    assert!(page.body.contains("name=\"password\""), "{}", page.body);
}

#[tokio::test]
async fn the_admin_api_manages_connections_and_never_shows_the_secret() {
    let s = TestServer::sqlite().await;
    let idp = Idp::start().await;
    let created = corp(&s, &idp, json!({})).await;
    assert!(!created.to_string().contains(IDP_SECRET), "{created}");
    assert_eq!(created["client_secret_set"], true);
    assert_eq!(created["scopes"], json!(["openid", "email", "profile"]));
    let (status, body) = s.admin(Method::GET, &format!("/tenants/{T}/sso"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["connections"][0]["id"], "corp");
    assert!(!body.to_string().contains(IDP_SECRET));
    // A second connection of the same name.
    let (status, _) = s
        .admin(
            Method::POST,
            &format!("/tenants/{T}/sso"),
            Some(json!({ "id": "corp", "issuer": idp.issuer(), "client_id": "a", "client_secret": "b" })),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    // SAML has its place in the model but is not built yet.
    let (status, body) = s
        .admin(
            Method::POST,
            &format!("/tenants/{T}/sso"),
            Some(json!({ "id": "saml1", "kind": "saml" })),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    // PATCH keeps the secret, changes the rest; private_key_jwt gets a published key.
    let (status, body) = s
        .admin(
            Method::PATCH,
            &format!("/tenants/{T}/sso/corp"),
            Some(json!({ "button_text": "Acme SSO", "client_auth": "private_key_jwt" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["button_text"].as_str(), body["client_secret_set"].as_bool()),
        (Some("Acme SSO"), Some(true))
    );
    let jwks: Value = s
        .http
        .get(format!("{}/sso/corp/jwks", s.issuer(T)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks["keys"][0]["kty"], "RSA", "{jwks}");
    assert!(jwks["keys"][0].get("d").is_none(), "no private part");
    // Disabled: no button, the start answers 404.
    let (status, _) = s
        .admin(
            Method::PATCH,
            &format!("/tenants/{T}/sso/corp"),
            Some(json!({ "enabled": false })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let rp = new_rp(&s).await;
    let (_, challenge) = pkce();
    let page = Browser::new().get(&authorize_url(&s, &rp, &challenge, &[])).await;
    assert!(page.sso_button("corp").is_none());
    let (status, _) = s
        .admin(Method::DELETE, &format!("/tenants/{T}/sso/corp"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = s
        .admin(Method::GET, &format!("/tenants/{T}/sso/corp"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// The upstream is a second tenant of a real `sesamed`: password sign-in there, Sesame's own
/// ID token (RS256, `iss` in the authorization response) checked here, email from userinfo.
#[tokio::test]
async fn a_second_sesame_tenant_is_a_real_upstream() {
    let s = TestServer::sqlite().await;
    s.tenant("idp", json!({})).await;
    let callback = format!("{}/sso/upstream/callback", s.issuer(T));
    let (status, idp_client) = s
        .admin(
            Method::POST,
            "/tenants/idp/clients",
            Some(json!({ "name": "Broker", "redirect_uris": [callback], "first_party": true })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{idp_client}");
    let (status, body) = s
        .admin(
            Method::POST,
            "/tenants/idp/users",
            Some(json!({
                "username": "frank", "password": PW, "email": "frank@corp.test",
                "email_verified": true, "name": "Frank Upstream",
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    connection(
        &s,
        json!({
            "id": "upstream",
            "display_name": "Upstream Sesame",
            "issuer": s.issuer("idp"),
            "client_id": idp_client["client"]["client_id"],
            "client_secret": idp_client["client_secret"],
        }),
    )
    .await;
    let rp = new_rp(&s).await;
    for round in 0..2 {
        let b = Browser::new();
        let (verifier, challenge) = pkce();
        let login = b.get(&authorize_url(&s, &rp, &challenge, &[])).await;
        let start = b.get(&login.sso_button("upstream").expect("button")).await;
        let idp_login = b.get(start.location()).await;
        assert_eq!(idp_login.status, StatusCode::OK, "{}", idp_login.body);
        let csrf = idp_login.hidden("csrf").expect("idp csrf");
        let request = idp_login.hidden("request").expect("idp request");
        let back = b
            .post(
                &format!("{}/login", s.issuer("idp")),
                &[
                    ("csrf", &csrf),
                    ("request", &request),
                    ("username", "frank"),
                    ("password", PW),
                ],
            )
            .await;
        let cb = back.location().to_owned();
        assert!(cb.starts_with(&callback), "{cb}");
        assert_eq!(query_of(&cb).get("iss"), Some(&s.issuer("idp")));
        let page = b.get(&cb).await;
        let tokens = app_tokens(&s, &rp, &page, &verifier).await;
        let (_, claims) = jwt_parts(tokens["id_token"].as_str().unwrap());
        let (_, user) = s
            .admin(
                Method::GET,
                &format!("/tenants/{T}/users/{}", claims["sub"].as_str().unwrap()),
                None,
            )
            .await;
        assert_eq!(user["username"], "frank@corp.test", "round {round}: {user}");
        assert_eq!(user["name"], "Frank Upstream");
    }
    let (_, users) = s.admin(Method::GET, &format!("/tenants/{T}/users"), None).await;
    assert_eq!(
        users.to_string().matches("frank@corp.test").count(),
        2,
        "one user (username + email): {users}"
    );
}

#[tokio::test]
async fn declared_connections_are_applied_idempotently() {
    let idp = Idp::start().await;
    let declare = |display_name: &str| -> Vec<sesame_server::config::TenantConfig> {
        serde_json::from_value(json!([{
            "id": "default",
            "sso": [{
                "id": "corp", "display_name": display_name, "issuer": idp.issuer(),
                "client_id": IDP_CLIENT, "client_secret": IDP_SECRET, "email_domains": ["acme.test"],
            }],
        }]))
        .unwrap()
    };
    let tenants = declare("Acme Corp");
    let declared = tenants.clone();
    let s = TestServer::start(sesame_store::testing::TestDb::sqlite(), |c| c.tenants = declared).await;
    let (status, first) = s
        .admin(Method::GET, &format!("/tenants/{T}/sso/corp"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["client_secret_set"], true);
    // Applying the same file again changes nothing (not even updated_at).
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    sesame_server::bootstrap::apply_declared(&s.running.app, &tenants)
        .await
        .unwrap();
    let (_, again) = s
        .admin(Method::GET, &format!("/tenants/{T}/sso/corp"), None)
        .await;
    assert_eq!(again, first);
    // A changed file updates what it declares.
    let changed = declare("Acme");
    sesame_server::bootstrap::apply_declared(&s.running.app, &changed)
        .await
        .unwrap();
    let (_, after) = s
        .admin(Method::GET, &format!("/tenants/{T}/sso/corp"), None)
        .await;
    assert_eq!(after["display_name"], "Acme");
    // And the declared connection signs people in.
    let rp = new_rp(&s).await;
    idp.set(|i| i.person = alice(&[]));
    let (page, _) = sign_in(&s, &Browser::new(), &rp, &idp, alice(&[])).await;
    assert!(page.location().starts_with(CB), "{}", page.body);
}

/// The same flow on PostgreSQL (when `SESAME_TEST_DATABASE_URL` is set): create, link, groups.
#[tokio::test]
async fn sso_sign_in_works_on_postgres_too() {
    let Some(s) = TestServer::postgres().await else {
        return;
    };
    let idp = Idp::start().await;
    corp(&s, &idp, json!({})).await;
    let rp = new_rp(&s).await;
    let mut subs = Vec::new();
    for groups in [&["admins"][..], &[][..]] {
        let (page, verifier) = sign_in(&s, &Browser::new(), &rp, &idp, alice(groups)).await;
        let tokens = app_tokens(&s, &rp, &page, &verifier).await;
        let sub = jwt_parts(tokens["id_token"].as_str().unwrap()).1["sub"]
            .as_str()
            .unwrap()
            .to_owned();
        let info = sso_user(&s, &sub).await;
        assert_eq!(info["admin_by_sso"], json!(!groups.is_empty()));
        subs.push(sub);
    }
    assert_eq!(subs[0], subs[1]);
}
