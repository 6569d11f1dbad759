//! The realtime wiring of one signed-in account: one [`RealtimeClient`] per account, its
//! token kept current from [`Auth::sessions`], one channel (`ruwad:<user id>`) with a
//! postgres_changes subscription per cached table whose deliveries go to [`Mirror::apply_remote`]
//! in arrival order (the server checks the row rules of every delivery, so the user only gets
//! rows they may see; tables the cache does not hold are ignored there).
//!
//! "Realtime is a hint, REST is the record": after **every** `Subscribed` of that channel (the
//! first join and each rejoin after a reconnect, an error or a server-side close) the account's
//! catch-up task is woken, so the order is always subscribe first, then catch up through REST
//! from the cursors — whatever fell between the drop and the rejoin comes back by REST, and
//! merging by id makes the overlap harmless. Deliveries never move cursors.
//!
//! Connection status: the realtime [`RtState`] is mapped onto the engine's
//! [`ConnectionState`] (`Connected` → online, `Connecting` → connecting with the time left
//! until the next attempt, `Offline` → offline). A reconnect (any `Connected` after something
//! else) also wakes the outbox sender, cutting its backoff short.
//!
//! Failure modes: the client reconnects forever on its own (see `ruwad_supabase::realtime`);
//! an `apply_remote` that fails (a row the cache cannot read, a store error) is logged and
//! dropped — the next catch-up brings the row from REST. A subscription that overflowed
//! (`missed`) is healed the same way: the task asks for a catch-up when it notices.
//!
//! Typing and presence (`Live`): a room the user *enters* (`Engine::enter_room`) gets the
//! private channel `chat:<room>` (the server admits members only) with presence keyed by user
//! id and tracked at once, so the others see who is online ([`Event::Presence`]; the client
//! re-tracks after every rejoin). `Engine::typing` broadcasts `typing` at most once per
//! [`LiveOptions::typing_throttle`]; receivers keep a typer for [`LiveOptions::typing_ttl`]
//! after their last broadcast, or drop them at once on `stop_typing`, and report each change
//! of the set as [`Event::Typing`]. Nothing of this is stored.
//!
//! Known limits: the sender and the catch-up task also write the connection state (a REST
//! request that gets through shows online even while the socket is reconnecting); a reconnect
//! runs two catch-ups (one for the state going online, one for `Subscribed`), harmless but
//! redundant; a typing broadcast names its sender in the payload, so a room member could
//! pretend another member types; `typing` waits for the push (up to the client's push timeout)
//! while the socket is down.

use std::collections::{BTreeMap, HashMap};

use futures_util::StreamExt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ruwad_supabase::auth::Auth;
use ruwad_supabase::realtime::{
    Backoff as RtBackoff, Broadcast, ChangeEvent, ChangeKind, Channel, ChannelConfig, ChannelEvent,
    ConnectionState as RtState, PostgresChange, PostgresChangesFilter, PresenceEvent, RealtimeClient, RealtimeConfig,
    SendError, Subscription,
};
use ruwad_supabase::Project;
use serde_json::{json, Value};
use tokio::sync::{broadcast, watch, Notify};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::events::{ConnectionState, Event};
use crate::queue::sender::Signals;
use crate::sync::{Mirror, RemoteChange, RemoteKind};

/// How the engine talks to Realtime.
#[derive(Debug, Clone)]
pub struct LiveOptions {
    /// Off: no socket at all (REST catch-up only, e.g. for batch tools and some tests).
    pub enabled: bool,
    /// Open the socket to this address instead of the project's host (tunnels, test proxies).
    pub connect_to: Option<SocketAddr>,
    /// The longest a dead (black-holed) link goes unnoticed.
    pub heartbeat_interval: Duration,
    /// How long opening the socket (TCP, TLS, WebSocket handshake) may take.
    pub connect_timeout: Duration,
    /// Reconnect schedule of the socket.
    pub backoff: RtBackoff,
    /// At most one typing broadcast per room this often while the user types.
    pub typing_throttle: Duration,
    /// A typer is dropped this long after their last typing broadcast.
    pub typing_ttl: Duration,
}

impl Default for LiveOptions {
    fn default() -> LiveOptions {
        LiveOptions {
            enabled: true,
            connect_to: None,
            heartbeat_interval: Duration::from_secs(25),
            connect_timeout: Duration::from_secs(10),
            backoff: RtBackoff::default(),
            typing_throttle: Duration::from_secs(2),
            typing_ttl: Duration::from_secs(5),
        }
    }
}

/// What the account's realtime task needs from the engine.
pub(crate) struct LiveParts {
    pub mirror: Mirror,
    pub auth: Auth,
    pub signals: Arc<Signals>,
    pub sync_wanted: Arc<Notify>,
    pub connection: watch::Sender<ConnectionState>,
}

