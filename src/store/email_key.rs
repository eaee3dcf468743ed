//! The SQL function `oauthd_email_key`, so SQL can match emails by their folded key. It
//! sits apart from `users` because the audit trail's filter needs it too.

use rusqlite::functions::FunctionFlags;
use rusqlite::Connection;

use crate::email;

/// Makes `oauthd_email_key(email)` ([`email::key`]; NULL stays NULL) callable from SQL on
/// `conn`: the migration that adds the key and the audit filter use it. Connections only
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
