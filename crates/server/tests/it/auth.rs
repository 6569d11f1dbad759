//! Integration tests: the GoTrue subset at `/auth/v1`, over real HTTP against an in-process
//! server, with the headers supabase-js sends.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ruwad_server::jwt::{self, Claims};
use ruwad_server::{Config, Server};
use serde_json::{json, Value};

use super::common::*;

/// What auth-js sends in `X-Supabase-Api-Version`.
const API_VERSION: &str = "2024-01-01";

/// A GoTrue client for one server: base URL, API key, HTTP client.
struct Gotrue {
    http: reqwest::Client,
    base: String,
    key: String,
}

impl Gotrue {
    fn of(ts: &TestServer) -> Gotrue {
        Gotrue::at(&ts.server, ts.http.clone())
    }

    fn at(server: &Server, http: reqwest::Client) -> Gotrue {
        Gotrue { http, base: format!("{}/auth/v1", server.url), key: server.anon_key.clone() }
    }

    /// A request as auth-js makes it, with the API key as bearer.
    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.request_as(method, path, &self.key)
    }

    /// A request as auth-js makes it, with `bearer` (a user's access token or the key).
    fn request_as(&self, method: reqwest::Method, path: &str, bearer: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .header("apikey", &self.key)
            .header("Authorization", format!("Bearer {bearer}"))
            .header("X-Supabase-Api-Version", API_VERSION)
            .header("X-Client-Info", "supabase-js-node/2.109.0")
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        json_of(self.request(reqwest::Method::POST, path).json(&body).send().await.expect("request")).await
    }

    async fn signup(&self, email: &str, password: &str, data: Value) -> (u16, Value) {
        self.post(
            "/signup",
            json!({"email": email, "password": password, "data": data, "gotrue_meta_security": {},
                   "code_challenge": null, "code_challenge_method": null}),
        )
        .await
    }

    /// Signs up and returns the session, failing the test otherwise.
    async fn session(&self, email: &str, password: &str) -> Value {
        let (status, body) = self.signup(email, password, json!({})).await;
        assert_eq!(status, 200, "signup of {email} must succeed: {body}");
        body
    }

    async fn sign_in(&self, email: &str, password: &str) -> (u16, Value) {
        self.post(
            "/token?grant_type=password",
            json!({"email": email, "password": password, "gotrue_meta_security": {}}),
        )
        .await
    }

    async fn refresh(&self, token: &str) -> (u16, Value) {
        self.post("/token?grant_type=refresh_token", json!({ "refresh_token": token })).await
    }

    async fn user(&self, access_token: &str) -> (u16, Value) {
        let resp = self.request_as(reqwest::Method::GET, "/user", access_token).send().await.expect("request");
        json_of(resp).await
    }

    async fn logout(&self, access_token: &str, scope: &str) -> (u16, Value) {
        let resp = self
            .request_as(reqwest::Method::POST, &format!("/logout?scope={scope}"), access_token)
            .send()
            .await
            .expect("request");
        json_of(resp).await
    }
}

fn token_of(session: &Value, field: &str) -> String {
    session[field].as_str().unwrap_or_else(|| panic!("session lacks {field}: {session}")).to_string()
}

