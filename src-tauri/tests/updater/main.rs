//! The self-update path (`ruwad_desktop::update`, what `check_update` / `install_update` call)
//! against a real local HTTP update server on 127.0.0.1:0, in Tauri's mock runtime with the
//! updater plugin configured by the real `tauri.conf.json` (so `requireSignedVersion` is on).
//!
//! The artifacts are signed at test time with throwaway minisign keys, in the Tauri CLI's
//! format (base64 of the `.sig` text, the version in the trusted comment). The install target
//! is a file replaced the way an AppImage is: a test cannot replace its own binary.

#![cfg(target_os = "linux")] // The install target is replaced the way an AppImage is: Linux only.

use std::collections::HashMap;
use std::io::Cursor;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use base64::Engine as _;
use ruwad_desktop::config::UpdateChannel;
use ruwad_desktop::error::{AppError, ErrorCode};
use ruwad_desktop::update::{Progress, UpdateSource, Updates, ENV_UPDATE_PUBKEY, ENV_UPDATE_URL};
use serde_json::{json, Value};
use tauri::test::MockRuntime;

/// Every wait is bounded.
const WAIT: Duration = Duration::from_secs(30);
/// The version the test app runs.
const CURRENT: &str = "0.1.0";
/// What the installed "app" holds before an update.
const OLD_BUILD: &[u8] = b"the installed build 0.1.0";

fn b64(bytes: impl AsRef<[u8]>) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

// ---- signing -----------------------------------------------------------------------------

struct Key {
    pk: minisign::PublicKey,
    sk: minisign::SecretKey,
}

impl Key {
    fn new() -> Key {
        let kp = minisign::KeyPair::generate_unencrypted_keypair().expect("a key pair");
        Key { pk: kp.pk, sk: kp.sk }
    }

    /// The public key as `tauri.conf.json` / `RUWAD_UPDATE_PUBKEY` hold it.
    fn public(&self) -> String {
        b64(self.pk.to_box().expect("public key box").into_string())
    }

    /// The signature of `bytes` released as `version`, as the manifest holds it.
    fn sign(&self, bytes: &[u8], version: &str) -> String {
        let comment = format!("timestamp:1767225600\tfile:Ruwad_{version}_amd64.AppImage\tversion:{version}");
        let signature =
            minisign::sign(Some(&self.pk), &self.sk, Cursor::new(bytes), Some(&comment), None).expect("signature");
        b64(signature.into_string())
    }
}

/// An AppImage-looking build (the updater installs only ELF files as AppImages).
fn build(version: &str) -> Vec<u8> {
    let mut bytes = b"\x7fELF\x02\x01\x01\0".to_vec();
    bytes.extend(format!("Ruwad {version} test build ").as_bytes());
    bytes.resize(4096, b'.');
    bytes
}

// ---- the update server -------------------------------------------------------------------

#[derive(Clone)]
struct Reply {
    status: StatusCode,
    content_type: &'static str,
    body: Vec<u8>,
}

impl Reply {
    fn json(value: Value) -> Reply {
        Reply { status: StatusCode::OK, content_type: "application/json", body: value.to_string().into_bytes() }
    }

    fn text(status: StatusCode, text: &str) -> Reply {
        Reply { status, content_type: "text/plain", body: text.as_bytes().to_vec() }
    }

    fn bytes(body: Vec<u8>) -> Reply {
        Reply { status: StatusCode::OK, content_type: "application/octet-stream", body }
    }
}

#[derive(Default)]
struct Site {
    /// Path → reply; anything else is a 404.
    replies: HashMap<String, Reply>,
    /// Every path asked for, in order.
    requests: Vec<String>,
}

#[derive(Clone)]
struct Server {
    addr: SocketAddr,
    site: Arc<Mutex<Site>>,
}

