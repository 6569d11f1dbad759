//! Insert → postgres_changes latency: a signed-in room member subscribes to `chat_messages`
//! INSERTs of one room (filter `room_id=eq.<id>`, so the server evaluates the filter and the
//! row rule for every delivery); inserts go through REST (`POST /rest/v1/chat_messages`, as a
//! user, row rules checked) at a fixed rate; the latency of each row is the time from just
//! before its POST is sent to the arrival of its change on the subscriber's socket.

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::brokers::{self, Ruwad};
use crate::stats::Latencies;

pub struct ChangeResult {
    pub latencies: Latencies,
    pub sent: u64,
    pub achieved_rate: f64,
}

struct Member {
    id: String,
    token: String,
}

async fn sign_up(http: &reqwest::Client, server: &Ruwad) -> anyhow::Result<Member> {
    let email = format!("bench-{}@bench.ruwad.app", uuid::Uuid::new_v4());
    let resp = http
        .post(format!("{}/auth/v1/signup", server.url))
        .header("apikey", &server.anon_key)
        .json(&json!({"email": email, "password": "bench-password-1"}))
        .send()
        .await?;
    let v: Value = resp.json().await?;
    let token = v["access_token"].as_str().ok_or_else(|| anyhow!("sign-up gave no session: {v}"))?.to_string();
    let id = v["user"]["id"].as_str().ok_or_else(|| anyhow!("sign-up gave no user id: {v}"))?.to_string();
    Ok(Member { id, token })
}

async fn post(http: &reqwest::Client, server: &Ruwad, token: &str, table: &str, row: Value) -> anyhow::Result<()> {
    let resp = http
        .post(format!("{}/rest/v1/{table}", server.url))
        .header("apikey", &server.anon_key)
        .header("Authorization", format!("Bearer {token}"))
        .header("Prefer", "return=minimal")
        .json(&row)
        .send()
        .await?;
    if !resp.status().is_success() {
        bail!("insert into {table} failed: {} {}", resp.status(), resp.text().await.unwrap_or_default());
    }
    Ok(())
}

pub async fn run(server: &Ruwad, rows: u64, per_second: u64) -> anyhow::Result<ChangeResult> {
    let http = reqwest::Client::builder().pool_max_idle_per_host(64).build()?;
    let me = sign_up(&http, server).await.context("sign up (auth must work)")?;
    let room = uuid::Uuid::new_v4().to_string();
    post(
        &http,
        server,
        &me.token,
        "chat_rooms",
        json!({"id": room, "name": "bench", "kind": "channel", "created_by": me.id}),
    )
    .await?;
    post(&http, server, &me.token, "room_members", json!({"room_id": room, "user_id": me.id, "role": "admin"})).await?;

    let (mut ws, _) = tokio_tungstenite::connect_async(server.ws_url()).await?;
    let join = json!(["1", "1", "realtime:bench-changes", "phx_join", {
        "config": {"broadcast": {"self": false, "ack": false}, "presence": {"key": "", "enabled": false},
                   "postgres_changes": [{"event": "INSERT", "schema": "public", "table": "chat_messages", "filter": format!("room_id=eq.{room}")}],
                   "private": false},
        "access_token": me.token
    }]);
    ws.send(Message::Text(join.to_string().into())).await?;
    brokers::wait_reply(&mut ws, "1").await?;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let clock = Instant::now();
    let sender = {
        let (http, url, key, token, uid, room) =
            (http.clone(), server.url.clone(), server.anon_key.clone(), me.token.clone(), me.id.clone(), room.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_nanos(1_000_000_000 / per_second.max(1)));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let mut inflight = Vec::new();
            for seq in 0..rows {
                tick.tick().await;
                let t = clock.elapsed().as_nanos() as u64;
                let row = json!({"id": uuid::Uuid::now_v7().to_string(), "room_id": room, "user_id": uid, "content": format!("bench:{seq}:{t}")});
                let req = http
                    .post(format!("{url}/rest/v1/chat_messages"))
                    .header("apikey", &key)
                    .header("Authorization", format!("Bearer {token}"))
                    .header("Prefer", "return=minimal")
                    .json(&row);
                inflight.push(tokio::spawn(async move {
                    req.send().await.map(|r| r.status().is_success()).unwrap_or(false)
                }));
            }
            let sent_done = clock.elapsed();
            let mut ok = 0u64;
            for h in inflight {
                if h.await.unwrap_or(false) {
                    ok += 1;
                }
            }
            (ok, sent_done)
        })
    };

    let mut latencies = Latencies::default();
    let mut got = 0u64;
    let mut lat = Vec::with_capacity(rows as usize);
    while got < rows {
        let msg = tokio::time::timeout(Duration::from_secs(15), ws.next())
            .await
            .map_err(|_| anyhow!("changes stopped after {got} of {rows}"))?
            .ok_or_else(|| anyhow!("socket closed"))??;
        let Message::Text(text) = msg else { continue };
        let Some(at) = text.find("bench:") else {
            continue;
        };
        let now = clock.elapsed().as_nanos() as u64;
        let mut parts = text[at + 6..].split(|c: char| !c.is_ascii_digit());
        let (_seq, t) = (parts.next(), parts.next().and_then(|t| t.parse::<u64>().ok()));
        if let Some(t) = t {
            lat.push(now.saturating_sub(t));
            got += 1;
        }
    }
    let (ok, sent_done) = sender.await?;
    if ok != rows {
        bail!("{} of {rows} inserts failed", rows - ok);
    }
    latencies.extend(lat);
    let _ = ws.close(None).await;
    Ok(ChangeResult { latencies, sent: rows, achieved_rate: rows as f64 / sent_done.as_secs_f64() })
}
