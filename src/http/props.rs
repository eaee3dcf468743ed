//! Property tests of the form, body and header parsers of `http` (shared generators in
//! `parser_props`).

use std::collections::HashSet;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hyper::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE, COOKIE, HOST};
use proptest::prelude::*;

use super::{
    basic_auth, bearer_token, body_params, cookie, host_name, parse_form, parse_json, ParamError,
    Params, MAX_PARAM_BYTES,
};
use crate::parser_props::{clean_text, config, distinct_pairs, form_serialize, json_serialize};

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
