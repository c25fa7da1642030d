//! Text shown for an answer: the JSON as-is with `--json`, otherwise a table for lists and
//! `key: value` lines for one object. Rendering works on `serde_json::Value` rather than typed
//! records so that a field the server adds later is still shown, not a parse error.

use crate::api::Shape;
use crate::Failure;
use serde_json::{Map, Value};
use std::fmt::Write as _;

const TENANT_FIELDS: &[&str] = &[
    "id",
    "display_name",
    "logo_url",
    "disabled",
    "signing_alg",
    "access_token_ttl",
    "session_ttl",
    "refresh_token_ttl",
    "issuer",
    "created_at",
];
const CLIENT_FIELDS: &[&str] = &[
    "client_id",
    "tenant_id",
    "name",
    "client_type",
    "disabled",
    "grant_types",
    "redirect_uris",
    "post_logout_redirect_uris",
    "require_pkce",
    "first_party",
    "refresh_without_offline_access",
    "backchannel_logout_uri",
    "allowed_scopes",
    "allowed_audiences",
    "signing_alg",
    "access_token_ttl",
    "introspect_any",
    "trust_policy",
    "created_at",
    "updated_at",
];
const SSO_FIELDS: &[&str] = &[
    "id",
    "kind",
    "display_name",
    "enabled",
    "issuer",
    "discovery",
    "client_id",
    "client_auth",
    "client_secret_set",
    "scopes",
    "email_domains",
    "trusted_email",
    "admin_groups",
    "email_claim",
    "unique_id_claim",
    "display_name_claim",
    "groups_claim",
    "button_text",
    "button_image_url",
    "created_at",
    "updated_at",
];
const USER_FIELDS: &[&str] = &[
    "id",
    "username",
    "tenant_id",
    "email",
    "email_verified",
    "name",
    "picture",
    "disabled",
    "has_password",
    "created_at",
    "updated_at",
];
/// Unix times in the API; shown as RFC 3339 UTC.
const TIME_FIELDS: &[&str] = &[
    "created_at",
    "updated_at",
    "activated_at",
    "publish_until",
    "expires_at",
    "auth_time",
    "granted_at",
];

pub fn json(answer: Option<&Value>) -> String {
    match answer {
        // A 204 has no answer, and `--json` shows the answer as-is.
        None => String::new(),
        Some(v) => {
            let mut s = serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string());
            s.push('\n');
            s
        }
    }
}

