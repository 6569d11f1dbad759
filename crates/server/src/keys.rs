//! The project's secrets: the JWT secret and the two API keys derived from it.
//!
//! Generated on first start and written to `DIR/keys.json` (mode 0600 on Unix) through a
//! temporary file and a rename, so a crash never leaves a half-written key file; a restart on
//! the same directory reads them back, so tokens issued before the restart stay valid. A key
//! file that exists but cannot be read is an error, never silently replaced: replacing it
//! would invalidate every session and key that clients hold.

use std::path::Path;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::Map;

use crate::jwt::{self, Claims};

/// Ten years: API keys are long-lived like Supabase's legacy keys.
const API_KEY_LIFETIME_SECS: i64 = 10 * 365 * 24 * 3600;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Keys {
    pub jwt_secret: String,
    pub anon_key: String,
    pub service_role_key: String,
}

impl Keys {
    /// Reads `dir/keys.json`, or creates it with fresh secrets.
    pub fn load_or_create(dir: &Path) -> anyhow::Result<Keys> {
        let path = dir.join("keys.json");
        if path.exists() {
            let text =
                std::fs::read_to_string(&path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
            let keys: Keys = serde_json::from_str(&text)
                .map_err(|e| anyhow::anyhow!("{} is damaged ({e}); refusing to replace it", path.display()))?;
            return Ok(keys);
        }
        let keys = Keys::generate(chrono::Utc::now().timestamp());
        let tmp = dir.join("keys.json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(&keys)?)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
        }
        std::fs::rename(&tmp, &path)?;
        Ok(keys)
    }

    fn generate(now: i64) -> Keys {
        let mut raw = [0u8; 48];
        rand::thread_rng().fill_bytes(&mut raw);
        let jwt_secret = STANDARD.encode(raw);
        let key = |role: &str| {
            let mut extra = Map::new();
            extra.insert("iss".into(), "ruwad-local".into());
            extra.insert("ref".into(), "local".into());
            let claims = Claims {
                sub: None,
                role: role.into(),
                exp: now + API_KEY_LIFETIME_SECS,
                iat: Some(now),
                session_id: None,
                extra,
            };
            jwt::sign(&claims, jwt_secret.as_bytes())
        };
        Keys { anon_key: key("anon"), service_role_key: key("service_role"), jwt_secret }
    }

    pub fn secret(&self) -> &[u8] {
        self.jwt_secret.as_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_survive_a_restart_on_the_same_dir() {
        let dir = tempfile::tempdir().expect("temp dir");
        let a = Keys::load_or_create(dir.path()).expect("create");
        let b = Keys::load_or_create(dir.path()).expect("reload");
        assert_eq!(a.anon_key, b.anon_key);
        assert_eq!(a.jwt_secret, b.jwt_secret);
        let c = jwt::verify(&b.service_role_key, b.secret(), chrono::Utc::now().timestamp()).expect("key verifies");
        assert_eq!(c.role, "service_role");
    }

    #[test]
    fn damaged_key_file_is_refused_not_replaced() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("keys.json"), b"{not json").expect("write");
        let err = Keys::load_or_create(dir.path()).expect_err("damaged file must be refused");
        assert!(err.to_string().contains("refusing to replace"), "{err}");
        assert_eq!(std::fs::read(dir.path().join("keys.json")).expect("read"), b"{not json");
    }
}
