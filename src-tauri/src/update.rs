//! Self-update, over `tauri-plugin-updater`: a signed release from the user's channel, offered
//! to the user and installed only when they say so.
//!
//! ## Where updates come from ([`UpdateSource`])
//! One endpoint per channel (`settings.update_channel`: stable / beta), made from a template in
//! which `{channel}` is replaced here and `{{target}}`, `{{arch}}`, `{{current_version}}`,
//! `{{bundle_type}}` by the plugin. The template is, first found: `RUWAD_UPDATE_URL`,
//! `settings.json`'s `update_url`, then `plugins.updater.endpoints[0]` of `tauri.conf.json`
//! (`https://updates.ruwad.app/desktop/{channel}/{{target}}/{{arch}}/{{current_version}}`). The
//! endpoint answers with a manifest (`version`, `notes`, `pub_date`, `platforms: { "<os>-<arch>":
//! { url, signature } }`) or `204 No Content`.
//!
//! ## What is verified
//! The artifact's minisign signature, against the public key of `tauri.conf.json`
//! (`plugins.updater.pubkey`; `RUWAD_UPDATE_PUBKEY` replaces it, for tests and private update
//! servers), and — `requireSignedVersion` — that the signature's trusted comment names the
//! version the manifest announces, so an old, validly signed build cannot be passed off as a
//! new one. The plugin verifies on download and again before installing. Only a version newer
//! than the running one is offered.
//!
//! ## Asking first
//! [`Updates::check`] remembers what it offered; [`Updates::install`] installs exactly that
//! version, and only when called — `install_update` is the user's "Install now". The background
//! check ([`spawn_checks`]: shortly after start, then every few hours) only tells the webview
//! (`update_available`), which asks.
//!
//! ## Failure modes
//! Every failure is an [`AppError`]: `config` (bad template, URL or key: nothing is contacted),
//! `unavailable` (the server cannot be reached), `update_unavailable` (it answered, but with no
//! usable release for this platform), `signature` (the download does not match its signature:
//! nothing is installed), `update_unsupported` (this copy cannot replace itself: a development
//! build or an unpackaged binary), `update` (installing failed). The app keeps working in every
//! case; the background check only logs.
//!
//! What can replace itself: an AppImage (the file is swapped), a `.deb` / `.rpm` install (the
//! package is installed with `pkexec`, else a graphical or terminal `sudo`: the user must be
//! allowed to), a macOS `.app`, a Windows MSI / NSIS install (the installer runs and the app
//! exits).

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;
use specta::Type;
use tauri::plugin::TauriPlugin;
use tauri::Url;
use tauri::{AppHandle, Manager, Runtime};
use tauri_plugin_updater::{Error as UpdaterError, Update, UpdaterExt};

use crate::config::UpdateChannel;
use crate::error::{AppError, AppResult, ErrorCode};

/// A template replacing the configured one (`{channel}` is replaced).
pub const ENV_UPDATE_URL: &str = "RUWAD_UPDATE_URL";
/// A public key replacing the configured one (base64 of a minisign `.pub` file).
pub const ENV_UPDATE_PUBKEY: &str = "RUWAD_UPDATE_PUBKEY";

const CHANNEL: &str = "{channel}";
/// The variables the plugin fills in.
const PLUGIN_VARIABLES: [&str; 4] = ["{{target}}", "{{arch}}", "{{current_version}}", "{{bundle_type}}"];
/// How long one check may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(30);
/// The background check: once a little after start (not to slow the start), then this often.
const FIRST_CHECK: Duration = Duration::from_secs(60);
const CHECK_EVERY: Duration = Duration::from_secs(6 * 60 * 60);
/// At most this many progress events a second.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// The updater plugin, configured by `plugins.updater` of `tauri.conf.json`. Its own commands
/// are not granted to the window: the app's `check_update` / `install_update` are the way in.
pub fn plugin<R: Runtime>() -> TauriPlugin<R, tauri_plugin_updater::Config> {
    tauri_plugin_updater::Builder::new().build()
}

/// A release the user may install.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Type)]
pub struct UpdateInfo {
    pub version: String,
    pub current_version: String,
    /// RFC 3339, as the manifest's `pub_date`.
    pub date: Option<String>,
    pub notes: Option<String>,
}

