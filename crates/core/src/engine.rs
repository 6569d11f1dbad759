//! The engine the shell (and the tests) drive: session, chat, challenges, analytics, the
//! outbound queue and connection status, with one typed event stream.
//!
//! ## Shape
//! [`Engine`] is a cheap clonable handle. It owns:
//! - the auth client (`ruwad_supabase::auth::Auth`; the session lives in the
//!   [`SecretStore`] the shell passes in — the OS keychain in the app, memory or a file in
//!   tests);
//! - per signed-in account, an [`Account`]: its own SQLite file
//!   (`<data_dir>/accounts/<user id>/cache.db`, so caches and queues of two users never mix),
//!   the outbox sender task and the catch-up task;
//! - the event coalescer ([`crate::events`]) and the connection-state forwarder.
//!
//! Reads (`rooms`, `messages`, `challenges`, …) answer from the cache at once. Writes are
//! queue actions ([`crate::queue`]): committed locally with their outbox entry, then sent by
//! the sender. Catch-up ([`crate::sync`]) runs when an account opens, whenever the sender
//! gets through again after failing, on [`Engine::network_back`], and on [`Engine::sync_now`].
//!
//! ## Lifecycle
//! Every task has an owner: the account's tasks stop with its cancellation token (on sign-out,
//! account switch, [`Engine::shutdown`], or when the last engine handle is dropped); sign-out
//! waits for the sender to finish its round so no claim is left dangling. Signing out keeps
//! the account's database — unsent changes included — for the next sign-in of that user.
//!
//! ## Realtime
//! Each account owns one realtime client ([`crate::live`]; off with
//! [`LiveOptions::enabled`]): its deliveries feed [`Engine::apply_remote`]'s path, every
//! (re)subscribe wakes the catch-up task, its connection state is the engine's, and its
//! reconnects wake the sender. [`Engine::network_down`] / [`Engine::network_back`] reach it too.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ruwad_supabase::auth::{Auth, AuthError, AuthEvent, AuthOptions, SecretStore, SignUp};
use ruwad_supabase::error::Retry;
use ruwad_supabase::realtime::SendError;
use ruwad_supabase::rest::{Rest, RestError};
use ruwad_supabase::Project;
use serde::Serialize;
use serde_json::{Map, Value};
use tokio::sync::{broadcast, watch, Notify};
use tokio::task::JoinHandle;
use tokio_util::sync::{CancellationToken, DropGuard};
use uuid::Uuid;

use crate::docs::{DocError, DocOptions, DocPeer, DocStatus, DocSync, Docs, DocumentInfo};
use crate::events::{self, Changes, ConnectionState, CountOutbox, Event, Sink};
use crate::live::{self, Live, LiveOptions, LiveParts};
use crate::model::{Challenge, LiveMetrics, Message, MessagePage, OutboxEntry, Profile, QueueCounts, Room, Submission};
use crate::queue::backoff::Backoff;
use crate::queue::sender::{Sender, SenderOptions, Signals};
use crate::queue::{self, Action};
use crate::store::cache::{self, Anchor};
use crate::store::{Store, StoreError, StoreOptions};
use crate::sync::{Mirror, RemoteChange, SyncError, SyncOptions};

/// Everything the engine needs to start.
pub struct EngineConfig {
    /// The project's base URL (`https://<ref>.supabase.co` or the local backend's).
    pub url: String,
    /// The project's API (anon) key.
    pub anon_key: String,
    /// Where the per-account databases live.
    pub data_dir: PathBuf,
    /// Where the session is kept (OS keychain in the app).
    pub secrets: Arc<dyn SecretStore>,
    pub auth: AuthOptions,
    pub store: StoreOptions,
    pub sender: SenderOptions,
    pub sync: SyncOptions,
    pub live: LiveOptions,
    pub docs: DocOptions,
}

impl EngineConfig {
    pub fn new(
        url: impl Into<String>,
        anon_key: impl Into<String>,
        data_dir: impl Into<PathBuf>,
        secrets: Arc<dyn SecretStore>,
    ) -> EngineConfig {
        EngineConfig {
            url: url.into(),
            anon_key: anon_key.into(),
            data_dir: data_dir.into(),
            secrets,
            auth: AuthOptions::default(),
            store: StoreOptions::default(),
            sender: SenderOptions::default(),
            sync: SyncOptions::default(),
            live: LiveOptions::default(),
            docs: DocOptions::default(),
        }
    }
}

