//! Revocation: by a client of one of its tokens (RFC 7009), of a whole grant, and in bulk
//! by user, client or everything (admin).

use rusqlite::{params, Connection, OptionalExtension};

use super::super::{now, StoreError};
use super::{GrantRef, Origin, SecretHash};

/// RFC 7009 revocation by a client of one of its own tokens: an access token is deleted;
/// a refresh token revokes its whole grant. Tokens of other clients are left alone.
/// Returns whether anything was revoked.
pub fn revoke_token(
    tx: &Connection,
    token_hash: &SecretHash,
    client_id: &str,
    origin: Origin<'_>,
) -> Result<bool, StoreError> {
    let refresh_grant: Option<(i64, String)> = tx
        .prepare_cached(
            "SELECT g.id, u.email FROM refresh_tokens r JOIN grants g ON g.id = r.grant_id
             JOIN users u ON u.id = g.user_id WHERE r.token_hash = ?1 AND g.client_id = ?2",
        )?
        .query_row(params![token_hash, client_id], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    let revoked_email = if let Some((grant_id, email)) = refresh_grant {
        revoke_grant(tx, grant_id)?;
        Some(email)
    } else {
        let email: Option<String> = tx
            .prepare_cached(
                "SELECT u.email FROM access_tokens a JOIN grants g ON g.id = a.grant_id
                 JOIN users u ON u.id = g.user_id WHERE a.token_hash = ?1 AND g.client_id = ?2",
            )?
            .query_row(params![token_hash, client_id], |r| r.get(0))
            .optional()?;
        if email.is_some() {
            tx.prepare_cached("DELETE FROM access_tokens WHERE token_hash = ?1")?
                .execute([token_hash])?;
        }
        email
    };
    if let Some(email) = &revoked_email {
        origin.record(tx, "token_revoke", email, client_id, None)?;
    }
    Ok(revoked_email.is_some())
}

/// Revokes a grant because of a detected attack — a replayed code (`code_replay`) or a
/// reused refresh token (`refresh_reuse`) — and audits `event`.
pub fn revoke_after_attack(
    tx: &Connection,
    grant: GrantRef<'_>,
    origin: Origin<'_>,
    event: &str,
    detail: &str,
) -> Result<(), StoreError> {
    revoke_grant(tx, grant.grant_id)?;
    origin.record(tx, event, grant.user_email, grant.client_id, Some(detail))
}

/// Marks a grant revoked and deletes its tokens and unused codes' power: the code row is
/// kept (marked used) so a later replay is still recognised.
pub fn revoke_grant(conn: &Connection, grant_id: i64) -> Result<(), StoreError> {
    let at = now();
    conn.prepare_cached("UPDATE grants SET revoked_at = coalesce(revoked_at, ?2) WHERE id = ?1")?
        .execute(params![grant_id, at])?;
    conn.prepare_cached("DELETE FROM access_tokens WHERE grant_id = ?1")?
        .execute([grant_id])?;
    conn.prepare_cached("DELETE FROM refresh_tokens WHERE grant_id = ?1")?
        .execute([grant_id])?;
    conn.prepare_cached(
        "UPDATE authorization_codes SET used_at = coalesce(used_at, ?2) WHERE grant_id = ?1",
    )?
    .execute(params![grant_id, at])?;
    Ok(())
}

fn revoke_grants_matching(
    conn: &Connection,
    sql_select_ids: &str,
    arg: &str,
) -> Result<usize, StoreError> {
    let ids: Vec<i64> = conn
        .prepare(sql_select_ids)?
        .query_map([arg], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for id in &ids {
        revoke_grant(conn, *id)?;
    }
    Ok(ids.len())
}

/// Revokes every live grant of a user. Call inside the caller's transaction.
pub fn revoke_where_user(conn: &Connection, user_id: &str) -> Result<usize, StoreError> {
    revoke_grants_matching(
        conn,
        "SELECT id FROM grants WHERE user_id = ?1 AND revoked_at IS NULL",
        user_id,
    )
}

/// Revokes every live grant of a client. Call inside the caller's transaction.
pub fn revoke_where_client(conn: &Connection, client_id: &str) -> Result<usize, StoreError> {
    revoke_grants_matching(
        conn,
        "SELECT id FROM grants WHERE client_id = ?1 AND revoked_at IS NULL",
        client_id,
    )
}

/// Revokes every live grant. Call inside the caller's transaction.
pub fn revoke_all(conn: &Connection) -> Result<usize, StoreError> {
    revoke_grants_matching(
        conn,
        "SELECT id FROM grants WHERE revoked_at IS NULL AND ?1 = ?1",
        "",
    )
}
