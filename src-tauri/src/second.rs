//! A second window as another user, on one machine: another process of this app in its own
//! **profile** (`<data>/profiles/second`, see `config`'s `RUWAD_DATA_DIR`) pointed at THIS
//! process's embedded backend (`RUWAD_BACKEND_URL` + `RUWAD_ANON_KEY`), so two demo accounts
//! can chat, see each other type and co-edit a document side by side. Two profiles that each
//! start their own embedded backend would not see each other.
//!
//! The second process lives as long as this one: it is stopped when this app quits (its
//! backend goes with it; its queue is on disk like any profile's). Asking again while it runs
//! launches it again, and its single-instance lock folds that launch into focusing the window
//! that is already open.
//!
//! ## Failure modes
//! On a Supabase project there is no embedded backend to share: `refused`, with how to run a
//! second profile by hand. The executable cannot be started: `internal` with the OS's reason.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Mutex;

use crate::config::{ENV_ANON_KEY, ENV_BACKEND_URL, ENV_DATA_DIR};
use crate::error::{AppError, AppResult, ErrorCode};
use crate::runtime::Running;

/// The second window's profile folder inside this profile's data folder.
pub fn profile_dir(data: &Path) -> PathBuf {
    data.join("profiles").join("second")
}

/// The command that starts the second window: this executable in the second profile, on the
/// backend at `url` with `anon_key`.
pub fn command(exe: &Path, data: &Path, url: &str, anon_key: &str) -> Command {
    let mut cmd = Command::new(exe);
    cmd.env(ENV_DATA_DIR, profile_dir(data)).env(ENV_BACKEND_URL, url).env(ENV_ANON_KEY, anon_key);
    cmd
}

/// The second windows this process started (managed by Tauri; stopped at exit).
#[derive(Default)]
pub struct SecondWindows {
    children: Mutex<Vec<Child>>,
}

impl SecondWindows {
    /// Starts a second window on `running`'s embedded backend.
    pub fn open(&self, data: &Path, running: &Running) -> AppResult<()> {
        let exe = std::env::current_exe()
            .map_err(|e| AppError::new(ErrorCode::Internal, format!("cannot find this app's executable: {e}")))?;
        self.open_with(&exe, data, running)
    }

    /// [`open`](Self::open) with `exe` as the app's executable.
    pub fn open_with(&self, exe: &Path, data: &Path, running: &Running) -> AppResult<()> {
        let (Some(url), Some(anon_key)) = (&running.embedded_url, &running.embedded_anon_key) else {
            return Err(AppError::new(
                ErrorCode::Refused,
                format!(
                    "a second window shares the embedded local backend; on a Supabase project start another \
                     profile instead ({ENV_DATA_DIR}=<folder> ruwad-desktop)"
                ),
            ));
        };
        let dir = profile_dir(data);
        std::fs::create_dir_all(&dir).map_err(|e| {
            AppError::new(
                ErrorCode::Storage,
                format!("cannot create the second profile's folder {}: {e}", dir.display()),
            )
        })?;
        let child = command(exe, data, url, anon_key)
            .spawn()
            .map_err(|e| AppError::new(ErrorCode::Internal, format!("cannot start a second window: {e}")))?;
        tracing::info!(pid = child.id(), profile = %dir.display(), "second window started");
        if let Ok(mut children) = self.children.lock() {
            // Reap the ones that are gone (a launch folded into an open window exits at once).
            children.retain_mut(|c| matches!(c.try_wait(), Ok(None)));
            children.push(child);
        }
        Ok(())
    }

    /// Stops every second window still running (at exit: their backend is about to stop).
    /// SIGTERM first, which the app answers by quitting cleanly; killed after [`STOP_WAIT`].
    pub fn stop_all(&self) {
        let Ok(mut children) = self.children.lock() else { return };
        for mut child in children.drain(..) {
            if !matches!(child.try_wait(), Ok(None)) {
                continue;
            }
            tracing::info!(pid = child.id(), "stopping the second window");
            terminate(&child);
            let deadline = std::time::Instant::now() + STOP_WAIT;
            while matches!(child.try_wait(), Ok(None)) && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            if matches!(child.try_wait(), Ok(None)) {
                tracing::warn!(pid = child.id(), "the second window did not quit: killing it");
                let _ = child.kill();
            }
            let _ = child.wait();
        }
    }
}

/// How long [`SecondWindows::stop_all`] waits for a second window to quit.
pub const STOP_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Asks `child` to quit: SIGTERM (through kill(1): this workspace forbids `unsafe`, and the
/// app answers SIGTERM by quitting cleanly). Elsewhere, or when that fails, nothing: the caller
/// kills it after [`STOP_WAIT`], which loses nothing (its queue is on disk).
fn terminate(child: &Child) {
    if cfg!(unix) {
        let sent = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        if !sent.is_ok_and(|s| s.success()) {
            tracing::debug!(pid = child.id(), "kill -TERM failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_second_window_runs_in_its_own_profile_on_this_backend() {
        let cmd = command(
            Path::new("/opt/ruwad/ruwad-desktop"),
            Path::new("/home/u/.local/share/app"),
            "http://127.0.0.1:4321",
            "anon",
        );
        let env: std::collections::HashMap<_, _> = cmd
            .get_envs()
            .map(|(k, v)| (k.to_string_lossy().into_owned(), v.map(|v| v.to_string_lossy().into_owned())))
            .collect();
        assert_eq!(env[ENV_DATA_DIR].as_deref(), Some("/home/u/.local/share/app/profiles/second"));
        assert_eq!(env[ENV_BACKEND_URL].as_deref(), Some("http://127.0.0.1:4321"));
        assert_eq!(env[ENV_ANON_KEY].as_deref(), Some("anon"));
        assert_eq!(cmd.get_program(), "/opt/ruwad/ruwad-desktop");
    }
}
