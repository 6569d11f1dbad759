//! Password hashes: argon2id in PHC string form (`$argon2id$v=19$m=…`), with the `argon2`
//! crate's default cost (19 MiB, 2 passes, 1 lane — the OWASP minimum).
//!
//! Hashing is deliberately slow and memory-hungry, so it never runs on an async worker nor
//! inside the database write lock: callers use [`Hasher::hash`] / [`Hasher::verify`], which run
//! it on a blocking thread, at most [`MAX_CONCURRENT`] at a time (a burst of sign-ins queues
//! instead of allocating hundreds of MiB). The sync functions are for code already on a
//! blocking thread (the demo seed).
//!
//! Sign-in with an unknown email still verifies against a fixed dummy hash, so the answer
//! takes about as long as a wrong password and does not reveal which emails exist.

use std::sync::{Arc, OnceLock};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use tokio::sync::Semaphore;

use super::AuthError;

/// How many hashes may be computed at once.
pub const MAX_CONCURRENT: usize = 4;

/// Hashes `password` (blocking).
pub fn hash_blocking(password: &str) -> Result<String, AuthError> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Internal(format!("password hashing failed: {e}")))
}

/// Whether `password` matches the PHC string `phc` (blocking). A damaged stored hash is a
/// mismatch, logged, never a panic.
pub fn verify_blocking(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok(),
        Err(e) => {
            tracing::warn!(error = %e, "a stored password hash cannot be parsed; treating it as a mismatch");
            false
        }
    }
}

/// Runs password hashing off the async runtime, a bounded number at a time.
pub struct Hasher {
    permits: Arc<Semaphore>,
    /// A hash of a random password, verified against when the email is unknown.
    dummy: Arc<OnceLock<String>>,
}

impl Default for Hasher {
    fn default() -> Hasher {
        Hasher { permits: Arc::new(Semaphore::new(MAX_CONCURRENT)), dummy: Arc::new(OnceLock::new()) }
    }
}

impl Hasher {
    /// Hashes `password` on a blocking thread.
    pub async fn hash(&self, password: String) -> Result<String, AuthError> {
        self.run(move || hash_blocking(&password)).await?
    }

    /// Checks `password` against `phc`, or against a dummy hash when there is no account, so
    /// that both cases cost the same. `false` when `phc` is `None`.
    pub async fn verify(&self, password: String, phc: Option<String>) -> Result<bool, AuthError> {
        let dummy = Arc::clone(&self.dummy);
        self.run(move || match phc {
            Some(phc) => verify_blocking(&password, &phc),
            None => {
                let dummy = dummy.get_or_init(|| {
                    // Hashing a fixed password cannot fail short of an allocation failure; an
                    // empty string still costs one (failed) parse, which is acceptable.
                    hash_blocking("ruwad: no such account").unwrap_or_default()
                });
                verify_blocking(&password, dummy);
                false
            }
        })
        .await
    }

    async fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Result<T, AuthError> {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| AuthError::Internal("password hasher closed".into()))?;
        tokio::task::spawn_blocking(move || {
            let out = f();
            drop(permit);
            out
        })
        .await
        .map_err(|e| AuthError::Internal(format!("password task failed: {e}")))
    }
}

/// GoTrue's checks of a signup password: present, then strong enough.
pub fn check_signup(password: &str, min: usize) -> Result<(), AuthError> {
    if password.is_empty() {
        return Err(AuthError::PasswordRequired);
    }
    check_strength(password, min)
}

/// GoTrue's strength rule as configured here: at least `min` characters.
pub fn check_strength(password: &str, min: usize) -> Result<(), AuthError> {
    if password.chars().count() < min {
        return Err(AuthError::WeakPassword(min));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_is_argon2id_salted_and_verifies_only_its_password() {
        let a = hash_blocking("correct horse").expect("hash");
        let b = hash_blocking("correct horse").expect("hash");
        assert!(a.starts_with("$argon2id$"), "{a}");
        assert_ne!(a, b, "each hash has its own salt");
        assert!(verify_blocking("correct horse", &a));
        assert!(!verify_blocking("correct horsE", &a));
    }

    #[test]
    fn a_damaged_hash_is_a_mismatch_not_a_panic() {
        assert!(!verify_blocking("x", "not a phc string"));
        assert!(!verify_blocking("x", ""));
    }

    #[test]
    fn strength_counts_characters_not_bytes() {
        assert!(check_strength("12345", 6).is_err());
        assert!(check_strength("123456", 6).is_ok());
        assert!(check_strength("كلمةسر", 6).is_ok(), "six Arabic letters are six characters");
    }

    #[tokio::test]
    async fn unknown_account_never_verifies() {
        let h = Hasher::default();
        assert!(!h.verify("ruwad: no such account".into(), None).await.expect("verify"));
        let phc = h.hash("secret1".into()).await.expect("hash");
        assert!(h.verify("secret1".into(), Some(phc)).await.expect("verify"));
    }
}
