//! Where the app keeps its files, which backend it talks to, and the user's settings.
//!
//! ## Folders
//! By default the OS's per-app folders (Tauri's `app_data_dir`, `app_config_dir`,
//! `app_log_dir`). `RUWAD_DATA_DIR` puts everything — data, `settings.json`, logs — in one
//! folder instead, and makes that folder a separate **profile**: the app identifier gets a
//! suffix derived from the folder ([`profile_identifier`]), so a second instance with another
//! `RUWAD_DATA_DIR` is not folded into the first by the single-instance lock, keeps its own
//! window state and webview storage, and its own keychain entry. Two demo users can then run
//! side by side.
//!
//! Inside the data folder: `backend/` (the embedded local backend's database and keys),
//! `cache/<backend>/` (the engine's per-account caches, one tree per backend so that two
//! projects never mix), `logs/` when `RUWAD_DATA_DIR` is set.
//!
//! ## Backend
//! `RUWAD_BACKEND_URL` + `RUWAD_ANON_KEY` (both, or neither) point the app at a Supabase project
//! and win over `settings.json`; otherwise `settings.json`'s `backend`; otherwise the embedded
//! local backend with demo data.
//!
//! ## Failure modes
//! A missing `settings.json` is a first start (defaults). One that cannot be read or parsed is
//! moved aside to `settings.json.broken` (never silently overwritten) and the defaults are
//! used; the problem is logged and returned to the caller. Saving writes a temporary file and
//! renames it over the old one, so a crash never leaves half a file.

use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use specta::Type;

pub const ENV_DATA_DIR: &str = "RUWAD_DATA_DIR";
pub const ENV_BACKEND_URL: &str = "RUWAD_BACKEND_URL";
pub const ENV_ANON_KEY: &str = "RUWAD_ANON_KEY";
/// `off`: never touch the OS keychain (sessions are kept in memory only). For CI and tests.
pub const ENV_KEYCHAIN: &str = "RUWAD_KEYCHAIN";

const SETTINGS_FILE: &str = "settings.json";

/// The app's folders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dirs {
    pub data: PathBuf,
    pub config: PathBuf,
    pub logs: PathBuf,
}

impl Dirs {
    /// Everything in one folder (`RUWAD_DATA_DIR`, tests).
    pub fn single(dir: impl Into<PathBuf>) -> Dirs {
        let dir = dir.into();
        Dirs { config: dir.clone(), logs: dir.join("logs"), data: dir }
    }

    pub fn settings_file(&self) -> PathBuf {
        self.config.join(SETTINGS_FILE)
    }

    /// The embedded local backend's data folder.
    pub fn embedded_backend(&self) -> PathBuf {
        self.data.join("backend")
    }

    /// The engine's data folder for `backend`.
    pub fn cache(&self, backend: &Backend) -> PathBuf {
        self.data.join("cache").join(backend.slug())
    }
}

/// The app identifier of the profile kept in `dir` (`RUWAD_DATA_DIR`): the base identifier
/// plus `.p` and a hash of the folder's absolute path, stable across runs.
pub fn profile_identifier(base: &str, dir: &Path) -> String {
    let absolute = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    format!("{base}.p{:016x}", fnv1a(absolute.to_string_lossy().as_bytes()))
}

/// FNV-1a, 64 bits: a stable, dependency-free hash for names (not for security).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3))
}

/// Which project the app talks to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Backend {
    /// The local backend, started inside the app with demo data.
    Embedded,
    /// A Supabase project (or a `ruwad-server` elsewhere).
    Supabase { url: String, anon_key: String },
}

impl Backend {
    /// A file-name-safe name for this backend's folders and keychain entry.
    pub fn slug(&self) -> String {
        match self {
            Backend::Embedded => "embedded".to_string(),
            Backend::Supabase { url, .. } => {
                let mut s = String::from("supabase-");
                let _ = write!(s, "{:016x}", fnv1a(url.trim_end_matches('/').as_bytes()));
                s
            }
        }
    }
}

/// Where the backend choice came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendSource {
    Environment,
    Settings,
    Default,
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{ENV_BACKEND_URL} and {ENV_ANON_KEY} go together: set both or neither")]
    HalfEnvironment,
    #[error("the backend is set by {ENV_BACKEND_URL}; unset it to choose another in the app")]
    FixedByEnvironment,
    #[error("the backend URL must start with http:// or https://: {0:?}")]
    BadUrl(String),
    #[error("the anon key is empty")]
    EmptyKey,
}

