//! Wrong `/device` user codes per client address, counted in the table the instances of
//! one PostgreSQL database share (`login_failures`, under a key of its own kind), so an
//! address spreading guesses over N instances gets the tries of one: 10 per 5-minute
//! window. As in memory (`DeviceMemory::try_user_code`), a try is taken before the code
//! is looked up, in one atomic step, so guesses fired at once at several instances cannot
//! pass the limit either; a code that turns out right gives its try back.
//!
//! A row holds the tries of the current window in `failures` and the window's end in
//! `locked_until_ms` (the time until which the count stands).

use std::net::IpAddr;
use std::sync::Arc;

use super::{now_ms, SharedFailures};
use crate::oauth::{USER_CODE_FAILURES_PER_WINDOW, USER_CODE_WINDOW_SECS};
use crate::store::login_failures::{self, Counts};
use crate::store::sql::Db;
use crate::store::{Store, StoreError};

/// The window in milliseconds.
const WINDOW_MS: i64 = USER_CODE_WINDOW_SECS as i64 * 1000;

impl SharedFailures {
    /// The key of `ip`'s user-code tries (IPv6 per /64).
    fn user_code_key(&self, ip: IpAddr) -> Vec<u8> {
        self.mac(b"user_code", &super::normalize_ip(ip).to_string())
    }

    /// [`SharedFailures::take_user_code_try`] now, on a blocking thread.
    pub async fn try_user_code(
        self: &Arc<Self>,
        store: &Store,
        ip: IpAddr,
    ) -> Result<Result<(), u64>, StoreError> {
        let this = Arc::clone(self);
        store
            .write(move |db| this.take_user_code_try(db, ip, now_ms()))
            .await
    }

    /// [`SharedFailures::give_back_user_code_try`] now, on a blocking thread.
    pub async fn user_code_found(
        self: &Arc<Self>,
        store: &Store,
        ip: IpAddr,
    ) -> Result<(), StoreError> {
        let this = Arc::clone(self);
        store
            .write(move |db| this.give_back_user_code_try(db, ip, now_ms()))
            .await
    }

    /// Takes one user-code try of `ip` at `now_ms`; `Err(seconds to wait)` once the
    /// address used its tries in the window, at whichever instance.
    pub fn take_user_code_try(
        &self,
        db: &impl Db,
        ip: IpAddr,
        now_ms: i64,
    ) -> Result<Result<(), u64>, StoreError> {
        let taken =
            login_failures::update(db, &self.user_code_key(ip), |found| tried(found, now_ms))?;
        self.sweep_now_and_then(db, now_ms)?;
        Ok(taken)
    }

    /// Gives back the try taken for a code that was right: only wrong codes count.
    pub fn give_back_user_code_try(
        &self,
        db: &impl Db,
        ip: IpAddr,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        login_failures::update(db, &self.user_code_key(ip), |found| {
            (given_back(found, now_ms), ())
        })
    }
}

/// The counts after one more try at `now_ms` (`None`: refused, nothing changes), and the
/// answer.
fn tried(found: Option<Counts>, now_ms: i64) -> (Option<Counts>, Result<(), u64>) {
    let (tries, window_end) = match found {
        Some(c) => match c.locked_until_ms.filter(|end| *end > now_ms) {
            Some(end) => (c.failures, end),
            None => (0, now_ms.saturating_add(WINDOW_MS)),
        },
        None => (0, now_ms.saturating_add(WINDOW_MS)),
    };
    if tries >= i64::from(USER_CODE_FAILURES_PER_WINDOW) {
        let wait_secs = (window_end - now_ms).saturating_add(999) / 1000;
        return (None, Err(u64::try_from(wait_secs).unwrap_or(1).max(1)));
    }
    let counts = Counts {
        failures: tries + 1,
        lockouts: 0,
        last_failure_ms: now_ms,
        locked_until_ms: Some(window_end),
        lockout_noted: false,
    };
    (Some(counts), Ok(()))
}

/// The counts with one try of the current window given back (`None`: nothing to give).
fn given_back(found: Option<Counts>, now_ms: i64) -> Option<Counts> {
    found
        .filter(|c| c.failures > 0 && c.locked_until_ms.is_some_and(|end| end > now_ms))
        .map(|c| Counts {
            failures: c.failures - 1,
            ..c
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_backends::on_both_backends;
    use crate::throttle::shared::tests::{ip, two_instances};

    const LIMIT: u32 = USER_CODE_FAILURES_PER_WINDOW;

    /// Two instances (two loads of one database) taking tries of one address in turn
    /// stop it at one instance's limit, both of them; a right code's try comes back, and
    /// a new window starts afresh. Other addresses are not touched.
    fn instances_share_one_user_code_budget(db: &impl Db) {
        let (a, b) = two_instances(db);
        let now = 1_000_000;
        for n in 0..LIMIT {
            let instance = if n % 2 == 0 { &a } else { &b };
            let taken = instance.take_user_code_try(db, ip(1), now).expect("try");
            assert_eq!(taken, Ok(()), "try {n}");
        }
        for instance in [&a, &b] {
            let refused = instance.take_user_code_try(db, ip(1), now + 1500);
            assert_eq!(refused.expect("try"), Err(299));
        }
        assert_eq!(a.take_user_code_try(db, ip(2), now).expect("try"), Ok(()));
        b.give_back_user_code_try(db, ip(1), now + 2000)
            .expect("give back");
        assert_eq!(
            a.take_user_code_try(db, ip(1), now + 2000).expect("try"),
            Ok(())
        );
        assert!(b
            .take_user_code_try(db, ip(1), now + 2000)
            .expect("try")
            .is_err());
        let next_window = now + WINDOW_MS;
        assert_eq!(
            b.take_user_code_try(db, ip(1), next_window).expect("try"),
            Ok(())
        );
    }
    on_both_backends!(instances_share_one_user_code_budget);

    /// The window's rule as a table: (tries so far, window end, now) → answer.
    #[test]
    fn a_try_is_counted_in_its_window_or_refused() {
        let limit = i64::from(LIMIT);
        let row = |tries: i64, end: i64| Counts {
            failures: tries,
            lockouts: 0,
            last_failure_ms: 0,
            locked_until_ms: Some(end),
            lockout_noted: false,
        };
        /// (row found, now) → (answer, (tries, window end) stored).
        type Case = (Option<Counts>, i64, Result<(), u64>, Option<(i64, i64)>);
        let cases: [Case; 5] = [
            (None, 0, Ok(()), Some((1, WINDOW_MS))),
            (Some(row(3, 1000)), 500, Ok(()), Some((4, 1000))),
            (Some(row(limit, 10_000)), 500, Err(10), None),
            (Some(row(limit, 10_000)), 9_999, Err(1), None),
            (
                Some(row(limit, 10_000)),
                10_000,
                Ok(()),
                Some((1, 10_000 + WINDOW_MS)),
            ),
        ];
        for (found, now, answer, stored) in cases {
            let (counts, got) = tried(found, now);
            assert_eq!(got, answer, "{found:?} at {now}");
            let stored_got = counts.map(|c| (c.failures, c.locked_until_ms.unwrap_or(0)));
            assert_eq!(stored_got, stored, "{found:?} at {now}");
        }
        // Giving back: only inside the window and only what was taken.
        assert_eq!(
            given_back(Some(row(2, 1000)), 500).map(|c| c.failures),
            Some(1)
        );
        assert_eq!(given_back(Some(row(0, 1000)), 500), None);
        assert_eq!(given_back(Some(row(2, 1000)), 1000), None);
        assert_eq!(given_back(None, 0), None);
    }
}
