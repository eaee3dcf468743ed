//! Monotonic times of the refresh-token rotations this process carried out, so that the
//! grace window of a rotated-out token is measured with a clock that never jumps: setting
//! the wall clock back (or forward) can neither stretch nor shrink the window. Bounded:
//! entries older than the grace window fall out, and past `capacity` the oldest go first.
//! A rotation this process did not see (before a restart, or evicted) falls back to the
//! wall-clock rule of `oauth::refresh`.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::secret::SecretHash;

/// How many rotations are remembered at most: ~64 bytes each, so a few hundred KiB under
/// any load; beyond it, rotations older than the newest `CAPACITY` use the wall clock.
pub const CAPACITY: usize = 4096;

pub struct RotationClock {
    keep_for: Duration,
    capacity: usize,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Rotated-out token → (its stored rotation time, when this process rotated it).
    by_token: HashMap<SecretHash, (i64, Instant)>,
    /// Tokens in rotation order, oldest first, for eviction.
    order: VecDeque<SecretHash>,
}

impl RotationClock {
    /// Remembers rotations for `grace_secs` (longer is never needed), at most `capacity`.
    pub fn new(grace_secs: i64, capacity: usize) -> RotationClock {
        RotationClock {
            keep_for: Duration::from_secs(u64::try_from(grace_secs).unwrap_or(0)),
            capacity,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// Records that `token` was rotated out now, with `rotated_at` as stored.
    pub fn record(&self, token: SecretHash, rotated_at: i64) {
        let now = Instant::now();
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        while let Some(oldest) = inner.order.front().copied() {
            let expired = inner
                .by_token
                .get(&oldest)
                .map_or(true, |(_, at)| now.duration_since(*at) > self.keep_for);
            if !expired && inner.order.len() < self.capacity {
                break;
            }
            inner.order.pop_front();
            inner.by_token.remove(&oldest);
        }
        if self.capacity > 0 && inner.by_token.insert(token, (rotated_at, now)).is_none() {
            inner.order.push_back(token);
        }
    }

    /// Whole seconds since this process rotated `token` out, if it did so at the stored
    /// `rotated_at` and still remembers it.
    pub fn elapsed_secs(&self, token: &SecretHash, rotated_at: i64) -> Option<i64> {
        let inner = self.inner.lock().ok()?;
        let (recorded_at, instant) = inner.by_token.get(token)?;
        (*recorded_at == rotated_at)
            .then(|| i64::try_from(instant.elapsed().as_secs()).unwrap_or(i64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_rotations_it_saw_at_their_stored_time() {
        let clock = RotationClock::new(300, 8);
        clock.record([1; 32], 1_000);
        assert_eq!(clock.elapsed_secs(&[1; 32], 1_000), Some(0));
        assert_eq!(clock.elapsed_secs(&[1; 32], 999), None, "another rotation");
        assert_eq!(clock.elapsed_secs(&[2; 32], 1_000), None, "never seen");
    }

    #[test]
    fn is_bounded_oldest_first() {
        let clock = RotationClock::new(300, 3);
        for n in 1..=4u8 {
            clock.record([n; 32], 1_000);
        }
        assert_eq!(clock.elapsed_secs(&[1; 32], 1_000), None);
        for n in 2..=4u8 {
            assert_eq!(clock.elapsed_secs(&[n; 32], 1_000), Some(0));
        }
        let inner = clock.inner.lock().expect("lock");
        assert_eq!((inner.by_token.len(), inner.order.len()), (3, 3));
    }

    #[test]
    fn forgets_rotations_older_than_the_grace() {
        let clock = RotationClock::new(0, 8);
        clock.record([1; 32], 1_000);
        std::thread::sleep(Duration::from_millis(20));
        clock.record([2; 32], 1_000);
        assert_eq!(clock.elapsed_secs(&[1; 32], 1_000), None);
        assert_eq!(clock.elapsed_secs(&[2; 32], 1_000), Some(0));
    }
}
