//! Turning SQLite's terse open and write errors into what is actually wrong with the file:
//! permission denied, read-only, busy, corrupt. SQLite reports a WAL database in a
//! read-only directory as "unable to open" or even "not a database"; the operator needs
//! to hear which file or directory to fix.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rusqlite::ErrorCode;

use super::StoreError;

/// The `StoreError` that names what went wrong when SQLite failed with `error` on `path`.
pub fn diagnose(path: &Path, error: &rusqlite::Error) -> StoreError {
    let cause = error.to_string();
    match error.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
            StoreError::Busy(path.to_owned())
        }
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => StoreError::Corrupt {
            path: path.to_owned(),
            cause,
        },
        Some(ErrorCode::DiskFull) => StoreError::Open {
            path: path.to_owned(),
            cause: "the disk is full".into(),
        },
        _ => access_problem(path).unwrap_or(StoreError::Open {
            path: path.to_owned(),
            cause,
        }),
    }
}

/// Why this process cannot use the file at `path` as SQLite needs (read and write it, and
/// create `-wal` and `-shm` beside it), when the permissions or the mount say so.
pub fn access_problem(path: &Path) -> Option<StoreError> {
    let dir = directory_of(path);
    let read_only = |why: String| StoreError::ReadOnly {
        path: path.to_owned(),
        why,
    };
    let denied = |why: String| StoreError::PermissionDenied {
        path: path.to_owned(),
        why,
    };
    if !dir.is_dir() {
        return Some(StoreError::Open {
            path: path.to_owned(),
            cause: format!("the directory {} does not exist", dir.display()),
        });
    }
    if read_only_mount(path) {
        return Some(read_only(format!(
            "the filesystem holding {} is mounted read-only",
            dir.display()
        )));
    }
    if path.exists() {
        if !may_access(path, libc::R_OK) {
            return Some(denied("this user may not read the database file".into()));
        }
        if !may_access(path, libc::W_OK) {
            return Some(read_only(
                "the database file is not writable by this user (check its mode and owner)".into(),
            ));
        }
    }
    if !may_access(dir, libc::W_OK | libc::X_OK) {
        return Some(denied(format!(
            "this user may not create files in {}, where SQLite keeps the database's \
             -wal and -shm files",
            dir.display()
        )));
    }
    None
}

/// Whether this process (with its real user, as `access(2)` checks) may access `path` as
/// `mode` says (`libc::R_OK`, `W_OK`, `X_OK`).
pub fn may_access(path: &Path, mode: libc::c_int) -> bool {
    let Ok(c_path) = CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: `c_path` is a valid NUL-terminated string.
    unsafe { libc::access(c_path.as_ptr(), mode) == 0 }
}

/// Whether the filesystem holding `path` (or its directory, when the file is absent) is
/// mounted read-only.
pub fn read_only_mount(path: &Path) -> bool {
    let target = if path.exists() {
        path
    } else {
        directory_of(path)
    };
    let Ok(c_path) = CString::new(target.as_os_str().as_bytes()) else {
        return false;
    };
    let mut stats: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c_path` is a valid NUL-terminated string and `stats` a writable statvfs.
    if unsafe { libc::statvfs(c_path.as_ptr(), &mut stats) } != 0 {
        return false;
    }
    stats.f_flag & libc::ST_RDONLY != 0
}

fn directory_of(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(code: i32) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None)
    }

    #[test]
    fn busy_and_corrupt_are_named() {
        let path = Path::new("/nonexistent/oauthd.db");
        assert!(matches!(
            diagnose(path, &failure(rusqlite::ffi::SQLITE_BUSY)),
            StoreError::Busy(_)
        ));
        assert!(matches!(
            diagnose(path, &failure(rusqlite::ffi::SQLITE_CORRUPT)),
            StoreError::Corrupt { .. }
        ));
        assert!(matches!(
            diagnose(path, &failure(rusqlite::ffi::SQLITE_NOTADB)),
            StoreError::Corrupt { .. }
        ));
    }

    #[test]
    fn a_writable_temp_dir_has_no_access_problem() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x.db");
        assert!(access_problem(&path).is_none());
        std::fs::write(&path, b"").expect("write");
        assert!(access_problem(&path).is_none());
    }
}
