//! OAuth clients and their registered redirect URIs. A confidential client's secret is
//! stored only as its SHA-256 digest; public clients have none.

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use super::{conflict_as, iso8601, now, StoreError};
use crate::jose::Alg;
use crate::oauth::ClientId;

/// A registered client. `secret_hash` is never serialised.
#[derive(Debug, Clone, Serialize)]
pub struct Client {
    pub client_id: ClientId,
    pub name: String,
    pub public: bool,
    pub require_pkce: bool,
    pub brand: Option<String>,
    pub redirect_uris: Vec<String>,
    /// A resource server: may introspect every client's tokens, not only its own.
    pub introspect_any: bool,
    /// Signs this client's id_tokens.
    pub id_token_alg: Alg,
    /// First-party: trusted, no consent screen.
    pub first_party: bool,
    pub created_at: String,
    /// The grant types it may use (`client add --grant`), by their registered names.
    pub grant_types: Vec<String>,
    /// Scopes it may be given (space-separated); `None`: no restriction.
    pub allowed_scopes: Option<String>,
    /// Browser origins allowed to call the token endpoints for it (CORS), exact match.
    pub allowed_origins: Vec<String>,
    #[serde(skip)]
    pub secret_hash: Option<Vec<u8>>,
}

/// What `client add` registers.
pub struct NewClient<'a> {
    pub client_id: &'a str,
    pub name: &'a str,
    pub secret_hash: Option<&'a [u8]>,
    pub require_pkce: bool,
    pub introspect_any: bool,
    pub id_token_alg: Alg,
    pub first_party: bool,
    pub brand: Option<&'a str>,
    pub redirect_uris: &'a [String],
    pub grant_types: &'a [&'a str],
    pub allowed_scopes: Option<&'a str>,
    pub allowed_origins: &'a [String],
}

/// Inserts the client and its redirect URIs inside the caller's transaction, so its audit
/// entry commits with it. `Conflict` when the id is taken.
pub fn insert(conn: &Connection, new: &NewClient<'_>) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO clients
             (id, name, secret_hash, is_public, require_pkce, brand_domain, created_at, introspect_any,
              grant_types, allowed_scopes, id_token_alg, first_party)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        params![
            new.client_id,
            new.name,
            new.secret_hash,
            new.secret_hash.is_none(),
            new.require_pkce,
            new.brand,
            now(),
            new.introspect_any,
            new.grant_types.join(" "),
            new.allowed_scopes,
            new.id_token_alg.as_str(),
            new.first_party
        ],
    )
    .map_err(conflict_as("a client with this id"))?;
    insert_origins(conn, new.client_id, new.allowed_origins)?;
    insert_redirect_uris(conn, new.client_id, new.redirect_uris)
}

/// Registers `origins` for the client (a repeated origin is kept once).
fn insert_origins(
    conn: &Connection,
    client_id: &str,
    origins: &[String],
) -> Result<(), StoreError> {
    for origin in origins {
        conn.execute(
            "INSERT OR IGNORE INTO client_origins (client_id, origin) VALUES (?1, ?2)",
            params![client_id, origin],
        )?;
    }
    Ok(())
}

/// Registers `uris` for the client, in order (a repeated URI is kept once).
fn insert_redirect_uris(
    conn: &Connection,
    client_id: &str,
    uris: &[String],
) -> Result<(), StoreError> {
    for (position, uri) in uris.iter().enumerate() {
        conn.execute(
            "INSERT OR IGNORE INTO client_redirect_uris (client_id, uri, position) VALUES (?1, ?2, ?3)",
            params![client_id, uri, position as i64],
        )?;
    }
    Ok(())
}

pub fn find(conn: &Connection, client_id: &str) -> Result<Option<Client>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, name, is_public, require_pkce, brand_domain, created_at, secret_hash,
                introspect_any, grant_types, allowed_scopes, id_token_alg, first_party
         FROM clients WHERE id = ?1",
    )?;
    let Some(mut client) = stmt
        .query_row([client_id], |row| {
            Ok(Client {
                client_id: ClientId::new(row.get::<_, String>(0)?),
                name: row.get(1)?,
                public: row.get(2)?,
                require_pkce: row.get(3)?,
                brand: row.get(4)?,
                created_at: iso8601(row.get(5)?),
                secret_hash: row.get(6)?,
                introspect_any: row.get(7)?,
                grant_types: row
                    .get::<_, String>(8)?
                    .split_whitespace()
                    .map(str::to_owned)
                    .collect(),
                allowed_scopes: row.get(9)?,
                id_token_alg: Alg::parse(&row.get::<_, String>(10)?).unwrap_or(Alg::Rs256),
                first_party: row.get(11)?,
                redirect_uris: Vec::new(),
                allowed_origins: Vec::new(),
            })
        })
        .optional()?
    else {
        return Ok(None);
    };
    client.redirect_uris = redirect_uris(conn, client_id)?;
    client.allowed_origins = allowed_origins(conn, client_id)?;
    Ok(Some(client))
}

