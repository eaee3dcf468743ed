//! The backend-neutral SQL interface the store's verbs are written against, so one verb
//! (its SQL written once) runs on SQLite and, with the `postgres` feature, on PostgreSQL.
//!
//! [`Db`] runs a statement with [`Param`]s and decodes rows through [`Row::get`]. Verbs
//! stay synchronous and run on blocking threads, as before. Shared SQL uses SQLite's `?N`
//! placeholders; the PostgreSQL side rewrites them to `$N` once per statement text
//! ([`dollar_placeholders`]). The SQLite side is rusqlite as before: a cached prepared
//! statement, parameters bound from borrowed values, no allocation and no SQL rewriting.
//!
//! Flags (`is_public`, `disabled`, ...) are integer columns holding 0 or 1 on both backends
//! (PostgreSQL: BIGINT with the same CHECK), so shared SQL may compare them with `= 1`. A
//! `bool` parameter binds as whatever the statement's parameter is (a PostgreSQL BOOLEAN in
//! `CASE WHEN ?3`, 0/1 for an integer column), and a `bool` column decodes from either.

#[cfg(feature = "postgres")]
pub(crate) mod postgres;

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};

use rusqlite::types::{ToSqlOutput, ValueRef};

use super::StoreError;

/// A connection or transaction that runs SQL: SQLite's, or PostgreSQL's with the
/// `postgres` feature. Only `store/` verbs use it.
pub trait Db {
    /// Runs a statement that returns no rows; how many rows it changed.
    fn execute(&self, sql: &str, params: &[&dyn Param]) -> Result<usize, StoreError>;

    /// The first row `sql` returns, decoded by `decode`, or `None` when there is none.
    fn query_opt<T>(
        &self,
        sql: &str,
        params: &[&dyn Param],
        decode: impl FnOnce(&Row<'_>) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError>;

    /// Every row `sql` returns, each decoded by `decode`.
    fn query_all<T>(
        &self,
        sql: &str,
        params: &[&dyn Param],
        decode: impl FnMut(&Row<'_>) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError>;

    /// The one row `sql` always returns (an aggregate such as `count(*)`).
    fn query_one<T>(
        &self,
        sql: &str,
        params: &[&dyn Param],
        decode: impl FnOnce(&Row<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.query_opt(sql, params, decode)?
            .ok_or(StoreError::Sqlite(rusqlite::Error::QueryReturnedNoRows))
    }

    /// Runs a write whose outcome the caller does not look at (an audit row, trimming a
    /// log). Inside a PostgreSQL transaction it is sent with the next statement or the
    /// commit, a round trip fewer; its error then fails that statement, and so the whole
    /// transaction. Elsewhere it runs at once.
    fn execute_later(&self, sql: &str, params: &[&dyn Param]) -> Result<(), StoreError> {
        self.execute(sql, params).map(drop)
    }

    /// What a `SELECT` inside a write job appends to lock the rows it reads until the job
    /// commits: ` FOR UPDATE` where write jobs run concurrently (PostgreSQL, under READ
    /// COMMITTED); nothing on SQLite, whose one writer runs them one after another. No
    /// default: each backend (and each wrapper of one) must say.
    fn for_update(&self) -> &'static str;

    /// [`Db::for_update`] for rows another write job may have locked already and that
    /// this one may leave alone (trimming a log): ` FOR UPDATE SKIP LOCKED` on
    /// PostgreSQL, so concurrent trims never wait for each other; nothing on SQLite.
    fn skip_locked(&self) -> &'static str;

    /// Whether each statement is a round trip to a database server (PostgreSQL): there one
    /// statement that reads more beats several small ones; SQLite runs statements in
    /// process, where the small ones cost less.
    fn statements_cross_a_network(&self) -> bool;
}

/// One parameter value, borrowed from the caller: what every backend binds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    Null,
    Int(i64),
    Bool(bool),
    Text(&'a str),
    Blob(&'a [u8]),
}

/// A Rust value a statement can take as a parameter.
pub trait Param {
    fn value(&self) -> Value<'_>;
}

impl Param for i64 {
    fn value(&self) -> Value<'_> {
        Value::Int(*self)
    }
}

impl Param for bool {
    fn value(&self) -> Value<'_> {
        Value::Bool(*self)
    }
}

impl Param for str {
    fn value(&self) -> Value<'_> {
        Value::Text(self)
    }
}

impl Param for String {
    fn value(&self) -> Value<'_> {
        Value::Text(self)
    }
}

impl Param for [u8] {
    fn value(&self) -> Value<'_> {
        Value::Blob(self)
    }
}

impl Param for Vec<u8> {
    fn value(&self) -> Value<'_> {
        Value::Blob(self)
    }
}

