//! `oauthd migrate --to postgres://…`: copies the SQLite database into an empty PostgreSQL
//! one (the store does the copying and the checks) and reports each table's row count.

use super::{AdminError, Context};
use crate::store::Store;

#[cfg(feature = "postgres")]
pub fn run(store: &Store, context: &Context, url: &str) -> Result<(), AdminError> {
    use crate::store::pg::{copy, redacted};

    let Some(source) = store.file() else {
        return Err(AdminError::Invalid(
            "migrate --to copies an SQLite database: give its file as --db".into(),
        ));
    };
    let target = redacted(url);
    let progress = super::progress::Progress::start(context, &format!("copying to {target}"));
    let copied = copy::copy_sqlite(source, url).map_err(|e| AdminError::Invalid(e.to_string()))?;
    drop(progress);
    let total: i64 = copied.iter().map(|c| c.rows).sum();
    let report = serde_json::json!({ "to": target, "rows": total, "tables": copied });
    super::output::either(context, &report, |_| {
        let mut lines = vec![format!(
            "copied {} to {target}: {total} rows in {} tables, every count checked",
            context.db,
            copied.len()
        )];
        let rows: Vec<Vec<String>> = copied
            .iter()
            .map(|c| vec![c.table.to_owned(), c.rows.to_string()])
            .collect();
        lines.extend(super::output::table(&["TABLE", "ROWS"], &rows, "no tables"));
        lines
    })
}

/// Unreachable (`--to` is refused while parsing in a build without PostgreSQL), but a
/// usage error all the same.
#[cfg(not(feature = "postgres"))]
pub fn run(_: &Store, _: &Context, _: &str) -> Result<(), AdminError> {
    Err(AdminError::Usage(
        "this oauthd was built without PostgreSQL (cargo feature `postgres`)".into(),
    ))
}
