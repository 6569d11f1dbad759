//! Statements shared by the handlers: reading rows out as JSON objects and evaluating a
//! row-level predicate against a row.
//!
//! Row-level predicates come from `policy.rs` and refer to the row as `"table"."column"`. Two
//! ways of evaluating one against a row:
//! - [`row_passes`] — for a row that is *not yet written* (an insert, the new version of an
//!   updated row): the row's values are bound into a one-row subquery named like the table,
//!   so the predicate reads them, while the predicate's own subqueries (membership lookups)
//!   still see the table as it is *before* the write. That is what Postgres does with
//!   `WITH CHECK`, and it matters: a member's own pending "make me admin" row must not count
//!   as the admin row that would allow it.
//! - [`rowid_passes`] — for a row that is in the table (the `SELECT` visibility Postgres
//!   requires of rows a write returns).
//!
//! All SQL here is built from schema names and policy text; values are bound.

use rusqlite::types::Value;
use rusqlite::{params_from_iter, Connection};
use serde_json::{Map, Value as Json};

use super::error::RestError;
use super::query::Selection;
use super::value;
use crate::schema::Table;

/// A JSON object per row, keys in selection order.
pub type JsonRow = Map<String, Json>;

/// Runs `sql` (whose result columns are `selection`'s) and turns each row into a JSON object.
pub fn json_rows(
    conn: &Connection,
    sql: &str,
    params: &[Value],
    selection: &Selection,
) -> Result<Vec<JsonRow>, RestError> {
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query(params_from_iter(params.iter()))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(json_row(row, selection, 0)?);
    }
    Ok(out)
}

/// One result row (from column `skip` on) as a JSON object.
pub fn json_row(row: &rusqlite::Row<'_>, selection: &Selection, skip: usize) -> Result<JsonRow, RestError> {
    let mut obj = Map::new();
    for (i, (key, _)) in selection.items.iter().enumerate() {
        obj.insert(key.clone(), value::to_json(row.get_ref(skip + i)?));
    }
    Ok(obj)
}

/// The selected columns of the rows with these rowids, in that order.
pub fn rows_by_rowid(
    conn: &Connection,
    table: &Table,
    selection: &Selection,
    rowids: &[i64],
) -> Result<Vec<JsonRow>, RestError> {
    let sql = format!("SELECT {} FROM \"{}\" WHERE rowid = ?1", selection.sql(table), table.name);
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut out = Vec::with_capacity(rowids.len());
    for id in rowids {
        let mut rows = stmt.query([id])?;
        if let Some(row) = rows.next()? {
            out.push(json_row(row, selection, 0)?);
        }
    }
    Ok(out)
}

/// Whether `pred` holds for a row given as values in the table's column order, evaluated
/// against the table as it is now (see the module doc).
pub fn row_passes(conn: &Connection, table: &Table, pred: &str, row: &[Value]) -> Result<bool, RestError> {
    let cols: Vec<String> =
        table.columns.iter().enumerate().map(|(i, c)| format!("?{} AS \"{}\"", i + 1, c.name)).collect();
    let sql = format!("SELECT COALESCE(({pred}), 0) FROM (SELECT {}) AS \"{}\"", cols.join(", "), table.name);
    let mut stmt = conn.prepare_cached(&sql)?;
    let ok: i64 = stmt.query_row(params_from_iter(row.iter()), |r| r.get(0))?;
    Ok(ok != 0)
}

/// Whether `pred` holds for the stored row with this rowid.
pub fn rowid_passes(conn: &Connection, table: &Table, pred: &str, rowid: i64) -> Result<bool, RestError> {
    let sql = format!("SELECT COALESCE(({pred}), 0) FROM \"{}\" WHERE rowid = ?1", table.name);
    let mut stmt = conn.prepare_cached(&sql)?;
    let ok: Option<i64> = stmt.query_row([rowid], |r| r.get(0)).map(Some).or_else(|e| match e {
        rusqlite::Error::QueryReturnedNoRows => Ok(None),
        e => Err(e),
    })?;
    Ok(ok.unwrap_or(0) != 0)
}

/// A whole stored row: its rowid and its values in column order.
pub struct StoredRow {
    pub rowid: i64,
    pub values: Vec<Value>,
}

/// Reads whole rows (`SELECT rowid, every column … <tail>`), e.g. the targets of an update.
pub fn stored_rows(
    conn: &Connection,
    table: &Table,
    tail: &str,
    params: &[Value],
) -> Result<Vec<StoredRow>, RestError> {
    let cols: Vec<String> = table.columns.iter().map(|c| format!("\"{}\".\"{}\"", table.name, c.name)).collect();
    let sql = format!("SELECT \"{}\".rowid, {} FROM \"{}\"{tail}", table.name, cols.join(", "), table.name);
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(params_from_iter(params.iter()))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let rowid: i64 = row.get(0)?;
        let values = (0..table.columns.len()).map(|i| row.get::<_, Value>(i + 1)).collect::<Result<Vec<_>, _>>()?;
        out.push(StoredRow { rowid, values });
    }
    Ok(out)
}
