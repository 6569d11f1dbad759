//! Benchmarks of collaborative documents; rewrites its section of `docs/benchmarks.md`.
//!
//! ```text
//! cargo run --release -p ruwad-core --example doc_bench -- [--out docs/benchmarks.md]
//! ```
//!
//! Uses the real `automerge-paper` editing trace (259,778 keystrokes) from
//! `tests/data/editing-traces/`, turned into one yrs v1 update per keystroke (as a webview's Yjs
//! would emit them). Needs Node with `tests/conformance/js/node_modules` (scripts/setup) for
//! the Yjs comparison.
//!
//! 1. **Integrate**: every update into a fresh engine document through the engine's API
//!    (`doc_updates`, 10,000 per call: log row in SQLite + apply), beside yrs alone and Yjs
//!    alone applying the same updates one by one into a fresh doc.
//! 2. **Open from its snapshot** (after the close compacted the log).
//! 3. **Catch-up of a peer 25,000 edits behind** through REST from the local backend: time and
//!    response bytes, with per-keystroke rows and with 100 ms batches.
//! 4. **Wire bytes** of the whole trace as `document_updates` inserts: per-keystroke rows vs
//!    100 ms batches (grouped by the trace's own timestamps).

use std::fmt::Write as _;
use std::io::{BufRead, Read, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use ruwad_core::docs::codec::{b64, pack};
use ruwad_core::{Engine, EngineConfig};
use ruwad_server::{Config, Server};
use ruwad_supabase::auth::MemoryStore;
use ruwad_supabase::rest::{Order, Rest};
use ruwad_supabase::Project;
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;
use yrs::updates::decoder::Decode;
use yrs::{Doc, GetString, ReadTxn, StateVector, Text, Transact, Update};

const START: &str = "<!-- ruwad-core:doc-bench:start -->";
const END: &str = "<!-- ruwad-core:doc-bench:end -->";
const BEHIND: usize = 25_000;

#[derive(Deserialize)]
struct Trace {
    #[serde(rename = "endContent")]
    end: String,
    txns: Vec<Txn>,
}

#[derive(Deserialize)]
struct Txn {
    time: String,
    patches: Vec<(usize, usize, String)>,
}

fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// One v1 update per keystroke, the trace's times (ms), and its final text.
fn keystrokes() -> anyhow::Result<(Vec<Vec<u8>>, Vec<i64>, String)> {
    let path = root().join("tests/data/editing-traces/sequential/automerge-paper.json.gz");
    let mut json = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(&path).with_context(|| format!("{}", path.display()))?)
        .read_to_string(&mut json)?;
    let trace: Trace = serde_json::from_str(&json)?;
    let doc = Doc::with_client_id(1);
    let text = doc.get_or_insert_text("content");
    let updates = Arc::new(Mutex::new(Vec::with_capacity(trace.txns.len())));
    let sink = Arc::clone(&updates);
    doc.observe_update_v1("bench", move |_, e| sink.lock().expect("updates").push(e.update.clone()))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut times = Vec::with_capacity(trace.txns.len());
    for t in &trace.txns {
        let mut txn = doc.transact_mut();
        for (pos, del, ins) in &t.patches {
            if *del > 0 {
                text.remove_range(&mut txn, *pos as u32, *del as u32);
            }
            if !ins.is_empty() {
                text.insert(&mut txn, *pos as u32, ins);
            }
        }
        drop(txn);
        times.push(chrono::DateTime::parse_from_rfc3339(&t.time).map(|d| d.timestamp_millis()).unwrap_or(0));
    }
    anyhow::ensure!(text.get_string(&doc.transact()) == trace.end, "the trace replays to its end text");
    let updates = std::mem::take(&mut *updates.lock().expect("updates"));
    Ok((updates, times, trace.end))
}

/// Merges consecutive updates whose keystrokes fall in one 100 ms window (from the first).
fn batches(updates: &[Vec<u8>], times: &[i64], window_ms: i64) -> anyhow::Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < updates.len() {
        let mut end = start + 1;
        while end < updates.len() && times[end] - times[start] < window_ms && end - start < 128 {
            end += 1;
        }
        out.push(if end - start == 1 {
            updates[start].clone()
        } else {
            yrs::merge_updates_v1(&updates[start..end]).map_err(|e| anyhow::anyhow!("{e}"))?
        });
        start = end;
    }
    Ok(out)
}

