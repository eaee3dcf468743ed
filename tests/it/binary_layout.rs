//! The executable's layout that keeps a quiet server's resident memory small (checked on
//! the binary the other tests run; Linux, binutils' `readelf` and `nm`): code that never
//! runs while serving sits in `.text.cold` after the rest (link/cold-code.ld), and a glibc
//! build stores its start-up relocations packed (DT_RELR). See README, "Where the size
//! goes".

use std::process::Command;

/// `program ARGS... BIN`'s stdout; fails clearly when binutils is missing.
fn inspect(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .arg(crate::support::bin())
        .output()
        .unwrap_or_else(|e| panic!("{program} (binutils) is required for this test: {e}"));
    assert!(out.status.success(), "{program} {args:?} failed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The `.text.cold` section's address range.
fn cold_range() -> std::ops::Range<u64> {
    let sections = inspect("readelf", &["-SW"]);
    let line = sections
        .lines()
        .find(|line| line.contains(" .text.cold "))
        .unwrap_or_else(|| panic!("no .text.cold section:\n{sections}"));
    let fields: Vec<&str> = line.split_whitespace().collect();
    let at = fields
        .iter()
        .position(|f| *f == ".text.cold")
        .expect("name");
    let number = |i: usize| u64::from_str_radix(fields[i], 16).expect("hex field");
    let (address, size) = (number(at + 2), number(at + 4));
    address..address + size
}

#[test]
fn code_that_never_serves_is_linked_after_the_request_path() {
    let cold = cold_range();
    let symbols = inspect("nm", &["--defined-only"]);
    let (mut cold_names, mut hot_names) = (Vec::new(), Vec::new());
    for line in symbols.lines() {
        let mut fields = line.split_whitespace();
        let (Some(address), Some(kind), Some(name)) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        if !kind.eq_ignore_ascii_case("t") {
            continue;
        }
        let Ok(address) = u64::from_str_radix(address, 16) else {
            continue;
        };
        if cold.contains(&address) {
            cold_names.push(name);
        } else {
            hot_names.push(name);
        }
    }
    // The operator CLI, the ACME client, RSA key generation and the man page are cold.
    for wanted in [
        "6oauthd5admin5users",
        "12instant_acme",
        "3rsa",
        "11clap_mangen",
    ] {
        assert!(
            cold_names
                .iter()
                .any(|n| n.starts_with(&format!("_ZN{wanted}"))),
            "nothing of {wanted} in .text.cold"
        );
        assert!(
            !hot_names
                .iter()
                .any(|n| n.starts_with(&format!("_ZN{wanted}"))),
            "some of {wanted} outside .text.cold"
        );
    }
    // The request path never is: handlers, the server loop, hyper, SQLite, rustls.
    for request_path in [
        "_ZN6oauthd9endpoints",
        "_ZN6oauthd6server",
        "_ZN5hyper",
        "_ZN6rustls",
        "sqlite3_step",
    ] {
        assert!(
            !cold_names.iter().any(|n| n.starts_with(request_path)),
            "{request_path} is in .text.cold"
        );
        assert!(
            hot_names.iter().any(|n| n.starts_with(request_path)),
            "no {request_path} symbol found at all"
        );
    }
}

#[test]
fn glibc_builds_pack_their_relocations() {
    if !cfg!(all(target_os = "linux", target_env = "gnu")) {
        return; // static and non-glibc builds keep the classic table (build.rs)
    }
    let dynamic = inspect("readelf", &["-dW"]);
    assert!(dynamic.contains("(RELR)"), "no DT_RELR entry:\n{dynamic}");
}
