//! What an id_token or UserInfo answer says about a grant's user: the subject's facts,
//! the grant's sign-in time and, for a code exchange, the nonce bound to the code.

use super::super::sql::Db;
use super::super::{orgs, StoreError};
use super::SecretHash;
use crate::oauth::Subject;

/// What the store knows for one id_token.
#[derive(Debug, Clone)]
pub struct GrantSubject {
    pub subject: Subject,
    /// When the user signed in for this grant.
    pub auth_time: Option<i64>,
    /// The nonce stored with the exchanged code.
    pub nonce: Option<String>,
}

/// The user of a grant, with its sign-in time (`auth_time`) and, when `code_hash` is
/// given, the nonce stored with that code. `None`: the grant is gone.
pub fn id_token_facts(
    db: &impl Db,
    grant_id: i64,
    code_hash: Option<&SecretHash>,
) -> Result<Option<GrantSubject>, StoreError> {
    let found = db.query_opt(
        "SELECT u.id, u.email, u.name, g.auth_time FROM grants g JOIN users u ON u.id = g.user_id
         WHERE g.id = ?1",
        &[&grant_id],
        |r| Ok((r.get::<String>(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )?;
    let Some((user_id, email, name, auth_time)) = found else {
        return Ok(None);
    };
    let nonce = match code_hash {
        Some(code_hash) => db
            .query_opt(
                "SELECT nonce FROM authorization_codes WHERE code_hash = ?1",
                &[code_hash],
                |r| r.get::<Option<String>>(0),
            )?
            .flatten(),
        None => None,
    };
    Ok(Some(GrantSubject {
        subject: subject(db, user_id, email, name)?,
        auth_time,
        nonce,
    }))
}

/// The subject facts of a user, with their memberships.
pub fn subject(
    db: &impl Db,
    user_id: String,
    email: String,
    name: Option<String>,
) -> Result<Subject, StoreError> {
    let memberships = orgs::memberships_of(db, &user_id)?
        .into_iter()
        .map(|m| (m.name, m.role))
        .collect();
    Ok(Subject {
        user_id,
        email,
        name,
        memberships,
    })
}
