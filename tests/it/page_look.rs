//! One look for every page, as a new user sees it in a real browser: headless Chromium
//! opens the sign-in, error, consent, account, logout and device pages (both steps) on a host without
//! a brand (oauthd's own look) and on a host whose brand has no logo, at desktop
//! (1280×800) and phone (390×844) sizes in the light and dark colour schemes (emulated
//! over the DevTools protocol). Each view is kept as a screenshot under
//! `target/screenshots/`, and the page's computed styles are checked for the facts a
//! user would notice: every text readable (WCAG contrast ≥ 4.5 against the first opaque
//! background behind it), the brand's name (and initial) shown with no oauthd padlock
//! beside it, the built-in look naming "oauthd" once, no sideways scrolling on a phone,
//! and the error page in the Host's brand.

use serde_json::Value;

use crate::consent::add_third_party;
use crate::device_flow::{self, add_tv};
use crate::support::{solid_png, Oauthd, Server};
use crate::webdriver::{target_dir, Browser};

const PLAIN_HOST: &str = "plain.look.test";
const MONOGRAM_HOST: &str = "zeta.look.test";
const LOGO_HOST: &str = "acme.look.test";
const EMAIL: &str = "alice@example.com";
const PASSWORD: &str = "correct horse battery staple";
const CLIENT_ID: &str = "third-party-app";
const REDIRECT: &str = "http://app.look.test/cb";

/// Desktop and phone viewports (CSS pixels), the phone one emulated as mobile.
const VIEWS: [(&str, u32, u32, bool); 2] =
    [("desktop", 1280, 800, false), ("mobile", 390, 844, true)];

/// The lowest contrast ratio WCAG 2 AA allows for body text.
const MIN_CONTRAST: f64 = 4.5;

/// What the page shows, read from the DOM and its computed styles.
const FACTS_JS: &str = r##"
const rgba = (text) => {
  const m = /rgba?\(([^)]+)\)/.exec(text || "");
  if (!m) return null;
  const p = m[1].split(/[\s,\/]+/).filter(Boolean).map(Number);
  return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
};
const luminance = (c) => {
  const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
  return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]);
};
const background = (el) => {
  for (let e = el; e; e = e.parentElement) {
    const c = rgba(getComputedStyle(e).backgroundColor);
    if (c && c[3] >= 0.99) return c;
  }
  return matchMedia("(prefers-color-scheme: dark)").matches ? [18, 18, 18, 1] : [255, 255, 255, 1];
};
const contrast = (el) => {
  const fg = rgba(getComputedStyle(el).color);
  const bg = background(el);
  if (!fg) return 0;
  const blended = [0, 1, 2].map((i) => fg[i] * fg[3] + bg[i] * (1 - fg[3]));
  const a = luminance(blended), b = luminance(bg);
  return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
};
const visible = (el) => {
  if (!el) return false;
  const s = getComputedStyle(el), r = el.getBoundingClientRect();
  return s.display !== "none" && s.visibility !== "hidden" && r.width > 0 && r.height > 0;
};
const unreadable = [];
for (const el of document.body.querySelectorAll("*")) {
  const own = Array.from(el.childNodes)
    .filter((n) => n.nodeType === Node.TEXT_NODE)
    .map((n) => n.textContent.trim())
    .join(" ").trim();
  if (!own || !visible(el)) continue;
  const ratio = contrast(el);
  if (ratio < 4.5) unreadable.push(`${el.tagName.toLowerCase()}#${el.id} "${own.slice(0, 40)}": ${ratio.toFixed(2)}`);
}
// Text fields: readable, and as wide as the form (an unstyled field is a stub).
const narrowFields = [];
for (const input of document.querySelectorAll("input:not([type=hidden])")) {
  if (!visible(input)) continue;
  const ratio = contrast(input);
  if (ratio < 4.5) unreadable.push(`input#${input.id}: ${ratio.toFixed(2)}`);
  const width = input.getBoundingClientRect().width;
  const room = input.parentElement.getBoundingClientRect().width;
  if (width < 0.9 * room) narrowFields.push(`input#${input.id}: ${width} of ${room}`);
}
const name = document.querySelector("#brand-name");
const monogram = document.querySelector("#brand-monogram");
return {
  dark: matchMedia("(prefers-color-scheme: dark)").matches,
  innerWidth: window.innerWidth,
  scrollWidth: document.documentElement.scrollWidth,
  unreadable,
  narrowFields,
  name: visible(name) ? name.innerText.trim() : null,
  nameContrast: name ? contrast(name) : 0,
  monogram: visible(monogram) ? monogram.innerText.trim() : null,
  monogramContrast: monogram ? contrast(monogram) : 0,
  padlock: visible(document.querySelector("#brand-padlock")),
  logo: visible(document.querySelector("#brand-logo")),
  oauthdCount: (document.body.innerText.match(/oauthd/gi) || []).length,
  text: document.body.innerText,
};
"##;

