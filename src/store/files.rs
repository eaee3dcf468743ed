//! The files of one database: the `.db` itself and the ones SQLite keeps beside it
//! (`-wal`, `-shm`, `-journal`), which file a path names (device and inode), and who may
//! read them. No SQL here: only paths and `stat`.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The suffixes of the files SQLite keeps beside a database. Writing over any of them
/// while the database is in use loses or corrupts committed data.
pub const SIBLING_SUFFIXES: [&str; 3] = ["-wal", "-shm", "-journal"];

/// Which file a path named when it was looked at: its device and inode. Two paths, or one
/// path at two moments, name the same file exactly when their `FileId`s are equal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileId {
    dev: u64,
    ino: u64,
}

impl FileId {
    /// The file `path` names now (following symlinks, as SQLite does).
    pub fn of(path: &Path) -> std::io::Result<FileId> {
        let metadata = std::fs::metadata(path)?;
        Ok(FileId {
            dev: metadata.dev(),
            ino: metadata.ino(),
        })
    }
}

/// The lock that tells `restore` a server is using the database: every `serve` holds a
/// shared `flock(2)` on `<db>.lock` for as long as it runs, and `restore` takes it
/// exclusively. The kernel drops it when the process ends, even by SIGKILL, so a crashed
/// server never leaves a stale lock behind. (SQLite's own locks live on files that
/// `restore` moves aside, and are held only while a transaction runs.)
pub struct DatabaseLock {
    _file: std::fs::File,
}

/// Why a [`DatabaseLock`] could not be taken.
#[derive(Debug)]
pub enum LockError {
    /// Another process holds a conflicting lock.
    Held,
    Io(std::io::Error),
}

impl DatabaseLock {
    /// The shared lock a running server holds; several servers may share it.
    pub fn shared(db: &Path) -> Result<DatabaseLock, LockError> {
        DatabaseLock::take(db, libc::LOCK_SH)
    }

    /// The exclusive lock `restore` holds while it swaps the files.
    pub fn exclusive(db: &Path) -> Result<DatabaseLock, LockError> {
        DatabaseLock::take(db, libc::LOCK_EX)
    }

    fn take(db: &Path, kind: libc::c_int) -> Result<DatabaseLock, LockError> {
        use std::os::fd::AsRawFd;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(with_suffix(db, ".lock"))
            .map_err(LockError::Io)?;
        // SAFETY: flock(2) on a descriptor this function owns.
        if unsafe { libc::flock(file.as_raw_fd(), kind | libc::LOCK_NB) } != 0 {
            let error = std::io::Error::last_os_error();
            return Err(match error.raw_os_error() {
                Some(libc::EWOULDBLOCK) => LockError::Held,
                _ => LockError::Io(error),
            });
        }
        Ok(DatabaseLock { _file: file })
    }
}

/// `path` + `suffix`, e.g. `oauthd.db` → `oauthd.db-wal`.
pub fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Whether `candidate` is the live database `db` or one of its SQLite siblings, comparing
/// resolved paths, so `./x/../oauthd.db-wal` or a symlink to it also count. A candidate
/// that does not exist yet is resolved through its directory.
pub fn is_database_or_sibling(db: &Path, candidate: &Path) -> bool {
    let (Some(db), Some(candidate)) = (resolve(db), resolve(candidate)) else {
        return false;
    };
    candidate == db
        || SIBLING_SUFFIXES
            .iter()
            .any(|suffix| candidate == with_suffix(&db, suffix))
}

/// The absolute, symlink-free form of `path`; for a path that does not exist, its
/// directory's resolved form joined with its file name.
fn resolve(path: &Path) -> Option<PathBuf> {
    if let Ok(resolved) = path.canonicalize() {
        return Some(resolved);
    }
    let name = path.file_name()?;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    Some(dir.canonicalize().ok()?.join(name))
}

/// Logs a warning when the database file may be read by its group or by everyone: it
/// holds email addresses and password hashes. `serve` and `check` call this.
pub fn warn_if_readable_by_others(db: &Path) {
    if let Some(warning) = readable_by_others(db) {
        tracing::warn!("{warning}");
    }
}

fn readable_by_others(db: &Path) -> Option<String> {
    let mode = std::fs::metadata(db).ok()?.mode() & 0o777;
    (mode & 0o077 != 0).then(|| {
        format!(
            "{}: the database is readable by other users (mode {mode:03o}); it holds email \
             addresses and password hashes, so restrict it: chmod 600 {0}",
            db.display()
        )
    })
}

/// Makes every file this process creates from now on private to its owner (0600): the
/// database, its `-wal` and `-shm` (SQLite creates them with the database's mode, masked
/// by the umask), backups and restored copies. Called once at start, before any file is
/// created.
pub fn create_private_files() {
    // SAFETY: umask(2) cannot fail and only changes this process's file creation mask.
    unsafe {
        libc::umask(0o077);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn siblings_of_the_database_are_recognised_however_spelled() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("oauthd.db");
        std::fs::write(&db, b"").expect("write");
        std::fs::create_dir(dir.path().join("sub")).expect("mkdir");
        for same in [
            "oauthd.db",
            "oauthd.db-wal",
            "oauthd.db-shm",
            "sub/../oauthd.db-journal",
        ] {
            assert!(
                is_database_or_sibling(&db, &dir.path().join(same)),
                "{same}"
            );
        }
        for other in [
            "oauthd.db-x",
            "oauthd.dbwal",
            "sub/oauthd.db-wal",
            "copy.db",
        ] {
            assert!(
                !is_database_or_sibling(&db, &dir.path().join(other)),
                "{other}"
            );
        }
    }

    #[test]
    fn a_shared_lock_keeps_the_exclusive_one_out() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("oauthd.db");
        let server = DatabaseLock::shared(&db).expect("shared");
        let second = DatabaseLock::shared(&db).expect("a second server may share it");
        assert!(matches!(DatabaseLock::exclusive(&db), Err(LockError::Held)));
        drop((server, second));
        let restore = DatabaseLock::exclusive(&db).expect("exclusive once free");
        assert!(matches!(DatabaseLock::shared(&db), Err(LockError::Held)));
        drop(restore);
    }

    #[test]
    fn file_id_tells_a_replaced_file_apart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a");
        std::fs::write(&path, b"1").expect("write");
        let before = FileId::of(&path).expect("stat");
        assert_eq!(FileId::of(&path).expect("stat"), before);
        let other = dir.path().join("b");
        std::fs::write(&other, b"2").expect("write");
        std::fs::rename(&other, &path).expect("rename");
        assert_ne!(FileId::of(&path).expect("stat"), before);
    }
}
