//! POST /t/{tenant}/token with client_credentials: what is issued, and every bad input answered
//! with the RFC 6749 §5.2 error object and the right status.

mod common;

use common::{expect_error, jwt_parts, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::json;

const CC: (&str, &str) = ("grant_type", "client_credentials");

#[tokio::test]
async fn client_credentials_issue_rfc9068_access_tokens_on_each_store_and_alg() {
    for s in TestServer::each_store().await {
        for alg in ["RS256", "ES256", "EdDSA"] {
            let (id, secret) = s
                .client("default", json!({"signing_alg": alg, "allowed_scopes": ["read", "write"], "allowed_audiences": ["api"]}))
                .await;
            let (status, headers, body) = s
                .post_form(
                    "default",
                    "/token",
                    Some((&id, &secret)),
                    &[CC, ("scope", "read")],
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
            assert_eq!(headers["cache-control"], "no-store");
            assert_eq!(body["token_type"], "Bearer");
            assert_eq!(body["expires_in"], 3600);
            assert_eq!(body["scope"], "read");
            let (header, claims) = jwt_parts(body["access_token"].as_str().unwrap());
            assert_eq!(header["typ"], "at+jwt");
            assert_eq!(header["alg"], alg);
            assert_eq!(claims["iss"], s.issuer("default"));
            assert_eq!(claims["sub"], id.as_str());
            assert_eq!(claims["client_id"], id.as_str());
            assert_eq!(claims["aud"], "api");
            assert_eq!(
                claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
                3600
            );
            assert!(claims["jti"].as_str().unwrap().len() >= 22);
        }
    }
}

#[tokio::test]
async fn client_secret_post_works_and_lifetimes_follow_the_client() {
    let s = TestServer::sqlite().await;
    let (id, secret) = s.client("default", json!({"access_token_ttl": 120})).await;
    let (status, _, body) = s
        .post_form(
            "default",
            "/token",
            None,
            &[CC, ("client_id", &id), ("client_secret", &secret)],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["expires_in"], 120);
    assert!(body.get("scope").is_none(), "no scopes allowed, none granted");
    let (_, claims) = jwt_parts(body["access_token"].as_str().unwrap());
    assert_eq!(
        claims["aud"],
        id.as_str(),
        "a client without audiences is its own audience"
    );
}

#[tokio::test]
async fn scopes_and_audiences_are_limited_to_what_the_client_may_have() {
    let s = TestServer::sqlite().await;
    let (id, secret) = s
        .client(
            "default",
            json!({"allowed_scopes": ["read"], "allowed_audiences": ["https://api.example", "other"]}),
        )
        .await;
    let creds = Some((id.as_str(), secret.as_str()));
    let (status, _, body) = s
        .post_form("default", "/token", creds, &[CC, ("scope", "read admin")])
        .await;
    expect_error(status, &body, StatusCode::BAD_REQUEST, "invalid_scope");
    let (status, _, body) = s
        .post_form(
            "default",
            "/token",
            creds,
            &[CC, ("resource", "https://evil.example")],
        )
        .await;
    expect_error(status, &body, StatusCode::BAD_REQUEST, "invalid_target");
    let (status, _, body) = s
        .post_form("default", "/token", creds, &[CC, ("audience", "evil")])
        .await;
    expect_error(status, &body, StatusCode::BAD_REQUEST, "invalid_target");
    let (status, _, body) = s
        .post_form(
            "default",
            "/token",
            creds,
            &[CC, ("resource", "https://api.example"), ("resource", "other")],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, claims) = jwt_parts(body["access_token"].as_str().unwrap());
    assert_eq!(claims["aud"], json!(["https://api.example", "other"]));
}

#[tokio::test]
async fn failed_client_authentication_is_invalid_client_with_www_authenticate_for_basic() {
    let s = TestServer::sqlite().await;
    let (id, secret) = s.client("default", json!({})).await;
    // wrong secret, unknown client: the same answer
    for (cid, sec) in [
        (id.as_str(), "wrong"),
        ("nobody", secret.as_str()),
        (id.as_str(), ""),
    ] {
        let (status, headers, body) = s.post_form("default", "/token", Some((cid, sec)), &[CC]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body["error"], "invalid_client");
        // RFC 6749 §5.2: the challenge names the error.
        assert_eq!(
            headers["www-authenticate"],
            "Basic realm=\"sesame\", error=\"invalid_client\""
        );
    }
    // by post: 401 with the same challenge (RFC 9110 §15.5.2: every 401 carries one)
    let (status, headers, body) = s
        .post_form(
            "default",
            "/token",
            None,
            &[CC, ("client_id", &id), ("client_secret", "wrong")],
        )
        .await;
    expect_error(status, &body, StatusCode::UNAUTHORIZED, "invalid_client");
    assert_eq!(
        headers["www-authenticate"],
        "Basic realm=\"sesame\", error=\"invalid_client\""
    );
    // no credentials at all
    let (status, _, body) = s.post_form("default", "/token", None, &[CC]).await;
    expect_error(status, &body, StatusCode::UNAUTHORIZED, "invalid_client");
}

#[tokio::test]
async fn malformed_and_non_utf8_basic_headers_are_invalid_client() {
    let s = TestServer::sqlite().await;
    let url = format!("{}/token", s.issuer("default"));
    let bad: [&[u8]; 5] = [
        b"Basic !!!notbase64",
        b"Basic Zm9v",
        b"Basic \xff\xfe\xfd",
        b"Basic /w==",
        b"Basic ",
    ];
    for value in bad {
        let resp = s
            .http
            .post(&url)
            .header(
                "authorization",
                reqwest::header::HeaderValue::from_bytes(value).unwrap(),
            )
            .form(&[CC])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{value:?}");
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["error"], "invalid_client");
    }
}

#[tokio::test]
async fn missing_repeated_and_unknown_parameters_are_invalid_request_or_unsupported_grant() {
    let s = TestServer::sqlite().await;
    let (id, secret) = s.client("default", json!({"allowed_scopes": ["read"]})).await;
    let creds = Some((id.as_str(), secret.as_str()));
    type Case<'a> = (Vec<(&'a str, &'a str)>, StatusCode, &'a str);
    let cases: Vec<Case> = vec![
        (vec![], StatusCode::BAD_REQUEST, "invalid_request"),
        (vec![CC, CC], StatusCode::BAD_REQUEST, "invalid_request"),
        (
            vec![CC, ("scope", "read"), ("scope", "read")],
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            vec![("grant_type", "password")],
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
        ),
        (
            vec![("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer")],
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
        ),
        // RFC 8628 §3.4: the device grant exists; without its device_code the request is bad.
        (
            vec![("grant_type", "urn:ietf:params:oauth:grant-type:device_code")],
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            vec![("grant_type", "authorization_code")],
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            vec![("grant_type", "refresh_token")],
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
    ];
    for (form, status, error) in cases {
        let (got, headers, body) = s.post_form("default", "/token", creds, &form).await;
        assert_eq!(
            (got, body["error"].as_str()),
            (status, Some(error)),
            "{form:?}: {body}"
        );
        assert!(body["error_description"].is_string());
        assert_eq!(headers["content-type"], "application/json");
    }
    // Basic plus a secret in the body is two methods (RFC 6749 §2.3).
    let (status, _, body) = s
        .post_form(
            "default",
            "/token",
            creds,
            &[CC, ("client_id", &id), ("client_secret", &secret)],
        )
        .await;
    expect_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
    // Basic with the same client_id in the body is fine; a different one is not.
    let (status, _, _) = s
        .post_form("default", "/token", creds, &[CC, ("client_id", &id)])
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, body) = s
        .post_form("default", "/token", creds, &[CC, ("client_id", "other")])
        .await;
    expect_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
}

