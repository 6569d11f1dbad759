//! The main window (size and position are remembered by `tauri-plugin-window-state`).

use tauri::{AppHandle, Manager};

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
