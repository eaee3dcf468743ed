//! Checks of admin input, done before anything is written: emails, names, client ids,
//! brand domains, colours, and logo files (size and image type, judged by content, never
//! by file name). Each returns the value to store or an [`AdminError::Invalid`] naming
//! the problem. Input is echoed with `{:?}`, so control characters cannot reach the
//! terminal raw.

use std::io::Read;
use std::path::Path;

use super::AdminError;
use crate::store::brands::Logo;

/// The largest logo accepted: the sign-in page loads it on every visit.
pub const MAX_LOGO_BYTES: u64 = 512 * 1024;
const MAX_EMAIL_CHARS: usize = 254;
const MAX_NAME_CHARS: usize = 200;
const MAX_CLIENT_ID_CHARS: usize = 200;

fn invalid(message: String) -> AdminError {
    AdminError::Invalid(message)
}

/// A plausible address: one `@`, a non-empty local part, a dotted domain without empty
/// labels, no whitespace, control characters or address-list punctuation. Stored as given.
pub fn email(raw: &str) -> Result<&str, AdminError> {
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
pub fn name<'a>(what: &str, raw: &'a str) -> Result<&'a str, AdminError> {
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
pub fn client_id(raw: &str) -> Result<&str, AdminError> {
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
pub fn domain(raw: &str) -> Result<String, AdminError> {
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
pub fn color(raw: &str) -> Result<String, AdminError> {
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

/// Reads a logo file, refusing one over [`MAX_LOGO_BYTES`] or not a PNG, JPEG, WebP or
/// SVG image by content.
pub fn logo(path: &Path) -> Result<Logo, AdminError> {
    let unreadable =
        |e: std::io::Error| invalid(format!("cannot read logo {}: {e}", path.display()));
    let file = std::fs::File::open(path).map_err(unreadable)?;
    let mut bytes = Vec::new();
    // Reads at most one byte past the limit, so a huge file (or a FIFO) is not slurped.
    file.take(MAX_LOGO_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    if bytes.len() as u64 > MAX_LOGO_BYTES {
        return Err(invalid(format!(
            "logo {} is larger than 512 KiB",
            path.display()
        )));
    }
    let content_type = sniff_image(&bytes).ok_or_else(|| {
        invalid(format!(
            "logo {} is not a PNG, JPEG, WebP or SVG image",
            path.display()
        ))
    })?;
    Ok(Logo {
        content_type: content_type.to_owned(),
        bytes,
    })
}

/// The media type of `bytes` judged by their content, if they are a supported image.
pub fn sniff_image(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else if is_svg(bytes) {
        Some("image/svg+xml")
    } else {
        None
    }
}

/// UTF-8 text whose first element, after an optional BOM, whitespace, XML declaration,
/// comments and doctype, is `<svg`.
fn is_svg(bytes: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return false;
    };
    let mut rest = text.strip_prefix('\u{feff}').unwrap_or(text);
    loop {
        rest = rest.trim_start();
        let skipped = if rest.starts_with("<?xml") {
            rest.find("?>").map(|end| &rest[end + 2..])
        } else if rest.starts_with("<!--") {
            rest.find("-->").map(|end| &rest[end + 3..])
        } else if rest
            .get(..9)
            .is_some_and(|s| s.eq_ignore_ascii_case("<!doctype"))
        {
            skip_doctype(rest)
        } else {
            let after = rest.strip_prefix("<svg");
            return after.is_some_and(|a| {
                a.starts_with(|c: char| c.is_whitespace() || c == '>' || c == '/')
            });
        };
        match skipped {
            Some(next) => rest = next,
            None => return false,
        }
    }
}

/// The text after a doctype, which may hold an internal subset in `[…]`.
fn skip_doctype(doctype: &str) -> Option<&str> {
    let close = doctype.find('>')?;
    match doctype.find('[') {
        Some(open) if open < close => {
            let subset_end = open + doctype[open..].find(']')?;
            let end = subset_end + doctype[subset_end..].find('>')?;
            Some(&doctype[end + 1..])
        }
        _ => Some(&doctype[close + 1..]),
    }
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
    fn color_normalises_to_six_lowercase_digits() {
        assert_eq!(color("#ABC").ok().as_deref(), Some("#aabbcc"));
        assert_eq!(color("#12aB9f").ok().as_deref(), Some("#12ab9f"));
        for bad in ["", "#", "abc", "#abcd", "#ggg", "#1234567", "red"] {
            assert!(color(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn sniff_recognises_images_by_content() {
        assert_eq!(sniff_image(b"\x89PNG\r\n\x1a\nrest"), Some("image/png"));
        assert_eq!(sniff_image(&[0xFF, 0xD8, 0xFF, 0xE0]), Some("image/jpeg"));
        assert_eq!(sniff_image(b"RIFF\0\0\0\0WEBPVP8 "), Some("image/webp"));
        let svg = "\u{feff} <?xml version=\"1.0\"?>\n<!-- c -->\n<!DOCTYPE svg [ <!ENTITY a \"b\"> ]>\n<svg xmlns=\"http://www.w3.org/2000/svg\"/>";
        assert_eq!(sniff_image(svg.as_bytes()), Some("image/svg+xml"));
        assert_eq!(sniff_image(b"<svg>"), Some("image/svg+xml"));
        for bad in [
            &b""[..],
            b"GIF89a",
            b"<html><svg>",
            b"<svgx>",
            b"<!-- unterminated <svg>",
            b"RIFF\0\0\0\0WAVE",
            b"\xff\xfe<svg>",
        ] {
            assert_eq!(sniff_image(bad), None, "{bad:?}");
        }
    }
}
