//! OAuth clients and their registered redirect URIs. A confidential client's secret is
//! stored only as its SHA-256 digest; public clients have none.

use serde::Serialize;

use super::sql::{lock_rows, Db, Row};
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
pub fn insert(db: &impl Db, new: &NewClient<'_>) -> Result<(), StoreError> {
    db.execute(
        "INSERT INTO clients
             (id, name, secret_hash, is_public, require_pkce, brand_domain, created_at, introspect_any,
              grant_types, allowed_scopes, id_token_alg, first_party)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        &[
            &new.client_id,
            &new.name,
            &new.secret_hash,
            &new.secret_hash.is_none(),
            &new.require_pkce,
            &new.brand,
            &now(),
            &new.introspect_any,
            &new.grant_types.join(" "),
            &new.allowed_scopes,
            &new.id_token_alg.as_str(),
            &new.first_party,
        ],
    )
    .map_err(conflict_as("a client with this id"))?;
    insert_origins(db, new.client_id, new.allowed_origins)?;
    insert_redirect_uris(db, new.client_id, new.redirect_uris)
}

/// Registers `origins` for the client (a repeated origin is kept once).
fn insert_origins(db: &impl Db, client_id: &str, origins: &[String]) -> Result<(), StoreError> {
    for origin in origins {
        db.execute(
            "INSERT INTO client_origins (client_id, origin) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
            &[&client_id, origin],
        )?;
    }
    Ok(())
}

/// Registers `uris` for the client, in order (a repeated URI is kept once).
fn insert_redirect_uris(db: &impl Db, client_id: &str, uris: &[String]) -> Result<(), StoreError> {
    for (position, uri) in uris.iter().enumerate() {
        db.execute(
            "INSERT INTO client_redirect_uris (client_id, uri, position) VALUES (?1, ?2, ?3)
             ON CONFLICT DO NOTHING",
            &[&client_id, uri, &(position as i64)],
        )?;
    }
    Ok(())
}

/// The client's own row ([`find`]). Where statements cross a network (PostgreSQL) it also carries the
/// redirect URIs and origins, each list joined by `?2` ([`LIST_SEPARATOR`]): every token
/// request reads its client, one round trip instead of three. In process (SQLite) three
/// small statements cost less than the aggregating one (callgrind: introspection 111 k
/// instructions against 142 k), so there the lists are read on their own.
macro_rules! client_columns {
    () => {
        "SELECT id, name, is_public, require_pkce, brand_domain, created_at, secret_hash,
                introspect_any, grant_types, allowed_scopes, id_token_alg, first_party"
    };
}
const CLIENT_ROW: &str = concat!(client_columns!(), " FROM clients c WHERE id = ?1");
const CLIENT_ROW_WITH_LISTS: &str = concat!(
    client_columns!(),
    ",
                (SELECT string_agg(uri, ?2 ORDER BY position) FROM client_redirect_uris
                 WHERE client_id = c.id),
                (SELECT string_agg(origin, ?2 ORDER BY origin) FROM client_origins
                 WHERE client_id = c.id)
         FROM clients c WHERE id = ?1"
);

/// Joins a client's listed values read with [`CLIENT_ROW_WITH_LISTS`]: neither a redirect URI nor
/// an origin may contain whitespace.
const LIST_SEPARATOR: &str = "\n";

/// [`find`] for a change made from what it returns (`client update`): inside the caller's
/// transaction, it locks the client's row where the database has concurrent writers, so
/// two updates of one client cannot both start from the same lists. The lock comes first,
/// in a statement of its own: a statement that waited for a lock still reads its lists
/// as they were when it started.
pub fn find_for_update(db: &impl Db, client_id: &str) -> Result<Option<Client>, StoreError> {
    lock_rows(db, "SELECT 1 FROM clients WHERE id = ?1", &[&client_id])?;
    find(db, client_id)
}

