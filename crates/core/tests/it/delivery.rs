//! The outbound queue against the real backend: outages, restarts, permanent refusals.

use std::time::Duration;

use ruwad_core::model::SendState;
use ruwad_core::queue::sender::SenderOptions;
use ruwad_core::queue::ClaimLimits;
use ruwad_core::ConnectionState;
use uuid::Uuid;

use crate::common::{engine_at, eventually, fast_sender, Backend, User};

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_send_survives_an_app_restart_and_is_delivered_once_in_order() {
    let mut backend = Backend::start().await;
    let dir = tempfile::tempdir().expect("dir");
    let user = User::sign_up_at(&backend, "layla", dir.path()).await;
    let room = user.create_room(&backend, "general", &[]).await;
    user.engine.sync_now().await.expect("first sync");

    backend.stop().await;
    let mut sent = Vec::new();
    for i in 0..20 {
        sent.push(user.engine.send_message(room, &format!("offline {i}")).await.expect("queued while offline"));
    }
    let page = user.engine.messages(room, 50).await.expect("cache");
    assert_eq!(page.messages.len(), 20);
    assert!(page.messages.iter().all(|m| m.state == SendState::Pending && m.created_at.is_none()));
    let state = eventually(WAIT, "the engine notices the outage", || async {
        let s = user.engine.connection();
        matches!(s, ConnectionState::Connecting { .. }).then_some(s)
    })
    .await;
    assert!(
        matches!(state, ConnectionState::Connecting { attempt, retry_in_ms } if attempt >= 1 && retry_in_ms > 0),
        "the status says when the next attempt is: {state:?}"
    );
    // The app quits while offline.
    user.engine.shutdown().await;
    drop(user);

    // A new process state on the same data dir: the session and the queue come back.
    let engine = engine_at(&backend.url, &backend.anon_key, dir.path(), fast_sender()).await;
    let page = engine.messages(room, 50).await.expect("cache after restart");
    assert_eq!(page.messages.iter().map(|m| m.id).collect::<Vec<_>>(), sent, "the local echoes survived, in order");
    assert_eq!(engine.queue_counts().await.expect("counts").queued, 20);

    backend.resume().await;
    engine.network_back();
    let on_server = eventually(WAIT, "all 20 on the server", || async {
        let m = backend.messages(room).await;
        (m.len() >= 20).then_some(m)
    })
    .await;
    assert_eq!(on_server.len(), 20, "delivered exactly once");
    assert_eq!(on_server.iter().map(|m| m.id).collect::<Vec<_>>(), sent, "in the order they were written");
    assert!(on_server.iter().enumerate().all(|(i, m)| m.content == format!("offline {i}")));
    eventually(WAIT, "local echoes become sent", || async {
        let page = engine.messages(room, 50).await.ok()?;
        page.messages.iter().all(|m| m.state == SendState::Sent && m.created_at.is_some()).then_some(())
    })
    .await;
    assert_eq!(engine.queue_counts().await.expect("counts").queued, 0);
    assert_eq!(engine.connection(), ConnectionState::Online);
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restart_while_draining_loses_and_duplicates_nothing() {
    let mut backend = Backend::start().await;
    let dir = tempfile::tempdir().expect("dir");
    let user = User::sign_up_at(&backend, "omar", dir.path()).await;
    let room = user.create_room(&backend, "busy", &[]).await;
    user.engine.shutdown().await;
    // Small batches so the drain takes many requests and the restart lands in the middle.
    let slow = SenderOptions { limits: ClaimLimits { streams: 8, rows: 2, bytes: 1 << 20 }, ..fast_sender() };
    let engine = engine_at(&backend.url, &backend.anon_key, dir.path(), slow).await;
    backend.stop().await;
    const N: usize = 400;
    let mut sent = Vec::with_capacity(N);
    for i in 0..N {
        sent.push(engine.send_message(room, &format!("m{i}")).await.expect("queue"));
    }
    backend.resume().await;
    engine.network_back();
    let seen = eventually(WAIT, "the drain is under way", || async {
        backend.message_count(room).await.filter(|n| *n >= 20).map(|n| n as usize)
    })
    .await;
    backend.stop().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    backend.resume().await;
    let on_server = eventually(WAIT, "everything delivered after the restart", || async {
        let m = backend.messages(room).await;
        (m.len() >= N).then_some(m)
    })
    .await;
    assert!(seen < N, "the restart happened mid-drain ({seen} of {N} delivered before it)");
    assert_eq!(on_server.len(), N, "no duplicates");
    assert_eq!(on_server.iter().map(|m| m.id).collect::<Vec<_>>(), sent, "in order");
    eventually(WAIT, "the queue empties", || async { (engine.queue_counts().await.ok()?.queued == 0).then_some(()) })
        .await;
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_refusal_wedges_only_that_entry_and_can_be_retried_or_discarded() {
    let backend = Backend::start().await;
    let user = User::sign_up(&backend, "sara").await;
    let kicked = user.create_room(&backend, "kicked from", &[]).await;
    let fine = user.create_room(&backend, "still here", &[]).await;
    user.engine.sync_now().await.expect("sync");
    // Removed from the room behind the app's back: the cache still thinks she is a member.
    backend.remove_member(kicked, user.id).await;

    let refused = user.engine.send_message(kicked, "into the void").await.expect("queued");
    let behind = user.engine.send_message(kicked, "waits behind it").await.expect("queued");
    let delivered = user.engine.send_message(fine, "goes through").await.expect("queued");

    eventually(WAIT, "the other room drains", || async {
        backend.messages(fine).await.iter().any(|m| m.id == delivered).then_some(())
    })
    .await;
    let outbox = eventually(WAIT, "the refused entry is marked failed", || async {
        let o = user.engine.outbox().await.ok()?;
        o.iter().any(|e| e.failed).then_some(o)
    })
    .await;
    assert_eq!(outbox.len(), 2, "the failed entry and the one behind it are kept: {outbox:?}");
    let failed = &outbox[0];
    assert_eq!(failed.target, refused.to_string());
    let error = failed.error.as_ref().expect("reason kept");
    assert_eq!(error.code.as_deref(), Some("42501"), "row-level security refused it: {error:?}");
    assert!(!outbox[1].failed, "the next one is not tried: it waits behind the failed one");
    let m = user.engine.message(refused).await.expect("read").expect("echo kept");
    assert_eq!(m.state, SendState::Failed);
    assert_eq!(user.engine.message(behind).await.expect("read").expect("echo").state, SendState::Pending);
    assert!(backend.messages(kicked).await.is_empty(), "nothing reached the room");

    // Back in the room, a retry delivers both, in order.
    backend.add_member(kicked, user.id).await;
    user.engine.retry(failed.seq).await.expect("retry");
    let on_server = eventually(WAIT, "both delivered after the retry", || async {
        let m = backend.messages(kicked).await;
        (m.len() == 2).then_some(m)
    })
    .await;
    assert_eq!(on_server.iter().map(|m| m.id).collect::<Vec<_>>(), vec![refused, behind]);

    // Refused again, then discarded: the echo goes, nothing is sent.
    backend.remove_member(kicked, user.id).await;
    let doomed = user.engine.send_message(kicked, "discard me").await.expect("queued");
    let seq = eventually(WAIT, "refused", || async {
        user.engine.outbox().await.ok()?.into_iter().find(|e| e.failed).map(|e| e.seq)
    })
    .await;
    user.engine.discard(seq).await.expect("discard");
    assert!(user.engine.message(doomed).await.expect("read").is_none(), "the local echo is rolled back");
    let counts = user.engine.queue_counts().await.expect("counts");
    assert_eq!((counts.queued, counts.failed), (0, 0));
    user.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_deletes_and_reactions_on_unsent_messages_fold_before_they_reach_the_server() {
    let mut backend = Backend::start().await;
    let user = User::sign_up(&backend, "fold").await;
    let room = user.create_room(&backend, "drafts", &[]).await;
    user.engine.sync_now().await.expect("sync");
    // The OS reports the network gone: nothing is attempted, so nothing is claimed and every
    // change below still folds.
    user.engine.network_down();
    backend.stop().await;

    let edited = user.engine.send_message(room, "tpyo").await.expect("send");
    user.engine.edit_message(edited, "typo").await.expect("edit unsent");
    user.engine.edit_message(edited, "typo fixed").await.expect("edit unsent again");
    let gone = user.engine.send_message(room, "never mind").await.expect("send");
    user.engine.react(gone, "👀").await.expect("react to unsent");
    user.engine.delete_message(gone).await.expect("delete unsent");
    let liked = user.engine.send_message(room, "like me").await.expect("send");
    user.engine.react(liked, "👍").await.expect("react to unsent");
    user.engine.react(liked, "🎉").await.expect("react");
    user.engine.unreact(liked, "🎉").await.expect("unreact before sending");

    let outbox = user.engine.outbox().await.expect("outbox");
    assert_eq!(
        outbox.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(),
        vec!["send_message", "send_message", "react"],
        "two inserts and one reaction left after folding"
    );

    backend.resume().await;
    user.engine.network_back();
    eventually(WAIT, "the queue drains", || async {
        let c = user.engine.queue_counts().await.ok()?;
        (c.queued == 0 && c.failed == 0).then_some(())
    })
    .await;
    let on_server = backend.messages(room).await;
    assert_eq!(
        on_server.iter().map(|m| m.id).collect::<Vec<_>>(),
        vec![edited, liked],
        "the deleted one never existed"
    );
    assert_eq!(on_server[0].content, "typo fixed");
    assert_eq!(on_server[0].edited_at, None, "the server saw one insert with the final text, not an edit");
    #[derive(serde::Deserialize, Debug)]
    struct R {
        message_id: Uuid,
        emoji: String,
    }
    let reactions: Vec<R> =
        backend.admin().from("message_reactions").select("message_id,emoji").execute().await.expect("reactions");
    assert_eq!(reactions.len(), 1, "{reactions:?}");
    assert_eq!((reactions[0].message_id, reactions[0].emoji.as_str()), (liked, "👍"));
    let m = user.engine.message(liked).await.expect("read").expect("cached");
    assert!(m.reactions.iter().all(|r| !r.pending), "reaction confirmed");

    // Edit and delete of sent messages go as updates.
    user.engine.edit_message(edited, "final").await.expect("edit sent");
    user.engine.delete_message(liked).await.expect("delete sent");
    let on_server = eventually(WAIT, "edit and delete applied", || async {
        let m = backend.messages(room).await;
        (m[0].content == "final" && m[1].deleted_at.is_some()).then_some(m)
    })
    .await;
    assert!(on_server[0].edited_at.is_some());
    assert_eq!(on_server[1].content, "", "a deleted message keeps no text on the server");
    user.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_access_token_is_refreshed_once_and_sending_goes_on() {
    let backend = Backend::start().await;
    let dir = tempfile::tempdir().expect("dir");
    let user = User::sign_up_at(&backend, "stale", dir.path()).await;
    let room = user.create_room(&backend, "tokens", &[]).await;
    user.engine.sync_now().await.expect("sync");
    user.engine.shutdown().await;
    drop(user);
    // The stored access token no longer verifies (as after a revocation or a key rotation),
    // while the app still believes it valid for an hour.
    let path = dir.path().join("session.json");
    let mut session: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("session file")).expect("json");
    let token = session["access_token"].as_str().expect("token").to_string();
    let (signed, signature) = token.rsplit_once('.').expect("a JWT");
    let flipped = if signature.starts_with('A') { "B" } else { "A" };
    let bad = format!("{signed}.{flipped}{}", &signature[1..]);
    session["access_token"] = serde_json::Value::String(bad.clone());
    std::fs::write(&path, session.to_string()).expect("write session");
    let project = ruwad_supabase::Project::new(&backend.url, &backend.anon_key).expect("project");
    let refused = ruwad_supabase::rest::Rest::with_bearer(project, bad.clone())
        .from("chat_messages")
        .select("id")
        .execute::<serde_json::Value>()
        .await
        .expect_err("the server refuses the tampered token");
    assert_eq!(refused.retry(), ruwad_supabase::error::Retry::Unauthorized, "{refused}");

    let engine = engine_at(&backend.url, &backend.anon_key, dir.path(), fast_sender()).await;
    let id = engine.send_message(room, "sent after a refresh").await.expect("queue");
    eventually(WAIT, "delivered with a refreshed token", || async {
        backend.messages(room).await.iter().any(|m| m.id == id).then_some(())
    })
    .await;
    let stored: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("session file")).expect("json");
    assert_ne!(stored["access_token"].as_str(), Some(bad.as_str()), "the refreshed session was saved");
    assert_eq!(engine.queue_counts().await.expect("counts").failed, 0, "a refused token never fails an entry");
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_out_keeps_unsent_messages_for_the_next_sign_in_and_accounts_never_mix() {
    let mut backend = Backend::start().await;
    let dir = tempfile::tempdir().expect("dir");
    let first = User::sign_up_at(&backend, "first", dir.path()).await;
    let room = first.create_room(&backend, "mine", &[]).await;
    first.engine.sync_now().await.expect("sync");
    let other_dir = tempfile::tempdir().expect("dir");
    let second = User::sign_up_at(&backend, "second", other_dir.path()).await;
    second.engine.shutdown().await;

    backend.stop().await;
    let unsent = first.engine.send_message(room, "typed before signing out").await.expect("queue");
    first.engine.sign_out().await.expect("signing out works offline");
    assert_eq!(first.engine.user_id(), None);
    assert!(matches!(first.engine.rooms().await, Err(e) if e.code() == ruwad_core::ErrorCode::NotSignedIn));
    backend.resume().await;

    // Someone else signs in on the same app: their cache and queue are their own.
    let second_id = first.engine.sign_in(&second.email, crate::common::PASSWORD).await.expect("second signs in");
    assert_eq!(second_id, second.id);
    assert!(first.engine.message(unsent).await.expect("read").is_none(), "the first user's echo is not in this cache");
    assert_eq!(first.engine.queue_counts().await.expect("counts").queued, 0);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(backend.messages(room).await.is_empty(), "nothing is sent on the first user's behalf");

    // The first user again: the message is still there and goes out.
    first.engine.sign_in(&first.email, crate::common::PASSWORD).await.expect("first signs in again");
    let m = first.engine.message(unsent).await.expect("read").expect("kept across sign-out");
    assert_eq!(m.state, SendState::Pending);
    eventually(WAIT, "delivered after signing in again", || async {
        backend.messages(room).await.iter().any(|m| m.id == unsent).then_some(())
    })
    .await;
    first.engine.shutdown().await;
}
