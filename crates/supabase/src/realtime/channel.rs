//! Channels: the refcounted handle callers hold, its configuration, its events and its
//! subscription streams. The channel's protocol state lives in the socket task
//! (`session`); a [`Channel`] only sends it registrations and pushes.
//!
//! - **Refcounted**: `RealtimeClient::channel` returns the existing channel when one with that
//!   topic is alive (its configuration wins; the later one is ignored, as realtime-js does).
//!   Clones, and every stream obtained from a channel, keep it alive; when the last goes, the
//!   task sends `phx_leave` and drops the channel's state.
//! - **Streams** ([`Subscription`]) are bounded; a subscriber that does not keep up loses items
//!   (counted by [`Subscription::missed`]) instead of stalling the connection.
//! - **Registration is ordered**: a stream is registered before the call returns a value, in the
//!   order of calls, and before any frame that arrives after it. A postgres_changes filter or the
//!   first presence listener changes the join config, so the channel rejoins; [`Channel::ready`]
//!   waits until everything registered so far is live.
//!
//! Failure modes: pushes fail with a typed [`SendError`] (timeout, server rejection, limit,
//! overflow of the pre-join buffer, disconnect before the reply, client stopped). Channel
//! failures are [`ChannelEvent::Error`] / [`ChannelEvent::Closed`] and the [`ChannelStatus`].

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::Stream;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot, watch};

use super::broadcast::{Broadcast, BroadcastPayload};
use super::client::ClientInner;
use super::error::{ChannelError, SendError};
use super::postgres_changes::{PostgresChange, PostgresChangesFilter};
use super::presence::{PresenceEvent, PresenceState};
use super::session::{ChannelId, Command, Control, Delivery, Listener, Push};
use super::state::ChannelStatus;

/// How a channel joins (spec §1.8).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChannelConfig {
    /// Receive our own broadcasts.
    pub broadcast_self: bool,
    /// Have the server acknowledge each broadcast; `send_broadcast` then waits for it.
    pub broadcast_ack: bool,
    /// Enables presence with this key (`""`: the server picks one). Presence is also enabled
    /// by the first [`Channel::presence_events`] listener.
    pub presence_key: Option<String>,
    /// A private channel (authorised by the server's topic rules).
    pub private: bool,
}

/// A `system` message of a channel.
#[derive(Debug, Clone, PartialEq)]
pub struct SystemMessage {
    /// `postgres_changes` or `system`.
    pub extension: String,
    /// `status` was `ok`.
    pub ok: bool,
    pub message: String,
    pub payload: Value,
}

impl SystemMessage {
    pub(crate) fn from_payload(payload: Value) -> SystemMessage {
        let text = |k: &str| payload.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        SystemMessage {
            extension: text("extension"),
            ok: payload.get("status").and_then(Value::as_str) == Some("ok"),
            message: text("message"),
            payload,
        }
    }
}

/// What happens to a channel.
#[derive(Debug, Clone, PartialEq)]
pub enum ChannelEvent {
    /// Joined (again): the first join and every rejoin — after a reconnect, an error, or a new
    /// postgres_changes filter (the server replaces the channel, so a change can fall between
    /// the two). Realtime does not replay what was missed meanwhile: catch up through REST here.
    Subscribed,
    /// The connection dropped; the channel rejoins when it is back.
    Disconnected,
    /// A join failed or the channel broke; see the error for what happens next.
    Error(ChannelError),
    /// The server closed the channel (`phx_close`), for the reason of the `system` error
    /// before it (e.g. an expired token).
    Closed(ChannelError),
    /// A `system` message (e.g. `Subscribed to PostgreSQL`, or the error before a close).
    System(SystemMessage),
}

pub(crate) struct ChannelInner {
    pub(crate) id: ChannelId,
    pub(crate) topic: String,
    pub(crate) client: Arc<ClientInner>,
    status: watch::Receiver<ChannelStatus>,
    live: watch::Receiver<u64>,
    presence: watch::Receiver<Arc<PresenceState>>,
    /// Listener versions handed out (each registration gets the next).
    version: AtomicU64,
}

impl ChannelInner {
    pub(crate) fn new(
        id: ChannelId,
        topic: String,
        client: Arc<ClientInner>,
        status: watch::Receiver<ChannelStatus>,
        live: watch::Receiver<u64>,
        presence: watch::Receiver<Arc<PresenceState>>,
    ) -> ChannelInner {
        ChannelInner { id, topic, client, status, live, presence, version: AtomicU64::new(0) }
    }
}

impl Drop for ChannelInner {
    fn drop(&mut self) {
        self.client.release(self.id, &self.topic);
    }
}

/// A handle to one channel; cheap to clone. See the module docs.
#[derive(Clone)]
pub struct Channel {
    pub(crate) inner: Arc<ChannelInner>,
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel")
            .field("topic", &self.inner.topic)
            .field("status", &*self.inner.status.borrow())
            .finish()
    }
}

impl Channel {
    /// The full topic, `realtime:<name>`.
    pub fn topic(&self) -> &str {
        &self.inner.topic
    }

    /// Whether two handles share one channel.
    pub fn same_channel(&self, other: &Channel) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// The channel's status, observable.
    pub fn status(&self) -> watch::Receiver<ChannelStatus> {
        self.inner.status.clone()
    }

