//! The queue's rules on a real store, without a server: what enqueue writes, how changes to
//! unsent rows fold, how claims batch and wait, what confirm / fail / discard leave behind.

use std::collections::{BTreeMap, HashSet};

use rusqlite::params;
use uuid::Uuid;

use super::*;
use crate::model::SendState;
use crate::store::{cache, Store, StoreOptions};

struct Fixture {
    _dir: tempfile::TempDir,
    store: Store,
    me: Uuid,
    room: Uuid,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path().join("cache.db"), StoreOptions::default()).await.expect("open");
    let (me, room) = (Uuid::now_v7(), Uuid::now_v7());
    store
        .write(move |tx, _| {
            tx.execute(
                "INSERT INTO rooms (id, name, kind, created_by, created_at) VALUES (?1, 'r', 'channel', ?2, '2026-01-01T00:00:00.000000+00:00')",
                params![room.to_string(), me.to_string()],
            )?;
            tx.execute(
                "INSERT INTO room_members (room_id, user_id, role, joined_at) VALUES (?1, ?2, 'member', '2026-01-01T00:00:00.000000+00:00')",
                params![room.to_string(), me.to_string()],
            )?;
            Ok(())
        })
        .await
        .expect("seed");
    Fixture { _dir: dir, store, me, room }
}

impl Fixture {
    async fn act(&self, action: Action) -> Result<Changes, StoreError> {
        let me = self.me;
        self.store.write(move |tx, inflight| enqueue(tx, inflight, me, action)).await
    }

    async fn send(&self, content: &str) -> Uuid {
        let id = Uuid::now_v7();
        self.act(Action::SendMessage { id, room_id: self.room, content: content.into(), reply_to: None })
            .await
            .expect("send");
        id
    }

    async fn entries(&self) -> Vec<Entry> {
        self.store.read(entry::all).await.expect("entries")
    }

    async fn message(&self, id: Uuid) -> Option<crate::model::Message> {
        self.store.read(move |c| cache::message(c, id)).await.expect("message")
    }

    async fn claim(&self, rows: usize) -> Vec<Batch> {
        self.store
            .write(move |tx, inflight| claim(tx, inflight, ClaimLimits { streams: 8, rows, bytes: 1 << 20 }))
            .await
            .expect("claim")
    }

    async fn confirm(&self, batch: &Batch) {
        let entries = batch.entries.clone();
        let returned: BTreeMap<Uuid, String> = entries
            .iter()
            .filter(|e| e.kind == Kind::SendMessage)
            .filter_map(|e| Uuid::parse_str(&e.target).ok())
            .map(|id| (id, "2026-02-01T00:00:00.000000+00:00".to_string()))
            .collect();
        self.store.write(move |tx, inflight| confirm(tx, inflight, &entries, &returned)).await.expect("confirm");
    }

    async fn inflight(&self) -> HashSet<i64> {
        self.store.call(|db| Ok(db.inflight.clone())).await.expect("inflight")
    }
}

fn content_of(e: &Entry) -> Option<&str> {
    match &e.request {
        Request::Insert { row, .. } => row.get("content").and_then(Value::as_str),
        Request::Update { patch, .. } => patch.get("content").and_then(Value::as_str),
        Request::Delete { .. } => None,
    }
}

#[tokio::test]
async fn a_sent_message_is_a_pending_echo_and_an_entry_committed_together() {
    let f = fixture().await;
    let id = f.send("hello").await;
    let m = f.message(id).await.expect("the echo is in the cache");
    assert_eq!((m.content.as_str(), m.state, m.created_at), ("hello", SendState::Pending, None));
    let entries = f.entries().await;
    assert_eq!(entries.len(), 1);
    assert_eq!((entries[0].kind, entries[0].stream.as_str()), (Kind::SendMessage, room_stream(f.room).as_str()));
    let r =
        f.act(Action::SendMessage { id: Uuid::now_v7(), room_id: f.room, content: "  ".into(), reply_to: None }).await;
    assert!(matches!(r, Err(StoreError::Refused(_))), "blank messages are refused: {r:?}");
    assert_eq!(f.entries().await.len(), 1, "a refused action writes nothing");
}

#[tokio::test]
async fn editing_an_unsent_message_rewrites_the_queued_insert() {
    let f = fixture().await;
    let id = f.send("first").await;
    f.act(Action::EditMessage { id, content: "second".into() }).await.expect("edit");
    let entries = f.entries().await;
    assert_eq!(entries.len(), 1, "no update entry: the server will only see the final text");
    assert_eq!(content_of(&entries[0]), Some("second"));
    let m = f.message(id).await.expect("echo");
    assert_eq!((m.content.as_str(), m.edited_at), ("second", None), "not an edit from the server's point of view");
}

