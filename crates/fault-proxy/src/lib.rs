//! A fault-injecting TCP proxy for reliability tests.
//!
//! [`Proxy::start`] listens on `127.0.0.1:0` and forwards every accepted connection to
//! `upstream`, byte for byte, until a test tells it to misbehave. The controls act at once on
//! every live connection and, where it makes sense, on the connections accepted later:
//!
//! | control | live connections | new connections |
//! |---|---|---|
//! | [`Proxy::drop_all`] | both sides closed (FIN) now | unaffected |
//! | [`Proxy::set_delay`] | every chunk is held `d` after it was read (a delay line: latency grows by `d`, order and throughput are kept) | same |
//! | [`Proxy::cut_mid_frame`] | the next chunk in either direction is forwarded only in part (its first half), then both sides are closed | unaffected |
//! | [`Proxy::black_hole`] | while on, bytes read in either direction are discarded; nothing is closed (a half-open link) | accepted and connected upstream, then black-holed too |
//! | [`Proxy::refuse`] | unaffected | while on, accepted and reset at once (RST), before any upstream connection |
//!
//! Design: one accept task, owned by the [`Proxy`] (aborted when it drops); it owns a `JoinSet`
//! of connection tasks, so dropping the proxy ends every connection it carries. Each connection
//! runs two pumps (client → upstream, upstream → client); a pump is a reader that stamps each
//! chunk with its arrival time and a writer that releases it `delay` later. Controls are shared
//! atomics and a per-connection cancellation token; no lock is held across an `.await`.
//!
//! Failure modes: if the upstream refuses, the accepted client connection is closed at once
//! (the client sees an EOF, as if the server went away mid-handshake). Any I/O error on either
//! side closes both sides of that connection.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Chunks in flight per direction (the delay line's length).
const LINE: usize = 1024;
const CHUNK: usize = 16 * 1024;

/// A running proxy. Dropping it stops accepting and closes every connection.
pub struct Proxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    accept: tokio::task::JoinHandle<()>,
}

struct Shared {
    upstream: Mutex<SocketAddr>,
    delay_micros: AtomicU64,
    black_hole: AtomicBool,
    refuse: AtomicBool,
    /// Generation of `cut_mid_frame` requests; each connection cuts once per new generation.
    cut: AtomicU64,
    accepted: AtomicUsize,
    active: AtomicUsize,
    /// Kill switches of the live connections (the `Mutex` is std: held for a push or a drain,
    /// never across an `.await`).
    live: Mutex<Vec<CancellationToken>>,
}

impl Shared {
    fn delay(&self) -> Duration {
        Duration::from_micros(self.delay_micros.load(Ordering::Relaxed))
    }

