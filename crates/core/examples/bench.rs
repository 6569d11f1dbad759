//! Benchmarks of the engine's queue and cache; rewrites its section of `docs/benchmarks.md`.
//!
//! ```text
//! cargo run --release -p ruwad-core --example bench -- [--quick] [--out docs/benchmarks.md]
//! ```
//!
//! 1. **Drain after reconnect**: N messages queued offline in one room (the engine told the
//!    network is down), then `network_back`; timed until the engine reports an empty queue,
//!    then the server's rows are checked (lost, duplicated, order). Once with the engine's
//!    batching (up to 500 rows per insert), once with one request per message, one at a time
//!    (what matrix-sdk's send queue does), in the same run against the same server.
//! 2. **Enqueue cost** of one user action (local echo + outbox entry, one transaction) with
//!    `synchronous=FULL` (the default) and `NORMAL`.
//! 3. **Open and load**: a 100,000-message cache (20 rooms × 5,000, reactions on 10 %), then
//!    open the store and read the room list and the newest 50 messages of every room.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use ruwad_core::queue::sender::SenderOptions;
use ruwad_core::queue::{self, Action, ClaimLimits};
use ruwad_core::store::cache;
use ruwad_core::store::{Store, StoreOptions, Synchronous};
use ruwad_core::{Engine, EngineConfig, Event};
use ruwad_server::{Config, Server};
use ruwad_supabase::auth::MemoryStore;
use ruwad_supabase::rest::{Order, Rest};
use ruwad_supabase::Project;
use serde_json::json;
use uuid::Uuid;

struct Args {
    quick: bool,
    out: String,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut a = Args { quick: false, out: "docs/benchmarks.md".into() };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--quick" => a.quick = true,
            "--out" => a.out = it.next().context("--out needs a path")?,
            other => anyhow::bail!("unknown argument {other:?}; usage: bench [--quick] [--out FILE]"),
        }
    }
    Ok(a)
}

struct Drain {
    messages: usize,
    elapsed: Duration,
    requests_hint: String,
    lost: usize,
    duplicated: usize,
    in_order: bool,
}

async fn engine(server: &Server, dir: &std::path::Path, sender: SenderOptions) -> anyhow::Result<Engine> {
    let mut config = EngineConfig::new(&server.url, &server.anon_key, dir, Arc::new(MemoryStore::new()));
    config.sender = sender;
    Ok(Engine::start(config).await?)
}

async fn drain(server: &Server, n: usize, sender: SenderOptions, hint: &str) -> anyhow::Result<Drain> {
    let dir = tempfile::tempdir()?;
    let engine = engine(server, dir.path(), sender).await?;
    let email = format!("bench-{}@test.ruwad.app", Uuid::new_v4());
    let me = engine.sign_up(&email, "bench-password", "bench").await?;
    let token = engine.auth().access_token().await.context("token")?;
    let rest = Rest::with_bearer(Project::new(&server.url, &server.anon_key)?, token);
    let room = Uuid::now_v7();
    rest.from("chat_rooms")
        .insert(json!({"id": room, "name": "bench", "kind": "channel", "created_by": me}))
        .execute::<()>()
        .await?;
    rest.from("room_members").insert(json!({"room_id": room, "user_id": me, "role": "admin"})).execute::<()>().await?;
    engine.sync_now().await?;
    engine.network_down();
    let mut sent = Vec::with_capacity(n);
    for i in 0..n {
        sent.push(engine.send_message(room, &format!("message {i} of the drain benchmark")).await?);
    }
    let mut events = engine.events();
    let start = Instant::now();
    engine.network_back();
    loop {
        match tokio::time::timeout(Duration::from_secs(600), events.recv()).await {
            Ok(Ok(Event::Outbox { counts })) if counts.queued == 0 && counts.failed == 0 => break,
            Ok(Ok(_)) => {}
            Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {
                if engine.queue_counts().await?.queued == 0 {
                    break;
                }
            }
            Ok(Err(e)) => anyhow::bail!("event stream ended: {e}"),
            Err(_) => anyhow::bail!("the drain did not finish in 10 minutes"),
        }
    }
    let elapsed = start.elapsed();
    let admin = Rest::with_bearer(Project::new(&server.url, &server.anon_key)?, server.service_role_key.clone());
    let mut on_server: Vec<Uuid> = Vec::new();
    loop {
        #[derive(serde::Deserialize)]
        struct Id {
            id: Uuid,
        }
        let page: Vec<Id> = admin
            .from("chat_messages")
            .select("id")
            .eq("room_id", room)
            .order("created_at", Order::Asc)
            .order("id", Order::Asc)
            .range(on_server.len() as u64, on_server.len() as u64 + 999)
            .execute()
            .await?;
        let k = page.len();
        on_server.extend(page.into_iter().map(|r| r.id));
        if k < 1000 {
            break;
        }
    }
    let distinct: HashSet<Uuid> = on_server.iter().copied().collect();
    let lost = sent.iter().filter(|id| !distinct.contains(id)).count();
    // Ids are the primary key, so a duplicate would be the same text under another id: count
    // the rows beyond one per distinct text (every message's text is unique).
    let contents: Vec<String> = read_contents(&admin, room).await?;
    let duplicated = contents.len() - contents.iter().collect::<HashSet<_>>().len();
    engine.shutdown().await;
    Ok(Drain { messages: n, elapsed, requests_hint: hint.into(), lost, duplicated, in_order: on_server == sent })
}

