//! The one layout every browser page shares (sign-in, consent, account, logout, device,
//! error): the brand's name, colour and mark around the page's content, with the nonce of
//! its one inline style block; and the pieces several pages use.

use hyper::{Response, StatusCode};

use crate::assets::{self, escape};
use crate::brand::{Mark, PageBrand};
use crate::http::{self, Body};
use crate::secret::fill_random;

/// The page `content` (HTML, already escaped) in the one layout every browser page
/// shares: its title, the brand's name, colour and mark.
pub fn branded(
    status: StatusCode,
    title: &str,
    content: &str,
    brand: &PageBrand,
) -> Response<Body> {
    let nonce = new_nonce();
    let (mark_class, mark) = mark_html(&brand.mark);
    let page = assets::render(
        assets::template("page.html"),
        &[
            ("title", title),
            ("brand_name", &escape(&brand.name)),
            ("brand_color", &brand.color),
            ("on_brand", brand.ink_on_color()),
            ("mark_class", mark_class),
            ("brand_mark", &mark),
            ("style_nonce", &nonce),
            ("content", content),
        ],
    );
    http::html_with_style_nonce(status, page, Some(&nonce))
}

/// The CSS class of the page header and the HTML of its mark: the built-in padlock
/// (inline, so it follows the colour scheme), the brand's logo, or its monogram.
fn mark_html(mark: &Mark) -> (&'static str, String) {
    match mark {
        Mark::Builtin => ("mark-builtin", assets::template("padlock.svg").to_owned()),
        Mark::Logo(url) => (
            "mark-logo",
            format!(
                "<img id=\"brand-logo\" src=\"{}\" alt=\"\" width=\"160\" height=\"48\">",
                escape(url)
            ),
        ),
        Mark::Monogram(letter) => (
            "mark-monogram",
            format!(
                "<span id=\"brand-monogram\" class=\"monogram\" aria-hidden=\"true\">{}</span>",
                escape(&letter.to_string())
            ),
        ),
    }
}

/// An error page (a constant `message`, escaped anyway) in the request's look.
pub fn error(status: StatusCode, message: &str, brand: &PageBrand) -> Response<Body> {
    let content = assets::render(
        assets::template("error.html"),
        &[("message", &escape(message)), ("status", status.as_str())],
    );
    branded(status, "Sign-in error", &content, brand)
}

/// The "signed out" page, deleting the session cookie with `clear_cookie`.
pub fn signed_out(brand: &PageBrand, clear_cookie: &str) -> Response<Body> {
    let content = "<p class=\"lead\" id=\"signed-out\">You are signed out.</p>";
    let mut response = branded(StatusCode::OK, "Signed out", content, brand);
    http::set_header(&mut response, "set-cookie", clear_cookie);
    response
}

/// The sign-in form (`signin.html`) posting to `action` for `client_name` (already
/// escaped), with `fineprint` and `hidden_fields` as HTML: one rendering for the
/// authorization page and the account page. The cursor starts in the first empty field.
pub fn signin_form(
    action: &str,
    client_name: &str,
    fineprint: &str,
    email: &str,
    error_block: &str,
    hidden_fields: &str,
) -> String {
    let (email_autofocus, password_autofocus) = match email.is_empty() {
        true => (" autofocus", ""),
        false => ("", " autofocus"),
    };
    assets::render(
        assets::template("signin.html"),
        &[
            ("form_action", action),
            ("client_name", client_name),
            ("fineprint", fineprint),
            ("email", &escape(email)),
            ("email_autofocus", email_autofocus),
            ("password_autofocus", password_autofocus),
            ("error_block", error_block),
            ("hidden_fields", hidden_fields),
        ],
    )
}

/// The inline error paragraph of a form page (empty without a message).
pub fn error_block(message: Option<&str>) -> String {
    message
        .map(|message| {
            format!(
                "<p id=\"error\" class=\"error\" role=\"alert\">{}</p>",
                escape(message)
            )
        })
        .unwrap_or_default()
}

/// Hidden form fields for `pairs`, escaped.
pub fn hidden_fields(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(name, value)| {
            format!(
                "<input type=\"hidden\" name=\"{name}\" value=\"{}\">\n",
                escape(value)
            )
        })
        .collect()
}

/// A fresh nonce for the page's one inline style block.
pub(crate) fn new_nonce() -> String {
    let mut bytes = [0u8; 16];
    fill_random(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
