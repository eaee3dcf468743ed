//! Refreshing a grant: reading what the refresh decision needs, and carrying out its
//! outcome — keep the refresh token, rotate it, rotate again after a grace retry, or
//! revoke the grant of a reused token.

use super::super::sql::{lock_rows, Db};
use super::super::{now, StoreError};
use super::{insert_access_token, insert_refresh_token, GrantRef, NewTokens, Origin, SecretHash};
use crate::oauth::{ClientId, RefreshFacts, Scope, Successor, TokenState};

/// What the store knows about a refresh token, for the refresh decision (`None`: unknown).
/// A rotated-out token's successor is `Unused` while it is stored and not itself rotated
/// out; `UsedOrGone` otherwise. Locks the token's grant first (see the lock order in `grants`): of
/// concurrent refreshes with one token, each reads it (and its successor) as the last one
/// left it.
pub fn find_refresh_token(
    db: &impl Db,
    refresh_hash: &SecretHash,
) -> Result<Option<RefreshFacts>, StoreError> {
    lock_rows(
        db,
        "SELECT 1 FROM grants WHERE id =
             (SELECT grant_id FROM refresh_tokens WHERE token_hash = ?1)",
        &[refresh_hash],
    )?;
    db.query_opt(
        "SELECT g.id, u.email, g.client_id, cl.is_public, g.scope, g.bound_secret_hash,
                r.expires_at, g.revoked_at IS NOT NULL OR u.disabled = 1, r.rotated_at,
                s.token_hash, s.rotated_at IS NOT NULL
         FROM refresh_tokens r
         JOIN grants g ON g.id = r.grant_id
         JOIN users u ON u.id = g.user_id
         JOIN clients cl ON cl.id = g.client_id
         LEFT JOIN refresh_tokens s ON s.token_hash = r.successor_hash
         WHERE r.token_hash = ?1",
        &[refresh_hash],
        |r| {
            let rotated_at: Option<i64> = r.get(8)?;
            // A stored digest is always 32 bytes; anything else reads as no successor,
            // which refuses a grace retry rather than allowing one.
            let successor = r
                .get::<Option<Vec<u8>>>(9)?
                .and_then(|hash| SecretHash::try_from(hash).ok());
            let successor_rotated: bool = r.get(10)?;
            let state = match rotated_at {
                None => TokenState::Live,
                Some(rotated_at) => TokenState::RotatedOut {
                    rotated_at,
                    successor: match (successor, successor_rotated) {
                        (Some(hash), false) => Successor::Unused(hash),
                        _ => Successor::UsedOrGone,
                    },
                },
            };
            Ok(RefreshFacts {
                grant_id: r.get(0)?,
                user_email: r.get(1)?,
                client_id: ClientId::new(r.get::<String>(2)?),
                client_public: r.get(3)?,
                scope: r.get::<Option<String>>(4)?.map(Scope::new),
                bound_secret_hash: r.get(5)?,
                expires_at: r.get(6)?,
                grant_dead: r.get(7)?,
                state,
            })
        },
    )
}

/// Issues an access token; the refresh token stays as it is.
pub fn keep(
    db: &impl Db,
    grant: GrantRef<'_>,
    tokens: &NewTokens,
    scope: Option<&str>,
    origin: Origin<'_>,
) -> Result<(), StoreError> {
    issue_access(db, grant, tokens, scope, origin, "kept")
}

/// Issues an access token and a successor to `old`, which becomes rotated-out now.
/// Returns the rotation time it stored; `None`, having changed nothing, when `old` was
/// rotated meanwhile by a concurrent refresh (a lost race: the lock `find_refresh_token`
/// takes prevents it; this is the second line of defence).
#[must_use = "None: the token was rotated meanwhile and nothing was issued"]
pub fn rotate(
    db: &impl Db,
    old: &SecretHash,
    grant: GrantRef<'_>,
    tokens: &NewTokens,
    scope: Option<&str>,
    origin: Origin<'_>,
) -> Result<Option<i64>, StoreError> {
    let at = now();
    let rotated = db.execute(
        "UPDATE refresh_tokens SET successor_hash = ?2, rotated_at = ?3
         WHERE token_hash = ?1 AND rotated_at IS NULL",
        &[old, &tokens.refresh_hash, &at],
    )?;
    if rotated == 0 {
        return Ok(None);
    }
    insert_refresh_token(db, grant.grant_id, tokens, at)?;
    issue_access(db, grant, tokens, scope, origin, "rotated")?;
    Ok(Some(at))
}

/// A grace retry of the rotated-out `old`: its unused successor `supersede` becomes
/// rotated-out too (kept, not deleted: whoever holds it and presents it later is reusing a
/// rotated-out token, which revokes the grant), and a new successor is issued. `old` keeps
/// its first rotation time, so retries cannot extend the grace window. Returns false,
/// having changed nothing, when `supersede` was used or superseded meanwhile (a lost race,
/// as for [`rotate`]).
#[must_use = "false: the successor was used meanwhile and nothing was issued"]
pub fn rotate_again(
    db: &impl Db,
    old: &SecretHash,
    supersede: &SecretHash,
    grant: GrantRef<'_>,
    tokens: &NewTokens,
    scope: Option<&str>,
    origin: Origin<'_>,
) -> Result<bool, StoreError> {
    let at = now();
    let superseded = db.execute(
        "UPDATE refresh_tokens SET rotated_at = ?2 WHERE token_hash = ?1 AND rotated_at IS NULL",
        &[supersede, &at],
    )?;
    if superseded == 0 {
        return Ok(false);
    }
    db.execute(
        "UPDATE refresh_tokens SET successor_hash = ?2 WHERE token_hash = ?1",
        &[old, &tokens.refresh_hash],
    )?;
    insert_refresh_token(db, grant.grant_id, tokens, at)?;
    issue_access(db, grant, tokens, scope, origin, "rotated")?;
    Ok(true)
}

fn issue_access(
    db: &impl Db,
    grant: GrantRef<'_>,
    tokens: &NewTokens,
    scope: Option<&str>,
    origin: Origin<'_>,
    detail: &str,
) -> Result<(), StoreError> {
    insert_access_token(db, grant.grant_id, tokens, scope, now())?;
    origin.record(
        db,
        "token_refresh",
        grant.user_email,
        grant.client_id,
        Some(detail),
    )
}
