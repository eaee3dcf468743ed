//! JSON Web Signatures for id_tokens: key generation, the public JWK of a key, and the
//! compact serialisation (RFC 7515) signed with `ring`. RSA keys are generated with the
//! `rsa` crate (ring cannot generate them) and signed with ring like the others. Private
//! keys are PKCS#8 DER bytes that never print (`PrivateKey` has no `Debug` of its bytes).
//! `none` is not an algorithm here: every token this module makes is signed, and
//! [`verify`] accepts only a signature by one of the given keys, made with that key's alg.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use sha2::{Digest, Sha256, Sha512};

/// The id_token signing algorithms oauthd implements (JWA names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Alg {
    Rs256,
    Es256,
    EdDsa,
}

impl Alg {
    pub const ALL: [Alg; 3] = [Alg::Rs256, Alg::Es256, Alg::EdDsa];

    pub fn as_str(self) -> &'static str {
        match self {
            Alg::Rs256 => "RS256",
            Alg::Es256 => "ES256",
            Alg::EdDsa => "EdDSA",
        }
    }

    /// Parses a JWA name exactly (`none` and unknown names are `None`).
    pub fn parse(name: &str) -> Option<Alg> {
        Alg::ALL.into_iter().find(|alg| alg.as_str() == name)
    }
}

impl serde::Serialize for Alg {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// A private key as stored: PKCS#8 DER. Its bytes never reach a log.
pub struct PrivateKey(Vec<u8>);

impl PrivateKey {
    pub fn from_der(der: Vec<u8>) -> PrivateKey {
        PrivateKey(der)
    }

