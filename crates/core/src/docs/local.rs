//! The documents' rows in the local database: metadata the server sends (documents, members),
//! and each document's CRDT log and sync state (`doc_log`, `doc_state`; see
//! `migrations/0002_documents.sql`). Plain functions over a connection, run in store jobs.

use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::store::StoreError;

/// A `collaborative_documents` row as the server sends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentRow {
    pub id: Uuid,
    pub title: String,
    #[serde(default)]
    pub challenge_id: Option<Uuid>,
    pub created_by: Uuid,
    #[serde(default)]
    pub content: String,
    #[serde(default)]
    pub version: i64,
    #[serde(default)]
    pub last_modified_by: Option<Uuid>,
    pub updated_at: String,
}

/// A `document_members` row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocMemberRow {
    pub document_id: Uuid,
    pub user_id: Uuid,
    pub role: String,
}

/// What the user may do with a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Created it: edits, manages members.
    Owner,
    Editor,
    /// Reads only: the engine refuses local edits, the server refuses the rows.
    Viewer,
}

impl Role {
    pub fn can_edit(self) -> bool {
        !matches!(self, Role::Viewer)
    }
}

/// A document as the list shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct DocumentInfo {
    pub id: Uuid,
    pub title: String,
    pub challenge_id: Option<Uuid>,
    pub created_by: Uuid,
    pub role: Role,
    /// The plain-text rendering (the server's, or the newer local one).
    pub content: String,
    pub last_modified_by: Option<Uuid>,
    pub updated_at: String,
}

fn ts(s: &str) -> String {
    crate::time::canonical(s)
}

/// Stores a document's metadata; an older copy never replaces a newer one. True if it changed.
pub fn put_document(conn: &Connection, d: &DocumentRow) -> Result<bool, StoreError> {
    let n = conn
        .prepare_cached(
            "INSERT INTO documents (id, title, challenge_id, created_by, version, last_modified_by, updated_at, content)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (id) DO UPDATE SET title = excluded.title, challenge_id = excluded.challenge_id,
                 version = excluded.version, last_modified_by = excluded.last_modified_by,
                 updated_at = excluded.updated_at, content = excluded.content
             WHERE excluded.updated_at > documents.updated_at",
        )?
        .execute(params![
            d.id.to_string(),
            d.title,
            d.challenge_id.map(|c| c.to_string()),
            d.created_by.to_string(),
            d.version,
            d.last_modified_by.map(|u| u.to_string()),
            ts(&d.updated_at),
            d.content
        ])?;
    Ok(n > 0)
}

/// Stores a membership. True if it changed.
pub fn put_member(conn: &Connection, m: &DocMemberRow) -> Result<bool, StoreError> {
    let n = conn
        .prepare_cached(
            "INSERT INTO document_members (document_id, user_id, role) VALUES (?1, ?2, ?3)
             ON CONFLICT (document_id, user_id) DO UPDATE SET role = excluded.role WHERE role IS NOT excluded.role",
        )?
        .execute(params![m.document_id.to_string(), m.user_id.to_string(), m.role])?;
    Ok(n > 0)
}

/// Removes a membership. True if there was one.
pub fn remove_member(conn: &Connection, document: Uuid, user: Uuid) -> Result<bool, StoreError> {
    Ok(conn.execute(
        "DELETE FROM document_members WHERE document_id = ?1 AND user_id = ?2",
        params![document.to_string(), user.to_string()],
    )? > 0)
}

/// After a full read of what the user may see: forgets documents (and memberships of them)
/// that are not in `visible`, and memberships of visible documents not in `members`. Returns
/// the documents that went away. Their CRDT data (log, snapshot) is dropped too — except
/// local edits never sent, which stay in the log for a later sign-in with access again.
pub fn prune(conn: &Connection, visible: &[Uuid], members: &[DocMemberRow]) -> Result<Vec<Uuid>, StoreError> {
    let known: Vec<String> =
        conn.prepare("SELECT id FROM documents")?.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
    let visible: std::collections::BTreeSet<String> = visible.iter().map(Uuid::to_string).collect();
    let mut gone = Vec::new();
    for id in known.iter().filter(|id| !visible.contains(*id)) {
        conn.execute("DELETE FROM documents WHERE id = ?1", [id])?;
        conn.execute("DELETE FROM document_members WHERE document_id = ?1", [id])?;
        conn.execute("DELETE FROM doc_log WHERE document_id = ?1 AND queued = 1", [id])?;
        conn.execute("DELETE FROM doc_state WHERE document_id = ?1", [id])?;
        if let Ok(u) = Uuid::parse_str(id) {
            gone.push(u);
        }
    }
    let keep: std::collections::BTreeSet<(String, String)> =
        members.iter().map(|m| (m.document_id.to_string(), m.user_id.to_string())).collect();
    let rows: Vec<(String, String)> = conn
        .prepare("SELECT document_id, user_id FROM document_members")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    for (d, u) in rows {
        if visible.contains(&d) && !keep.contains(&(d.clone(), u.clone())) {
            conn.execute("DELETE FROM document_members WHERE document_id = ?1 AND user_id = ?2", params![d, u])?;
        }
    }
    Ok(gone)
}

