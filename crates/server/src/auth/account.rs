//! Accounts: an `auth_users` row and its `profiles` row, created together, and the GoTrue
//! User JSON read back from them.
//!
//! Creating an account has three steps so that the slow part never holds the write lock:
//! [`NewAccount::new`] validates (in GoTrue's order: password present, password strength,
//! email), [`NewAccount::hash`] hashes the password (blocking; call it off the async runtime),
//! and [`HashedAccount::insert`] writes both rows inside the caller's transaction. Signup and
//! the demo seed both go through these, so there is one way an account comes to exist.
//!
//! Every account is confirmed at creation (the local server sends no mail): its
//! `email_confirmed_at` and `confirmed_at` are its `created_at`.

use rusqlite::{params, Connection, OptionalExtension, Transaction};
use serde_json::{json, Map, Value};

use super::password;
use super::AuthError;

/// Longest email GoTrue accepts.
const MAX_EMAIL_LEN: usize = 255;

/// A validated signup, before hashing.
pub struct NewAccount {
    email: String,
    password: String,
    metadata: Map<String, Value>,
}

/// A signup whose password is hashed, ready to insert.
pub struct HashedAccount {
    email: String,
    password_hash: String,
    metadata: Map<String, Value>,
}

impl NewAccount {
    /// Validates a signup as GoTrue does: password present, at least `min_password_len`
    /// characters, then a well-formed email (lowercased).
    pub fn new(
        email: &str,
        password: &str,
        metadata: Map<String, Value>,
        min_password_len: usize,
    ) -> Result<NewAccount, AuthError> {
        password::check_signup(password, min_password_len)?;
        let email = normalize_email(email)?;
        Ok(NewAccount { email, password: password.to_string(), metadata })
    }

    pub fn email(&self) -> &str {
        &self.email
    }

    /// Hashes the password (blocking).
    pub fn hash(self) -> Result<HashedAccount, AuthError> {
        let password_hash = password::hash_blocking(&self.password)?;
        Ok(HashedAccount { email: self.email, password_hash, metadata: self.metadata })
    }

    /// Hashes the password on a blocking thread through `hasher`.
    pub async fn hash_with(self, hasher: &password::Hasher) -> Result<HashedAccount, AuthError> {
        let password_hash = hasher.hash(self.password).await?;
        Ok(HashedAccount { email: self.email, password_hash, metadata: self.metadata })
    }
}

impl HashedAccount {
    /// Inserts the auth user and its profile; `UserAlreadyExists` if the email is taken.
    /// `now` is the canonical timestamp text ([`crate::schema::format_ts`]).
    pub fn insert(&self, tx: &Transaction<'_>, now: &str) -> Result<User, AuthError> {
        if email_taken(tx, &self.email)? {
            return Err(AuthError::UserAlreadyExists);
        }
        let id = uuid::Uuid::new_v4().to_string();
        let metadata = Value::Object(self.metadata.clone()).to_string();
        tx.execute(
            "INSERT INTO auth_users (id, email, encrypted_password, raw_user_meta_data, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
            params![id, self.email, self.password_hash, metadata, now],
        )?;
        let (display_name, locale) = profile_of(&self.email, &self.metadata);
        tx.execute(
            "INSERT INTO profiles (id, display_name, avatar_url, locale, created_at) VALUES (?1, ?2, NULL, ?3, ?4)",
            params![id, display_name, locale, now],
        )?;
        Ok(User {
            id,
            email: self.email.clone(),
            user_metadata: self.metadata.clone(),
            created_at: now.to_string(),
            updated_at: now.to_string(),
            last_sign_in_at: None,
        })
    }
}

/// Lowercases and checks an email address the way GoTrue's format check does: a local part
/// of the RFC 5322 "atext" characters and dots, `@`, and dot-separated DNS labels.
pub fn normalize_email(email: &str) -> Result<String, AuthError> {
    let email = email.trim();
    if email.is_empty() {
        return Err(AuthError::EmailRequired);
    }
    if email.len() > MAX_EMAIL_LEN {
        return Err(AuthError::EmailTooLong);
    }
    let (local, domain) = email.rsplit_once('@').ok_or(AuthError::EmailInvalid)?;
    let local_ok =
        !local.is_empty() && local.chars().all(|c| c.is_ascii_alphanumeric() || ".!#$%&'*+/=?^_`{|}~-".contains(c));
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if !local_ok || domain.is_empty() || !domain.split('.').all(label_ok) {
        return Err(AuthError::EmailInvalid);
    }
    Ok(email.to_ascii_lowercase())
}

/// The profile a new account gets: its display name from `display_name`, else `full_name`,
/// else the email's local part; its locale from `locale` when it is `ar` or `en`, else `ar`.
pub fn profile_of(email: &str, metadata: &Map<String, Value>) -> (String, &'static str) {
    let text = |k: &str| metadata.get(k).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty());
    let display_name = text("display_name")
        .or_else(|| text("full_name"))
        .unwrap_or_else(|| email.split('@').next().unwrap_or(email))
        .to_string();
    let locale = match text("locale") {
        Some("en") => "en",
        _ => "ar",
    };
    (display_name, locale)
}

