//! GoTrue client: email + password sign-up and sign-in, rotating refresh tokens refreshed
//! ahead of expiry, sign-out, the current user; the session kept in a pluggable
//! [`SecretStore`] and observable by the rest of the app. Requests are auth-js's
//! (`supabase-wire.md` §7), with `X-Supabase-Api-Version: 2024-01-01`.
//!
//! ```no_run
//! # async fn demo(url: &str, key: &str) -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use ruwad_supabase::{auth::{Auth, AuthOptions, MemoryStore}, Project, rest::Rest};
//! let project = Project::new(url, key)?;
//! let auth = Auth::start(project, Arc::new(MemoryStore::new()), AuthOptions::default()).await?;
//! auth.sign_in_with_password("a@example.com", "secret-pass").await?;
//! let rest = Rest::with_auth(&auth); // sends the session's access token
//! # Ok(()) }
//! ```
//!
//! ## One handle, one owner of the session
//! [`Auth`] is a cheap clonable handle. The session lives in a `tokio::sync::watch` channel;
//! every change (sign-in, refresh, sign-out) replaces it there, is written to the secret store,
//! then announced as an [`AuthEvent`]. A background task owned by the handles (it stops when
//! the last handle is dropped) refreshes the session [`AuthOptions::refresh_margin`] (90 s, as
//! auth-js) before it expires; it checks the wall clock at least every
//! [`AuthOptions::check_interval`], so a machine that slept past the refresh time refreshes on
//! wake.
//!
//! ## Observing tokens (for Realtime)
//! [`Auth::sessions`] gives a `watch::Receiver<Option<Session>>`: it always holds the current
//! session and wakes on every change, so the engine forwards access tokens to the realtime
//! client like this:
//!
//! ```no_run
//! # async fn forward(auth: ruwad_supabase::auth::Auth, set_auth: impl Fn(Option<String>)) {
//! let mut sessions = auth.sessions();
//! loop {
//!     let token = sessions.borrow_and_update().as_ref().map(|s| s.access_token.clone());
//!     set_auth(token); // e.g. realtime.set_auth(token): the new token, or None (use the API key)
//!     if sessions.changed().await.is_err() {
//!         break; // every Auth handle is gone
//!     }
//! }
//! # }
//! ```
//!
//! ## Refresh
//! Refresh tokens are single-use. All refreshes (the background task's, an explicit
//! [`Auth::refresh`], one a REST call needs) go through one lock: a refresh that waited for
//! another and finds the session already rotated returns it without a request, so concurrent
//! refreshes make one request. The request runs in its own task, so a caller that gives up
//! (a timeout) cannot leave the client holding a token the server has already rotated.
//!
//! ## Failure modes
//! - Network errors, timeouts, 408/429/5xx on refresh: the session is kept and the task
//!   retries with exponential backoff (1 s … 30 s, jittered, at least `Retry-After`), forever;
//!   REST keeps using the current access token meanwhile.
//! - A permanent refusal of the refresh token (`refresh_token_already_used`,
//!   `refresh_token_not_found`, `session_not_found`, …): the session has ended on the server;
//!   it is cleared locally and from the store and [`AuthEvent::SignedOut`] is sent with the
//!   code. The same happens when `/user` answers `session_not_found`.
//! - Sign-out clears the local session first, whatever the server then says; an error from
//!   [`Auth::sign_out`] only means the server may not have revoked it (a 401/403/404 means it
//!   was already gone and is not an error).
//! - A failing secret store never fails an operation: the session still works for this run;
//!   the failure is logged and sent as [`AuthEvent::StoreFailed`]. A stored session that
//!   does not parse is discarded at start.

mod error;
mod refresh;
mod session;
mod store;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use reqwest::header::CONTENT_TYPE;
use reqwest::Method;
use serde::Serialize;
use serde_json::{json, Map, Value};
use tokio::sync::{broadcast, watch};
use tokio_util::sync::{CancellationToken, DropGuard};

