//! Sessions and their rotating refresh tokens (`auth_sessions`, `auth_refresh_tokens`).
//!
//! A sign-in starts a session with one live refresh token. Each refresh revokes the token it
//! used and issues a child (`parent` = the used token), so a session has at most one live
//! token at a time and its tokens form a chain.
//!
//! Presenting a revoked token again is either a harmless race or a stolen token:
//! - it is the direct parent of the session's live token and that live token was issued less
//!   than the reuse interval ago (two tabs refreshing at once, or a client that lost the
//!   answer): the live token is handed out again, nothing new is issued;
//! - anything else is treated as theft: the whole session is revoked (every token, and the
//!   session itself, so its access tokens stop passing `/user` as well) and the caller gets
//!   `refresh_token_already_used`. The revocation is committed even though the request fails.
//!
//! (GoTrue hands out the live token for a parent at any age; this server limits that to the
//! reuse interval too, which closes the window for a stolen parent token.)
//!
//! Logout marks sessions revoked (`revoked_at`) and revokes their tokens; the rows stay. A
//! token of a revoked session is answered `session_not_found`; an unknown token
//! `refresh_token_not_found`. Refresh tokens are 32 characters from `[a-z0-9]` drawn from the
//! OS generator (≈165 bits), stored as they are because the race case must hand one back.

use chrono::{DateTime, Utc};
use rand::Rng;
use rusqlite::{params, Connection, OptionalExtension, Transaction};

use super::account::User;
use super::AuthError;

const TOKEN_LEN: usize = 32;
const TOKEN_ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// A session and the refresh token to hand to its client.
#[derive(Debug, Clone)]
pub struct Issued {
    pub user: User,
    pub session_id: String,
    pub refresh_token: String,
    /// When the session was signed in (Unix seconds), for the `amr` claim.
    pub signed_in_at: i64,
}

/// The outcome of presenting a refresh token.
#[derive(Debug)]
pub enum Rotation {
    Issued(Box<Issued>),
    /// A revoked token was reused outside the allowed race; its session is now revoked.
    Reused,
}

/// Which sessions a logout ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogoutScope {
    Global,
    Local,
    Others,
}

impl LogoutScope {
    pub fn parse(scope: Option<&str>) -> Result<LogoutScope, AuthError> {
        match scope.unwrap_or("") {
            "" | "global" => Ok(LogoutScope::Global),
            "local" => Ok(LogoutScope::Local),
            "others" => Ok(LogoutScope::Others),
            other => Err(AuthError::UnsupportedLogoutScope(other.to_string())),
        }
    }
}

/// A fresh, unguessable refresh token.
pub fn new_refresh_token() -> String {
    let mut rng = rand::rngs::OsRng;
    (0..TOKEN_LEN).map(|_| TOKEN_ALPHABET[rng.gen_range(0..TOKEN_ALPHABET.len())] as char).collect()
}

/// Starts a session for `user` at `now` with its first refresh token.
pub fn start(tx: &Transaction<'_>, user: User, now: DateTime<Utc>) -> Result<Issued, AuthError> {
    let ts = crate::schema::format_ts(now);
    let session_id = uuid::Uuid::new_v4().to_string();
    tx.execute(
        "INSERT INTO auth_sessions (id, user_id, created_at, revoked_at) VALUES (?1, ?2, ?3, NULL)",
        params![session_id, user.id, ts],
    )?;
    let refresh_token = insert_token(tx, &session_id, &user.id, None, &ts)?;
    Ok(Issued { user, session_id, refresh_token, signed_in_at: now.timestamp() })
}

fn insert_token(
    tx: &Transaction<'_>,
    session_id: &str,
    user_id: &str,
    parent: Option<&str>,
    ts: &str,
) -> Result<String, AuthError> {
    let token = new_refresh_token();
    tx.execute(
        "INSERT INTO auth_refresh_tokens (token, session_id, user_id, parent, revoked, created_at)
         VALUES (?1, ?2, ?3, ?4, 0, ?5)",
        params![token, session_id, user_id, parent, ts],
    )?;
    Ok(token)
}

