//! Signing a person in with a password, and the browser session that follows.
//!
//! Failed sign-ins are counted per account and per client address in the store (so every
//! replica sees them) and answered with growing delays. Each attempt is counted, as a failure,
//! before its password is checked, in one store transaction that also decides whether it may
//! go ahead: attempts sent at once cannot all pass the check of the tally before any of them
//! is counted. An unknown username and a wrong password get the same answer after the same
//! Argon2 work, so neither the answer nor its timing tells whether an account exists.

use crate::ids::{TenantId, Username};
use crate::model::{BrowserSession, LoginAttempt, LoginFailures, LoginLimit, User};
use crate::secret::hash_secret;
use crate::store::Store;
use crate::{password, Result};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use std::future::Future;
use std::sync::LazyLock;
use zeroize::Zeroizing;

/// Failures older than this are forgotten.
pub const FAILURE_WINDOW: i64 = 3600;
/// Failures allowed before delays start: per account, and per client address (which many
/// people may share behind one NAT).
const ACCOUNT_FREE_FAILURES: i64 = 3;
const ADDRESS_FREE_FAILURES: i64 = 20;
/// The longest delay between attempts.
const MAX_DELAY: i64 = 15 * 60;

/// A sign-in attempt as typed into the login form.
pub struct Attempt<'a> {
    pub username: &'a str,
    pub password: Zeroizing<String>,
    /// The client address, if known.
    pub ip: Option<&'a str>,
}

#[derive(Debug)]
pub enum Outcome {
    SignedIn(Box<User>),
    /// Wrong username or password (the page deliberately does not say which). `user_id` names
    /// the account when the username is one, for the operator's log only.
    Refused {
        user_id: Option<crate::ids::UserId>,
    },
    /// Too many failures: the next attempt is allowed in this many seconds.
    Throttled {
        retry_after: i64,
    },
    /// The password could not be checked in time (too many checks under way); nothing was
    /// counted. Try again in this many seconds.
    Busy {
        retry_after: i64,
    },
}

/// What the `verify` closure of [`sign_in`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verification {
    /// [`verify_password`] ran and answered this.
    Checked(bool),
    /// It did not run: the caller's bound on concurrent checks was reached.
    Busy,
}

/// A password check for the `verify` closure of [`sign_in`].
pub struct Check {
    /// The account's throttling key (`user:…`), for bounding checks per account.
    pub account: String,
    /// The stored hash, or `None` for the dummy hash (see [`verify_password`]).
    pub phc: Option<String>,
    pub password: Zeroizing<String>,
}

/// The Retry-After of [`Outcome::Busy`].
pub const BUSY_RETRY_AFTER: i64 = 1;

/// The delay (seconds after the last failure) before another attempt is allowed: doubling
/// from 2 s once the free failures are used, up to [`MAX_DELAY`]. (Delays are counted in
/// whole seconds of the failure's time, so 2 s is at least one full second.)
pub fn delay_after(failures: &LoginFailures, free: i64) -> i64 {
    let over = failures.count - free;
    if over < 0 {
        return 0;
    }
    2i64.checked_shl(over.min(20) as u32)
        .unwrap_or(MAX_DELAY)
        .min(MAX_DELAY)
}

/// How long (seconds) an attempt at `now` must still wait under a tally with `free` failures
/// allowed; 0 when it may go ahead.
pub fn retry_after(failures: Option<LoginFailures>, free: i64, now: i64) -> i64 {
    failures.map_or(0, |f| {
        if now - f.last_failed_at >= FAILURE_WINDOW {
            0
        } else {
            (f.last_failed_at + delay_after(&f, free) - now).max(0)
        }
    })
}

/// A valid Argon2id hash of a random password, with the same parameters as real ones, so
/// that an unknown username costs the same work as a wrong password.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    let random = B64.encode(crate::crypto::random_bytes::<16>());
    password::hash(&random).expect("hashing a random password")
});

/// Checks `password` against `phc`, or against a dummy hash when there is no account. CPU
/// heavy: the server runs it off its async workers.
pub fn verify_password(phc: Option<&str>, attempt: &str) -> bool {
    match phc {
        Some(phc) => password::verify(attempt, phc),
        None => {
            let _ = password::verify(attempt, &DUMMY_HASH);
            false
        }
    }
}

