//! What the property tests (proptest) of the request parsers share: the case count and
//! generators of parameter text. The properties themselves sit beside what they test
//! (`http/props.rs`, `http/json/props.rs`, `oauth/redirect_uri/props.rs`,
//! `oauth/pkce/props.rs`): every input comes from outside, so each parser is checked
//! against a small reference model or a round trip, not only for "does not panic".
//!
//! 256 cases per property by default; `PROPTEST_CASES=N cargo test props::` runs longer
//! (e.g. `PROPTEST_CASES=200000` for a fuzzing session).

use proptest::prelude::*;

/// 256 cases unless `PROPTEST_CASES` says otherwise.
pub(crate) fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    ProptestConfig::with_cases(cases)
}

// ---------------------------------------------------------------------------------------
// Generators

/// A character, biased towards the ones parsers treat specially.
pub(crate) fn interesting_char() -> impl Strategy<Value = char> {
    prop_oneof![
        4 => any::<char>(),
        4 => proptest::char::range('a', 'z'),
        1 => prop::sample::select(vec![
            '&', '=', '+', '%', ':', ';', ' ', '"', '#', '?', '/', '\\', '{', '}', ',', '\t',
            'é', 'ß', '€', '😀', '\u{3000}', '\u{feff}', '\u{7f}',
        ]),
    ]
}

/// Text without NUL, up to `max` characters: always an acceptable parameter.
pub(crate) fn clean_text(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(interesting_char(), 0..=max).prop_map(|chars| {
        chars
            .into_iter()
            .map(|c| if c == '\0' { 'x' } else { c })
            .collect()
    })
}

/// Distinct (name, value) pairs in random order.
pub(crate) fn distinct_pairs(max: usize) -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::btree_map(clean_text(10), clean_text(24), 0..=max)
        .prop_flat_map(|map| Just(map.into_iter().collect::<Vec<_>>()).prop_shuffle())
}

/// `pairs` as an `application/x-www-form-urlencoded` body.
pub(crate) fn form_serialize(pairs: &[(String, String)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// `pairs` as a JSON object of strings.
pub(crate) fn json_serialize(pairs: &[(String, String)]) -> Vec<u8> {
    let object: serde_json::Map<String, serde_json::Value> = pairs
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
        .collect();
    serde_json::to_vec(&object).unwrap()
}
