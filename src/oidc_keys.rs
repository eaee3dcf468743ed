//! The server's id_token signing keys: the first key of an algorithm is generated on first
//! use (off the async workers) and stored; which key signs and which are published is
//! `oauth::key_phases`' answer at the moment asked, so a rotation made by the CLI while the
//! server runs takes effect without a restart. Parsed keys are cached by kid.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::jose::{self, Alg, JoseError, Signer};
use crate::oauth::{self, KeyPhase, KeyTimes};
use crate::store::signing_keys::{self, StoredKey};
use crate::store::{self, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Jose(#[from] JoseError),
    #[error("no {0} key signs at this time (the clock is before every key's start)")]
    NoneSigning(&'static str),
    #[error("key task failed")]
    TaskFailed,
}

/// Parsed signers by kid; shared by every request.
#[derive(Default)]
pub struct SigningKeys {
    signers: Mutex<HashMap<String, Arc<Signer>>>,
}

impl SigningKeys {
    /// The key that signs `alg` now.
    pub async fn signer(&self, store: &Store, alg: Alg) -> Result<Arc<Signer>, KeyError> {
        ensure_key(store, alg).await?;
        let keys = store.read(|conn| signing_keys::list(conn)).await?;
        let now = store::now();
        let of_alg: Vec<StoredKey> = keys.into_iter().filter(|k| k.alg == alg).collect();
        let times: Vec<KeyTimes> = of_alg.iter().map(|k| k.times).collect();
        let signing = oauth::key_phases(&times, now)
            .into_iter()
            .zip(of_alg)
            .find(|(phase, _)| *phase == KeyPhase::Signing)
            .map(|(_, key)| key)
            .ok_or(KeyError::NoneSigning(alg.as_str()))?;
        if let Some(signer) = self.cached(&signing.kid) {
            return Ok(signer);
        }
        // Parsing an RSA key validates it (milliseconds): not on an async worker.
        let signer = tokio::task::spawn_blocking(move || {
            Signer::new(signing.alg, signing.kid, &signing.private)
        })
        .await
        .map_err(|_| KeyError::TaskFailed)??;
        let signer = Arc::new(signer);
        if let Ok(mut signers) = self.signers.lock() {
            signers.insert(signer.kid().to_owned(), Arc::clone(&signer));
        }
        Ok(signer)
    }

    fn cached(&self, kid: &str) -> Option<Arc<Signer>> {
        self.signers.lock().ok()?.get(kid).cloned()
    }
}

/// The JWK Set: every published key (upcoming, signing, retired), each with kid, alg and
/// `use: sig`. An RS256 key (mandatory to implement) is generated if there is none yet, so
/// a relying party that fetches the set before the first sign-in finds the key.
pub async fn jwks(store: &Store) -> Result<serde_json::Value, KeyError> {
    ensure_key(store, Alg::Rs256).await?;
    let keys = store.read(|conn| signing_keys::list(conn)).await?;
    let now = store::now();
    let mut published = Vec::new();
    for alg in Alg::ALL {
        let of_alg: Vec<&StoredKey> = keys.iter().filter(|k| k.alg == alg).collect();
        let times: Vec<KeyTimes> = of_alg.iter().map(|k| k.times).collect();
        for (phase, key) in oauth::key_phases(&times, now).into_iter().zip(of_alg) {
            if !phase.published() {
                continue;
            }
            let Ok(serde_json::Value::Object(mut jwk)) = serde_json::from_str(&key.public_jwk)
            else {
                tracing::error!(kid = %key.kid, "stored public key is not a JSON object; left out");
                continue;
            };
            jwk.insert("kid".into(), key.kid.clone().into());
            jwk.insert("alg".into(), alg.as_str().into());
            jwk.insert("use".into(), "sig".into());
            published.push(serde_json::Value::Object(jwk));
        }
    }
    Ok(serde_json::json!({ "keys": published }))
}

/// The claims of `token` when one of the stored keys (signing, upcoming or retired)
/// signed it; `None` for a token no key of ours signed.
pub async fn verify_own(store: &Store, token: &str) -> Result<Option<serde_json::Value>, KeyError> {
    let keys = store.read(|conn| signing_keys::list(conn)).await?;
    let verifying: Vec<jose::VerifyingKey> = keys
        .iter()
        .map(|k| jose::VerifyingKey {
            kid: &k.kid,
            alg: k.alg,
            public_jwk: &k.public_jwk,
        })
        .collect();
    Ok(jose::verify(token, &verifying))
}

/// Generates and stores the first key of `alg` when there is none. Requests racing here
/// (at one instance or at several on one database) may each generate; the write keeps
/// the first and drops the others (`signing_keys::insert_first`).
async fn ensure_key(store: &Store, alg: Alg) -> Result<(), KeyError> {
    if store
        .read(move |conn| signing_keys::has_key(conn, alg))
        .await?
    {
        return Ok(());
    }
    let key = tokio::task::spawn_blocking(move || jose::generate(alg))
        .await
        .map_err(|_| KeyError::TaskFailed)??;
    store
        .write(move |conn| {
            let now = store::now();
            let times = KeyTimes {
                created_at: now,
                signs_from: oauth::new_key_signs_from(&[], now, 0),
            };
            if let Some(kid) = signing_keys::insert_first(conn, alg, &key, times)? {
                tracing::info!(%kid, alg = alg.as_str(), "generated the first id_token signing key");
            }
            Ok(())
        })
        .await?;
    Ok(())
}
