//! One `sesamed` per SQLite store: an exclusive `flock` on `sesamed.lock` beside the database,
//! held for the life of the process. SQLite itself would let a second process open the file,
//! and two servers on one embedded store would each keep a cache the other never invalidates
//! and each run the sweeps. (PostgreSQL is meant for many replicas and takes no lock.)

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// The lock file's name, in the directory of the SQLite database.
pub const LOCK_FILE: &str = "sesamed.lock";

/// Held while the server runs; the lock goes with the file descriptor (also when the process
/// dies, so a crash never leaves a stale lock behind).
#[derive(Debug)]
pub struct StoreLock {
    _file: File,
    pub path: PathBuf,
}

/// The database file of an SQLite store URL (`sqlite://PATH`, `sqlite:PATH`, query ignored);
/// `None` for an in-memory database.
pub fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or("");
    if path.is_empty() || path == ":memory:" {
        return None;
    }
    Some(PathBuf::from(path))
}

/// Takes the lock of the store whose database is `db`, or says which process holds it.
pub fn lock_sqlite_store(db: &Path) -> Result<StoreLock, String> {
    let dir = match db.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let path = std::path::absolute(dir.join(LOCK_FILE)).unwrap_or_else(|_| dir.join(LOCK_FILE));
    let mut opts = std::fs::OpenOptions::new();
    // Not truncated on open: the holder's pid must stay readable for the refusal's message.
    opts.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut file = opts
        .open(&path)
        .map_err(|e| format!("cannot open the store's lock file {}: {e}", path.display()))?;
    #[cfg(unix)]
    {
        use rustix::fs::{flock, FlockOperation};
        if let Err(e) = flock(&file, FlockOperation::NonBlockingLockExclusive) {
            if e == rustix::io::Errno::WOULDBLOCK {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                let holder = match text.trim().parse::<u32>() {
                    Ok(pid) => format!("another sesamed (pid {pid})"),
                    Err(_) => "another sesamed".to_owned(),
                };
                return Err(format!(
                    "{holder} is already running on the SQLite store in {} (it holds {}); \
                     stop it first, or give this one another --data-dir. Several servers on one \
                     store need PostgreSQL (see docs/production.md)",
                    dir_display(&dir),
                    path.display()
                ));
            }
            return Err(format!("cannot lock {}: {e}", path.display()));
        }
    }
    // Ours now: record our pid for the next one that tries.
    let _ = file
        .set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| writeln!(file, "{}", std::process::id()));
    Ok(StoreLock { _file: file, path })
}

fn dir_display(dir: &Path) -> String {
    std::path::absolute(dir)
        .unwrap_or_else(|_| dir.to_path_buf())
        .display()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_paths_are_found_in_store_urls() {
        assert_eq!(
            sqlite_path("sqlite:///var/lib/s/sesame.db"),
            Some("/var/lib/s/sesame.db".into())
        );
        assert_eq!(
            sqlite_path("sqlite:./d/sesame.db?mode=rwc"),
            Some("./d/sesame.db".into())
        );
        assert_eq!(sqlite_path("sqlite::memory:"), None);
        assert_eq!(sqlite_path("postgres://h/db"), None);
    }

    #[test]
    fn a_second_lock_on_one_store_is_refused_with_the_holders_pid() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("sesame.db");
        let first = lock_sqlite_store(&db).expect("first lock");
        let err = lock_sqlite_store(&db).expect_err("second lock refused");
        assert!(err.contains(&format!("pid {}", std::process::id())), "{err}");
        assert!(err.contains("--data-dir"), "{err}");
        drop(first);
        lock_sqlite_store(&db).expect("free again once the holder is gone");
    }
}
