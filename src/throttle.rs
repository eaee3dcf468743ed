//! Login admission per account and per client IP: which sign-in attempts may reach the
//! hashing pool now, which wait, and which are refused.
//!
//! Two budgets apply to each key (the account and the client address) at once, checked
//! and taken under one lock, so concurrent attempts cannot race past them:
//! - **failures**: attempts in flight count as failures until they are decided, so no
//!   more than the limit (5 per account, 20 per IP) can fail inside the window; at the
//!   limit the key is locked (429 + Retry-After) for a period that doubles per lockout.
//!   A correct password neither bypasses nor lifts a lockout, nor erases earlier failures.
//! - **share of the hashing pool**: each key may have a few hashes in the pool at once, so
//!   one account or one address cannot fill it and deny everyone else. Attempts beyond
//!   the share wait in a bounded queue; past the queue, 429 with Retry-After.
//!
//! State is in memory, deliberately: persisting every failed attempt would cost an fsync
//! per guess (an attacker could turn guessing into disk load), and a restart needs access
//! to the host, which an online guesser does not have. The map is bounded.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures older than this are forgotten.
const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Failures per account before a lockout.
const ACCOUNT_LIMIT: u32 = 5;
/// Failures per client IP before a lockout (higher: several users may share a NAT).
const IP_LIMIT: u32 = 20;
const FIRST_LOCKOUT: Duration = Duration::from_secs(60);
const MAX_LOCKOUT: Duration = Duration::from_secs(15 * 60);
/// The delay after the n-th failure is BASE_DELAY·2^(n-1), capped.
const BASE_DELAY: Duration = Duration::from_millis(100);
const MAX_DELAY: Duration = Duration::from_secs(2);
/// Entries kept at most; beyond it, stale entries are swept and then the oldest dropped.
const MAX_ENTRIES: usize = 100_000;
/// Hashes one account may have in the pool at once: a person signing in on a few devices
/// at once gets all of them through at full speed; more of the same account wait.
const ACCOUNT_SHARE: u32 = 4;
/// Attempts of one account that may wait for its share (the hardening test signs one
/// account in 16 times at once, and all of those must succeed).
const ACCOUNT_QUEUE: u32 = 32;
/// The longest an attempt waits for its share before it is refused; below the usual
/// 30 s client timeouts, so a refusal is seen instead of a dropped connection.
const MAX_QUEUE_WAIT: Duration = Duration::from_secs(20);
/// What a refused attempt beyond the queue is told to wait.
const QUEUE_FULL_RETRY_AFTER_SECS: u64 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    Account(u64),
    Ip(IpAddr),
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    lockouts: u32,
    last_failure: Instant,
    locked_until: Option<Instant>,
    /// Whether a refusal during the current lockout was already reported, so the audit
    /// trail gets one line per lockout instead of one write per hammered request.
    lockout_reported: bool,
    /// Attempts admitted and not yet decided; they count against the failure budget.
    in_flight: u32,
    /// Attempts waiting for a share of the pool.
    waiting: u32,
}

impl Entry {
    fn new(now: Instant) -> Entry {
        Entry {
            failures: 0,
            lockouts: 0,
            last_failure: now,
            locked_until: None,
            lockout_reported: false,
            in_flight: 0,
            waiting: 0,
        }
    }

    /// Nothing worth remembering: the entry can go.
    fn is_idle(&self) -> bool {
        self.failures == 0 && self.lockouts == 0 && self.in_flight == 0 && self.waiting == 0
    }
}

/// How much of the hashing pool, and of the wait queue, one key may hold.
#[derive(Debug, Clone, Copy)]
struct Budget {
    failures: u32,
    share: u32,
    queue: u32,
}