fn payload_of(jwt: &str) -> Value {
    let part = jwt.split('.').nth(1).expect("a JWT has a payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("base64url")).expect("JSON payload")
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// `(auth_users, auth_sessions, auth_refresh_tokens, profiles)` row counts.
async fn counts(ts: &TestServer) -> (i64, i64, i64, i64) {
    ts.server
        .state
        .db
        .read(|c| -> Result<_, ruwad_server::db::DbError> {
            let n = |t: &str| c.query_row(&format!("SELECT count(*) FROM {t}"), [], |r| r.get::<_, i64>(0));
            Ok((n("auth_users")?, n("auth_sessions")?, n("auth_refresh_tokens")?, n("profiles")?))
        })
        .await
        .expect("count rows")
}

/// `(display_name, locale)` of a profile.
async fn profile_of(ts: &TestServer, id: &str) -> Option<(String, String)> {
    let id = id.to_string();
    ts.server
        .state
        .db
        .read(move |c| -> Result<_, ruwad_server::db::DbError> {
            let row = c.query_row("SELECT display_name, locale FROM profiles WHERE id = ?1", [id], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            });
            Ok(row.ok())
        })
        .await
        .expect("read profile")
}

fn assert_error(got: &(u16, Value), status: u16, code: &str, message: &str) {
    assert_eq!(got.0, status, "status for {code}: {}", got.1);
    assert_eq!(got.1["code"], code, "error code: {}", got.1);
    assert_eq!(got.1["message"], message, "error message: {}", got.1);
}

#[tokio::test]
async fn signup_returns_a_session_whose_jwt_carries_gotrue_claims() {
    let ts = TestServer::start().await;
    let g = Gotrue::of(&ts);
    let before = now();
    let (status, s) =
        g.signup("Layla@Example.com", "secret-pass", json!({"display_name": "ليلى", "locale": "en"})).await;
    assert_eq!(status, 200, "{s}");
    assert_eq!(s["token_type"], "bearer");
    assert_eq!(s["expires_in"], 3600);
    let expires_at = s["expires_at"].as_i64().expect("expires_at is a number");
    assert!((before + 3600..=now() + 3600).contains(&expires_at), "expires_at = now + expires_in");
    let refresh = token_of(&s, "refresh_token");
    assert!(refresh.len() >= 22, "a refresh token carries at least 128 bits: {refresh}");

    let user = &s["user"];
    let id = user["id"].as_str().expect("user id");
    assert!(uuid::Uuid::parse_str(id).is_ok(), "user id is a UUID");
    assert_eq!(user["email"], "layla@example.com", "emails are stored lowercased");
    assert_eq!(user["aud"], "authenticated");
    assert_eq!(user["role"], "authenticated");
    assert_eq!(user["app_metadata"], json!({"provider": "email", "providers": ["email"]}));
    assert_eq!(user["user_metadata"], json!({"display_name": "ليلى", "locale": "en"}));
    assert_eq!(user["is_anonymous"], false);
    assert!(user["email_confirmed_at"].is_string() && user["confirmed_at"].is_string(), "auto-confirmed: {user}");
    assert!(user["last_sign_in_at"].is_string(), "signup signs in: {user}");
    assert_eq!(user["identities"][0]["provider"], "email");
    assert_eq!(user["identities"][0]["user_id"], id);

    let access = token_of(&s, "access_token");
    let verified = jwt::verify(&access, ts.server.state.keys.secret(), now()).expect("signed with the project secret");
    assert_eq!(verified.sub.as_deref(), Some(id));
    let claims = payload_of(&access);
    let mut keys: Vec<&str> = claims.as_object().expect("claims object").keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "aal",
            "amr",
            "app_metadata",
            "aud",
            "email",
            "exp",
            "iat",
            "is_anonymous",
            "iss",
            "phone",
            "role",
            "session_id",
            "sub",
            "user_metadata"
        ],
        "exactly GoTrue's access-token claims"
    );
    assert_eq!(claims["aud"], "authenticated");
    assert_eq!(claims["role"], "authenticated");
    assert_eq!(claims["exp"], expires_at);
    assert_eq!(claims["iss"], ruwad_server::auth::ISSUER);
    assert_eq!(claims["email"], "layla@example.com");
    assert_eq!(claims["phone"], "");
    assert_eq!(claims["aal"], "aal1");
    assert_eq!(claims["amr"][0]["method"], "password");
    assert!(claims["amr"][0]["timestamp"].as_i64().is_some_and(|t| t >= before));
    assert_eq!(claims["user_metadata"], user["user_metadata"]);
    assert_eq!(claims["is_anonymous"], false);
    assert!(uuid::Uuid::parse_str(claims["session_id"].as_str().expect("session_id")).is_ok());

    let profile = profile_of(&ts, id).await.expect("the profile row is created with the user");
    assert_eq!(profile, ("ليلى".to_string(), "en".to_string()));
}

#[tokio::test]
async fn signup_without_a_name_takes_the_profile_name_from_the_email() {
    let ts = TestServer::start().await;
    let s = Gotrue::of(&ts).session("omar.k@example.com", "secret-pass").await;
    let profile = profile_of(&ts, s["user"]["id"].as_str().expect("id")).await.expect("profile");
    assert_eq!(profile, ("omar.k".to_string(), "ar".to_string()), "local part of the email, Arabic by default");
}

