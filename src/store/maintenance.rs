//! Whole-database maintenance: the online backup behind `oauthd backup` and the integrity
//! checks behind `oauthd check`. It reads the live database through the pool and never
//! changes it; the only file it writes is the backup copy.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::backup::{Backup, StepResult};
use rusqlite::Connection;

use super::{files, SqliteStore, StoreError};

/// How often a backup step that found the source busy or locked is retried before giving
/// up, and how long it waits between tries. WAL readers rarely see either; this only
/// covers a checkpoint or a migration holding the lock for a moment.
const BUSY_RETRIES: u32 = 200;
const BUSY_PAUSE: Duration = Duration::from_millis(50);

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{0} already exists; use --force to replace it")]
    Exists(PathBuf),
    #[error("{0} is the live database or one of its -wal, -shm or -journal files; choose another destination")]
    SameAsSource(PathBuf),
    #[error("{path}: {cause}")]
    Io { path: PathBuf, cause: String },
    #[error("the database stayed busy; backup abandoned, nothing written")]
    Busy,
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("backup failed: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

/// Copies a consistent snapshot of the live database to `dest` with SQLite's online backup.
///
/// The copy is written to a temporary file beside `dest` and renamed over it only when
/// complete, so a failed backup never leaves a half file at `dest`. All pages are copied in
/// one step: in WAL mode that step is one read transaction, which sees a single committed
/// state and does not block writers (a stepwise backup would restart on every write made
/// by another process, and might never finish under steady load).
pub fn backup_to(
    store: &SqliteStore,
    source: &Path,
    dest: &Path,
    force: bool,
) -> Result<(), BackupError> {
    refuse_destination(source, dest, force)?;
    let temp = TempFile::beside(dest)?;
    {
        let live = store.conn()?;
        let mut copy = Connection::open(&temp.path)?;
        let backup = Backup::new(&live, &mut copy)?;
        copy_all_pages(&backup)?;
    }
    sync_file(&temp.path)?;
    // Checked again just before the rename: DEST may have appeared while we copied.
    refuse_destination(source, dest, force)?;
    std::fs::rename(&temp.path, dest).map_err(|e| io_error(dest, &e))?;
    temp.disarm();
    if let Some(dir) = dest.parent().filter(|d| !d.as_os_str().is_empty()) {
        // Makes the rename itself durable; a filesystem that cannot fsync a directory still
        // has a complete copy, so failure here is not reported.
        let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
    }
    Ok(())
}

fn copy_all_pages(backup: &Backup<'_, '_>) -> Result<(), BackupError> {
    let mut retries = 0;
    loop {
        match backup.step(-1)? {
            StepResult::Done => return Ok(()),
            StepResult::More => {}
            // Busy or Locked; StepResult is non-exhaustive, so any result this code does
            // not know is retried the same way, within the same bound.
            _ => {
                retries += 1;
                if retries > BUSY_RETRIES {
                    return Err(BackupError::Busy);
                }
                std::thread::sleep(BUSY_PAUSE);
            }
        }
    }
}

fn refuse_destination(source: &Path, dest: &Path, force: bool) -> Result<(), BackupError> {
    // Refused even when absent: a copy written as `-journal` or `-wal` would be taken for
    // the live database's own journal by the next connection.
    if files::is_database_or_sibling(source, dest) {
        return Err(BackupError::SameAsSource(dest.to_owned()));
    }
    // symlink_metadata, so a dangling symlink at DEST also counts as "exists".
    if std::fs::symlink_metadata(dest).is_err() {
        return Ok(());
    }
    if !force {
        return Err(BackupError::Exists(dest.to_owned()));
    }
    if dest.is_dir() {
        return Err(BackupError::Io {
            path: dest.to_owned(),
            cause: "is a directory".into(),
        });
    }
    Ok(())
}

fn sync_file(path: &Path) -> Result<(), BackupError> {
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| io_error(path, &e))
}

fn io_error(path: &Path, e: &std::io::Error) -> BackupError {
    BackupError::Io {
        path: path.to_owned(),
        cause: e.to_string(),
    }
}

/// A temporary file next to the backup's destination (same directory, so the final rename
/// is atomic), removed with its journal on drop unless the backup completed.
struct TempFile {
    path: PathBuf,
    armed: bool,
}

impl TempFile {
    fn beside(dest: &Path) -> Result<TempFile, BackupError> {
        let name = dest.file_name().ok_or_else(|| BackupError::Io {
            path: dest.to_owned(),
            cause: "not a file name".into(),
        })?;
        let mut temp_name = std::ffi::OsString::from(".");
        temp_name.push(name);
        temp_name.push(format!(".tmp-{}", uuid::Uuid::new_v4().simple()));
        let path = dest.with_file_name(temp_name);
        // create_new: never clobber anything, and fail early if the directory is missing
        // or not writable.
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| io_error(dest, &e))?;
        Ok(TempFile { path, armed: true })
    }

    fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if self.armed {
            let _ = std::fs::remove_file(&self.path);
            let mut journal = self.path.clone().into_os_string();
            journal.push("-journal");
            let _ = std::fs::remove_file(journal);
        }
    }
}

/// Problems found by `PRAGMA integrity_check` and `PRAGMA foreign_key_check`, one line
/// each; empty when the database is sound.
pub fn integrity_problems(conn: &Connection) -> Result<Vec<String>, StoreError> {
    let mut problems: Vec<String> = conn
        .prepare("PRAGMA integrity_check")?
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .filter(|line| line != "ok")
        .collect();
    let mut stmt = conn.prepare("PRAGMA foreign_key_check")?;
    let violations = stmt.query_map([], |r| {
        let table: String = r.get(0)?;
        let rowid: Option<i64> = r.get(1)?;
        let parent: String = r.get(2)?;
        Ok(format!(
            "{table} row {} refers to a missing {parent} row",
            rowid.map_or_else(|| "?".to_owned(), |id| id.to_string())
        ))
    })?;
    for violation in violations {
        problems.push(violation?);
    }
    Ok(problems)
}