fn yrs_alone(updates: &[Vec<u8>]) -> anyhow::Result<(Duration, usize)> {
    let doc = Doc::new();
    let text = doc.get_or_insert_text("content");
    let t0 = Instant::now();
    for u in updates {
        doc.transact_mut().apply_update(Update::decode_v1(u)?)?;
    }
    let elapsed = t0.elapsed();
    let len = text.len(&doc.transact()) as usize;
    Ok((elapsed, len))
}

fn yjs_alone(updates: &[Vec<u8>]) -> anyhow::Result<(Duration, usize)> {
    let dir = root().join("tests/conformance/js");
    anyhow::ensure!(dir.join("node_modules/yjs").exists(), "run scripts/setup first (npm ci in {})", dir.display());
    let file = tempfile::NamedTempFile::new()?;
    std::fs::write(file.path(), pack(updates))?;
    let mut child = Command::new("node")
        .arg("yjs-peer.mjs")
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("node")?;
    let mut stdin = child.stdin.take().context("stdin")?;
    writeln!(stdin, "{}", json!({"cmd": "bench_apply", "file": file.path()}))?;
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().context("stdout")?).read_line(&mut line)?;
    drop(stdin);
    let _ = child.wait();
    let reply: Value = serde_json::from_str(&line)?;
    let ok = reply.get("ok").with_context(|| format!("node: {line}"))?;
    Ok((
        Duration::from_secs_f64(ok["ms"].as_f64().context("ms")? / 1000.0),
        ok["length"].as_u64().context("length")? as usize,
    ))
}

struct Backend {
    server: Server,
    _dir: tempfile::TempDir,
}

impl Backend {
    async fn start() -> anyhow::Result<Backend> {
        let dir = tempfile::tempdir()?;
        let server = Server::start(Config::new("127.0.0.1:0".parse()?, dir.path())).await?;
        Ok(Backend { server, _dir: dir })
    }

    fn admin(&self) -> anyhow::Result<Rest> {
        Ok(Rest::with_bearer(
            Project::new(&self.server.url, &self.server.anon_key)?,
            self.server.service_role_key.clone(),
        ))
    }

    async fn engine(&self, tweak: impl FnOnce(&mut EngineConfig)) -> anyhow::Result<(Engine, Uuid, tempfile::TempDir)> {
        let dir = tempfile::tempdir()?;
        let mut config =
            EngineConfig::new(&self.server.url, &self.server.anon_key, dir.path(), Arc::new(MemoryStore::default()));
        tweak(&mut config);
        let engine = Engine::start(config).await?;
        let email = format!("bench-{}@bench.ruwad.app", Uuid::new_v4());
        let id = engine.sign_up(&email, "bench password 1", "Bench").await?;
        Ok((engine, id, dir))
    }

    async fn document(&self, owner: Uuid, members: &[Uuid]) -> anyhow::Result<Uuid> {
        let id = Uuid::now_v7();
        let admin = self.admin()?;
        admin
            .from("collaborative_documents")
            .insert(json!({"id": id, "title": "automerge-paper", "created_by": owner}))
            .execute::<()>()
            .await?;
        for m in members {
            admin
                .from("document_members")
                .insert(json!({"document_id": id, "user_id": m, "role": "editor"}))
                .execute::<()>()
                .await?;
        }
        Ok(id)
    }

    async fn insert_rows(&self, doc: Uuid, user: Uuid, updates: &[Vec<u8>]) -> anyhow::Result<()> {
        let admin = self.admin()?;
        for chunk in updates.chunks(1000) {
            let rows: Vec<Value> = chunk
                .iter()
                .map(|u| json!({"id": Uuid::now_v7(), "document_id": doc, "user_id": user, "update": b64(u)}))
                .collect();
            admin.from("document_updates").insert(&rows).execute::<()>().await?;
        }
        Ok(())
    }
}

struct Integrate {
    yrs: Duration,
    yjs: Option<Duration>,
    engine: Duration,
    engine_range: (Duration, Duration),
    /// engine / yrs alone, per round (unsorted pairs of one round).
    ratios: Vec<f64>,
    close: Duration,
    open: Vec<Duration>,
    ready: Vec<Duration>,
    ok: bool,
}