/// Exchanges `token` for the session's next refresh token (see the module doc for reuse).
pub fn rotate(
    tx: &Transaction<'_>,
    token: &str,
    now: DateTime<Utc>,
    reuse_interval_secs: i64,
) -> Result<Rotation, AuthError> {
    let found = tx
        .query_row(
            "SELECT t.session_id, t.user_id, t.revoked, s.revoked_at IS NOT NULL, s.created_at
               FROM auth_refresh_tokens t JOIN auth_sessions s ON s.id = t.session_id
              WHERE t.token = ?1",
            [token],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, bool>(2)?,
                    r.get::<_, bool>(3)?,
                    r.get::<_, String>(4)?,
                ))
            },
        )
        .optional()?;
    let Some((session_id, user_id, revoked, session_revoked, session_created)) = found else {
        return Err(AuthError::RefreshTokenNotFound);
    };
    if session_revoked {
        return Err(AuthError::RefreshSessionGone);
    }
    let user = User::load(tx, &user_id)?.ok_or(AuthError::RefreshSessionGone)?;
    let signed_in_at = parse_ts(&session_created).map(|t| t.timestamp()).unwrap_or_else(|| now.timestamp());
    let ts = crate::schema::format_ts(now);
    if !revoked {
        tx.execute("UPDATE auth_refresh_tokens SET revoked = 1 WHERE token = ?1", [token])?;
        let refresh_token = insert_token(tx, &session_id, &user_id, Some(token), &ts)?;
        return Ok(Rotation::Issued(Box::new(Issued { user, session_id, refresh_token, signed_in_at })));
    }
    let live = tx
        .query_row(
            "SELECT token, parent, created_at FROM auth_refresh_tokens
              WHERE session_id = ?1 AND revoked = 0 ORDER BY created_at DESC, rowid DESC LIMIT 1",
            [&session_id],
            |r| Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?, r.get::<_, String>(2)?)),
        )
        .optional()?;
    if let Some((live_token, Some(parent), created)) = live {
        let age = parse_ts(&created).map(|t| now - t);
        let within = age.is_some_and(|a| a < chrono::Duration::seconds(reuse_interval_secs));
        if parent == token && within {
            return Ok(Rotation::Issued(Box::new(Issued {
                user,
                session_id,
                refresh_token: live_token,
                signed_in_at,
            })));
        }
    }
    tracing::warn!(session = %session_id, "a used refresh token was presented again; revoking its session");
    revoke(tx, Revocation::Session(&session_id), &ts)?;
    Ok(Rotation::Reused)
}

/// Whether `session_id` exists and has not been revoked.
pub fn is_live(conn: &Connection, session_id: &str) -> Result<bool, rusqlite::Error> {
    conn.query_row("SELECT 1 FROM auth_sessions WHERE id = ?1 AND revoked_at IS NULL", [session_id], |_| Ok(()))
        .optional()
        .map(|r| r.is_some())
}

/// Ends the sessions `scope` names for `user_id`, from the session `current` (if the access
/// token named one; without it every session of the user ends, as in GoTrue).
pub fn logout(
    tx: &Transaction<'_>,
    user_id: &str,
    current: Option<&str>,
    scope: LogoutScope,
    now: DateTime<Utc>,
) -> Result<(), AuthError> {
    let ts = crate::schema::format_ts(now);
    let which = match (current, scope) {
        (None, _) | (Some(_), LogoutScope::Global) => Revocation::AllOf(user_id),
        (Some(s), LogoutScope::Local) => Revocation::Session(s),
        (Some(s), LogoutScope::Others) => Revocation::AllBut(user_id, s),
    };
    revoke(tx, which, &ts)
}

