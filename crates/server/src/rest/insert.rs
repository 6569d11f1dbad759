//! `POST` on a table: insert one object or an array of objects, or upsert them.
//!
//! Everything happens in one write transaction, so an array is all-or-nothing. In order:
//! 1. (before the transaction) columns: the `columns=` parameter, else the union of the
//!    objects' keys; an unknown one is `PGRST204`. Each object becomes a full row in column
//!    order: a value the client sent (typed by its column, `22P02`… when it does not parse),
//!    else the column default (`columns=` without `Prefer: missing=default` gives NULL, as in
//!    PostgREST). Server-owned columns are forced: `ServerNow`/`Touch` get the request's time
//!    whatever was sent, `Serial` is assigned by SQLite; sending a `Serial` column at all is
//!    `428C9`, as for a Postgres `GENERATED ALWAYS` identity.
//! 2. Every row must pass the `INSERT … WITH CHECK` rule (`42501`; 403 signed in, 401
//!    anon), evaluated before anything is written; then the schema's not-null and value-list
//!    checks (`23502`, `23514`).
//! 3. Upsert (`Prefer: resolution=…`): the conflict target is `on_conflict=` or the primary
//!    key and must be a unique key of the table (`42P10`). A row whose target values exist is
//!    skipped (`ignore-duplicates`) or merged (`merge-duplicates`): only the columns sent
//!    (minus the target and server-owned ones) change, `Touch` columns are set to now; the
//!    existing row must be visible and updatable (`SELECT`/`UPDATE USING`, else `42501`), the
//!    merged row must pass `UPDATE WITH CHECK`, and the caller needs the UPDATE privilege
//!    (`Table::updatable`; service_role: non-key columns) for every column of the payload,
//!    the conflict target included, because PostgREST's `ON CONFLICT DO UPDATE SET` lists them
//!    all and Postgres checks each. Touching one row twice in a merge is `21000`, as in Postgres.
//! 4. Inserts: SQLite reports unique and foreign-key failures, translated by `constraint`.
//! 5. `Prefer: return=representation`: the written rows must be visible to the caller
//!    (`SELECT USING`, else `42501`, as Postgres checks `RETURNING`), then come back shaped
//!    by `select=`. With a singular `Accept` anything but one row is `PGRST116` and rolls back.

use std::collections::HashSet;

use axum::body::Bytes;
use axum::http::{header, StatusCode};
use axum::response::Response;
use rusqlite::params_from_iter;
use rusqlite::types::Value;
use rusqlite::Connection;
use serde_json::{Map, Value as Json};

use super::constraint::{check_row, map_write_error};
use super::error::{PgError, RestError};
use super::grammar;
use super::negotiate::{Resolution, Return};
use super::query::Selection;
use super::response::{content_range, rows_body, Reply};
use super::sql::{row_passes, rowid_passes, rows_by_rowid, stored_rows, JsonRow};
use super::{json_body, value, Ctx};
use crate::policy::{self, Op, Role};
use crate::schema::{self, Column, Fill, Table};

/// One row proposed for insertion: every column's value in table order.
struct Proposed {
    values: Vec<Value>,
}

/// A column's default when the client did not send it.
fn default_value(col: &Column, now: &str) -> Value {
    match col.fill {
        Fill::RandomUuid => Value::Text(uuid::Uuid::new_v4().to_string()),
        Fill::Now | Fill::ServerNow | Fill::Touch => Value::Text(now.to_string()),
        Fill::Const(c) if col.ty.is_integer() => c.parse::<i64>().map(Value::Integer).unwrap_or(Value::Null),
        Fill::Const(c) => Value::Text(c.to_string()),
        Fill::Serial | Fill::None => Value::Null,
    }
}

/// The objects of the body.
fn objects(body: &[u8]) -> Result<Vec<Map<String, Json>>, RestError> {
    let not_objects = || RestError::InvalidBody {
        message: "Empty or invalid json".into(),
        details: Some("the body must be a JSON object or an array of JSON objects".into()),
    };
    match json_body(body)? {
        Json::Object(o) => Ok(vec![o]),
        Json::Array(items) => {
            items.into_iter().map(|i| if let Json::Object(o) = i { Ok(o) } else { Err(not_objects()) }).collect()
        }
        _ => Err(not_objects()),
    }
}

