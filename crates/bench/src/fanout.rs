//! Broadcast fan-out: one publisher, N subscribers on one topic, 64-byte payloads.
//!
//! - Throughput: the publisher keeps at most `window` messages in flight, a message leaving
//!   the window once **every** subscriber has received it; the figure is deliveries per second
//!   from the first publish to the last delivery.
//! - Latency: one message in flight; each delivery's latency is its receive time minus the
//!   publish time carried in the payload (sender and receivers share one clock).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Message;

use crate::brokers::{self, Deliveries, Target};
use crate::payload;
use crate::stats::Latencies;

pub struct FanoutResult {
    pub deliveries: u64,
    pub elapsed: Duration,
    pub latencies: Latencies,
}

impl FanoutResult {
    pub fn rate(&self) -> f64 {
        self.deliveries as f64 / self.elapsed.as_secs_f64()
    }
}

struct Progress {
    /// Highest sequence number each subscriber has received (+1; 0 = none).
    seen: Vec<AtomicU64>,
    delivered: AtomicU64,
    moved: Notify,
}

impl Progress {
    fn slowest(&self) -> u64 {
        self.seen.iter().map(|s| s.load(Ordering::Acquire)).min().unwrap_or(0)
    }
}

/// Runs `messages` publishes to `subscribers` receivers with at most `window` in flight.
pub async fn run(
    target: &Target,
    subscribers: usize,
    messages: u64,
    window: u64,
    clock: Instant,
) -> anyhow::Result<FanoutResult> {
    let progress = Arc::new(Progress {
        seen: (0..subscribers).map(|_| AtomicU64::new(0)).collect(),
        delivered: AtomicU64::new(0),
        moved: Notify::new(),
    });
    let mut tasks = Vec::with_capacity(subscribers);
    for i in 0..subscribers {
        let ws = brokers::subscribe(target).await?;
        let (progress, target) = (Arc::clone(&progress), target.clone());
        tasks.push(tokio::spawn(async move { receive(ws, target, i, progress, messages, clock).await }));
    }
    let mut publisher = brokers::publisher(target).await?;
    // Let subscriptions settle before timing.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let mut last_move = Instant::now();
    let mut last_slowest = 0;
    for seq in 0..messages {
        loop {
            let slowest = progress.slowest();
            if seq < slowest + window {
                break;
            }
            if slowest != last_slowest {
                (last_slowest, last_move) = (slowest, Instant::now());
            } else if last_move.elapsed() > Duration::from_secs(10) {
                bail!("no progress for 10 s at message {seq}: deliveries lost (slowest subscriber at {slowest})");
            }
            let _ = tokio::time::timeout(Duration::from_millis(50), progress.moved.notified()).await;
        }
        let now = clock.elapsed().as_nanos() as u64;
        publisher.send(brokers::publish_frame(target, seq + 2, &payload::encode(seq, now))).await?;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while progress.slowest() < messages {
        if Instant::now() > deadline {
            bail!("deliveries lost: slowest subscriber at {} of {messages}", progress.slowest());
        }
        let _ = tokio::time::timeout(Duration::from_millis(50), progress.moved.notified()).await;
    }
    let elapsed = started.elapsed();
    let mut latencies = Latencies::default();
    for t in tasks {
        latencies.extend(t.await.map_err(|e| anyhow!("subscriber task: {e}"))??);
    }
    let _ = publisher.close(None).await;
    Ok(FanoutResult { deliveries: progress.delivered.load(Ordering::Acquire), elapsed, latencies })
}

async fn receive(
    mut ws: brokers::Ws,
    target: Target,
    index: usize,
    progress: Arc<Progress>,
    messages: u64,
    clock: Instant,
) -> anyhow::Result<Vec<u64>> {
    let mut parser = Deliveries::default();
    let mut lat = Vec::with_capacity(messages as usize);
    while progress.seen[index].load(Ordering::Acquire) < messages {
        let msg = tokio::time::timeout(Duration::from_secs(30), ws.next())
            .await
            .map_err(|_| anyhow!("subscriber {index} idle 30 s"))?
            .ok_or_else(|| anyhow!("subscriber {index}: closed"))??;
        let data = match msg {
            Message::Binary(b) => b.to_vec(),
            Message::Text(t) => t.as_bytes().to_vec(),
            _ => continue,
        };
        let mut newest = None;
        let reply = parser.feed(&target, &data, |p| {
            if let Some((seq, t)) = payload::decode(p) {
                let now = clock.elapsed().as_nanos() as u64;
                lat.push(now.saturating_sub(t));
                newest = Some(seq);
                progress.delivered.fetch_add(1, Ordering::AcqRel);
            }
        });
        if let Some(r) = reply {
            ws.send(Message::Binary(r.into())).await?;
        }
        if let Some(seq) = newest {
            progress.seen[index].fetch_max(seq + 1, Ordering::AcqRel);
            progress.moved.notify_one();
        }
    }
    let _ = ws.close(None).await;
    Ok(lat)
}
