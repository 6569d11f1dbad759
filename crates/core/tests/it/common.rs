//! A real local backend in-process (stoppable and restartable on the same port and data dir,
//! which is how these tests cut the network), engines with fast retry settings, and bounded
//! waits.

#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ruwad_core::queue::sender::SenderOptions;
use ruwad_core::queue::ClaimLimits;
use ruwad_core::{Engine, EngineConfig};
use ruwad_server::{Config, Server};
use ruwad_supabase::auth::FileStore;
use ruwad_supabase::rest::{Order, Rest};
use ruwad_supabase::Project;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

pub const PASSWORD: &str = "correct horse battery";

/// The backend, with its data dir and port kept across stop / start.
pub struct Backend {
    pub dir: tempfile::TempDir,
    pub addr: SocketAddr,
    pub url: String,
    pub anon_key: String,
    pub service_key: String,
    server: Option<Server>,
}

impl Backend {
    pub async fn start() -> Backend {
        let dir = tempfile::tempdir().expect("temp dir");
        let server = start_server("127.0.0.1:0".parse().expect("addr"), dir.path()).await;
        Backend {
            addr: server.addr,
            url: server.url.clone(),
            anon_key: server.anon_key.clone(),
            service_key: server.service_role_key.clone(),
            server: Some(server),
            dir,
        }
    }

    /// Stops the server: connections are refused until [`Backend::resume`].
    pub async fn stop(&mut self) {
        if let Some(s) = self.server.take() {
            tokio::time::timeout(Duration::from_secs(20), s.shutdown()).await.expect("server stops within 20 s");
        }
    }

    /// Starts the server again on the same port and data.
    pub async fn resume(&mut self) {
        assert!(self.server.is_none(), "already running");
        let server = start_server(self.addr, self.dir.path()).await;
        self.server = Some(server);
    }

    pub fn is_running(&self) -> bool {
        self.server.is_some()
    }

    /// REST as `service_role` (bypasses row rules): to inspect and arrange server state.
    pub fn admin(&self) -> Rest {
        let project = Project::new(&self.url, &self.anon_key).expect("project");
        Rest::with_bearer(project, self.service_key.clone())
    }

    /// The messages of `room` on the server, in the server's order.
    pub async fn messages(&self, room: Uuid) -> Vec<ServerMessage> {
        let mut out = Vec::new();
        loop {
            let page: Vec<ServerMessage> = self
                .admin()
                .from("chat_messages")
                .select("*")
                .eq("room_id", room)
                .order("created_at", Order::Asc)
                .order("id", Order::Asc)
                .range(out.len() as u64, out.len() as u64 + 999)
                .execute()
                .await
                .expect("read messages as service_role");
            let n = page.len();
            out.extend(page);
            if n < 1000 {
                return out;
            }
        }
    }

    pub async fn message_count(&self, room: Uuid) -> Option<u64> {
        let reply = self
            .admin()
            .from("chat_messages")
            .select("id")
            .eq("room_id", room)
            .count_exact()
            .head()
            .execute_full::<()>()
            .await
            .ok()?;
        reply.count
    }

    /// Removes `user` from `room` behind the engine's back.
    pub async fn remove_member(&self, room: Uuid, user: Uuid) {
        self.admin()
            .from("room_members")
            .delete()
            .eq("room_id", room)
            .eq("user_id", user)
            .execute::<()>()
            .await
            .expect("remove member");
    }

    pub async fn add_member(&self, room: Uuid, user: Uuid) {
        self.admin()
            .from("room_members")
            .insert(json!({"room_id": room, "user_id": user, "role": "member"}))
            .execute::<()>()
            .await
            .expect("add member");
    }
}

