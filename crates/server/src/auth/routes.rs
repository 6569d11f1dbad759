//! The `/auth/v1` HTTP handlers. Each one takes a [`Call`] first (the gateway's API-key check
//! and the error shape the client asked for), reads its JSON body through [`read_json`], and
//! answers either its success JSON or an [`AuthError`] rendered for that client.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::access::{self, Caller};
use super::account::{self, NewAccount, User};
use super::error::{ApiVersion, API_VERSION_HEADER};
use super::session::{self, LogoutScope, Revocation, Rotation};
use super::{password, AuthError};
use crate::schema::format_ts;
use crate::AppState;

/// Largest request body accepted (GoTrue's limit).
pub const MAX_BODY_BYTES: usize = 1 << 20;
/// How much of an oversized body is still read (and dropped) so the client, which is usually
/// still sending, can read the 413 instead of seeing a reset connection.
const DRAIN_LIMIT_BYTES: usize = 16 << 20;

pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/signup", post(signup))
        .route("/token", post(token))
        .route("/user", get(get_user).put(update_user))
        .route("/logout", post(logout))
        .route("/settings", get(settings))
        .route("/health", get(health))
        .fallback(not_found)
}

/// A request that passed the gateway: the state, the error shape it asked for, and its query.
pub struct Call {
    state: Arc<AppState>,
    version: ApiVersion,
    query: Option<String>,
    headers: HeaderMap,
}

impl FromRequestParts<Arc<AppState>> for Call {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Call, Response> {
        crate::gateway::api_key(state, &parts.headers, parts.uri.query()).map_err(IntoResponse::into_response)?;
        let version = ApiVersion::from_header(parts.headers.get(API_VERSION_HEADER).and_then(|v| v.to_str().ok()));
        Ok(Call {
            state: Arc::clone(state),
            version,
            query: parts.uri.query().map(str::to_string),
            headers: parts.headers.clone(),
        })
    }
}

impl Call {
    fn respond(&self, result: Result<Response, AuthError>) -> Response {
        result.unwrap_or_else(|e| e.render(self.version))
    }

    /// A query parameter's raw value (the values used here never need percent-decoding).
    fn param(&self, name: &str) -> Option<&str> {
        self.query.as_deref()?.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k == name).then_some(v)
        })
    }

    async fn caller(&self) -> Result<Caller, AuthError> {
        access::authenticate(&self.state, &self.headers).await
    }
}

/// Reads the whole body (at most [`MAX_BODY_BYTES`]) and parses it as `T`.
async fn read_json<T: DeserializeOwned>(body: Body) -> Result<T, AuthError> {
    let mut stream = body.into_data_stream();
    let mut buf = Vec::new();
    let mut seen = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| AuthError::BadJson(format!("could not read the body: {e}")))?;
        seen += chunk.len();
        if seen > DRAIN_LIMIT_BYTES {
            break;
        }
        if seen <= MAX_BODY_BYTES {
            buf.extend_from_slice(&chunk);
        }
    }
    if seen > MAX_BODY_BYTES {
        return Err(AuthError::BodyTooLarge(MAX_BODY_BYTES));
    }
    serde_json::from_slice(&buf).map_err(|e| AuthError::BadJson(e.to_string()))
}

fn ok_json(value: Value) -> Result<Response, AuthError> {
    Ok((StatusCode::OK, Json(value)).into_response())
}

/// Empty strings count as absent, as Go's zero values do in GoTrue.
fn given(s: &Option<String>) -> Option<&str> {
    s.as_deref().filter(|s| !s.is_empty())
}

#[derive(Deserialize)]
struct SignupBody {
    email: Option<String>,
    phone: Option<String>,
    password: Option<String>,
    data: Option<Map<String, Value>>,
}

