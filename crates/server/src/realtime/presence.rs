//! Presence: who is on a topic, as Phoenix.Presence reports it (spec §3).
//!
//! Design: each [`super::broadcast::Topic`] holds a [`PresenceState`] behind a `parking_lot`
//! mutex: key → metas, each meta owned by the channel that tracked it (one meta per channel, like
//! Phoenix.Tracker's one entry per process, topic and key). A track/untrack mutates the state
//! and computes the diff under the lock, snapshots the topic's members, releases the lock, and
//! only then fans the `presence_diff` out (encoded once per serializer version). A joining
//! channel takes its `presence_state` snapshot and becomes a member in one critical section
//! (`Topics::join`), so it sees every diff computed after its snapshot. A diff that overtakes
//! the `presence_state` on the wire is buffered by the client until the state arrives.
//!
//! Behaviour: metas carry a unique `phx_ref` (and `phx_ref_prev` on update); re-tracking an
//! identical payload is a no-op; an update is a leave of the old meta plus a join of the new;
//! diffs go to every member of the topic, the tracker included; a channel's meta leaves when it
//! untracks, leaves, is closed, or its socket goes away.
//!
//! Failure modes (each closes the channel with a `system` error, like Realtime): more than
//! `presence_calls_per_window` calls per channel (`Client presence rate limit exceeded`), the
//! tenant over `presence_events_per_second` (`Too many presence messages per second`), a track
//! frame over `max_payload_bytes` (`Track message size exceeded`). A non-map track payload gets
//! an error reply and changes nothing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Map, Value};
use tokio::time::Instant;

use super::broadcast::{deliver, Member, PerVsn, Topic};
use super::channel::channel_identity;
use super::limits::text;
use super::serializer::{self, Push};
use super::socket::Session;
use super::ChannelId;

/// A fresh `phx_ref`: a per-process prefix (so refs from before a restart never collide with
/// new ones) and a counter.
fn next_ref() -> String {
    static PREFIX: LazyLock<String> = LazyLock::new(|| {
        let bytes: [u8; 6] = rand::random();
        URL_SAFE_NO_PAD.encode(bytes)
    });
    static COUNTER: AtomicU64 = AtomicU64::new(1);
    format!("{}{:x}", *PREFIX, COUNTER.fetch_add(1, Ordering::Relaxed))
}

#[derive(Debug)]
struct Entry {
    channel: ChannelId,
    /// The tracked payload plus `phx_ref` (and `phx_ref_prev` after an update).
    meta: Map<String, Value>,
}

/// The presence of one topic.
#[derive(Debug, Default)]
pub(crate) struct PresenceState {
    keys: Vec<(String, Vec<Entry>)>,
}

/// `presence_diff` payload: `{"joins": {key: {"metas": [...]}}, "leaves": {...}}`.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Diff {
    pub joins: Map<String, Value>,
    pub leaves: Map<String, Value>,
}

impl Diff {
    fn add(side: &mut Map<String, Value>, key: &str, meta: Map<String, Value>) {
        let entry = side.entry(key.to_string()).or_insert_with(|| json!({ "metas": [] }));
        if let Some(Value::Array(metas)) = entry.get_mut("metas") {
            metas.push(Value::Object(meta));
        }
    }

    pub fn payload(&self) -> Value {
        json!({ "joins": self.joins, "leaves": self.leaves })
    }
}

/// What a track did.
#[derive(Debug, PartialEq)]
pub(crate) enum Tracked {
    /// Same payload as before: nothing changed.
    Unchanged,
    /// A new meta (the channel was not tracked).
    Joined(Diff),
    /// The channel's meta was replaced.
    Updated(Diff),
}

