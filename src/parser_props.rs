//! Property tests (proptest) of the request parsers in `http` and the protocol checks in
//! `oauth`: every input comes from outside, so each parser is checked against a small
//! reference model or a round trip, not only for "does not panic".
//!
//! 256 cases per property by default; `PROPTEST_CASES=N cargo test parser_props` runs
//! longer (e.g. `PROPTEST_CASES=200000` for a fuzzing session).

use std::collections::HashSet;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use hyper::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE, COOKIE, HOST};
use proptest::prelude::*;
use sha2::{Digest, Sha256};

use crate::http::{
    basic_auth, bearer_token, body_params, cookie, host_name, parse_form, parse_json, ParamError,
    Params, MAX_PARAM_BYTES,
};
use crate::oauth::{
    is_valid_pkce_string, pkce_verifies, select_redirect_uri, PkceMethod, RedirectUri,
    RedirectUriError,
};

/// 256 cases unless `PROPTEST_CASES` says otherwise.
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    ProptestConfig::with_cases(cases)
}

// ---------------------------------------------------------------------------------------
// Generators

/// A character, biased towards the ones parsers treat specially.
fn interesting_char() -> impl Strategy<Value = char> {
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
fn clean_text(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(interesting_char(), 0..=max).prop_map(|chars| {
        chars
            .into_iter()
            .map(|c| if c == '\0' { 'x' } else { c })
            .collect()
    })
}

/// Distinct (name, value) pairs in random order.
fn distinct_pairs(max: usize) -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::btree_map(clean_text(10), clean_text(24), 0..=max)
        .prop_flat_map(|map| Just(map.into_iter().collect::<Vec<_>>()).prop_shuffle())
}

/// Every byte as `%XX`, upper or lower case hex.
fn percent_all(bytes: &[u8], lower: bool) -> String {
    bytes
        .iter()
        .map(|b| {
            if lower {
                format!("%{b:02x}")
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn form_serialize(pairs: &[(String, String)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

fn json_serialize(pairs: &[(String, String)]) -> Vec<u8> {
    let object: serde_json::Map<String, serde_json::Value> = pairs
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
        .collect();
    serde_json::to_vec(&object).unwrap()
}

fn header(name: hyper::header::HeaderName, value: &[u8]) -> Option<HeaderMap> {
    let value = HeaderValue::from_bytes(value).ok()?;
    let mut headers = HeaderMap::new();
    headers.insert(name, value);
    Some(headers)
}

/// Bytes biased towards form syntax.
fn form_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            3 => any::<u8>(),
            3 => prop::sample::select(b"&=%+aAfF09 \x00\xff\xc3\xa9".to_vec()),
        ],
        0..64,
    )
}

// ---------------------------------------------------------------------------------------
// A reference model of `parse_form`, written independently: split on '&', skip empty
// pairs, split at the first '=', '+' is a space, `%XX` with two hex digits is a byte and
// anything else is literal; then UTF-8, length, NUL, and duplicate checks, in that order.

fn model_decode(raw: &[u8]) -> Result<String, ParamError> {
    let mut out = Vec::new();
    let mut rest = raw;
    while let Some((&first, tail)) = rest.split_first() {
        let hex = |b: &u8| (*b as char).to_digit(16);
        match (first, tail) {
            (b'%', [h, l, ..]) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0)) as u8);
                rest = &tail[2..];
            }
            (b'+', _) => {
                out.push(b' ');
                rest = tail;
            }
            _ => {
                out.push(first);
                rest = tail;
            }
        }
    }
    String::from_utf8(out).map_err(|_| ParamError::BadEncoding)
}

fn model_check(text: &str) -> Result<(), ParamError> {
    if text.len() > MAX_PARAM_BYTES {
        Err(ParamError::ValueTooLong)
    } else if text.contains('\0') {
        Err(ParamError::BadEncoding)
    } else {
        Ok(())
    }
}

fn model_form(bytes: &[u8]) -> Result<Vec<(String, String)>, ParamError> {
    let mut seen = HashSet::new();
    let mut pairs = Vec::new();
    for pair in bytes.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
        let (name, value) = match pair.iter().position(|b| *b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &[][..]),
        };
        let name = model_decode(name)?;
        let value = model_decode(value)?;
        model_check(&name)?;
        model_check(&value)?;
        if !seen.insert(name.clone()) {
            return Err(ParamError::Duplicate);
        }
        pairs.push((name, value));
    }
    Ok(pairs)
}

