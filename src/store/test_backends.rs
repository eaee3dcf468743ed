//! For unit tests: running the same checks of converted verbs on every backend, each
//! on a fresh, migrated database — a temporary SQLite file, and (feature `postgres`) a new
//! database in the throwaway PostgreSQL cluster.

use super::sql::Db;
use super::{Conn, Store};

/// Adds user `u` (`u@x.org`) and public client `c`, as `seeded_store` does: the users and
/// clients verbs are not on the shared interface yet.
pub(crate) fn seed_user_and_client(db: &impl Db) {
    db.execute(
        "INSERT INTO users (id, email, email_key, password_hash, created_at, updated_at)
         VALUES ('u', 'u@x.org', 'u@x.org', 'x', 0, 0)",
        &[],
    )
    .expect("seed user");
    db.execute(
        "INSERT INTO clients (id, name, is_public, created_at) VALUES ('c', 'C', 1, 0)",
        &[],
    )
    .expect("seed client");
}

/// Runs `check` on a connection to a fresh SQLite database, as the server's handlers get
/// it (through [`Conn`]).
pub(crate) fn with_sqlite(check: impl FnOnce(&Conn<'_>)) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("check.db")).expect("open SQLite");
    store
        .with_conn(|conn| {
            check(conn);
            Ok(())
        })
        .expect("SQLite connection");
}

/// Runs `check` on a connection to a fresh PostgreSQL database, as the server's handlers
/// get it (through [`Conn`]).
#[cfg(feature = "postgres")]
pub(crate) fn with_postgres(check: impl FnOnce(&Conn<'_>)) {
    let url = super::pg::test_cluster::shared().new_database();
    let store = Store::connect_postgres(&url).expect("connect to PostgreSQL");
    store
        .with_conn(|conn| {
            check(conn);
            Ok(())
        })
        .expect("PostgreSQL connection");
}

/// `on_both_backends!(check)` makes tests `check::sqlite` and `check::postgres` that run
/// the generic `fn check(db: &impl Db)` of the enclosing module on each backend.
macro_rules! on_both_backends {
    ($check:ident) => {
        mod $check {
            #[test]
            fn sqlite() {
                $crate::store::test_backends::with_sqlite(|db| super::$check(db));
            }

            #[cfg(feature = "postgres")]
            #[test]
            fn postgres() {
                $crate::store::test_backends::with_postgres(|db| super::$check(db));
            }
        }
    };
}
pub(crate) use on_both_backends;

/// A fresh PostgreSQL database with [`seed_user_and_client`]'s rows, and its store.
#[cfg(feature = "postgres")]
pub(crate) fn seeded_postgres() -> super::pg::PgStore {
    let url = super::pg::test_cluster::shared().new_database();
    let store = super::pg::PgStore::connect(&url).expect("connect to PostgreSQL");
    store
        .with_conn(|db| {
            seed_user_and_client(db);
            Ok(())
        })
        .expect("seed");
    store
}

/// Runs `job(db, i)` for each `i` in `0..racers` at once, each in its own transaction on
/// its own pooled connection, as racing requests on separate instances do; their results,
/// in order of `i`. The pool's connections are opened beforehand, so the transactions
/// start together.
#[cfg(feature = "postgres")]
pub(crate) fn race<T: Send>(
    store: &super::pg::PgStore,
    racers: usize,
    job: impl Fn(&super::pg::PgConn, usize) -> Result<T, super::StoreError> + Sync,
) -> Vec<T> {
    all_at_once(store, racers, &|_, _| Ok(()));
    all_at_once(store, racers, &job)
}

#[cfg(feature = "postgres")]
fn all_at_once<T: Send>(
    store: &super::pg::PgStore,
    racers: usize,
    job: &(dyn Fn(&super::pg::PgConn, usize) -> Result<T, super::StoreError> + Sync),
) -> Vec<T> {
    let start = std::sync::Barrier::new(racers);
    std::thread::scope(|s| {
        let racing: Vec<_> = (0..racers)
            .map(|i| {
                let start = &start;
                s.spawn(move || {
                    start.wait();
                    store.transaction(|db| job(db, i))
                })
            })
            .collect();
        racing
            .into_iter()
            .map(|r| r.join().expect("racer").expect("racer's transaction"))
            .collect()
    })
}
