//! Schema creation and forward migrations, and the check that refuses files that are not
//! ours. The whole current schema lives in `schema.sql`; a database created by an older
//! binary is brought forward by the numbered steps in [`MIGRATIONS`], each in one
//! transaction together with its `PRAGMA user_version` bump.

use std::io::Read;
use std::path::Path;

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use super::StoreError;

/// The schema version this binary writes and understands.
pub const SCHEMA_VERSION: i64 = 14;

/// The whole schema, applied to an empty database.
const SCHEMA_SQL: &str = include_str!("../../schema.sql");

/// Steps from version N-1 to N, for N in 2..=SCHEMA_VERSION.
const MIGRATIONS: &[(i64, &str)] = &[
    // v2: resource servers that may introspect any client's tokens (`client add
    // --introspect-any`), and an access token's own scope when a refresh narrowed it.
    (
        2,
        "ALTER TABLE clients ADD COLUMN
             introspect_any INTEGER NOT NULL DEFAULT 0 CHECK (introspect_any IN (0, 1));
         ALTER TABLE access_tokens ADD COLUMN scope TEXT;",
    ),
    // v3: the folded email key (see EMAIL_KEY_STEP).
    (3, EMAIL_KEY_STEP),
    // v4: every kind of client (see CLIENT_KINDS_STEP).
    (4, CLIENT_KINDS_STEP),
    // v5: browser sessions (SSO) and per-client post-logout redirect URIs.
    (5, SESSIONS_STEP),
    // v6: OpenID Connect core (see OIDC_CORE_STEP).
    (6, OIDC_CORE_STEP),
    // v7: third-party clients' consents (see CONSENT_STEP).
    (7, CONSENT_STEP),
    // v8: the link doctor's attempt log (see CLIENT_LOG_STEP).
    (8, CLIENT_LOG_STEP),
    // v9: when a device authorization was approved (see DEVICE_APPROVED_AT_STEP).
    (9, DEVICE_APPROVED_AT_STEP),
    // v10: the link doctor remembers a disabled user's tokens (see DISABLED_TOKENS_STEP).
    (10, DISABLED_TOKENS_STEP),
    // v11: ACME accounts and certificates (see ACME_STEP).
    (11, ACME_STEP),
    // v12: what several instances of one database share (see SHARED_STATE_STEP).
    (12, SHARED_STATE_STEP),
    // v13: PostgreSQL's email key becomes a UNIQUE index (see EMAIL_KEY_INDEX_STEP).
    (13, EMAIL_KEY_INDEX_STEP),
    // v14: ACME orders and challenges shared by several instances (see ACME_SHARED_STEP).
    (14, ACME_SHARED_STEP),
];

/// What every instance serving one database must agree on: server secrets (the CSRF key),
/// made once by whichever instance starts first; and the login failure counters that
/// several PostgreSQL instances share (on SQLite the one server counts in memory and this
/// table stays empty). Kept in sync with the v12 block of `schema.sql`.
const SHARED_STATE_STEP: &str = "
CREATE TABLE server_secrets (
    name       TEXT PRIMARY KEY,
    value      BLOB NOT NULL,
    created_at INTEGER NOT NULL
) WITHOUT ROWID, STRICT;
CREATE TABLE login_failures (
    key             BLOB PRIMARY KEY,
    failures        INTEGER NOT NULL,
    lockouts        INTEGER NOT NULL,
    last_failure_ms INTEGER NOT NULL,
    locked_until_ms INTEGER,
    lockout_noted   INTEGER NOT NULL CHECK (lockout_noted IN (0, 1)),
    version         INTEGER NOT NULL
) WITHOUT ROWID, STRICT;
";

/// Nothing on SQLite: its one writer makes the uniqueness triggers' check-then-insert
/// safe. PostgreSQL, whose concurrent transactions each passed the check before either
/// inserted, replaces its triggers with a UNIQUE index at this version
/// (`pg::migrate::EMAIL_KEY_INDEX_STEP`). Kept in sync with the v13 block of `schema.sql`.
const EMAIL_KEY_INDEX_STEP: &str = "-- nothing on SQLite";

