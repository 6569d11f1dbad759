//! Topics, their members, and broadcast fan-out.
//!
//! Design:
//! - [`Topics`] maps `realtime:<name>` to an `Arc<Topic>`. A topic exists while it has members
//!   and is dropped with its last one.
//! - A topic's members are an immutable `Arc<[Member]>` snapshot, replaced (copy on write) on
//!   join and leave. Fan-out clones the `Arc` under a read lock and sends with **no lock held**,
//!   so joins, leaves and other publishers never wait on a slow send.
//! - A message is encoded lazily at most **once per serializer version** ([`PerVsn`]); each
//!   member gets a reference-counted copy of the same bytes.
//! - Delivery first offers the frame to every member without waiting, then waits (up to
//!   `Limits::slow_consumer_timeout`) only for the members whose queue was full. That pushes back
//!   on a publisher that outruns its subscribers instead of dropping messages, and disconnects a
//!   subscriber that stopped reading.
//!
//! Lock order (all `parking_lot`, none held across `.await`): `Topics::map` → `Topic::presence`
//! → `Topic::members`.
//!
//! Wire behaviour (spec §2): sender excluded unless `self`; `ack` → `phx_reply` ok after the
//! fan-out; kind-3 and per-event REST broadcasts reach 2.0.0 sockets as kind-4 binary frames and
//! 1.0.0 sockets as text (binary payloads cannot reach 1.0.0 sockets); text pushes and REST batch
//! messages reach everyone as text `broadcast` frames. Oversized payloads are dropped (error
//! reply when acked); a tenant over its event rate gets `Too many messages per second` and the
//! channel is closed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::Message;
use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use serde_json::{json, Value};

use super::limits::text;
use super::presence::PresenceState;
use super::serializer::{self, BinaryPush, BroadcastBytes, Push, Vsn};
use super::socket::{Offer, Outbox, Session};
use super::ChannelId;

/// One joined channel as its topic sees it.
#[derive(Clone, Debug)]
pub(crate) struct Member {
    pub channel: ChannelId,
    pub vsn: Vsn,
    pub outbox: Outbox,
}

/// A topic: its members and its presence state.
pub(crate) struct Topic {
    /// The wire topic, `realtime:<name>`.
    pub name: Arc<str>,
    /// The registry key: private and public channels of one name are different topics (as in
    /// Realtime), so a public subscriber never sees what is sent to the private one.
    key: String,
    members: RwLock<Arc<[Member]>>,
    pub presence: Mutex<PresenceState>,
}

fn registry_key(name: &str, private: bool) -> String {
    format!("{}{name}", if private { "private|" } else { "public|" })
}

impl Topic {
    fn new(name: &str, key: String) -> Topic {
        Topic {
            name: Arc::from(name),
            key,
            members: RwLock::new(Arc::from(Vec::new())),
            presence: Mutex::new(PresenceState::default()),
        }
    }

    /// The current members (a snapshot; cheap).
    pub fn members(&self) -> Arc<[Member]> {
        Arc::clone(&self.members.read())
    }

    fn add(&self, member: Member) {
        let mut m = self.members.write();
        let mut next: Vec<Member> = m.iter().cloned().collect();
        next.push(member);
        *m = Arc::from(next);
    }

    /// Removes a member; true if the topic is now empty.
    fn remove(&self, channel: ChannelId) -> bool {
        let mut m = self.members.write();
        if m.iter().any(|x| x.channel == channel) {
            let next: Vec<Member> = m.iter().filter(|x| x.channel != channel).cloned().collect();
            *m = Arc::from(next);
        }
        m.is_empty()
    }

    /// Fans `message` out to every member except `skip`; returns how many got it.
    pub async fn broadcast(&self, message: &BroadcastMessage, skip: Option<ChannelId>, wait: Duration) -> usize {
        let members = self.members();
        let mut frames = PerVsn::new(|vsn| message.frame(&self.name, vsn));
        deliver(&members, skip, &mut frames, wait).await
    }
}

/// All topics with members.
#[derive(Default)]
pub(crate) struct Topics {
    map: RwLock<HashMap<String, Arc<Topic>>>,
}

impl Topics {
    pub fn get(&self, name: &str, private: bool) -> Option<Arc<Topic>> {
        self.map.read().get(&registry_key(name, private)).cloned()
    }

    /// Adds `member` to `name` (creating the topic), running `with_presence` on the topic's
    /// presence state in the same critical section, so that a presence snapshot taken there
    /// and the diffs the member receives afterwards fit together.
    pub fn join<R>(
        &self,
        name: &str,
        private: bool,
        member: Member,
        with_presence: impl FnOnce(&PresenceState) -> R,
    ) -> (Arc<Topic>, R) {
        let key = registry_key(name, private);
        let mut map = self.map.write();
        let topic = Arc::clone(map.entry(key.clone()).or_insert_with(|| Arc::new(Topic::new(name, key))));
        let presence = topic.presence.lock();
        let r = with_presence(&presence);
        topic.add(member);
        drop(presence);
        drop(map);
        (topic, r)
    }

    /// Removes a channel from its topic, and the topic from the map once it is empty.
    pub fn leave(&self, topic: &Arc<Topic>, channel: ChannelId) {
        if !topic.remove(channel) {
            return;
        }
        let mut map = self.map.write();
        let presence = topic.presence.lock();
        let still_empty = topic.members.read().is_empty() && presence.is_empty();
        if still_empty && map.get(&topic.key).is_some_and(|t| Arc::ptr_eq(t, topic)) {
            map.remove(&topic.key);
        }
    }