#[tokio::test]
async fn duplicate_signup_is_user_already_exists_whatever_the_case() {
    let ts = TestServer::start().await;
    let g = Gotrue::of(&ts);
    g.session("sara@example.com", "secret-pass").await;
    let before = counts(&ts).await;
    let got = g.signup("SARA@example.com", "another-pass", json!({})).await;
    assert_error(&got, 422, "user_already_exists", "User already registered");
    assert_eq!(counts(&ts).await, before, "a refused signup writes nothing");
}

#[tokio::test]
async fn weak_password_is_refused_with_its_reasons() {
    let ts = TestServer::start().await;
    let got = Gotrue::of(&ts).signup("weak@example.com", "12345", json!({})).await;
    assert_error(&got, 422, "weak_password", "Password should be at least 6 characters.");
    assert_eq!(got.1["weak_password"], json!({"reasons": ["length"]}));
    assert_eq!(counts(&ts).await, (0, 0, 0, 0));
}

#[tokio::test]
async fn badly_formed_email_is_validation_failed() {
    let ts = TestServer::start().await;
    let g = Gotrue::of(&ts);
    for bad in ["not-an-email", "a@b..c", "@example.com", "a b@example.com"] {
        let got = g.signup(bad, "secret-pass", json!({})).await;
        assert_error(&got, 400, "validation_failed", "Unable to validate email address: invalid format");
    }
    assert_eq!(counts(&ts).await, (0, 0, 0, 0));
}

#[tokio::test]
async fn signup_without_password_or_email_is_validation_failed() {
    let ts = TestServer::start().await;
    let g = Gotrue::of(&ts);
    let got = g.post("/signup", json!({"email": "a@example.com"})).await;
    assert_error(&got, 400, "validation_failed", "Signup requires a valid password");
    let got = g.post("/signup", json!({"email": "a@example.com", "password": ""})).await;
    assert_error(&got, 400, "validation_failed", "Signup requires a valid password");
    let got = g.post("/signup", json!({"password": "secret-pass"})).await;
    assert_error(&got, 400, "validation_failed", "Sign up only available with email provider");
    let got = g.post("/signup", json!({"phone": "+15550100", "password": "secret-pass"})).await;
    assert_error(&got, 400, "phone_provider_disabled", "Phone signups are disabled");
    assert_eq!(counts(&ts).await, (0, 0, 0, 0));
}

#[tokio::test]
async fn password_sign_in_succeeds_only_with_the_right_password() {
    let ts = TestServer::start().await;
    let g = Gotrue::of(&ts);
    let first = g.session("layla@example.com", "right-pass").await;
    let first_sign_in = first["user"]["last_sign_in_at"].as_str().expect("last_sign_in_at").to_string();

    let (status, s) = g.sign_in("LAYLA@example.com", "right-pass").await;
    assert_eq!(status, 200, "{s}");
    assert_eq!(s["user"]["id"], first["user"]["id"]);
    assert_ne!(s["refresh_token"], first["refresh_token"], "a new sign-in is a new session");
    assert_ne!(
        payload_of(&token_of(&s, "access_token"))["session_id"],
        payload_of(&token_of(&first, "access_token"))["session_id"]
    );
    let last = s["user"]["last_sign_in_at"].as_str().expect("last_sign_in_at");
    assert!(last > first_sign_in.as_str(), "sign-in updates last_sign_in_at ({last} > {first_sign_in})");

    let wrong_password = g.sign_in("layla@example.com", "wrong-pass").await;
    let unknown_email = g.sign_in("nobody@example.com", "right-pass").await;
    assert_error(&wrong_password, 400, "invalid_credentials", "Invalid login credentials");
    assert_eq!(wrong_password, unknown_email, "a wrong password and an unknown email answer the same");
    let got = g.post("/token?grant_type=password", json!({"password": "right-pass"})).await;
    assert_error(&got, 400, "validation_failed", "missing email or phone");
}

