//! Interop with the real Yjs (npm `yjs` + `y-protocols`, run with Node — what the webview
//! runs): a Node Yjs peer is the webview of one engine, a yrs doc the webview of another; they
//! edit at random at the same time through the local backend and end with identical text, and
//! their awareness states reach each other in y-protocols' format.

use std::process::Stdio;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use ruwad_core::docs::awareness;
use ruwad_core::docs::codec::{b64, unb64};
use ruwad_core::Event;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::broadcast::error::{RecvError, TryRecvError};

use crate::common::{eventually, Backend, User};
use crate::docs::{create_document, fast_docs, UiDoc};

/// `tests/conformance/js/yjs-peer.mjs` in a Node child process.
pub struct NodeYjs {
    _child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
}

impl NodeYjs {
    pub fn spawn() -> NodeYjs {
        let dir = format!("{}/../../tests/conformance/js", env!("CARGO_MANIFEST_DIR"));
        assert!(
            std::path::Path::new(&format!("{dir}/node_modules/yjs")).exists(),
            "npm packages missing in {dir}: run scripts/setup (npm ci there)"
        );
        let mut child = Command::new("node")
            .arg("yjs-peer.mjs")
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("node runs (Node 20 is part of the setup)");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
        NodeYjs { _child: child, stdin, stdout }
    }

    pub async fn call(&mut self, msg: Value) -> Value {
        self.stdin.write_all(format!("{msg}\n").as_bytes()).await.expect("write to node");
        let line = tokio::time::timeout(Duration::from_secs(60), self.stdout.next_line())
            .await
            .expect("node answers")
            .expect("read from node")
            .expect("node is alive");
        let mut reply: Value = serde_json::from_str(&line).expect("json line");
        if let Some(e) = reply.get("error") {
            panic!("node: {e} (for {msg})");
        }
        reply["ok"].take()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn yjs_in_node_and_yrs_edit_one_document_through_two_engines_and_agree() {
    let seed: u64 = std::env::var("RUWAD_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(rand::random);
    println!("seed: {seed} (set RUWAD_SEED={seed} to replay)");
    let mut rng = StdRng::seed_from_u64(seed);
    let backend = Backend::start().await;
    let mut users = Vec::new();
    for name in ["yjs", "yrs"] {
        let dir = tempfile::tempdir().expect("dir").keep();
        users.push(User::sign_up_with(&backend, name, &dir, fast_docs).await);
    }
    let doc = create_document(&backend, &users[0], &[users[1].id], &[]).await;
    for u in &users {
        eventually(Duration::from_secs(20), "listed", || async {
            u.engine.sync_now().await.ok()?;
            u.engine.documents().await.ok()?.iter().any(|d| d.id == doc).then_some(())
        })
        .await;
    }
    // Engine A's webview is real Yjs: the binding handshake, then updates both ways.
    let mut yjs = NodeYjs::spawn();
    let mut events = users[0].engine.events();
    let sv = unb64(yjs.call(json!({"cmd": "state_vector"})).await.as_str().expect("sv")).expect("b64");
    let sync = users[0].engine.doc_open(doc, &sv).await.expect("open");
    yjs.call(json!({"cmd": "apply", "update": b64(&sync.update)})).await;
    let back = yjs.call(json!({"cmd": "diff", "state_vector": b64(&sync.state_vector)})).await;
    users[0].engine.doc_update(doc, &unb64(back.as_str().expect("diff")).expect("b64")).await.expect("send back");
    let yrs = UiDoc::bind(&users[1].engine, doc).await;

    for _ in 0..300 {
        // Updates the engine has for the Node webview.
        loop {
            match events.try_recv() {
                Ok(Event::DocUpdate { document_id, update }) if document_id == doc => {
                    yjs.call(json!({"cmd": "apply", "update": update})).await;
                }
                Ok(_) | Err(TryRecvError::Lagged(_)) => {}
                Err(_) => break,
            }
        }
        let on_yjs = rng.gen_bool(0.5);
        let len = if on_yjs {
            yjs.call(json!({"cmd": "text"})).await.as_str().expect("text").chars().count()
        } else {
            yrs.len()
        };
        let (pos, del, ins) = if len > 0 && rng.gen_ratio(1, 4) {
            let pos = rng.gen_range(0..len);
            (pos, rng.gen_range(1..=(len - pos).min(4)), String::new())
        } else {
            let word: String = (0..rng.gen_range(1..4)).map(|_| rng.gen_range(b'a'..=b'z') as char).collect();
            (rng.gen_range(0..=len), 0, word)
        };
        if on_yjs {
            let update = yjs.call(json!({"cmd": "edit", "pos": pos, "del": del, "ins": ins})).await;
            let update = unb64(update.as_str().expect("an edit makes an update")).expect("b64");
            users[0].engine.doc_update(doc, &update).await.expect("a Yjs update is taken");
        } else {
            yrs.edit(pos, del, &ins);
            yrs.push().await;
        }
        if rng.gen_ratio(1, 10) {
            tokio::time::sleep(Duration::from_millis(rng.gen_range(1..20))).await;
        }
    }
    // Everyone converges: both engines, the yrs webview, and Yjs (fed until it agrees).
    let text = eventually(Duration::from_secs(60), &format!("the engines agree (seed {seed})"), || async {
        let a = users[0].engine.doc_text(doc).await.ok()?;
        let b = users[1].engine.doc_text(doc).await.ok()?;
        (a == b
            && users[0].engine.doc_status(doc).await.ok()?.pending == 0
            && users[1].engine.doc_status(doc).await.ok()?.pending == 0)
            .then_some(a)
    })
    .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let sv = yjs.call(json!({"cmd": "state_vector"})).await;
        let sync = users[0].engine.doc_diff(doc, &unb64(sv.as_str().expect("sv")).expect("b64")).await.expect("diff");
        yjs.call(json!({"cmd": "apply", "update": b64(&sync.update)})).await;
        if yjs.call(json!({"cmd": "text"})).await == json!(text) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "Yjs never agreed (seed {seed})");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eventually(Duration::from_secs(20), "the yrs webview agrees", || async { (yrs.text() == text).then_some(()) })
        .await;
    assert!(!text.is_empty());

    // Awareness, y-protocols both ways: Yjs' state reaches the other engine…
    let state = json!({"user": {"name": "Layla", "color": "#0F766E"}, "cursor": {"anchor": 1, "head": 4}});
    let update = yjs.call(json!({"cmd": "awareness", "state": state})).await;
    users[0].engine.doc_awareness(doc, &unb64(update.as_str().expect("update")).expect("b64")).expect("awareness");
    let peers = eventually(Duration::from_secs(20), "Yjs' awareness reaches the other engine", || async {
        let p = users[1].engine.doc_peers(doc);
        (!p.is_empty()).then_some(p)
    })
    .await;
    assert_eq!(peers[0].state, state);
    // …and the other side's state reaches Yjs, decoded by y-protocols itself.
    let theirs = json!({"user": {"name": "Omar", "color": "#B45309"}});
    let mine = awareness::encode(&[awareness::Entry { client_id: 77, clock: 1, state: Some(theirs.clone()) }]);
    users[1].engine.doc_awareness(doc, &mine).expect("awareness");
    let seen = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match events.recv().await {
                Ok(Event::DocAwareness { document_id, update }) if document_id == doc => {
                    let others = yjs.call(json!({"cmd": "apply_awareness", "update": update})).await;
                    if others.get("77").is_some() {
                        return others;
                    }
                }
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => panic!("events closed"),
            }
        }
    })
    .await
    .expect("the other side's awareness reaches Yjs");
    assert_eq!(seen["77"], theirs);
}
