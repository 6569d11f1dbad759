//! The protocol state of one realtime client, without I/O: channels and their incarnations,
//! refs and the replies awaited, subscribers, presence, heartbeats. The socket task
//! ([`super::socket`]) feeds it frames, commands, clock ticks and open/close events and writes
//! the frames it produces ([`Session::take_output`]); the benchmark feeds it frames directly.
//!
//! Channel life (spec §1.7–1.13), per topic, keyed by the handle side's channel id:
//! - **join**: `phx_join` with a fresh ref that becomes the channel's `join_ref`, carrying
//!   `config` (broadcast self/ack, presence key/enabled, the postgres_changes filters, private)
//!   and `access_token` when one is set. At most one join per channel is in flight; a change of
//!   config while joining (a new postgres_changes filter, the first presence listener) rejoins
//!   once the reply is in. Frames whose `join_ref` is set and differs from the channel's are
//!   from an older incarnation and are dropped (realtime-js's `isMember`).
//! - **join ok**: postgres_changes ids are taken from the reply by position (each echo must
//!   match its filter), `Subscribed` is emitted, pushes made while not joined are sent, the
//!   last tracked presence meta is tracked again, and a token newer than the one joined with is
//!   sent as `access_token`.
//! - **join error / phx_close / phx_error / join timeout** are classified
//!   ([`ChannelError::recovery`]): backoff and rejoin; wait for a new token; wait for a channel
//!   slot (too many channels); or stay refused.
//! - **socket closed**: joined channels go back to joining and rejoin, with new join_refs, as
//!   soon as the socket reopens; pushes awaiting a reply fail with `Disconnected`.
//! - **release** (the last handle dropped): `phx_leave`, the state is dropped, subscribers'
//!   streams end, and channels waiting for a slot try again.
//!
//! Delivery never blocks the socket task: each subscriber has a bounded queue; when it is full
//! the item is dropped and counted on that subscription (`missed`). Realtime is a hint and
//! REST the record: a consumer that misses items catches up like after a reconnect.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Map, Value};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use super::backoff::Backoff;
use super::broadcast::{listener_matches, Broadcast, BroadcastPayload};
use super::channel::{ChannelConfig, ChannelEvent, SystemMessage};
use super::error::{ChannelError, LimitError, Recovery, SendError};
use super::postgres_changes::{reply_id, Binding, ChangesPayload, ColumnCache, PostgresChange, PostgresChangesFilter};
use super::presence::{PresenceEvent, PresenceState, PresenceTracker};
use super::serializer::{self, FrameError, Incoming, Payload, Vsn};
use super::state::ChannelStatus;

pub(crate) type ChannelId = u64;

/// A subscriber's bounded queue and its count of dropped items.
#[derive(Debug)]
pub(crate) struct Delivery<T> {
    tx: mpsc::Sender<T>,
    missed: Arc<AtomicU64>,
}

impl<T> Delivery<T> {
    pub fn new(capacity: usize) -> (Delivery<T>, mpsc::Receiver<T>, Arc<AtomicU64>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let missed = Arc::new(AtomicU64::new(0));
        (Delivery { tx, missed: Arc::clone(&missed) }, rx, missed)
    }

