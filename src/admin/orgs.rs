//! `oauthd org …`: add, list, and membership (add with a role, remove). An organization is
//! named by id or by name; users by email.

use serde_json::json;

use super::{no_such_user, output, validate, AdminError, Context};
use crate::cli::{MemberCommand, OrgCommand};
use crate::store::audit::{self, AdminEvent};
use crate::store::orgs::{self, Org};
use crate::store::{users, Store};

pub fn run(command: OrgCommand, store: &Store, context: &Context) -> Result<(), AdminError> {
    match command {
        OrgCommand::Add { name } => {
            let name = validate::name("organization name", &name)?;
            let org = audit::admin_change(
                store,
                |tx| orgs::insert(tx, name),
                |org| {
                    Some(AdminEvent {
                        event: "org_add",
                        detail: Some(org.name.clone()),
                        ..AdminEvent::default()
                    })
                },
            )?;
            output::either(context, &org, |org| {
                vec![format!("created organization {} (id {})", org.name, org.id)]
            })
        }
        OrgCommand::List => {
            let orgs = store.with_conn(|conn| orgs::list(conn))?;
            output::either(context, &orgs, |orgs| {
                let rows: Vec<Vec<String>> = orgs
                    .iter()
                    .map(|o| vec![o.name.clone(), o.created_at.clone(), o.id.clone()])
                    .collect();
                output::table(&["NAME", "CREATED", "ID"], &rows, "no organizations")
            })
        }
        OrgCommand::Member(MemberCommand::Add { org, email, role }) => {
            let (org, user_id) = org_and_user(store, &org, &email)?;
            let role = role.as_str();
            audit::admin_change(
                store,
                |tx| orgs::member_upsert(tx, &org.id, &user_id, role),
                |_| {
                    Some(AdminEvent {
                        event: "org_member_add",
                        user_email: Some(&email),
                        detail: Some(format!("org={} role={role}", org.name)),
                        ..AdminEvent::default()
                    })
                },
            )?;
            let value = json!({"org": org.name, "org_id": org.id, "email": email, "role": role});
            output::either(context, &value, |_| {
                vec![format!("{email} is now {role} of {}", org.name)]
            })
        }
        OrgCommand::Show { org } => {
            let (org, members) = store
                .with_conn(|conn| {
                    let Some(org) = orgs::find(conn, &org)? else {
                        return Ok(None);
                    };
                    let members = orgs::members(conn, &org.id)?;
                    Ok(Some((org, members)))
                })?
                .ok_or_else(|| no_such_org(&org))?;
            let value = json!({"id": org.id, "name": org.name, "created_at": org.created_at, "members": members});
            output::either(context, &value, |_| {
                let mut lines = vec![
                    format!("name:     {}", org.name),
                    format!("id:       {}", org.id),
                    format!("created:  {}", org.created_at),
                ];
                let rows: Vec<Vec<String>> = members
                    .iter()
                    .map(|m| {
                        vec![
                            m.email.clone(),
                            output::or_dash(m.name.as_deref()),
                            m.role.clone(),
                        ]
                    })
                    .collect();
                lines.extend(output::table(
                    &["EMAIL", "NAME", "ROLE"],
                    &rows,
                    "no members",
                ));
                lines
            })
        }
        OrgCommand::Remove { org } => {
            let removed = audit::admin_change(
                store,
                |tx| match orgs::find(tx, &org)? {
                    Some(found) => Ok(orgs::remove(tx, &found.id)?.then_some(found)),
                    None => Ok(None),
                },
                |removed| {
                    removed.as_ref().map(|found| AdminEvent {
                        event: "org_remove",
                        detail: Some(found.name.clone()),
                        ..AdminEvent::default()
                    })
                },
            )?;
            let removed = removed.ok_or_else(|| no_such_org(&org))?;
            let value = json!({"org": removed.name, "org_id": removed.id, "removed": true});
            output::either(context, &value, |_| {
                vec![format!(
                    "removed organization {} and its memberships",
                    removed.name
                )]
            })
        }
        OrgCommand::Member(MemberCommand::Remove { org, email }) => {
            let (org, user_id) = org_and_user(store, &org, &email)?;
            let removed = audit::admin_change(
                store,
                |tx| orgs::member_remove(tx, &org.id, &user_id),
                |removed| {
                    removed.then(|| AdminEvent {
                        event: "org_member_remove",
                        user_email: Some(&email),
                        detail: Some(format!("org={}", org.name)),
                        ..AdminEvent::default()
                    })
                },
            )?;
            if !removed {
                return Err(AdminError::NotFound(format!(
                    "{email:?} is not a member of {}",
                    org.name
                )));
            }
            let value = json!({"org": org.name, "org_id": org.id, "email": email, "removed": true});
            output::either(context, &value, |_| {
                vec![format!("removed {email} from {}", org.name)]
            })
        }
    }
}

/// The organization (by id or name) and the user's id, or which of them does not exist.
fn org_and_user(store: &Store, org: &str, email: &str) -> Result<(Org, String), AdminError> {
    let (found_org, user_id) =
        store.with_conn(|conn| Ok((orgs::find(conn, org)?, users::id_of(conn, email)?)))?;
    let found_org = found_org.ok_or_else(|| no_such_org(org))?;
    let user_id = user_id.ok_or_else(|| no_such_user(email))?;
    Ok((found_org, user_id))
}

/// The error for an id or name that names no organization.
fn no_such_org(org: &str) -> AdminError {
    AdminError::NotFound(format!("no organization {org:?}"))
}
