//! The one error every command returns: `{ code, message }`. `code` is a closed set the UI
//! branches on (the engine's codes plus the shell's own); `message` is for people and logs,
//! never matched on.

use ruwad_core::EngineError;
use serde::Serialize;
use specta::Type;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Type)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    NotSignedIn,
    InvalidCredentials,
    /// Refused locally (empty message, not the author, read-only, …).
    Refused,
    /// The network or the server cannot be reached now; try again.
    Unavailable,
    /// The server refused the request.
    Server,
    /// The local database cannot be used.
    Storage,
    Internal,
    /// The OS keychain failed (the session is kept in memory instead).
    Keychain,
    /// Installing an update failed (the running version is unchanged or restored).
    Update,
    /// The update server answered, but with no usable release for this platform (a bad
    /// manifest, no build for this system).
    UpdateUnavailable,
    /// This copy cannot replace itself (a development build, an unpackaged binary).
    UpdateUnsupported,
    /// A downloaded update does not match its signature: it was not installed.
    Signature,
    /// The configuration (backend URL, key, settings file) is not usable.
    Config,
}

impl From<ruwad_core::ErrorCode> for ErrorCode {
    fn from(code: ruwad_core::ErrorCode) -> ErrorCode {
        // No wildcard: a new engine code must be given its wire name here.
        match code {
            ruwad_core::ErrorCode::NotSignedIn => ErrorCode::NotSignedIn,
            ruwad_core::ErrorCode::InvalidCredentials => ErrorCode::InvalidCredentials,
            ruwad_core::ErrorCode::Refused => ErrorCode::Refused,
            ruwad_core::ErrorCode::Unavailable => ErrorCode::Unavailable,
            ruwad_core::ErrorCode::Server => ErrorCode::Server,
            ruwad_core::ErrorCode::Storage => ErrorCode::Storage,
            ruwad_core::ErrorCode::Internal => ErrorCode::Internal,
        }
    }
}

/// What a failed command returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Type, thiserror::Error)]
#[error("{message}")]
pub struct AppError {
    pub code: ErrorCode,
    pub message: String,
}

impl AppError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> AppError {
        AppError { code, message: message.into() }
    }

    pub fn config(message: impl Into<String>) -> AppError {
        AppError::new(ErrorCode::Config, message)
    }

    pub fn internal(message: impl Into<String>) -> AppError {
        AppError::new(ErrorCode::Internal, message)
    }
}

impl From<EngineError> for AppError {
    fn from(e: EngineError) -> AppError {
        // An engine `Config` error is a bad project URL or key: the user's configuration.
        let code = match &e {
            EngineError::Config(_) => ErrorCode::Config,
            other => other.code().into(),
        };
        AppError { code, message: e.to_string() }
    }
}

impl From<crate::config::ConfigError> for AppError {
    fn from(e: crate::config::ConfigError) -> AppError {
        AppError::config(e.to_string())
    }
}

pub type AppResult<T> = Result<T, AppError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_cross_the_wire_as_code_and_message() {
        let e = AppError::from(EngineError::NotSignedIn);
        assert_eq!(
            serde_json::to_value(&e).expect("json"),
            serde_json::json!({ "code": "not_signed_in", "message": "not signed in" })
        );
        let e = AppError::from(EngineError::Config("relative URL without a base".into()));
        assert_eq!(e.code, ErrorCode::Config, "a bad project URL is the user's configuration to fix");
        assert_eq!(
            serde_json::to_value(AppError::new(ErrorCode::Keychain, "no keychain")).expect("json")["code"],
            "keychain"
        );
    }

    #[test]
    fn every_engine_code_keeps_its_wire_name() {
        use ruwad_core::ErrorCode as C;
        for code in
            [C::NotSignedIn, C::InvalidCredentials, C::Refused, C::Unavailable, C::Server, C::Storage, C::Internal]
        {
            assert_eq!(
                serde_json::to_value(code).expect("engine json"),
                serde_json::to_value(ErrorCode::from(code)).expect("shell json"),
                "the UI sees the engine's code unchanged"
            );
        }
    }
}