pub fn email_taken(conn: &Connection, email: &str) -> Result<bool, rusqlite::Error> {
    conn.query_row("SELECT 1 FROM auth_users WHERE email = ?1", [email], |_| Ok(())).optional().map(|r| r.is_some())
}

/// An auth user as GoTrue shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub id: String,
    pub email: String,
    pub user_metadata: Map<String, Value>,
    /// Canonical timestamp texts.
    pub created_at: String,
    pub updated_at: String,
    pub last_sign_in_at: Option<String>,
}

const USER_COLUMNS: &str = "id, email, raw_user_meta_data, created_at, updated_at, last_sign_in_at";

impl User {
    fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<User> {
        let meta: String = row.get(2)?;
        Ok(User {
            id: row.get(0)?,
            email: row.get(1)?,
            // Written only by this module as a JSON object; anything else reads as empty.
            user_metadata: serde_json::from_str(&meta).unwrap_or_default(),
            created_at: row.get(3)?,
            updated_at: row.get(4)?,
            last_sign_in_at: row.get(5)?,
        })
    }

    pub fn load(conn: &Connection, id: &str) -> Result<Option<User>, rusqlite::Error> {
        conn.query_row(&format!("SELECT {USER_COLUMNS} FROM auth_users WHERE id = ?1"), [id], User::from_row).optional()
    }

    /// The user with this email (any case) and their password hash.
    pub fn load_by_email(conn: &Connection, email: &str) -> Result<Option<(User, String)>, rusqlite::Error> {
        conn.query_row(
            &format!("SELECT {USER_COLUMNS}, encrypted_password FROM auth_users WHERE email = ?1"),
            [email],
            |row| Ok((User::from_row(row)?, row.get::<_, String>(6)?)),
        )
        .optional()
    }

    pub fn password_hash(conn: &Connection, id: &str) -> Result<Option<String>, rusqlite::Error> {
        conn.query_row("SELECT encrypted_password FROM auth_users WHERE id = ?1", [id], |r| r.get(0)).optional()
    }

    /// Records a sign-in at `now`.
    pub fn touch_sign_in(&mut self, tx: &Transaction<'_>, now: &str) -> Result<(), rusqlite::Error> {
        tx.execute("UPDATE auth_users SET last_sign_in_at = ?2 WHERE id = ?1", params![self.id, now])?;
        self.last_sign_in_at = Some(now.to_string());
        Ok(())
    }

    /// Merges `updates` into the user metadata (a `null` value removes the key, as GoTrue).
    pub fn merge_metadata(&mut self, updates: &Map<String, Value>) {
        for (k, v) in updates {
            if v.is_null() {
                self.user_metadata.remove(k);
            } else {
                self.user_metadata.insert(k.clone(), v.clone());
            }
        }
    }

    /// Writes the metadata, optionally a new password hash, and `updated_at = now`.
    pub fn save(
        &mut self,
        tx: &Transaction<'_>,
        new_password_hash: Option<&str>,
        now: &str,
    ) -> Result<(), rusqlite::Error> {
        let meta = Value::Object(self.user_metadata.clone()).to_string();
        tx.execute(
            "UPDATE auth_users SET raw_user_meta_data = ?2, updated_at = ?3,
                 encrypted_password = coalesce(?4, encrypted_password) WHERE id = ?1",
            params![self.id, meta, now, new_password_hash],
        )?;
        self.updated_at = now.to_string();
        Ok(())
    }

    pub fn app_metadata() -> Value {
        json!({ "provider": "email", "providers": ["email"] })
    }

    /// The User JSON of GoTrue (`/user`, and `user` in a session).
    pub fn to_json(&self) -> Value {
        let created = gotrue_time(&self.created_at);
        let updated = gotrue_time(&self.updated_at);
        let last = self.last_sign_in_at.as_deref().map(gotrue_time);
        let mut identity_data = Map::new();
        identity_data.insert("email".into(), json!(self.email));
        identity_data.insert("email_verified".into(), json!(true));
        identity_data.insert("phone_verified".into(), json!(false));
        identity_data.insert("sub".into(), json!(self.id));
        for (k, v) in &self.user_metadata {
            identity_data.entry(k.clone()).or_insert_with(|| v.clone());
        }
        let mut user = json!({
            "id": self.id,
            "aud": "authenticated",
            "role": "authenticated",
            "email": self.email,
            "email_confirmed_at": created,
            "phone": "",
            "confirmed_at": created,
            "app_metadata": User::app_metadata(),
            "user_metadata": self.user_metadata,
            "identities": [{
                "identity_id": identity_id(&self.id),
                "id": self.id,
                "user_id": self.id,
                "identity_data": identity_data,
                "provider": "email",
                "created_at": created,
                "updated_at": updated,
                "email": self.email,
            }],
            "created_at": created,
            "updated_at": updated,
            "is_anonymous": false,
        });
        if let (Some(last), Value::Object(map)) = (last, &mut user) {
            map.insert("last_sign_in_at".into(), json!(last));
            if let Some(Value::Object(identity)) = map.get_mut("identities").and_then(|i| i.get_mut(0)) {
                identity.insert("last_sign_in_at".into(), json!(last));
            }
        }
        user
    }
}

