//! Reading and writing cached rows. Plain functions over a connection (or a transaction, which
//! derefs to one), run inside store jobs.
//!
//! Server rows arrive as the `*Row` types (the server's JSON shape, the same from REST and from
//! Realtime's `record`) and are **merged** by key, never blindly overwritten:
//! - a row the user has a queued change for (an outbox entry with this `target`) keeps its
//!   local content until that change is confirmed — the local echo wins over an older server
//!   copy, and the server's copy after the change carries the same values anyway;
//! - an older copy never replaces a newer one: message content follows the latest `edited_at`,
//!   a deletion is never undone, challenges and submissions follow `updated_at`. A REST page
//!   that was read before a Realtime event but arrives after it cannot roll the row back.

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::StoreError;
use crate::model::{
    Activity, Challenge, Message, MessagePage, Profile, Reaction, Room, SendState, SeriesPoint, Submission,
};

/// Outbox kinds whose pending state is the message's own state (reactions have their own).
const MESSAGE_KINDS: &str = "('send_message', 'edit_message', 'delete_message')";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileRow {
    pub id: Uuid,
    pub display_name: String,
    #[serde(default)]
    pub avatar_url: Option<String>,
    pub locale: String,
    pub created_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomRow {
    pub id: Uuid,
    pub name: String,
    pub kind: String,
    #[serde(default)]
    pub challenge_id: Option<Uuid>,
    pub created_by: Uuid,
    pub created_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberRow {
    pub room_id: Uuid,
    pub user_id: Uuid,
    pub role: String,
    pub joined_at: String,
    #[serde(default)]
    pub last_read_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageRow {
    pub id: Uuid,
    pub room_id: Uuid,
    pub user_id: Uuid,
    pub content: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub reply_to: Option<Uuid>,
    #[serde(default)]
    pub edited_at: Option<String>,
    #[serde(default)]
    pub deleted_at: Option<String>,
    pub created_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReactionRow {
    pub message_id: Uuid,
    pub user_id: Uuid,
    pub emoji: String,
    pub created_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChallengeRow {
    pub id: Uuid,
    pub title: String,
    pub description: String,
    pub status: String,
    #[serde(default)]
    pub deadline: Option<String>,
    pub created_by: Uuid,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmissionRow {
    pub id: Uuid,
    pub challenge_id: Uuid,
    pub user_id: Uuid,
    pub title: String,
    pub content: String,
    pub status: String,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivityRow {
    pub id: i64,
    pub user_id: Uuid,
    pub kind: String,
    #[serde(default)]
    pub ref_id: Option<Uuid>,
    pub created_at: String,
}

fn ts(t: &str) -> String {
    crate::time::canonical(t)
}

fn ts_opt(t: &Option<String>) -> Option<String> {
    t.as_deref().map(ts)
}

fn uuid_col(row: &Row<'_>, idx: usize) -> rusqlite::Result<Uuid> {
    let s: String = row.get(idx)?;
    Uuid::parse_str(&s)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, Box::new(e)))
}

fn uuid_opt(row: &Row<'_>, idx: usize) -> rusqlite::Result<Option<Uuid>> {
    let s: Option<String> = row.get(idx)?;
    s.map(|s| Uuid::parse_str(&s))
        .transpose()
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, Box::new(e)))
}

/// True when the user has a queued or failed change for the row `target`.
pub fn has_local_change(conn: &Connection, target: &str) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM outbox WHERE target = ?1)")?
        .query_row([target], |r| r.get(0))?)
}

// ---- writes of server rows ---------------------------------------------------------------

pub fn put_profile(conn: &Connection, p: &ProfileRow) -> Result<bool, StoreError> {
    let n = conn
        .prepare_cached(
            "INSERT INTO profiles (id, display_name, avatar_url, locale, created_at) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (id) DO UPDATE SET display_name = excluded.display_name, avatar_url = excluded.avatar_url,
                 locale = excluded.locale
             WHERE (display_name, avatar_url, locale) IS NOT (excluded.display_name, excluded.avatar_url, excluded.locale)",
        )?
        .execute(params![p.id.to_string(), p.display_name, p.avatar_url, p.locale, ts(&p.created_at)])?;
    Ok(n > 0)
}

