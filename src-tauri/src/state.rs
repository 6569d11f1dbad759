//! The app's state, managed by Tauri: folders, settings, the running engine (or why it is
//! not running), the desktop capabilities and the tray.
//!
//! The engine starts in the background while the window opens ([`AppState::activate`]);
//! commands wait for it ([`AppState::running`]) up to [`START_WAIT`]. Switching backends
//! ([`AppState::switch`]) is serialised: sign out, stop, save, start.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use specta::Type;
use tauri::AppHandle;
use tokio::sync::watch;

use crate::config::{self, Backend, Dirs, Settings, SettingsFile};
use crate::error::{AppError, AppResult};
use crate::runtime::{self, Running, StartOptions};
use crate::tray::Tray;

/// How long a command waits for the engine to start.
pub const START_WAIT: Duration = Duration::from_secs(60);

/// Whether a desktop feature works here, and if not, why (shown in the UI).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Type)]
pub struct Capability {
    pub available: bool,
    pub message: Option<String>,
}

impl Capability {
    pub fn yes() -> Capability {
        Capability { available: true, message: None }
    }

    pub fn no(message: impl Into<String>) -> Capability {
        Capability { available: false, message: Some(message.into()) }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Type)]
pub struct Capabilities {
    pub keychain: Capability,
    pub notifications: Capability,
    pub tray: Capability,
}

/// Where the engine stands.
#[derive(Clone)]
pub enum Phase {
    Starting,
    Ready(Arc<Running>),
    Failed(AppError),
}

pub struct AppState {
    pub dirs: Dirs,
    /// The app identifier of this profile (keychain service).
    pub identifier: String,
    pub use_keychain: bool,
    /// The backend is fixed by `RUWAD_BACKEND_URL` (the app cannot change it).
    env_backend: Option<Backend>,
    /// Std mutexes below: held only to copy or replace a value, never across an `.await`.
    settings: Mutex<SettingsFile>,
    notifications: Mutex<Capability>,
    tray: Mutex<(Option<Tray>, Capability)>,
    phase: watch::Sender<Phase>,
    /// Serialises backend switches (held across their awaits, hence Tokio's).
    switching: tokio::sync::Mutex<()>,
}

impl AppState {
    pub fn new(
        dirs: Dirs,
        identifier: String,
        use_keychain: bool,
        env_backend: Option<Backend>,
        settings: SettingsFile,
    ) -> AppState {
        AppState {
            dirs,
            identifier,
            use_keychain,
            env_backend,
            settings: Mutex::new(settings),
            notifications: Mutex::new(Capability::yes()),
            tray: Mutex::new((None, Capability::no("the tray is not built yet"))),
            phase: watch::channel(Phase::Starting).0,
            switching: tokio::sync::Mutex::new(()),
        }
    }

    // ---- settings ------------------------------------------------------------------------

    pub fn settings(&self) -> Settings {
        self.settings.lock().map(|s| s.settings.clone()).unwrap_or_default()
    }

    /// `settings.json`'s update endpoint template, if it has one.
    pub fn update_url(&self) -> Option<String> {
        self.settings.lock().ok().and_then(|f| f.update_url.clone())
    }

    /// Saves the settings (the file keeps the backend choice).
    pub fn set_settings(&self, settings: Settings) -> AppResult<()> {
        self.update_file(|f| f.settings = settings)
    }

    fn update_file(&self, change: impl FnOnce(&mut SettingsFile)) -> AppResult<()> {
        let mut file = self.settings.lock().map_err(|_| AppError::internal("settings lock poisoned"))?;
        let mut next = file.clone();
        change(&mut next);
        config::save_settings(&self.dirs.settings_file(), &next)
            .map_err(|e| AppError::config(format!("cannot save {}: {e}", self.dirs.settings_file().display())))?;
        *file = next;
        Ok(())
    }

    /// The backend to run on: the environment's, else the settings', else embedded.
    pub fn configured_backend(&self) -> Backend {
        if let Some(b) = &self.env_backend {
            return b.clone();
        }
        self.settings.lock().ok().and_then(|f| f.backend.clone()).unwrap_or(Backend::Embedded)
    }

    // ---- capabilities and tray -----------------------------------------------------------

    pub fn set_notifications(&self, available: bool, message: Option<String>) {
        if let Ok(mut c) = self.notifications.lock() {
            *c = Capability { available, message };
        }
    }

    pub fn set_tray(&self, tray: Result<Tray, String>) {
        if let Ok(mut t) = self.tray.lock() {
            *t = match tray {
                Ok(tray) => (Some(tray), Capability::yes()),
                Err(message) => (None, Capability::no(message)),
            };
        }
    }

