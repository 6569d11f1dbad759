//! GoTrue's errors: one closed enum, each variant with GoTrue's HTTP status, `error_code` and
//! message text, rendered in the two wire shapes GoTrue has.
//!
//! - API version `2024-01-01` or later (the request carries `X-Supabase-Api-Version`; supabase-js
//!   always sends it): `{"code":"<error_code>","message":"…"}`, and the response echoes the
//!   header, because auth-js only reads `code` when the *response* carries it.
//! - Otherwise (the initial version): `{"code":<status>,"error_code":"…","msg":"…"}`.
//!
//! `weak_password` errors carry `"weak_password":{"reasons":[…]}` in both shapes. Every error
//! also sets `x-sb-error-code`, as GoTrue does. Internal failures are logged with their cause
//! and answered with GoTrue's generic 500 text, never with the cause.

use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use crate::db::DbError;

/// The request header (and response header) that selects the error shape.
pub const API_VERSION_HEADER: &str = "x-supabase-api-version";

/// The error shape a request asked for through `X-Supabase-Api-Version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiVersion {
    /// No header, or a value that is not a date, or a date before 2024-01-01.
    Initial,
    /// `2024-01-01` or any later date.
    V2024_01_01,
}

impl ApiVersion {
    /// Picks the closest known version at or below the requested date, like GoTrue.
    pub fn from_header(value: Option<&str>) -> ApiVersion {
        let Some(v) = value else {
            return ApiVersion::Initial;
        };
        match chrono::NaiveDate::parse_from_str(v.trim(), "%Y-%m-%d") {
            Ok(d) if d >= chrono::NaiveDate::from_ymd_opt(2024, 1, 1).unwrap_or(chrono::NaiveDate::MIN) => {
                ApiVersion::V2024_01_01
            }
            _ => ApiVersion::Initial,
        }
    }
}

