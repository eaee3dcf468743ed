//! JSON request bodies: one flat object of parameters, read in a single pass straight into
//! [`Params`]. Each key costs one map insertion (which also detects a duplicate), and
//! [`MAX_PARAMS`](super::MAX_PARAMS) stops a body of thousands of tiny keys early, so no
//! body within the size limit costs more than a few microseconds of a tokio worker.
//! Nested arrays and objects are refused as soon as they open, without being parsed.

use std::cell::Cell;
use std::collections::BTreeSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};

use super::{ParamError, Params, MAX_PARAMS};

/// What a value other than a string or `null` becomes.
#[derive(Clone, Copy)]
enum Scalars {
    /// Numbers and booleans become their JSON text (the token endpoint's clients send
    /// e.g. `"client_id": 123`).
    AsText,
    /// Anything but a string (or `null`, meaning absent) is [`ParamError::NotAString`].
    Refused,
}

/// Parses a JSON body that must be one object. String values are taken as they are;
/// `null` means absent; numbers and booleans become their JSON text; anything else, a key
/// given twice, or too many keys, is refused.
pub fn parse_json(bytes: &[u8]) -> Result<Params, ParamError> {
    parse(bytes, Scalars::AsText)
}

/// As [`parse_json`], but every value must be a string or `null`: for the GroveStreams-compatible
/// `/api/oauth_login`, whose fields are all text, so `"email": 12345` is a bad request
/// rather than an email that happens to be digits.
pub fn parse_json_strings(bytes: &[u8]) -> Result<Params, ParamError> {
    parse(bytes, Scalars::Refused)
}

fn parse(bytes: &[u8], scalars: Scalars) -> Result<Params, ParamError> {
    // serde reports failures as text; the precise reason travels beside it in `failure`.
    let failure = Cell::new(None);
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let parsed = ObjectSeed {
        scalars,
        failure: &failure,
    }
    .deserialize(&mut deserializer)
    .and_then(|params| deserializer.end().map(|()| params));
    parsed.map_err(|_| failure.get().unwrap_or(ParamError::BadJson))
}

struct ObjectSeed<'a> {
    scalars: Scalars,
    failure: &'a Cell<Option<ParamError>>,
}

impl<'de> DeserializeSeed<'de> for ObjectSeed<'_> {
    type Value = Params;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Params, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ObjectSeed<'_> {
    type Value = Params;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Params, A::Error> {
        let mut params = Params::default();
        // Names sent as `null`: absent, but sending one twice is still a duplicate.
        let mut nulls = BTreeSet::new();
        let mut count = 0;
        while let Some(name) = map.next_key::<String>()? {
            count += 1;
            if count > MAX_PARAMS {
                return Err(self.fail(ParamError::TooManyParams));
            }
            let value = match (map.next_value::<Scalar>()?, self.scalars) {
                (Scalar::Null, _) => None,
                (Scalar::Text(text), _) | (Scalar::Other(text), Scalars::AsText) => Some(text),
                (Scalar::Other(_), Scalars::Refused) => {
                    return Err(self.fail(ParamError::NotAString))
                }
            };
            let duplicate = nulls.contains(&name) || params.get(&name).is_some();
            match value {
                _ if duplicate => return Err(self.fail(ParamError::Duplicate)),
                None => {
                    nulls.insert(name);
                }
                Some(value) => params.insert(name, value).map_err(|e| self.fail(e))?,
            }
        }
        Ok(params)
    }
}

impl ObjectSeed<'_> {
    fn fail<E: de::Error>(&self, error: ParamError) -> E {
        self.failure.set(Some(error));
        E::custom(error.description())
    }
}

/// One value of the object: arrays and objects are refused at their first byte.
enum Scalar {
    Null,
    Text(String),
    /// A number or boolean, as its JSON text.
    Other(String),
}

