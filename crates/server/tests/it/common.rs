//! Starting a server for a test, and making users without going through the auth endpoints
//! (so REST and Realtime tests do not depend on GoTrue's behaviour).

#![allow(dead_code)]

use std::time::Duration;

use ruwad_server::jwt::{self, Claims};
use ruwad_server::{Config, Server};
use serde_json::{json, Map, Value};

pub struct TestServer {
    pub server: Server,
    pub dir: tempfile::TempDir,
    pub http: reqwest::Client,
}

pub struct TestUser {
    pub id: String,
    pub email: String,
    pub token: String,
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config::new("127.0.0.1:0".parse().expect("addr"), dir.path());
        tweak(&mut config);
        let server = tokio::time::timeout(Duration::from_secs(20), Server::start(config))
            .await
            .expect("server starts within 20 s")
            .expect("server starts");
        let http = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().expect("http client");
        TestServer { server, dir, http }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.server.url, path)
    }

    pub fn ws_url(&self, vsn: &str, key: &str) -> String {
        format!("{}/realtime/v1/websocket?apikey={key}&vsn={vsn}", self.server.url.replacen("http", "ws", 1))
    }

    /// A JWT for `sub` signed with the server's secret, like GoTrue would issue.
    pub fn token_for(&self, sub: &str, email: &str, ttl_secs: i64) -> String {
        let now = chrono::Utc::now().timestamp();
        let mut extra = Map::new();
        extra.insert("aud".into(), json!("authenticated"));
        extra.insert("email".into(), json!(email));
        extra.insert("app_metadata".into(), json!({"provider": "email", "providers": ["email"]}));
        extra.insert("user_metadata".into(), json!({}));
        extra.insert("aal".into(), json!("aal1"));
        extra.insert("is_anonymous".into(), json!(false));
        let claims = Claims {
            sub: Some(sub.into()),
            role: "authenticated".into(),
            exp: now + ttl_secs,
            iat: Some(now),
            session_id: Some(uuid::Uuid::new_v4().to_string()),
            extra,
        };
        jwt::sign(&claims, self.server.state.keys.secret())
    }

    /// Creates an auth user and its profile directly in the database.
    pub async fn user(&self, name: &str) -> TestUser {
        self.user_with_id(&uuid::Uuid::new_v4().to_string(), name).await
    }

    /// Creates an auth user with this id (a canonical UUID) and its profile directly in the
    /// database.
    pub async fn user_with_id(&self, id: &str, name: &str) -> TestUser {
        let id = id.to_string();
        let email = format!("{name}-{}@test.ruwad.app", &id[..8]);
        let (i, e, n) = (id.clone(), email.clone(), name.to_string());
        self.server
            .state
            .db
            .write(move |tx| -> Result<(), ruwad_server::db::DbError> {
                let now = ruwad_server::schema::now_text();
                tx.execute(
                    "INSERT INTO auth_users (id, email, encrypted_password, created_at, updated_at) VALUES (?1, ?2, 'x', ?3, ?3)",
                    rusqlite::params![i, e, now],
                )?;
                tx.execute(
                    "INSERT INTO profiles (id, display_name, locale, created_at) VALUES (?1, ?2, 'en', ?3)",
                    rusqlite::params![i, n, now],
                )?;
                Ok(())
            })
            .await
            .expect("create user");
        let token = self.token_for(&id, &email, 3600);
        TestUser { id, email, token }
    }

    /// A REST request with the anon key as `apikey` and `bearer` (a user token or a key).
    pub fn rest(&self, method: reqwest::Method, path: &str, bearer: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, self.url(&format!("/rest/v1/{path}")))
            .header("apikey", &self.server.anon_key)
            .header("Authorization", format!("Bearer {bearer}"))
    }

    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}

pub async fn json_of(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    (status, if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) })
}