/// The backend to use: environment, then settings, then the embedded default. `env` looks a
/// variable up (the process environment in the app; a map in tests).
pub fn choose_backend(
    env: impl Fn(&str) -> Option<String>,
    file: &SettingsFile,
) -> Result<(Backend, BackendSource), ConfigError> {
    let get = |k: &str| env(k).filter(|v| !v.trim().is_empty());
    match (get(ENV_BACKEND_URL), get(ENV_ANON_KEY)) {
        (Some(url), Some(anon_key)) => {
            let backend = Backend::Supabase { url, anon_key };
            validate(&backend)?;
            Ok((backend, BackendSource::Environment))
        }
        (None, None) => match &file.backend {
            Some(b) => Ok((b.clone(), BackendSource::Settings)),
            None => Ok((Backend::Embedded, BackendSource::Default)),
        },
        _ => Err(ConfigError::HalfEnvironment),
    }
}

/// Checks what can be checked before connecting.
pub fn validate(backend: &Backend) -> Result<(), ConfigError> {
    if let Backend::Supabase { url, anon_key } = backend {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(ConfigError::BadUrl(url.clone()));
        }
        if anon_key.trim().is_empty() {
            return Err(ConfigError::EmptyKey);
        }
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Type)]
#[serde(rename_all = "snake_case")]
pub enum Language {
    En,
    Ar,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, Type)]
#[serde(rename_all = "snake_case")]
pub enum Theme {
    #[default]
    System,
    Light,
    Dark,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, Type)]
#[serde(rename_all = "snake_case")]
pub enum UpdateChannel {
    #[default]
    Stable,
    Beta,
}

/// The user's settings, as the UI edits them. (A stored file may lack fields: [`load_settings`]
/// fills them from the defaults, so the type itself has no optional fields.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct Settings {
    pub language: Language,
    pub theme: Theme,
    pub update_channel: UpdateChannel,
    /// No toasts (the tray's "Pause notifications"); the engine's mutes are separate.
    pub notifications_paused: bool,
}

impl Default for Settings {
    fn default() -> Settings {
        // Arabic when the system speaks it, English otherwise.
        let arabic = ["LC_ALL", "LC_MESSAGES", "LANG"]
            .iter()
            .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
            .is_some_and(|v| v.starts_with("ar"));
        Settings {
            language: if arabic { Language::Ar } else { Language::En },
            theme: Theme::default(),
            update_channel: UpdateChannel::default(),
            notifications_paused: false,
        }
    }
}

/// What `settings.json` holds.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SettingsFile {
    /// The backend chosen in the app (`None`: the embedded default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<Backend>,
    /// The update endpoint template (`{channel}` filled in), replacing `tauri.conf.json`'s: a
    /// private update server. `RUWAD_UPDATE_URL` wins over it (see `crate::update`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_url: Option<String>,
    #[serde(flatten)]
    pub settings: Settings,
}

/// Reads `settings.json` (see the module doc for what happens to a broken file). The second
/// value says what went wrong, if anything.
pub fn load_settings(path: &Path) -> (SettingsFile, Option<String>) {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return (SettingsFile::default(), None),
        Err(e) => {
            let problem = format!("cannot read {}: {e}; using the defaults", path.display());
            tracing::warn!("{problem}");
            return (SettingsFile::default(), Some(problem));
        }
    };
    match parse_settings(&text) {
        Ok(s) => (s, None),
        Err(e) => {
            let aside = path.with_extension("json.broken");
            let moved = std::fs::rename(path, &aside);
            let problem = match moved {
                Ok(()) => format!(
                    "{} is not valid ({e}); kept it as {} and used the defaults",
                    path.display(),
                    aside.display()
                ),
                Err(m) => format!(
                    "{} is not valid ({e}) and could not be moved aside ({m}); using the defaults",
                    path.display()
                ),
            };
            tracing::warn!("{problem}");
            (SettingsFile::default(), Some(problem))
        }
    }
}

/// The file's fields over the defaults (fields missing in an older file take their default).
fn parse_settings(text: &str) -> Result<SettingsFile, serde_json::Error> {
    let stored: serde_json::Map<String, serde_json::Value> = serde_json::from_str(text)?;
    let mut merged = match serde_json::to_value(SettingsFile::default())? {
        serde_json::Value::Object(m) => m,
        _ => serde_json::Map::new(),
    };
    merged.extend(stored);
    serde_json::from_value(serde_json::Value::Object(merged))
}

