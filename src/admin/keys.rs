//! `oauthd key list|rotate`: the id_token signing keys. Rotation generates a key per
//! algorithm, published in the JWKS at once and signing after `--signing-delay`
//! (`oauth::new_key_signs_from`); the phases `list` shows are `oauth::key_phases`'. A
//! rotation also deletes the keys of its algorithm that are past `Expired` (no valid
//! id_token can name them). Private keys are never printed.

use serde::Serialize;

use super::{output, AdminError, Context};
use crate::cli::{IdTokenAlg, KeyCommand};
use crate::jose::{self, Alg};
use crate::oauth::{self, KeyPhase, KeyTimes};
use crate::store::audit::{self, AdminEvent};
use crate::store::{iso8601, now, signing_keys, Store};

/// One key as `key list` shows it.
#[derive(Debug, Serialize)]
struct KeyRow {
    kid: String,
    alg: Alg,
    phase: &'static str,
    created_at: String,
    signs_from: String,
    /// Retired keys: when they leave the JWKS.
    published_until: Option<String>,
}

pub fn run(command: KeyCommand, store: &Store, context: &Context) -> Result<(), AdminError> {
    match command {
        KeyCommand::List => list(store, context),
        KeyCommand::Rotate { alg, signing_delay } => {
            rotate(store, context, alg.map(alg_of), i64::from(signing_delay))
        }
    }
}

pub fn alg_of(alg: IdTokenAlg) -> Alg {
    match alg {
        IdTokenAlg::Rs256 => Alg::Rs256,
        IdTokenAlg::Es256 => Alg::Es256,
        IdTokenAlg::EdDsa => Alg::EdDsa,
    }
}

fn list(store: &Store, context: &Context) -> Result<(), AdminError> {
    let rows = rows(store)?;
    output::either(context, &rows, |rows| {
        let table: Vec<Vec<String>> = rows
            .iter()
            .map(|row| {
                vec![
                    row.kid.clone(),
                    row.alg.as_str().to_owned(),
                    row.phase.to_owned(),
                    row.created_at.clone(),
                    row.signs_from.clone(),
                    output::or_dash(row.published_until.as_deref()),
                ]
            })
            .collect();
        output::table(
            &[
                "KID",
                "ALG",
                "PHASE",
                "CREATED",
                "SIGNS_FROM",
                "PUBLISHED_UNTIL",
            ],
            &table,
            "no signing keys yet (the server generates one on first use)",
        )
    })
}

fn rows(store: &Store) -> Result<Vec<KeyRow>, AdminError> {
    let keys = store.with_conn(|conn| signing_keys::list(conn))?;
    let now = now();
    let mut rows = Vec::with_capacity(keys.len());
    for alg in Alg::ALL {
        let of_alg: Vec<_> = keys.iter().filter(|k| k.alg == alg).collect();
        let times: Vec<KeyTimes> = of_alg.iter().map(|k| k.times).collect();
        for (phase, key) in oauth::key_phases(&times, now).into_iter().zip(of_alg) {
            rows.push(KeyRow {
                kid: key.kid.clone(),
                alg,
                phase: phase.as_str(),
                created_at: iso8601(key.times.created_at),
                signs_from: iso8601(key.times.signs_from),
                published_until: match phase {
                    KeyPhase::Retired { published_until } => Some(iso8601(published_until)),
                    _ => None,
                },
            });
        }
    }
    Ok(rows)
}

/// Adds one key per algorithm asked (default: each algorithm that has a key, or RS256).
fn rotate(
    store: &Store,
    context: &Context,
    alg: Option<Alg>,
    delay_secs: i64,
) -> Result<(), AdminError> {
    let keys = store.with_conn(|conn| signing_keys::list(conn))?;
    let algs: Vec<Alg> = match alg {
        Some(alg) => vec![alg],
        None => {
            let in_use: Vec<Alg> = Alg::ALL
                .into_iter()
                .filter(|alg| keys.iter().any(|k| k.alg == *alg))
                .collect();
            if in_use.is_empty() {
                vec![Alg::Rs256]
            } else {
                in_use
            }
        }
    };
    let mut added = Vec::new();
    for alg in algs {
        let generated =
            jose::generate(alg).map_err(|e| AdminError::Invalid(format!("key rotate: {e}")))?;
        let kid = audit::admin_change(
            store,
            |tx| {
                let stored: Vec<signing_keys::StoredKey> = signing_keys::list(tx)?
                    .into_iter()
                    .filter(|k| k.alg == alg)
                    .collect();
                let existing: Vec<KeyTimes> = stored.iter().map(|k| k.times).collect();
                let now = now();
                let expired: Vec<&str> = oauth::key_phases(&existing, now)
                    .into_iter()
                    .zip(&stored)
                    .filter(|(phase, _)| *phase == KeyPhase::Expired)
                    .map(|(_, key)| key.kid.as_str())
                    .collect();
                signing_keys::delete(tx, &expired)?;
                let times = KeyTimes {
                    created_at: now,
                    signs_from: oauth::new_key_signs_from(&existing, now, delay_secs),
                };
                signing_keys::insert(tx, alg, &generated, times)
            },
            |kid| {
                Some(AdminEvent {
                    event: "key_rotate",
                    detail: Some(format!("{} key {kid}", alg.as_str())),
                    ..AdminEvent::default()
                })
            },
        )?;
        added.push(kid);
    }
    let rows: Vec<KeyRow> = rows(store)?
        .into_iter()
        .filter(|row| added.contains(&row.kid))
        .collect();
    output::either(context, &rows, |rows| {
        rows.iter()
            .map(|row| {
                format!(
                    "new {} key {}: published now, signs from {}",
                    row.alg.as_str(),
                    row.kid,
                    row.signs_from
                )
            })
            .collect()
    })
}
