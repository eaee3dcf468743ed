//! The command line, as clap types only. `config.rs` turns these into validated settings;
//! nothing else imports clap. Every `serve` flag can also come from an `OAUTHD_*`
//! environment variable.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::admin::{since, validate};
use crate::password::{DEFAULT_ITERATIONS, MIN_ITERATIONS};
use crate::store::Location;

/// `--db`: an SQLite file path or a `postgres://` URL.
fn db_arg(value: &str) -> Result<Location, String> {
    Location::parse(value)
}

/// `oauthd --version`: the crate version and the commit it was built from.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("OAUTHD_COMMIT"),
    ")"
);

#[derive(Debug, Parser)]
#[command(
    name = "oauthd",
    about = "A small self-hosted OAuth 2.0 authorization server",
    version = VERSION,
    after_help = EXAMPLES
)]
pub struct Cli {
    /// The SQLite database file (created with the schema on first use), or a PostgreSQL
    /// database as `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE` (migrated on first use).
    #[arg(long, env = "OAUTHD_DB", default_value = "oauthd.db", global = true, value_parser = db_arg)]
    pub db: Location,

    /// PBKDF2 iterations for password hashes created from now on.
    #[arg(
        long,
        env = "OAUTHD_PBKDF2_ITERATIONS",
        default_value_t = DEFAULT_ITERATIONS,
        value_parser = clap::value_parser!(u32).range(i64::from(MIN_ITERATIONS)..),
        global = true
    )]
    pub pbkdf2_iterations: u32,

    /// Print one JSON document on stdout instead of text.
    #[arg(long, global = true)]
    pub json: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server.
    Serve(ServeArgs),
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage OAuth clients.
    #[command(subcommand)]
    Client(ClientCommand),
    /// Manage brands (per-domain name, logo and colour on the sign-in page).
    #[command(subcommand)]
    Brand(BrandCommand),
    /// Manage organizations and their members.
    #[command(subcommand)]
    Org(OrgCommand),
    /// Revoke tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// id_token signing keys: list them, or rotate.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Write a consistent copy of the live database to DEST (safe while serving).
    Backup {
        /// Where to write the copy.
        dest: PathBuf,
        /// Overwrite DEST if it exists.
        #[arg(long)]
        force: bool,
    },
    /// Check the database's integrity and print a summary; fails on a TLS certificate
    /// (stored by ACME, or --tls-cert) expiring within 14 days.
    Check {
        /// Also check this PEM certificate file (as `serve --tls-cert`).
        #[arg(long, env = "OAUTHD_TLS_CERT")]
        tls_cert: Option<PathBuf>,
    },
    /// Put BACKUP in place of the database (--db): refuses while a server runs on it,
    /// checks the backup, moves the old .db, -wal and -shm aside (kept), then runs check.
    Restore {
        /// The backup file to restore (only read).
        backup: PathBuf,
    },
    /// Show the audit trail (`audit prune` deletes old rows).
    #[command(args_conflicts_with_subcommands = true, after_help = AUDIT_EXAMPLES)]
    Audit {
        #[command(subcommand)]
        action: Option<AuditCommand>,
        /// Only events of this user (email).
        #[arg(long)]
        user: Option<String>,
        /// Only events of this client id.
        #[arg(long)]
        client: Option<String>,
        /// Only events at or after this time: RFC 3339 date/time, a date, or an age such as 15m, 2h, 7d.
        #[arg(long, value_parser = since::arg)]
        since: Option<i64>,
        /// At most this many (the newest).
        #[arg(long)]
        limit: Option<u32>,
    },
    /// Print shell completions (bash, zsh or fish) on stdout.
    #[command(after_help = COMPLETIONS_EXAMPLES)]
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) on stdout.
    #[command(after_help = "Example:\n  oauthd man > /usr/local/share/man/man1/oauthd.1")]
    Man,
    /// Print a hardened systemd unit for `oauthd serve` (Type=notify, port 443 only).
    #[command(after_help = "Example:\n  oauthd systemd-unit > /etc/systemd/system/oauthd.service")]
    SystemdUnit,
    /// HTTPS certificates obtained by ACME.
    #[command(subcommand)]
    Tls(TlsCommand),
    /// Copy the SQLite database (--db) into an empty PostgreSQL database, in one
    /// transaction, and check each table's row count (needs the `postgres` build).
    #[command(
        after_help = "Example:\n  oauthd --db /var/lib/oauthd/oauthd.db migrate --to postgres://oauthd@db.example/oauthd"
    )]
    Migrate {
        /// The PostgreSQL database to fill: postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE.
        #[arg(long, value_parser = postgres_url)]
        to: String,
    },
}

