//! PostgREST subset at `/rest/v1`, on SQLite, with the row-level rules of `policy.rs`
//! enforced on every path.
//!
//! What supabase-js (postgrest-js) sends is served unchanged: `GET`/`HEAD` reads with
//! `select`, filters (`eq neq gt gte lt lte like ilike in is`, `not.`, `or`/`and` trees),
//! `order`, `limit`/`offset`/`Range`, `Prefer: count=exact` and single-object `Accept`;
//! `POST` inserts and upserts; `PATCH` updates; `DELETE`; `rpc/get_live_metrics`.
//!
//! Shape of a request, one module per step:
//! 1. [`authenticate`]: the gateway's API-key check, then the role of the `Authorization:
//!    Bearer` token (or of the key) — PostgREST's `PGRST301`/`PGRST303` on a bad token.
//! 2. `params` decodes and sorts the query string, `negotiate` reads `Prefer`, `Accept`,
//!    `Range`; `grammar` parses the PostgREST mini-languages; `query` resolves names against
//!    `schema::TABLES` and types values (`value`). Client text never becomes SQL text:
//!    identifiers come from the schema, values are bound parameters.
//! 3. The handler (`read`, `insert`, `update`, `delete`, `rpc`) runs its statements in one
//!    `Db::read` (consistent snapshot) or one `Db::write` transaction. Row rules are SQL
//!    predicates from `policy.rs`: `USING` joins the `WHERE`, `WITH CHECK` is evaluated on
//!    each written row before it is written (`sql::row_passes`). Any error returns `Err` from
//!    the transaction closure, so the transaction rolls back and nothing is published to
//!    Realtime: a refused request changes nothing.
//! 4. Errors are rendered by `error` as PostgREST's `{code, message, details, hint}` with its
//!    statuses; `constraint` turns SQLite integrity errors into Postgres's.
//!
//! Failure modes worth knowing: bodies over [`BODY_LIMIT`] are refused with 413 before they
//! are read whole; resource embedding, JSON paths, casts and full-text search are refused
//! with a clear `PGRST1xx`/`PGRST200` instead of being half-done; `ilike` folds ASCII case
//! only (SQLite without ICU), and text sorts and compares by code point (Postgres's `C`
//! collation), not by a language collation.

mod constraint;
mod delete;
mod error;
mod grammar;
mod insert;
mod negotiate;
mod params;
mod query;
mod read;
mod response;
mod rpc;
mod sql;
mod update;
mod value;

use std::future::Future;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method};
use axum::response::Response;
use axum::routing::any;
use axum::Router;
use futures_util::StreamExt;

pub use error::{PgError, RestError};

use crate::gateway;
use crate::jwt::JwtError;
use crate::policy::Role;
use crate::schema::{self, Table};
use crate::AppState;

/// Largest request body accepted (5 MiB); larger ones get 413.
pub const BODY_LIMIT: usize = 5 * 1024 * 1024;

pub fn router() -> Router<Arc<AppState>> {
    Router::new().route("/rpc/{name}", any(rpc_route)).route("/{table}", any(table_route)).fallback(any(invalid_path))
}

/// What every handler gets: who asks, and the parsed request.
pub(crate) struct Ctx {
    pub state: Arc<AppState>,
    pub role: Role,
    pub headers: HeaderMap,
    pub params: params::QueryParams,
    pub prefs: negotiate::Prefs,
    pub accept: negotiate::Accept,
}

/// The caller's role: the API key must pass the gateway; the bearer token, when present,
/// decides the role (PostgREST's errors when it does not verify), else the key does.
pub fn authenticate(state: &AppState, headers: &HeaderMap, query: Option<&str>) -> Result<Role, RestError> {
    let key_role = gateway::api_key(state, headers, query).map_err(RestError::ApiKey)?;
    let Some(token) = gateway::bearer(headers) else { return Ok(key_role) };
    match state.verify(token) {
        Ok(claims) => Ok(Role::from_claims(&claims)),
        Err(e) => Err(jwt_error(token, e)),
    }
}

