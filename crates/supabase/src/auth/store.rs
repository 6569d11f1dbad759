//! Where the session is kept between runs: the [`SecretStore`] trait, with an in-memory store
//! (tests, "don't remember me") and a JSON file store; the desktop shell adds the OS keychain
//! (the `keyring` crate) behind the same trait.
//!
//! The trait is synchronous because the keychain APIs are: [`crate::auth::Auth`] calls it on
//! the blocking thread pool, one call at a time, and always writes the *current* session, so
//! a slow store never reorders a sign-out before an older save.

use std::io;
use std::path::{Path, PathBuf};

use parking_lot::Mutex;

/// Why the secret store failed.
#[derive(Debug, thiserror::Error)]
#[error("secret store: {message}")]
pub struct StoreError {
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl StoreError {
    pub fn new(message: impl Into<String>) -> StoreError {
        StoreError { message: message.into(), source: None }
    }

    pub fn with_source(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> StoreError {
        StoreError { message: message.into(), source: Some(Box::new(source)) }
    }
}

/// Keeps one secret: the serialised session (JSON text).
pub trait SecretStore: Send + Sync + 'static {
    /// The saved secret, `None` if there is none.
    fn load(&self) -> Result<Option<String>, StoreError>;
    /// Replaces the saved secret.
    fn save(&self, secret: &str) -> Result<(), StoreError>;
    /// Removes the saved secret; removing nothing is not an error.
    fn clear(&self) -> Result<(), StoreError>;
}

/// A store that forgets everything when the process ends.
#[derive(Debug, Default)]
pub struct MemoryStore {
    // Held only for a clone or a swap, never across an await.
    secret: Mutex<Option<String>>,
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// What is stored now (for tests).
    pub fn peek(&self) -> Option<String> {
        self.secret.lock().clone()
    }
}

impl SecretStore for MemoryStore {
    fn load(&self) -> Result<Option<String>, StoreError> {
        Ok(self.secret.lock().clone())
    }

    fn save(&self, secret: &str) -> Result<(), StoreError> {
        *self.secret.lock() = Some(secret.to_string());
        Ok(())
    }

    fn clear(&self) -> Result<(), StoreError> {
        *self.secret.lock() = None;
        Ok(())
    }
}

/// A store in one file, written atomically (a temporary file beside it, then a rename) and
/// readable by the owner only on Unix. Not encrypted: the keychain is for that.
#[derive(Debug, Clone)]
pub struct FileStore {
    path: PathBuf,
}

impl FileStore {
    pub fn new(path: impl Into<PathBuf>) -> FileStore {
        FileStore { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn temp_path(&self) -> PathBuf {
        let mut name = self.path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
        name.push(".tmp");
        self.path.with_file_name(name)
    }
}

fn open_private(path: &Path) -> io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

impl SecretStore for FileStore {
    fn load(&self) -> Result<Option<String>, StoreError> {
        match std::fs::read_to_string(&self.path) {
            Ok(s) => Ok(Some(s)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::with_source(format!("cannot read {}", self.path.display()), e)),
        }
    }

    fn save(&self, secret: &str) -> Result<(), StoreError> {
        use std::io::Write;
        let tmp = self.temp_path();
        let write = || -> io::Result<()> {
            if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            let mut f = open_private(&tmp)?;
            f.write_all(secret.as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.path)
        };
        write().map_err(|e| StoreError::with_source(format!("cannot write {}", self.path.display()), e))
    }

    fn clear(&self) -> Result<(), StoreError> {
        match std::fs::remove_file(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::with_source(format!("cannot remove {}", self.path.display()), e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(store: &dyn SecretStore) {
        assert_eq!(store.load().expect("load"), None, "empty at first");
        store.save("one").expect("save");
        store.save("two").expect("save again");
        assert_eq!(store.load().expect("load").as_deref(), Some("two"));
        store.clear().expect("clear");
        store.clear().expect("clearing nothing is fine");
        assert_eq!(store.load().expect("load"), None);
    }

    #[test]
    fn memory_store_keeps_the_last_secret() {
        round_trip(&MemoryStore::new());
    }

    #[test]
    fn file_store_keeps_the_last_secret_in_a_private_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = FileStore::new(dir.path().join("nested").join("session.json"));
        round_trip(&store);
        store.save("secret").expect("save");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(store.path()).expect("metadata").permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "only the owner may read the session");
        }
        assert!(!store.temp_path().exists(), "no temporary file is left behind");
    }
}