async fn signup(call: Call, body: Body) -> Response {
    let result = async {
        let req: SignupBody = read_json(body).await?;
        let state = &call.state;
        let password = req.password.clone().unwrap_or_default();
        password::check_signup(&password, state.auth.config.min_password_length)?;
        let email = match (given(&req.email), given(&req.phone)) {
            (Some(_), Some(_)) => return Err(AuthError::EmailAndPhone("signup")),
            (None, Some(_)) => return Err(AuthError::PhoneSignupsDisabled),
            (None, None) => return Err(AuthError::SignupNeedsEmail),
            (Some(email), None) => email,
        };
        let account =
            NewAccount::new(email, &password, req.data.unwrap_or_default(), state.auth.config.min_password_length)?;
        // Cheap early answer before the expensive hash; `insert` checks again under the lock.
        let probe = account.email().to_string();
        if state.db.read(move |c| account::email_taken(c, &probe).map_err(AuthError::from)).await? {
            return Err(AuthError::UserAlreadyExists);
        }
        let hashed = account.hash_with(&state.auth.hasher).await?;
        let issued = state
            .db
            .write(move |tx| {
                let now = Utc::now();
                let ts = format_ts(now);
                let mut user = hashed.insert(tx, &ts)?;
                user.touch_sign_in(tx, &ts)?;
                session::start(tx, user, now)
            })
            .await?;
        ok_json(access::session_json(state, &issued, Utc::now()))
    }
    .await;
    call.respond(result)
}

#[derive(Deserialize)]
struct PasswordGrantBody {
    email: Option<String>,
    phone: Option<String>,
    password: Option<String>,
}

#[derive(Deserialize)]
struct RefreshGrantBody {
    refresh_token: Option<String>,
}

async fn token(call: Call, body: Body) -> Response {
    let result = match call.param("grant_type") {
        Some("password") => password_grant(&call, body).await,
        Some("refresh_token") => refresh_grant(&call, body).await,
        _ => Err(AuthError::UnsupportedGrantType),
    };
    call.respond(result)
}

async fn password_grant(call: &Call, body: Body) -> Result<Response, AuthError> {
    let req: PasswordGrantBody = read_json(body).await?;
    let state = &call.state;
    let email = match (given(&req.email), given(&req.phone)) {
        (Some(_), Some(_)) => return Err(AuthError::EmailAndPhone("login")),
        (None, Some(_)) => return Err(AuthError::PhoneLoginsDisabled),
        (None, None) => return Err(AuthError::MissingEmailOrPhone),
        (Some(email), None) => email.trim().to_ascii_lowercase(),
    };
    let found = state.db.read(move |c| User::load_by_email(c, &email).map_err(AuthError::from)).await?;
    let (user, hash) = match found {
        Some((user, hash)) => (Some(user), Some(hash)),
        None => (None, None),
    };
    // Unknown email and wrong password cost the same and answer the same.
    let matches = state.auth.hasher.verify(req.password.unwrap_or_default(), hash).await?;
    let Some(mut user) = user.filter(|_| matches) else {
        return Err(AuthError::InvalidCredentials);
    };
    let issued = state
        .db
        .write(move |tx| {
            let now = Utc::now();
            user.touch_sign_in(tx, &format_ts(now))?;
            session::start(tx, user, now)
        })
        .await?;
    ok_json(access::session_json(state, &issued, Utc::now()))
}

async fn refresh_grant(call: &Call, body: Body) -> Result<Response, AuthError> {
    let req: RefreshGrantBody = read_json(body).await?;
    let state = &call.state;
    let token = req.refresh_token.unwrap_or_default();
    if token.len() < 12 {
        return Err(AuthError::RefreshTokenInvalid);
    }
    let interval = state.auth.config.refresh_token_reuse_interval_secs;
    match state.db.write(move |tx| session::rotate(tx, &token, Utc::now(), interval)).await? {
        Rotation::Issued(issued) => ok_json(access::session_json(state, &issued, Utc::now())),
        Rotation::Reused => Err(AuthError::RefreshTokenAlreadyUsed),
    }
}