impl<const N: usize> Param for [u8; N] {
    fn value(&self) -> Value<'_> {
        Value::Blob(self)
    }
}

impl<T: Param> Param for Option<T> {
    fn value(&self) -> Value<'_> {
        self.as_ref().map_or(Value::Null, Param::value)
    }
}

impl<T: Param + ?Sized> Param for &T {
    fn value(&self) -> Value<'_> {
        (**self).value()
    }
}

impl rusqlite::ToSql for Value<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match *self {
            Value::Null => ValueRef::Null,
            Value::Int(i) => ValueRef::Integer(i),
            Value::Bool(b) => ValueRef::Integer(i64::from(b)),
            Value::Text(s) => ValueRef::Text(s.as_bytes()),
            Value::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

/// One result row, of either backend; columns are numbered from 0.
pub struct Row<'a>(RowRef<'a>);

enum RowRef<'a> {
    Sqlite(&'a rusqlite::Row<'a>),
    #[cfg(feature = "postgres")]
    Postgres(&'a tokio_postgres::Row),
}

impl<'a> Row<'a> {
    #[cfg(feature = "postgres")]
    pub(crate) fn postgres(row: &'a tokio_postgres::Row) -> Row<'a> {
        Row(RowRef::Postgres(row))
    }

    /// Column `idx` as a `T`; a NULL or a value of another type is an error.
    pub fn get<T: Column>(&self, idx: usize) -> Result<T, StoreError> {
        match &self.0 {
            RowRef::Sqlite(row) => Ok(T::from_sqlite(row, idx)?),
            #[cfg(feature = "postgres")]
            RowRef::Postgres(row) => T::from_postgres(row, idx),
        }
    }
}

/// A Rust type a column decodes into.
pub trait Column: Sized {
    fn from_sqlite(row: &rusqlite::Row<'_>, idx: usize) -> rusqlite::Result<Self>;
    #[cfg(feature = "postgres")]
    fn from_postgres(row: &tokio_postgres::Row, idx: usize) -> Result<Self, StoreError>;
}

/// Column types that decode the same way as rusqlite's and tokio-postgres's own.
macro_rules! plain_columns {
    ($($t:ty),*) => {$(
        impl Column for $t {
            fn from_sqlite(row: &rusqlite::Row<'_>, idx: usize) -> rusqlite::Result<Self> {
                row.get(idx)
            }
            #[cfg(feature = "postgres")]
            fn from_postgres(row: &tokio_postgres::Row, idx: usize) -> Result<Self, StoreError> {
                Ok(row.try_get(idx)?)
            }
        }
    )*};
}
plain_columns!(String, Option<String>, Vec<u8>, Option<Vec<u8>>);

/// Integers and flags: on PostgreSQL any integer width (a literal `1` is an INT4) and,
/// for a flag, a BOOLEAN expression (`logo IS NOT NULL`) too; `$pg` decodes them and
/// `$into` makes the Rust type of it.
macro_rules! widened_columns {
    ($($t:ty => $pg:ty, $into:expr;)*) => {$(
        impl Column for $t {
            fn from_sqlite(row: &rusqlite::Row<'_>, idx: usize) -> rusqlite::Result<Self> {
                row.get(idx)
            }
            #[cfg(feature = "postgres")]
            fn from_postgres(row: &tokio_postgres::Row, idx: usize) -> Result<Self, StoreError> {
                Ok($into(row.try_get::<_, $pg>(idx)?))
            }
        }
    )*};
}
widened_columns!(
    i64 => postgres::AnyInt, i64::from;
    Option<i64> => Option<postgres::AnyInt>, |v: Option<_>| v.map(i64::from);
    bool => postgres::AnyBool, bool::from;
    Option<bool> => Option<postgres::AnyBool>, |v: Option<_>| v.map(bool::from);
);

/// Whether `e` is a UNIQUE or PRIMARY KEY violation, on either backend: the one place
/// that tells a conflict from other failures.
pub(crate) fn is_unique_violation(e: &StoreError) -> bool {
    match e {
        StoreError::Sqlite(rusqlite::Error::SqliteFailure(f, _)) => {
            f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
        }
        #[cfg(feature = "postgres")]
        StoreError::Postgres(e) => {
            e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION)
        }
        _ => false,
    }
}

/// Inside a write job, locks the rows `select` reads until the job ends, first waiting
/// for any job that holds them to commit, so that the job's next statements (each of which
/// reads afresh under READ COMMITTED) see what that job wrote: of concurrent jobs deciding
/// over one row, each decides after the last. Runs nothing where [`Db::for_update`] is
/// empty: there jobs never overlap.
pub(crate) fn lock_rows(
    db: &impl Db,
    select: &str,
    params: &[&dyn Param],
) -> Result<(), StoreError> {
    let for_update = db.for_update();
    if !for_update.is_empty() {
        db.query_all(&locking_sql(select, for_update), params, |_| Ok(()))?;
    }
    Ok(())
}

/// Runs a write whose subquery picks rows to delete and, at [`LOCK_CLAUSE_HERE`], skips
/// those another write job holds ([`Db::skip_locked`]), so that concurrent trims of one
/// table never wait for each other. Sent later, as [`Db::execute_later`]; the statement
/// text is built once per `sql`.
pub(crate) fn execute_later_skipping_locked(
    db: &impl Db,
    sql: &str,
    params: &[&dyn Param],
) -> Result<(), StoreError> {
    debug_assert!(sql.contains(LOCK_CLAUSE_HERE), "{sql}");
    let skip_locked = db.skip_locked();
    if skip_locked.is_empty() {
        return db.execute_later(sql, params);
    }
    db.execute_later(&locking_sql(sql, skip_locked), params)
}

/// Marks where a statement's lock clause goes when it is not at the statement's end (a
/// locking subquery). A comment, so the text runs as written where nothing is locked.
const LOCK_CLAUSE_HERE: &str = "/* lock */";

/// Statement texts derived from fixed ones, kept for the process: built once per text
/// instead of on every statement (there are few, all written in the source).
pub(crate) type TextCache = OnceLock<RwLock<HashMap<String, Arc<str>>>>;

/// The text `cache` holds for `key`, built by `build` the first time (or again when
/// `fits` refuses the one held).
pub(crate) fn cached_text(
    cache: &TextCache,
    key: &str,
    fits: impl Fn(&str) -> bool,
    build: impl FnOnce() -> String,
) -> Arc<str> {
    let cache = cache.get_or_init(Default::default);
    if let Some(found) = cache.read().unwrap_or_else(|e| e.into_inner()).get(key) {
        if fits(found) {
            return Arc::clone(found);
        }
    }
    let built: Arc<str> = build().into();
    cache
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key.to_owned(), Arc::clone(&built));
    built
}

