//! The one Tauri event the webview listens to, `ruwad://event`: every engine [`Event`]
//! unchanged, plus the few the shell makes itself ([`ShellEvent`]). All are objects tagged by
//! `type`, so the UI switches on one field.
//!
//! [`forward`] is the single task that moves engine events to the webview (and feeds the tray's
//! unread count and the toasts on the way). It belongs to the running engine
//! ([`crate::runtime::Running`]) and ends with it.

use std::sync::Arc;

use ruwad_core::Event;
use serde::Serialize;
use specta::Type;
use tauri::AppHandle;
use tauri_specta::Event as _;
use tokio::sync::broadcast::error::RecvError;
use uuid::Uuid;

use crate::runtime::Running;

/// The payload of `ruwad://event`.
#[derive(Debug, Clone, Serialize, Type, tauri_specta::Event)]
#[serde(untagged)]
#[tauri_specta(event_name = "ruwad://event")]
pub enum AppEvent {
    Engine(Event),
    Shell(ShellEvent),
}

/// Events the shell makes (not from the engine).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Type)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ShellEvent {
    /// Show this screen (a toast was clicked).
    Navigate { screen: Screen, id: Uuid },
    /// Events were missed (the webview fell behind): re-read every view.
    Reload,
    /// The background check found a newer version: ask the user (`install_update` installs it).
    UpdateAvailable { update: crate::update::UpdateInfo },
    /// `install_update` is downloading (at most a few a second).
    UpdateProgress { downloaded: u64, total: Option<u64> },
    /// The update is installed; the app restarts now.
    UpdateInstalled { version: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Type)]
#[serde(rename_all = "snake_case")]
pub enum Screen {
    Challenge,
}

/// Sends `event` to the webview; a failure is logged (the webview may be gone).
pub fn emit(app: &AppHandle, event: AppEvent) {
    if let Err(e) = event.emit(app) {
        tracing::warn!(error = %e, "cannot send an event to the webview");
    }
}

/// Forwards the running engine's events until it stops.
pub async fn forward(app: AppHandle, running: Arc<Running>) {
    let mut events = running.engine.events();
    crate::tray::refresh_unread(&app, &running.engine).await;
    loop {
        match events.recv().await {
            Ok(event) => {
                match &event {
                    Event::Rooms { .. } | Event::Session { .. } => {
                        crate::tray::refresh_unread(&app, &running.engine).await;
                    }
                    Event::Notify { notices } => crate::toast::show(&app, notices),
                    _ => {}
                }
                emit(&app, AppEvent::Engine(event));
            }
            Err(RecvError::Lagged(missed)) => {
                tracing::warn!(missed, "the event forwarder fell behind; asking the webview to reload");
                crate::tray::refresh_unread(&app, &running.engine).await;
                emit(&app, AppEvent::Shell(ShellEvent::Reload));
            }
            Err(RecvError::Closed) => {
                tracing::info!("the engine's event stream ended");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ruwad_core::ConnectionState;

    #[test]
    fn engine_and_shell_events_share_one_tagged_shape() {
        let e = AppEvent::Engine(Event::Connection { state: ConnectionState::Online });
        assert_eq!(
            serde_json::to_value(&e).expect("json"),
            serde_json::json!({ "type": "connection", "state": { "state": "online" } }),
            "engine events pass through unchanged"
        );
        let id = Uuid::nil();
        let e = AppEvent::Shell(ShellEvent::Navigate { screen: Screen::Challenge, id });
        assert_eq!(
            serde_json::to_value(&e).expect("json"),
            serde_json::json!({ "type": "navigate", "screen": "challenge", "id": id.to_string() })
        );
        assert_eq!(
            serde_json::to_value(AppEvent::Shell(ShellEvent::Reload)).expect("json"),
            serde_json::json!({ "type": "reload" })
        );
        assert_eq!(<AppEvent as tauri_specta::Event>::NAME, "ruwad://event");
    }
}
