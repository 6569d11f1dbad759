//! `ruwad-bench`: benchmarks of the local backend side by side with a reference broker.
//!
//! ```text
//! ruwad-bench [--quick] [--server-bin PATH] [--nats-bin PATH] [--out docs/benchmarks.md]
//! ```
//! Starts a release `ruwad-server` and Debian's `nats-server` (WebSocket listener) on
//! loopback, runs each scenario on both in alternating rounds (so a noisy neighbour hurts
//! both alike), prints the figures and rewrites its section of `docs/benchmarks.md` with the
//! figures, the ratios and the method. Absolute numbers move ±30 % between runs on shared
//! machines; the ratios are the result.

mod brokers;
mod changes;
mod fanout;
mod payload;
mod section;
mod server_proc;
mod stats;

use std::fmt::Write as _;
use std::time::Instant;

use anyhow::Context;

use brokers::{Nats, Ruwad, Target};
use stats::{ms, Latencies};

struct Args {
    quick: bool,
    server_bin: String,
    nats_bin: String,
    out: String,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut a = Args {
        quick: false,
        server_bin: "target/release/ruwad-server".into(),
        nats_bin: "nats-server".into(),
        out: "docs/benchmarks.md".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--quick" => a.quick = true,
            "--server-bin" => a.server_bin = it.next().context("--server-bin needs a path")?,
            "--nats-bin" => a.nats_bin = it.next().context("--nats-bin needs a path")?,
            "--out" => a.out = it.next().context("--out needs a path")?,
            other => anyhow::bail!("unknown argument {other:?}; usage: ruwad-bench [--quick] [--server-bin PATH] [--nats-bin PATH] [--out FILE]"),
        }
    }
    Ok(a)
}

const SUBSCRIBERS: usize = 100;
const WINDOW: u64 = 64;