#[tokio::test]
async fn editing_a_message_being_sent_queues_an_update_behind_the_insert() {
    let f = fixture().await;
    let id = f.send("first").await;
    let claimed = f.claim(10).await;
    assert_eq!(claimed.len(), 1);
    f.act(Action::EditMessage { id, content: "second".into() }).await.expect("edit");
    f.act(Action::EditMessage { id, content: "third".into() }).await.expect("edit again");
    let entries = f.entries().await;
    assert_eq!(entries.iter().map(|e| e.kind).collect::<Vec<_>>(), vec![Kind::SendMessage, Kind::EditMessage]);
    assert_eq!(content_of(&entries[0]), Some("first"), "the claimed insert is never rewritten");
    assert_eq!(content_of(&entries[1]), Some("third"), "the queued edit absorbed the second edit");
    f.confirm(&claimed[0]).await;
    let m = f.message(id).await.expect("echo");
    assert_eq!((m.content.as_str(), m.state), ("third", SendState::Pending), "the edit is still pending");
}

#[tokio::test]
async fn deleting_an_unsent_message_drops_it_its_edits_and_its_reactions() {
    let f = fixture().await;
    let keep = f.send("keep").await;
    let id = f.send("oops").await;
    f.act(Action::React { message_id: id, emoji: "👍".into() }).await.expect("react");
    f.act(Action::DeleteMessage { id }).await.expect("delete");
    assert!(f.message(id).await.is_none(), "the echo is gone");
    let entries = f.entries().await;
    assert_eq!(entries.len(), 1, "only the other message remains queued");
    assert_eq!(entries[0].target, keep.to_string());
}

#[tokio::test]
async fn deleting_a_sent_message_queues_a_soft_delete_and_empties_the_echo() {
    let f = fixture().await;
    let id = f.send("to delete").await;
    let b = f.claim(10).await;
    f.confirm(&b[0]).await;
    f.act(Action::DeleteMessage { id }).await.expect("delete");
    let m = f.message(id).await.expect("soft-deleted rows stay");
    assert!(m.deleted_at.is_some() && m.content.is_empty());
    assert_eq!(m.state, SendState::Pending);
    let e = f.entries().await;
    assert!(matches!(&e[0].request, Request::Update { patch, .. } if patch.contains_key("deleted_at")));
    let r = f.act(Action::EditMessage { id, content: "x".into() }).await;
    assert!(matches!(r, Err(StoreError::Refused(_))), "a deleted message cannot be edited");
}

#[tokio::test]
async fn reacting_then_unreacting_before_sending_cancels_out() {
    let f = fixture().await;
    let id = f.send("hi").await;
    let b = f.claim(10).await;
    f.confirm(&b[0]).await;
    f.act(Action::React { message_id: id, emoji: "🎉".into() }).await.expect("react");
    let m = f.message(id).await.expect("m");
    assert_eq!(m.reactions.len(), 1);
    assert!(m.reactions[0].pending);
    assert_eq!(m.state, SendState::Sent, "a pending reaction does not make the message pending");
    f.act(Action::Unreact { message_id: id, emoji: "🎉".into() }).await.expect("unreact");
    assert!(f.entries().await.is_empty(), "the server never hears of it");
    assert!(f.message(id).await.expect("m").reactions.is_empty());
}

#[tokio::test]
async fn a_reaction_to_an_unsent_message_waits_behind_its_insert() {
    let f = fixture().await;
    let id = f.send("hi").await;
    f.act(Action::React { message_id: id, emoji: "👍".into() }).await.expect("react");
    let batches = f.claim(10).await;
    assert_eq!(batches.len(), 1, "one stream, one batch");
    assert_eq!(batches[0].entries.len(), 1, "a message insert and a reaction insert go in separate requests");
    assert_eq!(batches[0].entries[0].kind, Kind::SendMessage);
    assert!(f.claim(10).await.is_empty(), "nothing else of the stream while its head is in flight");
}

#[tokio::test]
async fn mark_read_moves_a_queued_marker_forward_instead_of_queueing_another() {
    let f = fixture().await;
    let room = f.room;
    f.act(Action::MarkRead { room_id: room, at: "2026-03-01T00:00:00Z".into() }).await.expect("first");
    f.act(Action::MarkRead { room_id: room, at: "2026-03-02T00:00:00Z".into() }).await.expect("second");
    f.act(Action::MarkRead { room_id: room, at: "2026-02-01T00:00:00Z".into() }).await.expect("older: no-op");
    let e = f.entries().await;
    assert_eq!(e.len(), 1);
    assert!(matches!(&e[0].request, Request::Update { patch, .. }
        if patch.get("last_read_at").and_then(Value::as_str) == Some("2026-03-02T00:00:00.000000+00:00")));
}

