//! Build script: names the commit in `oauthd --version` (env `OAUTHD_COMMIT` at compile
//! time). It asks `git rev-parse --short HEAD`; a build from a tarball (no git, no .git)
//! says `unknown` instead, or whatever `OAUTHD_COMMIT` the packager sets.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=OAUTHD_COMMIT");
    let commit = std::env::var("OAUTHD_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(|| git(&["rev-parse", "--short", "HEAD"]))
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=OAUTHD_COMMIT={commit}");
    // Rebuild when HEAD moves: HEAD itself, the branch it names, and packed refs.
    // Only existing files: cargo treats a missing one as changed on every build.
    let branch = git(&["symbolic-ref", "-q", "HEAD"]);
    let watched = ["HEAD", branch.as_deref().unwrap_or("HEAD"), "packed-refs"];
    for name in watched {
        if let Some(path) = git(&["rev-parse", "--git-path", name]) {
            if std::path::Path::new(&path).exists() {
                println!("cargo:rerun-if-changed={path}");
            }
        }
    }
    // And when this script changes (without git, only then).
    println!("cargo:rerun-if-changed=build.rs");
    pack_relative_relocations();
    cold_code_last();
}

/// Links the code that never runs while serving after the rest (see link/cold-code.ld).
/// Only where it has been measured: dynamically linked x86_64 glibc (rustc links it with
/// LLD); the static targets of scripts/build-release.sh keep the default layout.
fn cold_code_last() {
    println!("cargo:rerun-if-changed=link/cold-code.ld");
    if dynamic_glibc() && std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("x86_64") {
        let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
        println!("cargo:rustc-link-arg-bins=-Wl,-T,{dir}/link/cold-code.ld");
    }
}

/// Dynamically linked glibc builds store their ~12 000 start-up relocations packed
/// (DT_RELR, glibc ≥ 2.36, binutils ≥ 2.38 or LLD): 3 KB instead of a 0.3 MB table that
/// the loader reads at every start. Static builds (musl, `+crt-static`) keep the table.
fn pack_relative_relocations() {
    if dynamic_glibc() {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}

/// Whether the target is Linux with glibc, linked dynamically (not `+crt-static`).
fn dynamic_glibc() -> bool {
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    var("CARGO_CFG_TARGET_OS") == "linux"
        && var("CARGO_CFG_TARGET_ENV") == "gnu"
        && !var("CARGO_CFG_TARGET_FEATURE")
            .split(',')
            .any(|f| f == "crt-static")
}

/// The trimmed output of a successful git command, or `None` (no git, not a checkout).
fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let text = text.trim();
    (out.status.success() && !text.is_empty()).then(|| text.to_owned())
}
