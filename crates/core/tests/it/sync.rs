//! Catch-up through REST: what another user did while this app was away, history pages, unread
//! counts, coalesced events.

use std::time::Duration;

use ruwad_core::model::SendState;
use ruwad_core::store::cache::Anchor;
use ruwad_core::Event;
use serde_json::json;
use uuid::Uuid;

use crate::common::{eventually, Backend, User};

const WAIT: Duration = Duration::from_secs(30);

async fn drained(user: &User) {
    eventually(WAIT, "the user's queue drains", || async {
        let c = user.engine.queue_counts().await.ok()?;
        (c.queued == 0 && c.failed == 0).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catch_up_brings_messages_edits_deletes_and_reactions_made_while_away() {
    let backend = Backend::start().await;
    let a = User::sign_up(&backend, "away").await;
    let b = User::sign_up(&backend, "busy").await;
    let room = a.create_room(&backend, "pair", &[b.id]).await;
    a.engine.sync_now().await.expect("a sync");
    b.engine.sync_now().await.expect("b sync");

    let a0 = a.engine.send_message(room, "a0").await.expect("send");
    let a1 = a.engine.send_message(room, "a1").await.expect("send");
    drained(&a).await;
    b.engine.sync_now().await.expect("b sees a's messages");
    b.engine.react(a0, "👍").await.expect("react");
    let b_old = b.engine.send_message(room, "b-old").await.expect("send");
    drained(&b).await;
    a.engine.sync_now().await.expect("a sync");
    let m = a.engine.message(a0).await.expect("read").expect("cached");
    assert_eq!(m.reactions.iter().map(|r| r.emoji.as_str()).collect::<Vec<_>>(), vec!["👍"]);

    // A is away (no network); B carries on.
    a.engine.network_down();
    let b0 = b.engine.send_message(room, "b0").await.expect("send");
    let b1 = b.engine.send_message(room, "b1").await.expect("send");
    let b2 = b.engine.send_message(room, "b2").await.expect("send");
    drained(&b).await;
    b.engine.edit_message(b_old, "b-old, edited").await.expect("edit");
    b.engine.delete_message(b1).await.expect("delete");
    b.engine.unreact(a0, "👍").await.expect("unreact");
    b.engine.react(a1, "🎉").await.expect("react");
    drained(&b).await;

    // Back: one catch-up.
    a.engine.network_back();
    a.engine.sync_now().await.expect("catch up");
    let page = a.engine.messages(room, 50).await.expect("page");
    let ids: Vec<Uuid> = page.messages.iter().map(|m| m.id).collect();
    assert_eq!(ids, vec![a0, a1, b_old, b0, b1, b2], "every message, once, in server order");
    let by_id = |id: Uuid| page.messages.iter().find(|m| m.id == id).expect("present").clone();
    assert_eq!(by_id(b_old).content, "b-old, edited");
    assert!(by_id(b_old).edited_at.is_some());
    assert!(by_id(b1).deleted_at.is_some() && by_id(b1).content.is_empty(), "the delete arrived");
    assert!(by_id(a0).reactions.is_empty(), "the removed reaction is gone");
    assert_eq!(
        by_id(a1).reactions.iter().map(|r| (r.emoji.as_str(), r.user_id)).collect::<Vec<_>>(),
        vec![("🎉", b.id)]
    );
    assert!(page.messages.iter().all(|m| m.state == SendState::Sent));

    // Unread: B's messages after A's read marker (none yet), not deleted.
    let rooms = a.engine.rooms().await.expect("rooms");
    let r = rooms.iter().find(|r| r.id == room).expect("room listed");
    assert_eq!((r.member, r.unread), (true, 3), "b-old, b0, b2");
    a.engine.mark_read(room).await.expect("mark read");
    let rooms = a.engine.rooms().await.expect("rooms");
    assert_eq!(rooms.iter().find(|r| r.id == room).expect("room").unread, 0, "the local read marker applies at once");
    drained(&a).await;
    #[derive(serde::Deserialize)]
    struct Member {
        last_read_at: Option<String>,
    }
    let marker: Vec<Member> = backend
        .admin()
        .from("room_members")
        .select("last_read_at")
        .eq("room_id", room)
        .eq("user_id", a.id)
        .execute()
        .await
        .expect("member row");
    assert_eq!(marker[0].last_read_at.as_deref(), page.messages.last().and_then(|m| m.created_at.as_deref()));
    a.engine.shutdown().await;
    b.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_pages_come_from_the_cache_first_then_fill_gaps_from_the_server() {
    let backend = Backend::start().await;
    let a = User::sign_up_rest_only(&backend, "reader").await;
    let room = a.create_room(&backend, "long", &[]).await;
    let rows: Vec<_> = (0..120)
        .map(|i| json!({"id": Uuid::now_v7(), "room_id": room, "user_id": a.id, "content": format!("h{i:03}")}))
        .collect();
    backend.admin().from("chat_messages").insert(&rows).execute::<()>().await.expect("history on the server");
    a.engine.sync_now().await.expect("first sync: the newest page only");
    let first = a.engine.history(room, None, 50).await.expect("page 1");
    assert_eq!(first.messages.len(), 50);
    assert!(!first.complete);
    assert_eq!(first.messages[0].content, "h070");
    let anchor = |m: &ruwad_core::model::Message| Anchor { created_at: m.created_at.clone().expect("sent"), id: m.id };
    let second = a.engine.history(room, Some(anchor(&first.messages[0])), 50).await.expect("page 2 from the server");
    assert_eq!(second.messages.len(), 50);
    assert_eq!(second.messages[0].content, "h020");
    let third = a.engine.history(room, Some(anchor(&second.messages[0])), 50).await.expect("page 3");
    assert_eq!(third.messages.len(), 20);
    assert!(third.complete, "the server had no more");
    // All of it is cached now: pages come back offline.
    a.engine.network_down();
    let again = a.engine.history(room, Some(anchor(&first.messages[0])), 50).await.expect("cached page");
    assert_eq!(again.messages, second.messages);
    let all: Vec<String> =
        third.messages.iter().chain(&second.messages).chain(&first.messages).map(|m| m.content.clone()).collect();
    assert_eq!(all, (0..120).map(|i| format!("h{i:03}")).collect::<Vec<_>>());
    a.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_catch_up_of_a_thousand_messages_is_a_handful_of_events_not_a_thousand() {
    let backend = Backend::start().await;
    let a = User::sign_up_rest_only(&backend, "watcher").await;
    let b = User::sign_up(&backend, "chatty").await;
    let room = a.create_room(&backend, "burst", &[b.id]).await;
    a.engine.sync_now().await.expect("sync");
    let rows: Vec<_> = (0..1000)
        .map(|i| json!({"id": Uuid::now_v7(), "room_id": room, "user_id": b.id, "content": format!("{i}")}))
        .collect();
    backend.admin().from("chat_messages").insert(&rows).execute::<()>().await.expect("burst");
    let mut events = a.engine.events();
    a.engine.sync_now().await.expect("catch up");
    let mut message_events = 0;
    let mut ids = 0;
    while let Ok(Ok(e)) = tokio::time::timeout(Duration::from_millis(300), events.recv()).await {
        if let Event::Messages { room_id, ids: got } = e {
            assert_eq!(room_id, room);
            message_events += 1;
            ids += got.len();
        }
    }
    assert_eq!(ids, 1000, "every new message is announced");
    assert!(message_events <= 5, "coalesced: {message_events} message events for 1,000 rows");
    let rooms = a.engine.rooms().await.expect("rooms");
    assert_eq!(rooms.iter().find(|r| r.id == room).expect("room").unread, 1000);
    a.engine.shutdown().await;
    b.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn challenges_and_my_submissions_sync_and_submissions_are_queued_like_messages() {
    let backend = Backend::start().await;
    let host = User::sign_up(&backend, "host").await;
    let entrant = User::sign_up(&backend, "entrant").await;
    let challenge = Uuid::now_v7();
    host.rest(&backend)
        .await
        .from("challenges")
        .insert(json!({"id": challenge, "title": "Clean water", "description": "ideas", "status": "open", "created_by": host.id}))
        .execute::<()>()
        .await
        .expect("challenge");
    entrant.engine.sync_now().await.expect("sync");
    let list = entrant.engine.challenges().await.expect("challenges");
    assert_eq!(list.iter().map(|c| c.id).collect::<Vec<_>>(), vec![challenge]);
    let sub = entrant.engine.create_submission(challenge, "Filters", "cheap sand filters").await.expect("submit");
    assert_eq!(entrant.engine.submissions(challenge).await.expect("subs")[0].state, SendState::Pending);
    drained(&entrant).await;
    let mine = entrant.engine.submissions(challenge).await.expect("subs");
    assert_eq!((mine[0].id, mine[0].state), (sub, SendState::Sent));
    assert!(mine[0].created_at.is_some());
    // The host accepts it; the entrant's catch-up sees the status change.
    host.rest(&backend)
        .await
        .from("challenge_submissions")
        .update(json!({"status": "accepted"}))
        .eq("id", sub)
        .execute::<()>()
        .await
        .expect("accept");
    entrant.engine.sync_now().await.expect("catch up");
    assert_eq!(entrant.engine.submissions(challenge).await.expect("subs")[0].status, "accepted");
    entrant.engine.record_activity("viewed_challenge", Some(challenge)).await.expect("activity");
    drained(&entrant).await;
    entrant.engine.sync_now().await.expect("catch up the activity feed");
    let feed = entrant.engine.recent_activity(10).await.expect("feed");
    assert_eq!(
        (feed[0].kind.as_str(), feed[0].ref_id, feed[0].user_id),
        ("viewed_challenge", Some(challenge), entrant.id)
    );
    let series =
        entrant.engine.activity_series(Duration::from_secs(3600), Duration::from_secs(300)).await.expect("series");
    assert_eq!(series.iter().map(|p| p.events).sum::<u32>(), 1);
    assert_eq!(series.last().map(|p| p.users), Some(1));
    let metrics = entrant.engine.live_metrics().await.expect("metrics");
    assert_eq!((metrics.total_challenges, metrics.new_submissions, metrics.active_users), (1, 1, 1));
    assert_eq!(entrant.engine.cached_metrics().await.expect("cached"), Some(metrics));
    host.engine.shutdown().await;
    entrant.engine.shutdown().await;
}

/// The notices of the events that arrive within a short while.
async fn notices_after(events: &mut tokio::sync::broadcast::Receiver<Event>) -> Vec<ruwad_core::notify::Notice> {
    let mut out = Vec::new();
    while let Ok(Ok(e)) = tokio::time::timeout(Duration::from_millis(200), events.recv()).await {
        if let Event::Notify { notices } = e {
            out.extend(notices);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_for_new_challenges_status_changes_submissions_and_decisions_honour_mutes() {
    use ruwad_core::notify::NoticeKind;
    let backend = Backend::start().await;
    let host = User::sign_up_rest_only(&backend, "host").await;
    let hrest = host.rest(&backend).await;
    let create = |title: &'static str| {
        let hrest = hrest.clone();
        let host_id = host.id;
        async move {
            let id = Uuid::now_v7();
            hrest
                .from("challenges")
                .insert(json!({"id": id, "title": title, "description": "", "status": "open", "created_by": host_id}))
                .execute::<()>()
                .await
                .expect("challenge");
            id
        }
    };
    let c1 = create("Clean water").await;
    // The entrant signs in after c1 exists, so c1 is part of their first load (a challenge
    // created while they are signed in is news, whenever their first catch-up ran).
    let entrant = User::sign_up_rest_only(&backend, "entrant").await;
    let mut e_events = entrant.engine.events();
    let mut h_events = host.engine.events();
    entrant.engine.sync_now().await.expect("first load");
    host.engine.sync_now().await.expect("first load");
    assert!(notices_after(&mut e_events).await.is_empty(), "what exists at the first load is not news");
    assert!(notices_after(&mut h_events).await.is_empty());

    let c2 = create("Solar schools").await;
    entrant.engine.sync_now().await.expect("catch up");
    let n = notices_after(&mut e_events).await;
    assert_eq!(n.len(), 1, "{n:?}");
    assert_eq!(
        (n[0].kind, n[0].challenge_id, n[0].title.as_str()),
        (NoticeKind::NewChallenge, Some(c2), "Solar schools")
    );

    // Three submissions to the host's challenge: one grouped notice for the host.
    let mut subs = Vec::new();
    for i in 0..3 {
        subs.push(entrant.engine.create_submission(c1, &format!("idea {i}"), "…").await.expect("submit"));
    }
    drained(&entrant).await;
    host.engine.sync_now().await.expect("host catch up");
    let n = notices_after(&mut h_events).await;
    assert_eq!(n.len(), 1, "grouped: {n:?}");
    assert_eq!((n[0].kind, n[0].challenge_id, n[0].count), (NoticeKind::NewSubmission, Some(c1), 3));

    // Decisions reach the submitter, unless the challenge is muted.
    entrant.engine.mute_challenge(c1, true).await.expect("mute");
    hrest
        .from("challenge_submissions")
        .update(json!({"status": "accepted"}))
        .eq("id", subs[0])
        .execute::<()>()
        .await
        .expect("accept");
    entrant.engine.sync_now().await.expect("catch up");
    assert!(notices_after(&mut e_events).await.is_empty(), "muted");
    entrant.engine.mute_challenge(c1, false).await.expect("unmute");
    hrest
        .from("challenge_submissions")
        .update(json!({"status": "rejected"}))
        .eq("id", subs[1])
        .execute::<()>()
        .await
        .expect("reject");
    hrest.from("challenges").update(json!({"status": "judging"})).eq("id", c2).execute::<()>().await.expect("judge");
    entrant.engine.sync_now().await.expect("catch up");
    let mut n = notices_after(&mut e_events).await;
    n.sort_by_key(|n| n.kind);
    assert_eq!(n.len(), 2, "{n:?}");
    assert_eq!((n[0].kind, n[0].status.as_deref()), (NoticeKind::ChallengeStatus, Some("judging")));
    assert_eq!(
        (n[1].kind, n[1].status.as_deref(), n[1].title.as_str()),
        (NoticeKind::SubmissionDecision, Some("rejected"), "idea 1")
    );
    host.engine.shutdown().await;
    entrant.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_realtime_delivery_updates_the_cache_but_never_moves_the_cursor_past_what_was_missed() {
    use ruwad_core::sync::{RemoteChange, RemoteKind};
    let backend = Backend::start().await;
    let dir = tempfile::tempdir().expect("dir");
    // No overlap window: only the cursor decides what catch-up reads again.
    let a = User::sign_up_with(&backend, "live", dir.path(), |c| {
        c.sync.overlap = Duration::ZERO;
        c.live.enabled = false;
    })
    .await;
    let b = User::sign_up(&backend, "peer").await;
    let room = a.create_room(&backend, "live", &[b.id]).await;
    b.engine.sync_now().await.expect("b sync");
    b.engine.send_message(room, "before").await.expect("send");
    drained(&b).await;
    a.engine.sync_now().await.expect("sync: the cursor is at \"before\"");
    let brest = b.rest(&backend).await;
    let insert = |content: &'static str| {
        let brest = brest.clone();
        let (room, author) = (room, b.id);
        async move {
            let rows: Vec<serde_json::Value> = brest
                .from("chat_messages")
                .insert(json!({"id": Uuid::now_v7(), "room_id": room, "user_id": author, "content": content}))
                .select("*")
                .execute()
                .await
                .expect("insert");
            rows.into_iter().next().expect("the row")
        }
    };
    let missed = insert("missed by the socket").await;
    let delivered = insert("delivered live").await;
    let change = |kind, record: Option<serde_json::Value>, old: Option<serde_json::Value>, table: &str| RemoteChange {
        table: table.into(),
        kind,
        record,
        old_record: old,
    };
    a.engine
        .apply_remote(change(RemoteKind::Insert, Some(delivered.clone()), None, "chat_messages"))
        .await
        .expect("apply");
    let page = a.engine.messages(room, 50).await.expect("page");
    assert_eq!(page.messages.iter().map(|m| m.content.as_str()).collect::<Vec<_>>(), vec!["before", "delivered live"]);

    a.engine.sync_now().await.expect("catch up after the (re)subscribe");
    let page = a.engine.messages(room, 50).await.expect("page");
    assert_eq!(
        page.messages.iter().map(|m| m.content.as_str()).collect::<Vec<_>>(),
        vec!["before", "missed by the socket", "delivered live"],
        "the row the socket missed is found: the live delivery did not move the cursor"
    );

    // Reactions come and go live too.
    let id: Uuid = serde_json::from_value(missed["id"].clone()).expect("id");
    let reaction = json!({"message_id": id, "user_id": b.id, "emoji": "🔥", "created_at": "2026-01-01T00:00:00+00:00"});
    a.engine
        .apply_remote(change(RemoteKind::Insert, Some(reaction.clone()), None, "message_reactions"))
        .await
        .expect("apply");
    assert_eq!(a.engine.message(id).await.expect("read").expect("m").reactions.len(), 1);
    a.engine.apply_remote(change(RemoteKind::Delete, None, Some(reaction), "message_reactions")).await.expect("apply");
    assert!(a.engine.message(id).await.expect("read").expect("m").reactions.is_empty());
    a.engine.shutdown().await;
    b.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profiles_come_from_the_cache_then_the_server_and_offline_from_the_cache_only() {
    let mut backend = Backend::start().await;
    // Realtime off: the profiles of users who sign up later would otherwise reach a's cache live.
    let a = User::sign_up_rest_only(&backend, "asker").await;
    // Shares no room with `a`: its profile is not in a's cache until asked for.
    let b = User::sign_up(&backend, "stranger").await;
    let c = User::sign_up(&backend, "later").await;
    a.engine.sync_now().await.expect("a sync");

    let nobody = Uuid::new_v4();
    let got = a.engine.profiles(vec![b.id, a.id, nobody, b.id]).await.expect("profiles");
    let names: Vec<(Uuid, &str)> = got.iter().map(|p| (p.id, p.display_name.as_str())).collect();
    assert_eq!(names, vec![(b.id, "stranger"), (a.id, "asker")], "asked order, each once, unknown ids left out");

    // Offline: what was fetched is still answered; what never was is left out, without an error.
    backend.stop().await;
    let got = a.engine.profiles(vec![c.id, b.id]).await.expect("profiles offline");
    assert_eq!(got.iter().map(|p| p.id).collect::<Vec<_>>(), vec![b.id]);
    backend.resume().await;
    let got = eventually(WAIT, "c's profile once the server is back", || async {
        let got = a.engine.profiles(vec![c.id]).await.ok()?;
        (!got.is_empty()).then_some(got)
    })
    .await;
    assert_eq!(got[0].display_name, "later");

    // Too many ids at once: refused, nothing asked.
    let many: Vec<Uuid> = (0..=ruwad_core::Engine::MAX_PROFILES).map(|_| Uuid::new_v4()).collect();
    let err = a.engine.profiles(many).await.expect_err("over the limit");
    assert_eq!(err.code(), ruwad_core::ErrorCode::Refused, "{err}");
    assert!(err.to_string().contains("at most"), "{err}");
}
