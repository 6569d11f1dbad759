//! Integration tests: the GoTrue client against the real local backend — sign-up, sign-in,
//! refresh (explicit, coalesced, ahead of expiry, refused), sign-out, the secret store, and a
//! server restart or outage under a signed-in client.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ruwad_supabase::auth::{
    AuthError, AuthEvent, AuthOptions, FileStore, MemoryStore, SecretStore, Session, SignOutReason,
};
use ruwad_supabase::rest::Rest;
use serde_json::{json, Value};

use super::common::*;

/// Options for a server whose tokens live `SHORT_LIFE` seconds: refresh 2 s before expiry,
/// look at the clock often, retry fast.
fn quick() -> AuthOptions {
    AuthOptions {
        refresh_margin: Duration::from_secs(2),
        check_interval: Duration::from_millis(250),
        retry_min: Duration::from_millis(100),
        retry_max: Duration::from_millis(500),
        ..AuthOptions::default()
    }
}

const SHORT_LIFE: i64 = 4;

fn stored_session(store: &MemoryStore) -> Option<Session> {
    let text = store.peek()?;
    Some(serde_json::from_str(&text).expect("the store holds a session as JSON"))
}

#[tokio::test]
async fn sign_up_signs_in_saves_the_session_and_user_returns_the_account() {
    let ts = TestServer::start().await;
    let (auth, store) = ts.auth().await;
    let mut events = auth.events();
    let sessions = auth.sessions();
    assert!(sessions.borrow().is_none(), "nobody is signed in at first");

    let session = sign_up(&auth, "hala").await;
    assert_eq!(session.user.email.as_deref(), Some("hala@test.ruwad.app"));
    assert_eq!(next_event(&mut events, 5, "signed-in event").await, AuthEvent::SignedIn);
    assert_eq!(sessions.borrow().as_ref(), Some(&session), "the watch holds the new session");
    assert_eq!(stored_session(&store).as_ref(), Some(&session), "the session went to the store");

    let user = within(10, "user", auth.user()).await.expect("user");
    assert_eq!(user.id, session.user.id);
    assert_eq!(user.email.as_deref(), Some("hala@test.ruwad.app"));
}

#[tokio::test]
async fn sign_up_refusals_are_typed_and_change_nothing() {
    let ts = TestServer::start().await;
    let (auth, store) = ts.auth().await;
    sign_up(&auth, "omar").await;
    let (other, other_store) = ts.auth().await;
    let err = other.sign_up(&email("omar"), PASSWORD).await.expect_err("taken");
    assert!(matches!(err, AuthError::UserAlreadyExists), "{err:?}");
    let err = other.sign_up(&email("short"), "12345").await.expect_err("too short");
    match &err {
        AuthError::WeakPassword { reasons, .. } => assert_eq!(reasons, &["length"]),
        other => panic!("expected WeakPassword, got {other:?}"),
    }
    assert!(!err.is_transient());
    assert!(other.session().is_none() && other_store.peek().is_none(), "a refused sign-up signs nobody in");
    assert!(auth.session().is_some() && store.peek().is_some());
}

#[tokio::test]
async fn sign_in_checks_the_password() {
    let ts = TestServer::start().await;
    let (first, _) = ts.signed_up("rana").await;
    let (auth, store) = ts.auth().await;
    let err = auth.sign_in_with_password(&email("rana"), "wrong password").await.expect_err("wrong password");
    assert!(matches!(err, AuthError::InvalidCredentials), "{err:?}");
    assert_eq!(err.code(), Some("invalid_credentials"));
    assert!(auth.session().is_none() && store.peek().is_none());
    let session = within(10, "sign-in", auth.sign_in_with_password(&email("rana"), PASSWORD)).await.expect("sign in");
    assert_eq!(Some(session.user.id), first.session().map(|s| s.user.id));
    assert_ne!(Some(session.refresh_token), first.session().map(|s| s.refresh_token), "a new session");
}

#[tokio::test]
async fn refresh_rotates_both_tokens_and_announces_it() {
    let ts = TestServer::start().await;
    let (auth, store) = ts.auth().await;
    let before = sign_up(&auth, "sami").await;
    let mut events = auth.events();
    // Issued in another second, so the access token differs too.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let after = within(10, "refresh", auth.refresh()).await.expect("refresh");
    assert_ne!(after.refresh_token, before.refresh_token, "refresh tokens rotate");
    assert_ne!(after.access_token, before.access_token);
    assert!(after.expires_at > before.expires_at);
    assert_eq!(next_event(&mut events, 5, "refresh event").await, AuthEvent::TokenRefreshed);
    assert_eq!(auth.session().as_ref(), Some(&after));
    assert_eq!(stored_session(&store).as_ref(), Some(&after), "the store follows the refresh");
    let (status, body) = ts.raw_refresh(&after.refresh_token).await;
    assert_eq!(status, 200, "the new refresh token is live on the server: {body}");
}

