//! Realtime wired into the engine: live deliveries, catch-up after every rejoin, connection
//! status, through the fault proxy (`LiveOptions::connect_to`) for cuts and black holes.

use std::time::Duration;

use fault_proxy::Proxy;
use ruwad_core::model::SendState;
use ruwad_core::{ConnectionState, EngineConfig, Event};
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::common::{eventually, Backend, User};

const WAIT: Duration = Duration::from_secs(30);

/// Realtime through `proxy`, noticing dead links within a second.
fn via(proxy: &Proxy) -> impl FnOnce(&mut EngineConfig) {
    let addr = proxy.addr;
    move |c| {
        c.live.connect_to = Some(addr);
        c.live.heartbeat_interval = Duration::from_secs(1);
        c.live.connect_timeout = Duration::from_secs(2);
        c.live.backoff.initial = Duration::from_millis(100);
        c.live.backoff.max = Duration::from_millis(500);
    }
}

/// Waits (bounded) until the engine shows `Online` and its cache has `room`.
async fn settled(user: &User, room: Uuid) {
    user.engine.sync_now().await.expect("sync");
    eventually(WAIT, "online with the room cached", || async {
        let online = user.engine.connection() == ConnectionState::Online;
        let has = user.engine.rooms().await.ok()?.iter().any(|r| r.id == room);
        (online && has).then_some(())
    })
    .await;
}

