//! The operator's toolkit around the server: shell completions in a real bash, the man
//! page, `--help` examples, `--version` naming the commit, the systemd unit (checked by
//! `systemd-analyze` where it exists) and `sd_notify` readiness, client presets, the
//! release script's syntax, usage errors (exit 2), and progress on a terminal (none when
//! piped or with `--json`).

use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::{assert_usage_error, bin, expect_exit, path_in, Oauthd};

fn stdout_of(args: &[&str]) -> String {
    let out = Command::new(bin()).args(args).output().expect("run oauthd");
    assert!(out.status.success(), "oauthd {args:?}: {out:?}");
    String::from_utf8(out.stdout).expect("utf-8")
}

/// What bash's completion function offers for `words`, completing the last one.
fn bash_completes(words: &str) -> String {
    let script = format!(
        "source <('{bin}' completions bash) && COMP_WORDS=({words}) && \
         COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1)) && COMP_LINE=\"${{COMP_WORDS[*]}}\" && \
         COMP_POINT=${{#COMP_LINE}} && _oauthd oauthd \"${{COMP_WORDS[-1]}}\" \"${{COMP_WORDS[-2]}}\" && echo \"${{COMPREPLY[@]}}\"",
        bin = bin()
    );
    let out = Command::new("bash")
        .args(["-c", &script])
        .output()
        .expect("bash must be installed");
    assert!(out.status.success(), "bash: {out:?}");
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_owned()
}

#[test]
fn bash_completions_complete_subcommands_in_a_real_bash() {
    assert_eq!(bash_completes("oauthd us"), "user");
    assert_eq!(bash_completes("oauthd client up"), "update");
    assert_eq!(bash_completes("oauthd completions f"), "fish");
    for shell in ["zsh", "fish"] {
        assert!(
            stdout_of(&["completions", shell]).contains("systemd-unit"),
            "{shell}"
        );
    }
}

#[test]
fn man_page_and_help_describe_every_command_with_examples() {
    let man = stdout_of(&["man"]);
    assert!(
        man.starts_with(".ie") || man.contains(".TH oauthd 1"),
        "{man}"
    );
    for word in ["serve", "completions", "systemd\\-unit", "Examples:"] {
        assert!(man.contains(word), "man page lacks {word}");
    }
    let help = stdout_of(&["--help"]);
    assert!(
        help.contains("Examples:") && help.contains("oauthd user add"),
        "{help}"
    );
    let help = stdout_of(&["client", "add", "--help"]);
    assert!(help.contains("--preset alexa --vendor-id"), "{help}");
}

#[test]
fn version_names_the_commit() {
    let version = stdout_of(&["--version"]);
    let git = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output();
    let commit = match git {
        Ok(out) if out.status.success() => String::from_utf8(out.stdout).expect("utf-8"),
        _ => "unknown".to_owned(),
    };
    assert_eq!(
        version.trim(),
        format!(
            "oauthd {} (commit {})",
            env!("CARGO_PKG_VERSION"),
            commit.trim()
        )
    );
}

#[test]
fn the_release_script_is_valid_bash() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/build-release.sh");
    let out = Command::new("bash")
        .args(["-n", script])
        .output()
        .expect("bash");
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn systemd_unit_is_the_packaged_one_and_systemd_analyze_rates_it_ok() {
    let unit = stdout_of(&["systemd-unit"]);
    let packaged = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/packaging/oauthd.service"
    ))
    .expect("packaging/oauthd.service");
    assert_eq!(unit, packaged);
    for line in [
        "Type=notify",
        "AmbientCapabilities=CAP_NET_BIND_SERVICE",
        "CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
        "StateDirectory=oauthd",
        "User=oauthd",
    ] {
        assert!(unit.lines().any(|l| l == line), "unit lacks {line}");
    }
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped systemd-analyze checks: systemd-analyze is not installed");
        return;
    }
    // verify insists the ExecStart binary exists: point it at the one under test.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("oauthd.service");
    std::fs::write(&path, unit.replace("/usr/local/bin/oauthd", bin())).expect("write unit");
    let verify = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze verify");
    assert!(
        verify.status.success(),
        "systemd-analyze verify: {verify:?}"
    );
    let security = Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--no-pager"])
        .arg(&path)
        .output()
        .expect("systemd-analyze security");
    let text = String::from_utf8_lossy(&security.stdout);
    let overall = text
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| panic!("no overall rating: {security:?}"));
    eprintln!("{overall}");
    assert!(
        [" OK", " SAFE", " PERFECT"]
            .iter()
            .any(|level| overall.contains(level)),
        "rated worse than OK: {overall}"
    );
}

