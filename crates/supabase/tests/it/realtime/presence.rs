//! Presence between two clients against the real server: the sync / join / leave sequences
//! realtime-js produces for track, a second member, an update (join of the new meta + leave of
//! the old), untrack, and a reconnect (the meta is re-tracked on its own).

use fault_proxy::Proxy;
use ruwad_supabase::realtime::*;
use serde_json::{json, Value};

use super::harness::*;

fn names(v: &[Presence]) -> String {
    v.iter().map(|p| p.payload.get("name").and_then(Value::as_str).unwrap_or("?")).collect::<Vec<_>>().join(",")
}

fn line(e: &PresenceEvent) -> String {
    match e {
        PresenceEvent::Sync => "sync".into(),
        PresenceEvent::Join { key, current, new } => format!("join {key} [{}] <- [{}]", names(new), names(current)),
        PresenceEvent::Leave { key, current, left } => format!("leave {key} [{}] -> [{}]", names(left), names(current)),
    }
}

/// The next `n` presence events, then nothing more.
async fn expect(s: &mut Subscription<PresenceEvent>, who: &str, want: &[&str]) {
    let mut got = Vec::new();
    for _ in want {
        got.push(line(&next(s, &format!("{who}: {want:?}, got {got:?}")).await));
    }
    assert_eq!(got, want, "{who}");
    quiet(s, &format!("{who}: nothing after {want:?}")).await;
}

#[tokio::test]
async fn track_second_member_update_untrack_and_reconnect_match_realtime_js() {
    let be = Backend::start().await;
    let proxy = Proxy::start(be.addr).await.expect("proxy");
    let (alice, bob) = (be.client(Some(proxy.addr), None), be.client(None, None));
    let a = alice.channel("lobby", ChannelConfig { presence_key: Some("a".into()), ..ChannelConfig::default() });
    let mut pa = a.presence_events();
    ready(&a).await;
    expect(&mut pa, "alice, empty state", &["sync"]).await;

    a.track(json!({"name": "a1"})).await.expect("track");
    expect(&mut pa, "alice sees herself", &["join a [a1] <- []", "sync"]).await;

    let b = bob.channel("lobby", ChannelConfig { presence_key: Some("b".into()), ..ChannelConfig::default() });
    let mut pb = b.presence_events();
    ready(&b).await;
    expect(&mut pb, "bob's first state", &["join a [a1] <- []", "sync"]).await;
    b.track(json!({"name": "b1"})).await.expect("track");
    expect(&mut pa, "alice sees bob", &["join b [b1] <- []", "sync"]).await;
    expect(&mut pb, "bob sees himself", &["join b [b1] <- []", "sync"]).await;

    a.track(json!({"name": "a2"})).await.expect("update");
    let update = ["join a [a2] <- [a1]", "leave a [a1] -> [a2]", "sync"];
    expect(&mut pa, "alice's update", &update).await;
    expect(&mut pb, "bob sees the update", &update).await;
    let state = b.presence_state().borrow().clone();
    assert_eq!(state.keys().collect::<Vec<_>>(), vec!["a", "b"]);
    assert_eq!(names(state.get("a").expect("a")), "a2");

    b.untrack().await.expect("untrack");
    expect(&mut pa, "bob left", &["leave b [b1] -> []", "sync"]).await;
    expect(&mut pb, "bob left (own view)", &["leave b [b1] -> []", "sync"]).await;

    // Alice's connection drops; she stays away until bob has seen her leave.
    proxy.refuse(true);
    proxy.drop_all();
    expect(&mut pb, "alice's socket is gone", &["leave a [a2] -> []", "sync"]).await;
    proxy.refuse(false);
    // She rejoins: the new state lacks her old meta, then her meta is tracked again.
    expect(&mut pa, "alice after the rejoin", &["leave a [a2] -> []", "sync", "join a [a2] <- []", "sync"]).await;
    expect(&mut pb, "alice is back", &["join a [a2] <- []", "sync"]).await;
}

#[tokio::test]
async fn two_tabs_of_one_key_are_two_metas_and_leave_one_at_a_time() {
    let be = Backend::start().await;
    let (tab1, tab2) = (be.client(None, None), be.client(None, None));
    let config = ChannelConfig { presence_key: Some("u".into()), ..ChannelConfig::default() };
    let c1 = tab1.channel("tabs", config.clone());
    let mut p1 = c1.presence_events();
    ready(&c1).await;
    expect(&mut p1, "empty", &["sync"]).await;
    c1.track(json!({"name": "t1"})).await.expect("track");
    expect(&mut p1, "first tab", &["join u [t1] <- []", "sync"]).await;
    let c2 = tab2.channel("tabs", config);
    ready(&c2).await;
    c2.track(json!({"name": "t2"})).await.expect("track");
    expect(&mut p1, "second tab of the same key", &["join u [t2] <- [t1]", "sync"]).await;
    assert_eq!(names(c1.presence_state().borrow().get("u").expect("u")), "t1,t2");
    tab2.disconnect().await;
    expect(&mut p1, "one tab closes", &["leave u [t2] -> [t1]", "sync"]).await;
}
