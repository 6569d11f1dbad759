//! Collaborative documents: one yrs `Doc` per open document, kept on disk first, synced
//! through standard Supabase features only (so the same code works on a real project).
//!
//! ## The local copy
//! Every update a document integrates — typed in the webview (origin *local*) or received
//! (*remote*) — is appended to `doc_log` in SQLite **before** it is applied or sent anywhere
//! ([`local`]), so a process killed right after a keystroke loses nothing it showed. Opening a
//! document replays the snapshot and the log rows after it into a fresh `Doc`. When the log
//! grows past [`DocOptions::compact_rows`] rows or [`DocOptions::compact_updates`] updates,
//! **compaction** encodes the open document's state (replay-and-encode: the `Doc` already holds
//! the replay) and, in one transaction, stores it as the snapshot covering every row up to the
//! last one applied, deleting those rows. Rows appended meanwhile have higher sequence numbers
//! (`AUTOINCREMENT`, never reused) and stay; local rows not yet handed to the outbox stay too.
//! (`merge_updates_v1` is not used for this: it is quadratic on many small updates.)
//!
//! Appends and applies of one document are serialised by its `core` lock (a tokio mutex: it is
//! held across the store write so that log order is apply order; a yrs transaction never spans
//! an `.await`). Appends to documents that are not open go through the `gate`, which opening
//! also holds while it loads, so a row can never fall between a load and the open document.
//!
//! ## To the server
//! Local rows become outbox entries ([`crate::queue::Action::DocUpdate`]: a `document_updates`
//! row with a client-made id, sent with `ignore-duplicates`) after [`DocOptions::batch_window`]
//! (~100 ms: a burst of keystrokes becomes one row, merged with `merge_updates_v1` over at most
//! [`MERGE_MAX`] small updates). The log row is marked queued in the same transaction that
//! creates the entry; after a crash, [`Docs::flush_all`] queues what was left. The plain-text
//! rendering goes to `collaborative_documents.content` at most every
//! [`DocOptions::content_delay`] ([`crate::queue::Action::DocContent`], folded while unsent).
//!
//! ## From the server
//! An open document has its own private channel `doc:<id>` with a postgres_changes
//! subscription on `document_updates` filtered by `document_id` (the server checks membership
//! for every delivery, so a revoked member stops receiving). After every `Subscribed` the
//! document catches up through REST by `seq`, from a little before the highest `seq` it
//! integrated ([`DocOptions::overlap`]: a row that committed late with a lower `seq` is still
//! read; re-applying an update is harmless). Deliveries move that mark too: while the
//! subscription was up nothing was missed, and every rejoin catches up again. Documents that
//! are not open catch up with the account's other streams (rows appended to the log as they
//! come, applied when opened). A device that has never seen a document starts from its newest
//! `document_snapshots` row (state + the highest `seq` it covers) instead of the whole history;
//! an editor whose copy is [`DocOptions::snapshot_every`] rows past the newest snapshot writes
//! a new one (insert-if-absent, then a PATCH that only moves `upto_seq` forward).
//!
//! ## The webview binding (see ARCHITECTURE.md, "Document binding protocol")
//! [`Docs::open`] takes the webview's state vector and answers with what it lacks plus the
//! engine's state vector; then local updates come in through [`Docs::local`] and remote ones go
//! out as [`Event::DocUpdate`]; awareness both ways ([`awareness`]).
//!
//! ## Permissions
//! The role comes from the cached membership: a viewer's document is read-only — local updates
//! are refused with [`DocError::ReadOnly`] and change nothing — and the server's row rules
//! refuse them anyway. A document that disappears from the user's list (membership revoked)
//! is closed and its local copy dropped.

pub mod awareness;
pub mod codec;
pub mod local;
pub mod text;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ruwad_supabase::auth::Auth;
use ruwad_supabase::realtime::{
    Broadcast, ChangeEvent, Channel, ChannelConfig, ChannelEvent, PostgresChange, PostgresChangesFilter,
    RealtimeClient, Subscription,
};
use ruwad_supabase::rest::{Order, Rest};
use ruwad_supabase::Project;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::{broadcast, Notify};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{Doc, ReadTxn, StateVector, Transact, Update};

use crate::events::{Changes, Event, Sink};
use crate::queue::backoff::Backoff;
use crate::queue::sender::Signals;
use crate::queue::{self, Action};
use crate::store::{Store, StoreError};
use crate::sync::SyncError;

pub use awareness::DocPeer;
pub use local::{DocumentInfo, Role};

/// At most this many small updates are merged into one outbox row (`merge_updates_v1` is
/// quadratic in the number of updates; a 100 ms batch of typing is far below it).
pub const MERGE_MAX: usize = 128;

/// The broadcast event of awareness updates on `doc:<id>` (payload `{"update": base64}`).
pub const AWARENESS_EVENT: &str = "awareness";

