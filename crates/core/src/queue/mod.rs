//! The persistent outbound queue ("outbox"): persist → local echo → single sender → delete
//! only after the server confirmed.
//!
//! ## Enqueue
//! A user action ([`Action`]) is applied by [`enqueue`] inside one SQLite write transaction:
//! the local echo (the message row with no server time yet, the edited content, the reaction
//! …) and the outbox entry that will tell the server commit together, before any network
//! call. A crash at any point leaves either both or neither. Rows the client creates carry a
//! UUID v7 made here, so sending an entry twice inserts once (`ignore-duplicates`).
//!
//! ## Order
//! Entries belong to a **stream** — `room:<id>` (messages, edits, deletes, reactions),
//! `read:<room>` (read markers, so a wedged message never holds a read marker back),
//! `challenge:<id>` (submissions), `activity`. Within a stream entries go strictly in `seq`
//! order, one batch in flight at a time; streams are independent.
//!
//! ## Folding changes to what is not sent yet
//! An entry the sender has not claimed ([`crate::store::Db::inflight`]) may still be rewritten:
//! - edit of a message whose insert is queued → the queued row gets the new content (the
//!   server never sees the first version); edit of a message with a queued edit → that edit
//!   gets the new content;
//! - delete of a message whose insert is queued → the insert, its edits and its reactions are
//!   dropped and the local echo removed: the server never hears of it;
//! - react then unreact (or unreact then react) while the first is queued → both vanish;
//! - mark-read with a queued mark-read for the room → the queued one moves forward;
//! - reacting to a message whose insert is queued needs nothing: the reaction is queued
//!   behind the insert in the room's stream.
//!
//! Once claimed, an entry is never rewritten; the new change is queued behind it instead.
//!
//! ## Permanent failures — and why the stream waits
//! A refused entry is marked `failed` with the server's reason and kept; the user can
//! [`retry`] or [`discard`] it. **Later entries of the same stream wait behind it**, the other
//! streams go on. Waiting keeps the room's order intact and keeps dependent changes (an edit
//! or reaction to the refused message) from failing in turn; the typical cause — the user was
//! removed from the room — would refuse the rest of the stream anyway. Skipping ahead would
//! deliver messages out of the order they were written, which is worse than a visible
//! "not sent — retry" on one message.
//!
//! Discarding an entry also discards the later entries of its stream that concern the same row
//! (they depend on it), then rolls each local echo back, newest first ([`entry::Undo`]).

pub mod backoff;
pub mod entry;
pub mod sender;

use std::collections::{BTreeMap, HashSet};

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{json, Map, Value};
use uuid::Uuid;

pub use entry::{Entry, Kind, Request, Undo};

use crate::events::Changes;
use crate::model::{EntryError, QueueCounts};
use crate::store::StoreError;

/// Something the user did that the server must learn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    SendMessage {
        id: Uuid,
        room_id: Uuid,
        content: String,
        reply_to: Option<Uuid>,
    },
    EditMessage {
        id: Uuid,
        content: String,
    },
    /// Soft delete: the server keeps the row with `deleted_at` set and the content emptied.
    DeleteMessage {
        id: Uuid,
    },
    React {
        message_id: Uuid,
        emoji: String,
    },
    Unreact {
        message_id: Uuid,
        emoji: String,
    },
    /// Moves the user's read marker of the room to `at` (never back).
    MarkRead {
        room_id: Uuid,
        at: String,
    },
    CreateSubmission {
        id: Uuid,
        challenge_id: Uuid,
        title: String,
        content: String,
    },
    /// Recorded for analytics. The server numbers activity rows itself, so there is no client
    /// id to make a retry idempotent: a send whose answer was lost may record it twice.
    RecordActivity {
        kind: String,
        ref_id: Option<Uuid>,
    },
    /// Local edits of a document: one yrs v1 update (usually ~100 ms of typing merged) as a
    /// `document_updates` row with a client-made id. The local echo is the document itself
    /// (already in its log), so there is nothing to roll back.
    DocUpdate {
        id: Uuid,
        document_id: Uuid,
        update: Vec<u8>,
    },
    /// The document's plain-text rendering for web clients; a queued one not yet sent is
    /// replaced by the newer text.
    DocContent {
        document_id: Uuid,
        content: String,
    },
}

pub fn room_stream(room: Uuid) -> String {
    format!("room:{room}")
}

