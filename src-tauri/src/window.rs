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

/// Set by the user to keep WebKitGTK's accelerated compositing (`on`); see [`tune_webkit`].
pub const ENV_COMPOSITING: &str = "RUWAD_WEBKIT_COMPOSITING";

/// Linux: turns off WebKitGTK's accelerated compositing mode (`WEBKIT_DISABLE_COMPOSITING_MODE=1`)
/// unless the user set that variable or `RUWAD_WEBKIT_COMPOSITING=on`. The web process then
/// keeps no compositing layers: `scripts/bench-desktop` measured its PSS at 113 MB instead of
/// 191 MB, idle on the chat screen. A chat and documents UI has no use for GPU layers, and it
/// also avoids the blank window some GPU drivers give WebKitGTK. Call it first thing in `main`,
/// before any thread starts (it sets an environment variable).
pub fn tune_webkit() {
    if cfg!(target_os = "linux") && compositing_off(|k| std::env::var_os(k)) {
        std::env::set_var("WEBKIT_DISABLE_COMPOSITING_MODE", "1");
    }
}

/// Whether [`tune_webkit`] turns compositing off, given the environment `var`.
pub fn compositing_off(var: impl Fn(&str) -> Option<std::ffi::OsString>) -> bool {
    var("WEBKIT_DISABLE_COMPOSITING_MODE").is_none() && var(ENV_COMPOSITING).is_none_or(|v| v != "on")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    #[test]
    fn compositing_is_off_unless_the_user_chose() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| OsString::from(v))
        };
        assert!(compositing_off(env(&[])));
        assert!(!compositing_off(env(&[("WEBKIT_DISABLE_COMPOSITING_MODE", "0")])), "the user's own setting stands");
        assert!(!compositing_off(env(&[(ENV_COMPOSITING, "on")])));
        assert!(compositing_off(env(&[(ENV_COMPOSITING, "off")])));
    }
}
