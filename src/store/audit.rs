//! The audit trail: who did what, from where, when. It records events, never secrets:
//! no password, client secret, code or token ever reaches this table. Input that may be a
//! secret, such as an unknown "email" (often a password typed into the wrong field), is
//! recorded only as a [`pseudonym`].

use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;

use super::sql::Db;
use super::{iso8601, now, Conn, Store, StoreError};

/// One event to record. `event` is a short stable name such as `login_ok`.
#[derive(Debug, Default, Clone)]
pub struct Event<'a> {
    pub event: &'a str,
    pub user_email: Option<&'a str>,
    pub client_id: Option<&'a str>,
    pub remote_addr: Option<&'a str>,
    pub detail: Option<&'a str>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub at: String,
    pub event: String,
    pub user_email: Option<String>,
    pub client_id: Option<String>,
    pub remote_addr: Option<String>,
    pub detail: Option<String>,
}

/// Which entries `audit` shows.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    pub user_email: Option<String>,
    pub client_id: Option<String>,
    pub since: Option<i64>,
    pub limit: Option<i64>,
}

/// Appends an event. Call it inside the transaction of the change it describes, so the
/// trail and the change commit together.
pub fn record(db: &impl Db, event: &Event<'_>) -> Result<(), StoreError> {
    db.execute_later(
        "INSERT INTO audit_log (at, event, user_email, client_id, remote_addr, detail)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        &[
            &now(),
            &event.event,
            &event.user_email,
            &event.client_id,
            &event.remote_addr,
            &event.detail,
        ],
    )?;
    Ok(())
}

/// The remote address recorded for changes made from the command line.
pub const CLI_ADDR: &str = "cli";

/// The audit event of an admin change. It owns its detail, which is often formatted
/// from what the change returned (a count, a name).
#[derive(Debug, Default, Clone)]
pub struct AdminEvent<'a> {
    pub event: &'a str,
    pub user_email: Option<&'a str>,
    pub client_id: Option<&'a str>,
    pub detail: Option<String>,
}

/// Runs one admin change and records its audit event (from [`CLI_ADDR`]) in the same
/// transaction, so the trail and the change commit together or not at all.
///
/// `event` describes the change from what it returned, or answers `None` when nothing
/// changed (no such user, not a member): then nothing is recorded.
pub fn admin_change<'a, T>(
    store: &Store,
    change: impl FnOnce(&Conn<'_>) -> Result<T, StoreError>,
    event: impl FnOnce(&T) -> Option<AdminEvent<'a>>,
) -> Result<T, StoreError> {
    store.transaction(|tx| {
        let value = change(tx)?;
        if let Some(described) = event(&value) {
            record(
                tx,
                &Event {
                    event: described.event,
                    user_email: described.user_email,
                    client_id: described.client_id,
                    remote_addr: Some(CLI_ADDR),
                    detail: described.detail.as_deref(),
                },
            )?;
        }
        Ok(value)
    })
}

/// Hex digits of the HMAC a pseudonym keeps: 48 bits keep apart the few texts an audit
/// reader compares, while saying as little as possible about the text behind them.
const PSEUDONYM_HEX_DIGITS: usize = 12;

/// The `oauthd_meta` row holding the pseudonym key.
const PSEUDONYM_KEY_NAME: &str = "audit_pseudonym_key";

/// A short keyed digest (HMAC-SHA256, 12 hex digits) of `text`, for input that must not
/// be stored because it may be a secret. Equal texts get equal pseudonyms, so repeats stay
/// correlatable. The key is generated at first use, inside the caller's write
/// transaction, and kept in `oauthd_meta`.
pub fn pseudonym(db: &impl Db, text: &str) -> Result<String, StoreError> {
    let key = pseudonym_key(db)?;
    // HMAC takes a key of any length, so this cannot fail; no input reaches it.
    #[allow(clippy::expect_used)]
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC accepts any key");
    mac.update(text.as_bytes());
    let digest = mac.finalize().into_bytes();
    let mut hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    hex.truncate(PSEUDONYM_HEX_DIGITS);
    Ok(hex)
}