/// `select` with `for_update` in place of [`LOCK_CLAUSE_HERE`], or appended where it has
/// none, built once per `select` (a locked read runs on every code exchange and refresh).
fn locking_sql(select: &str, for_update: &'static str) -> Arc<str> {
    static LOCKING: TextCache = OnceLock::new();
    let (at, marker) = match select.find(LOCK_CLAUSE_HERE) {
        Some(at) => (at, LOCK_CLAUSE_HERE.len()),
        None => (select.len(), 0),
    };
    let fits = |held: &str| {
        held.len() == select.len() - marker + for_update.len()
            && held.get(at..at + for_update.len()) == Some(for_update)
    };
    cached_text(&LOCKING, select, fits, || {
        format!("{}{for_update}{}", &select[..at], &select[at + marker..])
    })
}

impl Db for rusqlite::Connection {
    fn for_update(&self) -> &'static str {
        ""
    }

    fn skip_locked(&self) -> &'static str {
        ""
    }

    fn statements_cross_a_network(&self) -> bool {
        false
    }

    fn execute(&self, sql: &str, params: &[&dyn Param]) -> Result<usize, StoreError> {
        let mut stmt = self.prepare_cached(sql)?;
        Ok(stmt.execute(sqlite_params(params))?)
    }

    fn query_opt<T>(
        &self,
        sql: &str,
        params: &[&dyn Param],
        decode: impl FnOnce(&Row<'_>) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        let mut stmt = self.prepare_cached(sql)?;
        let mut rows = stmt.query(sqlite_params(params))?;
        match rows.next()? {
            Some(row) => Ok(Some(decode(&Row(RowRef::Sqlite(row)))?)),
            None => Ok(None),
        }
    }

    fn query_all<T>(
        &self,
        sql: &str,
        params: &[&dyn Param],
        mut decode: impl FnMut(&Row<'_>) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        let mut stmt = self.prepare_cached(sql)?;
        let mut rows = stmt.query(sqlite_params(params))?;
        let mut all = Vec::new();
        while let Some(row) = rows.next()? {
            all.push(decode(&Row(RowRef::Sqlite(row)))?);
        }
        Ok(all)
    }
}

/// The parameters as rusqlite binds them: borrowed, without collecting them anywhere.
fn sqlite_params<'p>(
    params: &'p [&'p dyn Param],
) -> rusqlite::ParamsFromIter<impl Iterator<Item = Value<'p>>> {
    rusqlite::params_from_iter(params.iter().map(|p| p.value()))
}