/// Starts the realtime client of an account and its tasks (they stop with `cancel`).
pub(crate) fn start(
    project: &Project,
    options: &LiveOptions,
    parts: LiveParts,
    cancel: CancellationToken,
) -> Result<(RealtimeClient, Vec<JoinHandle<()>>), String> {
    let mut config = RealtimeConfig::for_project(project);
    config.connect_to = options.connect_to;
    config.heartbeat_interval = options.heartbeat_interval;
    config.probe_timeout = config.probe_timeout.min(options.heartbeat_interval);
    config.connect_timeout = options.connect_timeout;
    config.join_timeout = config.join_timeout.min(options.connect_timeout);
    config.backoff = options.backoff;
    config.access_token = parts.auth.session().map(|s| s.access_token);
    let client = RealtimeClient::connect(config).map_err(|e| e.to_string())?;
    let tokens = tokio::spawn(forward_tokens(client.clone(), parts.auth.clone(), cancel.clone()));
    let states = tokio::spawn(forward_states(
        client.state(),
        Arc::clone(&parts.signals),
        parts.connection.clone(),
        cancel.clone(),
    ));
    let changes = tokio::spawn(feed_changes(client.clone(), parts, cancel));
    Ok((client, vec![tokens, states, changes]))
}

/// The auth module's loop: every new session's access token goes to the socket.
async fn forward_tokens(client: RealtimeClient, auth: Auth, cancel: CancellationToken) {
    let mut sessions = auth.sessions();
    loop {
        let token = sessions.borrow_and_update().as_ref().map(|s| s.access_token.clone());
        client.set_auth(token);
        tokio::select! {
            _ = cancel.cancelled() => return,
            changed = sessions.changed() => if changed.is_err() { return },
        }
    }
}

/// The engine's view of a realtime state (`None`: no change to show).
pub(crate) fn engine_state(state: &RtState, now: tokio::time::Instant) -> Option<ConnectionState> {
    match state {
        RtState::Connected => Some(ConnectionState::Online),
        RtState::Connecting { attempt, retry_at, .. } => Some(ConnectionState::Connecting {
            attempt: *attempt,
            retry_in_ms: retry_at
                .map(|at| u64::try_from(at.saturating_duration_since(now).as_millis()).unwrap_or(u64::MAX))
                .unwrap_or(0),
        }),
        RtState::Offline { .. } => Some(ConnectionState::Offline),
        RtState::Stopped => None,
    }
}

async fn forward_states(
    mut states: watch::Receiver<RtState>,
    signals: Arc<Signals>,
    connection: watch::Sender<ConnectionState>,
    cancel: CancellationToken,
) {
    let mut was_connected = false;
    loop {
        let state = states.borrow_and_update().clone();
        let connected = state.is_connected();
        signals
            .socket_down
            .store(!connected && !matches!(state, RtState::Stopped), std::sync::atomic::Ordering::SeqCst);
        if connected && !was_connected {
            // The network is evidently back: the sender retries now.
            signals.network_back.notify_one();
        }
        was_connected = connected;
        if let Some(s) = engine_state(&state, tokio::time::Instant::now()) {
            connection.send_if_modified(|cur| {
                let changed = *cur != s;
                *cur = s;
                changed
            });
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            changed = states.changed() => if changed.is_err() { return },
        }
    }
}

/// A realtime delivery as the cache takes it.
pub(crate) fn remote_change(c: PostgresChange) -> RemoteChange {
    RemoteChange {
        table: c.table,
        kind: match c.kind {
            ChangeKind::Insert => RemoteKind::Insert,
            ChangeKind::Update => RemoteKind::Update,
            ChangeKind::Delete => RemoteKind::Delete,
        },
        record: c.record.map(Value::Object),
        old_record: c.old_record.map(Value::Object),
    }
}

/// The tables whose row changes the account's channel receives (what the cache holds).
pub(crate) const CACHED_TABLES: &[&str] = &[
    "profiles",
    "chat_rooms",
    "room_members",
    "chat_messages",
    "message_reactions",
    "challenges",
    "challenge_submissions",
    "user_activities",
    "collaborative_documents",
    "document_members",
];