/// ACME across several instances of one database: the challenge answers being offered
/// (whichever instance the CA reaches answers them) and the lease that lets one instance
/// order at a time. Kept in sync with the v14 block of `schema.sql`.
const ACME_SHARED_STEP: &str = "
CREATE TABLE acme_challenges (
    kind              TEXT NOT NULL,
    name              TEXT NOT NULL,
    key_authorization TEXT NOT NULL,
    expires_at        INTEGER NOT NULL,
    PRIMARY KEY (kind, name)
) WITHOUT ROWID, STRICT;
CREATE TABLE acme_order_leases (
    domains     TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    held_until  INTEGER NOT NULL
) WITHOUT ROWID, STRICT;
";

/// When the user approved a device authorization: the `auth_time` of the id_token its
/// tokens come with. Kept in sync with the v9 block of `schema.sql`.
const DEVICE_APPROVED_AT_STEP: &str = "
ALTER TABLE device_codes ADD COLUMN approved_at INTEGER;
";

/// The hashes of the refresh tokens and codes a user's unrevoked grants held when disabled, so
/// `oauthd client log` names the disabled user when one is presented later; each row
/// lasts as long as its token would have (see `store::client_log`).
const DISABLED_TOKENS_STEP: &str = "
CREATE TABLE disabled_user_tokens (
    token_hash BLOB PRIMARY KEY,
    client_id  TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    expires_at INTEGER                                 -- NULL: the token never expired
) WITHOUT ROWID, STRICT;
";

/// ACME accounts (one per directory URL) and the certificates they obtained, with the
/// state of their renewal, so a backup of the database restores a working HTTPS server.
const ACME_STEP: &str = "
CREATE TABLE acme_accounts (
    directory   TEXT PRIMARY KEY,
    credentials TEXT NOT NULL,
    created_at  INTEGER NOT NULL
) WITHOUT ROWID, STRICT;
CREATE TABLE acme_certificates (
    domains       TEXT PRIMARY KEY,
    chain_pem     TEXT,
    key_pem       TEXT,
    issuer        TEXT,
    not_before    INTEGER,
    not_after     INTEGER,
    issued_at     INTEGER,
    next_attempt  INTEGER,
    failures      INTEGER NOT NULL DEFAULT 0,
    last_error    TEXT
) WITHOUT ROWID, STRICT;
";

/// The last token-endpoint attempts per client, for `oauthd client log`; bounded per
/// client by `store::client_log::record`.
const CLIENT_LOG_STEP: &str = "
CREATE TABLE client_attempts (
    id         INTEGER PRIMARY KEY,
    client_id  TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    at         INTEGER NOT NULL,
    endpoint   TEXT NOT NULL,
    grant_type TEXT,
    outcome    TEXT NOT NULL,
    reason     TEXT NOT NULL,
    registered TEXT,
    presented  TEXT
) STRICT;
CREATE INDEX client_attempts_by_client ON client_attempts (client_id, id);
";

/// Clients gain the grant types they may use, an allowed-scope list (NULL: no
/// restriction) and the browser origins allowed to call them (CORS); client-credentials
/// tokens (no user, so no grant) and pending device authorizations get their own tables.
const CLIENT_KINDS_STEP: &str = "
ALTER TABLE clients ADD COLUMN
    grant_types TEXT NOT NULL DEFAULT 'authorization_code refresh_token';
ALTER TABLE clients ADD COLUMN allowed_scopes TEXT;
CREATE TABLE client_origins (
    client_id TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    origin    TEXT NOT NULL,
    PRIMARY KEY (client_id, origin)
) WITHOUT ROWID, STRICT;
CREATE INDEX client_origins_by_origin ON client_origins (origin);
CREATE TABLE client_access_tokens (
    token_hash BLOB PRIMARY KEY,
    client_id  TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    scope      TEXT,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID, STRICT;
CREATE INDEX client_access_tokens_by_client ON client_access_tokens (client_id);
CREATE INDEX client_access_tokens_by_expiry ON client_access_tokens (expires_at);
CREATE TABLE device_codes (
    device_code_hash BLOB PRIMARY KEY,
    user_code_hash   BLOB NOT NULL UNIQUE,
    client_id        TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    scope            TEXT,
    created_at       INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL,
    interval_secs    INTEGER NOT NULL,
    status           TEXT NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'approved', 'denied')),
    user_id          TEXT REFERENCES users (id) ON DELETE CASCADE,
    CHECK ((status = 'approved') = (user_id IS NOT NULL))
) WITHOUT ROWID, STRICT;
CREATE INDEX device_codes_by_expiry ON device_codes (expires_at);
";

