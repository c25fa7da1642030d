//! What can go wrong, each as a case a person (or a program) can act on.

use std::path::PathBuf;
use std::time::Duration;

/// Every failure of this crate. The `Display` text is a sentence meant for the person at the
/// terminal: it says what happened and, where there is one, what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No connection to the issuer (DNS, refused, reset).
    #[error("cannot reach {url}: {cause}")]
    Unreachable {
        /// The URL that was asked.
        url: String,
        /// The innermost cause, as the system reported it.
        cause: String,
    },
    /// The TLS handshake with the issuer failed (an untrusted certificate, or not TLS at all).
    #[error("TLS error talking to {url}: {cause}")]
    Tls {
        /// The URL that was asked.
        url: String,
        /// What the TLS layer reported.
        cause: String,
    },
    /// The issuer took too long to answer.
    #[error("{url} did not answer in time")]
    Timeout {
        /// The URL that was asked.
        url: String,
    },
    /// The discovery document names another issuer than the one asked for: a mix-up attack or
    /// a wrong URL (RFC 8414 §3.3). Nothing is sent to its endpoints.
    #[error(
        "the discovery document at {expected} names the issuer {found:?}; they must be equal, so \
         nothing was sent to it (check --issuer: no trailing slash, the tenant path as Sesame prints it)"
    )]
    IssuerMismatch {
        /// The issuer given.
        expected: String,
        /// The `issuer` in the document (or the `iss` on a redirect).
        found: String,
    },
    /// The issuer's answer was not what the protocol says (not JSON, a field missing, …).
    #[error("unexpected answer from {url}: {problem}")]
    Protocol {
        /// The URL that answered.
        url: String,
        /// What was wrong with it.
        problem: String,
    },
    /// Nobody completed the sign-in in the browser in time.
    #[error("no sign-in arrived from the browser within {} s; run the command again (or use --no-browser to paste a code)", .0.as_secs())]
    BrowserTimeout(Duration),
    /// The person (or the issuer) declined the request: `access_denied` (RFC 6749 §4.1.2.1).
    #[error("the sign-in was declined (access_denied){}", describe(.0))]
    AccessDenied(Option<String>),
    /// The code or refresh token is wrong, expired, already used or for another client:
    /// `invalid_grant` (RFC 6749 §5.2).
    #[error("the issuer refused the grant (invalid_grant){}", describe(.0))]
    InvalidGrant(Option<String>),
    /// The device code expired before the person approved it (RFC 8628 §3.5 `expired_token`).
    #[error("the device code expired before the sign-in was approved; run `sesame login --device` again")]
    DeviceCodeExpired,
    /// Any other OAuth error object (RFC 6749 §4.1.2.1, §5.2; RFC 7009 §2.2.1).
    #[error("the issuer answered {error}{}", describe(.description))]
    OAuth {
        /// The `error` code.
        error: String,
        /// The `error_description`, if any.
        description: Option<String>,
    },
    /// The browser's redirect back to the loopback listener could not be used.
    #[error("the sign-in response is not usable: {0}")]
    Callback(String),
    /// There are no cached credentials for the profile.
    #[error("not signed in (profile {profile:?}); run `sesame login{}`", profile_flag(.profile))]
    NotSignedIn {
        /// The profile asked for.
        profile: String,
    },
    /// The cached sign-in can no longer be refreshed (the refresh token expired or was
    /// revoked, or none was issued).
    #[error("the sign-in of profile {profile:?} has ended ({why}); run `sesame login{}`", profile_flag(.profile))]
    SignInEnded {
        /// The profile.
        profile: String,
        /// Why refreshing is not possible.
        why: String,
    },
    /// The credential file may be read by other users; it is not used until that is fixed.
    #[error("{} can be read by other users (mode {mode:03o}); fix it with: chmod 600 '{}'", .path.display(), .path.display())]
    InsecureFile {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A file of the cache could not be read, parsed or written.
    #[error("{}: {problem}", .path.display())]
    Cache {
        /// The file or directory.
        path: PathBuf,
        /// What went wrong.
        problem: String,
    },
    /// The admin API answered with an error object (docs/admin-api.md), such as `not_found`,
    /// `unauthorized` or `refused`; the text is `error: description`.
    #[error("{error}{}", .description.as_ref().map(|d| format!(": {d}")).unwrap_or_default())]
    Api {
        /// The HTTP status.
        status: u16,
        /// The `error` code.
        error: String,
        /// The `error_description`, if any.
        description: Option<String>,
    },
    /// The OS keyring did not answer or refused the request (no session bus, no Secret
    /// Service, a locked keyring, access denied).
    #[error(
        "the OS keyring failed: {0}; use the file cache instead with --credential-store file (or \
         SESAME_CREDENTIAL_STORE=file)"
    )]
    Keyring(String),
    /// A value given by the caller is not usable (a profile name, a URL).
    #[error("{0}")]
    Invalid(String),
}

/// This crate's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

fn describe(d: &Option<String>) -> String {
    match d {
        Some(d) if !d.is_empty() => format!(": {}", clean(d)),
        _ => String::new(),
    }
}

fn profile_flag(profile: &str) -> String {
    if profile == crate::cache::DEFAULT_PROFILE {
        String::new()
    } else {
        format!(" --profile {profile}")
    }
}

/// Text from the network, made safe to print on a terminal: control characters (escape
/// sequences could rewrite the screen) are shown escaped, and the length is capped.
pub(crate) fn clean(s: &str) -> String {
    let mut out: String = s
        .chars()
        .take(300)
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect();
    if s.chars().count() > 300 {
        out.push('…');
    }
    out
}

/// Sorts a `reqwest` failure into the cases above.
pub(crate) fn from_reqwest(url: &str, e: reqwest::Error) -> Error {
    let url = url.to_owned();
    if e.is_timeout() {
        return Error::Timeout { url };
    }
    // rustls's errors reach us wrapped (reqwest, hyper-util, io::Error) with no type of their
    // own to match on, so a failure of an https connection is sorted by the words rustls uses.
    const TLS_WORDS: &[&str] = &["certificate", "corrupt message", "handshake", "alert", "tls"];
    let mut tls = None;
    let mut innermost = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        let text = s.to_string();
        let lower = text.to_ascii_lowercase();
        if url.starts_with("https:") && TLS_WORDS.iter().any(|w| lower.contains(w)) {
            tls = Some(text.clone());
        }
        innermost = text;
        source = s.source();
    }
    if let Some(cause) = tls {
        return Error::Tls { url, cause };
    }
    Error::Unreachable {
        url,
        cause: innermost,
    }
}