#[tokio::test]
async fn concurrent_refreshes_share_one_request() {
    // With no reuse interval a second request with the same token would be taken for theft
    // and revoke the session: only one request may go out.
    let ts = TestServer::start_with(|c| c.auth.refresh_token_reuse_interval_secs = 0).await;
    let (auth, _store) = ts.auth().await;
    let before = sign_up(&auth, "zaid").await;
    let calls: Vec<_> = (0..8)
        .map(|_| {
            tokio::spawn({
                let auth = auth.clone();
                async move { auth.refresh().await }
            })
        })
        .collect();
    let mut tokens = Vec::new();
    for call in calls {
        let session = within(10, "refresh", call).await.expect("task").expect("every refresh succeeds");
        tokens.push(session.refresh_token);
    }
    tokens.dedup();
    assert_eq!(tokens.len(), 1, "all callers got the same new session");
    assert_ne!(tokens[0], before.refresh_token);
    let again = within(10, "refresh after", auth.refresh()).await.expect("the session was not revoked for reuse");
    assert_ne!(again.refresh_token, tokens[0]);
}

#[tokio::test]
async fn the_session_is_refreshed_ahead_of_expiry_without_being_asked() {
    let ts = TestServer::start_with(|c| c.auth.jwt_expiry_secs = SHORT_LIFE).await;
    let (auth, store) = ts.auth_with(quick()).await;
    let mut sessions = auth.sessions();
    let first = sign_up(&auth, "lina").await;
    let mut events = auth.events();
    sessions.borrow_and_update();
    within(10, "background refresh", sessions.changed()).await.expect("session channel open");
    let now = SystemTime::now();
    let second = sessions.borrow_and_update().clone().expect("still signed in");
    assert_ne!(second.refresh_token, first.refresh_token, "a refreshed session");
    assert!(!first.is_expired(now), "refreshed before the old token expired");
    // The event comes once the store has the new session (the watch is updated first).
    assert_eq!(next_event(&mut events, 5, "refresh event").await, AuthEvent::TokenRefreshed);
    assert_eq!(stored_session(&store).as_ref(), Some(&second));
    // It keeps going: the next one comes before the second token expires too.
    within(10, "second background refresh", sessions.changed()).await.expect("session channel open");
    assert!(!second.is_expired(SystemTime::now()), "refreshed again ahead of expiry");
    let user = within(10, "user", auth.user()).await.expect("the refreshed token works");
    assert_eq!(user.id, first.user.id);
}

#[tokio::test]
async fn a_reused_refresh_token_ends_the_session_with_a_signed_out_event() {
    let ts = TestServer::start_with(|c| c.auth.refresh_token_reuse_interval_secs = 0).await;
    let (auth, store) = ts.auth().await;
    let session = sign_up(&auth, "nour").await;
    let mut events = auth.events();
    // Someone else uses the token first (a copied store, a stolen token).
    let (status, _) = ts.raw_refresh(&session.refresh_token).await;
    assert_eq!(status, 200);
    let err = within(10, "refresh", auth.refresh()).await.expect_err("the token was used");
    assert!(matches!(&err, AuthError::SessionEnded { code, .. } if code == "refresh_token_already_used"), "{err:?}");
    assert!(!err.is_transient(), "never retried");
    assert_eq!(
        next_event(&mut events, 5, "signed-out event").await,
        AuthEvent::SignedOut { reason: SignOutReason::SessionEnded { code: "refresh_token_already_used".into() } }
    );
    assert!(auth.session().is_none());
    assert!(store.peek().is_none(), "the dead session is removed from the store");
    assert!(matches!(auth.user().await, Err(AuthError::NotSignedIn)));
}

#[tokio::test]
async fn a_background_refresh_the_server_refuses_signs_out() {
    let ts = TestServer::start_with(|c| {
        c.auth.jwt_expiry_secs = SHORT_LIFE;
        c.auth.refresh_token_reuse_interval_secs = 0;
    })
    .await;
    let (auth, store) = ts.auth_with(quick()).await;
    let session = sign_up(&auth, "yara").await;
    let mut events = auth.events();
    ts.raw_refresh(&session.refresh_token).await;
    let event = next_event(&mut events, 10, "signed-out event").await;
    assert_eq!(
        event,
        AuthEvent::SignedOut { reason: SignOutReason::SessionEnded { code: "refresh_token_already_used".into() } }
    );
    assert!(auth.session().is_none() && store.peek().is_none());
}