async fn read_contents(admin: &Rest, room: Uuid) -> anyhow::Result<Vec<String>> {
    #[derive(serde::Deserialize)]
    struct Content {
        content: String,
    }
    let mut out = Vec::new();
    loop {
        let page: Vec<Content> = admin
            .from("chat_messages")
            .select("content")
            .eq("room_id", room)
            .order("id", Order::Asc)
            .range(out.len() as u64, out.len() as u64 + 999)
            .execute()
            .await?;
        let k = page.len();
        out.extend(page.into_iter().map(|c| c.content));
        if k < 1000 {
            return Ok(out);
        }
    }
}

/// Mean and 99th percentile of one enqueue (one transaction) under `sync`.
async fn enqueue_cost(sync: Synchronous, n: usize) -> anyhow::Result<(Duration, Duration)> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path().join("cache.db"), StoreOptions { synchronous: sync }).await?;
    let (me, room) = (Uuid::now_v7(), Uuid::now_v7());
    store
        .write(move |tx, _| {
            tx.execute(
                "INSERT INTO room_members (room_id, user_id, role, joined_at) VALUES (?1, ?2, 'member', '2026-01-01T00:00:00.000000+00:00')",
                rusqlite::params![room.to_string(), me.to_string()],
            )?;
            Ok(())
        })
        .await?;
    let mut times = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        let action =
            Action::SendMessage { id: Uuid::now_v7(), room_id: room, content: format!("m{i}"), reply_to: None };
        store.write(move |tx, inflight| queue::enqueue(tx, inflight, me, action)).await?;
        times.push(t.elapsed());
    }
    store.close().await;
    times.sort();
    let mean = times.iter().sum::<Duration>() / n as u32;
    Ok((mean, times[(n * 99 / 100).min(n - 1)]))
}

struct Load {
    messages: usize,
    file_mb: f64,
    open: Vec<Duration>,
    rooms: Vec<Duration>,
    pages: Vec<Duration>,
    total: Vec<Duration>,
}

