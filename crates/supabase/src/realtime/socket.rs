//! The socket task: the only owner of the WebSocket. It connects, reconnects forever, runs the
//! heartbeat, reads frames into the [`Session`] and writes what the session produces.
//!
//! Loop: one `select!` (biased, in this order) over cancellation, channel lifecycle and
//! registrations, the access token, the network hint, pushes, the link (retry timer / connect
//! in flight / open socket with its heartbeat timer and writer), and the session's own timer
//! (rejoins, join timeouts). After every event the session's output is handed to the writer.
//! Registrations are drained before anything else, so a stream registered before a frame
//! arrives sees that frame.
//!
//! Writing: a separate writer task per connection, fed through a bounded queue with
//! `try_send`, so a stalled socket never blocks this task (timers and reads go on). A full
//! queue means the link is not draining: it is treated as dead.
//!
//! Reconnecting ([`super::backoff`]): after a failed attempt or a lost connection the next
//! attempt waits `backoff.delay(n)`; `n` restarts at 1 only after a connection that proved
//! healthy (an ok reply arrived and no limit error was seen), so a server that accepts and
//! drops at once sees the waits grow to the cap. An HTTP 401/403 on the upgrade (a refused API
//! key) waits the cap each time. `network_back` starts an attempt at once with the backoff
//! reset; `network_lost` slows attempts to the cap (state `Offline`).
//!
//! Heartbeats: one every half `heartbeat_interval`, each to be answered before the next is due.
//! A link that goes silent (half-open, black-holed) is therefore noticed within one interval of
//! its last sign of life, where realtime-js (one heartbeat per interval, answered within the
//! next) can take two. `network_back` / `network_lost` on an open socket send a probe that must
//! be answered within `probe_timeout`.
//!
//! Failure modes, each ending the connection and scheduling a reconnect: transport error or
//! EOF, a close frame from the server (any code: Realtime clients reconnect after every close
//! they did not ask for), a heartbeat or probe without a reply in time, a write error or a
//! stalled writer, a connect timeout, a TLS failure. A frame that does not decode is logged and
//! dropped; the connection stays.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;

use super::client::RealtimeConfig;
use super::error::ConnectError;
use super::session::{Command, Control, Heartbeat, Session, SessionConfig};
use super::state::ConnectionState;
use super::transport::{self, Transport};

type Ws = WebSocketStream<Transport>;

/// Frames queued for the writer before the link counts as stalled.
const WRITE_QUEUE: usize = 4096;
/// Frames the writer feeds before one flush.
const WRITE_BATCH: usize = 256;
/// Pushes taken from the command queue per loop turn (so the link is served in between).
const COMMAND_BATCH: usize = 64;

/// The caller's network hint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Network {
    pub online: bool,
    /// How many times `network_back` was called.
    pub backs: u64,
}

impl Default for Network {
    fn default() -> Network {
        Network { online: true, backs: 0 }
    }
}

/// What the handles give the task.
pub(crate) struct Inputs {
    pub control: mpsc::UnboundedReceiver<Control>,
    pub commands: mpsc::Receiver<Command>,
    pub auth: watch::Receiver<Option<String>>,
    pub network: watch::Receiver<Network>,
    pub state: watch::Sender<ConnectionState>,
    pub cancel: CancellationToken,
}

type Connecting = Pin<Box<dyn Future<Output = Result<Ws, ConnectError>> + Send>>;

enum Link {
    /// Waiting to retry.
    Down {
        retry_at: Instant,
    },
    Opening(Connecting),
    Up(Conn),
}

struct Conn {
    stream: SplitStream<Ws>,
    writer: mpsc::Sender<Message>,
    writer_task: Option<tokio::task::JoinHandle<()>>,
    next_heartbeat: Instant,
}

impl Drop for Conn {
    fn drop(&mut self) {
        if let Some(t) = self.writer_task.take() {
            t.abort();
        }
    }
}

enum LinkEvent {
    RetryDue,
    Opened(Box<Result<Ws, ConnectError>>),
    Frame(Option<Result<Message, tungstenite::Error>>),
    HeartbeatDue,
    WriterEnded,
}

