//! Device authorizations (RFC 8628) from their request until they are redeemed, denied
//! and told, or expired. Codes are stored only as SHA-256 digests. Polling only reads:
//! the last-poll times live in memory (`device_memory`), so a device waiting for its user
//! costs no write.

use super::grants::{issue_direct, DirectGrant, NewTokens, Origin};
use super::sql::Db;
use super::{audit, now, StoreError};
use crate::oauth::{DeviceFacts, DeviceStatus, RETENTION};
use crate::secret::SecretHash;

/// Expired device codes deleted per new one: each request cleans up a few, so the table
/// holds about the live authorizations without a housekeeping job.
const EXPIRED_DELETED_PER_ISSUE: i64 = 16;

/// A device authorization to store.
pub struct NewDevice<'a> {
    pub device_code_hash: SecretHash,
    pub client_id: &'a str,
    pub scope: Option<&'a str>,
    pub ttl_secs: i64,
    pub interval_secs: i64,
}

/// A pending authorization, as the `/device` page shows it to the user.
#[derive(Debug, Clone)]
pub struct PendingDevice {
    pub client_id: String,
    pub client_name: String,
    pub client_brand: Option<String>,
    pub scope: Option<String>,
}

/// Stores the authorization under the first of `user_code_hashes` not already taken by a
/// live one; returns its index (`None`: all were taken, which random codes make
/// practically impossible).
pub fn create(
    db: &impl Db,
    device: &NewDevice<'_>,
    user_code_hashes: &[SecretHash],
) -> Result<Option<usize>, StoreError> {
    let at = now();
    db.execute(
        "DELETE FROM device_codes WHERE device_code_hash IN
             (SELECT device_code_hash FROM device_codes WHERE expires_at <= ?1 LIMIT ?2)",
        &[&RETENTION.expired_by(at), &EXPIRED_DELETED_PER_ISSUE],
    )?;
    for (index, user_code_hash) in user_code_hashes.iter().enumerate() {
        let inserted = db.execute(
            "INSERT INTO device_codes
                 (device_code_hash, user_code_hash, client_id, scope, created_at, expires_at,
                  interval_secs)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (user_code_hash) DO NOTHING",
            &[
                &device.device_code_hash,
                user_code_hash,
                &device.client_id,
                &device.scope,
                &at,
                &at.saturating_add(device.ttl_secs),
                &device.interval_secs,
            ],
        )?;
        if inserted > 0 {
            return Ok(Some(index));
        }
    }
    Ok(None)
}

/// What a poll needs to know (`None`: unknown or already redeemed).
pub fn find(
    db: &impl Db,
    device_code_hash: &SecretHash,
) -> Result<Option<DeviceFacts>, StoreError> {
    db.query_opt(
        "SELECT client_id, status, expires_at, interval_secs FROM device_codes
         WHERE device_code_hash = ?1",
        &[device_code_hash],
        |r| {
            Ok(DeviceFacts {
                client_id: r.get(0)?,
                status: status_of(&r.get::<String>(1)?),
                expires_at: r.get(2)?,
                interval_secs: r.get(3)?,
            })
        },
    )
}

/// An authorization as the `/device` page finds it by its user code, with the facts that
/// say whether it still awaits an answer (`oauth::awaits_answer`).
#[derive(Debug, Clone)]
pub struct UserCodeRow {
    pub device: PendingDevice,
    pub status: DeviceStatus,
    pub expires_at: i64,
}

/// The authorization a user code names, whatever its state.
pub fn find_by_user_code(
    db: &impl Db,
    user_code_hash: &SecretHash,
) -> Result<Option<UserCodeRow>, StoreError> {
    db.query_opt(
        "SELECT d.client_id, c.name, c.brand_domain, d.scope, d.status, d.expires_at
         FROM device_codes d JOIN clients c ON c.id = d.client_id
         WHERE d.user_code_hash = ?1",
        &[user_code_hash],
        |r| {
            Ok(UserCodeRow {
                device: PendingDevice {
                    client_id: r.get(0)?,
                    client_name: r.get(1)?,
                    client_brand: r.get(2)?,
                    scope: r.get(3)?,
                },
                status: status_of(&r.get::<String>(4)?),
                expires_at: r.get(5)?,
            })
        },
    )
}

/// A stored status; anything unknown reads as pending (the schema allows only three).
fn status_of(stored: &str) -> DeviceStatus {
    match stored {
        "approved" => DeviceStatus::Approved,
        "denied" => DeviceStatus::Denied,
        _ => DeviceStatus::Pending,
    }
}