#[tokio::test]
async fn refresh_rotates_the_token_and_the_new_one_keeps_working() {
    let ts = TestServer::start().await;
    let g = Gotrue::of(&ts);
    let s0 = g.session("rot@example.com", "secret-pass").await;
    let (status, s1) = g.refresh(&token_of(&s0, "refresh_token")).await;
    assert_eq!(status, 200, "{s1}");
    assert_ne!(s1["refresh_token"], s0["refresh_token"], "every refresh issues a new refresh token");
    assert_eq!(s1["user"]["id"], s0["user"]["id"]);
    let c0 = payload_of(&token_of(&s0, "access_token"));
    let c1 = payload_of(&token_of(&s1, "access_token"));
    assert_eq!(c1["session_id"], c0["session_id"], "a refresh stays in its session");
    let (status, s2) = g.refresh(&token_of(&s1, "refresh_token")).await;
    assert_eq!(status, 200, "the rotated token works: {s2}");
    let (status, _) = g.user(&token_of(&s2, "access_token")).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn reusing_a_rotated_token_after_the_reuse_interval_revokes_the_session() {
    let ts = TestServer::start_with(|c| c.auth.refresh_token_reuse_interval_secs = 0).await;
    let g = Gotrue::of(&ts);
    let s0 = g.session("thief@example.com", "secret-pass").await;
    let (status, s1) = g.refresh(&token_of(&s0, "refresh_token")).await;
    assert_eq!(status, 200, "{s1}");
    let got = g.refresh(&token_of(&s0, "refresh_token")).await;
    assert_error(&got, 400, "refresh_token_already_used", "Invalid Refresh Token: Already Used");
    let got = g.refresh(&token_of(&s1, "refresh_token")).await;
    assert_error(&got, 400, "session_not_found", "Invalid Refresh Token: No Valid Session Found");
    let got = g.user(&token_of(&s1, "access_token")).await;
    assert_error(&got, 403, "session_not_found", "Session from session_id claim in JWT does not exist");
}

#[tokio::test]
async fn reusing_the_parent_token_within_the_reuse_interval_returns_the_live_token() {
    let ts = TestServer::start().await;
    let g = Gotrue::of(&ts);
    let s0 = g.session("tabs@example.com", "secret-pass").await;
    let parent = token_of(&s0, "refresh_token");
    let (a, b) = tokio::join!(g.refresh(&parent), g.refresh(&parent));
    assert_eq!((a.0, b.0), (200, 200), "two tabs refreshing at once both succeed: {} {}", a.1, b.1);
    assert_eq!(a.1["refresh_token"], b.1["refresh_token"], "both tabs get the same live token");
    let (status, _) = g.refresh(&token_of(&a.1, "refresh_token")).await;
    assert_eq!(status, 200, "the shared live token still rotates");
}

#[tokio::test]
async fn unknown_malformed_and_missing_refresh_tokens_are_refused() {
    let ts = TestServer::start().await;
    let g = Gotrue::of(&ts);
    let got = g.refresh("abcdefghijklmnopqrstuvwxyz012345").await;
    assert_error(&got, 400, "refresh_token_not_found", "Invalid Refresh Token: Refresh Token Not Found");
    let got = g.refresh("short").await;
    assert_error(&got, 400, "validation_failed", "Refresh token is not valid");
    let got = g.post("/token?grant_type=refresh_token", json!({})).await;
    assert_error(&got, 400, "validation_failed", "Refresh token is not valid");
}

#[tokio::test]
async fn unknown_grant_type_is_refused_as_gotrue_does() {
    let ts = TestServer::start().await;
    let g = Gotrue::of(&ts);
    for path in ["/token?grant_type=client_credentials", "/token"] {
        let got = g.post(path, json!({})).await;
        assert_error(&got, 400, "invalid_credentials", "unsupported_grant_type");
    }
}

#[tokio::test]
async fn get_user_accepts_only_a_live_signed_user_token() {
    let ts = TestServer::start().await;
    let g = Gotrue::of(&ts);
    let s = g.session("who@example.com", "secret-pass").await;
    let access = token_of(&s, "access_token");
    let (status, user) = g.user(&access).await;
    assert_eq!(status, 200, "{user}");
    assert_eq!(user["id"], s["user"]["id"]);
    assert_eq!(user["email"], "who@example.com");

    let id = s["user"]["id"].as_str().expect("id");
    let expired = ts.token_for(id, "who@example.com", -60);
    assert_error(
        &g.user(&expired).await,
        403,
        "bad_jwt",
        "invalid JWT: unable to parse or verify signature, token has invalid claims: token is expired",
    );

    let mut claims: Claims = serde_json::from_value(payload_of(&access)).expect("claims");
    let forged = jwt::sign(&claims, b"not the project secret");
    assert_error(
        &g.user(&forged).await,
        403,
        "bad_jwt",
        "invalid JWT: unable to parse or verify signature, token signature is invalid: signature is invalid",
    );

    claims.exp = now() + 600;
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).expect("claims JSON"));
    assert_error(
        &g.user(&format!("{header}.{body}.")).await,
        403,
        "bad_jwt",
        "invalid JWT: unable to parse or verify signature, token signature is invalid: signing method none is invalid",
    );

    assert_error(
        &g.user("garbage").await,
        403,
        "bad_jwt",
        "invalid JWT: unable to parse or verify signature, token is malformed: token contains an invalid number of segments",
    );

    assert_error(&g.user(&ts.server.anon_key).await, 403, "bad_jwt", "invalid claim: missing sub claim");

    let resp = ts
        .http
        .get(ts.url("/auth/v1/user"))
        .header("apikey", &ts.server.anon_key)
        .header("X-Supabase-Api-Version", API_VERSION)
        .send()
        .await
        .expect("request");
    assert_error(&json_of(resp).await, 401, "no_authorization", "This endpoint requires a valid Bearer token");
}

