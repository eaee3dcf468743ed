//! `oauthd brand …`: domains, colours, and logos checked by content and size.

use std::path::PathBuf;

use crate::support::{assert_one_line_error, assert_usage_error, expect_exit, path_in, Oauthd};

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";

fn write(o: &Oauthd, name: &str, bytes: &[u8]) -> PathBuf {
    let path = path_in(o, name);
    std::fs::write(&path, bytes).expect("write");
    path
}

fn logo_type(o: &Oauthd, domain: &str) -> Option<String> {
    let found = o.sql(&format!(
        "SELECT logo_content_type FROM brands WHERE domain = '{domain}'"
    ));
    (!found.is_empty()).then_some(found)
}

#[test]
fn brand_add_lowercases_domain_and_normalises_colour() {
    let o = Oauthd::new();
    let brand = o.json(&[
        "brand",
        "add",
        "Login.Example.COM",
        "--name",
        "Example",
        "--color",
        "#0Af",
    ]);
    assert_eq!(brand["domain"], "login.example.com");
    assert_eq!(brand["color"], "#00aaff");
    assert_eq!(brand["has_logo"], false);
    let text = o.ok(&["brand", "list"]);
    assert!(
        text.contains("login.example.com") && text.contains("Example"),
        "{text}"
    );
}

#[test]
fn brand_add_stores_each_image_type_by_content() {
    let o = Oauthd::new();
    let cases: [(&str, &[u8], &str); 4] = [
        ("png.example", PNG, "image/png"),
        ("jpeg.example", b"\xFF\xD8\xFF\xE0\0\x10JFIF", "image/jpeg"),
        ("webp.example", b"RIFF\x24\0\0\0WEBPVP8 ", "image/webp"),
        ("svg.example", b"<?xml version=\"1.0\"?>\n<!-- logo -->\n<svg xmlns=\"http://www.w3.org/2000/svg\"></svg>", "image/svg+xml"),
    ];
    for (domain, bytes, content_type) in cases {
        // A misleading extension: the type comes from the bytes.
        let file = write(&o, &format!("{domain}.txt"), bytes);
        let brand = o.json(&[
            "brand",
            "add",
            domain,
            "--name",
            "B",
            "--logo",
            file.to_str().expect("utf-8"),
        ]);
        assert_eq!(brand["has_logo"], true);
        assert_eq!(logo_type(&o, domain).as_deref(), Some(content_type));
    }
}

#[test]
fn brand_add_rejects_non_image_logo_and_writes_nothing() {
    let o = Oauthd::new();
    for (name, bytes) in [
        ("fake.png", &b"<html><body>not an image</body></html>"[..]),
        ("empty.png", b""),
        ("gif.png", b"GIF89a..."),
    ] {
        let file = write(&o, name, bytes);
        let stderr = expect_exit(
            &o,
            &[
                "brand",
                "add",
                "a.example",
                "--name",
                "A",
                "--logo",
                file.to_str().expect("utf-8"),
            ],
            1,
        );
        assert_one_line_error(&stderr, "not a PNG, JPEG, WebP or SVG");
    }
    assert_eq!(o.json(&["brand", "list"]), serde_json::json!([]));
}

#[test]
fn brand_add_rejects_logo_over_512_kib() {
    let o = Oauthd::new();
    let mut big = PNG.to_vec();
    big.resize(512 * 1024 + 1, 0);
    let file = write(&o, "big.png", &big);
    let stderr = expect_exit(
        &o,
        &[
            "brand",
            "add",
            "a.example",
            "--name",
            "A",
            "--logo",
            file.to_str().expect("utf-8"),
        ],
        1,
    );
    assert_one_line_error(&stderr, "512 KiB");
    assert_eq!(o.json(&["brand", "list"]), serde_json::json!([]));
    big.truncate(512 * 1024);
    let file = write(&o, "limit.png", &big);
    o.json(&[
        "brand",
        "add",
        "a.example",
        "--name",
        "A",
        "--logo",
        file.to_str().expect("utf-8"),
    ]);
}

#[test]
fn brand_add_rejects_missing_logo_file() {
    let o = Oauthd::new();
    let stderr = expect_exit(
        &o,
        &[
            "brand",
            "add",
            "a.example",
            "--name",
            "A",
            "--logo",
            "/no/such/logo.png",
        ],
        1,
    );
    assert_one_line_error(&stderr, "cannot read logo");
    assert_eq!(o.json(&["brand", "list"]), serde_json::json!([]));
}

#[test]
fn brand_add_rejects_bad_domains_colours_and_duplicates() {
    let o = Oauthd::new();
    o.json(&["brand", "add", "a.example", "--name", "A"]);
    let before = o.json(&["brand", "list"]);
    for domain in [
        "https://b.example",
        "b.example:8443",
        "b_example.com",
        "",
        "b-.example",
        "b..example",
    ] {
        let stderr = expect_exit(&o, &["brand", "add", domain, "--name", "B"], 2);
        assert_usage_error(&stderr, "not a valid domain");
    }
    for color in ["red", "#12", "#1234", "00ff00", "#ggg"] {
        let stderr = expect_exit(
            &o,
            &["brand", "add", "c.example", "--name", "C", "--color", color],
            2,
        );
        assert_usage_error(&stderr, "colour");
    }
    let stderr = expect_exit(&o, &["brand", "add", "A.EXAMPLE", "--name", "Again"], 1);
    assert_one_line_error(&stderr, "already exists");
    assert_eq!(o.json(&["brand", "list"]), before);
}

#[test]
fn brand_set_logo_replaces_and_checks_the_logo() {
    let o = Oauthd::new();
    o.json(&["brand", "add", "a.example", "--name", "A"]);
    let svg = write(&o, "logo.svg", b"\xEF\xBB\xBF<svg viewBox=\"0 0 1 1\"/>");
    let brand = o.json(&[
        "brand",
        "set-logo",
        "A.example",
        svg.to_str().expect("utf-8"),
    ]);
    assert_eq!(brand["has_logo"], true);
    assert_eq!(logo_type(&o, "a.example").as_deref(), Some("image/svg+xml"));
    let text = write(&o, "notes.svg", b"just text");
    expect_exit(
        &o,
        &[
            "brand",
            "set-logo",
            "a.example",
            text.to_str().expect("utf-8"),
        ],
        1,
    );
    assert_eq!(
        logo_type(&o, "a.example").as_deref(),
        Some("image/svg+xml"),
        "unchanged after refusal"
    );
    let stderr = expect_exit(
        &o,
        &[
            "brand",
            "set-logo",
            "b.example",
            svg.to_str().expect("utf-8"),
        ],
        1,
    );
    assert_one_line_error(&stderr, "no brand");
}

#[test]
fn brand_remove_deletes_and_detaches_clients() {
    let o = Oauthd::new();
    o.json(&["brand", "add", "a.example", "--name", "A"]);
    o.json(&[
        "client",
        "add",
        "--name",
        "C",
        "--id",
        "c",
        "--brand",
        "a.example",
        "--redirect-uri",
        "https://c.example/cb",
    ]);
    // A brand in use is removed only with --force (`cli_updates` covers the refusal).
    assert_eq!(
        o.json(&["brand", "remove", "a.example", "--force"])["removed"],
        true
    );
    assert_eq!(o.json(&["brand", "list"]), serde_json::json!([]));
    assert_eq!(
        o.json(&["client", "show", "c"])["brand"],
        serde_json::Value::Null
    );
    expect_exit(&o, &["brand", "remove", "a.example"], 1);
}
