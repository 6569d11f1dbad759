//! Ruwād Desktop's Tauri shell: a thin adapter over `ruwad_core::Engine`. Commands translate
//! their arguments and call the engine; one task forwards every engine event to the webview as
//! `ruwad://event`. Everything else here is desktop integration, each part failing soft (a log
//! line and a capability flag in `app_info`, never a panic).
//!
//! Map (one file per concept):
//! - [`config`]: folders (`RUWAD_DATA_DIR` profiles), backend choice (`RUWAD_BACKEND_URL` /
//!   `RUWAD_ANON_KEY`, `settings.json`), the user's settings;
//! - [`runtime`]: the embedded local backend + session store + engine, started and stopped
//!   together (no window needed: the tests use it);
//! - [`state`]: what Tauri manages — the running engine or why it is not, capabilities, tray;
//! - [`commands`]: the IPC commands; [`bindings`]: their generated TypeScript;
//! - [`events`]: `ruwad://event` and the forwarder task;
//! - [`error`]: `AppError { code, message }`;
//! - [`keychain`]: the session in the OS keychain, memory when there is none;
//! - [`tray`], [`toast`], [`window`]: tray icon and menu, native notifications, the window;
//! - [`logging`]: stderr + daily log files; [`startup`]: the `ui ready` startup time.
//!
//! The configuration is the top-level `tauri.conf.json` (see `build.rs`).

pub mod bindings;
pub mod command_names;
pub mod commands;
pub mod config;
pub mod error;
pub mod events;
pub mod keychain;
pub mod logging;
pub mod runtime;
pub mod startup;
pub mod state;
pub mod toast;
pub mod tray;
pub mod window;

use std::path::PathBuf;
use std::time::Duration;

use tauri::image::Image;
use tauri::{AppHandle, Manager, RunEvent};

use crate::config::{BackendSource, Dirs};
use crate::state::AppState;

/// How long the exit waits for the engine and the embedded backend to stop.
const EXIT_WAIT: Duration = Duration::from_secs(5);

/// Runs the app with `context` (`tauri::generate_context!`, made in `main.rs`) and `tray_icon`.
pub fn run(mut context: tauri::Context, tray_icon: Option<Image<'static>>) {
    let logging = logging::init();
    let data_dir = std::env::var_os(config::ENV_DATA_DIR).filter(|d| !d.is_empty()).map(PathBuf::from);
    if let Some(dir) = &data_dir {
        // A separate profile: its own single-instance lock, window state, webview storage and
        // keychain entry (see `config`).
        let identifier = config::profile_identifier(&context.config().identifier, dir);
        context.config_mut().identifier = identifier;
    }
    let identifier = context.config().identifier.clone();
    tracing::info!(version = %context.package_info().version, %identifier, "Ruwād starting");

    let specta = commands::specta_builder();
    let app = tauri::Builder::default()
        // First, so that a second launch of the same profile goes no further.
        .plugin(tauri_plugin_single_instance::init(|app, _argv, _cwd| {
            tracing::info!("a second launch: focusing this window");
            window::focus(app);
        }))
        .plugin(tauri_plugin_window_state::Builder::default().build())
        .invoke_handler(specta.invoke_handler())
        .setup(move |app| {
            specta.mount_events(app);
            let dirs = match data_dir {
                Some(dir) => Dirs::single(dir),
                None => {
                    let path = app.path();
                    Dirs { data: path.app_data_dir()?, config: path.app_config_dir()?, logs: path.app_log_dir()? }
                }
            };
            logging.to_files(&dirs.logs);
            app.manage(logging);
            tracing::info!(data = %dirs.data.display(), config = %dirs.config.display(), "folders");

            let (file, _problem) = config::load_settings(&dirs.settings_file());
            let (env_backend, blocked) = match config::choose_backend(|k| std::env::var(k).ok(), &file) {
                Ok((backend, BackendSource::Environment)) => (Some(backend), None),
                Ok(_) => (None, None),
                Err(e) => (None, Some(error::AppError::from(e))),
            };
            let use_keychain = std::env::var(config::ENV_KEYCHAIN).map(|v| v != "off").unwrap_or(true);
            app.manage(AppState::new(dirs, identifier, use_keychain, env_backend, file));
            let state = app.state::<AppState>();

            let tray = tray::build(app.handle(), tray_icon).map_err(|e| {
                tracing::warn!(error = %e, "no tray icon");
                format!("no tray icon: {e}")
            });
            state.set_tray(tray);
            probe_notifications(app.handle());

            let handle = app.handle().clone();
            tauri::async_runtime::spawn(async move {
                let state = handle.state::<AppState>();
                match blocked {
                    Some(e) => state.block(e),
                    None => state.activate(&handle).await,
                }
            });
            Ok(())
        })
        .build(context);
    let app = match app {
        Ok(app) => app,
        Err(e) => {
            tracing::error!(error = %e, "the app could not start");
            eprintln!("ruwad-desktop: {e}");
            std::process::exit(1);
        }
    };
    app.run(|app, event| {
        if let RunEvent::Exit = event {
            let state = app.state::<AppState>();
            let stopped = tauri::async_runtime::block_on(tokio::time::timeout(EXIT_WAIT, state.shutdown()));
            if stopped.is_err() {
                tracing::warn!("the engine did not stop within {} s; exiting anyway", EXIT_WAIT.as_secs());
            }
            tracing::info!("Ruwād stopped");
        }
    });
}

/// Quits the app (the engine and the embedded backend stop on the way out).
pub fn quit(app: &AppHandle) {
    app.exit(0);
}

/// Whether toasts can be shown here (on a blocking thread; the answer lands in the state).
fn probe_notifications(app: &AppHandle) {
    let app = app.clone();
    let spawned = std::thread::Builder::new().name("toast-probe".into()).spawn(move || {
        let state = app.state::<AppState>();
        match toast::probe() {
            Ok(()) => state.set_notifications(true, None),
            Err(e) => {
                tracing::warn!(error = %e, "no notification server: toasts are off");
                state.set_notifications(false, Some(format!("no notification server: {e}")));
            }
        }
    });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot probe notifications");
    }
}
