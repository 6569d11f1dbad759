//! `PATCH` on a table: set the body's columns on the rows the filters select.
//!
//! Refusals before any row is looked at: a body that is not one JSON object (`PGRST102`), an
//! unknown column (`PGRST204`), a value that does not parse for its column (`22P02`…), and a
//! column the role may not change (`42501` "permission denied": signed-in roles may change
//! `Table::updatable` only — nothing of an `append_only` table — service_role any non-key
//! column; Postgres's column privileges).
//!
//! Then, in one write transaction:
//! 1. Target rows: filters AND `UPDATE USING` AND `SELECT USING` (Postgres applies the select
//!    rule too when an update reads columns, which a filtered update always does), ordered and
//!    limited if asked. No row is not an error: 204 / `[]`. Any target row of an
//!    `append_only` table is refused (`P0001`), as the Postgres trigger refuses every row it
//!    sees, whoever asks.
//! 2. Each new row version (old values, the body's, `Touch` columns at now) must pass
//!    `UPDATE WITH CHECK` — evaluated before anything is written, against the table as it was
//!    (`sql::row_passes`) — then not-null / value-list checks.
//! 3. `UPDATE … WHERE rowid = ?` per row; trigger refusals (a snapshot moving backwards) come
//!    back as `P0001` with the trigger's message, integrity errors as Postgres's.
//! 4. `return=representation`: rows must be visible to the caller afterwards (`42501`
//!    otherwise), returned with 200; else 204. Singular `Accept` with ≠ 1 row rolls back.

use axum::body::Bytes;
use axum::http::{header, StatusCode};
use axum::response::Response;
use rusqlite::types::Value;
use rusqlite::{params_from_iter, Connection};
use serde_json::Value as Json;

use super::constraint::{check_row, map_write_error};
use super::error::{PgError, RestError};
use super::negotiate::{Accept, Return};
use super::query::{where_sql, Query, Selection};
use super::response::{content_range, rows_body, Reply};
use super::sql::{row_passes, rowid_passes, rows_by_rowid, stored_rows, JsonRow, StoredRow};
use super::{json_body, value, Ctx};
use crate::policy::{self, Op, Role};
use crate::schema::{self, Column, Fill, Table};

/// Refuses to change or delete rows of an append-only table: what its Postgres trigger raises
/// for each row an UPDATE or DELETE reaches (for service_role too; the other roles hold no
/// UPDATE or DELETE privilege on such a table and are refused before any row is looked at).
pub fn refuse_append_only(table: &Table, targets: usize) -> Result<(), RestError> {
    if table.append_only && targets > 0 {
        return Err(PgError::raise(format!("{} is append-only", table.name)).into());
    }
    Ok(())
}

/// `LIMIT ? OFFSET ?` for a limited update or delete, binding its values.
fn window_sql(query: &Query, params: &mut Vec<Value>) -> String {
    let w = query.window;
    if w.limit.is_none() && w.offset == 0 {
        return String::new();
    }
    params.push(Value::Integer(w.limit.map(|l| i64::try_from(l).unwrap_or(i64::MAX)).unwrap_or(-1)));
    params.push(Value::Integer(i64::try_from(w.offset).unwrap_or(i64::MAX)));
    " LIMIT ? OFFSET ?".into()
}

/// The stored rows a `PATCH` or `DELETE` (`op`) reaches: the filters, the operation's
/// `USING` rule and the `SELECT` one, then `order`/`limit`/`offset`.
pub fn target_rows(
    tx: &Connection,
    table: &Table,
    query: &Query,
    op: Op,
    role: &Role,
) -> Result<Vec<StoredRow>, RestError> {
    let mut params = Vec::new();
    let using = [policy::using(table, op, role), policy::using(table, Op::Select, role)];
    let mut tail = where_sql(table, &query.conds, &using, &mut params);
    tail.push_str(&query.order_sql(table));
    tail.push_str(&window_sql(query, &mut params));
    stored_rows(tx, table, &tail, &params)
}

/// The response of an update or delete that wrote `n` rows.
pub fn mutation_reply(
    ret: Return,
    rows: Vec<JsonRow>,
    n: usize,
    accept: Accept,
    count: bool,
    applied: &[String],
) -> Result<Response, RestError> {
    let total = count.then_some(n as u64);
    let reply = if ret == Return::Representation {
        Reply::new(StatusCode::OK)
            .header(header::CONTENT_RANGE, content_range(0, rows.len(), total))
            .body(rows_body(rows, accept)?, accept)
    } else {
        Reply::new(StatusCode::NO_CONTENT).header(header::CONTENT_RANGE, content_range(0, 0, total))
    };
    Ok(reply.applied(applied).finish(false))
}