pub fn put_room(conn: &Connection, r: &RoomRow) -> Result<bool, StoreError> {
    let n = conn
        .prepare_cached(
            "INSERT INTO rooms (id, name, kind, challenge_id, created_by, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, kind = excluded.kind, challenge_id = excluded.challenge_id
             WHERE (name, kind, challenge_id) IS NOT (excluded.name, excluded.kind, excluded.challenge_id)",
        )?
        .execute(params![
            r.id.to_string(),
            r.name,
            r.kind,
            r.challenge_id.map(|c| c.to_string()),
            r.created_by.to_string(),
            ts(&r.created_at)
        ])?;
    Ok(n > 0)
}

/// Stores a membership. The user's own read marker only moves forward (a local mark-read may
/// be newer than the server's copy).
pub fn put_member(conn: &Connection, m: &MemberRow) -> Result<bool, StoreError> {
    let n = conn
        .prepare_cached(
            "INSERT INTO room_members (room_id, user_id, role, joined_at, last_read_at) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (room_id, user_id) DO UPDATE SET role = excluded.role,
                 last_read_at = CASE WHEN excluded.last_read_at > coalesce(last_read_at, '') THEN excluded.last_read_at
                                     ELSE last_read_at END
             WHERE role IS NOT excluded.role OR excluded.last_read_at > coalesce(last_read_at, '')",
        )?
        .execute(params![
            m.room_id.to_string(),
            m.user_id.to_string(),
            m.role,
            ts(&m.joined_at),
            ts_opt(&m.last_read_at)
        ])?;
    Ok(n > 0)
}

/// Removes the memberships of `user` other than those in `keep` (the server no longer lists
/// them: the user left or was removed). Returns the rooms affected.
pub fn prune_memberships(conn: &Connection, user: Uuid, keep: &[Uuid]) -> Result<Vec<Uuid>, StoreError> {
    let keep: std::collections::HashSet<String> = keep.iter().map(Uuid::to_string).collect();
    let mut stmt = conn.prepare_cached("SELECT room_id FROM room_members WHERE user_id = ?1")?;
    let rooms: Vec<String> = stmt.query_map([user.to_string()], |r| r.get(0))?.collect::<Result<_, _>>()?;
    let mut gone = Vec::new();
    for room in rooms.into_iter().filter(|r| !keep.contains(r)) {
        conn.execute("DELETE FROM room_members WHERE room_id = ?1 AND user_id = ?2", params![room, user.to_string()])?;
        gone.push(Uuid::parse_str(&room).map_err(|e| StoreError::Corrupt(format!("room id {room}: {e}")))?);
    }
    Ok(gone)
}

/// Merges a message from the server (see the module doc). Returns whether the cache changed.
pub fn merge_message(conn: &Connection, m: &MessageRow) -> Result<bool, StoreError> {
    let id = m.id.to_string();
    let local = has_local_change(conn, &id)?;
    let n = conn
        .prepare_cached(
            "INSERT INTO messages (id, room_id, user_id, content, type, reply_to, edited_at, deleted_at, created_at, local_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT (id) DO UPDATE SET
                 created_at = excluded.created_at,
                 content = CASE WHEN ?11 OR deleted_at IS NOT NULL THEN content
                                WHEN excluded.deleted_at IS NOT NULL THEN excluded.content
                                WHEN coalesce(excluded.edited_at, '') >= coalesce(edited_at, '') THEN excluded.content
                                ELSE content END,
                 edited_at = CASE WHEN ?11 THEN edited_at
                                  WHEN coalesce(excluded.edited_at, '') >= coalesce(edited_at, '') THEN excluded.edited_at
                                  ELSE edited_at END,
                 deleted_at = CASE WHEN ?11 THEN deleted_at ELSE coalesce(deleted_at, excluded.deleted_at) END
             WHERE created_at IS NOT excluded.created_at
                OR (NOT ?11 AND (content IS NOT excluded.content OR edited_at IS NOT excluded.edited_at
                                 OR deleted_at IS NOT excluded.deleted_at))",
        )?
        .execute(params![
            id,
            m.room_id.to_string(),
            m.user_id.to_string(),
            m.content,
            m.kind,
            m.reply_to.map(|r| r.to_string()),
            ts_opt(&m.edited_at),
            ts_opt(&m.deleted_at),
            ts(&m.created_at),
            crate::time::now(),
            local,
        ])?;
    Ok(n > 0)
}

