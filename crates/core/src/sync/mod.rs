//! Bringing the cache up to date through REST, and the entry point for Realtime.
//!
//! "Realtime is a hint, REST is the record" (DESIGN.md): Realtime does not replay what was
//! missed while disconnected, so after every (re)connect the engine calls [`Mirror::catch_up`],
//! which reads each stream from its **cursor** (the newest server time seen, kept in
//! `sync_cursors`) minus an **overlap window**, and merges what comes back by key:
//! - rooms and the user's memberships (with read markers) are read whole — they are few — and
//!   memberships the server no longer lists are dropped;
//! - messages of each room the user belongs to: rows created since the cursor (keyset pages
//!   in `(created_at, id)` order); then rows edited or deleted since the edit cursor. The
//!   server stamps `created_at`, but `edited_at` / `deleted_at` are written by the editing
//!   client, so the edit scan uses a wider window ([`SyncOptions::edit_overlap`]) against
//!   clock skew; the reactions of the newest cached messages are re-read whole, which also
//!   catches reactions removed while offline;
//! - challenges and submissions by `updated_at` (server-stamped), activity by `created_at`.
//!
//! Merging is by id ([`crate::store::cache`]): the server's copy of a message the user sent
//! replaces the local echo's missing server time (pending → sent), a row with a queued local
//! change keeps the local version, and an older copy never overwrites a newer one. Cursors
//! only ever move forward, and only REST moves them: a Realtime delivery
//! ([`Mirror::apply_remote`]) updates the cache but not the cursor, since the socket may have
//! missed the rows before it.
//!
//! Failure modes: any REST error aborts the catch-up with [`SyncError`]; what was merged so
//! far stays (each page is its own transaction, cursors advance per page), so the next
//! attempt resumes rather than restarts. Without a session nothing is read (an anonymous read
//! would see no private rows and prune the memberships).
//!
//! Known limit: a room that received more messages than the cache wants while offline is still
//! read forward from its cursor in full (no "jump to the latest page and leave a gap" yet).

use std::time::Duration;

use ruwad_supabase::auth::Auth;
use ruwad_supabase::rest::{Cond, Order, Rest, RestError};
use ruwad_supabase::Project;
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use crate::docs::local::{self as doc_local, DocMemberRow, DocumentRow};
use crate::events::{Changes, Sink};
use crate::model::{MessagePage, Profile};
use crate::notify;
use crate::store::cache::{
    self, ActivityRow, Anchor, ChallengeRow, MemberRow, MessageRow, ProfileRow, ReactionRow, RoomRow, SubmissionRow,
};
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("not signed in")]
    NotSignedIn,
    #[error(transparent)]
    Rest(#[from] RestError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("unexpected {table} row from the server: {message}")]
    Row { table: String, message: String },
}

impl SyncError {
    /// The server's `Retry-After`, for a transient REST failure that carried one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            SyncError::Rest(e) => e.retry_after(),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct SyncOptions {
    /// How far before the cursor catch-up reads again (server-stamped times).
    pub overlap: Duration,
    /// How far before the edit cursor the edit scan reads again (client-stamped times).
    pub edit_overlap: Duration,
    /// Rows per REST page.
    pub page: u32,
    /// Messages read when a room is first synced.
    pub initial_messages: u32,
    /// How many of the newest messages of a room get their reactions re-read.
    pub reaction_window: u32,
}

impl Default for SyncOptions {
    fn default() -> SyncOptions {
        SyncOptions {
            overlap: Duration::from_secs(60),
            edit_overlap: Duration::from_secs(600),
            page: 500,
            initial_messages: 50,
            reaction_window: 100,
        }
    }
}

/// A row change pushed by the server (Realtime's postgres_changes), as the realtime client
/// hands it over.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteChange {
    pub table: String,
    pub kind: RemoteKind,
    /// The new row (insert, update).
    pub record: Option<Value>,
    /// The old row, or at least its key (delete).
    pub old_record: Option<Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteKind {
    Insert,
    Update,
    Delete,
}

/// Catch-up and remote changes for one signed-in user.
#[derive(Clone)]
pub struct Mirror {
    pub store: Store,
    pub auth: Auth,
    pub project: Project,
    pub me: Uuid,
    pub sink: Sink,
    pub options: SyncOptions,
}

