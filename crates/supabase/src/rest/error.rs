//! REST failures, decoded and classified.
//!
//! PostgREST answers a refusal with a non-2xx status and `{"code","message","details","hint"}`
//! (`details`/`hint` may be null; a gateway in front may answer `{"message"}` or plain text).
//! [`ApiError`] keeps all of it plus the `Retry-After` delay; [`RestError::retry`] says what a
//! retrying caller should do:
//! - transport failures (connect, timeout, reset) → transient;
//! - 429, 408 → transient (after `Retry-After`);
//! - 5xx → transient, unless the body names a SQLSTATE that fails the same way every time
//!   (PostgREST maps e.g. `21000` cardinality violations and `42P17` policy recursion to 500):
//!   classes `21`, `22`, `23`, `42`, `54`, `P0`, `0L`, `0P`, `28` are permanent;
//! - 401 with PostgREST's JWT codes `PGRST301`/`PGRST302`/`PGRST303` (token invalid, missing
//!   where required, expired) → [`Retry::Unauthorized`]: refresh the session, retry once;
//! - any other 4xx (a 401 for an anonymous caller's `42501` included) → permanent.

use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use serde_json::Value;

use crate::error::{classify_status, classify_transport, Retry};

/// A non-2xx answer of PostgREST (or of a gateway in front of it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    /// PostgREST's code: a SQLSTATE (`23505`) or its own (`PGRST116`); `None` when the body had
    /// none (a gateway's refusal, a proxy's HTML page).
    pub code: Option<String>,
    pub message: String,
    pub details: Option<String>,
    pub hint: Option<String>,
    pub retry: Retry,
}

/// Why a REST request failed.
#[derive(Debug, thiserror::Error)]
pub enum RestError {
    /// The request did not get an answer: connection refused or reset, timeout, a body cut
    /// short. Transient.
    #[error("network error: {0}")]
    Network(#[source] reqwest::Error),
    /// The server answered with an error status.
    #[error("{} ({}{}): {}", .0.status, .0.code.as_deref().unwrap_or("no code"), .0.details.as_deref().map(|d| format!("; {d}")).unwrap_or_default(), .0.message)]
    Api(ApiError),
    /// A 2xx answer whose body is not what the caller asked for. Permanent.
    #[error("unexpected response body: {0}")]
    Decode(String),
    /// The request could not be made (a body that does not serialise to JSON, a header value
    /// that cannot be sent). Permanent.
    #[error("invalid request: {0}")]
    Request(String),
}

impl RestError {
    /// What a retrying caller should do (see the module doc).
    pub fn retry(&self) -> Retry {
        match self {
            RestError::Network(e) => classify_transport(e),
            RestError::Api(e) => e.retry,
            RestError::Decode(_) | RestError::Request(_) => Retry::Permanent,
        }
    }

    pub fn is_transient(&self) -> bool {
        self.retry().is_transient()
    }

    /// The server's `Retry-After`, for a transient failure that carried one.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        self.retry().retry_after()
    }

    /// The PostgREST / SQLSTATE code, if the server sent one.
    pub fn code(&self) -> Option<&str> {
        match self {
            RestError::Api(e) => e.code.as_deref(),
            _ => None,
        }
    }

    /// The HTTP status, if the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            RestError::Api(e) => Some(e.status),
            _ => None,
        }
    }
}

/// SQLSTATE classes that PostgREST may answer with a 5xx but that fail the same way on retry.
const DETERMINISTIC_SQLSTATE_CLASSES: &[&str] = &["21", "22", "23", "42", "54", "P0", "0L", "0P", "28"];

/// PostgREST's JWT errors: the token must change before a retry can pass.
const JWT_CODES: &[&str] = &["PGRST301", "PGRST302", "PGRST303"];

impl ApiError {
    /// Decodes an error answer: PostgREST's JSON, any JSON object with a `message`, or text.
    pub(crate) fn decode(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> ApiError {
        let text = |v: Option<&Value>| -> Option<String> {
            match v? {
                Value::Null => None,
                Value::String(s) => Some(s.clone()),
                other => Some(other.to_string()),
            }
        };
        let (code, message, details, hint) = match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(o)) => (
                text(o.get("code")),
                text(o.get("message").or_else(|| o.get("msg")).or_else(|| o.get("error"))),
                text(o.get("details")),
                text(o.get("hint")),
            ),
            _ => (None, None, None, None),
        };
        let message = message
            .or_else(|| Some(String::from_utf8_lossy(body).trim().to_string()).filter(|s| !s.is_empty()))
            .unwrap_or_else(|| status.canonical_reason().unwrap_or("HTTP error").to_string());
        let retry = classify(status, headers, code.as_deref());
        ApiError { status: status.as_u16(), code, message, details, hint, retry }
    }
}

