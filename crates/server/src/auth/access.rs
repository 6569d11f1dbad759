//! Access tokens: the HS256 JWT a session hands out, the session JSON around it, and the
//! bearer check of `/user` and `/logout`.
//!
//! Claims follow GoTrue's `AccessTokenClaims`: `sub`, `aud` (a single string), `role`, `exp`,
//! `iat`, `iss`, `email`, `phone`, `app_metadata`, `user_metadata`, `aal`, `amr`,
//! `session_id`, `is_anonymous`. The issuer is the fixed [`ISSUER`], not the server's URL:
//! the URL is only known after binding and changes with the port, while tokens must stay
//! valid across restarts on the same data dir; nothing here or in supabase-js checks `iss`.
//!
//! A bearer token passes only if it verifies with the project secret (HS256 only; `none` and
//! every other algorithm are refused before the signature is looked at), has not expired,
//! names an existing user by UUID `sub` and, if it names a session, that session is live.
//! Refusals use GoTrue's texts, whose JWT parts come from golang-jwt.

use std::sync::Arc;

use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use super::account::User;
use super::session::{self, Issued};
use super::AuthError;
use crate::jwt::{self, Claims, JwtError};
use crate::AppState;

/// The `iss` of every access token this server issues.
pub const ISSUER: &str = "ruwad-local";

/// Signs an access token for `issued` and wraps it in GoTrue's session JSON.
pub fn session_json(state: &AppState, issued: &Issued, now: DateTime<Utc>) -> Value {
    let expires_in = state.auth.config.jwt_expiry_secs;
    let exp = now.timestamp() + expires_in;
    let access_token = jwt::sign(&claims(issued, now, exp), state.keys.secret());
    json!({
        "access_token": access_token,
        "token_type": "bearer",
        "expires_in": expires_in,
        "expires_at": exp,
        "refresh_token": issued.refresh_token,
        "user": issued.user.to_json(),
    })
}

fn claims(issued: &Issued, now: DateTime<Utc>, exp: i64) -> Claims {
    let user = &issued.user;
    let mut extra = Map::new();
    extra.insert("aud".into(), json!("authenticated"));
    extra.insert("iss".into(), json!(ISSUER));
    extra.insert("email".into(), json!(user.email));
    extra.insert("phone".into(), json!(""));
    extra.insert("app_metadata".into(), User::app_metadata());
    extra.insert("user_metadata".into(), Value::Object(user.user_metadata.clone()));
    extra.insert("aal".into(), json!("aal1"));
    extra.insert("amr".into(), json!([{ "method": "password", "timestamp": issued.signed_in_at }]));
    extra.insert("is_anonymous".into(), json!(false));
    Claims {
        sub: Some(user.id.clone()),
        role: "authenticated".into(),
        exp,
        iat: Some(now.timestamp()),
        session_id: Some(issued.session_id.clone()),
        extra,
    }
}

/// Who a valid bearer token speaks for.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: User,
    /// The token's live session, if it named one.
    pub session_id: Option<String>,
}

/// Checks the `Authorization: Bearer` token as GoTrue's `requireAuthentication` does.
pub async fn authenticate(state: &Arc<AppState>, headers: &HeaderMap) -> Result<Caller, AuthError> {
    let token = crate::gateway::bearer(headers).ok_or(AuthError::NoAuthorization)?;
    let claims = state.verify(token).map_err(|e| AuthError::BadJwt(jwt_reason(token, &e)))?;
    let sub = claims.sub.filter(|s| !s.is_empty()).ok_or(AuthError::MissingSub)?;
    let user_id = uuid::Uuid::parse_str(&sub).map_err(|_| AuthError::SubNotUuid)?.to_string();
    let session_id = match claims.session_id.filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => match uuid::Uuid::parse_str(&s) {
            Ok(id) if id.is_nil() => None,
            Ok(id) => Some(id.to_string()),
            Err(_) => return Err(AuthError::SessionIdNotUuid),
        },
    };
    state
        .db
        .read(move |conn| -> Result<Caller, AuthError> {
            let user = User::load(conn, &user_id)?.ok_or(AuthError::UserNotFound)?;
            if let Some(sid) = &session_id {
                if !session::is_live(conn, sid)? {
                    return Err(AuthError::SessionNotFound);
                }
            }
            Ok(Caller { user, session_id })
        })
        .await
}

/// golang-jwt's wording of why a token failed, as GoTrue puts it after
/// "invalid JWT: unable to parse or verify signature, ".
fn jwt_reason(token: &str, e: &JwtError) -> String {
    match e {
        JwtError::Malformed if token.split('.').count() != 3 => {
            "token is malformed: token contains an invalid number of segments".into()
        }
        JwtError::Malformed => "token is malformed: could not base64 or JSON decode the token".into(),
        JwtError::Algorithm(alg) => {
            format!("token signature is invalid: signing method {alg} is invalid")
        }
        JwtError::Signature => "token signature is invalid: signature is invalid".into(),
        JwtError::Expired(_) => "token has invalid claims: token is expired".into(),
        JwtError::MissingClaims => "token has invalid claims: token is missing required claim: role and exp".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwt_reasons_use_golang_jwt_words() {
        assert_eq!(
            jwt_reason("abc", &JwtError::Malformed),
            "token is malformed: token contains an invalid number of segments"
        );
        assert_eq!(
            jwt_reason("a.b.c", &JwtError::Algorithm("none".into())),
            "token signature is invalid: signing method none is invalid"
        );
        assert_eq!(jwt_reason("a.b.c", &JwtError::Expired(3)), "token has invalid claims: token is expired");
    }
}
