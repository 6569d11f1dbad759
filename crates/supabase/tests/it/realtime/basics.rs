//! Joining, postgres_changes, broadcasts (both serializers, both directions, self, ack),
//! refcounted channels.

use std::time::Duration;

use ruwad_supabase::realtime::*;
use serde_json::json;

use super::harness::*;

#[tokio::test]
async fn postgres_changes_and_broadcasts_arrive_on_both_serializers() {
    let be = Backend::start().await;
    let u = be.user("vera").await;
    for vsn in [Vsn::V2, Vsn::V1] {
        let mut cfg = be.config(None, Some(&u.token));
        cfg.vsn = vsn;
        let client = RealtimeClient::connect(cfg).expect("client");
        let ch = client.channel(&format!("basics-{}", vsn.as_str()), ChannelConfig::default());
        let mut changes = ch.subscribe_changes(challenges_by(&u));
        let mut all = ch.broadcasts("*");
        ready(&ch).await;
        assert_eq!(*client.state().borrow(), ConnectionState::Connected);

        let id = be.insert_challenge(&u, &format!("hello {}", vsn.as_str())).await;
        let c = next(&mut changes, "insert").await;
        assert_eq!((c.schema.as_str(), c.table.as_str(), c.kind), ("public", "challenges", ChangeKind::Insert));
        assert_eq!(c.record.as_ref().and_then(|r| r.get("id")), Some(&json!(id)));
        assert!(c.old_record.is_none() && c.errors.is_empty());
        assert!(c.columns.iter().any(|col| col.name == "title" && col.type_name == "text"));

        let topic = ch.topic().trim_start_matches("realtime:").to_string();
        be.rest_broadcast(&topic, "Cursor", json!({"x": 1})).await;
        let b = next(&mut all, "text broadcast").await;
        assert_eq!((b.event.as_str(), b.payload.clone()), ("Cursor", BroadcastPayload::Json(json!({"x": 1}))));
        if vsn == Vsn::V2 {
            be.rest_event_broadcast(&topic, "typing", json!({"who": "v"})).await;
            let b = next(&mut all, "kind-4 broadcast").await;
            assert_eq!((b.event.as_str(), b.payload), ("typing", BroadcastPayload::Json(json!({"who": "v"}))));
        }
        quiet(&mut changes, "one insert, one change").await;
        client.disconnect().await;
    }
}

#[tokio::test]
async fn broadcast_listeners_filter_by_event_case_insensitively() {
    let be = Backend::start().await;
    let client = be.client(None, None);
    let ch = client.channel("events", ChannelConfig::default());
    let mut cursor = ch.broadcasts("cursor");
    let mut star = ch.broadcasts("*");
    ready(&ch).await;
    be.rest_broadcast("events", "CURSOR", json!({"a": 1})).await;
    be.rest_broadcast("events", "typing", json!({"b": 2})).await;
    assert_eq!(next(&mut cursor, "cursor").await.event, "CURSOR");
    assert_eq!(next(&mut star, "first").await.event, "CURSOR");
    assert_eq!(next(&mut star, "second").await.event, "typing");
    quiet(&mut cursor, "typing is not a cursor broadcast").await;
}

#[tokio::test]
async fn sent_broadcasts_reach_others_and_self_only_when_asked() {
    let be = Backend::start().await;
    let (alice, bob) = (be.client(None, None), be.client(None, None));
    let loud = alice.channel("room", ChannelConfig { broadcast_self: true, ..ChannelConfig::default() });
    let listener = bob.channel("room", ChannelConfig::default());
    let mut mine = loud.broadcasts("msg");
    let mut theirs = listener.broadcasts("msg");
    ready(&loud).await;
    ready(&listener).await;
    loud.send_broadcast("msg", json!({"text": "hi"})).await.expect("sent");
    assert_eq!(next(&mut theirs, "bob gets it").await.payload, BroadcastPayload::Json(json!({"text": "hi"})));
    assert_eq!(
        next(&mut mine, "self: alice gets her own").await.payload,
        BroadcastPayload::Json(json!({"text": "hi"}))
    );
    listener.send_broadcast("msg", json!({"text": "yo"})).await.expect("sent");
    next(&mut mine, "alice gets bob's").await;
    quiet(&mut theirs, "no self for bob").await;
    loud.send_broadcast_bytes("msg", bytes::Bytes::from_static(b"\x00\x01")).await.expect("binary sent");
    assert_eq!(
        next(&mut theirs, "binary").await.payload,
        BroadcastPayload::Binary(bytes::Bytes::from_static(b"\x00\x01"))
    );
    let long = "e".repeat(300);
    assert_eq!(
        loud.send_broadcast(&long, json!({})).await,
        Err(SendError::FieldTooLong { field: "event", len: 300 }),
        "kind-3 header fields are single bytes"
    );
}

#[tokio::test]
async fn acked_broadcast_waits_for_the_reply_and_times_out_on_a_silent_link() {
    let be = Backend::start().await;
    let proxy = fault_proxy::Proxy::start(be.addr).await.expect("proxy");
    let mut cfg = be.config(Some(proxy.addr), None);
    cfg.heartbeat_interval = Duration::from_secs(30); // the push timeout, not the heartbeat, decides
    cfg.push_timeout = Duration::from_millis(600);
    let client = RealtimeClient::connect(cfg).expect("client");
    let ch = client.channel("acks", ChannelConfig { broadcast_ack: true, ..ChannelConfig::default() });
    ready(&ch).await;
    ch.send_broadcast("e", json!({"n": 1})).await.expect("acknowledged");
    proxy.black_hole(true);
    let t = std::time::Instant::now();
    assert_eq!(ch.send_broadcast("e", json!({"n": 2})).await, Err(SendError::Timeout));
    assert!(t.elapsed() < Duration::from_secs(2), "bounded by the push timeout: {:?}", t.elapsed());
}

