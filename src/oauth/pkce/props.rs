//! Property tests of the PKCE checks (shared generators in `parser_props`).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use proptest::prelude::*;
use sha2::{Digest, Sha256};

use crate::oauth::{is_valid_pkce_string, pkce_verifies, PkceMethod};
use crate::parser_props::{config, interesting_char};

// ---------------------------------------------------------------------------------------
// PKCE

const PKCE_CHARS: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~";

fn verifier() -> impl Strategy<Value = String> {
    "[A-Za-z0-9._~-]{43,128}"
}

fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// `text` with the character at `at` replaced by a different allowed character.
fn change_one(text: &str, at: prop::sample::Index, pick: prop::sample::Index) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    let i = at.index(chars.len());
    let alternatives: Vec<char> = PKCE_CHARS.chars().filter(|c| *c != chars[i]).collect();
    chars[i] = alternatives[pick.index(alternatives.len())];
    chars.into_iter().collect()
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn pkce_s256_verifier_verifies_its_challenge_and_nothing_else(
        verifier in verifier(),
        at in any::<prop::sample::Index>(),
        pick in any::<prop::sample::Index>(),
    ) {
        let challenge = s256(&verifier);
        prop_assert!(is_valid_pkce_string(&verifier));
        prop_assert!(pkce_verifies(PkceMethod::S256, &challenge, &verifier));
        let changed = change_one(&verifier, at, pick);
        prop_assert!(!pkce_verifies(PkceMethod::S256, &challenge, &changed));
        // Nor does a changed challenge, nor the challenge used as a plain verifier.
        let changed_challenge = change_one(&challenge, at, pick);
        prop_assert!(!pkce_verifies(PkceMethod::S256, &changed_challenge, &verifier));
        prop_assert!(!pkce_verifies(PkceMethod::Plain, &challenge, &verifier));
    }

    #[test]
    fn pkce_plain_verifier_must_equal_the_challenge(
        verifier in verifier(),
        at in any::<prop::sample::Index>(),
        pick in any::<prop::sample::Index>(),
    ) {
        prop_assert!(pkce_verifies(PkceMethod::Plain, &verifier, &verifier));
        let changed = change_one(&verifier, at, pick);
        prop_assert!(!pkce_verifies(PkceMethod::Plain, &verifier, &changed));
        prop_assert!(!pkce_verifies(PkceMethod::Plain, &verifier, &verifier[1..]));
    }

    #[test]
    fn pkce_verifiers_of_wrong_length_or_characters_never_verify(
        length in prop_oneof![0usize..43, 129usize..300],
        text in prop::collection::vec(interesting_char(), 43..=128),
        seed in verifier(),
    ) {
        let wrong_length: String = seed.chars().cycle().take(length).collect();
        prop_assert!(!is_valid_pkce_string(&wrong_length));
        for method in [PkceMethod::S256, PkceMethod::Plain] {
            let challenge = match method {
                PkceMethod::S256 => s256(&wrong_length),
                PkceMethod::Plain => wrong_length.clone(),
            };
            prop_assert!(!pkce_verifies(method, &challenge, &wrong_length));
        }
        let text: String = text.into_iter().collect();
        let allowed = text.chars().all(|c| PKCE_CHARS.contains(c));
        prop_assert_eq!(is_valid_pkce_string(&text), allowed && (43..=128).contains(&text.len()));
        if !allowed {
            prop_assert!(!pkce_verifies(PkceMethod::S256, &s256(&text), &text));
            prop_assert!(!pkce_verifies(PkceMethod::Plain, &text, &text));
        }
    }
}