    /// Queues without waiting; a full queue drops the item and counts it. False once the
    /// subscriber is gone.
    fn offer(&self, item: T) -> bool {
        match self.tx.try_send(item) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.missed.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

/// Offers `item` to every subscriber (cloning for all but the last), dropping the ones gone.
fn fan_out<T: Clone>(subscribers: &mut Vec<Delivery<T>>, item: T) {
    let mut dead = false;
    if let Some((last, rest)) = subscribers.split_last() {
        for s in rest {
            dead |= !s.offer(item.clone());
        }
        dead |= !last.offer(item);
    }
    if dead {
        subscribers.retain(|s| !s.is_closed());
    }
}

/// What the handle side observes of a channel, written only by the session.
#[derive(Debug)]
pub(crate) struct ChannelWatch {
    pub status: watch::Sender<ChannelStatus>,
    /// The highest listener version that is live (processed and, if it needed one, joined).
    pub live: watch::Sender<u64>,
    pub presence: watch::Sender<Arc<PresenceState>>,
}

/// Channel lifecycle and listener registration (from handles; one message per object created
/// or dropped).
pub(crate) enum Control {
    Open { id: ChannelId, topic: String, config: ChannelConfig, watch: ChannelWatch },
    Release { id: ChannelId },
    Listen { id: ChannelId, version: u64, listener: Listener },
}

pub(crate) enum Listener {
    Changes(PostgresChangesFilter, Delivery<PostgresChange>),
    Broadcast(String, Delivery<Broadcast>),
    Presence(Delivery<PresenceEvent>),
    Events(Delivery<ChannelEvent>),
}

pub(crate) type Reply = oneshot::Sender<Result<(), SendError>>;

/// A push from a handle.
pub(crate) struct Command {
    pub id: ChannelId,
    pub push: Push,
    pub reply: Reply,
}

#[derive(Debug, Clone)]
pub(crate) enum Push {
    Broadcast { event: String, payload: BroadcastPayload },
    Track(Map<String, Value>),
    Untrack,
}

impl Push {
    fn is_presence(&self) -> bool {
        matches!(self, Push::Track(_) | Push::Untrack)
    }
}

/// Timing and limits of the session.
#[derive(Debug, Clone)]
pub(crate) struct SessionConfig {
    pub vsn: Vsn,
    pub join_timeout: Duration,
    pub rejoin: Backoff,
    /// A channel joined at least this long has its rejoin backoff reset at its next failure.
    pub stable_after: Duration,
    /// Pushes a channel holds while not joined.
    pub max_buffered: usize,
}

enum Pending {
    Heartbeat,
    Join { id: ChannelId },
    Leave,
    Push { id: ChannelId, replies: Vec<Reply> },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Not joined; joins when the socket is open.
    Idle,
    Joining,
    Joined,
    Retry(Instant),
    WaitToken,
    WaitSlot,
    Failed,
}

struct JoinAttempt {
    reference: u64,
    sent_at: Instant,
    version: u64,
    filters: Vec<PostgresChangesFilter>,
    token: Option<String>,
}

struct Buffered {
    push: Push,
    replies: Vec<Reply>,
}

struct ChannelState {
    id: ChannelId,
    config: ChannelConfig,
    watch: ChannelWatch,
    phase: Phase,
    error: Option<ChannelError>,
    join_ref: Option<String>,
    joining: Option<JoinAttempt>,
    needs_rejoin: bool,
    bindings: Vec<Binding<Delivery<PostgresChange>>>,
    broadcasts: Vec<(String, Vec<Delivery<Broadcast>>)>,
    presence_listeners: Vec<Delivery<PresenceEvent>>,
    event_listeners: Vec<Delivery<ChannelEvent>>,
    presence: PresenceTracker,
    presence_enabled: bool,
    tracked: Option<Map<String, Value>>,
    buffer: VecDeque<Buffered>,
    registered: u64,
    failures: u32,
    joined_at: Option<Instant>,
    last_system_error: Option<String>,
    /// The token the server holds for this incarnation.
    token_sent: Option<String>,
}

impl ChannelState {
    fn new(id: ChannelId, config: ChannelConfig, watch: ChannelWatch) -> ChannelState {
        let presence_enabled = config.presence_key.is_some();
        ChannelState {
            id,
            config,
            watch,
            phase: Phase::Idle,
            error: None,
            join_ref: None,
            joining: None,
            needs_rejoin: false,
            bindings: Vec::new(),
            broadcasts: Vec::new(),
            presence_listeners: Vec::new(),
            event_listeners: Vec::new(),
            presence: PresenceTracker::default(),
            presence_enabled,
            tracked: None,
            buffer: VecDeque::new(),
            registered: 0,
            failures: 0,
            joined_at: None,
            last_system_error: None,
            token_sent: None,
        }
    }

    fn set_phase(&mut self, phase: Phase, error: Option<ChannelError>) {
        self.phase = phase;
        self.error = error;
        let status = match (phase, self.error.clone()) {
            (Phase::Idle | Phase::Joining, _) => ChannelStatus::Joining,
            (Phase::Joined, _) => ChannelStatus::Joined,
            (Phase::Retry(at), e) => ChannelStatus::Retrying {
                retry_at: at,
                error: e.unwrap_or(ChannelError::ClosedByServer { message: None }),
            },
            (Phase::WaitToken, e) => ChannelStatus::WaitingForToken {
                error: e.unwrap_or(ChannelError::Token { expired: false, message: String::new() }),
            },
            (Phase::WaitSlot, e) | (Phase::Failed, e) => {
                ChannelStatus::Refused { error: e.unwrap_or(ChannelError::Refused { reason: String::new() }) }
            }
        };
        self.watch.status.send_if_modified(|s| {
            let changed = *s != status;
            *s = status;
            changed
        });
    }

    fn set_live(&self, version: u64) {
        self.watch.live.send_if_modified(|v| {
            let changed = *v < version;
            *v = (*v).max(version);
            changed
        });
    }

    fn emit(&mut self, event: ChannelEvent) {
        fan_out(&mut self.event_listeners, event);
    }

    fn binding_mut(&mut self, filter: &PostgresChangesFilter) -> Option<&mut Binding<Delivery<PostgresChange>>> {
        self.bindings.iter_mut().find(|b| b.filter == *filter)
    }

    fn join_payload(&self, token: Option<&str>) -> Value {
        let filters: Vec<Value> = self.bindings.iter().map(|b| b.filter.to_entry()).collect();
        let mut payload = json!({
            "config": {
                "broadcast": {"self": self.config.broadcast_self, "ack": self.config.broadcast_ack},
                "presence": {"key": self.config.presence_key.as_deref().unwrap_or(""), "enabled": self.presence_enabled},
                "postgres_changes": filters,
                "private": self.config.private,
            }
        });
        if let Some(t) = token {
            payload["access_token"] = json!(t);
        }
        payload
    }

    fn dispatch_changes(&mut self, p: ChangesPayload) {
        let ChangesPayload { ids, data } = p;
        let kind = data.kind;
        let total: usize = self.bindings.iter().filter(|b| b.fires(&ids, kind)).map(|b| b.subscribers.len()).sum();
        if total == 0 {
            return;
        }
        let mut left = total;
        let mut data = Some(data);
        let mut dead = false;
        for b in self.bindings.iter().filter(|b| b.fires(&ids, kind)) {
            for s in &b.subscribers {
                left -= 1;
                let item = if left == 0 { data.take() } else { data.clone() };
                if let Some(item) = item {
                    dead |= !s.offer(item);
                }
            }
        }
        if dead {
            for b in &mut self.bindings {
                b.subscribers.retain(|s| !s.is_closed());
            }
        }
    }

    fn dispatch_broadcast(&mut self, b: Broadcast) {
        let mut matching: Vec<usize> = Vec::new();
        for (i, (event, _)) in self.broadcasts.iter().enumerate() {
            if listener_matches(event, &b.event) {
                matching.push(i);
            }
        }
        let Some((&last, rest)) = matching.split_last() else { return };
        for &i in rest {
            fan_out(&mut self.broadcasts[i].1, b.clone());
        }
        fan_out(&mut self.broadcasts[last].1, b);
    }

    fn on_presence(&mut self, state: bool, payload: &Value) {
        let mut events = Vec::new();
        let join_ref = self.join_ref.clone();
        let applied = if state {
            self.presence.on_state(join_ref.as_deref(), payload, &mut |e| events.push(e))
        } else {
            self.presence.on_diff(join_ref.as_deref(), payload, &mut |e| events.push(e))
        };
        if !events.is_empty() {
            for e in events {
                fan_out(&mut self.presence_listeners, e);
            }
        }
        if applied {
            let snapshot = Arc::new(self.presence.state().clone());
            self.watch.presence.send_if_modified(|s| {
                let changed = **s != *snapshot;
                *s = snapshot;
                changed
            });
        }
    }
}

/// What a heartbeat tick found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Heartbeat {
    Sent,
    /// The previous heartbeat got no reply: the link is dead.
    TimedOut,
}

/// The protocol state; see the module docs.
pub(crate) struct Session {
    cfg: SessionConfig,
    next_ref: u64,
    channels: HashMap<String, ChannelState>,
    topics: HashMap<ChannelId, String>,
    pending: HashMap<u64, Pending>,
    token: Option<String>,
    connected: bool,
    out: Vec<Message>,
    heartbeat: Option<u64>,
    /// An ok reply arrived on this connection (it works end to end).
    healthy: bool,
    /// A limit error arrived on this connection (do not reset the reconnect backoff).
    limited: bool,
    columns: ColumnCache,
}

impl Session {
    pub fn new(cfg: SessionConfig, token: Option<String>) -> Session {
        Session {
            cfg,
            next_ref: 0,
            channels: HashMap::new(),
            topics: HashMap::new(),
            pending: HashMap::new(),
            token,
            connected: false,
            out: Vec::new(),
            heartbeat: None,
            healthy: false,
            limited: false,
            columns: ColumnCache::default(),
        }
    }

    fn make_ref(&mut self) -> u64 {
        self.next_ref += 1;
        self.next_ref
    }

    /// Frames to write, in order.
    pub fn take_output(&mut self) -> Vec<Message> {
        std::mem::take(&mut self.out)
    }

    /// The connection proved itself (an ok reply) and hit no limit: reset the backoff.
    pub fn connection_was_healthy(&self) -> bool {
        self.healthy && !self.limited
    }

    // ---- connection events ------------------------------------------------------------

    pub fn on_open(&mut self, now: Instant) {
        self.connected = true;
        self.healthy = false;
        self.limited = false;
        self.heartbeat = None;
        let mut ids: Vec<ChannelId> = self.topics.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            let Some(topic) = self.topics.get(&id).cloned() else { continue };
            let joinable = self
                .channels
                .get(&topic)
                .is_some_and(|c| matches!(c.phase, Phase::Idle | Phase::Joining | Phase::Retry(_) | Phase::WaitSlot));
            if joinable {
                self.join(&topic, now);
            }
        }
    }