fn read_stream(room: Uuid) -> String {
    format!("read:{room}")
}

fn challenge_stream(challenge: Uuid) -> String {
    format!("challenge:{challenge}")
}

const ACTIVITY_STREAM: &str = "activity";

/// The stream of a document's changes (its updates, then its rendering, in order).
pub fn doc_stream(document: Uuid) -> String {
    format!("doc:{document}")
}

/// A cached message's fields that actions look at.
struct MessageHead {
    room_id: Uuid,
    user_id: Uuid,
    content: String,
    edited_at: Option<String>,
    deleted_at: Option<String>,
}

fn message_head(conn: &Connection, id: Uuid) -> Result<Option<MessageHead>, StoreError> {
    let row = conn
        .prepare_cached("SELECT room_id, user_id, content, edited_at, deleted_at FROM messages WHERE id = ?1")?
        .query_row([id.to_string()], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .optional()?;
    let Some((room, user, content, edited_at, deleted_at)) = row else { return Ok(None) };
    let parse = |s: &str| Uuid::parse_str(s).map_err(|e| StoreError::Corrupt(format!("id {s}: {e}")));
    Ok(Some(MessageHead { room_id: parse(&room)?, user_id: parse(&user)?, content, edited_at, deleted_at }))
}

fn refused(msg: impl Into<String>) -> StoreError {
    StoreError::Refused(msg.into())
}

/// Applies `action` by `me`: local echo and outbox entry in the caller's transaction.
pub fn enqueue(conn: &Connection, inflight: &HashSet<i64>, me: Uuid, action: Action) -> Result<Changes, StoreError> {
    let mut changes = Changes { outbox: true, ..Changes::default() };
    let now = crate::time::now();
    match action {
        Action::SendMessage { id, room_id, content, reply_to } => {
            if content.trim().is_empty() {
                return Err(refused("a message cannot be empty"));
            }
            conn.prepare_cached(
                "INSERT INTO messages (id, room_id, user_id, content, type, reply_to, created_at, local_at)
                 VALUES (?1, ?2, ?3, ?4, 'text', ?5, NULL, ?6)",
            )?
            .execute(params![
                id.to_string(),
                room_id.to_string(),
                me.to_string(),
                content,
                reply_to.map(|r| r.to_string()),
                now
            ])?;
            let row = obj([
                ("id", json!(id)),
                ("room_id", json!(room_id)),
                ("user_id", json!(me)),
                ("content", json!(content)),
                ("type", json!("text")),
                ("reply_to", json!(reply_to)),
            ]);
            entry::insert(
                conn,
                &entry::NewEntry {
                    stream: room_stream(room_id),
                    kind: Kind::SendMessage,
                    target: id.to_string(),
                    request: Request::Insert { table: "chat_messages".into(), row },
                    undo: Undo::RemoveMessage { id },
                },
            )?;
            changes.message(room_id, id);
        }
        Action::EditMessage { id, content } => {
            if content.trim().is_empty() {
                return Err(refused("a message cannot be edited to nothing; delete it instead"));
            }
            let m = own_live_message(conn, me, id)?;
            let target = id.to_string();
            let entries = entry::for_target(conn, &target)?;
            let unclaimed = |e: &&Entry| !inflight.contains(&e.seq);
            if let Some(insert) = entries.iter().filter(unclaimed).find(|e| e.kind == Kind::SendMessage) {
                // Not sent yet: the server will only ever see the final text.
                let mut request = insert.request.clone();
                if let Request::Insert { row, .. } = &mut request {
                    row.insert("content".into(), json!(content));
                }
                entry::set_request(conn, insert.seq, &request)?;
                conn.execute("UPDATE messages SET content = ?2 WHERE id = ?1", params![target, content])?;
            } else if let Some(edit) =
                entries.last().filter(|e| e.kind == Kind::EditMessage && !inflight.contains(&e.seq))
            {
                let mut request = edit.request.clone();
                if let Request::Update { patch, .. } = &mut request {
                    patch.insert("content".into(), json!(content));
                    patch.insert("edited_at".into(), json!(now));
                }
                entry::set_request(conn, edit.seq, &request)?;
                conn.execute(
                    "UPDATE messages SET content = ?2, edited_at = ?3 WHERE id = ?1",
                    params![target, content, now],
                )?;
            } else {
                queue_message_update(
                    conn,
                    id,
                    &m,
                    Kind::EditMessage,
                    obj([("content", json!(content)), ("edited_at", json!(now))]),
                )?;
                conn.execute(
                    "UPDATE messages SET content = ?2, edited_at = ?3 WHERE id = ?1",
                    params![target, content, now],
                )?;
            }
            changes.message(m.room_id, id);
        }
        Action::DeleteMessage { id } => {
            let m = own_live_message(conn, me, id)?;
            let target = id.to_string();
            let entries = entry::for_target(conn, &target)?;
            let unsent = entries.iter().any(|e| e.kind == Kind::SendMessage);
            if unsent && entries.iter().all(|e| !inflight.contains(&e.seq)) {
                // The server never had it: forget it entirely.
                for e in &entries {
                    entry::delete(conn, e.seq)?;
                }
                conn.execute("DELETE FROM messages WHERE id = ?1", [&target])?;
            } else {
                queue_message_update(
                    conn,
                    id,
                    &m,
                    Kind::DeleteMessage,
                    obj([("deleted_at", json!(now)), ("content", json!(""))]),
                )?;
                conn.execute("UPDATE messages SET deleted_at = ?2, content = '' WHERE id = ?1", params![target, now])?;
            }
            changes.message(m.room_id, id);
        }
        Action::React { message_id, emoji } => {
            let emoji = valid_emoji(emoji)?;
            let m = message_head(conn, message_id)?.ok_or_else(|| refused("no such message"))?;
            if m.deleted_at.is_some() {
                return Err(refused("the message was deleted"));
            }
            if reaction_exists(conn, message_id, me, &emoji)? {
                changes.outbox = false;
                return Ok(changes);
            }
            let target = message_id.to_string();
            if let Some(unreact) = unclaimed_reaction_entry(conn, inflight, &target, Kind::Unreact, &emoji)? {
                // The server still has the reaction: forget the removal.
                entry::delete(conn, unreact.seq)?;
                let created_at = match unreact.undo {
                    Undo::RestoreReaction { created_at, .. } => created_at,
                    _ => None,
                };
                insert_reaction(conn, message_id, me, &emoji, created_at.as_deref())?;
            } else {
                insert_reaction(conn, message_id, me, &emoji, None)?;
                entry::insert(
                    conn,
                    &entry::NewEntry {
                        stream: room_stream(m.room_id),
                        kind: Kind::React,
                        target,
                        request: Request::Insert {
                            table: "message_reactions".into(),
                            row: obj([
                                ("message_id", json!(message_id)),
                                ("user_id", json!(me)),
                                ("emoji", json!(emoji)),
                            ]),
                        },
                        undo: Undo::RemoveReaction { message_id, user_id: me, emoji },
                    },
                )?;
            }
            changes.message(m.room_id, message_id);
        }
        Action::Unreact { message_id, emoji } => {
            let m = message_head(conn, message_id)?.ok_or_else(|| refused("no such message"))?;
            let created_at: Option<Option<String>> = conn
                .prepare_cached(
                    "SELECT created_at FROM reactions WHERE message_id = ?1 AND user_id = ?2 AND emoji = ?3",
                )?
                .query_row(params![message_id.to_string(), me.to_string(), emoji], |r| r.get(0))
                .optional()?;
            let Some(created_at) = created_at else {
                changes.outbox = false;
                return Ok(changes);
            };
            let target = message_id.to_string();
            conn.execute(
                "DELETE FROM reactions WHERE message_id = ?1 AND user_id = ?2 AND emoji = ?3",
                params![target, me.to_string(), emoji],
            )?;
            if let Some(react) = unclaimed_reaction_entry(conn, inflight, &target, Kind::React, &emoji)? {
                // The server never had it.
                entry::delete(conn, react.seq)?;
            } else {
                entry::insert(
                    conn,
                    &entry::NewEntry {
                        stream: room_stream(m.room_id),
                        kind: Kind::Unreact,
                        target,
                        request: Request::Delete {
                            table: "message_reactions".into(),
                            filter: BTreeMap::from([
                                ("message_id".to_string(), message_id.to_string()),
                                ("user_id".to_string(), me.to_string()),
                                ("emoji".to_string(), emoji.clone()),
                            ]),
                        },
                        undo: Undo::RestoreReaction { message_id, user_id: me, emoji, created_at },
                    },
                )?;
            }
            changes.message(m.room_id, message_id);
        }
        Action::MarkRead { room_id, at } => {
            let at = crate::time::canonical(&at);
            let current: Option<Option<String>> = conn
                .prepare_cached("SELECT last_read_at FROM room_members WHERE room_id = ?1 AND user_id = ?2")?
                .query_row(params![room_id.to_string(), me.to_string()], |r| r.get(0))
                .optional()?;
            let Some(current) = current else { return Err(refused("not a member of this room")) };
            if current.as_deref().is_some_and(|c| c >= at.as_str()) {
                changes.outbox = false;
                return Ok(changes);
            }
            let target = room_id.to_string();
            let queued = entry::for_target(conn, &target)?
                .into_iter()
                .rfind(|e| e.kind == Kind::MarkRead && !inflight.contains(&e.seq));
            if let Some(mut e) = queued {
                if let Request::Update { patch, .. } = &mut e.request {
                    patch.insert("last_read_at".into(), json!(at));
                }
                entry::set_request(conn, e.seq, &e.request)?;
            } else {
                entry::insert(
                    conn,
                    &entry::NewEntry {
                        stream: read_stream(room_id),
                        kind: Kind::MarkRead,
                        target: target.clone(),
                        request: Request::Update {
                            table: "room_members".into(),
                            filter: BTreeMap::from([
                                ("room_id".to_string(), target.clone()),
                                ("user_id".to_string(), me.to_string()),
                            ]),
                            patch: obj([("last_read_at", json!(at))]),
                            // A marker for a room the user has left has nothing to update.
                            must_match: false,
                        },
                        undo: Undo::RestoreReadMarker { room_id, user_id: me, last_read_at: current },
                    },
                )?;
            }
            conn.execute(
                "UPDATE room_members SET last_read_at = ?3 WHERE room_id = ?1 AND user_id = ?2",
                params![target, me.to_string(), at],
            )?;
            changes.rooms.insert(room_id);
        }
        Action::CreateSubmission { id, challenge_id, title, content } => {
            if title.trim().is_empty() {
                return Err(refused("a submission needs a title"));
            }
            conn.prepare_cached(
                "INSERT INTO submissions (id, challenge_id, user_id, title, content, status, created_at, updated_at, local_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'submitted', NULL, NULL, ?6)",
            )?
            .execute(params![id.to_string(), challenge_id.to_string(), me.to_string(), title, content, now])?;
            entry::insert(
                conn,
                &entry::NewEntry {
                    stream: challenge_stream(challenge_id),
                    kind: Kind::CreateSubmission,
                    target: id.to_string(),
                    request: Request::Insert {
                        table: "challenge_submissions".into(),
                        row: obj([
                            ("id", json!(id)),
                            ("challenge_id", json!(challenge_id)),
                            ("user_id", json!(me)),
                            ("title", json!(title)),
                            ("content", json!(content)),
                        ]),
                    },
                    undo: Undo::RemoveSubmission { id },
                },
            )?;
            changes.submission(challenge_id, id);
        }
        Action::RecordActivity { kind, ref_id } => {
            entry::insert(
                conn,
                &entry::NewEntry {
                    stream: ACTIVITY_STREAM.into(),
                    kind: Kind::RecordActivity,
                    // No local row: a target of its own, so a discard takes this entry alone.
                    target: format!("{ACTIVITY_STREAM}:{}", Uuid::now_v7()),
                    request: Request::Insert {
                        table: "user_activities".into(),
                        row: obj([("user_id", json!(me)), ("kind", json!(kind)), ("ref_id", json!(ref_id))]),
                    },
                    undo: Undo::Nothing,
                },
            )?;
        }
        Action::DocUpdate { id, document_id, update } => {
            entry::insert(
                conn,
                &entry::NewEntry {
                    stream: doc_stream(document_id),
                    kind: Kind::DocUpdate,
                    target: document_id.to_string(),
                    request: Request::Insert {
                        table: "document_updates".into(),
                        row: obj([
                            ("id", json!(id)),
                            ("document_id", json!(document_id)),
                            ("user_id", json!(me)),
                            ("update", json!(crate::docs::codec::b64(&update))),
                        ]),
                    },
                    undo: Undo::Nothing,
                },
            )?;
            changes.documents.insert(document_id);
        }
        Action::DocContent { document_id, content } => {
            let target = document_id.to_string();
            let patch = obj([("content", json!(content)), ("last_modified_by", json!(me))]);
            let request = Request::Update {
                table: "collaborative_documents".into(),
                filter: BTreeMap::from([("id".to_string(), target.clone())]),
                patch,
                must_match: false,
            };
            let queued = entry::for_target(conn, &target)?
                .into_iter()
                .rev()
                .find(|e| e.kind == Kind::DocContent && !inflight.contains(&e.seq) && !e.failed);
            match queued {
                Some(e) => entry::set_request(conn, e.seq, &request)?,
                None => {
                    entry::insert(
                        conn,
                        &entry::NewEntry {
                            stream: doc_stream(document_id),
                            kind: Kind::DocContent,
                            target: target.clone(),
                            request,
                            undo: Undo::Nothing,
                        },
                    )?;
                }
            }
            conn.execute("UPDATE documents SET content = ?2 WHERE id = ?1", params![target, content])?;
            changes.documents.insert(document_id);
        }
    }
    Ok(changes)
}

/// Queues an update of the user's sent message `id` (an edit or a soft delete); a discard
/// restores the message as `m` was.
fn queue_message_update(
    conn: &Connection,
    id: Uuid,
    m: &MessageHead,
    kind: Kind,
    patch: Map<String, Value>,
) -> Result<i64, StoreError> {
    let target = id.to_string();
    entry::insert(
        conn,
        &entry::NewEntry {
            stream: room_stream(m.room_id),
            kind,
            target: target.clone(),
            request: Request::Update {
                table: "chat_messages".into(),
                filter: BTreeMap::from([("id".to_string(), target)]),
                patch,
                must_match: true,
            },
            undo: Undo::RestoreMessage {
                id,
                content: m.content.clone(),
                edited_at: m.edited_at.clone(),
                deleted_at: m.deleted_at.clone(),
            },
        },
    )
}

fn obj<const N: usize>(pairs: [(&str, Value); N]) -> Map<String, Value> {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

fn valid_emoji(emoji: String) -> Result<String, StoreError> {
    let n = emoji.chars().count();
    if n == 0 || n > 64 {
        return Err(refused("a reaction is 1 to 64 characters"));
    }
    Ok(emoji)
}

fn own_live_message(conn: &Connection, me: Uuid, id: Uuid) -> Result<MessageHead, StoreError> {
    let m = message_head(conn, id)?.ok_or_else(|| refused("no such message"))?;
    if m.user_id != me {
        return Err(refused("only the author may change a message"));
    }
    if m.deleted_at.is_some() {
        return Err(refused("the message was deleted"));
    }
    Ok(m)
}

fn reaction_exists(conn: &Connection, message: Uuid, user: Uuid, emoji: &str) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM reactions WHERE message_id = ?1 AND user_id = ?2 AND emoji = ?3)",
        )?
        .query_row(params![message.to_string(), user.to_string(), emoji], |r| r.get(0))?)
}

