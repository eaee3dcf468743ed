//! The ACME challenge answers being offered right now: HTTP-01 key authorizations by
//! token (answered by the `--http-listen` listener) and TLS-ALPN-01 certificates by
//! domain (answered in the handshake of a client offering ALPN `acme-tls/1`). The
//! ordering instance keeps its own in memory; where several servers share the database
//! (PostgreSQL) it offers them through the database too, so whichever instance the CA
//! reaches answers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rcgen::{CertificateParams, CustomExtension, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::sign::CertifiedKey;

use crate::store::{self, Store};

/// The ALPN protocol of TLS-ALPN-01 validation connections (RFC 8737).
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

/// The kinds of shared offers, as stored.
const HTTP_01: &str = "http-01";
const TLS_ALPN_01: &str = "tls-alpn-01";

/// A shared offer is answered this long at most, even if its order's instance died
/// before withdrawing it (an attempt gives up after 300 s).
const OFFER_SECS: i64 = 600;

/// Challenge answers, shared by the issuing task and the listeners.
#[derive(Default)]
pub struct Challenges {
    // std locks: held only to insert, remove or clone one entry, never across an await.
    http: Mutex<HashMap<String, String>>,
    alpn: Mutex<HashMap<String, Arc<CertifiedKey>>>,
    /// Where offers are shared with the other servers of the database (`None`: one server).
    store: Option<Store>,
}

impl Challenges {
    /// Challenges of a server on `store`: shared through it when other servers may run on
    /// the same database.
    pub fn on(store: &Store) -> Challenges {
        Challenges {
            store: store.shared_by_servers().then(|| store.clone()),
            ..Challenges::default()
        }
    }

    /// Answers `GET /.well-known/acme-challenge/TOKEN` with `key_authorization`.
    pub async fn offer_http(&self, token: &str, key_authorization: &str) {
        lock(&self.http).insert(token.to_owned(), key_authorization.to_owned());
        self.share(HTTP_01, token, key_authorization).await;
    }

    /// The key authorization of `token`, while this or another instance offers it.
    pub async fn http_answer(&self, token: &str) -> Option<String> {
        let own = lock(&self.http).get(token).cloned();
        match own {
            Some(own) => Some(own),
            None => self.shared_answer(HTTP_01, token).await,
        }
    }

    /// Answers TLS-ALPN-01 handshakes for `domain` with a self-signed certificate
    /// carrying the digest of `key_authorization` (the acmeIdentifier extension).
    pub async fn offer_alpn(&self, domain: &str, key_authorization: &str) -> Result<(), String> {
        let domain = domain.to_ascii_lowercase();
        let certified = alpn_certificate(&domain, key_authorization)?;
        lock(&self.alpn).insert(domain.clone(), certified);
        self.share(TLS_ALPN_01, &domain, key_authorization).await;
        Ok(())
    }

    /// The TLS-ALPN-01 certificate for `domain`, while this or another instance offers
    /// it (another's is made here from its key authorization).
    pub async fn alpn_answer(&self, domain: &str) -> Option<Arc<CertifiedKey>> {
        let domain = domain.to_ascii_lowercase();
        let own = lock(&self.alpn).get(&domain).cloned();
        if own.is_some() {
            return own;
        }
        let key_authorization = self.shared_answer(TLS_ALPN_01, &domain).await?;
        alpn_certificate(&domain, &key_authorization).ok()
    }

    /// Stops offering every answer (the order is over, valid or not).
    pub async fn clear(&self) {
        let mut offered: Vec<(&str, String)> = (lock(&self.http).drain())
            .map(|(token, _)| (HTTP_01, token))
            .collect();
        offered.extend(
            lock(&self.alpn)
                .drain()
                .map(|(domain, _)| (TLS_ALPN_01, domain)),
        );
        let Some(store) = &self.store else {
            return;
        };
        let withdrawn = store
            .write(move |conn| {
                for (kind, name) in &offered {
                    store::acme::withdraw_challenge(conn, kind, name)?;
                }
                Ok(())
            })
            .await;
        if let Err(e) = withdrawn {
            tracing::debug!(error = %e, "ACME: cannot withdraw the shared challenge answers; they expire by themselves");
        }
    }

    /// Offers an answer through the database; if that fails, this instance still answers.
    async fn share(&self, kind: &'static str, name: &str, key_authorization: &str) {
        let Some(store) = &self.store else {
            return;
        };
        let (name, answer) = (name.to_owned(), key_authorization.to_owned());
        let until = store::now() + OFFER_SECS;
        let offered = store
            .write(move |conn| store::acme::offer_challenge(conn, kind, &name, &answer, until))
            .await;
        if let Err(e) = offered {
            tracing::warn!(error = %e, "ACME: cannot share a challenge answer through the database; only this instance answers it");
        }
    }

    /// The key authorization another instance offers, if any and not expired.
    async fn shared_answer(&self, kind: &'static str, name: &str) -> Option<String> {
        let store = self.store.as_ref()?;
        let name = name.to_owned();
        let offered = store
            .read(move |conn| store::acme::challenge(conn, kind, &name))
            .await
            .ok()
            .flatten();
        offered
            .filter(|(_, expires_at)| store::now() < *expires_at)
            .map(|(key_authorization, _)| key_authorization)
    }
}

impl std::fmt::Debug for Challenges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Challenges")
            .field("shared", &self.store.is_some())
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn alpn_certificate(domain: &str, key_authorization: &str) -> Result<Arc<CertifiedKey>, String> {
    let digest = ring::digest::digest(&ring::digest::SHA256, key_authorization.as_bytes());
    let key = KeyPair::generate().map_err(|e| e.to_string())?;
    let mut params = CertificateParams::new(vec![domain.to_owned()]).map_err(|e| e.to_string())?;
    params.custom_extensions = vec![CustomExtension::new_acme_identifier(digest.as_ref())];
    let cert = params.self_signed(&key).map_err(|e| e.to_string())?;
    let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let signing_key =
        rustls::crypto::ring::sign::any_supported_type(&key_der).map_err(|e| e.to_string())?;
    // Not `pem::certified`: its key check parses the certificate with webpki, which
    // refuses the critical acmeIdentifier extension; the key was made right here.
    Ok(Arc::new(CertifiedKey::new(
        vec![CertificateDer::from(cert.der().to_vec())],
        signing_key,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn offers_answers_until_cleared() {
        let c = Challenges::default();
        c.offer_http("tok", "tok.thumb").await;
        c.offer_alpn("A.example", "x.thumb")
            .await
            .expect("alpn cert");
        assert_eq!(c.http_answer("tok").await.as_deref(), Some("tok.thumb"));
        assert!(c.http_answer("other").await.is_none());
        assert!(c.alpn_answer("a.example").await.is_some());
        c.clear().await;
        assert!(c.http_answer("tok").await.is_none());
        assert!(c.alpn_answer("a.example").await.is_none());
    }
}
