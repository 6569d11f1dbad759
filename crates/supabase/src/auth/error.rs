//! Auth failures, decoded from GoTrue's answers (`supabase-wire.md` §7.3) and classified.
//!
//! GoTrue answers `{"code":"<error_code>","message":…}` when the request carried
//! `X-Supabase-Api-Version: 2024-01-01` (we always send it), and the older
//! `{"code":<status>,"error_code":…,"msg":…}` otherwise (an older server); both are read.
//! Statuses 429, 408 and 5xx are transient, like auth-js's "retryable" errors; others
//! permanent.

use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use serde_json::Value;

use super::store::StoreError;
use crate::error::{classify_status, classify_transport, Retry};

/// Why an auth operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Wrong email or password (`invalid_credentials`).
    #[error("invalid login credentials")]
    InvalidCredentials,
    /// Sign-up with an email that has an account (`user_already_exists`).
    #[error("a user with this email address already exists")]
    UserAlreadyExists,
    /// The password was refused (`weak_password`); `reasons` are GoTrue's (`length`,
    /// `characters`, `pwned`).
    #[error("weak password: {message}")]
    WeakPassword { message: String, reasons: Vec<String> },
    /// The session no longer exists on the server: its refresh token was already used or is
    /// unknown, or the session was signed out or revoked elsewhere. The local session has been
    /// cleared (and a [`SignedOut`](super::AuthEvent::SignedOut) event sent); sign in again.
    #[error("the session has ended ({code}): {message}")]
    SessionEnded { code: String, message: String },
    /// The operation needs a session and there is none.
    #[error("not signed in")]
    NotSignedIn,
    /// Any other refusal by the server.
    #[error("auth error {status} ({}): {message}", .code.as_deref().unwrap_or("no code"))]
    Api { status: u16, code: Option<String>, message: String, retry: Retry },
    /// No answer: connection refused or reset, timeout. Transient; the session is kept.
    #[error("network error: {0}")]
    Network(#[source] reqwest::Error),
    /// A 2xx answer that is not what GoTrue sends.
    #[error("unexpected response body: {0}")]
    Decode(String),
    /// The secret store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A background task of the auth handle failed unexpectedly.
    #[error("internal error: {0}")]
    Internal(String),
}

impl AuthError {
    /// What a retrying caller should do. Only network failures and 408/429/5xx are transient;
    /// a refused token is never retried blindly.
    pub fn retry(&self) -> Retry {
        match self {
            AuthError::Network(e) => classify_transport(e),
            AuthError::Api { retry, .. } => *retry,
            _ => Retry::Permanent,
        }
    }

    pub fn is_transient(&self) -> bool {
        self.retry().is_transient()
    }

    pub fn retry_after(&self) -> Option<Duration> {
        self.retry().retry_after()
    }

    /// GoTrue's error code, when the server sent one.
    pub fn code(&self) -> Option<&str> {
        match self {
            AuthError::InvalidCredentials => Some("invalid_credentials"),
            AuthError::UserAlreadyExists => Some("user_already_exists"),
            AuthError::WeakPassword { .. } => Some("weak_password"),
            AuthError::SessionEnded { code, .. } => Some(code),
            AuthError::Api { code, .. } => code.as_deref(),
            _ => None,
        }
    }

    /// Decodes GoTrue's error answer.
    pub(crate) fn decode(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> AuthError {
        let json = serde_json::from_slice::<Value>(body).ok();
        let obj = json.as_ref().and_then(Value::as_object);
        let field = |name: &str| obj.and_then(|o| o.get(name)).and_then(Value::as_str).map(str::to_string);
        // The 2024-01-01 shape has a string `code`; the older one a number there and `error_code`.
        let code = field("code").or_else(|| field("error_code"));
        let message = field("message")
            .or_else(|| field("msg"))
            .or_else(|| field("error_description"))
            .or_else(|| field("error"))
            .or_else(|| Some(String::from_utf8_lossy(body).trim().to_string()).filter(|s| !s.is_empty()))
            .unwrap_or_else(|| status.canonical_reason().unwrap_or("HTTP error").to_string());
        match code.as_deref() {
            Some("invalid_credentials") => return AuthError::InvalidCredentials,
            Some("user_already_exists") => return AuthError::UserAlreadyExists,
            Some("weak_password") => {
                let reasons = obj
                    .and_then(|o| o.get("weak_password"))
                    .and_then(|w| w.get("reasons"))
                    .and_then(Value::as_array)
                    .map(|r| r.iter().filter_map(Value::as_str).map(str::to_string).collect())
                    .unwrap_or_default();
                return AuthError::WeakPassword { message, reasons };
            }
            _ => {}
        }
        AuthError::Api { status: status.as_u16(), code, message, retry: classify_status(status, headers) }
    }

    /// This error seen on a refresh: a permanent 4xx means the refresh token is dead
    /// (`refresh_token_already_used`, `refresh_token_not_found`, `session_not_found`,
    /// `validation_failed` …), as auth-js decides; outages and rate limits leave it alive.
    pub(crate) fn on_refresh(self) -> AuthError {
        match self {
            AuthError::Api { status, code, message, retry: Retry::Permanent } if (400..500).contains(&status) => {
                AuthError::SessionEnded { code: code.unwrap_or_else(|| status.to_string()), message }
            }
            AuthError::InvalidCredentials => {
                AuthError::SessionEnded { code: "invalid_credentials".into(), message: "refresh refused".into() }
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderValue, RETRY_AFTER};

    fn decode(status: u16, body: &str) -> AuthError {
        AuthError::decode(StatusCode::from_u16(status).expect("status"), &HeaderMap::new(), body.as_bytes())
    }

    #[test]
    fn both_gotrue_error_shapes_decode_to_the_same_error() {
        assert!(matches!(
            decode(400, r#"{"code":"invalid_credentials","message":"Invalid login credentials"}"#),
            AuthError::InvalidCredentials
        ));
        assert!(matches!(
            decode(422, r#"{"code":422,"error_code":"user_already_exists","msg":"User already registered"}"#),
            AuthError::UserAlreadyExists
        ));
    }

    #[test]
    fn weak_password_keeps_its_reasons() {
        let e = decode(
            422,
            r#"{"code":"weak_password","message":"Password should be at least 6 characters.","weak_password":{"reasons":["length"]}}"#,
        );
        match e {
            AuthError::WeakPassword { reasons, .. } => assert_eq!(reasons, vec!["length"]),
            other => panic!("expected WeakPassword, got {other:?}"),
        }
    }

    #[test]
    fn refresh_refusals_end_the_session_but_outages_do_not() {
        let e = decode(400, r#"{"code":"refresh_token_already_used","message":"Invalid Refresh Token: Already Used"}"#)
            .on_refresh();
        assert!(matches!(&e, AuthError::SessionEnded { code, .. } if code == "refresh_token_already_used"), "{e:?}");
        let e = decode(503, "upstream down").on_refresh();
        assert!(e.is_transient(), "{e:?}");
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("30"));
        let e =
            AuthError::decode(StatusCode::TOO_MANY_REQUESTS, &h, br#"{"code":"over_request_rate_limit"}"#).on_refresh();
        assert_eq!(e.retry_after(), Some(Duration::from_secs(30)), "{e:?}");
    }
}