pub fn find(db: &impl Db, client_id: &str) -> Result<Option<Client>, StoreError> {
    if !db.statements_cross_a_network() {
        let Some(mut client) =
            db.query_opt(CLIENT_ROW, &[&client_id], |row| client_from_row(row, None))?
        else {
            return Ok(None);
        };
        client.redirect_uris = db.query_all(
            "SELECT uri FROM client_redirect_uris WHERE client_id = ?1 ORDER BY position",
            &[&client_id],
            |r| r.get(0),
        )?;
        client.allowed_origins = db.query_all(
            "SELECT origin FROM client_origins WHERE client_id = ?1 ORDER BY origin",
            &[&client_id],
            |r| r.get(0),
        )?;
        return Ok(Some(client));
    }
    db.query_opt(
        CLIENT_ROW_WITH_LISTS,
        &[&client_id, &LIST_SEPARATOR],
        |row| client_from_row(row, Some(12)),
    )
}

/// [`find`] on PostgreSQL (its one statement), awaited on the server's runtime.
#[cfg(feature = "postgres")]
pub async fn find_awaited(
    reads: &super::pg::ReadLine,
    client_id: &str,
) -> Result<Option<Client>, StoreError> {
    let read = reads.query_opt(
        CLIENT_ROW_WITH_LISTS,
        &[&client_id, &LIST_SEPARATOR],
        |row| client_from_row(row, Some(12)),
    );
    read.await
}

/// A client from [`CLIENT_ROW`]'s columns, with its lists from the joined columns at `lists`
/// and `lists + 1` when the row has them.
fn client_from_row(row: &Row<'_>, lists: Option<usize>) -> Result<Client, StoreError> {
    let list = |column: usize| -> Result<Vec<String>, StoreError> {
        Ok(row
            .get::<Option<String>>(column)?
            .map(|joined| joined.split(LIST_SEPARATOR).map(str::to_owned).collect())
            .unwrap_or_default())
    };
    Ok(Client {
        client_id: ClientId::new(row.get::<String>(0)?),
        name: row.get(1)?,
        public: row.get(2)?,
        require_pkce: row.get(3)?,
        brand: row.get(4)?,
        created_at: iso8601(row.get(5)?),
        secret_hash: row.get(6)?,
        introspect_any: row.get(7)?,
        grant_types: row
            .get::<String>(8)?
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
        allowed_scopes: row.get(9)?,
        id_token_alg: Alg::parse(&row.get::<String>(10)?).unwrap_or(Alg::Rs256),
        first_party: row.get(11)?,
        redirect_uris: lists.map(list).transpose()?.unwrap_or_default(),
        allowed_origins: lists
            .map(|at| list(at + 1))
            .transpose()?
            .unwrap_or_default(),
    })
}

/// Whether `origin` is registered (exactly) for `client_id`, or for any client when the
/// request names none.
pub fn origin_registered(
    db: &impl Db,
    origin: &str,
    client_id: Option<&str>,
) -> Result<bool, StoreError> {
    let found = match client_id {
        Some(client_id) => db.query_opt(
            "SELECT 1 FROM client_origins WHERE client_id = ?1 AND origin = ?2",
            &[&client_id, &origin],
            |_| Ok(()),
        )?,
        None => db.query_opt(
            "SELECT 1 FROM client_origins WHERE origin = ?1",
            &[&origin],
            |_| Ok(()),
        )?,
    };
    Ok(found.is_some())
}

pub fn list(db: &impl Db) -> Result<Vec<Client>, StoreError> {
    let ids: Vec<String> = db.query_all("SELECT id FROM clients ORDER BY id", &[], |r| r.get(0))?;
    let mut clients = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(client) = find(db, &id)? {
            clients.push(client);
        }
    }
    Ok(clients)
}

/// Deletes the client; its grants and every token descending from them go with it.
/// The grants go first, by a statement of their own: a refresh or exchange locks its
/// grant and then, logging its attempt, share-locks the client row (a foreign key check),
/// so a removal that locked the client row first and then cascaded to the grant would
/// deadlock with it on PostgreSQL (see the lock order in `grants`).
pub fn remove(db: &impl Db, client_id: &str) -> Result<bool, StoreError> {
    db.execute("DELETE FROM grants WHERE client_id = ?1", &[&client_id])?;
    Ok(db.execute("DELETE FROM clients WHERE id = ?1", &[&client_id])? > 0)
}

/// Replaces a confidential client's secret digest. Returns false when the client does not
/// exist or is public (a public client has no secret to rotate).
pub fn set_secret_hash(
    db: &impl Db,
    client_id: &str,
    secret_hash: &[u8],
) -> Result<bool, StoreError> {
    let changed = db.execute(
        "UPDATE clients SET secret_hash = ?2 WHERE id = ?1 AND is_public = 0",
        &[&client_id, &secret_hash],
    )?;
    Ok(changed > 0)
}