fn jwt_error(token: &str, e: JwtError) -> RestError {
    match e {
        JwtError::Expired(_) => RestError::JwtClaims("JWT expired".into()),
        JwtError::MissingClaims => RestError::JwtClaims("Parsing claims failed".into()),
        JwtError::Algorithm(_) => RestError::JwtInvalid("Wrong or unsupported encoding algorithm".into()),
        JwtError::Signature => RestError::JwtInvalid("JWT cryptographic operation failed".into()),
        JwtError::Malformed => match token.split('.').count() {
            3 => RestError::JwtInvalid("JWT couldn't be decoded".into()),
            n => RestError::JwtInvalid(format!("Expected 3 parts in JWT; got {n}")),
        },
    }
}

/// Reads the body, refusing it as soon as it is over [`BODY_LIMIT`].
async fn read_body(headers: &HeaderMap, body: Body) -> Result<Bytes, RestError> {
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > BODY_LIMIT as u64) {
        return Err(RestError::PayloadTooLarge(BODY_LIMIT));
    }
    let mut stream = body.into_data_stream();
    let mut buf = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| RestError::InvalidBody {
            message: "Could not read the request body".into(),
            details: Some(e.to_string()),
        })?;
        if buf.len() + chunk.len() > BODY_LIMIT {
            return Err(RestError::PayloadTooLarge(BODY_LIMIT));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(buf))
}

impl Ctx {
    fn new(state: Arc<AppState>, role: Role, headers: HeaderMap, query: Option<&str>) -> Result<Ctx, RestError> {
        Ok(Ctx {
            params: params::QueryParams::parse(query)?,
            prefs: negotiate::prefs(&headers)?,
            accept: negotiate::accept(&headers)?,
            state,
            role,
            headers,
        })
    }
}

/// Authenticates the caller, builds the request context and runs `serve`. Errors are rendered
/// with the caller's status rules (401 vs 403 for `42501`), without a body for `HEAD`.
async fn answer<F, Fut>(
    state: Arc<AppState>,
    headers: HeaderMap,
    query: Option<String>,
    head: bool,
    serve: F,
) -> Response
where
    F: FnOnce(Ctx) -> Fut,
    Fut: Future<Output = Result<Response, RestError>>,
{
    let role = match authenticate(&state, &headers, query.as_deref()) {
        Ok(r) => r,
        Err(e) => return e.response(false),
    };
    let authed = role != Role::Anon;
    let result = match Ctx::new(state, role, headers, query.as_deref()) {
        Ok(ctx) => serve(ctx).await,
        Err(e) => Err(e),
    };
    result.unwrap_or_else(|e| {
        let mut resp = e.response(authed);
        if head {
            *resp.body_mut() = Body::empty();
        }
        resp
    })
}

async fn table_route(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Body,
) -> Response {
    let head = method == Method::HEAD;
    answer(state, headers, query, head, move |ctx| serve_table(ctx, name, method, body)).await
}

async fn serve_table(ctx: Ctx, name: String, method: Method, body: Body) -> Result<Response, RestError> {
    if !matches!(method, Method::GET | Method::HEAD | Method::POST | Method::PATCH | Method::DELETE) {
        return Err(RestError::UnsupportedMethod(method.to_string()));
    }
    negotiate::check_profile(&ctx.headers, !matches!(method, Method::GET | Method::HEAD))?;
    let table: &'static Table = schema::table(&name).ok_or(RestError::TableNotFound(name))?;
    match method {
        Method::GET => read::handle(ctx, table, false).await,
        Method::HEAD => read::handle(ctx, table, true).await,
        Method::POST => {
            let body = read_body(&ctx.headers, body).await?;
            insert::handle(ctx, table, body).await
        }
        Method::PATCH => {
            let body = read_body(&ctx.headers, body).await?;
            update::handle(ctx, table, body).await
        }
        _ => delete::handle(ctx, table).await,
    }
}

async fn rpc_route(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Body,
) -> Response {
    let head = method == Method::HEAD;
    answer(state, headers, query, head, move |ctx| async move {
        negotiate::check_profile(&ctx.headers, method == Method::POST)?;
        let body = read_body(&ctx.headers, body).await?;
        rpc::handle(ctx, name, method, body).await
    })
    .await
}

async fn invalid_path(State(state): State<Arc<AppState>>, headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    answer(state, headers, query, false, |_| async { Err(RestError::InvalidPath) }).await
}

/// The JSON body of a write: an object or an array of objects (`PGRST102` otherwise).
fn json_body(body: &[u8]) -> Result<serde_json::Value, RestError> {
    serde_json::from_slice(body)
        .map_err(|_| RestError::InvalidBody { message: "Empty or invalid json".into(), details: None })
}