/// `migrate --to`: a PostgreSQL URL, and only in a build with PostgreSQL.
fn postgres_url(value: &str) -> Result<String, String> {
    if !cfg!(feature = "postgres") {
        return Err("this oauthd was built without PostgreSQL (cargo feature `postgres`)".into());
    }
    let lower = value.to_ascii_lowercase();
    if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
        Ok(value.to_owned())
    } else {
        Err("expected a postgres://… URL".into())
    }
}

#[derive(Debug, Subcommand)]
pub enum TlsCommand {
    /// The stored certificates: domains, issuer, not-after, next renewal, last error.
    Status,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Delete audit rows older than DURATION now, in small transactions (a running server
    /// also does this by itself, see `serve --audit-retention`).
    Prune {
        /// A count and a unit: 90d, 52w, 365d.
        #[arg(long, value_parser = crate::age::positive)]
        older_than: std::time::Duration,
    },
}

/// `oauthd --help` examples: the first steps.
const EXAMPLES: &str = "Examples:
  oauthd serve --listen 127.0.0.1:8080 --issuer https://auth.example.com
  oauthd user add you@example.com --name \"You\"
  oauthd client add --name \"My app\" --redirect-uri https://app.example.com/callback
  oauthd client add --name \"My skill\" --preset alexa --vendor-id M2ABCDEFGHIJKL
  oauthd --db /var/lib/oauthd/oauthd.db backup /backups/oauthd.db";

const AUDIT_EXAMPLES: &str = "Examples:
  oauthd audit --since 2h
  oauthd audit --user you@example.com --since 2026-11-28 --limit 20 --json";

const COMPLETIONS_EXAMPLES: &str = "Examples:
  source <(oauthd completions bash)
  oauthd completions zsh > \"${fpath[1]}/_oauthd\"
  oauthd completions fish > ~/.config/fish/completions/oauthd.fish";

const CLIENT_ADD_EXAMPLES: &str = "Examples:
  oauthd client add --name \"My app\" --redirect-uri https://app.example.com/callback
  oauthd client add --name \"SPA\" --public --require-pkce --redirect-uri https://spa.example.com/
  oauthd client add --name \"My skill\" --id alexa-skill --preset alexa --vendor-id M2ABCDEFGHIJKL
  oauthd client add --name \"My action\" --preset google-home --project-id my-project-123";

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, env = "OAUTHD_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Public base URL used in metadata (default http://<listen>).
    #[arg(long, env = "OAUTHD_ISSUER", value_parser = validate::issuer_arg)]
    pub issuer: Option<String>,
    /// Authorization code lifetime in seconds.
    #[arg(long, env = "OAUTHD_CODE_TTL", default_value_t = 3600, value_parser = clap::value_parser!(u32).range(1..))]
    pub code_ttl: u32,
    /// Access token lifetime in seconds.
    #[arg(long, env = "OAUTHD_ACCESS_TTL", default_value_t = 86400, value_parser = clap::value_parser!(u32).range(1..))]
    pub access_ttl: u32,
    /// Refresh token lifetime in seconds; 0 = never expires.
    #[arg(long, env = "OAUTHD_REFRESH_TTL", default_value_t = 0)]
    pub refresh_ttl: u32,
    /// How long a rotated-out refresh token may be retried while its successor is unused.
    #[arg(long, env = "OAUTHD_REFRESH_GRACE", default_value_t = 300)]
    pub refresh_grace: u32,
    /// On SIGINT/SIGTERM, wait at most this many seconds for requests in flight (queued
    /// password hashes are cancelled at once).
    #[arg(long, env = "OAUTHD_SHUTDOWN_TIMEOUT", default_value_t = 10)]
    pub shutdown_timeout: u32,
    /// Start even if the database is on a network or FUSE filesystem (unsafe locking).
    #[arg(long, env = "OAUTHD_ALLOW_NETWORK_FS")]
    pub allow_network_fs: bool,
    /// Behind a reverse proxy on this host: for connections from a loopback address, take
    /// the client's address from the last X-Forwarded-For entry (for throttling and the
    /// audit trail).
    #[arg(long, env = "OAUTHD_TRUST_FORWARDED_FOR")]
    pub trust_forwarded_for: bool,
    /// Connections one client address (IPv6: one /64) may hold open at once; more are
    /// closed at once. Loopback peers are exempt under --trust-forwarded-for.
    #[arg(long, env = "OAUTHD_MAX_CONNECTIONS_PER_IP", default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections_per_ip: u32,
    /// Connections open at once in total; further clients wait in the kernel's queue.
    #[arg(long, env = "OAUTHD_MAX_CONNECTIONS", default_value_t = 4096, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,
    /// Device grant (RFC 8628): how long a device code and its user code live, in seconds.
    #[arg(long, env = "OAUTHD_DEVICE_CODE_TTL", default_value_t = 600, value_parser = clap::value_parser!(u32).range(1..))]
    pub device_code_ttl: u32,
    /// Device grant: the seconds a device is told to wait between polls.
    #[arg(long, env = "OAUTHD_DEVICE_INTERVAL", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=3600))]
    pub device_interval: u32,
    /// Browser sessions (single sign-on) last at most this many seconds after the sign-in
    /// (default 7 days); 0 turns them off (every authorization shows the form).
    #[arg(long, env = "OAUTHD_SESSION_TTL", default_value_t = 604_800)]
    pub session_ttl: u32,
    /// A browser session unused for this many seconds ends (default 1 day).
    #[arg(long, env = "OAUTHD_SESSION_IDLE", default_value_t = 86_400, value_parser = clap::value_parser!(u32).range(1..))]
    pub session_idle: u32,
    /// Serve Prometheus metrics at http://ADDR/metrics (off by default); port 0 picks a
    /// free port, logged as `metrics listening`.
    #[arg(long, env = "OAUTHD_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Delete audit rows older than this (a count and a unit: 90d, 52w, 365d).
    #[arg(long, env = "OAUTHD_AUDIT_RETENTION", default_value = "365d", value_parser = crate::age::positive)]
    pub audit_retention: std::time::Duration,
    /// Serve HTTPS with this PEM certificate file (the leaf, then its chain); reloaded
    /// on SIGHUP. Needs --tls-key.
    #[arg(long, env = "OAUTHD_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, env = "OAUTHD_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Serve HTTPS with a certificate for this domain obtained and renewed by ACME and
    /// kept in the database; repeat for more names (env: comma-separated). The first one
    /// is the default issuer.
    #[arg(long, env = "OAUTHD_ACME_DOMAIN", value_delimiter = ',', conflicts_with = "tls_cert", value_parser = crate::tls::acme::domain_arg)]
    pub acme_domain: Vec<String>,
    /// The contact address given to the ACME server (expiry warnings).
    #[arg(long, env = "OAUTHD_ACME_EMAIL", requires = "acme_domain", value_parser = validate::email_arg)]
    pub acme_email: Option<String>,
    /// The ACME server's directory URL.
    #[arg(long, env = "OAUTHD_ACME_DIRECTORY", default_value = crate::tls::acme::LETS_ENCRYPT, value_parser = crate::tls::acme::directory_arg)]
    pub acme_directory: String,
    /// An extra PEM root certificate to trust for the ACME server's HTTPS (private CAs).
    #[arg(long, env = "OAUTHD_ACME_CA_ROOT", requires = "acme_domain")]
    pub acme_ca_root: Option<PathBuf>,
    /// Also listen for plain HTTP here (e.g. 0.0.0.0:80): answers ACME HTTP-01
    /// challenges (used instead of TLS-ALPN-01) and 308-redirects everything else to https.
    #[arg(long, env = "OAUTHD_HTTP_LISTEN", requires = "acme_domain")]
    pub http_listen: Option<SocketAddr>,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user.
    Add {
        /// The user's email (their sign-in name).
        #[arg(value_parser = validate::email_arg)]
        email: String,
        /// A display name.
        #[arg(long, value_parser = validate::name_arg)]
        name: Option<String>,
        /// Read the password from one line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users.
    List,
    /// Show one user.
    Show {
        /// The user's email.
        email: String,
    },
    /// Set a new password; revokes every token of the user.
    Passwd {
        /// The user's email.
        email: String,
        /// Read the password from one line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Disable a user: no login, every token stops working.
    Disable {
        /// The user's email.
        email: String,
    },
    /// Enable a disabled user.
    Enable {
        /// The user's email.
        email: String,
    },
    /// Remove a user and everything issued to them.
    Remove {
        /// The user's email.
        email: String,
    },
    /// Change a user's email or name; their tokens stay valid.
    #[command(group(clap::ArgGroup::new("change").required(true).multiple(true).args(["new_email", "name", "no_name"])))]
    Update {
        /// The user's current email.
        email: String,
        /// The new email (the account keeps its id, password and tokens).
        #[arg(long = "email", value_name = "NEW_EMAIL", value_parser = validate::email_arg)]
        new_email: Option<String>,
        /// The new display name.
        #[arg(long, value_parser = validate::name_arg, conflicts_with = "no_name")]
        name: Option<String>,
        /// Clear the display name.
        #[arg(long)]
        no_name: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Register a client.
    #[command(after_help = CLIENT_ADD_EXAMPLES)]
    Add(ClientAddArgs),
    /// List clients (never shows secrets).
    List,
    /// Show one client (never shows its secret).
    Show {
        /// The client's id.
        id: String,
    },
    /// Remove a client and revoke all its tokens.
    Remove {
        /// The client's id.
        id: String,
    },
    /// Generate a new secret (printed once); the old one stops working.
    RotateSecret {
        /// The client's id.
        id: String,
    },
    /// Change a client's name, redirect URIs, brand, flags, grants, scopes or origins.
    Update(ClientUpdateArgs),
    /// Why did a link fail: the client's last authorization, token-endpoint and device-page
    /// attempts, newest first, each with its outcome and exact reason (never a secret, code
    /// or token).
    #[command(after_help = CLIENT_LOG_EXAMPLES)]
    Log {
        /// The client's id.
        id: String,
        /// Only attempts at or after this time: RFC 3339 date/time, a date, or an age such as 15m, 2h, 7d.
        #[arg(long, value_parser = since::arg)]
        since: Option<i64>,
        /// At most this many (the newest).
        #[arg(long)]
        limit: Option<u32>,
    },
}

const CLIENT_LOG_EXAMPLES: &str = "Examples:
  oauthd client log alexa-skill
  oauthd client log alexa-skill --since 1h --limit 20 --json";

/// What `client update` is asked to change; at least one change.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("change").required(true).multiple(true).args([
    "name", "add_redirect_uris", "remove_redirect_uris", "brand", "no_brand", "require_pkce", "introspect_any",
    "add_grants", "remove_grants", "scopes", "any_scope", "add_allowed_origins", "remove_allowed_origins",
])))]
pub struct ClientUpdateArgs {
    /// The client's id.
    pub id: String,
    /// The new display name.
    #[arg(long, value_parser = validate::name_arg)]
    pub name: Option<String>,
    /// Register another redirect URI; repeat for several.
    #[arg(long = "add-redirect-uri", value_name = "URI", value_parser = validate::redirect_uri_arg)]
    pub add_redirect_uris: Vec<String>,
    /// Unregister a redirect URI; repeat for several (at least one must remain).
    #[arg(long = "remove-redirect-uri", value_name = "URI", value_parser = validate::redirect_uri_arg)]
    pub remove_redirect_uris: Vec<String>,
    /// Use this brand's look on the client's sign-in page.
    #[arg(long, value_name = "DOMAIN", value_parser = validate::domain, conflicts_with = "no_brand")]
    pub brand: Option<String>,
    /// Stop using a brand: the default look (or the Host's brand) applies.
    #[arg(long)]
    pub no_brand: bool,
    /// Whether authorization requests must carry a PKCE challenge.
    #[arg(long, value_name = "BOOL")]
    pub require_pkce: Option<bool>,
    /// Whether it may introspect every client's tokens (confidential clients only).
    #[arg(long, value_name = "BOOL")]
    pub introspect_any: Option<bool>,
    /// Let it use another grant type; repeat for several.
    #[arg(long = "add-grant", value_name = "GRANT", value_enum)]
    pub add_grants: Vec<GrantArg>,
    /// Stop it using a grant type; repeat for several (at least one must remain).
    #[arg(long = "remove-grant", value_name = "GRANT", value_enum)]
    pub remove_grants: Vec<GrantArg>,
    /// Replace the scopes it may be given (space-separated or repeated).
    #[arg(long = "scope", value_parser = validate::scope_arg, conflicts_with = "any_scope")]
    pub scopes: Vec<String>,
    /// Lift its scope restriction: it may be given any scope.
    #[arg(long)]
    pub any_scope: bool,
    /// Allow another browser origin (CORS, exact match); repeat for several.
    #[arg(long = "add-allowed-origin", value_name = "ORIGIN", value_parser = validate::origin)]
    pub add_allowed_origins: Vec<String>,
    /// Stop allowing a browser origin; repeat for several.
    #[arg(long = "remove-allowed-origin", value_name = "ORIGIN", value_parser = validate::origin)]
    pub remove_allowed_origins: Vec<String>,
}