/// How documents sync.
#[derive(Debug, Clone)]
pub struct DocOptions {
    /// Local updates wait this long to be merged into one `document_updates` row.
    pub batch_window: Duration,
    /// The plain-text rendering is written at most this often.
    pub content_delay: Duration,
    /// Catch-up reads again from this many `seq` below the highest integrated.
    pub overlap: i64,
    /// Rows per catch-up request.
    pub page: u32,
    /// Compact when the log holds this many rows past the snapshot…
    pub compact_rows: usize,
    /// … or this many updates.
    pub compact_updates: usize,
    /// An editor writes a server snapshot when its copy is this many rows past the newest one.
    pub snapshot_every: i64,
    /// At most one awareness broadcast per this interval (20 per second).
    pub awareness_interval: Duration,
    /// The local awareness state is sent again this often, so peers keep us.
    pub awareness_renew: Duration,
    /// A peer not heard of for this long is dropped.
    pub awareness_timeout: Duration,
}

impl Default for DocOptions {
    fn default() -> DocOptions {
        DocOptions {
            batch_window: Duration::from_millis(100),
            content_delay: Duration::from_secs(3),
            overlap: 200,
            page: 1000,
            compact_rows: 500,
            compact_updates: 20_000,
            snapshot_every: 1000,
            awareness_interval: Duration::from_millis(50),
            awareness_renew: Duration::from_secs(15),
            awareness_timeout: Duration::from_secs(30),
        }
    }
}

/// Why a document operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum DocError {
    #[error("no document {0} that this account can open (it does not exist, or access was revoked)")]
    NotFound(Uuid),
    #[error("this document is read-only for you (you are a viewer); nothing was changed")]
    ReadOnly,
    #[error("document {0} is not open; open it first")]
    NotOpen(Uuid),
    #[error("not a valid Yjs update: {0}; nothing was changed")]
    InvalidUpdate(String),
    #[error("not a valid Yjs state vector: {0}")]
    InvalidStateVector(String),
    #[error("not a valid awareness update: {0}")]
    InvalidAwareness(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What the webview gets when it binds a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocSync {
    /// What the webview's `Y.Doc` lacks (yrs / Yjs v1 update).
    pub update: Vec<u8>,
    /// The engine's state vector: the webview sends back what the engine lacks.
    pub state_vector: Vec<u8>,
    pub read_only: bool,
}

/// How a document's sync stands, for the UI ("offline" comes from the connection state).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct DocStatus {
    pub open: bool,
    pub read_only: bool,
    /// Local edits the server does not have yet ("saved locally" while > 0).
    pub pending: u64,
    /// Local edits the server refused for good (see the outbox).
    pub failed: u64,
}

/// The yrs document of an open document and how much of the log it holds.
struct Core {
    doc: Doc,
    roots: text::Roots,
    /// The last log row applied (every row up to it is in `doc`).
    applied: i64,
    /// Log rows / updates past the snapshot (compaction trigger).
    rows: usize,
    updates: usize,
}

impl Core {
    fn new() -> Core {
        let doc = Doc::new();
        let roots = text::Roots::of(&doc);
        Core { doc, roots, applied: 0, rows: 0, updates: 0 }
    }

    /// Applies updates, one transaction each (a single transaction over many is much slower
    /// in yrs). A malformed one is logged and skipped: a peer's bad row never blocks the rest.
    /// Returns how many were given and which of them (by position) changed the document.
    fn apply<'a>(&mut self, updates: impl IntoIterator<Item = &'a [u8]>) -> (usize, Vec<usize>) {
        let mut n = 0;
        let mut changed = Vec::new();
        for (i, u) in updates.into_iter().enumerate() {
            n += 1;
            match Update::decode_v1(u) {
                Ok(update) => {
                    let mut txn = self.doc.transact_mut();
                    match txn.apply_update(update) {
                        Ok(()) if txn.has_changes() => changed.push(i),
                        Ok(()) => {}
                        Err(e) => tracing::warn!(error = %e, "a document update could not be applied; skipped"),
                    }
                }
                Err(e) => tracing::warn!(error = %e, "a document update does not decode; skipped"),
            }
        }
        (n, changed)
    }

    fn state_vector(&self) -> StateVector {
        self.doc.transact().state_vector()
    }

    fn encode_from(&self, sv: &StateVector) -> Vec<u8> {
        self.doc.transact().encode_state_as_update_v1(sv)
    }

    fn text(&self) -> String {
        text::render(&self.doc.transact(), &self.roots)
    }
}