/// The user's role in a document (`None`: not a member, or unknown document).
pub fn role(conn: &Connection, document: Uuid, me: Uuid) -> Result<Option<Role>, StoreError> {
    let row: Option<(String, Option<String>)> = conn
        .prepare_cached(
            "SELECT d.created_by, m.role FROM documents d
             LEFT JOIN document_members m ON m.document_id = d.id AND m.user_id = ?2
             WHERE d.id = ?1",
        )?
        .query_row(params![document.to_string(), me.to_string()], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    Ok(match row {
        None => None,
        Some((creator, _)) if creator == me.to_string() => Some(Role::Owner),
        Some((_, Some(role))) if role == "editor" => Some(Role::Editor),
        Some((_, Some(_))) => Some(Role::Viewer),
        Some((_, None)) => None,
    })
}

/// The documents the user may open, newest first.
pub fn list(conn: &Connection, me: Uuid) -> Result<Vec<DocumentInfo>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT d.id, d.title, d.challenge_id, d.created_by, m.role, d.content, d.last_modified_by, d.updated_at
         FROM documents d LEFT JOIN document_members m ON m.document_id = d.id AND m.user_id = ?1
         WHERE d.created_by = ?1 OR m.user_id IS NOT NULL
         ORDER BY d.updated_at DESC, d.id",
    )?;
    let rows = stmt.query_map([me.to_string()], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, Option<String>>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, Option<String>>(4)?,
            r.get::<_, String>(5)?,
            r.get::<_, Option<String>>(6)?,
            r.get::<_, String>(7)?,
        ))
    })?;
    let parse = |s: &str| Uuid::parse_str(s).map_err(|e| StoreError::Corrupt(format!("document id {s}: {e}")));
    let mut out = Vec::new();
    for row in rows {
        let (id, title, challenge, creator, role, content, modified_by, updated_at) = row?;
        let created_by = parse(&creator)?;
        let role = if created_by == me {
            Role::Owner
        } else if role.as_deref() == Some("editor") {
            Role::Editor
        } else {
            Role::Viewer
        };
        out.push(DocumentInfo {
            id: parse(&id)?,
            title,
            challenge_id: challenge.as_deref().map(parse).transpose()?,
            created_by,
            role,
            content,
            last_modified_by: modified_by.as_deref().map(parse).transpose()?,
            updated_at,
        });
    }
    Ok(out)
}

// ---- the CRDT log -------------------------------------------------------------------------

/// Where a document's local copy and its sync stand.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DocState {
    pub snapshot: Option<Vec<u8>>,
    pub snapshot_sv: Option<Vec<u8>>,
    pub upto_log: i64,
    pub server_seq: i64,
    pub snapshot_seq: i64,
    pub rows_since_snapshot: i64,
}

pub fn state(conn: &Connection, document: Uuid) -> Result<Option<DocState>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT snapshot, snapshot_sv, upto_log, server_seq, snapshot_seq, rows_since_snapshot FROM doc_state
             WHERE document_id = ?1",
        )?
        .query_row([document.to_string()], |r| {
            Ok(DocState {
                snapshot: r.get(0)?,
                snapshot_sv: r.get(1)?,
                upto_log: r.get(2)?,
                server_seq: r.get(3)?,
                snapshot_seq: r.get(4)?,
                rows_since_snapshot: r.get(5)?,
            })
        })
        .optional()?)
}

fn ensure_state(conn: &Connection, document: Uuid) -> Result<(), StoreError> {
    conn.prepare_cached("INSERT INTO doc_state (document_id) VALUES (?1) ON CONFLICT DO NOTHING")?
        .execute([document.to_string()])?;
    Ok(())
}

/// Who made a log row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Local,
    Remote,
}