/// What `client add` is asked for, before any check (`admin/clients.rs` checks it).
#[derive(Debug, Args)]
pub struct ClientAddArgs {
    /// A display name.
    #[arg(long, value_parser = validate::name_arg)]
    pub name: String,
    /// Absolute redirect URI without fragment; repeat for several. Required unless a
    /// `--preset` gives them or the `--grant`s leave out authorization_code.
    #[arg(long = "redirect-uri", required_unless_present_any = ["grants", "preset"], num_args = 1.., value_parser = validate::redirect_uri_arg)]
    pub redirect_uris: Vec<String>,
    /// Client id (default: random).
    #[arg(long, value_parser = validate::client_id_arg)]
    pub id: Option<String>,
    /// A public client (no secret), e.g. a mobile or single-page app.
    #[arg(long)]
    pub public: bool,
    /// Refuse authorization requests without a PKCE challenge.
    #[arg(long)]
    pub require_pkce: bool,
    /// A resource server: may introspect every client's tokens (otherwise a client
    /// introspects only its own). Confidential clients only.
    #[arg(long, conflicts_with = "public")]
    pub introspect_any: bool,
    /// Brand domain whose look this client's sign-in page uses by default.
    #[arg(long, value_parser = validate::domain)]
    pub brand: Option<String>,
    /// A grant type it may use; repeat for several (default: authorization_code and
    /// refresh_token). client_credentials needs a confidential client.
    #[arg(long = "grant", value_enum)]
    pub grants: Vec<GrantArg>,
    /// A scope it may be given (space-separated or repeated); without any, no restriction.
    #[arg(long = "scope", value_parser = validate::scopes_arg)]
    pub scopes: Vec<String>,
    /// A browser origin (scheme://host[:port]) allowed to call the token endpoints for it
    /// (CORS), matched exactly; repeat for several.
    #[arg(long = "allowed-origin", value_parser = validate::origin)]
    pub allowed_origins: Vec<String>,
    /// Where RP-initiated logout may send the browser back afterwards (exact match);
    /// repeat for several.
    #[arg(long = "post-logout-redirect-uri", value_parser = validate::redirect_uri_arg)]
    pub post_logout_redirect_uris: Vec<String>,
    /// Register a platform's redirect URIs as a confidential client and print what to
    /// paste into its console.
    #[arg(long, value_enum, conflicts_with = "public")]
    pub preset: Option<Preset>,
    /// The Alexa vendor id (the M… part of the console's Alexa Redirect URLs).
    #[arg(long, requires = "preset", conflicts_with = "project_id", required_if_eq("preset", "alexa"), value_parser = validate::url_segment_arg)]
    pub vendor_id: Option<String>,
    /// The Google Cloud project id (Google Home cloud-to-cloud account linking).
    #[arg(long, requires = "preset", required_if_eq("preset", "google-home"), value_parser = validate::url_segment_arg)]
    pub project_id: Option<String>,
    /// This server's public URL, for the values a preset prints.
    #[arg(long, env = "OAUTHD_ISSUER", value_parser = validate::issuer_arg)]
    pub issuer: Option<String>,
    /// The algorithm that signs this client's id_tokens.
    #[arg(long, value_enum, default_value_t = IdTokenAlg::Rs256)]
    pub id_token_alg: IdTokenAlg,
    /// First-party (trusted, no consent screen): true or false.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub first_party: bool,
}