#[tokio::test]
async fn wrong_content_type_and_oversized_bodies_are_refused_with_json() {
    let s = TestServer::sqlite().await;
    let (id, secret) = s.client("default", json!({})).await;
    let url = format!("{}/token", s.issuer("default"));
    let resp = s
        .http
        .post(&url)
        .basic_auth(&id, Some(&secret))
        .json(&json!({"grant_type": "client_credentials"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        resp.json::<serde_json::Value>().await.unwrap()["error"],
        "invalid_request"
    );
    let big = format!("grant_type=client_credentials&pad={}", "a".repeat(70 * 1024));
    let resp = s
        .http
        .post(&url)
        .basic_auth(&id, Some(&secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        resp.json::<serde_json::Value>().await.unwrap()["error"],
        "invalid_request"
    );
    let resp = s.http.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        resp.json::<serde_json::Value>().await.unwrap()["error"],
        "invalid_request"
    );
}

#[tokio::test]
async fn a_client_without_the_grant_is_unauthorized_client() {
    let s = TestServer::sqlite().await;
    let (id, secret) = s.client("default", json!({"grant_types": []})).await;
    let (status, _, body) = s
        .post_form("default", "/token", Some((&id, &secret)), &[CC])
        .await;
    expect_error(status, &body, StatusCode::BAD_REQUEST, "unauthorized_client");
}

#[tokio::test]
async fn disabled_and_deleted_clients_cannot_get_tokens() {
    let s = TestServer::sqlite().await;
    let (id, secret) = s.client("default", json!({})).await;
    s.token("default", &id, &secret, &[]).await;
    let path = format!("/tenants/default/clients/{id}");
    assert_eq!(
        s.admin(Method::POST, &format!("{path}/disable"), None).await.0,
        StatusCode::OK
    );
    let (status, _, body) = s
        .post_form("default", "/token", Some((&id, &secret)), &[CC])
        .await;
    expect_error(status, &body, StatusCode::UNAUTHORIZED, "invalid_client");
    assert_eq!(
        s.admin(Method::POST, &format!("{path}/enable"), None).await.0,
        StatusCode::OK
    );
    s.token("default", &id, &secret, &[]).await;
    assert_eq!(
        s.admin(Method::DELETE, &path, None).await.0,
        StatusCode::NO_CONTENT
    );
    let (status, _, body) = s
        .post_form("default", "/token", Some((&id, &secret)), &[CC])
        .await;
    expect_error(status, &body, StatusCode::UNAUTHORIZED, "invalid_client");
}

#[tokio::test]
async fn a_rotated_secret_replaces_the_old_one_at_once() {
    let s = TestServer::sqlite().await;
    let (id, old) = s.client("default", json!({})).await;
    let (status, body) = s
        .admin(
            Method::POST,
            &format!("/tenants/default/clients/{id}/rotate-secret"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let new = body["client_secret"].as_str().unwrap();
    assert_ne!(new, old);
    let (status, _, _) = s.post_form("default", "/token", Some((&id, &old)), &[CC]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    s.token("default", &id, new, &[]).await;
}

#[tokio::test]
async fn unknown_and_disabled_tenants_answer_404_json() {
    let s = TestServer::sqlite().await;
    s.tenant("acme", json!({})).await;
    let (id, secret) = s.client("acme", json!({})).await;
    s.token("acme", &id, &secret, &[]).await;
    // the client exists in acme only
    let (status, _, _) = s
        .post_form("default", "/token", Some((&id, &secret)), &[CC])
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    for tenant in ["nope", "Bad%20Name", "acme"] {
        if tenant == "acme" {
            assert_eq!(
                s.admin(Method::POST, "/tenants/acme/disable", None).await.0,
                StatusCode::OK
            );
        }
        let (status, _, body) = s.post_form(tenant, "/token", Some((&id, &secret)), &[CC]).await;
        expect_error(status, &body, StatusCode::NOT_FOUND, "not_found");
        let resp = s
            .http
            .get(format!("{}/jwks", s.issuer(tenant)))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn a_public_client_cannot_use_client_credentials() {
    let s = TestServer::sqlite().await;
    let (status, body) = s
        .admin(
            Method::POST,
            "/tenants/default/clients",
            Some(json!({"client_type": "public", "grant_types": ["client_credentials"]})),
        )
        .await;
    expect_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
    let (status, body) = s
        .admin(
            Method::POST,
            "/tenants/default/clients",
            Some(json!({"client_id": "spa", "client_type": "public"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!(body.get("client_secret").is_none());
    let (status, _, body) = s
        .post_form("default", "/token", Some(("spa", "anything")), &[CC])
        .await;
    expect_error(status, &body, StatusCode::UNAUTHORIZED, "invalid_client");
}

#[tokio::test]
async fn undecodable_path_segments_answer_json_not_found() {
    let s = TestServer::sqlite().await;
    for (method, path) in [
        (Method::GET, "/t/%ff/jwks"),
        (Method::POST, "/t/%ff/token"),
        (Method::GET, "/t/%C0%80/.well-known/openid-configuration"),
        (Method::GET, "/admin/v1/tenants/%ff"),
        (Method::GET, "/admin/v1/tenants/default/clients/%ff"),
        (Method::GET, "/nowhere"),
    ] {
        let resp = s
            .http
            .request(method, s.url(path))
            .bearer_auth(&s.admin_token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{path}");
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["error"], "not_found", "{path}");
    }
}
