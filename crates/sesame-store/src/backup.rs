//! Backups of the embedded store: `VACUUM INTO`, a consistent snapshot taken while sesamed runs
//! (WAL readers do not wait for the writer), into a new file readable by its owner only.
//! PostgreSQL stores are backed up with PostgreSQL's own tools (`pg_dump`).

use std::path::Path;

/// Writes a consistent copy of the SQLite database `db` to `out`, which must not exist.
pub fn sqlite_backup(db: &Path, out: &Path) -> Result<(), String> {
    if !db.is_file() {
        return Err(format!("{} is not an SQLite store (no such file)", db.display()));
    }
    // Created empty and owner-only first: VACUUM INTO accepts an empty file and keeps its mode.
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    opts.open(out)
        .map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let result = (|| {
        let conn = rusqlite::Connection::open_with_flags(
            db,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| format!("cannot open {}: {e}", db.display()))?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(|e| e.to_string())?;
        let target = out
            .to_str()
            .ok_or_else(|| format!("{} is not a UTF-8 path", out.display()))?;
        conn.execute("VACUUM INTO ?1", [target])
            .map_err(|e| format!("backup of {} failed: {e}", db.display()))?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(out);
    }
    result
}
