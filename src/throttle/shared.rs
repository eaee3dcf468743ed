//! Failure budgets shared by several instances of one PostgreSQL database, so that N
//! instances behind a load balancer allow no more failures per account (5) or address
//! (20) than one does: each instance reads the shared counters before it admits an
//! attempt (a key another instance locked is refused) and counts every failure in them.
//! The in-memory [`Throttle`](super::Throttle) still admits per instance (pool shares,
//! attempts in flight) and counts its own failures, which can only lock earlier.
//!
//! Keys are HMACs of the folded email and of the client's address (IPv6 per /64) under a
//! server secret of the database, so the table holds neither and every instance makes the
//! same key. Lockouts follow the in-memory rules ([`super::count_failure`]) on wall-clock
//! milliseconds, the one clock instances share. On SQLite none of this runs: the one
//! server counts in memory and no guess costs a write.
//!
//! Wrong `/device` user codes per address are counted in the same table ([`user_codes`]).
//!
//! Between one instance's read and its count, another instance may admit an attempt of
//! the same key: the budget can be passed by the attempts in flight at once, each
//! bounded by its instance's share of the hashing pool.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::{count_failure, normalize_ip, Refusal, ACCOUNT_LIMIT, IP_LIMIT, WINDOW};
use crate::secret::fill_random;
use crate::store::login_failures::{self, Counts};
use crate::store::server_secrets;
use crate::store::sql::Db;
use crate::store::{Store, StoreError};

mod user_codes;

/// The key's name in `server_secrets`.
const SECRET_NAME: &str = "login_throttle_key";
/// Every this many failures, rows that no longer decide anything are removed.
const SWEEP_EVERY: u64 = 256;

/// Unix milliseconds now, the clock instances share.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The shared counters' keys and limits for one database.
pub struct SharedFailures {
    secret: Vec<u8>,
    failures_seen: AtomicU64,
}

impl SharedFailures {
    /// The database's throttle secret, made by the first instance that needs it.
    pub fn load(db: &impl Db) -> Result<SharedFailures, StoreError> {
        let mut fresh = [0u8; 32];
        fill_random(&mut fresh);
        Ok(SharedFailures {
            secret: server_secrets::get_or_create(db, SECRET_NAME, &fresh)?,
            failures_seen: AtomicU64::new(0),
        })
    }

    /// The account's and the address's keys, each with its failure limit.
    fn keys(&self, email: &str, ip: IpAddr) -> [(Vec<u8>, u32); 2] {
        let account = crate::email::key(email);
        let address = normalize_ip(ip).to_string();
        [
            (self.mac(b"account", &account), ACCOUNT_LIMIT),
            (self.mac(b"address", &address), IP_LIMIT),
        ]
    }

    fn mac(&self, kind: &[u8], value: &str) -> Vec<u8> {
        // HMAC takes a key of any length.
        #[allow(clippy::expect_used)]
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.secret).expect("any key length");
        mac.update(kind);
        mac.update(&[0]);
        mac.update(value.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }

    /// [`SharedFailures::locked`] now, on a blocking thread.
    pub async fn check(
        self: &Arc<Self>,
        store: &Store,
        email: &str,
        ip: IpAddr,
    ) -> Result<Option<Refusal>, StoreError> {
        let (this, email) = (Arc::clone(self), email.to_owned());
        store
            .read(move |db| this.locked(db, &email, ip, now_ms()))
            .await
    }

    /// [`SharedFailures::record_failure`] now, on a blocking thread.
    pub async fn record(
        self: &Arc<Self>,
        store: &Store,
        email: &str,
        ip: IpAddr,
    ) -> Result<Duration, StoreError> {
        let (this, email) = (Arc::clone(self), email.to_owned());
        store
            .write(move |db| this.record_failure(db, &email, ip, now_ms()))
            .await
    }

    /// The refusal when either key is locked at `now_ms` (Unix milliseconds), by this
    /// instance or another. The first refusal of a lockout, whichever instance sees it,
    /// says so (worth one audit entry).
    pub fn locked(
        &self,
        db: &impl Db,
        email: &str,
        ip: IpAddr,
        now_ms: i64,
    ) -> Result<Option<Refusal>, StoreError> {
        let mut longest: Option<i64> = None;
        let mut first_refusal = false;
        for (key, _) in self.keys(email, ip) {
            let Some(until) = login_failures::find(db, &key)?
                .and_then(|c| c.locked_until_ms)
                .filter(|until| *until > now_ms)
            else {
                continue;
            };
            longest = longest.max(Some(until - now_ms));
            first_refusal |= login_failures::update(db, &key, |found| match found {
                Some(c) if !c.lockout_noted && c.locked_until_ms == Some(until) => (
                    Some(Counts {
                        lockout_noted: true,
                        ..c
                    }),
                    true,
                ),
                _ => (None, false),
            })?;
        }
        Ok(longest.map(|wait_ms| Refusal::Locked {
            retry_after_secs: u64::try_from(wait_ms.saturating_add(999) / 1000)
                .unwrap_or(1)
                .max(1),
            first_refusal,
        }))
    }

