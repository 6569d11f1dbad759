//! GoTrue subset at `/auth/v1`: email + password accounts, sessions with rotating refresh
//! tokens, and the access tokens REST and Realtime trust — the part of Supabase Auth that
//! `@supabase/supabase-js` uses for `signUp`, `signInWithPassword`, refresh, `getUser`,
//! `updateUser` and `signOut`.
//!
//! Map:
//! - [`routes`]: the HTTP handlers, thin: gateway key check, body parsing, then the pieces below.
//! - [`account`]: creating accounts (auth user + profile, shared with the demo seed) and the
//!   User JSON.
//! - [`password`]: argon2id hashing off the async runtime.
//! - [`session`]: sessions, refresh-token rotation and reuse detection, logout.
//! - [`access`]: the access-token JWT, the session JSON and the bearer check.
//! - [`error`]: GoTrue's error codes, statuses, texts and its two error shapes.
//!
//! Failure modes: every request first passes the API-key gateway (401 in Kong's shape). Bad
//! input — malformed or non-object JSON, wrong field types, a body over 1 MiB, missing or
//! invalid fields — is refused with GoTrue's code before anything is written; each write is a
//! single transaction, so a failure leaves nothing behind. Password hashing never runs on an
//! async worker or under the database write lock. Database failures answer GoTrue's generic
//! 500 and are logged with their cause.

pub mod access;
pub mod account;
pub mod error;
pub mod password;
pub mod routes;
pub mod session;

use std::sync::Arc;

use axum::Router;

pub use access::ISSUER;
pub use error::{ApiVersion, AuthError};

use crate::AppState;

/// GoTrue settings of this server.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// Lifetime of access tokens (GoTrue's `JWT_EXP`), seconds.
    pub jwt_expiry_secs: i64,
    /// How long after a rotation the previous refresh token may still be presented and get
    /// the live token back (GoTrue's `SECURITY_REFRESH_TOKEN_REUSE_INTERVAL`), seconds.
    pub refresh_token_reuse_interval_secs: i64,
    /// Shortest accepted password, in characters (GoTrue's `PASSWORD_MIN_LENGTH`).
    pub min_password_length: usize,
}

impl Default for AuthConfig {
    fn default() -> AuthConfig {
        AuthConfig { jwt_expiry_secs: 3600, refresh_token_reuse_interval_secs: 10, min_password_length: 6 }
    }
}

/// The auth service's share of the server state.
pub struct Auth {
    pub config: AuthConfig,
    pub hasher: password::Hasher,
}

impl Auth {
    pub fn new(config: AuthConfig) -> Auth {
        Auth { config, hasher: password::Hasher::default() }
    }
}

/// The `/auth/v1` routes.
pub fn router() -> Router<Arc<AppState>> {
    routes::router()
}
