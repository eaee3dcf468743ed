//! The link doctor's attempt log: the last token-endpoint, authorization and device-page
//! attempts of each client, for `oauthd client log`. Rows hold reason codes and redirect
//! URIs only (never a secret, code or token), and each client keeps at most [`KEEP_PER_CLIENT`], pruned on insert,
//! so a hammering client cannot grow the file. Attempts naming no registered client are
//! not stored at all: their number would be unbounded.

use serde::Serialize;

use super::sql::{execute_later_skipping_locked, Db};
use super::{iso8601, now, StoreError};
use crate::oauth::{TokenFacts, RETENTION};

/// Rows kept per client; older ones are deleted as new ones arrive.
pub const KEEP_PER_CLIENT: i64 = 200;

/// One attempt to record. The endpoint decides the reason; this only stores it.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub client_id: String,
    pub endpoint: &'static str,
    pub grant_type: Option<&'static str>,
    pub outcome: &'static str,
    pub reason: &'static str,
    /// The redirect URI the authorization was made for (on a mismatch at the token
    /// endpoint), or the client's registered ones, space-separated (at authorization).
    pub registered: Option<String>,
    /// The redirect URI presented, already cut short (on a mismatch).
    pub presented: Option<String>,
}

/// One logged attempt, as `client log` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub at: String,
    pub endpoint: String,
    pub grant_type: Option<String>,
    pub outcome: String,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registered_redirect_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub presented_redirect_uri: Option<String>,
}

/// Stores `attempt` if its client exists, then drops that client's rows beyond
/// [`KEEP_PER_CLIENT`]. Runs inside the caller's (writer's) transaction; neither write is
/// looked at, so on PostgreSQL both go out with the commit. Concurrent writers there skip
/// the old rows another one is deleting, instead of each waiting for the one before.
pub fn record(db: &impl Db, attempt: &Attempt) -> Result<(), StoreError> {
    // The casts give PostgreSQL the types of parameters that only a SELECT list names.
    db.execute_later(
        "INSERT INTO client_attempts
             (client_id, at, endpoint, grant_type, outcome, reason, registered, presented)
         SELECT ?1, CAST(?2 AS BIGINT), CAST(?3 AS TEXT), CAST(?4 AS TEXT), CAST(?5 AS TEXT),
                CAST(?6 AS TEXT), CAST(?7 AS TEXT), CAST(?8 AS TEXT)
         WHERE EXISTS (SELECT 1 FROM clients WHERE id = ?1)",
        &[
            &attempt.client_id,
            &now(),
            &attempt.endpoint,
            &attempt.grant_type,
            &attempt.outcome,
            &attempt.reason,
            &attempt.registered,
            &attempt.presented,
        ],
    )?;
    execute_later_skipping_locked(
        db,
        "DELETE FROM client_attempts WHERE id IN (
             SELECT id FROM client_attempts WHERE client_id = ?1 AND id <= (
                 SELECT id FROM client_attempts WHERE client_id = ?1
                 ORDER BY id DESC LIMIT 1 OFFSET ?2)/* lock */)",
        &[&attempt.client_id, &KEEP_PER_CLIENT],
    )?;
    Ok(())
}

/// The client's attempts at or after `since`, newest first, at most `limit`.
pub fn recent(
    db: &impl Db,
    client_id: &str,
    since: Option<i64>,
    limit: Option<i64>,
) -> Result<Vec<Entry>, StoreError> {
    db.query_all(
        "SELECT at, endpoint, grant_type, outcome, reason, registered, presented FROM client_attempts
         WHERE client_id = ?1 AND at >= ?2 ORDER BY id DESC LIMIT ?3",
        &[&client_id, &since.unwrap_or(i64::MIN), &limit.unwrap_or(i64::MAX)],
        |row| {
            Ok(Entry {
                at: iso8601(row.get(0)?),
                endpoint: row.get(1)?,
                grant_type: row.get(2)?,
                outcome: row.get(3)?,
                reason: row.get(4)?,
                registered_redirect_uri: row.get(5)?,
                presented_redirect_uri: row.get(6)?,
            })
        },
    )
}

/// Whether the user of grant `grant_id` is disabled (false for no such grant).
pub fn grant_user_disabled(db: &impl Db, grant_id: i64) -> Result<bool, StoreError> {
    let disabled = db.query_opt(
        "SELECT u.disabled FROM grants g JOIN users u ON u.id = g.user_id WHERE g.id = ?1",
        &[&grant_id],
        |row| row.get(0),
    )?;
    Ok(disabled.unwrap_or(false))
}

