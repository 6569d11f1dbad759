//! Reconnect and rejoin after every fault the proxy can inject, and after a server restart on
//! the same port and data dir: afterwards each subscription gets each postgres change and each
//! broadcast exactly once.

use std::time::Duration;

use fault_proxy::Proxy;
use ruwad_supabase::realtime::*;
use tokio::time::Instant;

use super::harness::*;

/// One client through a proxy, one channel with two subscribers of one filter and a broadcast
/// listener, checked live before the fault.
struct Rig {
    be: Backend,
    proxy: Proxy,
    user: User,
    client: RealtimeClient,
    channel: Channel,
    changes: Subscription<PostgresChange>,
    same_filter: Subscription<PostgresChange>,
    broadcasts: Subscription<Broadcast>,
    events: Subscription<ChannelEvent>,
    round: i64,
}

impl Rig {
    async fn start() -> Rig {
        let be = Backend::start().await;
        let proxy = Proxy::start(be.addr).await.expect("proxy");
        let user = be.user("fay").await;
        let client = be.client(Some(proxy.addr), Some(&user.token));
        let channel = client.channel("faults", ChannelConfig::default());
        let changes = channel.subscribe_changes(challenges_by(&user));
        let same_filter = channel.subscribe_changes(challenges_by(&user));
        let broadcasts = channel.broadcasts("ping");
        let mut events = channel.events();
        ready(&channel).await;
        event_matching(&mut events, "first join", |e| *e == ChannelEvent::Subscribed).await;
        let mut rig = Rig { be, proxy, user, client, channel, changes, same_filter, broadcasts, events, round: 0 };
        rig.everything_arrives_once().await;
        rig
    }

    async fn everything_arrives_once(&mut self) {
        self.round += 1;
        let name = format!("round {}", self.round);
        change_arrives_once(&self.be, &self.user, &mut [&mut self.changes, &mut self.same_filter], &name).await;
        broadcast_arrives_once(&self.be, "faults", &mut self.broadcasts, self.round).await;
    }

    /// Waits for the channel to report the connection loss and the rejoin.
    async fn rejoined(&mut self) {
        event_matching(&mut self.events, "disconnected", |e| *e == ChannelEvent::Disconnected).await;
        event_matching(&mut self.events, "subscribed again", |e| *e == ChannelEvent::Subscribed).await;
        ready(&self.channel).await;
    }
}

#[tokio::test]
async fn dropped_connection_reconnects_rejoins_and_delivers_once() {
    let mut r = Rig::start().await;
    for _ in 0..2 {
        r.proxy.drop_all();
        r.rejoined().await;
        r.everything_arrives_once().await;
    }
    assert!(r.proxy.accepted() >= 3, "one connection per drop");
}

#[tokio::test]
async fn connection_cut_in_the_middle_of_a_frame_reconnects_and_delivers_once() {
    let mut r = Rig::start().await;
    r.proxy.cut_mid_frame();
    // Traffic to cut: the next heartbeat (or this change, which is then lost with the frame).
    r.be.insert_challenge(&r.user, "torn").await;
    r.rejoined().await;
    // The torn change may have been delivered before the cut or lost with it, never twice.
    while let Some(c) = r.changes.try_recv() {
        assert_eq!(title(&c), "torn");
    }
    while r.same_filter.try_recv().is_some() {}
    r.everything_arrives_once().await;
}

#[tokio::test]
async fn black_hole_is_noticed_by_the_heartbeat_and_the_client_reconnects() {
    let mut r = Rig::start().await;
    r.proxy.black_hole(true);
    let t = Instant::now();
    let s = state_matching(&r.client, |s| !s.is_connected()).await;
    let noticed = t.elapsed();
    match s {
        ConnectionState::Connecting { last_error: Some(ConnectError::HeartbeatTimeout), .. } => {}
        other => panic!("a silent link is a heartbeat timeout: {other:?}"),
    }
    assert!(noticed <= HEARTBEAT + Duration::from_millis(300), "noticed within one heartbeat interval: {noticed:?}");
    r.proxy.black_hole(false);
    r.rejoined().await;
    r.everything_arrives_once().await;
}

#[tokio::test]
async fn small_delay_keeps_the_connection_and_a_long_one_is_survived() {
    let mut r = Rig::start().await;
    r.proxy.set_delay(Duration::from_millis(80));
    r.everything_arrives_once().await;
    tokio::time::sleep(Duration::from_millis(1000)).await; // a few heartbeats
    while let Some(e) = r.events.try_recv() {
        assert!(matches!(e, ChannelEvent::System(_)), "an 80 ms delay is no reason to reconnect: {e:?}");
    }
    assert!(r.client.state().borrow().is_connected());
    // Longer than a heartbeat interval each way: heartbeats time out, handshakes too.
    r.proxy.set_delay(Duration::from_millis(1500));
    state_matching(&r.client, |s| !s.is_connected()).await;
    r.proxy.set_delay(Duration::ZERO);
    r.rejoined().await;
    r.everything_arrives_once().await;
}

#[tokio::test]
async fn server_restart_on_the_same_port_and_data_dir_reconnects_and_delivers_once() {
    let be = Backend::start().await;
    let user = be.user("rex").await;
    let client = be.client(None, Some(&user.token));
    let ch = client.channel("restart", ChannelConfig::default());
    let mut changes = ch.subscribe_changes(challenges_by(&user));
    let mut broadcasts = ch.broadcasts("ping");
    let mut events = ch.events();
    ready(&ch).await;
    let mut be = be;
    change_arrives_once(&be, &user, &mut [&mut changes], "before").await;
    for round in 0..2 {
        be.restart().await;
        event_matching(&mut events, "disconnected", |e| *e == ChannelEvent::Disconnected).await;
        event_matching(&mut events, "subscribed", |e| *e == ChannelEvent::Subscribed).await;
        change_arrives_once(&be, &user, &mut [&mut changes], &format!("after restart {round}")).await;
        broadcast_arrives_once(&be, "restart", &mut broadcasts, round).await;
    }
}

#[tokio::test]
async fn server_down_for_a_while_is_retried_until_it_is_back() {
    let mut be = Backend::start().await;
    let user = be.user("sid").await;
    let client = be.client(None, Some(&user.token));
    let ch = client.channel("down", ChannelConfig::default());
    let mut changes = ch.subscribe_changes(challenges_by(&user));
    ready(&ch).await;
    be.stop().await;
    // Several refused attempts, with the wait growing.
    let mut rx = client.state();
    let mut attempts = 0;
    let deadline = Instant::now() + WAIT;
    while attempts < 4 {
        assert!(Instant::now() < deadline, "attempts go on");
        tokio::time::timeout(WAIT, rx.changed()).await.expect("state changes").expect("client alive");
        if let ConnectionState::Connecting { attempt, retry_at: Some(_), .. } = *rx.borrow_and_update() {
            attempts = attempts.max(attempt);
        }
    }
    be.start_again().await;
    ready(&ch).await;
    change_arrives_once(&be, &user, &mut [&mut changes], "back").await;
}
