//! Ruwād local backend: a Rust server that behaves like a Supabase project for the subset the
//! platform uses — GoTrue auth (`/auth/v1`), PostgREST (`/rest/v1`) and Realtime
//! (`/realtime/v1`) — on SQLite. It is the desktop app's embedded default and the ground the
//! tests stand on; the official `@supabase/supabase-js` and Python `realtime` clients run
//! against it unchanged (see `tests/conformance/`).
//!
//! Embed it with [`Server::start`] (bind `127.0.0.1:0` in tests), or run the `ruwad-server`
//! binary. Module map:
//! - [`keys`], [`jwt`]: the project's secret and API keys; HS256 tokens.
//! - [`db`]: SQLite (WAL), migrations, the committed-change feed.
//! - [`schema`], [`policy`]: the data model and its row-level rules, shared by REST and Realtime.
//! - [`auth`], [`rest`], [`realtime`]: the three services, thin routes over the above.
//! - [`gateway`]: the API-key check every HTTP service applies first.
//! - [`demo`]: demo accounts and data for `--demo`.

pub mod auth;
pub mod db;
pub mod demo;
pub mod gateway;
pub mod jwt;
pub mod keys;
pub mod policy;
pub mod realtime;
pub mod rest;
pub mod schema;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use tokio_util::sync::CancellationToken;

use crate::db::Db;
use crate::jwt::{Claims, JwtError};
use crate::keys::Keys;

/// How to run the server.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen; loopback by default. Port 0 picks a free port.
    pub addr: SocketAddr,
    /// Where the database and keys live; created if missing.
    pub data_dir: PathBuf,
    /// Seed demo accounts and data (once per data dir).
    pub demo: bool,
    /// Extra `Host` names accepted besides loopback ones (for a non-loopback `addr`).
    pub allowed_hosts: Vec<String>,
    /// GoTrue settings: token lifetimes, refresh-token reuse interval, password rules.
    pub auth: auth::AuthConfig,
    /// Realtime's limits (channels per socket, event rates, payload size, …).
    pub realtime_limits: realtime::Limits,
}

impl Config {
    pub fn new(addr: SocketAddr, data_dir: impl Into<PathBuf>) -> Config {
        Config {
            addr,
            data_dir: data_dir.into(),
            demo: false,
            allowed_hosts: Vec::new(),
            auth: auth::AuthConfig::default(),
            realtime_limits: realtime::Limits::default(),
        }
    }
}

/// Shared by every route and every realtime connection.
pub struct AppState {
    pub db: Arc<Db>,
    pub keys: Keys,
    pub realtime: realtime::Hub,
    /// GoTrue's settings and its password-hashing limiter.
    pub auth: auth::Auth,
    /// Cancelled when the server shuts down; long-lived tasks (sockets) watch it.
    pub shutdown: CancellationToken,
}

impl AppState {
    /// Verifies a JWT signed with the project secret.
    pub fn verify(&self, token: &str) -> Result<Claims, JwtError> {
        jwt::verify(token, self.keys.secret(), chrono::Utc::now().timestamp())
    }
}

/// A running server. Dropping it does not stop it; call [`Server::shutdown`].
pub struct Server {
    pub url: String,
    pub addr: SocketAddr,
    pub anon_key: String,
    pub service_role_key: String,
    pub state: Arc<AppState>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Opens the data dir, seeds demo data if asked, binds and starts serving.
    pub async fn start(config: Config) -> anyhow::Result<Server> {
        std::fs::create_dir_all(&config.data_dir)?;
        let keys = Keys::load_or_create(&config.data_dir)?;
        let db = Db::open(&config.data_dir)?;
        if config.demo {
            let db2 = Arc::clone(&db);
            tokio::task::spawn_blocking(move || demo::seed(&db2)).await??;
        }
        let shutdown = CancellationToken::new();
        let state = Arc::new(AppState {
            realtime: realtime::Hub::with_limits(Arc::clone(&db), shutdown.clone(), config.realtime_limits.clone()),
            db,
            keys,
            auth: auth::Auth::new(config.auth.clone()),
            shutdown: shutdown.clone(),
        });
        realtime::Hub::start(&state);
        let listener = tokio::net::TcpListener::bind(config.addr).await?;
        let addr = listener.local_addr()?;
        // Small frames (Realtime pushes, short replies) must leave at once: with Nagle's
        // algorithm on, a frame written while the previous one is unacknowledged waits for the
        // peer's delayed ACK (up to ~40 ms).
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::warn!(error = %e, "cannot set TCP_NODELAY on a connection");
            }
        });
        let guard = HostGuard::new(addr, &config.allowed_hosts);
        let app = router(Arc::clone(&state)).layer(axum::middleware::from_fn(move |req, next| {
            let guard = guard.clone();
            async move { guard.check(req, next).await }
        }));
        let stop = shutdown.clone();
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
                .with_graceful_shutdown(async move { stop.cancelled().await });
            if let Err(e) = serve.await {
                tracing::error!(error = %e, "server stopped with an error");
            }
        });
        let host = if addr.ip().is_unspecified() { "127.0.0.1".to_string() } else { addr.ip().to_string() };
        let url = if addr.is_ipv6() {
            format!("http://[{host}]:{}", addr.port())
        } else {
            format!("http://{host}:{}", addr.port())
        };
        Ok(Server {
            url,
            addr,
            anon_key: state.keys.anon_key.clone(),
            service_role_key: state.keys.service_role_key.clone(),
            state,
            task,
        })
    }

    /// Stops accepting, closes realtime sockets, waits for in-flight requests to finish.
    pub async fn shutdown(self) {
        self.state.shutdown.cancel();
        let _ = self.task.await;
    }
}

fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .nest("/auth/v1", auth::router())
        .nest("/rest/v1", rest::router())
        .nest("/realtime/v1", realtime::router())
        .with_state(state)
}

/// Refuses requests whose `Host` is not this server's loopback name (DNS rebinding) or whose
/// `Origin` is a foreign web page.
#[derive(Clone)]
struct HostGuard {
    port: u16,
    extra: Arc<Vec<String>>,
}

impl HostGuard {
    fn new(addr: SocketAddr, extra: &[String]) -> HostGuard {
        HostGuard { port: addr.port(), extra: Arc::new(extra.iter().map(|h| h.to_ascii_lowercase()).collect()) }
    }

    fn host_ok(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        // Split `name[:port]`, where name may be a bracketed IPv6 literal.
        let (name, port) = match host.strip_prefix('[') {
            Some(rest) => match rest.split_once(']') {
                Some((ip, tail)) => (format!("[{ip}]"), tail.strip_prefix(':')),
                None => return false,
            },
            None => match host.split_once(':') {
                Some((n, p)) => (n.to_string(), Some(p)),
                None => (host.clone(), None),
            },
        };
        if port.is_some_and(|p| p.parse::<u16>().ok() != Some(self.port)) {
            return false;
        }
        is_loopback_name(&name) || self.extra.iter().any(|h| *h == name || *h == host)
    }

    fn origin_ok(&self, origin: &str) -> bool {
        let o = origin.to_ascii_lowercase();
        if matches!(o.as_str(), "null" | "tauri://localhost" | "http://tauri.localhost" | "https://tauri.localhost") {
            return true;
        }
        let Some(rest) = o.strip_prefix("http://").or_else(|| o.strip_prefix("https://")) else { return false };
        let name = if rest.starts_with('[') {
            rest.split_inclusive(']').next().unwrap_or(rest)
        } else {
            rest.split(':').next().unwrap_or(rest)
        };
        is_loopback_name(name) || self.extra.iter().any(|h| h == name)
    }

    fn refusal(&self, headers: &axum::http::HeaderMap) -> Option<&'static str> {
        let get = |name| headers.get(name).and_then(|v: &axum::http::HeaderValue| v.to_str().ok());
        if get(header::HOST).is_some_and(|h| !self.host_ok(h)) {
            return Some("Host not allowed");
        }
        if get(header::ORIGIN).is_some_and(|o| !self.origin_ok(o)) {
            return Some("Origin not allowed");
        }
        None
    }

    async fn check(&self, req: Request, next: Next) -> Response {
        if let Some(reason) = self.refusal(req.headers()) {
            return forbidden(reason);
        }
        next.run(req).await
    }
}

/// `localhost`, `[::1]` or an IPv4 loopback address (a real address, not a name that merely
/// starts with `127.`).
fn is_loopback_name(name: &str) -> bool {
    name == "localhost" || name == "[::1]" || name.parse::<std::net::Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
}

fn forbidden(message: &str) -> Response {
    (StatusCode::FORBIDDEN, axum::Json(serde_json::json!({ "message": message }))).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_hosts_and_origins_pass() {
        let g = HostGuard::new("127.0.0.1:5000".parse().expect("addr"), &[]);
        for ok in ["127.0.0.1:5000", "localhost:5000", "localhost", "[::1]:5000", "[::1]", "127.0.0.2:5000"] {
            assert!(g.host_ok(ok), "{ok} should pass");
        }
        for bad in [
            "evil.example:5000",
            "127.0.0.1:5001",
            "evil.example",
            "127.attacker.example",
            "127.0.0.1.evil.example:5000",
            "[::1",
        ] {
            assert!(!g.host_ok(bad), "{bad} should be refused");
        }
        assert!(g.origin_ok("http://localhost:1420"));
        assert!(g.origin_ok("tauri://localhost"));
        assert!(!g.origin_ok("https://evil.example"));
        assert!(!g.origin_ok("http://localhost.evil.example"));
        assert!(!g.origin_ok("http://127.attacker.example"));
        assert!(g.origin_ok("http://[::1]:3000"));
    }
}
