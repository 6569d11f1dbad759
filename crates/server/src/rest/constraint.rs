//! Integrity errors as Postgres reports them.
//!
//! Not-null and `CHECK (col IN …)` constraints are known from `schema.rs` and checked on the
//! full row before it is written ([`check_row`]), in Postgres's order (every not-null first,
//! then the checks), so their messages carry the column and the failing row exactly as
//! Postgres's do. Unique keys, foreign keys, other `CHECK`s and trigger exceptions are left to
//! SQLite, whose terse errors [`map_write_error`] turns into Postgres's:
//! - `UNIQUE constraint failed: t.a, t.b` → `23505` `duplicate key value violates unique
//!   constraint "t_pkey"` / `Key (a, b)=(…) already exists.`;
//! - `FOREIGN KEY constraint failed` (SQLite does not say which) → the foreign keys of the
//!   table are looked up in SQLite's catalogue and the row's values probed to name the one
//!   that failed: `23503` `… violates foreign key constraint "t_col_fkey"` / `Key (col)=(…) is
//!   not present in table "parent".`;
//! - `RAISE(ABORT, msg)` in a trigger → `P0001` with `msg` (what `RAISE EXCEPTION` gives).
//!
//! The statement that failed is undone by SQLite and the handler's error rolls back the whole
//! transaction, so nothing of a refused request is kept.

use rusqlite::types::Value;
use rusqlite::{ffi, Connection};

use super::error::{PgError, RestError};
use super::value;
use crate::schema::{Fill, Table};

fn failing_row(row: &[Value]) -> String {
    format!("Failing row contains ({}).", row.iter().map(value::display).collect::<Vec<_>>().join(", "))
}

/// Not-null and value-list checks of a full row (values in column order; server-sequence
/// columns may still be NULL, they are assigned on insert).
pub fn check_row(table: &Table, row: &[Value]) -> Result<(), PgError> {
    for (c, v) in table.columns.iter().zip(row) {
        if !c.nullable && c.fill != Fill::Serial && *v == Value::Null {
            return Err(PgError::new(
                "23502",
                format!(
                    "null value in column \"{}\" of relation \"{}\" violates not-null constraint",
                    c.name, table.name
                ),
            )
            .details(failing_row(row)));
        }
    }
    for (c, v) in table.columns.iter().zip(row) {
        if let (Some(allowed), Value::Text(t)) = (c.one_of, v) {
            if !allowed.contains(&t.as_str()) {
                return Err(check_violation(table, c.name, row));
            }
        }
    }
    Ok(())
}

fn check_violation(table: &Table, column: &str, row: &[Value]) -> PgError {
    PgError::new(
        "23514",
        format!("new row for relation \"{}\" violates check constraint \"{}_{column}_check\"", table.name, table.name),
    )
    .details(failing_row(row))
}

/// Translates an error of an `INSERT`/`UPDATE` of `row` (column order) into Postgres's terms.
pub fn map_write_error(err: rusqlite::Error, conn: &Connection, table: &Table, row: &[Value]) -> RestError {
    let rusqlite::Error::SqliteFailure(code, msg) = &err else { return err.into() };
    let msg = msg.clone().unwrap_or_default();
    match code.extended_code {
        ffi::SQLITE_CONSTRAINT_PRIMARYKEY | ffi::SQLITE_CONSTRAINT_UNIQUE => unique_violation(table, &msg, row).into(),
        ffi::SQLITE_CONSTRAINT_NOTNULL => {
            let col = msg.rsplit('.').next().unwrap_or("").trim();
            PgError::new(
                "23502",
                format!("null value in column \"{col}\" of relation \"{}\" violates not-null constraint", table.name),
            )
            .details(failing_row(row))
            .into()
        }
        ffi::SQLITE_CONSTRAINT_CHECK => {
            let expr = msg.trim_start_matches("CHECK constraint failed:").trim();
            let col = table
                .columns
                .iter()
                .find(|c| expr.split(|ch: char| !(ch.is_alphanumeric() || ch == '_')).any(|w| w == c.name))
                .map(|c| c.name)
                .unwrap_or("row");
            check_violation(table, col, row).into()
        }
        ffi::SQLITE_CONSTRAINT_FOREIGNKEY => match foreign_key_violation(conn, table, row) {
            Ok(e) => e.into(),
            Err(e) => e,
        },
        ffi::SQLITE_CONSTRAINT_TRIGGER => PgError::raise(msg).into(),
        _ => err.into(),
    }
}

