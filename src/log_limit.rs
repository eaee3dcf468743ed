//! Logging a repeated error once per interval with a count, instead of once per request:
//! a full disk fails every write, and one line per failed request buried the log
//! (757k lines in 40 s). The first occurrence of a message is logged at once; repeats
//! within the interval are counted and reported with the next line logged for it.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

/// How often one message is logged at most while it keeps repeating.
const INTERVAL: Duration = Duration::from_secs(10);
/// Distinct messages remembered at most; past that the memory starts over (a flood of
/// distinct messages then logs each once more, which is still bounded).
const MAX_MESSAGES: usize = 64;

/// Storage errors, answered as 503 and logged through here.
static STORAGE_ERRORS: LazyLock<RepeatLimiter> = LazyLock::new(|| RepeatLimiter::new(INTERVAL));

/// Logs a storage error at most once per interval per distinct message, with how often it
/// repeated meanwhile. The message must not contain request data (it never does: store
/// errors carry SQLite's text and paths).
pub fn storage_error(context: &str, error: &dyn std::fmt::Display) {
    let message = format!("{context}: {error}");
    if let Some(repeated) = STORAGE_ERRORS.admit(&message, Instant::now()) {
        if repeated == 0 {
            tracing::error!("{message}");
        } else {
            tracing::error!("{message} (and {repeated} more times since the last report)");
        }
    }
}

/// Remembers when each message was last logged and how often it was held back since.
pub struct RepeatLimiter {
    interval: Duration,
    seen: Mutex<HashMap<String, Seen>>,
}

struct Seen {
    logged_at: Instant,
    held_back: u64,
}

impl RepeatLimiter {
    pub fn new(interval: Duration) -> RepeatLimiter {
        RepeatLimiter {
            interval,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// `Some(n)` when `message` should be logged now, `n` being how many repeats were held
    /// back since it was last logged; `None` when it is held back.
    pub fn admit(&self, message: &str, now: Instant) -> Option<u64> {
        // A poisoned lock only means another thread panicked while counting; the counts
        // are still usable.
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = seen.get_mut(message) {
            if now.saturating_duration_since(entry.logged_at) < self.interval {
                entry.held_back += 1;
                return None;
            }
            let held_back = entry.held_back;
            entry.logged_at = now;
            entry.held_back = 0;
            return Some(held_back);
        }
        if seen.len() >= MAX_MESSAGES {
            seen.clear();
        }
        seen.insert(
            message.to_owned(),
            Seen {
                logged_at: now,
                held_back: 0,
            },
        );
        Some(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_are_counted_and_reported_once_per_interval() {
        let limiter = RepeatLimiter::new(Duration::from_secs(10));
        let start = Instant::now();
        assert_eq!(limiter.admit("disk full", start), Some(0));
        for n in 1..=1000 {
            let at = start + Duration::from_millis(n * 5);
            assert_eq!(limiter.admit("disk full", at), None);
        }
        assert_eq!(
            limiter.admit("other", start),
            Some(0),
            "messages are separate"
        );
        assert_eq!(
            limiter.admit("disk full", start + Duration::from_secs(10)),
            Some(1000)
        );
        assert_eq!(
            limiter.admit("disk full", start + Duration::from_secs(11)),
            None
        );
        assert_eq!(
            limiter.admit("disk full", start + Duration::from_secs(25)),
            Some(1)
        );
    }

    #[test]
    fn memory_stays_bounded() {
        let limiter = RepeatLimiter::new(Duration::from_secs(10));
        let now = Instant::now();
        for n in 0..10 * MAX_MESSAGES {
            assert_eq!(limiter.admit(&format!("error {n}"), now), Some(0));
        }
        assert!(limiter.seen.lock().expect("lock").len() <= MAX_MESSAGES);
    }
}
