//! The session and user GoTrue hands out (`supabase-wire.md` §7.1), and when a session is due
//! for refresh.

use std::fmt;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A GoTrue user (the fields Ruwād reads; the rest is kept in `extra`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub id: uuid::Uuid,
    #[serde(default)]
    pub aud: String,
    #[serde(default)]
    pub role: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub app_metadata: Map<String, Value>,
    #[serde(default)]
    pub user_metadata: Map<String, Value>,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A signed-in session: the access token (a JWT, sent as `Authorization: Bearer`), when it
/// expires, the one-use refresh token that gets the next session, and the user.
///
/// `Debug` never prints the tokens.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    pub access_token: String,
    #[serde(default = "bearer")]
    pub token_type: String,
    /// Lifetime of the access token in seconds, as issued.
    pub expires_in: i64,
    /// When the access token expires, Unix seconds (`now + expires_in` when the server did not
    /// say).
    pub expires_at: i64,
    pub refresh_token: String,
    pub user: User,
}

fn bearer() -> String {
    "bearer".to_string()
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("user", &self.user.id)
            .field("expires_at", &self.expires_at)
            .field("access_token", &"<redacted>")
            .field("refresh_token", &"<redacted>")
            .finish()
    }
}

/// A session as GoTrue sends it: `expires_at` may be missing.
#[derive(Deserialize)]
struct Wire {
    access_token: String,
    #[serde(default = "bearer")]
    token_type: String,
    expires_in: i64,
    expires_at: Option<i64>,
    refresh_token: String,
    user: User,
}

impl Session {
    /// Reads a session from GoTrue's JSON (or from a stored session), as auth-js accepts one:
    /// `access_token`, `refresh_token`, `expires_in` and `user` are required; `expires_at` is
    /// computed when missing.
    pub fn from_json(value: Value, now: SystemTime) -> Result<Session, serde_json::Error> {
        let w: Wire = serde_json::from_value(value)?;
        let expires_at = w.expires_at.unwrap_or_else(|| unix_secs(now) as i64 + w.expires_in);
        Ok(Session {
            access_token: w.access_token,
            token_type: w.token_type,
            expires_in: w.expires_in,
            expires_at,
            refresh_token: w.refresh_token,
            user: w.user,
        })
    }

    /// When this session should be refreshed: `margin` before expiry, but never earlier than
    /// half-way through the token's life, so a lifetime shorter than the margin does not mean
    /// refreshing in a loop.
    pub fn refresh_due_at(&self, margin: Duration) -> SystemTime {
        let life = Duration::from_secs(u64::try_from(self.expires_in).unwrap_or(0));
        let lead = margin.min(life / 2);
        let expires = SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(self.expires_at).unwrap_or(0));
        expires.checked_sub(lead).unwrap_or(SystemTime::UNIX_EPOCH)
    }

    /// Whether this session is due for refresh at `now` (see [`Session::refresh_due_at`]).
    pub fn is_refresh_due(&self, margin: Duration, now: SystemTime) -> bool {
        now >= self.refresh_due_at(margin)
    }

    /// Whether the access token has expired at `now`.
    pub fn is_expired(&self, now: SystemTime) -> bool {
        unix_secs(now) >= self.expires_at as f64
    }
}

pub(crate) fn unix_secs(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn wire(expires_at: Option<i64>) -> Value {
        json!({
            "access_token": "a.b.c", "token_type": "bearer", "expires_in": 3600, "expires_at": expires_at,
            "refresh_token": "r", "user": {"id": "0190f0f0-0000-7000-8000-000000000001", "aud": "authenticated",
            "role": "authenticated", "email": "a@b.io", "phone": "", "app_metadata": {}, "user_metadata": {}}
        })
    }

    #[test]
    fn expires_at_is_computed_when_missing_and_kept_when_sent() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        assert_eq!(Session::from_json(wire(None), now).expect("session").expires_at, 4_600);
        assert_eq!(Session::from_json(wire(Some(5_000)), now).expect("session").expires_at, 5_000);
        let s = Session::from_json(wire(None), now).expect("session");
        assert_eq!(s.user.extra.get("phone"), Some(&json!("")), "unknown user fields are kept");
        let round = serde_json::to_value(&s).expect("serialise");
        assert_eq!(Session::from_json(round, now).expect("stored form reads back"), s);
    }

    #[test]
    fn a_session_without_a_refresh_token_is_refused() {
        let mut v = wire(None);
        v.as_object_mut().expect("object").remove("refresh_token");
        assert!(Session::from_json(v, SystemTime::now()).is_err());
    }

    #[test]
    fn refresh_is_due_a_margin_before_expiry_or_half_way_for_short_tokens() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let s = Session::from_json(wire(None), now).expect("session"); // expires at 4_600
        let at = |secs| SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
        assert_eq!(s.refresh_due_at(Duration::from_secs(90)), at(4_510));
        assert!(!s.is_refresh_due(Duration::from_secs(90), at(4_509)));
        assert!(s.is_refresh_due(Duration::from_secs(90), at(4_510)));
        let short = Session { expires_in: 4, expires_at: 1_004, ..s };
        assert_eq!(short.refresh_due_at(Duration::from_secs(90)), at(1_002), "half of a 4 s life");
    }

    #[test]
    fn debug_hides_the_tokens() {
        let s = Session::from_json(wire(None), SystemTime::now()).expect("session");
        let text = format!("{s:?}");
        assert!(!text.contains("a.b.c") && !text.contains("\"r\""), "{text}");
    }
}
