//! `/rpc/<function>`: the platform's one function, `get_live_metrics()`.
//!
//! It behaves like a `SECURITY DEFINER` SQL function returning `json`, granted to
//! `authenticated` and `service_role` but not `anon`:
//! - `GET` (arguments in the query string) and `POST` (arguments as a JSON object body) call
//!   it; other methods are `PGRST101` (405).
//! - An unknown function, or any argument (it takes none), is `PGRST202` (404), worded like
//!   PostgREST's schema-cache miss.
//! - `anon` is refused `42501` "permission denied for function get_live_metrics" (401).
//! - The result is the single JSON object (`{active_users, total_challenges, new_submissions,
//!   online_users}`), which supabase-js's `.rpc()` hands back as `data`. It counts across
//!   all rows, regardless of row rules (definer rights): distinct users with activity in the
//!   last 24 hours, challenges that are not drafts, submissions created in the last 24 hours,
//!   and the users present on Realtime right now.

use axum::body::Bytes;
use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde_json::{json, Value as Json};

use super::error::{PgError, RestError};
use super::response::Reply;
use super::{json_body, Ctx};
use crate::policy::Role;
use crate::schema;

pub const LIVE_METRICS: &str = "get_live_metrics";

pub async fn handle(ctx: Ctx, name: String, method: Method, body: Bytes) -> Result<Response, RestError> {
    if !matches!(method, Method::GET | Method::HEAD | Method::POST) {
        return Err(RestError::RpcMethod(method.to_string()));
    }
    let args: Vec<String> = if method == Method::POST {
        if body.iter().all(u8::is_ascii_whitespace) {
            Vec::new()
        } else {
            match json_body(&body)? {
                Json::Object(o) => o.keys().cloned().collect(),
                _ => {
                    return Err(RestError::InvalidBody {
                        message: "Empty or invalid json".into(),
                        details: Some("the arguments of a function call must be a JSON object".into()),
                    })
                }
            }
        }
    } else {
        ctx.params.args.iter().map(|(k, _)| k.clone()).collect()
    };
    if name != LIVE_METRICS || !args.is_empty() {
        return Err(RestError::NoRpc { name, args, json_body: method == Method::POST });
    }
    if ctx.role == Role::Anon {
        return Err(PgError::new("42501", format!("permission denied for function {LIVE_METRICS}")).into());
    }
    let since = schema::format_ts(chrono::Utc::now() - chrono::Duration::hours(24));
    let (active_users, total_challenges, new_submissions) = ctx
        .state
        .db
        .read(move |conn| -> Result<(i64, i64, i64), RestError> {
            let tx = conn.unchecked_transaction()?;
            let one = |sql: &str, p: &[&dyn rusqlite::ToSql]| -> Result<i64, RestError> {
                Ok(tx.prepare_cached(sql)?.query_row(p, |r| r.get(0))?)
            };
            let active = one(
                "SELECT count(DISTINCT \"user_id\") FROM \"user_activities\" WHERE \"created_at\" >= ?1",
                &[&since],
            )?;
            let challenges = one("SELECT count(*) FROM \"challenges\" WHERE \"status\" <> 'draft'", &[])?;
            let submissions =
                one("SELECT count(*) FROM \"challenge_submissions\" WHERE \"created_at\" >= ?1", &[&since])?;
            Ok((active, challenges, submissions))
        })
        .await?;
    let online_users = ctx.state.realtime.online_users();
    let body = json!({
        "active_users": active_users,
        "total_challenges": total_challenges,
        "new_submissions": new_submissions,
        "online_users": online_users,
    });
    Ok(Reply::new(StatusCode::OK).json(&body).finish(method == Method::HEAD))
}