fn insert_reaction(
    conn: &Connection,
    message: Uuid,
    user: Uuid,
    emoji: &str,
    created_at: Option<&str>,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO reactions (message_id, user_id, emoji, created_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (message_id, user_id, emoji) DO NOTHING",
    )?
    .execute(params![message.to_string(), user.to_string(), emoji, created_at])?;
    Ok(())
}

/// The newest unclaimed react / unreact entry of `target` for `emoji`, if it is the newest
/// reaction entry for that emoji (an older one may not be folded past a newer one).
fn unclaimed_reaction_entry(
    conn: &Connection,
    inflight: &HashSet<i64>,
    target: &str,
    kind: Kind,
    emoji: &str,
) -> Result<Option<Entry>, StoreError> {
    let newest = entry::for_target(conn, target)?.into_iter().rfind(|e| {
        matches!(e.kind, Kind::React | Kind::Unreact)
            && match &e.request {
                Request::Insert { row, .. } => row.get("emoji").and_then(Value::as_str) == Some(emoji),
                Request::Delete { filter, .. } => filter.get("emoji").map(String::as_str) == Some(emoji),
                Request::Update { .. } => false,
            }
    });
    Ok(newest.filter(|e| e.kind == kind && !inflight.contains(&e.seq)))
}

/// Discards entry `seq` and the later entries of its stream about the same row, rolling their
/// local echoes back (newest first). Refused while the sender has the entry in flight.
pub fn discard(conn: &Connection, inflight: &HashSet<i64>, seq: i64) -> Result<Changes, StoreError> {
    let first = entry::get(conn, seq)?.ok_or_else(|| refused("no such queued change"))?;
    let mut doomed: Vec<Entry> = entry::for_target(conn, &first.target)?
        .into_iter()
        .filter(|e| e.stream == first.stream && e.seq >= first.seq)
        .collect();
    if first.kind == Kind::SendMessage {
        // Everything about a message the server never had goes with it.
        doomed = entry::for_target(conn, &first.target)?;
    }
    if doomed.iter().any(|e| inflight.contains(&e.seq)) {
        return Err(refused("this change is being sent right now; try again in a moment"));
    }
    let mut changes = Changes { outbox: true, ..Changes::default() };
    for e in doomed.iter().rev() {
        undo(conn, &e.undo, &mut changes)?;
        entry::delete(conn, e.seq)?;
    }
    Ok(changes)
}

