//! Realtime wired into the engine: live deliveries, catch-up after every rejoin, connection
//! status, through the fault proxy (`LiveOptions::connect_to`) for cuts and black holes.

use std::time::Duration;

use fault_proxy::Proxy;
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
