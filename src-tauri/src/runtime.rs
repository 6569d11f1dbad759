//! The running engine and the backend under it: [`start`] brings up either the **embedded
//! local backend** (`ruwad-server` as a library on `127.0.0.1:<free port>`, its data in
//! `<data>/backend`, demo data seeded once) or nothing (a Supabase project), opens the session
//! store (keychain, else memory), and starts `ruwad_core::Engine` on that backend. No window
//! is needed: the tests call it directly.
//!
//! [`Running`] owns all of it; [`Running::stop`] stops the shell's tasks, the engine (its queue
//! stays on disk) and the embedded backend, in that order.
//!
//! ## Failure modes
//! The embedded backend may not start (its database is from a newer version or unreadable, the
//! disk is full): [`start`] returns `storage` with the reason and the window shows it. A
//! Supabase URL that is not a URL is `config`. An unreachable project is not a start failure:
//! the engine starts offline and retries; sign-in then answers `unavailable`.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use ruwad_core::{Engine, EngineConfig};
use ruwad_server::Server;
use ruwad_supabase::auth::AuthEvent;
use tokio::task::JoinHandle;

use crate::config::{Backend, Dirs};
use crate::error::{AppError, AppResult, ErrorCode};
use crate::keychain::{self, SessionStore};

/// What [`start`] needs.
#[derive(Debug, Clone)]
pub struct StartOptions {
    pub dirs: Dirs,
    pub backend: Backend,
    /// The keychain service (the app identifier of this profile).
    pub keychain_service: String,
    /// False: keep the session in memory only (`RUWAD_KEYCHAIN=off`, tests).
    pub use_keychain: bool,
}

/// Whether the session survives a restart, and why not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remembered {
    pub remembered: bool,
    pub message: Option<String>,
}

/// The engine on its backend, and the tasks the shell runs beside it.
pub struct Running {
    pub engine: Engine,
    pub backend: Backend,
    /// The embedded backend's URL (`None` for a Supabase project).
    pub embedded_url: Option<String>,
    /// The embedded backend's anon key (`None` for a Supabase project): a second window signs
    /// in through it (see `second`).
    pub embedded_anon_key: Option<String>,
    /// A std mutex: only read or replaced, never held across an `.await`.
    remembered: Mutex<Remembered>,
    server: Mutex<Option<Server>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Running {
    pub fn remembered(&self) -> Remembered {
        self.remembered.lock().map(|r| r.clone()).unwrap_or(Remembered { remembered: false, message: None })
    }

    fn forget(&self, message: String) {
        if let Ok(mut r) = self.remembered.lock() {
            *r = Remembered { remembered: false, message: Some(message) };
        }
    }

    /// Adds a task that ends with this engine.
    pub fn own(&self, task: JoinHandle<()>) {
        match self.tasks.lock() {
            Ok(mut tasks) => tasks.push(task),
            Err(_) => task.abort(),
        }
    }

    /// Stops the shell's tasks, the engine, then the embedded backend.
    pub async fn stop(&self) {
        let tasks = self.tasks.lock().map(|mut t| std::mem::take(&mut *t)).unwrap_or_default();
        for t in tasks {
            t.abort();
        }
        self.engine.shutdown().await;
        let server = self.server.lock().ok().and_then(|mut s| s.take());
        if let Some(server) = server {
            server.shutdown().await;
            tracing::info!("embedded backend stopped");
        }
    }
}

/// Starts the backend (when embedded), the session store and the engine. Call inside the Tokio
/// runtime.
pub async fn start(options: StartOptions) -> AppResult<Arc<Running>> {
    crate::config::validate(&options.backend)?;
    let (url, anon_key, server) = match &options.backend {
        Backend::Embedded => {
            let server = start_embedded(&options.dirs).await?;
            (server.url.clone(), server.anon_key.clone(), Some(server))
        }
        Backend::Supabase { url, anon_key } => (url.clone(), anon_key.clone(), None),
    };
    let session = if options.use_keychain {
        let account = format!("session:{}", options.backend.slug());
        keychain::open(&options.keychain_service, &account, keychain::PROBE_TIMEOUT).await
    } else {
        SessionStore::memory(format!("the keychain is turned off ({}=off)", crate::config::ENV_KEYCHAIN))
    };
    let data_dir = options.dirs.cache(&options.backend);
    let config = EngineConfig::new(&url, &anon_key, &data_dir, Arc::clone(&session.store));
    let engine = match Engine::start(config).await {
        Ok(e) => e,
        Err(e) => {
            if let Some(server) = server {
                server.shutdown().await;
            }
            return Err(e.into());
        }
    };
    tracing::info!(backend = %options.backend.slug(), %url, data = %data_dir.display(), remembered = session.remembered, "engine started");
    let running = Arc::new(Running {
        engine,
        backend: options.backend,
        embedded_url: server.as_ref().map(|s| s.url.clone()),
        embedded_anon_key: server.as_ref().map(|s| s.anon_key.clone()),
        remembered: Mutex::new(Remembered { remembered: session.remembered, message: session.message }),
        server: Mutex::new(server),
        tasks: Mutex::new(Vec::new()),
    });
    running.own(tokio::spawn(watch_store(Arc::clone(&running))));
    Ok(running)
}

async fn start_embedded(dirs: &Dirs) -> AppResult<Server> {
    let mut config = ruwad_server::Config::new(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), dirs.embedded_backend());
    config.demo = true;
    match Server::start(config).await {
        Ok(server) => {
            tracing::info!(url = %server.url, data = %dirs.embedded_backend().display(), "embedded backend started");
            Ok(server)
        }
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "the embedded backend did not start");
            Err(AppError::new(ErrorCode::Storage, format!("the local backend did not start: {e:#}")))
        }
    }
}