/// The closed set of error codes the UI branches on (`{code, message}` on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    NotSignedIn,
    InvalidCredentials,
    /// The request was refused locally (empty message, not the author, …).
    Refused,
    /// The network or the server is unreachable for now; try again.
    Unavailable,
    /// The server refused the request.
    Server,
    /// The local database cannot be used (newer version, corrupt, …).
    Storage,
    Internal,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("not signed in")]
    NotSignedIn,
    #[error("invalid project configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Sync(#[from] SyncError),
    #[error(transparent)]
    Rest(#[from] RestError),
    #[error("realtime: {0}")]
    Realtime(#[from] SendError),
    #[error(transparent)]
    Doc(#[from] DocError),
}

impl EngineError {
    pub fn code(&self) -> ErrorCode {
        match self {
            EngineError::NotSignedIn | EngineError::Sync(SyncError::NotSignedIn) => ErrorCode::NotSignedIn,
            EngineError::Config(_) => ErrorCode::Internal,
            EngineError::Auth(AuthError::InvalidCredentials) => ErrorCode::InvalidCredentials,
            EngineError::Auth(AuthError::NotSignedIn | AuthError::SessionEnded { .. }) => ErrorCode::NotSignedIn,
            EngineError::Auth(e) if e.is_transient() => ErrorCode::Unavailable,
            EngineError::Auth(_) => ErrorCode::Server,
            EngineError::Store(StoreError::Refused(_)) => ErrorCode::Refused,
            EngineError::Store(_) | EngineError::Sync(SyncError::Store(_)) => ErrorCode::Storage,
            EngineError::Rest(e) | EngineError::Sync(SyncError::Rest(e)) if e.is_transient() => ErrorCode::Unavailable,
            EngineError::Rest(_) | EngineError::Sync(_) => ErrorCode::Server,
            EngineError::Realtime(_) => ErrorCode::Unavailable,
            EngineError::Doc(DocError::Store(StoreError::Refused(_))) => ErrorCode::Refused,
            EngineError::Doc(DocError::Store(_)) => ErrorCode::Storage,
            EngineError::Doc(_) => ErrorCode::Refused,
        }
    }
}

/// One signed-in user's database and tasks.
struct Account {
    me: Uuid,
    store: Store,
    signals: Arc<Signals>,
    sync: Mirror,
    /// Wakes the catch-up task.
    sync_wanted: Arc<Notify>,
    cancel: CancellationToken,
    tasks: tokio::sync::Mutex<Vec<JoinHandle<()>>>,
    /// The account's realtime client and entered rooms (none when realtime is off).
    realtime: Option<Live>,
    docs: Arc<Docs>,
}

impl Account {
    /// Stops the tasks and waits for them (the sender settles its round first).
    async fn stop(&self) {
        // Open documents queue their last edits before the tasks stop.
        self.docs.close_all().await;
        self.cancel.cancel();
        let tasks = std::mem::take(&mut *self.tasks.lock().await);
        for t in tasks {
            let _ = t.await;
        }
        if let Some(rt) = &self.realtime {
            rt.client.disconnect().await;
        }
    }
}

struct Inner {
    project: Project,
    auth: Auth,
    data_dir: PathBuf,
    store_options: StoreOptions,
    sender_options: SenderOptions,
    sync_options: SyncOptions,
    live_options: LiveOptions,
    doc_options: DocOptions,
    events: broadcast::Sender<Event>,
    sink: Sink,
    connection: watch::Sender<ConnectionState>,
    /// The current account. A std mutex: held only to clone or swap the `Arc`, never across
    /// an `.await`.
    account: Mutex<Option<Arc<Account>>>,
    /// The store of the current account, for the coalescer's outbox counts.
    current_store: Arc<Mutex<Option<Store>>>,
    /// Serialises sign-in / sign-out / shutdown (held across their awaits, hence tokio's).
    switching: tokio::sync::Mutex<()>,
    cancel: CancellationToken,
    _stop_tasks: DropGuard,
}

/// The engine handle. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl Engine {
    /// Starts the engine: restores the session from the secret store and, when signed in,
    /// opens that account's database and starts sending and catching up.
    pub async fn start(config: EngineConfig) -> Result<Engine, EngineError> {
        let project = Project::new(&config.url, &config.anon_key).map_err(|e| EngineError::Config(e.to_string()))?;
        let auth = Auth::start(project.clone(), config.secrets, config.auth).await?;
        let cancel = CancellationToken::new();
        let (events, _) = broadcast::channel(events::CAPACITY);
        let current_store: Arc<Mutex<Option<Store>>> = Arc::new(Mutex::new(None));
        let counts: CountOutbox = {
            let current = Arc::clone(&current_store);
            Arc::new(move || {
                let store = current.lock().ok().and_then(|s| s.clone());
                Box::pin(async move {
                    match store {
                        Some(s) => s.read(queue::counts).await.ok(),
                        None => Some(QueueCounts::default()),
                    }
                })
            })
        };
        let sink = events::start(events.clone(), counts, cancel.clone());
        let (connection, _) = watch::channel(ConnectionState::Offline);
        let engine = Engine {
            inner: Arc::new(Inner {
                project,
                auth,
                data_dir: config.data_dir,
                store_options: config.store,
                sender_options: config.sender,
                sync_options: config.sync,
                live_options: config.live,
                doc_options: config.docs,
                events,
                sink,
                connection,
                account: Mutex::new(None),
                current_store,
                switching: tokio::sync::Mutex::new(()),
                cancel: cancel.clone(),
                _stop_tasks: cancel.clone().drop_guard(),
            }),
        };
        engine.spawn_forwarders();
        if let Some(session) = engine.inner.auth.session() {
            let _guard = engine.inner.switching.lock().await;
            engine.open_account(session.user.id).await?;
        }
        Ok(engine)
    }

    /// Connection states and auth events become events.
    fn spawn_forwarders(&self) {
        let mut states = self.inner.connection.subscribe();
        let events = self.inner.events.clone();
        let cancel = self.inner.cancel.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    changed = states.changed() => if changed.is_err() { return },
                }
                let state = *states.borrow_and_update();
                let _ = events.send(Event::Connection { state });
            }
        });
        let mut auth_events = self.inner.auth.events();
        let events = self.inner.events.clone();
        let cancel = self.inner.cancel.clone();
        tokio::spawn(async move {
            loop {
                let e = tokio::select! {
                    _ = cancel.cancelled() => return,
                    e = auth_events.recv() => e,
                };
                match e {
                    Ok(AuthEvent::SignedOut { .. }) => {
                        let _ = events.send(Event::Session { user_id: None });
                    }
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
    }

    fn account(&self) -> Result<Arc<Account>, EngineError> {
        self.inner.account.lock().map_err(|_| EngineError::NotSignedIn)?.clone().ok_or(EngineError::NotSignedIn)
    }

    /// Opens `user`'s database and starts its tasks (the caller holds `switching`).
    async fn open_account(&self, user: Uuid) -> Result<(), EngineError> {
        if self.account().is_ok_and(|a| a.me == user) {
            return Ok(());
        }
        self.close_account().await;
        let dir = self.inner.data_dir.join("accounts").join(user.to_string());
        std::fs::create_dir_all(&dir)
            .map_err(|e| EngineError::Config(format!("cannot create {}: {e}", dir.display())))?;
        let store = Store::open(dir.join("cache.db"), self.inner.store_options.clone()).await?;
        let signals = Arc::new(Signals::default());
        let cancel = self.inner.cancel.child_token();
        let sync = Mirror {
            store: store.clone(),
            auth: self.inner.auth.clone(),
            project: self.inner.project.clone(),
            me: user,
            sink: self.inner.sink.clone(),
            options: self.inner.sync_options.clone(),
        };
        let sender = Sender {
            store: store.clone(),
            auth: self.inner.auth.clone(),
            project: self.inner.project.clone(),
            signals: Arc::clone(&signals),
            connection: self.inner.connection.clone(),
            sink: self.inner.sink.clone(),
            options: self.inner.sender_options.clone(),
        };
        let sync_wanted = Arc::new(Notify::new());
        let mut tasks = vec![tokio::spawn(sender.run(cancel.clone()))];
        let realtime = if self.inner.live_options.enabled {
            let parts = LiveParts {
                mirror: sync.clone(),
                auth: self.inner.auth.clone(),
                signals: Arc::clone(&signals),
                sync_wanted: Arc::clone(&sync_wanted),
                connection: self.inner.connection.clone(),
            };
            match live::start(&self.inner.project, &self.inner.live_options, parts, cancel.clone()) {
                Ok((client, live_tasks)) => {
                    tasks.extend(live_tasks);
                    Some(Live::new(
                        client,
                        user,
                        self.inner.live_options.clone(),
                        self.inner.events.clone(),
                        cancel.clone(),
                    ))
                }
                Err(e) => {
                    cancel.cancel();
                    for t in tasks {
                        let _ = t.await;
                    }
                    store.close().await;
                    return Err(EngineError::Config(format!("realtime: {e}")));
                }
            }
        } else {
            None
        };
        let docs = Arc::new(Docs::new(
            store.clone(),
            user,
            self.inner.auth.clone(),
            self.inner.project.clone(),
            self.inner.sink.clone(),
            self.inner.events.clone(),
            Arc::clone(&signals),
            realtime.as_ref().map(|r| r.client.clone()),
            self.inner.doc_options.clone(),
            cancel.clone(),
        ));
        tasks.push(tokio::spawn(catch_up_task(
            sync.clone(),
            Arc::clone(&docs),
            Arc::clone(&sync_wanted),
            Arc::clone(&signals),
            self.inner.connection.clone(),
            cancel.clone(),
        )));
        tasks.push(tokio::spawn(watch_document_access(
            Arc::clone(&docs),
            self.inner.events.subscribe(),
            cancel.clone(),
        )));
        // Edits a crash left unqueued go out first.
        if let Err(e) = docs.flush_all().await {
            tracing::warn!(error = %e, "leftover document edits could not be queued yet");
        }
        let account = Arc::new(Account {
            docs,
            realtime,
            me: user,
            store: store.clone(),
            signals,
            sync,
            sync_wanted: Arc::clone(&sync_wanted),
            cancel,
            tasks: tokio::sync::Mutex::new(tasks),
        });
        if let Ok(mut slot) = self.inner.account.lock() {
            *slot = Some(account);
        }
        if let Ok(mut slot) = self.inner.current_store.lock() {
            *slot = Some(store);
        }
        sync_wanted.notify_one();
        let _ = self.inner.events.send(Event::Session { user_id: Some(user) });
        self.inner.sink.send(Changes { outbox: true, ..Changes::default() });
        Ok(())
    }

    async fn close_account(&self) {
        let account = self.inner.account.lock().ok().and_then(|mut a| a.take());
        if let Ok(mut slot) = self.inner.current_store.lock() {
            *slot = None;
        }
        if let Some(account) = account {
            account.stop().await;
            let store = account.store.clone();
            drop(account);
            store.close().await;
            self.inner.connection.send_replace(ConnectionState::Offline);
        }
    }

    // ---- session -------------------------------------------------------------------------

    /// Signs in and opens the user's database.
    pub async fn sign_in(&self, email: &str, password: &str) -> Result<Uuid, EngineError> {
        let _guard = self.inner.switching.lock().await;
        let session = self.inner.auth.sign_in_with_password(email, password).await?;
        self.open_account(session.user.id).await?;
        Ok(session.user.id)
    }

    /// Creates an account (with `display_name` in its metadata) and signs in.
    pub async fn sign_up(&self, email: &str, password: &str, display_name: &str) -> Result<Uuid, EngineError> {
        let _guard = self.inner.switching.lock().await;
        let mut data = Map::new();
        data.insert("display_name".into(), Value::String(display_name.to_string()));
        match self.inner.auth.sign_up_with_data(email, password, data).await? {
            SignUp::SignedIn(session) => {
                self.open_account(session.user.id).await?;
                Ok(session.user.id)
            }
            SignUp::ConfirmationRequired(_) => Err(EngineError::NotSignedIn),
        }
    }

    /// Signs out: stops sending (the queue stays on disk for the next sign-in of this user),
    /// closes the database, ends the session. A server that cannot be reached does not keep
    /// the user signed in locally.
    pub async fn sign_out(&self) -> Result<(), EngineError> {
        let _guard = self.inner.switching.lock().await;
        self.close_account().await;
        if let Err(e) = self.inner.auth.sign_out().await {
            tracing::info!(error = %e, "the server may not have revoked the session");
        }
        let _ = self.inner.events.send(Event::Session { user_id: None });
        Ok(())
    }

    /// The auth client (for the realtime client's tokens: [`Auth::sessions`]).
    pub fn auth(&self) -> &Auth {
        &self.inner.auth
    }

    /// The signed-in user whose database is open.
    pub fn user_id(&self) -> Option<Uuid> {
        self.account().ok().map(|a| a.me)
    }

    /// Stops every task and closes the database (the queue stays on disk).
    pub async fn shutdown(&self) {
        let _guard = self.inner.switching.lock().await;
        self.close_account().await;
        self.inner.cancel.cancel();
    }

    // ---- status and events ---------------------------------------------------------------

    /// Events from now on (see [`crate::events`]).
    pub fn events(&self) -> broadcast::Receiver<Event> {
        self.inner.events.subscribe()
    }

    pub fn connection(&self) -> ConnectionState {
        *self.inner.connection.borrow()
    }

    /// The OS (or the realtime client) says the network is back: retry sending now and catch
    /// up.
    pub fn network_back(&self) {
        if let Ok(a) = self.account() {
            a.signals.set_online();
            a.sync_wanted.notify_one();
            if let Some(rt) = &a.realtime {
                rt.client.network_back();
            }
        }
    }

    /// The OS says there is no network: nothing is attempted (status [`ConnectionState::Offline`])
    /// until [`Engine::network_back`]; changes are queued and keep folding meanwhile.
    pub fn network_down(&self) {
        if let Ok(a) = self.account() {
            a.signals.set_offline();
            if let Some(rt) = &a.realtime {
                rt.client.network_lost();
            }
        }
    }

    /// Catches every stream up through REST now.
    pub async fn sync_now(&self) -> Result<(), EngineError> {
        Ok(self.account()?.sync.catch_up().await?)
    }

    /// Applies a row change pushed by the server (the realtime client's postgres_changes).
    pub async fn apply_remote(&self, change: RemoteChange) -> Result<(), EngineError> {
        Ok(self.account()?.sync.apply_remote(change).await?)
    }

    // ---- chat ----------------------------------------------------------------------------

    pub async fn rooms(&self) -> Result<Vec<Room>, EngineError> {
        let a = self.account()?;
        let me = a.me;
        Ok(a.store.read(move |c| cache::rooms(c, me)).await?)
    }

    /// The newest `limit` messages of `room` from the cache (unsent ones last).
    pub async fn messages(&self, room: Uuid, limit: u32) -> Result<MessagePage, EngineError> {
        let a = self.account()?;
        Ok(a.store.read(move |c| cache::history(c, room, None, limit)).await?)
    }

    /// A page of history older than `before` (the newest when `None`): cache first, then the
    /// gap from the server.
    pub async fn history(&self, room: Uuid, before: Option<Anchor>, limit: u32) -> Result<MessagePage, EngineError> {
        Ok(self.account()?.sync.history(room, before, limit).await?)
    }

    pub async fn message(&self, id: Uuid) -> Result<Option<Message>, EngineError> {
        let a = self.account()?;
        Ok(a.store.read(move |c| cache::message(c, id)).await?)
    }

    async fn act(&self, action: Action) -> Result<(), EngineError> {
        let a = self.account()?;
        let me = a.me;
        let changes = a.store.write(move |tx, inflight| queue::enqueue(tx, inflight, me, action)).await?;
        self.inner.sink.send(changes);
        a.signals.work.notify_one();
        Ok(())
    }

    /// Sends a message: stored and shown at once (pending), delivered when possible.
    pub async fn send_message(&self, room: Uuid, content: &str) -> Result<Uuid, EngineError> {
        self.send_reply(room, content, None).await
    }

    pub async fn send_reply(&self, room: Uuid, content: &str, reply_to: Option<Uuid>) -> Result<Uuid, EngineError> {
        let id = Uuid::now_v7();
        self.act(Action::SendMessage { id, room_id: room, content: content.to_string(), reply_to }).await?;
        Ok(id)
    }

    pub async fn edit_message(&self, id: Uuid, content: &str) -> Result<(), EngineError> {
        self.act(Action::EditMessage { id, content: content.to_string() }).await
    }

    pub async fn delete_message(&self, id: Uuid) -> Result<(), EngineError> {
        self.act(Action::DeleteMessage { id }).await
    }

    pub async fn react(&self, message: Uuid, emoji: &str) -> Result<(), EngineError> {
        self.act(Action::React { message_id: message, emoji: emoji.to_string() }).await
    }

    pub async fn unreact(&self, message: Uuid, emoji: &str) -> Result<(), EngineError> {
        self.act(Action::Unreact { message_id: message, emoji: emoji.to_string() }).await
    }

    /// Marks `room` read up to its newest cached message.
    pub async fn mark_read(&self, room: Uuid) -> Result<(), EngineError> {
        let a = self.account()?;
        let newest = a
            .store
            .read(move |c| {
                Ok(c.query_row("SELECT max(created_at) FROM messages WHERE room_id = ?1", [room.to_string()], |r| {
                    r.get::<_, Option<String>>(0)
                })?)
            })
            .await?;
        let at = newest.unwrap_or_else(crate::time::now);
        self.act(Action::MarkRead { room_id: room, at }).await
    }

    pub async fn set_draft(&self, room: Uuid, content: &str) -> Result<(), EngineError> {
        let a = self.account()?;
        let content = content.to_string();
        a.store
            .write(move |tx, _| {
                if content.is_empty() {
                    tx.execute("DELETE FROM drafts WHERE room_id = ?1", [room.to_string()])?;
                } else {
                    tx.execute(
                        "INSERT INTO drafts (room_id, content, updated_at) VALUES (?1, ?2, ?3)
                         ON CONFLICT (room_id) DO UPDATE SET content = excluded.content, updated_at = excluded.updated_at",
                        rusqlite::params![room.to_string(), content, crate::time::now()],
                    )?;
                }
                Ok(())
            })
            .await?;
        Ok(())
    }

    pub async fn draft(&self, room: Uuid) -> Result<Option<String>, EngineError> {
        let a = self.account()?;
        Ok(a.store
            .read(move |c| {
                use rusqlite::OptionalExtension;
                Ok(c.query_row("SELECT content FROM drafts WHERE room_id = ?1", [room.to_string()], |r| r.get(0))
                    .optional()?)
            })
            .await?)
    }

    // ---- typing and presence (realtime; no-ops when it is off) ----------------------------

    /// Enters `room`'s live channel: this user shows as online there, and
    /// [`Event::Typing`] / [`Event::Presence`] report the others. Idempotent.
    pub async fn enter_room(&self, room: Uuid) -> Result<(), EngineError> {
        if let Some(live) = &self.account()?.realtime {
            live.enter(room).await?;
        }
        Ok(())
    }

    /// Leaves `room`'s live channel (the others see this user go).
    pub async fn leave_room(&self, room: Uuid) -> Result<(), EngineError> {
        if let Some(live) = &self.account()?.realtime {
            live.leave(room).await;
        }
        Ok(())
    }

    /// Call on every keystroke in `room`'s box: a typing broadcast goes out at most once per
    /// [`LiveOptions::typing_throttle`] (true when one did); receivers drop it after
    /// [`LiveOptions::typing_ttl`] unless renewed. With the socket down nothing is sent and
    /// this returns at once (false): a late typing notice would be wrong.
    pub async fn typing(&self, room: Uuid) -> Result<bool, EngineError> {
        match &self.account()?.realtime {
            Some(live) => Ok(live.typing(room).await?),
            None => Ok(false),
        }
    }

    /// The user stopped typing (sent, or cleared the box): the others drop them now.
    pub async fn stop_typing(&self, room: Uuid) -> Result<(), EngineError> {
        if let Some(live) = &self.account()?.realtime {
            live.stop_typing(room).await?;
        }
        Ok(())
    }

    /// Who else types in `room` now (entered rooms only).
    pub fn typers(&self, room: Uuid) -> Vec<Uuid> {
        self.account().ok().and_then(|a| a.realtime.as_ref().map(|l| l.typers(room))).unwrap_or_default()
    }

    /// Who is online in `room`, this user included (entered rooms only).
    pub fn online(&self, room: Uuid) -> Vec<Uuid> {
        self.account().ok().and_then(|a| a.realtime.as_ref().map(|l| l.online(room))).unwrap_or_default()
    }

    // ---- people --------------------------------------------------------------------------

    /// Most ids one [`Engine::profiles`] call takes.
    pub const MAX_PROFILES: usize = 500;

    /// The profiles (display names) of `ids`, from the cache, with the ones it lacks asked from
    /// the server when it can be reached (see `Sync::profiles`).
    pub async fn profiles(&self, ids: Vec<Uuid>) -> Result<Vec<Profile>, EngineError> {
        if ids.len() > Self::MAX_PROFILES {
            return Err(StoreError::Refused(format!(
                "at most {} profiles at once ({} asked)",
                Self::MAX_PROFILES,
                ids.len()
            ))
            .into());
        }
        Ok(self.account()?.sync.profiles(ids).await?)
    }

    // ---- challenges ----------------------------------------------------------------------

    pub async fn challenges(&self) -> Result<Vec<Challenge>, EngineError> {
        Ok(self.account()?.store.read(cache::challenges).await?)
    }

    pub async fn submissions(&self, challenge: Uuid) -> Result<Vec<Submission>, EngineError> {
        Ok(self.account()?.store.read(move |c| cache::submissions(c, challenge)).await?)
    }

    pub async fn create_submission(&self, challenge: Uuid, title: &str, content: &str) -> Result<Uuid, EngineError> {
        let id = Uuid::now_v7();
        self.act(Action::CreateSubmission {
            id,
            challenge_id: challenge,
            title: title.to_string(),
            content: content.to_string(),
        })
        .await?;
        Ok(id)
    }

    /// The user's notification preferences.
    pub async fn notification_prefs(&self) -> Result<crate::notify::Prefs, EngineError> {
        Ok(self.account()?.store.read(crate::notify::prefs).await?)
    }

    pub async fn set_notification_prefs(&self, prefs: crate::notify::Prefs) -> Result<(), EngineError> {
        Ok(self.account()?.store.write(move |tx, _| crate::notify::set_prefs(tx, &prefs)).await?)
    }

    /// Mutes (or unmutes) the notifications about one challenge.
    pub async fn mute_challenge(&self, challenge: Uuid, muted: bool) -> Result<(), EngineError> {
        Ok(self.account()?.store.write(move |tx, _| crate::notify::mute_challenge(tx, challenge, muted)).await?)
    }

    // ---- analytics -----------------------------------------------------------------------

    /// `get_live_metrics()` from the server; the last known figures are kept in the cache.
    pub async fn live_metrics(&self) -> Result<LiveMetrics, EngineError> {
        let a = self.account()?;
        let token = self.inner.auth.access_token().await.ok_or(EngineError::NotSignedIn)?;
        let rest = Rest::with_bearer(self.inner.project.clone(), token);
        let metrics: LiveMetrics = rest.rpc("get_live_metrics", ()).execute().await?;
        let text = serde_json::to_string(&metrics).map_err(StoreError::from)?;
        a.store.write(move |tx, _| cache::kv_set(tx, "live_metrics", &text)).await?;
        self.inner.sink.send(Changes { metrics: Some(metrics), ..Changes::default() });
        Ok(metrics)
    }

    /// The last live metrics the server gave, when offline.
    pub async fn cached_metrics(&self) -> Result<Option<LiveMetrics>, EngineError> {
        let text = self.account()?.store.read(|c| cache::kv_get(c, "live_metrics")).await?;
        Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
    }

    /// The newest activity rows from the cache (catch-up keeps them current).
    pub async fn recent_activity(&self, limit: u32) -> Result<Vec<crate::model::Activity>, EngineError> {
        Ok(self.account()?.store.read(move |c| cache::recent_activity(c, limit)).await?)
    }

    /// Activity of the last `window` in buckets of `bucket`, for charts.
    pub async fn activity_series(
        &self,
        window: Duration,
        bucket: Duration,
    ) -> Result<Vec<crate::model::SeriesPoint>, EngineError> {
        let since = chrono::Utc::now().timestamp() - i64::try_from(window.as_secs()).unwrap_or(i64::MAX / 2);
        let bucket = i64::try_from(bucket.as_secs()).unwrap_or(i64::MAX);
        Ok(self.account()?.store.read(move |c| cache::activity_series(c, since, bucket)).await?)
    }

    /// Records an activity (queued like every write).
    pub async fn record_activity(&self, kind: &str, ref_id: Option<Uuid>) -> Result<(), EngineError> {
        self.act(Action::RecordActivity { kind: kind.to_string(), ref_id }).await
    }

    // ---- documents -----------------------------------------------------------------------

    /// The documents the user may open (cache).
    pub async fn documents(&self) -> Result<Vec<DocumentInfo>, EngineError> {
        Ok(self.account()?.docs.list().await?)
    }

    /// Binds a webview `Y.Doc` whose state vector is `state_vector` (v1; `[0]` when empty) to
    /// the document: opens it (or joins the bindings already open) and returns what the
    /// webview lacks, the engine's state vector, and whether the user may edit. See
    /// ARCHITECTURE.md, "Document binding protocol".
    pub async fn doc_open(&self, id: Uuid, state_vector: &[u8]) -> Result<DocSync, EngineError> {
        Ok(self.account()?.docs.open(id, state_vector).await?)
    }

    /// What a bound webview lacks, without binding again (after it missed events: a lagged
    /// event stream).
    pub async fn doc_diff(&self, id: Uuid, state_vector: &[u8]) -> Result<DocSync, EngineError> {
        Ok(self.account()?.docs.diff(id, state_vector).await?)
    }

    /// A local update (Yjs / yrs v1) of an open document: stored, applied, sent after the
    /// batch window. Refused, changing nothing, on a read-only document or malformed bytes.
    pub async fn doc_update(&self, id: Uuid, update: &[u8]) -> Result<(), EngineError> {
        Ok(self.account()?.docs.local(id, vec![update.to_vec()]).await?)
    }

    /// Several local updates at once (one log row).
    pub async fn doc_updates(&self, id: Uuid, updates: Vec<Vec<u8>>) -> Result<(), EngineError> {
        Ok(self.account()?.docs.local(id, updates).await?)
    }

    /// The webview's awareness update (y-protocols format) for an open document.
    pub fn doc_awareness(&self, id: Uuid, update: &[u8]) -> Result<(), EngineError> {
        Ok(self.account()?.docs.awareness_local(id, update)?)
    }

    /// One binding lets go of the document; the last one closes it.
    pub async fn doc_close(&self, id: Uuid) -> Result<(), EngineError> {
        Ok(self.account()?.docs.close(id).await?)
    }

    /// The document's plain text (open or not).
    pub async fn doc_text(&self, id: Uuid) -> Result<String, EngineError> {
        Ok(self.account()?.docs.text(id).await?)
    }

    pub async fn doc_status(&self, id: Uuid) -> Result<DocStatus, EngineError> {
        Ok(self.account()?.docs.status(id).await?)
    }

    /// The engine's state vector (v1) of an open document.
    pub async fn doc_state_vector(&self, id: Uuid) -> Result<Vec<u8>, EngineError> {
        Ok(self.account()?.docs.state_vector(id).await?)
    }

    /// Co-editors present in an open document (their awareness states).
    pub fn doc_peers(&self, id: Uuid) -> Vec<DocPeer> {
        self.account().map(|a| a.docs.peers(id)).unwrap_or_default()
    }

    /// Catches one document up through REST now.
    pub async fn doc_sync_now(&self, id: Uuid) -> Result<(), EngineError> {
        Ok(self.account()?.docs.catch_up(id).await?)
    }

    // ---- the outbound queue --------------------------------------------------------------

    pub async fn queue_counts(&self) -> Result<QueueCounts, EngineError> {
        Ok(self.account()?.store.read(queue::counts).await?)
    }

    /// Every queued change, oldest first (failed ones carry their reason).
    pub async fn outbox(&self) -> Result<Vec<OutboxEntry>, EngineError> {
        let entries = self.account()?.store.read(queue::entry::all).await?;
        Ok(entries.iter().map(queue::Entry::view).collect())
    }

    /// Puts a failed change back in line.
    pub async fn retry(&self, seq: i64) -> Result<(), EngineError> {
        let a = self.account()?;
        let changes = a.store.write(move |tx, _| queue::retry(tx, seq)).await?;
        self.inner.sink.send(changes);
        a.signals.work.notify_one();
        Ok(())
    }

    /// Drops a queued change (and later changes of the same row) and rolls its local echo
    /// back.
    pub async fn discard(&self, seq: i64) -> Result<(), EngineError> {
        let a = self.account()?;
        let changes = a.store.write(move |tx, inflight| queue::discard(tx, inflight, seq)).await?;
        self.inner.sink.send(changes);
        Ok(())
    }
}

/// The catch-up task of an account: runs a catch-up when asked ([`Account::sync_wanted`]) and
/// whenever the sender gets through after failing; retries a failed catch-up with backoff. A
/// catch-up that gets through also shows the connection as online (the sender may have had
/// nothing to send).
async fn catch_up_task(
    sync: Mirror,
    docs: Arc<Docs>,
    wanted: Arc<Notify>,
    signals: Arc<Signals>,
    connection: watch::Sender<ConnectionState>,
    cancel: CancellationToken,
) {
    let mut states = connection.subscribe();
    let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
    let mut last = *states.borrow_and_update();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = wanted.notified() => {}
            changed = states.changed() => {
                if changed.is_err() { return }
                let now = *states.borrow_and_update();
                let reconnected = now == ConnectionState::Online && last != ConnectionState::Online;
                last = now;
                if !reconnected { continue }
            }
        }
        let mut refreshed = false;
        loop {
            let done = match sync.catch_up().await {
                Ok(()) => {
                    docs.refresh_access().await;
                    docs.catch_up_all().await
                }
                Err(e) => Err(e),
            };
            match done {
                Ok(()) => {
                    backoff.reset();
                    if !signals.offline.load(std::sync::atomic::Ordering::SeqCst)
                        && !signals.socket_down.load(std::sync::atomic::Ordering::SeqCst)
                    {
                        connection.send_if_modified(|s| {
                            let was_offline = *s == ConnectionState::Offline;
                            if was_offline {
                                *s = ConnectionState::Online;
                            }
                            was_offline
                        });
                        // Our own change is not a reconnect to catch up after.
                        last = *states.borrow_and_update();
                    }
                    break;
                }
                Err(SyncError::NotSignedIn) => break,
                // A refused token: refresh once, then try again at once (never in a loop).
                Err(SyncError::Rest(e)) if e.retry() == Retry::Unauthorized && !refreshed => {
                    refreshed = true;
                    if let Err(e) = sync.auth.refresh().await {
                        tracing::info!(error = %e, "cannot refresh the refused session");
                        if !e.is_transient() {
                            break;
                        }
                    }
                }
                Err(e) => {
                    refreshed = false;
                    let delay = backoff.fail(e.retry_after());
                    tracing::debug!(error = %e, ?delay, "catch-up failed; retrying");
                    tokio::select! {
                        _ = cancel.cancelled() => return,
                        _ = tokio::time::sleep(delay) => {}
                        _ = wanted.notified() => {}
                    }
                }
            }
        }
    }
}

