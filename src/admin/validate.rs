//! Checks of admin input, done before anything is written: emails, names, client ids,
//! brand domains, colours, redirect URIs and the issuer URL (logo files are checked in
//! `logo`). Each returns the value to store or an [`Invalid`] naming the problem. Input is
//! echoed with `{:?}`, so control characters cannot reach the terminal raw.
//!
//! The `*_arg` functions are clap value parsers (`cli.rs` names them), so a bad value on
//! the command line is a usage error (exit 2) before any command runs. This file imports
//! nothing from `admin`, so `cli` can use it without an import cycle.

use crate::oauth::RedirectUri;

/// A value that failed its check; the message names the problem.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

const MAX_EMAIL_CHARS: usize = 254;
const MAX_NAME_CHARS: usize = 200;
const MAX_CLIENT_ID_CHARS: usize = 200;

fn invalid(message: String) -> Invalid {
    Invalid(message)
}

/// A plausible address: one `@`, a non-empty local part, a dotted domain without empty
/// labels, no whitespace, control characters or address-list punctuation. Stored as given.
pub fn email(raw: &str) -> Result<&str, Invalid> {
    let bad = || invalid(format!("{raw:?} is not a valid email address"));
    if raw.chars().count() > MAX_EMAIL_CHARS {
        return Err(invalid(format!(
            "email address longer than {MAX_EMAIL_CHARS} characters"
        )));
    }
    if raw
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || "<>()[]\\,;:\"".contains(c))
    {
        return Err(bad());
    }
    let (local, domain) = raw.split_once('@').ok_or_else(bad)?;
    let domain_ok = domain.contains('.') && domain.split('.').all(|label| !label.is_empty());
    if local.is_empty() || domain.contains('@') || !domain_ok {
        return Err(bad());
    }
    Ok(raw)
}

/// A display name (user, client, brand, organization): trimmed, non-empty, one line.
pub fn name<'a>(what: &str, raw: &'a str) -> Result<&'a str, Invalid> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(invalid(format!("{what} must not be empty")));
    }
    if trimmed.chars().count() > MAX_NAME_CHARS {
        return Err(invalid(format!(
            "{what} longer than {MAX_NAME_CHARS} characters"
        )));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(invalid(format!(
            "{what} must not contain control characters"
        )));
    }
    Ok(trimmed)
}

/// A client id as sent in forms and HTTP Basic: non-empty, no whitespace or control
/// characters, at most 200 characters.
pub fn client_id(raw: &str) -> Result<&str, Invalid> {
    if raw.is_empty() || raw.chars().count() > MAX_CLIENT_ID_CHARS {
        return Err(invalid(format!(
            "client id must be 1 to {MAX_CLIENT_ID_CHARS} characters"
        )));
    }
    if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid(format!(
            "client id {raw:?} must not contain whitespace or control characters"
        )));
    }
    Ok(raw)
}