fn payload_column(table: &'static Table, name: &str) -> Result<&'static Column, RestError> {
    table.column(name).ok_or_else(|| RestError::ColumnNotFound { table: table.name.into(), column: name.into() })
}

/// The conflict target of an upsert: `on_conflict=` or the primary key.
fn conflict_target(table: &'static Table, on_conflict: Option<&str>) -> Result<Vec<&'static Column>, RestError> {
    match on_conflict {
        None => Ok(table.primary_key.iter().filter_map(|k| table.column(k)).collect()),
        Some(s) => grammar::parse_columns("on_conflict", s)?
            .iter()
            .map(|n| {
                table.column(n).ok_or_else(|| PgError::new("42703", format!("column \"{n}\" does not exist")).into())
            })
            .collect(),
    }
}

/// Whether `cols` is exactly the primary key or a unique index of `table`.
fn is_unique_key(conn: &Connection, table: &Table, cols: &[&Column]) -> Result<bool, RestError> {
    let want: HashSet<&str> = cols.iter().map(|c| c.name).collect();
    if want == table.primary_key.iter().copied().collect() {
        return Ok(true);
    }
    let mut list = conn.prepare_cached(&format!("PRAGMA index_list(\"{}\")", table.name))?;
    let indexes: Vec<(String, bool)> =
        list.query_map([], |r| Ok((r.get::<_, String>(1)?, r.get::<_, i64>(2)? != 0)))?.collect::<Result<_, _>>()?;
    for (name, unique) in indexes {
        if !unique {
            continue;
        }
        let mut info = conn.prepare(&format!("PRAGMA index_info(\"{}\")", name.replace('"', "\"\"")))?;
        let names: HashSet<String> = info.query_map([], |r| r.get::<_, String>(2))?.collect::<Result<_, _>>()?;
        if names.len() == want.len() && want.iter().all(|w| names.contains(*w)) {
            return Ok(true);
        }
    }
    Ok(false)
}

pub async fn handle(ctx: Ctx, table: &'static Table, body: Bytes) -> Result<Response, RestError> {
    let objs = objects(&body)?;
    let columns_param = ctx.params.columns.as_deref().map(|c| grammar::parse_columns("columns", c)).transpose()?;
    // The payload's columns, in first-seen order.
    let mut sent: Vec<&'static Column> = Vec::new();
    let names: Vec<String> = match &columns_param {
        Some(cols) => cols.clone(),
        None => objs.iter().flat_map(|o| o.keys().cloned()).collect(),
    };
    for n in &names {
        let c = payload_column(table, n)?;
        if !sent.iter().any(|s| s.name == c.name) {
            sent.push(c);
        }
    }
    if let Some(c) = sent.iter().find(|c| c.fill == Fill::Serial) {
        return Err(PgError::new("428C9", format!("cannot insert a non-DEFAULT value into column \"{}\"", c.name))
            .details(format!("Column \"{}\" is an identity column defined as GENERATED ALWAYS.", c.name))
            .hint("Use OVERRIDING SYSTEM VALUE to override.")
            .into());
    }
    let selection = Selection::resolve(table, ctx.params.select.as_deref())?;
    let resolution = ctx.prefs.resolution;
    let target = conflict_target(table, ctx.params.on_conflict.as_deref())?;
    let now = schema::now_text();
    let missing_null = columns_param.is_some() && !ctx.prefs.missing_default;
    let mut rows = Vec::with_capacity(objs.len());
    for obj in &objs {
        let mut values = Vec::with_capacity(table.columns.len());
        for c in table.columns {
            let given = if sent.iter().any(|s| s.name == c.name) { obj.get(c.name) } else { None };
            let typed = given.map(|v| value::from_json(c, v)).transpose()?;
            values.push(match (c.fill, typed) {
                (Fill::Serial, _) => Value::Null,
                (Fill::ServerNow | Fill::Touch, _) => Value::Text(now.clone()),
                (_, Some(v)) => v,
                (_, None) if missing_null && sent.iter().any(|s| s.name == c.name) => Value::Null,
                (_, None) => default_value(c, &now),
            });
        }
        rows.push(Proposed { values });
    }
    // Columns a merge changes: those sent, minus the target and the server-owned ones.
    let merge_cols: Vec<&'static Column> = sent
        .iter()
        .copied()
        .filter(|c| {
            !target.iter().any(|t| t.name == c.name) && !matches!(c.fill, Fill::Serial | Fill::ServerNow | Fill::Touch)
        })
        .collect();
    // Privileges: PostgREST's `ON CONFLICT DO UPDATE SET` lists every column of the payload,
    // the conflict target included, and Postgres checks the UPDATE privilege of each (even
    // when no row conflicts). Signed-in roles hold it on `Table::updatable`, service_role on
    // every non-key column; so with the platform's grants a merge that sends a key column is
    // refused for every role, exactly as on a Supabase project with the same migrations.
    // Clients use `ignore-duplicates` (idempotent retries) and PATCH instead.
    if resolution == Some(Resolution::MergeDuplicates) {
        let granted = |c: &Column| match ctx.role {
            Role::ServiceRole => !table.is_key(c.name),
            _ => table.updatable.contains(&c.name),
        };
        if sent.iter().filter(|c| !matches!(c.fill, Fill::Serial | Fill::ServerNow | Fill::Touch)).any(|c| !granted(c))
        {
            return Err(PgError::permission_denied(table.name).into());
        }
    }
    let role = ctx.role.clone();
    let ret = ctx.prefs.ret.unwrap_or(Return::Minimal);
    let accept = ctx.accept;
    let singular = accept == super::negotiate::Accept::Object;
    let (count, written) = ctx
        .state
        .db
        .write(move |tx| -> Result<(usize, Vec<JsonRow>), RestError> {
            if let Some(pred) = policy::check(table, Op::Insert, &role) {
                for r in &rows {
                    if !row_passes(tx, table, &pred, &r.values)? {
                        return Err(PgError::rls(table.name).into());
                    }
                }
            }
            for r in &rows {
                check_row(table, &r.values)?;
            }
            if resolution.is_some() && !is_unique_key(tx, table, &target)? {
                return Err(PgError::new("42P10", "there is no unique or exclusion constraint matching the ON CONFLICT specification").into());
            }
            let insert_cols: Vec<(usize, &Column)> = table.columns.iter().enumerate().filter(|(_, c)| c.fill != Fill::Serial).collect();
            let insert_sql = format!(
                "INSERT INTO \"{}\" ({}) VALUES ({})",
                table.name,
                insert_cols.iter().map(|(_, c)| format!("\"{}\"", c.name)).collect::<Vec<_>>().join(", "),
                (1..=insert_cols.len()).map(|i| format!("?{i}")).collect::<Vec<_>>().join(", ")
            );
            let mut touched: HashSet<i64> = HashSet::new();
            let mut rowids = Vec::with_capacity(rows.len());
            for r in &rows {
                if let Some(res) = resolution {
                    if let Some(existing) = find_conflict(tx, table, &target, &r.values)? {
                        match res {
                            Resolution::IgnoreDuplicates => continue,
                            Resolution::MergeDuplicates => {
                                if !touched.insert(existing.rowid) {
                                    return Err(PgError::new("21000", "ON CONFLICT DO UPDATE command cannot affect row a second time")
                                        .hint("Ensure that no rows proposed for insertion within the same command have duplicate constrained values.")
                                        .into());
                                }
                                merge(tx, table, &role, &merge_cols, existing, &r.values, &now)?;
                                rowids.push(existing.rowid);
                                continue;
                            }
                        }
                    }
                }
                let params: Vec<&Value> = insert_cols.iter().map(|(i, _)| &r.values[*i]).collect();
                tx.prepare_cached(&insert_sql)?
                    .execute(params_from_iter(params))
                    .map_err(|e| map_write_error(e, tx, table, &r.values))?;
                let rowid = tx.last_insert_rowid();
                touched.insert(rowid);
                rowids.push(rowid);
            }
            if singular && rowids.len() != 1 {
                return Err(RestError::NotSingular(rowids.len()));
            }
            let written = match ret {
                Return::Representation => {
                    if let Some(pred) = policy::using(table, Op::Select, &role) {
                        for id in &rowids {
                            if !rowid_passes(tx, table, &pred, *id)? {
                                return Err(PgError::rls(table.name).into());
                            }
                        }
                    }
                    rows_by_rowid(tx, table, &selection, &rowids)?
                }
                Return::HeadersOnly if rowids.len() == 1 => {
                    let keys = Selection { items: table.primary_key.iter().filter_map(|k| table.column(k)).map(|c| (c.name.to_string(), c)).collect() };
                    rows_by_rowid(tx, table, &keys, &rowids)?
                }
                _ => Vec::new(),
            };
            Ok((rowids.len(), written))
        })
        .await?;
    let total = ctx.prefs.count.then_some(count as u64);
    let mut reply = Reply::new(StatusCode::CREATED).applied(&ctx.prefs.applied);
    match ret {
        Return::Representation => {
            reply = reply
                .header(header::CONTENT_RANGE, content_range(0, written.len(), total))
                .body(rows_body(written, accept)?, accept);
        }
        Return::HeadersOnly => {
            if let Some(row) = written.first() {
                let q: Vec<String> = row.iter().map(|(k, v)| format!("{k}=eq.{}", location_value(v))).collect();
                reply = reply.header(header::LOCATION, format!("/{}?{}", table.name, q.join("&")));
            }
            reply = reply.header(header::CONTENT_RANGE, content_range(0, 0, total));
        }
        Return::Minimal => reply = reply.header(header::CONTENT_RANGE, content_range(0, 0, total)),
    }
    Ok(reply.finish(false))
}

fn location_value(v: &Json) -> String {
    let s = match v {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    };
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[derive(Clone, Copy)]
struct Existing {
    rowid: i64,
}

/// The stored row an upsert's target values hit, if any (NULLs and server-assigned values
/// never conflict).
fn find_conflict(
    conn: &Connection,
    table: &Table,
    target: &[&Column],
    row: &[Value],
) -> Result<Option<Existing>, RestError> {
    let mut params = Vec::with_capacity(target.len());
    let mut conds = Vec::with_capacity(target.len());
    for c in target {
        let i = table.columns.iter().position(|x| x.name == c.name).unwrap_or(0);
        if row[i] == Value::Null || c.fill == Fill::Serial {
            return Ok(None);
        }
        conds.push(format!("\"{}\".\"{}\" = ?", table.name, c.name));
        params.push(row[i].clone());
    }
    let tail = format!(" WHERE {} LIMIT 1", conds.join(" AND "));
    Ok(stored_rows(conn, table, &tail, &params)?.first().map(|r| Existing { rowid: r.rowid }))
}

/// `ON CONFLICT DO UPDATE` for one existing row.
fn merge(
    conn: &Connection,
    table: &Table,
    role: &Role,
    merge_cols: &[&Column],
    existing: Existing,
    proposed: &[Value],
    now: &str,
) -> Result<(), RestError> {
    for pred in [policy::using(table, Op::Select, role), policy::using(table, Op::Update, role)].into_iter().flatten() {
        if !rowid_passes(conn, table, &pred, existing.rowid)? {
            return Err(PgError::rls_using(table.name).into());
        }
    }
    let stored =
        stored_rows(conn, table, &format!(" WHERE \"{}\".rowid = ?", table.name), &[Value::Integer(existing.rowid)])?;
    let Some(old) = stored.into_iter().next() else { return Ok(()) };
    let mut new = old.values;
    let mut set: Vec<usize> = Vec::new();
    for (i, c) in table.columns.iter().enumerate() {
        if merge_cols.iter().any(|m| m.name == c.name) {
            new[i] = proposed[i].clone();
            set.push(i);
        } else if c.fill == Fill::Touch {
            new[i] = Value::Text(now.to_string());
            set.push(i);
        }
    }
    if let Some(pred) = policy::check(table, Op::Update, role) {
        if !row_passes(conn, table, &pred, &new)? {
            return Err(PgError::rls(table.name).into());
        }
    }
    check_row(table, &new)?;
    if set.is_empty() {
        return Ok(());
    }
    let assignments: Vec<String> =
        set.iter().enumerate().map(|(n, i)| format!("\"{}\" = ?{}", table.columns[*i].name, n + 1)).collect();
    let sql = format!("UPDATE \"{}\" SET {} WHERE rowid = ?{}", table.name, assignments.join(", "), set.len() + 1);
    let mut params: Vec<Value> = set.iter().map(|i| new[*i].clone()).collect();
    params.push(Value::Integer(existing.rowid));
    conn.prepare_cached(&sql)?
        .execute(params_from_iter(params.iter()))
        .map_err(|e| map_write_error(e, conn, table, &new))?;
    Ok(())
}