pub fn count(db: &impl Db) -> Result<i64, StoreError> {
    db.query_one("SELECT count(*) FROM clients", &[], |r| r.get(0))
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
    db: &impl Db,
    client_id: &str,
    change: &ClientChange<'_>,
) -> Result<bool, StoreError> {
    let exists = db.execute(
        "UPDATE clients SET
             name = coalesce(?2, name),
             brand_domain = CASE WHEN ?3 THEN ?4 ELSE brand_domain END,
             require_pkce = coalesce(?5, require_pkce),
             introspect_any = coalesce(?6, introspect_any),
             grant_types = coalesce(?7, grant_types),
             allowed_scopes = CASE WHEN ?8 THEN ?9 ELSE allowed_scopes END
         WHERE id = ?1",
        &[
            &client_id,
            &change.name,
            &change.brand.is_some(),
            &change.brand.flatten(),
            &change.require_pkce,
            &change.introspect_any,
            &change.grant_types.map(|g| g.join(" ")),
            &change.allowed_scopes.is_some(),
            &change.allowed_scopes.flatten(),
        ],
    )? > 0;
    if let (true, Some(origins)) = (exists, change.allowed_origins) {
        db.execute(
            "DELETE FROM client_origins WHERE client_id = ?1",
            &[&client_id],
        )?;
        insert_origins(db, client_id, origins)?;
    }
    if let (true, Some(uris)) = (exists, change.redirect_uris) {
        db.execute(
            "DELETE FROM client_redirect_uris WHERE client_id = ?1",
            &[&client_id],
        )?;
        insert_redirect_uris(db, client_id, uris)?;
    }
    Ok(exists)
}

