//! `oauthd client …`: add, list, show, remove, rotate-secret. A confidential client's
//! secret is generated here, printed once, and stored only as its SHA-256 digest; list and
//! show never print it (the store's `Client` does not even serialise the digest).

use serde_json::json;

use super::{no_such_brand, no_such_client, output, presets, validate, AdminError, Context};
use crate::cli::{ClientAddArgs, ClientCommand, ClientUpdateArgs, GrantArg, Preset};
use crate::oauth::{GrantKind, RedirectUri, DEFAULT_GRANTS};
use crate::secret;
use crate::secret::fill_random;
use crate::store::audit::{self, AdminEvent};
use crate::store::clients::{self, Client, ClientChange, NewClient};
use crate::store::{brands, post_logout, Store};

pub fn run(command: ClientCommand, store: &Store, context: &Context) -> Result<(), AdminError> {
    match command {
        ClientCommand::Add(args) => add(store, context, args),
        ClientCommand::List => {
            let clients = store.with_conn(|conn| clients::list(conn))?;
            output::either(context, &clients, |clients| {
                let rows: Vec<Vec<String>> = clients.iter().map(client_row).collect();
                output::table(
                    &["CLIENT_ID", "NAME", "TYPE", "BRAND", "REDIRECT_URIS"],
                    &rows,
                    "no clients",
                )
            })
        }
        ClientCommand::Show { id } => {
            let client = store
                .with_conn(|conn| clients::find(conn, &id))?
                .ok_or_else(|| no_such_client(&id))?;
            output::either(context, &client, |client| {
                let mut lines = vec![
                    format!("client_id:     {}", client.client_id),
                    format!("name:          {}", client.name),
                    format!("type:          {}", kind(client)),
                    format!(
                        "brand:         {}",
                        output::or_dash(client.brand.as_deref())
                    ),
                    format!("id_token_alg:  {}", client.id_token_alg.as_str()),
                    format!("first_party:   {}", client.first_party),
                    format!("created:       {}", client.created_at),
                    format!("grants:        {}", client.grant_types.join(" ")),
                    format!(
                        "scopes:        {}",
                        client.allowed_scopes.as_deref().unwrap_or("(any)")
                    ),
                ];
                lines.extend(
                    client
                        .redirect_uris
                        .iter()
                        .map(|uri| format!("redirect_uri:  {uri}")),
                );
                lines.extend(
                    client
                        .allowed_origins
                        .iter()
                        .map(|origin| format!("origin:        {origin}")),
                );
                lines
            })
        }
        ClientCommand::Remove { id } => {
            let removed = audit::admin_change(
                store,
                |tx| clients::remove(tx, &id),
                |removed| removed.then(|| client_event("client_remove", &id)),
            )?;
            if !removed {
                return Err(no_such_client(&id));
            }
            output::either(context, &json!({"client_id": id, "removed": true}), |_| {
                vec![format!("removed client {id}; its tokens no longer work")]
            })
        }
        ClientCommand::RotateSecret { id } => rotate_secret(store, context, &id),
        ClientCommand::Update(args) => update(store, context, args),
        ClientCommand::Log { id, since, limit } => {
            super::client_log::run(store, context, &id, since, limit)
        }
    }
}

