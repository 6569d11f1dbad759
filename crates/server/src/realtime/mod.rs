//! Supabase Realtime at `/realtime/v1`: Phoenix channels over WebSocket with broadcast,
//! presence and postgres_changes, spoken so that the official `@supabase/supabase-js`
//! (realtime-js, vsn 2.0.0) and Python `realtime` (vsn 1.0.0) clients work unchanged. The wire
//! contract is `shared/protocol/supabase-wire.md` §1–5.
//!
//! Map (one file per concept):
//! - [`http`]: the WebSocket upgrade and the REST broadcast endpoints;
//! - [`socket`]: one connection — the session task (state, reads, timers) and its writer task;
//! - [`serializer`]: vsn 1.0.0 objects, 2.0.0 arrays, binary kinds 3 (in) and 4 (out);
//! - [`channel`]: join / leave / replace, tokens and their expiry, private topics;
//! - [`broadcast`]: the topic registry, member snapshots and encode-once fan-out;
//! - [`presence`]: presence state and diffs;
//! - [`postgres_changes`]: subscriptions, filters and the change dispatcher;
//! - [`limits`]: every limit with its default and Supabase's error texts.
//!
//! Ownership: the [`Hub`] owns the dispatcher task (aborted when the hub drops, stopped by the
//! shutdown token); each connection's session task is spawned by the HTTP server on upgrade
//! and owns its writer task; nothing else is spawned. Shared state (topics, the postgres_changes
//! registry, rate windows, the online-user count) lives in [`HubShared`] behind short
//! `parking_lot` locks that are never held across an `.await`.
//!
//! Performance shape: a broadcast is encoded at most once per serializer version and handed to
//! each subscriber's bounded queue as shared bytes; each writer batches what is queued into
//! one flush. A committed row change is serialised once and checked once per distinct role.

mod broadcast;
mod channel;
mod http;
pub mod limits;
mod postgres_changes;
mod presence;
mod serializer;
mod socket;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use axum::Router;
use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

use crate::db::Db;
use crate::AppState;
pub use limits::Limits;
use limits::RateWindow;

/// Identifies one join incarnation of a channel, server-wide.
pub(crate) type ChannelId = u64;

/// State shared by every connection and the dispatcher.
pub(crate) struct HubShared {
    pub db: Arc<Db>,
    pub limits: Limits,
    pub shutdown: CancellationToken,
    pub topics: broadcast::Topics,
    pub pg: postgres_changes::PgRegistry,
    /// Tenant-wide rates.
    pub events: RateWindow,
    pub joins: RateWindow,
    pub presence_events: RateWindow,
    /// Open sockets.
    pub connections: AtomicUsize,
    /// Online identity (user id, else presence key) → number of tracked channels.
    online: Mutex<HashMap<String, usize>>,
    next_channel: AtomicU64,
}

impl HubShared {
    pub fn next_channel_id(&self) -> ChannelId {
        self.next_channel.fetch_add(1, Ordering::Relaxed)
    }

    pub fn online_add(&self, identity: &str) {
        *self.online.lock().entry(identity.to_string()).or_insert(0) += 1;
    }

    pub fn online_remove(&self, identity: &str) {
        let mut online = self.online.lock();
        if let Some(n) = online.get_mut(identity) {
            *n -= 1;
            if *n == 0 {
                online.remove(identity);
            }
        }
    }
}

/// The Realtime service: topics, presence, the postgres_changes dispatcher.
pub struct Hub {
    pub(crate) shared: Arc<HubShared>,
    dispatcher: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Hub {
    /// A hub with the default [`Limits`].
    pub fn new(db: Arc<Db>, shutdown: CancellationToken) -> Hub {
        Hub::with_limits(db, shutdown, Limits::default())
    }

    pub fn with_limits(db: Arc<Db>, shutdown: CancellationToken, limits: Limits) -> Hub {
        let shared = HubShared {
            db,
            events: RateWindow::per_second(limits.events_per_second),
            joins: RateWindow::per_second(limits.joins_per_second),
            presence_events: RateWindow::per_second(limits.presence_events_per_second),
            limits,
            shutdown,
            topics: broadcast::Topics::default(),
            pg: postgres_changes::PgRegistry::default(),
            connections: AtomicUsize::new(0),
            online: Mutex::new(HashMap::new()),
            next_channel: AtomicU64::new(1),
        };
        Hub { shared: Arc::new(shared), dispatcher: Mutex::new(None) }
    }

    /// Starts the task that fans committed changes out to subscribers. It subscribes to the
    /// change feed before returning, so no change committed afterwards is missed.
    pub fn start(state: &Arc<AppState>) {
        let hub = &state.realtime;
        let shared = Arc::clone(&hub.shared);
        let feed = shared.db.changes();
        let task = tokio::spawn(async move {
            let watch = Arc::clone(&shared);
            postgres_changes::run(shared, feed).await;
            if !watch.shutdown.is_cancelled() {
                tracing::error!("the postgres_changes dispatcher ended before shutdown");
            }
        });
        if let Some(old) = hub.dispatcher.lock().replace(task) {
            old.abort();
        }
    }

    /// How many distinct users are present (tracked) on any topic right now: signed-in users
    /// count once however many channels track them; others count by presence key.
    pub fn online_users(&self) -> usize {
        self.shared.online.lock().len()
    }

    /// Open Realtime sockets.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::Relaxed)
    }

    /// Topics with at least one member.
    pub fn topic_count(&self) -> usize {
        self.shared.topics.len()
    }

    pub fn limits(&self) -> &Limits {
        &self.shared.limits
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        if let Some(task) = self.dispatcher.lock().take() {
            task.abort();
        }
    }
}

/// The routes under `/realtime/v1`.
pub fn router() -> Router<Arc<AppState>> {
    http::router()
}