/// The account's channel: every `Subscribed` wakes the catch-up; every row change goes to the
/// cache.
async fn feed_changes(client: RealtimeClient, parts: LiveParts, cancel: CancellationToken) {
    let channel = client.channel(&format!("ruwad:{}", parts.mirror.me), ChannelConfig::default());
    // Listen to the channel's events before the first join can happen.
    let mut events = channel.events();
    // One binding per cached table (not the whole schema: document updates come on each open
    // document's own channel, filtered by document).
    let subscriptions: Vec<Subscription<PostgresChange>> = CACHED_TABLES
        .iter()
        .map(|t| {
            channel.subscribe_changes(PostgresChangesFilter {
                event: ChangeEvent::All,
                schema: "public".into(),
                table: Some((*t).into()),
                filter: None,
            })
        })
        .collect();
    let mut changes = futures_util::stream::select_all(subscriptions);
    let mut missed = 0;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            e = events.recv() => match e {
                Some(ChannelEvent::Subscribed) => {
                    tracing::debug!("realtime: subscribed; catching up through REST");
                    parts.sync_wanted.notify_one();
                }
                Some(ChannelEvent::Error(e) | ChannelEvent::Closed(e)) => {
                    tracing::info!(error = %e, "realtime: channel trouble; it rejoins on its own");
                }
                Some(_) => {}
                None => return,
            },
            c = changes.next() => match c {
                Some(c) => {
                    if let Err(e) = parts.mirror.apply_remote(remote_change(c)).await {
                        tracing::warn!(error = %e, "realtime: a delivery could not be applied; catch-up will bring it");
                        parts.sync_wanted.notify_one();
                    }
                    let now: u64 = changes.iter().map(Subscription::missed).sum();
                    if now != missed {
                        missed = now;
                        parts.sync_wanted.notify_one();
                    }
                }
                None => return,
            },
        }
    }
}

// ---- typing and presence -----------------------------------------------------------------

/// The realtime side of a signed-in account: the client and the rooms the user has entered.
pub(crate) struct Live {
    pub client: RealtimeClient,
    me: Uuid,
    options: LiveOptions,
    events: broadcast::Sender<Event>,
    cancel: CancellationToken,
    /// A std mutex: held to look up or swap entries, never across an `.await`.
    rooms: Mutex<HashMap<Uuid, RoomLive>>,
}

/// One entered room: its private channel `chat:<room>` and the task that watches it.
struct RoomLive {
    channel: Channel,
    /// When this user's last typing broadcast went out (the throttle).
    last_typing: Option<Instant>,
    cancel: CancellationToken,
    typers: Arc<Mutex<BTreeMap<Uuid, Instant>>>,
}

/// The typing broadcast (`{"user_id", "typing"}`) of the `typing` event.
const TYPING: &str = "typing";

impl Live {
    pub(crate) fn new(
        client: RealtimeClient,
        me: Uuid,
        options: LiveOptions,
        events: broadcast::Sender<Event>,
        cancel: CancellationToken,
    ) -> Live {
        Live { client, me, options, events, cancel, rooms: Mutex::new(HashMap::new()) }
    }

