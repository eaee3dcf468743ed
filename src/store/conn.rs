//! The connection a store closure gets, whichever backend the server runs on: handlers
//! and verbs see one type, [`Conn`], and run the shared SQL of [`Db`] on it.
//!
//! On SQLite it is the borrowed rusqlite connection (or the writer's transaction), so a
//! statement costs one `match` more than before and nothing else.

use super::sql::{Db, Param, Row};
use super::StoreError;

/// A connection (or open transaction) of either backend, lent to a store closure.
#[derive(Clone, Copy)]
pub enum Conn<'a> {
    Sqlite(&'a rusqlite::Connection),
    #[cfg(feature = "postgres")]
    Postgres(&'a super::pg::PgConn),
}

impl<'a> Conn<'a> {
    /// The SQLite connection, for unit tests that set up rows with rusqlite; on
    /// PostgreSQL a clear error instead. Every verb takes the `Conn` itself.
    #[cfg(test)]
    pub fn sqlite(&self) -> Result<&'a rusqlite::Connection, StoreError> {
        match *self {
            Conn::Sqlite(conn) => Ok(conn),
            #[cfg(feature = "postgres")]
            Conn::Postgres(_) => Err(StoreError::NotOnPostgres),
        }
    }
}

impl Db for Conn<'_> {
    fn for_update(&self) -> &'static str {
        match self {
            Conn::Sqlite(conn) => Db::for_update(*conn),
            #[cfg(feature = "postgres")]
            Conn::Postgres(conn) => conn.for_update(),
        }
    }

    fn skip_locked(&self) -> &'static str {
        match self {
            Conn::Sqlite(conn) => Db::skip_locked(*conn),
            #[cfg(feature = "postgres")]
            Conn::Postgres(conn) => conn.skip_locked(),
        }
    }

    fn statements_cross_a_network(&self) -> bool {
        match self {
            Conn::Sqlite(conn) => Db::statements_cross_a_network(*conn),
            #[cfg(feature = "postgres")]
            Conn::Postgres(conn) => conn.statements_cross_a_network(),
        }
    }

    fn execute(&self, sql: &str, params: &[&dyn Param]) -> Result<usize, StoreError> {
        match self {
            Conn::Sqlite(conn) => Db::execute(*conn, sql, params),
            #[cfg(feature = "postgres")]
            Conn::Postgres(conn) => conn.execute(sql, params),
        }
    }

    fn execute_later(&self, sql: &str, params: &[&dyn Param]) -> Result<(), StoreError> {
        match self {
            Conn::Sqlite(conn) => Db::execute_later(*conn, sql, params),
            #[cfg(feature = "postgres")]
            Conn::Postgres(conn) => conn.execute_later(sql, params),
        }
    }

    fn query_opt<T>(
        &self,
        sql: &str,
        params: &[&dyn Param],
        decode: impl FnOnce(&Row<'_>) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        match self {
            Conn::Sqlite(conn) => Db::query_opt(*conn, sql, params, decode),
            #[cfg(feature = "postgres")]
            Conn::Postgres(conn) => conn.query_opt(sql, params, decode),
        }
    }

    fn query_all<T>(
        &self,
        sql: &str,
        params: &[&dyn Param],
        decode: impl FnMut(&Row<'_>) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        match self {
            Conn::Sqlite(conn) => Db::query_all(*conn, sql, params, decode),
            #[cfg(feature = "postgres")]
            Conn::Postgres(conn) => conn.query_all(sql, params, decode),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Store;
    use super::*;

    fn meta(db: &impl Db, key: &str) -> Option<String> {
        db.query_opt(
            "SELECT value FROM oauthd_meta WHERE key = ?1",
            &[&key],
            |r| r.get(0),
        )
        .expect("read oauthd_meta")
    }

    fn set_meta(db: &impl Db, key: &str) -> Result<usize, StoreError> {
        db.execute(
            "INSERT INTO oauthd_meta (key, value) VALUES (?1, 'v')",
            &[&key],
        )
    }

    /// What handlers rely on, whichever backend the store has: a write commits when its
    /// closure succeeds and leaves nothing when it fails, reads and the CLI's
    /// transactions see the same, and `/healthz` answers.
    fn the_gate_behaves_the_same(store: &mut Store) {
        store.start_writer(std::time::Duration::MAX).expect("start");
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        runtime.block_on(async {
            store
                .write(|db| set_meta(db, "written"))
                .await
                .expect("write");
            let failed = store
                .write(|db| {
                    set_meta(db, "undone")?;
                    set_meta(db, "written")
                })
                .await;
            assert!(failed.is_err(), "a duplicate key fails the write");
            let read = store
                .read(|db| Ok((meta(db, "written"), meta(db, "undone"))))
                .await
                .expect("read");
            assert_eq!(read, (Some("v".into()), None));
            store.health().await.expect("healthy");
        });
        store
            .transaction(|db| set_meta(db, "cli"))
            .expect("transaction");
        let failed = store.transaction(|db| {
            set_meta(db, "cli undone")?;
            set_meta(db, "cli")
        });
        assert!(failed.is_err());
        let seen = store
            .with_conn(|db| Ok((meta(db, "cli"), meta(db, "cli undone"))))
            .expect("with_conn");
        assert_eq!(seen, (Some("v".into()), None));
        store.check_writable().expect("writable");
        store.stop_writer();
    }

    #[test]
    fn the_gate_on_sqlite() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = Store::open(&dir.path().join("gate.db")).expect("open");
        the_gate_behaves_the_same(&mut store);
        let raw = store.with_conn(|db| Ok(db.sqlite().is_ok()));
        assert!(raw.expect("conn"), "SQLite lends its connection");
    }

    #[cfg(feature = "postgres")]
    #[test]
    fn the_gate_on_postgres() {
        let url = super::super::pg::test_cluster::shared().new_database();
        let mut store = Store::connect_postgres(&url).expect("connect");
        the_gate_behaves_the_same(&mut store);
        let err = store
            .with_conn(|db| db.sqlite().map(drop))
            .expect_err("no SQLite connection on PostgreSQL");
        assert!(
            err.to_string().contains("not available on PostgreSQL yet"),
            "{err}"
        );
    }
}
