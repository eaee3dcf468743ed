//! The PostgreSQL schema's versions, numbered as SQLite's (`SCHEMA_VERSION`): a new,
//! empty database gets the whole schema, an older oauthd one the steps after its version.
//! A database that is neither (another application's tables) or newer than this binary is
//! refused untouched. The version lives in `oauthd_schema`; `oauthd_meta` marks the
//! database as oauthd's, as in SQLite.

use crate::store::migrate::SCHEMA_VERSION;
use crate::store::sql::Db;
use crate::store::StoreError;

use super::PgConn;

/// The whole schema at the first PostgreSQL version, for an empty database.
const BASELINE_STEP: &str = include_str!("schema.sql");

/// The version table, created with the baseline.
const VERSION_TABLE: &str = "CREATE TABLE oauthd_schema (version BIGINT NOT NULL);
INSERT INTO oauthd_schema (version) VALUES (0);";

/// `(version, SQL)`: the SQL brings the schema from the previous version to this one. A
/// version SQLite gains needs its step here too (a unit test holds them equal).
const STEPS: &[(i64, &str)] = &[
    (11, BASELINE_STEP),
    (12, SHARED_STATE_STEP),
    (13, EMAIL_KEY_INDEX_STEP),
    (14, ACME_SHARED_STEP),
];

/// SQLite's step 12: server secrets, and the login failure counters several instances
/// share. The counters are UNLOGGED: no WAL, no fsync per failed guess, emptied by a
/// crash, which only forgets recent failures.
const SHARED_STATE_STEP: &str = "
CREATE TABLE server_secrets (
    name       TEXT PRIMARY KEY,
    value      BYTEA NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE UNLOGGED TABLE login_failures (
    key             BYTEA PRIMARY KEY,
    failures        BIGINT NOT NULL,
    lockouts        BIGINT NOT NULL,
    last_failure_ms BIGINT NOT NULL,
    locked_until_ms BIGINT,
    lockout_noted   BIGINT NOT NULL CHECK (lockout_noted IN (0, 1)),
    version         BIGINT NOT NULL
);
";

/// The folded email key unique by an index instead of the baseline's triggers, which
/// concurrent sign-ups of one key (`maße@` and `masse@`: two addresses to the `nocase`
/// email column) both passed before either committed. No PostgreSQL database holds
/// colliding keys kept from before folding (`migrate --to` refuses a SQLite one that does).
const EMAIL_KEY_INDEX_STEP: &str = "
DROP TRIGGER users_email_key_unique_on_insert ON users;
DROP TRIGGER users_email_key_unique_on_update ON users;
DROP FUNCTION users_email_key_unique();
DROP INDEX users_by_email_key;
CREATE UNIQUE INDEX users_by_email_key ON users (email_key);
";

/// SQLite's step 14: the ACME challenges being offered and the ordering lease, shared by
/// every instance.
const ACME_SHARED_STEP: &str = "
CREATE TABLE acme_challenges (
    kind              TEXT NOT NULL,
    name              TEXT NOT NULL,
    key_authorization TEXT NOT NULL,
    expires_at        BIGINT NOT NULL,
    PRIMARY KEY (kind, name)
);
CREATE TABLE acme_order_leases (
    domains     TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    held_until  BIGINT NOT NULL
);
";

/// Any number: the advisory lock that lets one of several instances starting at once
/// migrate while the others wait, then find the work done.
const MIGRATION_LOCK: i64 = 0x6f61_7574_6864;

/// What a database holds before migrating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Found {
    /// No table, view or sequence in the current schema.
    Empty,
    /// Objects, but no oauthd marker.
    Foreign,
    Oauthd(i64),
}

/// Why a database is refused.
#[derive(Debug, PartialEq, Eq)]
enum Refusal {
    Foreign,
    TooNew(i64),
}

/// The steps to run for what was found, in order (none when current).
fn plan(found: Found, known: i64) -> Result<Vec<(i64, &'static str)>, Refusal> {
    let after = match found {
        Found::Empty => 0,
        Found::Foreign => return Err(Refusal::Foreign),
        Found::Oauthd(version) if version > known => return Err(Refusal::TooNew(version)),
        Found::Oauthd(version) => version,
    };
    Ok(STEPS
        .iter()
        .filter(|(version, _)| *version > after && *version <= known)
        .copied()
        .collect())
}

