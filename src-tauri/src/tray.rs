//! The tray icon: the unread count in its tooltip (and as its title where the platform shows
//! one: macOS menu bar, Linux app indicators), and a menu — open, pause notifications, quit.
//!
//! ## Failure modes
//! Building the tray may fail (no tray support): the error is logged, the `tray` capability is
//! marked unavailable with the reason, and the app runs without it. On Linux the tray needs the
//! `libayatana-appindicator3-1` library at run time; without it the app aborts inside the
//! system library (not an error Rust can catch), hence its place in the packages (`deb`
//! depends on it; `scripts/setup` installs it). With no StatusNotifier host (e.g. under Xvfb)
//! building succeeds and nothing is drawn: [`host`] asks the session bus for one.
//!
//! ## Closing the window
//! Like other chat apps, closing the window keeps Ruwād running in the tray (notifications keep
//! coming; "Open" or a second launch brings the window back; "Quit" quits) — but only when a
//! tray is there to come back from. With no tray icon, or on a Linux desktop without a
//! StatusNotifier host (plain GNOME, Xvfb), closing the window quits.

use ruwad_core::Engine;
use tauri::image::Image;
use tauri::menu::{CheckMenuItem, Menu, MenuEvent, MenuItem, PredefinedMenuItem};
use tauri::tray::{TrayIcon, TrayIconBuilder, TrayIconEvent};
use tauri::{AppHandle, Manager, Wry};

use crate::config::Language;
use crate::state::AppState;

const OPEN: &str = "open";
const PAUSE: &str = "pause";
const QUIT: &str = "quit";

/// The tray and the menu items whose state changes.
#[derive(Clone)]
pub struct Tray {
    icon: TrayIcon,
    open: MenuItem<Wry>,
    pause: CheckMenuItem<Wry>,
    quit: MenuItem<Wry>,
}

/// Builds the tray (`icon`: the tray image; `None` uses the window icon).
pub fn build(app: &AppHandle, icon: Option<Image<'static>>) -> tauri::Result<Tray> {
    let settings = app.state::<AppState>().settings();
    let labels = Labels::of(settings.language);
    let open = MenuItem::with_id(app, OPEN, labels.open, true, None::<&str>)?;
    let pause = CheckMenuItem::with_id(app, PAUSE, labels.pause, true, settings.notifications_paused, None::<&str>)?;
    let quit = MenuItem::with_id(app, QUIT, labels.quit, true, None::<&str>)?;
    let menu = Menu::with_items(app, &[&open, &pause, &PredefinedMenuItem::separator(app)?, &quit])?;
    let mut builder = TrayIconBuilder::with_id("main")
        .tooltip("Ruwād")
        .menu(&menu)
        .show_menu_on_left_click(false)
        .on_menu_event(on_menu)
        .on_tray_icon_event(|tray, event| {
            if let TrayIconEvent::Click { button: tauri::tray::MouseButton::Left, .. } = event {
                crate::window::focus(tray.app_handle());
            }
        });
    if let Some(icon) = icon.or_else(|| app.default_window_icon().cloned()) {
        builder = builder.icon(icon);
    }
    let icon = builder.build(app)?;
    Ok(Tray { icon, open, pause, quit })
}

fn on_menu(app: &AppHandle, event: MenuEvent) {
    match event.id.as_ref() {
        OPEN => crate::window::focus(app),
        PAUSE => {
            let state = app.state::<AppState>();
            let mut settings = state.settings();
            settings.notifications_paused = !settings.notifications_paused;
            if let Err(e) = state.set_settings(settings) {
                tracing::warn!(error = %e, "cannot save the paused notifications");
            }
            sync_menu(app);
        }
        QUIT => crate::quit(app),
        other => tracing::debug!(id = other, "unknown tray menu item"),
    }
}

/// Makes the menu show the current settings (language, paused).
pub fn sync_menu(app: &AppHandle) {
    let state = app.state::<AppState>();
    let settings = state.settings();
    let Some(tray) = state.tray() else { return };
    let labels = Labels::of(settings.language);
    let result = tray
        .open
        .set_text(labels.open)
        .and_then(|()| tray.pause.set_text(labels.pause))
        .and_then(|()| tray.quit.set_text(labels.quit))
        .and_then(|()| tray.pause.set_checked(settings.notifications_paused));
    if let Err(e) = result {
        tracing::warn!(error = %e, "cannot update the tray menu");
    }
}