pub fn human(shape: &Shape, answer: Option<&Value>) -> Result<String, Failure> {
    if let Shape::TrustPolicyDeleted { tenant, name } = shape {
        return Ok(format!(
            "deleted trust policy '{}' of tenant '{}'\n",
            clean(name),
            clean(tenant)
        ));
    }
    if let Shape::Deleted { tenant, client_id } = shape {
        return Ok(format!(
            "deleted client '{}' of tenant '{}'\n",
            clean(client_id),
            clean(tenant)
        ));
    }
    if let Shape::SessionRevoked { user, session } = shape {
        return Ok(format!(
            "ended session '{}' of user '{}'\n",
            clean(session),
            clean(user)
        ));
    }
    if let Shape::SsoDeleted { tenant, connection } = shape {
        return Ok(format!(
            "deleted SSO connection '{}' of tenant '{}'\n",
            clean(connection),
            clean(tenant)
        ));
    }
    if let Shape::Done(what) = shape {
        return Ok(format!("{}\n", clean(what)));
    }
    if let Shape::Document = shape {
        return Ok(json(answer));
    }
    let answer = answer.ok_or_else(|| unexpected("an empty answer"))?;
    Ok(match shape {
        Shape::Tenant => object(object_of(answer, "a tenant")?, TENANT_FIELDS, false),
        Shape::Client => object(object_of(answer, "a client")?, CLIENT_FIELDS, true),
        Shape::ClientWithSecret => {
            let client = object_of(member(answer, "client")?, "a client")?;
            let mut out = object(client, CLIENT_FIELDS, true);
            if let Some(secret) = answer.get("client_secret").and_then(Value::as_str) {
                let _ = write!(
                    out,
                    "\nclient_secret: {}\n\nStore this secret now: it will not be shown again.\n\
                     (A lost secret cannot be recovered, only replaced with `clients rotate-secret`.)\n",
                    clean(secret)
                );
            }
            out
        }
        Shape::Tenants => {
            let rows = array_of(member(answer, "tenants")?, "tenants")?;
            if rows.is_empty() {
                return Ok("no tenants\n".into());
            }
            table(
                &["ID", "DISPLAY NAME", "ALG", "TTL", "STATUS", "ISSUER"],
                rows.iter().map(|t| {
                    vec![
                        field(t, "id"),
                        field(t, "display_name"),
                        field(t, "signing_alg"),
                        field(t, "access_token_ttl"),
                        status(t),
                        field(t, "issuer"),
                    ]
                }),
            )
        }
        Shape::Clients { tenant } => {
            let rows = array_of(member(answer, "clients")?, "clients")?;
            if rows.is_empty() {
                return Ok(format!("no clients in tenant '{}'\n", clean(tenant)));
            }
            table(
                &["CLIENT ID", "NAME", "TYPE", "STATUS", "GRANTS", "SCOPES"],
                rows.iter().map(|c| {
                    vec![
                        field(c, "client_id"),
                        field(c, "name"),
                        field(c, "client_type"),
                        status(c),
                        field(c, "grant_types"),
                        field(c, "allowed_scopes"),
                    ]
                }),
            )
        }
        Shape::Keys { tenant, rotated } => {
            let rows = array_of(member(answer, "keys")?, "keys")?;
            let heading = match rotated {
                Some(what) => format!(
                    "rotated the signing keys of tenant '{}' ({what})\n\n",
                    clean(tenant)
                ),
                None => String::new(),
            };
            if rows.is_empty() {
                return Ok(format!(
                    "{heading}no signing keys in tenant '{}'\n",
                    clean(tenant)
                ));
            }
            heading
                + &table(
                    &["KID", "ALG", "STATE", "CREATED", "ACTIVATED", "PUBLISH UNTIL"],
                    rows.iter().map(|k| {
                        [
                            "kid",
                            "alg",
                            "state",
                            "created_at",
                            "activated_at",
                            "publish_until",
                        ]
                        .iter()
                        .map(|f| field(k, f))
                        .collect()
                    }),
                )
        }
        Shape::User => object(object_of(answer, "a user")?, USER_FIELDS, false),
        Shape::Users { tenant } => {
            let rows = array_of(member(answer, "users")?, "users")?;
            if rows.is_empty() {
                return Ok(format!("no users in tenant '{}'\n", clean(tenant)));
            }
            table(
                &["ID", "USERNAME", "EMAIL", "VERIFIED", "STATUS"],
                rows.iter().map(|u| {
                    vec![
                        field(u, "id"),
                        field(u, "username"),
                        field(u, "email"),
                        field(u, "email_verified"),
                        status(u),
                    ]
                }),
            )
        }
        Shape::Sessions { user } => {
            let rows = array_of(member(answer, "sessions")?, "sessions")?;
            if rows.is_empty() {
                return Ok(format!("user '{}' has no sessions\n", clean(user)));
            }
            table(
                &["ID", "SIGNED IN", "EXPIRES", "AMR", "IP", "USER AGENT"],
                rows.iter().map(|r| {
                    ["id", "auth_time", "expires_at", "amr", "ip", "user_agent"]
                        .iter()
                        .map(|f| field(r, f))
                        .collect()
                }),
            )
        }
        Shape::SessionsRevoked { user } => {
            let n = member(answer, "deleted")?
                .as_u64()
                .ok_or_else(|| unexpected("'deleted' that is not a count"))?;
            format!(
                "ended {n} session{} of user '{}'\n",
                if n == 1 { "" } else { "s" },
                clean(user)
            )
        }
        Shape::Consents { user } => {
            let rows = array_of(member(answer, "consents")?, "consents")?;
            if rows.is_empty() {
                return Ok(format!("user '{}' has consented to no client\n", clean(user)));
            }
            table(
                &["CLIENT ID", "SCOPES", "GRANTED"],
                rows.iter().map(|r| {
                    ["client_id", "scopes", "granted_at"]
                        .iter()
                        .map(|f| field(r, f))
                        .collect()
                }),
            )
        }
        Shape::ConsentRevoked { user } => {
            let client = field(answer, "client_id");
            let tokens = member(answer, "refresh_tokens_revoked")?
                .as_u64()
                .ok_or_else(|| unexpected("'refresh_tokens_revoked' that is not a count"))?;
            let tokens = format!(
                "revoked {tokens} refresh token{} (and the access tokens issued with them)",
                if tokens == 1 { "" } else { "s" }
            );
            if answer.get("consent_deleted").and_then(Value::as_bool) == Some(true) {
                format!(
                    "withdrew the consent of user '{}' to client '{client}'; {tokens}\n",
                    clean(user)
                )
            } else {
                format!(
                    "user '{}' had no consent for client '{client}'; {tokens}\n",
                    clean(user)
                )
            }
        }
        Shape::TrustPolicy => object(
            object_of(answer, "a trust policy")?,
            &[
                "name",
                "issuer",
                "discovery_url",
                "jwks_uri",
                "audience",
                "subject",
                "claims",
                "max_age",
                "typ",
                "identity",
                "scopes",
                "audiences",
                "assertion_reuse",
            ],
            false,
        ),
        Shape::TrustPolicies { tenant } => {
            let rows = array_of(member(answer, "trust_policies")?, "trust_policies")?;
            if rows.is_empty() {
                return Ok(format!("no trust policies in tenant '{}'\n", clean(tenant)));
            }
            table(
                &["NAME", "ISSUER", "AUDIENCE", "SUBJECT", "IDENTITY", "SCOPES"],
                rows.iter().map(|p| {
                    ["name", "issuer", "audience", "subject", "identity", "scopes"]
                        .iter()
                        .map(|f| field(p, f))
                        .collect()
                }),
            )
        }
        Shape::Sso => object(object_of(answer, "an SSO connection")?, SSO_FIELDS, false),
        Shape::SsoList { tenant } => {
            let rows = array_of(member(answer, "connections")?, "connections")?;
            if rows.is_empty() {
                return Ok(format!("no SSO connections in tenant '{}'\n", clean(tenant)));
            }
            table(
                &["ID", "KIND", "DISPLAY NAME", "ENABLED", "ISSUER"],
                rows.iter().map(|c| {
                    vec![
                        field(c, "id"),
                        field(c, "kind"),
                        field(c, "display_name"),
                        field(c, "enabled"),
                        field(c, "issuer"),
                    ]
                }),
            )
        }
        Shape::Deleted { .. }
        | Shape::SessionRevoked { .. }
        | Shape::TrustPolicyDeleted { .. }
        | Shape::SsoDeleted { .. }
        | Shape::Document
        | Shape::Done(_) => String::new(),
    })
}