fn room_of_message(conn: &Connection, id: Uuid) -> Result<Option<Uuid>, StoreError> {
    Ok(message_head(conn, id)?.map(|m| m.room_id))
}

fn undo(conn: &Connection, undo: &Undo, changes: &mut Changes) -> Result<(), StoreError> {
    match undo {
        Undo::RemoveMessage { id } => {
            if let Some(room) = room_of_message(conn, *id)? {
                changes.message(room, *id);
            }
            conn.execute("DELETE FROM messages WHERE id = ?1", [id.to_string()])?;
        }
        Undo::RestoreMessage { id, content, edited_at, deleted_at } => {
            conn.execute(
                "UPDATE messages SET content = ?2, edited_at = ?3, deleted_at = ?4 WHERE id = ?1",
                params![id.to_string(), content, edited_at, deleted_at],
            )?;
            if let Some(room) = room_of_message(conn, *id)? {
                changes.message(room, *id);
            }
        }
        Undo::RemoveReaction { message_id, user_id, emoji } => {
            conn.execute(
                "DELETE FROM reactions WHERE message_id = ?1 AND user_id = ?2 AND emoji = ?3",
                params![message_id.to_string(), user_id.to_string(), emoji],
            )?;
            if let Some(room) = room_of_message(conn, *message_id)? {
                changes.message(room, *message_id);
            }
        }
        Undo::RestoreReaction { message_id, user_id, emoji, created_at } => {
            if room_of_message(conn, *message_id)?.is_some() {
                insert_reaction(conn, *message_id, *user_id, emoji, created_at.as_deref())?;
            }
            if let Some(room) = room_of_message(conn, *message_id)? {
                changes.message(room, *message_id);
            }
        }
        Undo::RestoreReadMarker { room_id, user_id, last_read_at } => {
            conn.execute(
                "UPDATE room_members SET last_read_at = ?3 WHERE room_id = ?1 AND user_id = ?2",
                params![room_id.to_string(), user_id.to_string(), last_read_at],
            )?;
            changes.rooms.insert(*room_id);
        }
        Undo::RemoveSubmission { id } => {
            let challenge: Option<String> = conn
                .query_row("SELECT challenge_id FROM submissions WHERE id = ?1", [id.to_string()], |r| r.get(0))
                .optional()?;
            conn.execute("DELETE FROM submissions WHERE id = ?1", [id.to_string()])?;
            if let Some(c) = challenge.and_then(|c| Uuid::parse_str(&c).ok()) {
                changes.submission(c, *id);
            }
        }
        Undo::Nothing => {}
    }
    Ok(())
}

