//! The main window (size and position are remembered by `tauri-plugin-window-state`).

use tauri::webview::{PageLoadEvent, PageLoadPayload};
use tauri::{AppHandle, Manager, Runtime, Webview};

/// The label of the one window, as in `tauri.conf.json`.
pub const MAIN: &str = "main";

/// Shows, restores and focuses the main window (tray "Open", a clicked toast, a second launch).
pub fn focus(app: &AppHandle) {
    let Some(window) = app.get_webview_window(MAIN) else {
        tracing::warn!("no main window to focus");
        return;
    };
    let shown = window.show().and_then(|()| window.unminimize()).and_then(|()| window.set_focus());
    if let Err(e) = shown {
        tracing::warn!(error = %e, "cannot focus the main window");
    }
}

/// Logs each finished page load with its URL: the packaged app serves the embedded UI from
/// `tauri://localhost`, and `scripts/package` checks for this line in the installed app's log.
pub fn log_page_load<R: Runtime>(webview: &Webview<R>, payload: &PageLoadPayload<'_>) {
    if payload.event() == PageLoadEvent::Finished {
        tracing::info!(window = webview.label(), url = %payload.url(), "page loaded");
    }
}
