//! Grants issued without a code: a device authorization (RFC 8628) that its user approved
//! becomes a grant with its tokens in one step.

use super::super::sql::Db;
use super::super::{now, StoreError};
use super::{insert_first_tokens, NewTokens, Origin};

/// Who the grant is for and what it holds.
pub struct DirectGrant<'a> {
    pub user_id: &'a str,
    pub user_email: &'a str,
    pub client_id: &'a str,
    pub scope: Option<&'a str>,
    /// Whether to store the refresh token too (the client registered `refresh_token`).
    pub with_refresh: bool,
    /// The grant type, for the audit trail.
    pub grant_type: &'a str,
    /// When the user signed in for it (an id_token's `auth_time`), if a user did.
    pub auth_time: Option<i64>,
}

/// Creates the grant and its tokens, and audits `token_issue`, inside the caller's write
/// transaction. Returns the grant's id.
pub fn issue_direct(
    db: &impl Db,
    grant: &DirectGrant<'_>,
    tokens: &NewTokens,
    origin: Origin<'_>,
) -> Result<i64, StoreError> {
    let at = now();
    let grant_id: i64 = db.query_one(
        "INSERT INTO grants (user_id, client_id, scope, created_at, auth_time)
         VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
        &[
            &grant.user_id,
            &grant.client_id,
            &grant.scope,
            &at,
            &grant.auth_time,
        ],
        |r| r.get(0),
    )?;
    insert_first_tokens(db, grant_id, tokens, grant.with_refresh, at)?;
    origin.record(
        db,
        "token_issue",
        grant.user_email,
        grant.client_id,
        Some(grant.grant_type),
    )?;
    Ok(grant_id)
}