pub use error::AuthError;
pub use session::{Session, User};
pub use store::{FileStore, MemoryStore, SecretStore, StoreError};

use crate::project::{send, Project};

/// The `X-Supabase-Api-Version` auth-js sends; it selects GoTrue's `{code, message}` errors.
pub const API_VERSION: &str = "2024-01-01";

/// How the auth handle keeps the session fresh.
#[derive(Debug, Clone)]
pub struct AuthOptions {
    /// Refresh this long before the access token expires (auth-js: 90 s). For tokens that live
    /// less than twice this, refresh half-way through their life instead.
    pub refresh_margin: Duration,
    /// Run the background refresh task.
    pub auto_refresh: bool,
    /// The task looks at the wall clock at least this often (auth-js ticks every 30 s).
    pub check_interval: Duration,
    /// First delay after a failed refresh; doubles per failure up to `retry_max`.
    pub retry_min: Duration,
    pub retry_max: Duration,
}

impl Default for AuthOptions {
    fn default() -> AuthOptions {
        AuthOptions {
            refresh_margin: Duration::from_secs(90),
            auto_refresh: true,
            check_interval: Duration::from_secs(30),
            retry_min: Duration::from_secs(1),
            retry_max: Duration::from_secs(30),
        }
    }
}

/// Something that happened to the session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AuthEvent {
    /// Signed in (or signed up with a session).
    SignedIn,
    /// The session was refreshed: a new access token.
    TokenRefreshed,
    /// The session is gone.
    SignedOut { reason: SignOutReason },
    /// The secret store failed to save or clear the session (it still works for this run).
    StoreFailed { message: String },
}

/// Why the session ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SignOutReason {
    /// [`Auth::sign_out`] was called.
    Requested,
    /// The server no longer accepts the session (GoTrue's error code).
    SessionEnded { code: String },
}

/// What a sign-up gave.
#[derive(Debug, Clone, PartialEq)]
pub enum SignUp {
    /// The account is confirmed and signed in.
    SignedIn(Session),
    /// The project requires email confirmation first: no session yet.
    ConfirmationRequired(User),
}

/// Which sessions [`Auth::sign_out_with`] ends on the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignOutScope {
    /// Every session of the user (auth-js's default).
    Global,
    /// This session only.
    Local,
    /// Every other session; this one stays signed in.
    Others,
}

impl SignOutScope {
    fn as_str(self) -> &'static str {
        match self {
            SignOutScope::Global => "global",
            SignOutScope::Local => "local",
            SignOutScope::Others => "others",
        }
    }
}

/// The auth client for one project. Cheap to clone; the background refresh task stops when
/// the last clone is dropped.
#[derive(Clone)]
pub struct Auth {
    inner: Arc<Inner>,
}

struct Inner {
    project: Project,
    options: AuthOptions,
    store: Arc<dyn SecretStore>,
    session: watch::Sender<Option<Session>>,
    events: broadcast::Sender<AuthEvent>,
    /// One refresh at a time (see the module doc). Tokio's mutex: held across the request.
    refresh: tokio::sync::Mutex<()>,
    /// One store write at a time, always of the current session. Tokio's mutex: held across
    /// the blocking store call.
    persist: tokio::sync::Mutex<()>,
    /// Stops the refresh task with the last handle.
    _task: DropGuard,
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth")
            .field("project", &self.inner.project)
            .field("session", &*self.inner.session.borrow())
            .finish_non_exhaustive()
    }
}

/// How many events a slow subscriber may fall behind before it misses some.
const EVENT_BUFFER: usize = 64;