/// Appends packed updates to the document's log; returns the row's sequence number. Local rows
/// start unqueued (the outbox entry comes with the next flush).
pub fn append(conn: &Connection, document: Uuid, origin: Origin, packed: &[u8]) -> Result<i64, StoreError> {
    ensure_state(conn, document)?;
    let (origin, queued) = match origin {
        Origin::Local => ("local", 0),
        Origin::Remote => ("remote", 1),
    };
    conn.prepare_cached("INSERT INTO doc_log (document_id, origin, updates, queued) VALUES (?1, ?2, ?3, ?4)")?
        .execute(params![document.to_string(), origin, packed, queued])?;
    Ok(conn.last_insert_rowid())
}

/// Records server rows integrated up to `seq` (`rows` of them above the known snapshot).
pub fn advance_server(conn: &Connection, document: Uuid, seq: i64, rows: i64) -> Result<(), StoreError> {
    ensure_state(conn, document)?;
    conn.prepare_cached(
        "UPDATE doc_state SET server_seq = max(server_seq, ?2), rows_since_snapshot = rows_since_snapshot + ?3
         WHERE document_id = ?1",
    )?
    .execute(params![document.to_string(), seq, rows])?;
    Ok(())
}

/// A server snapshot covering up to `upto_seq` is known (read or written).
pub fn set_snapshot_seq(conn: &Connection, document: Uuid, upto_seq: i64) -> Result<(), StoreError> {
    ensure_state(conn, document)?;
    conn.prepare_cached(
        "UPDATE doc_state SET rows_since_snapshot = CASE WHEN ?2 > snapshot_seq THEN 0 ELSE rows_since_snapshot END,
             snapshot_seq = max(snapshot_seq, ?2)
         WHERE document_id = ?1",
    )?
    .execute(params![document.to_string(), upto_seq])?;
    Ok(())
}

/// The log rows after `after`, oldest first.
pub fn rows_after(conn: &Connection, document: Uuid, after: i64) -> Result<Vec<(i64, Vec<u8>)>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT seq, updates FROM doc_log WHERE document_id = ?1 AND seq > ?2 ORDER BY seq")?
        .query_map(params![document.to_string(), after], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?)
}

/// Replaces the log up to `upto` by `snapshot` (the encoded state after exactly those rows, with
/// its state vector `sv`). Rows after `upto` — updates that arrived while the snapshot was made —
/// stay, and so do local rows not yet queued for the server (they are still to be sent;
/// replaying them is harmless).
pub fn compact(conn: &Connection, document: Uuid, snapshot: &[u8], sv: &[u8], upto: i64) -> Result<usize, StoreError> {
    ensure_state(conn, document)?;
    let n = conn
        .prepare_cached("DELETE FROM doc_log WHERE document_id = ?1 AND seq <= ?2 AND queued = 1")?
        .execute(params![document.to_string(), upto])?;
    conn.prepare_cached(
        "UPDATE doc_state SET snapshot = ?2, snapshot_sv = ?3, upto_log = ?4 WHERE document_id = ?1 AND upto_log <= ?4",
    )?
    .execute(params![document.to_string(), snapshot, sv, upto])?;
    Ok(n)
}

/// Local rows whose outbox entries do not exist yet, oldest first.
pub fn unqueued(conn: &Connection, document: Uuid) -> Result<Vec<(i64, Vec<u8>)>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT seq, updates FROM doc_log WHERE document_id = ?1 AND queued = 0 ORDER BY seq")?
        .query_map([document.to_string()], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?)
}

pub fn mark_queued(conn: &Connection, seqs: &[i64]) -> Result<(), StoreError> {
    let mut stmt = conn.prepare_cached("UPDATE doc_log SET queued = 1 WHERE seq = ?1")?;
    for s in seqs {
        stmt.execute([s])?;
    }
    Ok(())
}

/// Documents with local edits not yet queued (after a crash, for instance).
pub fn with_unqueued(conn: &Connection) -> Result<Vec<Uuid>, StoreError> {
    let ids: Vec<String> = conn
        .prepare("SELECT DISTINCT document_id FROM doc_log WHERE queued = 0")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(ids.iter().filter_map(|s| Uuid::parse_str(s).ok()).collect())
}

