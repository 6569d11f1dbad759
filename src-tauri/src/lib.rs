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
//! - [`update`]: self-update from the user's channel, signature verified, installed on consent;
//! - [`logging`]: stderr + daily log files; [`startup`]: the `ui ready` startup time;
//! - [`second`]: a second window as another user, on this process's embedded backend.
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
pub mod second;
pub mod startup;
pub mod state;
pub mod toast;
pub mod tray;
pub mod update;
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
        .plugin(update::plugin())
        .manage(update::Updates::default())
        .invoke_handler(specta.invoke_handler())
        .on_window_event(|window, event| {
            if let tauri::WindowEvent::CloseRequested { api, .. } = event {
                let shown = window.app_handle().state::<AppState>().tray_shown();
                if tray::on_close(shown) == tray::OnClose::Hide {
                    api.prevent_close();
                    tracing::info!("window closed: still running in the tray");
                    if let Err(e) = window.hide() {
                        tracing::warn!(error = %e, "cannot hide the window");
                    }
                }
            }
        })
        .on_page_load(window::log_page_load)
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
            app.manage(second::SecondWindows::default());
            let state = app.state::<AppState>();

            let tray = tray::build(app.handle(), tray_icon).map_err(|e| {
                tracing::warn!(error = %e, "no tray icon");
                format!("no tray icon: {e}")
            });
            state.set_tray(tray);
            probe_notifications(app.handle());
            probe_tray_host(app.handle());
            update::spawn_checks(app.handle());
            quit_on_termination(app.handle());

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
            app.state::<second::SecondWindows>().stop_all();
            let state = app.state::<AppState>();
            // The timer is made inside the runtime: `tokio::time::timeout` called on this (the
            // event loop's) thread panics with "no reactor running".
            let stopped =
                tauri::async_runtime::block_on(async { tokio::time::timeout(EXIT_WAIT, state.shutdown()).await });
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

/// Whether a tray host shows the icon (on a blocking thread; the answer lands in the state).
fn probe_tray_host(app: &AppHandle) {
    let app = app.clone();
    let spawned = std::thread::Builder::new().name("tray-probe".into()).spawn(move || {
        let host = tray::host();
        if let Err(why) = &host {
            tracing::info!(%why, "no tray host: closing the window quits");
        }
        app.state::<AppState>().set_tray_host(host);
    });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot probe the tray host");
    }
}

/// Quits cleanly on SIGTERM or SIGINT (a session logout, `kill`, Ctrl-C in a terminal), as the
/// tray's "Quit" does: without this the process would die with the outbound queue's sender and
/// the embedded backend mid-write. A second signal while stopping is not waited for.
#[cfg(unix)]
fn quit_on_termination(app: &AppHandle) {
    use tokio::signal::unix::{signal, SignalKind};
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        let (mut term, mut int) = match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
            (Ok(term), Ok(int)) => (term, int),
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM/SIGINT: they will kill the app uncleanly");
                return;
            }
        };
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        tracing::info!(signal = name, "quitting on a signal");
        quit(&app);
    });
}

#[cfg(not(unix))]
fn quit_on_termination(_app: &AppHandle) {}

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