/// Stores a reaction the server has. Returns whether the cache changed (a reaction on a
/// message the cache does not hold is skipped).
pub fn put_reaction(conn: &Connection, r: &ReactionRow) -> Result<bool, StoreError> {
    let n = conn
        .prepare_cached(
            "INSERT INTO reactions (message_id, user_id, emoji, created_at)
             SELECT ?1, ?2, ?3, ?4 WHERE EXISTS (SELECT 1 FROM messages WHERE id = ?1)
             ON CONFLICT (message_id, user_id, emoji) DO UPDATE SET created_at = excluded.created_at
             WHERE created_at IS NOT excluded.created_at",
        )?
        .execute(params![r.message_id.to_string(), r.user_id.to_string(), r.emoji, ts(&r.created_at)])?;
    Ok(n > 0)
}

/// Removes a reaction the server no longer has, unless the user has a queued change for it.
pub fn remove_reaction(conn: &Connection, message_id: Uuid, user_id: Uuid, emoji: &str) -> Result<bool, StoreError> {
    let n = conn
        .prepare_cached(
            "DELETE FROM reactions WHERE message_id = ?1 AND user_id = ?2 AND emoji = ?3 AND created_at IS NOT NULL",
        )?
        .execute(params![message_id.to_string(), user_id.to_string(), emoji])?;
    Ok(n > 0)
}

/// Replaces the confirmed reactions of `message_ids` with `rows` (the server's full set for
/// them). Local echoes (not yet confirmed, `created_at` NULL) are kept.
pub fn replace_reactions(
    conn: &Connection,
    message_ids: &[Uuid],
    rows: &[ReactionRow],
) -> Result<Vec<Uuid>, StoreError> {
    let mut changed = std::collections::BTreeSet::new();
    let wanted: std::collections::HashSet<(Uuid, Uuid, &str)> =
        rows.iter().map(|r| (r.message_id, r.user_id, r.emoji.as_str())).collect();
    for id in message_ids {
        let mut stmt = conn
            .prepare_cached("SELECT user_id, emoji FROM reactions WHERE message_id = ?1 AND created_at IS NOT NULL")?;
        let have: Vec<(String, String)> =
            stmt.query_map([id.to_string()], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<_, _>>()?;
        for (user, emoji) in have {
            let user_id =
                Uuid::parse_str(&user).map_err(|e| StoreError::Corrupt(format!("reaction user {user}: {e}")))?;
            if !wanted.contains(&(*id, user_id, emoji.as_str())) && remove_reaction(conn, *id, user_id, &emoji)? {
                changed.insert(*id);
            }
        }
    }
    for r in rows {
        if put_reaction(conn, r)? {
            changed.insert(r.message_id);
        }
    }
    Ok(changed.into_iter().collect())
}

/// What merging a row did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Merged {
    Unchanged,
    /// The cache did not hold the row.
    Inserted,
    /// A newer copy replaced the cached one, whose status was `old_status`.
    Updated {
        old_status: String,
    },
}

impl Merged {
    pub fn changed(&self) -> bool {
        *self != Merged::Unchanged
    }

