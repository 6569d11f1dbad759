//! The client handle and its configuration.
//!
//! [`RealtimeClient::connect`] spawns the socket task and returns a clonable handle. The task
//! is owned by the handles: when the last [`RealtimeClient`] clone and the last [`Channel`] (and
//! stream) are dropped, a cancellation token stops it (it closes the socket cleanly);
//! [`RealtimeClient::disconnect`] does the same and waits for it.
//!
//! Handles talk to the task over three kinds of queue:
//! - **pushes** (broadcast, track, untrack): a bounded `mpsc` with a `oneshot` reply each;
//! - **the access token and the network hint**: `watch` cells (state, not events: only the
//!   latest value matters, so they coalesce);
//! - **channel lifecycle and stream registration**: an unbounded `mpsc`, because a `Drop` cannot
//!   wait for room. It holds at most one message per channel or stream the caller creates or
//!   drops, so it is bounded by what the caller holds, and the task drains it first.
//!
//! Failure modes: a configuration that cannot work (no API key, an unknown URL scheme, a bad
//! extra root certificate, no tokio runtime) is a [`ConfigError`] from `connect`; everything
//! after that is retried or reported on the state, channel and push APIs. When the task has
//! stopped, pushes fail with `SendError::Closed`, streams end and states read `Stopped` /
//! `Closed`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::backoff::Backoff;
use super::channel::{Channel, ChannelConfig, ChannelInner};
use super::error::ConfigError;
use super::presence::PresenceState;
use super::serializer::Vsn;
use super::session::{ChannelId, ChannelWatch, Command, Control};
use super::socket::{self, Network};
use super::state::{ChannelStatus, ConnectionState};
use super::transport;

/// How to reach Realtime and how patient to be.
#[derive(Debug, Clone)]
pub struct RealtimeConfig {
    /// The project URL (`http(s)://host[:port]`; Realtime is at `/realtime/v1`), or the Realtime
    /// endpoint itself (`ws(s)://host/realtime/v1[/websocket]`).
    pub url: String,
    /// The project's API key (anon / publishable), sent as `apikey`.
    pub api_key: String,
    /// The user's access token, if signed in (else channels use the API key).
    pub access_token: Option<String>,
    /// Open TCP connections to this address instead of the URL's host; the URL (and so the
    /// `Host` header) stays as given. For tunnels and port forwards (like curl's
    /// `--connect-to`), and for tests through a proxy.
    pub connect_to: Option<std::net::SocketAddr>,
    /// DER certificates trusted for `wss://` besides the web PKI roots (a self-hosted project
    /// behind a private CA).
    pub extra_root_certificates: Vec<Vec<u8>>,
    /// Serializer version; 2.0.0 by default, as realtime-js.
    pub vsn: Vsn,
    /// The longest a dead link goes unnoticed: heartbeats go out every half interval and each
    /// must be answered before the next is due (25 s: a heartbeat every 12.5 s).
    pub heartbeat_interval: Duration,
    /// After `network_back` / `network_lost` on an open connection, a heartbeat is sent at once
    /// and must be answered within this.
    pub probe_timeout: Duration,
    pub connect_timeout: Duration,
    /// How long a push (broadcast, track) may take, from the call to its reply (or write).
    pub push_timeout: Duration,
    pub join_timeout: Duration,
    /// Reconnect schedule of the socket.
    pub backoff: Backoff,
    /// Rejoin schedule of a channel after a join error or a server-side close.
    pub rejoin_backoff: Backoff,
    /// A channel joined this long has its rejoin backoff reset at its next failure.
    pub rejoin_stable_after: Duration,
    /// Items each subscription queues before dropping (and counting) new ones.
    pub queue_capacity: usize,
    /// Pushes queued between handles and the task.
    pub command_capacity: usize,
    /// Pushes a channel holds while it is not joined (oldest dropped beyond this).
    pub max_buffered_pushes: usize,
}

impl RealtimeConfig {
    /// Defaults of realtime-js where it has them (25 s heartbeat, 10 s timeouts).
    pub fn new(url: impl Into<String>, api_key: impl Into<String>) -> RealtimeConfig {
        RealtimeConfig {
            url: url.into(),
            api_key: api_key.into(),
            access_token: None,
            connect_to: None,
            extra_root_certificates: Vec::new(),
            vsn: Vsn::V2,
            heartbeat_interval: Duration::from_secs(25),
            probe_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(10),
            push_timeout: Duration::from_secs(10),
            join_timeout: Duration::from_secs(10),
            backoff: Backoff::default(),
            rejoin_backoff: Backoff::default(),
            rejoin_stable_after: Duration::from_secs(30),
            queue_capacity: 1024,
            command_capacity: 256,
            max_buffered_pushes: 100,
        }
    }

