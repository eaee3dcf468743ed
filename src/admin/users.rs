//! `oauthd user …`: add, list, show, passwd, disable, enable, remove. The password (read
//! by `password_input`) is hashed here and never printed, logged or audited.

use serde_json::json;

use super::password_input::read_password;
use super::{cli_event, no_such_user, output, validate, AdminError, Context};
use crate::cli::UserCommand;
use crate::password;
use crate::store::users::{self, User};
use crate::store::{audit, Store};

pub fn run(command: UserCommand, store: &Store, context: &Context) -> Result<(), AdminError> {
    match command {
        UserCommand::Add {
            email,
            name,
            password_stdin,
        } => add(store, context, &email, name.as_deref(), password_stdin),
        UserCommand::List => {
            let users = store.with_conn(|conn| users::list(conn))?;
            output::either(context, &users, |users| {
                let rows: Vec<Vec<String>> = users.iter().map(user_row).collect();
                output::table(
                    &["EMAIL", "NAME", "STATUS", "CREATED", "ID"],
                    &rows,
                    "no users",
                )
            })
        }
        UserCommand::Show { email } => {
            let user = find(store, &email)?;
            output::either(context, &user, |user| {
                vec![
                    format!("email:    {}", user.email),
                    format!("name:     {}", output::or_dash(user.name.as_deref())),
                    format!("status:   {}", status(user)),
                    format!("created:  {}", user.created_at),
                    format!("id:       {}", user.id),
                ]
            })
        }
        UserCommand::Passwd {
            email,
            password_stdin,
        } => passwd(store, context, &email, password_stdin),
        UserCommand::Disable { email } => set_disabled(store, context, &email, true),
        UserCommand::Enable { email } => set_disabled(store, context, &email, false),
        UserCommand::Remove { email } => {
            let removed = store.transaction(|tx| {
                let removed = users::remove(tx, &email)?;
                if removed {
                    audit::record(
                        tx,
                        &audit::Event {
                            user_email: Some(&email),
                            ..cli_event("user_remove")
                        },
                    )?;
                }
                Ok(removed)
            })?;
            if !removed {
                return Err(no_such_user(&email));
            }
            output::either(context, &json!({"email": email, "removed": true}), |_| {
                vec![format!(
                    "removed user {email} and everything issued to them"
                )]
            })
        }
    }
}

fn add(
    store: &Store,
    context: &Context,
    email: &str,
    name: Option<&str>,
    password_stdin: bool,
) -> Result<(), AdminError> {
    let email = validate::email(email)?;
    let name = name.map(|n| validate::name("name", n)).transpose()?;
    // Checked before asking for the password, so nobody types one for nothing; the
    // UNIQUE constraint still decides if another process adds the same email meanwhile.
    if store.with_conn(|conn| users::id_of(conn, email))?.is_some() {
        return Err(AdminError::Invalid(format!(
            "a user with email {email:?} already exists"
        )));
    }
    let password = read_password(password_stdin)?;
    let hash = password::hash(&password, context.iterations);
    let user = store.transaction(|tx| {
        let user = users::insert(tx, email, name, &hash)?;
        audit::record(
            tx,
            &audit::Event {
                user_email: Some(email),
                ..cli_event("user_add")
            },
        )?;
        Ok(user)
    })?;
    output::either(
        context,
        &json!({"id": user.id, "email": user.email, "name": user.name}),
        |_| vec![format!("created user {} (id {})", user.email, user.id)],
    )
}

fn passwd(
    store: &Store,
    context: &Context,
    email: &str,
    password_stdin: bool,
) -> Result<(), AdminError> {
    find(store, email)?;
    let password = read_password(password_stdin)?;
    let hash = password::hash(&password, context.iterations);
    let revoked = store.transaction(|tx| {
        let revoked = users::set_password(tx, email, &hash)?;
        if revoked.is_some() {
            audit::record(
                tx,
                &audit::Event {
                    user_email: Some(email),
                    ..cli_event("user_passwd")
                },
            )?;
        }
        Ok(revoked)
    })?;
    let revoked = revoked.ok_or_else(|| no_such_user(email))?;
    output::either(
        context,
        &json!({"email": email, "revoked_grants": revoked}),
        |_| {
            vec![format!(
                "password changed for {email}; {revoked} grant(s) revoked"
            )]
        },
    )
}

fn set_disabled(
    store: &Store,
    context: &Context,
    email: &str,
    disabled: bool,
) -> Result<(), AdminError> {
    let event = if disabled {
        "user_disable"
    } else {
        "user_enable"
    };
    let user = store.transaction(|tx| {
        if users::set_disabled(tx, email, disabled)?.is_none() {
            return Ok(None);
        }
        audit::record(
            tx,
            &audit::Event {
                user_email: Some(email),
                ..cli_event(event)
            },
        )?;
        users::find_by_email(tx, email)
    })?;
    let user = user.ok_or_else(|| no_such_user(email))?;
    output::either(context, &user, |user| {
        vec![format!("user {} is now {}", user.email, status(user))]
    })
}

fn find(store: &Store, email: &str) -> Result<User, AdminError> {
    store
        .with_conn(|conn| users::find_by_email(conn, email))?
        .ok_or_else(|| no_such_user(email))
}

fn status(user: &User) -> &'static str {
    if user.disabled {
        "disabled"
    } else {
        "enabled"
    }
}

fn user_row(user: &User) -> Vec<String> {
    vec![
        user.email.clone(),
        output::or_dash(user.name.as_deref()),
        status(user).to_owned(),
        user.created_at.clone(),
        user.id.clone(),
    ]
}