    pub fn on_close(&mut self) {
        self.connected = false;
        self.heartbeat = None;
        for (_, p) in self.pending.drain() {
            if let Pending::Push { replies, .. } = p {
                for r in replies {
                    let _ = r.send(Err(SendError::Disconnected));
                }
            }
        }
        self.out.clear();
        for ch in self.channels.values_mut() {
            ch.joining = None;
            if matches!(ch.phase, Phase::Joined | Phase::Joining) {
                let was_joined = ch.phase == Phase::Joined;
                ch.set_phase(Phase::Idle, None);
                if was_joined {
                    ch.emit(ChannelEvent::Disconnected);
                }
            }
        }
    }

    /// The client stopped: every channel closes, every stream ends, every waiting push fails.
    pub fn shutdown(&mut self) {
        self.connected = false;
        for (_, p) in self.pending.drain() {
            if let Pending::Push { replies, .. } = p {
                for r in replies {
                    let _ = r.send(Err(SendError::Closed));
                }
            }
        }
        for (_, mut ch) in self.channels.drain() {
            for b in ch.buffer.drain(..) {
                for r in b.replies {
                    let _ = r.send(Err(SendError::Closed));
                }
            }
            ch.watch.status.send_replace(ChannelStatus::Closed);
        }
        self.topics.clear();
        self.out.clear();
    }

    /// A heartbeat tick: send one, or report that the last one got no reply.
    pub fn heartbeat(&mut self) -> Heartbeat {
        if self.heartbeat.is_some() {
            return Heartbeat::TimedOut;
        }
        let r = self.make_ref();
        self.out.push(serializer::encode_text(
            self.cfg.vsn,
            None,
            Some(&r.to_string()),
            "phoenix",
            "heartbeat",
            &json!({}),
        ));
        self.pending.insert(r, Pending::Heartbeat);
        self.heartbeat = Some(r);
        self.prune();
        Heartbeat::Sent
    }

    /// A heartbeat awaits its reply.
    pub fn heartbeat_outstanding(&self) -> bool {
        self.heartbeat.is_some()
    }

    /// Drops awaited replies nobody waits for any more.
    fn prune(&mut self) {
        self.pending.retain(|_, p| match p {
            Pending::Push { replies, .. } => {
                replies.retain(|r| !r.is_closed());
                !replies.is_empty()
            }
            _ => true,
        });
    }

    /// The earliest instant [`Session::on_timer`] has work.
    pub fn next_deadline(&self) -> Option<Instant> {
        if !self.connected {
            return None;
        }
        self.channels
            .values()
            .filter_map(|c| match (c.phase, &c.joining) {
                (Phase::Retry(at), _) => Some(at),
                (_, Some(j)) => Some(j.sent_at + self.cfg.join_timeout),
                _ => None,
            })
            .min()
    }

    pub fn on_timer(&mut self, now: Instant) {
        if !self.connected {
            return;
        }
        let mut due: Vec<(String, bool)> = Vec::new();
        for (topic, c) in &self.channels {
            match (c.phase, &c.joining) {
                (Phase::Retry(at), _) if at <= now => due.push((topic.clone(), false)),
                (_, Some(j)) if j.sent_at + self.cfg.join_timeout <= now => due.push((topic.clone(), true)),
                _ => {}
            }
        }
        for (topic, timed_out) in due {
            if timed_out {
                let Some(ch) = self.channels.get_mut(&topic) else { continue };
                if let Some(j) = ch.joining.take() {
                    self.pending.remove(&j.reference);
                }
                self.leave_frame(&topic);
                self.fail(&topic, ChannelError::JoinTimeout, now, true);
            } else {
                self.join(&topic, now);
            }
        }
    }

    /// Work left after a batch of events: joins whose config changed.
    pub fn after_batch(&mut self, now: Instant) {
        if !self.connected {
            return;
        }
        let due: Vec<String> = self
            .channels
            .iter()
            .filter(|(_, c)| c.needs_rejoin && c.joining.is_none() && matches!(c.phase, Phase::Joined | Phase::Idle))
            .map(|(t, _)| t.clone())
            .collect();
        for topic in due {
            self.join(&topic, now);
        }
    }

    // ---- auth -----------------------------------------------------------------------------

    /// A new access token: sent to every joined channel; channels waiting for a token rejoin.
    pub fn set_token(&mut self, token: Option<String>, now: Instant) {
        if token == self.token {
            return;
        }
        self.token = token;
        let Some(t) = self.token.clone() else { return };
        let topics: Vec<String> = self.channels.keys().cloned().collect();
        for topic in topics {
            let Some(ch) = self.channels.get_mut(&topic) else { continue };
            match ch.phase {
                Phase::Joined if self.connected && ch.token_sent.as_deref() != Some(t.as_str()) => {
                    ch.token_sent = Some(t.clone());
                    let join_ref = ch.join_ref.clone();
                    let r = self.make_ref().to_string();
                    self.out.push(serializer::encode_text(
                        self.cfg.vsn,
                        join_ref.as_deref(),
                        Some(&r),
                        &topic,
                        "access_token",
                        &json!({ "access_token": t }),
                    ));
                }
                Phase::WaitToken => {
                    ch.set_phase(Phase::Idle, None);
                    if self.connected {
                        self.join(&topic, now);
                    }
                }
                _ => {}
            }
        }
    }

    // ---- handles --------------------------------------------------------------------------

    pub fn on_control(&mut self, control: Control, now: Instant) {
        match control {
            Control::Open { id, topic, config, watch } => {
                if let Some(old) = self.channels.remove(&topic) {
                    // Its handles are all gone (a new one could not have been made otherwise);
                    // the new join replaces it on the server.
                    self.topics.remove(&old.id);
                    old.watch.status.send_replace(ChannelStatus::Closed);
                }
                let mut ch = ChannelState::new(id, config, watch);
                ch.set_phase(Phase::Idle, None);
                self.topics.insert(id, topic.clone());
                self.channels.insert(topic.clone(), ch);
                if self.connected {
                    self.join(&topic, now);
                }
            }
            Control::Release { id } => self.release(id, now),
            Control::Listen { id, version, listener } => self.listen(id, version, listener),
        }
    }

    fn listen(&mut self, id: ChannelId, version: u64, listener: Listener) {
        let Some(topic) = self.topics.get(&id) else { return };
        let Some(ch) = self.channels.get_mut(topic) else { return };
        ch.registered = ch.registered.max(version);
        let mut config_changed = false;
        match listener {
            Listener::Changes(filter, d) => match ch.binding_mut(&filter) {
                Some(b) => b.subscribers.push(d),
                None => {
                    ch.bindings.push(Binding { filter, id: None, subscribers: vec![d] });
                    config_changed = true;
                }
            },
            Listener::Broadcast(event, d) => match ch.broadcasts.iter_mut().find(|(e, _)| *e == event) {
                Some((_, subs)) => subs.push(d),
                None => ch.broadcasts.push((event, vec![d])),
            },
            Listener::Presence(d) => {
                ch.presence_listeners.push(d);
                if !ch.presence_enabled {
                    ch.presence_enabled = true;
                    config_changed = true;
                }
            }
            Listener::Events(d) => ch.event_listeners.push(d),
        }
        if config_changed {
            // The server reads the config at join: (re)join with it. Joins happen after the
            // batch, so several new filters cost one join.
            if matches!(ch.phase, Phase::Joined | Phase::Joining) {
                ch.needs_rejoin = true;
            }
        } else if ch.phase == Phase::Joined && !ch.needs_rejoin && ch.joining.is_none() {
            ch.set_live(ch.registered);
        }
    }

