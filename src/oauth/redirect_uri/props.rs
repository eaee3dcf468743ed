//! Property tests of redirect URI matching and selection (shared generators in
//! `parser_props`).

use proptest::prelude::*;

use crate::oauth::{select_redirect_uri, RedirectUri, RedirectUriError};
use crate::parser_props::{clean_text, config, form_serialize, interesting_char};

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
