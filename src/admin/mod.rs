//! The non-serve subcommands: synchronous functions over the store, no async runtime.
//! Each prints its result on stdout (text, or one JSON document with `--json`) and returns
//! an [`AdminError`] whose message is the one line `main` prints before exiting 1 (2,
//! with clap's usage hint, for [`AdminError::Usage`]).
//!
//! This file only dispatches. Each command family lives in its own module; input checks
//! shared between them are in `validate`, printing in `output`. Every change is written in
//! one transaction together with its audit entry (remote address `cli`), through
//! `store::audit::admin_change`, and no module here contains SQL.

mod brands;
mod client_log;
mod clients;
mod keys;
mod logo;
mod maintenance;
mod migrate_to;
mod orgs;
mod output;
mod password_input;
mod presets;
mod progress;
pub(crate) mod since;
mod tls;
mod users;
pub(crate) mod validate;

use crate::cli::{
    AuditCommand, BrandCommand, ClientCommand, Command, KeyCommand, OrgCommand, TlsCommand,
    UserCommand,
};
use crate::store::maintenance::BackupError;
use crate::store::{Location, Opening, Store, StoreError};

/// What every admin command needs besides its own arguments.
pub struct Context {
    pub db: Location,
    pub iterations: u32,
    pub json: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Backup(#[from] BackupError),
    #[error("{0}")]
    Restore(#[from] crate::store::restore::RestoreError),
    #[error("{0}")]
    Invalid(String),
    /// Flags that do not go together, which clap cannot see (they depend on values):
    /// a usage error, exit 2.
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    NotFound(String),
    #[error("cannot write to standard output: {0}")]
    Output(#[from] std::io::Error),
}

impl From<validate::Invalid> for AdminError {
    fn from(invalid: validate::Invalid) -> Self {
        AdminError::Invalid(invalid.0)
    }
}

pub fn run(command: Command, context: &Context) -> Result<(), AdminError> {
    // Restore works on the files, before anything opens the database.
    if let Command::Restore { backup } = &command {
        return maintenance::restore(context, backup);
    }
    if let (Command::Backup { .. }, None) = (&command, context.db.file()) {
        return Err(AdminError::Invalid(maintenance::BACKUP_ON_POSTGRES.into()));
    }
    let opening = if only_reads(&command) {
        Opening::Reading
    } else if creates_database(&command) {
        Opening::Create
    } else {
        Opening::Existing
    };
    let store = Store::open_at(&context.db, opening)?;
    match command {
        Command::Serve(_) => Err(AdminError::Invalid("serve is not an admin command".into())),
        Command::User(command) => users::run(command, &store, context),
        Command::Client(command) => clients::run(command, &store, context),
        Command::Brand(command) => brands::run(command, &store, context),
        Command::Org(command) => orgs::run(command, &store, context),
        Command::Token(command) => maintenance::token(command, &store, context),
        Command::Key(command) => keys::run(command, &store, context),
        Command::Backup { dest, force } => maintenance::backup(&store, context, &dest, force),
        Command::Check { tls_cert } => maintenance::check(&store, context, tls_cert.as_deref()),
        Command::Tls(TlsCommand::Status) => tls::status(&store, context),
        Command::Migrate { to } => migrate_to::run(&store, context, &to),
        Command::Restore { .. } => Err(AdminError::Invalid("restore opens no store".into())),
        Command::Completions { .. } | Command::Man | Command::SystemdUnit => {
            Err(AdminError::Invalid("this command needs no database".into()))
        }
        Command::Audit {
            action: Some(AuditCommand::Prune { older_than }),
            ..
        } => maintenance::prune_audit(&store, context, older_than),
        Command::Audit {
            action: None,
            user,
            client,
            since,
            limit,
        } => {
            let filter = maintenance::AuditArgs {
                user,
                client,
                since,
                limit,
            };
            maintenance::audit(&store, context, filter)
        }
    }
}

/// Whether `command` only reads: it then opens the database without the write lock
/// (which migrating takes), so it runs beside a busy server or a held lock.
fn only_reads(command: &Command) -> bool {
    matches!(
        command,
        Command::Check { .. }
            | Command::Tls(TlsCommand::Status)
            | Command::Audit { action: None, .. }
            | Command::Backup { .. }
            | Command::User(UserCommand::List | UserCommand::Show { .. })
            | Command::Client(
                ClientCommand::List | ClientCommand::Show { .. } | ClientCommand::Log { .. }
            )
            | Command::Brand(BrandCommand::List)
            | Command::Org(OrgCommand::List | OrgCommand::Show { .. })
            | Command::Key(KeyCommand::List)
            | Command::Migrate { .. }
    )
}

/// Whether `command` may create a missing database: only those that add something. Every
/// command that reads, changes or removes refuses a missing file, so a mistyped `--db`
/// fails instead of leaving an empty database that `check` would call healthy.
fn creates_database(command: &Command) -> bool {
    matches!(
        command,
        Command::User(UserCommand::Add { .. })
            | Command::Client(ClientCommand::Add(_))
            | Command::Brand(BrandCommand::Add { .. })
            | Command::Org(OrgCommand::Add { .. })
    )
}

/// The error for an email that names no user.
fn no_such_user(email: &str) -> AdminError {
    AdminError::NotFound(format!("no user with email {email:?}"))
}

/// The error for an id that names no client.
fn no_such_client(client_id: &str) -> AdminError {
    AdminError::NotFound(format!("no client with id {client_id:?}"))
}

/// The error for a domain that names no brand.
fn no_such_brand(domain: &str) -> AdminError {
    AdminError::NotFound(format!("no brand for domain {domain:?}"))
}