/// A session store that fails to save makes the session "not remembered" for the UI. The
/// task holds a weak handle so that it never keeps the engine alive.
async fn watch_store(running: Arc<Running>) {
    let mut events = running.engine.auth().events();
    let weak = Arc::downgrade(&running);
    drop(running);
    loop {
        match events.recv().await {
            Ok(AuthEvent::StoreFailed { message }) => match weak.upgrade() {
                Some(r) => r.forget(message),
                None => return,
            },
            Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// The demo accounts of the embedded backend.
pub fn demo_accounts() -> Vec<crate::commands::DemoAccount> {
    ruwad_server::demo::ACCOUNTS
        .iter()
        .map(|(email, name, _)| crate::commands::DemoAccount {
            email: (*email).to_string(),
            password: ruwad_server::demo::DEMO_PASSWORD.to_string(),
            display_name: (*name).to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn options(dir: &std::path::Path, backend: Backend) -> StartOptions {
        StartOptions {
            dirs: Dirs::single(dir),
            backend,
            keychain_service: "app.ruwad.desktop.test".into(),
            use_keychain: false,
        }
    }

    /// Waits (bounded) until `f` holds.
    async fn eventually<F, Fut>(what: &str, mut f: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while !f().await {
            assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_first_start_runs_the_embedded_backend_with_demo_data_and_a_demo_user_signs_in() {
        let dir = tempfile::tempdir().expect("temp dir");
        let running = start(options(dir.path(), Backend::Embedded)).await.expect("start");
        let url = running.embedded_url.clone().expect("embedded");
        assert!(url.starts_with("http://127.0.0.1:"), "loopback only: {url}");
        assert!(dir.path().join("backend").join("keys.json").exists(), "the backend's data is in <data>/backend");
        let r = running.remembered();
        assert!(!r.remembered && r.message.is_some_and(|m| m.contains("RUWAD_KEYCHAIN")), "memory store, said why");

        #[cfg(unix)]
        {
            // A second window: this "app" (a script standing in for the executable) starts in the
            // second profile on this very backend, and stops (SIGTERM) when this one stops.
            let env_file = dir.path().join("second-env");
            let exe = dir.path().join("fake-app.sh");
            std::fs::write(
                &exe,
                format!(
                    "#!/bin/sh\ntrap 'echo stopped >> {f}; exit 0' TERM\nenv | grep ^RUWAD_ > {f}\nwhile :; do sleep 0.05; done\n",
                    f = env_file.display()
                ),
            )
            .expect("write the stand-in");
            std::fs::set_permissions(&exe, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
            let seconds = crate::second::SecondWindows::default();
            seconds.open_with(&exe, dir.path(), &running).expect("second window");
            let second_dir = dir.path().join("profiles").join("second");
            let read = || std::fs::read_to_string(&env_file).unwrap_or_default();
            eventually("the second window's environment", || {
                let env = read();
                async move { env.contains("RUWAD_ANON_KEY=") }
            })
            .await;
            let env = read();
            assert!(env.contains(&format!("RUWAD_BACKEND_URL={url}")), "on this backend: {env}");
            assert!(env.contains(&format!("RUWAD_DATA_DIR={}", second_dir.display())), "own profile: {env}");
            assert!(second_dir.is_dir(), "the profile folder is made");
            let stop = std::time::Instant::now();
            seconds.stop_all();
            assert!(read().contains("stopped"), "asked to quit with SIGTERM, not killed");
            assert!(stop.elapsed() < crate::second::STOP_WAIT, "it quit when asked: {:?}", stop.elapsed());
        }

        let demo = demo_accounts();
        assert_eq!(demo.len(), 3);
        let user = running.engine.sign_in(&demo[0].email, &demo[0].password).await.expect("demo sign-in");
        assert_eq!(running.engine.user_id(), Some(user));
        assert!(
            dir.path().join("cache").join("embedded").join("accounts").join(user.to_string()).join("cache.db").exists(),
            "the engine's cache lives under <data>/cache/embedded"
        );
        let engine = running.engine.clone();
        eventually("the demo rooms to arrive", || {
            let engine = engine.clone();
            async move { engine.rooms().await.map(|r| !r.is_empty()).unwrap_or(false) }
        })
        .await;
        eventually("the demo challenges to arrive", || {
            let engine = engine.clone();
            async move { engine.challenges().await.map(|c| !c.is_empty()).unwrap_or(false) }
        })
        .await;
        let wrong = running.engine.sign_in(&demo[1].email, "not-the-password").await.expect_err("refused");
        assert_eq!(AppError::from(wrong).code, ErrorCode::InvalidCredentials);
        running.stop().await;

        // A restart on the same folder keeps the backend's data and keys (no second seeding).
        let again = start(options(dir.path(), Backend::Embedded)).await.expect("restart");
        assert_eq!(again.engine.user_id(), None, "memory store: the session is not remembered");
        again.engine.sign_in(&demo[0].email, &demo[0].password).await.expect("sign in again");
        let rooms = again.engine.rooms().await.expect("rooms from the cache at once");
        assert!(!rooms.is_empty(), "the cache kept the rooms across the restart");
        again.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_configured_backend_is_used_instead_of_the_embedded_one() {
        let server_dir = tempfile::tempdir().expect("temp dir");
        let mut config = ruwad_server::Config::new(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), server_dir.path());
        config.demo = true;
        let server = Server::start(config).await.expect("external backend");
        let dir = tempfile::tempdir().expect("temp dir");
        let backend = Backend::Supabase { url: server.url.clone(), anon_key: server.anon_key.clone() };
        let running = start(options(dir.path(), backend.clone())).await.expect("start");
        assert_eq!(running.embedded_url, None, "no embedded backend");
        assert!(!dir.path().join("backend").exists(), "nothing embedded was started");
        // No embedded backend to share: a second window is refused, and nothing is created.
        let e = crate::second::SecondWindows::default().open(dir.path(), &running).expect_err("refused");
        assert_eq!(e.code, ErrorCode::Refused, "{e:?}");
        assert!(e.message.contains("RUWAD_DATA_DIR"), "says what to do instead: {}", e.message);
        assert!(!dir.path().join("profiles").exists(), "no second profile made");
        running.engine.sign_in("omar@demo.ruwad.app", ruwad_server::demo::DEMO_PASSWORD).await.expect("sign in");
        assert!(dir.path().join("cache").join(backend.slug()).exists());
        running.stop().await;
        server.shutdown().await;
    }

    #[tokio::test]
    async fn an_unusable_backend_configuration_is_a_config_error() {
        let dir = tempfile::tempdir().expect("temp dir");
        let backend = Backend::Supabase { url: "not a url".into(), anon_key: "k".into() };
        let e = start(options(dir.path(), backend)).await.err().expect("refused");
        assert_eq!(e.code, ErrorCode::Config, "{e:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_embedded_backend_that_cannot_open_its_folder_is_a_storage_error() {
        let dir = tempfile::tempdir().expect("temp dir");
        // A file where the backend's folder should be.
        std::fs::write(dir.path().join("backend"), "not a folder").expect("write");
        let e = start(options(dir.path(), Backend::Embedded)).await.err().expect("refused");
        assert_eq!(e.code, ErrorCode::Storage, "{e:?}");
        assert!(e.message.contains("local backend"), "{}", e.message);
    }
}
