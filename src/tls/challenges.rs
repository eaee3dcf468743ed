//! The ACME challenge answers being offered right now: HTTP-01 key authorizations by
//! token (answered by the `--http-listen` listener) and TLS-ALPN-01 certificates by
//! domain (answered by the resolver when a client offers ALPN `acme-tls/1`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rcgen::{CertificateParams, CustomExtension, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::sign::CertifiedKey;

/// The ALPN protocol of TLS-ALPN-01 validation connections (RFC 8737).
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

/// Challenge answers, shared by the issuing task and the listeners.
#[derive(Debug, Default)]
pub struct Challenges {
    // std locks: held only to insert, remove or clone one entry, never across an await.
    http: Mutex<HashMap<String, String>>,
    alpn: Mutex<HashMap<String, Arc<CertifiedKey>>>,
}

impl Challenges {
    /// Answers `GET /.well-known/acme-challenge/TOKEN` with `key_authorization`.
    pub fn offer_http(&self, token: &str, key_authorization: &str) {
        lock(&self.http).insert(token.to_owned(), key_authorization.to_owned());
    }

    /// The key authorization of `token`, while it is offered.
    pub fn http_answer(&self, token: &str) -> Option<String> {
        lock(&self.http).get(token).cloned()
    }

    /// Answers TLS-ALPN-01 handshakes for `domain` with a self-signed certificate
    /// carrying the digest of the key authorization (the acmeIdentifier extension).
    pub fn offer_alpn(&self, domain: &str, digest: &[u8]) -> Result<(), String> {
        let certified = alpn_certificate(domain, digest)?;
        lock(&self.alpn).insert(domain.to_ascii_lowercase(), certified);
        Ok(())
    }

    /// The TLS-ALPN-01 certificate for `domain`, while it is offered.
    pub fn alpn_answer(&self, domain: &str) -> Option<Arc<CertifiedKey>> {
        lock(&self.alpn).get(&domain.to_ascii_lowercase()).cloned()
    }

    /// Stops offering every answer (the order is over, valid or not).
    pub fn clear(&self) {
        lock(&self.http).clear();
        lock(&self.alpn).clear();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn alpn_certificate(domain: &str, digest: &[u8]) -> Result<Arc<CertifiedKey>, String> {
    let key = KeyPair::generate().map_err(|e| e.to_string())?;
    let mut params = CertificateParams::new(vec![domain.to_owned()]).map_err(|e| e.to_string())?;
    params.custom_extensions = vec![CustomExtension::new_acme_identifier(digest)];
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

    #[test]
    fn offers_answers_until_cleared() {
        let c = Challenges::default();
        c.offer_http("tok", "tok.thumb");
        c.offer_alpn("A.example", &[7; 32]).expect("alpn cert");
        assert_eq!(c.http_answer("tok").as_deref(), Some("tok.thumb"));
        assert!(c.http_answer("other").is_none());
        assert!(c.alpn_answer("a.example").is_some());
        c.clear();
        assert!(c.http_answer("tok").is_none());
        assert!(c.alpn_answer("a.example").is_none());
    }
}
