//! The two brokers under test, reached over WebSocket the way their clients do:
//! - Ruwād's Realtime (vsn 2.0.0): join `realtime:<topic>`, publish with binary kind-3 frames
//!   (what realtime-js sends for `channel.send`), receive kind-4 frames;
//! - nats-server's WebSocket listener: `SUB` / `PUB` / `MSG` text protocol inside binary frames.
//!
//! Processes are started here (`ruwad-server` from its CLI contract, `nats-server` from a
//! config file) and killed when their guard drops.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{connect_async, MaybeTlsStream, WebSocketStream};

pub type Ws = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

/// A child process killed on drop.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.0.id().to_string()).status();
        let _ = self.0.wait();
    }
}

pub struct Ruwad {
    pub url: String,
    pub anon_key: String,
    _proc: Proc,
    _dir: tempfile::TempDir,
}

impl Ruwad {
    pub fn start(bin: &str) -> anyhow::Result<Ruwad> {
        use std::io::BufRead;
        let dir = tempfile::tempdir()?;
        let mut child = Command::new(bin)
            .args(["--addr", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("cannot start {bin} (build it with `cargo build --release -p ruwad-server`)"))?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
        let proc = Proc(child);
        let mut line = String::new();
        std::io::BufReader::new(stdout).read_line(&mut line)?;
        let v: serde_json::Value = serde_json::from_str(&line).with_context(|| format!("ready line {line:?}"))?;
        let s = |k: &str| v[k].as_str().map(str::to_string).ok_or_else(|| anyhow!("ready line lacks {k}"));
        Ok(Ruwad { url: s("url")?, anon_key: s("anon_key")?, _proc: proc, _dir: dir })
    }

    pub fn ws_url(&self) -> String {
        format!("{}/realtime/v1/websocket?apikey={}&vsn=2.0.0", self.url.replacen("http", "ws", 1), self.anon_key)
    }
}

pub struct Nats {
    pub ws_url: String,
    pub version: String,
    _proc: Proc,
    _dir: tempfile::TempDir,
}

impl Nats {
    pub async fn start(bin: &str) -> anyhow::Result<Nats> {
        let version = Command::new(bin)
            .arg("--version")
            .output()
            .with_context(|| format!("cannot run {bin}; install Debian's nats-server"))?;
        let version = String::from_utf8_lossy(&version.stdout).trim().to_string();
        let dir = tempfile::tempdir()?;
        let ws_port = free_port()?;
        let conf = dir.path().join("nats.conf");
        std::fs::write(
            &conf,
            format!("listen: 127.0.0.1:-1\nwebsocket {{\n  listen: \"127.0.0.1:{ws_port}\"\n  no_tls: true\n}}\n"),
        )?;
        let child = Command::new(bin).arg("-c").arg(&conf).stdout(Stdio::null()).stderr(Stdio::null()).spawn()?;
        let proc = Proc(child);
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", ws_port)).await.is_ok() {
                return Ok(Nats { ws_url: format!("ws://127.0.0.1:{ws_port}"), version, _proc: proc, _dir: dir });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("nats-server did not open its WebSocket port")
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Which broker a client speaks to.
#[derive(Clone)]
pub enum Target {
    Ruwad { ws_url: String, token: String },
    Nats { ws_url: String },
}

pub const TOPIC: &str = "bench";

/// Connects and subscribes; returns once the subscription is confirmed.
pub async fn subscribe(target: &Target) -> anyhow::Result<Ws> {
    match target {
        Target::Ruwad { ws_url, token } => {
            let (mut ws, _) = connect_async(ws_url.as_str()).await?;
            let join = serde_json::json!(["1", "1", format!("realtime:{TOPIC}"), "phx_join", {
                "config": {"broadcast": {"self": false, "ack": false}, "presence": {"key": "", "enabled": false}, "postgres_changes": [], "private": false},
                "access_token": token
            }]);
            ws.send(Message::Text(join.to_string().into())).await?;
            wait_reply(&mut ws, "1").await?;
            Ok(ws)
        }
        Target::Nats { ws_url } => {
            let (mut ws, _) = connect_async(ws_url.as_str()).await?;
            let connect = "CONNECT {\"verbose\":false,\"pedantic\":false,\"protocol\":1,\"headers\":false}\r\n";
            ws.send(Message::Binary(format!("{connect}SUB {TOPIC} 1\r\nPING\r\n").into_bytes().into())).await?;
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            loop {
                let msg =
                    tokio::time::timeout_at(deadline, ws.next()).await?.ok_or_else(|| anyhow!("nats closed"))??;
                if msg.into_data().windows(4).any(|w| w == b"PONG") {
                    return Ok(ws);
                }
            }
        }
    }
}

/// Waits for the `phx_reply` to `reference` and fails unless its status is ok.
pub async fn wait_reply(ws: &mut Ws, reference: &str) -> anyhow::Result<serde_json::Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let msg = tokio::time::timeout_at(deadline, ws.next())
            .await
            .context("no reply within 10 s")?
            .ok_or_else(|| anyhow!("socket closed"))??;
        if let Message::Text(t) = msg {
            let v: serde_json::Value = serde_json::from_str(&t)?;
            if v[3] == "phx_reply" && v[1] == reference {
                if v[4]["status"] != "ok" {
                    bail!("request refused: {v}");
                }
                return Ok(v);
            }
        }
    }
}

/// A publisher: a joined channel (Ruwād) or a connection (NATS).
pub async fn publisher(target: &Target) -> anyhow::Result<Ws> {
    subscribe(target).await
}

/// One publish frame carrying `payload`, as each broker's client would send it.
pub fn publish_frame(target: &Target, reference: u64, payload: &[u8]) -> Message {
    match target {
        Target::Ruwad { .. } => {
            let (join_ref, r, topic, event) =
                ("1".to_string(), reference.to_string(), format!("realtime:{TOPIC}"), "m");
            let mut f = Vec::with_capacity(7 + join_ref.len() + r.len() + topic.len() + event.len() + payload.len());
            // Lengths are single bytes by the protocol; all of these are short.
            f.extend_from_slice(&[3, join_ref.len() as u8, r.len() as u8, topic.len() as u8, event.len() as u8, 0, 1]);
            f.extend_from_slice(join_ref.as_bytes());
            f.extend_from_slice(r.as_bytes());
            f.extend_from_slice(topic.as_bytes());
            f.extend_from_slice(event.as_bytes());
            f.extend_from_slice(payload);
            Message::Binary(f.into())
        }
        Target::Nats { .. } => {
            let mut f = format!("PUB {TOPIC} {}\r\n", payload.len()).into_bytes();
            f.extend_from_slice(payload);
            f.extend_from_slice(b"\r\n");
            Message::Binary(f.into())
        }
    }
}

/// Splits received frames into delivered payloads. Ruwād: one kind-4 frame (or a text
/// `broadcast` frame) per delivery. NATS: a byte stream of `MSG` / `PING` lines in any framing.
#[derive(Default)]
pub struct Deliveries {
    buf: Vec<u8>,
}

impl Deliveries {
    /// Calls `each` for every payload in `frame`; returns bytes to send back (PONGs), if any.
    pub fn feed(&mut self, target: &Target, frame: &[u8], mut each: impl FnMut(&[u8])) -> Option<Vec<u8>> {
        match target {
            Target::Ruwad { .. } => {
                if frame.first() == Some(&4) || crate::payload::find(frame, b"\"broadcast\"").is_some() {
                    each(frame);
                }
                None
            }
            Target::Nats { .. } => {
                self.buf.extend_from_slice(frame);
                let mut reply = None;
                let mut at = 0;
                loop {
                    let rest = &self.buf[at..];
                    let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") else {
                        break;
                    };
                    let line = &rest[..eol];
                    if line.starts_with(b"MSG ") {
                        let size: usize = std::str::from_utf8(line)
                            .ok()
                            .and_then(|l| l.rsplit(' ').next())
                            .and_then(|n| n.parse().ok())
                            .unwrap_or(0);
                        let need = eol + 2 + size + 2;
                        if rest.len() < need {
                            break;
                        }
                        each(&rest[eol + 2..eol + 2 + size]);
                        at += need;
                    } else {
                        if line == b"PING" {
                            reply = Some(b"PONG\r\n".to_vec());
                        }
                        at += eol + 2;
                    }
                }
                self.buf.drain(..at);
                reply
            }
        }
    }
}
