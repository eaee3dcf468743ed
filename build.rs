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
}

/// The trimmed output of a successful git command, or `None` (no git, not a checkout).
fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let text = text.trim();
    (out.status.success() && !text.is_empty()).then(|| text.to_owned())
}