/// A brand domain as the Host header carries it, without port: lower-cased letters,
/// digits, hyphens and dots, labels of 1–63 characters not starting or ending in `-`.
pub fn domain(raw: &str) -> Result<String, Invalid> {
    let bad = |why: &str| invalid(format!("{raw:?} is not a valid domain: {why}"));
    if raw.contains("://") || raw.contains('/') {
        return Err(bad("give the host name only, without scheme or path"));
    }
    if raw.contains(':') {
        return Err(bad("give the host name only, without port"));
    }
    let domain = raw.to_ascii_lowercase();
    if domain.is_empty() || domain.len() > 253 {
        return Err(bad("must be 1 to 253 characters"));
    }
    for label in domain.split('.') {
        let chars_ok = label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        if label.is_empty() || label.len() > 63 || !chars_ok {
            return Err(bad(
                "use letters, digits, hyphens and dots, with no empty label",
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(bad("a label must not start or end with a hyphen"));
        }
    }
    Ok(domain)
}

/// `#rgb` or `#rrggbb`, returned as lower-case `#rrggbb` (the form the schema documents).
pub fn color(raw: &str) -> Result<String, Invalid> {
    let hex = raw
        .strip_prefix('#')
        .filter(|h| h.chars().all(|c| c.is_ascii_hexdigit()));
    match hex.map(|h| (h.len(), h.to_ascii_lowercase())) {
        Some((6, h)) => Ok(format!("#{h}")),
        Some((3, h)) => Ok(h.chars().fold(String::from("#"), |mut out, c| {
            out.push(c);
            out.push(c);
            out
        })),
        _ => Err(invalid(format!(
            "{raw:?} is not a colour: use #rgb or #rrggbb"
        ))),
    }
}

/// Allowed scopes from `--scope` (each may hold several space-separated names): the names
/// once each, space-separated; `None` when none were given (no restriction).
pub fn scopes(raw: &[String]) -> Result<Option<String>, Invalid> {
    let mut names: Vec<&str> = Vec::new();
    for name in raw.iter().flat_map(|r| r.split_whitespace()) {
        // RFC 6749 §3.3: printable ASCII except space, `"` and `\`.
        if !name
            .bytes()
            .all(|b| b == b'!' || (b'#'..=b'[').contains(&b) || (b']'..=b'~').contains(&b))
        {
            return Err(invalid(format!("{name:?} is not a valid scope name")));
        }
        if !names.contains(&name) {
            names.push(name);
        }
    }
    Ok((!names.is_empty()).then(|| names.join(" ")))
}

/// One `--scope` of `client update` (names separated by spaces), checked like
/// [`scopes`]; at least one name.
pub fn scope_arg(raw: &str) -> Result<String, Invalid> {
    scopes(&[raw.to_owned()])?.ok_or_else(|| invalid("give at least one scope name".into()))
}

/// A browser origin as the `Origin` header sends it: `http` or `https`, a host, an
/// optional non-default port, nothing else (no path, not even `/`). CORS compares it
/// exactly, so anything else could never match and is refused with the form to use.
pub fn origin(raw: &str) -> Result<String, Invalid> {
    let bad = |why: String| invalid(format!("{raw:?} is not an origin: {why}"));
    let url = url::Url::parse(raw).map_err(|e| bad(e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("the scheme must be http or https".into()));
    }
    let canonical = url.origin().ascii_serialization();
    if canonical != raw {
        return Err(bad(format!("write it as {canonical:?}")));
    }
    Ok(canonical)
}

/// `--email` and EMAIL arguments: [`email`], owned.
pub fn email_arg(raw: &str) -> Result<String, Invalid> {
    email(raw).map(str::to_owned)
}

/// `--name` arguments (users, clients, brands, organizations): [`name`], owned.
pub fn name_arg(raw: &str) -> Result<String, Invalid> {
    name("name", raw).map(str::to_owned)
}

/// `--id` of a client: [`client_id`], owned.
pub fn client_id_arg(raw: &str) -> Result<String, Invalid> {
    client_id(raw).map(str::to_owned)
}

/// A redirect URI as registered: absolute, no fragment (the rules of `oauth`), returned
/// in its parsed form.
pub fn redirect_uri_arg(raw: &str) -> Result<String, Invalid> {
    RedirectUri::parse(raw)
        .map(|uri| uri.as_str().to_owned())
        .map_err(|e| invalid(format!("{raw:?}: {e}")))
}

/// One `--scope` argument (one or more space-separated names), each checked by [`scopes`].
pub fn scopes_arg(raw: &str) -> Result<String, Invalid> {
    scopes(&[raw.to_owned()]).map(|_| raw.to_owned())
}

/// An id that goes into a URL path (an Alexa vendor id, a Google project id): 1 to 100
/// ASCII letters, digits, `-` or `_`.
pub fn url_segment_arg(raw: &str) -> Result<String, Invalid> {
    let ok = (1..=100).contains(&raw.len())
        && raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    match ok {
        true => Ok(raw.to_owned()),
        false => Err(invalid(format!(
            "{raw:?}: use 1 to 100 letters, digits, '-' or '_'"
        ))),
    }
}

/// `serve --issuer`: an absolute http(s) URL without query or fragment, returned without
/// a trailing slash.
pub fn issuer_arg(raw: &str) -> Result<String, Invalid> {
    let bad = || {
        invalid(format!(
            "{raw:?} is not an absolute http(s) URL without query or fragment"
        ))
    };
    let url = url::Url::parse(raw).map_err(|_| bad())?;
    if !matches!(url.scheme(), "http" | "https")
        || url.host_str().is_none()
        || url.query().is_some()
        || url.fragment().is_some()
    {
        return Err(bad());
    }
    Ok(raw.trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_accepts_plausible_and_refuses_the_rest() {
        for ok in ["a@b.co", "Alice.Smith+tag@Example.COM", "ü@bücher.de"] {
            assert!(email(ok).is_ok(), "{ok}");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        for bad in [
            "", "a", "@b.co", "a@b", "a@@b.co", "a@b@c.co", "a b@c.co", "a@b..co", "a@.b.co",
            "a\n@b.co", "<a@b.co>", &long,
        ] {
            assert!(email(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn domain_is_lowercased_host_without_port_or_scheme() {
        assert_eq!(
            domain("Login.Example.COM").ok().as_deref(),
            Some("login.example.com")
        );
        assert_eq!(domain("localhost").ok().as_deref(), Some("localhost"));
        for bad in [
            "",
            "a..b",
            "-a.com",
            "a-.com",
            "a.com:8080",
            "https://a.com",
            "a_b.com",
            "a.com.",
            "a b.com",
        ] {
            assert!(domain(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn issuer_is_validated_and_trimmed() {
        assert_eq!(
            issuer_arg("https://auth.example.com/").ok().as_deref(),
            Some("https://auth.example.com")
        );
        for bad in [
            "auth.example.com",
            "ftp://x",
            "https://x/?a=b",
            "https://x/#f",
            "not-a-url",
        ] {
            assert!(issuer_arg(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn color_normalises_to_six_lowercase_digits() {
        assert_eq!(color("#ABC").ok().as_deref(), Some("#aabbcc"));
        assert_eq!(color("#12aB9f").ok().as_deref(), Some("#12ab9f"));
        for bad in ["", "#", "abc", "#abcd", "#ggg", "#1234567", "red"] {
            assert!(color(bad).is_err(), "{bad:?}");
        }
    }
}
