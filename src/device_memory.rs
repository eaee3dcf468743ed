//! What the device grant keeps in memory rather than in the database: when each device
//! code was last polled (and its interval after `slow_down`s), the pending row (and its
//! client's secret digest) the last read found, and how many wrong user codes each
//! client address entered lately (the one server of an SQLite file; instances of one
//! PostgreSQL database count those in the database instead, `throttle::shared`).
//! Keeping the polls here is what lets a device waiting for its user cost no write, and
//! most of its polls no read; losing them on restart only forgets one `slow_down`. Both
//! maps are bounded.
//!
//! A remembered row is dropped whenever a user answers any device code, and a row read
//! before that answer is not remembered afterwards (the answer count below), so a poll
//! never says `authorization_pending` from memory once an answer was recorded here. That
//! holds only where every answer is recorded by this process ([`Answers::RecordedHere`]):
//! with several instances on one database, an answer recorded by another is never heard
//! of here, so rows are not remembered ([`Answers::RecordedElsewhereToo`]) and every poll
//! reads its row. Poll times stay per instance either way (see [`Answers`]).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::oauth::{DeviceFacts, USER_CODE_FAILURES_PER_WINDOW, USER_CODE_WINDOW_SECS};
use crate::secret::SecretHash;
use crate::throttle::normalize_ip;

/// Device codes remembered at most (~200 bytes each with their row): far above the devices that wait at
/// once; past it, expired entries go first, then arbitrary ones (which only forgets a
/// `slow_down`).
pub const POLL_CAPACITY: usize = 65_536;
/// Client addresses whose wrong user codes are counted at most.
const ADDRESS_CAPACITY: usize = 16_384;

/// Which process records users' answers to device codes: what says whether a pending row
/// may answer a device's next polls from memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answers {
    /// This process records every answer (the one server of an SQLite file): an answer
    /// drops the remembered rows at once ([`DeviceMemory::answered`]), so they may answer
    /// polls.
    RecordedHere,
    /// Other instances record answers too (several servers on one PostgreSQL database):
    /// a row remembered here could say `authorization_pending` after the user approved
    /// elsewhere, so none is remembered and every poll reads its row. The last-poll times
    /// stay per instance: behind a round-robin balancer each instance sees some of a
    /// device's polls, so `slow_down` catches a too-eager device later, never wrongly.
    RecordedElsewhereToo,
}

/// The in-memory state of the device grant. Clones share it (a user's answer is
/// recorded from a task of its own, see `device_page`).
#[derive(Clone)]
pub struct DeviceMemory {
    /// How long a device code lives: older polls need no memory.
    code_ttl: Duration,
    /// Whether pending rows may be remembered ([`Answers::RecordedHere`]).
    remembers_rows: bool,
    polls: Arc<Mutex<Polls>>,
    failures: Arc<Mutex<HashMap<IpAddr, Failures>>>,
}

#[derive(Default)]
struct Polls {
    codes: HashMap<SecretHash, Poll>,
    /// User answers recorded so far: a row read before one is not remembered after it.
    answers: u64,
}

struct Poll {
    at: Instant,
    interval_secs: i64,
    row: Option<Remembered>,
}

/// A pending device code's row as a poll read it, with its client's stored secret
/// digest: what lets the next polls be answered without reading it again.
#[derive(Clone)]
pub struct Remembered {
    pub facts: DeviceFacts,
    /// `None` for a public client.
    pub client_secret_hash: Option<Vec<u8>>,
    read_at: Instant,
}

impl Remembered {
    pub fn new(facts: DeviceFacts, client_secret_hash: Option<Vec<u8>>) -> Remembered {
        Remembered {
            facts,
            client_secret_hash,
            read_at: Instant::now(),
        }
    }

    /// Milliseconds since it was read.
    pub fn age_ms(&self) -> u64 {
        millis_since(self.read_at)
    }
}