/// Asserts `params` holds exactly `pairs`: each by `get`, and nothing more (compared with
/// the same pairs read through the JSON parser, a separate decoding path).
fn assert_holds_exactly(params: &Params, pairs: &[(String, String)]) {
    for (name, value) in pairs {
        assert_eq!(params.get(name), Some(value.as_str()), "name {name:?}");
    }
    assert_eq!(Ok(params.clone()), parse_json(&json_serialize(pairs)));
}

// ---------------------------------------------------------------------------------------
// Form and JSON parameters

proptest! {
    #![proptest_config(config())]

    #[test]
    fn form_round_trips_distinct_pairs(
        pairs in distinct_pairs(8),
        lower in any::<bool>(),
        empties in 0usize..3,
    ) {
        let serialized = form_serialize(&pairs);
        let parsed = parse_form(serialized.as_bytes()).unwrap();
        assert_holds_exactly(&parsed, &pairs);
        // The same pairs fully percent-encoded, with empty pairs between, parse the same.
        let separator = "&".repeat(empties + 1);
        let encoded = pairs
            .iter()
            .map(|(n, v)| {
                format!("{}={}", percent_all(n.as_bytes(), lower), percent_all(v.as_bytes(), !lower))
            })
            .collect::<Vec<_>>()
            .join(&separator);
        prop_assert_eq!(parse_form(encoded.as_bytes()), Ok(parsed));
    }

    #[test]
    fn form_refuses_any_duplicate_name(
        pairs in distinct_pairs(6).prop_filter("need a pair", |p| !p.is_empty()),
        which in any::<prop::sample::Index>(),
        at in any::<prop::sample::Index>(),
        value in clean_text(8),
        encode_name in any::<bool>(),
    ) {
        let name = &pairs[which.index(pairs.len())].0;
        // The duplicate may be spelled differently: it is the decoded name that counts.
        let spelled = if encode_name {
            percent_all(name.as_bytes(), false)
        } else {
            form_urlencoded::byte_serialize(name.as_bytes()).collect()
        };
        let extra = format!("{spelled}={}", percent_all(value.as_bytes(), true));
        let mut parts: Vec<String> = pairs.iter().map(|p| form_serialize(std::slice::from_ref(p))).collect();
        parts.insert(at.index(parts.len() + 1), extra);
        prop_assert_eq!(parse_form(parts.join("&").as_bytes()), Err(ParamError::Duplicate));
    }

    #[test]
    fn form_refuses_nul_and_invalid_utf8_anywhere(
        pairs in distinct_pairs(5).prop_filter("need a pair", |p| !p.is_empty()),
        which in any::<prop::sample::Index>(),
        at in any::<prop::sample::Index>(),
        bad in prop::sample::select(vec![
            &b"\x00"[..], b"\xff", b"\x80", b"\xc3", b"\xc0\x80", b"\xed\xa0\x80",
            b"\xf4\x90\x80\x80", b"\xe2\x82",
        ]),
        in_name in any::<bool>(),
        percent_encoded in any::<bool>(),
    ) {
        let i = which.index(pairs.len());
        let target = if in_name { &pairs[i].0 } else { &pairs[i].1 };
        let chars: Vec<char> = target.chars().collect();
        let split = at.index(chars.len() + 1);
        let before: String = chars[..split].iter().collect();
        let after: String = chars[split..].iter().collect();
        // The bad bytes percent-encoded, or raw in the body (none of them is form syntax).
        let mut poisoned = percent_all(before.as_bytes(), true).into_bytes();
        if percent_encoded {
            poisoned.extend(percent_all(bad, false).into_bytes());
        } else {
            poisoned.extend_from_slice(bad);
        }
        poisoned.extend(percent_all(after.as_bytes(), true).into_bytes());
        let mut body = Vec::new();
        for (j, (name, value)) in pairs.iter().enumerate() {
            if j > 0 {
                body.push(b'&');
            }
            let name_bytes = if j == i && in_name { poisoned.clone() } else { percent_all(name.as_bytes(), true).into_bytes() };
            let value_bytes = if j == i && !in_name { poisoned.clone() } else { percent_all(value.as_bytes(), true).into_bytes() };
            body.extend(name_bytes);
            body.push(b'=');
            body.extend(value_bytes);
        }
        prop_assert_eq!(parse_form(&body), Err(ParamError::BadEncoding));
    }

    #[test]
    fn form_matches_the_reference_model_on_arbitrary_bytes(bytes in form_bytes()) {
        match (parse_form(&bytes), model_form(&bytes)) {
            (Ok(parsed), Ok(pairs)) => assert_holds_exactly(&parsed, &pairs),
            (parsed, model) => prop_assert_eq!(parsed.map(|_| ()), model.map(|_| ())),
        }
    }

    #[test]
    fn no_accepted_value_exceeds_the_limit(
        extra in 0usize..8,
        wide in any::<bool>(),
        encode in any::<bool>(),
        in_name in any::<bool>(),
    ) {
        // Decoded lengths MAX-3 ..= MAX+4, from 1- or 3-byte characters.
        let length = MAX_PARAM_BYTES - 3 + extra;
        let text = if wide {
            format!("{}{}", "€".repeat(length / 3), "x".repeat(length % 3))
        } else {
            "x".repeat(length)
        };
        let spelled = if encode { percent_all(text.as_bytes(), false) } else { text.clone() };
        let body = if in_name { format!("{spelled}=v") } else { format!("n={spelled}") };
        let parsed = parse_form(body.as_bytes());
        if text.len() <= MAX_PARAM_BYTES {
            let key = if in_name { text.as_str() } else { "n" };
            prop_assert!(parsed.unwrap().get(key).is_some());
        } else {
            prop_assert_eq!(parsed, Err(ParamError::ValueTooLong));
        }
        // The JSON parser enforces the same limit.
        let (name, value) = if in_name { (text.clone(), "v".to_owned()) } else { ("n".to_owned(), text.clone()) };
        let parsed = parse_json(&json_serialize(&[(name, value)]));
        prop_assert_eq!(parsed.is_ok(), text.len() <= MAX_PARAM_BYTES);
    }

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

    #[test]
    fn body_params_dispatches_by_content_type(
        pairs in distinct_pairs(5),
        kind in prop::sample::select(vec![
            "application/x-www-form-urlencoded",
            "Application/X-WWW-Form-Urlencoded; charset=UTF-8",
            "application/json",
            "APPLICATION/JSON ;charset=utf-8",
            "text/plain",
            "",
        ]),
        as_json in any::<bool>(),
        padding in "[ \t\r\n]{0,3}",
    ) {
        let mut headers = HeaderMap::new();
        if !kind.is_empty() {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(kind));
        }
        let lower = kind.to_ascii_lowercase();
        let json_body = if lower.starts_with("application/json") {
            true
        } else if lower.starts_with("application/x-www") {
            false
        } else {
            as_json
        };
        // Whitespace before JSON is insignificant; before a form it would be part of a name.
        let mut body = Vec::new();
        if json_body {
            body.extend(padding.as_bytes());
            body.extend(json_serialize(&pairs));
        } else {
            body.extend(form_serialize(&pairs).into_bytes());
        }
        let parsed = body_params(&headers, &body);
        if json_body || body.iter().all(u8::is_ascii_whitespace) {
            assert_holds_exactly(&parsed.unwrap(), &pairs);
        } else if !lower.starts_with("application/x-www") && form_serialize(&pairs).starts_with('{') {
            // Without a form content type, a body starting with '{' is read as JSON.
            prop_assert!(parsed.is_err());
        } else {
            assert_holds_exactly(&parsed.unwrap(), &pairs);
        }
    }

    #[test]
    fn body_params_refuses_other_content_types_and_never_panics(
        content_type in prop::collection::vec(any::<u8>(), 0..24),
        body in form_bytes(),
    ) {
        let mut headers = HeaderMap::new();
        if let Ok(value) = HeaderValue::from_bytes(&content_type) {
            headers.insert(CONTENT_TYPE, value);
        }
        let result = body_params(&headers, &body);
        if body.iter().all(u8::is_ascii_whitespace) {
            prop_assert_eq!(&result, &Ok(Params::default()));
        }
        let essence = headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or_default().trim().to_ascii_lowercase());
        if let (Some(essence), false) = (essence, body.iter().all(u8::is_ascii_whitespace)) {
            if !matches!(
                essence.as_str(),
                "application/x-www-form-urlencoded" | "application/json" | "text/plain"
            ) {
                prop_assert_eq!(&result, &Err(ParamError::UnsupportedContentType));
            }
        }
        // A content type that is not visible ASCII is refused, never guessed at.
        let unreadable = headers.get(CONTENT_TYPE).is_some_and(|v| v.to_str().is_err());
        if unreadable && !body.iter().all(u8::is_ascii_whitespace) {
            prop_assert_eq!(&result, &Err(ParamError::UnsupportedContentType));
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

// ---------------------------------------------------------------------------------------
// Headers: Basic, Bearer, Cookie, Host

proptest! {
    #![proptest_config(config())]

    #[test]
    fn basic_auth_round_trips_form_encoded_halves(
        id in clean_text(20),
        secret in clean_text(40),
        scheme in prop::sample::select(vec!["Basic", "basic", "BASIC", "bAsIc"]),
        padding in prop::sample::select(vec!["", " ", "  "]),
    ) {
        let encode = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let raw = format!("{}:{}", encode(&id), encode(&secret));
        let value = format!("{padding}{scheme} {}{padding}", STANDARD.encode(raw));
        let headers = header(AUTHORIZATION, value.as_bytes()).unwrap();
        let credentials = basic_auth(&headers).unwrap().unwrap();
        prop_assert_eq!(credentials.username, id);
        prop_assert_eq!(credentials.password, secret);
    }

    #[test]
    fn basic_auth_refuses_nul_missing_colon_and_bad_base64(
        raw in prop::collection::vec(any::<u8>(), 0..48),
    ) {
        let value = format!("Basic {}", STANDARD.encode(&raw));
        let headers = header(AUTHORIZATION, value.as_bytes()).unwrap();
        let result = basic_auth(&headers);
        match raw.iter().position(|b| *b == b':') {
            // "Basic " with nothing after it reads as no credentials at all.
            None if raw.is_empty() => prop_assert_eq!(result, Ok(None)),
            None => prop_assert_eq!(result, Err(ParamError::BadEncoding)),
            Some(colon) => {
                let halves = (model_decode(&raw[..colon]), model_decode(&raw[colon + 1..]));
                match halves {
                    (Ok(user), Ok(pass)) if !user.contains('\0') && !pass.contains('\0') => {
                        let credentials = result.unwrap().unwrap();
                        prop_assert_eq!(credentials.username, user);
                        prop_assert_eq!(credentials.password, pass);
                    }
                    _ => prop_assert_eq!(result, Err(ParamError::BadEncoding)),
                }
            }
        }
        // Not base64 at all.
        let headers = header(AUTHORIZATION, format!("Basic {}!", STANDARD.encode(&raw)).as_bytes()).unwrap();
        prop_assert!(basic_auth(&headers).is_err());
    }

    #[test]
    fn header_parsers_never_panic_on_arbitrary_values(
        value in prop::collection::vec(
            prop_oneof![
                3 => any::<u8>(),
                3 => prop::sample::select(b" \t:;=\"[]BbasicearerBEARER".to_vec()),
            ],
            0..48,
        ),
    ) {
        for name in [AUTHORIZATION, COOKIE, HOST] {
            let Some(headers) = header(name, &value) else { continue };
            let _ = basic_auth(&headers);
            if let Some(token) = bearer_token(&headers) {
                prop_assert!(!token.is_empty());
                prop_assert_eq!(token, token.trim());
            }
            if let Some(found) = cookie(&headers, "org") {
                prop_assert!(!found.contains(';'));
            }
            if let Some(host) = host_name(&headers) {
                prop_assert_eq!(host.to_ascii_lowercase(), host.clone());
                prop_assert!(host.starts_with('[') || !host.contains(':'));
            }
        }
    }

    #[test]
    fn bearer_token_reads_the_token_of_a_bearer_header(
        token in "[A-Za-z0-9._~+/=-]{1,40}",
        scheme in prop::sample::select(vec!["Bearer", "bearer", "BEARER", "Basic", "Token"]),
        padding in prop::sample::select(vec!["", " ", "\t", "  "]),
    ) {
        let value = format!("{padding}{scheme} {padding}{token}{padding}");
        let headers = header(AUTHORIZATION, value.as_bytes()).unwrap();
        if scheme.eq_ignore_ascii_case("bearer") {
            prop_assert_eq!(bearer_token(&headers), Some(token.as_str()));
        } else {
            prop_assert_eq!(bearer_token(&headers), None);
        }
    }

    #[test]
    fn cookie_finds_each_cookie_once_split_over_headers(
        cookies in prop::collection::btree_map("[A-Za-z0-9_-]{1,8}", "[A-Za-z0-9!#$%&'()*+./:<=>?@^_`{|}~-]{0,12}", 1..6),
        quoted in any::<bool>(),
        split_at in any::<prop::sample::Index>(),
        absent in "[A-Za-z0-9_-]{1,8}",
    ) {
        let pairs: Vec<String> = cookies
            .iter()
            .map(|(k, v)| if quoted { format!("{k}=\"{v}\"") } else { format!("{k}={v}") })
            .collect();
        let split = split_at.index(pairs.len() + 1);
        let mut headers = HeaderMap::new();
        for part in [&pairs[..split], &pairs[split..]] {
            if !part.is_empty() {
                headers.append(COOKIE, HeaderValue::from_str(&part.join("; ")).unwrap());
            }
        }
        for (name, value) in &cookies {
            // Values are compared without surrounding quotes (which the sender may add).
            prop_assert_eq!(cookie(&headers, name), Some(value.trim_matches('"')));
        }
        if !cookies.contains_key(&absent) {
            prop_assert_eq!(cookie(&headers, &absent), None);
        }
    }

    #[test]
    fn host_name_strips_port_and_lower_cases(
        name in "[A-Za-z0-9-]{1,10}(\\.[A-Za-z]{2,5}){0,2}",
        port in proptest::option::of(any::<u16>()),
        ipv6 in any::<bool>(),
    ) {
        let host = if ipv6 { "[2001:DB8::1]".to_owned() } else { name.clone() };
        let value = match port {
            Some(p) => format!("{host}:{p}"),
            None => host.clone(),
        };
        let headers = header(HOST, value.as_bytes()).unwrap();
        prop_assert_eq!(host_name(&headers), Some(host.to_ascii_lowercase()));
    }
}

// ---------------------------------------------------------------------------------------
// Redirect URIs

/// A redirect URI by its parts, lower-case host, path segments without dot segments.
#[derive(Debug, Clone, PartialEq, Eq)]
struct UriParts {
    scheme: &'static str,
    host: String,
    port: Option<u16>,
    path: Vec<String>,
    query: Option<Vec<(String, String)>>,
}

impl UriParts {
    fn render(&self) -> String {
        let mut uri = match self.scheme {
            // A native app's private-use scheme: no authority (RFC 8252 §7.1).
            "com.example.app" => format!("{}:", self.scheme),
            _ => {
                let port = self.port.map(|p| format!(":{p}")).unwrap_or_default();
                format!("{}://{}{port}", self.scheme, self.host)
            }
        };
        uri.push('/');
        uri.push_str(&self.path.join("/"));
        if let Some(query) = &self.query {
            uri.push('?');
            uri.push_str(&form_serialize(query));
        }
        uri
    }

    /// The parts that decide a match, with default ports made explicit.
    fn normalized(
        &self,
    ) -> (
        &'static str,
        String,
        Option<u16>,
        Vec<String>,
        Option<String>,
    ) {
        let (host, port) = match (self.scheme, self.port) {
            ("com.example.app", _) => (String::new(), None),
            ("http", None) => (self.host.clone(), Some(80)),
            ("https", None) => (self.host.clone(), Some(443)),
            (_, port) => (self.host.clone(), port),
        };
        let query = self.query.as_ref().map(|q| form_serialize(q));
        (self.scheme, host, port, self.path.clone(), query)
    }
}

/// A lower-case DNS host name. Labels starting `xn--` are punycode, which the URL parser
/// decodes and may reject; those are not what these properties are about.
fn host() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9-]{0,5}(\\.[a-z]{2,3}){0,2}".prop_filter("no punycode labels", |h| {
        !h.split('.').any(|l| l.starts_with("xn--"))
    })
}

