//! `ruwad-server` as a child process, started from its CLI contract (one JSON ready line on
//! stdout) and stopped with SIGTERM (a graceful shutdown: sockets get close 1001). Shared by
//! `ruwad-bench` and `ruwad-client-bench`.

use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use anyhow::{anyhow, Context};

/// A child process, terminated (SIGTERM) and reaped on drop.
pub struct Proc(pub Child);

impl Proc {
    /// SIGTERM, then waits for the process to exit (nothing if it already has).
    pub fn terminate(&mut self) {
        if matches!(self.0.try_wait(), Ok(Some(_))) {
            return;
        }
        let _ = Command::new("kill").arg(self.0.id().to_string()).status();
        let _ = self.0.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.terminate();
    }
}

/// A running `ruwad-server`.
pub struct RuwadProc {
    pub url: String,
    pub anon_key: String,
    pub proc: Proc,
}

/// Starts `bin --addr <addr> --data-dir <dir>` and waits for its ready line.
pub fn spawn_ruwad(bin: &str, addr: &str, dir: &Path) -> anyhow::Result<RuwadProc> {
    let mut child = Command::new(bin)
        .args(["--addr", addr, "--data-dir"])
        .arg(dir)
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
    Ok(RuwadProc { url: s("url")?, anon_key: s("anon_key")?, proc })
}