    fn rooms(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, RoomLive>> {
        // Entries are inserted or removed whole: a panic elsewhere cannot leave one half-made.
        self.rooms.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Joins the room's channel (idempotent): tracks this user as present, and starts
    /// reporting who types and who is online there.
    pub(crate) async fn enter(&self, room: Uuid) -> Result<(), SendError> {
        let channel = {
            let mut rooms = self.rooms();
            if rooms.contains_key(&room) {
                return Ok(());
            }
            let channel = self.client.channel(
                &format!("chat:{room}"),
                ChannelConfig { private: true, presence_key: Some(self.me.to_string()), ..ChannelConfig::default() },
            );
            let cancel = self.cancel.child_token();
            let typers = Arc::new(Mutex::new(BTreeMap::new()));
            // Listen before the join can complete.
            let listeners = (channel.broadcasts(TYPING), channel.presence_events());
            tokio::spawn(watch_room(
                room,
                channel.clone(),
                listeners,
                Arc::clone(&typers),
                self.options.typing_ttl,
                self.events.clone(),
                cancel.clone(),
            ));
            rooms.insert(room, RoomLive { channel: channel.clone(), last_typing: None, cancel, typers });
            channel
        };
        channel.track(json!({ "user_id": self.me })).await
    }

    /// Leaves the room's channel (presence ends for the others).
    pub(crate) async fn leave(&self, room: Uuid) {
        let entry = self.rooms().remove(&room);
        if let Some(entry) = entry {
            entry.cancel.cancel();
            let _ = entry.channel.untrack().await;
        }
    }

    /// This user is typing in `room` (entered first if needed): a broadcast at most once per
    /// [`LiveOptions::typing_throttle`]. True when one went out.
    pub(crate) async fn typing(&self, room: Uuid) -> Result<bool, SendError> {
        // A typing notice is only worth something now: with the socket down it is dropped
        // rather than waiting in the push buffer (and blocking the caller) until it is stale.
        if !self.client.state().borrow().is_connected() {
            return Ok(false);
        }
        self.enter(room).await?;
        let channel = {
            let mut rooms = self.rooms();
            let Some(entry) = rooms.get_mut(&room) else { return Ok(false) };
            let now = Instant::now();
            if entry.last_typing.is_some_and(|t| now.duration_since(t) < self.options.typing_throttle) {
                return Ok(false);
            }
            entry.last_typing = Some(now);
            entry.channel.clone()
        };
        channel.send_broadcast(TYPING, json!({ "user_id": self.me, "typing": true })).await?;
        Ok(true)
    }

    /// This user stopped typing (sent the message, cleared the box): the others drop them at
    /// once instead of at expiry.
    pub(crate) async fn stop_typing(&self, room: Uuid) -> Result<(), SendError> {
        let channel = {
            let mut rooms = self.rooms();
            let Some(entry) = rooms.get_mut(&room) else { return Ok(()) };
            if entry.last_typing.take().is_none() {
                return Ok(());
            }
            entry.channel.clone()
        };
        channel.send_broadcast(TYPING, json!({ "user_id": self.me, "typing": false })).await
    }

    /// Who types in `room` now (not expired).
    pub(crate) fn typers(&self, room: Uuid) -> Vec<Uuid> {
        let typers = self.rooms().get(&room).map(|e| Arc::clone(&e.typers));
        let now = Instant::now();
        typers
            .map(|t| {
                t.lock().unwrap_or_else(|p| p.into_inner()).iter().filter(|(_, e)| **e > now).map(|(u, _)| *u).collect()
            })
            .unwrap_or_default()
    }

    /// Who is online in `room` (entered rooms only).
    pub(crate) fn online(&self, room: Uuid) -> Vec<Uuid> {
        self.rooms().get(&room).map(|e| present(&e.channel)).unwrap_or_default()
    }
}

/// The user ids present on a channel, sorted.
fn present(channel: &Channel) -> Vec<Uuid> {
    let state = channel.presence_state().borrow().clone();
    let mut ids: Vec<Uuid> = state.keys().filter_map(|k| k.parse().ok()).collect();
    ids.sort();
    ids.dedup();
    ids
}

/// Reports a room's typers (expiring each `ttl` after their last broadcast) and presence.
async fn watch_room(
    room: Uuid,
    channel: Channel,
    (mut typing, mut presence): (Subscription<Broadcast>, Subscription<PresenceEvent>),
    typers: Arc<Mutex<BTreeMap<Uuid, Instant>>>,
    ttl: Duration,
    events: broadcast::Sender<Event>,
    cancel: CancellationToken,
) {
    let mut online = Vec::new();
    let lock = |t: &Mutex<BTreeMap<Uuid, Instant>>| -> Vec<Uuid> {
        t.lock().unwrap_or_else(|p| p.into_inner()).keys().copied().collect()
    };
    loop {
        let next_expiry = typers.lock().unwrap_or_else(|p| p.into_inner()).values().min().copied();
        let expiry = async {
            match next_expiry {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = expiry => {
                let now = Instant::now();
                typers.lock().unwrap_or_else(|p| p.into_inner()).retain(|_, at| *at > now);
                let _ = events.send(Event::Typing { room_id: room, user_ids: lock(&typers) });
            }
            b = typing.recv() => {
                let Some(b) = b else { return };
                let Some(p) = b.payload.json() else { continue };
                let Some(user) = p.get("user_id").and_then(Value::as_str).and_then(|u| u.parse::<Uuid>().ok()) else { continue };
                let on = p.get("typing").and_then(Value::as_bool).unwrap_or(true);
                let changed = {
                    let mut t = typers.lock().unwrap_or_else(|p| p.into_inner());
                    if on { t.insert(user, Instant::now() + ttl).is_none() } else { t.remove(&user).is_some() }
                };
                if changed {
                    let _ = events.send(Event::Typing { room_id: room, user_ids: lock(&typers) });
                }
            }
            e = presence.recv() => {
                if e.is_none() { return }
                let now = present(&channel);
                if now != online {
                    online = now;
                    let _ = events.send(Event::Presence { room_id: room, user_ids: online.clone() });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn realtime_states_map_to_the_status_the_ui_shows() {
        let now = Instant::now();
        assert_eq!(engine_state(&RtState::Connected, now), Some(ConnectionState::Online));
        assert_eq!(
            engine_state(
                &RtState::Connecting {
                    attempt: 3,
                    retry_at: Some(now + Duration::from_millis(1500)),
                    last_error: None
                },
                now
            ),
            Some(ConnectionState::Connecting { attempt: 3, retry_in_ms: 1500 })
        );
        assert_eq!(
            engine_state(&RtState::Connecting { attempt: 1, retry_at: None, last_error: None }, now),
            Some(ConnectionState::Connecting { attempt: 1, retry_in_ms: 0 }),
            "an attempt running now"
        );
        assert_eq!(
            engine_state(&RtState::Offline { retry_at: None, last_error: None }, now),
            Some(ConnectionState::Offline)
        );
        assert_eq!(engine_state(&RtState::Stopped, now), None, "a stopped client says nothing");
    }
}