/// Login admission state, shared by the sign-in page and `/api/oauth_login`.
pub struct Throttle {
    entries: Mutex<HashMap<Key, Entry>>,
    hasher_seed: std::collections::hash_map::RandomState,
    /// Budgets of the account key and the IP key, in the order of [`Throttle::keys`].
    budgets: [Budget; 2],
    /// Woken whenever an attempt is decided, so waiting attempts look again.
    released: tokio::sync::Notify,
    /// Lockouts started, for the metrics.
    lockouts_started: AtomicU64,
}

/// Why an attempt was refused before any hashing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Locked {
        retry_after_secs: u64,
        /// The first refusal of this lockout (worth an audit entry).
        first_refusal: bool,
    },
    /// More attempts of this account or address are waiting than its queue holds, or one
    /// waited too long.
    QueueFull { retry_after_secs: u64 },
}

/// An admitted attempt: it holds a share of the pool and counts as a failure until it is
/// decided. Dropped undecided (the client went away, possibly with its hash still in the
/// pool) it stays counted as a failure, so disconnecting cannot be used to get hashing
/// past the budgets; the server's own failures call [`Attempt::abandoned`] instead.
pub struct Attempt<'a> {
    throttle: &'a Throttle,
    keys: [Key; 2],
    decided: bool,
}

/// What the admission step tells an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Go,
    Wait,
    Refuse(Refusal),
}

impl Throttle {
    /// Admission for a hashing pool that holds `pool_capacity` jobs at once. One address
    /// may use half of it, so another always finds room; its failure budget (20) bounds
    /// it further. A proxy's many users (one address without `--trust-forwarded-for`)
    /// queue behind that share instead of being refused: the queue holds four pools.
    pub fn new(pool_capacity: usize) -> Throttle {
        let capacity = u32::try_from(pool_capacity).unwrap_or(u32::MAX).max(2);
        Throttle {
            entries: Mutex::new(HashMap::new()),
            hasher_seed: Default::default(),
            budgets: [
                Budget {
                    failures: ACCOUNT_LIMIT,
                    share: ACCOUNT_SHARE.min(capacity),
                    queue: ACCOUNT_QUEUE,
                },
                Budget {
                    failures: IP_LIMIT,
                    share: capacity / 2,
                    queue: capacity.saturating_mul(4),
                },
            ],
            released: tokio::sync::Notify::new(),
            lockouts_started: AtomicU64::new(0),
        }
    }

    /// Lockouts started since the server started (for the metrics).
    pub fn lockouts(&self) -> u64 {
        self.lockouts_started.load(Ordering::Relaxed)
    }

    fn keys(&self, email: &str, ip: IpAddr) -> [Key; 2] {
        use std::hash::BuildHasher;
        // Accounts are keyed by a keyed hash of the folded email (the same key that makes
        // an account unique), so the map holds no addresses and an attacker cannot pick
        // colliding keys.
        let account = self.hasher_seed.hash_one(crate::email::key(email));
        [Key::Account(account), Key::Ip(normalize_ip(ip))]
    }

