//! `oauthd client …`: registration with generated ids and secrets, redirect URI checks,
//! listing without secrets, rotation and removal.

use crate::support::{assert_one_line_error, assert_usage_error, expect_exit, Oauthd};

fn client_ids(o: &Oauthd) -> Vec<String> {
    let list = o.json(&["client", "list"]);
    list.as_array()
        .expect("array")
        .iter()
        .filter_map(|c| c["client_id"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn client_add_generates_id_and_secret_stored_only_as_hash() {
    let o = Oauthd::new();
    let added = o.json(&[
        "client",
        "add",
        "--name",
        "Alexa",
        "--redirect-uri",
        "https://pitangui.amazon.com/cb",
    ]);
    assert_eq!(added.as_object().map(|m| m.len()), Some(2), "{added}");
    let client_id = added["client_id"].as_str().expect("client_id");
    let secret = added["client_secret"].as_str().expect("client_secret");
    assert!(client_id.len() >= 16, "{client_id}");
    assert!(
        secret.len() >= 43
            && secret
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "{secret}"
    );
    let needle = secret.as_bytes();
    let contains = |hay: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
    let stored = o.stored_bytes();
    assert!(!stored.is_empty(), "nothing stored to search");
    assert!(
        !stored.iter().any(|(_, bytes)| contains(bytes)),
        "the secret must not be stored in the clear"
    );
    let other = o.json(&[
        "client",
        "add",
        "--name",
        "Alexa",
        "--redirect-uri",
        "https://a.example/cb",
    ]);
    assert_ne!(
        other["client_id"], added["client_id"],
        "generated ids differ"
    );
}

#[test]
fn client_add_text_prints_id_and_secret_once() {
    let o = Oauthd::new();
    let text = o.ok(&[
        "client",
        "add",
        "--name",
        "App",
        "--id",
        "app",
        "--redirect-uri",
        "https://a.example/cb",
    ]);
    assert!(text.contains("client_id:     app"), "{text}");
    assert!(text.contains("client_secret: "), "{text}");
}

#[test]
fn client_list_and_show_never_print_secrets() {
    let o = Oauthd::new();
    let secret = o.add_client("alexa", &["https://a.example/cb", "https://b.example/cb"]);
    let shown = o.json(&["client", "show", "alexa"]);
    assert_eq!(shown["client_id"], "alexa");
    assert_eq!(shown["public"], false);
    assert_eq!(
        shown["redirect_uris"],
        serde_json::json!(["https://a.example/cb", "https://b.example/cb"])
    );
    for args in [
        &["client", "list"][..],
        &["client", "list", "--json"],
        &["client", "show", "alexa"],
        &["client", "show", "alexa", "--json"],
    ] {
        let out = o.ok(args);
        assert!(!out.contains(&secret), "{args:?} printed the secret");
        assert!(!out.contains("secret_hash"), "{args:?}: {out}");
    }
}

#[test]
fn client_add_public_has_null_secret_and_pkce_flag() {
    let o = Oauthd::new();
    let added = o.json(&[
        "client",
        "add",
        "--name",
        "SPA",
        "--id",
        "spa",
        "--public",
        "--require-pkce",
        "--redirect-uri",
        "com.example.app:/cb",
    ]);
    assert_eq!(
        added,
        serde_json::json!({"client_id": "spa", "client_secret": null})
    );
    let shown = o.json(&["client", "show", "spa"]);
    assert_eq!(shown["public"], true);
    assert_eq!(shown["require_pkce"], true);
}

#[test]
fn client_add_introspect_any_registers_a_confidential_resource_server() {
    let o = Oauthd::new();
    let args = ["client", "add", "--name", "API", "--id", "api"];
    let uri = ["--redirect-uri", "https://api.example/cb"];
    let public = [&args[..], &uri, &["--public", "--introspect-any"]].concat();
    let stderr = expect_exit(&o, &public, 2);
    assert!(stderr.contains("--introspect-any"), "{stderr}");
    assert!(!o.db.exists(), "a refused add creates nothing");
    o.json(&[&args[..], &uri, &["--introspect-any"]].concat());
    assert_eq!(o.json(&["client", "show", "api"])["introspect_any"], true);
    o.json(&[&["client", "add", "--name", "App", "--id", "app"][..], &uri].concat());
    assert_eq!(o.json(&["client", "show", "app"])["introspect_any"], false);
    assert!(o
        .ok(&["client", "show", "api"])
        .contains("introspects any token"));
}

#[test]
fn client_add_rejects_fragment_redirect_uri() {
    let o = Oauthd::new();
    let stderr = expect_exit(
        &o,
        &[
            "client",
            "add",
            "--name",
            "X",
            "--id",
            "x",
            "--redirect-uri",
            "https://a.example/cb#frag",
        ],
        2,
    );
    assert_usage_error(&stderr, "fragment");
    assert!(!o.db.exists(), "a usage error opens no database");
}

#[test]
fn client_add_rejects_relative_redirect_uri_even_after_a_good_one() {
    let o = Oauthd::new();
    let stderr = expect_exit(
        &o,
        &[
            "client",
            "add",
            "--name",
            "X",
            "--id",
            "x",
            "--redirect-uri",
            "https://a.example/cb",
            "--redirect-uri",
            "/relative/cb",
        ],
        2,
    );
    assert_usage_error(&stderr, "absolute");
    assert!(!o.db.exists(), "a usage error opens no database");
}

#[test]
fn client_add_rejects_duplicate_id() {
    let o = Oauthd::new();
    o.add_client("dup", &["https://a.example/cb"]);
    let before = o.json(&["client", "list"]);
    let stderr = expect_exit(
        &o,
        &[
            "client",
            "add",
            "--name",
            "Y",
            "--id",
            "dup",
            "--redirect-uri",
            "https://b.example/cb",
        ],
        1,
    );
    assert_one_line_error(&stderr, "already exists");
    assert_eq!(o.json(&["client", "list"]), before);
}

#[test]
fn client_add_rejects_bad_ids_and_unknown_brand() {
    let o = Oauthd::new();
    let long = "x".repeat(201);
    for bad in ["has space", "", long.as_str(), "tab\there"] {
        expect_exit(
            &o,
            &[
                "client",
                "add",
                "--name",
                "Y",
                "--id",
                bad,
                "--redirect-uri",
                "https://b.example/cb",
            ],
            2,
        );
    }
    let stderr = expect_exit(
        &o,
        &[
            "client",
            "add",
            "--name",
            "Y",
            "--brand",
            "nowhere.example",
            "--redirect-uri",
            "https://b.example/cb",
        ],
        1,
    );
    assert_one_line_error(&stderr, "no brand");
    assert!(client_ids(&o).is_empty());
}

#[test]
fn client_add_with_brand_refers_to_its_lowercase_domain() {
    let o = Oauthd::new();
    o.json(&["brand", "add", "login.example.com", "--name", "Example"]);
    o.json(&[
        "client",
        "add",
        "--name",
        "Y",
        "--id",
        "y",
        "--brand",
        "LOGIN.Example.com",
        "--redirect-uri",
        "https://b.example/cb",
    ]);
    assert_eq!(
        o.json(&["client", "show", "y"])["brand"],
        "login.example.com"
    );
}

#[test]
fn client_without_redirect_uri_is_a_usage_error() {
    let o = Oauthd::new();
    expect_exit(&o, &["client", "add", "--name", "Y"], 2);
}

#[test]
fn client_rotate_secret_prints_a_new_secret_and_refuses_public_clients() {
    let o = Oauthd::new();
    let old = o.add_client("conf", &["https://a.example/cb"]);
    let rotated = o.json(&["client", "rotate-secret", "conf"]);
    assert_eq!(rotated["client_id"], "conf");
    let new = rotated["client_secret"].as_str().expect("new secret");
    assert_ne!(new, old);
    o.add_public_client("pub", &["https://a.example/cb"], &[]);
    let stderr = expect_exit(&o, &["client", "rotate-secret", "pub"], 1);
    assert_one_line_error(&stderr, "public");
    expect_exit(&o, &["client", "rotate-secret", "missing"], 1);
}

#[test]
fn client_remove_deletes_it_and_unknown_ids_are_refused() {
    let o = Oauthd::new();
    o.add_client("gone", &["https://a.example/cb"]);
    o.add_client("kept", &["https://a.example/cb"]);
    assert!(o
        .ok(&["client", "remove", "gone"])
        .contains("removed client gone"));
    assert_eq!(client_ids(&o), ["kept"]);
    let stderr = expect_exit(&o, &["client", "remove", "gone"], 1);
    assert_one_line_error(&stderr, "no client");
    expect_exit(&o, &["client", "show", "gone"], 1);
    let events: Vec<String> = o
        .json(&["audit", "--client", "gone"])
        .as_array()
        .expect("array")
        .iter()
        .map(|e| e["event"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(events, ["client_add", "client_remove"]);
}