    /// What the tray-host probe found (`tray::host`): without a host the icon is built but
    /// nobody shows it, so the capability says so and closing the window quits.
    pub fn set_tray_host(&self, host: Result<(), String>) {
        if let (Ok(mut t), Err(why)) = (self.tray.lock(), host) {
            if t.0.is_some() {
                t.1 = Capability::no(format!("{why}: closing the window quits the app"));
            }
        }
    }

    /// Whether a tray icon is shown (so a hidden window can be brought back from it).
    pub fn tray_shown(&self) -> bool {
        self.tray.lock().map(|t| t.0.is_some() && t.1.available).unwrap_or(false)
    }

    pub fn tray(&self) -> Option<Tray> {
        self.tray.lock().ok().and_then(|t| t.0.clone())
    }

    pub fn capabilities(&self) -> Capabilities {
        let keychain = match &*self.phase.borrow() {
            Phase::Ready(r) => {
                let r = r.remembered();
                Capability { available: r.remembered, message: r.message }
            }
            Phase::Starting => Capability::no("starting"),
            Phase::Failed(e) => Capability::no(e.message.clone()),
        };
        Capabilities {
            keychain,
            notifications: self.notifications.lock().map(|c| c.clone()).unwrap_or_else(|_| Capability::no("unknown")),
            tray: self.tray.lock().map(|t| t.1.clone()).unwrap_or_else(|_| Capability::no("unknown")),
        }
    }

    // ---- the engine ----------------------------------------------------------------------

    /// The running engine, once started (waits up to [`START_WAIT`]).
    pub async fn running(&self) -> AppResult<Arc<Running>> {
        let mut phase = self.phase.subscribe();
        let settled = tokio::time::timeout(START_WAIT, phase.wait_for(|p| !matches!(p, Phase::Starting))).await;
        match settled {
            Err(_) => Err(AppError::new(crate::error::ErrorCode::Unavailable, "the engine is still starting")),
            Ok(Err(_)) => Err(AppError::internal("the app is shutting down")),
            Ok(Ok(p)) => match &*p {
                Phase::Ready(r) => Ok(Arc::clone(r)),
                Phase::Failed(e) => Err(e.clone()),
                Phase::Starting => Err(AppError::internal("the engine is still starting")),
            },
        }
    }

    /// The running engine, if it has started (no waiting).
    pub fn running_now(&self) -> Option<Arc<Running>> {
        match &*self.phase.borrow() {
            Phase::Ready(r) => Some(Arc::clone(r)),
            _ => None,
        }
    }

    fn start_options(&self, backend: Backend) -> StartOptions {
        StartOptions {
            dirs: self.dirs.clone(),
            backend,
            keychain_service: self.identifier.clone(),
            use_keychain: self.use_keychain,
        }
    }

    /// Starts the engine on the configured backend and its event forwarder.
    pub async fn activate(&self, app: &AppHandle) {
        let _turn = self.switching.lock().await;
        self.start_on(app, self.configured_backend()).await;
    }

    async fn start_on(&self, app: &AppHandle, backend: Backend) {
        self.phase.send_replace(Phase::Starting);
        let phase = match runtime::start(self.start_options(backend)).await {
            Ok(running) => {
                running.own(tokio::spawn(crate::events::forward(app.clone(), Arc::clone(&running))));
                Phase::Ready(running)
            }
            Err(e) => {
                tracing::error!(code = ?e.code, message = %e.message, "the engine did not start");
                Phase::Failed(e)
            }
        };
        self.phase.send_replace(phase);
    }

    /// Never starts the engine: the configuration is unusable (`RUWAD_BACKEND_URL` without
    /// `RUWAD_ANON_KEY`, …). Commands answer with `e`.
    pub fn block(&self, e: AppError) {
        tracing::error!(message = %e.message, "the engine will not start");
        self.phase.send_replace(Phase::Failed(e));
    }

    /// Signs out, stops the engine, saves `backend` as the choice and starts on it.
    pub async fn switch(&self, app: &AppHandle, backend: Backend) -> AppResult<()> {
        if self.env_backend.is_some() {
            return Err(config::ConfigError::FixedByEnvironment.into());
        }
        config::validate(&backend)?;
        let _turn = self.switching.lock().await;
        if let Some(running) = self.running_now() {
            if let Err(e) = running.engine.sign_out().await {
                tracing::info!(error = %e, "sign-out before switching backends failed");
            }
            running.stop().await;
        }
        let saved = backend.clone();
        self.update_file(|f| f.backend = (saved != Backend::Embedded).then_some(saved))?;
        self.start_on(app, backend).await;
        self.running().await.map(|_| ())
    }

    /// Stops the engine and the embedded backend (at exit).
    pub async fn shutdown(&self) {
        let _turn = self.switching.lock().await;
        if let Some(running) = self.running_now() {
            running.stop().await;
        }
        self.phase.send_replace(Phase::Failed(AppError::internal("the app is shutting down")));
    }
}
