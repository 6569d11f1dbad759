//! The realtime wiring of one signed-in account: one [`RealtimeClient`] per account, its
//! token kept current from [`Auth::sessions`], one channel (`ruwad:<user id>`) with a
//! schema-wide postgres_changes subscription whose deliveries go to [`Mirror::apply_remote`]
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
//! Known limits: the sender and the catch-up task also write the connection state (a REST
//! request that gets through shows online even while the socket is reconnecting).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ruwad_supabase::auth::Auth;
use ruwad_supabase::realtime::{
    Backoff as RtBackoff, ChangeEvent, ChangeKind, ChannelConfig, ChannelEvent, ConnectionState as RtState,
    PostgresChange, PostgresChangesFilter, RealtimeClient, RealtimeConfig,
};
use ruwad_supabase::Project;
use serde_json::Value;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::events::ConnectionState;
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
}

impl Default for LiveOptions {
    fn default() -> LiveOptions {
        LiveOptions {
            enabled: true,
            connect_to: None,
            heartbeat_interval: Duration::from_secs(25),
            connect_timeout: Duration::from_secs(10),
            backoff: RtBackoff::default(),
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

/// The account's channel: every `Subscribed` wakes the catch-up; every row change goes to the
/// cache.
async fn feed_changes(client: RealtimeClient, parts: LiveParts, cancel: CancellationToken) {
    let channel = client.channel(&format!("ruwad:{}", parts.mirror.me), ChannelConfig::default());
    // Listen to the channel's events before the first join can happen.
    let mut events = channel.events();
    let mut changes = channel.subscribe_changes(PostgresChangesFilter {
        event: ChangeEvent::All,
        schema: "public".into(),
        table: None,
        filter: None,
    });
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
            c = changes.recv() => match c {
                Some(c) => {
                    if let Err(e) = parts.mirror.apply_remote(remote_change(c)).await {
                        tracing::warn!(error = %e, "realtime: a delivery could not be applied; catch-up will bring it");
                        parts.sync_wanted.notify_one();
                    }
                    let now = changes.missed();
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
