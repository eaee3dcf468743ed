//! Requests that are malformed in ways an attacker chooses (issue 8, items 4, 6 and 16):
//! each is refused with 400, never read as if the bad part had not been sent.

use serde_json::json;

use crate::flow_support::*;
use crate::support::{agent, reply};

/// A seeded server whose user belongs to organization "Beta", and an access token.
fn member_of_beta() -> (Seeded, String) {
    let s = seeded(&[]);
    s.o.json(&["org", "add", "Beta"]);
    s.o.ok(&["org", "member", "add", "Beta", EMAIL, "--role", "viewer"]);
    let (access, _) = tokens(&exchange(&s, &login_code(&s.server, json!({}))));
    (s, access)
}

/// Regression: `?org=Beta%ff` and `?org=Beta&org=Beta` answered 200 without the org, so
/// a forward-auth proxy let the request through as if no org had been asked for.
#[test]
fn malformed_org_selection_is_invalid_request_on_me_and_verify() {
    let (s, access) = member_of_beta();
    for path in ["/api/me", "/api/auth/verify"] {
        for query in ["?org=Beta%ff", "?org=Beta&org=Beta", "?org=Be%00ta"] {
            let r = get_bearer(&s.server, &format!("{path}{query}"), &access);
            assert_oauth_error(&r, 400, "invalid_request");
        }
        for cookie in [
            &b"org=Beta\xff"[..],
            b"org=Beta; org=Beta",
            b"org=Beta; x=1; org=Other",
        ] {
            let mut request = format!(
                "GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {access}\r\nConnection: close\r\nCookie: "
            )
            .into_bytes();
            request.extend_from_slice(cookie);
            request.extend_from_slice(b"\r\n\r\n");
            let r = raw_http(&s.server, &request);
            assert_eq!(r.status, 400, "{path} cookie {cookie:?}: {}", r.head);
        }
        // Well-formed selections still work, and an unrelated odd cookie is not read.
        let r = get_bearer(&s.server, &format!("{path}?org=Beta"), &access);
        assert_eq!(r.status, 200, "{}", r.body);
        let r = raw_http(
            &s.server,
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {access}\r\nConnection: close\r\nCookie: other=\u{e9}; org=Beta\r\n\r\n").as_bytes(),
        );
        assert_eq!(r.status, 200, "{}", r.head);
    }
    assert_eq!(
        get_bearer(&s.server, "/api/me?org=Beta", &access).json()["org"]["name"],
        "Beta"
    );
}

#[test]
fn malformed_logo_query_is_invalid_request() {
    let s = seeded(&[]);
    let r = reply(agent().get(&s.server.url("/brand/logo?brand=a%ff")).call());
    assert_oauth_error(&r, 400, "invalid_request");
    let r = reply(
        agent()
            .get(&s.server.url("/brand/logo?brand=a&brand=b"))
            .call(),
    );
    assert_oauth_error(&r, 400, "invalid_request");
}

/// Regression: `"email": 12345` answered 401 as if the password were wrong, and
/// `"client_id": 123` was taken as the client `"123"`.
#[test]
fn oauth_login_refuses_a_field_of_the_wrong_type_like_a_missing_one() {
    let s = seeded(&[]);
    for (field, value) in [
        ("email", json!(12345)),
        ("email", json!(true)),
        ("password", json!(12345)),
        ("client_id", json!(123)),
        ("state", json!(1.5)),
        ("response_type", json!(false)),
    ] {
        let r = login(&s.server, &login_body(json!({ field: value })));
        assert_eq!(r.status, 400, "{field}: {value}: {}", r.body);
        assert_eq!(r.json()["success"], false);
        assert_eq!(r.json()["message"], "Every field must be a string.");
    }
    // Missing (or null) is still the same kind of answer, and strings still work.
    assert_eq!(
        login(&s.server, &login_body(json!({"email": null}))).status,
        400
    );
    assert_eq!(login(&s.server, &login_body(json!({}))).status, 200);
}

/// Regression: duplicate detection compared each key with all before it, so 64 KiB of
/// thousands of tiny keys cost ~50 ms (release; 635 ms in a debug build) of a tokio worker, unauthenticated. Now the parser stops
/// at the field cap (the cost is asserted in `http::json`'s unit test, not by a clock).
#[test]
fn a_body_of_thousands_of_tiny_keys_is_refused_at_the_field_cap() {
    let s = seeded(&[]);
    let keys: Vec<String> = (0..6000).map(|i| format!("\"{i:x}\":\"\"")).collect();
    let body = format!("{{{}}}", keys.join(","));
    assert!(body.len() <= 64 * 1024, "{}", body.len());
    let r = reply(
        agent()
            .post(&s.server.url("/api/oauth_login"))
            .header("content-type", "application/json")
            .send(&body),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.json()["message"], "Too many fields.");
    let r = reply(
        agent()
            .post(&s.server.url("/oauth/token"))
            .header("content-type", "application/json")
            .send(&body),
    );
    assert_oauth_error(&r, 400, "invalid_request");
    assert_eq!(r.json()["error_description"], "too many parameters");
    let form: Vec<String> = (0..7700).map(|i| format!("{i:x}=")).collect();
    let r = reply(
        agent()
            .post(&s.server.url("/oauth/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .send(form.join("&")),
    );
    assert_oauth_error(&r, 400, "invalid_request");
}

/// A source check for item 4's root cause: a parser's error turned into "no parameters"
/// (`query_params(&req).unwrap_or_default()`) makes a malformed request look like one
/// without the parameter. Every call of a request parser must handle its error.
#[test]
fn no_request_parser_result_is_silently_defaulted() {
    const PARSERS: [&str; 9] = [
        "query_params(",
        "body_params(",
        "parse_form(",
        "parse_json(",
        "parse_json_strings(",
        "cookie_strict(",
        "basic_auth(",
        "read_body(",
        "read_params(",
    ];
    const DROPS: [&str; 4] = [
        ".unwrap_or_default()",
        ".unwrap_or(",
        ".unwrap_or_else(",
        ".ok()",
    ];
    let mut offenders = Vec::new();
    // The property tests call the parsers on purpose with anything.
    for path in crate::architecture::rust_sources()
        .into_iter()
        .filter(|path| !path.ends_with("parser_props.rs"))
    {
        let text = std::fs::read_to_string(&path).expect("read");
        for parser in PARSERS {
            for (at, _) in text.match_indices(parser) {
                let statement = text[at..].split(';').next().unwrap_or_default();
                if DROPS.iter().any(|drop| statement.contains(drop)) {
                    offenders.push(format!("{}: {statement}", path.display()));
                }
            }
        }
    }
    assert!(offenders.is_empty(), "{offenders:#?}");
}