/// Records the user's answer for an authorization the caller found awaiting one, in the
/// same write transaction: approved for `user_id`, or denied (`None`). Returns false when
/// the code is gone or already answered (by a concurrent answer, where write jobs run
/// concurrently: of two answers, one wins on every backend).
pub fn record_answer(
    db: &impl Db,
    user_code_hash: &SecretHash,
    approved_for: Option<(&str, &str)>,
    remote_addr: &str,
) -> Result<bool, StoreError> {
    let (status, user_id, email) = match approved_for {
        Some((user_id, email)) => ("approved", Some(user_id), Some(email)),
        None => ("denied", None, None),
    };
    let approved_at = approved_for.map(|_| now());
    let client_id: Option<String> = db.query_opt(
        "UPDATE device_codes SET status = ?2, user_id = ?3, approved_at = ?4
         WHERE user_code_hash = ?1 AND status = 'pending'
         RETURNING client_id",
        &[user_code_hash, &status, &user_id, &approved_at],
        |r| r.get(0),
    )?;
    let Some(client_id) = client_id else {
        return Ok(false);
    };
    audit::record(
        db,
        &audit::Event {
            event: if approved_for.is_some() {
                "device_approve"
            } else {
                "device_deny"
            },
            user_email: email,
            client_id: Some(&client_id),
            remote_addr: Some(remote_addr),
            detail: None,
        },
    )?;
    Ok(true)
}

/// client_id, scope, user_id, the user's email, approved_at.
type ApprovedRow = (String, Option<String>, String, String, Option<i64>);

/// A redeemed device authorization: its grant and scope.
#[derive(Debug)]
pub struct Redeemed {
    pub grant_id: i64,
    pub scope: Option<String>,
}

/// Redeems an approved device code once: deletes it and issues the grant and its tokens
/// (the grant's `auth_time` is when the user approved). `None` when it was not (or no
/// longer) approved. One statement deletes and reads the row, so of concurrent
/// redemptions one gets it on every backend (PostgreSQL's waits for the first to commit
/// and then finds the row gone).
pub fn redeem(
    db: &impl Db,
    device_code_hash: &SecretHash,
    tokens: &NewTokens,
    with_refresh: bool,
    origin: Origin<'_>,
) -> Result<Option<Redeemed>, StoreError> {
    let row: Option<ApprovedRow> = db.query_opt(
        "DELETE FROM device_codes WHERE device_code_hash = ?1 AND status = 'approved'
         RETURNING client_id, scope, user_id,
                   (SELECT email FROM users WHERE id = device_codes.user_id), approved_at",
        &[device_code_hash],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
    )?;
    let Some((client_id, scope, user_id, email, approved_at)) = row else {
        return Ok(None);
    };
    let grant_id = issue_direct(
        db,
        &DirectGrant {
            user_id: &user_id,
            user_email: &email,
            client_id: &client_id,
            scope: scope.as_deref(),
            with_refresh,
            grant_type: "device_code",
            auth_time: approved_at,
        },
        tokens,
        origin,
    )?;
    Ok(Some(Redeemed { grant_id, scope }))
}

