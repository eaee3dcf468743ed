//! Embedded assets (page templates, CSS, the default logo) and how they are filled in.
//! Every value placed into a page goes through [`escape`].

use include_dir::{include_dir, Dir};

static ASSETS: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/assets");

/// An embedded file by path relative to `assets/`.
pub fn file(path: &str) -> Option<&'static [u8]> {
    ASSETS.get_file(path).map(|f| f.contents())
}

pub fn template(path: &str) -> &'static str {
    file(path)
        .and_then(|b| std::str::from_utf8(b).ok())
        .unwrap_or_default()
}

/// Escapes text for an HTML element body or a double-quoted attribute.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Replaces each `{{name}}` in `template` with its (already escaped) value, in one pass
/// over the template: a value is copied out and never read again, so an email or state
/// that contains `{{hidden_fields}}` shows as that text instead of being expanded.
/// A placeholder without a value stays as it is.
pub fn render(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let value = after.find("}}").and_then(|close| {
            let name = &after[..close];
            values
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, value)| (*value, close))
        });
        match value {
            Some((value, close)) => {
                out.push_str(value);
                rest = &after[close + 2..];
            }
            None => {
                out.push_str("{{");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_neutralises_markup() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn render_never_expands_a_substituted_value() {
        let page = render(
            "<p>{{email}}</p>{{hidden_fields}}<style nonce=\"{{style_nonce}}\">",
            &[
                ("email", "{{hidden_fields}}{{style_nonce}}{{email}}"),
                ("hidden_fields", "<input>"),
                ("style_nonce", "n0"),
            ],
        );
        assert_eq!(
            page,
            "<p>{{hidden_fields}}{{style_nonce}}{{email}}</p><input><style nonce=\"n0\">"
        );
    }

    #[test]
    fn render_keeps_unknown_and_unclosed_placeholders() {
        assert_eq!(render("a{{x}}b{{y", &[("y", "Y")]), "a{{x}}b{{y");
        assert_eq!(render("{{{y}}}", &[("y", "Y")]), "{{{y}}}");
        assert_eq!(render("{{y}}{{y}}", &[("y", "Y")]), "YY");
    }

    #[test]
    fn error_page_template_is_embedded() {
        assert!(template("error.html").contains("{{message}}"));
    }
}