fn classify(status: StatusCode, headers: &HeaderMap, code: Option<&str>) -> Retry {
    if status == StatusCode::UNAUTHORIZED && code.is_some_and(|c| JWT_CODES.contains(&c)) {
        return Retry::Unauthorized;
    }
    if status.is_server_error()
        && code.is_some_and(|c| c.len() == 5 && DETERMINISTIC_SQLSTATE_CLASSES.iter().any(|p| c.starts_with(p)))
    {
        return Retry::Permanent;
    }
    classify_status(status, headers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderValue, RETRY_AFTER};
    use std::time::Duration;

    fn decode(status: u16, headers: &HeaderMap, body: &str) -> ApiError {
        ApiError::decode(StatusCode::from_u16(status).expect("status"), headers, body.as_bytes())
    }

    #[test]
    fn postgrest_error_bodies_are_decoded_field_by_field() {
        let e = decode(
            409,
            &HeaderMap::new(),
            r#"{"code":"23505","message":"duplicate key value violates unique constraint","details":"Key (id)=(1) already exists.","hint":null}"#,
        );
        assert_eq!(e.code.as_deref(), Some("23505"));
        assert_eq!(e.details.as_deref(), Some("Key (id)=(1) already exists."));
        assert_eq!(e.hint, None);
        assert_eq!(e.retry, Retry::Permanent, "a duplicate stays a duplicate");
    }

    #[test]
    fn non_json_and_gateway_bodies_keep_their_text() {
        let e = decode(502, &HeaderMap::new(), "<html>Bad Gateway</html>");
        assert_eq!((e.code, e.message.as_str()), (None, "<html>Bad Gateway</html>"));
        assert!(e.retry.is_transient());
        let e = decode(401, &HeaderMap::new(), r#"{"message":"Invalid API key","hint":"Double check"}"#);
        assert_eq!((e.message.as_str(), e.retry), ("Invalid API key", Retry::Permanent));
        let e = decode(503, &HeaderMap::new(), "");
        assert_eq!(e.message, "Service Unavailable");
    }

    #[test]
    fn rate_limits_carry_retry_after() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("3"));
        let e = decode(429, &h, r#"{"message":"Too many requests"}"#);
        assert_eq!(e.retry, Retry::Transient { after: Some(Duration::from_secs(3)) });
        let e = decode(503, &h, r#"{"code":"08006","message":"connection failure"}"#);
        assert_eq!(e.retry, Retry::Transient { after: Some(Duration::from_secs(3)) });
    }

    #[test]
    fn jwt_errors_ask_for_a_refresh_and_other_401s_do_not() {
        let e = decode(401, &HeaderMap::new(), r#"{"code":"PGRST303","message":"JWT expired"}"#);
        assert_eq!(e.retry, Retry::Unauthorized);
        let e = decode(401, &HeaderMap::new(), r#"{"code":"42501","message":"permission denied for table x"}"#);
        assert_eq!(e.retry, Retry::Permanent, "an anonymous caller lacks a privilege; a new token will not help");
    }

    #[test]
    fn deterministic_server_errors_are_permanent_others_transient() {
        let e = decode(500, &HeaderMap::new(), r#"{"code":"21000","message":"more than one row"}"#);
        assert_eq!(e.retry, Retry::Permanent);
        let e = decode(500, &HeaderMap::new(), r#"{"code":"42P17","message":"infinite recursion"}"#);
        assert_eq!(e.retry, Retry::Permanent);
        let e = decode(500, &HeaderMap::new(), r#"{"code":"40001","message":"could not serialize"}"#);
        assert!(e.retry.is_transient(), "a serialization failure passes on retry");
        let e = decode(500, &HeaderMap::new(), r#"{"code":"XX000","message":"Internal database error"}"#);
        assert!(e.retry.is_transient());
    }
}