    /// Realtime of `project` (its URL and API key), with the defaults.
    pub fn for_project(project: &crate::Project) -> RealtimeConfig {
        RealtimeConfig::new(project.url().as_str(), project.anon_key())
    }

    /// The WebSocket URL: `…/realtime/v1/websocket?apikey=<key>&vsn=<vsn>`.
    pub fn endpoint(&self) -> Result<String, ConfigError> {
        if self.api_key.is_empty() {
            return Err(ConfigError::MissingApiKey);
        }
        let url = self.url.trim_end_matches('/');
        let base = if let Some(rest) = url.strip_prefix("http://") {
            format!("ws://{rest}/realtime/v1")
        } else if let Some(rest) = url.strip_prefix("https://") {
            format!("wss://{rest}/realtime/v1")
        } else if url.starts_with("ws://") || url.starts_with("wss://") {
            url.trim_end_matches("/websocket").to_string()
        } else {
            return Err(ConfigError::BadUrl(self.url.clone()));
        };
        Ok(format!("{base}/websocket?apikey={}&vsn={}", query_escape(&self.api_key), self.vsn.as_str()))
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub(crate) struct ClientInner {
    pub(crate) config: Arc<RealtimeConfig>,
    control: mpsc::UnboundedSender<Control>,
    pub(crate) commands: mpsc::Sender<Command>,
    auth: watch::Sender<Option<String>>,
    network: watch::Sender<Network>,
    state: watch::Receiver<ConnectionState>,
    /// Live channels by topic. `parking_lot`: held for a lookup or an insert, never across
    /// an `.await`, and never while a `Channel` could be dropped inside it.
    registry: parking_lot::Mutex<HashMap<String, Weak<ChannelInner>>>,
    next_id: AtomicU64,
    cancel: CancellationToken,
    task: parking_lot::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl ClientInner {
    pub(crate) fn control(&self, c: Control) {
        // Fails only when the task has stopped; then there is nothing to register with.
        let _ = self.control.send(c);
    }

    /// The last handle of channel `id` is gone.
    pub(crate) fn release(&self, id: ChannelId, topic: &str) {
        {
            let mut registry = self.registry.lock();
            if registry.get(topic).is_some_and(|w| w.upgrade().is_none()) {
                registry.remove(topic);
            }
        }
        self.control(Control::Release { id });
    }
}

impl Drop for ClientInner {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// The one realtime connection; cheap to clone. See the module docs of [`crate::realtime`].
#[derive(Clone)]
pub struct RealtimeClient {
    inner: Arc<ClientInner>,
}

impl std::fmt::Debug for RealtimeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RealtimeClient")
            .field("url", &self.inner.config.url)
            .field("state", &*self.inner.state.borrow())
            .finish()
    }
}

impl RealtimeClient {
    /// Starts the socket task (it connects at once and never gives up). Must be called inside
    /// a tokio runtime.
    pub fn connect(config: RealtimeConfig) -> Result<RealtimeClient, ConfigError> {
        let url = config.endpoint()?;
        let tls = transport::tls_config(&config.extra_root_certificates).map_err(ConfigError::Tls)?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| ConfigError::NoRuntime)?;
        let config = Arc::new(config);
        let (control_tx, control_rx) = mpsc::unbounded_channel();
        let (commands_tx, commands_rx) = mpsc::channel(config.command_capacity.max(1));
        let (auth_tx, auth_rx) = watch::channel(config.access_token.clone());
        let (network_tx, network_rx) = watch::channel(Network::default());
        let (state_tx, state_rx) =
            watch::channel(ConnectionState::Connecting { attempt: 1, retry_at: None, last_error: None });
        let cancel = CancellationToken::new();
        let task = socket::Task::new(
            Arc::clone(&config),
            url,
            tls,
            socket::Inputs {
                control: control_rx,
                commands: commands_rx,
                auth: auth_rx,
                network: network_rx,
                state: state_tx,
                cancel: cancel.clone(),
            },
        );
        let handle = runtime.spawn(task.run());
        Ok(RealtimeClient {
            inner: Arc::new(ClientInner {
                config,
                control: control_tx,
                commands: commands_tx,
                auth: auth_tx,
                network: network_tx,
                state: state_rx,
                registry: parking_lot::Mutex::new(HashMap::new()),
                next_id: AtomicU64::new(1),
                cancel,
                task: parking_lot::Mutex::new(Some(handle)),
            }),
        })
    }

    /// The connection's state, observable.
    pub fn state(&self) -> watch::Receiver<ConnectionState> {
        self.inner.state.clone()
    }

    /// The channel `name` (topic `realtime:<name>`; a name already prefixed is kept). Returns
    /// the live channel of that topic if there is one (and ignores `config` then).
    pub fn channel(&self, name: &str, config: ChannelConfig) -> Channel {
        let topic = if name.starts_with("realtime:") { name.to_string() } else { format!("realtime:{name}") };
        let mut registry = self.inner.registry.lock();
        if let Some(existing) = registry.get(&topic).and_then(Weak::upgrade) {
            return Channel { inner: existing };
        }
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let (status_tx, status_rx) = watch::channel(ChannelStatus::Joining);
        let (live_tx, live_rx) = watch::channel(0);
        let (presence_tx, presence_rx) = watch::channel(Arc::new(PresenceState::default()));
        let inner =
            Arc::new(ChannelInner::new(id, topic.clone(), Arc::clone(&self.inner), status_rx, live_rx, presence_rx));
        registry.insert(topic.clone(), Arc::downgrade(&inner));
        let watch = ChannelWatch { status: status_tx, live: live_tx, presence: presence_tx };
        self.inner.control(Control::Open { id, topic, config, watch });
        drop(registry);
        Channel { inner }
    }

    /// A new access token (or `None` after signing out): sent to every joined channel, and
    /// channels waiting for a token rejoin with it.
    pub fn set_auth(&self, token: Option<String>) {
        self.inner.auth.send_if_modified(|t| {
            let changed = *t != token;
            *t = token;
            changed
        });
    }

    /// The network is back (an OS signal): connect now instead of at the next backoff step,
    /// with the backoff reset; if the socket is open, verify it with a heartbeat.
    pub fn network_back(&self) {
        self.inner.network.send_modify(|n| {
            n.online = true;
            n.backs += 1;
        });
    }

    /// The network is gone (an OS signal): state `Offline`, retries slow to the backoff cap
    /// until [`RealtimeClient::network_back`]; an open socket is verified with a heartbeat.
    pub fn network_lost(&self) {
        self.inner.network.send_modify(|n| n.online = false);
    }

    /// Stops the connection (channels close, streams end) and waits for the task to finish.
    /// Other handles then see `ConnectionState::Stopped`.
    pub async fn disconnect(&self) {
        self.inner.cancel.cancel();
        let task = self.inner.task.lock().take();
        if let Some(task) = task {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_follows_supabase_js() {
        let c = RealtimeConfig::new("http://127.0.0.1:5000/", "k.e.y");
        assert_eq!(c.endpoint().as_deref(), Ok("ws://127.0.0.1:5000/realtime/v1/websocket?apikey=k.e.y&vsn=2.0.0"));
        let mut c = RealtimeConfig::new("https://x.supabase.co", "a b");
        c.vsn = Vsn::V1;
        assert_eq!(c.endpoint().as_deref(), Ok("wss://x.supabase.co/realtime/v1/websocket?apikey=a%20b&vsn=1.0.0"));
        let c = RealtimeConfig::new("wss://h/realtime/v1/websocket", "k");
        assert_eq!(c.endpoint().as_deref(), Ok("wss://h/realtime/v1/websocket?apikey=k&vsn=2.0.0"));
        assert_eq!(RealtimeConfig::new("ftp://h", "k").endpoint(), Err(ConfigError::BadUrl("ftp://h".into())));
        assert_eq!(RealtimeConfig::new("http://h", "").endpoint(), Err(ConfigError::MissingApiKey));
        let mut c = RealtimeConfig::new("http://h", "k");
        c.extra_root_certificates = vec![vec![1, 2, 3]];
        assert!(matches!(RealtimeClient::connect(c), Err(ConfigError::Tls(_))), "a bad extra root is a config error");
    }

    #[test]
    fn a_project_gives_its_url_and_key() {
        let p = crate::Project::new("http://127.0.0.1:5000", "anon").expect("project");
        assert_eq!(
            RealtimeConfig::for_project(&p).endpoint().as_deref(),
            Ok("ws://127.0.0.1:5000/realtime/v1/websocket?apikey=anon&vsn=2.0.0")
        );
    }

    #[test]
    fn connect_outside_a_runtime_is_an_error() {
        let r = RealtimeClient::connect(RealtimeConfig::new("http://127.0.0.1:1", "k"));
        assert_eq!(r.err(), Some(ConfigError::NoRuntime));
    }
}