async fn open_and_load(rounds: usize) -> anyhow::Result<Load> {
    const ROOMS: usize = 20;
    const PER_ROOM: usize = 5_000;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("cache.db");
    let me = Uuid::now_v7();
    let rooms: Vec<Uuid> = (0..ROOMS).map(|_| Uuid::now_v7()).collect();
    {
        let store = Store::open(&path, StoreOptions::default()).await?;
        let rs = rooms.clone();
        store
            .write(move |tx, _| {
                let base = chrono::Utc::now() - chrono::Duration::days(30);
                for (ri, room) in rs.iter().enumerate() {
                    tx.execute(
                        "INSERT INTO rooms (id, name, kind, created_by, created_at) VALUES (?1, ?2, 'channel', ?3, ?4)",
                        rusqlite::params![room.to_string(), format!("room {ri}"), me.to_string(), ruwad_core::time::format(base)],
                    )?;
                    tx.execute(
                        "INSERT INTO room_members (room_id, user_id, role, joined_at, last_read_at) VALUES (?1, ?2, 'member', ?3, ?4)",
                        rusqlite::params![
                            room.to_string(),
                            me.to_string(),
                            ruwad_core::time::format(base),
                            ruwad_core::time::format(base + chrono::Duration::days(29))
                        ],
                    )?;
                    let mut msg = tx.prepare(
                        "INSERT INTO messages (id, room_id, user_id, content, type, created_at, local_at) VALUES (?1, ?2, ?3, ?4, 'text', ?5, ?5)",
                    )?;
                    let mut react = tx.prepare(
                        "INSERT INTO reactions (message_id, user_id, emoji, created_at) VALUES (?1, ?2, '👍', ?3)",
                    )?;
                    for i in 0..PER_ROOM {
                        let id = Uuid::now_v7();
                        let at = ruwad_core::time::format(base + chrono::Duration::seconds((i * 500 + ri) as i64));
                        let author = if i % 3 == 0 { me } else { rs[(ri + 1) % rs.len()] };
                        msg.execute(rusqlite::params![
                            id.to_string(),
                            room.to_string(),
                            author.to_string(),
                            format!("message {i} in room {ri}: some ordinary chat text of a typical length"),
                            at
                        ])?;
                        if i % 10 == 0 {
                            react.execute(rusqlite::params![id.to_string(), me.to_string(), at])?;
                        }
                    }
                }
                Ok(())
            })
            .await?;
        store.close().await;
    }
    let file_mb = std::fs::metadata(&path)?.len() as f64 / 1e6;
    let mut load =
        Load { messages: ROOMS * PER_ROOM, file_mb, open: vec![], rooms: vec![], pages: vec![], total: vec![] };
    for _ in 0..rounds {
        let t0 = Instant::now();
        let store = Store::open(&path, StoreOptions::default()).await?;
        let t1 = Instant::now();
        let listed = store.read(move |c| cache::rooms(c, me)).await?;
        let t2 = Instant::now();
        let ids: Vec<Uuid> = listed.iter().map(|r| r.id).collect();
        let pages = store
            .read(move |c| {
                let mut n = 0;
                for id in &ids {
                    n += cache::history(c, *id, None, 50)?.messages.len();
                }
                Ok(n)
            })
            .await?;
        let t3 = Instant::now();
        anyhow::ensure!(
            listed.len() == ROOMS && pages == ROOMS * 50,
            "loaded {} rooms, {pages} messages",
            listed.len()
        );
        load.open.push(t1 - t0);
        load.rooms.push(t2 - t1);
        load.pages.push(t3 - t2);
        load.total.push(t3 - t0);
        store.close().await;
    }
    Ok(load)
}

fn median(v: &[Duration]) -> Duration {
    let mut v = v.to_vec();
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let n = if args.quick { 2_000 } else { 10_000 };
    let data = tempfile::tempdir()?;
    let server = Server::start(Config::new("127.0.0.1:0".parse()?, data.path())).await?;

    let batched = SenderOptions::default();
    let b = drain(&server, n, batched.clone(), "up to 500 rows per request, 8 streams").await?;
    println!(
        "batched drain: {n} in {:?}, lost {}, duplicated {}, in order {}",
        b.elapsed, b.lost, b.duplicated, b.in_order
    );
    let single =
        SenderOptions { limits: ClaimLimits { streams: 1, rows: 1, bytes: 1 << 20 }, ..SenderOptions::default() };
    let s = drain(&server, n, single, "one request per message, one at a time").await?;
    println!(
        "one-per-request drain: {n} in {:?}, lost {}, duplicated {}, in order {}",
        s.elapsed, s.lost, s.duplicated, s.in_order
    );
    server.shutdown().await;

    let actions = if args.quick { 300 } else { 1_000 };
    let (full_mean, full_p99) = enqueue_cost(Synchronous::Full, actions).await?;
    let (normal_mean, normal_p99) = enqueue_cost(Synchronous::Normal, actions).await?;
    println!(
        "enqueue FULL mean {} p99 {}; NORMAL mean {} p99 {}",
        ms(full_mean),
        ms(full_p99),
        ms(normal_mean),
        ms(normal_p99)
    );

    let load = open_and_load(if args.quick { 3 } else { 7 }).await?;
    println!(
        "open + load: median total {} (open {}, rooms {}, 20 pages {}), max total {}",
        ms(median(&load.total)),
        ms(median(&load.open)),
        ms(median(&load.rooms)),
        ms(median(&load.pages)),
        ms(*load.total.iter().max().unwrap_or(&Duration::ZERO))
    );

    let report = render(&args, &b, &s, (actions, full_mean, full_p99, normal_mean, normal_p99), &load);
    write_section(&args.out, &report)?;
    println!("wrote {}", args.out);
    Ok(())
}

