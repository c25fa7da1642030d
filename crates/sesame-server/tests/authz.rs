//! Authorization over HTTP against running `sesamed`s: a tenant with two teams, nested resources
//! (workspace → project → model) and grants to users and teams; every check answer and its
//! path, batches and `list`; a revocation made on a second `sesamed` sharing the store, seen by
//! the first one's very next check; and the refusals (unknown names with the valid ones,
//! cycles, the last owner, other tenants' ids, a person asking about someone else, manual
//! edits of an IdP-backed team, team managers' limits).

mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use common::{expect_error, unescape, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Mutex;

const T: &str = "default";
const CB: &str = "https://app.example/cb";
const PW: &str = "correct horse battery";

// ---------------------------------------------------------------------------------------------
// A person's access token through the sign-in page (a small browser, as in the other tests)

struct Page {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Page {
    fn hidden(&self, name: &str) -> Option<String> {
        let marker = format!("name=\"{name}\" value=\"");
        let start = self.body.find(&marker)? + marker.len();
        let len = self.body[start..].find('"')?;
        Some(unescape(&self.body[start..start + len]))
    }

    fn redirect(&self) -> BTreeMap<String, String> {
        assert_eq!(self.status, StatusCode::SEE_OTHER, "{}", self.body);
        let loc = self.headers["location"].to_str().unwrap();
        let rest = loc.find(['?', '#']).map_or("", |i| &loc[i + 1..]);
        form_urlencoded::parse(rest.as_bytes()).into_owned().collect()
    }
}

struct Browser {
    http: reqwest::Client,
    jar: Mutex<BTreeMap<String, String>>,
}

impl Browser {
    fn new() -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            jar: Mutex::new(BTreeMap::new()),
        }
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Page {
        let cookies = {
            let jar = self.jar.lock().unwrap();
            jar.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ")
        };
        let req = if cookies.is_empty() {
            req
        } else {
            req.header("cookie", cookies)
        };
        let resp = req.send().await.unwrap();
        let (status, headers) = (resp.status(), resp.headers().clone());
        let body = resp.text().await.unwrap();
        for sc in headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
        {
            if let Some((name, value)) = sc.split(';').next().and_then(|p| p.split_once('=')) {
                self.jar.lock().unwrap().insert(name.to_owned(), value.to_owned());
            }
        }
        Page {
            status,
            headers,
            body,
        }
    }
}

fn pkce() -> (String, String) {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).unwrap();
    let verifier = B64.encode(bytes);
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    (verifier, B64.encode(digest.as_ref()))
}

/// Signs `username` in at the login page of tenant `T` with the first-party client `rp`.
async fn access_token(s: &TestServer, rp: &(String, String), username: &str) -> String {
    access_token_with(s, rp, username, "openid").await
}

async fn access_token_with(s: &TestServer, rp: &(String, String), username: &str, scope: &str) -> String {
    let b = Browser::new();
    let (verifier, challenge) = pkce();
    let q = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("client_id", rp.0.as_str()),
            ("redirect_uri", CB),
            ("response_type", "code"),
            ("scope", scope),
            ("state", "st"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ])
        .finish();
    let page = b.send(b.http.get(format!("{}/authorize?{q}", s.issuer(T)))).await;
    let form = [
        ("csrf", page.hidden("csrf").expect("login page")),
        ("request", page.hidden("request").unwrap()),
        ("username", username.to_owned()),
        ("password", PW.to_owned()),
    ];
    let page = b
        .send(b.http.post(format!("{}/login", s.issuer(T))).form(&form))
        .await;
    let code = page.redirect()["code"].clone();
    let (status, _, tok) = s
        .post_form(
            T,
            "/token",
            Some((&rp.0, &rp.1)),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", CB),
                ("code_verifier", &verifier),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{tok}");
    tok["access_token"].as_str().unwrap().to_owned()
}

// ---------------------------------------------------------------------------------------------
// Helpers

