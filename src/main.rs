//! oauthd: a small self-hosted OAuth 2.0 authorization server in one binary and one SQLite
//! file, compatible with the GroveStreams OAuth 2.0 API.
//!
//! Map of the crate (each layer imports only layers below it; `tests/it/architecture.rs`
//! checks there is no cycle):
//! - `cli`, `config`: the command line (clap types) and the validated settings built from it.
//! - `admin/`: the non-serve subcommands, synchronous, over the store.
//! - `server`: opening the store, the accept loop, shutdown; `conn_limit`: connections per
//!   client address; `routes`: the one route table and request log line.
//! - `endpoints/`: the HTTP handlers (`authorize`, `login_api`, `token` with its typed
//!   `token_request`, `token_management`, `resource`, `metadata`, `userinfo`).
//! - `app`: the shared `App` state handlers receive; `signin`: what the sign-in page and
//!   `/api/oauth_login` share; `client_auth`: client authentication; `brand`, `assets`:
//!   embedded pages, brand lookup and logos; `csrf`: the sign-in form's CSRF token;
//!   `session`: the browser session (SSO) cookie.
//! - `oauth/`: the rule book without I/O (redirect URIs, PKCE, scopes, introspection,
//!   grants and who gets a refresh token, token liveness, retention, and the code-exchange,
//!   refresh, revocation, device-poll, prompt and consent decisions as pure functions).
//! - `throttle`: login admission (failure budgets, lockouts, fair shares of the hashing
//!   pool); `rotation_clock`: monotonic times of refresh rotations (grace window).
//! - `http`: request parsing and response building; `error`: the only status-code mapping;
//!   `log_limit`: a repeated storage error logged once per interval.
//! - `password`: PBKDF2 hashing on its own threads; `secret`: randomness, token and
//!   secret generation, their digests, and the `Secret` type that never prints.
//! - `store/`: SQLite — open, migrations, typed verbs; the only place with SQL.
//! - `jose`: id_token signing keys and JWS (ring); `oidc_keys`: the server's signing keys,
//!   generated on first use, cached parsed.
//! - `email`: the folded key that is an email's identity; `fscheck`: network-FS refusal.
//! - `ops`: completions, man page and systemd unit; `sd_notify`: systemd readiness and
//!   watchdog.
//! - `tls/`: built-in HTTPS (rustls settings, certificate files and reloading, handshake).

// Request-controlled input must never reach an unwrap; tests may use them freely.
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]
#![warn(clippy::await_holding_lock, clippy::todo, clippy::dbg_macro)]

mod admin;
mod age;
mod app;
mod assets;
mod brand;
mod cli;
mod client_auth;
mod config;
mod conn_limit;
mod csrf;
mod device_memory;
mod email;
mod endpoints;
mod error;
mod fscheck;
mod http;
mod jose;
mod log_limit;
mod metrics;
mod oauth;
mod oidc_keys;
mod ops;
#[cfg(test)]
mod parser_props;
mod password;
mod rotation_clock;
mod routes;
mod sd_notify;
mod secret;
mod server;
mod session;
mod signin;
mod store;
mod throttle;
mod tls;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    store::files::create_private_files();
    init_logging();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Runtime(message)) => {
            let _ = writeln!(std::io::stderr(), "oauthd: {message}");
            ExitCode::from(1)
        }
        // Reported as clap reports its own usage errors: `error: …`, a usage hint, exit 2.
        Err(Failure::Usage(message)) => {
            use clap::CommandFactory;
            Cli::command()
                .error(clap::error::ErrorKind::ArgumentConflict, message)
                .exit()
        }
    }
}

/// Why a command failed: at run time (exit 1) or by a wrong combination of flags that
/// only the command itself can see (exit 2).
enum Failure {
    Runtime(String),
    Usage(String),
}

/// A run-time failure, as its one line.
fn runtime(error: impl std::fmt::Display) -> Failure {
    Failure::Runtime(error.to_string())
}

/// Runs one command; a failure comes back as the one line to print.
fn run(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        Command::Serve(args) => {
            let config =
                config::ServeConfig::new(cli.db, cli.pbkdf2_iterations, &args).map_err(runtime)?;
            server::serve(config).map_err(runtime)
        }
        Command::Completions { shell } => ops::completions(shell).map_err(runtime),
        Command::Man => ops::man().map_err(runtime),
        Command::SystemdUnit => ops::systemd_unit().map_err(runtime),
        command => {
            let context = admin::Context {
                db: cli.db,
                iterations: cli.pbkdf2_iterations,
                json: cli.json,
            };
            admin::run(command, &context).map_err(|e| match e {
                admin::AdminError::Usage(message) => Failure::Usage(message),
                e => runtime(e),
            })
        }
    }
}

/// Logs go to stderr (stdout is reserved for command output and the `listening on` line).
/// `RUST_LOG` overrides the default level: `LEVEL` or `TARGET=LEVEL,...` (a plain target
/// filter: `EnvFilter`'s span and field directives would link a regex engine, ~0.3 MB).
fn init_logging() {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = log_filter(std::env::var("RUST_LOG").ok().as_deref());
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .compact()
        .finish()
        .with(filter)
        .init();
}

/// The log filter for a `RUST_LOG` value: `info` when it is unset or does not parse.
fn log_filter(rust_log: Option<&str>) -> tracing_subscriber::filter::Targets {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    rust_log
        .and_then(|value| value.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(LevelFilter::INFO))
}

#[cfg(test)]
mod log_filter_tests {
    use super::log_filter;
    use tracing::Level;

    #[test]
    fn rust_log_values_pick_the_levels_they_name() {
        // (RUST_LOG, target, level, enabled?)
        let table: &[(Option<&str>, &str, Level, bool)] = &[
            (None, "oauthd::server", Level::INFO, true),
            (None, "oauthd::server", Level::DEBUG, false),
            (Some("debug"), "oauthd::server", Level::DEBUG, true),
            (Some("debug"), "oauthd::server", Level::TRACE, false),
            (Some("warn"), "oauthd::server", Level::INFO, false),
            (
                Some("warn,oauthd=trace"),
                "oauthd::server",
                Level::TRACE,
                true,
            ),
            (
                Some("warn,oauthd=trace"),
                "hyper::proto",
                Level::INFO,
                false,
            ),
            (Some("oauthd=debug"), "hyper::proto", Level::ERROR, false),
            // Not a target filter: the default, never "everything off".
            (
                Some("[span{x=1}]=debug"),
                "oauthd::server",
                Level::INFO,
                true,
            ),
            (
                Some("[span{x=1}]=debug"),
                "oauthd::server",
                Level::DEBUG,
                false,
            ),
        ];
        for &(rust_log, target, level, want) in table {
            let filter = log_filter(rust_log);
            assert_eq!(
                filter.would_enable(target, &level),
                want,
                "{rust_log:?} {target} {level}"
            );
        }
    }
}
