//! PKCE (RFC 7636): challenge methods, the shape of challenges and verifiers, and the
//! constant-time check of a verifier against its challenge.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A PKCE code challenge method (RFC 7636 §4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PkceMethod {
    S256,
    Plain,
}

impl PkceMethod {
    /// The method named by `code_challenge_method`; absent means `plain` (RFC 7636 §4.3).
    pub fn parse(raw: Option<&str>) -> Option<PkceMethod> {
        match raw {
            None | Some("plain") => Some(PkceMethod::Plain),
            Some("S256") => Some(PkceMethod::S256),
            Some(_) => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PkceMethod::S256 => "S256",
            PkceMethod::Plain => "plain",
        }
    }
}

/// A code challenge or verifier must be 43–128 characters of [A-Z a-z 0-9 - . _ ~]
/// (RFC 7636 §4.1).
pub fn is_valid_pkce_string(s: &str) -> bool {
    (43..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// Checks a verifier against the stored challenge, in constant time.
pub fn pkce_verifies(method: PkceMethod, challenge: &str, verifier: &str) -> bool {
    if !is_valid_pkce_string(verifier) {
        return false;
    }
    let computed = match method {
        PkceMethod::S256 => URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())),
        PkceMethod::Plain => verifier.to_owned(),
    };
    computed.len() == challenge.len() && bool::from(computed.as_bytes().ct_eq(challenge.as_bytes()))
}

#[cfg(test)]
mod props;
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_matches_rfc7636_example() {
        // RFC 7636 Appendix B.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(pkce_verifies(PkceMethod::S256, challenge, verifier));
        assert!(!pkce_verifies(
            PkceMethod::S256,
            challenge,
            &verifier.replace('d', "e")
        ));
        assert!(pkce_verifies(PkceMethod::Plain, verifier, verifier));
        assert!(!pkce_verifies(PkceMethod::Plain, verifier, "short"));
    }

    #[test]
    fn pkce_method_parsing() {
        assert_eq!(PkceMethod::parse(None), Some(PkceMethod::Plain));
        assert_eq!(PkceMethod::parse(Some("S256")), Some(PkceMethod::S256));
        assert_eq!(PkceMethod::parse(Some("s256")), None);
    }
}