/// Puts a failed entry back in line.
pub fn retry(conn: &Connection, seq: i64) -> Result<Changes, StoreError> {
    let e = entry::get(conn, seq)?.ok_or_else(|| refused("no such queued change"))?;
    conn.execute("UPDATE outbox SET state = 'queued', error = NULL WHERE seq = ?1", [seq])?;
    let mut changes = Changes { outbox: true, ..Changes::default() };
    touch_target(conn, &e, &mut changes)?;
    Ok(changes)
}

/// Records the row an entry concerns as changed (its send state moved).
fn touch_target(conn: &Connection, e: &Entry, changes: &mut Changes) -> Result<(), StoreError> {
    match e.kind {
        Kind::SendMessage | Kind::EditMessage | Kind::DeleteMessage | Kind::React | Kind::Unreact => {
            if let Ok(id) = Uuid::parse_str(&e.target) {
                if let Some(room) = room_of_message(conn, id)? {
                    changes.message(room, id);
                }
            }
        }
        Kind::CreateSubmission => {
            if let (Ok(id), Request::Insert { row, .. }) = (Uuid::parse_str(&e.target), &e.request) {
                if let Some(c) = row.get("challenge_id").and_then(Value::as_str).and_then(|c| Uuid::parse_str(c).ok()) {
                    changes.submission(c, id);
                }
            }
        }
        Kind::MarkRead => {
            if let Ok(id) = Uuid::parse_str(&e.target) {
                changes.rooms.insert(id);
            }
        }
        Kind::RecordActivity => changes.activity = true,
        Kind::DocUpdate | Kind::DocContent => {
            if let Ok(id) = Uuid::parse_str(&e.target) {
                changes.documents.insert(id);
            }
        }
    }
    Ok(())
}