fn render(
    args: &Args,
    b: &Drain,
    s: &Drain,
    enq: (usize, Duration, Duration, Duration, Duration),
    load: &Load,
) -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let pass = |ok: bool| if ok { "met" } else { "**not met**" };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## Engine: outbound queue and cache (`ruwad-core` bench{})\n",
        if args.quick { " --quick" } else { "" }
    );
    let _ = writeln!(
        out,
        "Run on {} ({cpu}, {cores} cores), release build, the local backend in the same process on loopback.\n",
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC")
    );
    let _ = writeln!(out, "| scenario | figure | lost / duplicated / in order | target |");
    let _ = writeln!(out, "|---|---|---|---|");
    for (d, target) in [(b, Some(2.0)), (s, None)] {
        let _ = writeln!(
            out,
            "| drain {} queued messages after reconnect, {} | {:.2} s ({:.0} msg/s) | {} / {} / {} | {} |",
            d.messages,
            d.requests_hint,
            d.elapsed.as_secs_f64(),
            d.messages as f64 / d.elapsed.as_secs_f64(),
            d.lost,
            d.duplicated,
            if d.in_order { "yes" } else { "**no**" },
            match target {
                Some(t) => format!(
                    "≤ {t} s, 0 lost, 0 duplicated: {}",
                    pass(d.elapsed.as_secs_f64() <= t && d.lost == 0 && d.duplicated == 0)
                ),
                None => format!("batched is {:.0}× faster", s.elapsed.as_secs_f64() / b.elapsed.as_secs_f64()),
            }
        );
    }
    let (actions, fm, fp, nm, np) = enq;
    let _ = writeln!(
        out,
        "| one user action (echo + outbox entry, one transaction), `synchronous=FULL` | mean {} / p99 {} | | |",
        ms(fm),
        ms(fp)
    );
    let _ = writeln!(out, "| the same with `synchronous=NORMAL` | mean {} / p99 {} | | |", ms(nm), ms(np));
    let max_total = *load.total.iter().max().unwrap_or(&Duration::ZERO);
    let _ = writeln!(
        out,
        "| open the store + room list + newest 50 messages of 20 rooms, {} cached messages ({:.0} MB) | median {} (open {}, rooms {}, pages {}); max {} | | ≤ 50 ms: {} |",
        load.messages,
        load.file_mb,
        ms(median(&load.total)),
        ms(median(&load.open)),
        ms(median(&load.rooms)),
        ms(median(&load.pages)),
        ms(max_total),
        pass(median(&load.total) <= Duration::from_millis(50))
    );
    let _ = writeln!(
        out,
        "\n**Method.** *Drain*: a fresh user and room per run; the engine is told the network is down \
(`network_down`), {n} messages are sent through the public API (each one its own SQLite transaction: \
local echo + outbox entry, `synchronous=FULL`), then `network_back` starts the clock, which stops at the \
engine's `outbox` event reporting 0 queued — every entry confirmed by the server and deleted. Then the \
room is read back as `service_role`: *lost* = sent ids missing, *duplicated* = rows beyond one per distinct message text (ids are the primary key, so a duplicate could only be a second id for the same message), \
*in order* = the server's `(created_at, id)` order equals the send order. The batched run uses the \
default sender (consecutive inserts of a stream as one JSON-array `POST` with \
`Prefer: resolution=ignore-duplicates,return=representation`, up to 500 rows / 1 MiB); the comparison \
run uses the same engine limited to one row per request and one stream at a time, as matrix-sdk's send \
queue sends. *Enqueue*: {actions} `SendMessage` actions applied one transaction each on a fresh \
database, timed from the call to the committed reply of the store thread. *Open and load*: a cache \
file of 20 rooms × 5,000 messages (every tenth with a reaction) is built once; each of {} rounds opens \
it with a new `Store` (thread start, version check, pragmas), lists the rooms with unread counts, and \
reads the newest 50 messages of each room with their send state and reactions; the OS page cache is \
warm, SQLite's is cold. The machine's cores are shared with other work, so figures move between runs.",
        load.total.len(),
        n = b.messages,
    );
    out
}

const START: &str = "<!-- ruwad-core:bench:start -->";
const END: &str = "<!-- ruwad-core:bench:end -->";

/// Replaces this benchmark's section in `path`, keeping everything else.
fn write_section(path: &str, body: &str) -> anyhow::Result<()> {
    let old = std::fs::read_to_string(path).unwrap_or_else(|_| {
        "# Benchmarks\n\nFigures are written by the benchmark programs; each section says how it was measured.\n".into()
    });
    let section = format!("{START}\n{body}\n{END}");
    let new = match (old.find(START), old.find(END)) {
        (Some(a), Some(b)) if b > a => format!("{}{section}{}", &old[..a], &old[b + END.len()..]),
        _ => format!("{}\n\n{section}\n", old.trim_end()),
    };
    if let Some(dir) = std::path::Path::new(path).parent() {
        std::fs::create_dir_all(dir).ok();
    }
    std::fs::write(path, new).with_context(|| format!("cannot write {path}"))
}
