//! Integration tests: the `ruwad-server` binary's contract (ready line, keys and data kept
//! across restarts, graceful SIGTERM, bad arguments) and crash safety (SIGKILL in the middle
//! of a stream of writes leaves a consistent database holding every acknowledged write).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_ruwad-server");

/// A spawned server; killed (SIGKILL) if still running when dropped.
struct Spawned {
    child: Child,
    ready: Value,
}

impl Spawned {
    fn start(dir: &Path, extra: &[&str]) -> Spawned {
        let mut child = Command::new(BIN)
            .args(["--addr", "127.0.0.1:0", "--data-dir"])
            .arg(dir)
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn ruwad-server");
        let stdout = child.stdout.take().expect("stdout piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(60)).expect("ready line within 60 s");
        let ready: Value =
            serde_json::from_str(line.trim()).unwrap_or_else(|e| panic!("ready line is JSON ({e}): {line:?}"));
        Spawned { child, ready }
    }

    fn url(&self) -> &str {
        self.ready["url"].as_str().expect("url in ready line")
    }

    fn anon(&self) -> &str {
        self.ready["anon_key"].as_str().expect("anon_key in ready line")
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill").args([sig, &self.child.id().to_string()]).status().expect("kill").success();
        assert!(ok, "kill {sig} failed");
    }

    /// Waits for the process to exit and returns its exit code (None if killed by a signal).
    fn wait(mut self, limit: Duration) -> Option<i32> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status.code();
            }
            assert!(Instant::now() < deadline, "ruwad-server did not exit within {limit:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn sign_in(http: &reqwest::Client, s: &Spawned, email: &str) -> (String, String) {
    let resp = http
        .post(format!("{}/auth/v1/token?grant_type=password", s.url()))
        .header("apikey", s.anon())
        .json(&json!({"email": email, "password": "ruwad-demo"}))
        .send()
        .await
        .expect("sign-in request");
    assert_eq!(resp.status().as_u16(), 200, "demo account {email} signs in");
    let v: Value = resp.json().await.expect("session JSON");
    (v["access_token"].as_str().expect("token").to_string(), v["user"]["id"].as_str().expect("id").to_string())
}

async fn count(http: &reqwest::Client, s: &Spawned, token: &str, path: &str) -> u64 {
    let resp = http
        .head(format!("{}/rest/v1/{path}", s.url()))
        .header("apikey", s.anon())
        .header("Authorization", format!("Bearer {token}"))
        .header("Prefer", "count=exact")
        .send()
        .await
        .expect("count request");
    let range = resp.headers().get("content-range").and_then(|v| v.to_str().ok()).expect("Content-Range").to_string();
    range.rsplit('/').next().and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("total in {range:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_prints_one_ready_line_and_a_restart_keeps_keys_and_data() {
    let dir = tempfile::tempdir().expect("temp dir");
    let http = reqwest::Client::new();
    let first = Spawned::start(dir.path(), &["--demo"]);
    for key in ["url", "anon_key", "service_role_key"] {
        assert!(first.ready[key].as_str().is_some_and(|v| !v.is_empty()), "ready line has {key}: {}", first.ready);
    }
    assert!(first.url().starts_with("http://127.0.0.1:"), "loopback url: {}", first.url());
    let (token, _) = sign_in(&http, &first, "layla@demo.ruwad.app").await;
    let messages = count(&http, &first, &token, "chat_messages?select=id").await;
    assert!(messages > 0, "layla sees demo messages");
    let keys = first.ready.clone();
    first.signal("-TERM");
    assert_eq!(first.wait(Duration::from_secs(15)), Some(0), "SIGTERM is a clean exit");

    let second = Spawned::start(dir.path(), &["--demo"]);
    assert_eq!(second.ready["anon_key"], keys["anon_key"], "keys survive a restart");
    assert_eq!(second.ready["service_role_key"], keys["service_role_key"]);
    // The old access token is still valid: same secret.
    assert_eq!(
        count(&http, &second, &token, "chat_messages?select=id").await,
        messages,
        "data kept, demo not re-seeded"
    );
    second.signal("-INT");
    assert_eq!(second.wait(Duration::from_secs(15)), Some(0), "SIGINT is a clean exit");
}

#[test]
fn bad_arguments_exit_2_with_usage() {
    let out = Command::new(BIN).arg("--bogus").output().expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown argument") && err.contains("usage:"), "{err}");
    let out = Command::new(BIN).args(["--addr", "not-an-address"]).output().expect("run");
    assert_eq!(out.status.code(), Some(2), "an unparsable address is a usage error");
}

#[test]
fn unusable_data_dir_is_a_clear_startup_failure() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("plain-file");
    std::fs::write(&file, b"x").expect("write");
    let out = Command::new(BIN).args(["--addr", "127.0.0.1:0", "--data-dir"]).arg(&file).output().expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "no ready line when start-up fails");
    assert!(!String::from_utf8_lossy(&out.stderr).trim().is_empty(), "the reason is printed");
}