impl Auth {
    /// Starts the auth client: restores the session saved in `store` (refreshing it first if
    /// it is due; a session the server refuses is cleared, one that cannot be refreshed for
    /// now is kept) and starts the refresh task. Fails only if the store cannot be read.
    pub async fn start(project: Project, store: Arc<dyn SecretStore>, options: AuthOptions) -> Result<Auth, AuthError> {
        let cancel = CancellationToken::new();
        let auth = Auth {
            inner: Arc::new(Inner {
                project,
                options,
                store,
                session: watch::Sender::new(None),
                events: broadcast::channel(EVENT_BUFFER).0,
                refresh: tokio::sync::Mutex::new(()),
                persist: tokio::sync::Mutex::new(()),
                _task: cancel.clone().drop_guard(),
            }),
        };
        auth.restore().await?;
        if auth.inner.options.auto_refresh {
            let sessions = auth.inner.session.subscribe();
            tokio::spawn(refresh::run(Arc::downgrade(&auth.inner), sessions, cancel, auth.inner.options.clone()));
        }
        Ok(auth)
    }

    pub fn project(&self) -> &Project {
        &self.inner.project
    }

    /// The current session, if signed in.
    pub fn session(&self) -> Option<Session> {
        self.inner.session.borrow().clone()
    }

    /// Watches the session: the receiver holds the current one and wakes on every change
    /// (see the module doc for forwarding tokens to Realtime).
    pub fn sessions(&self) -> watch::Receiver<Option<Session>> {
        self.inner.session.subscribe()
    }

    /// Session events from now on.
    pub fn events(&self) -> broadcast::Receiver<AuthEvent> {
        self.inner.events.subscribe()
    }

    /// Creates an account and, when the project confirms it at once, signs in.
    pub async fn sign_up(&self, email: &str, password: &str) -> Result<SignUp, AuthError> {
        self.sign_up_with_data(email, password, Map::new()).await
    }

    /// [`Auth::sign_up`] with `data` as the user's `user_metadata` (e.g. `display_name`).
    pub async fn sign_up_with_data(
        &self,
        email: &str,
        password: &str,
        data: Map<String, Value>,
    ) -> Result<SignUp, AuthError> {
        let body = json!({
            "email": email, "password": password, "data": data, "gotrue_meta_security": {},
            "code_challenge": null, "code_challenge_method": null,
        });
        let value = self.call(Method::POST, "signup", None, None, Some(body)).await?.unwrap_or(Value::Null);
        if value.get("access_token").is_some() {
            let session = session_of(value)?;
            self.replace(Some(session.clone()), AuthEvent::SignedIn).await;
            Ok(SignUp::SignedIn(session))
        } else {
            let user = serde_json::from_value(value).map_err(|e| AuthError::Decode(e.to_string()))?;
            Ok(SignUp::ConfirmationRequired(user))
        }
    }

    /// Signs in with email and password.
    pub async fn sign_in_with_password(&self, email: &str, password: &str) -> Result<Session, AuthError> {
        let body = json!({"email": email, "password": password, "gotrue_meta_security": {}});
        let value = self.call(Method::POST, "token", Some(("grant_type", "password")), None, Some(body)).await?;
        let session = session_of(value.unwrap_or(Value::Null))?;
        self.replace(Some(session.clone()), AuthEvent::SignedIn).await;
        Ok(session)
    }

    /// Exchanges the refresh token for a new session now (concurrent calls share one request).
    pub async fn refresh(&self) -> Result<Session, AuthError> {
        let used = self.session().ok_or(AuthError::NotSignedIn)?.refresh_token;
        self.refresh_from(used).await
    }

    /// The user of the current session, as the server knows it now.
    pub async fn user(&self) -> Result<User, AuthError> {
        let token = self.access_token().await.ok_or(AuthError::NotSignedIn)?;
        match self.call(Method::GET, "user", None, Some(&token), None).await {
            Ok(value) => {
                serde_json::from_value(value.unwrap_or(Value::Null)).map_err(|e| AuthError::Decode(e.to_string()))
            }
            Err(AuthError::Api { code: Some(code), message, .. }) if code == "session_not_found" => {
                self.end_session(|s| s.access_token == token, &code).await;
                Err(AuthError::SessionEnded { code, message })
            }
            Err(e) => Err(e),
        }
    }

    /// Signs out everywhere (auth-js's default scope). See [`Auth::sign_out_with`].
    pub async fn sign_out(&self) -> Result<(), AuthError> {
        self.sign_out_with(SignOutScope::Global).await
    }