    pub fn der(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PrivateKey(…)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum JoseError {
    #[error("could not generate a {0} key")]
    Generate(&'static str),
    #[error("stored {0} key is unusable")]
    BadKey(&'static str),
    #[error("signing failed")]
    Sign,
}

/// A freshly generated key: its private half and its public JWK (without `kid`).
pub struct GeneratedKey {
    pub private: PrivateKey,
    pub public_jwk: serde_json::Map<String, serde_json::Value>,
}

/// Generates a key for `alg`: RSA 2048, P-256 or Ed25519. RSA takes a noticeable moment
/// (tens to hundreds of milliseconds): call it off the async workers.
pub fn generate(alg: Alg) -> Result<GeneratedKey, JoseError> {
    let rng = SystemRandom::new();
    let fail = || JoseError::Generate(alg.as_str());
    let (der, jwk) = match alg {
        Alg::Rs256 => {
            use rsa::pkcs8::EncodePrivateKey;
            use rsa::traits::PublicKeyParts;
            let key = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, 2048).map_err(|_| fail())?;
            let der = key.to_pkcs8_der().map_err(|_| fail())?.as_bytes().to_vec();
            let jwk = serde_json::json!({
                "kty": "RSA",
                "n": b64(&key.n().to_bytes_be()),
                "e": b64(&key.e().to_bytes_be()),
            });
            (der, jwk)
        }
        Alg::Es256 => {
            let pkcs8 =
                EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                    .map_err(|_| fail())?;
            let pair = EcdsaKeyPair::from_pkcs8(
                &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                pkcs8.as_ref(),
                &rng,
            )
            .map_err(|_| fail())?;
            // An uncompressed point: 0x04, then x and y of 32 bytes each.
            let point = pair.public_key().as_ref();
            let jwk = serde_json::json!({
                "kty": "EC",
                "crv": "P-256",
                "x": b64(&point[1..33]),
                "y": b64(&point[33..65]),
            });
            (pkcs8.as_ref().to_vec(), jwk)
        }
        Alg::EdDsa => {
            let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| fail())?;
            let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|_| fail())?;
            let jwk = serde_json::json!({
                "kty": "OKP",
                "crv": "Ed25519",
                "x": b64(pair.public_key().as_ref()),
            });
            (pkcs8.as_ref().to_vec(), jwk)
        }
    };
    let serde_json::Value::Object(public_jwk) = jwk else {
        return Err(fail());
    };
    Ok(GeneratedKey {
        private: PrivateKey(der),
        public_jwk,
    })
}

/// A parsed private key, ready to sign; built once per key and cached by the caller.
pub struct Signer {
    alg: Alg,
    kid: String,
    key: SignerKey,
}

enum SignerKey {
    Rsa(RsaKeyPair),
    Ecdsa(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

impl Signer {
    pub fn new(alg: Alg, kid: String, private: &PrivateKey) -> Result<Signer, JoseError> {
        let bad = || JoseError::BadKey(alg.as_str());
        let key = match alg {
            Alg::Rs256 => SignerKey::Rsa(RsaKeyPair::from_pkcs8(private.der()).map_err(|_| bad())?),
            Alg::Es256 => SignerKey::Ecdsa(
                EcdsaKeyPair::from_pkcs8(
                    &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                    private.der(),
                    &SystemRandom::new(),
                )
                .map_err(|_| bad())?,
            ),
            Alg::EdDsa => {
                SignerKey::Ed25519(Ed25519KeyPair::from_pkcs8(private.der()).map_err(|_| bad())?)
            }
        };
        Ok(Signer { alg, kid, key })
    }

    pub fn alg(&self) -> Alg {
        self.alg
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The JWS compact serialisation of `claims`, with `alg`, `kid` and `typ: JWT`.
    pub fn sign(&self, claims: &serde_json::Value) -> Result<String, JoseError> {
        let header = serde_json::json!({"alg": self.alg.as_str(), "kid": self.kid, "typ": "JWT"});
        let signing_input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let rng = SystemRandom::new();
        let signature = match &self.key {
            SignerKey::Rsa(pair) => {
                let mut signature = vec![0u8; pair.public().modulus_len()];
                pair.sign(
                    &signature::RSA_PKCS1_SHA256,
                    &rng,
                    signing_input.as_bytes(),
                    &mut signature,
                )
                .map_err(|_| JoseError::Sign)?;
                signature
            }
            SignerKey::Ecdsa(pair) => pair
                .sign(&rng, signing_input.as_bytes())
                .map_err(|_| JoseError::Sign)?
                .as_ref()
                .to_vec(),
            SignerKey::Ed25519(pair) => pair.sign(signing_input.as_bytes()).as_ref().to_vec(),
        };
        Ok(format!("{signing_input}.{}", b64(&signature)))
    }
}

/// A public key that may have signed a token: its kid, alg and public JWK (as stored).
pub struct VerifyingKey<'a> {
    pub kid: &'a str,
    pub alg: Alg,
    pub public_jwk: &'a str,
}

/// The claims of the compact JWS `token` when its header names one of `keys` (by kid,
/// with that key's alg) and the signature verifies with it; `None` for anything else
/// (malformed, `alg: none`, an unknown kid, another alg, a bad signature).
pub fn verify(token: &str, keys: &[VerifyingKey]) -> Option<serde_json::Value> {
    let mut parts = token.split('.');
    let (header, payload, signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let decode = |part: &str| URL_SAFE_NO_PAD.decode(part).ok();
    let header: serde_json::Value = serde_json::from_slice(&decode(header)?).ok()?;
    let alg = Alg::parse(header["alg"].as_str()?)?;
    let kid = header["kid"].as_str()?;
    let key = keys.iter().find(|k| k.kid == kid && k.alg == alg)?;
    let jwk: serde_json::Value = serde_json::from_str(key.public_jwk).ok()?;
    let member = |name: &str| jwk[name].as_str().and_then(decode);
    let signing_input = &token[..header_and_payload_len(token)?];
    let signature = decode(signature)?;
    let verified = match alg {
        Alg::Rs256 => signature::RsaPublicKeyComponents {
            n: member("n")?,
            e: member("e")?,
        }
        .verify(
            &signature::RSA_PKCS1_2048_8192_SHA256,
            signing_input.as_bytes(),
            &signature,
        ),
        Alg::Es256 => {
            let point = [vec![0x04], member("x")?, member("y")?].concat();
            signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                .verify(signing_input.as_bytes(), &signature)
        }
        Alg::EdDsa => signature::UnparsedPublicKey::new(&signature::ED25519, member("x")?)
            .verify(signing_input.as_bytes(), &signature),
    };
    verified.ok()?;
    serde_json::from_slice(&decode(payload)?).ok()
}

/// The length of `header.payload`, the part of a compact JWS its signature covers.
fn header_and_payload_len(token: &str) -> Option<usize> {
    token.rfind('.')
}

/// The `at_hash` of an access token (OIDC Core 3.1.3.6): the left half of its hash with
/// the alg's hash function, base64url. EdDSA (Ed25519) uses SHA-512, as its signatures do.
pub fn half_hash(alg: Alg, token: &str) -> String {
    let digest: Vec<u8> = match alg {
        Alg::Rs256 | Alg::Es256 => Sha256::digest(token.as_bytes()).to_vec(),
        Alg::EdDsa => Sha512::digest(token.as_bytes()).to_vec(),
    };
    b64(&digest[..digest.len() / 2])
}

/// A key id derived from the public key (RFC 7638 thumbprint, SHA-256), so it is stable
/// and names the key it belongs to.
pub fn thumbprint(jwk: &serde_json::Map<String, serde_json::Value>) -> String {
    let members: &[&str] = match jwk.get("kty").and_then(|v| v.as_str()) {
        Some("RSA") => &["e", "kty", "n"],
        Some("EC") => &["crv", "kty", "x", "y"],
        _ => &["crv", "kty", "x"],
    };
    let canonical: serde_json::Map<String, serde_json::Value> = members
        .iter()
        .filter_map(|name| jwk.get(*name).map(|v| ((*name).to_owned(), v.clone())))
        .collect();
    b64(&Sha256::digest(
        serde_json::Value::Object(canonical).to_string().as_bytes(),
    ))
}

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verifies(token: &str, jwk: &serde_json::Map<String, serde_json::Value>, alg: Alg) -> bool {
        let jwk = serde_json::Value::Object(jwk.clone()).to_string();
        let kid = thumbprint_of(&jwk);
        let keys = [VerifyingKey {
            kid: &kid,
            alg,
            public_jwk: &jwk,
        }];
        verify(token, &keys).is_some()
    }

    fn thumbprint_of(jwk: &str) -> String {
        match serde_json::from_str(jwk) {
            Ok(serde_json::Value::Object(map)) => thumbprint(&map),
            _ => panic!("a JWK object"),
        }
    }

    #[test]
    fn every_alg_signs_tokens_its_public_jwk_verifies() {
        for alg in Alg::ALL {
            let key = generate(alg).expect("generate");
            let signer =
                Signer::new(alg, thumbprint(&key.public_jwk), &key.private).expect("parse");
            let token = signer
                .sign(&serde_json::json!({"sub": "u1"}))
                .expect("sign");
            assert_eq!(token.split('.').count(), 3, "{alg:?}");
            let header: serde_json::Value = serde_json::from_slice(
                &URL_SAFE_NO_PAD
                    .decode(token.split('.').next().expect("header"))
                    .expect("b64"),
            )
            .expect("json");
            assert_eq!(header["alg"], alg.as_str());
            assert_eq!(header["kid"], signer.kid());
            assert!(verifies(&token, &key.public_jwk, alg), "{alg:?} verifies");
            let mut forged = token.clone();
            forged.replace_range(token.find('.').expect("dot") + 1.., "e30.AAAA");
            assert!(!verifies(&forged, &key.public_jwk, alg), "{alg:?} forged");
        }
    }

    /// Only a signature by a listed key, with that key's alg, verifies: not another key,
    /// not an unknown kid, not `alg: none`, not a header that names another alg.
    #[test]
    fn verify_accepts_only_the_listed_keys_own_signatures() {
        let rsa = generate(Alg::Rs256).expect("rsa");
        let ec = generate(Alg::Es256).expect("ec");
        let (rsa_jwk, ec_jwk) = (
            serde_json::Value::Object(rsa.public_jwk.clone()).to_string(),
            serde_json::Value::Object(ec.public_jwk.clone()).to_string(),
        );
        let signer = Signer::new(Alg::Rs256, "k1".into(), &rsa.private).expect("signer");
        let token = signer
            .sign(&serde_json::json!({"sub": "u1"}))
            .expect("sign");
        let key = |kid, alg, public_jwk| VerifyingKey {
            kid,
            alg,
            public_jwk,
        };
        let payload = token.split('.').nth(1).expect("payload");
        let unsigned = format!("{}.{payload}.", b64(br#"{"alg":"none","kid":"k1"}"#));
        let relabelled = format!(
            "{}.{payload}.{}",
            b64(br#"{"alg":"ES256","kid":"k1"}"#),
            token.rsplit('.').next().expect("sig")
        );
        let table: [(&str, Vec<VerifyingKey>, bool); 6] = [
            (&token, vec![key("k1", Alg::Rs256, &rsa_jwk)], true),
            (
                &token,
                vec![
                    key("k0", Alg::Es256, &ec_jwk),
                    key("k1", Alg::Rs256, &rsa_jwk),
                ],
                true,
            ),
            (&token, vec![key("k2", Alg::Rs256, &rsa_jwk)], false),
            (&token, vec![key("k1", Alg::Es256, &ec_jwk)], false),
            (&unsigned, vec![key("k1", Alg::Rs256, &rsa_jwk)], false),
            (&relabelled, vec![key("k1", Alg::Es256, &ec_jwk)], false),
        ];
        for (i, (token, keys, ok)) in table.iter().enumerate() {
            assert_eq!(verify(token, keys).is_some(), *ok, "row {i}");
        }
        assert_eq!(
            verify(&token, &[key("k1", Alg::Rs256, &rsa_jwk)]).expect("claims")["sub"],
            "u1"
        );
    }

    #[test]
    fn alg_names_parse_exactly_and_none_is_refused() {
        for alg in Alg::ALL {
            assert_eq!(Alg::parse(alg.as_str()), Some(alg));
        }
        for name in ["none", "None", "rs256", "HS256", ""] {
            assert_eq!(Alg::parse(name), None, "{name}");
        }
    }

    #[test]
    fn at_hash_matches_the_oidc_core_example() {
        // OIDC Core A.3: access token "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y".
        assert_eq!(
            half_hash(Alg::Rs256, "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
    }

    #[test]
    fn private_keys_never_print() {
        let key = PrivateKey::from_der(vec![1, 2, 3]);
        assert_eq!(format!("{key:?}"), "PrivateKey(…)");
    }
}
