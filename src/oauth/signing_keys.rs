//! The signing key timeline of one algorithm. A new key is published in the JWKS at once
//! and signs only from `signs_from` (after a delay, so relying parties that cached the
//! JWKS learn it first); the key it replaces stops signing then, and stays published
//! until every id_token it signed has expired. Pure: times in, phases out.

use super::id_token::ID_TOKEN_TTL_SECS;

/// When one key of an algorithm was created and from when it signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyTimes {
    pub created_at: i64,
    pub signs_from: i64,
}

/// Where a key stands at a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyPhase {
    /// Published, not signing yet (from `signs_from` on it will).
    Upcoming,
    /// The key that signs new id_tokens (one per algorithm).
    Signing,
    /// Replaced; published until `published_until` for the id_tokens it signed.
    Retired { published_until: i64 },
    /// Replaced long enough ago that no id_token it signed is still valid: not published.
    Expired,
}

impl KeyPhase {
    pub fn published(self) -> bool {
        !matches!(self, KeyPhase::Expired)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            KeyPhase::Upcoming => "upcoming",
            KeyPhase::Signing => "signing",
            KeyPhase::Retired { .. } => "retired",
            KeyPhase::Expired => "expired",
        }
    }
}

/// The phase of each key (same order as `keys`, all of one algorithm, oldest stored
/// first) at `now`. The signing key is the one whose `signs_from` is latest but not in the
/// future (ties: the later created, then the later stored); a replaced key retired when
/// the first key ranked after it began to sign.
pub fn key_phases(keys: &[KeyTimes], now: i64) -> Vec<KeyPhase> {
    let rank = |index: usize| (keys[index].signs_from, keys[index].created_at, index);
    let signing = (0..keys.len())
        .filter(|&index| keys[index].signs_from <= now)
        .max_by_key(|&index| rank(index));
    (0..keys.len())
        .map(|index| {
            if Some(index) == signing {
                return KeyPhase::Signing;
            }
            if keys[index].signs_from > now {
                return KeyPhase::Upcoming;
            }
            // Retired when the first later-ranked key began to sign (at or before now,
            // since the signing key is one of them).
            let retired_at = (0..keys.len())
                .filter(|&later| rank(later) > rank(index) && keys[later].signs_from <= now)
                .map(|later| keys[later].signs_from)
                .min()
                .unwrap_or(now);
            let published_until = retired_at.saturating_add(ID_TOKEN_TTL_SECS);
            if now < published_until {
                KeyPhase::Retired { published_until }
            } else {
                KeyPhase::Expired
            }
        })
        .collect()
}

/// From when a new key signs: after `delay_secs` when a key already signs (relying parties
/// must see the new one in the JWKS first), at once when none does.
pub fn new_key_signs_from(existing: &[KeyTimes], now: i64, delay_secs: i64) -> i64 {
    let any_signing = key_phases(existing, now).contains(&KeyPhase::Signing);
    if any_signing {
        now.saturating_add(delay_secs)
    } else {
        now
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: i64 = ID_TOKEN_TTL_SECS;

    fn key(created_at: i64, signs_from: i64) -> KeyTimes {
        KeyTimes {
            created_at,
            signs_from,
        }
    }

    /// The rotation timeline: key A from 0; rotated at 100 with a delay of 50 (key B signs
    /// from 150); rotated again at 200 with no delay (key C).
    #[test]
    fn rotation_timeline() {
        use KeyPhase::*;
        let a = key(0, 0);
        let b = key(100, 150);
        let c = key(200, 200);
        let retired_a = Retired {
            published_until: 150 + TTL,
        };
        let retired_b = Retired {
            published_until: 200 + TTL,
        };
        let table: &[(&[KeyTimes], i64, &[KeyPhase])] = &[
            (&[a], 0, &[Signing]),
            (&[a], 10_000_000, &[Signing]),
            // Rotation publishes B at once; A keeps signing until B's time comes.
            (&[a, b], 100, &[Signing, Upcoming]),
            (&[a, b], 149, &[Signing, Upcoming]),
            (&[a, b], 150, &[retired_a, Signing]),
            (&[a, b], 150 + TTL - 1, &[retired_a, Signing]),
            // Every id_token A signed has expired: A leaves the JWKS.
            (&[a, b], 150 + TTL, &[Expired, Signing]),
            (&[a, b, c], 200, &[retired_a, retired_b, Signing]),
            (&[a, b, c], 200 + TTL, &[Expired, Expired, Signing]),
            // Order of the rows does not matter.
            (&[c, a, b], 200, &[Signing, retired_a, retired_b]),
            // A key never yet signing whose successor already signs (rotated twice quickly).
            (
                &[a, key(100, 300), key(120, 150)],
                400,
                &[
                    retired_a,
                    Signing,
                    Retired {
                        published_until: 300 + TTL,
                    },
                ],
            ),
            // Rotated within the same second without delay: the later stored signs.
            (
                &[key(5, 5), key(5, 5)],
                5,
                &[
                    Retired {
                        published_until: 5 + TTL,
                    },
                    Signing,
                ],
            ),
            // Before the only key signs (a clock set back): nothing signs.
            (&[key(100, 100)], 50, &[Upcoming]),
        ];
        for (keys, now, expected) in table {
            assert_eq!(&key_phases(keys, *now), expected, "{keys:?} at {now}");
        }
    }

    #[test]
    fn a_new_key_waits_only_when_another_signs() {
        let table: &[(&[KeyTimes], i64, i64)] = &[
            (&[], 1000, 1000),
            (&[key(0, 0)], 1000, 1060),
            (&[key(900, 1100)], 1000, 1000),
            (&[key(0, 0), key(900, 1100)], 1000, 1060),
        ];
        for (keys, now, signs_from) in table {
            assert_eq!(new_key_signs_from(keys, *now, 60), *signs_from, "{keys:?}");
        }
    }

    #[test]
    fn only_expired_keys_leave_the_jwks() {
        assert!(KeyPhase::Upcoming.published());
        assert!(KeyPhase::Signing.published());
        assert!(KeyPhase::Retired { published_until: 1 }.published());
        assert!(!KeyPhase::Expired.published());
    }
}