    fn release(&mut self, id: ChannelId, now: Instant) {
        let Some(topic) = self.topics.remove(&id) else { return };
        let Some(mut ch) = self.channels.remove(&topic) else { return };
        if self.connected && matches!(ch.phase, Phase::Joined | Phase::Joining) {
            let r = self.make_ref();
            self.out.push(serializer::encode_text(
                self.cfg.vsn,
                ch.join_ref.as_deref(),
                Some(&r.to_string()),
                &topic,
                "phx_leave",
                &json!({}),
            ));
            self.pending.insert(r, Pending::Leave);
        }
        if let Some(j) = ch.joining.take() {
            self.pending.remove(&j.reference);
        }
        for b in ch.buffer.drain(..) {
            for r in b.replies {
                let _ = r.send(Err(SendError::Closed));
            }
        }
        ch.watch.status.send_replace(ChannelStatus::Closed);
        // A slot is free: channels refused for too many channels try again.
        if self.connected {
            let waiting: Vec<String> =
                self.channels.iter().filter(|(_, c)| c.phase == Phase::WaitSlot).map(|(t, _)| t.clone()).collect();
            for t in waiting {
                self.join(&t, now);
            }
        }
    }

    pub fn on_command(&mut self, cmd: Command) {
        let Command { id, push, reply } = cmd;
        let Some(topic) = self.topics.get(&id).cloned() else {
            let _ = reply.send(Err(SendError::Closed));
            return;
        };
        let Some(ch) = self.channels.get_mut(&topic) else {
            let _ = reply.send(Err(SendError::Closed));
            return;
        };
        match &push {
            Push::Track(meta) => ch.tracked = Some(meta.clone()),
            Push::Untrack => ch.tracked = None,
            Push::Broadcast { .. } => {}
        }
        if ch.phase == Phase::Joined && self.connected {
            self.send_push(&topic, push, vec![reply]);
            return;
        }
        if ch.phase == Phase::Failed {
            let reason = ch.error.as_ref().map(ToString::to_string).unwrap_or_default();
            let _ = reply.send(Err(SendError::Rejected { reason }));
            return;
        }
        // Presence intent is state: only the latest buffered track/untrack is sent.
        if push.is_presence() {
            if let Some(i) = ch.buffer.iter().position(|b| b.push.is_presence()) {
                if let Some(mut old) = ch.buffer.remove(i) {
                    old.replies.push(reply);
                    ch.buffer.push_back(Buffered { push, replies: old.replies });
                    return;
                }
            }
        }
        ch.buffer.retain(|b| b.replies.iter().any(|r| !r.is_closed()));
        if ch.buffer.len() >= self.cfg.max_buffered {
            if let Some(oldest) = ch.buffer.pop_front() {
                for r in oldest.replies {
                    let _ = r.send(Err(SendError::Overflow));
                }
            }
        }
        ch.buffer.push_back(Buffered { push, replies: vec![reply] });
    }

    fn send_push(&mut self, topic: &str, push: Push, replies: Vec<Reply>) {
        let r = self.make_ref();
        let Some(ch) = self.channels.get(topic) else { return };
        let reference = r.to_string();
        let join_ref = ch.join_ref.as_deref();
        let vsn = self.cfg.vsn;
        let (frame, awaits_reply) = match &push {
            Push::Broadcast { event, payload } => {
                match serializer::encode_broadcast(vsn, join_ref, &reference, topic, event, payload) {
                    Ok(f) => (f, ch.config.broadcast_ack),
                    Err(e) => {
                        for reply in replies {
                            let _ = reply.send(Err(e.clone()));
                        }
                        return;
                    }
                }
            }
            Push::Track(meta) => {
                let payload = json!({"type": "presence", "event": "track", "payload": meta});
                (serializer::encode_text(vsn, join_ref, Some(&reference), topic, "presence", &payload), true)
            }
            Push::Untrack => {
                let payload = json!({"type": "presence", "event": "untrack"});
                (serializer::encode_text(vsn, join_ref, Some(&reference), topic, "presence", &payload), true)
            }
        };
        self.out.push(frame);
        if awaits_reply {
            self.pending.insert(r, Pending::Push { id: ch.id, replies });
        } else {
            for reply in replies {
                let _ = reply.send(Ok(()));
            }
        }
    }

    // ---- joining --------------------------------------------------------------------------

    fn join(&mut self, topic: &str, now: Instant) {
        let r = self.make_ref();
        let token = self.token.clone();
        let Some(ch) = self.channels.get_mut(topic) else { return };
        if let Some(old) = ch.joining.take() {
            self.pending.remove(&old.reference);
        }
        for b in &mut ch.bindings {
            b.subscribers.retain(|s| !s.is_closed());
        }
        ch.bindings.retain(|b| !b.subscribers.is_empty());
        let join_ref = r.to_string();
        let payload = ch.join_payload(token.as_deref());
        self.out.push(serializer::encode_text(
            self.cfg.vsn,
            Some(&join_ref),
            Some(&join_ref),
            topic,
            "phx_join",
            &payload,
        ));
        ch.join_ref = Some(join_ref);
        ch.joining = Some(JoinAttempt {
            reference: r,
            sent_at: now,
            version: ch.registered,
            filters: ch.bindings.iter().map(|b| b.filter.clone()).collect(),
            token,
        });
        ch.needs_rejoin = false;
        ch.last_system_error = None;
        if ch.phase != Phase::Joined {
            ch.set_phase(Phase::Joining, None);
        }
        self.pending.insert(r, Pending::Join { id: ch.id });
    }

    fn join_ok(&mut self, topic: &str, response: &Value, now: Instant) {
        self.healthy = true;
        let Some(ch) = self.channels.get_mut(topic) else { return };
        let Some(attempt) = ch.joining.take() else { return };
        let mut mismatch = false;
        match response.get("postgres_changes") {
            Some(Value::Array(entries)) => {
                for (i, filter) in attempt.filters.iter().enumerate() {
                    match entries.get(i).filter(|e| filter.echoed_by(e)) {
                        Some(entry) => {
                            if let Some(b) = ch.binding_mut(filter) {
                                b.id = reply_id(entry);
                            }
                        }
                        None => mismatch = true,
                    }
                }
            }
            _ if attempt.filters.is_empty() => {}
            _ => tracing::warn!(topic, "join reply without postgres_changes: changes cannot be matched"),
        }
        if mismatch {
            tracing::error!(topic, "the server's join reply does not echo our postgres_changes filters");
            self.leave_frame(topic);
            self.fail(topic, ChannelError::BindingMismatch, now, true);
            return;
        }
        ch.set_phase(Phase::Joined, None);
        ch.joined_at = Some(now);
        ch.token_sent = attempt.token.clone();
        ch.set_live(if ch.needs_rejoin { attempt.version } else { ch.registered });
        ch.emit(ChannelEvent::Subscribed);
        let newer_token = self.token.clone().filter(|t| attempt.token.as_deref() != Some(t.as_str()));
        let buffered: Vec<Buffered> = ch.buffer.drain(..).collect();
        let retrack = if buffered.iter().any(|b| b.push.is_presence()) { None } else { ch.tracked.clone() };
        let join_ref = ch.join_ref.clone();
        if let Some(t) = newer_token {
            if let Some(ch) = self.channels.get_mut(topic) {
                ch.token_sent = Some(t.clone());
            }
            let r = self.make_ref().to_string();
            self.out.push(serializer::encode_text(
                self.cfg.vsn,
                join_ref.as_deref(),
                Some(&r),
                topic,
                "access_token",
                &json!({ "access_token": t }),
            ));
        }
        if let Some(meta) = retrack {
            self.send_push(topic, Push::Track(meta), Vec::new());
        }
        for b in buffered {
            let replies: Vec<Reply> = b.replies.into_iter().filter(|r| !r.is_closed()).collect();
            if !replies.is_empty() || b.push.is_presence() {
                self.send_push(topic, b.push, replies);
            }
        }
    }