/// Browser sessions, stored by the SHA-256 of the cookie's id (never the id itself), and
/// the URIs a client may ask to return to after RP-initiated logout. Kept in sync with the
/// sessions block of `schema.sql`.
const SESSIONS_STEP: &str = "
CREATE TABLE sessions (
    id_hash    BLOB PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    auth_time  INTEGER NOT NULL,
    last_seen  INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID, STRICT;
CREATE INDEX sessions_by_user ON sessions (user_id);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);
CREATE TABLE client_post_logout_uris (
    client_id TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    uri       TEXT NOT NULL,
    PRIMARY KEY (client_id, uri)
) STRICT;
";

/// Users get `email_key`, the folded email that uniqueness, lookups and the throttle all
/// use (`crate::email::key`, called through `email_key::register`). Accounts whose keys
/// now collide are all kept, never merged: `migrate` warns and `oauthd check` lists them.
const EMAIL_KEY_STEP: &str = "
ALTER TABLE users ADD COLUMN email_key TEXT NOT NULL DEFAULT '';
UPDATE users SET email_key = oauthd_email_key(email);
CREATE INDEX users_by_email_key ON users (email_key);
CREATE TRIGGER users_email_key_unique_on_insert BEFORE INSERT ON users
WHEN EXISTS (SELECT 1 FROM users WHERE email_key = NEW.email_key)
BEGIN SELECT RAISE(ABORT, 'UNIQUE constraint failed: users.email_key'); END;
CREATE TRIGGER users_email_key_unique_on_update BEFORE UPDATE OF email_key ON users
WHEN EXISTS (SELECT 1 FROM users WHERE email_key = NEW.email_key AND id <> NEW.id)
BEGIN SELECT RAISE(ABORT, 'UNIQUE constraint failed: users.email_key'); END;
";

/// OpenID Connect core: per-client id_token algorithm, allowed scopes and first-party flag;
/// the nonce bound to a code; the sign-in time of a grant (`auth_time`); signing keys.
const OIDC_CORE_STEP: &str = "
ALTER TABLE clients ADD COLUMN first_party INTEGER NOT NULL DEFAULT 1 CHECK (first_party IN (0, 1));
ALTER TABLE clients ADD COLUMN id_token_alg TEXT NOT NULL DEFAULT 'RS256'
    CHECK (id_token_alg IN ('RS256', 'ES256', 'EdDSA'));
ALTER TABLE authorization_codes ADD COLUMN nonce TEXT;
ALTER TABLE grants ADD COLUMN auth_time INTEGER;
CREATE TABLE signing_keys (
    kid           TEXT PRIMARY KEY,
    alg           TEXT NOT NULL CHECK (alg IN ('RS256', 'ES256', 'EdDSA')),
    private_pkcs8 BLOB NOT NULL,
    public_jwk    TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    signs_from    INTEGER NOT NULL
) STRICT;
";

/// What each user allowed each third-party client (the scope names), until they revoke
/// the app on the account page. Kept in sync with the consents block of `schema.sql`.
const CONSENT_STEP: &str = "
CREATE TABLE consents (
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    scope      TEXT NOT NULL,
    granted_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, client_id)
) WITHOUT ROWID, STRICT;
CREATE INDEX consents_by_client ON consents (client_id);
";

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