/// One open document: its yrs copy, its channel and its tasks.
struct OpenDoc {
    id: Uuid,
    /// In an `Arc` so a background load can hold the lock (an owned guard).
    core: Arc<tokio::sync::Mutex<Core>>,
    read_only: AtomicBool,
    /// Bindings (webview editors) holding it open.
    opens: AtomicUsize,
    /// Local rows wait to be queued.
    flush: Notify,
    /// The rendering should be written.
    content: Notify,
    /// A catch-up through REST is wanted.
    catch_up: Notify,
    /// The local awareness changed.
    awareness_changed: Notify,
    awareness: Mutex<awareness::Awareness>,
    cancel: CancellationToken,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl OpenDoc {
    fn awareness(&self) -> std::sync::MutexGuard<'_, awareness::Awareness> {
        // Held for plain map updates only; a panic cannot leave it half-changed.
        self.awareness.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The documents of one signed-in account.
pub(crate) struct Docs {
    pub store: Store,
    pub me: Uuid,
    pub auth: Auth,
    pub project: Project,
    pub sink: Sink,
    pub events: broadcast::Sender<Event>,
    pub signals: Arc<Signals>,
    pub client: Option<RealtimeClient>,
    pub options: DocOptions,
    pub cancel: CancellationToken,
    /// A std mutex: held to look up, insert or remove, never across an `.await`.
    open: Mutex<HashMap<Uuid, Arc<OpenDoc>>>,
    /// Serialises opening (load + register) with appends to documents that are not open.
    gate: tokio::sync::Mutex<()>,
}

#[derive(Deserialize)]
struct UpdateRow {
    seq: i64,
    update: String,
}

#[derive(Deserialize)]
struct SnapshotRow {
    upto_seq: i64,
    state: String,
}

impl Docs {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        store: Store,
        me: Uuid,
        auth: Auth,
        project: Project,
        sink: Sink,
        events: broadcast::Sender<Event>,
        signals: Arc<Signals>,
        client: Option<RealtimeClient>,
        options: DocOptions,
        cancel: CancellationToken,
    ) -> Docs {
        Docs {
            store,
            me,
            auth,
            project,
            sink,
            events,
            signals,
            client,
            options,
            cancel,
            open: Mutex::new(HashMap::new()),
            gate: tokio::sync::Mutex::new(()),
        }
    }

    fn opened(&self, id: Uuid) -> Option<Arc<OpenDoc>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner()).get(&id).cloned()
    }

    fn open_ids(&self) -> Vec<Uuid> {
        self.open.lock().unwrap_or_else(|p| p.into_inner()).keys().copied().collect()
    }

    async fn role(&self, id: Uuid) -> Result<Option<Role>, StoreError> {
        let me = self.me;
        self.store.read(move |c| local::role(c, id, me)).await
    }

    // ---- the list ------------------------------------------------------------------------

    pub(crate) async fn list(&self) -> Result<Vec<DocumentInfo>, StoreError> {
        let me = self.me;
        self.store.read(move |c| local::list(c, me)).await
    }

    pub(crate) async fn status(&self, id: Uuid) -> Result<DocStatus, DocError> {
        let role = self.role(id).await?.ok_or(DocError::NotFound(id))?;
        let (pending, failed) = self.store.read(move |c| local::pending(c, id)).await?;
        Ok(DocStatus { open: self.opened(id).is_some(), read_only: !role.can_edit(), pending, failed })
    }

    // ---- binding -------------------------------------------------------------------------

    /// Opens (or joins) a document for a webview binding whose `Y.Doc` has `state_vector`.
    pub(crate) async fn open(self: &Arc<Self>, id: Uuid, state_vector: &[u8]) -> Result<DocSync, DocError> {
        let sv = StateVector::decode_v1(state_vector).map_err(|e| DocError::InvalidStateVector(e.to_string()))?;
        let role = self.role(id).await?.ok_or(DocError::NotFound(id))?;
        let open = match self.opened(id) {
            Some(open) => {
                open.opens.fetch_add(1, Ordering::SeqCst);
                open
            }
            None => {
                let _gate = self.gate.lock().await;
                match self.opened(id) {
                    Some(open) => {
                        open.opens.fetch_add(1, Ordering::SeqCst);
                        open
                    }
                    None => {
                        let (state, rows) = self.read_log(id).await?;
                        // A binding with an empty doc, and nothing after the snapshot: answer with
                        // the stored snapshot at once and load the engine's copy in the
                        // background (anything needing it waits on the lock).
                        let quick = match (&state.snapshot, &state.snapshot_sv) {
                            (Some(snap), Some(ssv)) if rows.is_empty() && sv == StateVector::default() => {
                                Some(DocSync {
                                    update: snap.clone(),
                                    state_vector: ssv.clone(),
                                    read_only: !role.can_edit(),
                                })
                            }
                            _ => None,
                        };
                        // Locked before it is registered: nothing touches the copy until loaded.
                        let core = Arc::new(tokio::sync::Mutex::new(Core::new()));
                        let mut guard = Arc::clone(&core).lock_owned().await;
                        let open = self.register(id, role, core);
                        self.start_tasks(&open);
                        match quick {
                            Some(reply) => {
                                tokio::task::spawn_blocking(move || load_into(&mut guard, state, rows));
                                self.announce_peers(&open);
                                return Ok(reply);
                            }
                            None => {
                                load_into(&mut guard, state, rows);
                                drop(guard);
                                open
                            }
                        }
                    }
                }
            }
        };
        open.read_only.store(!role.can_edit(), Ordering::SeqCst);
        let (update, state_vector) = {
            let core = open.core.lock().await;
            (core.encode_from(&sv), core.state_vector().encode_v1())
        };
        self.announce_peers(&open);
        Ok(DocSync { update, state_vector, read_only: open.read_only.load(Ordering::SeqCst) })
    }

    /// Registers a new open document (the caller holds the gate).
    fn register(&self, id: Uuid, role: Role, core: Arc<tokio::sync::Mutex<Core>>) -> Arc<OpenDoc> {
        let open = Arc::new(OpenDoc {
            id,
            core,
            read_only: AtomicBool::new(!role.can_edit()),
            opens: AtomicUsize::new(1),
            flush: Notify::new(),
            content: Notify::new(),
            catch_up: Notify::new(),
            awareness_changed: Notify::new(),
            awareness: Mutex::new(awareness::Awareness::default()),
            cancel: self.cancel.child_token(),
            tasks: Mutex::new(Vec::new()),
        });
        self.open.lock().unwrap_or_else(|p| p.into_inner()).insert(id, Arc::clone(&open));
        open
    }

    /// Tells a new binding who is already here.
    fn announce_peers(&self, open: &OpenDoc) {
        if let Some(peers) = open.awareness().snapshot() {
            let _ = self.events.send(Event::DocAwareness { document_id: open.id, update: codec::b64(&peers) });
        }
    }

    async fn read_log(&self, id: Uuid) -> Result<(local::DocState, Vec<(i64, Vec<u8>)>), StoreError> {
        self.store
            .read(move |c| {
                let state = local::state(c, id)?.unwrap_or_default();
                let rows = local::rows_after(c, id, state.upto_log)?;
                Ok((state, rows))
            })
            .await
    }

    /// Reads a document's snapshot and log into a fresh `Doc`.
    async fn load(&self, id: Uuid) -> Result<Core, DocError> {
        let (state, rows) = self.read_log(id).await?;
        let mut core = Core::new();
        load_into(&mut core, state, rows);
        Ok(core)
    }

    /// A binding lets go; the last one closes the document (its pending edits are queued at
    /// once, its awareness says goodbye).
    pub(crate) async fn close(&self, id: Uuid) -> Result<(), DocError> {
        let Some(open) = self.opened(id) else { return Ok(()) };
        if open.opens.fetch_sub(1, Ordering::SeqCst) > 1 {
            return Ok(());
        }
        self.open.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
        self.shut(&open).await;
        Ok(())
    }

    /// Stops an open document's tasks and settles what it holds.
    async fn shut(&self, open: &Arc<OpenDoc>) {
        open.cancel.cancel();
        let tasks = std::mem::take(&mut *open.tasks.lock().unwrap_or_else(|p| p.into_inner()));
        for t in tasks {
            let _ = t.await;
        }
        if let Err(e) = self.flush(open.id).await {
            tracing::warn!(error = %e, "closing a document: its edits stay in the log and are queued later");
        }
        // The next open starts from one snapshot instead of replaying the tail of the log.
        {
            let mut core = open.core.lock().await;
            if core.rows > 1 {
                if let Err(e) = self.compact(open.id, &mut core).await {
                    tracing::warn!(error = %e, "closing a document: compaction failed; the log stays as it is");
                }
            }
        }
        if !open.read_only.load(Ordering::SeqCst) {
            self.write_content(open).await;
        }
    }

    /// Closes every open document (sign-out, shutdown).
    pub(crate) async fn close_all(&self) {
        let all: Vec<Arc<OpenDoc>> =
            self.open.lock().unwrap_or_else(|p| p.into_inner()).drain().map(|(_, o)| o).collect();
        for open in all {
            self.shut(&open).await;
        }
    }

    /// Local updates from the webview: appended to the log, then applied; queued for the
    /// server after the batch window.
    pub(crate) async fn local(&self, id: Uuid, updates: Vec<Vec<u8>>) -> Result<(), DocError> {
        let open = self.opened(id).ok_or(DocError::NotOpen(id))?;
        if open.read_only.load(Ordering::SeqCst) {
            return Err(DocError::ReadOnly);
        }
        // Validate everything before anything is stored. (Decoded values are not `Send`, so they
        // are not kept across the store write; applying decodes again.)
        let mut kept = Vec::with_capacity(updates.len());
        for u in updates {
            let decoded = Update::decode_v1(&u).map_err(|e| DocError::InvalidUpdate(e.to_string()))?;
            // An empty update (a handshake with nothing to add) is not an edit.
            if !decoded.is_empty() {
                kept.push(u);
            }
        }
        let updates = kept;
        if updates.is_empty() {
            return Ok(());
        }
        let packed = codec::pack(&updates);
        let mut core = open.core.lock().await;
        // Relaxed: survives a killed process at once; the outbox entry's FULL commit within the
        // batch window makes it power-safe too (see `Store::write_relaxed`).
        let seq = self.store.write_relaxed(move |tx, _| local::append(tx, id, local::Origin::Local, &packed)).await?;
        core.updates += core.apply(updates.iter().map(Vec::as_slice)).0;
        core.applied = seq;
        core.rows += 1;
        self.maybe_compact(id, &mut core).await;
        drop(core);
        open.flush.notify_one();
        open.content.notify_one();
        self.sink.send(Changes { documents: [id].into(), ..Changes::default() });
        Ok(())
    }

    /// What a webview `Y.Doc` with `state_vector` lacks of an already open document (a
    /// binding that missed events re-syncs with this; it does not count as another binding).
    pub(crate) async fn diff(&self, id: Uuid, state_vector: &[u8]) -> Result<DocSync, DocError> {
        let sv = StateVector::decode_v1(state_vector).map_err(|e| DocError::InvalidStateVector(e.to_string()))?;
        let open = self.opened(id).ok_or(DocError::NotOpen(id))?;
        let core = open.core.lock().await;
        Ok(DocSync {
            update: core.encode_from(&sv),
            state_vector: core.state_vector().encode_v1(),
            read_only: open.read_only.load(Ordering::SeqCst),
        })
    }

    /// The webview's awareness update (its own clients' states).
    pub(crate) fn awareness_local(&self, id: Uuid, update: &[u8]) -> Result<(), DocError> {
        let open = self.opened(id).ok_or(DocError::NotOpen(id))?;
        let entries = awareness::decode(update).map_err(|e| DocError::InvalidAwareness(e.0))?;
        open.awareness().set_local(entries);
        open.awareness_changed.notify_one();
        Ok(())
    }

    pub(crate) fn peers(&self, id: Uuid) -> Vec<DocPeer> {
        self.opened(id).map(|o| o.awareness().peers()).unwrap_or_default()
    }

    /// The text of a document (open or not).
    pub(crate) async fn text(&self, id: Uuid) -> Result<String, DocError> {
        self.role(id).await?.ok_or(DocError::NotFound(id))?;
        match self.opened(id) {
            Some(open) => Ok(open.core.lock().await.text()),
            None => Ok(self.load(id).await?.text()),
        }
    }

    /// The engine's state vector of an open document.
    pub(crate) async fn state_vector(&self, id: Uuid) -> Result<Vec<u8>, DocError> {
        let open = self.opened(id).ok_or(DocError::NotOpen(id))?;
        let sv = open.core.lock().await.state_vector().encode_v1();
        Ok(sv)
    }

    // ---- compaction ------------------------------------------------------------------------

    async fn maybe_compact(&self, id: Uuid, core: &mut Core) {
        if core.rows < self.options.compact_rows && core.updates < self.options.compact_updates {
            return;
        }
        if let Err(e) = self.compact(id, core).await {
            tracing::warn!(error = %e, "document compaction failed; the log stays as it is");
        }
    }

    /// Replaces the log up to the last applied row by the encoded state (see the module doc).
    async fn compact(&self, id: Uuid, core: &mut Core) -> Result<(), StoreError> {
        let snapshot = core.encode_from(&StateVector::default());
        let sv = core.state_vector().encode_v1();
        let upto = core.applied;
        // Relaxed: the transaction is atomic either way — after a power cut the log is as it was
        // before (rows and old snapshot) or compacted.
        let removed = self.store.write_relaxed(move |tx, _| local::compact(tx, id, &snapshot, &sv, upto)).await?;
        tracing::debug!(%id, upto, removed, "document log compacted");
        core.rows = 0;
        core.updates = 0;
        Ok(())
    }

    // ---- to the server -------------------------------------------------------------------

    /// Queues the document's local rows that have no outbox entry yet.
    pub(crate) async fn flush(&self, id: Uuid) -> Result<(), StoreError> {
        let me = self.me;
        let changes = self
            .store
            .write(move |tx, inflight| {
                let rows = local::unqueued(tx, id)?;
                let mut changes = Changes::default();
                if rows.is_empty() {
                    return Ok(changes);
                }
                let mut updates: Vec<Vec<u8>> = Vec::new();
                for (seq, blob) in &rows {
                    match codec::unpack(blob) {
                        Ok(us) => updates.extend(us.into_iter().map(<[u8]>::to_vec)),
                        Err(e) => tracing::warn!(error = %e, seq, "an unqueued log row does not unpack; skipped"),
                    }
                }
                for chunk in updates.chunks(MERGE_MAX) {
                    let merged: Vec<Vec<u8>> = match chunk {
                        [one] => vec![one.clone()],
                        many => match yrs::merge_updates_v1(many) {
                            Ok(m) => vec![m],
                            // Each was validated on the way in; if they do not merge, send
                            // them one by one rather than lose any.
                            Err(e) => {
                                tracing::warn!(error = %e, "local updates do not merge; queued one by one");
                                many.to_vec()
                            }
                        },
                    };
                    for update in merged {
                        let action = Action::DocUpdate { id: Uuid::now_v7(), document_id: id, update };
                        changes.merge(queue::enqueue(tx, inflight, me, action)?);
                    }
                }
                let seqs: Vec<i64> = rows.iter().map(|(s, _)| *s).collect();
                local::mark_queued(tx, &seqs)?;
                Ok(changes)
            })
            .await?;
        if !changes.is_empty() {
            self.sink.send(changes);
            self.signals.work.notify_one();
        }
        Ok(())
    }

    /// Queues every document's leftover local rows (after a crash or an unclean stop).
    pub(crate) async fn flush_all(&self) -> Result<(), StoreError> {
        for id in self.store.read(local::with_unqueued).await? {
            self.flush(id).await?;
        }
        Ok(())
    }

    async fn write_content(&self, open: &OpenDoc) {
        let content = open.core.lock().await.text();
        let id = open.id;
        let me = self.me;
        let action = Action::DocContent { document_id: id, content };
        match self.store.write(move |tx, inflight| queue::enqueue(tx, inflight, me, action)).await {
            Ok(changes) => {
                self.sink.send(changes);
                self.signals.work.notify_one();
            }
            Err(e) => tracing::warn!(error = %e, "the document's text rendering could not be queued"),
        }
    }

    // ---- from the server -----------------------------------------------------------------

    async fn rest(&self) -> Result<Rest, SyncError> {
        let token = self.auth.access_token().await.ok_or(SyncError::NotSignedIn)?;
        Ok(Rest::with_bearer(self.project.clone(), token))
    }

    /// Catches every document the user may see up through REST.
    pub(crate) async fn catch_up_all(&self) -> Result<(), SyncError> {
        let docs = self.list().await?;
        for d in docs {
            self.catch_up(d.id).await?;
        }
        Ok(())
    }

    /// Catches one document up through REST (see the module doc).
    pub(crate) async fn catch_up(&self, id: Uuid) -> Result<(), SyncError> {
        let rest = self.rest().await?;
        let state = self.store.read(move |c| local::state(c, id)).await?.unwrap_or_default();
        let mut from = state.server_seq;
        if from == 0 {
            let snap: Option<SnapshotRow> = rest
                .from("document_snapshots")
                .select("upto_seq,state")
                .eq("document_id", id)
                .maybe_single()
                .execute()
                .await?;
            if let Some(s) = snap {
                match codec::unb64(&s.state) {
                    Ok(bytes) => {
                        self.deliver(id, vec![(s.upto_seq, bytes)], Some(s.upto_seq)).await?;
                        from = s.upto_seq;
                    }
                    Err(e) => tracing::warn!(error = %e, "a document snapshot does not decode; reading the history"),
                }
            }
        }
        let mut after = (from - self.options.overlap).max(0);
        loop {
            let rows: Vec<UpdateRow> = rest
                .from("document_updates")
                .select("seq,update")
                .eq("document_id", id)
                .gt("seq", after)
                .order("seq", Order::Asc)
                .limit(u64::from(self.options.page))
                .execute()
                .await?;
            let full = rows.len() as u32 == self.options.page;
            let Some(last) = rows.last().map(|r| r.seq) else { break };
            let updates: Vec<(i64, Vec<u8>)> = rows
                .into_iter()
                .filter_map(|r| match codec::unb64(&r.update) {
                    Ok(b) => Some((r.seq, b)),
                    Err(e) => {
                        tracing::warn!(error = %e, seq = r.seq, "a document_updates row does not decode; skipped");
                        None
                    }
                })
                .collect();
            self.deliver(id, updates, None).await?;
            if !full {
                break;
            }
            after = last;
        }
        if let Some(open) = self.opened(id) {
            self.maybe_snapshot(&rest, &open).await;
        }
        Ok(())
    }

    /// Remote rows `(seq, update)` of a document: into the open copy, or appended to the log
    /// of a closed one. `snapshot`: the rows are a server snapshot covering up to that `seq`.
    async fn deliver(&self, id: Uuid, rows: Vec<(i64, Vec<u8>)>, snapshot: Option<i64>) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let gate = self.gate.lock().await;
        match self.opened(id) {
            Some(open) => {
                drop(gate);
                self.integrate(&open, rows, snapshot).await
            }
            None => {
                let (packed, max_seq) = pack_rows(&rows);
                self.store
                    .write_relaxed(move |tx, _| {
                        local::append(tx, id, local::Origin::Remote, &packed)?;
                        record_server_rows(tx, id, &rows, max_seq, snapshot)
                    })
                    .await
            }
        }
    }

    /// Remote rows into an open document: logged, applied, handed to the webview.
    async fn integrate(
        &self,
        open: &OpenDoc,
        rows: Vec<(i64, Vec<u8>)>,
        snapshot: Option<i64>,
    ) -> Result<(), StoreError> {
        let id = open.id;
        let (packed, max_seq) = pack_rows(&rows);
        let mut core = open.core.lock().await;
        let updates: Vec<Vec<u8>> = rows.iter().map(|(_, u)| u.clone()).collect();
        // Remote rows are on the server: a power cut can only cost a re-download.
        let seq = self
            .store
            .write_relaxed(move |tx, _| {
                let seq = local::append(tx, id, local::Origin::Remote, &packed)?;
                record_server_rows(tx, id, &rows, max_seq, snapshot)?;
                Ok(seq)
            })
            .await?;
        let before = core.state_vector();
        let (n, changed) = core.apply(updates.iter().map(Vec::as_slice));
        core.updates += n;
        core.applied = seq;
        core.rows += 1;
        // What changed goes to the webview (nothing, for rows it already had): a few updates as
        // they are, many as one diff.
        let out: Vec<Vec<u8>> = if changed.len() <= 8 {
            changed.into_iter().map(|i| updates[i].clone()).collect()
        } else {
            vec![core.encode_from(&before)]
        };
        self.maybe_compact(id, &mut core).await;
        drop(core);
        for u in out {
            let _ = self.events.send(Event::DocUpdate { document_id: id, update: codec::b64(&u) });
        }
        Ok(())
    }

    /// An editor whose copy is far past the newest server snapshot writes a new one.
    async fn maybe_snapshot(&self, rest: &Rest, open: &OpenDoc) {
        if open.read_only.load(Ordering::SeqCst) {
            return;
        }
        let id = open.id;
        let Ok(Some(state)) = self.store.read(move |c| local::state(c, id)).await else { return };
        let upto = state.server_seq - self.options.overlap;
        if state.rows_since_snapshot < self.options.snapshot_every || upto <= state.snapshot_seq {
            return;
        }
        let encoded = codec::b64(&open.core.lock().await.encode_from(&StateVector::default()));
        let row = json!({ "document_id": id, "upto_seq": upto, "state": encoded });
        let insert = rest.from("document_snapshots").insert(&row).ignore_duplicates().execute::<Value>().await;
        let patch = rest
            .from("document_snapshots")
            .update(json!({ "upto_seq": upto, "state": encoded }))
            .eq("document_id", id)
            .lt("upto_seq", upto)
            .execute::<Value>()
            .await;
        match (insert, patch) {
            (Ok(_), Ok(_)) => {
                tracing::debug!(%id, upto, "document snapshot written");
                let _ = self.store.write(move |tx, _| local::set_snapshot_seq(tx, id, upto)).await;
            }
            (Err(e), _) | (_, Err(e)) => tracing::info!(error = %e, "the document snapshot was not written"),
        }
    }

    /// After the cached memberships changed: open documents follow the user's role; those the
    /// user lost are closed.
    pub(crate) async fn refresh_access(&self) {
        for id in self.open_ids() {
            let Some(open) = self.opened(id) else { continue };
            match self.role(id).await {
                Ok(Some(role)) => {
                    let was = open.read_only.swap(!role.can_edit(), Ordering::SeqCst);
                    if was == role.can_edit() {
                        self.sink.send(Changes { documents: [id].into(), ..Changes::default() });
                    }
                }
                Ok(None) => {
                    tracing::info!(%id, "access to an open document ended; closing it");
                    self.open.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
                    open.cancel.cancel();
                    self.sink.send(Changes { documents: [id].into(), ..Changes::default() });
                }
                Err(e) => tracing::warn!(error = %e, "cannot read a document's role"),
            }
        }
    }

    // ---- an open document's tasks ----------------------------------------------------------

    fn start_tasks(self: &Arc<Self>, open: &Arc<OpenDoc>) {
        let mut tasks = vec![
            tokio::spawn(flush_task(Arc::clone(self), Arc::clone(open))),
            tokio::spawn(content_task(Arc::clone(self), Arc::clone(open))),
            tokio::spawn(catch_up_task(Arc::clone(self), Arc::clone(open))),
        ];
        match &self.client {
            Some(client) => {
                let channel = client
                    .channel(&format!("doc:{}", open.id), ChannelConfig { private: true, ..ChannelConfig::default() });
                // Listen before the join can complete.
                let streams = LiveStreams {
                    events: channel.events(),
                    changes: channel.subscribe_changes(PostgresChangesFilter {
                        event: ChangeEvent::Insert,
                        schema: "public".into(),
                        table: Some("document_updates".into()),
                        filter: Some(format!("document_id=eq.{}", open.id)),
                    }),
                    awareness: channel.broadcasts(AWARENESS_EVENT),
                };
                tasks.push(tokio::spawn(live_task(
                    Arc::clone(self),
                    Arc::clone(open),
                    client.clone(),
                    channel,
                    streams,
                )));
            }
            None => open.catch_up.notify_one(),
        }
        *open.tasks.lock().unwrap_or_else(|p| p.into_inner()) = tasks;
    }
}