/// The cursor of a stream whose whole history the cache holds.
const EPOCH: &str = "1970-01-01T00:00:00.000000+00:00";

fn messages_stream(room: Uuid) -> String {
    format!("messages:{room}")
}

fn edits_stream(room: Uuid) -> String {
    format!("edits:{room}")
}

impl Mirror {
    async fn rest(&self) -> Result<Rest, SyncError> {
        let token = self.auth.access_token().await.ok_or(SyncError::NotSignedIn)?;
        Ok(Rest::with_bearer(self.project.clone(), token))
    }

    /// Catches every stream up (see the module doc).
    pub async fn catch_up(&self) -> Result<(), SyncError> {
        let rest = self.rest().await?;
        let rooms = self.catch_up_rooms(&rest).await?;
        for room in rooms {
            self.catch_up_room_with(&rest, room).await?;
        }
        self.catch_up_challenges(&rest).await?;
        self.catch_up_submissions(&rest).await?;
        self.catch_up_activity(&rest).await?;
        self.catch_up_documents(&rest).await?;
        Ok(())
    }

    /// Document metadata: every document the user may see and the memberships of those
    /// (few: read whole). Documents no longer visible are forgotten, with their local copy
    /// (see [`crate::docs::local::prune`]). The CRDT updates are caught up by
    /// [`crate::docs`].
    pub async fn catch_up_documents(&self, rest: &Rest) -> Result<Vec<Uuid>, SyncError> {
        let docs: Vec<DocumentRow> =
            read_all(rest, "collaborative_documents", self.options.page, |q| q.order("id", Order::Asc)).await?;
        let ids: Vec<Uuid> = docs.iter().map(|d| d.id).collect();
        let members: Vec<DocMemberRow> = if ids.is_empty() {
            Vec::new()
        } else {
            let wanted = ids.clone();
            read_all(rest, "document_members", self.options.page, move |q| {
                q.in_("document_id", wanted.iter()).order("document_id", Order::Asc).order("user_id", Order::Asc)
            })
            .await?
        };
        let (changes, gone) = self
            .store
            .write(move |tx, _| {
                let mut changes = Changes::default();
                for d in &docs {
                    if doc_local::put_document(tx, d)? {
                        changes.documents.insert(d.id);
                    }
                }
                for m in &members {
                    if doc_local::put_member(tx, m)? {
                        changes.documents.insert(m.document_id);
                    }
                }
                let gone = doc_local::prune(tx, &ids, &members)?;
                changes.documents.extend(gone.iter().copied());
                Ok((changes, gone))
            })
            .await?;
        self.sink.send(changes);
        Ok(gone)
    }

    /// Rooms, the user's memberships, the members and profiles of their rooms. Returns the
    /// rooms the user belongs to.
    pub async fn catch_up_rooms(&self, rest: &Rest) -> Result<Vec<Uuid>, SyncError> {
        let rooms: Vec<RoomRow> =
            read_all(rest, "chat_rooms", self.options.page, |q| q.order("id", Order::Asc)).await?;
        let me = self.me;
        let mine: Vec<MemberRow> =
            read_all(rest, "room_members", self.options.page, |q| q.eq("user_id", me).order("room_id", Order::Asc))
                .await?;
        let my_rooms: Vec<Uuid> = mine.iter().map(|m| m.room_id).collect();
        let members: Vec<MemberRow> = if my_rooms.is_empty() {
            Vec::new()
        } else {
            let ids = my_rooms.clone();
            read_all(rest, "room_members", self.options.page, move |q| {
                q.in_("room_id", ids.iter()).order("room_id", Order::Asc).order("user_id", Order::Asc)
            })
            .await?
        };
        let mut people: Vec<Uuid> = members.iter().map(|m| m.user_id).collect();
        people.push(me);
        people.sort();
        people.dedup();
        let profiles: Vec<ProfileRow> =
            read_all(rest, "profiles", self.options.page, move |q| q.in_("id", people.iter()).order("id", Order::Asc))
                .await?;
        let keep = my_rooms.clone();
        let changes = self
            .store
            .write(move |tx, _| {
                let mut changes = Changes::default();
                for r in &rooms {
                    if cache::put_room(tx, r)? {
                        changes.rooms.insert(r.id);
                    }
                }
                for m in mine.iter().chain(members.iter()) {
                    if cache::put_member(tx, m)? {
                        changes.rooms.insert(m.room_id);
                    }
                }
                changes.rooms.extend(cache::prune_memberships(tx, me, &keep)?);
                for p in &profiles {
                    cache::put_profile(tx, p)?;
                }
                Ok(changes)
            })
            .await?;
        self.sink.send(changes);
        Ok(my_rooms)
    }