    /// What an upsert that wrote `rows` rows did to a row whose status was `old` (`None`: absent).
    fn of_write(rows: usize, old: Option<String>) -> Merged {
        match (rows, old) {
            (0, _) => Merged::Unchanged,
            (_, None) => Merged::Inserted,
            (_, Some(old_status)) => Merged::Updated { old_status },
        }
    }
}

fn old_status(conn: &Connection, table: &str, id: Uuid) -> Result<Option<String>, StoreError> {
    let sql = match table {
        "challenges" => "SELECT status FROM challenges WHERE id = ?1",
        _ => "SELECT status FROM submissions WHERE id = ?1",
    };
    Ok(conn.prepare_cached(sql)?.query_row([id.to_string()], |r| r.get(0)).optional()?)
}

pub fn put_challenge(conn: &Connection, c: &ChallengeRow) -> Result<Merged, StoreError> {
    let old = old_status(conn, "challenges", c.id)?;
    let n = conn
        .prepare_cached(
            "INSERT INTO challenges (id, title, description, status, deadline, created_by, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (id) DO UPDATE SET title = excluded.title, description = excluded.description,
                 status = excluded.status, deadline = excluded.deadline, updated_at = excluded.updated_at
             WHERE excluded.updated_at > updated_at",
        )?
        .execute(params![
            c.id.to_string(),
            c.title,
            c.description,
            c.status,
            ts_opt(&c.deadline),
            c.created_by.to_string(),
            ts(&c.created_at),
            ts(&c.updated_at)
        ])?;
    Ok(Merged::of_write(n, old))
}

pub fn merge_submission(conn: &Connection, s: &SubmissionRow) -> Result<Merged, StoreError> {
    let old = old_status(conn, "submissions", s.id)?;
    let n = conn
        .prepare_cached(
            "INSERT INTO submissions (id, challenge_id, user_id, title, content, status, created_at, updated_at, local_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT (id) DO UPDATE SET title = excluded.title, content = excluded.content, status = excluded.status,
                 created_at = excluded.created_at, updated_at = excluded.updated_at
             WHERE updated_at IS NULL OR excluded.updated_at > updated_at",
        )?
        .execute(params![
            s.id.to_string(),
            s.challenge_id.to_string(),
            s.user_id.to_string(),
            s.title,
            s.content,
            s.status,
            ts(&s.created_at),
            ts(&s.updated_at),
            crate::time::now()
        ])?;
    Ok(Merged::of_write(n, old))
}

pub fn put_activity(conn: &Connection, a: &ActivityRow) -> Result<bool, StoreError> {
    let n = conn
        .prepare_cached(
            "INSERT INTO activities (id, user_id, kind, ref_id, created_at) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (id) DO NOTHING",
        )?
        .execute(params![a.id, a.user_id.to_string(), a.kind, a.ref_id.map(|r| r.to_string()), ts(&a.created_at)])?;
    Ok(n > 0)
}

// ---- cursors and small state -------------------------------------------------------------

/// Where catch-up of `stream` resumes (the newest server time seen), if it ever ran.
pub fn cursor(conn: &Connection, stream: &str) -> Result<Option<String>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT position FROM sync_cursors WHERE stream = ?1")?
        .query_row([stream], |r| r.get(0))
        .optional()?)
}

/// Moves the cursor of `stream` forward to `position` (never back).
pub fn advance_cursor(conn: &Connection, stream: &str, position: &str) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO sync_cursors (stream, position, updated_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (stream) DO UPDATE SET position = excluded.position, updated_at = excluded.updated_at
         WHERE excluded.position > position",
    )?
    .execute(params![stream, ts(position), crate::time::now()])?;
    Ok(())
}

pub fn kv_get(conn: &Connection, key: &str) -> Result<Option<String>, StoreError> {
    Ok(conn.prepare_cached("SELECT value FROM kv WHERE key = ?1")?.query_row([key], |r| r.get(0)).optional()?)
}

pub fn kv_set(conn: &Connection, key: &str, value: &str) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO kv (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )?
    .execute(params![key, value])?;
    Ok(())
}