async fn get_user(call: Call) -> Response {
    let result = call.caller().await.and_then(|c| ok_json(c.user.to_json()));
    call.respond(result)
}

#[derive(Deserialize)]
struct UserUpdateBody {
    email: Option<String>,
    phone: Option<String>,
    password: Option<String>,
    data: Option<Map<String, Value>>,
}

async fn update_user(call: Call, body: Body) -> Response {
    let result = async {
        let caller = call.caller().await?;
        let req: UserUpdateBody = read_json(body).await?;
        let state = &call.state;
        if let Some(email) = given(&req.email) {
            if account::normalize_email(email)? != caller.user.email {
                return Err(AuthError::Unsupported("Changing the email address is not supported by this server"));
            }
        }
        if given(&req.phone).is_some() {
            return Err(AuthError::Unsupported("Phone numbers are not supported by this server"));
        }
        let new_hash = match req.password {
            None => None,
            Some(pw) => {
                password::check_strength(&pw, state.auth.config.min_password_length)?;
                let id = caller.user.id.clone();
                let current = state.db.read(move |c| User::password_hash(c, &id).map_err(AuthError::from)).await?;
                if state.auth.hasher.verify(pw.clone(), current).await? {
                    return Err(AuthError::SamePassword);
                }
                Some(state.auth.hasher.hash(pw).await?)
            }
        };
        let data = req.data.unwrap_or_default();
        let Caller { user, session_id } = caller;
        let user = state
            .db
            .write(move |tx| {
                // Re-read under the write lock so concurrent updates do not lose each other's keys.
                let mut user = User::load(tx, &user.id)?.ok_or(AuthError::UserNotFound)?;
                user.merge_metadata(&data);
                let ts = format_ts(Utc::now());
                user.save(tx, new_hash.as_deref(), &ts)?;
                if new_hash.is_some() {
                    // A new password ends the user's other sessions, as in GoTrue.
                    let which = match &session_id {
                        Some(s) => Revocation::AllBut(&user.id, s),
                        None => Revocation::AllOf(&user.id),
                    };
                    session::revoke(tx, which, &ts)?;
                }
                Ok::<_, AuthError>(user)
            })
            .await?;
        ok_json(user.to_json())
    }
    .await;
    call.respond(result)
}

async fn logout(call: Call) -> Response {
    let result = async {
        let caller = call.caller().await?;
        let scope = LogoutScope::parse(call.param("scope"))?;
        let Caller { user, session_id } = caller;
        call.state.db.write(move |tx| session::logout(tx, &user.id, session_id.as_deref(), scope, Utc::now())).await?;
        Ok(StatusCode::NO_CONTENT.into_response())
    }
    .await;
    call.respond(result)
}

async fn settings(call: Call) -> Response {
    let external: Map<String, Value> = [
        "anonymous_users",
        "apple",
        "azure",
        "bitbucket",
        "discord",
        "facebook",
        "figma",
        "github",
        "gitlab",
        "google",
        "keycloak",
        "linkedin_oidc",
        "notion",
        "slack_oidc",
        "spotify",
        "twitch",
        "twitter",
        "workos",
        "zoom",
        "phone",
    ]
    .into_iter()
    .map(|p| (p.to_string(), json!(false)))
    .chain([("email".to_string(), json!(true))])
    .collect();
    call.respond(ok_json(json!({
        "external": external,
        "disable_signup": false,
        "mailer_autoconfirm": true,
        "phone_autoconfirm": false,
        "sms_provider": "",
        "saml_enabled": false,
        "passkeys_enabled": false,
    })))
}

async fn health(call: Call) -> Response {
    call.respond(ok_json(json!({
        "version": concat!("ruwad-", env!("CARGO_PKG_VERSION")),
        "name": "GoTrue",
        "description": "GoTrue is a user registration and authentication API",
    })))
}

async fn not_found(call: Call) -> Response {
    call.respond(Err(AuthError::NotFound))
}