/// Replays a snapshot and the log rows after it into `core`.
fn load_into(core: &mut Core, state: local::DocState, rows: Vec<(i64, Vec<u8>)>) {
    if let Some(snapshot) = &state.snapshot {
        core.apply([snapshot.as_slice()]);
    }
    core.applied = state.upto_log;
    for (seq, blob) in &rows {
        match codec::unpack(blob) {
            Ok(updates) => core.updates += core.apply(updates).0,
            Err(e) => tracing::warn!(error = %e, seq, "a document log row does not unpack; skipped"),
        }
        core.applied = *seq;
    }
    core.rows = rows.len();
}

fn pack_rows(rows: &[(i64, Vec<u8>)]) -> (Vec<u8>, i64) {
    (codec::pack(rows.iter().map(|(_, u)| u)), rows.iter().map(|(s, _)| *s).max().unwrap_or(0))
}

fn record_server_rows(
    tx: &rusqlite::Connection,
    id: Uuid,
    rows: &[(i64, Vec<u8>)],
    max_seq: i64,
    snapshot: Option<i64>,
) -> Result<(), StoreError> {
    match snapshot {
        Some(upto) => {
            local::advance_server(tx, id, upto, 0)?;
            local::set_snapshot_seq(tx, id, upto)
        }
        None => {
            let above = local::state(tx, id)?.map(|s| s.snapshot_seq).unwrap_or(0);
            let n = rows.iter().filter(|(s, _)| *s > above).count() as i64;
            local::advance_server(tx, id, max_seq, n)
        }
    }
}

