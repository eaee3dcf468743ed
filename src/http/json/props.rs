//! Property tests of the JSON body parser (shared generators in `parser_props`).

use proptest::prelude::*;

use crate::http::{parse_json, ParamError};
use crate::parser_props::{clean_text, config, distinct_pairs};

// ---------------------------------------------------------------------------------------
// JSON parameters

proptest! {
    #![proptest_config(config())]

    #[test]
    fn json_refuses_duplicate_keys_however_spelled(
        pairs in distinct_pairs(6).prop_filter("need a pair", |p| !p.is_empty()),
        which in any::<prop::sample::Index>(),
        at in any::<prop::sample::Index>(),
        duplicate_value in prop::sample::select(vec!["null", "1", "true", "\"x\"", "\"\""]),
        escape_key in any::<bool>(),
    ) {
        let name = &pairs[which.index(pairs.len())].0;
        let key = if escape_key {
            let escaped: String = name.encode_utf16().map(|u| format!("\\u{u:04x}")).collect();
            format!("\"{escaped}\"")
        } else {
            serde_json::to_string(name).unwrap()
        };
        let mut entries: Vec<String> = pairs
            .iter()
            .map(|(k, v)| format!("{}:{}", serde_json::to_string(k).unwrap(), serde_json::to_string(v).unwrap()))
            .collect();
        entries.insert(at.index(entries.len() + 1), format!("{key}:{duplicate_value}"));
        let body = format!("{{{}}}", entries.join(","));
        prop_assert_eq!(parse_json(body.as_bytes()), Err(ParamError::Duplicate));
    }

    #[test]
    fn json_values_follow_their_type(
        entries in prop::collection::btree_map(clean_text(8), json_value(), 0..6),
    ) {
        let object: serde_json::Map<String, serde_json::Value> =
            entries.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let text = serde_json::to_vec(&object).unwrap();
        let parsed = parse_json(&text);
        // Expected values come from the text as serde_json reads it (floats may not
        // round-trip to the last digit).
        let reread: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&text).unwrap();
        let nested = entries.values().any(|v| v.is_array() || v.is_object());
        let has_nul = entries.values().any(|v| v.as_str().is_some_and(|s| s.contains('\0')));
        match parsed {
            // Entries are checked as they are read: whichever bad one comes first decides.
            Err(ParamError::BadJson) => prop_assert!(nested),
            Err(ParamError::BadEncoding) => prop_assert!(has_nul),
            Err(other) => prop_assert!(false, "unexpected {other:?}"),
            Ok(params) => {
                prop_assert!(!nested && !has_nul);
                for (k, v) in &reread {
                    let expected = match v {
                        serde_json::Value::Null => None,
                        serde_json::Value::String(s) => Some(s.clone()),
                        other => Some(other.to_string()),
                    };
                    prop_assert_eq!(params.get(k), expected.as_deref());
                }
            }
        }
    }

    #[test]
    fn json_never_panics_on_arbitrary_bytes(
        bytes in prop::collection::vec(
            prop_oneof![
                2 => any::<u8>(),
                3 => prop::sample::select(b"{}[]\":,\\u0aAnulltrue 1e9-.\x00\xff".to_vec()),
            ],
            0..64,
        ),
    ) {
        if parse_json(&bytes).is_ok() {
            // Whatever was accepted was one JSON object.
            let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            prop_assert!(value.is_object());
        }
    }
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        prop::collection::vec(any::<char>(), 0..12)
            .prop_map(|c| Value::String(c.into_iter().collect())),
        Just(serde_json::json!(["a"])),
        Just(serde_json::json!({"a": "b"})),
    ]
}