pub async fn handle(ctx: Ctx, table: &'static Table, body: Bytes) -> Result<Response, RestError> {
    let Json::Object(obj) = json_body(&body)? else {
        return Err(RestError::InvalidBody {
            message: "Empty or invalid json".into(),
            details: Some("the body of a PATCH must be a JSON object".into()),
        });
    };
    let mut set: Vec<(usize, Value)> = Vec::new();
    for (name, v) in &obj {
        let Some(i) = table.columns.iter().position(|c| c.name == name) else {
            return Err(RestError::ColumnNotFound { table: table.name.into(), column: name.clone() });
        };
        let col: &Column = &table.columns[i];
        let allowed = match ctx.role {
            Role::ServiceRole => !table.is_key(col.name),
            _ => table.updatable.contains(&col.name),
        };
        if !allowed {
            return Err(PgError::permission_denied(table.name).into());
        }
        set.push((i, value::from_json(col, v)?));
    }
    let query = Query::resolve(table, &ctx.params)?;
    let selection = Selection::resolve(table, ctx.params.select.as_deref())?;
    let ret = ctx.prefs.ret.unwrap_or(Return::Minimal);
    let singular = ctx.accept == Accept::Object;
    if set.is_empty() {
        // Nothing to change: PostgREST answers without touching a row.
        if singular {
            return Err(RestError::NotSingular(0));
        }
        return mutation_reply(ret, Vec::new(), 0, ctx.accept, ctx.prefs.count, &ctx.prefs.applied);
    }
    let now = schema::now_text();
    for (i, c) in table.columns.iter().enumerate() {
        if c.fill == Fill::Touch {
            set.retain(|(j, _)| *j != i);
            set.push((i, Value::Text(now.clone())));
        }
    }
    let role = ctx.role.clone();
    let (n, rows) = ctx
        .state
        .db
        .write(move |tx| -> Result<(usize, Vec<JsonRow>), RestError> {
            let targets = target_rows(tx, table, &query, Op::Update, &role)?;
            refuse_append_only(table, targets.len())?;
            let mut versions = Vec::with_capacity(targets.len());
            for t in &targets {
                let mut new = t.values.clone();
                for (i, v) in &set {
                    new[*i] = v.clone();
                }
                versions.push((t.rowid, new));
            }
            if let Some(pred) = policy::check(table, Op::Update, &role) {
                for (_, new) in &versions {
                    if !row_passes(tx, table, &pred, new)? {
                        return Err(PgError::rls(table.name).into());
                    }
                }
            }
            for (_, new) in &versions {
                check_row(table, new)?;
            }
            let assignments: Vec<String> = set
                .iter()
                .enumerate()
                .map(|(n, (i, _))| format!("\"{}\" = ?{}", table.columns[*i].name, n + 1))
                .collect();
            let sql =
                format!("UPDATE \"{}\" SET {} WHERE rowid = ?{}", table.name, assignments.join(", "), set.len() + 1);
            for (rowid, new) in &versions {
                let mut p: Vec<Value> = set.iter().map(|(_, v)| v.clone()).collect();
                p.push(Value::Integer(*rowid));
                tx.prepare_cached(&sql)?
                    .execute(params_from_iter(p.iter()))
                    .map_err(|e| map_write_error(e, tx, table, new))?;
            }
            if singular && versions.len() != 1 {
                return Err(RestError::NotSingular(versions.len()));
            }
            let rowids: Vec<i64> = versions.iter().map(|(r, _)| *r).collect();
            if ret != Return::Representation {
                return Ok((rowids.len(), Vec::new()));
            }
            if let Some(pred) = policy::using(table, Op::Select, &role) {
                for id in &rowids {
                    if !rowid_passes(tx, table, &pred, *id)? {
                        return Err(PgError::rls(table.name).into());
                    }
                }
            }
            Ok((rowids.len(), rows_by_rowid(tx, table, &selection, &rowids)?))
        })
        .await?;
    mutation_reply(ret, rows, n, ctx.accept, ctx.prefs.count, &ctx.prefs.applied)
}
