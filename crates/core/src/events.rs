//! The one typed event stream the shell listens to, and how bursts are coalesced.
//!
//! Every part of the engine reports what it changed as [`Changes`] (sets of ids). A coalescer
//! task merges the changes that arrive within one [`FRAME`] and then emits at most one event
//! per view: a catch-up that stores 1,000 messages of a room produces one
//! [`Event::Messages`] listing 1,000 ids, not 1,000 events. Events say *what* changed; the
//! shell re-reads the view from the engine (the cache answers in milliseconds), so an event
//! never carries stale row data and a missed event is healed by the next one.
//!
//! Status events ([`Event::Connection`], [`Event::Session`]) are not coalesced, only deduplicated
//! by their watch channels; [`Event::Typing`] and [`Event::Presence`] are sent when a room's set
//! changes (see [`crate::live`]).
//!
//! Subscribers get a `broadcast::Receiver`; one that falls more than [`CAPACITY`] events behind
//! gets `Lagged` and should reload its views.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::model::{LiveMetrics, QueueCounts};
use crate::notify::Notice;

/// How long changes are gathered before they are emitted (one display frame).
pub const FRAME: Duration = Duration::from_millis(16);

/// Events a subscriber may fall behind before it misses some.
pub const CAPACITY: usize = 1024;

/// The connection to the project as the UI shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ConnectionState {
    /// The last request reached the server.
    Online,
    /// Requests fail for a transient reason; the next attempt is in `retry_in_ms`.
    Connecting { attempt: u32, retry_in_ms: u64 },
    /// Not signed in, or the OS reports no network: nothing is attempted.
    Offline,
}

/// Something the shell should reflect.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// Signed in (`user_id`) or out (`None`).
    Session {
        user_id: Option<Uuid>,
    },
    Connection {
        state: ConnectionState,
    },
    /// Rooms whose row, membership, unread count or latest message changed.
    Rooms {
        ids: Vec<Uuid>,
    },
    /// Messages of one room that appeared or changed (content, state, reactions).
    Messages {
        room_id: Uuid,
        ids: Vec<Uuid>,
    },
    Challenges {
        ids: Vec<Uuid>,
    },
    Submissions {
        challenge_id: Uuid,
        ids: Vec<Uuid>,
    },
    /// The outbound queue changed: how many changes wait, how many failed.
    Outbox {
        counts: QueueCounts,
    },
    /// New activity rows or live metrics.
    Analytics {
        metrics: Option<LiveMetrics>,
    },
    /// Changes worth a notification (already filtered by the preferences and grouped).
    Notify {
        notices: Vec<Notice>,
    },
    /// Who is typing in a room now (other users; empty when the last one stopped or expired).
    Typing {
        room_id: Uuid,
        user_ids: Vec<Uuid>,
    },
    /// Who is online in a room the user has entered (the user included).
    Presence {
        room_id: Uuid,
        user_ids: Vec<Uuid>,
    },
    /// Documents whose listing, access or sync status changed (re-read `documents()` /
    /// `doc_status(id)`).
    Documents {
        ids: Vec<Uuid>,
    },
    /// Changes of an open document made elsewhere: a yrs / Yjs v1 update (base64) for the
    /// webview's `Y.Doc` (apply with an origin that is not sent back).
    DocUpdate {
        document_id: Uuid,
        update: String,
    },
    /// Co-editors' awareness (y-protocols awareness update, base64) for the webview's
    /// `Awareness`.
    DocAwareness {
        document_id: Uuid,
        update: String,
    },
}

/// What one operation changed, by id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    pub rooms: BTreeSet<Uuid>,
    pub messages: BTreeMap<Uuid, BTreeSet<Uuid>>,
    pub challenges: BTreeSet<Uuid>,
    pub submissions: BTreeMap<Uuid, BTreeSet<Uuid>>,
    /// The outbox changed (counts are read when the event is emitted).
    pub outbox: bool,
    pub activity: bool,
    pub metrics: Option<LiveMetrics>,
    pub notices: Vec<Notice>,
    pub documents: BTreeSet<Uuid>,
}

impl Changes {
    pub fn message(&mut self, room: Uuid, id: Uuid) {
        self.messages.entry(room).or_default().insert(id);
        self.rooms.insert(room);
    }

    pub fn submission(&mut self, challenge: Uuid, id: Uuid) {
        self.submissions.entry(challenge).or_default().insert(id);
    }

    pub fn is_empty(&self) -> bool {
        *self == Changes::default()
    }

    pub fn merge(&mut self, other: Changes) {
        self.rooms.extend(other.rooms);
        for (room, ids) in other.messages {
            self.messages.entry(room).or_default().extend(ids);
        }
        self.challenges.extend(other.challenges);
        for (c, ids) in other.submissions {
            self.submissions.entry(c).or_default().extend(ids);
        }
        self.outbox |= other.outbox;
        self.activity |= other.activity;
        if other.metrics.is_some() {
            self.metrics = other.metrics;
        }
        self.notices.extend(other.notices);
        self.documents.extend(other.documents);
    }

