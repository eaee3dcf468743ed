//! Certificate chains and keys as PEM text, shared by the files of `--tls-cert` and the
//! certificates ACME stores in the database: parsing, pairing (the key must belong to the
//! leaf) and reading a leaf's validity and issuer.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

/// Why a chain and key cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum PemError {
    #[error("no PEM certificate")]
    NoCertificate,
    #[error("unreadable PEM certificate: {0}")]
    BadCertificate(String),
    #[error("no usable PEM private key ({0})")]
    NoKey(String),
    #[error("unsupported private key: {0}")]
    UnsupportedKey(String),
    #[error("the private key does not belong to the certificate")]
    Mismatch,
}

/// The certificates of a PEM chain, leaf first.
pub fn chain(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, PemError> {
    let chain = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| PemError::BadCertificate(e.to_string()))?;
    if chain.is_empty() {
        return Err(PemError::NoCertificate);
    }
    Ok(chain)
}

/// Pairs a PEM chain with its PEM key, checking that they belong together.
pub fn pair(chain_pem: &[u8], key_pem: &[u8]) -> Result<Arc<CertifiedKey>, PemError> {
    let chain = chain(chain_pem)?;
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| PemError::NoKey(e.to_string()))?;
    certified(chain, &key)
}

/// A chain and its key as rustls serves them.
pub fn certified(
    chain: Vec<CertificateDer<'static>>,
    key: &PrivateKeyDer<'_>,
) -> Result<Arc<CertifiedKey>, PemError> {
    let signing_key = rustls::crypto::ring::sign::any_supported_type(key)
        .map_err(|e| PemError::UnsupportedKey(e.to_string()))?;
    let certified = CertifiedKey::new(chain, signing_key);
    match certified.keys_match() {
        // The key type cannot report its public half: nothing to compare.
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {
            Ok(Arc::new(certified))
        }
        Err(_) => Err(PemError::Mismatch),
    }
}

/// A leaf certificate's validity (Unix seconds) and its issuer's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validity {
    pub not_before: i64,
    pub not_after: i64,
    pub issuer: String,
}

/// The validity of the DER certificate `der`, `None` when it does not parse.
pub fn validity(der: &[u8]) -> Option<Validity> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let validity = cert.validity();
    Some(Validity {
        not_before: validity.not_before.timestamp(),
        not_after: validity.not_after.timestamp(),
        issuer: cert.issuer().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn self_signed() -> (String, String, Vec<u8>) {
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(vec!["a.example".to_owned()])
            .expect("params")
            .self_signed(&key)
            .expect("cert");
        (cert.pem(), key.serialize_pem(), cert.der().to_vec())
    }

    #[test]
    fn pairs_a_chain_with_its_key_and_reads_its_validity() {
        let (chain, key, der) = self_signed();
        assert!(pair(chain.as_bytes(), key.as_bytes()).is_ok());
        let v = validity(&der).expect("validity");
        assert!(v.not_after > v.not_before);
    }

    #[test]
    fn refuses_a_foreign_key_and_text_without_certificates() {
        let (chain, _, _) = self_signed();
        let (_, other_key, _) = self_signed();
        assert!(matches!(
            pair(chain.as_bytes(), other_key.as_bytes()),
            Err(PemError::Mismatch)
        ));
        assert!(matches!(
            pair(b"not pem", other_key.as_bytes()),
            Err(PemError::NoCertificate)
        ));
        assert!(validity(b"not der").is_none());
    }
}