#[test]
fn serve_tells_systemd_it_is_ready_and_pings_the_watchdog() {
    let o = Oauthd::new();
    let socket_path = path_in(&o, "notify.sock");
    let socket = UnixDatagram::bind(&socket_path).expect("bind notify socket");
    socket
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let server = o.serve_with(
        &[],
        &[
            ("NOTIFY_SOCKET", socket_path.to_str().expect("utf-8")),
            ("WATCHDOG_USEC", "200000"),
        ],
    );
    let mut buf = [0u8; 256];
    let mut received = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !received.iter().any(|m: &String| m == "WATCHDOG=1") && Instant::now() < deadline {
        let n = socket.recv(&mut buf).expect("a notification within 60 s");
        received.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    assert_eq!(received[0], "READY=1\nSTATUS=serving", "{received:?}");
    assert!(received.contains(&"WATCHDOG=1".to_owned()), "{received:?}");
    let reply = crate::support::reply(crate::support::agent().get(server.url("/healthz")).call());
    assert_eq!(reply.status, 200, "ready means serving");
}

#[test]
fn alexa_preset_registers_three_regional_uris_and_prints_console_values() {
    let o = Oauthd::new();
    let added = o.json(&[
        "client",
        "add",
        "--name",
        "Skill",
        "--id",
        "alexa-skill",
        "--preset",
        "alexa",
        "--vendor-id",
        "M2ABCDEFGHIJKL",
        "--issuer",
        "https://auth.example.com/",
    ]);
    let uris = [
        "https://pitangui.amazon.com/api/skill/link/M2ABCDEFGHIJKL",
        "https://layla.amazon.com/api/skill/link/M2ABCDEFGHIJKL",
        "https://alexa.amazon.co.jp/api/skill/link/M2ABCDEFGHIJKL",
    ];
    assert_eq!(added["redirect_uris"], serde_json::json!(uris));
    assert!(added["client_secret"]
        .as_str()
        .is_some_and(|s| s.len() > 20));
    let console = &added["console"];
    assert_eq!(
        console["Authorization URI"],
        "https://auth.example.com/oauth/authorize"
    );
    assert_eq!(
        console["Access Token URI"],
        "https://auth.example.com/api/oauth_access_token"
    );
    assert_eq!(console["Your Client ID"], "alexa-skill");
    let shown = o.json(&["client", "show", "alexa-skill"]);
    assert_eq!(shown["public"], false);
    assert_eq!(shown["redirect_uris"], serde_json::json!(uris));

    let text = o.ok(&[
        "client",
        "add",
        "--name",
        "Action",
        "--preset",
        "google-home",
        "--project-id",
        "my-project-123",
    ]);
    for line in [
        "redirect_uri:  https://oauth-redirect.googleusercontent.com/r/my-project-123",
        "redirect_uri:  https://oauth-redirect-sandbox.googleusercontent.com/r/my-project-123",
        "  Token URL: https://YOUR-OAUTHD-HOST/oauth/token",
    ] {
        assert!(text.lines().any(|l| l == line), "lacks {line:?}:\n{text}");
    }
}

#[test]
fn preset_misuse_is_refused_and_registers_nothing() {
    let o = Oauthd::new();
    let base = ["client", "add", "--name", "S", "--preset"];
    for extra in [
        &["alexa"][..],
        &["alexa", "--vendor-id", "M2/../x"],
        &["alexa", "--vendor-id", "M2", "--public"],
        &["alexa", "--project-id", "p"],
        &["alexa", "--vendor-id", "M2", "--project-id", "p"],
        &["google-home"],
        &["google-home", "--vendor-id", "M2"],
        &["google-home", "--project-id", "p", "--vendor-id", "M2"],
    ] {
        let args: Vec<&str> = base.iter().chain(extra).copied().collect();
        assert_usage_error(&expect_exit(&o, &args, 2), "");
    }
    // No database (SQLite), an empty one (PostgreSQL: `client list` refuses it), or no
    // client in it.
    let created = match &o.pg {
        Some(_) => o.sql("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") != "0",
        None => o.db.exists(),
    };
    if created {
        assert_eq!(o.json(&["client", "list"]), serde_json::json!([]));
    }
}

/// Bad values and flags that do not go together are usage errors (exit 2, clap's
/// `error: …` report), whether clap or the command itself sees them, and change nothing.
#[test]
fn client_add_flag_misuse_is_a_usage_error_and_changes_nothing() {
    let o = Oauthd::new();
    let base = [
        "client",
        "add",
        "--name",
        "S",
        "--redirect-uri",
        "https://a.example/cb",
    ];
    for (extra, says) in [
        (&["--scope", "a\"b"][..], "not a valid scope name"),
        (
            &["--allowed-origin", "https://a.example/x"],
            "not an origin",
        ),
        (&["--post-logout-redirect-uri", "nope"], "absolute URI"),
        // An id flag without its preset.
        (&["--vendor-id", "M2"], "--preset"),
        (&["--project-id", "p"], "--preset"),
        (
            &["--grant", "client_credentials", "--public"],
            "needs a confidential client",
        ),
    ] {
        let args: Vec<&str> = base.iter().chain(extra).copied().collect();
        assert_usage_error(&expect_exit(&o, &args, 2), says);
    }
    let no_uri = [
        "client",
        "add",
        "--name",
        "S",
        "--grant",
        "authorization_code",
    ];
    assert_usage_error(
        &expect_exit(&o, &no_uri, 2),
        "needs at least one --redirect-uri",
    );
    // No database (SQLite), an empty one (PostgreSQL: `client list` refuses it), or no
    // client in it.
    let created = match &o.pg {
        Some(_) => o.sql("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") != "0",
        None => o.db.exists(),
    };
    if created {
        assert_eq!(o.json(&["client", "list"]), serde_json::json!([]));
    }
}

#[test]
fn backup_and_check_print_no_progress_when_piped() {
    crate::support::sqlite_only!();
    let o = Oauthd::new();
    o.add_user("ann@example.com", "pw");
    let dest = path_in(&o, "copy.db");
    for args in [
        vec!["backup", dest.to_str().expect("utf-8")],
        vec!["check"],
        vec!["check", "--json"],
    ] {
        let out = o.cli(&args);
        assert!(out.status.success(), "{args:?}: {out:?}");
        assert!(out.stderr.is_empty(), "{args:?} wrote to stderr: {out:?}");
        let stdout = String::from_utf8(out.stdout).expect("utf-8");
        assert!(
            !stdout.contains('\r') && !stdout.contains('\u{1b}'),
            "{stdout:?}"
        );
    }
}

/// Runs `oauthd ARGS` on the test's database with a terminal as stdin, stdout and stderr
/// (util-linux `script`), and returns everything the terminal showed.
fn on_a_terminal(o: &Oauthd, args: &[&str]) -> String {
    let db = o.db_arg();
    let quoted: Vec<String> = [bin(), "--db", db.to_str().expect("utf-8")]
        .iter()
        .chain(args)
        .map(|arg| format!("'{}'", arg.replace('\'', r"'\''")))
        .collect();
    let out = Command::new("script")
        .args(["-qec", &quoted.join(" "), "/dev/null"])
        .env("OAUTHD_PBKDF2_ITERATIONS", "1000")
        .output()
        .expect("util-linux `script` runs oauthd on a terminal (Debian's bsdutils)");
    assert!(out.status.success(), "{args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn backup_and_check_show_progress_on_a_terminal_but_not_with_json() {
    crate::support::sqlite_only!();
    let o = Oauthd::new();
    o.add_user("ann@example.com", "pw");
    let dest = path_in(&o, "copy.db");
    let backup = on_a_terminal(&o, &["backup", dest.to_str().expect("utf-8")]);
    assert!(backup.contains("backing up to"), "{backup:?}");
    let check = on_a_terminal(&o, &["check"]);
    assert!(check.contains("checking integrity"), "{check:?}");
    // The spinner is cleared when the work ends, before the result is printed.
    assert!(check.contains("\u{1b}[2K"), "{check:?}");
    assert!(check.contains("integrity: ok"), "{check:?}");
    let json = on_a_terminal(&o, &["check", "--json"]);
    assert!(
        !json.contains("checking") && !json.contains('\u{1b}'),
        "{json:?}"
    );
}