/// The pseudonym key (64 hex digits from the OS generator), created on first use.
fn pseudonym_key(db: &impl Db) -> Result<String, StoreError> {
    let existing: Option<String> = db.query_opt(
        "SELECT value FROM oauthd_meta WHERE key = ?1",
        &[&PSEUDONYM_KEY_NAME],
        |r| r.get(0),
    )?;
    if let Some(key) = existing {
        return Ok(key);
    }
    let mut bytes = [0u8; 32];
    crate::secret::fill_random(&mut bytes);
    let key: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    db.execute(
        "INSERT INTO oauthd_meta (key, value) VALUES (?1, ?2)",
        &[&PSEUDONYM_KEY_NAME, &key],
    )?;
    Ok(key)
}

/// Entries matching `filter`, oldest first. The user filter matches emails by their
/// folded key, as every other email lookup does; it scans the trail (an admin command),
/// newest first, folding each stored email here, so neither database needs the fold.
pub fn query(db: &impl Db, filter: &Filter) -> Result<Vec<Entry>, StoreError> {
    let user_key = filter.user_email.as_deref().map(crate::email::key);
    // A negative limit is none, as SQLite's LIMIT says.
    let limit = filter.limit.filter(|l| *l >= 0).unwrap_or(i64::MAX);
    let mut entries: Vec<(i64, i64, Entry)> = db
        .query_all(
            "SELECT id, at, event, user_email, client_id, remote_addr, detail FROM audit_log
             WHERE (?1 = 0 OR user_email IS NOT NULL)
               AND (client_id = ?2 OR ?2 IS NULL)
               AND (at >= ?3 OR ?3 IS NULL)
             ORDER BY id DESC LIMIT ?4",
            &[
                &i64::from(user_key.is_some()),
                &filter.client_id,
                &filter.since,
                // The SQL limit only where no row is filtered out after it.
                &if user_key.is_some() { i64::MAX } else { limit },
            ],
            |r| {
                let user_email: Option<String> = r.get(3)?;
                let wanted = match (&user_key, &user_email) {
                    (Some(key), Some(email)) => crate::email::key(email) == *key,
                    (Some(_), None) => false,
                    (None, _) => true,
                };
                if !wanted {
                    return Ok(None);
                }
                let at: i64 = r.get(1)?;
                Ok(Some((
                    at,
                    r.get::<i64>(0)?,
                    Entry {
                        at: iso8601(at),
                        event: r.get(2)?,
                        user_email,
                        client_id: r.get(4)?,
                        remote_addr: r.get(5)?,
                        detail: r.get(6)?,
                    },
                )))
            },
        )?
        .into_iter()
        .flatten()
        .take(usize::try_from(limit).unwrap_or(usize::MAX))
        .collect();
    entries.sort_by_key(|(at, id, _)| (*at, *id));
    Ok(entries.into_iter().map(|(_, _, entry)| entry).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pseudonyms_are_short_stable_keyed_and_distinct() {
        let conn = rusqlite::Connection::open_in_memory().expect("open");
        conn.execute_batch("CREATE TABLE oauthd_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);")
            .expect("meta");
        let first = pseudonym(&conn, "hunter2-typed-as-email").expect("pseudonym");
        assert_eq!(first.len(), PSEUDONYM_HEX_DIGITS);
        assert!(first.chars().all(|c| c.is_ascii_hexdigit()), "{first}");
        assert_eq!(
            pseudonym(&conn, "hunter2-typed-as-email").expect("again"),
            first
        );
        assert_ne!(
            pseudonym(&conn, "hunter3-typed-as-email").expect("other"),
            first
        );
        // Another database has another key, so the same text gets another pseudonym.
        let other = rusqlite::Connection::open_in_memory().expect("open");
        other
            .execute_batch("CREATE TABLE oauthd_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);")
            .expect("meta");
        assert_ne!(
            pseudonym(&other, "hunter2-typed-as-email").expect("keyed"),
            first
        );
    }

    fn audit_verbs(db: &impl Db) {
        let first = pseudonym(db, "hunter2").expect("pseudonym");
        assert_eq!(pseudonym(db, "hunter2").expect("again"), first);
        assert_ne!(pseudonym(db, "hunter3").expect("other"), first);
        record(
            db,
            &Event {
                event: "login_failed",
                user_email: Some(&first),
                remote_addr: Some("192.0.2.1"),
                ..Event::default()
            },
        )
        .expect("record");
        record(
            db,
            &Event {
                event: "user_add",
                detail: Some("by cli"),
                ..Event::default()
            },
        )
        .expect("record");
        let rows = db
            .query_all(
                "SELECT event, user_email, client_id, remote_addr, detail, at FROM audit_log ORDER BY id",
                &[],
                |r| {
                    Ok((
                        r.get::<String>(0)?,
                        r.get::<Option<String>>(1)?,
                        r.get::<Option<String>>(2)?,
                        r.get::<Option<String>>(3)?,
                        r.get::<Option<String>>(4)?,
                        r.get::<i64>(5)?,
                    ))
                },
            )
            .expect("rows");
        let now = now();
        assert!(
            rows.iter().all(|row| (now - 5..=now).contains(&row.5)),
            "{rows:?}"
        );
        let rows: Vec<_> = rows
            .into_iter()
            .map(|row| (row.0, row.1, row.2, row.3, row.4))
            .collect();
        assert_eq!(
            rows,
            [
                (
                    "login_failed".into(),
                    Some(first),
                    None,
                    Some("192.0.2.1".into()),
                    None
                ),
                ("user_add".into(), None, None, None, Some("by cli".into())),
            ]
        );
    }
    crate::store::test_backends::on_both_backends!(audit_verbs);

    fn audit_query(db: &impl Db) {
        for (event, user_email, client_id) in [
            ("a", Some("Ünï@x.io"), Some("app")),
            ("b", Some("other@x.io"), Some("app")),
            ("c", None, Some("tool")),
            ("d", Some("ünÏ@X.IO"), None),
            ("e", Some("UNI@x.io"), Some("app")),
        ] {
            record(
                db,
                &Event {
                    event,
                    user_email,
                    client_id,
                    ..Event::default()
                },
            )
            .expect("record");
        }
        let events = |filter: Filter| -> Vec<String> {
            query(db, &filter)
                .expect("query")
                .into_iter()
                .map(|e| e.event)
                .collect()
        };
        let user = |email: &str| Filter {
            user_email: Some(email.into()),
            ..Filter::default()
        };
        assert_eq!(events(Filter::default()), ["a", "b", "c", "d", "e"]);
        assert_eq!(events(user("ÜNÏ@x.io")), ["a", "d"], "by folded key");
        assert_eq!(
            events(Filter {
                limit: Some(1),
                ..user("ünï@x.io")
            }),
            ["d"],
            "the newest ones that match"
        );
        assert_eq!(
            events(Filter {
                limit: Some(2),
                ..Filter::default()
            }),
            ["d", "e"]
        );
        assert_eq!(
            events(Filter {
                client_id: Some("app".into()),
                ..user("uni@x.io")
            }),
            ["e"]
        );
        assert_eq!(
            events(Filter {
                since: Some(now() + 3600),
                ..Filter::default()
            }),
            Vec::<String>::new()
        );
        assert_eq!(
            events(Filter {
                limit: Some(-1),
                ..user("other@X.io")
            }),
            ["b"],
            "a negative limit is none"
        );
    }
    crate::store::test_backends::on_both_backends!(audit_query);
}