/// Known fields in a fixed order, then any others the server sent, alphabetically.
fn object(obj: &Map<String, Value>, order: &[&str], client: bool) -> String {
    let mut keys: Vec<&str> = order.iter().copied().filter(|k| obj.contains_key(*k)).collect();
    let mut rest: Vec<&str> = obj
        .keys()
        .map(String::as_str)
        .filter(|k| !order.contains(k))
        .collect();
    rest.sort_unstable();
    keys.extend(rest);
    let width = keys.iter().map(|k| k.chars().count()).max().unwrap_or(0) + 1;
    let mut out = String::new();
    for key in keys {
        let value = &obj[key];
        let text = if client && value.is_null() && matches!(key, "signing_alg" | "access_token_ttl") {
            "(tenant default)".to_string()
        } else {
            show(key, value)
        };
        let _ = writeln!(out, "{:<width$} {text}", format!("{}:", clean(key)));
    }
    out
}

/// Columns are padded to their widest cell; the last one is not, so no line ends in spaces.
fn table(header: &[&str], rows: impl Iterator<Item = Vec<String>>) -> String {
    let mut all: Vec<Vec<String>> = vec![header.iter().map(|h| h.to_string()).collect()];
    all.extend(rows);
    let mut widths = vec![0; header.len()];
    for row in &all {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in &all {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(&widths).enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            let _ = write!(line, "{cell:<w$}");
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn field(v: &Value, key: &str) -> String {
    v.get(key).map_or_else(|| "-".to_string(), |x| show(key, x))
}

fn status(v: &Value) -> String {
    match v.get("disabled").and_then(Value::as_bool) {
        Some(true) => "disabled".into(),
        Some(false) => "enabled".into(),
        None => "-".into(),
    }
}

fn show(key: &str, v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        // An empty cell or value would be invisible.
        Value::String(s) if s.is_empty() => "-".into(),
        Value::String(s) => clean(s),
        Value::Number(n) => match n.as_i64() {
            Some(t) if TIME_FIELDS.contains(&key) => rfc3339(t),
            _ => n.to_string(),
        },
        Value::Bool(b) => b.to_string(),
        Value::Array(items) if items.is_empty() => "-".into(),
        Value::Array(items) => items.iter().map(|i| show("", i)).collect::<Vec<_>>().join(", "),
        Value::Object(_) => clean(&v.to_string()),
    }
}

/// Names and URIs come from whoever configured them; control characters are escaped so that
/// they cannot move the cursor or recolour the terminal of the admin reading them.
pub fn clean(s: &str) -> String {
    if !s.chars().any(char::is_control) {
        return s.to_owned();
    }
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Unix seconds as `YYYY-MM-DDTHH:MM:SSZ` (proleptic Gregorian, H. Hinnant's civil_from_days).
pub fn rfc3339(secs: i64) -> String {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn member<'a>(v: &'a Value, key: &str) -> Result<&'a Value, Failure> {
    v.get(key)
        .ok_or_else(|| unexpected(&format!("no '{key}' member")))
}

fn object_of<'a>(v: &'a Value, what: &str) -> Result<&'a Map<String, Value>, Failure> {
    v.as_object()
        .ok_or_else(|| unexpected(&format!("something other than {what}")))
}

fn array_of<'a>(v: &'a Value, key: &str) -> Result<&'a Vec<Value>, Failure> {
    v.as_array()
        .ok_or_else(|| unexpected(&format!("'{key}' that is not a list")))
}

