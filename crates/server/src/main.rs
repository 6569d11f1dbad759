//! `ruwad-server --addr 127.0.0.1:0 --data-dir DIR [--demo]`
//!
//! Prints one JSON line `{"url":…,"anon_key":…,"service_role_key":…}` on stdout once it is
//! listening; logs go to stderr (`RUST_LOG` filters them). SIGINT / SIGTERM shut down
//! gracefully. Exit code 2 for bad arguments, 1 for a failure to start.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use ruwad_server::{Config, Server};

const USAGE: &str = "usage: ruwad-server [--addr HOST:PORT] [--data-dir DIR] [--demo] [--allow-host NAME]...
  --addr        where to listen (default 127.0.0.1:54321; port 0 picks a free one)
  --data-dir    database and keys (default ./ruwad-data)
  --demo        seed demo accounts (password ruwad-demo) and data, once
  --allow-host  accept this Host name too (needed when --addr is not loopback)";

fn parse(args: &[String]) -> Result<Config, String> {
    let mut addr: SocketAddr = "127.0.0.1:54321".parse().map_err(|e| format!("{e}"))?;
    let mut dir = PathBuf::from("ruwad-data");
    let mut demo = false;
    let mut hosts = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().cloned().ok_or_else(|| format!("{name} needs a value"));
        match a.as_str() {
            "--addr" => addr = value("--addr")?.parse().map_err(|e| format!("--addr: {e}"))?,
            "--data-dir" => dir = PathBuf::from(value("--data-dir")?),
            "--demo" => demo = true,
            "--allow-host" => hosts.push(value("--allow-host")?),
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let mut config = Config::new(addr, dir);
    config.demo = demo;
    config.allowed_hosts = hosts;
    Ok(config)
}

fn main() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let config = match parse(&args) {
        Ok(c) => c,
        Err(e) => {
            if e.is_empty() {
                println!("{USAGE}");
                std::process::exit(0);
            }
            eprintln!("ruwad-server: {e}\n{USAGE}");
            std::process::exit(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ruwad-server: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    let code = runtime.block_on(async move {
        let server = match Server::start(config).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("ruwad-server: {e:#}");
                return 1;
            }
        };
        let line = serde_json::json!({ "url": server.url, "anon_key": server.anon_key, "service_role_key": server.service_role_key });
        let mut out = std::io::stdout().lock();
        if writeln!(out, "{line}").and_then(|_| out.flush()).is_err() {
            tracing::warn!("stdout is closed; the ready line was not printed");
        }
        drop(out);
        tracing::info!(url = %server.url, "ruwad-server ready");
        wait_for_signal().await;
        tracing::info!("shutting down");
        server.shutdown().await;
        0
    });
    std::process::exit(code);
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