fn allowed_origins(conn: &Connection, client_id: &str) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn
        .prepare_cached("SELECT origin FROM client_origins WHERE client_id = ?1 ORDER BY origin")?;
    let origins = stmt
        .query_map([client_id], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(origins)
}

/// Whether `origin` is registered (exactly) for `client_id`, or for any client when the
/// request names none.
pub fn origin_registered(
    conn: &Connection,
    origin: &str,
    client_id: Option<&str>,
) -> Result<bool, StoreError> {
    let found = match client_id {
        Some(client_id) => conn
            .prepare_cached("SELECT 1 FROM client_origins WHERE client_id = ?1 AND origin = ?2")?
            .exists(params![client_id, origin])?,
        None => conn
            .prepare_cached("SELECT 1 FROM client_origins WHERE origin = ?1")?
            .exists([origin])?,
    };
    Ok(found)
}

fn redirect_uris(conn: &Connection, client_id: &str) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT uri FROM client_redirect_uris WHERE client_id = ?1 ORDER BY position",
    )?;
    let uris = stmt
        .query_map([client_id], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(uris)
}

pub fn list(conn: &Connection) -> Result<Vec<Client>, StoreError> {
    let ids: Vec<String> = conn
        .prepare_cached("SELECT id FROM clients ORDER BY id")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut clients = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(client) = find(conn, &id)? {
            clients.push(client);
        }
    }
    Ok(clients)
}

/// Deletes the client; its grants and every token descending from them go with it.
pub fn remove(conn: &Connection, client_id: &str) -> Result<bool, StoreError> {
    Ok(conn.execute("DELETE FROM clients WHERE id = ?1", [client_id])? > 0)
}

/// Replaces a confidential client's secret digest. Returns false when the client does not
/// exist or is public (a public client has no secret to rotate).
pub fn set_secret_hash(
    conn: &Connection,
    client_id: &str,
    secret_hash: &[u8],
) -> Result<bool, StoreError> {
    let changed = conn.execute(
        "UPDATE clients SET secret_hash = ?2 WHERE id = ?1 AND is_public = 0",
        params![client_id, secret_hash],
    )?;
    Ok(changed > 0)
}

pub fn count(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn.query_row("SELECT count(*) FROM clients", [], |r| r.get(0))?)
}

/// What `client update` changes; `None` leaves a field as it is. `brand: Some(None)`
/// clears the brand.
#[derive(Debug, Default)]
pub struct ClientChange<'a> {
    pub name: Option<&'a str>,
    pub brand: Option<Option<&'a str>>,
    pub require_pkce: Option<bool>,
    pub introspect_any: Option<bool>,
    /// The whole new list, in order.
    pub redirect_uris: Option<&'a [String]>,
    /// The whole new set of grant types, by their registered names.
    pub grant_types: Option<&'a [&'a str]>,
    /// `Some(None)`: no restriction.
    pub allowed_scopes: Option<Option<&'a str>>,
    /// The whole new set of allowed origins.
    pub allowed_origins: Option<&'a [String]>,
}

/// Applies `change` to the client inside the caller's transaction. Returns false when the
/// client does not exist.
pub fn update(
    conn: &Connection,
    client_id: &str,
    change: &ClientChange<'_>,
) -> Result<bool, StoreError> {
    let exists = conn.execute(
        "UPDATE clients SET
             name = coalesce(?2, name),
             brand_domain = CASE WHEN ?3 THEN ?4 ELSE brand_domain END,
             require_pkce = coalesce(?5, require_pkce),
             introspect_any = coalesce(?6, introspect_any),
             grant_types = coalesce(?7, grant_types),
             allowed_scopes = CASE WHEN ?8 THEN ?9 ELSE allowed_scopes END
         WHERE id = ?1",
        params![
            client_id,
            change.name,
            change.brand.is_some(),
            change.brand.flatten(),
            change.require_pkce,
            change.introspect_any,
            change.grant_types.map(|g| g.join(" ")),
            change.allowed_scopes.is_some(),
            change.allowed_scopes.flatten()
        ],
    )? > 0;
    if let (true, Some(origins)) = (exists, change.allowed_origins) {
        conn.execute(
            "DELETE FROM client_origins WHERE client_id = ?1",
            [client_id],
        )?;
        insert_origins(conn, client_id, origins)?;
    }
    if let (true, Some(uris)) = (exists, change.redirect_uris) {
        conn.execute(
            "DELETE FROM client_redirect_uris WHERE client_id = ?1",
            [client_id],
        )?;
        insert_redirect_uris(conn, client_id, uris)?;
    }
    Ok(exists)
}

/// The ids of the clients whose sign-in page uses the brand `domain`.
pub fn using_brand(conn: &Connection, domain: &str) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id FROM clients WHERE brand_domain = ?1 COLLATE NOCASE ORDER BY id",
    )?;
    let ids = stmt
        .query_map([domain], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(ids)
}