/// Remembers the hashes of the refresh tokens and codes of `user_id`'s unrevoked grants,
/// just before disabling the user revokes (deletes) them, so a client presenting one later
/// is told apart from one presenting garbage. Rows past their token's expiry (by
/// `oauth::RETENTION`) are deleted here: the table holds at most the tokens users held
/// when disabled, each until it would have expired.
pub fn remember_disabled_user_tokens(db: &impl Db, user_id: &str) -> Result<(), StoreError> {
    db.execute(
        "DELETE FROM disabled_user_tokens WHERE expires_at < ?1",
        &[&RETENTION.expired_by(now())],
    )?;
    db.execute(
        "INSERT INTO disabled_user_tokens (token_hash, client_id, expires_at)
         SELECT r.token_hash, g.client_id, r.expires_at FROM refresh_tokens r
         JOIN grants g ON g.id = r.grant_id
         WHERE g.user_id = ?1 AND g.revoked_at IS NULL
         UNION ALL
         SELECT c.code_hash, g.client_id, c.expires_at FROM authorization_codes c
         JOIN grants g ON g.id = c.grant_id
         WHERE g.user_id = ?1 AND g.revoked_at IS NULL
         ON CONFLICT DO NOTHING",
        &[&user_id],
    )?;
    Ok(())
}

/// The facts of `token_hash` (a refresh token's or a code's) if it was held when its user
/// was disabled; whether it would still be live is the rule book's call.
pub fn disabled_user_token(
    db: &impl Db,
    token_hash: &[u8],
) -> Result<Option<TokenFacts>, StoreError> {
    db.query_opt(
        "SELECT expires_at FROM disabled_user_tokens WHERE token_hash = ?1",
        &[&token_hash],
        |row| {
            Ok(TokenFacts {
                expires_at: row.get(0)?,
                grant_revoked: false,
                rotated_out: false,
                user_disabled: false,
            })
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_backends::{on_both_backends, seed_user_and_client};

    fn attempt(client_id: &str, reason: &'static str) -> Attempt {
        Attempt {
            client_id: client_id.into(),
            endpoint: "token",
            grant_type: Some("authorization_code"),
            outcome: "refused",
            reason,
            registered: Some("https://a.example/cb".into()),
            presented: None,
        }
    }

    fn client_log_verbs(db: &impl Db) {
        seed_user_and_client(db);
        record(db, &attempt("unknown", "invalid_client")).expect("record");
        for n in 0..KEEP_PER_CLIENT + 2 {
            let reason = if n == KEEP_PER_CLIENT + 1 {
                "redirect_uri_mismatch"
            } else {
                "ok"
            };
            record(db, &attempt("c", reason)).expect("record");
        }
        let all = recent(db, "c", None, None).expect("recent");
        assert_eq!(all.len() as i64, KEEP_PER_CLIENT, "pruned to the newest");
        let newest = &all[0];
        assert_eq!(
            (
                newest.endpoint.as_str(),
                newest.grant_type.as_deref(),
                newest.reason.as_str()
            ),
            ("token", Some("authorization_code"), "redirect_uri_mismatch")
        );
        assert_eq!(
            newest.registered_redirect_uri.as_deref(),
            Some("https://a.example/cb")
        );
        assert_eq!(newest.presented_redirect_uri, None);
        assert_eq!(recent(db, "c", None, Some(3)).expect("recent").len(), 3);
        assert!(recent(db, "c", Some(now() + 60), None)
            .expect("recent")
            .is_empty());
        assert!(
            recent(db, "unknown", None, None)
                .expect("recent")
                .is_empty(),
            "not stored"
        );

        let grant = db
            .query_one(
                "INSERT INTO grants (user_id, client_id, created_at) VALUES ('u', 'c', 0) RETURNING id",
                &[],
                |r| r.get::<i64>(0),
            )
            .expect("grant");
        db.execute(
            "INSERT INTO refresh_tokens (token_hash, grant_id, created_at, expires_at)
             VALUES (?1, ?2, 0, NULL)",
            &[&[1u8; 32], &grant],
        )
        .expect("refresh token");
        db.execute(
            "INSERT INTO authorization_codes (code_hash, grant_id, redirect_uri, created_at, expires_at)
             VALUES (?1, ?2, 'https://a.example/cb', 0, ?3)",
            &[&[2u8; 32], &grant, &(now() + 600)],
        )
        .expect("code");
        assert!(!grant_user_disabled(db, grant).expect("disabled"));
        assert!(!grant_user_disabled(db, grant + 1).expect("no such grant"));
        db.execute("UPDATE users SET disabled = 1 WHERE id = 'u'", &[])
            .expect("disable");
        assert!(grant_user_disabled(db, grant).expect("disabled"));

        remember_disabled_user_tokens(db, "u").expect("remember");
        remember_disabled_user_tokens(db, "u").expect("remember again");
        let refresh = disabled_user_token(db, &[1u8; 32])
            .expect("lookup")
            .expect("remembered");
        assert_eq!(refresh.expires_at, None);
        let code = disabled_user_token(db, &[2u8; 32])
            .expect("lookup")
            .expect("remembered");
        assert!(code.expires_at.is_some());
        assert!(disabled_user_token(db, &[3u8; 32])
            .expect("lookup")
            .is_none());
    }
    on_both_backends!(client_log_verbs);
}