async fn next_link_event(link: &mut Link) -> LinkEvent {
    match link {
        Link::Down { retry_at } => {
            tokio::time::sleep_until(*retry_at).await;
            LinkEvent::RetryDue
        }
        Link::Opening(fut) => LinkEvent::Opened(Box::new(fut.await)),
        Link::Up(conn) => {
            let writer = async {
                match conn.writer_task.as_mut() {
                    Some(t) => {
                        let _ = t.await;
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                m = conn.stream.next() => LinkEvent::Frame(m),
                _ = tokio::time::sleep_until(conn.next_heartbeat) => LinkEvent::HeartbeatDue,
                _ = writer => LinkEvent::WriterEnded,
            }
        }
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

pub(crate) struct Task {
    cfg: Arc<RealtimeConfig>,
    url: String,
    tls: Arc<tokio_rustls::rustls::ClientConfig>,
    session: Session,
    inputs: Inputs,
    link: Link,
    /// Failed attempts / unhealthy connections since the last healthy one.
    failures: u32,
    last_error: Option<ConnectError>,
    network: Network,
}

impl Task {
    pub fn new(
        cfg: Arc<RealtimeConfig>,
        url: String,
        tls: Arc<tokio_rustls::rustls::ClientConfig>,
        inputs: Inputs,
    ) -> Task {
        let session = Session::new(
            SessionConfig {
                vsn: cfg.vsn,
                join_timeout: cfg.join_timeout,
                rejoin: cfg.rejoin_backoff,
                stable_after: cfg.rejoin_stable_after,
                max_buffered: cfg.max_buffered_pushes.max(1),
            },
            cfg.access_token.clone(),
        );
        let network = *inputs.network.borrow();
        Task {
            cfg,
            url,
            tls,
            session,
            inputs,
            link: Link::Down { retry_at: Instant::now() },
            failures: 0,
            last_error: None,
            network,
        }
    }

    pub async fn run(mut self) {
        self.start_attempt();
        let mut auth_open = true;
        let mut network_open = true;
        loop {
            let deadline = self.session.next_deadline();
            tokio::select! {
                biased;
                _ = self.inputs.cancel.cancelled() => break,
                c = self.inputs.control.recv() => match c {
                    Some(c) => {
                        let now = Instant::now();
                        self.session.on_control(c, now);
                        while let Ok(c) = self.inputs.control.try_recv() {
                            self.session.on_control(c, now);
                        }
                    }
                    None => break,
                },
                r = self.inputs.auth.changed(), if auth_open => match r {
                    Ok(()) => {
                        let token = self.inputs.auth.borrow_and_update().clone();
                        self.session.set_token(token, Instant::now());
                    }
                    Err(_) => auth_open = false,
                },
                r = self.inputs.network.changed(), if network_open => match r {
                    Ok(()) => {
                        let n = *self.inputs.network.borrow_and_update();
                        self.on_network(n);
                    }
                    Err(_) => network_open = false,
                },
                c = self.inputs.commands.recv() => {
                    if let Some(c) = c {
                        self.session.on_command(c);
                        for _ in 1..COMMAND_BATCH {
                            match self.inputs.commands.try_recv() {
                                Ok(c) => self.session.on_command(c),
                                Err(_) => break,
                            }
                        }
                    }
                }
                ev = next_link_event(&mut self.link) => self.on_link_event(ev),
                _ = sleep_until_opt(deadline) => self.session.on_timer(Instant::now()),
            }
            self.session.after_batch(Instant::now());
            self.flush();
        }
        self.stop().await;
    }

    fn publish(&self, state: ConnectionState) {
        self.inputs.state.send_if_modified(|s| {
            let changed = *s != state;
            *s = state;
            changed
        });
    }

    fn waiting_state(&self, retry_at: Option<Instant>) -> ConnectionState {
        if self.network.online {
            ConnectionState::Connecting { attempt: self.failures.max(1), retry_at, last_error: self.last_error.clone() }
        } else {
            ConnectionState::Offline { retry_at, last_error: self.last_error.clone() }
        }
    }

    fn start_attempt(&mut self) {
        self.publish(self.waiting_state(None));
        let (url, target, timeout) = (self.url.clone(), self.cfg.connect_to, self.cfg.connect_timeout);
        self.link = Link::Opening(Box::pin(connect(url, target, Arc::clone(&self.tls), timeout)));
    }

    fn schedule_retry(&mut self) {
        let wait = if !self.network.online || self.last_error.as_ref().is_some_and(ConnectError::is_auth_refusal) {
            self.cfg.backoff.max
        } else {
            self.cfg.backoff.delay(self.failures)
        };
        let retry_at = Instant::now() + wait;
        tracing::debug!(attempt = self.failures, ?wait, error = ?self.last_error, "realtime: reconnect scheduled");
        self.link = Link::Down { retry_at };
        self.publish(self.waiting_state(Some(retry_at)));
    }

    fn link_lost(&mut self, error: ConnectError) {
        if !matches!(self.link, Link::Up(_)) {
            return;
        }
        tracing::info!(%error, "realtime: connection lost");
        if self.session.connection_was_healthy() {
            self.failures = 0;
        }
        self.session.on_close();
        self.failures = self.failures.saturating_add(1);
        self.last_error = Some(error);
        self.schedule_retry();
    }

    fn on_network(&mut self, n: Network) {
        let back = n.backs != self.network.backs;
        self.network = n;
        match &mut self.link {
            Link::Down { .. } if back => {
                self.failures = 0;
                self.start_attempt();
            }
            Link::Down { .. } => {
                // Lost: slow the pending retry down to the cap.
                self.schedule_retry();
            }
            Link::Opening(_) => self.publish(self.waiting_state(None)),
            Link::Up(conn) => {
                // The OS says something changed: make sure this socket still works. A heartbeat
                // already awaiting its reply serves as the probe; otherwise one goes out now.
                if !self.session.heartbeat_outstanding() {
                    self.session.heartbeat();
                }
                conn.next_heartbeat = conn.next_heartbeat.min(Instant::now() + self.cfg.probe_timeout);
            }
        }
    }

    fn on_link_event(&mut self, ev: LinkEvent) {
        let now = Instant::now();
        match ev {
            LinkEvent::RetryDue => self.start_attempt(),
            LinkEvent::Opened(result) => match *result {
                Ok(ws) => self.on_open(ws, now),
                Err(e) => {
                    tracing::debug!(error = %e, "realtime: connect failed");
                    self.failures = self.failures.saturating_add(1);
                    self.last_error = Some(e);
                    self.schedule_retry();
                }
            },
            LinkEvent::Frame(Some(Ok(m))) => self.on_message(m, now),
            LinkEvent::Frame(Some(Err(e))) => self.link_lost(ConnectError::Network(e.to_string())),
            LinkEvent::Frame(None) => self.link_lost(ConnectError::Closed { code: None, reason: String::new() }),
            LinkEvent::HeartbeatDue => match self.session.heartbeat() {
                Heartbeat::Sent => {
                    if let Link::Up(conn) = &mut self.link {
                        conn.next_heartbeat = now + self.cfg.heartbeat_interval / 2;
                    }
                }
                Heartbeat::TimedOut => self.link_lost(ConnectError::HeartbeatTimeout),
            },
            LinkEvent::WriterEnded => {
                self.link_lost(ConnectError::Network("the socket stopped accepting writes".into()))
            }
        }
    }

    fn on_open(&mut self, ws: Ws, now: Instant) {
        let (sink, stream) = ws.split();
        let (writer, rx) = mpsc::channel(WRITE_QUEUE);
        let writer_task = tokio::spawn(write_loop(sink, rx));
        self.link = Link::Up(Conn {
            stream,
            writer,
            writer_task: Some(writer_task),
            next_heartbeat: now + self.cfg.heartbeat_interval / 2,
        });
        tracing::info!(attempt = self.failures.max(1), "realtime: connected");
        self.publish(ConnectionState::Connected);
        self.session.on_open(now);
    }

    fn on_message(&mut self, m: Message, now: Instant) {
        match m {
            Message::Text(t) => {
                if let Err(e) = self.session.on_text(t.as_str(), now) {
                    tracing::warn!(error = %e, "realtime: dropped a malformed frame");
                }
            }
            Message::Binary(b) => {
                if let Err(e) = self.session.on_binary(&b, now) {
                    tracing::warn!(error = %e, "realtime: dropped a malformed binary frame");
                }
            }
            Message::Close(frame) => {
                let (code, reason) = match frame {
                    Some(f) => (Some(u16::from(f.code)), f.reason.to_string()),
                    None => (None, String::new()),
                };
                self.link_lost(ConnectError::Closed { code, reason });
            }
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
        }
    }

    /// Hands the session's frames to the writer.
    fn flush(&mut self) {
        let frames = self.session.take_output();
        let Link::Up(conn) = &mut self.link else { return };
        for frame in frames {
            match conn.writer.try_send(frame) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => return self.link_lost(ConnectError::WriteStalled),
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    return self.link_lost(ConnectError::Network("the writer stopped".into()))
                }
            }
        }
    }

    /// Closes the socket cleanly and closes every channel.
    async fn stop(mut self) {
        self.publish(ConnectionState::Stopped);
        self.session.shutdown();
        if let Link::Up(mut conn) = std::mem::replace(&mut self.link, Link::Down { retry_at: Instant::now() }) {
            let close = CloseFrame { code: CloseCode::Normal, reason: "client stopped".into() };
            let _ = conn.writer.try_send(Message::Close(Some(close)));
            if let Some(t) = conn.writer_task.take() {
                let _ = tokio::time::timeout(std::time::Duration::from_secs(1), t).await;
            }
        }
        tracing::debug!("realtime: client stopped");
    }
}

/// Opens TCP to `target` (or the URL's host), TLS for `wss://`, then the WebSocket handshake,
/// all within `timeout`.
async fn connect(
    url: String,
    target: Option<std::net::SocketAddr>,
    tls: Arc<tokio_rustls::rustls::ClientConfig>,
    timeout: std::time::Duration,
) -> Result<Ws, ConnectError> {
    let work = async {
        let (host, port, secure) =
            endpoint_parts(&url).ok_or_else(|| ConnectError::Network(format!("no host in {url}")))?;
        let tcp = match target {
            Some(addr) => TcpStream::connect(addr).await,
            None => TcpStream::connect((host.as_str(), port)).await,
        }
        .map_err(|e| ConnectError::Network(e.to_string()))?;
        // Small frames (heartbeats, pushes) must leave at once.
        let _ = tcp.set_nodelay(true);
        let stream = if secure { transport::tls(tcp, &host, tls).await? } else { Transport::Plain(tcp) };
        tokio_tungstenite::client_async_with_config(url.as_str(), stream, None).await.map_err(classify)
    };
    match tokio::time::timeout(timeout, work).await {
        Err(_) => Err(ConnectError::Timeout),
        Ok(Ok((ws, _))) => Ok(ws),
        Ok(Err(e)) => Err(e),
    }
}

/// Host (without IPv6 brackets), port and TLS-ness of a `ws://` / `wss://` URL.
fn endpoint_parts(url: &str) -> Option<(String, u16, bool)> {
    let (rest, secure) = match (url.strip_prefix("ws://"), url.strip_prefix("wss://")) {
        (Some(r), _) => (r, false),
        (_, Some(r)) => (r, true),
        _ => return None,
    };
    let authority = rest.split(['/', '?']).next().filter(|a| !a.is_empty())?;
    let default_port = if secure { 443 } else { 80 };
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => {
            let (host, tail) = v6.split_once(']')?;
            let port = match tail.strip_prefix(':') {
                Some(p) => p.parse().ok()?,
                None if tail.is_empty() => default_port,
                None => return None,
            };
            (host, port)
        }
        None => match authority.rsplit_once(':') {
            Some((host, p)) => (host, p.parse().ok()?),
            None => (authority, default_port),
        },
    };
    Some((host.to_string(), port, secure))
}

fn classify(e: tungstenite::Error) -> ConnectError {
    match e {
        tungstenite::Error::Http(response) => {
            let status = response.status().as_u16();
            let message = response
                .body()
                .as_deref()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(b).ok())
                .and_then(|v| v.get("error").or_else(|| v.get("message")).and_then(|m| m.as_str()).map(str::to_string))
                .unwrap_or_else(|| response.status().canonical_reason().unwrap_or("").to_string());
            ConnectError::Refused { status, message }
        }
        other => ConnectError::Network(other.to_string()),
    }
}

