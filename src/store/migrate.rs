//! Schema creation and forward migrations, and the check that refuses files that are not
//! ours. The whole current schema lives in `schema.sql`; a database created by an older
//! binary is brought forward by the numbered steps in [`MIGRATIONS`], each in one
//! transaction together with its `PRAGMA user_version` bump.

use std::io::Read;
use std::path::Path;

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use super::StoreError;

/// The schema version this binary writes and understands.
pub const SCHEMA_VERSION: i64 = 1;

/// The whole schema, applied to an empty database.
const SCHEMA_SQL: &str = include_str!("../../schema.sql");

/// Steps from version N-1 to N, for N in 2..=SCHEMA_VERSION. Empty while there is only v1.
const MIGRATIONS: &[(i64, &str)] = &[];

/// Refuses a path that is a directory, a non-SQLite file, an SQLite file of another
/// application, or an oauthd database newer than this binary. It opens existing files
/// read-only, so a refused file is left byte-for-byte unchanged.
pub fn refuse_foreign_file(path: &Path) -> Result<(), StoreError> {
    let open_error = |cause: String| StoreError::Open {
        path: path.to_owned(),
        cause,
    };
    let metadata = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(open_error(e.to_string())),
    };
    if metadata.is_dir() {
        return Err(StoreError::IsDirectory(path.to_owned()));
    }
    if metadata.len() == 0 {
        return Ok(());
    }
    let mut header = [0u8; 16];
    let mut file = std::fs::File::open(path).map_err(|e| {
        super::diagnose::access_problem(path).unwrap_or_else(|| open_error(e.to_string()))
    })?;
    if file.read_exact(&mut header).is_err() || &header != b"SQLite format 3\0" {
        return Err(StoreError::NotSqlite(path.to_owned()));
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| super::diagnose::diagnose(path, &e))?;
    let inspect = || -> rusqlite::Result<(Option<String>, i64, i64)> {
        let has_meta: i64 = conn.query_row(
            "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'oauthd_meta'",
            [],
            |r| r.get(0),
        )?;
        let application = if has_meta > 0 {
            conn.query_row(
                "SELECT value FROM oauthd_meta WHERE key = 'application'",
                [],
                |r| r.get(0),
            )
            .optional()?
        } else {
            None
        };
        let objects: i64 =
            conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))?;
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        Ok((application, objects, version))
    };
    // Why the schema cannot be read matters: a WAL database in a directory this user may
    // not write fails here too, and must not be called "not a database".
    let (application, objects, version) =
        inspect().map_err(|e| super::diagnose::diagnose(path, &e))?;
    match application.as_deref() {
        Some("oauthd") if version > SCHEMA_VERSION => Err(StoreError::TooNew {
            path: path.to_owned(),
            found: version,
            known: SCHEMA_VERSION,
        }),
        Some("oauthd") => Ok(()),
        _ if objects == 0 && version == 0 => Ok(()),
        _ => Err(StoreError::Foreign(path.to_owned())),
    }
}

/// Switches the file to WAL and brings the schema to [`SCHEMA_VERSION`]. Safe to race:
/// the version is read and bumped inside one IMMEDIATE transaction.
pub fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Open {
            path: path.to_owned(),
            cause: format!("could not switch to WAL (journal_mode is {mode})"),
        });
    }
    let tx = super::write_tx(conn)?;
    let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::TooNew {
            path: path.to_owned(),
            found: version,
            known: SCHEMA_VERSION,
        });
    }
    if version == 0 {
        tx.execute_batch(SCHEMA_SQL)?;
    } else {
        for (to, sql) in MIGRATIONS.iter().filter(|(to, _)| *to > version) {
            tracing::info!(to, "migrating database schema");
            tx.execute_batch(sql)?;
        }
    }
    if version != SCHEMA_VERSION {
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    }
    tx.commit()?;
    Ok(())
}