pub fn set_history_complete(conn: &Connection, room: Uuid) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO room_history (room_id, complete) VALUES (?1, 1) ON CONFLICT (room_id) DO UPDATE SET complete = 1",
    )?
    .execute([room.to_string()])?;
    Ok(())
}

pub fn history_complete(conn: &Connection, room: Uuid) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("SELECT complete FROM room_history WHERE room_id = ?1")?
        .query_row([room.to_string()], |r| r.get::<_, bool>(0))
        .optional()?
        .unwrap_or(false))
}

// ---- reads -------------------------------------------------------------------------------

/// The rooms the user can see (public channels and rooms they belong to), most recently
/// active first, with unread counts from the read marker.
pub fn rooms(conn: &Connection, me: Uuid) -> Result<Vec<Room>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT r.id, r.name, r.kind, r.challenge_id, r.created_by, r.created_at,
                me.user_id IS NOT NULL, me.last_read_at,
                (SELECT count(*) FROM messages m WHERE m.room_id = r.id AND m.created_at > coalesce(me.last_read_at, '')
                     AND m.user_id <> ?1 AND m.deleted_at IS NULL),
                (SELECT max(m.created_at) FROM messages m WHERE m.room_id = r.id)
         FROM rooms r LEFT JOIN room_members me ON me.room_id = r.id AND me.user_id = ?1
         WHERE r.kind = 'channel' OR me.user_id IS NOT NULL
         ORDER BY coalesce((SELECT max(m.created_at) FROM messages m WHERE m.room_id = r.id), r.created_at) DESC, r.id",
    )?;
    let rows = stmt.query_map([me.to_string()], |r| {
        Ok(Room {
            id: uuid_col(r, 0)?,
            name: r.get(1)?,
            kind: r.get(2)?,
            challenge_id: uuid_opt(r, 3)?,
            created_by: uuid_col(r, 4)?,
            created_at: r.get(5)?,
            member: r.get(6)?,
            last_read_at: r.get(7)?,
            unread: r.get(8)?,
            latest_at: r.get(9)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn profile(conn: &Connection, id: Uuid) -> Result<Option<Profile>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT id, display_name, avatar_url, locale FROM profiles WHERE id = ?1")?
        .query_row([id.to_string()], |r| {
            Ok(Profile { id: uuid_col(r, 0)?, display_name: r.get(1)?, avatar_url: r.get(2)?, locale: r.get(3)? })
        })
        .optional()?)
}

const MESSAGE_COLUMNS: &str =
    "m.id, m.room_id, m.user_id, m.content, m.type, m.reply_to, m.edited_at, m.deleted_at, m.created_at";

fn message_state_sql() -> String {
    format!(
        "(SELECT max(CASE o.state WHEN 'failed' THEN 2 ELSE 1 END) FROM outbox o
          WHERE o.target = m.id AND o.kind IN {MESSAGE_KINDS})"
    )
}

fn message_from_row(r: &Row<'_>) -> rusqlite::Result<Message> {
    let state: Option<i64> = r.get(9)?;
    Ok(Message {
        id: uuid_col(r, 0)?,
        room_id: uuid_col(r, 1)?,
        user_id: uuid_col(r, 2)?,
        content: r.get(3)?,
        kind: r.get(4)?,
        reply_to: uuid_opt(r, 5)?,
        edited_at: r.get(6)?,
        deleted_at: r.get(7)?,
        created_at: r.get(8)?,
        state: match state {
            Some(2) => SendState::Failed,
            Some(_) => SendState::Pending,
            None => SendState::Sent,
        },
        reactions: Vec::new(),
    })
}

fn attach_reactions(conn: &Connection, messages: &mut [Message]) -> Result<(), StoreError> {
    let mut stmt = conn
        .prepare_cached("SELECT emoji, user_id, created_at IS NULL FROM reactions WHERE message_id = ?1 ORDER BY created_at IS NULL, created_at, emoji")?;
    for m in messages.iter_mut() {
        m.reactions = stmt
            .query_map([m.id.to_string()], |r| {
                Ok(Reaction { emoji: r.get(0)?, user_id: uuid_col(r, 1)?, pending: r.get(2)? })
            })?
            .collect::<Result<_, _>>()?;
    }
    Ok(())
}

pub fn message(conn: &Connection, id: Uuid) -> Result<Option<Message>, StoreError> {
    let sql = format!("SELECT {MESSAGE_COLUMNS}, {} FROM messages m WHERE m.id = ?1", message_state_sql());
    let m = conn.prepare_cached(&sql)?.query_row([id.to_string()], message_from_row).optional()?;
    Ok(match m {
        Some(m) => {
            let mut one = [m];
            attach_reactions(conn, &mut one)?;
            let [m] = one;
            Some(m)
        }
        None => None,
    })
}

/// Where a page of history ends: a message's server time and id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct Anchor {
    pub created_at: String,
    pub id: Uuid,
}