    /// Catches one room up (messages, edits, reactions).
    pub async fn catch_up_room(&self, room: Uuid) -> Result<(), SyncError> {
        let rest = self.rest().await?;
        self.catch_up_room_with(&rest, room).await
    }

    async fn catch_up_room_with(&self, rest: &Rest, room: Uuid) -> Result<(), SyncError> {
        let stream = messages_stream(room);
        let edits = edits_stream(room);
        let (cursor, edit_cursor) = {
            let (s, e) = (stream.clone(), edits.clone());
            self.store.read(move |c| Ok((cache::cursor(c, &s)?, cache::cursor(c, &e)?))).await?
        };
        match cursor {
            None => {
                // First sync of this room: the newest page only; older history loads on demand.
                let limit = self.options.initial_messages;
                let rows: Vec<MessageRow> = rest
                    .from("chat_messages")
                    .select("*")
                    .eq("room_id", room)
                    .order("created_at", Order::Desc)
                    .order("id", Order::Desc)
                    .limit(u64::from(limit))
                    .execute()
                    .await?;
                let complete = (rows.len() as u32) < limit;
                // An empty room's history is complete: later catch-ups read it from the start.
                let newest = rows.first().map(|r| r.created_at.clone()).or_else(|| complete.then(|| EPOCH.to_string()));
                self.store_messages(room, rows, newest.clone(), complete).await?;
                if let Some(newest) = newest {
                    let e = edits.clone();
                    self.store.write(move |tx, _| cache::advance_cursor(tx, &e, &newest)).await?;
                }
            }
            Some(cursor) => {
                let mut since = crate::time::minus(&cursor, self.options.overlap);
                let mut after: Option<Uuid> = None;
                loop {
                    let mut q = rest.from("chat_messages").select("*").eq("room_id", room);
                    q = match after {
                        None => q.gte("created_at", &since),
                        Some(id) => q.or([
                            Cond::gt("created_at", &since),
                            Cond::and([Cond::eq("created_at", &since), Cond::gt("id", id)]),
                        ]),
                    };
                    let rows: Vec<MessageRow> = q
                        .order("created_at", Order::Asc)
                        .order("id", Order::Asc)
                        .limit(u64::from(self.options.page))
                        .execute()
                        .await?;
                    let full = rows.len() as u32 == self.options.page;
                    let last = rows.last().map(|r| (r.created_at.clone(), r.id));
                    self.store_messages(room, rows, last.as_ref().map(|l| l.0.clone()), false).await?;
                    match (full, last) {
                        (true, Some((at, id))) => {
                            since = at;
                            after = Some(id);
                        }
                        _ => break,
                    }
                }
                self.catch_up_edits(rest, room, edit_cursor.unwrap_or(cursor)).await?;
            }
        }
        self.refresh_reactions(rest, room).await
    }

