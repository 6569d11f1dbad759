//! Collaborative documents through the whole engine path on the real local backend: webview
//! stand-ins (a yrs `Doc` bound over the binding protocol) edit by position, engines integrate
//! by id, store, queue, send, receive through Realtime and catch up through REST.

use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use ruwad_core::docs::codec::{b64, unb64};
use ruwad_core::docs::{DocOptions, Role};
use ruwad_core::{Engine, ErrorCode, Event};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinHandle;
use uuid::Uuid;
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{Doc, GetString, ReadTxn, StateVector, Text, TextRef, Transact, Update};

use crate::common::{eventually, Backend, User};

const ENGINE: &str = "engine";

/// Client ids of the concurrent traces' agents (agent 0 gets the lowest).
const CLIENT_ID_BASE: u64 = 1000;

/// A webview stand-in: a yrs `Doc` with the plain-text root, bound to an engine's document.
/// Edits are positional here (as Yjs does in the webview); the engine integrates by id.
pub struct UiDoc {
    pub id: Uuid,
    engine: Engine,
    doc: Arc<Mutex<Doc>>,
    text: TextRef,
    /// Local updates not yet handed to the engine.
    outgoing: Arc<Mutex<Vec<Vec<u8>>>>,
    pump: Option<JoinHandle<()>>,
}

impl UiDoc {
    /// Binds and keeps applying the engine's `DocUpdate` events (a lagged stream re-syncs).
    pub async fn bind(engine: &Engine, id: Uuid) -> UiDoc {
        UiDoc::bind_with(engine, id, true).await
    }

    /// Binds without applying the engine's later updates (the caller feeds remote edits), with a
    /// chosen Yjs client id (concurrent traces order the
    /// agents' simultaneous inserts by it).
    pub async fn bind_manual_as(engine: &Engine, id: Uuid, client_id: u64) -> UiDoc {
        UiDoc::bind_with_doc(engine, id, false, Doc::with_client_id(client_id)).await
    }

    async fn bind_with(engine: &Engine, id: Uuid, live: bool) -> UiDoc {
        UiDoc::bind_with_doc(engine, id, live, Doc::new()).await
    }

    async fn bind_with_doc(engine: &Engine, id: Uuid, live: bool, doc: Doc) -> UiDoc {
        let text = doc.get_or_insert_text("content");
        let outgoing = Arc::new(Mutex::new(Vec::new()));
        let out = Arc::clone(&outgoing);
        doc.observe_update_v1("outgoing", move |txn, e| {
            if txn.origin() != Some(&ENGINE.into()) {
                out.lock().expect("outgoing").push(e.update.clone());
            }
        })
        .expect("observe");
        let doc = Arc::new(Mutex::new(doc));
        let events = engine.events();
        let sv = doc.lock().expect("doc").transact().state_vector().encode_v1();
        let sync = engine.doc_open(id, &sv).await.expect("doc_open");
        apply_engine(&doc, &sync.update);
        let mut ui = UiDoc { id, engine: engine.clone(), doc, text, outgoing, pump: None };
        // What the engine lacks goes back (nothing, for a fresh webview doc).
        let theirs = StateVector::decode_v1(&sync.state_vector).expect("engine sv");
        let mine = ui.doc.lock().expect("doc").transact().encode_state_as_update_v1(&theirs);
        if mine != Update::EMPTY_V1 {
            engine.doc_update(id, &mine).await.expect("send back");
        }
        if live {
            let (engine, doc) = (engine.clone(), Arc::clone(&ui.doc));
            ui.pump = Some(tokio::spawn(pump(engine, id, doc, events)));
        }
        ui
    }

    pub fn edit(&self, pos: usize, del: usize, ins: &str) {
        let doc = self.doc.lock().expect("doc");
        let mut txn = doc.transact_mut();
        if del > 0 {
            self.text.remove_range(&mut txn, pos as u32, del as u32);
        }
        if !ins.is_empty() {
            self.text.insert(&mut txn, pos as u32, ins);
        }
    }

    pub fn len(&self) -> usize {
        let doc = self.doc.lock().expect("doc");
        let txn = doc.transact();
        self.text.len(&txn) as usize
    }