#[tokio::test]
async fn asking_twice_for_a_topic_gives_one_channel_and_the_last_handle_leaves_it() {
    let be = Backend::start().await;
    let client = be.client(None, None);
    let a = client.channel("shared", ChannelConfig::default());
    let b = client.channel("realtime:shared", ChannelConfig { broadcast_self: true, ..ChannelConfig::default() });
    assert!(a.same_channel(&b), "same topic, same channel");
    ready(&a).await;
    let topics = || be.server().state.realtime.topic_count();
    assert_eq!(topics(), 1);
    let mut events = a.events();
    drop(b);
    quiet(&mut events, "still joined while a handle lives").await;
    assert_eq!(topics(), 1);
    let mut status = a.status();
    let stream = a.broadcasts("*");
    drop(a);
    assert_eq!(*status.borrow_and_update(), ChannelStatus::Joined, "a stream keeps its channel alive");
    drop(stream);
    drop(events);
    tokio::time::timeout(WAIT, status.wait_for(|s| *s == ChannelStatus::Closed))
        .await
        .expect("closed")
        .expect("status");
    let deadline = tokio::time::Instant::now() + WAIT;
    while topics() != 0 {
        assert!(tokio::time::Instant::now() < deadline, "the server saw the leave");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let again = client.channel("shared", ChannelConfig::default());
    ready(&again).await;
    assert_eq!(topics(), 1, "a new channel of the topic joins");
}

#[tokio::test]
async fn equal_filters_share_one_server_subscription_and_each_subscriber_gets_each_change_once() {
    let be = Backend::start().await;
    let u = be.user("dup").await;
    let client = be.client(None, Some(&u.token));
    let ch = client.channel("dups", ChannelConfig::default());
    let mut first = ch.subscribe_changes(challenges_by(&u));
    let mut second = ch.subscribe_changes(challenges_by(&u));
    let mut all_events = ch.subscribe_changes(PostgresChangesFilter {
        event: ChangeEvent::All,
        schema: "public".into(),
        table: Some("challenges".into()),
        filter: None,
    });
    ready(&ch).await;
    change_arrives_once(&be, &u, &mut [&mut first, &mut second, &mut all_events], "one").await;
    drop(second);
    // A filter added later rejoins the channel; the others keep their single delivery.
    let mut late = ch.subscribe_changes(PostgresChangesFilter::table(ChangeEvent::Insert, "challenges"));
    ready(&ch).await;
    change_arrives_once(&be, &u, &mut [&mut first, &mut all_events, &mut late], "two").await;
}

#[tokio::test]
async fn a_slow_subscriber_loses_items_it_cannot_hold_without_stalling_the_others() {
    let be = Backend::start().await;
    let mut cfg = be.config(None, None);
    cfg.queue_capacity = 2;
    let client = RealtimeClient::connect(cfg).expect("client");
    let ch = client.channel("slow", ChannelConfig::default());
    let mut slow = ch.broadcasts("*");
    let mut fast = ch.broadcasts("*");
    ready(&ch).await;
    for n in 0..5 {
        be.rest_broadcast("slow", "e", json!({ "n": n })).await;
        next(&mut fast, "the reading subscriber gets every one").await;
    }
    assert_eq!(slow.missed(), 3, "two queued, three dropped and counted");
    assert!(slow.try_recv().is_some() && slow.try_recv().is_some() && slow.try_recv().is_none());
}

#[tokio::test]
async fn vsn_1_sends_text_broadcasts_and_gets_acks() {
    let be = Backend::start().await;
    let mut cfg = be.config(None, None);
    cfg.vsn = Vsn::V1;
    let v1 = RealtimeClient::connect(cfg).expect("client");
    let v2 = be.client(None, None);
    let sender = v1.channel("mixed", ChannelConfig { broadcast_ack: true, ..ChannelConfig::default() });
    let receiver = v2.channel("mixed", ChannelConfig::default());
    let mut got = receiver.broadcasts("*");
    ready(&sender).await;
    ready(&receiver).await;
    sender.send_broadcast("note", json!({"from": "v1"})).await.expect("acknowledged on 1.0.0 too");
    let b = next(&mut got, "the 2.0.0 client gets the 1.0.0 broadcast").await;
    assert_eq!((b.event.as_str(), b.payload), ("note", BroadcastPayload::Json(json!({"from": "v1"}))));
    assert!(
        matches!(
            sender.send_broadcast_bytes("note", bytes::Bytes::from_static(b"x")).await,
            Err(SendError::Rejected { .. })
        ),
        "raw bytes need 2.0.0"
    );
}

#[tokio::test]
async fn dropping_every_handle_stops_the_connection() {
    let be = Backend::start().await;
    let client = be.client(None, None);
    let ch = client.channel("bye", ChannelConfig::default());
    ready(&ch).await;
    let connections = || be.server().state.realtime.connections();
    assert_eq!(connections(), 1);
    let state = client.state();
    drop(client);
    assert_eq!(connections(), 1, "the channel handle still holds the connection");
    drop(ch);
    let mut state = state;
    tokio::time::timeout(WAIT, state.wait_for(|s| *s == ConnectionState::Stopped)).await.expect("stops").ok();
    let deadline = tokio::time::Instant::now() + WAIT;
    while connections() != 0 {
        assert!(tokio::time::Instant::now() < deadline, "the server saw the socket close");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