fn unique_violation(table: &Table, msg: &str, row: &[Value]) -> PgError {
    let cols: Vec<&str> = msg
        .split_once(':')
        .map(|(_, rest)| rest)
        .unwrap_or("")
        .split(',')
        .map(|c| c.trim().rsplit('.').next().unwrap_or("").trim())
        .filter(|c| table.column(c).is_some())
        .collect();
    let name = if !cols.is_empty() && cols.len() == table.primary_key.len() && cols.iter().all(|c| table.is_key(c)) {
        format!("{}_pkey", table.name)
    } else {
        format!("{}_{}_key", table.name, cols.join("_"))
    };
    let vals: Vec<String> = cols
        .iter()
        .map(|c| {
            table
                .columns
                .iter()
                .position(|col| col.name == *c)
                .and_then(|i| row.get(i))
                .map(value::display)
                .unwrap_or_default()
        })
        .collect();
    PgError::new("23505", format!("duplicate key value violates unique constraint \"{name}\"")).details(format!(
        "Key ({})=({}) already exists.",
        cols.join(", "),
        vals.join(", ")
    ))
}

fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// Finds which foreign key of `table` the row breaks, from SQLite's catalogue.
fn foreign_key_violation(conn: &Connection, table: &Table, row: &[Value]) -> Result<PgError, RestError> {
    let mut stmt = conn.prepare_cached(&format!("PRAGMA foreign_key_list({})", quote_ident(table.name)))?;
    let fks: Vec<(String, String, String)> = stmt
        .query_map([], |r| {
            Ok((r.get::<_, String>(2)?, r.get::<_, String>(3)?, r.get::<_, Option<String>>(4)?.unwrap_or_default()))
        })?
        .collect::<Result<_, _>>()?;
    for (parent, from, to) in fks {
        let Some(i) = table.columns.iter().position(|c| c.name == from) else { continue };
        let v = &row[i];
        if *v == Value::Null {
            continue;
        }
        let to = if to.is_empty() { "rowid".to_string() } else { quote_ident(&to) };
        let sql = format!("SELECT count(*) FROM {} WHERE {to} = ?1", quote_ident(&parent));
        let found: i64 = conn.prepare_cached(&sql)?.query_row([v], |r| r.get(0))?;
        if found == 0 {
            return Ok(PgError::new(
                "23503",
                format!(
                    "insert or update on table \"{}\" violates foreign key constraint \"{}_{from}_fkey\"",
                    table.name, table.name
                ),
            )
            .details(format!("Key ({from})=({}) is not present in table \"{parent}\".", value::display(v))));
        }
    }
    Ok(PgError::new("23503", format!("insert or update on table \"{}\" violates a foreign key constraint", table.name)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema;

    #[test]
    fn not_null_comes_before_check_and_names_the_column() {
        let t = schema::table("room_members").expect("table");
        let row = vec![
            Value::Text("r".into()),
            Value::Null,
            Value::Text("boss".into()),
            Value::Text("now".into()),
            Value::Null,
        ];
        let e = check_row(t, &row).expect_err("user_id is null");
        assert_eq!(e.code, "23502");
        assert_eq!(
            e.message,
            "null value in column \"user_id\" of relation \"room_members\" violates not-null constraint"
        );
        assert_eq!(e.details.as_deref(), Some("Failing row contains (r, null, boss, now, null)."));
        let row = vec![
            Value::Text("r".into()),
            Value::Text("u".into()),
            Value::Text("boss".into()),
            Value::Text("now".into()),
            Value::Null,
        ];
        let e = check_row(t, &row).expect_err("role is not in the list");
        assert_eq!(
            (e.code, e.message.as_str()),
            ("23514", "new row for relation \"room_members\" violates check constraint \"room_members_role_check\"")
        );
    }

    #[test]
    fn unique_messages_name_the_key() {
        let t = schema::table("room_members").expect("table");
        let row = vec![
            Value::Text("r".into()),
            Value::Text("u".into()),
            Value::Text("member".into()),
            Value::Null,
            Value::Null,
        ];
        let e = unique_violation(t, "UNIQUE constraint failed: room_members.room_id, room_members.user_id", &row);
        assert_eq!(e.message, "duplicate key value violates unique constraint \"room_members_pkey\"");
        assert_eq!(e.details.as_deref(), Some("Key (room_id, user_id)=(r, u) already exists."));
        let t = schema::table("document_updates").expect("table");
        let row = vec![Value::Null, Value::Text("i".into()), Value::Null, Value::Null, Value::Null, Value::Null];
        let e = unique_violation(t, "UNIQUE constraint failed: document_updates.id", &row);
        assert_eq!(e.message, "duplicate key value violates unique constraint \"document_updates_id_key\"");
    }
}
