//! The reconnect schedule: first retry ≤ 1 s, growing, jittered, capped; reset only after a
//! healthy connection; an immediate attempt on `network_back`; slow probes while offline.

use std::time::Duration;

use fault_proxy::Proxy;
use ruwad_supabase::realtime::*;
use tokio::time::Instant;

use super::harness::*;

/// A loopback port nobody listens on.
fn dead_port() -> std::net::SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

/// Collects `(attempt, wait)` for each scheduled retry, as published in the state, within
/// `limit`.
async fn schedule(client: &RealtimeClient, retries: u32, limit: Duration) -> Vec<(u32, Duration)> {
    let mut rx = client.state();
    let mut seen = Vec::new();
    let deadline = Instant::now() + limit;
    while seen.len() < retries as usize {
        tokio::time::timeout_at(deadline, rx.changed())
            .await
            .unwrap_or_else(|_| panic!("{retries} retries within {limit:?}; saw {seen:?}"))
            .expect("client alive");
        let s = rx.borrow_and_update().clone();
        if let ConnectionState::Connecting { attempt, retry_at: Some(at), .. } = s {
            if seen.last().is_none_or(|(a, _)| *a != attempt) {
                seen.push((attempt, at.saturating_duration_since(Instant::now())));
            }
        }
    }
    seen
}

#[tokio::test(start_paused = true)]
async fn default_schedule_first_retry_within_a_second_then_grows_jittered_to_a_thirty_second_cap() {
    let client =
        RealtimeClient::connect(RealtimeConfig::new(format!("http://{}", dead_port()), "key")).expect("client");
    let got = schedule(&client, 12, Duration::from_secs(3600)).await;
    let b = Backoff::default();
    for (i, (attempt, wait)) in got.iter().enumerate() {
        assert_eq!(*attempt as usize, i + 1, "attempts are counted: {got:?}");
        let base = b.base(*attempt);
        assert!(
            *wait <= base && *wait >= base / 2,
            "retry {attempt} waits {wait:?}, within (base/2, base] of {base:?}"
        );
    }
    assert!(got[0].1 <= Duration::from_secs(1), "first retry ≤ 1 s");
    assert!(got.iter().all(|(_, w)| *w <= Duration::from_secs(30)), "capped at 30 s");
    let capped: std::collections::HashSet<u128> = got[6..].iter().map(|(_, w)| w.as_micros()).collect();
    assert!(capped.len() > 1, "jittered, not a fixed wave: {got:?}");
    client.disconnect().await;
    assert_eq!(*client.state().borrow(), ConnectionState::Stopped);
}

#[tokio::test]
async fn backoff_grows_while_refused_and_resets_after_a_healthy_connection() {
    let be = Backend::start().await;
    let proxy = Proxy::start(be.addr).await.expect("proxy");
    let mut cfg = be.config(Some(proxy.addr), None);
    cfg.backoff = Backoff {
        initial: Duration::from_millis(200),
        max: Duration::from_millis(1600),
        jitter: 0.0,
        ..Backoff::default()
    };
    let client = RealtimeClient::connect(cfg).expect("client");
    let ch = client.channel("reset", ChannelConfig::default());
    ready(&ch).await;
    let slack = Duration::from_millis(150);
    for _ in 0..2 {
        proxy.refuse(true);
        proxy.drop_all();
        let got = schedule(&client, 3, WAIT).await;
        let attempts: Vec<u32> = got.iter().map(|(a, _)| *a).collect();
        assert_eq!(attempts, vec![1, 2, 3], "a healthy connection before the loss: counting starts again");
        for ((_, wait), base) in got.iter().zip([200u64, 400, 800]) {
            let base = Duration::from_millis(base);
            assert!(*wait <= base && *wait + slack >= base, "{wait:?} ≈ {base:?}: {got:?}");
        }
        proxy.refuse(false);
        state_matching(&client, ConnectionState::is_connected).await;
        ready(&ch).await;
    }
}