/// `sql` with SQLite's `?N` (and bare `?`) placeholders written as PostgreSQL's `$N`.
/// Text in quotes and comments is copied unchanged.
#[cfg(any(feature = "postgres", test))]
pub fn dollar_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut chars = sql.chars().peekable();
    let mut highest = 0u32;
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {
                out.push(c);
                // A doubled quote inside is the escaped quote: the loop re-enters here.
                for inner in chars.by_ref() {
                    out.push(inner);
                    if inner == c {
                        break;
                    }
                }
            }
            '-' if chars.peek() == Some(&'-') => {
                out.push(c);
                for inner in chars.by_ref() {
                    out.push(inner);
                    if inner == '\n' {
                        break;
                    }
                }
            }
            '?' => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    chars.next();
                }
                let n = match digits.parse::<u32>() {
                    Ok(n) => n,
                    Err(_) => highest + 1,
                };
                highest = highest.max(n);
                out.push('$');
                out.push_str(&n.to_string());
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_locked_read_is_built_once_per_statement() {
        let select = "SELECT 1 FROM t WHERE k = ?1 AND cached = 'yes'";
        let trim = "DELETE FROM t WHERE k IN (SELECT k FROM t LIMIT 16/* lock */) AND cached";
        // (statement, clause, the text built): in this order, so each statement's
        // text is looked up again with another clause.
        let table = [
            (select, " FOR UPDATE", "SELECT 1 FROM t WHERE k = ?1 AND cached = 'yes' FOR UPDATE"),
            (select, " FOR SHARE", "SELECT 1 FROM t WHERE k = ?1 AND cached = 'yes' FOR SHARE"),
            ("SELECT 2", " FOR UPDATE", "SELECT 2 FOR UPDATE"),
            (
                trim,
                " FOR UPDATE SKIP LOCKED",
                "DELETE FROM t WHERE k IN (SELECT k FROM t LIMIT 16 FOR UPDATE SKIP LOCKED) AND cached",
            ),
            (
                trim,
                " FOR UPDATE",
                "DELETE FROM t WHERE k IN (SELECT k FROM t LIMIT 16 FOR UPDATE) AND cached",
            ),
        ];
        for (statement, clause, want) in table {
            let first = locking_sql(statement, clause);
            assert_eq!(&*first, want);
            let again = locking_sql(statement, clause);
            assert!(Arc::ptr_eq(&first, &again), "{want}: built once");
        }
    }

    #[test]
    fn placeholders_become_dollars_outside_quotes_and_comments() {
        let table = [
            ("SELECT 1", "SELECT 1"),
            ("a = ?1 AND b = ?2", "a = $1 AND b = $2"),
            ("a = ?12", "a = $12"),
            ("a = ?2 OR b = ?1 OR c = ?2", "a = $2 OR b = $1 OR c = $2"),
            ("a = ? AND b = ?", "a = $1 AND b = $2"),
            ("a = ?3 AND b = ?", "a = $3 AND b = $4"),
            ("x = '?1' AND y = ?1", "x = '?1' AND y = $1"),
            ("x = 'it''s ?' AND y = ?1", "x = 'it''s ?' AND y = $1"),
            ("\"odd?1\" = ?1", "\"odd?1\" = $1"),
            (
                "a = ?1 -- what ?2\n AND b = ?2",
                "a = $1 -- what ?2\n AND b = $2",
            ),
            ("a - b = ?1", "a - b = $1"),
            ("VALUES (?1,?2)", "VALUES ($1,$2)"),
        ];
        for (sqlite, postgres) in table {
            assert_eq!(dollar_placeholders(sqlite), postgres, "{sqlite}");
        }
    }

    #[test]
    fn params_bind_borrowed_values() {
        let text = String::from("t");
        let blob = vec![1u8, 2];
        let none: Option<&str> = None;
        let table: [(&dyn Param, Value<'_>); 8] = [
            (&7i64, Value::Int(7)),
            (&true, Value::Bool(true)),
            (&"s", Value::Text("s")),
            (&text, Value::Text("t")),
            (&blob, Value::Blob(&[1, 2])),
            (&[9u8; 2], Value::Blob(&[9, 9])),
            (&none, Value::Null),
            (&Some(3i64), Value::Int(3)),
        ];
        for (param, value) in table {
            assert_eq!(param.value(), value);
        }
    }

    #[test]
    fn sqlite_runs_statements_and_decodes_rows() {
        let conn = rusqlite::Connection::open_in_memory().expect("open");
        conn.execute_batch(
            "CREATE TABLE t (k TEXT PRIMARY KEY, n INTEGER, flag INTEGER, b BLOB) STRICT;",
        )
        .expect("create");
        checks::exercise(&conn);
    }
}

