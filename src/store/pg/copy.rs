//! `oauthd migrate --to`: copying an SQLite database into an empty PostgreSQL one.
//!
//! The target is migrated to this binary's schema first (an empty database gets it whole;
//! a foreign one is refused untouched), then every table is copied in foreign-key order
//! inside one PostgreSQL transaction, from one read snapshot of the SQLite file (a server
//! may keep running on it). Before committing, each table's row count on PostgreSQL must
//! equal the snapshot's, and the identity sequences are set past the copied ids; any
//! failure rolls the whole copy back. A target holding any oauthd row is refused unchanged.

use rusqlite::types::ValueRef;
use rusqlite::Connection;
use serde::Serialize;

use super::{PgConn, PgStore};
use crate::store::sql::postgres::OwnedValue;
use crate::store::sql::{Db, Param};
use crate::store::{users, SqliteStore, StoreError};

/// Every table, parents before children, each with the order its rows are copied in:
/// identity columns keep their values, and `signing_keys` (ordered by SQLite's rowid)
/// gets its PostgreSQL `rowid` in the same order.
const TABLES: &[(&str, &str)] = &[
    ("oauthd_meta", "key"),
    ("users", "id"),
    ("organizations", "id"),
    ("memberships", "org_id, user_id"),
    ("brands", "domain"),
    ("clients", "id"),
    ("client_redirect_uris", "client_id, position"),
    ("client_origins", "client_id, origin"),
    ("client_post_logout_uris", "client_id, uri"),
    ("grants", "id"),
    ("authorization_codes", "grant_id, code_hash"),
    ("access_tokens", "grant_id, token_hash"),
    ("refresh_tokens", "grant_id, token_hash"),
    ("audit_log", "id"),
    ("client_access_tokens", "token_hash"),
    ("device_codes", "device_code_hash"),
    ("sessions", "id_hash"),
    ("signing_keys", "rowid"),
    ("consents", "user_id, client_id"),
    ("client_attempts", "id"),
    ("disabled_user_tokens", "token_hash"),
    ("acme_accounts", "directory"),
    ("acme_certificates", "domains"),
    ("server_secrets", "name"),
    ("login_failures", "key"),
    ("acme_challenges", "kind, name"),
    ("acme_order_leases", "domains"),
];

/// Rows per `INSERT` at most (and parameters at most, well under PostgreSQL's 65535).
const ROWS_PER_INSERT: usize = 200;
const PARAMS_PER_INSERT: usize = 4000;

/// One table copied and its rows (equal on both sides).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Copied {
    pub table: &'static str,
    pub rows: i64,
}

/// Why a copy was refused or failed; nothing was written to the target in any case.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{target}: not empty ({table} has {rows} rows); `migrate --to` copies only into an empty database, and changed nothing")]
    NotEmpty {
        target: String,
        table: &'static str,
        rows: i64,
    },
    #[error("{0} accounts share an email when letter case is folded (they predate Unicode folding); PostgreSQL keeps the folded email unique: resolve them first (`oauthd check` lists them)")]
    EmailCollisions(usize),
    #[error("the SQLite database has table {0:?}, which this binary does not know how to copy")]
    UnknownTable(String),
    #[error("{table}: {source_rows} rows in the SQLite database but {target_rows} copied; nothing was committed")]
    CountMismatch {
        table: &'static str,
        source_rows: i64,
        target_rows: i64,
    },
}

/// Copies the database of `source` into the PostgreSQL database `url` names and returns
/// the rows of each table, in copy order.
pub fn copy_sqlite(source: &SqliteStore, url: &str) -> Result<Vec<Copied>, CopyError> {
    source.with_conn(|conn| {
        // One read snapshot for the whole copy; rolled back (nothing to undo) at the end.
        let snapshot = conn.transaction()?;
        Ok(copy_snapshot(&snapshot, url))
    })?
}

/// Refuses what PostgreSQL could not hold before touching the target, then copies.
fn copy_snapshot(sqlite: &Connection, url: &str) -> Result<Vec<Copied>, CopyError> {
    let collisions: usize = users::email_collisions(sqlite)?.iter().map(Vec::len).sum();
    if collisions > 0 {
        return Err(CopyError::EmailCollisions(collisions));
    }
    if let Some(unknown) = sqlite_tables(sqlite)?
        .into_iter()
        .find(|t| !TABLES.iter().any(|(known, _)| known == t))
    {
        return Err(CopyError::UnknownTable(unknown));
    }
    let target = PgStore::connect(url)?;
    // One transaction, committed only when every table is copied and counted.
    let pg = target.conn()?;
    pg.batch("BEGIN")?;
    match copy_tables(sqlite, &pg, &target.name) {
        Ok(copied) => {
            pg.batch("COMMIT")?;
            Ok(copied)
        }
        Err(e) => {
            // A failed rollback leaves the connection broken: the pool drops it.
            let _ = pg.batch("ROLLBACK");
            Err(e)
        }
    }
}