/// Applies `client update`: reads the client, works out its new redirect URIs, flags,
/// grants, scopes and origins, and writes them, all in one transaction with the audit
/// entry. A change that would leave a code-flow client without a redirect URI, a client
/// without a grant, or let a public client introspect or use client credentials, is
/// refused and writes nothing.
fn update(store: &Store, context: &Context, args: ClientUpdateArgs) -> Result<(), AdminError> {
    let id = args.id.as_str();
    let brand = match (&args.brand, args.no_brand) {
        (_, true) => Some(None),
        (Some(domain), false) => {
            let found = store.with_conn(|conn| brands::find(conn, domain))?;
            Some(Some(found.ok_or_else(|| no_such_brand(domain))?.domain))
        }
        (None, false) => None,
    };
    let scopes = match (args.any_scope, args.scopes.is_empty()) {
        (true, _) => Some(None),
        (false, false) => Some(validate::scopes(&args.scopes)?),
        (false, true) => None,
    };
    let fields = [
        ("name", args.name.is_some()),
        (
            "redirect_uris",
            !args.add_redirect_uris.is_empty() || !args.remove_redirect_uris.is_empty(),
        ),
        ("brand", brand.is_some()),
        ("require_pkce", args.require_pkce.is_some()),
        ("introspect_any", args.introspect_any.is_some()),
        (
            "grants",
            !args.add_grants.is_empty() || !args.remove_grants.is_empty(),
        ),
        ("scopes", scopes.is_some()),
        (
            "allowed_origins",
            !args.add_allowed_origins.is_empty() || !args.remove_allowed_origins.is_empty(),
        ),
    ];
    let detail = super::users::changed_fields(&fields);
    let outcome = audit::admin_change(
        store,
        |tx| {
            let Some(client) = clients::find_for_update(tx, id)? else {
                return Ok(Err(no_such_client(id)));
            };
            let (uris, grants, origins) = match updated_lists(&client, &args) {
                Ok(lists) => lists,
                Err(refused) => return Ok(Err(refused)),
            };
            if client.public && args.introspect_any == Some(true) {
                return Ok(Err(AdminError::Invalid(format!(
                    "client {id:?} is public; only a confidential client may introspect any token"
                ))));
            }
            let grant_names: Option<Vec<&str>> = grants
                .as_ref()
                .map(|g| g.iter().map(String::as_str).collect());
            let change = ClientChange {
                name: args.name.as_deref(),
                brand: brand.as_ref().map(Option::as_deref),
                require_pkce: args.require_pkce,
                introspect_any: args.introspect_any,
                redirect_uris: uris.as_deref(),
                grant_types: grant_names.as_deref(),
                allowed_scopes: scopes.as_ref().map(Option::as_deref),
                allowed_origins: origins.as_deref(),
            };
            clients::update(tx, id, &change)?;
            Ok(clients::find(tx, id)?.ok_or_else(|| no_such_client(id)))
        },
        |outcome| {
            outcome.as_ref().ok().map(|_| AdminEvent {
                detail: Some(detail.clone()),
                ..client_event("client_update", id)
            })
        },
    )?;
    let client = outcome?;
    output::either(context, &client, |client| {
        vec![format!(
            "updated client {} ({}); redirect URIs: {}; grants: {}",
            client.client_id,
            kind(client),
            client.redirect_uris.join(" "),
            client.grant_types.join(" ")
        )]
    })
}

/// Lists a client update may replace: redirect URIs, grant names, allowed origins.
type UpdatedLists = (
    Option<Vec<String>>,
    Option<Vec<String>>,
    Option<Vec<String>>,
);

/// The client's redirect URIs, grants and origins after the update's removals and
/// additions (`None`: unchanged), checked together: a client keeps at least one grant,
/// the code flow keeps a redirect URI, client credentials stay confidential.
fn updated_lists(client: &Client, args: &ClientUpdateArgs) -> Result<UpdatedLists, AdminError> {
    let of = &client.client_id;
    let uris = edited(
        &client.redirect_uris,
        &args.add_redirect_uris,
        &args.remove_redirect_uris,
        |gone| format!("{gone:?} is not a redirect URI of client {of:?}"),
    )?;
    let names = |args: &[GrantArg]| -> Vec<String> {
        args.iter()
            .map(|a| grant_kind(*a).name().to_owned())
            .collect()
    };
    let grants = edited(
        &client.grant_types,
        &names(&args.add_grants),
        &names(&args.remove_grants),
        |gone| format!("client {of:?} is not registered for the {gone} grant"),
    )?;
    let origins = edited(
        &client.allowed_origins,
        &args.add_allowed_origins,
        &args.remove_allowed_origins,
        |gone| format!("{gone:?} is not an allowed origin of client {of:?}"),
    )?;
    let uris_after = uris.as_ref().unwrap_or(&client.redirect_uris);
    let grants_after = grants.as_ref().unwrap_or(&client.grant_types);
    let has = |kind: GrantKind| grants_after.iter().any(|g| g == kind.name());
    if grants_after.is_empty() {
        return Err(AdminError::Invalid(format!(
            "client {of:?} needs at least one grant; add one before removing the last"
        )));
    }
    if has(GrantKind::ClientCredentials) && client.public {
        return Err(AdminError::Invalid(format!(
            "client {of:?} is public; the client_credentials grant needs a confidential client"
        )));
    }
    if has(GrantKind::AuthorizationCode) && uris_after.is_empty() {
        return Err(AdminError::Invalid(format!(
            "client {of:?} uses the authorization_code grant, which needs at least one redirect URI; add one before removing the last"
        )));
    }
    Ok((uris, grants, origins))
}

/// `current` without `remove` (each must be there; `missing` says otherwise) and with
/// `add` (each once, in order), or `None` when both are empty.
fn edited(
    current: &[String],
    add: &[String],
    remove: &[String],
    missing: impl Fn(&str) -> String,
) -> Result<Option<Vec<String>>, AdminError> {
    if add.is_empty() && remove.is_empty() {
        return Ok(None);
    }
    let mut list = current.to_vec();
    for gone in remove {
        if !list.contains(gone) {
            return Err(AdminError::Invalid(missing(gone)));
        }
        list.retain(|item| item != gone);
    }
    for added in add {
        if !list.contains(added) {
            list.push(added.clone());
        }
    }
    Ok(Some(list))
}