/// Up to `limit` messages the server has, older than `before` (the newest when `None`),
/// oldest first; with `before == None` the messages not yet on the server follow them.
pub fn messages_page(
    conn: &Connection,
    room: Uuid,
    before: Option<&Anchor>,
    limit: u32,
) -> Result<Vec<Message>, StoreError> {
    let state = message_state_sql();
    let mut out: Vec<Message> = match before {
        None => {
            let sql = format!(
                "SELECT {MESSAGE_COLUMNS}, {state} FROM messages m
                 WHERE m.room_id = ?1 AND m.created_at IS NOT NULL ORDER BY m.created_at DESC, m.id DESC LIMIT ?2"
            );
            conn.prepare_cached(&sql)?
                .query_map(params![room.to_string(), limit], message_from_row)?
                .collect::<Result<_, _>>()?
        }
        Some(a) => {
            let sql = format!(
                "SELECT {MESSAGE_COLUMNS}, {state} FROM messages m
                 WHERE m.room_id = ?1 AND m.created_at IS NOT NULL AND (m.created_at, m.id) < (?2, ?3)
                 ORDER BY m.created_at DESC, m.id DESC LIMIT ?4"
            );
            conn.prepare_cached(&sql)?
                .query_map(params![room.to_string(), ts(&a.created_at), a.id.to_string(), limit], message_from_row)?
                .collect::<Result<_, _>>()?
        }
    };
    out.reverse();
    if before.is_none() {
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS}, {state} FROM messages m WHERE m.room_id = ?1 AND m.created_at IS NULL ORDER BY m.id"
        );
        let unsent: Vec<Message> =
            conn.prepare_cached(&sql)?.query_map([room.to_string()], message_from_row)?.collect::<Result<_, _>>()?;
        out.extend(unsent);
    }
    attach_reactions(conn, &mut out)?;
    Ok(out)
}

/// A page with its completeness flag.
pub fn history(conn: &Connection, room: Uuid, before: Option<&Anchor>, limit: u32) -> Result<MessagePage, StoreError> {
    let messages = messages_page(conn, room, before, limit)?;
    let sent = messages.iter().filter(|m| m.created_at.is_some()).count();
    let complete = (sent as u32) < limit && history_complete(conn, room)?;
    Ok(MessagePage { messages, complete })
}

/// The ids of the newest `limit` server messages of `room` (for refreshing their reactions).
pub fn recent_message_ids(conn: &Connection, room: Uuid, limit: u32) -> Result<Vec<Uuid>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id FROM messages WHERE room_id = ?1 AND created_at IS NOT NULL ORDER BY created_at DESC, id DESC LIMIT ?2",
    )?;
    let ids: Vec<String> = stmt.query_map(params![room.to_string(), limit], |r| r.get(0))?.collect::<Result<_, _>>()?;
    ids.iter().map(|s| Uuid::parse_str(s).map_err(|e| StoreError::Corrupt(format!("message id {s}: {e}")))).collect()
}