    pub fn text(&self) -> String {
        let doc = self.doc.lock().expect("doc");
        let txn = doc.transact();
        self.text.get_string(&txn)
    }

    /// Hands the local updates to the engine.
    pub async fn push(&self) {
        let updates = std::mem::take(&mut *self.outgoing.lock().expect("outgoing"));
        for chunk in updates.chunks(500) {
            self.engine.doc_updates(self.id, chunk.to_vec()).await.expect("doc_updates");
        }
    }

    /// Applies a remote edit made elsewhere (not sent to the engine: it comes from the server).
    pub fn apply_foreign(&self, update: &[u8]) {
        apply_engine(&self.doc, update);
    }

    pub fn state_vector(&self) -> StateVector {
        self.doc.lock().expect("doc").transact().state_vector()
    }
}

impl Drop for UiDoc {
    fn drop(&mut self) {
        if let Some(p) = self.pump.take() {
            p.abort();
        }
    }
}

fn apply_engine(doc: &Mutex<Doc>, update: &[u8]) {
    let doc = doc.lock().expect("doc");
    let mut txn = doc.transact_mut_with(ENGINE);
    txn.apply_update(Update::decode_v1(update).expect("update decodes")).expect("applies");
}

async fn pump(engine: Engine, id: Uuid, doc: Arc<Mutex<Doc>>, mut events: tokio::sync::broadcast::Receiver<Event>) {
    loop {
        match events.recv().await {
            Ok(Event::DocUpdate { document_id, update }) if document_id == id => {
                apply_engine(&doc, &unb64(&update).expect("base64"));
            }
            Ok(_) => {}
            Err(RecvError::Lagged(_)) => {
                let sv = doc.lock().expect("doc").transact().state_vector().encode_v1();
                if let Ok(sync) = engine.doc_diff(id, &sv).await {
                    apply_engine(&doc, &sync.update);
                }
            }
            Err(RecvError::Closed) => return,
        }
    }
}

/// Creates a document owned by `owner` with `editors` and `viewers`, through REST.
pub async fn create_document(backend: &Backend, owner: &User, editors: &[Uuid], viewers: &[Uuid]) -> Uuid {
    let rest = owner.rest(backend).await;
    let id = Uuid::now_v7();
    rest.from("collaborative_documents")
        .insert(json!({"id": id, "title": "Trace", "created_by": owner.id}))
        .execute::<()>()
        .await
        .expect("create document");
    for (users, role) in [(editors, "editor"), (viewers, "viewer")] {
        for u in users {
            rest.from("document_members")
                .insert(json!({"document_id": id, "user_id": u, "role": role}))
                .execute::<()>()
                .await
                .expect("add member");
        }
    }
    id
}

/// Test settings: a short batch window so hand-offs are quick.
pub fn fast_docs(c: &mut ruwad_core::EngineConfig) {
    c.docs = DocOptions {
        batch_window: Duration::from_millis(10),
        content_delay: Duration::from_millis(200),
        ..DocOptions::default()
    };
}

async fn peers(backend: &Backend, n: usize) -> Vec<User> {
    peers_with(backend, n, fast_docs).await
}

/// `n` signed-up users, each with its own data dir and engine settings changed by `tweak`.
async fn peers_with(backend: &Backend, n: usize, tweak: impl Fn(&mut ruwad_core::EngineConfig)) -> Vec<User> {
    let mut out = Vec::new();
    for i in 0..n {
        let dir = tempfile::tempdir().expect("dir").keep();
        out.push(User::sign_up_with(backend, &format!("peer{i}"), &dir, &tweak).await);
    }
    out
}

/// Waits until the engine knows the document (its metadata catch-up ran).
async fn wait_listed(u: &User, doc: Uuid) {
    eventually(Duration::from_secs(20), "the document is listed", || async {
        u.engine.sync_now().await.ok()?;
        u.engine.documents().await.ok()?.iter().any(|d| d.id == doc).then_some(())
    })
    .await;
}

fn load<T: for<'de> Deserialize<'de>>(rel: &str) -> T {
    let path = format!("{}/../../tests/data/editing-traces/{rel}", env!("CARGO_MANIFEST_DIR"));
    let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut json = String::new();
    flate2::read::GzDecoder::new(file).read_to_string(&mut json).expect("gunzip");
    serde_json::from_str(&json).expect("trace json")
}

