//! The local backend in-process on 127.0.0.1:0 (restartable on the same port and data dir),
//! users and tokens minted with the server's secret, row inserts through its database, and
//! bounded waits on client streams and states.

#![allow(dead_code)]

use std::fmt::Debug;
use std::net::SocketAddr;
use std::time::Duration;

use ruwad_server::jwt::{self, Claims};
use ruwad_server::realtime::Limits;
use ruwad_server::{Config, Server};
use ruwad_supabase::realtime::*;
use serde_json::{json, Map, Value};
use tokio::time::Instant;

/// How long something that should happen may take.
pub const WAIT: Duration = Duration::from_secs(10);
/// How long we listen to show that nothing (more) arrives.
pub const QUIET: Duration = Duration::from_millis(300);

pub struct Backend {
    server: Option<Server>,
    pub dir: tempfile::TempDir,
    pub addr: SocketAddr,
    pub anon_key: String,
    secret: Vec<u8>,
    limits: Limits,
    http: reqwest::Client,
}

pub struct User {
    pub id: String,
    pub email: String,
    pub token: String,
}

impl Backend {
    pub async fn start() -> Backend {
        Backend::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut Limits)) -> Backend {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut limits = Limits::default();
        tweak(&mut limits);
        let server = start_server("127.0.0.1:0".parse().expect("addr"), dir.path(), &limits).await;
        let http = reqwest::Client::builder().timeout(WAIT).build().expect("http client");
        Backend {
            addr: server.addr,
            anon_key: server.anon_key.clone(),
            secret: server.state.keys.secret().to_vec(),
            server: Some(server),
            dir,
            limits,
            http,
        }
    }

    pub fn server(&self) -> &Server {
        self.server.as_ref().expect("the server is running")
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops the server (its sockets get close 1001).
    pub async fn stop(&mut self) {
        if let Some(s) = self.server.take() {
            tokio::time::timeout(WAIT, s.shutdown()).await.expect("the server stops in time");
        }
    }

    /// Starts it again on the same port and data dir.
    pub async fn start_again(&mut self) {
        assert!(self.server.is_none(), "stop first");
        self.server = Some(start_server(self.addr, self.dir.path(), &self.limits).await);
    }

    pub async fn restart(&mut self) {
        self.stop().await;
        self.start_again().await;
    }

    /// A JWT for `sub` signed with the project secret, as GoTrue issues them.
    pub fn token_for(&self, sub: &str, ttl_secs: i64) -> String {
        let now = chrono::Utc::now().timestamp();
        let mut extra = Map::new();
        extra.insert("aud".into(), json!("authenticated"));
        let claims = Claims {
            sub: Some(sub.into()),
            role: "authenticated".into(),
            exp: now + ttl_secs,
            iat: Some(now),
            session_id: Some(uuid::Uuid::new_v4().to_string()),
            extra,
        };
        jwt::sign(&claims, &self.secret)
    }

    async fn exec(&self, sql: &'static str, params: Vec<rusqlite::types::Value>) {
        self.server()
            .state
            .db
            .write(move |tx| -> Result<(), ruwad_server::db::DbError> {
                tx.execute(sql, rusqlite::params_from_iter(params))?;
                Ok(())
            })
            .await
            .expect("write");
    }

    /// An auth user with a profile, made directly in the database, and a 1-hour token.
    pub async fn user(&self, name: &str) -> User {
        let id = uuid::Uuid::new_v4().to_string();
        let email = format!("{name}-{}@test.ruwad.app", &id[..8]);
        let now = ruwad_server::schema::now_text();
        let t = |s: &str| rusqlite::types::Value::Text(s.to_string());
        self.exec(
            "INSERT INTO auth_users (id, email, encrypted_password, created_at, updated_at) VALUES (?1, ?2, 'x', ?3, ?3)",
            vec![t(&id), t(&email), t(&now)],
        )
        .await;
        self.exec(
            "INSERT INTO profiles (id, display_name, locale, created_at) VALUES (?1, ?2, 'en', ?3)",
            vec![t(&id), t(name), t(&now)],
        )
        .await;
        let token = self.token_for(&id, 3600);
        User { id, email, token }
    }

    /// Inserts an open challenge by `user` (any signed-in user may read it); returns its id.
    pub async fn insert_challenge(&self, user: &User, title: &str) -> String {
        let id = uuid::Uuid::new_v4().to_string();
        let now = ruwad_server::schema::now_text();
        let t = |s: &str| rusqlite::types::Value::Text(s.to_string());
        self.exec(
            "INSERT INTO challenges (id, title, description, status, created_by, created_at, updated_at) VALUES (?1, ?2, '', 'open', ?3, ?4, ?4)",
            vec![t(&id), t(title), t(&user.id), t(&now)],
        )
        .await;
        id
    }

    /// A broadcast from outside (the REST batch endpoint): arrives as a JSON text broadcast.
    pub async fn rest_broadcast(&self, topic: &str, event: &str, payload: Value) {
        let r = self
            .http
            .post(format!("{}/realtime/v1/api/broadcast", self.url()))
            .header("apikey", &self.anon_key)
            .json(&json!({"messages": [{"topic": topic, "event": event, "payload": payload}]}))
            .send()
            .await
            .expect("REST broadcast");
        assert_eq!(r.status().as_u16(), 202, "REST broadcast accepted");
    }

    /// A broadcast through the per-event endpoint: arrives as a binary kind-4 frame on 2.0.0.
    pub async fn rest_event_broadcast(&self, topic: &str, event: &str, payload: Value) {
        let r = self
            .http
            .post(format!("{}/realtime/v1/api/broadcast/{topic}/events/{event}", self.url()))
            .header("apikey", &self.anon_key)
            .json(&payload)
            .send()
            .await
            .expect("REST event broadcast");
        assert_eq!(r.status().as_u16(), 202, "REST event broadcast accepted");
    }

    /// A client of this backend (directly or through `via`), with test timings.
    pub fn client(&self, via: Option<SocketAddr>, token: Option<&str>) -> RealtimeClient {
        RealtimeClient::connect(self.config(via, token)).expect("client starts")
    }

    /// The server's URL; with `via`, TCP goes to that address (the proxy) instead.
    pub fn config(&self, via: Option<SocketAddr>, token: Option<&str>) -> RealtimeConfig {
        let mut c = RealtimeConfig::new(self.url(), self.anon_key.clone());
        c.connect_to = via;
        c.access_token = token.map(str::to_string);
        fast(c)
    }
}

