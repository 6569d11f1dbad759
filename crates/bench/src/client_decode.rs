//! Decode + dispatch throughput of the realtime client: pre-encoded `postgres_changes` frames
//! (as the local server sends them for a `chat_messages` INSERT) are fed as text straight into
//! the client's session — the same code the socket task runs for each frame: decode the
//! envelope, decode the change typed, route it by topic and join_ref, match the subscription
//! ids and events, hand it to each subscriber's queue — on one thread, with no socket and no
//! runtime. Subscriber queues are drained between batches, and every delivery is counted.

use std::time::Instant;

use anyhow::{bail, Context};
use ruwad_supabase::realtime::bench_support::DispatchBench;
use ruwad_supabase::realtime::{ChangeEvent, PostgresChangesFilter, Vsn};
use serde_json::{json, Value};

const TOPIC: &str = "realtime:bench-decode";
const BATCH: usize = 1024;

/// One scenario's result.
pub struct Throughput {
    pub label: String,
    /// Median over the rounds.
    pub frames_per_sec: f64,
    pub deliveries_per_frame: usize,
    pub frame_bytes: usize,
}

/// The `data` of a chat message INSERT, shaped as the server encodes it.
fn change_data(n: usize) -> Value {
    let cols = [
        ("id", "uuid"),
        ("room_id", "uuid"),
        ("user_id", "uuid"),
        ("content", "text"),
        ("type", "text"),
        ("reply_to", "uuid"),
        ("edited_at", "timestamptz"),
        ("deleted_at", "timestamptz"),
        ("created_at", "timestamptz"),
    ];
    json!({
        "schema": "public",
        "table": "chat_messages",
        "type": "INSERT",
        "commit_timestamp": "2026-11-29T12:34:56.789Z",
        "columns": cols.iter().map(|(n, t)| json!({"name": n, "type": t})).collect::<Vec<_>>(),
        "record": {
            "id": format!("0193c1f2-7a4b-7cde-8f01-{n:012x}"),
            "room_id": "0193c1f2-0000-7000-8000-000000000001",
            "user_id": "0193c1f2-0000-7000-8000-0000000000aa",
            "content": format!("message {n}: the quick brown fox jumps over the lazy dog, مرحبا بالعالم"),
            "type": "text",
            "reply_to": null,
            "edited_at": null,
            "deleted_at": null,
            "created_at": "2026-11-29T12:34:56.789Z"
        },
        "errors": null
    })
}

fn frame(vsn: Vsn, n: usize, ids: &[u64]) -> String {
    let payload = json!({"ids": ids, "data": change_data(n)});
    match vsn {
        Vsn::V2 => json!([null, null, TOPIC, "postgres_changes", payload]).to_string(),
        Vsn::V1 => json!({"topic": TOPIC, "event": "postgres_changes", "payload": payload, "ref": null}).to_string(),
    }
}

fn filter(event: ChangeEvent, table: &str) -> PostgresChangesFilter {
    PostgresChangesFilter::table(event, table)
}

/// Runs one scenario: `subs` are the channel's subscriptions with their server ids; each
/// frame lists `frame_ids`; `want` deliveries per frame are expected.
fn scenario(
    label: &str,
    vsn: Vsn,
    subs: &[(PostgresChangesFilter, u64)],
    frame_ids: &[u64],
    want: usize,
    frames: usize,
    rounds: usize,
) -> anyhow::Result<Throughput> {
    let encoded: Vec<String> = (0..frames).map(|n| frame(vsn, n, frame_ids)).collect();
    let frame_bytes = encoded.iter().map(String::len).sum::<usize>() / encoded.len().max(1);
    let (mut bench, mut receivers) = DispatchBench::new(vsn, TOPIC, subs, BATCH * 2);
    let mut rates = Vec::new();
    for _ in 0..rounds {
        let mut delivered = 0usize;
        let t = Instant::now();
        for chunk in encoded.chunks(BATCH) {
            for f in chunk {
                bench.feed(f).context("a benchmark frame does not decode")?;
            }
            for rx in &mut receivers {
                while let Ok(change) = rx.try_recv() {
                    delivered += usize::from(change.record.is_some());
                }
            }
        }
        let elapsed = t.elapsed();
        if delivered != frames * want {
            bail!("{label}: {delivered} deliveries, expected {}", frames * want);
        }
        rates.push(frames as f64 / elapsed.as_secs_f64());
    }
    rates.sort_by(f64::total_cmp);
    Ok(Throughput {
        label: label.into(),
        frames_per_sec: rates[rates.len() / 2],
        deliveries_per_frame: want,
        frame_bytes,
    })
}

pub fn run(frames: usize, rounds: usize) -> anyhow::Result<Vec<Throughput>> {
    let one =
        [(filter(ChangeEvent::Insert, "chat_messages").filter("room_id=eq.0193c1f2-0000-7000-8000-000000000001"), 101)];
    let four = [
        (filter(ChangeEvent::Insert, "chat_messages"), 101),
        (filter(ChangeEvent::All, "chat_messages"), 102),
        (filter(ChangeEvent::Delete, "chat_messages"), 103),
        (filter(ChangeEvent::Insert, "challenges"), 104),
    ];
    Ok(vec![
        scenario("vsn 2.0.0, 1 subscription", Vsn::V2, &one, &[101], 1, frames, rounds)?,
        scenario("vsn 2.0.0, 4 subscriptions, each frame matches 2", Vsn::V2, &four, &[101, 102], 2, frames, rounds)?,
        scenario("vsn 1.0.0, 1 subscription", Vsn::V1, &one, &[101], 1, frames, rounds)?,
    ])
}
