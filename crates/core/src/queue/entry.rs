//! One outbox row and the JSON it stores: what to send ([`Request`]) and how a discard rolls the
//! local echo back ([`Undo`]). Both formats persist across versions, so they are pinned by
//! tests below: a change to them is a decision (and needs a migration that converts stored
//! entries, never one that drops them).

use std::collections::BTreeMap;

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::model::{EntryError, OutboxEntry};
use crate::store::StoreError;

/// What the user did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    SendMessage,
    EditMessage,
    DeleteMessage,
    React,
    Unreact,
    MarkRead,
    CreateSubmission,
    RecordActivity,
    /// A batch of local edits of a document (a `document_updates` row).
    DocUpdate,
    /// The plain-text rendering of a document (`collaborative_documents.content`).
    DocContent,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::SendMessage => "send_message",
            Kind::EditMessage => "edit_message",
            Kind::DeleteMessage => "delete_message",
            Kind::React => "react",
            Kind::Unreact => "unreact",
            Kind::MarkRead => "mark_read",
            Kind::CreateSubmission => "create_submission",
            Kind::RecordActivity => "record_activity",
            Kind::DocUpdate => "doc_update",
            Kind::DocContent => "doc_content",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Some(match s {
            "send_message" => Kind::SendMessage,
            "edit_message" => Kind::EditMessage,
            "delete_message" => Kind::DeleteMessage,
            "react" => Kind::React,
            "unreact" => Kind::Unreact,
            "mark_read" => Kind::MarkRead,
            "create_submission" => Kind::CreateSubmission,
            "record_activity" => Kind::RecordActivity,
            "doc_update" => Kind::DocUpdate,
            "doc_content" => Kind::DocContent,
            _ => return None,
        })
    }
}

/// The REST call an entry makes. Key columns of updates and deletes are `eq` filters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// `POST /rest/v1/<table>` with `Prefer: resolution=ignore-duplicates`: the row carries its
    /// client-made key, so a repeat is a no-op. Consecutive inserts into one table from one
    /// stream go as one JSON array.
    Insert { table: String, row: Map<String, Value> },
    /// `PATCH /rest/v1/<table>?<key>=eq.<value>…`. With `must_match`, an update that matches no
    /// row (gone, or not the user's) is a permanent failure; without, it is done.
    Update { table: String, filter: BTreeMap<String, String>, patch: Map<String, Value>, must_match: bool },
    /// `DELETE /rest/v1/<table>?<key>=eq.<value>…`; deleting what is already gone is done.
    Delete { table: String, filter: BTreeMap<String, String> },
}

impl Request {
    pub fn table(&self) -> &str {
        match self {
            Request::Insert { table, .. } | Request::Update { table, .. } | Request::Delete { table, .. } => table,
        }
    }

    /// Entries with equal keys may go in one request.
    pub fn batch_key(&self) -> Option<&str> {
        match self {
            Request::Insert { table, .. } => Some(table),
            _ => None,
        }
    }
}

/// How discarding an entry rolls back its local echo.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "undo", rename_all = "snake_case")]
pub enum Undo {
    /// Remove the locally made message (and its reactions).
    RemoveMessage { id: Uuid },
    /// Put the message's content and times back as they were before the change.
    RestoreMessage { id: Uuid, content: String, edited_at: Option<String>, deleted_at: Option<String> },
    /// Remove the locally added reaction.
    RemoveReaction { message_id: Uuid, user_id: Uuid, emoji: String },
    /// Put back the reaction the user removed.
    RestoreReaction { message_id: Uuid, user_id: Uuid, emoji: String, created_at: Option<String> },
    /// Put the read marker back.
    RestoreReadMarker { room_id: Uuid, user_id: Uuid, last_read_at: Option<String> },
    /// Remove the locally made submission.
    RemoveSubmission { id: Uuid },
    /// Nothing local to roll back (an activity record).
    Nothing,
}

/// A stored entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub seq: i64,
    pub stream: String,
    pub kind: Kind,
    pub target: String,
    pub request: Request,
    pub undo: Undo,
    pub failed: bool,
    pub attempts: i64,
    pub error: Option<EntryError>,
    pub created_at: String,
}

pub const COLUMNS: &str = "seq, stream, kind, target, request, undo, state, attempts, error, created_at";

impl Entry {
    pub fn from_row(r: &Row<'_>) -> Result<Entry, StoreError> {
        let kind: String = r.get(2)?;
        let request: String = r.get(4)?;
        let undo: String = r.get(5)?;
        let state: String = r.get(6)?;
        let error: Option<String> = r.get(8)?;
        Ok(Entry {
            seq: r.get(0)?,
            stream: r.get(1)?,
            kind: Kind::parse(&kind).ok_or_else(|| StoreError::Corrupt(format!("unknown outbox kind {kind:?}")))?,
            target: r.get(3)?,
            request: serde_json::from_str(&request)?,
            undo: serde_json::from_str(&undo)?,
            failed: state == "failed",
            attempts: r.get(7)?,
            error: error.map(|e| serde_json::from_str(&e)).transpose()?,
            created_at: r.get(9)?,
        })
    }