/// The tracked payload of a meta, without the refs the server added.
fn payload_of(meta: &Map<String, Value>) -> Map<String, Value> {
    meta.iter()
        .filter(|(k, _)| k.as_str() != "phx_ref" && k.as_str() != "phx_ref_prev")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

impl PresenceState {
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// `presence_state` payload: `{key: {"metas": [...]}}`.
    pub fn snapshot(&self) -> Value {
        let mut out = Map::new();
        for (key, entries) in &self.keys {
            let metas: Vec<Value> = entries.iter().map(|e| Value::Object(e.meta.clone())).collect();
            out.insert(key.clone(), json!({ "metas": metas }));
        }
        Value::Object(out)
    }

    /// Tracks `payload` for `channel` under `key`.
    pub fn track(&mut self, channel: ChannelId, key: &str, payload: Map<String, Value>) -> Tracked {
        let mut diff = Diff::default();
        let previous = self.remove_entry(channel, Some(&payload));
        let previous = match previous {
            Err(()) => return Tracked::Unchanged,
            Ok(p) => p,
        };
        let mut meta = payload;
        meta.insert("phx_ref".into(), Value::String(next_ref()));
        if let Some((old_key, old)) = &previous {
            if let Some(r) = old.get("phx_ref") {
                meta.insert("phx_ref_prev".into(), r.clone());
            }
            Diff::add(&mut diff.leaves, old_key, old.clone());
        }
        Diff::add(&mut diff.joins, key, meta.clone());
        match self.keys.iter_mut().find(|(k, _)| k == key) {
            Some((_, entries)) => entries.push(Entry { channel, meta }),
            None => self.keys.push((key.to_string(), vec![Entry { channel, meta }])),
        }
        if previous.is_some() {
            Tracked::Updated(diff)
        } else {
            Tracked::Joined(diff)
        }
    }

    /// Removes `channel`'s meta; the leave diff, or `None` if it was not tracked.
    pub fn untrack(&mut self, channel: ChannelId) -> Option<Diff> {
        let (key, meta) = self.remove_entry(channel, None).ok().flatten()?;
        let mut diff = Diff::default();
        Diff::add(&mut diff.leaves, &key, meta);
        Some(diff)
    }

    /// Removes the channel's entry and returns it (key, meta); `Err` (and nothing removed) if
    /// its payload equals `unless_same`.
    #[allow(clippy::type_complexity)]
    fn remove_entry(
        &mut self,
        channel: ChannelId,
        unless_same: Option<&Map<String, Value>>,
    ) -> Result<Option<(String, Map<String, Value>)>, ()> {
        for ki in 0..self.keys.len() {
            let entries = &mut self.keys[ki].1;
            let Some(i) = entries.iter().position(|e| e.channel == channel) else {
                continue;
            };
            if unless_same.is_some_and(|p| *p == payload_of(&entries[i].meta)) {
                return Err(());
            }
            let entry = entries.remove(i);
            let key = if entries.is_empty() { self.keys.remove(ki).0 } else { self.keys[ki].0.clone() };
            return Ok(Some((key, entry.meta)));
        }
        Ok(None)
    }
}

/// Sends a diff to every member of the topic (the tracker included).
pub(crate) async fn fan_out_diff(topic: &Topic, members: &[Member], diff: &Diff, wait: std::time::Duration) {
    let payload = diff.payload();
    let mut frames =
        PerVsn::new(|vsn| Some(serializer::text_frame(vsn, None, None, &topic.name, "presence_diff", &payload)));
    deliver(members, None, &mut frames, wait).await;
}

impl Session {
    /// A `presence` push (`track` / `untrack`) on a joined channel.
    pub(super) async fn presence(&mut self, push: Push) {
        let Some(channel) = self.channels.get_mut(&push.topic) else {
            return;
        };
        let limits = &self.hub.limits;
        // Per-channel call window (Realtime counts per joined channel).
        let now = Instant::now();
        if now.duration_since(channel.presence_window.0) >= limits.presence_window {
            channel.presence_window = (now, 0);
        }
        channel.presence_window.1 += 1;
        if channel.presence_window.1 > limits.presence_calls_per_window {
            tracing::warn!(topic = %push.topic, "ClientPresenceRateLimitReached: closing the channel");
            return self.shutdown_channel(&push.topic, text::CLIENT_PRESENCE).await;
        }
        if !self.hub.presence_events.hit(1) {
            tracing::warn!(topic = %push.topic, "PresenceRateLimitReached: closing the channel");
            return self.shutdown_channel(&push.topic, text::TOO_MANY_PRESENCE).await;
        }
        let event = push.payload.get("event").and_then(Value::as_str).unwrap_or("");
        match event {
            "track" => {
                if push.size > self.hub.limits.max_payload_bytes {
                    return self.shutdown_channel(&push.topic, text::TRACK_TOO_BIG).await;
                }
                match push.payload.get("payload") {
                    Some(Value::Object(meta)) => {
                        let meta = meta.clone();
                        self.track(&push, meta).await;
                    }
                    _ => self.reply_to(&push, false, json!({ "reason": "Presence track payload must be a map" })).await,
                }
            }
            "untrack" => {
                self.reply_to(&push, true, json!({})).await;
                self.untrack(&push.topic).await;
            }
            _ => self.reply_to(&push, false, json!({ "reason": "Unknown presence event" })).await,
        }
    }

    async fn track(&mut self, push: &Push, meta: Map<String, Value>) {
        let Some(channel) = self.channels.get_mut(&push.topic) else {
            return;
        };
        let (id, key) = (channel.id, channel.presence_key.clone());
        let topic = Arc::clone(&channel.topic);
        // The identity is recorded at the first track, so a later role change (access_token)
        // cannot make the untrack count someone else out.
        let newly_tracked = channel.tracked.is_none();
        let identity =
            channel.tracked.get_or_insert_with(|| channel_identity(&channel.role, &channel.presence_key)).clone();
        let (outcome, members) = {
            let mut state = topic.presence.lock();
            let outcome = state.track(id, &key, meta);
            (outcome, topic.members())
        };
        if newly_tracked {
            self.hub.online_add(&identity);
        }
        self.reply_to(push, true, json!({})).await;
        if let Tracked::Joined(diff) | Tracked::Updated(diff) = outcome {
            fan_out_diff(&topic, &members, &diff, self.hub.limits.slow_consumer_timeout).await;
        }
    }

    /// Removes the channel's presence (untrack, leave, close); fans out the leave.
    pub(super) async fn untrack(&mut self, topic_name: &str) {
        let Some(channel) = self.channels.get_mut(topic_name) else {
            return;
        };
        let Some(identity) = channel.tracked.take() else {
            return;
        };
        let (id, topic) = (channel.id, Arc::clone(&channel.topic));
        let (diff, members) = {
            let mut state = topic.presence.lock();
            (state.untrack(id), topic.members())
        };
        self.hub.online_remove(&identity);
        if let Some(diff) = diff {
            fan_out_diff(&topic, &members, &diff, self.hub.limits.slow_consumer_timeout).await;
        }
    }

    async fn reply_to(&self, push: &Push, ok: bool, response: Value) {
        let join_ref = self.channels.get(&push.topic).and_then(|c| c.join_ref.clone());
        let m = serializer::reply(self.vsn, join_ref.as_deref(), push.reference.as_deref(), &push.topic, ok, response);
        self.send(m).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().cloned().expect("object")
    }

    #[test]
    fn track_update_and_untrack_produce_phoenix_diffs() {
        let mut s = PresenceState::default();
        let Tracked::Joined(d) = s.track(1, "u1", map(json!({"name": "a"}))) else { panic!("join") };
        let first_ref = d.joins["u1"]["metas"][0]["phx_ref"].clone();
        assert!(d.leaves.is_empty());
        assert_eq!(s.track(1, "u1", map(json!({"name": "a"}))), Tracked::Unchanged, "identical re-track is a no-op");
        let Tracked::Updated(d) = s.track(1, "u1", map(json!({"name": "b"}))) else { panic!("update") };
        assert_eq!(d.joins["u1"]["metas"][0]["phx_ref_prev"], first_ref);
        assert_eq!(d.leaves["u1"]["metas"][0]["phx_ref"], first_ref);
        assert_ne!(d.joins["u1"]["metas"][0]["phx_ref"], first_ref, "every track gets a new phx_ref");
        s.track(2, "u1", map(json!({"name": "c"})));
        assert_eq!(s.snapshot()["u1"]["metas"].as_array().map(Vec::len), Some(2));
        let d = s.untrack(1).expect("tracked");
        assert_eq!(d.leaves["u1"]["metas"][0]["name"], "b");
        assert!(s.untrack(1).is_none());
        s.untrack(2);
        assert!(s.is_empty());
    }
}
