//! One Realtime WebSocket connection.
//!
//! Design: the **session task** owns the connection's state (its joined channels) and the read
//! half of the socket; it decodes frames, routes them to the channel, broadcast, presence and
//! postgres_changes handlers (each in its own module, as `impl Session` blocks), and runs the
//! connection's timers (idle timeout, the earliest token expiry of its channels). The **writer
//! task**, owned by the session (aborted when the session drops it), is the only code that
//! writes to the socket: it drains a bounded queue, [`Outbox`], feeding every frame that is
//! ready and flushing once per batch, so a burst of fan-out costs one syscall, not one per
//! frame.
//!
//! Why two tasks: fan-out waits (briefly) on full subscriber queues to push back on fast
//! publishers. If one task both read and wrote, a socket broadcasting to itself (`self: true`)
//! or two sockets broadcasting to each other could wait on queues only they drain. With a
//! separate writer every queue always drains.
//!
//! Failure modes:
//! - malformed frames are logged and dropped; the connection stays open;
//! - a client that sends nothing for `Limits::idle_timeout` is closed (1000, "idle timeout");
//! - a client that does not read: its queue fills, publishers wait up to
//!   `Limits::slow_consumer_timeout`, then it is disconnected ("slow consumer") so it cannot
//!   stall the others; the postgres_changes dispatcher never waits and disconnects at once;
//! - server shutdown: every session leaves its channels and sends close 1001 after the frames
//!   already queued;
//! - a write error ends the writer, which cancels the session through `gone`.

use std::collections::HashMap;
use std::pin::pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use bytes::Bytes;
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::channel::Channel;
use super::serializer::{self, Push, Vsn};
use super::HubShared;
use crate::AppState;

/// How many queued frames the writer feeds before it flushes.
const WRITE_BATCH: usize = 512;
/// How long a closing session waits for its writer to send what is queued.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Something for the writer task.
#[derive(Debug)]
pub(crate) enum Outbound {
    Frame(Message),
    /// Send a close frame and stop.
    Close(u16, &'static str),
}

/// The sending side of a socket's bounded outbound queue. Cheap to clone (an `Arc` inside).
#[derive(Clone, Debug)]
pub(crate) struct Outbox {
    tx: mpsc::Sender<Outbound>,
    /// Cancelled when the connection is gone (write error, or disconnected as too slow).
    gone: CancellationToken,
}

#[cfg(test)]
impl Outbox {
    /// An outbox whose queue the test reads directly.
    pub fn for_test(capacity: usize) -> (Outbox, mpsc::Receiver<Outbound>) {
        let (tx, rx) = mpsc::channel(capacity);
        (Outbox { tx, gone: CancellationToken::new() }, rx)
    }
}

/// What happened to a frame offered without waiting.
pub(crate) enum Offer {
    Queued,
    Full(Message),
    Closed,
}

impl Outbox {
    /// Queues without waiting.
    pub fn offer(&self, m: Message) -> Offer {
        match self.tx.try_send(Outbound::Frame(m)) {
            Ok(()) => Offer::Queued,
            Err(TrySendError::Full(Outbound::Frame(m))) => Offer::Full(m),
            Err(_) => Offer::Closed,
        }
    }

    /// Queues without waiting; a full queue means the client does not read, and it is
    /// disconnected. For senders that must never wait (the postgres_changes dispatcher).
    pub fn push_now(&self, m: Message) -> bool {
        match self.offer(m) {
            Offer::Queued => true,
            Offer::Full(_) => {
                self.kick("its outbound queue is full");
                false
            }
            Offer::Closed => false,
        }
    }

    /// Queues, waiting up to `wait` for room; past that the client is disconnected.
    pub async fn push(&self, m: Message, wait: Duration) -> bool {
        match self.offer(m) {
            Offer::Queued => true,
            Offer::Closed => false,
            Offer::Full(m) => self.push_waiting(m, wait).await,
        }
    }

    /// The waiting half of [`Outbox::push`], for a frame that [`Outbox::offer`] found no room for.
    pub async fn push_waiting(&self, m: Message, wait: Duration) -> bool {
        match tokio::time::timeout(wait, self.tx.send(Outbound::Frame(m))).await {
            Ok(Ok(())) => true,
            Ok(Err(_)) => false,
            Err(_) => {
                self.kick("it did not read for the slow-consumer timeout");
                false
            }
        }
    }