pub fn counts(conn: &Connection) -> Result<QueueCounts, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT count(*) FILTER (WHERE state = 'queued'), count(*) FILTER (WHERE state = 'failed') FROM outbox",
        )?
        .query_row([], |r| {
            Ok(QueueCounts { queued: r.get::<_, i64>(0)? as u64, failed: r.get::<_, i64>(1)? as u64 })
        })?)
}

// ---- the sender's side: claim and settle -------------------------------------------------

/// Entries the sender sends in one request: one stream, consecutive, same table (inserts), or
/// a single update / delete.
#[derive(Debug, Clone)]
pub struct Batch {
    pub stream: String,
    pub entries: Vec<Entry>,
}

/// Limits of one claim.
#[derive(Debug, Clone, Copy)]
pub struct ClaimLimits {
    /// Streams served per claim (one batch each).
    pub streams: usize,
    /// Rows per insert request.
    pub rows: usize,
    /// Approximate request body bytes per insert request.
    pub bytes: usize,
}

/// Claims the next batch of every stream whose head is queued and not in flight, oldest
/// stream head first. Claimed entries are in `inflight` until settled.
pub fn claim(conn: &Connection, inflight: &mut HashSet<i64>, limits: ClaimLimits) -> Result<Vec<Batch>, StoreError> {
    let mut heads: Vec<(String, i64)> = conn
        .prepare_cached("SELECT stream, min(seq) FROM outbox GROUP BY stream ORDER BY min(seq)")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    heads.retain(|(_, seq)| !inflight.contains(seq));
    let mut batches = Vec::new();
    let sql = format!("SELECT {} FROM outbox WHERE stream = ?1 ORDER BY seq LIMIT ?2", entry::COLUMNS);
    for (stream, _) in heads {
        if batches.len() >= limits.streams {
            break;
        }
        let mut stmt = conn.prepare_cached(&sql)?;
        let mut rows = stmt.query(params![stream, limits.rows as i64])?;
        let mut taken: Vec<Entry> = Vec::new();
        let mut bytes = 0usize;
        while let Some(r) = rows.next()? {
            let e = Entry::from_row(r)?;
            if e.failed || inflight.contains(&e.seq) {
                break;
            }
            match taken.first() {
                None => {}
                Some(head) => {
                    let same = head.request.batch_key().is_some() && head.request.batch_key() == e.request.batch_key();
                    if !same {
                        break;
                    }
                }
            }
            let size = match &e.request {
                Request::Insert { row, .. } => serde_json::to_string(row).map(|s| s.len()).unwrap_or(0),
                _ => 0,
            };
            if !taken.is_empty() && bytes + size > limits.bytes {
                break;
            }
            bytes += size;
            let single = e.request.batch_key().is_none();
            taken.push(e);
            if single {
                break;
            }
        }
        if !taken.is_empty() {
            inflight.extend(taken.iter().map(|e| e.seq));
            batches.push(Batch { stream, entries: taken });
        }
    }
    Ok(batches)
}

