//! What the engine hands to the shell: rows of the cache with their local state (is this
//! message sent yet?), in the shapes the UI renders. All serialisable; ids are UUIDs, times the
//! server's RFC 3339 text.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Where a change the user made stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "snake_case")]
pub enum SendState {
    /// Saved locally and queued; the server does not have it yet ("sending").
    Pending,
    /// The server has it.
    Sent,
    /// The server refused it for good; see the outbox entry for the reason ("not sent — retry").
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct Profile {
    pub id: Uuid,
    pub display_name: String,
    pub avatar_url: Option<String>,
    pub locale: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct Room {
    pub id: Uuid,
    pub name: String,
    /// `channel`, `direct` or `challenge`.
    pub kind: String,
    pub challenge_id: Option<Uuid>,
    pub created_by: Uuid,
    pub created_at: String,
    /// The user is a member (public channels are listed without membership).
    pub member: bool,
    /// The user's read marker.
    pub last_read_at: Option<String>,
    /// Messages of others after the read marker, not deleted (from the cache).
    pub unread: u32,
    /// Server time of the newest cached message.
    pub latest_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct Reaction {
    pub emoji: String,
    pub user_id: Uuid,
    /// Added locally, not yet confirmed by the server.
    pub pending: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct Message {
    pub id: Uuid,
    pub room_id: Uuid,
    pub user_id: Uuid,
    /// Empty for a deleted message.
    pub content: String,
    /// `text` or `file`.
    pub kind: String,
    pub reply_to: Option<Uuid>,
    pub edited_at: Option<String>,
    pub deleted_at: Option<String>,
    /// Server time; `None` until the server has the message.
    pub created_at: Option<String>,
    /// The state of the user's changes to this message (its sending, an edit, a delete).
    pub state: SendState,
    pub reactions: Vec<Reaction>,
}

/// A page of a room's history, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct MessagePage {
    pub messages: Vec<Message>,
    /// Nothing older exists on the server (as far as the cache knows).
    pub complete: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct Challenge {
    pub id: Uuid,
    pub title: String,
    pub description: String,
    /// `draft`, `open`, `judging` or `closed`.
    pub status: String,
    pub deadline: Option<String>,
    pub created_by: Uuid,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct Submission {
    pub id: Uuid,
    pub challenge_id: Uuid,
    pub user_id: Uuid,
    pub title: String,
    pub content: String,
    /// `submitted`, `accepted` or `rejected`.
    pub status: String,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
    pub state: SendState,
}

/// One row of the activity feed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct Activity {
    pub id: i64,
    pub user_id: Uuid,
    pub kind: String,
    pub ref_id: Option<Uuid>,
    pub created_at: String,
}

/// One bucket of an activity time series (for charts).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct SeriesPoint {
    /// Start of the bucket, Unix seconds.
    pub start: i64,
    /// Activity rows in the bucket.
    pub events: u32,
    /// Distinct users active in the bucket.
    pub users: u32,
}

/// `get_live_metrics()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct LiveMetrics {
    pub active_users: i64,
    pub total_challenges: i64,
    pub new_submissions: i64,
    pub online_users: i64,
}

/// One entry of the outbound queue, as the UI lists it (failed ones offer retry / discard).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct OutboxEntry {
    pub seq: i64,
    /// `send_message`, `edit_message`, …
    pub kind: String,
    pub stream: String,
    /// The id of the row the change concerns (a message, a submission, a room).
    pub target: String,
    pub failed: bool,
    /// Why the server refused it, for a failed entry.
    pub error: Option<EntryError>,
    pub attempts: i64,
    pub created_at: String,
}

/// A permanent refusal, as stored with the entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct EntryError {
    /// HTTP status, when the server answered.
    pub status: Option<u16>,
    /// PostgREST / SQLSTATE code (`42501`, `23503`, …), when the server sent one.
    pub code: Option<String>,
    pub message: String,
}

/// How many changes wait for the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct QueueCounts {
    pub queued: u64,
    pub failed: u64,
}