/// Inside the target's transaction: refuses a target with rows, copies, sets the
/// sequences and compares the counts.
fn copy_tables(sqlite: &Connection, pg: &PgConn, target: &str) -> Result<Vec<Copied>, CopyError> {
    for (table, _) in TABLES {
        let rows = row_count(pg, table, true)?;
        if rows > 0 {
            return Err(CopyError::NotEmpty {
                target: target.to_owned(),
                table,
                rows,
            });
        }
    }
    let mut copied = Vec::with_capacity(TABLES.len());
    for (table, order) in TABLES {
        copy_table(sqlite, pg, table, order)?;
        let source_rows = row_count(sqlite, table, false)?;
        let target_rows = row_count(pg, table, false)?;
        if target_rows != source_rows {
            return Err(CopyError::CountMismatch {
                table,
                source_rows,
                target_rows,
            });
        }
        copied.push(Copied {
            table,
            rows: source_rows,
        });
    }
    advance_identities(pg)?;
    Ok(copied)
}

/// The rows of `table`; `own_only` leaves out the row that marks an empty database as
/// oauthd's (the migration writes it), so an empty target counts 0 everywhere.
fn row_count(db: &impl Db, table: &str, own_only: bool) -> Result<i64, StoreError> {
    let sql = match (table, own_only) {
        ("oauthd_meta", true) => {
            "SELECT count(*) FROM oauthd_meta WHERE key <> 'application'".into()
        }
        _ => format!("SELECT count(*) FROM {table}"),
    };
    db.query_one(&sql, &[], |r| r.get(0))
}

/// The user tables of the SQLite database.
fn sqlite_tables(sqlite: &Connection) -> Result<Vec<String>, StoreError> {
    sqlite.query_all(
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
        &[],
        |r| r.get(0),
    )
}

/// Copies every row of `table`, in batches.
fn copy_table(
    sqlite: &Connection,
    pg: &PgConn,
    table: &str,
    order: &str,
) -> Result<(), StoreError> {
    let columns: Vec<String> = sqlite.query_all(
        "SELECT name FROM pragma_table_info(?1) ORDER BY cid",
        &[&table],
        |r| r.get(0),
    )?;
    let list = columns.join(", ");
    let batch = ROWS_PER_INSERT
        .min(PARAMS_PER_INSERT / columns.len().max(1))
        .max(1);
    // The marker row exists on both sides already.
    let skip = if table == "oauthd_meta" {
        " WHERE key <> 'application'"
    } else {
        ""
    };
    let mut stmt = sqlite.prepare(&format!(
        "SELECT {list} FROM {table}{skip} ORDER BY {order}"
    ))?;
    let mut rows = stmt.query([])?;
    let mut pending: Vec<OwnedValue> = Vec::with_capacity(batch * columns.len());
    while let Some(row) = rows.next()? {
        for i in 0..columns.len() {
            pending.push(owned(row.get_ref(i)?));
        }
        if pending.len() == batch * columns.len() {
            insert_rows(pg, table, &list, columns.len(), &pending)?;
            pending.clear();
        }
    }
    if !pending.is_empty() {
        insert_rows(pg, table, &list, columns.len(), &pending)?;
    }
    Ok(())
}

/// One multi-row `INSERT` of `values` (row after row, `width` columns each).
fn insert_rows(
    pg: &PgConn,
    table: &str,
    list: &str,
    width: usize,
    values: &[OwnedValue],
) -> Result<(), StoreError> {
    let rows: Vec<String> = values
        .chunks(width)
        .enumerate()
        .map(|(r, row)| {
            let params: Vec<String> = (0..row.len())
                .map(|c| format!("?{}", r * width + c + 1))
                .collect();
            format!("({})", params.join(", "))
        })
        .collect();
    let sql = format!("INSERT INTO {table} ({list}) VALUES {}", rows.join(", "));
    let params: Vec<&dyn Param> = values.iter().map(|v| v as &dyn Param).collect();
    pg.execute(&sql, &params)?;
    Ok(())
}

/// Sets every identity column's sequence past the largest copied value, so the next
/// grant, audit row or attempt gets a new id.
fn advance_identities(pg: &PgConn) -> Result<(), StoreError> {
    let identities = pg.query_all(
        "SELECT table_name::text, column_name::text FROM information_schema.columns
         WHERE table_schema = current_schema() AND is_identity = 'YES'",
        &[],
        |r| Ok((r.get::<String>(0)?, r.get::<String>(1)?)),
    )?;
    for (table, column) in identities {
        pg.query_one(
            &format!(
                "SELECT setval(pg_get_serial_sequence(?1, ?2), coalesce(max({column}), 0) + 1, false)
                 FROM {table}"
            ),
            &[&table, &column],
            |r| r.get::<i64>(0),
        )?;
    }
    Ok(())
}

/// One SQLite value, owned, bound as the same value on PostgreSQL.
fn owned(value: ValueRef<'_>) -> OwnedValue {
    match value {
        ValueRef::Null => OwnedValue::Null,
        ValueRef::Integer(i) => OwnedValue::Int(i),
        // No oauthd column holds a REAL; keep its text rather than lose it.
        ValueRef::Real(f) => OwnedValue::Text(f.to_string()),
        ValueRef::Text(t) => OwnedValue::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => OwnedValue::Blob(b.to_vec()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A table added to the schema must be added here too, or `migrate --to` refuses
    /// every database (it would otherwise leave the table's rows behind).
    #[test]
    fn every_table_of_the_schema_is_copied_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(&dir.path().join("t.db")).expect("open");
        let mut tables = store.with_conn(|c| sqlite_tables(c)).expect("tables");
        tables.sort();
        let mut known: Vec<&str> = TABLES.iter().map(|(t, _)| *t).collect();
        known.sort();
        assert_eq!(tables, known);
    }
}
