//! A real crash: the engine runs in a child process (this test binary, re-executed) and is
//! killed with SIGKILL while it drains the queue.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ruwad_core::queue::sender::SenderOptions;
use ruwad_core::queue::ClaimLimits;
use serde::{Deserialize, Serialize};

use crate::common::{engine_at, eventually, fast_sender, Backend, User};

const CHILD_ENV: &str = "RUWAD_CORE_CRASH_CHILD";
const CHILD_TEST: &str = "crash::child_process_that_drains_until_killed";

#[derive(Serialize, Deserialize)]
struct ChildSpec {
    url: String,
    anon_key: String,
    dir: String,
    rows: usize,
}

/// Not a test of its own: the body of the child process. Without the environment variable
/// (a normal test run) it returns at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_process_that_drains_until_killed() {
    let Ok(spec) = std::env::var(CHILD_ENV) else { return };
    let spec: ChildSpec = serde_json::from_str(&spec).expect("child spec");
    let sender = SenderOptions { limits: ClaimLimits { streams: 8, rows: spec.rows, bytes: 1 << 20 }, ..fast_sender() };
    let engine = engine_at(&spec.url, &spec.anon_key, std::path::Path::new(&spec.dir), sender).await;
    assert!(engine.user_id().is_some(), "the child restored the session from the data dir");
    engine.network_back();
    // Drain until the parent kills us (bounded, should the parent die first).
    tokio::time::sleep(Duration::from_secs(120)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_killed_with_sigkill_mid_drain_delivers_every_message_exactly_once_after_restart() {
    let backend = Backend::start().await;
    let dir = tempfile::tempdir().expect("dir");
    let user = User::sign_up_at(&backend, "crashy", dir.path()).await;
    let room = user.create_room(&backend, "crash", &[]).await;
    user.engine.sync_now().await.expect("sync");
    user.engine.network_down();
    const N: usize = 1000;
    let mut sent = Vec::with_capacity(N);
    for i in 0..N {
        sent.push(user.engine.send_message(room, &format!("c{i}")).await.expect("queue"));
    }
    user.engine.shutdown().await;
    drop(user);

    let spec = ChildSpec {
        url: backend.url.clone(),
        anon_key: backend.anon_key.clone(),
        dir: dir.path().to_string_lossy().into_owned(),
        // Two rows per request: the drain takes hundreds of requests, so the kill lands inside it.
        rows: 2,
    };
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args([CHILD_TEST, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, serde_json::to_string(&spec).expect("spec"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the child engine");
    let started = Instant::now();
    let before_kill = loop {
        let n = backend.message_count(room).await.unwrap_or(0) as usize;
        if n >= 100 {
            break n;
        }
        if let Some(status) = child.try_wait().expect("child status") {
            panic!("the child exited early ({status}) with {n} messages delivered");
        }
        assert!(started.elapsed() < Duration::from_secs(60), "the child delivered only {n} messages in 60 s");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    child.kill().expect("SIGKILL");
    child.wait().expect("reap the child");
    let at_kill = backend.message_count(room).await.unwrap_or(0) as usize;
    eprintln!("killed the child with {before_kill}..{at_kill} of {N} delivered");
    assert!(at_kill < N, "the kill landed mid-drain ({before_kill}..{at_kill} of {N} delivered)");

    // Restart: a new engine on the same data dir finishes the job.
    let engine = engine_at(&backend.url, &backend.anon_key, dir.path(), fast_sender()).await;
    engine.network_back();
    let on_server = eventually(Duration::from_secs(60), "every message delivered", || async {
        let m = backend.messages(room).await;
        (m.len() >= N).then_some(m)
    })
    .await;
    assert_eq!(on_server.len(), N, "exactly once: no duplicates");
    assert_eq!(on_server.iter().map(|m| m.id).collect::<Vec<_>>(), sent, "every message, in order");
    eventually(Duration::from_secs(30), "the queue empties", || async {
        (engine.queue_counts().await.ok()?.queued == 0).then_some(())
    })
    .await;
    engine.shutdown().await;
}

const DOC_CHILD_ENV: &str = "RUWAD_CORE_DOC_CRASH_CHILD";
const DOC_CHILD_TEST: &str = "crash::child_process_that_types_then_is_killed";

#[derive(Serialize, Deserialize)]
struct DocChildSpec {
    url: String,
    anon_key: String,
    dir: String,
    doc: uuid::Uuid,
}

/// The typed words of the document crash test.
const TYPED: &str = "typed a moment before the crash";

/// Not a test of its own: the child of the document crash test. Opens the document, types
/// (one local update, as a webview sends it), says so on stdout and waits to be killed. The
/// batch window is a minute, so nothing has been queued for the server when the kill lands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_process_that_types_then_is_killed() {
    use std::io::Write;
    use yrs::updates::decoder::Decode;
    use yrs::{ReadTxn, Text, Transact};
    let Ok(spec) = std::env::var(DOC_CHILD_ENV) else { return };
    let spec: DocChildSpec = serde_json::from_str(&spec).expect("child spec");
    let engine = crate::common::engine_with(&spec.url, &spec.anon_key, std::path::Path::new(&spec.dir), |c| {
        c.docs.batch_window = Duration::from_secs(60);
        c.docs.content_delay = Duration::from_secs(60);
    })
    .await;
    let sync = engine.doc_open(spec.doc, &[0]).await.expect("open");
    let ui = yrs::Doc::new();
    let text = ui.get_or_insert_text("content");
    ui.transact_mut().apply_update(yrs::Update::decode_v1(&sync.update).expect("decodes")).expect("applies");
    let before = ui.transact().state_vector();
    text.insert(&mut ui.transact_mut(), 0, TYPED);
    let update = ui.transact().encode_state_as_update_v1(&before);
    engine.doc_update(spec.doc, &update).await.expect("local update");
    println!("EDITED");
    std::io::stdout().flush().expect("flush");
    tokio::time::sleep(Duration::from_secs(120)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_edit_survives_sigkill_right_after_the_keystroke_and_reaches_the_others() {
    use std::io::BufRead;
    let backend = Backend::start().await;
    let dir = tempfile::tempdir().expect("dir");
    let typist = User::sign_up_at(&backend, "typist", dir.path()).await;
    let reader = User::sign_up(&backend, "reader").await;
    let doc = crate::docs::create_document(&backend, &typist, &[reader.id], &[]).await;
    eventually(Duration::from_secs(20), "the typist's engine lists the document", || async {
        typist.engine.sync_now().await.ok()?;
        typist.engine.documents().await.ok()?.iter().any(|d| d.id == doc).then_some(())
    })
    .await;
    typist.engine.shutdown().await;
    drop(typist);

    let spec = DocChildSpec {
        url: backend.url.clone(),
        anon_key: backend.anon_key.clone(),
        dir: dir.path().to_string_lossy().into_owned(),
        doc,
    };
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args([DOC_CHILD_TEST, "--exact", "--nocapture", "--test-threads=1"])
        .env(DOC_CHILD_ENV, serde_json::to_string(&spec).expect("spec"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the child engine");
    let stdout = child.stdout.take().expect("stdout");
    let edited = tokio::task::spawn_blocking(move || {
        std::io::BufReader::new(stdout).lines().map_while(Result::ok).any(|l| l.contains("EDITED"))
    });
    let edited = tokio::time::timeout(Duration::from_secs(60), edited).await.expect("the child types within 60 s");
    child.kill().expect("SIGKILL");
    child.wait().expect("reap the child");
    assert!(edited.expect("reader"), "the child reported its edit");
    let rows: Vec<serde_json::Value> = backend
        .admin()
        .from("document_updates")
        .select("seq")
        .eq("document_id", doc)
        .execute()
        .await
        .expect("server rows");
    assert!(rows.is_empty(), "killed before anything was sent (the batch window was a minute)");

    // Restart on the same data dir: the edit is there, and it goes out.
    let engine = engine_at(&backend.url, &backend.anon_key, dir.path(), fast_sender()).await;
    assert_eq!(engine.doc_text(doc).await.expect("text after the crash"), TYPED);
    eventually(Duration::from_secs(30), "the reader gets the edit from the server", || async {
        reader.engine.sync_now().await.ok()?;
        reader.engine.doc_sync_now(doc).await.ok()?;
        (reader.engine.doc_text(doc).await.ok()? == TYPED).then_some(())
    })
    .await;
    engine.shutdown().await;
}