/// Which sessions to revoke.
#[derive(Debug, Clone, Copy)]
pub enum Revocation<'a> {
    Session(&'a str),
    AllOf(&'a str),
    /// All sessions of the user except the given one.
    AllBut(&'a str, &'a str),
}

/// Revokes sessions and all their refresh tokens.
pub fn revoke(tx: &Transaction<'_>, which: Revocation<'_>, ts: &str) -> Result<(), AuthError> {
    let (cond, args): (&str, Vec<&str>) = match which {
        Revocation::Session(s) => ("id = ?1", vec![s]),
        Revocation::AllOf(u) => ("user_id = ?1", vec![u]),
        Revocation::AllBut(u, s) => ("user_id = ?1 AND id <> ?2", vec![u, s]),
    };
    tx.execute(
        &format!(
            "UPDATE auth_refresh_tokens SET revoked = 1
              WHERE revoked = 0 AND session_id IN (SELECT id FROM auth_sessions WHERE {cond})"
        ),
        rusqlite::params_from_iter(&args),
    )?;
    let ts_index = args.len() + 1;
    tx.execute(
        &format!("UPDATE auth_sessions SET revoked_at = ?{ts_index} WHERE revoked_at IS NULL AND {cond}"),
        rusqlite::params_from_iter(args.iter().copied().chain([ts])),
    )?;
    Ok(())
}

fn parse_ts(ts: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(ts).ok().map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::account::NewAccount;
    use crate::db::Db;

    fn setup() -> (tempfile::TempDir, std::sync::Arc<Db>, Issued) {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = Db::open(dir.path()).expect("open");
        let account = NewAccount::new("a@b.io", "secret1", Default::default(), 6).expect("valid").hash().expect("hash");
        let issued = db
            .write_blocking(|tx| -> Result<Issued, AuthError> {
                let now = Utc::now();
                let user = account.insert(tx, &crate::schema::format_ts(now))?;
                start(tx, user, now)
            })
            .expect("signup");
        (dir, db, issued)
    }

    fn rotate_at(db: &Db, token: &str, now: DateTime<Utc>, interval: i64) -> Result<Rotation, AuthError> {
        db.write_blocking(|tx| rotate(tx, token, now, interval))
    }

    fn issued(r: Result<Rotation, AuthError>) -> Issued {
        match r {
            Ok(Rotation::Issued(i)) => *i,
            other => panic!("expected a token, got {other:?}"),
        }
    }

    #[test]
    fn tokens_are_long_random_and_lowercase_alphanumeric() {
        let a = new_refresh_token();
        assert_eq!(a.len(), TOKEN_LEN);
        assert!(a.bytes().all(|c| TOKEN_ALPHABET.contains(&c)));
        assert_ne!(a, new_refresh_token());
    }

    #[test]
    fn rotation_issues_a_child_and_revokes_the_parent() {
        let (_d, db, first) = setup();
        let second = issued(rotate_at(&db, &first.refresh_token, Utc::now(), 10));
        assert_ne!(second.refresh_token, first.refresh_token);
        assert_eq!(second.session_id, first.session_id);
        let third = issued(rotate_at(&db, &second.refresh_token, Utc::now(), 10));
        assert_ne!(third.refresh_token, second.refresh_token);
    }

    #[test]
    fn parent_reused_within_the_interval_gets_the_live_token() {
        let (_d, db, first) = setup();
        let second = issued(rotate_at(&db, &first.refresh_token, Utc::now(), 10));
        let again = issued(rotate_at(&db, &first.refresh_token, Utc::now(), 10));
        assert_eq!(again.refresh_token, second.refresh_token, "the concurrent refresh gets the same live token");
    }

    #[test]
    fn parent_reused_after_the_interval_revokes_the_session() {
        let (_d, db, first) = setup();
        let second = issued(rotate_at(&db, &first.refresh_token, Utc::now(), 10));
        let later = Utc::now() + chrono::Duration::seconds(11);
        assert!(matches!(rotate_at(&db, &first.refresh_token, later, 10), Ok(Rotation::Reused)));
        assert!(matches!(rotate_at(&db, &second.refresh_token, later, 10), Err(AuthError::RefreshSessionGone)));
        assert!(!db.read_blocking(|c| is_live(c, &first.session_id)).expect("read"));
    }

    #[test]
    fn grandparent_reuse_is_theft_even_within_the_interval() {
        let (_d, db, first) = setup();
        let second = issued(rotate_at(&db, &first.refresh_token, Utc::now(), 10));
        let _third = issued(rotate_at(&db, &second.refresh_token, Utc::now(), 10));
        assert!(matches!(rotate_at(&db, &first.refresh_token, Utc::now(), 10), Ok(Rotation::Reused)));
    }

    #[test]
    fn unknown_token_is_not_found() {
        let (_d, db, _first) = setup();
        assert!(matches!(rotate_at(&db, "nosuchtoken0000", Utc::now(), 10), Err(AuthError::RefreshTokenNotFound)));
    }

    #[test]
    fn logout_scopes_end_the_right_sessions() {
        let (_d, db, a) = setup();
        let more = |n: usize| -> Vec<Issued> {
            (0..n).map(|_| db.write_blocking(|tx| start(tx, a.user.clone(), Utc::now())).expect("session")).collect()
        };
        let live = |s: &str| db.read_blocking(|c| is_live(c, s)).expect("read");
        let others = more(2);
        db.write_blocking(|tx| logout(tx, &a.user.id, Some(&a.session_id), LogoutScope::Others, Utc::now()))
            .expect("logout others");
        assert!(live(&a.session_id) && !live(&others[0].session_id) && !live(&others[1].session_id));
        let b = more(1).remove(0);
        db.write_blocking(|tx| logout(tx, &a.user.id, Some(&a.session_id), LogoutScope::Local, Utc::now()))
            .expect("logout local");
        assert!(!live(&a.session_id) && live(&b.session_id));
        db.write_blocking(|tx| logout(tx, &a.user.id, Some(&b.session_id), LogoutScope::Global, Utc::now()))
            .expect("logout global");
        assert!(!live(&b.session_id));
        assert!(matches!(rotate_at(&db, &b.refresh_token, Utc::now(), 10), Err(AuthError::RefreshSessionGone)));
    }

    #[test]
    fn logout_scope_parses_like_gotrue() {
        assert_eq!(LogoutScope::parse(None).expect("default"), LogoutScope::Global);
        assert_eq!(LogoutScope::parse(Some("others")).expect("others"), LogoutScope::Others);
        assert!(matches!(LogoutScope::parse(Some("all")), Err(AuthError::UnsupportedLogoutScope(_))));
    }
}
