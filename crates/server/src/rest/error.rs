//! Errors of the REST service and how they go on the wire.
//!
//! Every refusal is rendered the way PostgREST renders it: a JSON object
//! `{"code","message","details","hint"}` (`details`/`hint` may be `null`) with the HTTP status
//! PostgREST maps the code to. There are two families:
//! - PostgREST's own codes (`PGRSTxxx`): bad query syntax, unknown table, column or function,
//!   media types, ranges, JWT problems. Their statuses are fixed.
//! - Postgres errors ([`PgError`], a SQLSTATE): invalid input for a type, constraint
//!   violations, row-level security, missing privileges, trigger exceptions. Their status comes
//!   from the SQLSTATE as in PostgREST's table; `42501` (insufficient privilege) is 403 for a
//!   signed-in caller and 401 for an anonymous one, so rendering needs to know which.
//!
//! Errors that are ours alone (a body over the size limit, a broken database) keep the same
//! shape so that a client has one thing to parse.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use crate::db::DbError;
use crate::gateway::ApiKeyError;

/// A Postgres-style error: SQLSTATE, message, optional details and hint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgError {
    pub code: &'static str,
    pub message: String,
    pub details: Option<String>,
    pub hint: Option<String>,
}

impl PgError {
    pub fn new(code: &'static str, message: impl Into<String>) -> PgError {
        PgError { code, message: message.into(), details: None, hint: None }
    }

    pub fn details(mut self, details: impl Into<String>) -> PgError {
        self.details = Some(details.into());
        self
    }

    pub fn hint(mut self, hint: impl Into<String>) -> PgError {
        self.hint = Some(hint.into());
        self
    }

    /// `42703`: a column named in the query does not exist.
    pub fn undefined_column(table: &str, column: &str) -> PgError {
        PgError::new("42703", format!("column {table}.{column} does not exist"))
    }

    /// `42501`: a row-level security `WITH CHECK` refused a written row.
    pub fn rls(table: &str) -> PgError {
        PgError::new("42501", format!("new row violates row-level security policy for table \"{table}\""))
    }

    /// `42501`: an upsert met an existing row the caller may not update.
    pub fn rls_using(table: &str) -> PgError {
        PgError::new(
            "42501",
            format!("new row violates row-level security policy (USING expression) for table \"{table}\""),
        )
    }

    /// `42501`: the role lacks a (column) privilege on the table.
    pub fn permission_denied(table: &str) -> PgError {
        PgError::new("42501", format!("permission denied for table {table}"))
    }

    /// `P0001`: what a `RAISE EXCEPTION` in a trigger reports.
    pub fn raise(message: impl Into<String>) -> PgError {
        PgError::new("P0001", message)
    }
}

/// Why a requested range cannot be served (`PGRST103`, 416).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RangeError {
    NegativeLimit,
    LowerAboveUpper,
    OutOfBounds { lower: u64, total: u64 },
}

