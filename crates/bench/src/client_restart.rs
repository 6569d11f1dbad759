//! Reconnect time after a server restart: a release `ruwad-server` runs as a child process; the
//! realtime client (default configuration: first retry after 0.5–1 s) holds one channel with a
//! postgres_changes subscription and a broadcast listener. Each round stops the server with
//! SIGTERM (a graceful shutdown: the socket gets close 1001), starts it again on the same port
//! and data dir, and times
//! - *reconnect*: from just before SIGTERM to the channel's `Subscribed` event (socket reopened
//!   and channel rejoined with its subscription ids re-read);
//! - *server down*: from SIGTERM to the new server's ready line (not the client's doing);
//! - *client after ready*: from the ready line to `Subscribed` (the client's share).
//!
//! After each rejoin a broadcast sent through the new server must arrive on the channel, so
//! every round ends with a working subscription.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use ruwad_supabase::realtime::*;
use serde_json::json;

use crate::server_proc::{spawn_ruwad, RuwadProc};
use crate::stats::Latencies;

pub struct RestartResult {
    pub restarts: usize,
    pub reconnect: Latencies,
    pub server_down: Latencies,
    pub after_ready: Latencies,
}

async fn spawn(bin: &str, addr: &str, dir: PathBuf) -> anyhow::Result<RuwadProc> {
    let (bin, addr) = (bin.to_string(), addr.to_string());
    tokio::task::spawn_blocking(move || {
        // The port can be busy for a moment after the previous process exits.
        let mut last = None;
        for _ in 0..100 {
            match spawn_ruwad(&bin, &addr, &dir) {
                Ok(p) => return Ok(p),
                Err(e) => last = Some(e),
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(last.unwrap_or_else(|| anyhow!("server did not start")))
    })
    .await?
}

async fn stop(server: RuwadProc) -> anyhow::Result<()> {
    tokio::task::spawn_blocking(move || {
        let mut server = server;
        server.proc.terminate();
    })
    .await
    .context("stopping the server")
}

async fn next_event(events: &mut Subscription<ChannelEvent>, want: &ChannelEvent) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(e)) if e == *want => return Ok(()),
            Ok(Some(_)) => continue,
            Ok(None) => bail!("the channel's events ended"),
            Err(_) => bail!("no {want:?} within 60 s"),
        }
    }
}

pub async fn run(bin: &str, restarts: usize) -> anyhow::Result<RestartResult> {
    let dir = tempfile::tempdir()?;
    let mut server = spawn(bin, "127.0.0.1:0", dir.path().to_path_buf()).await?;
    let addr = server.url.trim_start_matches("http://").to_string();
    let (url, anon_key) = (server.url.clone(), server.anon_key.clone());
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?;
    let client = RealtimeClient::connect(RealtimeConfig::new(url.clone(), anon_key.clone()))?;
    let channel = client.channel("bench-restart", ChannelConfig::default());
    let _changes = channel.subscribe_changes(PostgresChangesFilter::table(ChangeEvent::Insert, "challenges"));
    let mut broadcasts = channel.broadcasts("ping");
    let mut events = channel.events();
    tokio::time::timeout(Duration::from_secs(30), channel.ready()).await.context("first join")??;

    let mut result = RestartResult {
        restarts,
        reconnect: Latencies::default(),
        server_down: Latencies::default(),
        after_ready: Latencies::default(),
    };
    for round in 0..restarts {
        while events.try_recv().is_some() {}
        let t0 = Instant::now();
        stop(server).await?;
        server = spawn(bin, &addr, dir.path().to_path_buf()).await?;
        let ready = Instant::now();
        next_event(&mut events, &ChannelEvent::Subscribed).await.with_context(|| format!("round {round}"))?;
        let subscribed = Instant::now();
        let nanos = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        result.reconnect.extend([nanos(subscribed - t0)]);
        result.server_down.extend([nanos(ready - t0)]);
        result.after_ready.extend([nanos(subscribed.saturating_duration_since(ready))]);

        let resp = http
            .post(format!("{url}/realtime/v1/api/broadcast"))
            .header("apikey", &anon_key)
            .json(&json!({"messages": [{"topic": "bench-restart", "event": "ping", "payload": {"round": round}}]}))
            .send()
            .await?;
        if resp.status().as_u16() != 202 {
            bail!("REST broadcast refused: {}", resp.status());
        }
        let got = tokio::time::timeout(Duration::from_secs(10), broadcasts.recv())
            .await
            .with_context(|| format!("round {round}: no broadcast after the rejoin"))?
            .ok_or_else(|| anyhow!("broadcast stream ended"))?;
        if got.payload != BroadcastPayload::Json(json!({"round": round})) {
            bail!("round {round}: unexpected broadcast {got:?}");
        }
    }
    client.disconnect().await;
    stop(server).await?;
    Ok(result)
}
