//! Server processes under test: pinning, spawning, readiness, memory, and stopping.
//!
//! Every server is held by a [`ServerProcess`], which stops it when dropped (normal end, error,
//! panic, or ctrl-c, which drops the future that owns it). The child is also asked by the
//! kernel to die with the bench (`PR_SET_PDEATHSIG`), for the cases where Drop cannot run.

use crate::load::{self, Template};
use std::fs::File;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How the processes are placed on the CPUs.
#[derive(Clone)]
pub enum Pinning {
    /// The bench runs on CPU 1 and the servers on CPU 0.
    Pinned,
    /// No pinning; the reason is in the string.
    Unpinned(String),
}

impl Pinning {
    pub fn describe(&self) -> String {
        match self {
            Pinning::Pinned => {
                "bench (load generator, raw signing) on CPU 1, servers on CPU 0 (taskset)".into()
            }
            Pinning::Unpinned(why) => {
                format!("NOT PINNED ({why}): bench and servers share all CPUs")
            }
        }
    }
}

/// Pins this process to CPU 1. Must run before any thread exists, so that every later thread
/// (and nothing else) inherits the mask.
pub fn pin_self() -> Pinning {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cpus < 2 {
        return Pinning::Unpinned(format!("only {cpus} CPU available"));
    }
    let pid = std::process::id().to_string();
    match Command::new("taskset")
        .args(["-pc", "1", &pid])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
    {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Pinning::Unpinned("taskset not found".into()),
        Err(e) => Pinning::Unpinned(format!("taskset: {e}")),
        Ok(out) if !out.status.success() => Pinning::Unpinned(format!(
            "taskset -pc 1 failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Ok(_) => Pinning::Pinned,
    }
}

/// A loopback port free at the time of asking.
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

pub struct ServerProcess {
    pub name: &'static str,
    pub pid: u32,
    pub addr: SocketAddr,
    child: Child,
    log: std::path::PathBuf,
    stopped: bool,
}

impl ServerProcess {
    /// Starts `program args…` (through `taskset -c 0` when pinned), output to `log`.
    pub fn spawn(
        name: &'static str,
        program: &Path,
        args: &[String],
        env: &[(&str, &str)],
        addr: SocketAddr,
        pinning: &Pinning,
        log: &Path,
    ) -> Result<ServerProcess, String> {
        let mut cmd = match pinning {
            Pinning::Pinned => {
                let mut c = Command::new("taskset");
                c.args(["-c", "0"]).arg(program);
                c
            }
            Pinning::Unpinned(_) => Command::new(program),
        };
        cmd.args(args);
        // SESAME_* variables of the caller would change the server under test (store, listen…).
        for (k, _) in std::env::vars_os() {
            if k.to_str().is_some_and(|k| k.starts_with("SESAME_")) {
                cmd.env_remove(k);
            }
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = File::create(log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| format!("{}: {e}", log.display()))?;
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", program.display()))?;
        Ok(ServerProcess {
            name,
            pid: child.id(),
            addr,
            child,
            log: log.to_owned(),
            stopped: false,
        })
    }

    /// The last lines the server wrote, for error messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    /// Polls `GET /readyz` until it answers 200; returns the time from `spawned_at`.
    pub async fn wait_ready(&mut self, spawned_at: Instant, limit: Duration) -> Result<Duration, String> {
        let probe = Template::get(self.addr, "/readyz");
        loop {
            if let Ok((status, _)) = load::once(self.addr, &probe).await {
                if status.is_success() {
                    return Ok(spawned_at.elapsed());
                }
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                self.stopped = true;
                return Err(format!(
                    "{} exited ({status}) before it was ready:\n{}",
                    self.name,
                    self.log_tail()
                ));
            }
            if spawned_at.elapsed() > limit {
                return Err(format!(
                    "{} was not ready after {limit:?}:\n{}",
                    self.name,
                    self.log_tail()
                ));
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// A `/proc/PID/status` field in kB (VmRSS, VmHWM, …).
    pub fn status_kb(&self, field: &str) -> Option<u64> {
        proc_status(self.pid, field)?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    }

    pub fn cpus_allowed(&self) -> Option<String> {
        proc_status(self.pid, "Cpus_allowed_list")
    }

    pub fn threads(&self) -> Option<String> {
        proc_status(self.pid, "Threads")
    }

    /// SIGTERM, up to 3 s for a graceful stop, then SIGKILL. Idempotent.
    pub fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        // SAFETY: kill(2) on our own child's pid, which is not reaped yet, so not reused.
        unsafe {
            libc::kill(self.pid as libc::pid_t, libc::SIGTERM);
        }
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(3) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

fn proc_status(pid: u32, field: &str) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| {
        l.strip_prefix(field)?
            .strip_prefix(':')
            .map(|v| v.trim().to_owned())
    })
}
