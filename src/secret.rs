//! Bearer secrets: generating codes, tokens and client secrets from the OS random
//! generator, and hashing them to the SHA-256 digests the store keeps. Comparisons of
//! digests are constant-time.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Fills `buf` from the operating system's random generator.
pub fn fill_random(buf: &mut [u8]) {
    // The OS generator failing is unrecoverable: issuing predictable secrets would be worse.
    #[allow(clippy::expect_used)]
    getrandom::getrandom(buf).expect("the operating system's random generator failed");
}

/// A secret as presented in a request (a password, a client secret, a code or a refresh
/// token). Its `Debug` never prints the value and it has no `Display`, so it cannot reach
/// a log line or an error message by accident; [`Secret::expose`] is the one way to read it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value, for hashing or comparing; never for logging.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Its SHA-256 digest, as the store keeps secrets.
    pub fn digest(&self) -> SecretHash {
        sha256(&self.0)
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// The SHA-256 digest of a code, token or secret: the form the store keeps them in and
/// the rule book compares them in.
pub type SecretHash = [u8; 32];

/// A new code or token in the shape GroveStreams clients expect: lower-case UUID text (8-4-4-4-12 hex) with
/// 122 random bits from the OS generator (a version-4 UUID).
pub fn new_token() -> String {
    let mut bytes = [0u8; 16];
    fill_random(&mut bytes);
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .hyphenated()
        .to_string()
}

/// A new client secret: 32 random bytes, URL-safe base64 (43 characters).
pub fn new_client_secret() -> String {
    let mut bytes = [0u8; 32];
    fill_random(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn sha256(secret: &str) -> SecretHash {
    Sha256::digest(secret.as_bytes()).into()
}

/// Constant-time equality of a presented secret against a stored digest.
pub fn matches(presented: &str, stored_hash: &[u8]) -> bool {
    bool::from(sha256(presented).as_slice().ct_eq(stored_hash))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_never_prints_its_value() {
        let secret = Secret::new("hunter2-sekrit");
        let printed = format!("{secret:?} {:?} {:#?}", Some(&secret), [&secret]);
        assert!(!printed.contains("hunter2"), "{printed}");
        assert_eq!(secret.expose(), "hunter2-sekrit");
        assert_eq!(secret.digest(), sha256("hunter2-sekrit"));
    }

    #[test]
    fn tokens_are_lowercase_v4_uuids() {
        let t = new_token();
        assert_eq!(t.len(), 36);
        assert!(t
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase() || c == '-'));
        assert_eq!(&t[14..15], "4");
        assert_ne!(new_token(), t);
    }

    #[test]
    fn client_secrets_have_256_bits() {
        let s = new_client_secret();
        assert_eq!(URL_SAFE_NO_PAD.decode(&s).expect("b64").len(), 32);
    }

    #[test]
    fn matches_compares_against_digest() {
        let h = sha256("s3cret");
        assert!(matches("s3cret", &h));
        assert!(!matches("s3cres", &h));
        assert!(!matches("s3cret", &h[..31]));
    }
}