    fn live(&self) -> std::sync::MutexGuard<'_, Vec<CancellationToken>> {
        // A panic while holding this lock cannot leave the list inconsistent (push / retain).
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Proxy {
    /// Listens on `127.0.0.1:0` and forwards to `upstream`.
    pub async fn start(upstream: SocketAddr) -> std::io::Result<Proxy> {
        Proxy::start_on("127.0.0.1:0".parse().expect("a literal socket address"), upstream).await
    }

    /// Listens on `listen` (e.g. to keep a port across proxy restarts) and forwards to `upstream`.
    pub async fn start_on(listen: SocketAddr, upstream: SocketAddr) -> std::io::Result<Proxy> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            upstream: Mutex::new(upstream),
            delay_micros: AtomicU64::new(0),
            black_hole: AtomicBool::new(false),
            refuse: AtomicBool::new(false),
            cut: AtomicU64::new(0),
            accepted: AtomicUsize::new(0),
            active: AtomicUsize::new(0),
            live: Mutex::new(Vec::new()),
        });
        let accept = tokio::spawn(accept_loop(listener, Arc::clone(&shared)));
        Ok(Proxy { addr, shared, accept })
    }

    /// Closes every live connection (both sides, with FIN). New connections are unaffected.
    pub fn drop_all(&self) {
        for token in self.shared.live().drain(..) {
            token.cancel();
        }
    }

    /// Holds every chunk `d` before forwarding it (both directions, live and new connections).
    /// `Duration::ZERO` turns the delay off.
    pub fn set_delay(&self, d: Duration) {
        self.shared.delay_micros.store(u64::try_from(d.as_micros()).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// On every live connection, the next chunk to be forwarded (either direction) is cut: its
    /// first half is written, then both sides are closed — a frame torn in the middle.
    pub fn cut_mid_frame(&self) {
        self.shared.cut.fetch_add(1, Ordering::SeqCst);
    }

    /// While on, every byte read from either side is discarded and nothing is closed.
    pub fn black_hole(&self, on: bool) {
        self.shared.black_hole.store(on, Ordering::SeqCst);
    }

    /// While on, new connections are reset as soon as they are accepted.
    pub fn refuse(&self, on: bool) {
        self.shared.refuse.store(on, Ordering::SeqCst);
    }

    /// Points new connections at another upstream.
    pub fn set_upstream(&self, upstream: SocketAddr) {
        *self.shared.upstream.lock().unwrap_or_else(|p| p.into_inner()) = upstream;
    }

    /// Connections accepted so far (refused ones included).
    pub fn accepted(&self) -> usize {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// Connections being forwarded now.
    pub fn active(&self) -> usize {
        self.shared.active.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.drop_all();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (client, _) = match accepted {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(error = %e, "fault-proxy: accept failed");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                shared.accepted.fetch_add(1, Ordering::SeqCst);
                if shared.refuse.load(Ordering::SeqCst) {
                    // Linger 0: closing sends RST, as a refusing peer would.
                    let _ = client.set_zero_linger();
                    drop(client);
                    continue;
                }
                connections.spawn(connection(client, Arc::clone(&shared)));
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// Counts a connection as active while it lives.
struct Active(Arc<Shared>);

impl Drop for Active {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn connection(client: TcpStream, shared: Arc<Shared>) {
    let upstream_addr = *shared.upstream.lock().unwrap_or_else(|p| p.into_inner());
    let upstream = match TcpStream::connect(upstream_addr).await {
        Ok(u) => u,
        Err(e) => {
            tracing::debug!(error = %e, "fault-proxy: upstream refused; closing the client");
            return;
        }
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    shared.active.fetch_add(1, Ordering::SeqCst);
    let _active = Active(Arc::clone(&shared));
    let kill = CancellationToken::new();
    shared.live().push(kill.clone());
    let cut_seen = shared.cut.load(Ordering::SeqCst);
    let (cr, cw) = client.into_split();
    let (ur, uw) = upstream.into_split();
    let up = pump(cr, uw, Arc::clone(&shared), kill.clone(), cut_seen);
    let down = pump(ur, cw, Arc::clone(&shared), kill.clone(), cut_seen);
    tokio::join!(up, down);
    kill.cancel();
    shared.live().retain(|t| !t.is_cancelled());
}

/// One direction: a reader stamping chunks and a writer releasing them after the delay. A
/// clean EOF is passed on as a half-close once the delay line has drained; an error, a cut or
/// the kill switch ends both directions.
async fn pump(
    from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    shared: Arc<Shared>,
    kill: CancellationToken,
    cut_seen: u64,
) {
    let (tx, mut rx) = mpsc::channel::<(Instant, Vec<u8>)>(LINE);
    let reader = {
        let (shared, kill) = (Arc::clone(&shared), kill.clone());
        let mut from = from;
        async move {
            let mut buf = vec![0u8; CHUNK];
            loop {
                let n = tokio::select! {
                    _ = kill.cancelled() => return,
                    r = from.read(&mut buf) => match r {
                        Ok(0) => return,
                        Err(_) => {
                            kill.cancel();
                            return;
                        }
                        Ok(n) => n,
                    },
                };
                if shared.black_hole.load(Ordering::SeqCst) {
                    continue;
                }
                if tx.send((Instant::now(), buf[..n].to_vec())).await.is_err() {
                    return;
                }
            }
            // `tx` drops here, which tells the writer the stream ended.
        }
    };
    let writer = async {
        loop {
            let (at, chunk) = tokio::select! {
                _ = kill.cancelled() => return,
                c = rx.recv() => match c {
                    Some(c) => c,
                    None => {
                        let _ = to.shutdown().await;
                        return;
                    }
                },
            };
            tokio::select! {
                _ = kill.cancelled() => return,
                _ = tokio::time::sleep_until(at + shared.delay()) => {}
            }
            if shared.black_hole.load(Ordering::SeqCst) {
                continue;
            }
            if shared.cut.load(Ordering::SeqCst) != cut_seen {
                let half = (chunk.len() / 2).max(1);
                let _ = to.write_all(&chunk[..half]).await;
                let _ = to.flush().await;
                kill.cancel();
                return;
            }
            if to.write_all(&chunk).await.is_err() {
                kill.cancel();
                return;
            }
        }
    };
    tokio::join!(reader, writer);
}

#[cfg(test)]
mod tests {
    use super::*;

    const WAIT: Duration = Duration::from_secs(5);

    /// An upstream that echoes every byte back.
    async fn echo_server() -> (SocketAddr, tokio::task::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = listener.accept().await else { return };
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    loop {
                        match s.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => {
                                if s.write_all(&buf[..n]).await.is_err() {
                                    return;
                                }
                            }
                        }
                    }
                });
            }
        });
        (addr, task)
    }

    async fn roundtrip(s: &mut TcpStream, msg: &[u8]) -> Vec<u8> {
        s.write_all(msg).await.expect("write");
        let mut got = vec![0u8; msg.len()];
        tokio::time::timeout(WAIT, s.read_exact(&mut got)).await.expect("echo in time").expect("read");
        got
    }

    /// Reads until EOF or error; the bytes read before it.
    async fn read_to_close(s: &mut TcpStream) -> Vec<u8> {
        let mut all = Vec::new();
        let mut buf = [0u8; 1024];
        loop {
            match tokio::time::timeout(WAIT, s.read(&mut buf)).await.expect("closed in time") {
                Ok(0) | Err(_) => return all,
                Ok(n) => all.extend_from_slice(&buf[..n]),
            }
        }
    }

    #[tokio::test]
    async fn forwards_bytes_both_ways() {
        let (up, _e) = echo_server().await;
        let proxy = Proxy::start(up).await.expect("proxy");
        let mut s = TcpStream::connect(proxy.addr).await.expect("connect");
        assert_eq!(roundtrip(&mut s, b"hello").await, b"hello");
        assert_eq!(proxy.accepted(), 1);
    }

    #[tokio::test]
    async fn drop_all_closes_live_connections_and_new_ones_still_work() {
        let (up, _e) = echo_server().await;
        let proxy = Proxy::start(up).await.expect("proxy");
        let mut s = TcpStream::connect(proxy.addr).await.expect("connect");
        roundtrip(&mut s, b"x").await;
        proxy.drop_all();
        assert!(read_to_close(&mut s).await.is_empty(), "the client sees the connection end");
        let mut s2 = TcpStream::connect(proxy.addr).await.expect("connect again");
        assert_eq!(roundtrip(&mut s2, b"again").await, b"again");
    }

    #[tokio::test]
    async fn delay_holds_each_chunk_without_reordering() {
        let (up, _e) = echo_server().await;
        let proxy = Proxy::start(up).await.expect("proxy");
        proxy.set_delay(Duration::from_millis(150));
        let mut s = TcpStream::connect(proxy.addr).await.expect("connect");
        let t = std::time::Instant::now();
        s.write_all(b"ab").await.expect("write");
        s.write_all(b"cd").await.expect("write");
        let mut got = [0u8; 4];
        tokio::time::timeout(WAIT, s.read_exact(&mut got)).await.expect("in time").expect("read");
        let took = t.elapsed();
        assert_eq!(&got, b"abcd");
        assert!(took >= Duration::from_millis(300), "held both ways: {took:?}");
        assert!(took < Duration::from_millis(1500), "a delay line, not a cumulative stall: {took:?}");
        proxy.set_delay(Duration::ZERO);
        let t = std::time::Instant::now();
        roundtrip(&mut s, b"fast").await;
        assert!(t.elapsed() < Duration::from_millis(250), "delay off");
    }

    #[tokio::test]
    async fn cut_mid_frame_forwards_half_a_chunk_then_closes() {
        let (up, _e) = echo_server().await;
        let proxy = Proxy::start(up).await.expect("proxy");
        let mut s = TcpStream::connect(proxy.addr).await.expect("connect");
        roundtrip(&mut s, b"ok").await;
        proxy.cut_mid_frame();
        s.write_all(b"0123456789").await.expect("write");
        let got = read_to_close(&mut s).await;
        assert!(got.len() < 10, "a partial frame at most: {got:?}");
        let mut s2 = TcpStream::connect(proxy.addr).await.expect("new connections are not cut");
        assert_eq!(roundtrip(&mut s2, b"whole").await, b"whole");
    }

    #[tokio::test]
    async fn black_hole_swallows_bytes_without_closing_and_recovers() {
        let (up, _e) = echo_server().await;
        let proxy = Proxy::start(up).await.expect("proxy");
        let mut s = TcpStream::connect(proxy.addr).await.expect("connect");
        roundtrip(&mut s, b"ok").await;
        proxy.black_hole(true);
        s.write_all(b"lost").await.expect("writes still succeed");
        let mut buf = [0u8; 8];
        let r = tokio::time::timeout(Duration::from_millis(300), s.read(&mut buf)).await;
        assert!(r.is_err(), "nothing comes back and the connection is not closed: {r:?}");
        assert_eq!(proxy.active(), 1);
        proxy.black_hole(false);
        assert_eq!(roundtrip(&mut s, b"back").await, b"back", "forwarding resumes; swallowed bytes stay lost");
    }

    #[tokio::test]
    async fn refuse_resets_new_connections_until_turned_off() {
        let (up, _e) = echo_server().await;
        let proxy = Proxy::start(up).await.expect("proxy");
        proxy.refuse(true);
        let mut s = TcpStream::connect(proxy.addr).await.expect("TCP accept happens");
        let _ = s.write_all(b"x").await;
        assert!(read_to_close(&mut s).await.is_empty(), "reset without data");
        proxy.refuse(false);
        let mut s = TcpStream::connect(proxy.addr).await.expect("connect");
        assert_eq!(roundtrip(&mut s, b"y").await, b"y");
    }

    #[tokio::test]
    async fn an_unreachable_upstream_closes_the_client() {
        let dead = {
            let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            l.local_addr().expect("addr")
        };
        let proxy = Proxy::start(dead).await.expect("proxy");
        let mut s = TcpStream::connect(proxy.addr).await.expect("connect");
        assert!(read_to_close(&mut s).await.is_empty());
    }

    #[tokio::test]
    async fn dropping_the_proxy_closes_its_connections() {
        let (up, _e) = echo_server().await;
        let proxy = Proxy::start(up).await.expect("proxy");
        let mut s = TcpStream::connect(proxy.addr).await.expect("connect");
        roundtrip(&mut s, b"x").await;
        drop(proxy);
        assert!(read_to_close(&mut s).await.is_empty());
    }
}