/// Milliseconds since `then` (saturating).
fn millis_since(then: Instant) -> u64 {
    u64::try_from(then.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// What memory holds about one device code's polls.
pub struct LastPoll {
    /// Milliseconds since the previous poll.
    pub since_ms: u64,
    /// The interval that poll told the device to keep.
    pub interval_secs: i64,
    pub row: Option<Remembered>,
}

#[derive(Clone, Copy)]
struct Failures {
    window_start: Instant,
    count: u32,
}

impl DeviceMemory {
    pub fn new(code_ttl_secs: i64, answers: Answers) -> DeviceMemory {
        DeviceMemory {
            code_ttl: Duration::from_secs(u64::try_from(code_ttl_secs).unwrap_or(0)),
            remembers_rows: answers == Answers::RecordedHere,
            polls: Arc::default(),
            failures: Arc::default(),
        }
    }

    /// The code's previous poll, if remembered.
    pub fn last_poll(&self, code: &SecretHash) -> Option<LastPoll> {
        let polls = self.polls.lock().ok()?;
        polls.codes.get(code).map(|poll| LastPoll {
            since_ms: millis_since(poll.at),
            interval_secs: poll.interval_secs,
            row: poll.row.clone(),
        })
    }

    /// User answers recorded so far; read it before reading a row to remember.
    pub fn answers(&self) -> u64 {
        self.polls.lock().map_or(0, |polls| polls.answers)
    }

    /// Remembers a poll answered now, with the interval the device must keep from now on.
    /// `read`: the row this poll read and [`Self::answers`] from before that read; the row
    /// is remembered only if no answer was recorded since, and only where answers are
    /// [`Answers::RecordedHere`]. Without one, a row remembered earlier is kept.
    pub fn record_poll(
        &self,
        code: SecretHash,
        interval_secs: i64,
        read: Option<(Remembered, u64)>,
    ) {
        let Ok(mut polls) = self.polls.lock() else {
            return;
        };
        let answers = polls.answers;
        let codes = &mut polls.codes;
        if codes.len() >= POLL_CAPACITY && !codes.contains_key(&code) {
            let ttl = self.code_ttl;
            codes.retain(|_, poll| poll.at.elapsed() < ttl);
            if codes.len() >= POLL_CAPACITY {
                if let Some(any) = codes.keys().next().copied() {
                    codes.remove(&any);
                }
            }
        }
        let row = match read {
            Some((row, answers_before)) => {
                (self.remembers_rows && answers_before == answers).then_some(row)
            }
            None => codes.get_mut(&code).and_then(|poll| poll.row.take()),
        };
        codes.insert(
            code,
            Poll {
                at: Instant::now(),
                interval_secs,
                row,
            },
        );
    }

    /// A user answered a device code (committed): no poll may be answered from a row read
    /// before, so every remembered row goes (answers are rare; each costs the devices
    /// waiting one read each).
    pub fn answered(&self) {
        if let Ok(mut polls) = self.polls.lock() {
            polls.answers += 1;
            for poll in polls.codes.values_mut() {
                poll.row = None;
            }
        }
    }

    /// Forgets a code that was redeemed, denied or expired.
    pub fn forget(&self, code: &SecretHash) {
        if let Ok(mut polls) = self.polls.lock() {
            polls.codes.remove(code);
        }
    }

    /// Reserves one user-code try for `ip`, counted before the code is looked up, so a
    /// burst of parallel guesses cannot pass the limit before the first is counted;
    /// `Err(seconds to wait)` once the address used its tries in the window. A try whose
    /// code turns out right is given back with [`Self::user_code_found`].
    pub fn try_user_code(&self, ip: IpAddr) -> Result<(), u64> {
        let window = Duration::from_secs(USER_CODE_WINDOW_SECS);
        let Ok(mut failures) = self.failures.lock() else {
            return Ok(());
        };
        let ip = normalize_ip(ip);
        if failures.len() >= ADDRESS_CAPACITY && !failures.contains_key(&ip) {
            failures.retain(|_, f| f.window_start.elapsed() < window);
            if failures.len() >= ADDRESS_CAPACITY {
                return Ok(());
            }
        }
        let entry = failures.entry(ip).or_insert(Failures {
            window_start: Instant::now(),
            count: 0,
        });
        if entry.window_start.elapsed() >= window {
            *entry = Failures {
                window_start: Instant::now(),
                count: 0,
            };
        }
        if entry.count >= USER_CODE_FAILURES_PER_WINDOW {
            return Err(window
                .saturating_sub(entry.window_start.elapsed())
                .as_secs()
                .max(1));
        }
        entry.count += 1;
        Ok(())
    }

    /// Gives back the try reserved for a code that was right: only wrong codes count.
    pub fn user_code_found(&self, ip: IpAddr) {
        if let Ok(mut failures) = self.failures.lock() {
            if let Some(entry) = failures.get_mut(&normalize_ip(ip)) {
                entry.count = entry.count.saturating_sub(1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending_row() -> Remembered {
        Remembered::new(
            DeviceFacts {
                client_id: "tv".into(),
                status: crate::oauth::DeviceStatus::Pending,
                expires_at: i64::MAX,
                interval_secs: 5,
            },
            None,
        )
    }

    #[test]
    fn remembers_polls_and_forgets_redeemed_codes() {
        let memory = DeviceMemory::new(600, Answers::RecordedHere);
        assert!(memory.last_poll(&[1; 32]).is_none());
        memory.record_poll([1; 32], 10, None);
        let last = memory.last_poll(&[1; 32]).expect("remembered");
        assert!(last.since_ms < 5_000);
        assert_eq!(last.interval_secs, 10);
        assert!(last.row.is_none());
        memory.forget(&[1; 32]);
        assert!(memory.last_poll(&[1; 32]).is_none());
    }

    /// A row read is kept by the polls answered from it, and dropped by any answer.
    #[test]
    fn a_remembered_row_lasts_until_a_user_answers() {
        let memory = DeviceMemory::new(600, Answers::RecordedHere);
        memory.record_poll([1; 32], 5, Some((pending_row(), memory.answers())));
        memory.record_poll([1; 32], 10, None);
        let last = memory.last_poll(&[1; 32]).expect("remembered");
        assert_eq!(last.interval_secs, 10);
        assert!(last.row.is_some(), "a poll from memory keeps the row");
        memory.answered();
        assert!(memory.last_poll(&[1; 32]).expect("poll").row.is_none());
    }

    /// The race the answer count closes: a poll reads the row (pending), a user's answer
    /// commits and is recorded, then the poll records its read. The stale row must not be
    /// remembered, or the next polls would say `authorization_pending` after the answer.
    #[test]
    fn a_row_read_before_an_answer_is_not_remembered_after_it() {
        let memory = DeviceMemory::new(600, Answers::RecordedHere);
        let before_read = memory.answers();
        let read = pending_row();
        memory.answered();
        memory.record_poll([1; 32], 5, Some((read, before_read)));
        assert!(memory.last_poll(&[1; 32]).expect("poll").row.is_none());
        // Read after the answer: remembered.
        memory.record_poll([1; 32], 5, Some((pending_row(), memory.answers())));
        assert!(memory.last_poll(&[1; 32]).expect("poll").row.is_some());
    }

    /// Where other instances record answers too, no row is remembered: every poll reads
    /// its row, so none is told `authorization_pending` after an answer recorded elsewhere.
    /// Poll times and intervals are still kept (for `slow_down`).
    #[test]
    fn with_answers_recorded_elsewhere_too_no_row_is_remembered() {
        let memory = DeviceMemory::new(600, Answers::RecordedElsewhereToo);
        memory.record_poll([1; 32], 5, Some((pending_row(), memory.answers())));
        let last = memory.last_poll(&[1; 32]).expect("the poll is remembered");
        assert_eq!(last.interval_secs, 5);
        assert!(last.row.is_none(), "but not its row");
        memory.record_poll([1; 32], 10, None);
        let last = memory.last_poll(&[1; 32]).expect("poll");
        assert_eq!(last.interval_secs, 10);
        assert!(last.row.is_none());
    }

    /// Clones share one memory: an answer recorded through one is seen through another.
    #[test]
    fn clones_share_the_memory() {
        let memory = DeviceMemory::new(600, Answers::RecordedHere);
        let other = memory.clone();
        memory.record_poll([1; 32], 5, Some((pending_row(), memory.answers())));
        other.answered();
        assert!(memory.last_poll(&[1; 32]).expect("poll").row.is_none());
    }

    #[test]
    fn an_address_is_stopped_after_too_many_wrong_user_codes() {
        let memory = DeviceMemory::new(600, Answers::RecordedHere);
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let other: IpAddr = "192.0.2.8".parse().unwrap();
        for _ in 0..USER_CODE_FAILURES_PER_WINDOW {
            assert_eq!(memory.try_user_code(ip), Ok(()));
        }
        let wait = memory.try_user_code(ip).unwrap_err();
        assert!((1..=USER_CODE_WINDOW_SECS).contains(&wait), "{wait}");
        assert_eq!(memory.try_user_code(other), Ok(()));
    }

    /// The "bounded map" of the README: however many devices poll, the memory holds at
    /// most `POLL_CAPACITY` codes and `ADDRESS_CAPACITY` addresses.
    #[test]
    fn polls_and_addresses_stay_within_their_capacity() {
        let memory = DeviceMemory::new(600, Answers::RecordedHere);
        for n in 0..POLL_CAPACITY + 100 {
            let mut code = [0u8; 32];
            code[..8].copy_from_slice(&(n as u64).to_le_bytes());
            memory.record_poll(code, 5, Some((pending_row(), 0)));
        }
        assert_eq!(memory.polls.lock().unwrap().codes.len(), POLL_CAPACITY);
        for n in 0..ADDRESS_CAPACITY as u32 + 100 {
            let _ = memory.try_user_code(IpAddr::from(n.to_be_bytes()));
        }
        assert_eq!(memory.failures.lock().unwrap().len(), ADDRESS_CAPACITY);
    }

    /// Tries reserved by parallel requests count before any answer: of many racing
    /// guesses from one address, only the limit gets through. A right code is given back.
    #[test]
    fn racing_guesses_from_one_address_cannot_pass_the_limit() {
        let memory = std::sync::Arc::new(DeviceMemory::new(600, Answers::RecordedHere));
        let ip: IpAddr = "192.0.2.9".parse().unwrap();
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(40));
        let admitted: u32 = (0..40)
            .map(|_| {
                let (memory, barrier) = (memory.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    u32::from(memory.try_user_code(ip).is_ok())
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().unwrap())
            .sum();
        assert_eq!(admitted, USER_CODE_FAILURES_PER_WINDOW);
        memory.user_code_found(ip);
        assert_eq!(memory.try_user_code(ip), Ok(()));
        assert!(memory.try_user_code(ip).is_err());
    }
}