/// The grant types `client add --grant` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GrantArg {
    /// The authorization code flow (browser redirect).
    #[value(name = "authorization_code")]
    AuthorizationCode,
    /// Refreshing tokens.
    #[value(name = "refresh_token")]
    RefreshToken,
    /// A confidential client acting as itself.
    #[value(name = "client_credentials")]
    ClientCredentials,
    /// Devices without a browser (RFC 8628).
    #[value(
        name = "device_code",
        alias = "urn:ietf:params:oauth:grant-type:device_code"
    )]
    DeviceCode,
}

/// A platform whose account linking `client add --preset` sets up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Preset {
    /// Amazon Alexa skills: the three regional redirect URIs.
    Alexa,
    /// Google Home (cloud-to-cloud): the production and sandbox redirect URIs.
    GoogleHome,
}

/// id_token signing algorithms, by their JWA names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum IdTokenAlg {
    /// RSA with SHA-256 (every relying party supports it).
    #[value(name = "RS256")]
    Rs256,
    /// ECDSA P-256 with SHA-256.
    #[value(name = "ES256")]
    Es256,
    /// Ed25519.
    #[value(name = "EdDSA")]
    EdDsa,
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// List the signing keys: kid, algorithm, phase, and when each signs or leaves the JWKS.
    List,
    /// Add a new key for each algorithm in use (or --alg): published at once, signing after
    /// --signing-delay; the old key stays published until its id_tokens have expired.
    Rotate {
        /// Rotate only this algorithm's key (default: every algorithm in use).
        #[arg(long, value_enum)]
        alg: Option<IdTokenAlg>,
        /// Seconds between publishing the new key and signing with it (relying parties
        /// refresh their cached JWKS meanwhile).
        #[arg(long, default_value_t = 86400)]
        signing_delay: u32,
    },
}