#[tokio::test]
async fn sign_out_revokes_the_session_on_the_server_and_clears_the_store() {
    let ts = TestServer::start().await;
    let (auth, store) = ts.auth().await;
    let session = sign_up(&auth, "karim").await;
    let mut events = auth.events();
    within(10, "sign-out", auth.sign_out()).await.expect("sign out");
    assert_eq!(
        next_event(&mut events, 5, "signed-out event").await,
        AuthEvent::SignedOut { reason: SignOutReason::Requested }
    );
    assert!(auth.session().is_none() && store.peek().is_none());
    let (status, body) = ts.raw_refresh(&session.refresh_token).await;
    assert_eq!((status, &body["code"]), (400, &json!("session_not_found")), "revoked on the server: {body}");
    assert!(matches!(auth.user().await, Err(AuthError::NotSignedIn)));
    within(10, "second sign-out", auth.sign_out()).await.expect("signing out twice is fine");
}

#[tokio::test]
async fn sign_out_succeeds_locally_when_the_server_already_ended_the_session() {
    let ts = TestServer::start().await;
    let (here, store) = ts.auth().await;
    sign_up(&here, "maya").await;
    let (elsewhere, _) = ts.auth().await;
    elsewhere.sign_in_with_password(&email("maya"), PASSWORD).await.expect("second device");
    within(10, "global sign-out elsewhere", elsewhere.sign_out()).await.expect("ends every session");
    // The server answers 403 session_not_found now; signing out here is still a success.
    within(10, "sign-out", here.sign_out()).await.expect("already gone is not an error");
    assert!(here.session().is_none() && store.peek().is_none());
}

#[tokio::test]
async fn user_on_a_session_ended_elsewhere_signs_out() {
    let ts = TestServer::start().await;
    let (here, _store) = ts.auth().await;
    sign_up(&here, "hadi").await;
    let (elsewhere, _) = ts.auth().await;
    elsewhere.sign_in_with_password(&email("hadi"), PASSWORD).await.expect("second device");
    elsewhere.sign_out().await.expect("global sign-out");
    let mut events = here.events();
    let err = within(10, "user", here.user()).await.expect_err("session gone");
    assert!(matches!(&err, AuthError::SessionEnded { code, .. } if code == "session_not_found"), "{err:?}");
    assert!(matches!(next_event(&mut events, 5, "signed out").await, AuthEvent::SignedOut { .. }));
    assert!(here.session().is_none());
}

#[tokio::test]
async fn a_saved_session_is_restored_from_a_file_store_at_start() {
    let ts = TestServer::start().await;
    let path = ts.dir.path().join("client").join("session.json");
    let first = ts.auth_on(Arc::new(FileStore::new(&path)), AuthOptions::default()).await;
    let session = sign_up(&first, "sara").await;
    drop(first);

    let second = ts.auth_on(Arc::new(FileStore::new(&path)), AuthOptions::default()).await;
    assert_eq!(second.session().as_ref(), Some(&session), "restored as saved (not due, so not refreshed)");
    let user = within(10, "user", second.user()).await.expect("the restored token works");
    assert_eq!(user.id, session.user.id);
    second.sign_out().await.expect("sign out");
    assert!(!path.exists(), "sign-out removes the saved session");
}

/// Puts `session` in a new store as if saved long ago: its access token expired.
fn expired_copy_in_store(session: &Session) -> Arc<MemoryStore> {
    let mut old = session.clone();
    old.expires_at = chrono::Utc::now().timestamp() - 60;
    let store = Arc::new(MemoryStore::new());
    store.save(&serde_json::to_string(&old).expect("serialise")).expect("save");
    store
}

#[tokio::test]
async fn a_restored_session_that_is_due_is_refreshed_at_start() {
    let ts = TestServer::start().await;
    let (first, _) = ts.auth().await;
    let session = sign_up(&first, "tala").await;
    let store = expired_copy_in_store(&session);
    let second = ts.auth_on(Arc::clone(&store) as Arc<dyn SecretStore>, AuthOptions::default()).await;
    let restored = second.session().expect("signed in");
    assert_ne!(restored.refresh_token, session.refresh_token, "refreshed at start");
    assert!(!restored.is_expired(SystemTime::now()));
    assert_eq!(stored_session(&store).as_ref(), Some(&restored));
}