/// Queues local rows a batch window after the first of a burst.
async fn flush_task(docs: Arc<Docs>, open: Arc<OpenDoc>) {
    loop {
        tokio::select! {
            _ = open.cancel.cancelled() => return,
            _ = open.flush.notified() => {}
        }
        tokio::select! {
            _ = open.cancel.cancelled() => return,
            _ = tokio::time::sleep(docs.options.batch_window) => {}
        }
        if let Err(e) = docs.flush(open.id).await {
            tracing::warn!(error = %e, "document edits could not be queued; they stay in the log");
        }
    }
}

/// Writes the plain-text rendering at most every `content_delay` while the user edits.
async fn content_task(docs: Arc<Docs>, open: Arc<OpenDoc>) {
    loop {
        tokio::select! {
            _ = open.cancel.cancelled() => return,
            _ = open.content.notified() => {}
        }
        tokio::select! {
            _ = open.cancel.cancelled() => return,
            _ = tokio::time::sleep(docs.options.content_delay) => {}
        }
        docs.write_content(&open).await;
    }
}

/// Catches the document up when asked (every `Subscribed` of its channel), retrying with
/// backoff while the server cannot be reached.
async fn catch_up_task(docs: Arc<Docs>, open: Arc<OpenDoc>) {
    let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
    loop {
        tokio::select! {
            _ = open.cancel.cancelled() => return,
            _ = open.catch_up.notified() => {}
        }
        loop {
            match docs.catch_up(open.id).await {
                Ok(()) => {
                    backoff.reset();
                    break;
                }
                Err(SyncError::NotSignedIn) => break,
                Err(e) => {
                    let delay = backoff.fail(e.retry_after());
                    tracing::debug!(error = %e, ?delay, "document catch-up failed; retrying");
                    tokio::select! {
                        _ = open.cancel.cancelled() => return,
                        _ = tokio::time::sleep(delay) => {}
                        _ = open.catch_up.notified() => {}
                    }
                }
            }
        }
    }
}