/// Message events of `room` naming `id`, gathered for `quiet` after the last one.
async fn message_events(events: &mut broadcast::Receiver<Event>, room: Uuid, id: Uuid, quiet: Duration) -> usize {
    let mut n = 0;
    while let Ok(Ok(e)) = tokio::time::timeout(quiet, events.recv()).await {
        if let Event::Messages { room_id, ids } = e {
            if room_id == room && ids.contains(&id) {
                n += 1;
            }
        }
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_sent_by_b_reaches_engine_a_live_as_one_event() {
    let backend = Backend::start().await;
    let a = User::sign_up(&backend, "amal").await;
    let b = User::sign_up(&backend, "bilal").await;
    let room = a.create_room(&backend, "live", &[b.id]).await;
    settled(&a, room).await;
    settled(&b, room).await;
    // Let the subscription's own catch-up finish before B speaks.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let mut events = a.engine.events();
    let id = b.engine.send_message(room, "marhaba").await.expect("queued");
    let first = tokio::time::timeout(WAIT, async {
        loop {
            match events.recv().await {
                Ok(Event::Messages { room_id, ids }) if room_id == room && ids.contains(&id) => return,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => panic!("engine A stopped"),
            }
        }
    })
    .await;
    assert!(first.is_ok(), "the message reached A within {WAIT:?}");
    let m = a.engine.message(id).await.expect("cache").expect("A has B's message");
    assert_eq!(m.content, "marhaba");
    assert_eq!(message_events(&mut events, room, id, Duration::from_millis(500)).await, 0, "one event, not more");
}

/// How A's socket is cut.
#[derive(Debug, Clone, Copy)]
enum Cut {
    /// Connections closed, new ones refused, until healed.
    Drop,
    /// Bytes vanish, nothing is closed (a half-open link) until healed.
    BlackHole,
}

/// A's socket is cut while B sends; after A reconnects it has every message exactly once
/// (catch-up after the rejoin) and its status went connecting → online.
async fn cut_while_b_sends(cut: Cut) {
    let backend = Backend::start().await;
    let proxy = Proxy::start(backend.addr).await.expect("proxy");
    let dir = tempfile::tempdir().expect("dir");
    let a = User::sign_up_with(&backend, "cut", dir.path(), via(&proxy)).await;
    let b = User::sign_up(&backend, "sender").await;
    let room = a.create_room(&backend, "cuts", &[b.id]).await;
    settled(&a, room).await;
    settled(&b, room).await;
    let before = b.engine.send_message(room, "before the cut").await.expect("queued");
    eventually(WAIT, "A has the first message live", || async { a.engine.message(before).await.ok()? }).await;

    let mut states = a.engine.events();
    match cut {
        Cut::Drop => {
            proxy.refuse(true);
            proxy.drop_all();
        }
        Cut::BlackHole => proxy.black_hole(true),
    }
    let mut sent = vec![before];
    for i in 0..10 {
        sent.push(b.engine.send_message(room, &format!("during the cut {i}")).await.expect("queued"));
    }
    eventually(WAIT, "B's messages on the server", || async {
        (backend.messages(room).await.len() == sent.len()).then_some(())
    })
    .await;
    eventually(WAIT, "A notices the cut", || async {
        matches!(a.engine.connection(), ConnectionState::Connecting { .. }).then_some(())
    })
    .await;
    match cut {
        Cut::Drop => proxy.refuse(false),
        Cut::BlackHole => proxy.black_hole(false),
    }
    eventually(WAIT, "A has every message after reconnecting", || async {
        let page = a.engine.messages(room, 100).await.ok()?;
        (page.messages.len() >= sent.len()).then_some(())
    })
    .await;
    let page = a.engine.messages(room, 100).await.expect("cache");
    let ids: Vec<Uuid> = page.messages.iter().map(|m| m.id).collect();
    assert_eq!(ids, sent, "every message exactly once, in order ({cut:?})");

    let mut seen = Vec::new();
    eventually(WAIT, "A's status back online", || {
        while let Ok(e) = states.try_recv() {
            if let Event::Connection { state } = e {
                seen.push(state);
            }
        }
        let back = seen.last() == Some(&ConnectionState::Online);
        async move { back.then_some(()) }
    })
    .await;
    let connecting = seen.iter().position(|s| matches!(s, ConnectionState::Connecting { .. }));
    let online = seen.iter().rposition(|s| *s == ConnectionState::Online);
    assert!(matches!((connecting, online), (Some(c), Some(o)) if c < o), "status went connecting → online: {seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_proxy_drops_the_socket_a_catches_up_every_message_exactly_once_and_goes_connecting_then_online() {
    cut_while_b_sends(Cut::Drop).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_black_holed_socket_a_catches_up_every_message_exactly_once_and_goes_connecting_then_online() {
    cut_while_b_sends(Cut::BlackHole).await;
}

/// Fast typing settings: throttle 300 ms, expiry 1 s.
fn quick_typing(c: &mut EngineConfig) {
    c.live.typing_throttle = Duration::from_millis(300);
    c.live.typing_ttl = Duration::from_secs(1);
}

/// The socket is what brings changes in: while it is down, a message A sends that REST
/// delivers must not make A's status "online"; it becomes online when the socket is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_the_socket_is_down_a_rest_success_keeps_the_status_connecting_and_typing_returns_at_once() {
    let backend = Backend::start().await;
    let proxy = Proxy::start(backend.addr).await.expect("proxy");
    let dir = tempfile::tempdir().expect("dir");
    let a = User::sign_up_with(&backend, "status", dir.path(), via(&proxy)).await;
    let room = a.create_room(&backend, "status", &[]).await;
    settled(&a, room).await;
    proxy.refuse(true);
    proxy.drop_all();
    eventually(WAIT, "A notices the cut", || async {
        matches!(a.engine.connection(), ConnectionState::Connecting { .. }).then_some(())
    })
    .await;
    let started = std::time::Instant::now();
    assert_eq!(a.engine.typing(room).await.ok(), Some(false), "no typing notice while the socket is down");
    assert!(started.elapsed() < Duration::from_secs(1), "typing never waits for the socket: {:?}", started.elapsed());
    let mut events = a.engine.events();
    let id = a.engine.send_message(room, "over REST").await.expect("queued");
    eventually(WAIT, "the message is confirmed over REST", || async {
        (a.engine.message(id).await.ok()??.state == SendState::Sent).then_some(())
    })
    .await;
    a.engine.sync_now().await.expect("a catch-up over REST gets through too");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut shown = Vec::new();
    while let Ok(e) = events.try_recv() {
        if let Event::Connection { state } = e {
            shown.push(state);
        }
    }
    assert!(
        !shown.contains(&ConnectionState::Online),
        "REST got through but the socket is down: never show online meanwhile ({shown:?})"
    );
    proxy.refuse(false);
    eventually(WAIT, "online once the socket is back", || async {
        (a.engine.connection() == ConnectionState::Online).then_some(())
    })
    .await;
}

/// The next event `pick` accepts, within `WAIT`.
async fn next<T>(events: &mut broadcast::Receiver<Event>, what: &str, mut pick: impl FnMut(&Event) -> Option<T>) -> T {
    let found = tokio::time::timeout(WAIT, async {
        loop {
            match events.recv().await {
                Ok(e) => {
                    if let Some(v) = pick(&e) {
                        return v;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => panic!("engine stopped while waiting for {what}"),
            }
        }
    })
    .await;
    found.unwrap_or_else(|_| panic!("timed out after {WAIT:?} waiting for {what}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_engines_chat_with_throttled_expiring_typing_and_presence() {
    let backend = Backend::start().await;
    let (da, db) = (tempfile::tempdir().expect("dir"), tempfile::tempdir().expect("dir"));
    let a = User::sign_up_with(&backend, "rana", da.path(), quick_typing).await;
    let b = User::sign_up_with(&backend, "sami", db.path(), quick_typing).await;
    let room = a.create_room(&backend, "typing", &[b.id]).await;
    settled(&a, room).await;
    settled(&b, room).await;
    let mut ea = a.engine.events();

    // Presence: both enter, A sees both online; B leaves, A sees only itself.
    a.engine.enter_room(room).await.expect("A enters");
    b.engine.enter_room(room).await.expect("B enters");
    let mut both = vec![a.id, b.id];
    both.sort();
    next(&mut ea, "both online", |e| match e {
        Event::Presence { room_id, user_ids } if *room_id == room && *user_ids == both => Some(()),
        _ => None,
    })
    .await;
    assert_eq!(a.engine.online(room), both);

    // Typing: throttled on the sender, shown on the receiver, expired after the ttl.
    assert!(b.engine.typing(room).await.expect("typing"), "the first keystroke broadcasts");
    assert!(!b.engine.typing(room).await.expect("typing"), "the next one within the throttle does not");
    next(&mut ea, "B typing", |e| match e {
        Event::Typing { room_id, user_ids } if *room_id == room && *user_ids == [b.id] => Some(()),
        _ => None,
    })
    .await;
    let shown = std::time::Instant::now();
    assert_eq!(a.engine.typers(room), vec![b.id]);
    next(&mut ea, "B's typing expires", |e| match e {
        Event::Typing { room_id, user_ids } if *room_id == room && user_ids.is_empty() => Some(()),
        _ => None,
    })
    .await;
    let expired_after = shown.elapsed();
    assert!(
        expired_after >= Duration::from_millis(700) && expired_after < Duration::from_secs(5),
        "expired after about the 1 s ttl: {expired_after:?}"
    );

    // Typing again after the throttle, then sending: stop_typing clears it at once.
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert!(b.engine.typing(room).await.expect("typing"), "after the throttle it broadcasts again");
    next(&mut ea, "B typing again", |e| match e {
        Event::Typing { room_id, user_ids } if *room_id == room && *user_ids == [b.id] => Some(()),
        _ => None,
    })
    .await;
    let id = b.engine.send_message(room, "done typing").await.expect("queued");
    b.engine.stop_typing(room).await.expect("stop typing");
    let cleared = std::time::Instant::now();
    next(&mut ea, "B stopped typing", |e| match e {
        Event::Typing { room_id, user_ids } if *room_id == room && user_ids.is_empty() => Some(()),
        _ => None,
    })
    .await;
    assert!(cleared.elapsed() < Duration::from_millis(900), "cleared before the ttl: {:?}", cleared.elapsed());
    eventually(WAIT, "A has B's message", || async { a.engine.message(id).await.ok()? }).await;

    b.engine.leave_room(room).await.expect("B leaves");
    next(&mut ea, "only A online", |e| match e {
        Event::Presence { room_id, user_ids } if *room_id == room && *user_ids == [a.id] => Some(()),
        _ => None,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_proxy_cutting_every_few_hundred_ms_both_engines_end_with_every_message_once_in_order() {
    const EACH: usize = 40;
    let backend = Backend::start().await;
    let proxy = Proxy::start(backend.addr).await.expect("proxy");
    let (da, db) = (tempfile::tempdir().expect("dir"), tempfile::tempdir().expect("dir"));
    // Realtime through the proxy (`connect_to`); REST goes straight to the server (it checks
    // the Host header, so it cannot be proxied by URL).
    let ua = User::sign_up_with(&backend, "chaos-a", da.path(), via(&proxy)).await;
    let ub = User::sign_up_with(&backend, "chaos-b", db.path(), via(&proxy)).await;
    let room = ua.create_room(&backend, "chaos", &[ub.id]).await;
    let (a, b) = (&ua.engine, &ub.engine);
    for e in [a, b] {
        eventually(WAIT, "the room reaches the cache", || async {
            let _ = e.sync_now().await;
            e.rooms().await.ok()?.iter().any(|r| r.id == room).then_some(())
        })
        .await;
    }

    // Cut every connection every 250 ms (every third time mid-frame) while both send.
    let stop = tokio_util::sync::CancellationToken::new();
    let chaos = {
        let stop = stop.clone();
        let proxy = &proxy;
        async move {
            let mut n = 0u32;
            while !stop.is_cancelled() {
                tokio::time::sleep(Duration::from_millis(250)).await;
                n += 1;
                if n % 3 == 0 {
                    proxy.cut_mid_frame();
                } else {
                    proxy.drop_all();
                }
            }
            n
        }
    };
    let senders = async {
        let mut sent_a = Vec::new();
        let mut sent_b = Vec::new();
        for i in 0..EACH {
            sent_a.push(a.send_message(room, &format!("a {i}")).await.expect("A queues"));
            sent_b.push(b.send_message(room, &format!("b {i}")).await.expect("B queues"));
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
        let total = 2 * EACH;
        eventually(Duration::from_secs(60), "every message on the server", || async {
            (backend.messages(room).await.len() >= total).then_some(())
        })
        .await;
        stop.cancel();
        (sent_a, sent_b)
    };
    let (cuts, (sent_a, sent_b)) = tokio::join!(chaos, senders);
    assert!(cuts >= 4, "the proxy cut connections during the run ({cuts} cuts)");

    let on_server = backend.messages(room).await;
    let server_ids: Vec<Uuid> = on_server.iter().map(|m| m.id).collect();
    assert_eq!(server_ids.len(), 2 * EACH, "every message exactly once on the server");
    for (who, sent) in [("A", &sent_a), ("B", &sent_b)] {
        let order: Vec<Uuid> = server_ids.iter().copied().filter(|id| sent.contains(id)).collect();
        assert_eq!(&order, sent, "{who}'s messages in the order {who} wrote them");
    }
    for (who, e) in [("A", a), ("B", b)] {
        let ids = eventually(WAIT, "the cache matches the server", || async {
            let page = e.messages(room, 200).await.ok()?;
            let ids: Vec<Uuid> = page.messages.iter().map(|m| m.id).collect();
            let all_sent = page.messages.iter().all(|m| m.state == SendState::Sent);
            (all_sent && ids.len() == server_ids.len()).then_some(ids)
        })
        .await;
        assert_eq!(ids, server_ids, "{who}'s cache: every message once, in the server's order");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_realtime_client_belongs_to_the_account_signing_out_stops_it_and_signing_in_again_resumes_live_delivery() {
    let backend = Backend::start().await;
    let proxy = Proxy::start(backend.addr).await.expect("proxy");
    let dir = tempfile::tempdir().expect("dir");
    let a = User::sign_up_with(&backend, "owner", dir.path(), via(&proxy)).await;
    let b = User::sign_up(&backend, "peer").await;
    let room = a.create_room(&backend, "owned", &[b.id]).await;
    settled(&a, room).await;
    settled(&b, room).await;
    eventually(WAIT, "A's socket is open", || async { (proxy.active() >= 1).then_some(()) }).await;

    a.engine.sign_out().await.expect("sign out");
    eventually(WAIT, "the socket closes with the account", || async { (proxy.active() == 0).then_some(()) }).await;
    let while_out = b.engine.send_message(room, "while you were out").await.expect("queued");
    eventually(WAIT, "on the server", || async {
        backend.messages(room).await.iter().any(|m| m.id == while_out).then_some(())
    })
    .await;

    a.engine.sign_in(&a.email, crate::common::PASSWORD).await.expect("sign in again");
    eventually(WAIT, "caught up after the new subscription", || async {
        a.engine.message(while_out).await.ok()?.map(|_| ())
    })
    .await;
    eventually(WAIT, "online again", || async { (a.engine.connection() == ConnectionState::Online).then_some(()) })
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let live = b.engine.send_message(room, "and now live").await.expect("queued");
    eventually(WAIT, "delivered live to the new client", || async { a.engine.message(live).await.ok()?.map(|_| ()) })
        .await;
    assert_eq!(proxy.active(), 1, "one socket for the one signed-in account");
}
