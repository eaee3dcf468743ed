//! `oauthd client …`: add, list, show, remove, rotate-secret. A confidential client's
//! secret is generated here, printed once, and stored only as its SHA-256 digest; list and
//! show never print it (the store's `Client` does not even serialise the digest).

use serde_json::json;

use super::{no_such_brand, no_such_client, output, validate, AdminError, Context};
use crate::cli::{ClientAddArgs, ClientCommand};
use crate::oauth::RedirectUri;
use crate::secret;
use crate::secret::fill_random;
use crate::store::audit::{self, AdminEvent};
use crate::store::clients::{self, Client, NewClient};
use crate::store::{brands, Store};

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
                    format!(
                        "scopes:        {}",
                        client.allowed_scopes.as_deref().unwrap_or("any")
                    ),
                    format!("first_party:   {}", client.first_party),
                    format!("created:       {}", client.created_at),
                ];
                lines.extend(
                    client
                        .redirect_uris
                        .iter()
                        .map(|uri| format!("redirect_uri:  {uri}")),
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
    }
}

fn add(store: &Store, context: &Context, args: ClientAddArgs) -> Result<(), AdminError> {
    let name = validate::name("client name", &args.name)?;
    let client_id = match &args.id {
        Some(id) => validate::client_id(id)?.to_owned(),
        None => random_client_id(),
    };
    let mut redirect_uris = Vec::with_capacity(args.redirect_uris.len());
    for raw in &args.redirect_uris {
        let uri =
            RedirectUri::parse(raw).map_err(|e| AdminError::Invalid(format!("{raw:?}: {e}")))?;
        redirect_uris.push(uri.as_str().to_owned());
    }
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
    let allowed_scopes = allowed_scopes(&args.scopes)?;
    let client_secret = (!args.public).then(secret::new_client_secret);
    let secret_hash = client_secret.as_deref().map(secret::sha256);
    let new = NewClient {
        client_id: &client_id,
        name,
        secret_hash: secret_hash.as_ref().map(|h| h.as_slice()),
        require_pkce: args.require_pkce,
        introspect_any: args.introspect_any,
        id_token_alg: super::keys::alg_of(args.id_token_alg),
        allowed_scopes: allowed_scopes.as_deref(),
        first_party: args.first_party,
        brand: brand.as_deref(),
        redirect_uris: &redirect_uris,
    };
    audit::admin_change(
        store,
        |tx| clients::insert(tx, &new),
        |_| Some(client_event("client_add", &client_id)),
    )?;
    print_secret(context, &client_id, client_secret.as_deref())
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

/// The `--scope` values as one space-separated list of distinct names (`None`: none
/// given, any scope allowed). A name must be RFC 6749 §3.3 scope-token characters.
fn allowed_scopes(values: &[String]) -> Result<Option<String>, AdminError> {
    let mut names: Vec<&str> = Vec::new();
    for name in values.iter().flat_map(|v| v.split_whitespace()) {
        let valid = name
            .chars()
            .all(|c| c == '!' || ('#'..='[').contains(&c) || (']'..='~').contains(&c));
        if !valid {
            return Err(AdminError::Invalid(format!(
                "--scope {name:?}: a scope name is printable ASCII without spaces, quotes or backslashes"
            )));
        }
        if !names.contains(&name) {
            names.push(name);
        }
    }
    Ok((!names.is_empty()).then(|| names.join(" ")))
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
        client.client_id.clone(),
        client.name.clone(),
        kind(client),
        output::or_dash(client.brand.as_deref()),
        client.redirect_uris.join(" "),
    ]
}