/// Every way a REST request can fail.
#[derive(Debug, thiserror::Error)]
pub enum RestError {
    #[error("API key refused: {0:?}")]
    ApiKey(ApiKeyError),
    /// `PGRST301`: the bearer token is not a valid JWT of this project.
    #[error("{0}")]
    JwtInvalid(String),
    /// `PGRST303`: the token's claims are unusable (expired, missing).
    #[error("{0}")]
    JwtClaims(String),
    /// `PGRST205`.
    #[error("Could not find the table 'public.{0}' in the schema cache")]
    TableNotFound(String),
    /// `PGRST125`.
    #[error("Invalid path specified in request URL")]
    InvalidPath,
    /// `PGRST117`.
    #[error("Unsupported HTTP method: {0}")]
    UnsupportedMethod(String),
    /// `PGRST101`.
    #[error("Cannot use the {0} method on RPC")]
    RpcMethod(String),
    /// `PGRST106`.
    #[error("Invalid schema: {0}")]
    InvalidSchema(String),
    /// `PGRST107`.
    #[error("None of these media types are available: {0}")]
    MediaType(String),
    /// `PGRST100`: a query parameter does not parse. `message` already carries PostgREST's
    /// `"failed to parse … (…)" (line 1, column N)` form.
    #[error("{message}")]
    QueryParam { message: String, details: String },
    /// `PGRST102`.
    #[error("{message}")]
    InvalidBody { message: String, details: Option<String> },
    /// `PGRST103`.
    #[error("Requested range not satisfiable")]
    Range(RangeError),
    /// `PGRST108`.
    #[error("'{0}' is not an embedded resource in this request")]
    NotEmbedded(String),
    /// `PGRST116`: a single object was asked for and this many rows came out.
    #[error("JSON object requested, multiple (or no) rows returned")]
    NotSingular(usize),
    /// `PGRST122`.
    #[error("Invalid preferences given with handling=strict")]
    InvalidPreferences(Vec<String>),
    /// `PGRST127`: a PostgREST feature this backend does not offer.
    #[error("Feature not implemented")]
    NotImplemented(String),
    /// `PGRST200`: resource embedding, which this backend does not offer.
    #[error("Could not find a relationship between '{table}' and '{target}' in the schema cache")]
    NoRelationship { table: String, target: String },
    /// `PGRST202`.
    #[error("Could not find the function public.{name} in the schema cache")]
    NoRpc { name: String, args: Vec<String>, json_body: bool },
    /// `PGRST204`.
    #[error("Could not find the '{column}' column of '{table}' in the schema cache")]
    ColumnNotFound { table: String, column: String },
    /// The request body is over the size limit (413).
    #[error("Payload too large")]
    PayloadTooLarge(usize),
    /// An error as Postgres would report it.
    #[error("{}", .0.message)]
    Pg(PgError),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<PgError> for RestError {
    fn from(e: PgError) -> RestError {
        RestError::Pg(e)
    }
}

impl From<rusqlite::Error> for RestError {
    fn from(e: rusqlite::Error) -> RestError {
        RestError::Db(DbError::Sqlite(e))
    }
}

/// PostgREST's SQLSTATE → HTTP status table.
pub fn pg_status(code: &str, authed: bool) -> StatusCode {
    let s = match code {
        "23503" | "23505" => 409,
        "25006" => 405,
        "21000" | "42P17" | "53400" => 500,
        "42883" | "42P01" => 404,
        "42501" => {
            if authed {
                403
            } else {
                401
            }
        }
        "57P01" => 503,
        "P0001" => 400,
        c if c.starts_with("08") || c.starts_with("53") => 503,
        c if ["09", "25", "2D", "38", "39", "3B", "40", "54", "55", "57", "58", "F0", "HV", "P0", "XX"]
            .iter()
            .any(|p| c.starts_with(p)) =>
        {
            500
        }
        c if c.starts_with("0L") || c.starts_with("0P") || c.starts_with("28") => 403,
        _ => 400,
    };
    StatusCode::from_u16(s).unwrap_or(StatusCode::BAD_REQUEST)
}

impl RestError {
    /// The `(status, code, details, hint)` of this error; the message is its `Display`.
    fn parts(&self, authed: bool) -> (StatusCode, String, Value, Value) {
        let s = |x: &str| Value::String(x.to_string());
        let none = Value::Null;
        match self {
            RestError::ApiKey(_) => (StatusCode::UNAUTHORIZED, String::new(), none.clone(), none),
            RestError::JwtInvalid(_) => (StatusCode::UNAUTHORIZED, "PGRST301".into(), none.clone(), none),
            RestError::JwtClaims(_) => (StatusCode::UNAUTHORIZED, "PGRST303".into(), none.clone(), none),
            RestError::TableNotFound(_) => (StatusCode::NOT_FOUND, "PGRST205".into(), none.clone(), none),
            RestError::InvalidPath => (StatusCode::NOT_FOUND, "PGRST125".into(), none.clone(), none),
            RestError::UnsupportedMethod(_) => (StatusCode::METHOD_NOT_ALLOWED, "PGRST117".into(), none.clone(), none),
            RestError::RpcMethod(_) => (StatusCode::METHOD_NOT_ALLOWED, "PGRST101".into(), none.clone(), none),
            RestError::InvalidSchema(_) => {
                (StatusCode::NOT_ACCEPTABLE, "PGRST106".into(), none, s("Only the following schemas are exposed: public"))
            }
            RestError::MediaType(_) => (StatusCode::NOT_ACCEPTABLE, "PGRST107".into(), none.clone(), none),
            RestError::QueryParam { details, .. } => (StatusCode::BAD_REQUEST, "PGRST100".into(), s(details), none),
            RestError::InvalidBody { details, .. } => {
                (StatusCode::BAD_REQUEST, "PGRST102".into(), details.as_deref().map(s).unwrap_or(Value::Null), none)
            }
            RestError::Range(r) => {
                let details = match r {
                    RangeError::NegativeLimit => "Limit should be greater than or equal to zero.".to_string(),
                    RangeError::LowerAboveUpper => {
                        "The lower boundary must be lower than or equal to the upper boundary in the Range header.".to_string()
                    }
                    RangeError::OutOfBounds { lower, total } => {
                        format!("An offset of {lower} was requested, but there are only {total} rows.")
                    }
                };
                (StatusCode::RANGE_NOT_SATISFIABLE, "PGRST103".into(), Value::String(details), none)
            }
            RestError::NotEmbedded(r) => (
                StatusCode::BAD_REQUEST,
                "PGRST108".into(),
                none,
                Value::String(format!("Verify that '{r}' is included in the 'select' query parameter.")),
            ),
            RestError::NotSingular(n) => {
                (StatusCode::NOT_ACCEPTABLE, "PGRST116".into(), Value::String(format!("The result contains {n} rows")), none)
            }
            RestError::InvalidPreferences(p) => (
                StatusCode::BAD_REQUEST,
                "PGRST122".into(),
                Value::String(format!("Invalid preferences: {}", p.join(", "))),
                none,
            ),
            RestError::NotImplemented(d) => (StatusCode::BAD_REQUEST, "PGRST127".into(), s(d), none),
            RestError::NoRelationship { table, target } => (
                StatusCode::BAD_REQUEST,
                "PGRST200".into(),
                Value::String(format!(
                    "Searched for a foreign key relationship between '{table}' and '{target}' in the schema 'public', but no matches were found."
                )),
                none,
            ),
            RestError::NoRpc { name, args, json_body } => {
                let params = if args.is_empty() {
                    " without parameters".to_string()
                } else {
                    format!(" with parameter{} {}", if args.len() > 1 { "s" } else { "" }, args.join(", "))
                };
                let json = if *json_body { " or with a single unnamed json/jsonb parameter" } else { "" };
                (
                    StatusCode::NOT_FOUND,
                    "PGRST202".into(),
                    Value::String(format!("Searched for the function public.{name}{params}{json}, but no matches were found in the schema cache.")),
                    none,
                )
            }
            RestError::ColumnNotFound { .. } => (StatusCode::BAD_REQUEST, "PGRST204".into(), none.clone(), none),
            RestError::PayloadTooLarge(limit) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "54000".into(),
                Value::String(format!("The request body is larger than the limit of {limit} bytes.")),
                none,
            ),
            RestError::Pg(e) => (
                pg_status(e.code, authed),
                e.code.to_string(),
                e.details.as_deref().map(s).unwrap_or(Value::Null),
                e.hint.as_deref().map(s).unwrap_or(Value::Null),
            ),
            RestError::Db(e) => (StatusCode::INTERNAL_SERVER_ERROR, "XX000".into(), Value::String(e.to_string()), none),
        }
    }