#[tokio::test]
async fn network_back_connects_at_once_and_network_lost_slows_to_the_cap() {
    let be = Backend::start().await;
    let proxy = Proxy::start(be.addr).await.expect("proxy");
    let mut cfg = be.config(Some(proxy.addr), None);
    cfg.backoff = Backoff { initial: Duration::from_secs(20), max: Duration::from_secs(40), ..Backoff::default() };
    let client = RealtimeClient::connect(cfg).expect("client");
    let ch = client.channel("net", ChannelConfig::default());
    let mut events = ch.events();
    ready(&ch).await;
    proxy.refuse(true);
    proxy.drop_all();
    let s = state_matching(&client, |s| matches!(s, ConnectionState::Connecting { retry_at: Some(_), .. })).await;
    let ConnectionState::Connecting { retry_at: Some(at), .. } = s else { unreachable!() };
    assert!(at - Instant::now() > Duration::from_secs(5), "a slow schedule: the next retry is far away");

    client.network_lost();
    let s = state_matching(&client, |s| matches!(s, ConnectionState::Offline { .. })).await;
    let ConnectionState::Offline { retry_at: Some(at), .. } = s else {
        panic!("offline with a probe scheduled: {s:?}")
    };
    assert!(at - Instant::now() > Duration::from_secs(35), "offline: probes at the cap");

    proxy.refuse(false);
    let t = Instant::now();
    client.network_back();
    state_matching(&client, ConnectionState::is_connected).await;
    assert!(t.elapsed() < Duration::from_secs(2), "connected at once, not at the backoff step: {:?}", t.elapsed());
    event_matching(&mut events, "rejoined", |e| *e == ChannelEvent::Subscribed).await;
}

#[tokio::test]
async fn network_back_on_an_open_but_dead_socket_is_noticed_by_a_probe() {
    let be = Backend::start().await;
    let proxy = Proxy::start(be.addr).await.expect("proxy");
    let mut cfg = be.config(Some(proxy.addr), None);
    cfg.heartbeat_interval = Duration::from_secs(30);
    cfg.probe_timeout = Duration::from_millis(300);
    let client = RealtimeClient::connect(cfg).expect("client");
    let ch = client.channel("probe", ChannelConfig::default());
    ready(&ch).await;
    proxy.black_hole(true);
    let t = Instant::now();
    client.network_back();
    let s = state_matching(&client, |s| !s.is_connected()).await;
    assert!(matches!(s, ConnectionState::Connecting { last_error: Some(ConnectError::HeartbeatTimeout), .. }), "{s:?}");
    assert!(t.elapsed() < Duration::from_secs(2), "the probe, not the 30 s heartbeat: {:?}", t.elapsed());
    proxy.black_hole(false);
    ready(&ch).await;
}

#[tokio::test]
async fn a_join_rate_limit_is_typed_and_its_socket_closes_do_not_reset_the_backoff() {
    let be = Backend::start_with(|l| l.joins_per_second = 1).await;
    let client = be.client(None, None);
    // Three joins per connection: whatever the window boundaries, one is refused.
    let channels: Vec<Channel> = ["a", "b", "c"].iter().map(|n| client.channel(n, ChannelConfig::default())).collect();
    let mut events: Vec<Subscription<ChannelEvent>> = channels.iter().map(Channel::events).collect();
    let limited = |e: &ChannelEvent| *e == ChannelEvent::Error(ChannelError::Limit(LimitError::TooManyJoins));
    let [ea, eb, ec] = &mut events[..] else { unreachable!() };
    tokio::select! {
        _ = event_matching(ea, "a refused", limited) => {}
        _ = event_matching(eb, "b refused", limited) => {}
        _ = event_matching(ec, "c refused", limited) => {}
    }
    let got = schedule(&client, 3, WAIT).await;
    assert!(
        got.windows(2).all(|w| w[1].0 > w[0].0),
        "each reconnect after a rate-limited connection keeps counting up: {got:?}"
    );
}

#[tokio::test]
async fn a_refused_api_key_is_retried_at_the_cap_not_on_the_fast_schedule() {
    let be = Backend::start().await;
    let mut cfg = be.config(None, None);
    cfg.api_key = "not-a-jwt".into();
    let client = RealtimeClient::connect(cfg).expect("client");
    let s = state_matching(&client, |s| matches!(s, ConnectionState::Connecting { retry_at: Some(_), .. })).await;
    let ConnectionState::Connecting {
        retry_at: Some(at),
        last_error: Some(ConnectError::Refused { status, message }),
        ..
    } = s
    else {
        panic!("the refusal is reported: {s:?}")
    };
    assert_eq!(status, 401);
    assert!(message.contains("JWT"), "the server's reason: {message}");
    let wait = at - Instant::now();
    assert!(wait > Duration::from_millis(800), "the cap (1 s here), not the first step (0.1 s): {wait:?}");
}