/// The look a host should have.
#[derive(Clone, Copy, PartialEq)]
enum Look {
    /// No brand: oauthd's padlock and its name, once.
    Builtin,
    /// A brand without a logo: its name and initial, nothing of oauthd.
    Monogram(&'static str, &'static str),
    /// A brand with a logo: the logo and its name.
    Logo(&'static str),
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_has_one_readable_look_per_host_in_both_schemes_and_sizes() {
    let site = Site::seed();
    let Some(browser) = Browser::start("page-look", &[PLAIN_HOST, MONOGRAM_HOST, LOGO_HOST]).await
    else {
        return;
    };
    let shots = target_dir().join("screenshots");
    std::fs::create_dir_all(&shots).expect("screenshots dir");
    let mut seen = Vec::new();
    for (host, look) in [
        (PLAIN_HOST, Look::Builtin),
        (MONOGRAM_HOST, Look::Monogram("Zeta Farms", "Z")),
    ] {
        for page in &PAGES {
            site.open(&browser, host, page).await;
            for (view, width, height, mobile) in VIEWS {
                for dark in [false, true] {
                    browser.emulate(width, height, mobile, dark).await;
                    let label = format!(
                        "{}-{}-{view}-{}",
                        host.split('.').next().unwrap_or(host),
                        page.name,
                        if dark { "dark" } else { "light" }
                    );
                    let facts = facts(&browser, dark, width).await;
                    browser
                        .screenshot(&shots.join(format!("{label}.png")))
                        .await;
                    assert_look(&facts, look, mobile, &label);
                    seen.push(label);
                }
            }
            if page.name == "account-signin" {
                site.sign_in(&browser).await;
            }
        }
    }
    // The error page of a host whose brand has a logo shows that logo and name.
    site.open(&browser, LOGO_HOST, &PAGES[1]).await;
    for dark in [false, true] {
        browser.emulate(390, 844, true, dark).await;
        let facts = facts(&browser, dark, 390).await;
        let label = format!("acme-error-mobile-{}", if dark { "dark" } else { "light" });
        browser
            .screenshot(&shots.join(format!("{label}.png")))
            .await;
        assert_look(&facts, Look::Logo("Acme Brand"), true, &label);
    }
    assert_eq!(seen.len(), 2 * PAGES.len() * 4, "{seen:?}");
    eprintln!("screenshots: {}", shots.display());
    browser.quit().await;
}

/// One page of the tour: where it is, and what text proves it is that page.
struct Page {
    name: &'static str,
    path: &'static str,
    marker: &'static str,
}

/// Every browser page, in an order a new user meets them: the account page's sign-in
/// form leaves a session, so the consent screen, the account page and the "Sign out?"
/// question come after it (without a session, `/oauth/logout` just says "signed out").
const PAGES: [Page; 9] = [
    Page {
        name: "signin",
        path: "/oauth/authorize?response_type=code&client_id=third-party-app&redirect_uri=http%3A%2F%2Fapp.look.test%2Fcb&scope=openid%20email&state=s1",
        marker: "#client-name",
    },
    Page {
        name: "error",
        path: "/oauth/authorize?response_type=code&client_id=no-such-app&redirect_uri=http%3A%2F%2Fapp.look.test%2Fcb",
        marker: "#error-title",
    },
    Page {
        name: "device",
        path: "/device",
        marker: "#brand-name",
    },
    Page {
        name: "device-confirm",
        path: "/device?user_code={user_code}",
        marker: "#password",
    },
    Page {
        name: "signed-out",
        path: "/oauth/logout",
        marker: "#signed-out",
    },
    Page {
        name: "account-signin",
        path: "/account",
        marker: "#signin",
    },
    Page {
        name: "consent",
        path: "/oauth/authorize?response_type=code&client_id=third-party-app&redirect_uri=http%3A%2F%2Fapp.look.test%2Fcb&scope=openid%20email%20profile&state=s2",
        marker: "#allow",
    },
    Page {
        name: "account",
        path: "/account",
        marker: "#account-email",
    },
    Page {
        name: "logout",
        path: "/oauth/logout",
        marker: "#confirm-signout",
    },
];

/// A running oauthd with the logo-less "Zeta Farms" brand (a light colour, so white
/// text on it would be unreadable), the Acme brand with a logo, alice, and a
/// third-party client.
struct Site {
    _o: Oauthd,
    server: Server,
    /// A pending device authorization's user code, for the device page's second step.
    user_code: String,
}

impl Site {
    fn seed() -> Site {
        let o = Oauthd::new();
        o.ok(&[
            "brand",
            "add",
            MONOGRAM_HOST,
            "--name",
            "Zeta Farms",
            "--color",
            "#ffcc00",
        ]);
        let logo = o.dir.path().join("acme-logo.png");
        std::fs::write(&logo, solid_png(48, 48, [0x0a, 0x7d, 0x4f])).expect("write logo");
        o.ok(&[
            "brand",
            "add",
            LOGO_HOST,
            "--name",
            "Acme Brand",
            "--color",
            "#0a7d4f",
            "--logo",
            logo.to_str().expect("utf-8 temp path"),
        ]);
        o.add_user(EMAIL, PASSWORD);
        add_third_party(&o, CLIENT_ID, REDIRECT);
        add_tv(&o);
        let server = o.serve(&[]);
        let user_code = device_flow::start(&server, "openid profile")["user_code"]
            .as_str()
            .expect("user_code")
            .to_owned();
        Site {
            _o: o,
            server,
            user_code,
        }
    }

    /// Opens `page` on `host` and waits for its marker; signs in on the account page's
    /// form after showing it.
    async fn open(&self, browser: &Browser, host: &str, page: &Page) {
        let path = page.path.replace("{user_code}", &self.user_code);
        let url = format!("http://{host}:{}{path}", self.server.addr.port());
        browser.goto(&url).await;
        browser
            .js(
                &format!("{} on the {} page", page.marker, page.name),
                &format!("return document.querySelector('{}') !== null;", page.marker),
            )
            .await;
    }

    /// Signs in on the account page's form (after its screenshots): the pages after it
    /// are the ones a signed-in user sees.
    async fn sign_in(&self, browser: &Browser) {
        browser.type_into("#email", EMAIL).await;
        browser.type_into("#password", PASSWORD).await;
        browser.click("#signin").await;
        browser.text("#account-email").await;
    }
}

/// Reads the page's facts once the emulated scheme and width are in effect.
async fn facts(browser: &Browser, dark: bool, width: u32) -> Value {
    let script = format!(
        "const wanted = {dark} === matchMedia('(prefers-color-scheme: dark)').matches \
         && window.innerWidth === {width}; if (!wanted) return null; {FACTS_JS}"
    );
    browser
        .js(
            &format!("dark={dark}, width {width} to take effect"),
            &script,
        )
        .await
}

fn assert_look(facts: &Value, look: Look, mobile: bool, label: &str) {
    let text = facts["text"].as_str().unwrap_or_default();
    assert_eq!(
        facts["unreadable"],
        Value::Array(Vec::new()),
        "{label}: text below {MIN_CONTRAST}:1 contrast\n{text}"
    );
    assert_eq!(
        facts["narrowFields"],
        Value::Array(Vec::new()),
        "{label}: text fields narrower than their form"
    );
    let name_contrast = facts["nameContrast"].as_f64().unwrap_or(0.0);
    assert!(
        name_contrast >= MIN_CONTRAST,
        "{label}: brand name contrast {name_contrast}"
    );
    if mobile {
        let (scroll, inner) = (&facts["scrollWidth"], &facts["innerWidth"]);
        assert!(
            scroll.as_u64() <= inner.as_u64(),
            "{label}: scrolls sideways ({scroll} > {inner})"
        );
    }
    match look {
        Look::Builtin => {
            assert_eq!(facts["name"], "oauthd", "{label}");
            assert_eq!(facts["padlock"], true, "{label}: the padlock");
            // The name is the wordmark, as text that follows the colour scheme: no logo
            // image beside it (an image would carry a second, unmeasurable wordmark).
            assert_eq!(facts["logo"], false, "{label}: no logo image");
            assert_eq!(
                facts["oauthdCount"], 1,
                "{label}: names itself once\n{text}"
            );
            assert_eq!(facts["monogram"], Value::Null, "{label}");
        }
        Look::Monogram(name, initial) => {
            assert_eq!(facts["name"], name, "{label}");
            assert_eq!(facts["monogram"], initial, "{label}");
            let ratio = facts["monogramContrast"].as_f64().unwrap_or(0.0);
            assert!(ratio >= MIN_CONTRAST, "{label}: monogram contrast {ratio}");
            assert_eq!(facts["padlock"], false, "{label}: no oauthd padlock");
            assert_eq!(facts["logo"], false, "{label}: no logo image");
            assert_eq!(facts["oauthdCount"], 0, "{label}: one identity\n{text}");
        }
        Look::Logo(name) => {
            assert_eq!(facts["name"], name, "{label}");
            assert_eq!(facts["logo"], true, "{label}: the brand's logo");
            assert_eq!(facts["padlock"], false, "{label}: no oauthd padlock");
            assert_eq!(facts["oauthdCount"], 0, "{label}: one identity\n{text}");
        }
    }
}