    /// Ends sessions on the server. For `Global` and `Local` the local session is cleared
    /// first, whatever the server answers; an error means only that the server may not have
    /// revoked it. Signed out already: nothing to do.
    pub async fn sign_out_with(&self, scope: SignOutScope) -> Result<(), AuthError> {
        if self.session().is_none() {
            return Ok(());
        }
        // A token the server accepts, so the logout can revoke the session there.
        let Some(token) = self.access_token().await else { return Ok(()) };
        if scope != SignOutScope::Others {
            // Whatever session is current by now (a refresh may have replaced it meanwhile).
            self.end(|_| true, SignOutReason::Requested).await;
        }
        match self.call(Method::POST, "logout", Some(("scope", scope.as_str())), Some(&token), None).await {
            Ok(_) => Ok(()),
            Err(AuthError::Api { status: 401 | 403 | 404, .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// An access token to send now: the current one, refreshed first when it must be (it has
    /// expired or is about to, or it is due and there is no background refresh). `None` when
    /// signed out, or when that refresh found the session ended. If the refresh fails for a
    /// transient reason the current token is returned and the server decides.
    pub async fn access_token(&self) -> Option<String> {
        let session = self.session()?;
        let now = SystemTime::now();
        let must = if self.inner.options.auto_refresh {
            session.is_expired(now + EXPIRY_SKEW)
        } else {
            session.is_refresh_due(self.inner.options.refresh_margin, now)
        };
        if !must {
            return Some(session.access_token);
        }
        match self.refresh_from(session.refresh_token.clone()).await {
            Ok(fresh) => Some(fresh.access_token),
            Err(AuthError::SessionEnded { .. } | AuthError::NotSignedIn) => None,
            Err(e) => {
                tracing::debug!(error = %e, "refresh before a request failed; using the current token");
                Some(session.access_token)
            }
        }
    }

    /// Refreshes with `used`, in a task of its own so that it completes even if the caller
    /// stops waiting.
    async fn refresh_from(&self, used: String) -> Result<Session, AuthError> {
        let auth = self.clone();
        tokio::spawn(async move { auth.refresh_locked(used).await })
            .await
            .map_err(|e| AuthError::Internal(format!("refresh task failed: {e}")))?
    }

    async fn refresh_locked(&self, used: String) -> Result<Session, AuthError> {
        let _turn = self.inner.refresh.lock().await;
        match self.session() {
            None => return Err(AuthError::NotSignedIn),
            // Another refresh (or a sign-in) replaced the session while this one waited.
            Some(current) if current.refresh_token != used => return Ok(current),
            Some(_) => {}
        }
        let body = json!({ "refresh_token": used });
        let result = self
            .call(Method::POST, "token", Some(("grant_type", "refresh_token")), None, Some(body))
            .await
            .and_then(|v| session_of(v.unwrap_or(Value::Null)));
        match result {
            Ok(fresh) => {
                let replaced = self.inner.session.send_if_modified(|cur| match cur {
                    Some(c) if c.refresh_token == used => {
                        *cur = Some(fresh.clone());
                        true
                    }
                    _ => false,
                });
                if replaced {
                    self.persist().await;
                    self.emit(AuthEvent::TokenRefreshed);
                }
                Ok(fresh)
            }
            Err(e) => {
                let e = e.on_refresh();
                if let AuthError::SessionEnded { code, .. } = &e {
                    tracing::info!(%code, "the server refused the refresh token; signing out");
                    self.end_session(|s| s.refresh_token == used, code).await;
                }
                Err(e)
            }
        }
    }

    /// Clears the session if it is still the one `which` picks, because the server ended it.
    async fn end_session(&self, which: impl Fn(&Session) -> bool, code: &str) {
        self.end(which, SignOutReason::SessionEnded { code: code.to_string() }).await;
    }

    async fn end(&self, which: impl Fn(&Session) -> bool, reason: SignOutReason) {
        let cleared = self.inner.session.send_if_modified(|cur| {
            if cur.as_ref().is_some_and(&which) {
                *cur = None;
                true
            } else {
                false
            }
        });
        if cleared {
            self.persist().await;
            self.emit(AuthEvent::SignedOut { reason });
        }
    }

    async fn replace(&self, session: Option<Session>, event: AuthEvent) {
        self.inner.session.send_replace(session);
        self.persist().await;
        self.emit(event);
    }

    fn emit(&self, event: AuthEvent) {
        // No subscriber is fine: events are for whoever listens.
        let _ = self.inner.events.send(event);
    }

    /// Writes the current session to the store (or clears it). Store failures are reported,
    /// never returned: the session keeps working for this run.
    async fn persist(&self) {
        let _turn = self.inner.persist.lock().await;
        let current = self.session();
        let store = Arc::clone(&self.inner.store);
        let result = match current {
            Some(s) => match serde_json::to_string(&s) {
                Ok(text) => blocking(move || store.save(&text)).await,
                Err(e) => Err(AuthError::Internal(format!("cannot serialise the session: {e}"))),
            },
            None => blocking(move || store.clear()).await,
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "could not write the session to the secret store");
            self.emit(AuthEvent::StoreFailed { message: e.to_string() });
        }
    }

    /// Loads the stored session at start.
    async fn restore(&self) -> Result<(), AuthError> {
        let store = Arc::clone(&self.inner.store);
        let Some(text) = blocking(move || store.load()).await? else { return Ok(()) };
        let session = match serde_json::from_str::<Session>(&text) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "the stored session cannot be read; discarding it");
                self.persist().await;
                return Ok(());
            }
        };
        let due = session.is_refresh_due(self.inner.options.refresh_margin, SystemTime::now());
        let used = session.refresh_token.clone();
        self.inner.session.send_replace(Some(session));
        if due {
            if let Err(e) = self.refresh_from(used).await {
                // Ended: already cleared and announced. Otherwise kept; the task retries.
                tracing::info!(error = %e, "refreshing the restored session failed");
            }
        }
        Ok(())
    }

