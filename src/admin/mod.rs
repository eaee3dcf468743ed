//! The non-serve subcommands: synchronous functions over the store, no async runtime.
//! Each prints its result on stdout (text, or one JSON document with `--json`) and returns
//! an [`AdminError`] whose message is the one line `main` prints before exiting 1.

use std::path::PathBuf;

use crate::cli::Command;
use crate::store::{Store, StoreError};

/// What every admin command needs besides its own arguments.
pub struct Context {
    pub db: PathBuf,
    pub iterations: u32,
    pub json: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Invalid(String),
}

pub fn run(command: Command, context: &Context) -> Result<(), AdminError> {
    let _store = Store::open(&context.db)?;
    match command {
        Command::Serve(_) => Err(AdminError::Invalid("serve is not an admin command".into())),
        _ => Err(AdminError::Invalid("not implemented yet".into())),
    }
}
