//! The audit log: who did what to which tenant, with what outcome. Events are built here and
//! written by the server in batches ([`crate::store::AuditStore`]). An event never carries a
//! secret or a token: actors are named by token *name*, user id or client id, targets by ids,
//! and `details` only holds values chosen by the code that records the event.

use crate::access::Actor;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// What happened. The string form is the `type` column and the query's `type=` filter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventType {
    /// A non-GET admin API call (any outcome, refusals included).
    #[serde(rename = "admin.change")]
    AdminChange,
    #[serde(rename = "signin.success")]
    SignInSuccess,
    #[serde(rename = "signin.failure")]
    SignInFailure,
    #[serde(rename = "token.issued")]
    TokenIssued,
    #[serde(rename = "token.revoked")]
    TokenRevoked,
    #[serde(rename = "sso.linked")]
    SsoLinked,
    #[serde(rename = "user.disabled")]
    UserDisabled,
    #[serde(rename = "session.revoked")]
    SessionRevoked,
    #[serde(rename = "token_exchange.refused")]
    TokenExchangeRefused,
    /// An authorization check that said no, recorded when the caller asks (`"audit": true`).
    #[serde(rename = "authz.denied")]
    AuthzDenied,
    /// A delegated session created by a client for a user (with the client's own credentials).
    #[serde(rename = "session.created")]
    SessionCreated,
    /// A client assertion (`private_key_jwt`) refused, with the check that failed.
    #[serde(rename = "client_assertion.refused")]
    ClientAssertionRefused,
}

impl EventType {
    pub const ALL: &'static [EventType] = &[
        EventType::AdminChange,
        EventType::SignInSuccess,
        EventType::SignInFailure,
        EventType::TokenIssued,
        EventType::TokenRevoked,
        EventType::SsoLinked,
        EventType::UserDisabled,
        EventType::SessionRevoked,
        EventType::TokenExchangeRefused,
        EventType::AuthzDenied,
        EventType::SessionCreated,
        EventType::ClientAssertionRefused,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::AdminChange => "admin.change",
            EventType::SignInSuccess => "signin.success",
            EventType::SignInFailure => "signin.failure",
            EventType::TokenIssued => "token.issued",
            EventType::TokenRevoked => "token.revoked",
            EventType::SsoLinked => "sso.linked",
            EventType::UserDisabled => "user.disabled",
            EventType::SessionRevoked => "session.revoked",
            EventType::TokenExchangeRefused => "token_exchange.refused",
            EventType::AuthzDenied => "authz.denied",
            EventType::SessionCreated => "session.created",
            EventType::ClientAssertionRefused => "client_assertion.refused",
        }
    }

    pub fn parse(s: &str) -> Result<EventType> {
        EventType::ALL
            .iter()
            .copied()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| Error::invalid_request(format!("unknown audit event type '{}'", s.escape_debug())))
    }
}

/// How it ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Success,
    /// Refused by a rule: wrong password, missing permission, policy refusal.
    Denied,
    /// Failed otherwise (bad input, conflict, server error).
    Failure,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Denied => "denied",
            Outcome::Failure => "failure",
        }
    }

    pub fn parse(s: &str) -> Result<Outcome> {
        match s {
            "success" => Ok(Outcome::Success),
            "denied" => Ok(Outcome::Denied),
            "failure" => Ok(Outcome::Failure),
            _ => Err(Error::invalid_request(format!(
                "unknown outcome '{}' (success, denied or failure)",
                s.escape_debug()
            ))),
        }
    }

    /// The outcome an HTTP status means: 2xx/3xx success, 401/403 denied, else failure.
    pub fn of_status(status: u16) -> Outcome {
        match status {
            200..=399 => Outcome::Success,
            401 | 403 => Outcome::Denied,
            _ => Outcome::Failure,
        }
    }
}

/// One event. `id` and `time` are set by whoever records it; the store assigns the row's
/// sequence (`seq`), which orders events and makes the paging cursor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<i64>,
    pub time: i64,
    /// `None` for server-wide actions (creating a tenant).
    pub tenant: Option<String>,
    #[serde(rename = "type")]
    pub event_type: EventType,
    /// `operator`, `admin_token`, `tenant_admin`, `member`, `client`, `user` or `anonymous`.
    pub actor_kind: String,
    pub actor_id: Option<String>,
    /// What the event is about: `user:ID`, `client:ID`, `session:ID`, or the admin route.
    pub target: Option<String>,
    pub outcome: Outcome,
    pub client_address: Option<String>,
    pub request_id: Option<String>,
    pub details: serde_json::Value,
}

impl AuditEvent {
    pub fn new(event_type: EventType, tenant: Option<&str>, outcome: Outcome, now: i64) -> AuditEvent {
        AuditEvent {
            seq: None,
            time: now,
            tenant: tenant.map(str::to_owned),
            event_type,
            actor_kind: "anonymous".into(),
            actor_id: None,
            target: None,
            outcome,
            client_address: None,
            request_id: None,
            details: serde_json::Value::Null,
        }
    }

    pub fn actor(mut self, kind: &str, id: Option<&str>) -> Self {
        self.actor_kind = kind.to_owned();
        self.actor_id = id.map(str::to_owned);
        self
    }

    pub fn by(self, actor: &Actor) -> Self {
        let kind = actor.kind();
        self.actor(kind, Some(actor.id()))
    }

    pub fn target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }

    pub fn details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }

    pub fn request(mut self, client_address: Option<String>, request_id: Option<String>) -> Self {
        self.client_address = client_address;
        self.request_id = request_id;
        self
    }
}

/// Newest first or oldest first; the cursor continues in the same direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Order {
    #[default]
    NewestFirst,
    OldestFirst,
}

/// A query of one tenant's events (or every tenant's, for operators, with `tenant: None`).
#[derive(Clone, Debug, Default)]
pub struct AuditQuery {
    pub tenant: Option<String>,
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub actor: Option<String>,
    pub event_type: Option<EventType>,
    pub outcome: Option<Outcome>,
    pub limit: u32,
    /// The `seq` of the last event of the previous page: the next page starts after it.
    pub after_seq: Option<i64>,
    pub order: Order,
}

pub const DEFAULT_LIMIT: u32 = 100;
pub const MAX_LIMIT: u32 = 1000;

/// Default retention of audit events (config `audit_retention_days`).
pub const DEFAULT_RETENTION_DAYS: u32 = 90;

/// A cursor is the last `seq` of a page, in decimal: opaque to callers, never a secret.
pub fn parse_cursor(s: &str) -> Result<i64> {
    s.parse::<i64>()
        .ok()
        .filter(|n| *n >= 0)
        .ok_or_else(|| Error::invalid_request("the cursor is not one this server gave"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()).unwrap(), *t);
            assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
        }
        assert_eq!(Outcome::of_status(204), Outcome::Success);
        assert_eq!(Outcome::of_status(403), Outcome::Denied);
        assert_eq!(Outcome::of_status(409), Outcome::Failure);
        assert!(parse_cursor("-3").is_err());
    }
}