impl From<&Update> for UpdateInfo {
    fn from(u: &Update) -> UpdateInfo {
        UpdateInfo {
            version: u.version.clone(),
            current_version: u.current_version.clone(),
            date: u.raw_json.get("pub_date").and_then(|d| d.as_str()).map(String::from),
            notes: u.body.clone(),
        }
    }
}

/// Download progress: bytes so far, of `total` when the server said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub downloaded: u64,
    pub total: Option<u64>,
}

/// The endpoint of one channel and the key its artifacts must be signed with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateSource {
    pub endpoint: Url,
    /// Base64 of a minisign public key file (the Tauri CLI's format).
    pub pubkey: String,
}

impl UpdateSource {
    /// The source of `channel`: the template and key from the environment (`env` looks a
    /// variable up), else `settings_url` / the configuration (`plugins.updater` of
    /// `tauri.conf.json`). Checks them without contacting anything.
    pub fn resolve(
        channel: UpdateChannel,
        env: impl Fn(&str) -> Option<String>,
        settings_url: Option<&str>,
        config: Option<&serde_json::Value>,
    ) -> AppResult<UpdateSource> {
        let get = |k: &str| env(k).filter(|v| !v.trim().is_empty());
        let configured = config.and_then(|c| c.get("endpoints")?.get(0)?.as_str().map(String::from));
        let template = get(ENV_UPDATE_URL)
            .or_else(|| settings_url.filter(|u| !u.trim().is_empty()).map(String::from))
            .or(configured)
            .ok_or_else(|| AppError::config("no update endpoint is configured (plugins.updater.endpoints)"))?;
        let pubkey = get(ENV_UPDATE_PUBKEY)
            .or_else(|| config.and_then(|c| c.get("pubkey")?.as_str().map(String::from)))
            .ok_or_else(|| AppError::config("no update public key is configured (plugins.updater.pubkey)"))?;
        Ok(UpdateSource { endpoint: endpoint(template.trim(), channel)?, pubkey: checked_pubkey(pubkey.trim())? })
    }

    /// The source of the user's channel in the running app.
    pub fn for_app<R: Runtime>(
        app: &AppHandle<R>,
        channel: UpdateChannel,
        settings_url: Option<&str>,
    ) -> AppResult<UpdateSource> {
        let config = app.config().plugins.0.get("updater");
        UpdateSource::resolve(channel, |k| std::env::var(k).ok(), settings_url, config)
    }
}

fn channel_name(channel: UpdateChannel) -> &'static str {
    match channel {
        UpdateChannel::Stable => "stable",
        UpdateChannel::Beta => "beta",
    }
}

/// `template` with `{channel}` filled in, checked: an absolute http(s) URL (plain http only to
/// this machine) with no placeholder the plugin would leave as it is.
fn endpoint(template: &str, channel: UpdateChannel) -> AppResult<Url> {
    let bad = |why: &str| AppError::config(format!("the update URL {template:?} {why}"));
    let text = template.replace(CHANNEL, channel_name(channel));
    let leftover = PLUGIN_VARIABLES.iter().fold(text.clone(), |t, v| t.replace(v, "x"));
    if leftover.contains(['{', '}']) {
        return Err(bad(&format!("has an unknown placeholder (known: {CHANNEL}, {})", PLUGIN_VARIABLES.join(", "))));
    }
    let url = Url::parse(&text).map_err(|e| bad(&format!("is not a URL: {e}")))?;
    let loopback = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        // (The plugin itself refuses plain http in release builds.)
        _ => return Err(bad("must use https (plain http only to this machine, in debug builds)")),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("has no host"));
    }
    Ok(url)
}

/// `key` if it is a minisign public key as the Tauri CLI writes it (base64 of the `.pub` file).
fn checked_pubkey(key: &str) -> AppResult<String> {
    let bad = |why: String| {
        AppError::config(format!(
            "the update public key is not usable ({why}): give the base64 of the minisign public key file, \
             as `tauri signer generate` writes it"
        ))
    };
    let bytes = ruwad_core::docs::codec::unb64(key).map_err(|e| bad(e.to_string()))?;
    let text = String::from_utf8(bytes).map_err(|_| bad("not text".into()))?;
    minisign_verify::PublicKey::decode(&text).map_err(|e| bad(e.to_string()))?;
    Ok(key.to_string())
}