impl Server {
    async fn start() -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("address");
        let site = Arc::new(Mutex::new(Site::default()));
        let app = axum::Router::new().fallback(serve).with_state(Arc::clone(&site));
        tokio::spawn(async move { axum::serve(listener, app).await.expect("the update server runs") });
        Server { addr, site }
    }

    /// The endpoint template, as `RUWAD_UPDATE_URL` would give it.
    fn template(&self) -> String {
        format!("http://{}/desktop/{{channel}}/{{{{target}}}}/{{{{arch}}}}/{{{{current_version}}}}", self.addr)
    }

    /// The path the updater asks `channel`'s manifest at.
    fn manifest_path(&self, channel: &str) -> String {
        let target = tauri_plugin_updater::target().expect("a supported platform");
        let (os, arch) = target.split_once('-').expect("os-arch");
        format!("/desktop/{channel}/{os}/{arch}/{CURRENT}")
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn put(&self, path: &str, reply: Reply) {
        self.site.lock().expect("site").replies.insert(path.to_string(), reply);
    }

    /// Publishes `artifact` as `version` on `channel` with `signature` (the manifest of the
    /// Tauri docs: version, notes, pub_date, platforms).
    fn publish(&self, channel: &str, version: &str, artifact: Vec<u8>, signature: String) {
        let artifact_path = format!("/artifacts/{channel}/Ruwad_{version}.AppImage");
        let target = tauri_plugin_updater::target().expect("a supported platform");
        self.put(
            &self.manifest_path(channel),
            Reply::json(json!({
                "version": version,
                "notes": format!("What is new in {version}"),
                "pub_date": "2026-01-01T00:00:00Z",
                "platforms": { target: { "url": self.url(&artifact_path), "signature": signature } },
            })),
        );
        self.put(&artifact_path, Reply::bytes(artifact));
    }

    fn requests(&self) -> Vec<String> {
        self.site.lock().expect("site").requests.clone()
    }
}

async fn serve(State(site): State<Arc<Mutex<Site>>>, uri: Uri) -> Response {
    let path = uri.path().to_string();
    let reply = {
        let mut site = site.lock().expect("site");
        site.requests.push(path.clone());
        site.replies.get(&path).cloned()
    };
    let reply = reply.unwrap_or_else(|| Reply::text(StatusCode::NOT_FOUND, "not found"));
    Response::builder()
        .status(reply.status)
        .header("content-type", reply.content_type)
        .body(Body::from(reply.body))
        .expect("a response")
}

// ---- the app -----------------------------------------------------------------------------

/// A headless app running `CURRENT`, with the updater plugin configured as the real app is.
fn app() -> tauri::App<MockRuntime> {
    let conf: Value = serde_json::from_str(include_str!("../../../tauri.conf.json")).expect("tauri.conf.json");
    let mut context = tauri::test::mock_context(tauri::test::noop_assets());
    context.config_mut().plugins.0.insert("updater".into(), conf["plugins"]["updater"].clone());
    context.package_info_mut().version = CURRENT.parse().expect("version");
    tauri::test::mock_builder().plugin(ruwad_desktop::update::plugin()).build(context).expect("the mock app")
}

/// What the user's channel resolves to with `RUWAD_UPDATE_URL` / `RUWAD_UPDATE_PUBKEY` set.
fn source(app: &tauri::App<MockRuntime>, channel: UpdateChannel, template: &str, key: &Key) -> UpdateSource {
    let env: HashMap<&str, String> =
        HashMap::from([(ENV_UPDATE_URL, template.to_string()), (ENV_UPDATE_PUBKEY, key.public())]);
    UpdateSource::resolve(channel, |k| env.get(k).cloned(), None, app.config().plugins.0.get("updater"))
        .expect("a valid source")
}

/// The installed "app" (an AppImage-style file) in a temporary folder.
fn installed() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("Ruwad.AppImage");
    std::fs::write(&path, OLD_BUILD).expect("the installed build");
    (dir, path)
}

async fn bounded<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, f).await.expect("the updater answers within the wait")
}

async fn install(
    updates: &Updates,
    app: &tauri::App<MockRuntime>,
    version: &str,
) -> (Result<(), AppError>, Vec<Progress>) {
    let mut progress = Vec::new();
    let result = bounded(updates.install(app.handle(), version, |p| progress.push(p))).await;
    (result, progress)
}

fn contents(path: &Path) -> Vec<u8> {
    std::fs::read(path).expect("the installed build is readable")
}

// ---- (a) a newer signed release ----------------------------------------------------------

