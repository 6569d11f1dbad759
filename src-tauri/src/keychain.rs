//! The session in the OS keychain (macOS Keychain, Windows Credential Manager, the Secret
//! Service on Linux) through the `keyring` crate, behind `ruwad_supabase`'s [`SecretStore`].
//!
//! One entry per profile and backend: service = the app identifier (which carries the profile,
//! see [`crate::config`]), account = `session:<backend slug>`. The secret is the session JSON
//! the auth client writes (access token, refresh token, user).
//!
//! ## Failure modes
//! Before use the keychain is **probed** (one read, on a blocking thread, bounded by a
//! timeout — a locked Secret Service may wait for a password prompt nobody answers). When it
//! fails — no D-Bus session, no Secret Service, access refused, time out — the session is kept
//! in a [`MemoryStore`] instead: the app works, the user is asked to sign in on the next start,
//! and [`SessionStore::remembered`] is false with a message the UI shows. Nothing panics.
//! A later write failure (e.g. a secret over Windows' 2,560-byte credential limit) is reported
//! by the auth client as `AuthEvent::StoreFailed`; the shell then marks the session as not
//! remembered (see [`crate::runtime`]).

use std::sync::Arc;
use std::time::Duration;

use ruwad_supabase::auth::{MemoryStore, SecretStore, StoreError};

/// How long the probe may take before the keychain is given up for this run.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// One keychain entry.
pub struct Keychain {
    entry: keyring::Entry,
}

impl Keychain {
    pub fn new(service: &str, account: &str) -> Result<Keychain, keyring::Error> {
        Ok(Keychain { entry: keyring::Entry::new(service, account)? })
    }
}

impl SecretStore for Keychain {
    fn load(&self) -> Result<Option<String>, StoreError> {
        match self.entry.get_password() {
            Ok(s) => Ok(Some(s)),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(StoreError::with_source("cannot read the session from the keychain", e)),
        }
    }

    fn save(&self, secret: &str) -> Result<(), StoreError> {
        self.entry
            .set_password(secret)
            .map_err(|e| StoreError::with_source("cannot write the session to the keychain", e))
    }

    fn clear(&self) -> Result<(), StoreError> {
        match self.entry.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(e) => Err(StoreError::with_source("cannot remove the session from the keychain", e)),
        }
    }
}

/// Where the session is kept this run.
#[derive(Clone)]
pub struct SessionStore {
    pub store: Arc<dyn SecretStore>,
    /// The session survives a restart (it is in the keychain).
    pub remembered: bool,
    /// Why it is not remembered.
    pub message: Option<String>,
}

impl SessionStore {
    /// Memory only, for `reason`.
    pub fn memory(reason: impl Into<String>) -> SessionStore {
        SessionStore { store: Arc::new(MemoryStore::new()), remembered: false, message: Some(reason.into()) }
    }
}

/// The keychain entry `(service, account)` if it answers a probe read within `timeout`, else a
/// memory store with the reason. Must run inside the Tokio runtime.
pub async fn open(service: &str, account: &str, timeout: Duration) -> SessionStore {
    let (service, account) = (service.to_string(), account.to_string());
    let probe = tokio::task::spawn_blocking(move || -> Result<Keychain, String> {
        let keychain = Keychain::new(&service, &account).map_err(|e| e.to_string())?;
        keychain.load().map_err(|e| describe(&e))?;
        Ok(keychain)
    });
    match tokio::time::timeout(timeout, probe).await {
        Ok(Ok(Ok(keychain))) => SessionStore { store: Arc::new(keychain), remembered: true, message: None },
        Ok(Ok(Err(e))) => fallback(format!("no usable keychain: {e}")),
        Ok(Err(join)) => fallback(format!("the keychain probe failed: {join}")),
        Err(_) => fallback(format!("the keychain did not answer within {} s", timeout.as_secs())),
    }
}

fn fallback(message: String) -> SessionStore {
    tracing::warn!("{message}; the session is kept in memory (sign in again after a restart)");
    SessionStore::memory(message)
}

/// The error with its causes (keyring's own text is often generic).
fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The body of `without_a_session_bus_the_session_is_kept_in_memory`, run in a child
    /// process whose environment has no D-Bus (the parent's environment is never changed).
    #[tokio::test]
    #[ignore = "run by without_a_session_bus_the_session_is_kept_in_memory in a child process"]
    async fn child_keychain_without_dbus() {
        if std::env::var_os("RUWAD_TEST_CHILD").is_none() {
            return;
        }
        let s = open("app.ruwad.desktop.test", "session:embedded", PROBE_TIMEOUT).await;
        assert!(!s.remembered, "no D-Bus: not remembered");
        let message = s.message.clone().unwrap_or_default();
        assert!(message.starts_with("no usable keychain"), "the reason is shown: {message}");
        s.store.save("secret").expect("the memory store works");
        assert_eq!(s.store.load().expect("load").as_deref(), Some("secret"));
        println!("CHILD-OK {message}");
    }

    #[test]
    fn without_a_session_bus_the_session_is_kept_in_memory() {
        let home = tempfile::tempdir().expect("temp home");
        let exe = std::env::current_exe().expect("test binary");
        let out = std::process::Command::new(exe)
            .args(["--exact", "keychain::tests::child_keychain_without_dbus", "--ignored", "--nocapture"])
            .env_clear()
            .env("RUWAD_TEST_CHILD", "1")
            .env("HOME", home.path())
            .env("XDG_RUNTIME_DIR", home.path())
            .env("DBUS_SESSION_BUS_ADDRESS", format!("unix:path={}/no-bus", home.path().display()))
            .output()
            .expect("run the child test");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("CHILD-OK"),
            "child failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// With a Secret Service (run under `dbus-run-session` with an unlocked gnome-keyring, see
    /// `scripts/desktop-smoke`) the session round-trips through the real keychain.
    #[tokio::test]
    async fn with_a_secret_service_the_session_is_remembered() {
        if std::env::var_os("RUWAD_TEST_KEYCHAIN").is_none() {
            eprintln!("skipped: set RUWAD_TEST_KEYCHAIN=1 inside a session with a keychain");
            return;
        }
        let account = format!("session:test-{}", uuid::Uuid::new_v4());
        let s = open("app.ruwad.desktop.test", &account, PROBE_TIMEOUT).await;
        assert!(s.remembered, "a keychain answered: {:?}", s.message);
        s.store.save("secret").expect("save");
        let again = Keychain::new("app.ruwad.desktop.test", &account).expect("entry");
        assert_eq!(again.load().expect("load").as_deref(), Some("secret"), "another handle reads it back");
        s.store.clear().expect("clear");
        s.store.clear().expect("clearing nothing is fine");
        assert_eq!(again.load().expect("load"), None);
    }
}