/// GoTrue (Go's `time.Time`) renders UTC as `…Z`; the database keeps `…+00:00`.
pub fn gotrue_time(ts: &str) -> String {
    match ts.strip_suffix("+00:00") {
        Some(base) => format!("{base}Z"),
        None => ts.to_string(),
    }
}

/// The email identity's own id: stable for a user, distinct from the user id (GoTrue keeps
/// identities in their own table; here there is exactly one per user, so it is derived).
fn identity_id(user_id: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("ruwad identity email {user_id}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(bytes).into_uuid().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_checked_and_lowercased() {
        assert_eq!(normalize_email(" Layla@Demo.Ruwad.App ").expect("valid"), "layla@demo.ruwad.app");
        assert_eq!(normalize_email("a.b+tag@x-y.example").expect("valid"), "a.b+tag@x-y.example");
        for bad in ["plainaddress", "@no-local.com", "a@", "a@-bad.com", "a@bad..com", "a b@c.com", "a@b_c.com"] {
            assert!(matches!(normalize_email(bad), Err(AuthError::EmailInvalid)), "{bad} must be refused");
        }
        assert!(matches!(normalize_email(""), Err(AuthError::EmailRequired)));
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(matches!(normalize_email(&long), Err(AuthError::EmailTooLong)));
    }

    #[test]
    fn signup_validation_follows_gotrue_order() {
        let m = Map::new;
        assert!(matches!(NewAccount::new("bad", "", m(), 6), Err(AuthError::PasswordRequired)));
        assert!(matches!(NewAccount::new("bad", "123", m(), 6), Err(AuthError::WeakPassword(6))));
        assert!(matches!(NewAccount::new("bad", "123456", m(), 6), Err(AuthError::EmailInvalid)));
    }

    #[test]
    fn profile_comes_from_metadata_or_the_email() {
        let meta = |v: Value| v.as_object().cloned().expect("object");
        assert_eq!(profile_of("x@y.z", &meta(json!({"display_name": "ليلى", "locale": "en"}))), ("ليلى".into(), "en"));
        assert_eq!(profile_of("x@y.z", &meta(json!({"full_name": "Omar K", "locale": "fr"}))), ("Omar K".into(), "ar"));
        assert_eq!(profile_of("sara.y@y.z", &meta(json!({"display_name": "  "}))), ("sara.y".into(), "ar"));
    }

    #[test]
    fn user_json_has_gotrue_fields() {
        let mut meta = Map::new();
        meta.insert("display_name".into(), json!("ليلى"));
        let u = User {
            id: "0b6f7b9e-8f5c-4b4c-9d3e-4a1b2c3d4e5f".into(),
            email: "l@x.io".into(),
            user_metadata: meta,
            created_at: "2026-01-02T03:04:05.000006+00:00".into(),
            updated_at: "2026-01-02T03:04:05.000006+00:00".into(),
            last_sign_in_at: Some("2026-01-03T00:00:00.000000+00:00".into()),
        };
        let j = u.to_json();
        for k in [
            "id",
            "aud",
            "role",
            "email",
            "email_confirmed_at",
            "phone",
            "confirmed_at",
            "last_sign_in_at",
            "app_metadata",
            "user_metadata",
            "identities",
            "created_at",
            "updated_at",
            "is_anonymous",
        ] {
            assert!(j.get(k).is_some(), "User JSON lacks {k}: {j}");
        }
        assert_eq!(j["created_at"], "2026-01-02T03:04:05.000006Z");
        assert_eq!(j["identities"][0]["provider"], "email");
        assert_eq!(j["identities"][0]["identity_data"]["display_name"], "ليلى");
        assert_ne!(j["identities"][0]["identity_id"], j["id"]);
        assert_eq!(j["identities"][0]["identity_id"], u.to_json()["identities"][0]["identity_id"], "stable");
    }

    #[test]
    fn metadata_merge_removes_null_keys() {
        let mut u = User {
            id: String::new(),
            email: String::new(),
            user_metadata: json!({"a": 1, "b": 2}).as_object().cloned().expect("object"),
            created_at: String::new(),
            updated_at: String::new(),
            last_sign_in_at: None,
        };
        u.merge_metadata(json!({"a": null, "c": 3}).as_object().expect("object"));
        assert_eq!(Value::Object(u.user_metadata), json!({"b": 2, "c": 3}));
    }
}