/// The updater's failures as the wire's codes (see the module doc).
pub fn classify(e: UpdaterError) -> AppError {
    use UpdaterError as E;
    let code = match &e {
        E::Minisign(_)
        | E::Base64(_)
        | E::SignatureUtf8(_)
        | E::SignedVersionMismatch { .. }
        | E::MissingSignedVersion => ErrorCode::Signature,
        E::Reqwest(r) if r.is_decode() => ErrorCode::UpdateUnavailable,
        E::Reqwest(_) | E::Network(_) => ErrorCode::Unavailable,
        E::ReleaseNotFound
        | E::Serialization(_)
        | E::Semver(_)
        | E::UrlParse(_)
        | E::TargetNotFound(_)
        | E::TargetsNotFound(_) => ErrorCode::UpdateUnavailable,
        E::EmptyEndpoints | E::InsecureTransportProtocol => ErrorCode::Config,
        E::UnsupportedOs | E::UnsupportedArch | E::FailedToDetermineExtractPath => ErrorCode::UpdateUnsupported,
        _ => ErrorCode::Update,
    };
    let message = match &e {
        E::Minisign(m) => format!("the update's signature does not match (not installed): {m}"),
        E::Base64(_) | E::SignatureUtf8(_) => "the update's signature is not readable (not installed)".to_string(),
        E::SignedVersionMismatch { .. } | E::MissingSignedVersion => {
            format!("the update's signature is not for the version offered (not installed): {e}")
        }
        E::Reqwest(r) if r.is_decode() => format!("the update server's answer is not a release manifest: {e}"),
        E::Reqwest(_) => format!("cannot reach the update server: {e}"),
        E::ReleaseNotFound => "the update server has no release for this channel (an error status)".to_string(),
        E::Serialization(_) | E::Semver(_) | E::UrlParse(_) => {
            format!("the update server's release manifest is not valid: {e}")
        }
        E::TargetNotFound(_) | E::TargetsNotFound(_) => format!("no build of the new version for this system: {e}"),
        _ => e.to_string(),
    };
    AppError::new(code, message)
}

/// Whether this copy can replace itself (Tauri patches the package kind into the binary when
/// it bundles it; a development build has none).
pub fn self_update_support<R: Runtime>(app: &AppHandle<R>) -> AppResult<()> {
    use tauri::utils::config::BundleType;
    use tauri::utils::platform::bundle_type;
    let unsupported = |what: &str| {
        Err(AppError::new(
            ErrorCode::UpdateUnsupported,
            format!("{what} cannot update itself: install the new version from its download page"),
        ))
    };
    if cfg!(target_os = "linux") && app.env().appimage.is_some() {
        return Ok(());
    }
    match bundle_type() {
        Some(BundleType::Deb | BundleType::Rpm | BundleType::Msi | BundleType::Nsis) => Ok(()),
        Some(BundleType::App)
            if tauri::utils::platform::current_exe()
                .is_ok_and(|p| p.to_string_lossy().contains(".app/Contents/MacOS")) =>
        {
            Ok(())
        }
        Some(BundleType::AppImage) => unsupported("this AppImage, run from outside its file,"),
        _ => unsupported("this copy (not installed from a package: a development build?)"),
    }
}

/// The updater's state: the update last offered, and the background check.
pub struct Updates {
    /// What `install` installs: the update the user was last offered. Std mutex: held only to
    /// copy or replace it, never across an `.await`.
    offered: Mutex<Option<Update>>,
    /// Install into this AppImage-style file instead of the running app (tests).
    install_path: Option<PathBuf>,
    /// The background check; aborted when this state is dropped.
    checks: Mutex<Option<tauri::async_runtime::JoinHandle<()>>>,
}

impl Default for Updates {
    fn default() -> Updates {
        Updates::new(None)
    }
}

impl Drop for Updates {
    fn drop(&mut self) {
        if let Some(task) = self.checks.get_mut().ok().and_then(Option::take) {
            task.abort();
        }
    }
}

impl Updates {
    fn new(install_path: Option<PathBuf>) -> Updates {
        Updates { offered: Mutex::new(None), install_path, checks: Mutex::new(None) }
    }

    /// Updates installed into `path`, replaced the way an AppImage is (the test harness: a
    /// headless test cannot replace its own binary), whatever kind of build this is.
    pub fn installing_to(path: impl Into<PathBuf>) -> Updates {
        Updates::new(Some(path.into()))
    }