    /// The events for these changes (`counts`: the outbox counts at emission time).
    fn into_events(self, counts: Option<QueueCounts>) -> Vec<Event> {
        let mut out = Vec::new();
        if !self.rooms.is_empty() {
            out.push(Event::Rooms { ids: self.rooms.into_iter().collect() });
        }
        for (room_id, ids) in self.messages {
            out.push(Event::Messages { room_id, ids: ids.into_iter().collect() });
        }
        if !self.challenges.is_empty() {
            out.push(Event::Challenges { ids: self.challenges.into_iter().collect() });
        }
        for (challenge_id, ids) in self.submissions {
            out.push(Event::Submissions { challenge_id, ids: ids.into_iter().collect() });
        }
        if let Some(counts) = counts {
            out.push(Event::Outbox { counts });
        }
        if self.activity || self.metrics.is_some() {
            out.push(Event::Analytics { metrics: self.metrics });
        }
        if !self.notices.is_empty() {
            out.push(Event::Notify { notices: crate::notify::group(self.notices) });
        }
        if !self.documents.is_empty() {
            out.push(Event::Documents { ids: self.documents.into_iter().collect() });
        }
        out
    }
}

/// Where the engine's parts send their changes. Cheap to clone; sending never waits.
#[derive(Clone)]
pub struct Sink {
    tx: mpsc::UnboundedSender<Changes>,
}

impl Sink {
    pub fn send(&self, changes: Changes) {
        if !changes.is_empty() {
            // The coalescer only stops with the engine; a change after that has no audience.
            let _ = self.tx.send(changes);
        }
    }
}

/// The outbox counts, read asynchronously (`None` when they cannot be read).
pub type CountsFuture = Pin<Box<dyn Future<Output = Option<QueueCounts>> + Send>>;

/// Something that can count the outbox when an event needs the counts.
pub type CountOutbox = std::sync::Arc<dyn Fn() -> CountsFuture + Send + Sync>;

/// Starts the coalescer: returns the sink for changes; events go to `events`. Stops with
/// `cancel`. `counts` reads the outbox counts (asynchronously) when the outbox changed.
pub fn start(events: broadcast::Sender<Event>, counts: CountOutbox, cancel: CancellationToken) -> Sink {
    let (tx, mut rx) = mpsc::unbounded_channel::<Changes>();
    tokio::spawn(async move {
        loop {
            let first = tokio::select! {
                _ = cancel.cancelled() => return,
                c = rx.recv() => match c { Some(c) => c, None => return },
            };
            let mut pending = first;
            let deadline = tokio::time::sleep(FRAME);
            tokio::pin!(deadline);
            loop {
                tokio::select! {
                    _ = &mut deadline => break,
                    c = rx.recv() => match c { Some(c) => pending.merge(c), None => break },
                }
            }
            let counts = if pending.outbox { counts().await } else { None };
            for e in pending.into_events(counts) {
                // No subscriber is fine: events are hints.
                let _ = events.send(e);
            }
        }
    });
    Sink { tx }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test(start_paused = true)]
    async fn a_burst_of_a_thousand_rows_becomes_one_event_per_view() {
        let (events, mut rx) = broadcast::channel(CAPACITY);
        let cancel = CancellationToken::new();
        let counts: CountOutbox = Arc::new(|| Box::pin(async { Some(QueueCounts { queued: 3, failed: 0 }) }));
        let sink = start(events, counts, cancel.clone());
        let room = Uuid::now_v7();
        for _ in 0..1000 {
            let mut c = Changes::default();
            c.message(room, Uuid::now_v7());
            c.outbox = true;
            sink.send(c);
        }
        let mut got = Vec::new();
        while let Ok(Ok(e)) = tokio::time::timeout(Duration::from_millis(100), rx.recv()).await {
            got.push(e);
        }
        assert_eq!(got.len(), 3, "rooms + messages + outbox, once each: {got:?}");
        match &got[1] {
            Event::Messages { room_id, ids } => assert_eq!((*room_id, ids.len()), (room, 1000)),
            other => panic!("expected the messages event, got {other:?}"),
        }
        assert_eq!(got[2], Event::Outbox { counts: QueueCounts { queued: 3, failed: 0 } });
        cancel.cancel();
    }

    #[test]
    fn events_serialise_as_tagged_unions() {
        let e = Event::Connection { state: ConnectionState::Connecting { attempt: 2, retry_in_ms: 1500 } };
        assert_eq!(
            serde_json::to_string(&e).expect("json"),
            r#"{"type":"connection","state":{"state":"connecting","attempt":2,"retry_in_ms":1500}}"#
        );
        let e = Event::Outbox { counts: QueueCounts { queued: 1, failed: 2 } };
        assert_eq!(serde_json::to_string(&e).expect("json"), r#"{"type":"outbox","counts":{"queued":1,"failed":2}}"#);
    }
}