    fn kick(&self, why: &str) {
        if !self.gone.is_cancelled() {
            tracing::warn!(reason = why, "disconnecting a slow realtime consumer");
            self.gone.cancel();
        }
    }

    pub fn is_gone(&self) -> bool {
        self.gone.is_cancelled() || self.tx.is_closed()
    }
}

/// Why a session ends, and the close frame it sends (if any).
enum Ending {
    Shutdown,
    Idle,
    /// The server decided to drop the socket (join rate limit).
    Refused(u16, &'static str),
    /// The client closed or the connection broke; nothing to send.
    Gone,
}

/// The state of one connection, owned by its session task.
pub(crate) struct Session {
    pub(super) app: Arc<AppState>,
    pub(super) hub: Arc<HubShared>,
    pub(super) vsn: Vsn,
    /// The socket's `apikey`: the token of channels that join without one.
    pub(super) socket_token: String,
    pub(super) outbox: Outbox,
    /// Joined channels by full topic (`realtime:<name>`).
    pub(super) channels: HashMap<String, Channel>,
    /// Set by a handler when the socket must be closed after the current frame.
    pub(super) refuse: Option<(u16, &'static str)>,
    /// Set when a channel's token deadline may have changed.
    pub(super) deadlines_changed: bool,
}

/// Aborts the task when dropped, so a task never outlives its owner.
struct AbortOnDrop(Option<tokio::task::JoinHandle<()>>);

impl AbortOnDrop {
    async fn join(mut self, wait: Duration) {
        if let Some(h) = self.0.as_mut() {
            if tokio::time::timeout(wait, h).await.is_ok() {
                self.0 = None;
            }
        }
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(h) = self.0.take() {
            h.abort();
        }
    }
}

/// Counts a connection while it lives.
struct ConnectionSlot(Arc<HubShared>);

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Runs one upgraded connection to its end.
pub(crate) async fn run(app: Arc<AppState>, socket: WebSocket, vsn: Vsn, socket_token: String) {
    let hub = Arc::clone(&app.realtime.shared);
    hub.connections.fetch_add(1, Ordering::Relaxed);
    let _slot = ConnectionSlot(Arc::clone(&hub));
    let (sink, mut stream) = socket.split();
    let (tx, rx) = mpsc::channel(hub.limits.outbound_queue.max(1));
    let gone = CancellationToken::new();
    let writer = AbortOnDrop(Some(tokio::spawn(write_loop(sink, rx, gone.clone()))));
    let mut session = Session {
        app,
        hub: Arc::clone(&hub),
        vsn,
        socket_token,
        outbox: Outbox { tx, gone: gone.clone() },
        channels: HashMap::new(),
        refuse: None,
        deadlines_changed: false,
    };
    let idle = hub.limits.idle_timeout;
    let mut last_frame = Instant::now();
    let mut idle_timer = pin!(tokio::time::sleep(idle));
    let mut token_timer = pin!(tokio::time::sleep_until(far_future()));
    let ending = loop {
        tokio::select! {
            biased;
            _ = gone.cancelled() => break Ending::Gone,
            _ = hub.shutdown.cancelled() => break Ending::Shutdown,
            _ = &mut idle_timer => {
                let deadline = last_frame + idle;
                if Instant::now() >= deadline {
                    break Ending::Idle;
                }
                idle_timer.as_mut().reset(deadline);
            }
            _ = &mut token_timer => {
                session.expire_tokens().await;
                session.deadlines_changed = true;
            }
            frame = stream.next() => {
                let Some(Ok(frame)) = frame else { break Ending::Gone };
                last_frame = Instant::now();
                match frame {
                    Message::Text(text) => session.on_text(text).await,
                    Message::Binary(data) => session.on_binary(data).await,
                    Message::Close(_) => break Ending::Gone,
                    Message::Ping(_) | Message::Pong(_) => {}
                }
                if let Some((code, reason)) = session.refuse.take() {
                    break Ending::Refused(code, reason);
                }
            }
        }
        if std::mem::take(&mut session.deadlines_changed) {
            token_timer.as_mut().reset(session.next_token_deadline().unwrap_or_else(far_future));
        }
    };
    session.leave_all().await;
    let close = match ending {
        Ending::Shutdown => Some((1001, "server shutting down")),
        Ending::Idle => Some((1000, "idle timeout")),
        Ending::Refused(code, reason) => Some((code, reason)),
        Ending::Gone => None,
    };
    let Session { outbox, .. } = session;
    if let Some((code, reason)) = close {
        let _ = tokio::time::timeout(CLOSE_GRACE, outbox.tx.send(Outbound::Close(code, reason))).await;
    }
    drop(outbox);
    writer.join(CLOSE_GRACE).await;
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(10 * 365 * 24 * 3600)
}

/// The writer task: drains the queue in batches until told to close, the queue ends, the
/// socket fails, or the session gives up on the client.
async fn write_loop(
    mut sink: SplitSink<WebSocket, Message>,
    mut rx: mpsc::Receiver<Outbound>,
    gone: CancellationToken,
) {
    let work = async {
        while let Some(first) = rx.recv().await {
            let mut next = Some(first);
            let mut fed = 0;
            while let Some(out) = next.take() {
                match out {
                    Outbound::Frame(m) => sink.feed(m).await?,
                    Outbound::Close(code, reason) => {
                        sink.send(Message::Close(Some(CloseFrame { code, reason: Utf8Bytes::from_static(reason) })))
                            .await?;
                        return Ok(());
                    }
                }
                fed += 1;
                if fed < WRITE_BATCH {
                    next = rx.try_recv().ok();
                }
            }
            sink.flush().await?;
        }
        sink.close().await
    };
    tokio::select! {
        result = work => {
            if let Err(e) = result {
                tracing::debug!(error = %e, "realtime socket write failed");
            }
        }
        _ = gone.cancelled() => {}
    }
    gone.cancel();
}

impl Session {
    async fn on_text(&mut self, text: Utf8Bytes) {
        match serializer::decode_text(self.vsn, text.as_str()) {
            Ok(push) => self.on_push(push).await,
            Err(e) => tracing::warn!(error = %e, "MalformedWebSocketMessage: dropped a text frame"),
        }
    }