    pub fn view(&self) -> OutboxEntry {
        OutboxEntry {
            seq: self.seq,
            kind: self.kind.as_str().to_string(),
            stream: self.stream.clone(),
            target: self.target.clone(),
            failed: self.failed,
            error: self.error.clone(),
            attempts: self.attempts,
            created_at: self.created_at.clone(),
        }
    }
}

/// A new entry, before it has a `seq`.
pub struct NewEntry {
    pub stream: String,
    pub kind: Kind,
    pub target: String,
    pub request: Request,
    pub undo: Undo,
}

pub fn insert(conn: &Connection, e: &NewEntry) -> Result<i64, StoreError> {
    conn.prepare_cached(
        "INSERT INTO outbox (stream, kind, target, request, undo, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        e.stream,
        e.kind.as_str(),
        e.target,
        serde_json::to_string(&e.request)?,
        serde_json::to_string(&e.undo)?,
        crate::time::now()
    ])?;
    Ok(conn.last_insert_rowid())
}

pub fn get(conn: &Connection, seq: i64) -> Result<Option<Entry>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM outbox WHERE seq = ?1");
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query([seq])?;
    match rows.next()? {
        Some(r) => Ok(Some(Entry::from_row(r)?)),
        None => Ok(None),
    }
}

/// Entries for `target`, oldest first.
pub fn for_target(conn: &Connection, target: &str) -> Result<Vec<Entry>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM outbox WHERE target = ?1 ORDER BY seq");
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query([target])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(Entry::from_row(r)?);
    }
    Ok(out)
}

pub fn all(conn: &Connection) -> Result<Vec<Entry>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM outbox ORDER BY seq");
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(Entry::from_row(r)?);
    }
    Ok(out)
}

pub fn set_request(conn: &Connection, seq: i64, request: &Request) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE outbox SET request = ?2 WHERE seq = ?1")?
        .execute(params![seq, serde_json::to_string(request)?])?;
    Ok(())
}

pub fn delete(conn: &Connection, seq: i64) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM outbox WHERE seq = ?1")?.execute([seq])?;
    Ok(())
}

pub fn first_seq_of_stream(conn: &Connection, stream: &str) -> Result<Option<i64>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT min(seq) FROM outbox WHERE stream = ?1")?
        .query_row([stream], |r| r.get::<_, Option<i64>>(0))
        .optional()?
        .flatten())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The stored forms are a persistence format: these literals are what older versions
    /// wrote and newer ones must read.
    #[test]
    fn stored_request_and_undo_formats_are_stable() {
        let id = Uuid::parse_str("01890a5d-ac96-774b-bcce-b302099a8057").expect("uuid");
        let mut row = Map::new();
        row.insert("id".into(), json!(id));
        let insert = Request::Insert { table: "chat_messages".into(), row };
        assert_eq!(
            serde_json::to_string(&insert).expect("json"),
            r#"{"op":"insert","table":"chat_messages","row":{"id":"01890a5d-ac96-774b-bcce-b302099a8057"}}"#
        );
        let update = Request::Update {
            table: "chat_messages".into(),
            filter: BTreeMap::from([("id".to_string(), id.to_string())]),
            patch: Map::from_iter([("content".to_string(), json!("x"))]),
            must_match: true,
        };
        assert_eq!(
            serde_json::to_string(&update).expect("json"),
            r#"{"op":"update","table":"chat_messages","filter":{"id":"01890a5d-ac96-774b-bcce-b302099a8057"},"patch":{"content":"x"},"must_match":true}"#
        );
        let undo = Undo::RestoreMessage { id, content: "a".into(), edited_at: None, deleted_at: None };
        assert_eq!(
            serde_json::to_string(&undo).expect("json"),
            r#"{"undo":"restore_message","id":"01890a5d-ac96-774b-bcce-b302099a8057","content":"a","edited_at":null,"deleted_at":null}"#
        );
        for k in [
            Kind::SendMessage,
            Kind::EditMessage,
            Kind::DeleteMessage,
            Kind::React,
            Kind::Unreact,
            Kind::MarkRead,
            Kind::CreateSubmission,
            Kind::RecordActivity,
            Kind::DocUpdate,
            Kind::DocContent,
        ] {
            assert_eq!(Kind::parse(k.as_str()), Some(k));
            assert_eq!(serde_json::to_value(k).expect("json"), json!(k.as_str()));
        }
    }
}