async fn user(s: &TestServer, tenant: &str, username: &str) -> String {
    let (status, body) = s
        .admin(
            Method::POST,
            &format!("/tenants/{tenant}/users"),
            Some(json!({"username": username, "password": PW})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

async fn ok(s: &TestServer, method: Method, path: &str, body: Option<Value>) -> Value {
    let (status, v) = s.admin(method, &format!("/tenants/{T}{path}"), body).await;
    assert!(status.is_success(), "{path}: {status} {v}");
    v
}

/// A POST to a tenant's authz endpoint with Basic or Bearer credentials.
async fn call(
    s: &TestServer,
    base: &str,
    tenant: &str,
    endpoint: &str,
    auth: &Auth,
    body: &Value,
) -> (StatusCode, Value) {
    let mut req = s
        .http
        .post(format!("{base}/t/{tenant}/authz/{endpoint}"))
        .json(body);
    req = match auth {
        Auth::Client(id, secret) => req.basic_auth(id, Some(secret)),
        Auth::Person(token) => req.bearer_auth(token),
        Auth::None => req,
    };
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

enum Auth {
    Client(String, String),
    Person(String),
    None,
}

fn check(user: &str, action: &str, kind: &str, id: &str) -> Value {
    json!({ "subject": {"type": "user", "id": user}, "action": action, "resource": {"type": kind, "id": id} })
}

fn parent(kind: &str, id: &str, pk: &str, pid: &str) -> Value {
    json!({ "step": "parent", "resource": {"type": kind, "id": id}, "parent": {"type": pk, "id": pid} })
}

fn grant_step(kind: &str, id: &str, relation: &str, st: &str, sid: &str) -> Value {
    json!({ "step": "grant", "resource": {"type": kind, "id": id}, "relation": relation,
            "subject": {"type": st, "id": sid} })
}

fn member(team: &str, user: &str, role: &str) -> Value {
    json!({ "step": "member", "team": team, "user": user, "role": role })
}

struct World {
    alice: String,
    bob: String,
    carol: String,
    dave: String,
    client: Auth,
    rp: (String, String),
}

/// alice owns workspace w1; projects p1, p2 in it; models m1 in p1 and m2 in p2. Team `eng`
/// (bob member, carol manager) edits p1; team `design` (dave) may deploy m1; dave views m2.
async fn world(s: &TestServer) -> World {
    let alice = user(s, T, "alice").await;
    let bob = user(s, T, "bob").await;
    let carol = user(s, T, "carol").await;
    let dave = user(s, T, "dave").await;
    ok(s, Method::PUT, "/resource-types/workspace", None).await;
    ok(s, Method::PUT, "/resource-types/project", None).await;
    let model = ok(
        s,
        Method::PUT,
        "/resource-types/model",
        Some(json!({ "relations": {
            "viewer": ["read"], "editor": ["read", "write"],
            "owner": ["read", "write", "share", "delete"], "deployer": ["deploy"] } })),
    )
    .await;
    assert_eq!(model["relations"]["deployer"], json!(["deploy"]));
    ok(
        s,
        Method::POST,
        "/teams",
        Some(json!({"id": "eng", "name": "Engineering"})),
    )
    .await;
    ok(s, Method::POST, "/teams", Some(json!({"id": "design"}))).await;
    ok(s, Method::PUT, &format!("/teams/eng/members/{bob}"), None).await;
    ok(
        s,
        Method::PUT,
        "/teams/eng/members/carol",
        Some(json!({"role": "manager"})),
    )
    .await;
    ok(s, Method::PUT, &format!("/teams/design/members/{dave}"), None).await;
    let w1 = ok(
        s,
        Method::PUT,
        "/resources/workspace/w1",
        Some(json!({"owner": {"type": "user", "id": alice}})),
    )
    .await;
    assert_eq!(w1["parent"], Value::Null);
    for (kind, id, pk, pid) in [
        ("project", "p1", "workspace", "w1"),
        ("project", "p2", "workspace", "w1"),
        ("model", "m1", "project", "p1"),
        ("model", "m2", "project", "p2"),
    ] {
        ok(
            s,
            Method::PUT,
            &format!("/resources/{kind}/{id}"),
            Some(json!({"parent": {"type": pk, "id": pid}})),
        )
        .await;
    }
    for (path, relation, st, sid) in [
        ("project/p1", "editor", "team", "eng"),
        ("model/m1", "deployer", "team", "design"),
        ("model/m2", "viewer", "user", dave.as_str()),
    ] {
        ok(
            s,
            Method::POST,
            &format!("/resources/{path}/grants"),
            Some(json!({"relation": relation, "subject": {"type": st, "id": sid}})),
        )
        .await;
    }
    let (id, secret) = s
        .client(
            T,
            json!({"name": "Checker", "grant_types": ["client_credentials"]}),
        )
        .await;
    let (status, rp) = s
        .admin(
            Method::POST,
            &format!("/tenants/{T}/clients"),
            Some(json!({ "name": "App", "redirect_uris": [CB], "first_party": true })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{rp}");
    World {
        alice,
        bob,
        carol,
        dave,
        client: Auth::Client(id, secret),
        rp: (
            rp["client"]["client_id"].as_str().unwrap().to_owned(),
            rp["client_secret"].as_str().unwrap().to_owned(),
        ),
    }
}

/// The server on PostgreSQL when configured (the replicas case), else on SQLite.
async fn server() -> TestServer {
    match TestServer::postgres().await {
        Some(s) => s,
        None => TestServer::sqlite().await,
    }
}

// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn the_walk_answers_every_check_with_its_path_and_a_second_replica_revokes() {
    let s = server().await;
    let w = world(&s).await;
    let (a, b, c, d) = (
        w.alice.as_str(),
        w.bob.as_str(),
        w.carol.as_str(),
        w.dave.as_str(),
    );
    let expected: Vec<(Value, bool, Value)> = vec![
        (
            check(a, "delete", "model", "m1"),
            true,
            json!([
                parent("model", "m1", "project", "p1"),
                parent("project", "p1", "workspace", "w1"),
                grant_step("workspace", "w1", "owner", "user", a)
            ]),
        ),
        (
            check(a, "share", "workspace", "w1"),
            true,
            json!([grant_step("workspace", "w1", "owner", "user", a)]),
        ),
        (
            check(b, "write", "model", "m1"),
            true,
            json!([
                parent("model", "m1", "project", "p1"),
                grant_step("project", "p1", "editor", "team", "eng"),
                member("eng", b, "member")
            ]),
        ),
        (check(b, "delete", "model", "m1"), false, json!([])),
        (check(b, "write", "model", "m2"), false, json!([])),
        (check(b, "read", "workspace", "w1"), false, json!([])),
        (
            check(c, "read", "project", "p1"),
            true,
            json!([
                grant_step("project", "p1", "editor", "team", "eng"),
                member("eng", c, "manager")
            ]),
        ),
        (
            check(d, "read", "model", "m2"),
            true,
            json!([grant_step("model", "m2", "viewer", "user", d)]),
        ),
        (
            check(d, "deploy", "model", "m1"),
            true,
            json!([
                grant_step("model", "m1", "deployer", "team", "design"),
                member("design", d, "member")
            ]),
        ),
        (check(d, "read", "model", "m1"), false, json!([])),
        (check(b, "deploy", "model", "m1"), false, json!([])),
        (check(a, "deploy", "model", "m2"), false, json!([])),
    ];
    for (q, allowed, path) in &expected {
        let (status, ans) = call(&s, &s.base, T, "check", &w.client, q).await;
        assert_eq!(status, StatusCode::OK, "{q}: {ans}");
        assert_eq!(ans, json!({"allowed": allowed, "path": path}), "{q}");
    }
    // The same as one batch, in order.
    let batch = json!({ "checks": expected.iter().map(|e| e.0.clone()).collect::<Vec<_>>() });
    let (status, ans) = call(&s, &s.base, T, "check", &w.client, &batch).await;
    assert_eq!(status, StatusCode::OK, "{ans}");
    let results = ans["results"].as_array().unwrap();
    assert_eq!(results.len(), expected.len());
    for (r, (q, allowed, _)) in results.iter().zip(&expected) {
        assert_eq!(r["allowed"], json!(allowed), "{q}");
    }
    // Too many in one batch.
    let big = json!({ "checks": vec![check(a, "read", "model", "m1"); 101] });
    let (status, ans) = call(&s, &s.base, T, "check", &w.client, &big).await;
    expect_error(status, &ans, StatusCode::BAD_REQUEST, "invalid_request");

    // list: what each may do, by type, a page at a time.
    let list = |u: &str, action: &str, kind: &str, extra: Value| {
        let mut v = json!({ "subject": {"type": "user", "id": u}, "action": action, "type": kind });
        v.as_object_mut()
            .unwrap()
            .extend(extra.as_object().cloned().unwrap());
        v
    };
    for (q, ids) in [
        (list(a, "read", "model", json!({})), json!(["m1", "m2"])),
        (list(b, "write", "model", json!({})), json!(["m1"])),
        (list(b, "write", "project", json!({})), json!(["p1"])),
        (list(d, "read", "model", json!({})), json!(["m2"])),
        (list(d, "deploy", "model", json!({})), json!(["m1"])),
        (list(c, "delete", "workspace", json!({})), json!([])),
    ] {
        let (status, ans) = call(&s, &s.base, T, "list", &w.client, &q).await;
        assert_eq!(status, StatusCode::OK, "{ans}");
        assert_eq!(ans["ids"], ids, "{q}");
    }
    let (_, page1) = call(
        &s,
        &s.base,
        T,
        "list",
        &w.client,
        &list(a, "read", "model", json!({"limit": 1})),
    )
    .await;
    assert_eq!(page1, json!({"ids": ["m1"], "next_cursor": "m1"}));
    let (_, page2) = call(
        &s,
        &s.base,
        T,
        "list",
        &w.client,
        &list(a, "read", "model", json!({"limit": 1, "cursor": "m1"})),
    )
    .await;
    assert_eq!(page2, json!({"ids": ["m2"], "next_cursor": null}));

    // A second sesamed on the same store revokes team eng's grant on p1 ...
    let dir = tempfile::tempdir().unwrap();
    let mut config = s.config.clone();
    config.data_dir = dir.path().to_path_buf();
    let second = sesame_server::start(&config, false)
        .await
        .expect("second sesamed starts");
    let resp = s
        .http
        .delete(format!(
            "{}/admin/v1/tenants/{T}/resources/project/p1/grants/editor/team/eng",
            second.public_url
        ))
        .bearer_auth(&s.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    // ... and the first one's very next check says no.
    let (_, ans) = call(
        &s,
        &s.base,
        T,
        "check",
        &w.client,
        &check(b, "write", "model", "m1"),
    )
    .await;
    assert_eq!(ans, json!({"allowed": false, "path": []}));
    // A grant made on the first is seen by the second at once too.
    ok(
        &s,
        Method::POST,
        "/resources/model/m1/grants",
        Some(json!({"relation": "viewer", "subject": {"type": "user", "id": b}})),
    )
    .await;
    let (_, ans) = call(
        &s,
        &second.public_url,
        T,
        "check",
        &w.client,
        &check(b, "read", "model", "m1"),
    )
    .await;
    assert_eq!(ans["allowed"], true, "{ans}");
}

#[tokio::test]
async fn bad_input_is_refused_with_what_is_valid() {
    let s = TestServer::sqlite().await;
    let w = world(&s).await;
    let a = w.alice.as_str();
    let ask = |q: Value| {
        let s = &s;
        let auth = &w.client;
        async move { call(s, &s.base, T, "check", auth, &q).await }
    };
    let (status, ans) = ask(check(a, "fly", "model", "m1")).await;
    expect_error(status, &ans, StatusCode::BAD_REQUEST, "invalid_request");
    assert_eq!(
        ans["error_description"],
        "unknown action 'fly' for type 'model': valid actions are delete, deploy, read, share, write"
    );
    let (status, ans) = ask(check(a, "read", "dataset", "x")).await;
    expect_error(status, &ans, StatusCode::BAD_REQUEST, "invalid_request");
    assert_eq!(
        ans["error_description"],
        "unknown resource type 'dataset': valid types are model, project, workspace"
    );
    let (status, ans) = ask(check(a, "read", "model", "nope")).await;
    expect_error(status, &ans, StatusCode::NOT_FOUND, "not_found");
    let (status, ans) = s
        .admin(
            Method::POST,
            &format!("/tenants/{T}/resources/model/m1/grants"),
            Some(json!({"relation": "admin", "subject": {"type": "user", "id": a}})),
        )
        .await;
    expect_error(status, &ans, StatusCode::BAD_REQUEST, "invalid_request");
    assert!(
        ans["error_description"]
            .as_str()
            .unwrap()
            .ends_with("valid relations are deployer, editor, owner, viewer"),
        "{ans}"
    );
    // A cycle: the workspace under its own model.
    let (status, ans) = s
        .admin(
            Method::PUT,
            &format!("/tenants/{T}/resources/workspace/w1"),
            Some(json!({"parent": {"type": "model", "id": "m1"}})),
        )
        .await;
    expect_error(status, &ans, StatusCode::CONFLICT, "refused");
    assert!(
        ans["error_description"].as_str().unwrap().contains("cycle"),
        "{ans}"
    );
    // The last owner stays.
    let (status, ans) = s
        .admin(
            Method::DELETE,
            &format!("/tenants/{T}/resources/workspace/w1/grants/owner/user/{a}"),
            None,
        )
        .await;
    expect_error(status, &ans, StatusCode::CONFLICT, "refused");
    assert!(
        ans["error_description"].as_str().unwrap().contains("last owner"),
        "{ans}"
    );

    // Another tenant: its client and admin paths see nothing of this one.
    s.tenant("other", json!({})).await;
    let mallory = user(&s, "other", "mallory").await;
    let (oid, osecret) = s
        .client(
            "other",
            json!({"name": "O", "grant_types": ["client_credentials"]}),
        )
        .await;
    let (status, _) = s
        .admin(Method::PUT, "/tenants/other/resource-types/model", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, ans) = call(
        &s,
        &s.base,
        "other",
        "check",
        &Auth::Client(oid.clone(), osecret.clone()),
        &check(a, "read", "model", "m1"),
    )
    .await;
    expect_error(status, &ans, StatusCode::NOT_FOUND, "not_found");
    let (status, _) = s
        .admin(Method::GET, "/tenants/other/resources/model/m1", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = s.admin(Method::GET, "/tenants/other/teams/eng", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, ans) = s
        .admin(
            Method::POST,
            &format!("/tenants/{T}/resources/model/m1/grants"),
            Some(json!({"relation": "viewer", "subject": {"type": "user", "id": mallory}})),
        )
        .await;
    expect_error(status, &ans, StatusCode::NOT_FOUND, "not_found");
    // Another tenant's client is not a client here.
    let (status, _) = call(
        &s,
        &s.base,
        T,
        "check",
        &Auth::Client(oid, osecret),
        &check(a, "read", "model", "m1"),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = call(
        &s,
        &s.base,
        T,
        "check",
        &Auth::None,
        &check(a, "read", "model", "m1"),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // A person asks about themselves only.
    let bob_token = access_token(&s, &w.rp, "bob").await;
    let me = Auth::Person(bob_token.clone());
    let (status, ans) = call(
        &s,
        &s.base,
        T,
        "check",
        &me,
        &check(&w.bob, "write", "model", "m1"),
    )
    .await;
    assert_eq!(
        (status, ans["allowed"].clone()),
        (StatusCode::OK, json!(true)),
        "{ans}"
    );
    let (status, ans) = call(&s, &s.base, T, "check", &me, &check(a, "read", "model", "m1")).await;
    expect_error(status, &ans, StatusCode::FORBIDDEN, "access_denied");
    let mixed = json!({"checks": [check(&w.bob, "read", "model", "m1"), check(a, "read", "model", "m1")]});
    let (status, _) = call(&s, &s.base, T, "check", &me, &mixed).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = call(
        &s,
        &s.base,
        T,
        "list",
        &me,
        &json!({"subject": {"type": "user", "id": a}, "action": "read", "type": "model"}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = call(
        &s,
        &s.base,
        T,
        "check",
        &Auth::Person("not-a-token".into()),
        &check(a, "read", "model", "m1"),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Team managers: carol manages eng, bob is only a member.
    let carol = access_token(&s, &w.rp, "carol").await;
    let members = |token: &str, method: Method, team: &str, who: &str| {
        let req = s
            .http
            .request(method, format!("{}/teams/{team}/members/{who}", s.issuer(T)))
            .bearer_auth(token)
            .json(&json!({}));
        async move {
            let resp = req.send().await.unwrap();
            let status = resp.status();
            (status, resp.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (status, ans) = members(&bob_token, Method::PUT, "eng", &w.dave).await;
    expect_error(status, &ans, StatusCode::FORBIDDEN, "access_denied");
    let (status, ans) = members(&carol, Method::PUT, "eng", &w.dave).await;
    assert_eq!(status, StatusCode::OK, "{ans}");
    let (status, _) = members(&carol, Method::DELETE, "eng", &w.dave).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = members(&carol, Method::PUT, "design", &w.bob).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "carol does not manage design");
    let _ = w.carol;
}

#[tokio::test]
async fn an_idp_backed_team_refuses_manual_edits() {
    let s = TestServer::sqlite().await;
    let bob = user(&s, T, "bob").await;
    let (status, ans) = s
        .admin(
            Method::POST,
            &format!("/tenants/{T}/sso"),
            Some(
                json!({ "id": "corp", "issuer": "https://idp.example", "client_id": "sesame",
                         "client_secret": "s3cret" }),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{ans}");
    let team = ok(
        &s,
        Method::POST,
        "/teams",
        Some(json!({"id": "eng", "idp_group": {"connection": "corp", "group": "engineering"}})),
    )
    .await;
    assert_eq!(
        team["idp_group"],
        json!({"connection": "corp", "group": "engineering"})
    );
    let (status, ans) = s
        .admin(
            Method::PUT,
            &format!("/tenants/{T}/teams/eng/members/{bob}"),
            None,
        )
        .await;
    expect_error(status, &ans, StatusCode::CONFLICT, "invalid_request");
    assert_eq!(
        ans["error_description"],
        "team eng follows IdP group engineering of connection corp: its members change only at sign-in"
    );
    let (status, ans) = s
        .admin(
            Method::DELETE,
            &format!("/tenants/{T}/teams/eng/members/{bob}"),
            None,
        )
        .await;
    expect_error(status, &ans, StatusCode::CONFLICT, "invalid_request");
    // A team cannot follow a connection that does not exist.
    let (status, _) = s
        .admin(
            Method::POST,
            &format!("/tenants/{T}/teams"),
            Some(json!({"id": "ops", "idp_group": {"connection": "nope", "group": "ops"}})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn roles_and_groups_claims_come_with_their_scopes_and_within_bounds() {
    let s = TestServer::sqlite().await;
    let bob = user(&s, T, "bob").await;
    let (status, rp) = s
        .admin(
            Method::POST,
            &format!("/tenants/{T}/clients"),
            Some(json!({ "name": "App", "redirect_uris": [CB], "first_party": true,
                         "allowed_scopes": ["roles"] })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{rp}");
    let rp = (
        rp["client"]["client_id"].as_str().unwrap().to_owned(),
        rp["client_secret"].as_str().unwrap().to_owned(),
    );
    for team in ["eng", "design"] {
        ok(&s, Method::POST, "/teams", Some(json!({"id": team}))).await;
        ok(&s, Method::PUT, &format!("/teams/{team}/members/{bob}"), None).await;
    }
    let claims = |token: &str| common::jwt_parts(token).1;
    let plain = access_token_with(&s, &rp, "bob", "openid").await;
    assert!(claims(&plain).get("roles").is_none(), "no scope, no claim");
    let token = access_token_with(&s, &rp, "bob", "openid roles groups").await;
    let c = claims(&token);
    assert_eq!(c["roles"], json!(["member", "team:design", "team:eng"]), "{c}");
    assert_eq!(c["groups"], json!([]), "{c}");
    // Beyond 50 entries the claim stays out of the token; userinfo has it whole.
    for i in 0..50 {
        ok(
            &s,
            Method::POST,
            "/teams",
            Some(json!({"id": format!("t{i:02}")})),
        )
        .await;
        ok(&s, Method::PUT, &format!("/teams/t{i:02}/members/{bob}"), None).await;
    }
    let token = access_token_with(&s, &rp, "bob", "openid roles").await;
    assert!(claims(&token).get("roles").is_none(), "{}", claims(&token));
    let info: Value = s
        .http
        .get(format!("{}/userinfo", s.issuer(T)))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["roles"].as_array().map(Vec::len), Some(53), "{info}");
}

#[tokio::test]
async fn a_denied_check_is_audited_only_when_the_caller_asks() {
    let s = server().await;
    let w = world(&s).await;
    let base = s.running.public_url.clone();
    // bob may not delete w1; carol may not either. Only the second asks for a record.
    let quiet = check(&w.bob, "delete", "workspace", "w1");
    let (st, v) = call(&s, &base, T, "check", &w.client, &quiet).await;
    assert_eq!((st, &v["allowed"]), (StatusCode::OK, &json!(false)), "{v}");
    let mut asked = check(&w.carol, "delete", "workspace", "w1");
    asked["audit"] = json!(true);
    let (st, v) = call(&s, &base, T, "check", &w.client, &asked).await;
    assert_eq!((st, &v["allowed"]), (StatusCode::OK, &json!(false)), "{v}");
    // An allowed check asked to be recorded records nothing: only denials are.
    let mut allowed = check(&w.alice, "delete", "workspace", "w1");
    allowed["audit"] = json!(true);
    let (st, v) = call(&s, &base, T, "check", &w.client, &allowed).await;
    assert_eq!((st, &v["allowed"]), (StatusCode::OK, &json!(true)), "{v}");
    // A batch may ask too.
    let batch = json!({ "checks": [check(&w.dave, "delete", "workspace", "w1")], "audit": true });
    let (st, v) = call(&s, &base, T, "check", &w.client, &batch).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    // Anything but a boolean is refused.
    let mut bad = check(&w.bob, "read", "workspace", "w1");
    bad["audit"] = json!("yes");
    let (st, v) = call(&s, &base, T, "check", &w.client, &bad).await;
    assert_eq!(
        (st, &v["error"]),
        (StatusCode::BAD_REQUEST, &json!("invalid_request")),
        "{v}"
    );

    // The writer batches events: wait for the two denials, then make sure there are no others.
    let mut denied = Vec::new();
    for _ in 0..100 {
        let v = ok(&s, Method::GET, "/audit?type=authz.denied&limit=100", None).await;
        denied = v["events"].as_array().unwrap().clone();
        if denied.len() >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let users: Vec<&str> = denied
        .iter()
        .map(|e| e["details"]["user"].as_str().unwrap())
        .collect();
    assert_eq!(denied.len(), 2, "{denied:?}");
    assert!(
        users.contains(&w.carol.as_str()) && users.contains(&w.dave.as_str()),
        "{users:?}"
    );
    for e in &denied {
        assert_eq!(e["outcome"], "denied", "{e}");
        assert_eq!(e["tenant"], T, "{e}");
        assert_eq!(e["details"]["action"], "delete", "{e}");
        assert!(e["target"].as_str().unwrap().contains("w1"), "{e}");
    }
}