    /// Counts a failure of `email` from `ip` at `now_ms`; the delay before answering (the
    /// longer of the two keys').
    pub fn record_failure(
        &self,
        db: &impl Db,
        email: &str,
        ip: IpAddr,
        now_ms: i64,
    ) -> Result<Duration, StoreError> {
        let mut delay = Duration::ZERO;
        for (key, limit) in self.keys(email, ip) {
            let counted = login_failures::update(db, &key, |found| {
                let counts = counted(found, limit, now_ms);
                (Some(counts.0), counts.1)
            })?;
            delay = delay.max(counted);
        }
        self.sweep_now_and_then(db, now_ms)?;
        Ok(delay)
    }

    /// Every [`SWEEP_EVERY`] counts (failures, user-code tries), removes the rows that
    /// no longer decide anything, so the table stays as small as the recent guessing.
    fn sweep_now_and_then(&self, db: &impl Db, now_ms: i64) -> Result<(), StoreError> {
        if self.failures_seen.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            login_failures::forget_stale(db, now_ms - window_ms(), now_ms)?;
        }
        Ok(())
    }
}

fn window_ms() -> i64 {
    i64::try_from(WINDOW.as_millis()).unwrap_or(i64::MAX)
}

/// The counts after one more failure at `now_ms`, and the answer's delay.
fn counted(found: Option<Counts>, limit: u32, now_ms: i64) -> (Counts, Duration) {
    let small = |n: i64| u32::try_from(n).unwrap_or(u32::MAX);
    let (failures, lockouts) = match found {
        Some(c) if now_ms - c.last_failure_ms <= window_ms() => (c.failures, c.lockouts),
        Some(c) => (0, c.lockouts),
        None => (0, 0),
    };
    let next = count_failure(small(failures), small(lockouts), limit);
    let started = next
        .lockout
        .map(|d| now_ms.saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)));
    let counts = Counts {
        failures: i64::from(next.failures),
        lockouts: i64::from(next.lockouts),
        last_failure_ms: now_ms,
        locked_until_ms: started.or(found.and_then(|c| c.locked_until_ms)),
        lockout_noted: started.is_none() && found.is_some_and(|c| c.lockout_noted),
    };
    (counts, next.delay)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_backends::on_both_backends;

    const ANN: &str = "ann@example.com";

    pub(super) fn ip(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }

    /// Two instances' loads of one database.
    pub(super) fn two_instances(db: &impl Db) -> (SharedFailures, SharedFailures) {
        (
            SharedFailures::load(db).expect("a"),
            SharedFailures::load(db).expect("b"),
        )
    }

    /// Two instances (two loads of one database) alternating failures lock the account
    /// after as many failures in total as one instance would, and both see the lock.
    fn instances_share_one_budget(db: &impl Db) {
        let (a, b) = two_instances(db);
        let now = 1_000_000;
        for n in 0..ACCOUNT_LIMIT {
            let instance = if n % 2 == 0 { &a } else { &b };
            // A different address each time: only the account's budget runs out.
            let addr = ip(u8::try_from(n).expect("small"));
            assert_eq!(instance.locked(db, ANN, addr, now).expect("read"), None);
            instance.record_failure(db, ANN, addr, now).expect("count");
        }
        let refused = b.locked(db, "ANN@example.com", ip(99), now).expect("read");
        assert_eq!(
            refused,
            Some(Refusal::Locked {
                retry_after_secs: 60,
                first_refusal: true
            })
        );
        let again = a.locked(db, ANN, ip(98), now + 1500).expect("read");
        assert_eq!(
            again,
            Some(Refusal::Locked {
                retry_after_secs: 59,
                first_refusal: false
            })
        );
        // Another account from those addresses is not locked; after the lockout, ann may try.
        assert_eq!(
            a.locked(db, "bob@example.com", ip(0), now).expect("read"),
            None
        );
        assert_eq!(a.locked(db, ANN, ip(0), now + 60_000).expect("read"), None);
    }
    on_both_backends!(instances_share_one_budget);

    #[test]
    fn counting_follows_the_in_memory_rules() {
        let limit = ACCOUNT_LIMIT;
        let mut found = None;
        let mut delays = Vec::new();
        for _ in 0..limit {
            let (counts, delay) = counted(found, limit, 0);
            found = Some(counts);
            delays.push(delay.as_millis());
        }
        assert_eq!(delays, [100, 200, 400, 800, 100]);
        let locked = found.expect("counts");
        assert_eq!(
            (locked.failures, locked.lockouts, locked.locked_until_ms),
            (0, 1, Some(60_000))
        );
        // The second lockout lasts twice as long; a failure after the window starts over.
        let mut found = Some(locked);
        for _ in 0..limit {
            found = Some(counted(found, limit, 70_000).0);
        }
        assert_eq!(
            found.and_then(|c| c.locked_until_ms),
            Some(70_000 + 120_000)
        );
        let late = counted(
            Some(Counts {
                failures: 4,
                ..locked
            }),
            limit,
            window_ms() + 1,
        );
        assert_eq!((late.0.failures, late.1.as_millis()), (1, 100));
    }
}
