//! Test harness: a real `sesamed` started in-process on an ephemeral port, one per test, on an
//! isolated SQLite file or PostgreSQL schema, driven over HTTP.
#![allow(dead_code)]

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sesame_server::bootstrap::AdminToken;
use sesame_server::config::Config;
use sesame_server::Running;
use sesame_store::testing::TestDb;

pub struct TestServer {
    pub running: Running,
    pub base: String,
    pub admin_token: String,
    pub http: reqwest::Client,
    pub config: Config,
    pub db: TestDb,
    pub dir: tempfile::TempDir,
}

/// A configuration on an ephemeral port with a fresh master key.
pub fn test_config(db: &TestDb, dir: &std::path::Path) -> Config {
    Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.to_path_buf(),
        store: Some(db.url.as_str().to_owned()),
        master_key: Some(sesame_core::crypto::MasterKey::generate().1),
        cache_refresh_ms: 100,
        ..Config::default()
    }
}

impl TestServer {
    pub async fn sqlite() -> TestServer {
        Self::start(TestDb::sqlite(), |_| {}).await
    }

    pub async fn postgres() -> Option<TestServer> {
        Some(Self::start(TestDb::postgres().await?, |_| {}).await)
    }

    /// Both stores where PostgreSQL is configured, else SQLite only.
    pub async fn each_store() -> Vec<TestServer> {
        let mut v = vec![Self::sqlite().await];
        if let Some(pg) = Self::postgres().await {
            v.push(pg);
        }
        v
    }

    pub async fn start(db: TestDb, edit: impl FnOnce(&mut Config)) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let mut config = test_config(&db, dir.path());
        edit(&mut config);
        let running = sesame_server::start(&config, false)
            .await
            .expect("sesamed starts");
        let admin_token = match &running.admin_token {
            AdminToken::Created(t, _) => t.expose().to_owned(),
            AdminToken::Exists(_) => panic!("a fresh store has no admin token yet"),
        };
        let base = running.public_url.clone();
        TestServer {
            running,
            base,
            admin_token,
            http: reqwest::Client::new(),
            config,
            db,
            dir,
        }
    }

    pub fn issuer(&self, tenant: &str) -> String {
        format!("{}/t/{tenant}", self.base)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// On the admin listener when `admin_listen` is set, else on the public one.
    pub fn admin_url(&self, path: &str) -> String {
        match self.running.admin_addr {
            Some(a) => format!("http://{a}{path}"),
            None => self.url(path),
        }
    }

    /// An admin API call; the body of an error or success as JSON (Null for no body).
    pub async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method, self.admin_url(&format!("/admin/v1{path}")))
            .bearer_auth(&self.admin_token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        (
            status,
            if text.is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&text).unwrap()
            },
        )
    }

    /// Creates a confidential client with the client_credentials grant; returns (id, secret).
    pub async fn client(&self, tenant: &str, spec: Value) -> (String, String) {
        let (status, body) = self
            .admin(Method::POST, &format!("/tenants/{tenant}/clients"), Some(spec))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        (
            body["client"]["client_id"].as_str().unwrap().to_owned(),
            body["client_secret"].as_str().unwrap().to_owned(),
        )
    }

    pub async fn tenant(&self, id: &str, extra: Value) -> Value {
        let mut body = json!({ "id": id });
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().cloned().unwrap_or_default());
        let (status, body) = self.admin(Method::POST, "/tenants", Some(body)).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    /// POSTs a form to a tenant endpoint with optional Basic credentials.
    pub async fn post_form(
        &self,
        tenant: &str,
        endpoint: &str,
        basic: Option<(&str, &str)>,
        form: &[(&str, &str)],
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let mut req = self
            .http
            .post(format!("{}{endpoint}", self.issuer(tenant)))
            .form(form);
        if let Some((id, secret)) = basic {
            req = req.basic_auth(id, Some(secret));
        }
        let resp = req.send().await.unwrap();
        let (status, headers) = (resp.status(), resp.headers().clone());
        let text = resp.text().await.unwrap();
        (
            status,
            headers,
            if text.is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&text).unwrap()
            },
        )
    }

    /// A client_credentials token for (id, secret); panics unless it is issued.
    pub async fn token(&self, tenant: &str, id: &str, secret: &str, extra: &[(&str, &str)]) -> String {
        let mut form = vec![("grant_type", "client_credentials")];
        form.extend_from_slice(extra);
        let (status, _, body) = self.post_form(tenant, "/token", Some((id, secret)), &form).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["access_token"].as_str().unwrap().to_owned()
    }

    pub async fn introspect(&self, tenant: &str, creds: (&str, &str), token: &str) -> Value {
        let (status, _, body) = self
            .post_form(tenant, "/introspect", Some(creds), &[("token", token)])
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }
}

/// Decodes a JWT's header and claims without verifying (the tests verify separately).
pub fn jwt_parts(token: &str) -> (Value, Value) {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut it = token.split('.');
    let h = b64.decode(it.next().unwrap()).unwrap();
    let c = b64.decode(it.next().unwrap()).unwrap();
    (
        serde_json::from_slice(&h).unwrap(),
        serde_json::from_slice(&c).unwrap(),
    )
}

/// Asserts an RFC 6749 §5.2-style error answer: the status, the `error` code, and a description.
pub fn expect_error(status: StatusCode, body: &Value, want_status: StatusCode, want_error: &str) {
    assert_eq!(
        (status, body["error"].as_str()),
        (want_status, Some(want_error)),
        "{body}"
    );
    assert!(body["error_description"].is_string(), "{body}");
}

/// Decodes the HTML character references askama writes (and the named basics).
pub fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let decoded = rest.find(';').filter(|end| *end <= 10).and_then(|end| {
            let entity = &rest[1..end];
            let ch = match entity {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                e if e.starts_with("#x") || e.starts_with("#X") => {
                    u32::from_str_radix(&e[2..], 16).ok().and_then(char::from_u32)
                }
                e if e.starts_with('#') => e[1..].parse().ok().and_then(char::from_u32),
                _ => None,
            };
            ch.map(|c| (c, end))
        });
        match decoded {
            Some((c, end)) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}