#[derive(Deserialize)]
struct SeqTrace {
    #[serde(rename = "startContent")]
    start: String,
    #[serde(rename = "endContent")]
    end: String,
    txns: Vec<SeqTxn>,
}

#[derive(Deserialize)]
struct SeqTxn {
    patches: Vec<(usize, usize, String)>,
}

#[derive(Deserialize)]
struct ConcTrace {
    #[serde(rename = "endContent")]
    end: String,
    #[serde(rename = "numAgents")]
    agents: usize,
    txns: Vec<ConcTxn>,
}

#[derive(Deserialize)]
struct ConcTxn {
    parents: Vec<usize>,
    agent: usize,
    patches: Vec<(usize, usize, String)>,
}

/// Like [`eventually_text`] for a document the engine does not hold open (catch-up through
/// REST is what brings it).
async fn eventually_synced_text(u: &User, doc: Uuid, want: &str, limit: Duration) {
    eventually(limit, "the engine's text (after a catch-up) equals the expected text", || async {
        u.engine.doc_sync_now(doc).await.ok()?;
        (u.engine.doc_text(doc).await.ok()? == want).then_some(())
    })
    .await;
}

async fn eventually_text(u: &User, doc: Uuid, want: &str, limit: Duration) {
    eventually(limit, "the engine's text equals the expected text", || async {
        (u.engine.doc_text(doc).await.ok()? == want).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sequential_trace_handed_from_peer_to_peer_ends_with_its_final_text_everywhere() {
    let trace: SeqTrace = load("sequential/rustcode.json.gz");
    assert!(trace.start.is_empty());
    let backend = Backend::start().await;
    let users = peers(&backend, 3).await;
    let ids: Vec<Uuid> = users.iter().map(|u| u.id).collect();
    let doc = create_document(&backend, &users[0], &ids[1..], &[]).await;
    let mut uis = Vec::new();
    for u in &users {
        wait_listed(u, doc).await;
        uis.push(UiDoc::bind(&u.engine, doc).await);
    }
    // Consecutive runs, each on the next peer, which first catches up with everything before.
    const RUNS: usize = 9;
    let per_run = trace.txns.len().div_ceil(RUNS);
    let mut expected = String::new();
    for (run, txns) in trace.txns.chunks(per_run).enumerate() {
        let p = run % users.len();
        let ui = &uis[p];
        eventually(Duration::from_secs(60), &format!("peer {p} has caught up before run {run}"), || async {
            (ui.text() == expected).then_some(())
        })
        .await;
        for (i, t) in txns.iter().enumerate() {
            for (pos, del, ins) in &t.patches {
                ui.edit(*pos, *del, ins);
                expected.replace_range(*pos..*pos + *del, ins);
            }
            if i % 64 == 63 {
                ui.push().await;
            }
        }
        ui.push().await;
    }
    assert_eq!(expected, trace.end, "the harness replays the trace correctly");
    for (i, u) in users.iter().enumerate() {
        eventually_text(u, doc, &trace.end, Duration::from_secs(90)).await;
        eventually(Duration::from_secs(30), &format!("peer {i}'s webview doc converges"), || async {
            (uis[i].text() == trace.end).then_some(())
        })
        .await;
    }
    // The server holds every edit: a device that never saw the document rebuilds it from REST.
    let late_dir = tempfile::tempdir().expect("dir");
    let late = crate::common::engine_with(&backend.url, &backend.anon_key, late_dir.path(), fast_docs).await;
    late.sign_in(&users[1].email, crate::common::PASSWORD).await.expect("sign in on a new device");
    eventually(Duration::from_secs(60), "a new device rebuilds the document from the server", || async {
        late.sync_now().await.ok()?;
        (late.doc_text(doc).await.ok()? == trace.end).then_some(())
    })
    .await;
}

/// Replays a concurrent trace: each agent is a peer whose webview doc holds exactly the
/// transaction's parents when it edits (remote parents are applied from the recorded updates;
/// the engines receive them only through the server). At checkpoints and at the end, every
/// engine holds the merged text.
async fn replay_concurrent(file: &str) {
    // Simultaneous inserts at one place are ordered by client id: agent order, as recorded.
    let trace: ConcTrace = load(file);
    let backend = Backend::start().await;
    let users = peers(&backend, trace.agents).await;
    let ids: Vec<Uuid> = users.iter().map(|u| u.id).collect();
    let doc = create_document(&backend, &users[0], &ids[1..], &[]).await;
    let mut uis = Vec::new();
    for (agent, u) in users.iter().enumerate() {
        wait_listed(u, doc).await;
        uis.push(UiDoc::bind_manual_as(&u.engine, doc, CLIENT_ID_BASE + agent as u64).await);
    }
    // Every transaction's update, and which transactions each agent's doc holds.
    let mut updates: Vec<Vec<u8>> = Vec::with_capacity(trace.txns.len());
    let mut has: Vec<Vec<bool>> = vec![vec![false; trace.txns.len()]; trace.agents];
    let reference = Doc::new();
    let reference_text = reference.get_or_insert_text("content");
    let checkpoint = trace.txns.len() / 3;
    for (t, txn) in trace.txns.iter().enumerate() {
        let a = txn.agent;
        // Bring in the ancestors this agent's doc lacks, oldest first.
        let mut stack: Vec<usize> = txn.parents.clone();
        let mut missing = Vec::new();
        while let Some(p) = stack.pop() {
            if !has[a][p] {
                has[a][p] = true;
                missing.push(p);
                stack.extend(trace.txns[p].parents.iter().copied());
            }
        }
        missing.sort_unstable();
        for p in missing {
            uis[a].apply_foreign(&updates[p]);
        }
        let before = uis[a].state_vector();
        for (pos, del, ins) in &txn.patches {
            uis[a].edit(*pos, *del, ins);
        }
        let update = {
            let d = uis[a].doc.lock().expect("doc");
            let txn = d.transact();
            txn.encode_state_as_update_v1(&before)
        };
        // The update of exactly this transaction's edits (for the others' docs and the reference).
        reference.transact_mut().apply_update(Update::decode_v1(&update).expect("decodes")).expect("reference");
        updates.push(update);
        has[a][t] = true;
        uis[a].push().await;
        if t > 0 && t % checkpoint == 0 {
            let want = reference_text.get_string(&reference.transact());
            for u in &users {
                eventually_text(u, doc, &want, Duration::from_secs(60)).await;
            }
        }
    }
    let merged = reference_text.get_string(&reference.transact());
    assert_eq!(merged, trace.end, "the harness merges the trace to its final text");
    for u in &users {
        eventually_text(u, doc, &trace.end, Duration::from_secs(90)).await;
    }
    // A fresh webview binding of every engine shows it too.
    for u in &users {
        let ui = UiDoc::bind(&u.engine, doc).await;
        assert_eq!(ui.text(), trace.end);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clownschool_trace_three_people_at_once_converges_to_its_final_text() {
    replay_concurrent("concurrent/clownschool.json.gz").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_friendsforever_trace_two_people_at_once_converges_to_its_final_text() {
    replay_concurrent("concurrent/friendsforever.json.gz").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_peers_editing_at_random_while_going_offline_and_online_converge() {
    let seed: u64 = std::env::var("RUWAD_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(rand::random);
    println!("seed: {seed} (set RUWAD_SEED={seed} to replay)");
    let mut rng = StdRng::seed_from_u64(seed);
    let backend = Backend::start().await;
    let users = peers(&backend, 3).await;
    let ids: Vec<Uuid> = users.iter().map(|u| u.id).collect();
    let doc = create_document(&backend, &users[0], &ids[1..], &[]).await;
    let mut uis = Vec::new();
    for u in &users {
        wait_listed(u, doc).await;
        uis.push(UiDoc::bind(&u.engine, doc).await);
    }
    let mut offline = [false; 3];
    for step in 0..600 {
        let p = rng.gen_range(0..3);
        if rng.gen_ratio(1, 40) {
            offline[p] = !offline[p];
            if offline[p] {
                users[p].engine.network_down();
            } else {
                users[p].engine.network_back();
            }
        }
        let ui = &uis[p];
        let len = ui.len();
        if len > 0 && rng.gen_ratio(1, 4) {
            let pos = rng.gen_range(0..len);
            let del = rng.gen_range(1..=(len - pos).min(5));
            ui.edit(pos, del, "");
        } else {
            let pos = rng.gen_range(0..=len);
            let word: String = (0..rng.gen_range(1..4)).map(|_| rng.gen_range(b'a'..=b'z') as char).collect();
            ui.edit(pos, 0, &word);
        }
        if rng.gen_ratio(1, 3) || step % 10 == 0 {
            ui.push().await;
        }
        if rng.gen_ratio(1, 20) {
            tokio::time::sleep(Duration::from_millis(rng.gen_range(1..30))).await;
        }
    }
    for (p, ui) in uis.iter().enumerate() {
        ui.push().await;
        if offline[p] {
            users[p].engine.network_back();
        }
    }
    let text = eventually(Duration::from_secs(60), &format!("all peers hold the same text (seed {seed})"), || async {
        let mut texts = Vec::new();
        for u in &users {
            u.engine.doc_sync_now(doc).await.ok()?;
            texts.push(u.engine.doc_text(doc).await.ok()?);
        }
        let pending: u64 = {
            let mut n = 0;
            for u in &users {
                n += u.engine.doc_status(doc).await.ok()?.pending;
            }
            n
        };
        (pending == 0 && texts.windows(2).all(|w| w[0] == w[1])).then(|| texts[0].clone())
    })
    .await;
    for (p, ui) in uis.iter().enumerate() {
        eventually(Duration::from_secs(20), &format!("webview {p} shows the converged text (seed {seed})"), || async {
            (ui.text() == text).then_some(())
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_cannot_write_the_engine_refuses_and_so_does_the_server() {
    let backend = Backend::start().await;
    let users = peers(&backend, 2).await;
    let (owner, viewer) = (&users[0], &users[1]);
    let doc = create_document(&backend, owner, &[], &[viewer.id]).await;
    wait_listed(viewer, doc).await;
    let listed = viewer.engine.documents().await.expect("documents");
    assert_eq!(listed.iter().find(|d| d.id == doc).map(|d| d.role), Some(Role::Viewer));
    wait_listed(owner, doc).await;
    let owner_ui = UiDoc::bind(&owner.engine, doc).await;
    owner_ui.edit(0, 0, "owner's words");
    owner_ui.push().await;
    eventually_synced_text(viewer, doc, "owner's words", Duration::from_secs(20)).await;

    let ui = UiDoc::bind(&viewer.engine, doc).await;
    let sync = viewer.engine.doc_open(doc, &[0]).await.expect("a viewer may open");
    assert!(sync.read_only, "the binding says read-only");
    ui.edit(0, 0, "viewer was here ");
    let update = std::mem::take(&mut *ui.outgoing.lock().expect("outgoing")).concat();
    let err = viewer.engine.doc_update(doc, &update).await.expect_err("a viewer's edit is refused");
    assert_eq!(err.code(), ErrorCode::Refused);
    assert!(err.to_string().contains("read-only"), "{err}");
    assert_eq!(viewer.engine.doc_text(doc).await.expect("text"), "owner's words", "nothing changed");
    let status = viewer.engine.doc_status(doc).await.expect("status");
    assert_eq!((status.read_only, status.pending), (true, 0));
    assert_eq!(viewer.engine.queue_counts().await.expect("counts").queued, 0);
    // Garbage is refused too, and changes nothing (for an editor as well).
    let err = owner.engine.doc_update(doc, b"not yjs").await.expect_err("garbage is refused");
    assert!(err.to_string().contains("not a valid Yjs update"), "{err}");
    assert_eq!(owner.engine.doc_text(doc).await.expect("text"), "owner's words");
    // Other bad input: a state vector or an awareness update that does not decode.
    let err = owner.engine.doc_open(doc, b"\xff\xff").await.expect_err("a bad state vector is refused");
    assert!(err.to_string().contains("state vector"), "{err}");
    let err = owner.engine.doc_awareness(doc, b"\x01\x01").expect_err("a bad awareness update is refused");
    assert!(err.to_string().contains("awareness"), "{err}");
    let err = owner.engine.doc_update(Uuid::now_v7(), &update).await.expect_err("an unknown document");
    assert_eq!(err.code(), ErrorCode::Refused);
    assert_eq!(owner.engine.doc_text(doc).await.expect("text"), "owner's words", "nothing changed");
    // The server refuses the row itself (row rules), whatever the client does.
    let rest = viewer.rest(&backend).await;
    let refused = rest
        .from("document_updates")
        .insert(json!({"id": Uuid::now_v7(), "document_id": doc, "user_id": viewer.id, "update": b64(&update)}))
        .execute::<()>()
        .await
        .expect_err("the server refuses a viewer's row");
    assert!(refused.to_string().contains("42501") || refused.to_string().contains("row-level security"), "{refused}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_member_stops_receiving_updates_and_loses_the_document() {
    let backend = Backend::start().await;
    let users = peers(&backend, 2).await;
    let (owner, member) = (&users[0], &users[1]);
    let doc = create_document(&backend, owner, &[member.id], &[]).await;
    wait_listed(owner, doc).await;
    wait_listed(member, doc).await;
    let owner_ui = UiDoc::bind(&owner.engine, doc).await;
    let member_ui = UiDoc::bind(&member.engine, doc).await;
    owner_ui.edit(0, 0, "shared ");
    owner_ui.push().await;
    eventually(Duration::from_secs(20), "the member sees the edit", || async {
        (member_ui.text() == "shared ").then_some(())
    })
    .await;
    owner
        .rest(&backend)
        .await
        .from("document_members")
        .delete()
        .eq("document_id", doc)
        .eq("user_id", member.id)
        .execute::<()>()
        .await
        .expect("revoke");
    owner_ui.edit(7, 0, "secret");
    owner_ui.push().await;
    eventually(Duration::from_secs(20), "the edit reached the server", || async {
        let n = backend
            .admin()
            .from("document_updates")
            .select("seq")
            .eq("document_id", doc)
            .execute::<Vec<serde_json::Value>>()
            .await
            .ok()?
            .len();
        (n >= 2).then_some(())
    })
    .await;
    member.engine.sync_now().await.expect("catch up");
    eventually(Duration::from_secs(20), "the document is gone from the member's list", || async {
        member.engine.sync_now().await.ok()?;
        (!member.engine.documents().await.ok()?.iter().any(|d| d.id == doc)).then_some(())
    })
    .await;
    assert_eq!(member_ui.text(), "shared ", "the revoked member never received the new edit");
    let err = member.engine.doc_text(doc).await.expect_err("no access any more");
    assert_eq!(err.code(), ErrorCode::Refused);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn awareness_reaches_the_others_and_a_silent_peer_is_dropped() {
    let backend = Backend::start().await;
    let users = peers_with(&backend, 2, |c| {
        fast_docs(c);
        c.docs.awareness_renew = Duration::from_millis(300);
        c.docs.awareness_timeout = Duration::from_millis(1500);
    })
    .await;
    let doc = create_document(&backend, &users[0], &[users[1].id], &[]).await;
    for u in &users {
        wait_listed(u, doc).await;
        u.engine.doc_open(doc, &[0]).await.expect("open");
    }
    let mut events = users[1].engine.events();
    let state = json!({"user": {"name": "Layla", "color": "#0F766E"}, "cursor": {"anchor": 3, "head": 5}});
    let update = ruwad_core::docs::awareness::encode(&[ruwad_core::docs::awareness::Entry {
        client_id: 4242,
        clock: 1,
        state: Some(state.clone()),
    }]);
    // Many updates in a burst are throttled, the latest state wins.
    for _ in 0..50 {
        users[0].engine.doc_awareness(doc, &update).expect("awareness");
    }
    let peers = eventually(Duration::from_secs(20), "the other engine sees the cursor", || async {
        let p = users[1].engine.doc_peers(doc);
        (!p.is_empty()).then_some(p)
    })
    .await;
    assert_eq!((peers[0].client_id, &peers[0].state), (4242, &state));
    let forwarded = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match events.recv().await {
                Ok(Event::DocAwareness { document_id, update }) if document_id == doc => return update,
                Ok(_) | Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => panic!("events closed"),
            }
        }
    })
    .await
    .expect("the webview got an awareness event");
    let entries = ruwad_core::docs::awareness::decode(&unb64(&forwarded).expect("b64")).expect("y-protocols");
    assert_eq!(entries[0].state.as_ref(), Some(&state));
    // A cursor moving 100 times in a burst: at most 20 broadcasts a second go out, and the last
    // position is the one that stays.
    let mut seen = users[1].engine.events();
    let start = std::time::Instant::now();
    for pos in 0..100u64 {
        let moved = json!({"user": {"name": "Layla", "color": "#0F766E"}, "cursor": {"anchor": pos, "head": pos}});
        let update = ruwad_core::docs::awareness::encode(&[ruwad_core::docs::awareness::Entry {
            client_id: 4242,
            clock: 2 + pos,
            state: Some(moved),
        }]);
        users[0].engine.doc_awareness(doc, &update).expect("awareness");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let burst = start.elapsed();
    let mut received = 0u32;
    let mut last = None;
    let _ = tokio::time::timeout(Duration::from_millis(600), async {
        loop {
            match seen.recv().await {
                Ok(Event::DocAwareness { document_id, update }) if document_id == doc => {
                    received += 1;
                    last = Some(update);
                }
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return,
            }
        }
    })
    .await;
    // 20 a second over the burst and the time watched after it (renewals included); without the
    // throttle all 100 would arrive.
    let allowed = ((burst.as_secs_f64() + 0.6) * 20.0).ceil() as u32 + 1;
    assert!(received >= 1 && received <= allowed, "{received} broadcasts for a {burst:?} burst (≤ {allowed} allowed)");
    let last = ruwad_core::docs::awareness::decode(&unb64(&last.expect("one arrived")).expect("b64")).expect("decodes");
    assert_eq!(
        last[0].state.as_ref().map(|s| s["cursor"]["anchor"].clone()),
        Some(json!(99)),
        "the last position wins"
    );
    // Renewals keep the peer present past the timeout…
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(users[1].engine.doc_peers(doc).len(), 1, "renewed every 300 ms, kept");
    // … and a peer that goes silent (its engine stops) is dropped after it.
    users[0].engine.shutdown().await;
    eventually(Duration::from_secs(10), "the silent peer is dropped", || async {
        users[1].engine.doc_peers(doc).is_empty().then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_and_snapshots_keep_every_edit() {
    let backend = Backend::start().await;
    let users = peers_with(&backend, 2, |c| {
        fast_docs(c);
        c.docs.compact_rows = 10;
        c.docs.snapshot_every = 30;
        c.docs.overlap = 5;
    })
    .await;
    let doc = create_document(&backend, &users[0], &[users[1].id], &[]).await;
    for u in &users {
        wait_listed(u, doc).await;
    }
    let ui = UiDoc::bind(&users[0].engine, doc).await;
    let mut expected = String::new();
    for i in 0..80 {
        let s = format!("{i} ");
        ui.edit(expected.len(), 0, &s);
        expected.push_str(&s);
        ui.push().await;
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
    eventually_synced_text(&users[1], doc, &expected, Duration::from_secs(30)).await;
    // An editor catching up past `snapshot_every` rows writes a snapshot.
    let snap = eventually(Duration::from_secs(30), "a snapshot is written", || async {
        users[1].engine.doc_open(doc, &[0]).await.ok()?;
        users[1].engine.doc_sync_now(doc).await.ok()?;
        let rows: Vec<serde_json::Value> = backend
            .admin()
            .from("document_snapshots")
            .select("upto_seq,state")
            .eq("document_id", doc)
            .execute()
            .await
            .ok()?;
        rows.into_iter().next()
    })
    .await;
    let upto = snap["upto_seq"].as_i64().expect("upto_seq");
    let state = unb64(snap["state"].as_str().expect("state")).expect("b64");
    let from_snapshot = Doc::new();
    let t = from_snapshot.get_or_insert_text("content");
    from_snapshot.transact_mut().apply_update(Update::decode_v1(&state).expect("decodes")).expect("applies");
    assert!(expected.starts_with(&t.get_string(&from_snapshot.transact())), "the snapshot is a prefix of the history");
    assert!(upto > 0);
    // Reopening after compaction (the local log was compacted every 10 rows) shows everything.
    ui.edit(expected.len(), 0, "end");
    expected.push_str("end");
    ui.push().await;
    drop(ui);
    users[0].engine.doc_close(doc).await.expect("close");
    let dir = users[0].dir.clone();
    users[0].engine.shutdown().await;
    let again = crate::common::engine_with(&backend.url, &backend.anon_key, &dir, fast_docs).await;
    assert_eq!(again.doc_text(doc).await.expect("text after restart"), expected);
    // Web clients read the plain-text rendering the editors keep in `content`.
    eventually(Duration::from_secs(20), "collaborative_documents.content holds the text", || async {
        let rows: Vec<serde_json::Value> =
            backend.admin().from("collaborative_documents").select("content").eq("id", doc).execute().await.ok()?;
        (rows.first()?["content"].as_str()? == expected).then_some(())
    })
    .await;
    // A device that never saw the document starts from the snapshot and converges.
    let late_dir = tempfile::tempdir().expect("dir");
    let late = crate::common::engine_with(&backend.url, &backend.anon_key, late_dir.path(), fast_docs).await;
    late.sign_in(&users[1].email, crate::common::PASSWORD).await.expect("sign in");
    eventually(Duration::from_secs(30), "the new device converges from the snapshot", || async {
        late.sync_now().await.ok()?;
        (late.doc_text(doc).await.ok()? == expected).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webview_only_hears_of_real_changes_and_an_empty_update_is_no_edit() {
    let backend = Backend::start().await;
    let users = peers(&backend, 2).await;
    let doc = create_document(&backend, &users[0], &[users[1].id], &[]).await;
    for u in &users {
        wait_listed(u, doc).await;
    }
    let writer = UiDoc::bind(&users[0].engine, doc).await;
    writer.edit(0, 0, "hello");
    writer.push().await;
    let reader = UiDoc::bind(&users[1].engine, doc).await;
    eventually(Duration::from_secs(20), "the reader has it", || async { (reader.text() == "hello").then_some(()) })
        .await;
    // The handshake's "nothing to add" is not an edit: nothing pending, nothing sent.
    users[1].engine.doc_update(doc, Update::EMPTY_V1).await.expect("an empty update is fine");
    let status = users[1].engine.doc_status(doc).await.expect("status");
    assert_eq!(status.pending, 0, "an empty update queues nothing");
    // Catching up again (the overlap re-reads rows it has) tells the webview nothing.
    let mut events = users[1].engine.events();
    users[1].engine.doc_sync_now(doc).await.expect("catch up");
    users[1].engine.doc_sync_now(doc).await.expect("catch up again");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut updates = 0;
    while let Ok(e) = events.try_recv() {
        if matches!(e, Event::DocUpdate { document_id, .. } if document_id == doc) {
            updates += 1;
        }
    }
    assert_eq!(updates, 0, "re-read rows change nothing, so the webview hears nothing");
    assert_eq!(reader.text(), "hello");
}

#[test]
fn the_demo_document_renders_through_the_engine_to_its_seeded_content() {
    use ruwad_core::docs::text::{render, Roots};
    use ruwad_server::db::{Db, DbError};
    use yrs::XmlFragment;
    let dir = tempfile::tempdir().expect("temp dir");
    let db = Db::open(dir.path()).expect("open");
    ruwad_server::demo::seed(&db).expect("seed");
    let (content, update): (String, String) = db
        .read_blocking(|c| -> Result<_, DbError> {
            Ok(c.query_row(
                "SELECT d.content, u.\"update\" FROM collaborative_documents d JOIN document_updates u ON u.document_id = d.id",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?)
        })
        .expect("the demo document with its one update");
    let doc = Doc::new();
    let roots = Roots::of(&doc);
    let bytes = unb64(&update).expect("base64");
    doc.transact_mut().apply_update(Update::decode_v1(&bytes).expect("v1 update")).expect("apply");
    assert!(roots.rich.len(&doc.transact()) > 0, "the demo is rich text, in the fragment the editor binds");
    // The engine writes this rendering into `content` after an edit: the seed must already agree,
    // or the first edit would rewrite text nobody changed.
    assert_eq!(render(&doc.transact(), &roots), content, "core's rendering of the demo CRDT is its seeded content");
}
