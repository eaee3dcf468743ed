//! The SQL function `oauthd_email_key`, so SQLite's migration to the folded email key
//! (schema version 3) can fill the key in SQL. Only that migration needs it: verbs fold
//! in Rust ([`email::key`]), the same on every backend.

use rusqlite::functions::FunctionFlags;
use rusqlite::Connection;

use crate::email;

/// Makes `oauthd_email_key(email)` ([`email::key`]; NULL stays NULL) callable from SQL on
/// `conn`: the migration that adds the key uses it. Connections only
/// have it once registered (the sqlite3 shell never does), so no trigger, view or index
/// may call it.
pub(super) fn register(conn: &Connection) -> rusqlite::Result<()> {
    conn.create_scalar_function(
        "oauthd_email_key",
        1,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| Ok(ctx.get::<Option<String>>(0)?.map(|e| email::key(&e))),
    )
}