/// Refuses, for a command that only reads, a database whose schema is not this binary's
/// (an empty file included): reading it would need a migration, which is a write.
pub fn require_current(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    match version {
        SCHEMA_VERSION => Ok(()),
        found if found > SCHEMA_VERSION => Err(StoreError::TooNew {
            path: path.to_owned(),
            found,
            known: SCHEMA_VERSION,
        }),
        found => Err(StoreError::NeedsMigration {
            path: path.to_owned(),
            found,
            known: SCHEMA_VERSION,
        }),
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
    super::email_key::register(conn)?;
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
        if version != SCHEMA_VERSION {
            report_email_collisions(&tx)?;
        }
    }
    if version != SCHEMA_VERSION {
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    }
    tx.commit()?;
    Ok(())
}

/// Warns, after a migration, about accounts whose emails fold to one key. Counts only:
/// `oauthd check` names them.
fn report_email_collisions(conn: &Connection) -> Result<(), StoreError> {
    let collisions = super::users::email_collisions(conn)?;
    if !collisions.is_empty() {
        let accounts: usize = collisions.iter().map(Vec::len).sum();
        tracing::warn!(
            groups = collisions.len(),
            accounts,
            "some accounts share an email once letter case is folded; they were kept apart, \
             cannot sign in until resolved, and `oauthd check` lists them"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A version-1 database (the schema before email keys) holding `emails`.
    fn v1_database(path: &Path, emails: &[&str]) {
        let conn = Connection::open(path).expect("open");
        conn.execute_batch(include_str!("../../tests/it/fixtures/schema_v1.sql"))
            .expect("v1 schema");
        conn.pragma_update(None, "user_version", 1).expect("v1");
        for (n, email) in emails.iter().enumerate() {
            conn.execute(
                "INSERT INTO users VALUES (?1, ?2, NULL, 'h', 0, 0, 0)",
                rusqlite::params![n.to_string(), email],
            )
            .expect("v1 user");
        }
    }

    #[test]
    fn the_email_key_step_folds_every_account_and_keeps_collisions_apart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("v1.db");
        v1_database(&path, &["Ünï@x.io", "ünï@x.io", "Solo@X.io"]);
        let mut conn = Connection::open(&path).expect("open");
        migrate(&mut conn, &path).expect("migrate");
        let keys: Vec<(String, String)> = conn
            .prepare("SELECT email, email_key FROM users ORDER BY id")
            .expect("prepare")
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows");
        assert_eq!(
            keys,
            [
                ("Ünï@x.io".into(), "ünï@x.io".into()),
                ("ünï@x.io".into(), "ünï@x.io".into()),
                ("Solo@X.io".into(), "solo@x.io".into()),
            ]
        );
        assert_eq!(
            super::super::users::email_collisions(&conn).expect("collisions"),
            [vec!["Ünï@x.io".to_owned(), "ünï@x.io".to_owned()]]
        );
        // From now on the key is unique, even against a collided one.
        let duplicate = conn.execute(
            "INSERT INTO users (id, email, password_hash, created_at, updated_at, email_key)
             VALUES ('9', 'ÜNÏ@x.io', 'h', 0, 0, 'ünï@x.io')",
            [],
        );
        assert!(duplicate.is_err(), "{duplicate:?}");
    }

    /// A v1 file with a client in it is brought to the current version: the client stays
    /// and may introspect only its own tokens, and access tokens gained their own scope.
    #[test]
    fn a_v1_database_gains_introspect_any_and_token_scope() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("v1.db");
        v1_database(&path, &[]);
        let mut conn = Connection::open(&path).expect("open");
        conn.execute(
            "INSERT INTO clients (id, name, secret_hash, is_public, created_at)
                 VALUES ('c', 'C', x'00', 0, 0)",
            [],
        )
        .expect("v1 client");
        migrate(&mut conn, &path).expect("migrate");
        let (version, introspect_any, scope_columns): (i64, bool, i64) = conn
            .query_row(
                "SELECT (SELECT user_version FROM pragma_user_version),
                        (SELECT introspect_any FROM clients WHERE id = 'c'),
                        (SELECT count(*) FROM pragma_table_info('access_tokens')
                         WHERE name = 'scope')",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .expect("inspect");
        assert_eq!(version, SCHEMA_VERSION);
        assert!(!introspect_any);
        assert_eq!(scope_columns, 1);
    }
}