    async fn catch_up_edits(&self, rest: &Rest, room: Uuid, edit_cursor: String) -> Result<(), SyncError> {
        let since = crate::time::minus(&edit_cursor, self.options.edit_overlap);
        let mut offset = 0u64;
        loop {
            let rows: Vec<MessageRow> = rest
                .from("chat_messages")
                .select("*")
                .eq("room_id", room)
                .or([Cond::gte("edited_at", &since), Cond::gte("deleted_at", &since)])
                .order("id", Order::Asc)
                .range(offset, offset + u64::from(self.options.page) - 1)
                .execute()
                .await?;
            let n = rows.len() as u64;
            let newest = rows.iter().flat_map(|r| [r.edited_at.clone(), r.deleted_at.clone()]).flatten().max();
            let edits = edits_stream(room);
            let changes = self
                .store
                .write(move |tx, _| {
                    let mut changes = Changes::default();
                    for r in &rows {
                        if cache::merge_message(tx, r)? {
                            changes.message(r.room_id, r.id);
                        }
                    }
                    if let Some(newest) = &newest {
                        cache::advance_cursor(tx, &edits, newest)?;
                    }
                    Ok(changes)
                })
                .await?;
            self.sink.send(changes);
            if n < u64::from(self.options.page) {
                return Ok(());
            }
            offset += n;
        }
    }

    /// Merges a page of messages and moves the room's cursor to `newest`.
    async fn store_messages(
        &self,
        room: Uuid,
        rows: Vec<MessageRow>,
        newest: Option<String>,
        complete: bool,
    ) -> Result<(), SyncError> {
        let stream = messages_stream(room);
        let changes = self
            .store
            .write(move |tx, _| {
                let mut changes = Changes::default();
                for r in &rows {
                    if r.room_id != room {
                        return Err(StoreError::Corrupt(format!("message {} is not in room {room}", r.id)));
                    }
                    if cache::merge_message(tx, r)? {
                        changes.message(room, r.id);
                    }
                }
                if let Some(newest) = &newest {
                    cache::advance_cursor(tx, &stream, newest)?;
                }
                if complete {
                    cache::set_history_complete(tx, room)?;
                }
                Ok(changes)
            })
            .await?;
        self.sink.send(changes);
        Ok(())
    }

    async fn refresh_reactions(&self, rest: &Rest, room: Uuid) -> Result<(), SyncError> {
        let window = self.options.reaction_window;
        let ids = self.store.read(move |c| cache::recent_message_ids(c, room, window)).await?;
        if ids.is_empty() {
            return Ok(());
        }
        let wanted = ids.clone();
        let rows: Vec<ReactionRow> = read_all(rest, "message_reactions", self.options.page, move |q| {
            q.in_("message_id", wanted.iter())
                .order("message_id", Order::Asc)
                .order("user_id", Order::Asc)
                .order("emoji", Order::Asc)
        })
        .await?;
        let changes = self
            .store
            .write(move |tx, _| {
                let mut changes = Changes::default();
                for id in cache::replace_reactions(tx, &ids, &rows)? {
                    changes.message(room, id);
                }
                Ok(changes)
            })
            .await?;
        self.sink.send(changes);
        Ok(())
    }

    async fn catch_up_challenges(&self, rest: &Rest) -> Result<(), SyncError> {
        self.by_updated_at(rest, "challenges", |tx, rows: &[ChallengeRow], changes, me, news| {
            for r in rows {
                let merged = cache::put_challenge(tx, r)?;
                if merged.changed() {
                    changes.challenges.insert(r.id);
                    changes.notices.extend(notify::for_challenge(tx, me, news, &merged, r)?);
                }
            }
            Ok(rows.last().map(|r| (r.updated_at.clone(), r.id)))
        })
        .await
    }

    async fn catch_up_submissions(&self, rest: &Rest) -> Result<(), SyncError> {
        self.by_updated_at(rest, "challenge_submissions", |tx, rows: &[SubmissionRow], changes, me, news| {
            for r in rows {
                let merged = cache::merge_submission(tx, r)?;
                if merged.changed() {
                    changes.submission(r.challenge_id, r.id);
                    changes.notices.extend(notify::for_submission(tx, me, news, &merged, r)?);
                }
            }
            Ok(rows.last().map(|r| (r.updated_at.clone(), r.id)))
        })
        .await
    }

