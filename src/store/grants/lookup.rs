//! Read-only lookups of live tokens: bearer validation, introspection, `oauthd check`.

use rusqlite::{params, Connection, OptionalExtension};

use super::super::{now, StoreError};
use super::SecretHash;
use crate::oauth::{ClientId, Scope};

/// What a live access token stands for.
#[derive(Debug, Clone)]
pub struct AccessInfo {
    pub user_id: String,
    pub email: String,
    pub name: Option<String>,
    pub client_id: ClientId,
    pub scope: Option<Scope>,
    pub issued_at: i64,
    pub expires_at: i64,
}

/// Looks up a live access token: not expired, grant not revoked, user not disabled.
pub fn find_access(
    conn: &Connection,
    token_hash: &SecretHash,
) -> Result<Option<AccessInfo>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT u.id, u.email, u.name, g.client_id, coalesce(a.scope, g.scope), a.created_at,
                a.expires_at
         FROM access_tokens a
         JOIN grants g ON g.id = a.grant_id
         JOIN users u ON u.id = g.user_id
         WHERE a.token_hash = ?1 AND a.expires_at > ?2 AND g.revoked_at IS NULL AND u.disabled = 0",
    )?;
    Ok(stmt
        .query_row(params![token_hash, now()], access_info_from_row)
        .optional()?)
}

/// Reads the columns both token lookups select, in their order.
fn access_info_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AccessInfo> {
    Ok(AccessInfo {
        user_id: r.get(0)?,
        email: r.get(1)?,
        name: r.get(2)?,
        client_id: ClientId::new(r.get::<_, String>(3)?),
        scope: r.get::<_, Option<String>>(4)?.map(Scope::new),
        issued_at: r.get(5)?,
        expires_at: r.get(6)?,
    })
}

/// Looks up a live (never rotated-out, unexpired) refresh token, for introspection.
pub fn find_refresh(
    conn: &Connection,
    token_hash: &SecretHash,
) -> Result<Option<AccessInfo>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT u.id, u.email, u.name, g.client_id, g.scope, r.created_at, coalesce(r.expires_at, 0)
         FROM refresh_tokens r
         JOIN grants g ON g.id = r.grant_id
         JOIN users u ON u.id = g.user_id
         WHERE r.token_hash = ?1 AND r.rotated_at IS NULL AND (r.expires_at IS NULL OR r.expires_at > ?2)
           AND g.revoked_at IS NULL AND u.disabled = 0",
    )?;
    Ok(stmt
        .query_row(params![token_hash, now()], access_info_from_row)
        .optional()?)
}

/// Live access and refresh tokens, for `oauthd check`.
pub fn count_live_tokens(conn: &Connection) -> Result<(i64, i64), StoreError> {
    let at = now();
    let access = conn.query_row(
        "SELECT count(*) FROM access_tokens a JOIN grants g ON g.id = a.grant_id
         WHERE a.expires_at > ?1 AND g.revoked_at IS NULL",
        [at],
        |r| r.get(0),
    )?;
    let refresh = conn.query_row(
        "SELECT count(*) FROM refresh_tokens r JOIN grants g ON g.id = r.grant_id
         WHERE r.rotated_at IS NULL AND (r.expires_at IS NULL OR r.expires_at > ?1) AND g.revoked_at IS NULL",
        [at],
        |r| r.get(0),
    )?;
    Ok((access, refresh))
}