async fn start_server(addr: SocketAddr, dir: &Path) -> Server {
    let config = Config::new(addr, dir);
    tokio::time::timeout(Duration::from_secs(20), Server::start(config))
        .await
        .expect("server starts within 20 s")
        .expect("server starts")
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct ServerMessage {
    pub id: Uuid,
    pub room_id: Uuid,
    pub user_id: Uuid,
    pub content: String,
    pub edited_at: Option<String>,
    pub deleted_at: Option<String>,
    pub created_at: String,
}

/// Settings that retry fast, so outages in tests are short.
pub fn fast_sender() -> SenderOptions {
    SenderOptions {
        backoff_min: Duration::from_millis(50),
        backoff_max: Duration::from_millis(400),
        limits: ClaimLimits { streams: 8, rows: 500, bytes: 1024 * 1024 },
    }
}

/// An engine whose session is kept in a file in `data_dir`, so a new engine on the same dir
/// is the same signed-in app after a restart.
pub async fn engine_at(backend_url: &str, anon_key: &str, data_dir: &Path, sender: SenderOptions) -> Engine {
    engine_with(backend_url, anon_key, data_dir, |c| c.sender = sender).await
}

/// [`engine_at`] with any setting changed by `tweak`.
pub async fn engine_with(
    backend_url: &str,
    anon_key: &str,
    data_dir: &Path,
    tweak: impl FnOnce(&mut EngineConfig),
) -> Engine {
    let mut config =
        EngineConfig::new(backend_url, anon_key, data_dir, Arc::new(FileStore::new(data_dir.join("session.json"))));
    config.sender = fast_sender();
    tweak(&mut config);
    tokio::time::timeout(Duration::from_secs(20), Engine::start(config))
        .await
        .expect("engine starts within 20 s")
        .expect("engine starts")
}

/// A signed-up user with an engine.
pub struct User {
    pub engine: Engine,
    pub id: Uuid,
    pub email: String,
    pub dir: PathBuf,
    _dir: Option<tempfile::TempDir>,
}

impl User {
    pub async fn sign_up(backend: &Backend, name: &str) -> User {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().to_path_buf();
        let mut u = User::sign_up_at(backend, name, &path).await;
        u._dir = Some(dir);
        u
    }

    /// Signs up with realtime off: an engine that learns of remote changes only through REST
    /// catch-up (for tests that arrange what the socket would have missed).
    pub async fn sign_up_rest_only(backend: &Backend, name: &str) -> User {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().to_path_buf();
        let mut u = User::sign_up_with(backend, name, &path, |c| c.live.enabled = false).await;
        u._dir = Some(dir);
        u
    }

    /// Signs up with its data in `dir` (kept by the caller).
    pub async fn sign_up_at(backend: &Backend, name: &str, dir: &Path) -> User {
        User::sign_up_with(backend, name, dir, |_| {}).await
    }

    /// Signs up with its data in `dir` and engine settings changed by `tweak`.
    pub async fn sign_up_with(
        backend: &Backend,
        name: &str,
        dir: &Path,
        tweak: impl FnOnce(&mut EngineConfig),
    ) -> User {
        let engine = engine_with(&backend.url, &backend.anon_key, dir, tweak).await;
        let email = format!("{name}-{}@test.ruwad.app", &Uuid::new_v4().to_string()[..8]);
        let id = engine.sign_up(&email, PASSWORD, name).await.expect("sign up");
        User { engine, id, email, dir: dir.to_path_buf(), _dir: None }
    }

    /// REST as this user (a separate session).
    pub async fn rest(&self, backend: &Backend) -> Rest {
        let token = self.engine.auth().access_token().await.expect("signed in");
        Rest::with_bearer(Project::new(&backend.url, &backend.anon_key).expect("project"), token)
    }

    /// Creates a room (this user is its admin) and adds `others`; returns its id.
    pub async fn create_room(&self, backend: &Backend, name: &str, others: &[Uuid]) -> Uuid {
        let rest = self.rest(backend).await;
        let id = Uuid::now_v7();
        rest.from("chat_rooms")
            .insert(json!({"id": id, "name": name, "kind": "channel", "created_by": self.id}))
            .execute::<()>()
            .await
            .expect("create room");
        rest.from("room_members")
            .insert(json!({"room_id": id, "user_id": self.id, "role": "admin"}))
            .execute::<()>()
            .await
            .expect("join as admin");
        for o in others {
            rest.from("room_members")
                .insert(json!({"room_id": id, "user_id": o, "role": "member"}))
                .execute::<()>()
                .await
                .expect("add member");
        }
        id
    }
}

/// Polls `check` every 20 ms until it returns `Some`, for at most `limit`.
pub async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(start.elapsed() < limit, "timed out after {limit:?} waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