/// Signs a person in. `verify` runs [`verify_password`] somewhere it may block, or answers
/// [`Verification::Busy`] when it cannot within its bounds.
pub async fn sign_in<F, Fut>(
    store: &dyn Store,
    tenant: &TenantId,
    attempt: Attempt<'_>,
    now: i64,
    verify: F,
) -> Result<Outcome>
where
    F: FnOnce(Check) -> Fut,
    Fut: Future<Output = Result<Verification>>,
{
    let normalized = attempt.username.trim().to_lowercase();
    let account_key = format!("user:{}", normalized.chars().take(64).collect::<String>());
    let address_key = attempt.ip.map(|ip| format!("ip:{ip}"));
    let mut limits = vec![LoginLimit {
        key: &account_key,
        free: ACCOUNT_FREE_FAILURES,
    }];
    if let Some(key) = &address_key {
        limits.push(LoginLimit {
            key,
            free: ADDRESS_FREE_FAILURES,
        });
    }
    // Counted before the check, atomically with the decision: see the module comment.
    if let LoginAttempt::Throttled { retry_after } = store.count_login_attempt(tenant, &limits, now).await? {
        return Ok(Outcome::Throttled { retry_after });
    }
    let user = match Username::normalize(&normalized) {
        Ok(name) => store
            .get_user(tenant, name.as_str())
            .await?
            .filter(|u| u.username == name),
        Err(_) => None,
    };
    // A disabled account or one without a password is checked against the dummy hash, so it
    // answers like an unknown one.
    let phc = user
        .as_ref()
        .filter(|u| !u.disabled)
        .and_then(|u| u.password_hash.clone());
    let has_phc = phc.is_some();
    let check = Check {
        account: account_key.clone(),
        phc,
        password: attempt.password,
    };
    let ok = match verify(check).await? {
        Verification::Checked(ok) => ok && has_phc,
        Verification::Busy => {
            // Not checked, so not a failure: a flood of other sign-ins must not use up this
            // account's free failures.
            for limit in &limits {
                store.uncount_login_attempt(tenant, limit.key).await?;
            }
            return Ok(Outcome::Busy {
                retry_after: BUSY_RETRY_AFTER,
            });
        }
    };
    match user {
        Some(user) if ok => {
            store.clear_login_failures(tenant, &account_key).await?;
            // The address keeps its real failures only: people behind one NAT who sign in
            // successfully do not use up its allowance.
            if let Some(key) = &address_key {
                store.uncount_login_attempt(tenant, key).await?;
            }
            Ok(Outcome::SignedIn(Box::new(user)))
        }
        // The failure is already counted.
        user => Ok(Outcome::Refused {
            user_id: user.map(|u| u.id),
        }),
    }
}

/// A new browser session for `user`: the cookie secret (the browser's only copy) and the
/// record to store. A fresh secret at every sign-in is what prevents session fixation.
pub fn new_session(
    user: &User,
    amr: &[&str],
    user_agent: Option<&str>,
    ip: Option<&str>,
    ttl: i64,
    now: i64,
) -> (String, BrowserSession) {
    let secret = B64.encode(crate::crypto::random_bytes::<32>());
    let session = BrowserSession {
        tenant_id: user.tenant_id.clone(),
        id: B64.encode(crate::crypto::random_bytes::<12>()),
        secret_hash: session_hash(&secret),
        user_id: user.id.clone(),
        auth_time: now,
        amr: amr.iter().map(|s| s.to_string()).collect(),
        user_agent: user_agent.map(|ua| ua.chars().take(256).collect()),
        ip: ip.map(str::to_owned),
        created_at: now,
        expires_at: now + ttl,
    };
    (secret, session)
}

/// The stored form of a session cookie.
pub fn session_hash(secret: &str) -> [u8; 32] {
    hash_secret(secret.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_after_the_free_failures_and_are_capped() {
        let f = |count| LoginFailures {
            count,
            last_failed_at: 1000,
        };
        assert_eq!(delay_after(&f(2), 3), 0);
        assert_eq!(delay_after(&f(3), 3), 2);
        assert_eq!(delay_after(&f(4), 3), 4);
        assert_eq!(delay_after(&f(8), 3), 64);
        assert_eq!(delay_after(&f(60), 3), MAX_DELAY);
        assert_eq!(retry_after(Some(f(5)), 3, 1001), 7);
        assert_eq!(retry_after(Some(f(5)), 3, 1008), 0);
        assert_eq!(retry_after(Some(f(50)), 3, 1000 + FAILURE_WINDOW), 0);
        assert_eq!(retry_after(None, 3, 0), 0);
    }

    #[test]
    fn unknown_accounts_cost_a_real_verification() {
        let real = password::hash("correct horse").unwrap();
        let _ = verify_password(None, "warm up the dummy hash");
        // The fastest of a few runs, so that a busy machine does not decide the comparison.
        let fastest = |phc: Option<&str>| {
            (0..3)
                .map(|_| {
                    let t = std::time::Instant::now();
                    assert!(!verify_password(phc, "wrong"));
                    t.elapsed()
                })
                .min()
                .unwrap()
        };
        let unknown = fastest(None);
        let wrong = fastest(Some(&real));
        // Same parameters, same work.
        assert!(
            unknown * 2 > wrong && wrong * 2 > unknown,
            "unknown {unknown:?} vs wrong {wrong:?}"
        );
    }
}
