//! `wss://`: the client through a TLS-terminating forwarder in front of the local backend,
//! with a private CA (fixtures in `tls/`: a test CA and a `localhost` certificate it signed,
//! valid until 2126).

use std::net::SocketAddr;
use std::sync::Arc;

use ruwad_supabase::realtime::*;
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::{self, ServerConfig};

use super::harness::*;

const CA: &[u8] = include_bytes!("tls/ca.der");
const CERT: &[u8] = include_bytes!("tls/localhost.der");
const KEY: &[u8] = include_bytes!("tls/localhost.key.der");

/// Accepts TLS as `localhost` and forwards the plaintext to `upstream`.
async fn tls_forwarder(upstream: SocketAddr) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let config = ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(CERT.to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(KEY.to_vec())),
        )
        .expect("certificate and key");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                let Ok(mut up) = TcpStream::connect(upstream).await else { return };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut up).await;
            });
        }
    });
    (addr, task)
}

fn config(be: &Backend, forwarder: SocketAddr) -> RealtimeConfig {
    // The URL names the backend (its Host guard wants its own port); TCP goes to the forwarder.
    let mut c = fast(RealtimeConfig::new(format!("https://localhost:{}", be.addr.port()), be.anon_key.clone()));
    c.connect_to = Some(forwarder);
    c
}

#[tokio::test]
async fn wss_with_a_private_root_joins_and_delivers() {
    let be = Backend::start().await;
    let (forwarder, _task) = tls_forwarder(be.addr).await;
    let mut cfg = config(&be, forwarder);
    cfg.extra_root_certificates = vec![CA.to_vec()];
    let client = RealtimeClient::connect(cfg).expect("client");
    let ch = client.channel("secure", ChannelConfig { broadcast_self: true, ..ChannelConfig::default() });
    let mut got = ch.broadcasts("*");
    ready(&ch).await;
    ch.send_broadcast("hello", json!({"over": "tls"})).await.expect("sent");
    assert_eq!(next(&mut got, "own broadcast over TLS").await.payload, BroadcastPayload::Json(json!({"over": "tls"})));
    broadcast_arrives_once(
        &be,
        "secure",
        &mut client.channel("secure", ChannelConfig::default()).broadcasts("ping"),
        1,
    )
    .await;
}

#[tokio::test]
async fn wss_with_an_untrusted_certificate_keeps_retrying_and_says_why() {
    let be = Backend::start().await;
    let (forwarder, _task) = tls_forwarder(be.addr).await;
    let client = RealtimeClient::connect(config(&be, forwarder)).expect("client");
    let s = state_matching(&client, |s| matches!(s, ConnectionState::Connecting { retry_at: Some(_), .. })).await;
    let ConnectionState::Connecting { last_error: Some(ConnectError::Network(why)), .. } = s else {
        panic!("a TLS failure is reported: {s:?}")
    };
    assert!(why.starts_with("tls:"), "{why}");
}
