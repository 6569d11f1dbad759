//! `GET` / `HEAD` on a table.
//!
//! One read-only transaction (a consistent snapshot for the count and the rows) runs
//! `SELECT <selection> FROM t WHERE <filters> AND <SELECT USING> ORDER BY … LIMIT … OFFSET …`.
//! Rows the caller may not see are simply absent (anon sees nothing), as with RLS.
//!
//! The slice is the intersection of `offset`/`limit` and the `Range` header, as in PostgREST.
//! `Content-Range` is always sent (`0-9/*`, or `0-9/123` with `Prefer: count=exact`, `*/0`
//! when empty). With a count the status is 206 when the slice is not the whole result, and a
//! slice starting past the end is 416 `PGRST103`.

use axum::http::{header, StatusCode};
use axum::response::Response;
use rusqlite::params_from_iter;
use rusqlite::types::Value;

use super::error::{RangeError, RestError};
use super::negotiate::{self, Accept};
use super::query::{where_sql, Query, Selection, Window};
use super::response::{content_range, rows_body, Reply};
use super::sql::json_rows;
use super::Ctx;
use crate::policy::{self, Op};
use crate::schema::Table;

/// The slice to read: `(offset, limit)`.
fn slice(window: Window, range: Option<(u64, Option<u64>)>) -> (u64, Option<u64>) {
    let mut lower = window.offset;
    let mut upper = window.limit.map(|l| window.offset.saturating_add(l));
    if let Some((lo, hi)) = range {
        lower = lower.max(lo);
        let hi = hi.map(|h| h.saturating_add(1));
        upper = match (upper, hi) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
    (lower, upper.map(|u| u.saturating_sub(lower)))
}

pub async fn handle(ctx: Ctx, table: &'static Table, head: bool) -> Result<Response, RestError> {
    let query = Query::resolve(table, &ctx.params)?;
    let selection = Selection::resolve(table, ctx.params.select.as_deref())?;
    let (offset, limit) = slice(query.window, negotiate::range(&ctx.headers)?);
    let using = policy::using(table, Op::Select, &ctx.role);
    let count = ctx.prefs.count;
    let (rows, total) = ctx
        .state
        .db
        .read(move |conn| -> Result<_, RestError> {
            // A deferred transaction pins one snapshot for the count and the rows.
            let tx = conn.unchecked_transaction()?;
            let mut params = Vec::new();
            let filter = where_sql(table, &query.conds, &[using], &mut params);
            let total = if count {
                let sql = format!("SELECT count(*) FROM \"{}\"{filter}", table.name);
                let n: i64 = tx.prepare_cached(&sql)?.query_row(params_from_iter(params.iter()), |r| r.get(0))?;
                Some(u64::try_from(n).unwrap_or(0))
            } else {
                None
            };
            let mut sql =
                format!("SELECT {} FROM \"{}\"{filter}{}", selection.sql(table), table.name, query.order_sql(table));
            if limit.is_some() || offset > 0 {
                sql.push_str(" LIMIT ? OFFSET ?");
                params.push(Value::Integer(limit.map(|l| i64::try_from(l).unwrap_or(i64::MAX)).unwrap_or(-1)));
                params.push(Value::Integer(i64::try_from(offset).unwrap_or(i64::MAX)));
            }
            let rows = json_rows(&tx, &sql, &params, &selection)?;
            Ok((rows, total))
        })
        .await?;
    let n = rows.len();
    let status = match total {
        Some(t) if offset > t => return Err(RestError::Range(RangeError::OutOfBounds { lower: offset, total: t })),
        Some(t) if (n as u64) < t => StatusCode::PARTIAL_CONTENT,
        _ => StatusCode::OK,
    };
    let mut applied = Vec::new();
    if count {
        applied.push("count=exact".to_string());
    }
    let body = rows_body(rows, ctx.accept)?;
    let status = if ctx.accept == Accept::Object { StatusCode::OK } else { status };
    Ok(Reply::new(status)
        .header(header::CONTENT_RANGE, content_range(offset, n, total))
        .applied(&applied)
        .body(body, ctx.accept)
        .finish(head))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_intersect_window_and_range() {
        let w = |limit, offset| Window { limit, offset };
        assert_eq!(slice(w(None, 0), None), (0, None));
        assert_eq!(slice(w(Some(10), 5), None), (5, Some(10)));
        assert_eq!(slice(w(None, 0), Some((0, Some(9)))), (0, Some(10)));
        assert_eq!(slice(w(Some(3), 0), Some((2, Some(9)))), (2, Some(1)));
        assert_eq!(slice(w(Some(3), 20), Some((0, Some(9)))), (20, Some(0)));
        assert_eq!(slice(w(None, 0), Some((4, None))), (4, None));
    }
}