#[derive(Debug, Subcommand)]
pub enum BrandCommand {
    /// Add a brand for a domain.
    Add {
        /// The host name whose requests get this look (Host header, without port).
        #[arg(value_parser = validate::domain)]
        domain: String,
        /// The name shown on the sign-in page.
        #[arg(long, value_parser = validate::name_arg)]
        name: String,
        /// PNG, JPEG, SVG or WebP file, at most 512 KiB.
        #[arg(long)]
        logo: Option<PathBuf>,
        /// Accent colour, #rgb or #rrggbb.
        #[arg(long, value_parser = validate::color)]
        color: Option<String>,
    },
    /// List brands.
    List,
    /// Remove a brand (refused while clients use it, unless --force).
    Remove {
        /// The brand's domain.
        #[arg(value_parser = validate::domain)]
        domain: String,
        /// Remove it even if clients use it; they fall back to the default look.
        #[arg(long)]
        force: bool,
    },
    /// Replace a brand's logo.
    SetLogo {
        /// The brand's domain.
        domain: String,
        /// PNG, JPEG, SVG or WebP file, at most 512 KiB.
        file: PathBuf,
    },
    /// Change a brand's name or colour.
    #[command(group(clap::ArgGroup::new("change").required(true).multiple(true).args(["name", "color", "no_color"])))]
    Update {
        /// The brand's domain.
        #[arg(value_parser = validate::domain)]
        domain: String,
        /// The new name shown on the sign-in page.
        #[arg(long, value_parser = validate::name_arg)]
        name: Option<String>,
        /// The new accent colour, #rgb or #rrggbb.
        #[arg(long, value_parser = validate::color, conflicts_with = "no_color")]
        color: Option<String>,
        /// Clear the accent colour (the default one applies).
        #[arg(long)]
        no_color: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum OrgCommand {
    /// Create an organization.
    Add {
        /// The organization's name (unique, ignoring case).
        #[arg(value_parser = validate::name_arg)]
        name: String,
    },
    /// List organizations.
    List,
    /// Manage members.
    #[command(subcommand)]
    Member(MemberCommand),
    /// Show an organization and its members.
    Show {
        /// The organization's id or name.
        org: String,
    },
    /// Remove an organization and its memberships (the users stay).
    Remove {
        /// The organization's id or name.
        org: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum MemberCommand {
    /// Add a user to an organization (or change their role).
    Add {
        /// The organization's id or name.
        org: String,
        /// The user's email.
        email: String,
        /// What the user may do there.
        #[arg(long, value_enum, default_value_t = Role::Member)]
        role: Role,
    },
    /// Remove a user from an organization.
    Remove {
        /// The organization's id or name.
        org: String,
        /// The user's email.
        email: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Role {
    /// Manages the organization.
    Admin,
    /// Uses it.
    Member,
    /// Reads only.
    Viewer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Member => "member",
            Role::Viewer => "viewer",
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Revoke grants and all their tokens: of one user, one client, or everything.
    #[command(group(clap::ArgGroup::new("selector").required(true).args(["user", "client", "all"])))]
    Revoke {
        /// Every grant of this user (email).
        #[arg(long)]
        user: Option<String>,
        /// Every grant of this client id.
        #[arg(long)]
        client: Option<String>,
        /// Every grant of everyone.
        #[arg(long)]
        all: bool,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    /// Every subcommand, argument and option has a one-line help, so `--help`, the man
    /// page and the completions describe each of them.
    #[test]
    fn every_argument_and_subcommand_has_a_one_line_help() {
        fn walk(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in command.get_arguments() {
                let id = arg.get_id().as_str();
                if matches!(id, "help" | "version") {
                    continue;
                }
                let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
                if help.trim().is_empty() || help.contains('\n') {
                    missing.push(format!("{path} {id}: {help:?}"));
                }
            }
            for sub in command.get_subcommands() {
                let about = sub.get_about().map(ToString::to_string).unwrap_or_default();
                if about.trim().is_empty() || about.contains('\n') {
                    missing.push(format!("{path} {}: {about:?}", sub.get_name()));
                }
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        let mut command = Cli::command();
        command.build();
        walk(&command, "oauthd", &mut missing);
        assert_eq!(missing, Vec::<String>::new(), "without a one-line help");
    }

    #[test]
    fn help_shows_examples() {
        let mut command = Cli::command();
        let help = command.render_long_help().to_string();
        assert!(
            help.contains("Examples:") && help.contains("oauthd serve"),
            "{help}"
        );
    }
}