/// The oldest server message of `room` in the cache.
pub fn oldest_anchor(conn: &Connection, room: Uuid) -> Result<Option<Anchor>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT created_at, id FROM messages WHERE room_id = ?1 AND created_at IS NOT NULL ORDER BY created_at, id LIMIT 1",
        )?
        .query_row([room.to_string()], |r| Ok(Anchor { created_at: r.get(0)?, id: uuid_col(r, 1)? }))
        .optional()?)
}

pub fn challenges(conn: &Connection) -> Result<Vec<Challenge>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, title, description, status, deadline, created_by, created_at, updated_at FROM challenges
         ORDER BY updated_at DESC, id",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(Challenge {
            id: uuid_col(r, 0)?,
            title: r.get(1)?,
            description: r.get(2)?,
            status: r.get(3)?,
            deadline: r.get(4)?,
            created_by: uuid_col(r, 5)?,
            created_at: r.get(6)?,
            updated_at: r.get(7)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn submissions(conn: &Connection, challenge: Uuid) -> Result<Vec<Submission>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT s.id, s.challenge_id, s.user_id, s.title, s.content, s.status, s.created_at, s.updated_at,
                (SELECT max(CASE o.state WHEN 'failed' THEN 2 ELSE 1 END) FROM outbox o WHERE o.target = s.id)
         FROM submissions s WHERE s.challenge_id = ?1 ORDER BY s.created_at IS NULL, s.created_at, s.id",
    )?;
    let rows = stmt.query_map([challenge.to_string()], |r| {
        let state: Option<i64> = r.get(8)?;
        Ok(Submission {
            id: uuid_col(r, 0)?,
            challenge_id: uuid_col(r, 1)?,
            user_id: uuid_col(r, 2)?,
            title: r.get(3)?,
            content: r.get(4)?,
            status: r.get(5)?,
            created_at: r.get(6)?,
            updated_at: r.get(7)?,
            state: match state {
                Some(2) => SendState::Failed,
                Some(_) => SendState::Pending,
                None => SendState::Sent,
            },
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Rooms the user belongs to (for catch-up).
pub fn my_rooms(conn: &Connection, me: Uuid) -> Result<Vec<Uuid>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT room_id FROM room_members WHERE user_id = ?1 ORDER BY room_id")?;
    let ids: Vec<String> = stmt.query_map([me.to_string()], |r| r.get(0))?.collect::<Result<_, _>>()?;
    ids.iter().map(|s| Uuid::parse_str(s).map_err(|e| StoreError::Corrupt(format!("room id {s}: {e}")))).collect()
}

/// The newest `limit` activity rows.
pub fn recent_activity(conn: &Connection, limit: u32) -> Result<Vec<Activity>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, user_id, kind, ref_id, created_at FROM activities ORDER BY created_at DESC, id DESC LIMIT ?1",
    )?;
    let rows = stmt.query_map([limit], |r| {
        Ok(Activity {
            id: r.get(0)?,
            user_id: uuid_col(r, 1)?,
            kind: r.get(2)?,
            ref_id: uuid_opt(r, 3)?,
            created_at: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Activity per `bucket_secs` bucket from `since_unix` on (empty buckets omitted), oldest first.
pub fn activity_series(conn: &Connection, since_unix: i64, bucket_secs: i64) -> Result<Vec<SeriesPoint>, StoreError> {
    if bucket_secs <= 0 {
        return Err(StoreError::Refused("a bucket must last at least a second".into()));
    }
    let mut stmt = conn.prepare_cached(
        "SELECT (unixepoch(created_at) / ?2) * ?2 AS start, count(*), count(DISTINCT user_id)
         FROM activities WHERE unixepoch(created_at) >= ?1 GROUP BY start ORDER BY start",
    )?;
    let rows = stmt.query_map(params![since_unix, bucket_secs], |r| {
        Ok(SeriesPoint { start: r.get(0)?, events: r.get(1)?, users: r.get(2)? })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