/// Why an auth request failed. `Display` is the message GoTrue sends.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("Could not parse request body as JSON: {0}")]
    BadJson(String),
    #[error("Request body too large (max {0} bytes)")]
    BodyTooLarge(usize),
    #[error("Signup requires a valid password")]
    PasswordRequired,
    #[error("Password should be at least {0} characters.")]
    WeakPassword(usize),
    #[error("An email address is required")]
    EmailRequired,
    #[error("An email address is too long")]
    EmailTooLong,
    #[error("Unable to validate email address: invalid format")]
    EmailInvalid,
    /// Both `email` and `phone` were sent; the payload names the operation (`signup`, `login`).
    #[error("Only an email address or phone number should be provided on {0}.")]
    EmailAndPhone(&'static str),
    #[error("Sign up only available with email provider")]
    SignupNeedsEmail,
    #[error("missing email or phone")]
    MissingEmailOrPhone,
    #[error("Phone signups are disabled")]
    PhoneSignupsDisabled,
    #[error("Phone logins are disabled")]
    PhoneLoginsDisabled,
    #[error("User already registered")]
    UserAlreadyExists,
    #[error("Invalid login credentials")]
    InvalidCredentials,
    /// GoTrue answers an unknown `grant_type` with code `invalid_credentials` and this text.
    #[error("unsupported_grant_type")]
    UnsupportedGrantType,
    #[error("Refresh token is not valid")]
    RefreshTokenInvalid,
    #[error("Invalid Refresh Token: Refresh Token Not Found")]
    RefreshTokenNotFound,
    #[error("Invalid Refresh Token: Already Used")]
    RefreshTokenAlreadyUsed,
    /// The token exists but its session was logged out or revoked for reuse.
    #[error("Invalid Refresh Token: No Valid Session Found")]
    RefreshSessionGone,
    #[error("This endpoint requires a valid Bearer token")]
    NoAuthorization,
    /// The bearer token failed parsing, signature, algorithm or expiry checks; the payload is
    /// the reason in GoTrue's (golang-jwt's) words.
    #[error("invalid JWT: unable to parse or verify signature, {0}")]
    BadJwt(String),
    #[error("invalid claim: missing sub claim")]
    MissingSub,
    #[error("invalid claim: sub claim must be a UUID")]
    SubNotUuid,
    #[error("invalid claim: session_id claim must be a UUID")]
    SessionIdNotUuid,
    #[error("User from sub claim in JWT does not exist")]
    UserNotFound,
    #[error("Session from session_id claim in JWT does not exist")]
    SessionNotFound,
    #[error("Unsupported logout scope {0:?}")]
    UnsupportedLogoutScope(String),
    #[error("New password should be different from the old password.")]
    SamePassword,
    /// A request this local server does not support (e.g. changing the email address).
    #[error("{0}")]
    Unsupported(&'static str),
    #[error("Not Found")]
    NotFound,
    /// A database or task failure; the payload is logged, never sent.
    #[error("Unexpected failure, please check server logs for more information")]
    Internal(String),
}

impl From<DbError> for AuthError {
    fn from(e: DbError) -> AuthError {
        AuthError::Internal(e.to_string())
    }
}

impl From<rusqlite::Error> for AuthError {
    fn from(e: rusqlite::Error) -> AuthError {
        AuthError::Internal(e.to_string())
    }
}

impl AuthError {
    pub fn status(&self) -> StatusCode {
        use AuthError::*;
        match self {
            BadJson(_)
            | PasswordRequired
            | EmailRequired
            | EmailTooLong
            | EmailInvalid
            | EmailAndPhone(_)
            | SignupNeedsEmail
            | MissingEmailOrPhone
            | PhoneSignupsDisabled
            | InvalidCredentials
            | UnsupportedGrantType
            | RefreshTokenInvalid
            | RefreshTokenNotFound
            | RefreshTokenAlreadyUsed
            | RefreshSessionGone
            | SubNotUuid
            | UnsupportedLogoutScope(_) => StatusCode::BAD_REQUEST,
            NoAuthorization => StatusCode::UNAUTHORIZED,
            BadJwt(_) | MissingSub | SessionIdNotUuid | UserNotFound | SessionNotFound => StatusCode::FORBIDDEN,
            NotFound => StatusCode::NOT_FOUND,
            BodyTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            WeakPassword(_) | UserAlreadyExists | PhoneLoginsDisabled | SamePassword | Unsupported(_) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// GoTrue's `error_code`.
    pub fn code(&self) -> &'static str {
        use AuthError::*;
        match self {
            BadJson(_) => "bad_json",
            BodyTooLarge(_) => "request_entity_too_large",
            PasswordRequired
            | EmailRequired
            | EmailTooLong
            | EmailInvalid
            | EmailAndPhone(_)
            | SignupNeedsEmail
            | MissingEmailOrPhone
            | RefreshTokenInvalid
            | UnsupportedLogoutScope(_)
            | Unsupported(_) => "validation_failed",
            WeakPassword(_) => "weak_password",
            PhoneSignupsDisabled | PhoneLoginsDisabled => "phone_provider_disabled",
            UserAlreadyExists => "user_already_exists",
            InvalidCredentials | UnsupportedGrantType => "invalid_credentials",
            RefreshTokenNotFound => "refresh_token_not_found",
            RefreshTokenAlreadyUsed => "refresh_token_already_used",
            RefreshSessionGone | SessionNotFound => "session_not_found",
            NoAuthorization => "no_authorization",
            BadJwt(_) | MissingSub | SubNotUuid | SessionIdNotUuid => "bad_jwt",
            UserNotFound => "user_not_found",
            SamePassword => "same_password",
            NotFound => "not_found",
            Internal(_) => "unexpected_failure",
        }
    }

    /// The JSON body and headers of this error for a request of `version`.
    pub fn render(&self, version: ApiVersion) -> Response {
        if let AuthError::Internal(cause) = self {
            tracing::error!(%cause, "auth request failed");
        }
        let status = self.status();
        let mut body = match version {
            ApiVersion::V2024_01_01 => json!({ "code": self.code(), "message": self.to_string() }),
            ApiVersion::Initial => {
                json!({ "code": status.as_u16(), "error_code": self.code(), "msg": self.to_string() })
            }
        };
        if let (AuthError::WeakPassword(_), Value::Object(map)) = (self, &mut body) {
            map.insert("weak_password".into(), json!({ "reasons": ["length"] }));
        }
        let mut response = (status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(HeaderName::from_static("x-sb-error-code"), HeaderValue::from_static(self.code()));
        if version == ApiVersion::V2024_01_01 {
            headers.insert(HeaderName::from_static(API_VERSION_HEADER), HeaderValue::from_static("2024-01-01"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body_of(r: Response) -> (StatusCode, axum::http::HeaderMap, Value) {
        let status = r.status();
        let headers = r.headers().clone();
        let bytes = axum::body::to_bytes(r.into_body(), 1 << 16).await.expect("body");
        (status, headers, serde_json::from_slice(&bytes).expect("json"))
    }

    #[test]
    fn api_version_header_picks_the_closest_known_version() {
        assert_eq!(ApiVersion::from_header(None), ApiVersion::Initial);
        assert_eq!(ApiVersion::from_header(Some("2024-01-01")), ApiVersion::V2024_01_01);
        assert_eq!(ApiVersion::from_header(Some("2026-05-07")), ApiVersion::V2024_01_01);
        assert_eq!(ApiVersion::from_header(Some("2023-12-31")), ApiVersion::Initial);
        assert_eq!(ApiVersion::from_header(Some("latest")), ApiVersion::Initial);
    }

    #[tokio::test]
    async fn versioned_error_has_string_code_and_echoes_the_header() {
        let (status, headers, body) = body_of(AuthError::InvalidCredentials.render(ApiVersion::V2024_01_01)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body, json!({"code": "invalid_credentials", "message": "Invalid login credentials"}));
        assert_eq!(headers.get(API_VERSION_HEADER).and_then(|v| v.to_str().ok()), Some("2024-01-01"));
        assert_eq!(headers.get("x-sb-error-code").and_then(|v| v.to_str().ok()), Some("invalid_credentials"));
    }

    #[tokio::test]
    async fn initial_error_has_numeric_code_error_code_and_msg() {
        let (status, headers, body) = body_of(AuthError::UserAlreadyExists.render(ApiVersion::Initial)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(body, json!({"code": 422, "error_code": "user_already_exists", "msg": "User already registered"}));
        assert!(headers.get(API_VERSION_HEADER).is_none(), "the initial version does not echo a header");
    }

    #[tokio::test]
    async fn weak_password_carries_its_reasons_in_both_shapes() {
        for v in [ApiVersion::Initial, ApiVersion::V2024_01_01] {
            let (_, _, body) = body_of(AuthError::WeakPassword(6).render(v)).await;
            assert_eq!(body["weak_password"], json!({"reasons": ["length"]}), "{v:?}");
        }
    }

    #[tokio::test]
    async fn internal_errors_never_leak_their_cause() {
        let (status, _, body) =
            body_of(AuthError::Internal("disk I/O error at /secret/path".into()).render(ApiVersion::V2024_01_01)).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!body.to_string().contains("/secret/path"), "{body}");
    }
}
