//! The command line, as clap types only. `config.rs` turns these into validated settings;
//! nothing else imports clap. Every `serve` flag can also come from an `OAUTHD_*`
//! environment variable.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::password::{DEFAULT_ITERATIONS, MIN_ITERATIONS};

#[derive(Debug, Parser)]
#[command(
    name = "oauthd",
    version,
    about = "A small self-hosted OAuth 2.0 authorization server"
)]
pub struct Cli {
    /// The SQLite database file (created with the schema on first use).
    #[arg(long, env = "OAUTHD_DB", default_value = "oauthd.db", global = true)]
    pub db: PathBuf,

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
        dest: PathBuf,
        /// Overwrite DEST if it exists.
        #[arg(long)]
        force: bool,
    },
    /// Check the database's integrity and print a summary.
    Check,
    /// Put BACKUP in place of the database (--db): refuses while a server runs on it,
    /// checks the backup, moves the old .db, -wal and -shm aside (kept), then runs check.
    Restore { backup: PathBuf },
    /// Show the audit trail.
    Audit {
        /// Only events of this user (email).
        #[arg(long)]
        user: Option<String>,
        /// Only events of this client id.
        #[arg(long)]
        client: Option<String>,
        /// Only events at or after this time: RFC 3339 date/time, a date, or an age such as 15m, 2h, 7d.
        #[arg(long)]
        since: Option<String>,
        /// At most this many (the newest).
        #[arg(long)]
        limit: Option<u32>,
    },
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, env = "OAUTHD_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Public base URL used in metadata (default http://<listen>).
    #[arg(long, env = "OAUTHD_ISSUER")]
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
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user.
    Add {
        email: String,
        #[arg(long)]
        name: Option<String>,
        /// Read the password from one line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users.
    List,
    /// Show one user.
    Show { email: String },
    /// Set a new password; revokes every token of the user.
    Passwd {
        email: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Disable a user: no login, every token stops working.
    Disable { email: String },
    /// Enable a disabled user.
    Enable { email: String },
    /// Remove a user and everything issued to them.
    Remove { email: String },
}

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Register a client.
    Add(ClientAddArgs),
    /// List clients (never shows secrets).
    List,
    /// Show one client (never shows its secret).
    Show { id: String },
    /// Remove a client and revoke all its tokens.
    Remove { id: String },
    /// Generate a new secret (printed once); the old one stops working.
    RotateSecret { id: String },
}

/// What `client add` is asked for, before any check (`admin/clients.rs` checks it).
#[derive(Debug, Args)]
pub struct ClientAddArgs {
    #[arg(long)]
    pub name: String,
    /// Absolute redirect URI without fragment; repeat for several.
    #[arg(long = "redirect-uri", required = true, num_args = 1..)]
    pub redirect_uris: Vec<String>,
    /// Client id (default: random).
    #[arg(long)]
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
    #[arg(long)]
    pub brand: Option<String>,
    /// A scope name the client may request; repeat (or separate with spaces) for several.
    /// Without it the client may request any scope.
    #[arg(long = "scope", num_args = 1..)]
    pub scopes: Vec<String>,
    /// The algorithm that signs this client's id_tokens.
    #[arg(long, value_enum, default_value_t = IdTokenAlg::Rs256)]
    pub id_token_alg: IdTokenAlg,
    /// First-party (trusted, no consent screen): true or false.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub first_party: bool,
}

/// id_token signing algorithms, by their JWA names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum IdTokenAlg {
    #[value(name = "RS256")]
    Rs256,
    #[value(name = "ES256")]
    Es256,
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
        domain: String,
        #[arg(long)]
        name: String,
        /// PNG, JPEG, SVG or WebP file, at most 512 KiB.
        #[arg(long)]
        logo: Option<PathBuf>,
        /// Accent colour, #rgb or #rrggbb.
        #[arg(long)]
        color: Option<String>,
    },
    /// List brands.
    List,
    /// Remove a brand.
    Remove { domain: String },
    /// Replace a brand's logo.
    SetLogo { domain: String, file: PathBuf },
}

#[derive(Debug, Subcommand)]
pub enum OrgCommand {
    /// Create an organization.
    Add { name: String },
    /// List organizations.
    List,
    /// Manage members.
    #[command(subcommand)]
    Member(MemberCommand),
}

#[derive(Debug, Subcommand)]
pub enum MemberCommand {
    /// Add a user to an organization (or change their role).
    Add {
        org: String,
        email: String,
        #[arg(long, value_enum, default_value_t = Role::Member)]
        role: Role,
    },
    /// Remove a user from an organization.
    Remove { org: String, email: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Role {
    Admin,
    Member,
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
        #[arg(long)]
        user: Option<String>,
        #[arg(long)]
        client: Option<String>,
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
}