#[tokio::test]
async fn claims_batch_consecutive_inserts_per_stream_and_a_failed_head_holds_only_its_stream() {
    let f = fixture().await;
    let other = Uuid::now_v7();
    let me = f.me;
    f.store
        .write(move |tx, _| {
            tx.execute(
                "INSERT INTO room_members (room_id, user_id, role, joined_at) VALUES (?1, ?2, 'member', '2026-01-01T00:00:00.000000+00:00')",
                params![other.to_string(), me.to_string()],
            )?;
            Ok(())
        })
        .await
        .expect("second room");
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(f.send(&format!("m{i}")).await);
    }
    let o = Uuid::now_v7();
    f.act(Action::SendMessage { id: o, room_id: other, content: "other".into(), reply_to: None }).await.expect("o");
    let batches = f.claim(3).await;
    assert_eq!(batches.len(), 2, "one batch per stream");
    assert_eq!(batches[0].entries.len(), 3, "row limit");
    assert_eq!(f.inflight().await.len(), 4);
    // The first room's batch is refused for good: its head fails, the rest goes back.
    let head = batches[0].entries[0].clone();
    let rest: Vec<Entry> = batches[0].entries[1..].to_vec();
    let err = EntryError { status: Some(403), code: Some("42501".into()), message: "row-level security".into() };
    f.store
        .write(move |tx, inflight| {
            fail(tx, inflight, &head, &err)?;
            release(tx, inflight, &rest, false)?;
            Ok(())
        })
        .await
        .expect("settle");
    f.confirm(&batches[1]).await;
    assert!(f.claim(10).await.is_empty(), "the first room waits behind its failed head; the other is done");
    assert_eq!(f.message(ids[0]).await.expect("m").state, SendState::Failed);
    assert_eq!(f.message(ids[1]).await.expect("m").state, SendState::Pending);
    assert_eq!(f.message(o).await.expect("m").state, SendState::Sent);
    assert_eq!(f.store.read(counts).await.expect("counts"), QueueCounts { queued: 4, failed: 1 });
    // Retry puts it back at the head.
    let seq = f.entries().await[0].seq;
    f.store.write(move |tx, _| retry(tx, seq)).await.expect("retry");
    let again = f.claim(10).await;
    assert_eq!(again[0].entries.len(), 5, "the whole stream in one batch");
}

#[tokio::test]
async fn discarding_a_failed_message_removes_its_echo_and_what_depended_on_it() {
    let f = fixture().await;
    let id = f.send("refused").await;
    let b = f.claim(10).await;
    let head = b[0].entries[0].clone();
    let err = EntryError { status: Some(403), code: Some("42501".into()), message: "no".into() };
    f.store.write(move |tx, inflight| fail(tx, inflight, &head, &err)).await.expect("fail");
    f.act(Action::React { message_id: id, emoji: "👍".into() }).await.expect("react behind it");
    f.act(Action::EditMessage { id, content: "edited while failed".into() }).await.expect("edit folds");
    let seq = f.entries().await[0].seq;
    f.store.write(move |tx, inflight| discard(tx, inflight, seq)).await.expect("discard");
    assert!(f.entries().await.is_empty());
    assert!(f.message(id).await.is_none());
}

#[tokio::test]
async fn discarding_an_edit_restores_the_previous_text_and_a_claimed_entry_cannot_be_discarded() {
    let f = fixture().await;
    let id = f.send("original").await;
    let b = f.claim(10).await;
    f.confirm(&b[0]).await;
    f.act(Action::EditMessage { id, content: "changed".into() }).await.expect("edit");
    let seq = f.entries().await[0].seq;
    let claimed = f.claim(10).await;
    let r = f.store.write(move |tx, inflight| discard(tx, inflight, seq)).await;
    assert!(matches!(r, Err(StoreError::Refused(_))), "in flight: {r:?}");
    let entries = claimed[0].entries.clone();
    f.store.write(move |tx, inflight| release(tx, inflight, &entries, true)).await.expect("release");
    f.store.write(move |tx, inflight| discard(tx, inflight, seq)).await.expect("discard");
    let m = f.message(id).await.expect("m");
    assert_eq!((m.content.as_str(), m.edited_at, m.state), ("original", None, SendState::Sent));
}

#[tokio::test]
async fn a_server_copy_does_not_overwrite_a_local_edit_that_is_still_queued() {
    let f = fixture().await;
    let id = f.send("v1").await;
    let b = f.claim(10).await;
    f.confirm(&b[0]).await;
    f.act(Action::EditMessage { id, content: "v2 local".into() }).await.expect("edit");
    let row = cache::MessageRow {
        id,
        room_id: f.room,
        user_id: f.me,
        content: "v1".into(),
        kind: "text".into(),
        reply_to: None,
        edited_at: None,
        deleted_at: None,
        created_at: "2026-02-01T00:00:00.000000+00:00".into(),
    };
    f.store.write(move |tx, _| cache::merge_message(tx, &row)).await.expect("merge");
    assert_eq!(f.message(id).await.expect("m").content, "v2 local");
}
