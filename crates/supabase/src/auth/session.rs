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
    /// When the access token expires, Unix seconds **by this machine's clock**: the time the
    /// session was received plus `expires_in`. GoTrue's own `expires_at` is by the server's
    /// clock; scheduling refreshes on it would refresh too late on a machine whose clock is
    /// behind and in a loop on one whose clock is ahead.
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

/// A session as GoTrue sends it (its `expires_at` is not needed, see [`Session::expires_at`]).
#[derive(Deserialize)]
struct Wire {
    access_token: String,
    #[serde(default = "bearer")]
    token_type: String,
    expires_in: i64,
    refresh_token: String,
    user: User,
}

impl Session {
    /// Reads a session from GoTrue's answer received at `received_at`, as auth-js accepts one:
    /// `access_token`, `refresh_token`, `expires_in` and `user` are required.
    pub fn from_response(value: Value, received_at: SystemTime) -> Result<Session, serde_json::Error> {
        let w: Wire = serde_json::from_value(value)?;
        Ok(Session {
            expires_at: unix_secs(received_at) as i64 + w.expires_in,
            access_token: w.access_token,
            token_type: w.token_type,
            expires_in: w.expires_in,
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
    fn expiry_is_counted_on_the_local_clock_from_receipt() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        assert_eq!(Session::from_response(wire(None), now).expect("session").expires_at, 4_600);
        let skewed = Session::from_response(wire(Some(99_999)), now).expect("session");
        assert_eq!(skewed.expires_at, 4_600, "the server's clock does not schedule our refresh");
        assert_eq!(skewed.user.extra.get("phone"), Some(&json!("")), "unknown user fields are kept");
        let stored = serde_json::to_string(&skewed).expect("serialise");
        assert_eq!(serde_json::from_str::<Session>(&stored).expect("stored form reads back"), skewed);
    }

    #[test]
    fn a_session_without_a_refresh_token_is_refused() {
        let mut v = wire(None);
        v.as_object_mut().expect("object").remove("refresh_token");
        assert!(Session::from_response(v, SystemTime::now()).is_err());
    }

    #[test]
    fn refresh_is_due_a_margin_before_expiry_or_half_way_for_short_tokens() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let s = Session::from_response(wire(None), now).expect("session"); // expires at 4_600
        let at = |secs| SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
        assert_eq!(s.refresh_due_at(Duration::from_secs(90)), at(4_510));
        assert!(!s.is_refresh_due(Duration::from_secs(90), at(4_509)));
        assert!(s.is_refresh_due(Duration::from_secs(90), at(4_510)));
        let short = Session { expires_in: 4, expires_at: 1_004, ..s };
        assert_eq!(short.refresh_due_at(Duration::from_secs(90)), at(1_002), "half of a 4 s life");
    }

    #[test]
    fn debug_hides_the_tokens() {
        let s = Session::from_response(wire(None), SystemTime::now()).expect("session");
        let text = format!("{s:?}");
        assert!(!text.contains("a.b.c") && !text.contains("\"r\""), "{text}");
    }
}
