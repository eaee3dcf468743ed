//! Refreshing a grant: keeping the refresh token (confidential clients, bound secrets) or
//! rotating it with the grace rule and reuse detection (public clients).

use rusqlite::{params, Connection, OptionalExtension};

use super::super::{now, StoreError};
use super::{
    insert_access_token, insert_refresh_token, revoke_grant, NewTokens, Origin, Refusal, TokenHash,
};

/// A stored refresh token and its grant, handed to the refresh's checks.
#[derive(Debug, Clone)]
pub struct RefreshGrant {
    pub grant_id: i64,
    pub user_email: String,
    pub client_id: String,
    pub client_is_public: bool,
    pub scope: Option<String>,
    pub bound_secret_hash: Option<Vec<u8>>,
}

/// The outcome of a refresh: whether a new refresh token replaced the presented one.
#[derive(Debug, PartialEq, Eq)]
pub enum RefreshOutcome {
    Kept,
    Rotated,
}

/// Refreshes a grant: finds the refresh token and its grant; `check`
/// verifies the client (a refusal changes nothing); then either keeps the refresh token
/// (confidential clients and public clients with a bound secret) or rotates it, applying
/// the grace rule for a rotated-out token presented again within `grace_secs`, and
/// revoking the grant on any other reuse.
pub fn refresh<E>(
    tx: &Connection,
    refresh_hash: &TokenHash,
    tokens: &NewTokens,
    grace_secs: i64,
    origin: Origin<'_>,
    check: impl FnOnce(&RefreshGrant) -> Result<(), E>,
) -> Result<Result<(RefreshGrant, RefreshOutcome), Refusal<E>>, StoreError> {
    let at = now();
    let found = tx
        .prepare_cached(
            "SELECT g.id, u.email, g.client_id, cl.is_public, g.scope, g.bound_secret_hash,
                    r.expires_at, r.rotated_at, r.successor_hash,
                    g.revoked_at IS NOT NULL OR u.disabled
             FROM refresh_tokens r
             JOIN grants g ON g.id = r.grant_id
             JOIN users u ON u.id = g.user_id
             JOIN clients cl ON cl.id = g.client_id
             WHERE r.token_hash = ?1",
        )?
        .query_row([refresh_hash], |r| {
            let grant = RefreshGrant {
                grant_id: r.get(0)?,
                user_email: r.get(1)?,
                client_id: r.get(2)?,
                client_is_public: r.get(3)?,
                scope: r.get(4)?,
                bound_secret_hash: r.get(5)?,
            };
            let expires_at: Option<i64> = r.get(6)?;
            let rotated_at: Option<i64> = r.get(7)?;
            let successor: Option<Vec<u8>> = r.get(8)?;
            let dead: bool = r.get(9)?;
            Ok((grant, expires_at, rotated_at, successor, dead))
        })
        .optional()?;
    let Some((grant, expires_at, rotated_at, successor, dead)) = found else {
        return Ok(Err(Refusal::Unknown));
    };
    if dead {
        return Ok(Err(Refusal::Unknown));
    }
    if expires_at.is_some_and(|e| e <= at) {
        return Ok(Err(Refusal::Expired));
    }
    if let Err(e) = check(&grant) {
        return Ok(Err(Refusal::Rejected(e)));
    }
    let rotates = grant.client_is_public && grant.bound_secret_hash.is_none();
    let outcome = if !rotates {
        RefreshOutcome::Kept
    } else if let Some(rotated_at) = rotated_at {
        let successor_unused = match &successor {
            Some(s) => tx
                .prepare_cached(
                    "SELECT rotated_at IS NULL FROM refresh_tokens WHERE token_hash = ?1",
                )?
                .query_row([s], |r| r.get::<_, bool>(0))
                .optional()?
                .unwrap_or(false),
            None => false,
        };
        if !(successor_unused && at - rotated_at <= grace_secs) {
            revoke_grant(tx, grant.grant_id)?;
            origin.record(
                tx,
                "refresh_reuse",
                &grant.user_email,
                &grant.client_id,
                Some("rotated-out refresh token reused; grant revoked"),
            )?;
            return Ok(Err(Refusal::TheftDetected));
        }
        // Grace retry: drop the successor nobody used and hand out a new one. rotated_at
        // keeps the first rotation time, so retries cannot extend the window.
        tx.prepare_cached("DELETE FROM refresh_tokens WHERE token_hash = ?1")?
            .execute([&successor])?;
        rotate_to(tx, refresh_hash, grant.grant_id, tokens, None, at)?;
        RefreshOutcome::Rotated
    } else {
        rotate_to(tx, refresh_hash, grant.grant_id, tokens, Some(at), at)?;
        RefreshOutcome::Rotated
    };
    insert_access_token(tx, grant.grant_id, tokens, at)?;
    origin.record(
        tx,
        "token_refresh",
        &grant.user_email,
        &grant.client_id,
        Some(match outcome {
            RefreshOutcome::Kept => "kept",
            RefreshOutcome::Rotated => "rotated",
        }),
    )?;
    Ok(Ok((grant, outcome)))
}

/// Points `old` at a new successor and stores it. `rotated_at` is set only on the first
/// rotation of `old`.
fn rotate_to(
    tx: &Connection,
    old: &TokenHash,
    grant_id: i64,
    tokens: &NewTokens,
    rotated_at: Option<i64>,
    at: i64,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "UPDATE refresh_tokens SET successor_hash = ?2, rotated_at = coalesce(rotated_at, ?3)
         WHERE token_hash = ?1",
    )?
    .execute(params![old, tokens.refresh_hash, rotated_at.unwrap_or(at)])?;
    insert_refresh_token(
        tx,
        grant_id,
        &tokens.refresh_hash,
        tokens.refresh_ttl_secs,
        at,
    )
}
