//! Logs with `tracing`: to stderr from the first line, and — once the log folder is known —
//! to daily-rotated files there (`ruwad.YYYY-MM-DD.log`, the last 14 kept). `RUST_LOG` filters
//! both (default `info`). `log` records of Tauri and its plugins are captured too.
//!
//! Failure modes: a log folder that cannot be created leaves logging on stderr only (reported
//! there); logging never stops the app.

use std::path::Path;

use tracing_appender::non_blocking::WorkerGuard;
use tracing_appender::rolling::{Builder as Rolling, Rotation};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, reload, EnvFilter, Registry};

type FileLayer =
    fmt::Layer<Registry, fmt::format::DefaultFields, fmt::format::Format, tracing_appender::non_blocking::NonBlocking>;

/// Keeps file logging alive (flushes on drop) and lets it be attached later.
pub struct Logging {
    file: reload::Handle<Option<FileLayer>, Registry>,
    guard: std::sync::Mutex<Option<WorkerGuard>>,
}

/// Starts logging to stderr. Call once, first thing.
pub fn init() -> Logging {
    let (file, handle) = reload::Layer::new(None::<FileLayer>);
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let installed = tracing_subscriber::registry()
        .with(file)
        .with(fmt::layer().with_writer(std::io::stderr))
        .with(filter)
        .try_init();
    if let Err(e) = installed {
        eprintln!("ruwad-desktop: logging was already set up: {e}");
    }
    Logging { file: handle, guard: std::sync::Mutex::new(None) }
}

impl Logging {
    /// Also writes the logs to daily files in `dir`.
    pub fn to_files(&self, dir: &Path) {
        if let Err(e) = std::fs::create_dir_all(dir) {
            tracing::warn!(error = %e, dir = %dir.display(), "cannot create the log folder; logging to stderr only");
            return;
        }
        let appender = match Rolling::new()
            .rotation(Rotation::DAILY)
            .filename_prefix("ruwad")
            .filename_suffix("log")
            .max_log_files(14)
            .build(dir)
        {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, dir = %dir.display(), "cannot log to files; logging to stderr only");
                return;
            }
        };
        let (writer, guard) = tracing_appender::non_blocking(appender);
        let layer = fmt::layer().with_ansi(false).with_writer(writer);
        match self.file.modify(|l| *l = Some(layer)) {
            Ok(()) => {
                if let Ok(mut g) = self.guard.lock() {
                    *g = Some(guard);
                }
                tracing::info!(dir = %dir.display(), "logging to files");
            }
            Err(e) => tracing::warn!(error = %e, "cannot attach the file log"),
        }
    }
}