/// Forgets a denied device code once its device has been told (single use).
pub fn discard(db: &impl Db, device_code_hash: &SecretHash) -> Result<(), StoreError> {
    db.execute(
        "DELETE FROM device_codes WHERE device_code_hash = ?1",
        &[device_code_hash],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_backends::{on_both_backends, seed_user_and_client};

    const ORIGIN: Origin<'static> = Origin {
        remote_addr: "test",
    };

    fn device(hash: u8) -> NewDevice<'static> {
        NewDevice {
            device_code_hash: [hash; 32],
            client_id: "c",
            scope: Some("openid"),
            ttl_secs: 600,
            interval_secs: 5,
        }
    }

    fn tokens() -> NewTokens {
        NewTokens {
            access_hash: [7; 32],
            access_ttl_secs: 60,
            refresh_hash: [8; 32],
            refresh_ttl_secs: Some(3600),
        }
    }

    fn device_verbs(db: &impl Db) {
        seed_user_and_client(db);
        assert_eq!(
            create(db, &device(1), &[[11; 32]]).expect("create"),
            Some(0)
        );
        let taken = create(db, &device(2), &[[11; 32], [12; 32]]).expect("create");
        assert_eq!(taken, Some(1), "the first user code is taken");
        let facts = find(db, &[1; 32]).expect("find").expect("stored");
        assert_eq!(
            (facts.client_id.as_str(), facts.status, facts.interval_secs),
            ("c", DeviceStatus::Pending, 5)
        );
        let row = find_by_user_code(db, &[11; 32])
            .expect("find")
            .expect("stored");
        assert_eq!(row.device.client_name, "C");
        assert_eq!(row.status, DeviceStatus::Pending);

        assert!(record_answer(db, &[11; 32], Some(("u", "u@x.org")), "test").expect("answer"));
        assert!(record_answer(db, &[12; 32], None, "test").expect("answer"));
        assert!(!record_answer(db, &[13; 32], None, "test").expect("no such code"));
        assert!(
            !record_answer(db, &[12; 32], Some(("u", "u@x.org")), "test").expect("answer"),
            "answered once"
        );
        let approved = find(db, &[1; 32]).expect("find").expect("stored");
        assert_eq!(approved.status, DeviceStatus::Approved);
        let denied = find(db, &[2; 32]).expect("find").expect("stored");
        assert_eq!(denied.status, DeviceStatus::Denied);

        assert!(
            redeem(db, &[2; 32], &tokens(), true, ORIGIN)
                .expect("redeem")
                .is_none(),
            "a denied code is not redeemed"
        );
        let redeemed = redeem(db, &[1; 32], &tokens(), true, ORIGIN)
            .expect("redeem")
            .expect("approved");
        assert_eq!(redeemed.scope.as_deref(), Some("openid"));
        let subject = super::super::grants::id_token_facts(db, redeemed.grant_id, None)
            .expect("facts")
            .expect("grant");
        assert!(subject.auth_time.is_some(), "auth_time: when approved");
        assert!(redeem(db, &[1; 32], &tokens(), true, ORIGIN)
            .expect("redeem")
            .is_none());
        discard(db, &[2; 32]).expect("discard");
        assert!(find(db, &[2; 32]).expect("find").is_none());
    }
    on_both_backends!(device_verbs);

    /// Racing redemptions of one approved code, each on a connection of its own as on
    /// separate instances: one gets the grant.
    #[cfg(feature = "postgres")]
    #[test]
    fn racing_redemptions_of_one_device_code_issue_once() {
        use crate::store::test_backends::{race, seeded_postgres};
        let store = seeded_postgres();
        for round in 0..3u8 {
            let (code, user_code) = ([round; 32], [round | 0x80; 32]);
            store
                .transaction(|db| {
                    create(db, &device(round), &[user_code])?;
                    record_answer(db, &user_code, Some(("u", "u@x.org")), "test")
                })
                .expect("approved");
            let redeemed = race(&store, 6, |db, i| {
                let n = round * 6 + u8::try_from(i).expect("few");
                let tokens = NewTokens {
                    access_hash: [n; 32],
                    refresh_hash: [n | 0x80; 32],
                    ..tokens()
                };
                Ok(redeem(db, &code, &tokens, true, ORIGIN)?.map(|r| r.grant_id))
            });
            let grants: Vec<i64> = redeemed.into_iter().flatten().collect();
            assert_eq!(grants.len(), 1, "round {round}: {grants:?}");
        }
        let issued = store
            .with_conn(|db| db.query_one("SELECT count(*) FROM grants", &[], |r| r.get::<i64>(0)))
            .expect("count");
        assert_eq!(issued, 3, "one grant per code");
    }

    /// Racing answers to one authorization, on separate connections: one is recorded,
    /// whichever it is, and the others are told the code no longer takes one.
    #[cfg(feature = "postgres")]
    #[test]
    fn racing_answers_to_one_device_code_record_one() {
        use crate::store::test_backends::{race, seeded_postgres};
        let store = seeded_postgres();
        for round in 0..3u8 {
            let user_code = [round | 0x80; 32];
            store
                .transaction(|db| create(db, &device(round), &[user_code]))
                .expect("create");
            let recorded = race(&store, 6, |db, i| {
                let approve = (i % 2 == 0).then_some(("u", "u@x.org"));
                record_answer(db, &user_code, approve, "test")
            });
            let won = recorded.iter().filter(|r| **r).count();
            assert_eq!(won, 1, "round {round}: {recorded:?}");
            let answers = store
                .with_conn(|db| {
                    db.query_one(
                        "SELECT count(*) FROM audit_log WHERE event IN ('device_approve', 'device_deny')",
                        &[],
                        |r| r.get::<i64>(0),
                    )
                })
                .expect("count");
            assert_eq!(answers, i64::from(round) + 1, "one answer audited per code");
        }
    }
}