impl<'de> serde::Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Scalar, D::Error> {
        deserializer.deserialize_any(ScalarVisitor)
    }
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string, number, boolean or null")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Scalar, E> {
        Ok(Scalar::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Scalar, E> {
        Ok(Scalar::Null)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
        Ok(Scalar::Text(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Scalar, E> {
        Ok(Scalar::Text(v))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
        Ok(Scalar::Other(v.to_string()))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
        Ok(Scalar::Other(v.to_string()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
        Ok(Scalar::Other(v.to_string()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
        // As serde_json writes it (`1e9` → `1000000000.0`); JSON has no NaN or infinity.
        serde_json::Number::from_f64(v)
            .map(|n| Scalar::Other(n.to_string()))
            .ok_or_else(|| E::custom("not a finite number"))
    }
}

#[cfg(test)]
mod props;
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_takes_strings_and_rejects_duplicates() {
        let p = parse_json(br#"{"a":"1","b":null,"n":5,"t":true,"f":1e9}"#).expect("parse");
        assert_eq!(p.get("a"), Some("1"));
        assert_eq!(p.get("b"), None);
        assert_eq!(p.get("n"), Some("5"));
        assert_eq!(p.get("t"), Some("true"));
        assert_eq!(p.get("f"), Some("1000000000.0"));
        assert_eq!(
            parse_json(br#"{"a":"1","a":"2"}"#),
            Err(ParamError::Duplicate)
        );
        assert_eq!(
            parse_json(br#"{"a":null,"a":"2"}"#),
            Err(ParamError::Duplicate)
        );
        assert_eq!(parse_json(br#"{"a":["x"]}"#), Err(ParamError::BadJson));
        assert_eq!(parse_json(br#"["a"]"#), Err(ParamError::BadJson));
        assert_eq!(parse_json(b"{"), Err(ParamError::BadJson));
        assert_eq!(parse_json(br#"{"a":"1"} x"#), Err(ParamError::BadJson));
        assert_eq!(
            parse_json(br#"{"a":"x\u0000"}"#),
            Err(ParamError::BadEncoding)
        );
    }

    #[test]
    fn strings_only_refuses_numbers_and_booleans() {
        let p = parse_json_strings(br#"{"a":"1","b":null}"#).expect("parse");
        assert_eq!(p.get("a"), Some("1"));
        assert_eq!(p.get("b"), None);
        for body in [
            &br#"{"email":12345}"#[..],
            br#"{"email":true}"#,
            br#"{"email":1.5}"#,
        ] {
            assert_eq!(parse_json_strings(body), Err(ParamError::NotAString));
        }
        assert_eq!(
            parse_json_strings(br#"{"email":{"x":"y"}}"#),
            Err(ParamError::BadJson)
        );
    }

    /// Issue 8 item 6: 64 KiB of tiny keys is refused once `MAX_PARAMS` of them were
    /// read, instead of each being compared with all before it. The cap, not a clock, is
    /// asserted, so the test holds on a loaded machine.
    #[test]
    fn many_keys_are_refused_after_the_cap() {
        let keys: Vec<String> = (0..7700).map(|i| format!("\"{i:x}\":0")).collect();
        let body = format!("{{{}}}", keys.join(","));
        assert!(body.len() <= crate::http::MAX_BODY_BYTES);
        assert_eq!(parse_json(body.as_bytes()), Err(ParamError::TooManyParams));
        let at_cap = format!("{{{}}}", keys[..MAX_PARAMS].join(","));
        let last = format!("{:x}", MAX_PARAMS - 1);
        assert_eq!(
            parse_json(at_cap.as_bytes()).map(|p| p.get(&last).map(str::to_owned)),
            Ok(Some("0".to_owned()))
        );
        let past_cap = format!("{{{}}}", keys[..=MAX_PARAMS].join(","));
        assert_eq!(
            parse_json(past_cap.as_bytes()),
            Err(ParamError::TooManyParams)
        );
    }
}