    /// A `phx_leave` for the channel's current join_ref (its reply is ignored).
    fn leave_frame(&mut self, topic: &str) {
        let r = self.make_ref();
        let join_ref = self.channels.get(topic).and_then(|c| c.join_ref.clone());
        self.out.push(serializer::encode_text(
            self.cfg.vsn,
            join_ref.as_deref(),
            Some(&r.to_string()),
            topic,
            "phx_leave",
            &json!({}),
        ));
        self.pending.insert(r, Pending::Leave);
    }

    /// The channel is down because of `error`: say so (if `report`) and recover as classified.
    fn fail(&mut self, topic: &str, error: ChannelError, now: Instant, report: bool) {
        if matches!(error, ChannelError::Limit(LimitError::TooManyJoins)) {
            self.limited = true;
        }
        let token = self.token.clone();
        let Some(id) = self.channels.get(topic).map(|c| c.id) else { return };
        // Replies still awaited on this incarnation will not come: the close is the answer.
        let push_error = match &error {
            ChannelError::Limit(l) => SendError::Limit(*l),
            other => SendError::Rejected { reason: other.to_string() },
        };
        self.pending.retain(|_, p| match p {
            Pending::Push { id: pid, replies } if *pid == id => {
                for r in replies.drain(..) {
                    let _ = r.send(Err(push_error.clone()));
                }
                false
            }
            _ => true,
        });
        let Some(ch) = self.channels.get_mut(topic) else { return };
        // The token the server refused: the failed join's, else the one the channel holds.
        let refused = match ch.joining.take() {
            Some(attempt) => attempt.token,
            None => ch.token_sent.clone(),
        };
        if report {
            ch.emit(ChannelEvent::Error(error.clone()));
        }
        if ch.joined_at.take().is_some_and(|t| now.saturating_duration_since(t) >= self.cfg.stable_after) {
            ch.failures = 0;
        }
        match error.recovery() {
            Recovery::Backoff => {
                ch.failures = ch.failures.saturating_add(1);
                let at = now + self.cfg.rejoin.delay(ch.failures);
                ch.set_phase(Phase::Retry(at), Some(error));
            }
            Recovery::WaitForToken => {
                // A newer token than the refused one is already here: use it now.
                if token.is_some() && token != refused {
                    ch.set_phase(Phase::Retry(now), Some(error));
                } else {
                    ch.set_phase(Phase::WaitToken, Some(error));
                }
            }
            Recovery::WaitForSlot => ch.set_phase(Phase::WaitSlot, Some(error)),
            Recovery::Never => {
                for b in ch.buffer.drain(..) {
                    for r in b.replies {
                        let _ = r.send(Err(SendError::Rejected { reason: error.to_string() }));
                    }
                }
                ch.set_phase(Phase::Failed, Some(error));
            }
        }
    }

    // ---- frames ---------------------------------------------------------------------------

    /// A text frame from the server.
    pub fn on_text(&mut self, text: &str, now: Instant) -> Result<(), FrameError> {
        let frame = serializer::decode_text(self.cfg.vsn, text, &mut self.columns)?;
        self.on_frame(frame, now);
        Ok(())
    }

    /// A binary frame from the server.
    pub fn on_binary(&mut self, data: &bytes::Bytes, now: Instant) -> Result<(), FrameError> {
        let frame = serializer::decode_binary(self.cfg.vsn, data)?;
        self.on_frame(frame, now);
        Ok(())
    }

    pub(crate) fn on_frame(&mut self, f: Incoming<'_>, now: Instant) {
        if f.event == "phx_reply" {
            return self.on_reply(f, now);
        }
        let Some(ch) = self.channels.get_mut(f.topic.as_ref()) else {
            tracing::trace!(topic = %f.topic, event = %f.event, "frame for a topic we do not hold");
            return;
        };
        if f.join_ref.is_some() && f.join_ref != ch.join_ref {
            tracing::trace!(topic = %f.topic, event = %f.event, "frame of an older incarnation dropped");
            return;
        }
        match (f.event.as_ref(), f.payload) {
            ("postgres_changes", Payload::Changes(p)) => ch.dispatch_changes(p),
            ("broadcast", Payload::UserBroadcast(b)) => ch.dispatch_broadcast(b),
            ("broadcast", Payload::Json(Value::Object(o))) => {
                if let Some(b) = Broadcast::from_text_payload(o) {
                    ch.dispatch_broadcast(b);
                }
            }
            ("presence_state", Payload::Json(v)) => ch.on_presence(true, &v),
            ("presence_diff", Payload::Json(v)) => ch.on_presence(false, &v),
            ("system", Payload::Json(v)) => {
                let message = SystemMessage::from_payload(v);
                if !message.ok {
                    ch.last_system_error = Some(message.message.clone());
                }
                ch.emit(ChannelEvent::System(message));
            }
            ("phx_close", _) => {
                let error = ChannelError::from_close_message(ch.last_system_error.take().as_deref());
                ch.emit(ChannelEvent::Closed(error.clone()));
                let topic = f.topic;
                self.fail(&topic, error, now, false);
            }
            ("phx_error", _) => {
                let topic = f.topic;
                self.fail(&topic, ChannelError::Crashed, now, true);
            }
            (event, _) => tracing::trace!(topic = %f.topic, event, "ignored channel event"),
        }
    }

    fn on_reply(&mut self, f: Incoming<'_>, now: Instant) {
        let Some(pending) = f.reference.as_deref().and_then(|r| r.parse::<u64>().ok()).and_then(|r| {
            let p = self.pending.remove(&r)?;
            Some((r, p))
        }) else {
            return;
        };
        let (r, pending) = pending;
        let Payload::Json(payload) = f.payload else { return };
        let ok = payload.get("status").and_then(Value::as_str) == Some("ok");
        let response = payload.get("response").cloned().unwrap_or(Value::Null);
        match pending {
            Pending::Heartbeat => {
                if self.heartbeat == Some(r) {
                    self.heartbeat = None;
                }
                if ok {
                    self.healthy = true;
                }
            }
            Pending::Leave => {}
            Pending::Join { id } => {
                let Some(topic) = self.topics.get(&id).cloned() else { return };
                let current = self.channels.get(&topic).and_then(|c| c.joining.as_ref()).map(|j| j.reference);
                if current != Some(r) {
                    return;
                }
                if ok {
                    self.join_ok(&topic, &response, now);
                } else {
                    let error = ChannelError::from_join_reason(&reason_of(&response));
                    self.fail(&topic, error, now, true);
                }
            }
            Pending::Push { id, replies } => {
                let result = if ok { Ok(()) } else { Err(SendError::from_reply_reason(&reason_of(&response))) };
                let unmatched = !ok && reason_of(&response) == "unmatched topic";
                for reply in replies {
                    let _ = reply.send(result.clone());
                }
                if unmatched {
                    // The server does not hold this channel (any more): join again.
                    if let Some(topic) = self.topics.get(&id).cloned() {
                        if self.channels.get(&topic).is_some_and(|c| c.phase == Phase::Joined) {
                            self.join(&topic, now);
                        }
                    }
                }
            }
        }
    }
}