/// The writer task: drains the queue in batches, one flush per batch, until the queue closes,
/// a close frame is sent, or a write fails.
async fn write_loop(mut sink: SplitSink<Ws, Message>, mut rx: mpsc::Receiver<Message>) {
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        let mut fed = 0;
        let mut closing = false;
        while let Some(m) = next.take() {
            closing |= matches!(m, Message::Close(_));
            if let Err(e) = sink.feed(m).await {
                tracing::debug!(error = %e, "realtime: write failed");
                return;
            }
            fed += 1;
            if fed < WRITE_BATCH && !closing {
                next = rx.try_recv().ok();
            }
        }
        if let Err(e) = sink.flush().await {
            tracing::debug!(error = %e, "realtime: flush failed");
            return;
        }
        if closing {
            return;
        }
    }
    let _ = sink.close().await;
}

#[cfg(test)]
mod tests {
    #[test]
    fn endpoint_parts_default_the_port_by_scheme() {
        let p = super::endpoint_parts;
        assert_eq!(p("ws://h/realtime/v1/websocket?x=1"), Some(("h".into(), 80, false)));
        assert_eq!(p("ws://127.0.0.1:5/p"), Some(("127.0.0.1".into(), 5, false)));
        assert_eq!(p("wss://x.supabase.co/realtime/v1/websocket"), Some(("x.supabase.co".into(), 443, true)));
        assert_eq!(p("wss://[::1]:7/p"), Some(("::1".into(), 7, true)));
        assert_eq!(p("ws://[::1]/p"), Some(("::1".into(), 80, false)));
        assert_eq!(p("http://h/p"), None);
        assert_eq!(p("ws://h:notaport/p"), None);
    }
}