/// The server confirmed `entries`: delete them and record what the server said about the
/// rows (`returned`: id → server `created_at` for inserted messages and submissions).
pub fn confirm(
    conn: &Connection,
    inflight: &mut HashSet<i64>,
    entries: &[Entry],
    returned: &BTreeMap<Uuid, String>,
) -> Result<Changes, StoreError> {
    let mut changes = Changes { outbox: true, ..Changes::default() };
    let now = crate::time::now();
    for e in entries {
        inflight.remove(&e.seq);
        entry::delete(conn, e.seq)?;
        match e.kind {
            Kind::SendMessage => {
                if let Some(at) = Uuid::parse_str(&e.target).ok().and_then(|id| returned.get(&id)) {
                    conn.execute(
                        "UPDATE messages SET created_at = ?2 WHERE id = ?1 AND created_at IS NULL",
                        params![e.target, crate::time::canonical(at)],
                    )?;
                }
            }
            Kind::React => {
                if let Request::Insert { row, .. } = &e.request {
                    conn.execute(
                        "UPDATE reactions SET created_at = ?4 WHERE message_id = ?1 AND user_id = ?2 AND emoji = ?3
                           AND created_at IS NULL",
                        params![
                            row.get("message_id").and_then(Value::as_str),
                            row.get("user_id").and_then(Value::as_str),
                            row.get("emoji").and_then(Value::as_str),
                            now
                        ],
                    )?;
                }
            }
            Kind::CreateSubmission => {
                if let Some(at) = Uuid::parse_str(&e.target).ok().and_then(|id| returned.get(&id)) {
                    let at = crate::time::canonical(at);
                    conn.execute(
                        "UPDATE submissions SET created_at = ?2, updated_at = coalesce(updated_at, ?2)
                         WHERE id = ?1 AND created_at IS NULL",
                        params![e.target, at],
                    )?;
                }
            }
            _ => {}
        }
        touch_target(conn, e, &mut changes)?;
    }
    Ok(changes)
}