/// Writers stream single and batched inserts; the server is SIGKILLed mid-stream. After a
/// restart the database passes `integrity_check`, every insert the server acknowledged is
/// there, and each batch is all there or not at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_write_keeps_every_acknowledged_row_and_no_partial_batch() {
    let dir = tempfile::tempdir().expect("temp dir");
    let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().expect("client");
    let server = Spawned::start(dir.path(), &["--demo"]);
    let (token, uid) = sign_in(&http, &server, "layla@demo.ruwad.app").await;
    let rooms: Value = http
        .get(format!("{}/rest/v1/chat_rooms?select=id&kind=eq.channel&limit=1", server.url()))
        .header("apikey", server.anon())
        .header("Authorization", format!("Bearer {token}"))
        .send()
        .await
        .expect("rooms")
        .json()
        .await
        .expect("rooms JSON");
    let room = rooms[0]["id"].as_str().expect("a demo channel").to_string();

    let (url, anon) = (server.url().to_string(), server.anon().to_string());
    let mut writers = Vec::new();
    for w in 0..4 {
        let (http, url, anon, token, uid, room) =
            (http.clone(), url.clone(), anon.clone(), token.clone(), uid.clone(), room.clone());
        writers.push(tokio::spawn(async move {
            let mut acked: Vec<Vec<String>> = Vec::new();
            for i in 0.. {
                let batch: Vec<String> =
                    (0..if i % 2 == 0 { 1 } else { 5 }).map(|_| uuid::Uuid::now_v7().to_string()).collect();
                let rows: Vec<Value> = batch
                    .iter()
                    .map(|id| json!({"id": id, "room_id": room, "user_id": uid, "content": format!("w{w} #{i}")}))
                    .collect();
                let sent = http
                    .post(format!("{url}/rest/v1/chat_messages"))
                    .header("apikey", &anon)
                    .header("Authorization", format!("Bearer {token}"))
                    .header("Prefer", "return=minimal")
                    .json(&rows)
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status().as_u16() == 201 => acked.push(batch),
                    _ => return (acked, batch),
                }
            }
            unreachable!("the loop only ends when the server dies")
        }));
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    server.signal("-KILL");
    let _ = server.wait(Duration::from_secs(10));
    let mut acked = Vec::new();
    let mut in_doubt = Vec::new();
    for w in writers {
        let (a, d) = tokio::time::timeout(Duration::from_secs(20), w).await.expect("writer ends").expect("writer task");
        acked.extend(a);
        in_doubt.push(d);
    }
    assert!(acked.len() > 10, "the writers got going before the kill ({} batches)", acked.len());

    let db = rusqlite::Connection::open(dir.path().join("ruwad.db")).expect("open after crash");
    let check: String = db.query_row("PRAGMA integrity_check", [], |r| r.get(0)).expect("integrity_check");
    assert_eq!(check, "ok");
    let present = |id: &str| -> bool {
        db.query_row("SELECT count(*) FROM chat_messages WHERE id = ?1", [id], |r| r.get::<_, i64>(0)).expect("lookup")
            == 1
    };
    for batch in &acked {
        for id in batch {
            assert!(present(id), "acknowledged row {id} must survive SIGKILL");
        }
    }
    for batch in &in_doubt {
        let n = batch.iter().filter(|id| present(id)).count();
        assert!(n == 0 || n == batch.len(), "a batch is all or nothing, found {n} of {}", batch.len());
    }
    drop(db);
    let again = Spawned::start(dir.path(), &[]);
    let (token, _) = sign_in(&http, &again, "layla@demo.ruwad.app").await;
    assert!(
        count(&http, &again, &token, "chat_messages?select=id").await > 0,
        "the server starts on the crashed data dir"
    );
}
