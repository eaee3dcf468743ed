//! `oauthd brand …`: add, list, remove, set-logo. Domains and colours are checked in
//! `validate`, logos in `logo`, before anything is written; the logo bytes go into the
//! database so that a backup of the one file carries them.

use std::path::Path;

use serde_json::json;

use super::{logo, no_such_brand, output, validate, AdminError, Context};
use crate::cli::BrandCommand;
use crate::store::audit::{self, AdminEvent};
use crate::store::brands::{self, Brand};
use crate::store::{clients, Store};

pub fn run(command: BrandCommand, store: &Store, context: &Context) -> Result<(), AdminError> {
    match command {
        BrandCommand::Add {
            domain,
            name,
            logo: logo_file,
            color,
        } => {
            let domain = validate::domain(&domain)?;
            let name = validate::name("brand name", &name)?;
            let color = color.as_deref().map(validate::color).transpose()?;
            let logo = logo_file.as_deref().map(logo::read).transpose()?;
            let brand = audit::admin_change(
                store,
                |tx| {
                    brands::insert(tx, &domain, name, color.as_deref(), logo.as_ref())?;
                    brands::find(tx, &domain)
                },
                |_| Some(brand_event("brand_add", domain.clone())),
            )?;
            let brand = brand.ok_or_else(|| no_such_brand(&domain))?;
            output::either(context, &brand, |brand| {
                vec![format!("added brand {} ({})", brand.domain, brand.name)]
            })
        }
        BrandCommand::List => {
            let brands = store.with_conn(|conn| brands::list(conn))?;
            output::either(context, &brands, |brands| {
                let rows: Vec<Vec<String>> = brands.iter().map(brand_row).collect();
                output::table(
                    &["DOMAIN", "NAME", "COLOR", "LOGO", "CREATED"],
                    &rows,
                    "no brands",
                )
            })
        }
        BrandCommand::Remove { domain, force } => remove(store, context, &domain, force),
        BrandCommand::Update {
            domain,
            name,
            color,
            no_color,
        } => {
            let color = if no_color {
                Some(None)
            } else {
                color.as_deref().map(Some)
            };
            let fields = [("name", name.is_some()), ("color", color.is_some())];
            let detail = format!("{domain} {}", super::users::changed_fields(&fields));
            let brand = audit::admin_change(
                store,
                |tx| match brands::update(tx, &domain, name.as_deref(), color)? {
                    true => brands::find(tx, &domain),
                    false => Ok(None),
                },
                |brand| brand.as_ref().map(|_| brand_event("brand_update", detail)),
            )?;
            let brand = brand.ok_or_else(|| no_such_brand(&domain))?;
            output::either(context, &brand, |brand| {
                vec![format!(
                    "updated brand {} ({}, colour {})",
                    brand.domain,
                    brand.name,
                    output::or_dash(brand.color.as_deref())
                )]
            })
        }
        BrandCommand::SetLogo { domain, file } => set_logo(store, context, &domain, &file),
    }
}

/// Removes a brand. While clients use it, it is refused (naming them) unless `force`;
/// the check and the removal share one transaction.
fn remove(store: &Store, context: &Context, domain: &str, force: bool) -> Result<(), AdminError> {
    let outcome = audit::admin_change(
        store,
        |tx| {
            let users = clients::using_brand(tx, domain)?;
            if !users.is_empty() && !force {
                return Ok(Err(users));
            }
            Ok(Ok((brands::remove(tx, domain)?, users)))
        },
        |outcome| match outcome {
            Ok((true, users)) => {
                let detail = match users.is_empty() {
                    true => domain.to_owned(),
                    false => format!("{domain} (forced; used by {})", users.join(", ")),
                };
                Some(brand_event("brand_remove", detail))
            }
            _ => None,
        },
    )?;
    let users = match outcome {
        Err(users) => {
            return Err(AdminError::Invalid(format!(
                "brand {domain} is used by client(s) {}; change them (client update ID --no-brand) or pass --force",
                users.join(", ")
            )))
        }
        Ok((false, _)) => return Err(no_such_brand(domain)),
        Ok((true, users)) => users,
    };
    let value = json!({"domain": domain, "removed": true, "clients_unbranded": users});
    output::either(context, &value, |_| {
        vec![format!(
            "removed brand {domain}; its clients fall back to the default look"
        )]
    })
}

fn set_logo(store: &Store, context: &Context, domain: &str, file: &Path) -> Result<(), AdminError> {
    let domain = validate::domain(domain)?;
    let logo = logo::read(file)?;
    let brand = audit::admin_change(
        store,
        |tx| match brands::set_logo(tx, &domain, &logo)? {
            true => brands::find(tx, &domain),
            false => Ok(None),
        },
        |brand| {
            let detail = format!("{domain} {} {} bytes", logo.content_type, logo.bytes.len());
            brand
                .as_ref()
                .map(|_| brand_event("brand_set_logo", detail))
        },
    )?;
    let brand = brand.ok_or_else(|| no_such_brand(&domain))?;
    output::either(context, &brand, |brand| {
        vec![format!(
            "logo of {} set ({}, {} bytes)",
            brand.domain,
            logo.content_type,
            logo.bytes.len()
        )]
    })
}

/// The audit event of a change to a brand; the detail names the domain.
fn brand_event(event: &str, detail: String) -> AdminEvent<'_> {
    AdminEvent {
        event,
        detail: Some(detail),
        ..AdminEvent::default()
    }
}

fn brand_row(brand: &Brand) -> Vec<String> {
    vec![
        brand.domain.clone(),
        brand.name.clone(),
        output::or_dash(brand.color.as_deref()),
        if brand.has_logo { "yes" } else { "no" }.to_owned(),
        brand.created_at.clone(),
    ]
}