/// The tests' heartbeat interval: a dead link is noticed within it.
pub const HEARTBEAT: Duration = Duration::from_millis(600);

/// Timings for tests: dead links noticed within 600 ms, retries from 100 ms up to 1 s, 2 s
/// timeouts.
pub fn fast(mut c: RealtimeConfig) -> RealtimeConfig {
    c.heartbeat_interval = HEARTBEAT;
    c.probe_timeout = Duration::from_millis(400);
    c.connect_timeout = Duration::from_secs(2);
    c.push_timeout = Duration::from_secs(3);
    c.join_timeout = Duration::from_secs(5);
    c.backoff = Backoff { initial: Duration::from_millis(100), max: Duration::from_secs(1), ..Backoff::default() };
    c.rejoin_backoff =
        Backoff { initial: Duration::from_millis(200), max: Duration::from_secs(2), ..Backoff::default() };
    c
}

async fn start_server(addr: SocketAddr, dir: &std::path::Path, limits: &Limits) -> Server {
    let deadline = Instant::now() + WAIT;
    loop {
        let mut config = Config::new(addr, dir);
        config.realtime_limits = limits.clone();
        match Server::start(config).await {
            Ok(s) => return s,
            Err(e) if Instant::now() < deadline => {
                // The port may still be held for a moment after a shutdown.
                eprintln!("server start on {addr} failed, retrying: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("server does not start on {addr}: {e}"),
        }
    }
}

/// The next item of a subscription, within [`WAIT`].
pub async fn next<T>(s: &mut Subscription<T>, what: &str) -> T {
    match tokio::time::timeout(WAIT, s.recv()).await {
        Ok(Some(item)) => item,
        Ok(None) => panic!("{what}: the stream ended"),
        Err(_) => panic!("{what}: nothing within {WAIT:?}"),
    }
}

/// Nothing arrives on `s` for [`QUIET`].
pub async fn quiet<T: Debug>(s: &mut Subscription<T>, what: &str) {
    if let Ok(Some(item)) = tokio::time::timeout(QUIET, s.recv()).await {
        panic!("{what}: unexpected {item:?}");
    }
}

/// Skips events until one matches; returns it.
pub async fn event_matching<T: Debug>(s: &mut Subscription<T>, what: &str, pred: impl Fn(&T) -> bool) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, s.recv()).await {
            Ok(Some(item)) if pred(&item) => return item,
            Ok(Some(_)) => continue,
            Ok(None) => panic!("{what}: the stream ended"),
            Err(_) => panic!("{what}: not within {WAIT:?}"),
        }
    }
}

/// Waits until the channel is joined with everything registered so far.
pub async fn ready(ch: &Channel) {
    tokio::time::timeout(WAIT, ch.ready()).await.expect("channel ready in time").expect("channel joins");
}

/// Waits for a connection state matching `pred`; returns it.
pub async fn state_matching(client: &RealtimeClient, pred: impl Fn(&ConnectionState) -> bool) -> ConnectionState {
    let mut rx = client.state();
    let r = tokio::time::timeout(WAIT, async { rx.wait_for(|s| pred(s)).await.map(|s| s.clone()) }).await;
    match r {
        Ok(Ok(s)) => s,
        Ok(Err(_)) => panic!("the client stopped"),
        Err(_) => panic!("state not reached within {WAIT:?}; last {:?}", *client.state().borrow()),
    }
}

/// An INSERT subscription on challenges created by `user`.
pub fn challenges_by(user: &User) -> PostgresChangesFilter {
    PostgresChangesFilter::table(ChangeEvent::Insert, "challenges").filter(format!("created_by=eq.{}", user.id))
}

/// The inserted challenge's title.
pub fn title(c: &PostgresChange) -> String {
    c.record.as_ref().and_then(|r| r.get("title")).and_then(Value::as_str).unwrap_or("").to_string()
}

/// Inserts a challenge and checks every given subscription gets it exactly once.
pub async fn change_arrives_once(
    be: &Backend,
    user: &User,
    subs: &mut [&mut Subscription<PostgresChange>],
    name: &str,
) {
    be.insert_challenge(user, name).await;
    for s in subs.iter_mut() {
        let c = next(s, &format!("change {name}")).await;
        assert_eq!(title(&c), name, "the change of this insert");
    }
    for s in subs.iter_mut() {
        quiet(s, &format!("no duplicate of {name}")).await;
    }
}

/// Sends a REST broadcast and checks `sub` gets it exactly once.
pub async fn broadcast_arrives_once(be: &Backend, topic: &str, sub: &mut Subscription<Broadcast>, n: i64) {
    be.rest_broadcast(topic, "ping", json!({ "n": n })).await;
    let b = next(sub, &format!("broadcast {n}")).await;
    assert_eq!(b.payload, BroadcastPayload::Json(json!({ "n": n })));
    quiet(sub, &format!("no duplicate of broadcast {n}")).await;
}