#[tokio::test]
async fn a_newer_signed_release_is_offered_and_installs_only_when_asked() {
    let (server, key, app) = (Server::start().await, Key::new(), app());
    let artifact = build("0.2.0");
    server.publish("stable", "0.2.0", artifact.clone(), key.sign(&artifact, "0.2.0"));
    let (_dir, path) = installed();
    let updates = Updates::installing_to(&path);

    let offered = bounded(updates.check(app.handle(), &source(&app, UpdateChannel::Stable, &server.template(), &key)))
        .await
        .expect("the check succeeds")
        .expect("0.2.0 > 0.1.0 is offered");
    assert_eq!(offered.version, "0.2.0");
    assert_eq!(offered.current_version, CURRENT);
    assert_eq!(offered.notes.as_deref(), Some("What is new in 0.2.0"));
    assert_eq!(offered.date.as_deref(), Some("2026-01-01T00:00:00Z"));
    assert_eq!(server.requests(), [server.manifest_path("stable")], "a check only reads the manifest");
    assert_eq!(contents(&path), OLD_BUILD, "checking installs nothing");

    let (refused, _) = install(&updates, &app, "0.3.0").await;
    assert_eq!(refused.expect_err("0.3.0 was never offered").code, ErrorCode::UpdateUnavailable);
    assert_eq!(server.requests().len(), 1, "nothing is downloaded for a version that was not offered");

    let (result, progress) = install(&updates, &app, "0.2.0").await;
    result.expect("the signed 0.2.0 installs");
    assert_eq!(contents(&path), artifact, "the verified download replaced the installed build");
    let last = progress.last().expect("progress is reported");
    assert_eq!(last.downloaded, artifact.len() as u64);
    assert_eq!(server.requests().len(), 2, "the artifact is downloaded once");

    let (again, _) = install(&updates, &app, "0.2.0").await;
    assert_eq!(again.expect_err("an installed update is no longer offered").code, ErrorCode::UpdateUnavailable);
}

#[tokio::test]
async fn each_channel_asks_its_own_endpoint() {
    let (server, key, app) = (Server::start().await, Key::new(), app());
    let artifact = build("0.2.0-beta.1");
    server.publish("beta", "0.2.0-beta.1", artifact.clone(), key.sign(&artifact, "0.2.0-beta.1"));
    let updates = Updates::installing_to(installed().1);

    let beta = source(&app, UpdateChannel::Beta, &server.template(), &key);
    let found = bounded(updates.check(app.handle(), &beta)).await.expect("beta check");
    assert_eq!(found.map(|u| u.version).as_deref(), Some("0.2.0-beta.1"), "the beta channel offers the beta");

    let stable = source(&app, UpdateChannel::Stable, &server.template(), &key);
    let e = bounded(updates.check(app.handle(), &stable)).await.expect_err("nothing on stable (404)");
    assert_eq!(e.code, ErrorCode::UpdateUnavailable, "{}", e.message);
    assert_eq!(server.requests(), [server.manifest_path("beta"), server.manifest_path("stable")]);
}

// ---- (b) a signature that does not match -------------------------------------------------

/// Checks (offered), installs (refused with `signature`) and proves nothing changed.
async fn assert_refused(server: &Server, trusted: &Key, app: &tauri::App<MockRuntime>, version: &str, why: &str) {
    let (_dir, path) = installed();
    let updates = Updates::installing_to(&path);
    let found = bounded(updates.check(app.handle(), &source(app, UpdateChannel::Stable, &server.template(), trusted)))
        .await
        .expect("the check itself succeeds");
    assert_eq!(found.map(|u| u.version).as_deref(), Some(version), "{why}: offered (the check does not download)");
    let (result, _) = install(&updates, app, version).await;
    let e = result.expect_err(why);
    assert_eq!(e.code, ErrorCode::Signature, "{why}: {}", e.message);
    assert!(e.message.contains("not installed"), "{why}: the message says so: {}", e.message);
    assert_eq!(contents(&path), OLD_BUILD, "{why}: nothing was installed");
}

#[tokio::test]
async fn a_release_signed_by_another_key_is_refused_and_nothing_is_installed() {
    let (server, trusted, other, app) = (Server::start().await, Key::new(), Key::new(), app());
    let artifact = build("0.2.0");
    server.publish("stable", "0.2.0", artifact.clone(), other.sign(&artifact, "0.2.0"));
    assert_refused(&server, &trusted, &app, "0.2.0", "signed by a key the app does not trust").await;
}

#[tokio::test]
async fn a_tampered_artifact_is_refused_and_nothing_is_installed() {
    let (server, key, app) = (Server::start().await, Key::new(), app());
    let artifact = build("0.2.0");
    let signature = key.sign(&artifact, "0.2.0");
    let mut tampered = artifact;
    tampered[100] ^= 1;
    server.publish("stable", "0.2.0", tampered, signature);
    assert_refused(&server, &key, &app, "0.2.0", "one bit changed after signing").await;
}

