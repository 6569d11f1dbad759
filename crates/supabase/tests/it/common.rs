//! The local backend in-process on 127.0.0.1:0 for REST and auth tests: start, stop and
//! start again on the same port and data dir; signed-in clients; bounded waits.

#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ruwad_server::jwt::{self, Claims};
use ruwad_server::{Config, Server};
use ruwad_supabase::auth::{Auth, AuthEvent, AuthOptions, MemoryStore, SecretStore, Session, SignUp};
use ruwad_supabase::Project;
use serde_json::{json, Map};
use tokio::sync::broadcast;

pub const PASSWORD: &str = "correct-horse-battery";

/// Fails the test with `what` if `fut` does not finish within `secs` seconds.
pub async fn within<T>(secs: u64, what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), fut)
        .await
        .unwrap_or_else(|_| panic!("timed out after {secs} s: {what}"))
}

pub struct TestServer {
    server: Option<Server>,
    config: Config,
    pub dir: tempfile::TempDir,
    pub url: String,
    pub anon_key: String,
    pub addr: SocketAddr,
    secret: Vec<u8>,
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    /// Starts a server with `tweak` applied to its config (token lifetimes, reuse interval).
    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config::new("127.0.0.1:0".parse().expect("addr"), dir.path());
        tweak(&mut config);
        let server = within(20, "server start", Server::start(config.clone())).await.expect("server starts");
        config.addr = server.addr;
        TestServer {
            url: server.url.clone(),
            anon_key: server.anon_key.clone(),
            addr: server.addr,
            secret: server.state.keys.secret().to_vec(),
            server: Some(server),
            config,
            dir,
        }
    }

    pub fn project(&self) -> Project {
        Project::new(&self.url, &self.anon_key).expect("valid project URL")
    }

    /// Stops the server (graceful shutdown); the data dir stays.
    pub async fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            within(20, "server shutdown", server.shutdown()).await;
        }
    }

    /// Starts the server again on the same address and data dir.
    pub async fn resume(&mut self) {
        assert!(self.server.is_none(), "the server is running");
        let server = within(20, "server restart", Server::start(self.config.clone())).await.expect("server restarts");
        assert_eq!(server.addr, self.addr, "the restarted server listens where the client points");
        self.server = Some(server);
    }

    /// A JWT for `sub` signed with the project's secret, valid for `ttl_secs` (negative:
    /// already expired).
    pub fn token_for(&self, sub: &str, ttl_secs: i64) -> String {
        let now = chrono::Utc::now().timestamp();
        let mut extra = Map::new();
        extra.insert("aud".into(), json!("authenticated"));
        let claims = Claims {
            sub: Some(sub.into()),
            role: "authenticated".into(),
            exp: now + ttl_secs,
            iat: Some(now - 60),
            session_id: None,
            extra,
        };
        jwt::sign(&claims, &self.secret)
    }

    /// An auth client with its own memory store and default options.
    pub async fn auth(&self) -> (Auth, Arc<MemoryStore>) {
        self.auth_with(AuthOptions::default()).await
    }

    pub async fn auth_with(&self, options: AuthOptions) -> (Auth, Arc<MemoryStore>) {
        let store = Arc::new(MemoryStore::new());
        let auth = self.auth_on(Arc::clone(&store) as Arc<dyn SecretStore>, options).await;
        (auth, store)
    }

    pub async fn auth_on(&self, store: Arc<dyn SecretStore>, options: AuthOptions) -> Auth {
        within(20, "auth start", Auth::start(self.project(), store, options)).await.expect("auth starts")
    }

    /// A new account `<name>@test.ruwad.app`, signed in on a fresh auth client.
    pub async fn signed_up(&self, name: &str) -> (Auth, Session) {
        let (auth, _store) = self.auth().await;
        let session = sign_up(&auth, name).await;
        (auth, session)
    }

    /// A raw HTTP client for out-of-band GoTrue calls (another device using a token).
    pub async fn raw_refresh(&self, refresh_token: &str) -> (u16, serde_json::Value) {
        let resp = reqwest::Client::new()
            .post(format!("{}/auth/v1/token?grant_type=refresh_token", self.url))
            .header("apikey", &self.anon_key)
            .header("X-Supabase-Api-Version", "2024-01-01")
            .json(&json!({ "refresh_token": refresh_token }))
            .send()
            .await
            .expect("raw refresh request");
        let status = resp.status().as_u16();
        (status, resp.json().await.expect("JSON body"))
    }
}

pub fn email(name: &str) -> String {
    format!("{name}@test.ruwad.app")
}

/// Signs `name` up on `auth` and returns the session (the local backend confirms at once).
pub async fn sign_up(auth: &Auth, name: &str) -> Session {
    match within(20, "sign-up", auth.sign_up(&email(name), PASSWORD)).await.expect("sign-up succeeds") {
        SignUp::SignedIn(s) => s,
        other => panic!("the local backend confirms at once, got {other:?}"),
    }
}

/// The next auth event, failing the test after `secs` seconds.
pub async fn next_event(events: &mut broadcast::Receiver<AuthEvent>, secs: u64, what: &str) -> AuthEvent {
    within(secs, what, events.recv()).await.expect("event channel open")
}