    pub fn len(&self) -> usize {
        self.map.read().len()
    }
}

/// A broadcast on its way to a topic's members.
#[derive(Debug, Clone)]
pub(crate) enum BroadcastMessage {
    /// A user broadcast carried as bytes: from a kind-3 push or the per-event REST endpoint.
    User { event: String, metadata: Bytes, payload: BroadcastBytes },
    /// A JSON broadcast payload `{"type":"broadcast","event":…,"payload":…}`, forwarded
    /// unchanged: from a text push or the REST batch endpoint.
    Json(Value),
}

impl BroadcastMessage {
    /// The frame a `vsn` socket receives, or `None` if it cannot receive this message.
    fn frame(&self, topic: &str, vsn: Vsn) -> Option<Message> {
        match self {
            BroadcastMessage::User { event, metadata, payload } => match vsn {
                Vsn::V2 => serializer::user_broadcast_binary(topic, event, metadata, payload)
                    .or_else(|| serializer::user_broadcast_text(vsn, topic, event, metadata, payload)),
                Vsn::V1 => serializer::user_broadcast_text(vsn, topic, event, metadata, payload),
            },
            BroadcastMessage::Json(payload) => {
                Some(serializer::text_frame(vsn, None, None, topic, "broadcast", payload))
            }
        }
    }
}

/// A frame encoded lazily, once per serializer version.
pub(crate) struct PerVsn<F: Fn(Vsn) -> Option<Message>> {
    make: F,
    v1: Option<Option<Message>>,
    v2: Option<Option<Message>>,
}

impl<F: Fn(Vsn) -> Option<Message>> PerVsn<F> {
    pub fn new(make: F) -> PerVsn<F> {
        PerVsn { make, v1: None, v2: None }
    }

    pub fn get(&mut self, vsn: Vsn) -> Option<&Message> {
        let slot = match vsn {
            Vsn::V1 => &mut self.v1,
            Vsn::V2 => &mut self.v2,
        };
        slot.get_or_insert_with(|| (self.make)(vsn)).as_ref()
    }
}

/// Offers the frame to every member (except `skip`) without waiting, then waits for those
/// whose queue was full. Returns how many members got it.
pub(crate) async fn deliver<F: Fn(Vsn) -> Option<Message>>(
    members: &[Member],
    skip: Option<ChannelId>,
    frames: &mut PerVsn<F>,
    wait: Duration,
) -> usize {
    let mut delivered = 0;
    let mut full: Vec<(&Member, Message)> = Vec::new();
    for m in members {
        if Some(m.channel) == skip || m.outbox.is_gone() {
            continue;
        }
        let Some(frame) = frames.get(m.vsn) else {
            continue;
        };
        match m.outbox.offer(frame.clone()) {
            Offer::Queued => delivered += 1,
            Offer::Full(frame) => full.push((m, frame)),
            Offer::Closed => {}
        }
    }
    for (m, frame) in full {
        if m.outbox.push_waiting(frame, wait).await {
            delivered += 1;
        }
    }
    delivered
}

/// Where a broadcast push came from: enough to reply to it.
struct Source<'a> {
    topic: &'a str,
    reference: Option<&'a str>,
    size: usize,
}

impl Session {
    /// A text `broadcast` push on a joined channel (1.0.0 clients, and 2.0.0 pushes that are not
    /// user broadcasts).
    pub(super) async fn broadcast_text(&mut self, push: Push) {
        let Push { topic, reference, payload, size, .. } = push;
        let source = Source { topic: &topic, reference: reference.as_deref(), size };
        self.fan_out(source, BroadcastMessage::Json(Value::Object(payload))).await;
    }

    /// A kind-3 binary push.
    pub(super) async fn broadcast_binary(&mut self, push: BinaryPush) {
        if !self.channels.contains_key(&push.topic) {
            return self.unmatched(&push.topic, push.join_ref.as_deref(), push.reference.as_deref()).await;
        }
        let size = push.payload.len() + push.metadata.len();
        let source = Source { topic: &push.topic, reference: push.reference.as_deref(), size };
        let message = BroadcastMessage::User {
            event: push.event.clone(),
            metadata: push.metadata.clone(),
            payload: push.payload.clone(),
        };
        self.fan_out(source, message).await;
    }

    async fn fan_out(&mut self, source: Source<'_>, message: BroadcastMessage) {
        let Some(channel) = self.channels.get(source.topic) else {
            return;
        };
        let (ack, join_ref, topic, id) =
            (channel.ack, channel.join_ref.clone(), Arc::clone(&channel.topic), channel.id);
        let skip = (!channel.self_broadcast).then_some(id);
        if !self.hub.events.hit(1) {
            tracing::warn!(topic = source.topic, "MessagePerSecondRateLimitReached: closing the channel");
            return self.shutdown_channel(source.topic, text::TOO_MANY_MESSAGES).await;
        }
        if source.size > self.hub.limits.max_payload_bytes {
            tracing::info!(topic = source.topic, size = source.size, "broadcast payload too large; dropped");
            if ack {
                let m = serializer::error_reply(
                    self.vsn,
                    join_ref.as_deref(),
                    source.reference,
                    source.topic,
                    text::PAYLOAD_TOO_BIG,
                );
                self.send(m).await;
            }
            return;
        }
        topic.broadcast(&message, skip, self.hub.limits.slow_consumer_timeout).await;
        if ack {
            let m = serializer::reply(self.vsn, join_ref.as_deref(), source.reference, source.topic, true, json!({}));
            self.send(m).await;
        }
    }
}