    /// Admits an attempt for `email` from `ip` once both keys have room, waiting (bounded)
    /// for it; refuses at once during a lockout or when the queue is full.
    pub async fn admit(&self, email: &str, ip: IpAddr) -> Result<Attempt<'_>, Refusal> {
        let keys = self.keys(email, ip);
        let deadline = tokio::time::Instant::now() + MAX_QUEUE_WAIT;
        let mut place = QueuePlace {
            throttle: self,
            keys,
            held: false,
        };
        loop {
            // Registered before looking, so a release between the look and the wait
            // still wakes this attempt.
            let released = self.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            match self.step_at(keys, Instant::now(), place.held) {
                Step::Go => {
                    place.held = false;
                    return Ok(Attempt {
                        throttle: self,
                        keys,
                        decided: false,
                    });
                }
                Step::Refuse(refusal) => {
                    place.held = false;
                    return Err(refusal);
                }
                Step::Wait => place.held = true,
            }
            if tokio::time::timeout_at(deadline, released).await.is_err() {
                return Err(Refusal::QueueFull {
                    retry_after_secs: QUEUE_FULL_RETRY_AFTER_SECS,
                });
            }
        }
    }

    /// One look at both keys, under the lock: lockout → refuse; room in both budgets →
    /// take it (go); else queue (or refuse when the queue is full). `queued` says the
    /// attempt already holds a place in the queue, which Go and Refuse give back.
    fn step_at(&self, keys: [Key; 2], now: Instant, queued: bool) -> Step {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= MAX_ENTRIES {
            sweep(&mut entries, now);
        }
        if let Some(refusal) = lockout(&mut entries, keys, now) {
            if queued {
                leave_queue(&mut entries, keys);
            }
            return Step::Refuse(refusal);
        }
        let room = keys.iter().zip(self.budgets).all(|(key, budget)| {
            entries.get_mut(key).map_or(true, |entry| {
                if now.duration_since(entry.last_failure) > WINDOW {
                    entry.failures = 0;
                }
                entry.in_flight < budget.share && entry.failures + entry.in_flight < budget.failures
            })
        });
        if room {
            if queued {
                leave_queue(&mut entries, keys);
            }
            for key in keys {
                entries
                    .entry(key)
                    .or_insert_with(|| Entry::new(now))
                    .in_flight += 1;
            }
            return Step::Go;
        }
        if queued {
            return Step::Wait;
        }
        let queue_has_room = keys.iter().zip(self.budgets).all(|(key, budget)| {
            entries
                .get(key)
                .map_or(true, |entry| entry.waiting < budget.queue)
        });
        if !queue_has_room {
            return Step::Refuse(Refusal::QueueFull {
                retry_after_secs: QUEUE_FULL_RETRY_AFTER_SECS,
            });
        }
        for key in keys {
            entries
                .entry(key)
                .or_insert_with(|| Entry::new(now))
                .waiting += 1;
        }
        Step::Wait
    }

    /// Ends an admitted attempt; for a failure, records it and returns the delay to wait
    /// before answering.
    fn decide_at(&self, keys: [Key; 2], failed: bool, now: Instant) -> Duration {
        let mut delay = Duration::ZERO;
        {
            let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            for (key, budget) in keys.into_iter().zip(self.budgets) {
                let Some(entry) = entries.get_mut(&key) else {
                    continue;
                };
                entry.in_flight = entry.in_flight.saturating_sub(1);
                if failed {
                    let lockouts_before = entry.lockouts;
                    delay = delay.max(record_failure(entry, budget.failures, now));
                    let started = u64::from(entry.lockouts - lockouts_before);
                    self.lockouts_started.fetch_add(started, Ordering::Relaxed);
                }
                if entry.is_idle() {
                    entries.remove(&key);
                }
            }
        }
        self.released.notify_waiters();
        delay
    }
}

impl Attempt<'_> {
    /// The password was wrong (or the email unknown): counts a failure; returns how long
    /// to wait before answering.
    pub fn failed(mut self) -> Duration {
        self.decided = true;
        self.throttle.decide_at(self.keys, true, Instant::now())
    }

    /// The password was right: gives the share back. Earlier failures stay counted, so a
    /// success inside a burst of guesses cannot reopen the failure budget.
    pub fn succeeded(mut self) {
        self.decided = true;
        self.throttle.decide_at(self.keys, false, Instant::now());
    }

    /// The server could not decide (storage failure, busy pool): gives the share back
    /// without counting anything against the user.
    pub fn abandoned(mut self) {
        self.decided = true;
        self.throttle.decide_at(self.keys, false, Instant::now());
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if !self.decided {
            self.throttle.decide_at(self.keys, true, Instant::now());
        }
    }
}

/// A place in the wait queue, given back if the waiting attempt is dropped (its client
/// went away) or gives up.
struct QueuePlace<'a> {
    throttle: &'a Throttle,
    keys: [Key; 2],
    held: bool,
}

impl Drop for QueuePlace<'_> {
    fn drop(&mut self) {
        if self.held {
            let mut entries = self
                .throttle
                .entries
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            leave_queue(&mut entries, self.keys);
        }
    }
}

