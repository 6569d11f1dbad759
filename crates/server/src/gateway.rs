//! What Supabase's API gateway does before a request reaches GoTrue or PostgREST: it requires
//! a project API key (`apikey` header, or `apikey` query parameter) and passes the
//! `Authorization: Bearer` token on. Both services call [`api_key`] first.

use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::policy::Role;
use crate::AppState;

/// Why the gateway refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiKeyError {
    Missing,
    Invalid,
}

impl IntoResponse for ApiKeyError {
    fn into_response(self) -> Response {
        let body = match self {
            ApiKeyError::Missing => json!({
                "message": "No API key found in request",
                "hint": "No `apikey` request header or url param was found."
            }),
            ApiKeyError::Invalid => json!({
                "message": "Invalid API key",
                "hint": "Double check your Supabase `anon` or `service_role` API key."
            }),
        };
        (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response()
    }
}

/// Checks the request's API key: it must be a token signed with the project secret whose role
/// is `anon` or `service_role` (a user's access token is accepted too, as Supabase's gateway
/// does for the legacy JWT keys). Returns the role the key grants.
pub fn api_key(state: &AppState, headers: &HeaderMap, query: Option<&str>) -> Result<Role, ApiKeyError> {
    let from_header = headers.get("apikey").and_then(|v| v.to_str().ok()).map(str::to_string);
    let from_query = || {
        query.and_then(|q| {
            q.split('&').find_map(|kv| {
                let (k, v) = kv.split_once('=')?;
                (k == "apikey").then(|| v.to_string())
            })
        })
    };
    let key = from_header.or_else(from_query).filter(|k| !k.is_empty()).ok_or(ApiKeyError::Missing)?;
    let claims = state.verify(&key).map_err(|_| ApiKeyError::Invalid)?;
    Ok(Role::from_claims(&claims))
}

/// The `Authorization: Bearer <token>` value, if any.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}
