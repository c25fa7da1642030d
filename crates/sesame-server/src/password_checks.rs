//! The bound on password checks: Argon2id needs 19 MiB for each check while it runs, so the
//! number running at once decides the server's peak memory. At most `limit` checks run at once
//! (default twice the CPU cores: more would only queue for the cores), at most one per account;
//! a sign-in that cannot start its check within [`MAX_WAIT`] is answered "busy" instead of
//! queueing without end. Peak memory is therefore about `limit` × 19 MiB above the server's
//! baseline, however many sign-ins arrive (see ARCHITECTURE.md).
//!
//! Freed memory must go back to the system too. glibc raises its mmap threshold to the size of
//! the first large block freed, after which 19 MiB blocks come from (and stay in) the arenas:
//! measured, 20 checks 2 at a time left the server at 320–380 MB, growing about 19 MB per check
//! into 6 arenas. [`PasswordChecks::new`] therefore fixes the threshold at 4 MiB, so that every
//! block above it is its own mapping, unmapped when freed. The checks run on `limit` threads
//! of their own rather than tokio's blocking pool, which starts a thread whenever none is idle
//! at that instant.
//!
//! The core's `login::sign_in` takes the check as a closure; [`PasswordChecks::verify`] is the
//! server's, so the core knows nothing of tokio.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use sesame_core::login::{self, Check, Verification};
use sesame_core::{Error, Result};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Mutex as AsyncMutex, Semaphore};
use tokio::time::{timeout_at, Instant};

/// The longest a sign-in waits for its turn to check a password.
pub const MAX_WAIT: Duration = Duration::from_secs(2);

/// The metrics of password checks (registered by `Metrics`).
#[derive(Clone, Default)]
pub struct CheckMetrics {
    /// Checks run (Argon2 verifications, of real or dummy hashes).
    pub total: Counter,
    /// Checks running now.
    pub running: Gauge,
    /// The most that ever ran at once since start.
    pub running_max: Gauge,
    /// Sign-ins answered "busy" because no check could start within [`MAX_WAIT`].
    pub busy: Counter,
}

type Job = Box<dyn FnOnce() + Send>;
/// Each account's turn to be checked, by `tenant/user:…`.
type AccountLocks = Arc<Mutex<HashMap<String, Arc<AsyncMutex<()>>>>>;

pub struct PasswordChecks {
    permits: Arc<Semaphore>,
    /// To the `limit` check threads; they end when this is dropped. A job is sent only with a
    /// permit, so one of them is always free for it.
    jobs: Mutex<std::sync::mpsc::Sender<Job>>,
    /// One lock per account with a check running or waiting; an entry goes when its last user
    /// does, so the map holds only accounts being signed in to now.
    accounts: AccountLocks,
    metrics: CheckMetrics,
}

impl PasswordChecks {
    /// `limit` checks at once; `None` for twice the CPU cores.
    pub fn new(limit: Option<usize>, metrics: CheckMetrics) -> PasswordChecks {
        let limit = limit
            .unwrap_or_else(|| {
                2 * std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
            })
            .max(1);
        return_large_blocks_to_the_system();
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..limit {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("password-check-{i}"))
                .spawn(move || loop {
                    let job = queue.lock().expect("check queue").recv();
                    match job {
                        Ok(job) => job(),
                        Err(_) => return,
                    }
                })
                .expect("starting a password check thread");
        }
        PasswordChecks {
            permits: Arc::new(Semaphore::new(limit)),
            jobs: Mutex::new(jobs),
            accounts: Arc::default(),
            metrics,
        }
    }

    /// Runs `check` on a check thread once both its account's turn and a permit are had,
    /// or answers `Busy` after [`MAX_WAIT`]. `scope` (the tenant) keeps equal account keys
    /// of different tenants apart.
    pub async fn verify(&self, scope: &str, check: Check) -> Result<Verification> {
        let deadline = Instant::now() + MAX_WAIT;
        let account = AccountTurn::new(&self.accounts, format!("{scope}/{}", check.account));
        let Ok(turn) = timeout_at(deadline, account.lock.clone().lock_owned()).await else {
            self.metrics.busy.inc();
            return Ok(Verification::Busy);
        };
        let Ok(permit) = timeout_at(deadline, self.permits.clone().acquire_owned()).await else {
            self.metrics.busy.inc();
            return Ok(Verification::Busy);
        };
        let permit = permit.map_err(|e| Error::Internal(format!("password check permits: {e}")))?;
        let metrics = self.metrics.clone();
        let (answer, answered) = tokio::sync::oneshot::channel();
        // The permit and the account's turn go into the job and are released when the check
        // ends, not when this request does: a client that hangs up does not free a permit while
        // Argon2 still holds its memory.
        let job: Job = Box::new(move || {
            let running = metrics.running.inc() + 1;
            metrics.running_max.inner().fetch_max(running, Ordering::Relaxed);
            metrics.total.inc();
            let ok = login::verify_password(check.phc.as_deref(), &check.password);
            metrics.running.dec();
            drop((permit, turn, account));
            let _ = answer.send(ok);
        });
        let sent = self.jobs.lock().expect("check queue").send(job);
        sent.map_err(|_| Error::Internal("the password check threads have stopped".into()))?;
        answered
            .await
            .map(Verification::Checked)
            .map_err(|_| Error::Internal("a password check ended without an answer".into()))
    }
}

/// Blocks of 4 MiB and more (Argon2's 19 MiB) are mapped for themselves and unmapped when
/// freed: a fixed threshold turns off glibc's dynamic one (mallopt(3)). Process-wide, idempotent.
fn return_large_blocks_to_the_system() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; it is thread-safe in glibc.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 4 << 20);
    }
}

/// A share of one account's lock; the map entry goes with the last share.
struct AccountTurn {
    accounts: AccountLocks,
    key: String,
    lock: Arc<AsyncMutex<()>>,
}

impl AccountTurn {
    fn new(accounts: &AccountLocks, key: String) -> AccountTurn {
        let lock = accounts
            .lock()
            .expect("account locks")
            .entry(key.clone())
            .or_default()
            .clone();
        AccountTurn {
            accounts: accounts.clone(),
            key,
            lock,
        }
    }
}

impl Drop for AccountTurn {
    fn drop(&mut self) {
        let mut map = self.accounts.lock().expect("account locks");
        // Shares are taken under the map's lock, so the count cannot grow meanwhile: two
        // means the map's and this one, the last.
        if Arc::strong_count(&self.lock) == 2 {
            map.remove(&self.key);
        }
    }
}