    /// Waits until the channel is joined with every subscription registered before this call
    /// live. Returns the error if the channel is refused or waits for a token. Not bounded:
    /// wrap it in a timeout.
    pub async fn ready(&self) -> Result<(), ChannelError> {
        let want = self.inner.version.load(Ordering::SeqCst);
        let mut status = self.inner.status.clone();
        let mut live = self.inner.live.clone();
        loop {
            {
                let s = status.borrow_and_update().clone();
                let v = *live.borrow_and_update();
                match s {
                    ChannelStatus::Joined if v >= want => return Ok(()),
                    ChannelStatus::WaitingForToken { error } | ChannelStatus::Refused { error } => return Err(error),
                    ChannelStatus::Closed => return Err(ChannelError::ClosedByServer { message: None }),
                    _ => {}
                }
            }
            tokio::select! {
                r = status.changed() => if r.is_err() { return Err(ChannelError::ClosedByServer { message: None }) },
                r = live.changed() => if r.is_err() { return Err(ChannelError::ClosedByServer { message: None }) },
            }
        }
    }

    fn listen<T>(&self, make: impl FnOnce(Delivery<T>) -> Listener) -> Subscription<T> {
        let (delivery, rx, missed) = Delivery::new(self.inner.client.config.queue_capacity);
        let version = self.inner.version.fetch_add(1, Ordering::SeqCst) + 1;
        self.inner.client.control(Control::Listen { id: self.inner.id, version, listener: make(delivery) });
        Subscription { rx, missed, _channel: self.clone() }
    }

    /// Row changes matching `filter`. The channel (re)joins to subscribe; see [`Channel::ready`].
    pub fn subscribe_changes(&self, filter: PostgresChangesFilter) -> Subscription<PostgresChange> {
        self.listen(|d| Listener::Changes(filter, d))
    }

    /// Broadcasts whose event is `event` (case-insensitive), or all for `"*"`.
    pub fn broadcasts(&self, event: &str) -> Subscription<Broadcast> {
        let event = event.to_string();
        self.listen(|d| Listener::Broadcast(event, d))
    }

    /// Presence `sync` / `join` / `leave` events; enables presence on the channel.
    pub fn presence_events(&self) -> Subscription<PresenceEvent> {
        self.listen(Listener::Presence)
    }

    /// Who is present now (updated with every `sync`).
    pub fn presence_state(&self) -> watch::Receiver<Arc<PresenceState>> {
        self.inner.presence.clone()
    }

    /// This channel's events (joins, errors, closes, system messages).
    pub fn events(&self) -> Subscription<ChannelEvent> {
        self.listen(Listener::Events)
    }

    async fn push(&self, push: Push) -> Result<(), SendError> {
        let (tx, rx) = oneshot::channel();
        let timeout = self.inner.client.config.push_timeout;
        let cmd = Command { id: self.inner.id, push, reply: tx };
        let work = async {
            self.inner.client.commands.send(cmd).await.map_err(|_| SendError::Closed)?;
            rx.await.map_err(|_| SendError::Closed)?
        };
        tokio::time::timeout(timeout, work).await.unwrap_or(Err(SendError::Timeout))
    }

    /// Broadcasts `payload` under `event` (kind-3 binary frame on vsn 2.0.0). Waits for the
    /// server's acknowledgement when the channel has `broadcast_ack`; otherwise succeeds once
    /// written. Before the channel is joined the push waits in a small buffer, within the push
    /// timeout.
    pub async fn send_broadcast(&self, event: &str, payload: Value) -> Result<(), SendError> {
        self.push(Push::Broadcast { event: event.into(), payload: BroadcastPayload::Json(payload) }).await
    }

    /// Broadcasts raw bytes (vsn 2.0.0 only).
    pub async fn send_broadcast_bytes(&self, event: &str, payload: bytes::Bytes) -> Result<(), SendError> {
        self.push(Push::Broadcast { event: event.into(), payload: BroadcastPayload::Binary(payload) }).await
    }

    /// Tracks `meta` (a JSON object) as this client's presence and waits for the server's reply.
    /// The meta is remembered and tracked again after every rejoin, until [`Channel::untrack`].
    pub async fn track(&self, meta: Value) -> Result<(), SendError> {
        let Value::Object(meta) = meta else { return Err(SendError::NotAnObject) };
        self.push(Push::Track(meta)).await
    }

    /// Stops tracking this client's presence.
    pub async fn untrack(&self) -> Result<(), SendError> {
        self.push(Push::Untrack).await
    }
}

/// A bounded stream of one subscription's items. Keeps its channel alive.
pub struct Subscription<T> {
    rx: mpsc::Receiver<T>,
    missed: Arc<AtomicU64>,
    _channel: Channel,
}

impl<T> Subscription<T> {
    /// The next item; `None` once the channel or the client is gone.
    pub async fn recv(&mut self) -> Option<T> {
        self.rx.recv().await
    }

    /// An item if one is queued.
    pub fn try_recv(&mut self) -> Option<T> {
        self.rx.try_recv().ok()
    }

    /// Items dropped because this subscriber's queue was full.
    pub fn missed(&self) -> u64 {
        self.missed.load(Ordering::Relaxed)
    }

    /// The channel this subscription belongs to.
    pub fn channel(&self) -> &Channel {
        &self._channel
    }
}

impl<T> Stream for Subscription<T> {
    type Item = T;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        self.rx.poll_recv(cx)
    }
}

impl<T> std::fmt::Debug for Subscription<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription").field("topic", &self._channel.topic()).field("missed", &self.missed()).finish()
    }
}
