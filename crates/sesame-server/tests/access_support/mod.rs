//! Helpers of the admin-role and audit tests: admin calls with any token, users, a person's
//! sign-in through the pages, machine clients, scoped admin tokens.
#![allow(dead_code)]

use crate::common::{unescape, TestServer};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sesame_core::access::ADMIN_AUDIENCE;
use sesame_server::admin_tokens::{self, NewToken};
use std::collections::BTreeMap;

pub const CB: &str = "https://app.example/cb";
pub const PW: &str = "correct horse battery";

/// An admin API call with `token`; the status and the body as JSON (Null for none).
pub async fn call(
    s: &TestServer,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = s
        .http
        .request(method.clone(), s.admin_url(&format!("/admin/v1{path}")))
        .bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    } else if method == Method::POST {
        req = req.header("content-length", "0");
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// A user with password [`PW`]; its id.
pub async fn user(s: &TestServer, tenant: &str, username: &str) -> String {
    let (status, body) = s
        .admin(
            Method::POST,
            &format!("/tenants/{tenant}/users"),
            Some(json!({ "username": username, "password": PW })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

/// A first-party client whose tokens are for the admin API (among its audiences).
pub async fn admin_app(s: &TestServer, tenant: &str) -> (String, String) {
    s.client(
        tenant,
        json!({
            "name": "Admin console",
            "redirect_uris": [CB],
            "first_party": true,
            "allowed_audiences": [ADMIN_AUDIENCE],
        }),
    )
    .await
}

fn cookies_of(resp: &reqwest::Response, jar: &mut BTreeMap<String, String>) {
    for sc in resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
    {
        if let Some((k, v)) = sc.split(';').next().and_then(|p| p.split_once('=')) {
            jar.insert(k.to_owned(), v.to_owned());
        }
    }
}

fn cookie_header(jar: &BTreeMap<String, String>) -> String {
    jar.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("; ")
}

fn hidden(body: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = body.find(&marker).expect("hidden field") + marker.len();
    let len = body[start..].find('"').unwrap();
    unescape(&body[start..start + len])
}

/// A person's sign-in through the browser pages (authorize, login) and the code exchange:
/// the token response. `password` may be wrong: then `None`.
pub async fn sign_in(
    s: &TestServer,
    tenant: &str,
    app: &(String, String),
    username: &str,
    password: &str,
) -> Option<Value> {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut jar = BTreeMap::new();
    let verifier = B64.encode(sesame_core::crypto::random_bytes::<32>());
    let challenge =
        B64.encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes()).as_ref());
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("client_id", app.0.as_str()),
            ("redirect_uri", CB),
            ("response_type", "code"),
            ("scope", "openid"),
            ("state", "st"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ])
        .finish();
    let resp = http
        .get(format!("{}/authorize?{query}", s.issuer(tenant)))
        .send()
        .await
        .unwrap();
    cookies_of(&resp, &mut jar);
    let page = resp.text().await.unwrap();
    let resp = http
        .post(format!("{}/login", s.issuer(tenant)))
        .header("cookie", cookie_header(&jar))
        .form(&[
            ("csrf", hidden(&page, "csrf").as_str()),
            ("request", hidden(&page, "request").as_str()),
            ("username", username),
            ("password", password),
        ])
        .send()
        .await
        .unwrap();
    if resp.status() != StatusCode::SEE_OTHER {
        return None;
    }
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    let url = reqwest::Url::parse(&location).unwrap();
    let code = url
        .query_pairs()
        .find(|(k, _)| k == "code")
        .expect("a code")
        .1
        .into_owned();
    let (status, _, body) = s
        .post_form(
            tenant,
            "/token",
            Some((&app.0, &app.1)),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", CB),
                ("code_verifier", &verifier),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    Some(body)
}

/// A machine client (client credentials, tokens for the admin API); (id, secret).
pub async fn machine(s: &TestServer, tenant: &str, name: &str) -> (String, String) {
    s.client(
        tenant,
        json!({
            "name": name,
            "grant_types": ["client_credentials"],
            "allowed_audiences": [ADMIN_AUDIENCE],
        }),
    )
    .await
}

pub async fn scoped_token(s: &TestServer, name: &str, tenant: Option<&str>, permissions: &[&str]) -> String {
    let (token, _) = admin_tokens::create(
        &*s.running.app.store,
        NewToken {
            name: name.into(),
            expires_in: None,
            tenant: tenant.map(str::to_owned),
            permissions: permissions.iter().map(|p| p.to_string()).collect(),
        },
        sesame_core::now(),
    )
    .await
    .unwrap();
    token.expose().to_owned()
}