/// Local edits of `document` the server does not have yet: unqueued log rows plus queued
/// outbox entries of its stream.
pub fn pending(conn: &Connection, document: Uuid) -> Result<(u64, u64), StoreError> {
    let unqueued: i64 = conn
        .prepare_cached("SELECT count(*) FROM doc_log WHERE document_id = ?1 AND queued = 0")?
        .query_row([document.to_string()], |r| r.get(0))?;
    let (queued, failed): (i64, i64) = conn
        .prepare_cached(
            "SELECT count(*) FILTER (WHERE state = 'queued'), count(*) FILTER (WHERE state = 'failed')
             FROM outbox WHERE stream = ?1",
        )?
        .query_row([crate::queue::doc_stream(document)], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(((unqueued + queued) as u64, failed as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> Connection {
        let mut conn = Connection::open_in_memory().expect("db");
        crate::store::migrate_for_tests(&mut conn);
        conn
    }

    #[test]
    fn compaction_keeps_rows_after_the_snapshot_and_local_rows_not_yet_queued() {
        let conn = db();
        let doc = Uuid::now_v7();
        let r1 = append(&conn, doc, Origin::Remote, b"r1").expect("append");
        let l2 = append(&conn, doc, Origin::Local, b"l2").expect("append");
        let r3 = append(&conn, doc, Origin::Remote, b"r3").expect("append");
        // The snapshot covers up to r3; then a row arrives while it is written.
        let r4 = append(&conn, doc, Origin::Remote, b"r4").expect("append");
        assert_eq!(compact(&conn, doc, b"snap", b"sv", r3).expect("compact"), 2, "r1 and r3 go");
        let st = state(&conn, doc).expect("state").expect("row");
        assert_eq!(
            (st.snapshot.as_deref(), st.snapshot_sv.as_deref(), st.upto_log),
            (Some(&b"snap"[..]), Some(&b"sv"[..]), r3)
        );
        let left: Vec<i64> = conn
            .prepare("SELECT seq FROM doc_log WHERE document_id = ?1 ORDER BY seq")
            .expect("sql")
            .query_map([doc.to_string()], |r| r.get(0))
            .expect("rows")
            .collect::<Result<_, _>>()
            .expect("rows");
        assert_eq!(left, vec![l2, r4], "the unqueued local row and the later row stay");
        assert_eq!(
            rows_after(&conn, doc, st.upto_log).expect("rows").len(),
            1,
            "only r4 is replayed after the snapshot"
        );
        assert_eq!(unqueued(&conn, doc).expect("unqueued").len(), 1, "l2 is still to be sent");
        // A later snapshot never goes back.
        compact(&conn, doc, b"older", b"sv0", r1).expect("compact");
        assert_eq!(state(&conn, doc).expect("state").expect("row").snapshot.as_deref(), Some(&b"snap"[..]));
        // Sequence numbers are never reused after rows are deleted.
        mark_queued(&conn, &[l2]).expect("queued");
        compact(&conn, doc, b"all", b"sv", r4).expect("compact");
        assert!(append(&conn, doc, Origin::Remote, b"r5").expect("append") > r4);
    }

    #[test]
    fn roles_and_pruning_follow_the_server() {
        let conn = db();
        let (me, other) = (Uuid::now_v7(), Uuid::now_v7());
        let row = |id: Uuid, by: Uuid| DocumentRow {
            id,
            title: "t".into(),
            challenge_id: None,
            created_by: by,
            content: String::new(),
            version: 0,
            last_modified_by: None,
            updated_at: "2026-11-29T10:00:00+00:00".into(),
        };
        let (mine, shared, gone) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        for (d, by) in [(mine, me), (shared, other), (gone, other)] {
            put_document(&conn, &row(d, by)).expect("put");
        }
        let viewer = DocMemberRow { document_id: shared, user_id: me, role: "viewer".into() };
        put_member(&conn, &viewer).expect("member");
        put_member(&conn, &DocMemberRow { document_id: gone, user_id: me, role: "editor".into() }).expect("member");
        assert_eq!(role(&conn, mine, me).expect("role"), Some(Role::Owner));
        assert_eq!(role(&conn, shared, me).expect("role"), Some(Role::Viewer));
        assert_eq!(role(&conn, gone, me).expect("role"), Some(Role::Editor));
        append(&conn, gone, Origin::Remote, b"x").expect("append");
        append(&conn, gone, Origin::Local, b"unsent").expect("append");
        let pruned = prune(&conn, &[mine, shared], std::slice::from_ref(&viewer)).expect("prune");
        assert_eq!(pruned, vec![gone]);
        assert_eq!(role(&conn, gone, me).expect("role"), None);
        assert_eq!(list(&conn, me).expect("list").len(), 2);
        assert_eq!(unqueued(&conn, gone).expect("unqueued").len(), 1, "edits never sent are kept");
    }
}