/// Checks of the interface that every backend must pass, given table
/// `t (k TEXT PRIMARY KEY, n INTEGER, flag INTEGER, b BLOB)` in its types.
#[cfg(test)]
pub(crate) mod checks {
    use super::*;

    pub(crate) fn exercise(db: &impl Db) {
        let insert = "INSERT INTO t (k, n, flag, b) VALUES (?1, ?2, ?3, ?4)";
        let one = db
            .execute(insert, &[&"a", &1i64, &true, &Some(vec![7u8])])
            .expect("insert a");
        assert_eq!(one, 1);
        let none: Option<Vec<u8>> = None;
        db.execute(insert, &[&"b", &2i64, &false, &none])
            .expect("insert b");
        let again = db
            .execute(insert, &[&"a", &3i64, &false, &none])
            .expect_err("duplicate key");
        assert!(is_unique_violation(&again), "{again}");
        let found = db
            .query_opt("SELECT n, flag, b FROM t WHERE k = ?1", &[&"a"], |r| {
                Ok((
                    r.get::<i64>(0)?,
                    r.get::<bool>(1)?,
                    r.get::<Option<Vec<u8>>>(2)?,
                ))
            })
            .expect("query");
        assert_eq!(found, Some((1, true, Some(vec![7]))));
        let missing = db
            .query_opt("SELECT n FROM t WHERE k = ?1", &[&"z"], |r| r.get::<i64>(0))
            .expect("query");
        assert_eq!(missing, None);
        let all = db
            .query_all("SELECT k, b IS NULL FROM t ORDER BY k", &[], |r| {
                Ok((r.get::<String>(0)?, r.get::<bool>(1)?))
            })
            .expect("all");
        assert_eq!(all, [("a".to_owned(), false), ("b".to_owned(), true)]);
        let count = db
            .query_one("SELECT count(*) FROM t WHERE flag = ?1", &[&true], |r| {
                r.get::<i64>(0)
            })
            .expect("count");
        assert_eq!(count, 1);
        let changed = db
            .execute(
                "UPDATE t SET n = n + 1 WHERE k = ?1 OR k = ?2",
                &[&"a", &"b"],
            )
            .expect("update");
        assert_eq!(changed, 2);
        let wrong_type = db.query_one("SELECT k FROM t WHERE k = ?1", &[&"a"], |r| r.get::<i64>(0));
        assert!(wrong_type.is_err(), "text decoded as an integer");
    }
}
