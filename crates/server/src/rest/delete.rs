//! `DELETE` on a table: remove the rows the filters select.
//!
//! An `append_only` table: the signed-in and anonymous roles hold no DELETE privilege on it
//! (`42501` before any row is looked at); for service_role any target row is refused
//! (`P0001`, the table's Postgres trigger). The target rows are those the
//! filters select AND `DELETE USING` AND `SELECT USING` (Postgres also applies the select rule
//! to a delete that reads columns); rows the caller may not touch are simply not deleted (no
//! error, 204), exactly as under RLS. Cascades (messages of a deleted room…) are SQLite's
//! foreign keys and reach Realtime through the change capture like any change. With
//! `return=representation` the deleted rows, as they were, come back with 200. A singular
//! `Accept` with ≠ 1 row rolls the delete back (`PGRST116`).

use axum::response::Response;
use rusqlite::types::Value;

use super::error::{PgError, RestError};
use super::negotiate::{Accept, Return};
use super::query::{Query, Selection};
use super::sql::{rows_by_rowid, JsonRow};
use super::update::{mutation_reply, refuse_append_only, target_rows};
use super::Ctx;
use crate::policy::{Op, Role};
use crate::schema::Table;

pub async fn handle(ctx: Ctx, table: &'static Table) -> Result<Response, RestError> {
    if table.append_only && ctx.role != Role::ServiceRole {
        return Err(PgError::permission_denied(table.name).into());
    }
    let query = Query::resolve(table, &ctx.params)?;
    let selection = Selection::resolve(table, ctx.params.select.as_deref())?;
    let ret = ctx.prefs.ret.unwrap_or(Return::Minimal);
    let singular = ctx.accept == Accept::Object;
    let role = ctx.role.clone();
    let (n, rows) = ctx
        .state
        .db
        .write(move |tx| -> Result<(usize, Vec<JsonRow>), RestError> {
            let rowids: Vec<i64> = target_rows(tx, table, &query, Op::Delete, &role)?.iter().map(|r| r.rowid).collect();
            refuse_append_only(table, rowids.len())?;
            if singular && rowids.len() != 1 {
                return Err(RestError::NotSingular(rowids.len()));
            }
            let before =
                if ret == Return::Representation { rows_by_rowid(tx, table, &selection, &rowids)? } else { Vec::new() };
            let sql = format!("DELETE FROM \"{}\" WHERE rowid = ?1", table.name);
            for id in &rowids {
                tx.prepare_cached(&sql)?.execute([Value::Integer(*id)])?;
            }
            Ok((rowids.len(), before))
        })
        .await?;
    mutation_reply(ret, rows, n, ctx.accept, ctx.prefs.count, &ctx.prefs.applied)
}
