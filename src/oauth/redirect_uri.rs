//! Redirect URIs (RFC 6749 §3.1.2): parsing what clients register and send, and exact
//! matching. No prefix or wildcard matching, ever.

/// An absolute URI without fragment, as a client registers and sends it (RFC 6749 §3.1.2).
/// Two redirect URIs match when their parsed forms are equal: no prefix or wildcard
/// matching, ever.
#[derive(Debug, Clone)]
pub struct RedirectUri {
    /// Exactly as given: what is stored, echoed, and redirected to.
    original: String,
    parsed: url::Url,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RedirectUriError {
    #[error("redirect URI must be an absolute URI (with a scheme such as https://)")]
    NotAbsolute,
    #[error("redirect URI must not contain a fragment (#…)")]
    HasFragment,
    #[error("redirect URI must not contain whitespace or control characters")]
    BadCharacters,
}

impl RedirectUri {
    pub fn parse(raw: &str) -> Result<RedirectUri, RedirectUriError> {
        if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(RedirectUriError::BadCharacters);
        }
        if raw.contains('#') {
            return Err(RedirectUriError::HasFragment);
        }
        let parsed = url::Url::parse(raw).map_err(|_| RedirectUriError::NotAbsolute)?;
        if parsed.cannot_be_a_base() && !parsed.scheme().contains('.') {
            // "mailto:x" or "javascript:…" are not redirect targets; reverse-DNS app schemes
            // ("com.example.app:/cb") are allowed for native apps (RFC 8252 §7.1).
            return Err(RedirectUriError::NotAbsolute);
        }
        if matches!(parsed.scheme(), "javascript" | "data" | "vbscript" | "file") {
            return Err(RedirectUriError::NotAbsolute);
        }
        Ok(RedirectUri {
            original: raw.to_owned(),
            parsed,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.original
    }

    /// Exact match after parsing (so `HTTP://Acme.com` equals `http://acme.com/`).
    pub fn matches(&self, other: &RedirectUri) -> bool {
        self.parsed == other.parsed
    }

    /// This URI with `params` appended to its query, for the 302 back to the client.
    pub fn with_query(&self, params: &[(&str, &str)]) -> String {
        let mut url = self.parsed.clone();
        {
            let mut query = url.query_pairs_mut();
            for (name, value) in params {
                query.append_pair(name, value);
            }
        }
        url.to_string()
    }
}

/// Finds which of a client's registered URIs `requested` names, or — when none was
/// requested — the only one registered.
pub fn select_redirect_uri(registered: &[String], requested: Option<&str>) -> Option<RedirectUri> {
    match requested {
        Some(raw) => {
            let requested = RedirectUri::parse(raw).ok()?;
            registered
                .iter()
                .filter_map(|r| RedirectUri::parse(r).ok())
                .any(|r| r.matches(&requested))
                .then_some(requested)
        }
        None => match registered {
            [only] => RedirectUri::parse(only).ok(),
            _ => None,
        },
    }
}

#[cfg(test)]
mod props;
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris_must_be_absolute_without_fragment() {
        assert!(RedirectUri::parse("https://app.example.com/cb").is_ok());
        assert!(RedirectUri::parse("http://acme.com").is_ok());
        assert!(RedirectUri::parse("com.example.app:/oauth").is_ok());
        assert_eq!(
            RedirectUri::parse("/relative/cb").err(),
            Some(RedirectUriError::NotAbsolute)
        );
        assert_eq!(
            RedirectUri::parse("cb").err(),
            Some(RedirectUriError::NotAbsolute)
        );
        assert_eq!(
            RedirectUri::parse("https://x/cb#frag").err(),
            Some(RedirectUriError::HasFragment)
        );
        assert_eq!(
            RedirectUri::parse("javascript:alert(1)").err(),
            Some(RedirectUriError::NotAbsolute)
        );
        assert_eq!(
            RedirectUri::parse("https://x/ cb").err(),
            Some(RedirectUriError::BadCharacters)
        );
    }

    #[test]
    fn matching_is_exact_after_parsing() {
        let registered = vec![
            "http://acme.com".to_owned(),
            "https://x.example/cb?a=1".to_owned(),
        ];
        assert!(select_redirect_uri(&registered, Some("http://acme.com")).is_some());
        assert!(select_redirect_uri(&registered, Some("HTTP://ACME.com/")).is_some());
        assert!(select_redirect_uri(&registered, Some("http://acme.com/evil")).is_none());
        assert!(select_redirect_uri(&registered, Some("http://acme.com.evil.org")).is_none());
        assert!(select_redirect_uri(&registered, Some("https://x.example/cb")).is_none());
        assert!(select_redirect_uri(&registered, Some("https://x.example/cb?a=1&b=2")).is_none());
        assert!(
            select_redirect_uri(&registered, None).is_none(),
            "two registered: must name one"
        );
        let one = vec!["https://only.example/cb".to_owned()];
        assert_eq!(
            select_redirect_uri(&one, None)
                .map(|r| r.as_str().to_owned())
                .as_deref(),
            Some("https://only.example/cb")
        );
    }

    #[test]
    fn requested_uri_is_echoed_as_sent() {
        let registered = vec!["http://acme.com".to_owned()];
        let chosen = select_redirect_uri(&registered, Some("http://acme.com")).expect("match");
        assert_eq!(chosen.as_str(), "http://acme.com");
        assert_eq!(
            chosen.with_query(&[("code", "c"), ("state", "a b")]),
            "http://acme.com/?code=c&state=a+b"
        );
    }
}