#[tokio::test]
async fn an_old_build_announced_as_a_new_version_is_refused() {
    // A genuine, validly signed 0.1.5 build served as "0.2.0": the signature names 0.1.5.
    let (server, key, app) = (Server::start().await, Key::new(), app());
    let old = build("0.1.5");
    server.publish("stable", "0.2.0", old.clone(), key.sign(&old, "0.1.5"));
    assert_refused(&server, &key, &app, "0.2.0", "the signed version is not the announced one").await;
}

// ---- (c) same or older -------------------------------------------------------------------

#[tokio::test]
async fn the_same_or_an_older_version_is_not_offered() {
    let (server, key, app) = (Server::start().await, Key::new(), app());
    let (_dir, path) = installed();
    let updates = Updates::installing_to(&path);
    let stable = source(&app, UpdateChannel::Stable, &server.template(), &key);
    for version in [CURRENT, "0.0.9", "0.1.0-rc.1"] {
        let artifact = build(version);
        server.publish("stable", version, artifact.clone(), key.sign(&artifact, version));
        let found = bounded(updates.check(app.handle(), &stable)).await.expect("the check succeeds");
        assert_eq!(found, None, "{version} is not newer than {CURRENT}");
        let (result, _) = install(&updates, &app, version).await;
        assert_eq!(result.expect_err("not offered").code, ErrorCode::UpdateUnavailable, "{version}");
    }
    server.put(
        &server.manifest_path("stable"),
        Reply { status: StatusCode::NO_CONTENT, content_type: "text/plain", body: Vec::new() },
    );
    assert_eq!(bounded(updates.check(app.handle(), &stable)).await.expect("204"), None, "204: no update");
    assert_eq!(contents(&path), OLD_BUILD);
}

// ---- (d) a bad manifest, an unreachable server -------------------------------------------

#[tokio::test]
async fn a_bad_manifest_or_an_unreachable_server_is_a_clear_error() {
    let (server, key, app) = (Server::start().await, Key::new(), app());
    let updates = Updates::installing_to(installed().1);
    let stable = source(&app, UpdateChannel::Stable, &server.template(), &key);
    let manifest = server.manifest_path("stable");
    let signature = key.sign(b"x", "0.2.0");
    let cases = [
        (Reply::text(StatusCode::OK, "<html>maintenance</html>"), "not a release manifest"),
        (Reply::json(json!({ "notes": "no version" })), "not valid"),
        (Reply::json(json!({ "version": "two", "url": server.url("/a"), "signature": signature })), "not valid"),
        (
            Reply::json(
                json!({ "version": "0.2.0", "platforms": { "plan9-mips": { "url": server.url("/a"), "signature": signature } } }),
            ),
            "no build of the new version for this system",
        ),
        (Reply::text(StatusCode::INTERNAL_SERVER_ERROR, "oops"), "no release for this channel"),
    ];
    for (reply, says) in cases {
        server.put(&manifest, reply);
        let e = bounded(updates.check(app.handle(), &stable)).await.expect_err(says);
        assert_eq!(e.code, ErrorCode::UpdateUnavailable, "{says}: {}", e.message);
        assert!(e.message.contains(says), "the message says {says:?}: {}", e.message);
    }

    // A port nothing listens on.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind").local_addr().expect("addr");
    let template = format!("http://{closed}/desktop/{{channel}}/{{{{target}}}}");
    let e = bounded(updates.check(app.handle(), &source(&app, UpdateChannel::Stable, &template, &key)))
        .await
        .expect_err("nothing listens");
    assert_eq!(e.code, ErrorCode::Unavailable, "{}", e.message);
    assert!(e.message.contains("cannot reach the update server"), "{}", e.message);
}

#[tokio::test]
async fn a_check_that_fails_forgets_nothing_it_did_not_offer() {
    // An update offered, then a failed check: the offer stands (the user may still install
    // what they were shown); a later "no update" withdraws it.
    let (server, key, app) = (Server::start().await, Key::new(), app());
    let artifact = build("0.2.0");
    server.publish("stable", "0.2.0", artifact.clone(), key.sign(&artifact, "0.2.0"));
    let (_dir, path) = installed();
    let updates = Updates::installing_to(&path);
    let stable = source(&app, UpdateChannel::Stable, &server.template(), &key);
    assert!(bounded(updates.check(app.handle(), &stable)).await.expect("check").is_some());
    server.put(&server.manifest_path("stable"), Reply::text(StatusCode::OK, "garbage"));
    bounded(updates.check(app.handle(), &stable)).await.expect_err("a bad manifest");
    let (result, _) = install(&updates, &app, "0.2.0").await;
    result.expect("the offer from the good check stands");
    assert_eq!(contents(&path), artifact);
}