/// Re-reads the unread count and shows it on the tray.
pub async fn refresh_unread(app: &AppHandle, engine: &Engine) {
    let unread: u32 = match engine.rooms().await {
        Ok(rooms) => rooms.iter().filter(|r| r.member).map(|r| r.unread).sum(),
        Err(_) => 0, // not signed in
    };
    let state = app.state::<AppState>();
    let Some(tray) = state.tray() else { return };
    let language = state.settings().language;
    let result = tray
        .icon
        .set_tooltip(Some(tooltip(unread, language)))
        .and_then(|()| tray.icon.set_title((unread > 0).then(|| unread.to_string())));
    if let Err(e) = result {
        tracing::debug!(error = %e, "cannot update the tray");
    }
}

pub fn tooltip(unread: u32, language: Language) -> String {
    match (unread, language) {
        (0, _) => "Ruwād".to_string(),
        (n, Language::En) => format!("Ruwād — {n} unread"),
        (n, Language::Ar) => format!("رواد — {n} غير مقروءة"),
    }
}

struct Labels {
    open: &'static str,
    pause: &'static str,
    quit: &'static str,
}

impl Labels {
    fn of(language: Language) -> Labels {
        match language {
            Language::En => Labels { open: "Open Ruwād", pause: "Pause notifications", quit: "Quit" },
            Language::Ar => Labels {
                open: "فتح رواد", pause: "إيقاف الإشعارات مؤقتًا", quit: "خروج"
            },
        }
    }
}

/// Whether a tray host shows our icon here: always on macOS and Windows; on Linux, whether the
/// session bus has a StatusNotifierWatcher (what app indicators talk to). Blocking: call it off
/// the main thread.
pub fn host() -> Result<(), String> {
    #[cfg(target_os = "linux")]
    {
        let bus = zbus::blocking::Connection::session().map_err(|e| format!("no session bus: {e}"))?;
        host_on(&bus)
    }
    #[cfg(not(target_os = "linux"))]
    Ok(())
}

/// [`host`] on a given bus.
#[cfg(target_os = "linux")]
pub fn host_on(bus: &zbus::blocking::Connection) -> Result<(), String> {
    let reply = bus
        .call_method(
            Some("org.freedesktop.DBus"),
            "/org/freedesktop/DBus",
            Some("org.freedesktop.DBus"),
            "NameHasOwner",
            &("org.kde.StatusNotifierWatcher",),
        )
        .map_err(|e| format!("cannot ask the session bus for a tray host: {e}"))?;
    let owned: bool = reply.body().deserialize().map_err(|e| format!("odd answer from the session bus: {e}"))?;
    if owned {
        Ok(())
    } else {
        Err("no tray host on this desktop (no StatusNotifierWatcher on the session bus)".into())
    }
}

/// What closing the window does: hide it to the tray when a tray can bring it back, else quit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnClose {
    Hide,
    Quit,
}

pub fn on_close(tray_shown: bool) -> OnClose {
    if tray_shown {
        OnClose::Hide
    } else {
        OnClose::Quit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closing_the_window_hides_it_only_when_a_tray_can_bring_it_back() {
        assert_eq!(on_close(true), OnClose::Hide);
        assert_eq!(on_close(false), OnClose::Quit);
    }

    /// A private session bus (Debian's `dbus-daemon`; skipped with a note where it is missing):
    /// no tray host until a StatusNotifierWatcher takes its name, then one.
    #[test]
    #[cfg(target_os = "linux")]
    fn the_tray_host_probe_sees_a_status_notifier_watcher_come() {
        use std::io::{BufRead, BufReader};
        let daemon = std::process::Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--print-address"])
            .stdout(std::process::Stdio::piped())
            .spawn();
        let Ok(mut daemon) = daemon else {
            assert!(std::env::var_os("CI").is_none(), "CI has no dbus-daemon: scripts/setup installs it");
            eprintln!("skipped: no dbus-daemon here (scripts/setup installs it)");
            return;
        };
        let mut address = String::new();
        BufReader::new(daemon.stdout.take().expect("stdout")).read_line(&mut address).expect("bus address");
        let connect =
            || zbus::blocking::connection::Builder::address(address.trim()).expect("address").build().expect("connect");
        let app = connect();
        let why = host_on(&app).expect_err("no watcher yet");
        assert!(why.contains("no tray host"), "{why}");
        let watcher = connect();
        watcher.request_name("org.kde.StatusNotifierWatcher").expect("take the watcher's name");
        assert_eq!(host_on(&app), Ok(()));
        drop(watcher);
        let _ = daemon.kill();
        let _ = daemon.wait();
    }

    #[test]
    fn the_tooltip_shows_the_unread_count() {
        assert_eq!(tooltip(0, Language::En), "Ruwād");
        assert_eq!(tooltip(3, Language::En), "Ruwād — 3 unread");
        assert_eq!(tooltip(3, Language::Ar), "رواد — 3 غير مقروءة");
    }
}