/// Open documents follow membership changes (role, revocation) as soon as the cache has them.
async fn watch_document_access(docs: Arc<Docs>, mut events: broadcast::Receiver<Event>, cancel: CancellationToken) {
    loop {
        let e = tokio::select! {
            _ = cancel.cancelled() => return,
            e = events.recv() => e,
        };
        match e {
            Ok(Event::Documents { .. }) | Err(broadcast::error::RecvError::Lagged(_)) => docs.refresh_access().await,
            Ok(_) => {}
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// The shell runs engine calls on a multi-threaded runtime (Tauri commands): every future the
/// API returns must be `Send`. Compiles only if they are.
#[cfg(test)]
#[allow(dead_code)]
fn engine_futures_are_send(e: &Engine, id: Uuid) {
    fn send<T: Send>(_: T) {}
    send(e.doc_open(id, &[0]));
    send(e.doc_update(id, &[0, 0]));
    send(e.doc_updates(id, Vec::new()));
    send(e.doc_diff(id, &[0]));
    send(e.doc_close(id));
    send(e.doc_text(id));
    send(e.doc_status(id));
    send(e.doc_state_vector(id));
    send(e.doc_sync_now(id));
    send(e.documents());
    send(e.sign_in("", ""));
    send(e.send_message(id, ""));
    send(e.sync_now());
}