#[tokio::test]
async fn logout_ends_the_session_for_refresh_and_user() {
    let ts = TestServer::start().await;
    let g = Gotrue::of(&ts);
    let s = g.session("bye@example.com", "secret-pass").await;
    let access = token_of(&s, "access_token");
    let (status, body) = g.logout(&access, "global").await;
    assert_eq!(status, 204, "{body}");
    assert_eq!(body, Value::Null, "204 has no body");
    let got = g.refresh(&token_of(&s, "refresh_token")).await;
    assert_error(&got, 400, "session_not_found", "Invalid Refresh Token: No Valid Session Found");
    let got = g.user(&access).await;
    assert_error(&got, 403, "session_not_found", "Session from session_id claim in JWT does not exist");
    let got = g.logout(&access, "global").await;
    assert_error(&got, 403, "session_not_found", "Session from session_id claim in JWT does not exist");
}

#[tokio::test]
async fn logout_scopes_local_and_others_end_only_their_sessions() {
    let ts = TestServer::start().await;
    let g = Gotrue::of(&ts);
    let a = g.session("multi@example.com", "secret-pass").await;
    let (_, b) = g.sign_in("multi@example.com", "secret-pass").await;
    let (_, c) = g.sign_in("multi@example.com", "secret-pass").await;
    assert_eq!(g.logout(&token_of(&a, "access_token"), "local").await.0, 204);
    assert_eq!(g.user(&token_of(&a, "access_token")).await.0, 403, "local ends this session");
    assert_eq!(g.user(&token_of(&b, "access_token")).await.0, 200, "local keeps the others");
    assert_eq!(g.logout(&token_of(&b, "access_token"), "others").await.0, 204);
    assert_eq!(g.user(&token_of(&b, "access_token")).await.0, 200, "others keeps this session");
    assert_eq!(g.user(&token_of(&c, "access_token")).await.0, 403, "others ends the rest");
    assert_eq!(g.refresh(&token_of(&c, "refresh_token")).await.0, 400);
    let got = g.logout(&token_of(&b, "access_token"), "everywhere").await;
    assert_error(&got, 400, "validation_failed", "Unsupported logout scope \"everywhere\"");
}

#[tokio::test]
async fn errors_take_the_shape_the_api_version_header_asks_for() {
    let ts = TestServer::start().await;
    let url = ts.url("/auth/v1/token?grant_type=password");
    let body = json!({"email": "nobody@example.com", "password": "whatever"});
    let versioned = ts
        .http
        .post(&url)
        .header("apikey", &ts.server.anon_key)
        .header("X-Supabase-Api-Version", API_VERSION)
        .json(&body)
        .send()
        .await
        .expect("request");
    assert_eq!(
        versioned.headers().get("x-supabase-api-version").and_then(|v| v.to_str().ok()),
        Some(API_VERSION),
        "auth-js reads `code` only when the response echoes the version"
    );
    assert_eq!(
        json_of(versioned).await,
        (400, json!({"code": "invalid_credentials", "message": "Invalid login credentials"}))
    );

    let plain = ts.http.post(&url).header("apikey", &ts.server.anon_key).json(&body).send().await.expect("request");
    assert!(plain.headers().get("x-supabase-api-version").is_none());
    assert_eq!(
        json_of(plain).await,
        (400, json!({"code": 400, "error_code": "invalid_credentials", "msg": "Invalid login credentials"}))
    );
}

