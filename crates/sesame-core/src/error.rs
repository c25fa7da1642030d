//! The one error type of the core. Each variant knows its OAuth error code; the server maps a
//! variant to an HTTP status in exactly one place (`sesame_server::error`).

/// An OAuth 2.0 / OIDC error, or a failure of the admin API or the store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// RFC 6749 §5.2 `invalid_request`: missing, repeated or malformed parameter.
    #[error("{0}")]
    InvalidRequest(String),
    /// RFC 6749 §5.2 `invalid_client`: client authentication failed. `basic` says whether the
    /// client tried HTTP Basic, which calls for 401 with `WWW-Authenticate`.
    #[error("client authentication failed")]
    InvalidClient { basic: bool },
    /// RFC 6749 §5.2 `invalid_grant`.
    #[error("{0}")]
    InvalidGrant(String),
    /// RFC 6749 §5.2 `unauthorized_client`: the client may not use this grant.
    #[error("{0}")]
    UnauthorizedClient(String),
    /// RFC 6749 §5.2 `unsupported_grant_type`.
    #[error("grant type '{0}' is not supported")]
    UnsupportedGrantType(String),
    /// RFC 6749 §5.2 `invalid_scope`.
    #[error("{0}")]
    InvalidScope(String),
    /// RFC 8707 §2 `invalid_target`: an audience / resource the client may not ask for.
    #[error("{0}")]
    InvalidTarget(String),
    /// RFC 7009 §2.2.1 `unsupported_token_type`.
    #[error("{0}")]
    UnsupportedTokenType(String),
    /// RFC 6750 §3.1 `invalid_token`: the bearer token is missing, expired, revoked or malformed.
    #[error("{0}")]
    InvalidToken(String),
    /// RFC 6750 §3.1: no bearer token at all; the challenge then carries no error code.
    #[error("a bearer access token is required")]
    BearerRequired,
    /// RFC 6750 §3.1 `insufficient_scope`.
    #[error("{0}")]
    InsufficientScope(String),
    /// RFC 8628 §3.5 `authorization_pending`: the person has not decided yet; poll again.
    #[error("the person has not yet approved or denied the request")]
    AuthorizationPending,
    /// RFC 8628 §3.5 `slow_down`: polled faster than the interval; the interval grows by 5 s.
    #[error("polling too fast: wait at least {interval} seconds between requests")]
    SlowDown { interval: i64 },
    /// RFC 8628 §3.5 `expired_token`: the device code expired before it was approved.
    #[error("the device code has expired; start the sign-in again")]
    ExpiredToken,
    /// RFC 8628 §3.5 `access_denied` (RFC 6749 §4.1.2.1).
    #[error("{0}")]
    AccessDenied(String),
    /// A tenant, client or other named thing does not exist (or is not visible).
    #[error("{0}")]
    NotFound(String),
    /// Creating something that already exists.
    #[error("{0}")]
    Conflict(String),
    /// A request body the server will not read (RFC 9110 §15.5.14).
    #[error("request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// The admin API was called without a valid admin token.
    #[error("a valid admin bearer token is required")]
    Unauthorized,
    /// A valid admin request that the current state refuses (e.g. rotating keys too early).
    #[error("{0}")]
    Refused(String),
    /// The store failed. The message goes to the log, never to the response.
    #[error("store: {0}")]
    Store(String),
    /// Anything else that is our fault. The message goes to the log, never to the response.
    #[error("internal: {0}")]
    Internal(String),
    // Admin roles (access) --------------------------------------------------------------------
    /// The admin API's caller is known but may not do this (its role or the policy table).
    #[error("{0}")]
    Forbidden(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The `error` member of the JSON error object.
    pub fn code(&self) -> &'static str {
        match self {
            Error::InvalidRequest(_) | Error::PayloadTooLarge(_) => "invalid_request",
            Error::InvalidClient { .. } => "invalid_client",
            Error::InvalidGrant(_) => "invalid_grant",
            Error::UnauthorizedClient(_) => "unauthorized_client",
            Error::UnsupportedGrantType(_) => "unsupported_grant_type",
            Error::InvalidScope(_) => "invalid_scope",
            Error::InvalidTarget(_) => "invalid_target",
            Error::UnsupportedTokenType(_) => "unsupported_token_type",
            Error::InvalidToken(_) | Error::BearerRequired => "invalid_token",
            Error::InsufficientScope(_) => "insufficient_scope",
            Error::AuthorizationPending => "authorization_pending",
            Error::SlowDown { .. } => "slow_down",
            Error::ExpiredToken => "expired_token",
            Error::AccessDenied(_) => "access_denied",
            Error::NotFound(_) => "not_found",
            Error::Conflict(_) => "conflict",
            Error::Unauthorized => "unauthorized",
            Error::Refused(_) => "refused",
            Error::Store(_) | Error::Internal(_) => "server_error",
            Error::Forbidden(_) => "forbidden",
        }
    }

    /// The `error_description` member: safe to show to the caller (internals are hidden).
    pub fn description(&self) -> String {
        match self {
            Error::Store(_) | Error::Internal(_) => "the server could not complete the request".into(),
            other => other.to_string(),
        }
    }

    pub fn is_internal(&self) -> bool {
        matches!(self, Error::Store(_) | Error::Internal(_))
    }

    pub fn invalid_request(msg: impl Into<String>) -> Self {
        Error::InvalidRequest(msg.into())
    }
}