    /// Keyset pages of `table` by `(updated_at, id)` from the table's cursor minus the overlap.
    async fn by_updated_at<R, F>(&self, rest: &Rest, table: &'static str, apply: F) -> Result<(), SyncError>
    where
        R: for<'de> Deserialize<'de> + Send + 'static,
        F: Fn(&rusqlite::Transaction<'_>, &[R], &mut Changes, Uuid, bool) -> Result<Option<(String, Uuid)>, StoreError>
            + Send
            + Sync
            + Copy
            + 'static,
    {
        let stream = table.to_string();
        let cursor = {
            let s = stream.clone();
            self.store.read(move |c| cache::cursor(c, &s)).await?
        };
        // Rows found by a stream's first catch-up are what exists, not news.
        let news = cursor.is_some();
        let me = self.me;
        let mut since = cursor.map(|c| crate::time::minus(&c, self.options.overlap));
        let mut after: Option<Uuid> = None;
        loop {
            let mut q = rest.from(table).select("*");
            q = match (&since, after) {
                (None, _) => q,
                (Some(s), None) => q.gte("updated_at", s),
                (Some(s), Some(id)) => {
                    q.or([Cond::gt("updated_at", s), Cond::and([Cond::eq("updated_at", s), Cond::gt("id", id)])])
                }
            };
            let rows: Vec<R> = q
                .order("updated_at", Order::Asc)
                .order("id", Order::Asc)
                .limit(u64::from(self.options.page))
                .execute()
                .await?;
            let full = rows.len() as u32 == self.options.page;
            let s = stream.clone();
            let (changes, last) = self
                .store
                .write(move |tx, _| {
                    let mut changes = Changes::default();
                    let last = apply(tx, &rows, &mut changes, me, news)?;
                    match &last {
                        Some((at, _)) => cache::advance_cursor(tx, &s, at)?,
                        // An empty table: later rows are news, read from the start.
                        None if !news => cache::advance_cursor(tx, &s, EPOCH)?,
                        None => {}
                    }
                    Ok((changes, last))
                })
                .await?;
            self.sink.send(changes);
            match (full, last) {
                (true, Some((at, id))) => {
                    since = Some(at);
                    after = Some(id);
                }
                _ => return Ok(()),
            }
        }
    }

    async fn catch_up_activity(&self, rest: &Rest) -> Result<(), SyncError> {
        let last = self.store.read(|c| cache::cursor(c, "activity")).await?;
        let rows: Vec<ActivityRow> = match last {
            None => rest.from("user_activities").select("*").order("id", Order::Desc).limit(200).execute().await?,
            Some(at) => {
                let since = crate::time::minus(&at, self.options.overlap);
                rest.from("user_activities")
                    .select("*")
                    .gte("created_at", since)
                    .order("id", Order::Asc)
                    .limit(u64::from(self.options.page) * 4)
                    .execute()
                    .await?
            }
        };
        let changes = self
            .store
            .write(move |tx, _| {
                let mut changes = Changes::default();
                for r in &rows {
                    changes.activity |= cache::put_activity(tx, r)?;
                }
                if let Some(newest) = rows.iter().map(|r| r.created_at.clone()).max() {
                    cache::advance_cursor(tx, "activity", &newest)?;
                }
                Ok(changes)
            })
            .await?;
        self.sink.send(changes);
        Ok(())
    }

    /// A page of history: from the cache, then — when the cache has fewer than `limit` older
    /// messages and does not know the history is complete — the gap from the server.
    pub async fn history(&self, room: Uuid, before: Option<Anchor>, limit: u32) -> Result<MessagePage, SyncError> {
        let b = before.clone();
        let page = self.store.read(move |c| cache::history(c, room, b.as_ref(), limit)).await?;
        let sent = page.messages.iter().filter(|m| m.created_at.is_some()).count() as u32;
        if sent >= limit || page.complete {
            return Ok(page);
        }
        let complete = self.store.read(move |c| cache::history_complete(c, room)).await?;
        if complete {
            return Ok(page);
        }
        // Older than the oldest message we hold for this page (or than `before`).
        let oldest = page
            .messages
            .iter()
            .find(|m| m.created_at.is_some())
            .map(|m| Anchor { created_at: m.created_at.clone().unwrap_or_default(), id: m.id });
        let anchor = match (oldest, before.clone()) {
            (Some(a), _) => Some(a),
            (None, Some(b)) => Some(b),
            (None, None) => None,
        };
        let want = limit - sent;
        let rest = self.rest().await?;
        let mut q = rest.from("chat_messages").select("*").eq("room_id", room);
        if let Some(a) = &anchor {
            q = q.or([
                Cond::lt("created_at", &a.created_at),
                Cond::and([Cond::eq("created_at", &a.created_at), Cond::lt("id", a.id)]),
            ]);
        }
        let rows: Vec<MessageRow> =
            q.order("created_at", Order::Desc).order("id", Order::Desc).limit(u64::from(want)).execute().await?;
        let complete = (rows.len() as u32) < want;
        let newest = if anchor.is_none() { rows.first().map(|r| r.created_at.clone()) } else { None };
        self.store_messages(room, rows, newest, complete).await?;
        Ok(self.store.read(move |c| cache::history(c, room, before.as_ref(), limit)).await?)
    }

    /// The profiles of `ids` (each at most once, in the order asked): the cached ones, and the
    /// rest asked from the server and cached. Offline, or when the server cannot be asked, only
    /// what the cache holds: display names are never worth an error. Ids without a profile
    /// anywhere are left out.
    pub async fn profiles(&self, ids: Vec<Uuid>) -> Result<Vec<Profile>, SyncError> {
        let mut ids = ids;
        let mut seen = std::collections::HashSet::new();
        ids.retain(|id| seen.insert(*id));
        let asked = ids.clone();
        let cached: Vec<Option<Profile>> =
            self.store.read(move |c| asked.iter().map(|id| cache::profile(c, *id)).collect()).await?;
        let missing: Vec<Uuid> = ids.iter().zip(&cached).filter(|(_, p)| p.is_none()).map(|(id, _)| *id).collect();
        let mut found: std::collections::HashMap<Uuid, Profile> =
            cached.into_iter().flatten().map(|p| (p.id, p)).collect();
        if !missing.is_empty() {
            match self.fetch_profiles(missing).await {
                Ok(rows) => {
                    let stored = rows.clone();
                    self.store
                        .write(move |tx, _| {
                            for p in &stored {
                                cache::put_profile(tx, p)?;
                            }
                            Ok(())
                        })
                        .await?;
                    for r in rows {
                        found.insert(
                            r.id,
                            Profile {
                                id: r.id,
                                display_name: r.display_name,
                                avatar_url: r.avatar_url,
                                locale: r.locale,
                            },
                        );
                    }
                }
                Err(e) => tracing::debug!(error = %e, "profiles: answering from the cache only"),
            }
        }
        Ok(ids.into_iter().filter_map(|id| found.remove(&id)).collect())
    }

    async fn fetch_profiles(&self, ids: Vec<Uuid>) -> Result<Vec<ProfileRow>, SyncError> {
        let rest = self.rest().await?;
        read_all(&rest, "profiles", self.options.page, move |q| q.in_("id", ids.iter()).order("id", Order::Asc)).await
    }

    /// Applies a row change pushed by the server (Realtime). Unknown tables are ignored.
    pub async fn apply_remote(&self, change: RemoteChange) -> Result<(), SyncError> {
        let me = self.me;
        let changes = self.store.write(move |tx, _| apply_change(tx, me, &change)).await?;
        self.sink.send(changes);
        Ok(())
    }
}

fn row<T: for<'de> Deserialize<'de>>(table: &str, v: &Option<Value>) -> Result<Option<T>, StoreError> {
    match v {
        None => Ok(None),
        Some(v) => serde_json::from_value(v.clone())
            .map(Some)
            .map_err(|e| StoreError::Corrupt(format!("{table} row from the server: {e}"))),
    }
}

fn apply_change(tx: &rusqlite::Transaction<'_>, me: Uuid, c: &RemoteChange) -> Result<Changes, StoreError> {
    let mut changes = Changes::default();
    let t = c.table.as_str();
    match (t, c.kind) {
        ("chat_messages", RemoteKind::Insert | RemoteKind::Update) => {
            if let Some(r) = row::<MessageRow>(t, &c.record)? {
                if cache::merge_message(tx, &r)? {
                    changes.message(r.room_id, r.id);
                }
            }
        }
        ("message_reactions", RemoteKind::Insert) => {
            if let Some(r) = row::<ReactionRow>(t, &c.record)? {
                if cache::put_reaction(tx, &r)? {
                    if let Some(m) = cache::message(tx, r.message_id)? {
                        changes.message(m.room_id, m.id);
                    }
                }
            }
        }
        ("message_reactions", RemoteKind::Delete) => {
            #[derive(Deserialize)]
            struct Key {
                message_id: Uuid,
                user_id: Uuid,
                emoji: String,
            }
            if let Some(k) = row::<Key>(t, &c.old_record)? {
                if cache::remove_reaction(tx, k.message_id, k.user_id, &k.emoji)? {
                    if let Some(m) = cache::message(tx, k.message_id)? {
                        changes.message(m.room_id, m.id);
                    }
                }
            }
        }
        ("chat_rooms", RemoteKind::Insert | RemoteKind::Update) => {
            if let Some(r) = row::<RoomRow>(t, &c.record)? {
                if cache::put_room(tx, &r)? {
                    changes.rooms.insert(r.id);
                }
            }
        }
        ("room_members", RemoteKind::Insert | RemoteKind::Update) => {
            if let Some(r) = row::<MemberRow>(t, &c.record)? {
                if cache::put_member(tx, &r)? {
                    changes.rooms.insert(r.room_id);
                }
            }
        }
        ("challenges", RemoteKind::Insert | RemoteKind::Update) => {
            if let Some(r) = row::<ChallengeRow>(t, &c.record)? {
                let merged = cache::put_challenge(tx, &r)?;
                if merged.changed() {
                    changes.challenges.insert(r.id);
                    changes.notices.extend(notify::for_challenge(tx, me, true, &merged, &r)?);
                }
            }
        }
        ("challenge_submissions", RemoteKind::Insert | RemoteKind::Update) => {
            if let Some(r) = row::<SubmissionRow>(t, &c.record)? {
                let merged = cache::merge_submission(tx, &r)?;
                if merged.changed() {
                    changes.submission(r.challenge_id, r.id);
                    changes.notices.extend(notify::for_submission(tx, me, true, &merged, &r)?);
                }
            }
        }
        ("profiles", RemoteKind::Insert | RemoteKind::Update) => {
            if let Some(r) = row::<ProfileRow>(t, &c.record)? {
                cache::put_profile(tx, &r)?;
            }
        }
        ("collaborative_documents", RemoteKind::Insert | RemoteKind::Update) => {
            if let Some(d) = row::<DocumentRow>(t, &c.record)? {
                if doc_local::put_document(tx, &d)? {
                    changes.documents.insert(d.id);
                }
            }
        }
        ("document_members", RemoteKind::Insert | RemoteKind::Update) => {
            if let Some(m) = row::<DocMemberRow>(t, &c.record)? {
                if doc_local::put_member(tx, &m)? {
                    changes.documents.insert(m.document_id);
                }
            }
        }
        ("document_members", RemoteKind::Delete) => {
            #[derive(Deserialize)]
            struct Key {
                document_id: Uuid,
                user_id: Uuid,
            }
            if let Some(k) = row::<Key>(t, &c.old_record)? {
                if doc_local::remove_member(tx, k.document_id, k.user_id)? {
                    changes.documents.insert(k.document_id);
                }
            }
        }
        ("user_activities", RemoteKind::Insert) => {
            if let Some(r) = row::<ActivityRow>(t, &c.record)? {
                changes.activity |= cache::put_activity(tx, &r)?;
            }
        }
        _ => {}
    }
    Ok(changes)
}

/// Reads every row of a query in pages of `page` (offset paging; for small sets).
async fn read_all<T, F>(rest: &Rest, table: &str, page: u32, shape: F) -> Result<Vec<T>, SyncError>
where
    T: for<'de> Deserialize<'de>,
    F: Fn(ruwad_supabase::rest::Query) -> ruwad_supabase::rest::Query,
{
    let mut out = Vec::new();
    let mut offset = 0u64;
    loop {
        let rows: Vec<T> =
            shape(rest.from(table).select("*")).range(offset, offset + u64::from(page) - 1).execute().await?;
        let n = rows.len() as u64;
        out.extend(rows);
        if n < u64::from(page) {
            return Ok(out);
        }
        offset += n;
    }
}