async fn integrate(backend: &Backend, updates: &[Vec<u8>], end: &str) -> anyhow::Result<Integrate> {
    let yjs = match yjs_alone(updates) {
        Ok((t, len)) => {
            anyhow::ensure!(len == end.len(), "Yjs reaches the end text");
            Some(t)
        }
        Err(e) => {
            eprintln!("Yjs comparison skipped: {e:#}");
            None
        }
    };
    // Three rounds, yrs alone and the engine side by side; medians.
    let (mut yrs, mut engine_times, mut closes) = (Vec::new(), Vec::new(), Vec::new());
    let mut ok = true;
    let mut last = None;
    for _ in 0..3 {
        let (t, len) = yrs_alone(updates)?;
        anyhow::ensure!(len == end.len(), "yrs alone reaches the end text");
        yrs.push(t);
        // The outbox rows are made at close (measured there), not while integrating.
        let (engine, me, dir) = backend.engine(|c| c.docs.batch_window = Duration::from_secs(3600)).await?;
        let doc = backend.document(me, &[]).await?;
        engine.sync_now().await?;
        // Nothing goes to the server while measuring: integration and persistence only.
        engine.network_down();
        engine.doc_open(doc, &[0]).await?;
        let t0 = Instant::now();
        for chunk in updates.chunks(1000) {
            engine.doc_updates(doc, chunk.to_vec()).await?;
        }
        engine_times.push(t0.elapsed());
        let t1 = Instant::now();
        engine.doc_close(doc).await?;
        closes.push(t1.elapsed());
        ok &= engine.doc_text(doc).await? == end;
        if let Some((e, _, _)) = last.replace((engine, doc, dir)) {
            e.shutdown().await;
        }
    }
    let (engine, doc, _dir) = last.context("three rounds ran")?;
    let mut open = Vec::new();
    let mut ready = Vec::new();
    for _ in 0..21 {
        let t = Instant::now();
        engine.doc_open(doc, &[0]).await?;
        open.push(t.elapsed());
        // The engine's own copy (loaded in the background) answers once it is in memory.
        engine.doc_state_vector(doc).await?;
        ready.push(t.elapsed());
        engine.doc_close(doc).await?;
    }
    for v in [&mut yrs, &mut engine_times, &mut closes, &mut open, &mut ready] {
        v.sort();
    }
    engine.shutdown().await;
    Ok(Integrate {
        yrs: yrs[1],
        yjs,
        engine: engine_times[1],
        engine_range: (engine_times[0], engine_times[2]),
        ratios: yrs.iter().zip(&engine_times).map(|(y, e)| e.as_secs_f64() / y.as_secs_f64()).collect(),
        close: closes[1],
        open,
        ready,
        ok,
    })
}

struct CatchUp {
    rows: usize,
    bytes: usize,
    time: Duration,
    ok: bool,
}

/// A peer holds the first `total - BEHIND` edits; the rest arrive on the server as `rows`;
/// the peer catches up through REST (realtime off, so REST is what brings them).
async fn catch_up(backend: &Backend, before: &[u8], rows: &[Vec<u8>], end: &str) -> anyhow::Result<CatchUp> {
    let (author, author_id, _a) = backend.engine(|c| c.live.enabled = false).await?;
    let (peer, peer_id, _b) = backend.engine(|c| c.live.enabled = false).await?;
    let doc = backend.document(author_id, &[peer_id]).await?;
    backend.insert_rows(doc, author_id, &[before.to_vec()]).await?;
    peer.sync_now().await?;
    peer.doc_open(doc, &[0]).await?;
    peer.doc_sync_now(doc).await?;
    let cursor_before = peer.doc_text(doc).await?.len();
    backend.insert_rows(doc, author_id, rows).await?;
    // The bytes of the same requests the catch-up makes (compact JSON, as the server sends).
    let rest = Rest::with_bearer(
        Project::new(&backend.server.url, &backend.server.anon_key)?,
        peer.auth().access_token().await.context("token")?,
    );
    let t0 = Instant::now();
    peer.doc_sync_now(doc).await?;
    let time = t0.elapsed();
    let ok = peer.doc_text(doc).await? == end && cursor_before > 0;
    let mut bytes = 0;
    let mut after = 0i64;
    loop {
        let page: Vec<Value> = rest
            .from("document_updates")
            .select("seq,update")
            .eq("document_id", doc)
            .gt("seq", after)
            .order("seq", Order::Asc)
            .limit(1000)
            .execute()
            .await?;
        let Some(last) = page.last().and_then(|r| r["seq"].as_i64()) else { break };
        bytes += serde_json::to_string(&page)?.len();
        if page.len() < 1000 {
            break;
        }
        after = last;
    }
    peer.shutdown().await;
    author.shutdown().await;
    Ok(CatchUp { rows: rows.len(), bytes, time, ok })
}