fn unexpected(what: &str) -> Failure {
    Failure(format!("unexpected answer from the server: {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tenant() -> Value {
        json!({
            "id": "acme", "display_name": "Acme", "disabled": false, "signing_alg": "RS256",
            "access_token_ttl": 3600, "created_at": 1_700_000_000, "issuer": "http://127.0.0.1:8080/t/acme"
        })
    }

    fn client(kind: &str) -> Value {
        json!({
            "tenant_id": "acme", "client_id": "svc", "name": "Service", "client_type": kind,
            "grant_types": ["client_credentials"], "redirect_uris": [], "allowed_scopes": ["read", "write"],
            "allowed_audiences": [], "signing_alg": null, "access_token_ttl": 600, "disabled": true,
            "created_at": 0, "updated_at": 86_399
        })
    }

    #[test]
    fn one_object_is_key_value_lines_in_a_fixed_order() {
        let out = human(&Shape::Tenant, Some(&tenant())).expect("renders");
        assert_eq!(
            out,
            "id:               acme\n\
             display_name:     Acme\n\
             disabled:         false\n\
             signing_alg:      RS256\n\
             access_token_ttl: 3600\n\
             issuer:           http://127.0.0.1:8080/t/acme\n\
             created_at:       2023-11-14T22:13:20Z\n"
        );
    }

    #[test]
    fn client_shows_defaults_lists_and_times() {
        let out = human(&Shape::Client, Some(&client("confidential"))).expect("renders");
        assert!(out.contains("signing_alg:       (tenant default)\n"), "{out}");
        assert!(out.contains("access_token_ttl:  600\n"), "{out}");
        assert!(out.contains("allowed_scopes:    read, write\n"), "{out}");
        assert!(out.contains("redirect_uris:     -\n"), "{out}");
        let mut unnamed = client("public");
        unnamed["name"] = json!("");
        let out = human(&Shape::Client, Some(&unnamed)).expect("renders");
        assert!(out.contains("name:              -\n"), "{out}");
        assert!(out.contains("created_at:        1970-01-01T00:00:00Z\n"), "{out}");
        assert!(out.contains("updated_at:        1970-01-01T23:59:59Z\n"), "{out}");
        assert!(!out.contains("client_secret"), "{out}");
    }

    #[test]
    fn unknown_fields_are_shown_after_known_ones() {
        let mut t = tenant();
        t["zzz"] = json!("new");
        let out = human(&Shape::Tenant, Some(&t)).expect("renders");
        assert!(out.ends_with("zzz:              new\n"), "{out}");
    }

    #[test]
    fn secret_is_printed_once_with_a_warning() {
        let answer = json!({"client": client("confidential"), "client_secret": "s3cr3t"});
        let out = human(&Shape::ClientWithSecret, Some(&answer)).expect("renders");
        assert_eq!(out.matches("s3cr3t").count(), 1, "{out}");
        assert!(out.contains("\nclient_secret: s3cr3t\n"), "{out}");
        assert!(out.contains("will not be shown again"), "{out}");

        let public = json!({"client": client("public")});
        let out = human(&Shape::ClientWithSecret, Some(&public)).expect("renders");
        assert!(!out.contains("secret"), "{out}");
    }

    #[test]
    fn lists_are_aligned_tables() {
        let mut other = tenant();
        other["id"] = json!("a-much-longer-name");
        other["disabled"] = json!(true);
        let out = human(&Shape::Tenants, Some(&json!({"tenants": [tenant(), other]}))).expect("renders");
        assert_eq!(
            out,
            "ID                  DISPLAY NAME  ALG    TTL   STATUS    ISSUER\n\
             acme                Acme          RS256  3600  enabled   http://127.0.0.1:8080/t/acme\n\
             a-much-longer-name  Acme          RS256  3600  disabled  http://127.0.0.1:8080/t/acme\n"
        );
    }

    #[test]
    fn client_and_key_tables() {
        let out = human(
            &Shape::Clients {
                tenant: "acme".into(),
            },
            Some(&json!({"clients": [client("confidential")]})),
        )
        .expect("renders");
        assert_eq!(
            out,
            "CLIENT ID  NAME     TYPE          STATUS    GRANTS              SCOPES\n\
             svc        Service  confidential  disabled  client_credentials  read, write\n"
        );
        let keys = json!({"keys": [
            {"kid": "k1", "alg": "ES256", "state": "active", "created_at": 0, "activated_at": 60, "publish_until": null},
        ]});
        let table = "KID  ALG    STATE   CREATED               ACTIVATED             PUBLISH UNTIL\n\
                     k1   ES256  active  1970-01-01T00:00:00Z  1970-01-01T00:01:00Z  -\n";
        let listed = Shape::Keys {
            tenant: "acme".into(),
            rotated: None,
        };
        assert_eq!(human(&listed, Some(&keys)).expect("renders"), table);
        let rotated = Shape::Keys {
            tenant: "acme".into(),
            rotated: Some("ES256".into()),
        };
        assert_eq!(
            human(&rotated, Some(&keys)).expect("renders"),
            format!("rotated the signing keys of tenant 'acme' (ES256)\n\n{table}")
        );
    }

    fn user(name: &str) -> Value {
        json!({
            "tenant_id": "acme", "id": "u_7f3a", "username": name, "email": null, "email_verified": false,
            "name": null, "picture": null, "disabled": false, "has_password": true,
            "created_at": 0, "updated_at": 60
        })
    }

    #[test]
    fn one_user_is_key_value_lines() {
        let mut u = user("alice");
        u["email"] = json!("alice@example.com");
        u["email_verified"] = json!(true);
        u["name"] = json!("Alice\u{1b}[2J");
        let out = human(&Shape::User, Some(&u)).expect("renders");
        assert_eq!(
            out,
            "id:             u_7f3a\n\
             username:       alice\n\
             tenant_id:      acme\n\
             email:          alice@example.com\n\
             email_verified: true\n\
             name:           Alice\\u{1b}[2J\n\
             picture:        -\n\
             disabled:       false\n\
             has_password:   true\n\
             created_at:     1970-01-01T00:00:00Z\n\
             updated_at:     1970-01-01T00:01:00Z\n"
        );
        assert!(!out.contains("password_hash"));
    }

    #[test]
    fn users_table() {
        let mut bob = user("bob");
        bob["id"] = json!("u_0001");
        bob["email"] = json!("bob@example.com");
        bob["email_verified"] = json!(true);
        bob["disabled"] = json!(true);
        let shape = Shape::Users {
            tenant: "acme".into(),
        };
        let out = human(&shape, Some(&json!({"users": [user("alice"), bob]}))).expect("renders");
        assert_eq!(
            out,
            "ID      USERNAME  EMAIL            VERIFIED  STATUS\n\
             u_7f3a  alice     -                false     enabled\n\
             u_0001  bob       bob@example.com  true      disabled\n"
        );
        assert_eq!(
            human(&shape, Some(&json!({"users": []}))).expect("renders"),
            "no users in tenant 'acme'\n"
        );
        assert!(human(&shape, Some(&json!({"clients": []}))).is_err());
        assert!(human(&Shape::User, Some(&json!([]))).is_err());
    }

    #[test]
    fn sessions_and_consents() {
        let shape = Shape::Sessions { user: "alice".into() };
        let answer = json!({"sessions": [{
            "id": "s1", "created_at": 0, "expires_at": 3600, "auth_time": 60, "amr": ["pwd"],
            "user_agent": "Firefox", "ip": null
        }]});
        assert_eq!(
            human(&shape, Some(&answer)).expect("renders"),
            "ID  SIGNED IN             EXPIRES               AMR  IP  USER AGENT\n\
             s1  1970-01-01T00:01:00Z  1970-01-01T01:00:00Z  pwd  -   Firefox\n"
        );
        assert_eq!(
            human(&shape, Some(&json!({"sessions": []}))).expect("renders"),
            "user 'alice' has no sessions\n"
        );
        let ended = Shape::SessionRevoked {
            user: "alice".into(),
            session: "s1".into(),
        };
        assert_eq!(
            human(&ended, None).expect("renders"),
            "ended session 's1' of user 'alice'\n"
        );
        let all = Shape::SessionsRevoked { user: "alice".into() };
        assert_eq!(
            human(&all, Some(&json!({"deleted": 1}))).expect("renders"),
            "ended 1 session of user 'alice'\n"
        );
        assert!(human(&all, Some(&json!({}))).is_err());

        let consents = Shape::Consents { user: "alice".into() };
        let answer =
            json!({"consents": [{"client_id": "web", "scopes": ["openid", "email"], "granted_at": 0}]});
        assert_eq!(
            human(&consents, Some(&answer)).expect("renders"),
            "CLIENT ID  SCOPES         GRANTED\n\
             web        openid, email  1970-01-01T00:00:00Z\n"
        );
        let revoked = Shape::ConsentRevoked { user: "alice".into() };
        let answer = json!({"client_id": "web", "consent_deleted": true, "refresh_tokens_revoked": 2});
        assert_eq!(
            human(&revoked, Some(&answer)).expect("renders"),
            "withdrew the consent of user 'alice' to client 'web'; \
             revoked 2 refresh tokens (and the access tokens issued with them)\n"
        );
    }

    #[test]
    fn empty_lists_say_so() {
        let out = human(
            &Shape::Clients {
                tenant: "acme".into(),
            },
            Some(&json!({"clients": []})),
        )
        .expect("renders");
        assert_eq!(out, "no clients in tenant 'acme'\n");
        assert_eq!(
            human(&Shape::Tenants, Some(&json!({"tenants": []}))).expect("renders"),
            "no tenants\n"
        );
    }

    #[test]
    fn deletion_needs_no_answer() {
        let shape = Shape::Deleted {
            tenant: "acme".into(),
            client_id: "svc".into(),
        };
        assert_eq!(
            human(&shape, None).expect("renders"),
            "deleted client 'svc' of tenant 'acme'\n"
        );
        assert_eq!(json(None), "");
    }

    #[test]
    fn unexpected_answers_are_errors_not_panics() {
        assert!(human(&Shape::Tenants, Some(&json!({"tenants": 3}))).is_err());
        assert!(human(&Shape::Tenants, Some(&json!([]))).is_err());
        assert!(human(&Shape::Tenant, Some(&json!("x"))).is_err());
        assert!(human(&Shape::ClientWithSecret, Some(&json!({}))).is_err());
        assert!(human(
            &Shape::Keys {
                tenant: "t".into(),
                rotated: None
            },
            None
        )
        .is_err());
    }

    #[test]
    fn json_is_pretty_and_as_is() {
        let v = json!({"a": [true], "b": null});
        assert_eq!(
            json(Some(&v)),
            "{\n  \"a\": [\n    true\n  ],\n  \"b\": null\n}\n"
        );
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(clean("a\u{1b}[31mb\n"), "a\\u{1b}[31mb\\n");
        assert_eq!(clean("Ünïcode"), "Ünïcode");
    }

    #[test]
    fn rfc3339_handles_leap_years_and_negative_times() {
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
        assert_eq!(rfc3339(4_102_444_800), "2100-01-01T00:00:00Z");
    }
}