/// Brings the database to [`SCHEMA_VERSION`] inside the caller's transaction, or refuses
/// it without a change. `name` (the URL without its password) is for messages.
pub fn migrate(db: &PgConn, name: &str) -> Result<(), StoreError> {
    bring_current(db, name, Older::Migrate)
}

/// As [`migrate`], for commands that only read: an empty database, or an older oauthd
/// schema, is refused unchanged (a command that writes, or `serve`, creates or upgrades
/// it), as an empty or older SQLite file is.
pub fn migrate_unless_older(db: &PgConn, name: &str) -> Result<(), StoreError> {
    bring_current(db, name, Older::Refuse)
}

/// What to do with an older oauthd schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Older {
    Migrate,
    Refuse,
}

fn bring_current(db: &PgConn, name: &str, older: Older) -> Result<(), StoreError> {
    db.execute("SELECT pg_advisory_xact_lock(?1)", &[&MIGRATION_LOCK])?;
    let found = found(db)?;
    if older == Older::Refuse {
        // An empty database is at version 0, as an empty SQLite file is.
        let version = match found {
            Found::Empty => Some(0),
            Found::Oauthd(version) => Some(version),
            Found::Foreign => None,
        };
        if let Some(version) = version.filter(|v| *v < SCHEMA_VERSION) {
            return Err(StoreError::NeedsMigration {
                path: name.into(),
                found: version,
                known: SCHEMA_VERSION,
            });
        }
    }
    let steps = plan(found, SCHEMA_VERSION).map_err(|refused| match refused {
        Refusal::Foreign => StoreError::ForeignPostgres(name.to_owned()),
        Refusal::TooNew(found) => StoreError::TooNewPostgres {
            db: name.to_owned(),
            found,
            known: SCHEMA_VERSION,
        },
    })?;
    for (version, sql) in steps {
        if version == STEPS[0].0 {
            db.batch(VERSION_TABLE)?;
        }
        db.batch(sql)?;
        db.execute("UPDATE oauthd_schema SET version = ?1", &[&version])?;
    }
    Ok(())
}

/// What the current schema of the database holds.
fn found(db: &PgConn) -> Result<Found, StoreError> {
    let marked = db.query_one(
        "SELECT to_regclass('oauthd_schema') IS NOT NULL AND to_regclass('oauthd_meta') IS NOT NULL",
        &[],
        |r| r.get::<bool>(0),
    )?;
    if marked {
        let ours = db.query_opt(
            "SELECT 1 FROM oauthd_meta WHERE key = 'application' AND value = 'oauthd'",
            &[],
            |r| r.get::<i64>(0),
        )?;
        if ours.is_some() {
            let version = db.query_one("SELECT max(version) FROM oauthd_schema", &[], |r| {
                r.get::<Option<i64>>(0)
            })?;
            return Ok(Found::Oauthd(version.unwrap_or(0)));
        }
        return Ok(Found::Foreign);
    }
    let objects = db.query_one(
        "SELECT count(*) FROM pg_catalog.pg_class c
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = current_schema()",
        &[],
        |r| r.get::<i64>(0),
    )?;
    Ok(if objects == 0 {
        Found::Empty
    } else {
        Found::Foreign
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sqlite_version_has_a_postgres_step() {
        let last = STEPS.last().map(|(v, _)| *v);
        assert_eq!(
            last,
            Some(SCHEMA_VERSION),
            "SQLite's schema is at version {SCHEMA_VERSION}: add its step to src/store/pg/migrate.rs STEPS"
        );
        assert!(
            STEPS.windows(2).all(|w| w[1].0 == w[0].0 + 1),
            "steps are consecutive"
        );
    }

    #[test]
    fn plan_follows_what_was_found() {
        let first = STEPS[0].0;
        let table: [(Found, Result<Vec<i64>, Refusal>); 5] = [
            (Found::Empty, Ok((first..=SCHEMA_VERSION).collect())),
            (Found::Oauthd(SCHEMA_VERSION), Ok(vec![])),
            (
                Found::Oauthd(first - 1),
                Ok((first..=SCHEMA_VERSION).collect()),
            ),
            (
                Found::Oauthd(SCHEMA_VERSION + 1),
                Err(Refusal::TooNew(SCHEMA_VERSION + 1)),
            ),
            (Found::Foreign, Err(Refusal::Foreign)),
        ];
        for (found, planned) in table {
            let versions =
                plan(found, SCHEMA_VERSION).map(|steps| steps.iter().map(|s| s.0).collect());
            assert_eq!(versions, planned, "{found:?}");
        }
    }
}