/// Bytes of the insert bodies that carry `updates` as `document_updates` rows (one array per
/// 500 rows, as the outbox sends them).
fn insert_bytes(updates: &[Vec<u8>]) -> usize {
    let (doc, user) = (Uuid::now_v7(), Uuid::now_v7());
    updates
        .chunks(500)
        .map(|c| {
            let rows: Vec<Value> = c
                .iter()
                .map(|u| json!({"id": Uuid::now_v7(), "document_id": doc, "user_id": user, "update": b64(u)}))
                .collect();
            serde_json::to_string(&rows).map(|s| s.len()).unwrap_or(0)
        })
        .sum()
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn kb(n: usize) -> String {
    format!("{:.1} KB", n as f64 / 1000.0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let mut out_path = "docs/benchmarks.md".to_string();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--out" => out_path = args.next().context("--out needs a path")?,
            other => anyhow::bail!("unknown argument {other:?}; usage: doc_bench [--out FILE]"),
        }
    }
    println!("building one update per keystroke of automerge-paper…");
    let (updates, times, end) = keystrokes()?;
    let backend = Backend::start().await?;

    println!("integrating {} updates…", updates.len());
    let i = integrate(&backend, &updates, &end).await?;
    let split = updates.len() - BEHIND;
    let before = {
        let doc = Doc::new();
        for u in &updates[..split] {
            doc.transact_mut().apply_update(Update::decode_v1(u)?)?;
        }
        let state = doc.transact().encode_state_as_update_v1(&StateVector::default());
        let sv = doc.transact().state_vector();
        for u in &updates[split..] {
            doc.transact_mut().apply_update(Update::decode_v1(u)?)?;
        }
        let diff = doc.transact().encode_state_as_update_v1(&sv);
        (state, diff.len())
    };
    println!("catching a peer up {BEHIND} edits…");
    let per_key = catch_up(&backend, &before.0, &updates[split..], &end).await?;
    let batched_tail = batches(&updates[split..], &times[split..], 100)?;
    let batched = catch_up(&backend, &before.0, &batched_tail, &end).await?;
    let all_batched = batches(&updates, &times, 100)?;
    let (bytes_key, bytes_batch) = (insert_bytes(&updates), insert_bytes(&all_batched));

    let mut s = String::new();
    let _ = writeln!(s, "## Documents (`cargo run --release -p ruwad-core --example doc_bench`)\n");
    let _ = writeln!(
        s,
        "{} ({} cores). Trace: automerge-paper, {} keystrokes → one yrs v1 update each; final text {} chars.\n",
        std::env::consts::OS,
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        updates.len(),
        end.len()
    );
    let _ = writeln!(s, "| measurement | figure | target |\n|---|---|---|");
    let mut ratios = i.ratios.clone();
    ratios.sort_by(f64::total_cmp);
    let ratio = ratios[ratios.len() / 2];
    let _ = writeln!(
        s,
        "| integrate all updates into a fresh engine document, SQLite log included (median of 3) | **{}** (range {}–{}; text correct: {}) | ≤ 600 ms: {} |",
        ms(i.engine),
        ms(i.engine_range.0),
        ms(i.engine_range.1),
        i.ok,
        if i.engine <= Duration::from_millis(600) { "met" } else { "missed on this machine, see the ratio" }
    );
    let _ = writeln!(
        s,
        "| the same updates, yrs alone (fresh doc, one by one; median of 3, same rounds) | {} — **engine / yrs = {:.2}** (per round: {}) | the issue's 0.6 s beside yrs ≈ 0.3 s means ≤ 2.0: {} |",
        ms(i.yrs),
        ratio,
        i.ratios.iter().map(|r| format!("{r:.2}")).collect::<Vec<_>>().join(", "),
        if ratio <= 2.0 { "met" } else { "missed" }
    );
    match i.yjs {
        Some(y) => {
            let _ = writeln!(
                s,
                "| the same updates, Yjs 13.6.33 alone in Node {} | {} (engine / Yjs = {:.2}) | |",
                node_version(),
                ms(y),
                i.engine.as_secs_f64() / y.as_secs_f64()
            );
        }
        None => {
            let _ = writeln!(s, "| the same updates, Yjs alone | not measured (Node / yjs missing) | |");
        }
    }
    let _ = writeln!(s, "| close: merge the updates into outbox rows (≤ 128 per row), render the text, compact the log to one snapshot | {} | |", ms(i.close));
    let _ = writeln!(
        s,
        "| open the document from its snapshot: `doc_open` answered (the webview can render) | median {} (min {}, max {}) | ≤ 10 ms: {} |",
        ms(i.open[i.open.len() / 2]),
        ms(i.open[0]),
        ms(i.open[i.open.len() - 1]),
        if i.open[i.open.len() / 2] <= Duration::from_millis(10) { "met" } else { "missed" }
    );
    let _ = writeln!(
        s,
        "| … until the engine's own yrs copy is loaded too (snapshot decoded and applied) | median {} (min {}, max {}) | |",
        ms(i.ready[i.ready.len() / 2]),
        ms(i.ready[0]),
        ms(i.ready[i.ready.len() - 1])
    );
    for (name, c) in [("per-keystroke rows", &per_key), ("100 ms batches", &batched)] {
        let _ = writeln!(
            s,
            "| catch-up of a peer {BEHIND} edits behind through REST, {name} ({} rows) | {} on the wire, {} (text correct: {}) | |",
            c.rows,
            kb(c.bytes),
            ms(c.time),
            c.ok
        );
    }
    let _ = writeln!(
        s,
        "| for scale: the yrs state-vector diff of those edits (what a sync-protocol server would send) | {} | |",
        kb(before.1)
    );
    let _ = writeln!(
        s,
        "| wire bytes of the whole trace as `document_updates` inserts | per keystroke: {} rows, {}; 100 ms batches: {} rows, {} (**{:.1}× fewer bytes**) | |",
        updates.len(),
        kb(bytes_key),
        all_batched.len(),
        kb(bytes_batch),
        bytes_key as f64 / bytes_batch as f64
    );
    let _ = writeln!(
        s,
        "\n**Method.** The trace is replayed into a yrs doc one transaction per keystroke and each \
transaction's v1 update captured (not timed). *Integrate*: a fresh engine (local backend in-process, \
network reported down so nothing is sent while measuring), a new document opened, then \
`Engine::doc_updates` with 10,000 updates per call — each call appends one packed row to the \
document's SQLite log (`synchronous=NORMAL` for this append: the outbox entry's `FULL` commit follows \
within the batch window) and applies the updates one transaction each (decoded once); the log is \
compacted every 20,000 updates. The batch window is set to an hour here so that merging the updates \
into outbox rows — work for the network, not for integration — happens in `doc_close`, measured on \
its own line. *yrs alone* / *Yjs alone*: the same updates applied one by one into a fresh doc \
(`Y.applyUpdate` in Node, timed inside Node with `performance.now()`), in the same run; yrs alone and \
the engine alternate over three rounds (a fresh engine and document each) and the medians are shown \
with the per-round ratios, since this shared machine's speed moves between runs (yrs alone took \
0.43–0.70 s across runs here; the issue measured ≈ 0.3 s). *Open*: 21 \
`doc_open` calls with an empty state vector after `doc_close` (which compacted the log), each timed to \
its reply: with nothing after the snapshot, the engine answers with the stored snapshot and its stored \
state vector and loads its own copy on a blocking thread (calls that need it wait); the second figure \
times a following `doc_state_vector`, which waits for that load. \
*Catch-up*: a second engine (realtime off) holds the first {} edits from one server row, then the \
remaining {BEHIND} are inserted on the server — one row per keystroke, or merged per 100 ms of the \
trace's timestamps (at most 128 per row) — and `doc_sync_now` is timed; bytes are the compact JSON \
of the same `select=seq,update` pages. *Wire bytes*: JSON insert bodies (`id`, `document_id`, \
`user_id`, base64 `update`) in arrays of 500. Shared 2-core machine: absolute times move ±30 % \
between runs; compare the ratios.",
        split
    );
    println!("{s}");
    write_section(&out_path, &s)
}

fn node_version() -> String {
    Command::new("node")
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|v| v.trim().to_string())
        .unwrap_or_default()
}

/// Replaces this benchmark's section in `path`, keeping everything else.
fn write_section(path: &str, body: &str) -> anyhow::Result<()> {
    let old = std::fs::read_to_string(path).unwrap_or_else(|_| "# Benchmarks\n".into());
    let section = format!("{START}\n{body}\n{END}");
    let new = match (old.find(START), old.find(END)) {
        (Some(a), Some(b)) if b > a => format!("{}{section}{}", &old[..a], &old[b + END.len()..]),
        _ => format!("{}\n\n{section}\n", old.trim_end()),
    };
    std::fs::write(path, new).with_context(|| format!("cannot write {path}"))
}