#[tokio::test]
async fn a_restored_session_the_server_refuses_is_discarded_at_start() {
    let ts = TestServer::start().await;
    let (first, _) = ts.auth().await;
    let session = sign_up(&first, "rami").await;
    let store = expired_copy_in_store(&session);
    first.sign_out().await.expect("sign out revokes it");
    let second = ts.auth_on(Arc::clone(&store) as Arc<dyn SecretStore>, AuthOptions::default()).await;
    assert!(second.session().is_none(), "the server ended it");
    assert!(store.peek().is_none(), "and it is gone from the store");
}

#[tokio::test]
async fn an_unreadable_stored_session_is_discarded_at_start() {
    let ts = TestServer::start().await;
    let store = Arc::new(MemoryStore::new());
    store.save("{not json").expect("save");
    let auth = ts.auth_on(Arc::clone(&store) as Arc<dyn SecretStore>, AuthOptions::default()).await;
    assert!(auth.session().is_none());
    assert!(store.peek().is_none());
}

#[tokio::test]
async fn a_restart_on_the_same_data_dir_keeps_the_session_and_the_client_continues() {
    let mut ts = TestServer::start().await;
    let (auth, _store) = ts.auth().await;
    let session = sign_up(&auth, "fadi").await;
    let rest = Rest::with_auth(&auth);
    let room = uuid::Uuid::now_v7();
    let room_row = json!({"id": room, "name": "restart", "kind": "channel", "created_by": session.user.id});
    rest.from("chat_rooms").insert(&room_row).execute::<()>().await.expect("insert before");

    ts.stop().await;
    let err = within(15, "refresh while down", auth.refresh()).await.expect_err("server down");
    assert!(err.is_transient(), "an outage is transient: {err:?}");
    assert_eq!(auth.session().as_ref(), Some(&session), "an outage never drops the session");
    let err = within(15, "select while down", rest.from("chat_rooms").select("*").execute::<Value>())
        .await
        .expect_err("server down");
    assert!(err.is_transient(), "{err:?}");

    ts.resume().await;
    let user = within(10, "user after restart", auth.user()).await.expect("the old access token still works");
    assert_eq!(user.id, session.user.id);
    let rooms: Vec<Value> =
        within(10, "select after restart", rest.from("chat_rooms").select("id").eq("id", room).execute())
            .await
            .expect("REST continues");
    assert_eq!(rooms, vec![json!({"id": room})], "the data survived");
    let refreshed = within(10, "refresh after restart", auth.refresh()).await.expect("the refresh token survived");
    assert_ne!(refreshed.refresh_token, session.refresh_token);
}

#[tokio::test]
async fn an_outage_during_a_background_refresh_keeps_the_session_and_retries_until_back() {
    let mut ts = TestServer::start_with(|c| c.auth.jwt_expiry_secs = SHORT_LIFE).await;
    let (auth, _store) = ts.auth_with(quick()).await;
    let session = sign_up(&auth, "ward").await;
    let mut events = auth.events();
    ts.stop().await;
    // Past the access token's expiry: the task has failed several times by now.
    tokio::time::sleep(Duration::from_secs(SHORT_LIFE as u64 + 1)).await;
    assert_eq!(auth.session().as_ref(), Some(&session), "failed refreshes keep the session");
    ts.resume().await;
    assert_eq!(next_event(&mut events, 10, "refresh after the outage").await, AuthEvent::TokenRefreshed);
    let fresh = auth.session().expect("signed in");
    assert!(!fresh.is_expired(SystemTime::now()));
    within(10, "user", auth.user()).await.expect("the new token works");
}

#[tokio::test]
async fn sign_out_while_the_server_is_down_still_signs_out_here() {
    let mut ts = TestServer::start().await;
    let (auth, store) = ts.auth().await;
    sign_up(&auth, "jana").await;
    ts.stop().await;
    let err = within(15, "sign-out while down", auth.sign_out()).await.expect_err("the server was not told");
    assert!(err.is_transient(), "{err:?}");
    assert!(auth.session().is_none() && store.peek().is_none(), "the local session is gone all the same");
}

#[tokio::test]
async fn dropping_the_last_handle_stops_the_background_refresh() {
    let ts = TestServer::start_with(|c| {
        c.auth.jwt_expiry_secs = SHORT_LIFE;
        c.auth.refresh_token_reuse_interval_secs = 0;
    })
    .await;
    let (auth, _store) = ts.auth_with(quick()).await;
    let session = sign_up(&auth, "adam").await;
    drop(auth);
    // Past the time the task would have refreshed (half the token's life).
    tokio::time::sleep(Duration::from_secs(SHORT_LIFE as u64 / 2 + 1)).await;
    let (status, body) = ts.raw_refresh(&session.refresh_token).await;
    assert_eq!(status, 200, "nobody used the refresh token after the handle was dropped: {body}");
}
