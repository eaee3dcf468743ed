//! Printing command results: one JSON document, or human-friendly lines and tables. The
//! only place in `admin/` that writes to stdout, so `--json` output stays exactly one
//! document. Write errors (a closed pipe) become [`AdminError::Output`] instead of the
//! panic `println!` would raise.

use std::io::Write;

use serde::Serialize;

use super::{AdminError, Context};

/// Prints `value` as one pretty JSON document followed by a newline.
pub fn json(value: &impl Serialize) -> Result<(), AdminError> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| AdminError::Invalid(format!("cannot encode JSON: {e}")))?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{text}")?;
    stdout.flush()?;
    Ok(())
}

/// Prints text lines.
pub fn lines<S: AsRef<str>>(lines: &[S]) -> Result<(), AdminError> {
    let mut stdout = std::io::stdout().lock();
    for line in lines {
        writeln!(stdout, "{}", line.as_ref())?;
    }
    stdout.flush()?;
    Ok(())
}

/// Prints `value` as JSON under `--json`, else the text lines `text` makes.
pub fn either<T: Serialize>(
    context: &Context,
    value: &T,
    text: impl FnOnce(&T) -> Vec<String>,
) -> Result<(), AdminError> {
    if context.json {
        json(value)
    } else {
        lines(&text(value))
    }
}

/// Left-aligned columns under a header; `empty` when there are no rows.
pub fn table(header: &[&str], rows: &[Vec<String>], empty: &str) -> Vec<String> {
    if rows.is_empty() {
        return vec![empty.to_owned()];
    }
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let format_row = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        padded.join("  ").trim_end().to_owned()
    };
    let mut out = vec![format_row(header.to_vec())];
    out.extend(
        rows.iter()
            .map(|row| format_row(row.iter().map(String::as_str).collect())),
    );
    out
}

/// `-` for an absent optional value in text output.
pub fn or_dash(value: Option<&str>) -> String {
    value.unwrap_or("-").to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns_and_reports_empty() {
        let rows = vec![
            vec!["a".to_owned(), "bbb".to_owned()],
            vec!["cccc".to_owned(), "d".to_owned()],
        ];
        assert_eq!(
            table(&["X", "Y"], &rows, "none"),
            ["X     Y", "a     bbb", "cccc  d"]
        );
        assert_eq!(table(&["X"], &[], "none"), ["none"]);
    }
}
