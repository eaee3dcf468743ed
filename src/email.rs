//! The one identity of an email address: its folded key. Two addresses name the same
//! account exactly when their keys are equal, and the key is what the users table keeps
//! unique, what lookups match and what the login throttle buckets by, so the three can
//! never disagree (they once did: SQLite's NOCASE folds only ASCII, so `Ünï@x.io` and
//! `ünï@x.io` were two accounts sharing one throttle bucket).
//!
//! The key is Unicode canonical caseless matching (Unicode §3.13, D145): NFD, full case
//! folding, then NFC so the stored key is compact. Full folding maps `ß` to `ss` and the
//! Kelvin sign to `k`; NFD first makes a precomposed `Ü` and `U` + combining diaeresis
//! equal. Folding is locale-independent (no Turkish dotless-i rule).

use caseless::Caseless;
use unicode_normalization::UnicodeNormalization;

/// The folded key of an email address: equal keys name one account.
pub fn key(email: &str) -> String {
    email.nfd().default_case_fold().nfc().collect()
}

#[cfg(test)]
mod tests {
    use super::key;

    #[test]
    fn non_ascii_letters_fold_like_ascii_ones() {
        assert_eq!(key("Ünï@Example.COM"), key("ünÏ@example.com"));
        assert_eq!(key("Ünï@Example.COM"), "ünï@example.com");
        assert_eq!(key("ΣΑΣ@x.gr"), key("σας@x.gr"));
    }

    #[test]
    fn composed_and_decomposed_forms_are_one_key() {
        // U+00DC vs U+0055 U+0308.
        assert_eq!(key("\u{dc}n@x.io"), key("U\u{308}n@x.io"));
        assert_eq!(
            key("U\u{308}n@x.io"),
            "\u{fc}n@x.io",
            "stored composed (NFC)"
        );
    }

    #[test]
    fn full_folding_expands_where_unicode_says_so() {
        assert_eq!(key("MASSE@x.de"), key("maße@x.de"));
        assert_eq!(key("\u{212a}im@x.io"), key("kim@x.io"), "Kelvin sign");
    }

    #[test]
    fn different_addresses_stay_different() {
        assert_ne!(key("une@x.io"), key("ùne@x.io"));
        assert_ne!(key("a@x.io"), key("a@x.io "));
    }

    #[test]
    fn folding_is_idempotent() {
        for raw in [
            "Ünï@x.io",
            "MASSE@x.de",
            "ΣΑΣ@x.gr",
            "\u{1fc3}@x.gr",
            "ǅ@x.io",
        ] {
            assert_eq!(key(&key(raw)), key(raw), "{raw}");
        }
    }
}