#[tokio::test]
async fn missing_or_invalid_apikey_is_refused_by_the_gateway() {
    let ts = TestServer::start().await;
    let body = json!({"email": "k@example.com", "password": "secret-pass"});
    let url = ts.url("/auth/v1/signup");
    let missing = json_of(ts.http.post(&url).json(&body).send().await.expect("request")).await;
    assert_eq!(missing.0, 401);
    assert_eq!(missing.1["message"], "No API key found in request");
    let forged = ts.token_for(&uuid::Uuid::new_v4().to_string(), "x@y.z", 60);
    let mut parts: Vec<&str> = forged.split('.').collect();
    parts[2] = "AAAA";
    let invalid =
        json_of(ts.http.post(&url).header("apikey", parts.join(".")).json(&body).send().await.expect("request")).await;
    assert_eq!(invalid.0, 401);
    assert_eq!(invalid.1["message"], "Invalid API key");
    let health = json_of(ts.http.get(ts.url("/auth/v1/health")).send().await.expect("request")).await;
    assert_eq!(health.0, 401, "even the health probe needs a key, as behind Supabase's gateway");
    assert_eq!(counts(&ts).await, (0, 0, 0, 0));
}

#[tokio::test]
async fn bad_request_bodies_get_clear_errors_and_change_nothing() {
    let ts = TestServer::start().await;
    let g = Gotrue::of(&ts);
    let existing = g.session("keep@example.com", "secret-pass").await;
    let before = counts(&ts).await;
    let raw = |path: &str, body: Vec<u8>| {
        g.request(reqwest::Method::POST, path).header("Content-Type", "application/json").body(body).send()
    };
    for (path, body) in [
        ("/signup", &b"{\"email\": \"new@example.com\", \"password\": "[..]),
        ("/signup", b""),
        ("/signup", b"[\"new@example.com\", \"secret-pass\"]"),
        ("/signup", b"null"),
        ("/signup", br#"{"email": 42, "password": "secret-pass"}"#),
        ("/signup", br#"{"email": "new@example.com", "password": ["secret-pass"]}"#),
        ("/signup", br#"{"email": "new@example.com", "password": "secret-pass", "data": "not an object"}"#),
        ("/token?grant_type=password", br#"{"email": "keep@example.com", "password": 123456}"#),
        ("/token?grant_type=refresh_token", br#"{"refresh_token": {"nested": true}}"#),
        ("/token?grant_type=refresh_token", b"refresh_token=abc"),
    ] {
        let got = json_of(raw(path, body.to_vec()).await.expect("request")).await;
        assert_eq!(got.0, 400, "{path} {:?}: {}", String::from_utf8_lossy(body), got.1);
        assert_eq!(got.1["code"], "bad_json", "{path} {:?}: {}", String::from_utf8_lossy(body), got.1);
        assert!(
            got.1["message"].as_str().is_some_and(|m| m.starts_with("Could not parse request body as JSON: ")),
            "{}",
            got.1
        );
    }
    let mut huge = br#"{"email": "big@example.com", "password": "secret-pass", "data": {"blob": ""#.to_vec();
    huge.extend(std::iter::repeat_n(b'x', (1 << 20) + 10));
    huge.extend(br#""}}"#);
    let got = json_of(raw("/signup", huge).await.expect("request")).await;
    assert_eq!(
        got,
        (413, json!({"code": "request_entity_too_large", "message": "Request body too large (max 1048576 bytes)"}))
    );

    let access = token_of(&existing, "access_token");
    let update = json_of(
        g.request_as(reqwest::Method::PUT, "/user", &access)
            .body(r#"{"data": ["not", "an", "object"]}"#)
            .send()
            .await
            .expect("request"),
    )
    .await;
    assert_eq!((update.0, update.1["code"].clone()), (400, json!("bad_json")), "{}", update.1);
    assert_eq!(counts(&ts).await, before, "no refused request wrote anything");
    let (_, user) = g.user(&access).await;
    assert_eq!(user["user_metadata"], json!({}), "a refused update changes nothing");
}

#[tokio::test]
async fn update_user_merges_metadata_and_changes_the_password() {
    let ts = TestServer::start().await;
    let g = Gotrue::of(&ts);
    let s = g.session("upd@example.com", "old-password").await;
    let (_, other) = g.sign_in("upd@example.com", "old-password").await;
    let access = token_of(&s, "access_token");
    let put = |body: Value| {
        let req = g.request_as(reqwest::Method::PUT, "/user", &access).json(&body);
        async move { json_of(req.send().await.expect("request")).await }
    };
    let (status, user) = put(json!({"data": {"theme": "dark", "city": "Riyadh"}})).await;
    assert_eq!(status, 200, "{user}");
    let (status, user) = put(json!({"data": {"city": null, "lang": "ar"}})).await;
    assert_eq!(status, 200, "{user}");
    assert_eq!(user["user_metadata"], json!({"theme": "dark", "lang": "ar"}), "merge; null removes a key");

    assert_error(
        &put(json!({"password": "old-password"})).await,
        422,
        "same_password",
        "New password should be different from the old password.",
    );
    assert_error(
        &put(json!({"password": "123"})).await,
        422,
        "weak_password",
        "Password should be at least 6 characters.",
    );
    let (status, _) = put(json!({"password": "new-password"})).await;
    assert_eq!(status, 200);
    assert_eq!(g.sign_in("upd@example.com", "old-password").await.0, 400, "the old password no longer works");
    assert_eq!(g.sign_in("upd@example.com", "new-password").await.0, 200, "the new password works");
    assert_eq!(g.user(&access).await.0, 200, "the session that changed the password stays");
    assert_eq!(g.user(&token_of(&other, "access_token")).await.0, 403, "other sessions end with a new password");
}

#[tokio::test]
async fn settings_and_health_answer_like_gotrue() {
    let ts = TestServer::start().await;
    let g = Gotrue::of(&ts);
    let (status, settings) = json_of(g.request(reqwest::Method::GET, "/settings").send().await.expect("request")).await;
    assert_eq!(status, 200);
    assert_eq!(settings["external"]["email"], true);
    assert_eq!(settings["external"]["phone"], false);
    assert_eq!(settings["disable_signup"], false);
    assert_eq!(settings["mailer_autoconfirm"], true);
    let (status, health) = json_of(g.request(reqwest::Method::GET, "/health").send().await.expect("request")).await;
    assert_eq!(status, 200);
    assert_eq!(health["name"], "GoTrue");
    let got = json_of(g.request(reqwest::Method::GET, "/nowhere").send().await.expect("request")).await;
    assert_error(&got, 404, "not_found", "Not Found");
}

#[tokio::test]
async fn access_tokens_expire_after_the_configured_lifetime() {
    let ts = TestServer::start_with(|c| c.auth.jwt_expiry_secs = 1).await;
    let g = Gotrue::of(&ts);
    let s = g.session("short@example.com", "secret-pass").await;
    assert_eq!(s["expires_in"], 1);
    let access = token_of(&s, "access_token");
    // `exp` is in whole seconds: wait until it is strictly past.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let got = g.user(&access).await;
    assert_eq!((got.0, got.1["code"].clone()), (403, json!("bad_jwt")), "{}", got.1);
    let (status, fresh) = g.refresh(&token_of(&s, "refresh_token")).await;
    assert_eq!(status, 200, "an expired access token does not end the session: {fresh}");
}

#[tokio::test]
async fn a_restart_on_the_same_data_dir_keeps_users_and_sessions() {
    let dir = tempfile::tempdir().expect("temp dir");
    let http = reqwest::Client::builder().timeout(std::time::Duration::from_secs(20)).build().expect("client");
    let start = || Server::start(Config::new("127.0.0.1:0".parse().expect("addr"), dir.path()));
    let first = start().await.expect("first start");
    let g = Gotrue::at(&first, http.clone());
    let s = g.session("stay@example.com", "secret-pass").await;
    first.shutdown().await;

    let second = start().await.expect("second start");
    let g = Gotrue::at(&second, http);
    let (status, user) = g.user(&token_of(&s, "access_token")).await;
    assert_eq!(status, 200, "an access token from before the restart still works: {user}");
    let (status, refreshed) = g.refresh(&token_of(&s, "refresh_token")).await;
    assert_eq!(status, 200, "a refresh token from before the restart still works: {refreshed}");
    assert_eq!(g.sign_in("stay@example.com", "secret-pass").await.0, 200, "the account survives");
    second.shutdown().await;
}