#[derive(Default)]
struct Side {
    rates: Vec<f64>,
    latency: Latencies,
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        0.0
    } else {
        v[v.len() / 2]
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let (rounds, messages, latency_messages, change_rows) =
        if args.quick { (1, 3_000, 200, 1_000) } else { (3, 20_000, 1_000, 5_000) };
    let clock = Instant::now();
    let ruwad = Ruwad::start(&args.server_bin)?;
    let nats = Nats::start(&args.nats_bin).await?;
    let targets = [
        ("ruwad", Target::Ruwad { ws_url: ruwad.ws_url(), token: ruwad.anon_key.clone() }),
        ("nats", Target::Nats { ws_url: nats.ws_url.clone() }),
    ];
    let mut sides = [Side::default(), Side::default()];
    for round in 0..rounds {
        for (i, (name, target)) in targets.iter().enumerate() {
            let r = fanout::run(target, SUBSCRIBERS, messages, WINDOW, clock)
                .await
                .with_context(|| format!("{name} fan-out"))?;
            println!(
                "round {round} {name:5} fan-out: {:>10.0} deliveries/s ({} in {:.2?})",
                r.rate(),
                r.deliveries,
                r.elapsed
            );
            sides[i].rates.push(r.rate());
            let mut r = fanout::run(target, SUBSCRIBERS, latency_messages, 1, clock)
                .await
                .with_context(|| format!("{name} latency"))?;
            println!(
                "round {round} {name:5} 1 in flight: p50 {} p99 {}",
                ms(r.latencies.percentile(50.0)),
                ms(r.latencies.percentile(99.0))
            );
            sides[i].latency.extend(std::mem::take(&mut r.latencies).into_samples());
        }
    }
    let mut change = changes::run(&ruwad, change_rows, 1_000).await.context("insert → postgres_changes")?;
    println!(
        "insert → change at {:.0} inserts/s: p50 {} p99 {} over {} rows",
        change.achieved_rate,
        ms(change.latencies.percentile(50.0)),
        ms(change.latencies.percentile(99.0)),
        change.sent
    );

    let [ru, na] = &mut sides;
    let (ru_rate, na_rate) = (median(&ru.rates), median(&na.rates));
    let ratio = ru_rate / na_rate;
    println!("fan-out ratio ruwad / nats-server = {ratio:.2} (target ≥ 0.8)");
    let report =
        render(&args, &nats.version, rounds, messages, latency_messages, ru_rate, na_rate, ru, na, &mut change);
    section::write_section(&args.out, "server", &report)?;
    println!("wrote {}", args.out);
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn render(
    args: &Args,
    nats_version: &str,
    rounds: usize,
    messages: u64,
    latency_messages: u64,
    ru_rate: f64,
    na_rate: f64,
    ru: &mut Side,
    na: &mut Side,
    change: &mut changes::ChangeResult,
) -> String {
    let (cpu, cores) = section::machine();
    let pass = |ok: bool| if ok { "met" } else { "**not met**" };
    let mut s = String::new();
    let _ = writeln!(s, "## Local backend (`ruwad-bench`{})\n", if args.quick { " --quick" } else { "" });
    let _ = writeln!(s, "Run on {} ({cpu}, {cores} cores) against a release `ruwad-server` and {nats_version}, both on loopback, in the same run.\n", chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"));
    let _ = writeln!(s, "| scenario | ruwad-server | nats-server | ratio | target |");
    let _ = writeln!(s, "|---|---|---|---|---|");
    let _ = writeln!(s, "| broadcast fan-out, 100 subscribers, 64 B, 64 in flight (delivered msgs/s, median of {rounds}) | {ru_rate:.0} | {na_rate:.0} | {:.2} | ≥ 0.8 × nats: {} |", ru_rate / na_rate, pass(ru_rate >= 0.8 * na_rate));
    let (rp50, rp99, np50, np99) = (
        ru.latency.percentile(50.0),
        ru.latency.percentile(99.0),
        na.latency.percentile(50.0),
        na.latency.percentile(99.0),
    );
    let _ = writeln!(
        s,
        "| broadcast latency, 1 in flight, p50 | {} | {} | {:.2} | |",
        ms(rp50),
        ms(np50),
        rp50.as_secs_f64() / np50.as_secs_f64().max(1e-9)
    );
    let _ = writeln!(
        s,
        "| broadcast latency, 1 in flight, p99 | {} | {} | {:.2} | ≤ 10 ms: {} |",
        ms(rp99),
        ms(np99),
        rp99.as_secs_f64() / np99.as_secs_f64().max(1e-9),
        pass(rp99.as_millis() <= 10)
    );
    let (cp50, cp99) = (change.latencies.percentile(50.0), change.latencies.percentile(99.0));
    let _ = writeln!(
        s,
        "| insert → postgres_changes at {:.0} inserts/s, p50 | {} | — | | |",
        change.achieved_rate,
        ms(cp50)
    );
    let _ = writeln!(
        s,
        "| insert → postgres_changes at {:.0} inserts/s, p99 | {} | — | | ≤ 15 ms: {} |",
        change.achieved_rate,
        ms(cp99),
        pass(cp99.as_millis() <= 15)
    );
    let _ = writeln!(s, "\n**Method.** Both brokers are separate processes; the clients are one `ruwad-bench` process (tokio-tungstenite). \
Ruwād clients speak Realtime vsn 2.0.0 exactly as realtime-js does: they join `realtime:bench`, the publisher sends binary kind-3 broadcast frames and subscribers receive kind-4 frames. \
NATS clients use nats-server's WebSocket listener with `SUB`/`PUB`. Payloads are 64 bytes of JSON carrying a sequence number and the send time. \
*Fan-out*: {SUBSCRIBERS} subscribers, {messages} messages per round, the publisher keeping at most {WINDOW} messages in flight (a message leaves the window once every subscriber has it); \
the rate is deliveries per second from the first publish to the last delivery; rounds alternate between the brokers ({rounds} each) and the median is reported. \
*Latency*: one message in flight, {latency_messages} messages per round; each delivery's latency is receive time minus send time (one clock); percentiles over all deliveries of all rounds (nearest rank). \
*Insert → change*: a signed-in room member subscribes to INSERTs on `chat_messages` filtered by `room_id=eq.<room>`; the same user inserts rows through `POST /rest/v1/chat_messages` (row rules checked on insert and on delivery) paced at 1,000/s, {} rows; latency is from just before each POST to the change's arrival. \
Every write is durable before it is acknowledged (SQLite WAL, `synchronous=FULL`); concurrent writes share one commit (group commit, see `crates/server/src/db.rs`). \
The machine's two cores are shared by the broker and the clients, so absolute figures are lower than on a desktop; compare the ratios.", change.sent);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The harness itself against the reference broker: every message reaches every
    /// subscriber, and both modes report plausible figures. (`scripts/setup` installs
    /// Debian's nats-server.)
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn nats_fanout_delivers_every_message_to_every_subscriber() {
        let nats = Nats::start("nats-server").await.expect("nats-server must be installed (scripts/setup)");
        let target = Target::Nats { ws_url: nats.ws_url.clone() };
        let clock = Instant::now();
        let r = fanout::run(&target, 10, 2_000, WINDOW, clock).await.expect("fan-out");
        assert_eq!(r.deliveries, 20_000, "10 subscribers × 2,000 messages");
        let mut r = fanout::run(&target, 5, 50, 1, clock).await.expect("latency");
        assert_eq!(r.deliveries, 250);
        assert!(r.latencies.percentile(50.0) > std::time::Duration::ZERO);
    }
}