    /// Asks `source` for a newer release; remembers it as the one offered (or forgets the last
    /// one when there is none).
    pub async fn check<R: Runtime>(&self, app: &AppHandle<R>, source: &UpdateSource) -> AppResult<Option<UpdateInfo>> {
        let mut builder = app
            .updater_builder()
            .endpoints(vec![source.endpoint.clone()])
            .map_err(classify)?
            .pubkey(source.pubkey.clone())
            .timeout(CHECK_TIMEOUT);
        if let Some(path) = &self.install_path {
            builder = builder.executable_path(path);
        }
        let found = builder.build().map_err(classify)?.check().await.map_err(classify)?;
        let info = found.as_ref().map(UpdateInfo::from);
        if let Ok(mut offered) = self.offered.lock() {
            *offered = found;
        }
        Ok(info)
    }

    /// Downloads the offered update to `version`, verifies its signature and installs it.
    /// Nothing is installed unless the download matches its signature. The caller restarts
    /// the app (on Windows the installer has already ended it).
    pub async fn install<R: Runtime>(
        &self,
        app: &AppHandle<R>,
        version: &str,
        mut progress: impl FnMut(Progress),
    ) -> AppResult<()> {
        let offered = self.offered.lock().ok().and_then(|o| o.clone());
        let update = match offered {
            Some(u) if u.version == version => u,
            Some(u) => {
                return Err(AppError::new(
                    ErrorCode::UpdateUnavailable,
                    format!("version {version} is no longer offered (now {}): check again", u.version),
                ))
            }
            None => {
                return Err(AppError::new(
                    ErrorCode::UpdateUnavailable,
                    format!("version {version} was not offered: check for updates first"),
                ))
            }
        };
        if self.install_path.is_none() {
            self_update_support(app)?;
        }
        tracing::info!(version, "downloading the update");
        let mut downloaded = 0u64;
        let mut last = None::<Instant>;
        let bytes = update
            .download(
                |chunk, total| {
                    downloaded += chunk as u64;
                    if last.is_none_or(|t| t.elapsed() >= PROGRESS_EVERY) {
                        last = Some(Instant::now());
                        progress(Progress { downloaded, total });
                    }
                },
                || {},
            )
            .await
            .map_err(classify)?;
        progress(Progress { downloaded, total: Some(downloaded) });
        tracing::info!(version, bytes = bytes.len(), "the update's signature matches; installing");
        // `install` verifies again before it touches anything.
        let installed = tauri::async_runtime::spawn_blocking(move || update.install(bytes))
            .await
            .map_err(|e| AppError::internal(format!("the install task failed: {e}")))?;
        installed.map_err(classify)?;
        if let Ok(mut offered) = self.offered.lock() {
            offered.take();
        }
        tracing::info!(version, "the update is installed");
        Ok(())
    }
}

/// Starts the background check (see the module doc); `Updates` owns the task.
pub fn spawn_checks(app: &AppHandle) {
    if let Err(e) = self_update_support(app) {
        tracing::info!(reason = %e.message, "no background update checks");
        return;
    }
    let handle = app.clone();
    let task = tauri::async_runtime::spawn(async move {
        tokio::time::sleep(FIRST_CHECK).await;
        loop {
            check_in_background(&handle).await;
            tokio::time::sleep(CHECK_EVERY).await;
        }
    });
    if let Some(previous) = app.state::<Updates>().checks.lock().ok().and_then(|mut c| c.replace(task)) {
        previous.abort();
    }
}