/// Writes `settings.json` atomically (temporary file, then rename).
pub fn save_settings(path: &Path, file: &SettingsFile) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let text = serde_json::to_string_pretty(file).map_err(io::Error::other)?;
    let tmp = path.with_extension("json.tmp");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| map.get(k).cloned()
    }

    fn supabase(url: &str) -> Backend {
        Backend::Supabase { url: url.into(), anon_key: "anon".into() }
    }

    #[test]
    fn a_first_start_has_default_settings_and_the_embedded_backend() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (file, problem) = load_settings(&Dirs::single(dir.path()).settings_file());
        assert_eq!(problem, None, "a missing file is a first start, not a problem");
        assert_eq!(file.backend, None);
        let (backend, source) = choose_backend(env(&[]), &file).expect("backend");
        assert_eq!((backend, source), (Backend::Embedded, BackendSource::Default));
    }

    #[test]
    fn settings_survive_a_save_and_load_round_trip() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = Dirs::single(dir.path().join("nested")).settings_file();
        let file = SettingsFile {
            backend: Some(supabase("https://x.supabase.co")),
            update_url: Some("https://updates.example/{channel}".into()),
            settings: Settings {
                language: Language::Ar,
                theme: Theme::Dark,
                update_channel: UpdateChannel::Beta,
                notifications_paused: true,
            },
        };
        save_settings(&path, &file).expect("save");
        assert_eq!(load_settings(&path), (file.clone(), None));
        let (backend, source) = choose_backend(env(&[]), &file).expect("backend");
        assert_eq!((backend, source), (supabase("https://x.supabase.co"), BackendSource::Settings));
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(text.contains(r#""kind": "supabase""#) && text.contains(r#""language": "ar""#), "{text}");
    }

    #[test]
    fn missing_fields_take_their_defaults() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("settings.json");
        std::fs::write(&path, r#"{"theme":"light"}"#).expect("write");
        let (file, problem) = load_settings(&path);
        assert_eq!(problem, None);
        assert_eq!(file.settings.theme, Theme::Light);
        assert!(!file.settings.notifications_paused);
        assert_eq!(file.backend, None);
    }

    #[test]
    fn a_broken_settings_file_is_kept_aside_and_the_defaults_used() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("settings.json");
        std::fs::write(&path, "{ not json").expect("write");
        let (file, problem) = load_settings(&path);
        assert_eq!(file, SettingsFile::default());
        assert!(problem.is_some_and(|p| p.contains("not valid")), "the problem is reported");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("settings.json.broken")).expect("kept aside"),
            "{ not json",
            "the user's file is never lost"
        );
        assert!(!path.exists());
    }

    #[test]
    fn the_environment_wins_and_must_be_complete() {
        let file = SettingsFile { backend: Some(supabase("https://settings.example")), ..SettingsFile::default() };
        let both = env(&[(ENV_BACKEND_URL, "http://127.0.0.1:54321"), (ENV_ANON_KEY, "key")]);
        assert_eq!(
            choose_backend(both, &file).expect("backend"),
            (
                Backend::Supabase { url: "http://127.0.0.1:54321".into(), anon_key: "key".into() },
                BackendSource::Environment
            )
        );
        let half = env(&[(ENV_BACKEND_URL, "http://127.0.0.1:54321")]);
        assert_eq!(choose_backend(half, &file), Err(ConfigError::HalfEnvironment));
        let bad = env(&[(ENV_BACKEND_URL, "127.0.0.1:54321"), (ENV_ANON_KEY, "key")]);
        assert!(matches!(choose_backend(bad, &file), Err(ConfigError::BadUrl(_))));
        let blank = env(&[(ENV_BACKEND_URL, " "), (ENV_ANON_KEY, "")]);
        assert_eq!(choose_backend(blank, &file).expect("blank is unset").1, BackendSource::Settings);
    }

    #[test]
    fn profiles_and_backends_get_stable_distinct_names() {
        let a = profile_identifier("app.ruwad.desktop", Path::new("/tmp/layla"));
        let b = profile_identifier("app.ruwad.desktop", Path::new("/tmp/omar"));
        assert_ne!(a, b, "two data dirs are two instances");
        assert_eq!(a, profile_identifier("app.ruwad.desktop", Path::new("/tmp/layla")), "stable across runs");
        assert!(a.starts_with("app.ruwad.desktop.p") && a.len() == "app.ruwad.desktop.p".len() + 16, "{a}");
        assert_eq!(Backend::Embedded.slug(), "embedded");
        assert_eq!(supabase("https://x.supabase.co/").slug(), supabase("https://x.supabase.co").slug());
        assert_ne!(supabase("https://x.supabase.co").slug(), supabase("https://y.supabase.co").slug());
        let dirs = Dirs::single("/d");
        assert_eq!(dirs.cache(&Backend::Embedded), PathBuf::from("/d/cache/embedded"));
        assert_eq!(dirs.logs, PathBuf::from("/d/logs"));
    }
}