/// The server refused `entry` for good: keep it, failed, with the reason.
pub fn fail(
    conn: &Connection,
    inflight: &mut HashSet<i64>,
    entry: &Entry,
    error: &EntryError,
) -> Result<Changes, StoreError> {
    inflight.remove(&entry.seq);
    conn.execute(
        "UPDATE outbox SET state = 'failed', error = ?2, attempts = attempts + 1 WHERE seq = ?1",
        params![entry.seq, serde_json::to_string(error)?],
    )?;
    let mut changes = Changes { outbox: true, ..Changes::default() };
    touch_target(conn, entry, &mut changes)?;
    Ok(changes)
}

/// Hands claimed entries back unsent (a transient failure, or the sender stopping);
/// `attempted` counts the attempt.
pub fn release(
    conn: &Connection,
    inflight: &mut HashSet<i64>,
    entries: &[Entry],
    attempted: bool,
) -> Result<(), StoreError> {
    for e in entries {
        inflight.remove(&e.seq);
        if attempted {
            conn.execute("UPDATE outbox SET attempts = attempts + 1 WHERE seq = ?1", [e.seq])?;
        }
    }
    Ok(())
}

/// The ids of confirmed inserts whose server time did not come back (a retried insert whose
/// rows already existed: `ignore-duplicates` returns only the rows it wrote), to look up.
pub fn missing_times(entries: &[Entry], returned: &BTreeMap<Uuid, String>) -> Vec<Uuid> {
    entries
        .iter()
        .filter(|e| matches!(e.kind, Kind::SendMessage | Kind::CreateSubmission))
        .filter_map(|e| Uuid::parse_str(&e.target).ok())
        .filter(|id| !returned.contains_key(id))
        .collect()
}

/// Fills server times learnt after the confirmation.
pub fn set_times(conn: &Connection, table: &str, times: &BTreeMap<Uuid, String>) -> Result<Changes, StoreError> {
    let mut changes = Changes::default();
    for (id, at) in times {
        let at = crate::time::canonical(at);
        match table {
            "chat_messages" => {
                let n = conn.execute(
                    "UPDATE messages SET created_at = ?2 WHERE id = ?1 AND created_at IS NULL",
                    params![id.to_string(), at],
                )?;
                if n > 0 {
                    if let Some(room) = room_of_message(conn, *id)? {
                        changes.message(room, *id);
                    }
                }
            }
            "challenge_submissions" => {
                conn.execute(
                    "UPDATE submissions SET created_at = ?2, updated_at = coalesce(updated_at, ?2) WHERE id = ?1 AND created_at IS NULL",
                    params![id.to_string(), at],
                )?;
            }
            _ => {}
        }
    }
    Ok(changes)
}

#[cfg(test)]
mod tests;
