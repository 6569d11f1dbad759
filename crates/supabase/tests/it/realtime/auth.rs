//! Tokens and limits: a refresh while joined keeps delivery; an expired or expiring token is a
//! typed event and waits for a new token instead of retrying; server limits are typed errors
//! without retry storms.

use std::time::Duration;

use ruwad_supabase::realtime::*;
use serde_json::json;

use super::harness::*;

/// Events of `s` that arrive within `d`.
async fn events_within(s: &mut Subscription<ChannelEvent>, d: Duration) -> Vec<ChannelEvent> {
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + d;
    while let Ok(Some(e)) = tokio::time::timeout_at(deadline, s.recv()).await {
        got.push(e);
    }
    got
}

#[tokio::test]
async fn token_refreshed_while_joined_keeps_the_channel_past_the_old_expiry() {
    let be = Backend::start().await;
    let u = be.user("tom").await;
    let short = be.token_for(&u.id, 2);
    let client = be.client(None, Some(&short));
    let ch = client.channel("refresh", ChannelConfig::default());
    let mut changes = ch.subscribe_changes(challenges_by(&u));
    let mut events = ch.events();
    ready(&ch).await;
    change_arrives_once(&be, &u, &mut [&mut changes], "with the short token").await;
    client.set_auth(Some(be.token_for(&u.id, 3600)));
    tokio::time::sleep(Duration::from_millis(2600)).await; // past the first token's expiry
    let got = events_within(&mut events, Duration::from_millis(100)).await;
    assert!(
        !got.iter().any(|e| matches!(e, ChannelEvent::Closed(_) | ChannelEvent::Error(_))),
        "the server holds the new token: no close at the old expiry: {got:?}"
    );
    assert_eq!(*ch.status().borrow(), ChannelStatus::Joined);
    change_arrives_once(&be, &u, &mut [&mut changes], "with the refreshed token").await;
}

#[tokio::test]
async fn expired_token_at_join_is_a_typed_error_waits_for_a_new_token_and_then_joins() {
    let be = Backend::start().await;
    let u = be.user("eve").await;
    let expired = be.token_for(&u.id, -10);
    let client = be.client(None, Some(&expired));
    let ch = client.channel("expired", ChannelConfig::default());
    let mut changes = ch.subscribe_changes(challenges_by(&u));
    let mut events = ch.events();
    let e = next(&mut events, "join refused").await;
    assert!(matches!(e, ChannelEvent::Error(ChannelError::Token { expired: true, .. })), "{e:?}");
    assert!(matches!(*ch.status().borrow(), ChannelStatus::WaitingForToken { .. }));
    let err = tokio::time::timeout(WAIT, ch.ready()).await.expect("ready answers");
    assert!(matches!(err, Err(ChannelError::Token { .. })), "ready reports why: {err:?}");
    let storm = events_within(&mut events, Duration::from_millis(1500)).await;
    assert!(storm.is_empty(), "no retry with the same token: {storm:?}");
    client.set_auth(Some(u.token.clone()));
    event_matching(&mut events, "joined with the new token", |e| *e == ChannelEvent::Subscribed).await;
    change_arrives_once(&be, &u, &mut [&mut changes], "after the new token").await;
}

#[tokio::test]
async fn token_expiring_while_joined_closes_the_channel_until_a_new_token_arrives() {
    let be = Backend::start().await;
    let u = be.user("exa").await;
    let client = be.client(None, Some(&be.token_for(&u.id, 1)));
    let ch = client.channel("expiring", ChannelConfig::default());
    let mut changes = ch.subscribe_changes(challenges_by(&u));
    let mut events = ch.events();
    ready(&ch).await;
    let system = event_matching(&mut events, "system error", |e| matches!(e, ChannelEvent::System(m) if !m.ok)).await;
    let ChannelEvent::System(m) = system else { unreachable!() };
    assert!(m.message.starts_with("Token has expired"), "{m:?}");
    let closed = next(&mut events, "closed").await;
    assert!(matches!(closed, ChannelEvent::Closed(ChannelError::Token { expired: true, .. })), "{closed:?}");
    assert!(matches!(*ch.status().borrow(), ChannelStatus::WaitingForToken { .. }));
    let storm = events_within(&mut events, Duration::from_millis(1000)).await;
    assert!(storm.is_empty(), "waits for a token: {storm:?}");
    client.set_auth(Some(be.token_for(&u.id, 3600)));
    event_matching(&mut events, "rejoined", |e| *e == ChannelEvent::Subscribed).await;
    change_arrives_once(&be, &u, &mut [&mut changes], "after the new token").await;
    assert_eq!(*client.state().borrow(), ConnectionState::Connected, "the socket was never dropped");
}