fn add(store: &Store, context: &Context, args: ClientAddArgs) -> Result<(), AdminError> {
    let name = validate::name("client name", &args.name)?;
    let client_id = match &args.id {
        Some(id) => validate::client_id(id)?.to_owned(),
        None => random_client_id(),
    };
    let preset = preset_of(&args)?;
    let mut redirect_uris = preset
        .map(|(preset, id)| presets::redirect_uris(preset, id))
        .unwrap_or_default();
    for raw in &args.redirect_uris {
        let uri =
            RedirectUri::parse(raw).map_err(|e| AdminError::Invalid(format!("{raw:?}: {e}")))?;
        redirect_uris.push(uri.as_str().to_owned());
    }
    let post_logout_uris = args
        .post_logout_redirect_uris
        .iter()
        .map(|raw| {
            RedirectUri::parse(raw)
                .map(|uri| uri.as_str().to_owned())
                .map_err(|e| AdminError::Invalid(format!("{raw:?}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    // The brand as stored, so the client refers to its canonical domain. Should the
    // brand vanish before the insert, the foreign key refuses the client.
    let brand = match args.brand.as_deref() {
        Some(raw) => {
            let domain = validate::domain(raw)?;
            let found = store.with_conn(|conn| brands::find(conn, &domain))?;
            Some(found.ok_or_else(|| no_such_brand(&domain))?.domain)
        }
        None => None,
    };
    let grants = grant_kinds(&args.grants);
    if grants.contains(&GrantKind::AuthorizationCode) && redirect_uris.is_empty() {
        return Err(AdminError::Usage(
            "the authorization_code grant needs at least one --redirect-uri".into(),
        ));
    }
    if grants.contains(&GrantKind::ClientCredentials) && args.public {
        return Err(AdminError::Usage(
            "the client_credentials grant needs a confidential client (drop --public)".into(),
        ));
    }
    let grant_names: Vec<&str> = grants.iter().map(|g| g.name()).collect();
    let allowed_scopes = validate::scopes(&args.scopes)?;
    let mut allowed_origins = Vec::with_capacity(args.allowed_origins.len());
    for raw in &args.allowed_origins {
        allowed_origins.push(validate::origin(raw)?);
    }
    let client_secret = (!args.public).then(secret::new_client_secret);
    let secret_hash = client_secret.as_deref().map(secret::sha256);
    let new = NewClient {
        client_id: &client_id,
        name,
        secret_hash: secret_hash.as_ref().map(|h| h.as_slice()),
        require_pkce: args.require_pkce,
        introspect_any: args.introspect_any,
        id_token_alg: super::keys::alg_of(args.id_token_alg),
        first_party: args.first_party,
        brand: brand.as_deref(),
        redirect_uris: &redirect_uris,
        grant_types: &grant_names,
        allowed_scopes: allowed_scopes.as_deref(),
        allowed_origins: &allowed_origins,
    };
    audit::admin_change(
        store,
        |tx| {
            clients::insert(tx, &new)?;
            post_logout::insert(tx, &client_id, &post_logout_uris)
        },
        |_| Some(client_event("client_add", &client_id)),
    )?;
    match preset {
        Some((preset, _)) => {
            let issuer = args
                .issuer
                .as_deref()
                .unwrap_or(presets::PLACEHOLDER_ISSUER);
            print_preset(
                context,
                preset,
                issuer,
                &client_id,
                client_secret.as_deref(),
                &redirect_uris,
            )
        }
        None => print_secret(context, &client_id, client_secret.as_deref()),
    }
}

/// The preset and the id its redirect URIs need; an id meant for another preset is refused
/// (clap already refuses these combinations; this is the same rule, kept for safety).
fn preset_of(args: &ClientAddArgs) -> Result<Option<(Preset, &str)>, AdminError> {
    let wrong = |flag: &str, preset: &str| {
        Err(AdminError::Usage(format!(
            "{flag} goes with --preset {preset}"
        )))
    };
    match (
        args.preset,
        args.vendor_id.as_deref(),
        args.project_id.as_deref(),
    ) {
        (Some(Preset::Alexa), Some(id), None) => Ok(Some((Preset::Alexa, id))),
        (Some(Preset::GoogleHome), None, Some(id)) => Ok(Some((Preset::GoogleHome, id))),
        (None, None, None) => Ok(None),
        (_, Some(_), _) => wrong("--vendor-id", "alexa"),
        (_, _, Some(_)) => wrong("--project-id", "google-home"),
        (Some(_), None, None) => Err(AdminError::Usage("the preset needs its id".into())),
    }
}

/// Prints a preset client: its id and secret, the redirect URIs registered, and the
/// values to paste into the platform's console.
fn print_preset(
    context: &Context,
    preset: Preset,
    issuer: &str,
    client_id: &str,
    client_secret: Option<&str>,
    redirect_uris: &[String],
) -> Result<(), AdminError> {
    let values = presets::console_values(preset, issuer, client_id);
    let console: serde_json::Map<String, serde_json::Value> = values
        .iter()
        .map(|(field, value)| ((*field).to_owned(), value.clone().into()))
        .collect();
    let value = json!({
        "client_id": client_id,
        "client_secret": client_secret,
        "redirect_uris": redirect_uris,
        "console": console,
    });
    output::either(context, &value, |_| {
        let mut lines = vec![
            format!("client_id:     {client_id}"),
            format!("client_secret: {}", client_secret.unwrap_or("-")),
            "The secret is shown only this once; oauthd keeps only its hash.".to_owned(),
        ];
        lines.extend(
            redirect_uris
                .iter()
                .map(|uri| format!("redirect_uri:  {uri}")),
        );
        lines.push(String::new());
        lines.push(format!("Paste into the {}:", presets::console_name(preset)));
        lines.extend(
            values
                .iter()
                .map(|(field, value)| format!("  {field}: {value}")),
        );
        if issuer == presets::PLACEHOLDER_ISSUER {
            lines.push(format!(
                "(replace {issuer} with this server's public https URL, or pass --issuer)"
            ));
        }
        lines
    })
}

fn rotate_secret(store: &Store, context: &Context, id: &str) -> Result<(), AdminError> {
    let client = store
        .with_conn(|conn| clients::find(conn, id))?
        .ok_or_else(|| no_such_client(id))?;
    if client.public {
        return Err(AdminError::Invalid(format!(
            "client {id:?} is public and has no secret to rotate"
        )));
    }
    let client_secret = secret::new_client_secret();
    let rotated = audit::admin_change(
        store,
        |tx| clients::set_secret_hash(tx, id, &secret::sha256(&client_secret)),
        |rotated| rotated.then(|| client_event("client_rotate_secret", id)),
    )?;
    if !rotated {
        return Err(no_such_client(id));
    }
    print_secret(context, id, Some(&client_secret))
}

/// The grant kinds asked for, each once in the order given; none: the defaults.
fn grant_kinds(args: &[GrantArg]) -> Vec<GrantKind> {
    if args.is_empty() {
        return DEFAULT_GRANTS.to_vec();
    }
    let mut kinds = Vec::new();
    for arg in args {
        let kind = grant_kind(*arg);
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    kinds
}

fn grant_kind(arg: GrantArg) -> GrantKind {
    match arg {
        GrantArg::AuthorizationCode => GrantKind::AuthorizationCode,
        GrantArg::RefreshToken => GrantKind::RefreshToken,
        GrantArg::ClientCredentials => GrantKind::ClientCredentials,
        GrantArg::DeviceCode => GrantKind::DeviceCode,
    }
}

/// The audit event of a change to the client `client_id`.
fn client_event<'a>(event: &'a str, client_id: &'a str) -> AdminEvent<'a> {
    AdminEvent {
        event,
        client_id: Some(client_id),
        ..AdminEvent::default()
    }
}

/// Prints a client id and, once, its secret.
fn print_secret(
    context: &Context,
    client_id: &str,
    client_secret: Option<&str>,
) -> Result<(), AdminError> {
    let value = json!({"client_id": client_id, "client_secret": client_secret});
    output::either(context, &value, |_| match client_secret {
        Some(secret) => vec![
            format!("client_id:     {client_id}"),
            format!("client_secret: {secret}"),
            "The secret is shown only this once; oauthd keeps only its hash.".to_owned(),
        ],
        None => vec![
            format!("client_id:     {client_id}"),
            "public client: no secret".to_owned(),
        ],
    })
}

/// 16 random bytes as 32 hex digits: unguessable, and safe in URLs and HTTP Basic.
fn random_client_id() -> String {
    let mut bytes = [0u8; 16];
    fill_random(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn kind(client: &Client) -> String {
    let base = if client.public {
        "public"
    } else {
        "confidential"
    };
    let mut kind = base.to_owned();
    if client.require_pkce {
        kind.push_str(", PKCE required");
    }
    if client.introspect_any {
        kind.push_str(", introspects any token");
    }
    kind
}

fn client_row(client: &Client) -> Vec<String> {
    vec![
        client.client_id.to_string(),
        client.name.clone(),
        kind(client),
        output::or_dash(client.brand.as_deref()),
        client.redirect_uris.join(" "),
    ]
}