/// The ids of the clients whose sign-in page uses the brand `domain`.
pub fn using_brand(db: &impl Db, domain: &str) -> Result<Vec<String>, StoreError> {
    db.query_all(
        "SELECT id FROM clients WHERE brand_domain = ?1 COLLATE NOCASE ORDER BY id",
        &[&domain],
        |r| r.get(0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_backends::on_both_backends;

    fn new_client<'a>(id: &'a str, uris: &'a [String], origins: &'a [String]) -> NewClient<'a> {
        NewClient {
            client_id: id,
            name: "App",
            secret_hash: Some(b"digest"),
            require_pkce: true,
            introspect_any: false,
            id_token_alg: Alg::Es256,
            first_party: false,
            brand: None,
            redirect_uris: uris,
            grant_types: &["authorization_code", "refresh_token"],
            allowed_scopes: Some("openid email"),
            allowed_origins: origins,
        }
    }

    fn client_verbs(db: &impl Db) {
        let uris = [
            "https://b/cb".to_owned(),
            "https://a/cb".into(),
            "https://b/cb".into(),
        ];
        let origins = ["https://z.example".to_owned(), "https://a.example".into()];
        insert(db, &new_client("app", &uris, &origins)).expect("insert");
        let taken = insert(db, &new_client("app", &[], &[])).expect_err("same id");
        assert!(matches!(taken, StoreError::Conflict(_)), "{taken}");

        let app = find(db, "app").expect("find").expect("found");
        assert_eq!(
            app.redirect_uris,
            ["https://b/cb", "https://a/cb"],
            "in order, once"
        );
        assert_eq!(
            app.allowed_origins,
            ["https://a.example", "https://z.example"]
        );
        assert_eq!(app.grant_types, ["authorization_code", "refresh_token"]);
        assert_eq!(
            (
                app.public,
                app.require_pkce,
                app.first_party,
                app.id_token_alg
            ),
            (false, true, false, Alg::Es256)
        );
        assert_eq!(app.secret_hash.as_deref(), Some(&b"digest"[..]));
        assert!(find(db, "missing").expect("find").is_none());
        let locked = find_for_update(db, "app").expect("find").expect("found");
        assert_eq!(locked.redirect_uris, app.redirect_uris);

        assert!(origin_registered(db, "https://a.example", Some("app")).expect("origin"));
        assert!(origin_registered(db, "https://a.example", None).expect("origin"));
        assert!(!origin_registered(db, "https://a.example", Some("other")).expect("origin"));
        assert!(!origin_registered(db, "https://A.example", None).expect("exact match"));

        assert!(set_secret_hash(db, "app", b"new").expect("rotate"));
        assert!(!set_secret_hash(db, "missing", b"new").expect("rotate"));
        super::super::brands::insert(db, "Brand.example", "B", None, None).expect("brand");
        let new_uris = ["https://c/cb".to_owned()];
        let change = ClientChange {
            name: Some("Renamed"),
            brand: Some(Some("brand.EXAMPLE")),
            require_pkce: Some(false),
            redirect_uris: Some(&new_uris),
            grant_types: Some(&["client_credentials"]),
            allowed_scopes: Some(None),
            allowed_origins: Some(&[]),
            ..ClientChange::default()
        };
        assert!(update(db, "app", &change).expect("update"));
        assert!(!update(db, "missing", &change).expect("update"));
        let app = find(db, "app").expect("find").expect("found");
        assert_eq!(
            (app.name.as_str(), app.brand.as_deref(), app.require_pkce),
            ("Renamed", Some("brand.EXAMPLE"), false)
        );
        assert_eq!(
            (app.redirect_uris, app.allowed_origins),
            (new_uris.to_vec(), vec![])
        );
        assert_eq!(
            (app.grant_types, app.allowed_scopes),
            (vec!["client_credentials".to_owned()], None)
        );
        assert_eq!(app.secret_hash.as_deref(), Some(&b"new"[..]));
        assert_eq!(using_brand(db, "BRAND.example").expect("using"), ["app"]);

        let public = NewClient {
            secret_hash: None,
            ..new_client("pub", &[], &[])
        };
        insert(db, &public).expect("insert public");
        assert!(!set_secret_hash(db, "pub", b"x").expect("public has no secret"));
        let listed: Vec<_> = list(db)
            .expect("list")
            .into_iter()
            .map(|c| (c.client_id.to_string(), c.public))
            .collect();
        assert_eq!(
            listed,
            [("app".to_owned(), false), ("pub".to_owned(), true)]
        );
        assert_eq!(count(db).expect("count"), 2);
        assert!(remove(db, "app").expect("remove"));
        assert!(!remove(db, "app").expect("remove again"));
        assert_eq!(count(db).expect("count"), 1);
    }
    on_both_backends!(client_verbs);

    /// Two `client update`s of one client at once on PostgreSQL, each adding a redirect URI
    /// to the list it read: the row lock makes the second read the first one's list, so
    /// neither URI is lost (without it, the second update writes back a stale list).
    #[cfg(feature = "postgres")]
    #[test]
    fn concurrent_list_updates_keep_every_change_on_postgres() {
        use std::sync::mpsc;
        use std::time::Duration;

        use crate::store::pg::{test_cluster, PgConn, PgStore};

        let url = test_cluster::shared().new_database();
        let store = PgStore::connect(&url).expect("connect");
        store
            .with_conn(|db| insert(db, &new_client("app", &["https://0/cb".into()], &[])))
            .expect("client");
        // Reads the list, calls `after_read`, writes the list back with `uri` added.
        let add_uri = |db: &PgConn, uri: &str, after_read: &dyn Fn()| -> Result<(), StoreError> {
            let client = find_for_update(db, "app")?.expect("client");
            after_read();
            let mut uris = client.redirect_uris;
            uris.push(uri.to_owned());
            let change = ClientChange {
                redirect_uris: Some(&uris),
                ..ClientChange::default()
            };
            update(db, "app", &change).map(drop)
        };
        let (read, first_read) = mpsc::channel();
        std::thread::scope(|s| {
            let first = s.spawn(|| {
                let pause = || {
                    read.send(()).expect("signal");
                    // Long enough for the other update to read the same list, were it not locked.
                    std::thread::sleep(Duration::from_millis(1500));
                };
                store.transaction(|db| add_uri(db, "https://a/cb", &pause))
            });
            first_read.recv().expect("first read");
            store
                .transaction(|db| add_uri(db, "https://b/cb", &|| ()))
                .expect("second update");
            first.join().expect("thread").expect("first update");
        });
        let uris = store
            .with_conn(|db| find(db, "app"))
            .expect("find")
            .expect("client")
            .redirect_uris;
        assert_eq!(uris, ["https://0/cb", "https://a/cb", "https://b/cb"]);
    }
}