fn uri_parts() -> impl Strategy<Value = UriParts> {
    (
        prop::sample::select(vec!["http", "https", "com.example.app"]),
        host(),
        proptest::option::of(prop_oneof![Just(80u16), Just(443), Just(8080), 1u16..]),
        prop::collection::vec("[A-Za-z0-9_~-]{1,5}", 0..3),
        proptest::option::of(prop::collection::vec(("[a-z]{1,4}", clean_text(6)), 0..3)),
    )
        .prop_map(|(scheme, host, port, path, query)| UriParts {
            scheme,
            host,
            port,
            path,
            query,
        })
}

/// Arbitrary URI-like text, for the "never panics, always consistent" properties.
fn uri_text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            2 => interesting_char().prop_map(String::from),
            2 => prop::sample::select(vec![
                "http://", "https://", "HTTP://", "com.example.app:", "javascript:", "a.b:",
                "@", ":80", ":443", "/", "?", "#", "%2e", "%41", "..", ".", "[::1]", "\\",
                "acme.com", "ACME.com", "xn--", "//", "%00", "%zz",
            ])
            .prop_map(String::from),
        ],
        0..16,
    )
    .prop_map(|pieces| pieces.concat())
}

fn uri_text_with_prefix() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec![
            "http://acme.com",
            "https://a.example/cb",
            "HTTP://ACME.COM:80",
            "com.example.app:/",
            "com.example.app:",
            "http://[::1]:8080/",
            "https://user@x.y",
            "",
        ]),
        uri_text(),
    )
        .prop_map(|(prefix, rest)| format!("{prefix}{rest}"))
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn redirect_match_is_equality_of_normalized_parts(a in uri_parts(), b in uri_parts()) {
        let ra = RedirectUri::parse(&a.render()).unwrap();
        let rb = RedirectUri::parse(&b.render()).unwrap();
        prop_assert!(ra.matches(&ra));
        prop_assert_eq!(ra.matches(&rb), rb.matches(&ra));
        prop_assert_eq!(ra.matches(&rb), a.normalized() == b.normalized(), "{} vs {}", a.render(), b.render());
    }

    #[test]
    fn redirect_never_matches_a_changed_component(
        // Needs an authority; mapped rather than filtered, so long runs do not hit the
        // rejection limit.
        a in uri_parts().prop_map(|mut a| {
            if a.scheme == "com.example.app" {
                a.scheme = "https";
            }
            a
        }),
        other_host in host(),
        other_port in 1u16..,
        other_segment in "[A-Za-z0-9_~-]{1,5}",
        other_pair in ("[a-z]{1,4}", clean_text(6)),
        what in 0u8..5,
    ) {
        let mut b = a.clone();
        match what {
            0 => b.host = format!("{other_host}.{}", a.host),
            1 => b.port = Some(other_port),
            2 => b.path.push(other_segment),
            3 => b.query.get_or_insert_with(Vec::new).push(other_pair),
            _ => b.query = match &a.query { Some(_) => None, None => Some(Vec::new()) },
        }
        prop_assume!(a.normalized() != b.normalized());
        let ra = RedirectUri::parse(&a.render()).unwrap();
        let rb = RedirectUri::parse(&b.render()).unwrap();
        prop_assert!(!ra.matches(&rb), "{} matched {}", a.render(), b.render());
        // Nor does a longer URI starting with the registered one (no prefix matching).
        let longer = format!("{}{}", a.render(), if a.query.is_some() { "&x=1" } else { "x" });
        if let Ok(rl) = RedirectUri::parse(&longer) {
            prop_assert!(!ra.matches(&rl), "{} matched {}", a.render(), longer);
        }
    }

    #[test]
    fn redirect_match_ignores_case_of_scheme_and_host(a in uri_parts()) {
        let rendered = a.render();
        let (scheme, rest) = rendered.split_once(':').unwrap();
        let upper = match rest.strip_prefix("//") {
            Some(after) => {
                let end = after.find(['/', ':']).unwrap_or(after.len());
                format!("{}://{}{}", scheme.to_ascii_uppercase(), after[..end].to_ascii_uppercase(), &after[end..])
            }
            None => format!("{}:{rest}", scheme.to_ascii_uppercase()),
        };
        let ra = RedirectUri::parse(&rendered).unwrap();
        let ru = RedirectUri::parse(&upper).unwrap();
        prop_assert!(ra.matches(&ru));
        prop_assert_eq!(ru.as_str(), upper.as_str(), "the original text is kept as sent");
    }

    #[test]
    fn redirect_parse_refuses_fragments_whitespace_and_controls(text in uri_text_with_prefix()) {
        match RedirectUri::parse(&text) {
            Ok(parsed) => {
                prop_assert!(!text.contains('#'));
                prop_assert!(!text.chars().any(|c| c.is_whitespace() || c.is_control()));
                prop_assert_eq!(parsed.as_str(), text.as_str());
                // Reflexive, and stable through its own with_query output.
                prop_assert!(parsed.matches(&parsed));
                prop_assert!(RedirectUri::parse(&parsed.with_query(&[])).is_ok());
            }
            Err(RedirectUriError::HasFragment) => prop_assert!(text.contains('#')),
            Err(RedirectUriError::BadCharacters) => {
                prop_assert!(text.chars().any(|c| c.is_whitespace() || c.is_control()));
            }
            Err(RedirectUriError::NotAbsolute) => {}
        }
    }

    #[test]
    fn redirect_with_fragment_is_always_refused(a in uri_parts(), fragment in clean_text(8)) {
        let text = format!("{}#{fragment}", a.render());
        prop_assert!(RedirectUri::parse(&text).is_err());
    }

    #[test]
    fn redirect_match_is_symmetric_on_arbitrary_text(
        a in uri_text_with_prefix(),
        b in uri_text_with_prefix(),
    ) {
        if let (Ok(ra), Ok(rb)) = (RedirectUri::parse(&a), RedirectUri::parse(&b)) {
            prop_assert_eq!(ra.matches(&rb), rb.matches(&ra));
            prop_assert!(ra.matches(&ra) && rb.matches(&rb));
        }
    }

    #[test]
    fn with_query_keeps_the_uri_and_appends_pairs_in_order(
        a in uri_parts(),
        added in prop::collection::vec((clean_text(6), any::<String>()), 0..4),
    ) {
        let original = RedirectUri::parse(&a.render()).unwrap();
        let added_refs: Vec<(&str, &str)> = added.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        let out = original.with_query(&added_refs);
        let reparsed = RedirectUri::parse(&out);
        prop_assert!(reparsed.is_ok(), "{out:?} does not parse: {reparsed:?}");
        let out_url = url::Url::parse(&out).unwrap();
        let original_url = url::Url::parse(&a.render()).unwrap();
        prop_assert_eq!(out_url.scheme(), original_url.scheme());
        prop_assert_eq!(out_url.host_str(), original_url.host_str());
        prop_assert_eq!(out_url.port_or_known_default(), original_url.port_or_known_default());
        prop_assert_eq!(out_url.path(), original_url.path());
        prop_assert_eq!(out_url.fragment(), None);
        let mut expected: Vec<(String, String)> = a.query.clone().unwrap_or_default();
        expected.extend(added.iter().cloned());
        let got: Vec<(String, String)> = out_url.query_pairs().map(|(n, v)| (n.into_owned(), v.into_owned())).collect();
        prop_assert_eq!(got, expected);
    }

    #[test]
    fn select_redirect_uri_picks_only_registered_uris(
        registered in prop::collection::vec(uri_parts(), 0..4),
        requested in proptest::option::of(uri_parts()),
        request_registered in proptest::option::of(any::<prop::sample::Index>()),
    ) {
        let registered_text: Vec<String> = registered.iter().map(UriParts::render).collect();
        let requested = match (request_registered, registered.is_empty()) {
            (Some(i), false) => Some(registered[i.index(registered.len())].clone()),
            _ => requested,
        };
        let requested_text = requested.as_ref().map(UriParts::render);
        let chosen = select_redirect_uri(&registered_text, requested_text.as_deref());
        match &requested {
            Some(r) => {
                let expected = registered.iter().any(|g| g.normalized() == r.normalized());
                prop_assert_eq!(chosen.is_some(), expected);
                if let Some(chosen) = chosen {
                    prop_assert_eq!(Some(chosen.as_str()), requested_text.as_deref());
                }
            }
            None => {
                prop_assert_eq!(chosen.is_some(), registered.len() == 1);
                if let Some(chosen) = chosen {
                    prop_assert_eq!(chosen.as_str(), registered_text[0].as_str());
                }
            }
        }
    }
}

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

#[test]
fn percent_all_encodes_every_byte() {
    assert_eq!(percent_all(b"a\xff", false), "%61%FF");
    assert_eq!(percent_all(b"a\xff", true), "%61%ff");
    assert_eq!(
        model_form(b"a=%41+%4&b"),
        Ok(vec![
            ("a".into(), "A %4".into()),
            ("b".into(), String::new())
        ])
    );
}
