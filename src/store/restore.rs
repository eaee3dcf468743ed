//! `oauthd restore BACKUP`: putting a backup in place of the database safely. Copying a
//! backup over the `.db` by hand corrupts it when a stale `-wal` from a crashed server
//! sits beside it (SQLite applies that WAL to the copy). Here the old `.db`, `-wal`,
//! `-shm` and `-journal` are moved aside (kept, never deleted), and the copy is checked
//! before it is put in place.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

use super::files::{self, DatabaseLock, LockError};
use super::{maintenance, migrate, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("{0}: a server is running on this database (it holds {0}.lock); stop it first")]
    ServerRunning(PathBuf),
    #[error("{0}: is the database itself; name a backup file")]
    SameFile(PathBuf),
    #[error("backup {path}: {cause}")]
    Backup { path: PathBuf, cause: String },
    #[error("{path}: {cause}")]
    Io { path: PathBuf, cause: String },
}

/// What a restore did: the files it moved aside.
pub struct Restored {
    pub moved_aside: Vec<PathBuf>,
}

/// Replaces the database at `db` with a checked copy of `backup`.
pub fn restore(db: &Path, backup: &Path) -> Result<Restored, RestoreError> {
    if files::is_database_or_sibling(db, backup) {
        return Err(RestoreError::SameFile(backup.to_owned()));
    }
    // Held until the copy is in place: no server may start meanwhile.
    let _lock = DatabaseLock::exclusive(db).map_err(|e| match e {
        LockError::Held => RestoreError::ServerRunning(db.to_owned()),
        LockError::Io(e) => io_error(&files::with_suffix(db, ".lock"), &e),
    })?;
    // The backup itself is only read; the checks run on the copy, so not even a `-shm`
    // appears beside the backup.
    let copy = files::with_suffix(db, &format!(".restoring-{}", std::process::id()));
    let placed = place_checked_copy(db, backup, &copy);
    if placed.is_err() {
        remove_with_siblings(&copy);
    }
    placed
}

fn place_checked_copy(db: &Path, backup: &Path, copy: &Path) -> Result<Restored, RestoreError> {
    let backup_error = |cause: String| RestoreError::Backup {
        path: backup.to_owned(),
        cause,
    };
    std::fs::copy(backup, copy).map_err(|e| backup_error(e.to_string()))?;
    check_copy(copy).map_err(backup_error)?;
    std::fs::File::open(copy)
        .and_then(|f| f.sync_all())
        .map_err(|e| io_error(copy, &e))?;
    let moved_aside = move_aside(db)?;
    std::fs::rename(copy, db).map_err(|e| io_error(db, &e))?;
    sync_directory(db);
    Ok(Restored { moved_aside })
}

/// Refuses a copy that is not an oauthd database or fails SQLite's integrity check.
/// Opening it as `journal_mode = DELETE` and closing it leaves one self-contained file.
fn check_copy(copy: &Path) -> Result<(), String> {
    migrate::refuse_foreign_file(copy).map_err(|e| match e {
        StoreError::NotSqlite(_) => "not an SQLite database; nothing was changed".to_owned(),
        StoreError::Foreign(_) => "not an oauthd database; nothing was changed".to_owned(),
        StoreError::TooNew { found, known, .. } => format!(
            "written by a newer oauthd (schema version {found}, this binary knows up to {known}); nothing was changed"
        ),
        other => other.to_string(),
    })?;
    let conn = Connection::open_with_flags(
        copy,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| e.to_string())?;
    let problems = maintenance::integrity_problems(&conn).map_err(|e| e.to_string())?;
    if let Some(first) = problems.first() {
        return Err(format!(
            "integrity check failed ({} problem(s)), first: {first}; nothing was changed",
            problems.len()
        ));
    }
    conn.query_row("PRAGMA journal_mode = DELETE", [], |_| Ok(()))
        .map_err(|e| e.to_string())?;
    conn.close().map_err(|(_, e)| e.to_string())
}

/// Renames the database and each of its siblings that exists to
/// `<name>.before-restore-<UTC time>`; returns the new names.
fn move_aside(db: &Path) -> Result<Vec<PathBuf>, RestoreError> {
    let stamp = super::iso8601(super::now()).replace([':', '-'], "");
    let mut moved = Vec::new();
    let siblings = files::SIBLING_SUFFIXES
        .iter()
        .map(|s| files::with_suffix(db, s));
    for path in std::iter::once(db.to_owned()).chain(siblings) {
        if std::fs::symlink_metadata(&path).is_err() {
            continue;
        }
        let aside = unused_name(&files::with_suffix(
            &path,
            &format!(".before-restore-{stamp}"),
        ));
        std::fs::rename(&path, &aside).map_err(|e| io_error(&path, &e))?;
        moved.push(aside);
    }
    Ok(moved)
}

/// `path`, or `path-2`, `path-3`… when it exists (two restores within one second).
fn unused_name(path: &Path) -> PathBuf {
    let mut candidate = path.to_owned();
    let mut n = 2;
    while std::fs::symlink_metadata(&candidate).is_ok() {
        candidate = files::with_suffix(path, &format!("-{n}"));
        n += 1;
    }
    candidate
}

fn remove_with_siblings(path: &Path) {
    let _ = std::fs::remove_file(path);
    for suffix in files::SIBLING_SUFFIXES {
        let _ = std::fs::remove_file(files::with_suffix(path, suffix));
    }
}

/// Makes the renames durable; a filesystem that cannot fsync a directory still has them.
fn sync_directory(db: &Path) {
    if let Some(dir) = db.parent().filter(|d| !d.as_os_str().is_empty()) {
        let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
    }
}

fn io_error(path: &Path, e: &std::io::Error) -> RestoreError {
    RestoreError::Io {
        path: path.to_owned(),
        cause: e.to_string(),
    }
}
