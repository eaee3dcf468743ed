//! Embedded assets (pages, CSS, the default logo) and the HTML they are rendered into.
//! Every value placed into a page goes through [`escape`].

use hyper::StatusCode;
use include_dir::{include_dir, Dir};

use crate::http::{self, Body};

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

/// Replaces each `{{name}}` in `template` with its (already escaped) value.
pub fn render(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = template.to_owned();
    for (name, value) in values {
        out = out.replace(&format!("{{{{{name}}}}}"), value);
    }
    out
}

/// A plain HTML error page; `message` is a constant, escaped anyway.
pub fn error_page(status: StatusCode, message: &str) -> hyper::Response<Body> {
    let page = render(
        template("error.html"),
        &[("message", &escape(message)), ("status", status.as_str())],
    );
    http::html(status, page)
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
    fn error_page_template_is_embedded() {
        assert!(template("error.html").contains("{{message}}"));
    }
}