    async fn on_binary(&mut self, data: Bytes) {
        match serializer::decode_binary(self.vsn, data) {
            Ok(push) => self.broadcast_binary(push).await,
            Err(e) => {
                tracing::warn!(error = %e, "MalformedWebSocketMessage: dropped a binary frame")
            }
        }
    }

    async fn on_push(&mut self, push: Push) {
        if push.topic == "phoenix" {
            if push.event == "heartbeat" {
                let m = serializer::reply(self.vsn, None, push.reference.as_deref(), "phoenix", true, json!({}));
                self.send(m).await;
            } else {
                self.unmatched(&push.topic, push.join_ref.as_deref(), push.reference.as_deref()).await;
            }
            return;
        }
        match push.event.as_str() {
            "phx_join" => return self.join(push).await,
            "phx_leave" => return self.leave(push).await,
            _ => {}
        }
        if !self.channels.contains_key(&push.topic) {
            return self.unmatched(&push.topic, push.join_ref.as_deref(), push.reference.as_deref()).await;
        }
        match push.event.as_str() {
            "broadcast" => self.broadcast_text(push).await,
            "presence" => self.presence(push).await,
            "access_token" => self.access_token(push).await,
            other => {
                tracing::debug!(event = other, topic = %push.topic, "ignored an unknown channel event")
            }
        }
    }

    /// Reply `unmatched topic` to a push for a topic this socket has not joined.
    pub(super) async fn unmatched(&self, topic: &str, join_ref: Option<&str>, reference: Option<&str>) {
        self.send(serializer::error_reply(self.vsn, join_ref, reference, topic, "unmatched topic")).await;
    }

    /// Queues a frame for this socket (waiting for room like any other sender).
    pub(super) async fn send(&self, m: Message) {
        self.outbox.push(m, self.hub.limits.slow_consumer_timeout).await;
    }
}