    fn message(&self) -> String {
        match self {
            RestError::NoRpc { name, args, .. } if args.is_empty() => {
                format!("Could not find the function public.{name} without parameters in the schema cache")
            }
            RestError::NoRpc { name, args, .. } => {
                format!("Could not find the function public.{name}({}) in the schema cache", args.join(", "))
            }
            RestError::Db(_) => "Internal database error".to_string(),
            other => other.to_string(),
        }
    }

    /// The wire response; `authed` says whether the caller is signed in (or service_role).
    pub fn response(self, authed: bool) -> Response {
        if let RestError::ApiKey(e) = self {
            return e.into_response();
        }
        if let RestError::Db(e) = &self {
            tracing::error!(error = %e, "REST request failed in the database");
        }
        let (status, code, details, hint) = self.parts(authed);
        let body = json!({ "code": code, "message": self.message(), "details": details, "hint": hint });
        let mut resp = (status, body.to_string()).into_response();
        let h = resp.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
        if status == StatusCode::UNAUTHORIZED {
            let value = match &self {
                RestError::JwtInvalid(m) | RestError::JwtClaims(m) => {
                    format!("Bearer error=\"invalid_token\", error_description=\"{}\"", m.replace('"', "'"))
                }
                _ => "Bearer".to_string(),
            };
            if let Ok(v) = HeaderValue::from_str(&value) {
                h.insert(header::WWW_AUTHENTICATE, v);
            }
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_postgrest_table() {
        assert_eq!(pg_status("23505", true), StatusCode::CONFLICT);
        assert_eq!(pg_status("23503", true), StatusCode::CONFLICT);
        assert_eq!(pg_status("23502", true), StatusCode::BAD_REQUEST);
        assert_eq!(pg_status("42501", true), StatusCode::FORBIDDEN);
        assert_eq!(pg_status("42501", false), StatusCode::UNAUTHORIZED);
        assert_eq!(pg_status("P0001", false), StatusCode::BAD_REQUEST);
        assert_eq!(pg_status("42883", false), StatusCode::NOT_FOUND);
        assert_eq!(pg_status("22P02", false), StatusCode::BAD_REQUEST);
        assert_eq!(pg_status("08006", false), StatusCode::SERVICE_UNAVAILABLE);
    }

    #[test]
    fn rpc_messages_name_the_parameters() {
        let e = RestError::NoRpc { name: "f".into(), args: vec![], json_body: true };
        assert_eq!(e.message(), "Could not find the function public.f without parameters in the schema cache");
        let e = RestError::NoRpc { name: "f".into(), args: vec!["a".into(), "b".into()], json_body: false };
        assert_eq!(e.message(), "Could not find the function public.f(a, b) in the schema cache");
    }
}