#[tokio::test]
async fn too_many_channels_is_a_typed_error_and_the_channel_joins_when_a_slot_frees() {
    let be = Backend::start_with(|l| l.channels_per_socket = 2).await;
    let client = be.client(None, None);
    let a = client.channel("one", ChannelConfig::default());
    let b = client.channel("two", ChannelConfig::default());
    ready(&a).await;
    ready(&b).await;
    let c = client.channel("three", ChannelConfig::default());
    let mut events = c.events();
    let e = next(&mut events, "third refused").await;
    assert_eq!(e, ChannelEvent::Error(ChannelError::Limit(LimitError::TooManyChannels)));
    assert_eq!(
        *c.status().borrow(),
        ChannelStatus::Refused { error: ChannelError::Limit(LimitError::TooManyChannels) }
    );
    assert_eq!(
        tokio::time::timeout(WAIT, c.ready()).await.expect("answers"),
        Err(ChannelError::Limit(LimitError::TooManyChannels))
    );
    let storm = events_within(&mut events, Duration::from_millis(1000)).await;
    assert!(storm.is_empty(), "no retry while no slot is free: {storm:?}");
    drop(a);
    event_matching(&mut events, "joined once a slot is free", |e| *e == ChannelEvent::Subscribed).await;
}

#[tokio::test]
async fn message_rate_limit_is_a_typed_close_and_rejoins_with_backoff_not_a_storm() {
    let be = Backend::start_with(|l| l.events_per_second = 3).await;
    let client = be.client(None, None);
    let ch = client.channel("rate", ChannelConfig::default());
    let mut events = ch.events();
    ready(&ch).await;
    for n in 0..6 {
        let _ = ch.send_broadcast("spam", json!({ "n": n })).await;
    }
    let closed = event_matching(&mut events, "closed", |e| matches!(e, ChannelEvent::Closed(_))).await;
    assert_eq!(closed, ChannelEvent::Closed(ChannelError::Limit(LimitError::TooManyMessages)));
    let got = events_within(&mut events, Duration::from_millis(1500)).await;
    let joins = got.iter().filter(|e| **e == ChannelEvent::Subscribed).count();
    assert!((1..=2).contains(&joins), "rejoined after a backoff, not in a loop: {got:?}");
    assert_eq!(*client.state().borrow(), ConnectionState::Connected, "a channel limit does not drop the socket");
}

#[tokio::test]
async fn presence_rate_limit_is_typed() {
    let be = Backend::start_with(|l| l.presence_calls_per_window = 2).await;
    let client = be.client(None, None);
    let ch = client.channel("pr", ChannelConfig { presence_key: Some("k".into()), ..ChannelConfig::default() });
    let mut events = ch.events();
    ready(&ch).await;
    ch.track(json!({"n": 1})).await.expect("first track");
    ch.track(json!({"n": 2})).await.expect("second track");
    let third = ch.track(json!({"n": 3})).await;
    assert!(third.is_err(), "the third call closes the channel: {third:?}");
    let closed = event_matching(&mut events, "closed", |e| matches!(e, ChannelEvent::Closed(_))).await;
    assert_eq!(closed, ChannelEvent::Closed(ChannelError::Limit(LimitError::ClientPresenceRate)));
}