    /// One GoTrue request: `POST|GET /auth/v1/<path>[?k=v]` with `bearer` (else the API key)
    /// and a JSON body. The answer's JSON, `None` for an empty body.
    async fn call(
        &self,
        method: Method,
        path: &str,
        query: Option<(&str, &str)>,
        bearer: Option<&str>,
        body: Option<Value>,
    ) -> Result<Option<Value>, AuthError> {
        let project = &self.inner.project;
        let mut url = project.endpoint(["auth", "v1", path]);
        if let Some((k, v)) = query {
            url.query_pairs_mut().append_pair(k, v);
        }
        let bearer = bearer.unwrap_or(project.anon_key());
        let mut request = project.request(method, url, bearer).header("X-Supabase-Api-Version", API_VERSION);
        if let Some(body) = body {
            let bytes = serde_json::to_vec(&body).map_err(|e| AuthError::Internal(e.to_string()))?;
            request = request.header(CONTENT_TYPE, "application/json;charset=UTF-8").body(bytes);
        }
        let answer = send(request).await.map_err(AuthError::Network)?;
        if !answer.status.is_success() {
            return Err(AuthError::decode(answer.status, &answer.headers, &answer.body));
        }
        if answer.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        serde_json::from_slice(&answer.body).map(Some).map_err(|e| AuthError::Decode(e.to_string()))
    }
}

/// A token this close to expiry is refreshed before it is sent, even with a background task.
const EXPIRY_SKEW: Duration = Duration::from_secs(5);

fn session_of(value: Value) -> Result<Session, AuthError> {
    Session::from_response(value, SystemTime::now()).map_err(|e| AuthError::Decode(format!("not a session: {e}")))
}

/// Runs a secret-store call on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, AuthError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result.map_err(AuthError::Store),
        Err(e) => Err(AuthError::Internal(format!("secret store task failed: {e}"))),
    }
}
