//! `oauthd user …`: add, list, show, passwd, disable, enable, remove. The password (read
//! by `password_input`) is hashed here and never printed, logged or audited.

use serde_json::json;

use super::password_input::read_password;
use super::{no_such_user, output, validate, AdminError, Context};
use crate::cli::UserCommand;
use crate::password;
use crate::store::audit::{self, AdminEvent};
use crate::store::client_log;
use crate::store::users::{self, User};
use crate::store::Store;

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
            let removed = audit::admin_change(
                store,
                |tx| users::remove(tx, &email),
                |removed| removed.then(|| user_event("user_remove", &email)),
            )?;
            if !removed {
                return Err(no_such_user(&email));
            }
            output::either(context, &json!({"email": email, "removed": true}), |_| {
                vec![format!(
                    "removed user {email} and everything issued to them"
                )]
            })
        }
        UserCommand::Update {
            email,
            new_email,
            name,
            no_name,
        } => {
            let name = if no_name {
                Some(None)
            } else {
                name.as_deref().map(Some)
            };
            let detail =
                changed_fields(&[("email", new_email.is_some()), ("name", name.is_some())]);
            // The entry names the account by the email it has after the change.
            let now_email = new_email.as_deref().unwrap_or(&email);
            let user = audit::admin_change(
                store,
                |tx| users::update(tx, &email, new_email.as_deref(), name),
                |user| {
                    user.as_ref().map(|_| AdminEvent {
                        event: "user_update",
                        user_email: Some(now_email),
                        detail: Some(match new_email {
                            Some(_) => format!("{detail} (was {email})"),
                            None => detail.clone(),
                        }),
                        ..AdminEvent::default()
                    })
                },
            )?;
            let user = user.ok_or_else(|| no_such_user(&email))?;
            output::either(context, &user, |user| {
                vec![format!(
                    "updated user {} (name {})",
                    user.email,
                    output::or_dash(user.name.as_deref())
                )]
            })
        }
    }
}

/// The audit detail of an update: which fields it changed, e.g. `changed email,name`.
pub(super) fn changed_fields(fields: &[(&str, bool)]) -> String {
    let names: Vec<&str> = fields
        .iter()
        .filter(|(_, changed)| *changed)
        .map(|(name, _)| *name)
        .collect();
    format!("changed {}", names.join(","))
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
    // insert checks again in its transaction if another process adds the same email.
    if store.with_conn(|conn| users::email_taken(conn, email))? {
        return Err(AdminError::Invalid(format!(
            "a user with email {email:?} already exists"
        )));
    }
    let password = read_password(password_stdin)?;
    let hash = password::hash(&password, context.iterations);
    let user = audit::admin_change(
        store,
        |tx| users::insert(tx, email, name, &hash),
        |_| Some(user_event("user_add", email)),
    )?;
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
    let revoked = audit::admin_change(
        store,
        |tx| users::set_password(tx, email, &hash),
        |revoked| revoked.map(|_| user_event("user_passwd", email)),
    )?;
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
    let user = audit::admin_change(
        store,
        |tx| {
            if let Some(user) = users::find_by_email(tx, email)?.filter(|_| disabled) {
                client_log::remember_disabled_user_tokens(tx, &user.id)?;
            }
            match users::set_disabled(tx, email, disabled)? {
                Some(_) => users::find_by_email(tx, email),
                None => Ok(None),
            }
        },
        |user| user.as_ref().map(|_| user_event(event, email)),
    )?;
    let user = user.ok_or_else(|| no_such_user(email))?;
    output::either(context, &user, |user| {
        vec![format!("user {} is now {}", user.email, status(user))]
    })
}

/// The audit event of a change to the user `email`.
fn user_event<'a>(event: &'a str, email: &'a str) -> AdminEvent<'a> {
    AdminEvent {
        event,
        user_email: Some(email),
        ..AdminEvent::default()
    }
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