struct LiveStreams {
    events: Subscription<ChannelEvent>,
    changes: Subscription<PostgresChange>,
    awareness: Subscription<Broadcast>,
}

/// The document's channel: deliveries, catch-up after every join, awareness both ways.
async fn live_task(docs: Arc<Docs>, open: Arc<OpenDoc>, client: RealtimeClient, channel: Channel, mut s: LiveStreams) {
    let id = open.id;
    let options = docs.options.clone();
    let mut last_sent: Option<Instant> = None;
    let mut send_at: Option<Instant> = None;
    let mut renew = tokio::time::interval(options.awareness_renew);
    renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut expire = tokio::time::interval(Duration::from_secs(1).min(options.awareness_timeout / 4));
    expire.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut missed = 0;
    // Wants an awareness broadcast: now if the last one is old enough, else at the next slot.
    let want_send = |last: Option<Instant>, at: &mut Option<Instant>| {
        let slot = last.map(|l| l + options.awareness_interval).unwrap_or_else(Instant::now);
        *at = Some(at.map_or(slot, |a| a.min(slot)));
    };
    loop {
        let send_timer = async {
            match send_at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = open.cancel.cancelled() => break,
            e = s.events.recv() => match e {
                Some(ChannelEvent::Subscribed) => {
                    open.catch_up.notify_one();
                    want_send(last_sent, &mut send_at);
                }
                Some(ChannelEvent::Error(e) | ChannelEvent::Closed(e)) => {
                    tracing::info!(error = %e, %id, "document channel trouble; it rejoins on its own");
                }
                Some(_) => {}
                None => break,
            },
            c = s.changes.recv() => {
                let Some(c) = c else { break };
                if let Some(row) = c.record.as_ref().and_then(delivered_row) {
                    if let Err(e) = docs.deliver(id, vec![row], None).await {
                        tracing::warn!(error = %e, "a document delivery could not be stored; catch-up will bring it");
                        open.catch_up.notify_one();
                    }
                }
                if s.changes.missed() != missed {
                    missed = s.changes.missed();
                    open.catch_up.notify_one();
                }
            }
            b = s.awareness.recv() => {
                let Some(b) = b else { break };
                let Some(update) = b.payload.json().and_then(|p| p.get("update").and_then(Value::as_str).map(str::to_owned)) else { continue };
                let Ok(bytes) = codec::unb64(&update) else { continue };
                let Ok(entries) = awareness::decode(&bytes) else { continue };
                let (changed, newcomer) = open.awareness().apply_remote(entries, Instant::now());
                if !changed.is_empty() {
                    let _ = docs.events.send(Event::DocAwareness { document_id: id, update: codec::b64(&awareness::encode(&changed)) });
                }
                if newcomer {
                    want_send(last_sent, &mut send_at);
                }
            }
            _ = open.awareness_changed.notified() => want_send(last_sent, &mut send_at),
            _ = renew.tick() => {
                if open.awareness().has_local() {
                    want_send(last_sent, &mut send_at);
                }
            }
            _ = expire.tick() => {
                let gone = open.awareness().expire(Instant::now(), options.awareness_timeout);
                if !gone.is_empty() {
                    let _ = docs.events.send(Event::DocAwareness { document_id: id, update: codec::b64(&awareness::encode(&gone)) });
                }
            }
            _ = send_timer => {
                send_at = None;
                // Only worth sending now: the state goes out again after the next join.
                if client.state().borrow().is_connected() {
                    let update = open.awareness().outgoing();
                    if let Some(update) = update {
                        last_sent = Some(Instant::now());
                        if let Err(e) = channel.send_broadcast(AWARENESS_EVENT, json!({ "update": codec::b64(&update) })).await {
                            tracing::debug!(error = %e, "awareness broadcast not sent");
                        }
                    }
                }
            }
        }
    }
    // Closing: the others drop us now rather than after the timeout.
    let bye = open.awareness().leave();
    if let Some(update) = bye {
        if client.state().borrow().is_connected() {
            let _ = channel.send_broadcast(AWARENESS_EVENT, json!({ "update": codec::b64(&update) })).await;
        }
    }
}

/// `(seq, update)` of a delivered `document_updates` row.
fn delivered_row(record: &serde_json::Map<String, Value>) -> Option<(i64, Vec<u8>)> {
    let seq = match record.get("seq")? {
        Value::Number(n) => n.as_i64()?,
        Value::String(s) => s.parse().ok()?,
        _ => return None,
    };
    let update = codec::unb64(record.get("update")?.as_str()?).ok()?;
    Some((seq, update))
}
