//! Startup timing: how long the app took from the start of the process to the first screen the
//! user can use, in the log.
//!
//! `main` calls [`mark`] first thing (before logging, Tauri or the engine start). When the UI has
//! drawn its first screen with data from the local cache it calls the `ui_ready` command once,
//! and [`ui_ready`] logs one `ui ready` line with the milliseconds since the mark (the fixed
//! message and fields are what `scripts/bench-desktop` reads). Only the first report of a process
//! is logged at `info`; a later one (the webview reloaded) goes to `debug`, so the line always
//! means "the first start". Without a mark (tests, another entry point) the time counts from the
//! first use of this module, never panics.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde::Deserialize;
use specta::Type;

static START: OnceLock<Instant> = OnceLock::new();
static REPORTED: AtomicBool = AtomicBool::new(false);

/// Records the start of the process (the first call wins).
pub fn mark() {
    START.get_or_init(Instant::now);
}

/// The time since [`mark`].
pub fn since_start() -> Duration {
    START.get_or_init(Instant::now).elapsed()
}

/// The screen the UI reports ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Type)]
#[serde(rename_all = "snake_case")]
pub enum ReadyScreen {
    /// The chat screen with its room list read from the local cache.
    Chat,
}

/// Logs the `ui ready` line; returns whether this was the process's first report (the one
/// logged at `info`).
pub fn ui_ready(screen: ReadyScreen, items: u32) -> bool {
    let ms = since_start().as_millis() as u64;
    let first = !REPORTED.swap(true, Ordering::SeqCst);
    if first {
        tracing::info!(ms_since_start = ms, screen = ?screen, items, "ui ready");
    } else {
        tracing::debug!(ms_since_start = ms, screen = ?screen, items, "ui ready again (the webview reloaded)");
    }
    first
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_first_ready_report_of_a_process_counts_and_time_only_grows() {
        mark();
        let before = since_start();
        assert!(ui_ready(ReadyScreen::Chat, 3), "the first report is the startup time");
        assert!(!ui_ready(ReadyScreen::Chat, 3), "a reload does not report a second startup");
        assert!(since_start() >= before);
    }

    #[test]
    fn an_unknown_screen_is_refused_at_the_boundary() {
        let err = serde_json::from_str::<ReadyScreen>("\"settings\"").expect_err("not a reported screen");
        assert!(err.to_string().contains("unknown variant"), "{err}");
        assert_eq!(serde_json::from_str::<ReadyScreen>("\"chat\"").expect("chat"), ReadyScreen::Chat);
    }
}