/// The `reason` of an error reply (or the whole response as text).
fn reason_of(response: &Value) -> String {
    match response {
        Value::Object(o) => match o.get("reason") {
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => response.to_string(),
        },
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Drives the session (the socket task's protocol state) without a socket, for the decode +
/// dispatch benchmark. Not a stable API.
pub mod bench_support {
    use super::*;

    /// One joined channel with postgres_changes subscriptions; frames are fed as text.
    pub struct DispatchBench {
        session: Session,
        now: Instant,
    }

    impl DispatchBench {
        /// Opens `topic` with one subscription per filter (queues of `capacity`), answers the
        /// join with `ids` (one per filter) and returns the receivers, in filter order.
        pub fn new(
            vsn: Vsn,
            topic: &str,
            filters: &[(PostgresChangesFilter, u64)],
            capacity: usize,
        ) -> (DispatchBench, Vec<mpsc::Receiver<PostgresChange>>) {
            let cfg = SessionConfig {
                vsn,
                join_timeout: Duration::from_secs(3600),
                rejoin: Backoff::default(),
                stable_after: Duration::from_secs(30),
                max_buffered: 100,
            };
            let mut session = Session::new(cfg, None);
            let now = Instant::now();
            let watch = ChannelWatch {
                status: watch::channel(ChannelStatus::Joining).0,
                live: watch::channel(0).0,
                presence: watch::channel(Arc::new(PresenceState::default())).0,
            };
            session
                .on_control(Control::Open { id: 1, topic: topic.into(), config: ChannelConfig::default(), watch }, now);
            let mut receivers = Vec::new();
            for (i, (f, _)) in filters.iter().enumerate() {
                let (d, rx, _) = Delivery::new(capacity);
                receivers.push(rx);
                let version = u64::try_from(i).unwrap_or(0) + 1;
                session.on_control(Control::Listen { id: 1, version, listener: Listener::Changes(f.clone(), d) }, now);
            }
            session.on_open(now);
            let join_ref = session.channels.get(topic).and_then(|c| c.join_ref.clone()).unwrap_or_default();
            let echo: Vec<Value> = filters
                .iter()
                .map(|(f, id)| {
                    let mut e = f.to_entry();
                    e["id"] = json!(id);
                    e
                })
                .collect();
            let reply = serializer::encode_text(
                vsn,
                Some(&join_ref),
                Some(&join_ref),
                topic,
                "phx_reply",
                &json!({"status": "ok", "response": {"postgres_changes": echo}}),
            );
            if let Message::Text(t) = reply {
                let _ = session.on_text(t.as_str(), now);
            }
            session.take_output();
            (DispatchBench { session, now }, receivers)
        }

        /// Decodes one server text frame and dispatches it.
        pub fn feed(&mut self, text: &str) -> Result<(), FrameError> {
            self.session.on_text(text, self.now)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::realtime::postgres_changes::ChangeEvent;

    struct Rig {
        s: Session,
        now: Instant,
        status: watch::Receiver<ChannelStatus>,
        live: watch::Receiver<u64>,
        presence: watch::Receiver<Arc<PresenceState>>,
    }

    fn cfg(vsn: Vsn) -> SessionConfig {
        SessionConfig {
            vsn,
            join_timeout: Duration::from_secs(10),
            rejoin: Backoff { jitter: 0.0, ..Backoff::default() },
            stable_after: Duration::from_secs(30),
            max_buffered: 3,
        }
    }

    /// A session with channel 1 on `realtime:room` opened (not yet connected).
    fn rig(config: ChannelConfig) -> Rig {
        let mut s = Session::new(cfg(Vsn::V2), None);
        let now = Instant::now();
        let (status_tx, status) = watch::channel(ChannelStatus::Joining);
        let (live_tx, live) = watch::channel(0);
        let (presence_tx, presence) = watch::channel(Arc::new(PresenceState::default()));
        let watch = ChannelWatch { status: status_tx, live: live_tx, presence: presence_tx };
        s.on_control(Control::Open { id: 1, topic: "realtime:room".into(), config, watch }, now);
        Rig { s, now, status, live, presence }
    }

    /// Decoded output frames as (join_ref, ref, topic, event, payload).
    fn out(s: &mut Session) -> Vec<(Value, Value, String, String, Value)> {
        s.take_output()
            .into_iter()
            .filter_map(|m| match m {
                Message::Text(t) => {
                    let v: Value = serde_json::from_str(t.as_str()).expect("json");
                    Some((
                        v[0].clone(),
                        v[1].clone(),
                        v[2].as_str()?.to_string(),
                        v[3].as_str()?.to_string(),
                        v[4].clone(),
                    ))
                }
                _ => None,
            })
            .collect()
    }

    fn feed(r: &mut Rig, frame: Value) {
        r.s.on_text(&frame.to_string(), r.now).expect("decodes");
    }

    fn reply(r: &mut Rig, join_ref: &Value, reference: &Value, status: &str, response: Value) {
        feed(r, json!([join_ref, reference, "realtime:room", "phx_reply", {"status": status, "response": response}]));
    }

    fn listen<T>(r: &mut Rig, version: u64, make: impl FnOnce(Delivery<T>) -> Listener) -> mpsc::Receiver<T> {
        let (d, rx, _) = Delivery::new(16);
        r.s.on_control(Control::Listen { id: 1, version, listener: make(d) }, r.now);
        rx
    }

    fn change(id: u64, kind: &str) -> Value {
        json!([null, null, "realtime:room", "postgres_changes", {"ids": [id], "data": {
            "schema": "public", "table": "t", "type": kind, "commit_timestamp": "x", "record": {"id": 1}, "errors": null
        }}])
    }

    #[test]
    fn one_join_for_several_filters_and_ids_from_the_reply() {
        let mut r = rig(ChannelConfig::default());
        let mut a = listen(&mut r, 1, |d| Listener::Changes(PostgresChangesFilter::table(ChangeEvent::Insert, "t"), d));
        let mut b = listen(&mut r, 2, |d| Listener::Changes(PostgresChangesFilter::table(ChangeEvent::All, "t"), d));
        let mut a2 =
            listen(&mut r, 3, |d| Listener::Changes(PostgresChangesFilter::table(ChangeEvent::Insert, "t"), d));
        r.s.on_open(r.now);
        r.s.after_batch(r.now);
        let frames = out(&mut r.s);
        assert_eq!(frames.len(), 1, "one join: {frames:?}");
        let (jr, reference, _, event, payload) = frames[0].clone();
        assert_eq!((event.as_str(), &jr), ("phx_join", &reference));
        let entries = payload["config"]["postgres_changes"].as_array().cloned().expect("list");
        assert_eq!(entries.len(), 2, "equal filters share one entry");
        let echo: Vec<Value> = entries
            .iter()
            .zip([11, 22])
            .map(|(e, id)| {
                let mut e = e.clone();
                e["id"] = json!(id);
                e
            })
            .collect();
        reply(&mut r, &jr, &reference, "ok", json!({"postgres_changes": echo}));
        assert_eq!(*r.status.borrow(), ChannelStatus::Joined);
        assert_eq!(*r.live.borrow(), 3);
        feed(&mut r, change(11, "INSERT"));
        feed(&mut r, change(22, "UPDATE"));
        feed(&mut r, change(33, "INSERT"));
        assert_eq!(a.try_recv().map(|c| c.kind).ok(), Some(crate::realtime::ChangeKind::Insert));
        assert!(a.try_recv().is_err(), "the INSERT binding gets only id 11");
        assert!(a2.try_recv().is_ok(), "both subscribers of one filter get it");
        assert_eq!(b.try_recv().map(|c| c.kind).ok(), Some(crate::realtime::ChangeKind::Update));
        assert!(b.try_recv().is_err());
    }

    #[test]
    fn frames_of_older_incarnations_are_dropped_and_reconnect_rejoins_with_a_new_ref() {
        let mut r = rig(ChannelConfig { broadcast_self: true, ..ChannelConfig::default() });
        let mut bc = listen(&mut r, 1, |d| Listener::Broadcast("*".into(), d));
        r.s.on_open(r.now);
        let (jr1, ref1, ..) = out(&mut r.s).remove(0);
        reply(&mut r, &jr1, &ref1, "ok", json!({"postgres_changes": []}));
        r.s.on_close();
        assert_eq!(*r.status.borrow(), ChannelStatus::Joining);
        r.s.on_open(r.now);
        let (jr2, ref2, ..) = out(&mut r.s).remove(0);
        assert_ne!(jr1, jr2, "a rejoin has a fresh join_ref");
        feed(
            &mut r,
            json!([jr1, null, "realtime:room", "broadcast", {"type": "broadcast", "event": "e", "payload": {}}]),
        );
        assert!(bc.try_recv().is_err(), "a frame of the old incarnation is dropped");
        reply(&mut r, &jr2, &ref2, "ok", json!({"postgres_changes": []}));
        feed(
            &mut r,
            json!([null, null, "realtime:room", "broadcast", {"type": "broadcast", "event": "e", "payload": {"n": 1}}]),
        );
        assert_eq!(bc.try_recv().map(|b| b.payload).ok(), Some(BroadcastPayload::Json(json!({"n": 1}))));
    }

    #[test]
    fn binding_mismatch_leaves_and_refuses() {
        let mut r = rig(ChannelConfig::default());
        let _c = listen(&mut r, 1, |d| Listener::Changes(PostgresChangesFilter::table(ChangeEvent::Insert, "t"), d));
        r.s.on_open(r.now);
        let (jr, reference, ..) = out(&mut r.s).remove(0);
        reply(
            &mut r,
            &jr,
            &reference,
            "ok",
            json!({"postgres_changes": [{"event": "DELETE", "schema": "public", "table": "t", "id": 1}]}),
        );
        assert_eq!(*r.status.borrow(), ChannelStatus::Refused { error: ChannelError::BindingMismatch });
        assert_eq!(out(&mut r.s)[0].3, "phx_leave");
    }

    #[test]
    fn expired_token_waits_for_a_new_one_then_rejoins_with_it() {
        let mut r = rig(ChannelConfig::default());
        r.s.set_token(Some("old".into()), r.now);
        r.s.on_open(r.now);
        let (jr, reference, _, _, payload) = out(&mut r.s).remove(0);
        assert_eq!(payload["access_token"], "old");
        reply(&mut r, &jr, &reference, "error", json!({"reason": "InvalidJWTToken: Token has expired 3 seconds ago"}));
        assert!(matches!(*r.status.borrow(), ChannelStatus::WaitingForToken { .. }));
        r.s.on_timer(r.now + Duration::from_secs(3600));
        assert!(out(&mut r.s).is_empty(), "no retry with the same token");
        r.s.set_token(Some("new".into()), r.now);
        let frames = out(&mut r.s);
        assert_eq!((frames[0].3.as_str(), &frames[0].4["access_token"]), ("phx_join", &json!("new")));
    }

    #[test]
    fn token_refresh_is_sent_to_joined_channels_and_after_a_join_that_used_an_older_one() {
        let mut r = rig(ChannelConfig::default());
        r.s.on_open(r.now);
        let (jr, reference, ..) = out(&mut r.s).remove(0);
        r.s.set_token(Some("t1".into()), r.now);
        assert!(out(&mut r.s).is_empty(), "not joined yet");
        reply(&mut r, &jr, &reference, "ok", json!({"postgres_changes": []}));
        let frames = out(&mut r.s);
        assert_eq!((frames[0].3.as_str(), &frames[0].4), ("access_token", &json!({"access_token": "t1"})));
        r.s.set_token(Some("t2".into()), r.now);
        let frames = out(&mut r.s);
        assert_eq!((frames[0].0.clone(), frames[0].3.as_str()), (jr, "access_token"));
        r.s.set_token(Some("t2".into()), r.now);
        assert!(out(&mut r.s).is_empty(), "same token: nothing sent");
    }

    #[test]
    fn server_close_after_a_rate_limit_backs_off_and_join_errors_grow_the_wait() {
        let mut r = rig(ChannelConfig::default());
        let mut events = listen(&mut r, 1, Listener::Events);
        r.s.on_open(r.now);
        let (jr, reference, ..) = out(&mut r.s).remove(0);
        reply(&mut r, &jr, &reference, "ok", json!({}));
        feed(
            &mut r,
            json!([jr, null, "realtime:room", "system", {"extension": "system", "status": "error", "message": "Too many messages per second", "channel": "room"}]),
        );
        feed(&mut r, json!([jr, jr, "realtime:room", "phx_close", {}]));
        let evs: Vec<ChannelEvent> = std::iter::from_fn(|| events.try_recv().ok()).collect();
        assert!(matches!(evs[0], ChannelEvent::Subscribed));
        assert!(matches!(evs[1], ChannelEvent::System(_)));
        assert_eq!(evs[2], ChannelEvent::Closed(ChannelError::Limit(LimitError::TooManyMessages)));
        let ChannelStatus::Retrying { retry_at, .. } = *r.status.borrow() else { panic!("retrying") };
        assert_eq!(retry_at - r.now, Duration::from_secs(1));
        r.s.on_timer(retry_at);
        let (jr, reference, ..) = out(&mut r.s).remove(0);
        reply(&mut r, &jr, &reference, "error", json!({"reason": "Unknown Error on Channel"}));
        let ChannelStatus::Retrying { retry_at: second, .. } = *r.status.borrow() else { panic!("retrying") };
        assert_eq!(second - r.now, Duration::from_secs(2), "the second failure waits longer");
    }

    #[test]
    fn too_many_channels_waits_for_a_slot() {
        let mut r = rig(ChannelConfig::default());
        r.s.on_open(r.now);
        let (jr, reference, ..) = out(&mut r.s).remove(0);
        reply(&mut r, &jr, &reference, "error", json!({"reason": "ChannelRateLimitReached: Too many channels"}));
        assert_eq!(
            *r.status.borrow(),
            ChannelStatus::Refused { error: ChannelError::Limit(LimitError::TooManyChannels) }
        );
        r.s.on_timer(r.now + Duration::from_secs(3600));
        assert!(out(&mut r.s).is_empty(), "no timed retry");
        // Another channel of this client leaves: a slot is free.
        let watch = ChannelWatch {
            status: watch::channel(ChannelStatus::Joining).0,
            live: watch::channel(0).0,
            presence: watch::channel(Arc::new(PresenceState::default())).0,
        };
        r.s.on_control(
            Control::Open { id: 2, topic: "realtime:other".into(), config: ChannelConfig::default(), watch },
            r.now,
        );
        r.s.on_control(Control::Release { id: 2 }, r.now);
        let events: Vec<String> = out(&mut r.s).into_iter().map(|f| format!("{} {}", f.2, f.3)).collect();
        assert_eq!(events, vec!["realtime:other phx_join", "realtime:other phx_leave", "realtime:room phx_join"]);
    }

    #[test]
    fn pushes_wait_for_the_join_and_presence_is_retracked_after_rejoin() {
        let mut r = rig(ChannelConfig { broadcast_ack: true, ..ChannelConfig::default() });
        let (tx, mut rx) = oneshot::channel();
        r.s.on_command(Command {
            id: 1,
            push: Push::Broadcast { event: "e".into(), payload: BroadcastPayload::Json(json!({})) },
            reply: tx,
        });
        let (ttx, mut trx) = oneshot::channel();
        let meta = json!({"name": "n"}).as_object().cloned().expect("object");
        r.s.on_command(Command { id: 1, push: Push::Track(meta), reply: ttx });
        r.s.on_open(r.now);
        let (jr, reference, ..) = out(&mut r.s).remove(0);
        reply(&mut r, &jr, &reference, "ok", json!({}));
        let frames = r.s.take_output();
        assert_eq!(frames.len(), 2, "the buffered broadcast (binary) and the track, no extra re-track");
        let track_ref = r.s.next_ref; // the track was the last push
        feed(
            &mut r,
            json!([jr, track_ref.to_string(), "realtime:room", "phx_reply", {"status": "ok", "response": {}}]),
        );
        assert_eq!(trx.try_recv(), Ok(Ok(())));
        assert!(rx.try_recv().is_err(), "acked broadcast still waits for its reply");
        r.s.on_close();
        assert_eq!(rx.try_recv(), Ok(Err(SendError::Disconnected)));
        r.s.on_open(r.now);
        let (jr, reference, ..) = out(&mut r.s).remove(0);
        reply(&mut r, &jr, &reference, "ok", json!({}));
        let frames = out(&mut r.s);
        assert_eq!(frames.len(), 1);
        assert_eq!((frames[0].3.as_str(), &frames[0].4["event"]), ("presence", &json!("track")), "re-tracked");
    }

    #[test]
    fn buffer_overflow_drops_the_oldest_push() {
        let mut r = rig(ChannelConfig::default());
        let mut replies = Vec::new();
        for i in 0..4 {
            let (tx, rx) = oneshot::channel();
            replies.push(rx);
            r.s.on_command(Command {
                id: 1,
                push: Push::Broadcast { event: format!("e{i}"), payload: BroadcastPayload::Json(json!({})) },
                reply: tx,
            });
        }
        assert_eq!(replies[0].try_recv(), Ok(Err(SendError::Overflow)));
        assert!(replies[1].try_recv().is_err());
    }

    #[test]
    fn presence_listener_enables_presence_and_the_state_is_published() {
        let mut r = rig(ChannelConfig::default());
        r.s.on_open(r.now);
        let (jr, reference, _, _, payload) = out(&mut r.s).remove(0);
        assert_eq!(payload["config"]["presence"]["enabled"], false);
        reply(&mut r, &jr, &reference, "ok", json!({}));
        let mut p = listen(&mut r, 1, Listener::Presence);
        r.s.after_batch(r.now);
        let (jr, reference, _, event, payload) = out(&mut r.s).remove(0);
        assert_eq!((event.as_str(), &payload["config"]["presence"]["enabled"]), ("phx_join", &json!(true)));
        assert_eq!(*r.live.borrow(), 0, "not live before the rejoin reply");
        reply(&mut r, &jr, &reference, "ok", json!({}));
        assert_eq!(*r.live.borrow(), 1);
        feed(
            &mut r,
            json!([jr, null, "realtime:room", "presence_state", {"u": {"metas": [{"phx_ref": "a", "x": 1}]}}]),
        );
        assert!(matches!(p.try_recv(), Ok(PresenceEvent::Join { .. })));
        assert_eq!(p.try_recv(), Ok(PresenceEvent::Sync));
        assert_eq!(r.presence.borrow().len(), 1);
    }

    #[test]
    fn join_timeout_leaves_and_retries_with_backoff() {
        let mut r = rig(ChannelConfig::default());
        r.s.on_open(r.now);
        out(&mut r.s);
        let deadline = r.s.next_deadline().expect("join deadline");
        assert_eq!(deadline - r.now, Duration::from_secs(10));
        r.s.on_timer(deadline);
        assert_eq!(out(&mut r.s)[0].3, "phx_leave");
        assert!(matches!(*r.status.borrow(), ChannelStatus::Retrying { error: ChannelError::JoinTimeout, .. }));
    }

    #[test]
    fn bench_support_joins_with_the_given_ids_and_dispatches() {
        let filters = [(PostgresChangesFilter::table(ChangeEvent::Insert, "t"), 7)];
        let (mut bench, mut rx) = bench_support::DispatchBench::new(Vsn::V2, "realtime:room", &filters, 4);
        bench.feed(&change(7, "INSERT").to_string()).expect("decodes");
        bench.feed(&change(8, "INSERT").to_string()).expect("decodes");
        assert!(rx[0].try_recv().is_ok());
        assert!(rx[0].try_recv().is_err(), "id 8 is not ours");
    }

    #[test]
    fn heartbeat_without_reply_times_out() {
        let mut r = rig(ChannelConfig::default());
        r.s.on_open(r.now);
        out(&mut r.s);
        assert_eq!(r.s.heartbeat(), Heartbeat::Sent);
        let (_, reference, topic, event, _) = out(&mut r.s).remove(0);
        assert_eq!((topic.as_str(), event.as_str()), ("phoenix", "heartbeat"));
        assert_eq!(r.s.heartbeat(), Heartbeat::TimedOut);
        r.s.on_text(
            &json!([null, reference, "phoenix", "phx_reply", {"status": "ok", "response": {}}]).to_string(),
            r.now,
        )
        .expect("decodes");
        assert_eq!(r.s.heartbeat(), Heartbeat::Sent, "answered: the next one goes out");
        assert!(r.s.connection_was_healthy());
    }
}