async fn check_in_background(app: &AppHandle) {
    let state = app.state::<crate::state::AppState>();
    let updates = app.state::<Updates>();
    let found = match UpdateSource::for_app(app, state.settings().update_channel, state.update_url().as_deref()) {
        Ok(source) => updates.check(app, &source).await,
        Err(e) => Err(e),
    };
    match found {
        Ok(Some(update)) => {
            tracing::info!(version = %update.version, "an update is available; asking the user");
            crate::events::emit(
                app,
                crate::events::AppEvent::Shell(crate::events::ShellEvent::UpdateAvailable { update }),
            );
        }
        Ok(None) => tracing::info!("no update"),
        Err(e) => tracing::info!(code = ?e.code, message = %e.message, "update check skipped"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| map.get(k).cloned()
    }

    fn tauri_conf_updater() -> serde_json::Value {
        let conf: serde_json::Value =
            serde_json::from_str(include_str!("../../tauri.conf.json")).expect("tauri.conf.json is JSON");
        conf["plugins"]["updater"].clone()
    }

    #[test]
    fn the_configured_endpoint_is_per_channel_and_the_key_is_a_minisign_key() {
        let config = tauri_conf_updater();
        assert_eq!(config["requireSignedVersion"], true, "a signature must name the version it was made for");
        let stable = UpdateSource::resolve(UpdateChannel::Stable, env(&[]), None, Some(&config)).expect("stable");
        let beta = UpdateSource::resolve(UpdateChannel::Beta, env(&[]), None, Some(&config)).expect("beta");
        assert_eq!(
            stable.endpoint.as_str(),
            "https://updates.ruwad.app/desktop/stable/%7B%7Btarget%7D%7D/%7B%7Barch%7D%7D/%7B%7Bcurrent_version%7D%7D",
            "the plugin fills in the encoded {{...}} variables"
        );
        assert!(beta.endpoint.path().starts_with("/desktop/beta/"), "{}", beta.endpoint);
        assert_eq!(stable.pubkey, config["pubkey"].as_str().expect("pubkey"));
    }

    #[test]
    fn the_environment_then_the_settings_replace_the_configured_endpoint_and_key() {
        let config = tauri_conf_updater();
        let other_key = config["pubkey"].as_str().expect("pubkey").to_string();
        let set = env(&[
            (ENV_UPDATE_URL, "http://127.0.0.1:8080/{channel}/latest.json?v={{current_version}}"),
            (ENV_UPDATE_PUBKEY, &other_key),
        ]);
        let s = UpdateSource::resolve(UpdateChannel::Beta, set, Some("https://ignored/{channel}"), Some(&config))
            .expect("environment");
        assert_eq!(s.endpoint.as_str(), "http://127.0.0.1:8080/beta/latest.json?v={{current_version}}");
        let s =
            UpdateSource::resolve(UpdateChannel::Stable, env(&[]), Some("https://u.example/{channel}"), Some(&config))
                .expect("settings");
        assert_eq!(s.endpoint.as_str(), "https://u.example/stable");
        let blank = env(&[(ENV_UPDATE_URL, " ")]);
        let s = UpdateSource::resolve(UpdateChannel::Stable, blank, None, Some(&config)).expect("blank is unset");
        assert_eq!(s.endpoint.host_str(), Some("updates.ruwad.app"));
    }

    #[test]
    fn a_bad_template_or_key_is_a_config_error() {
        let config = tauri_conf_updater();
        for (template, why) in [
            ("updates.example/{channel}", "not a URL"),
            ("ftp://updates.example/{channel}", "must use https"),
            ("http://updates.example/{channel}", "must use https"),
            ("https://updates.example/{chanel}/{{target}}", "unknown placeholder"),
            ("https://updates.example/{{targets}}", "unknown placeholder"),
        ] {
            let e =
                UpdateSource::resolve(UpdateChannel::Stable, env(&[(ENV_UPDATE_URL, template)]), None, Some(&config))
                    .expect_err(template);
            assert_eq!(e.code, ErrorCode::Config, "{template}");
            assert!(e.message.contains(why), "{template}: {}", e.message);
        }
        for key in ["not base64!", "aGVsbG8=", ""] {
            let e = UpdateSource::resolve(
                UpdateChannel::Stable,
                env(&[]),
                None,
                Some(&serde_json::json!({
                    "endpoints": ["https://u.example/{channel}"], "pubkey": key
                })),
            )
            .expect_err(key);
            assert_eq!(e.code, ErrorCode::Config, "{key:?}");
            assert!(e.message.contains("public key"), "{}", e.message);
        }
        let e = UpdateSource::resolve(UpdateChannel::Stable, env(&[]), None, None).expect_err("nothing configured");
        assert_eq!(e.code, ErrorCode::Config);
    }

    #[test]
    fn update_info_crosses_the_wire_in_snake_case() {
        let info = UpdateInfo {
            version: "0.2.0".into(),
            current_version: "0.1.0".into(),
            date: Some("2026-01-01T00:00:00Z".into()),
            notes: None,
        };
        assert_eq!(
            serde_json::to_value(&info).expect("json"),
            serde_json::json!({ "version": "0.2.0", "current_version": "0.1.0", "date": "2026-01-01T00:00:00Z", "notes": null })
        );
    }
}
