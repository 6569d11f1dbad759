//! `ruwad-client-bench`: figures of the Rust realtime client (`ruwad-supabase`).
//!
//! ```text
//! ruwad-client-bench [--quick] [--server-bin PATH] [--out docs/benchmarks.md]
//! ```
//! 1. decode + dispatch throughput of postgres_changes frames on one thread (no socket);
//! 2. reconnect time after restarts of a release `ruwad-server` on the same port and data dir.
//!
//! Prints the figures and rewrites its own section of `docs/benchmarks.md`
//! (`<!-- ruwad-bench:client:… -->`), leaving the others alone.

mod client_decode;
mod client_restart;
mod section;
mod server_proc;
#[allow(dead_code)] // shared with `ruwad-bench`, which uses all of it
mod stats;

use std::fmt::Write as _;

use anyhow::Context;

use stats::ms;

struct Args {
    quick: bool,
    server_bin: String,
    out: String,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut a =
        Args { quick: false, server_bin: "target/release/ruwad-server".into(), out: "docs/benchmarks.md".into() };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--quick" => a.quick = true,
            "--server-bin" => a.server_bin = it.next().context("--server-bin needs a path")?,
            "--out" => a.out = it.next().context("--out needs a path")?,
            other => anyhow::bail!(
                "unknown argument {other:?}; usage: ruwad-client-bench [--quick] [--server-bin PATH] [--out FILE]"
            ),
        }
    }
    Ok(a)
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let (frames, rounds, restarts) = if args.quick { (20_000, 3, 10) } else { (100_000, 7, 50) };

    let throughput = client_decode::run(frames, rounds)?;
    for t in &throughput {
        println!("decode + dispatch, {}: {:.0} frames/s ({} B/frame)", t.label, t.frames_per_sec, t.frame_bytes);
    }

    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let mut restart = runtime.block_on(client_restart::run(&args.server_bin, restarts)).context("restart benchmark")?;
    println!(
        "reconnect after restart over {restarts}: p50 {} p99 {} (server down p50 {}, client after ready p50 {})",
        ms(restart.reconnect.percentile(50.0)),
        ms(restart.reconnect.percentile(99.0)),
        ms(restart.server_down.percentile(50.0)),
        ms(restart.after_ready.percentile(50.0)),
    );

    let report = render(&args, frames, rounds, &throughput, &mut restart);
    section::write_section(&args.out, "client", &report)?;
    println!("wrote {}", args.out);
    Ok(())
}

fn render(
    args: &Args,
    frames: usize,
    rounds: usize,
    throughput: &[client_decode::Throughput],
    restart: &mut client_restart::RestartResult,
) -> String {
    let (cpu, cores) = section::machine();
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "unknown".into());
    let pass = |ok: bool| if ok { "met" } else { "**not met**" };
    let mut s = String::new();
    let _ = writeln!(s, "## Realtime client (`ruwad-client-bench`{})\n", if args.quick { " --quick" } else { "" });
    let _ = writeln!(
        s,
        "Run on {} ({cpu}, {cores} cores, load average {load} when the run ended), release build.\n",
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC")
    );
    let _ = writeln!(s, "| measurement | figure | target |");
    let _ = writeln!(s, "|---|---|---|");
    let (p50, p99) = (restart.reconnect.percentile(50.0), restart.reconnect.percentile(99.0));
    let _ = writeln!(
        s,
        "| reconnect + rejoin after a server restart, p50 ({} restarts) | {} | ≤ 1.5 s: {} |",
        restart.restarts,
        ms(p50),
        pass(p50.as_millis() <= 1500)
    );
    let _ = writeln!(s, "| reconnect + rejoin after a server restart, p99 | {} | |", ms(p99));
    let _ = writeln!(
        s,
        "| of which the server was down (SIGTERM → ready line), p50 / p99 | {} / {} | |",
        ms(restart.server_down.percentile(50.0)),
        ms(restart.server_down.percentile(99.0))
    );
    let _ = writeln!(
        s,
        "| of which the client took after the server was ready, p50 / p99 | {} / {} | first retry ≤ 1 s |",
        ms(restart.after_ready.percentile(50.0)),
        ms(restart.after_ready.percentile(99.0))
    );
    for (i, t) in throughput.iter().enumerate() {
        let target =
            if i == 0 { format!("≥ 200k/s: {}", pass(t.frames_per_sec >= 200_000.0)) } else { String::new() };
        let _ = writeln!(
            s,
            "| decode + dispatch of postgres_changes, {} ({} B/frame, {} deliveries/frame) | {:.0} frames/s | {target} |",
            t.label, t.frame_bytes, t.deliveries_per_frame, t.frames_per_sec
        );
    }
    let _ = writeln!(
        s,
        "\n**Method.** *Reconnect*: a release `ruwad-server` runs as a child process; the client (`RealtimeClient` with its default \
configuration: 25 s heartbeat, reconnect backoff 1 s × 2ⁿ capped at 30 s with up to half of each wait jittered away, so the first \
retry comes 0.5–1 s after the loss) holds one channel with a postgres_changes subscription and a broadcast listener. Each of the {} \
rounds sends SIGTERM (graceful shutdown: the socket gets close 1001), waits for the process to exit, starts the server again on the \
same port and data dir, and measures from just before SIGTERM to the channel's `Subscribed` event (socket reopened, channel rejoined, \
subscription ids re-read from the join reply); then a broadcast sent through the new server must reach the channel. \
Percentiles are nearest-rank over all rounds. The reconnect time is dominated by the jittered first retry, which is deliberate: \
it spreads the clients of a restarted server over half a second instead of letting them return in one wave. \
*Decode + dispatch*: {frames} distinct pre-encoded frames of a `chat_messages` INSERT, shaped as the local server sends them \
(9 columns, UUIDs, Arabic and Latin text), are fed as text to the client's session on one thread without a socket or runtime — \
the code the socket task runs per frame: envelope and typed change decoding, routing by topic and join_ref, id and event matching, \
hand-off to each subscriber's bounded queue (drained every 1,024 frames and every delivery counted); the figure is the median of {rounds} rounds. \
The machine's two cores are shared with other work, so figures move between runs.",
        restart.restarts
    );
    s
}