/// The lockout refusal, when either key is locked at `now`.
fn lockout(entries: &mut HashMap<Key, Entry>, keys: [Key; 2], now: Instant) -> Option<Refusal> {
    let mut retry_after: Option<Duration> = None;
    let mut first_refusal = false;
    for key in keys {
        let Some(entry) = entries.get_mut(&key) else {
            continue;
        };
        let Some(until) = entry.locked_until.filter(|until| *until > now) else {
            continue;
        };
        retry_after = retry_after.max(Some(until - now));
        first_refusal |= !entry.lockout_reported;
        entry.lockout_reported = true;
    }
    retry_after.map(|wait| Refusal::Locked {
        retry_after_secs: (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1),
        first_refusal,
    })
}

fn leave_queue(entries: &mut HashMap<Key, Entry>, keys: [Key; 2]) {
    for key in keys {
        if let Some(entry) = entries.get_mut(&key) {
            entry.waiting = entry.waiting.saturating_sub(1);
            if entry.is_idle() {
                entries.remove(&key);
            }
        }
    }
}

/// Counts one failure on `entry`, locking it at `limit`; returns the answer's delay.
fn record_failure(entry: &mut Entry, limit: u32, now: Instant) -> Duration {
    if now.duration_since(entry.last_failure) > WINDOW {
        entry.failures = 0;
    }
    let counted = count_failure(entry.failures, entry.lockouts, limit);
    entry.failures = counted.failures;
    entry.lockouts = counted.lockouts;
    entry.last_failure = now;
    if let Some(lockout) = counted.lockout {
        entry.locked_until = Some(now + lockout);
        entry.lockout_reported = false;
    }
    counted.delay
}

/// What one more failure makes of a key's counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Counted {
    /// Failures in the window (0 again once a lockout starts).
    failures: u32,
    lockouts: u32,
    /// The lockout this failure starts, at the limit.
    lockout: Option<Duration>,
    /// How long to wait before answering.
    delay: Duration,
}

/// One more failure on a key with `failures` in its window and `lockouts` so far, at
/// `limit`: the rule for this process's counts and for counts shared by instances.
fn count_failure(failures: u32, lockouts: u32, limit: u32) -> Counted {
    let mut counted = Counted {
        failures: failures.saturating_add(1),
        lockouts,
        lockout: None,
        delay: Duration::ZERO,
    };
    if counted.failures >= limit {
        counted.lockout = Some(
            FIRST_LOCKOUT
                .saturating_mul(1 << lockouts.min(8))
                .min(MAX_LOCKOUT),
        );
        counted.lockouts = lockouts.saturating_add(1);
        counted.failures = 0;
    }
    let exponent = counted.failures.saturating_sub(1).min(10);
    counted.delay = BASE_DELAY.saturating_mul(1 << exponent).min(MAX_DELAY);
    counted
}

/// IPv6 clients are throttled per /64, since one host usually owns a whole /64.
pub fn normalize_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut segments = v6.segments();
                segments[4..].fill(0);
                IpAddr::V6(segments.into())
            }
        },
    }
}

fn sweep(entries: &mut HashMap<Key, Entry>, now: Instant) {
    let busy = |e: &Entry| e.in_flight > 0 || e.waiting > 0;
    entries.retain(|_, e| {
        busy(e)
            || now.duration_since(e.last_failure) <= WINDOW
            || e.locked_until.is_some_and(|u| u > now)
    });
    if entries.len() >= MAX_ENTRIES {
        // Under a flood of distinct keys, forget the oldest half rather than grow.
        let mut ages: Vec<Instant> = entries.values().map(|e| e.last_failure).collect();
        ages.sort();
        let cutoff = ages[ages.len() / 2];
        entries.retain(|_, e| busy(e) || e.last_failure > cutoff);
    }
}

pub mod shared;
#[cfg(test)]
mod tests;
