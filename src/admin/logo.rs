//! Logo files for brands: read with a size cap and accepted only when their content is a
//! PNG, JPEG, WebP or SVG image (never judged by file name). The media type stored with
//! the logo comes from the same check.

use std::io::Read;
use std::path::Path;

use super::AdminError;
use crate::store::brands::Logo;

/// The largest logo accepted: the sign-in page loads it on every visit.
pub const MAX_LOGO_BYTES: u64 = 512 * 1024;

/// Reads a logo file, refusing one over [`MAX_LOGO_BYTES`] or not a PNG, JPEG, WebP or
/// SVG image by content.
pub fn read(path: &Path) -> Result<Logo, AdminError> {
    let unreadable = |e: std::io::Error| {
        AdminError::Invalid(format!("cannot read logo {}: {e}", path.display()))
    };
    let file = std::fs::File::open(path).map_err(unreadable)?;
    let mut bytes = Vec::new();
    // Reads at most one byte past the limit, so a huge file (or a FIFO) is not slurped.
    file.take(MAX_LOGO_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    if bytes.len() as u64 > MAX_LOGO_BYTES {
        return Err(AdminError::Invalid(format!(
            "logo {} is larger than 512 KiB",
            path.display()
        )));
    }
    let content_type = sniff_image(&bytes).ok_or_else(|| {
        AdminError::Invalid(format!(
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
