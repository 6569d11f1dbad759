//! The commands the webview invokes (the IPC contract, `../ipc-contract.md`). Each one only
//! translates its arguments, calls `ruwad_core::Engine` (or the shell's state) and maps the
//! error to [`crate::error::AppError`].
//!
//! Field names of every object are snake_case. Command *argument keys* are Tauri's default,
//! camelCase (`{ roomId }`): the generated bindings take arguments positionally and tauri-specta
//! (2.0.0-rc.26) always writes the invoke keys in camelCase, so the Rust side must expect that.
//! Call commands through `ui/src/bindings.ts` and the key case never shows.
//!
//! [`specta_builder`] lists them for the invoke handler and for the generated TypeScript
//! bindings (`ui/src/bindings.ts`, see [`crate::bindings`]).
//!
//! Binary data (Yjs updates, state vectors, awareness) crosses as base64 strings.
//!
//! Not here yet: `profiles` (no engine API for profiles).

use std::time::Duration;

use ruwad_core::docs::codec::{b64, unb64};
use ruwad_core::docs::{DocStatus, DocSync, DocumentInfo};
use ruwad_core::model::{
    Activity, Challenge, LiveMetrics, MessagePage, OutboxEntry, Profile, QueueCounts, Room, SeriesPoint, Submission,
};
use ruwad_core::notify::Prefs;
use ruwad_core::store::cache::Anchor;
use ruwad_core::{ConnectionState, Engine};
use serde::Serialize;
use specta::Type;
use tauri::{AppHandle, State};
use uuid::Uuid;

use crate::config::{Backend, Settings};
use crate::error::{AppError, AppResult, ErrorCode};
use crate::events::{emit, AppEvent, ShellEvent};
use crate::state::{AppState, Capabilities};
use crate::update::{Progress, UpdateInfo, UpdateSource, Updates};

async fn engine(state: &State<'_, AppState>) -> AppResult<Engine> {
    Ok(state.running().await?.engine.clone())
}

// ---- app -----------------------------------------------------------------------------------

/// The UI has drawn `screen` with `items` rows from the local cache: logs the startup time once
/// (see [`crate::startup`]).
#[tauri::command]
#[specta::specta]
pub async fn ui_ready(screen: crate::startup::ReadyScreen, items: u32) -> AppResult<()> {
    crate::startup::ui_ready(screen, items);
    Ok(())
}

#[derive(Debug, Clone, Serialize, Type)]
pub struct DemoAccount {
    pub email: String,
    pub password: String,
    pub display_name: String,
}

#[derive(Debug, Clone, Serialize, Type)]
pub struct AppInfo {
    pub version: String,
    /// The backend the engine runs on (or is starting on).
    pub backend: Backend,
    /// The embedded backend's demo logins (empty on a Supabase project).
    pub demo_accounts: Vec<DemoAccount>,
    pub capabilities: Capabilities,
}

#[tauri::command]
#[specta::specta]
pub async fn app_info(app: AppHandle, state: State<'_, AppState>) -> AppResult<AppInfo> {
    // Answer once the engine has started (or failed to), so the keychain capability is known;
    // a start failure is reported by the other commands.
    let _ = state.running().await;
    let backend = state.running_now().map(|r| r.backend.clone()).unwrap_or_else(|| state.configured_backend());
    Ok(AppInfo {
        version: app.package_info().version.to_string(),
        demo_accounts: if backend == Backend::Embedded { crate::runtime::demo_accounts() } else { Vec::new() },
        backend,
        capabilities: state.capabilities(),
    })
}

/// Restarts the engine on `backend` (signs out first).
#[tauri::command]
#[specta::specta]
pub async fn set_backend(app: AppHandle, state: State<'_, AppState>, backend: Backend) -> AppResult<()> {
    state.switch(&app, backend).await
}

#[tauri::command]
#[specta::specta]
pub async fn settings(state: State<'_, AppState>) -> AppResult<Settings> {
    Ok(state.settings())
}

#[tauri::command]
#[specta::specta]
pub async fn set_settings(app: AppHandle, state: State<'_, AppState>, settings: Settings) -> AppResult<()> {
    state.set_settings(settings)?;
    crate::tray::sync_menu(&app);
    if let Some(running) = state.running_now() {
        crate::tray::refresh_unread(&app, &running.engine).await;
    }
    Ok(())
}

/// Opens a second window of the app in its own profile on this embedded backend, for signing
/// in as another demo account (`refused` on a Supabase project).
#[tauri::command]
#[specta::specta]
pub async fn open_second_window(
    state: State<'_, AppState>,
    windows: State<'_, crate::second::SecondWindows>,
) -> AppResult<()> {
    let running = state.running().await?;
    windows.open(&state.dirs.data, &running)
}

// ---- updates (`crate::update`) -------------------------------------------------------------

/// A newer version on the user's channel, if any (remembered as the one `install_update` may
/// install).
#[tauri::command]
#[specta::specta]
pub async fn check_update(
    app: AppHandle,
    state: State<'_, AppState>,
    updates: State<'_, Updates>,
) -> AppResult<Option<UpdateInfo>> {
    let source = UpdateSource::for_app(&app, state.settings().update_channel, state.update_url().as_deref())?;
    updates.check(&app, &source).await
}

/// The user's "Install now" for `version` (the one offered): downloads it with progress
/// events, verifies its signature, installs it and restarts the app.
#[tauri::command]
#[specta::specta]
pub async fn install_update(app: AppHandle, updates: State<'_, Updates>, version: String) -> AppResult<()> {
    let progress = |p: Progress| {
        emit(&app, AppEvent::Shell(ShellEvent::UpdateProgress { downloaded: p.downloaded, total: p.total }));
    };
    updates.install(&app, &version, progress).await?;
    emit(&app, AppEvent::Shell(ShellEvent::UpdateInstalled { version }));
    app.request_restart();
    Ok(())
}

// ---- session -------------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize, Type)]
pub struct SessionInfo {
    pub user_id: Option<Uuid>,
    pub email: Option<String>,
    pub display_name: Option<String>,
    /// The session survives a restart (it is in the OS keychain).
    pub remembered: bool,
}

#[derive(Debug, Clone, Serialize, Type)]
pub struct SignedIn {
    pub user_id: Uuid,
}

#[tauri::command]
#[specta::specta]
pub async fn session(state: State<'_, AppState>) -> AppResult<SessionInfo> {
    let running = state.running().await?;
    let user = running.engine.auth().session().map(|s| s.user);
    Ok(SessionInfo {
        user_id: running.engine.user_id(),
        email: user.as_ref().and_then(|u| u.email.clone()),
        display_name: user
            .as_ref()
            .and_then(|u| u.user_metadata.get("display_name").and_then(|v| v.as_str()).map(String::from)),
        remembered: running.remembered().remembered,
    })
}

#[tauri::command]
#[specta::specta]
pub async fn sign_in(state: State<'_, AppState>, email: String, password: String) -> AppResult<SignedIn> {
    Ok(SignedIn { user_id: engine(&state).await?.sign_in(&email, &password).await? })
}

#[tauri::command]
#[specta::specta]
pub async fn sign_out(state: State<'_, AppState>) -> AppResult<()> {
    Ok(engine(&state).await?.sign_out().await?)
}

#[tauri::command]
#[specta::specta]
pub async fn connection(state: State<'_, AppState>) -> AppResult<ConnectionState> {
    Ok(engine(&state).await?.connection())
}

#[tauri::command]
#[specta::specta]
pub async fn queue_counts(state: State<'_, AppState>) -> AppResult<QueueCounts> {
    Ok(engine(&state).await?.queue_counts().await?)
}

#[tauri::command]
#[specta::specta]
pub async fn outbox(state: State<'_, AppState>) -> AppResult<Vec<OutboxEntry>> {
    Ok(engine(&state).await?.outbox().await?)
}

#[tauri::command]
#[specta::specta]
pub async fn retry(state: State<'_, AppState>, seq: i64) -> AppResult<()> {
    Ok(engine(&state).await?.retry(seq).await?)
}

#[tauri::command]
#[specta::specta]
pub async fn discard(state: State<'_, AppState>, seq: i64) -> AppResult<()> {
    Ok(engine(&state).await?.discard(seq).await?)
}

/// Display names of other users (`ids`, at most 500): from the cache, the missing ones asked
/// from the server when it can be reached; ids without a profile are left out.
#[tauri::command]
#[specta::specta]
pub async fn profiles(state: State<'_, AppState>, ids: Vec<Uuid>) -> AppResult<Vec<Profile>> {
    Ok(engine(&state).await?.profiles(ids).await?)
}

// ---- chat ----------------------------------------------------------------------------------

#[tauri::command]
#[specta::specta]
pub async fn rooms(state: State<'_, AppState>) -> AppResult<Vec<Room>> {
    Ok(engine(&state).await?.rooms().await?)
}

#[tauri::command]
#[specta::specta]
pub async fn messages(state: State<'_, AppState>, room_id: Uuid, limit: u32) -> AppResult<MessagePage> {
    Ok(engine(&state).await?.messages(room_id, limit).await?)
}

#[tauri::command]
#[specta::specta]
pub async fn history(
    state: State<'_, AppState>,
    room_id: Uuid,
    before: Option<Anchor>,
    limit: u32,
) -> AppResult<MessagePage> {
    Ok(engine(&state).await?.history(room_id, before, limit).await?)
}

#[tauri::command]
#[specta::specta]
pub async fn send_message(
    state: State<'_, AppState>,
    room_id: Uuid,
    content: String,
    reply_to: Option<Uuid>,
) -> AppResult<Uuid> {
    Ok(engine(&state).await?.send_reply(room_id, &content, reply_to).await?)
}

#[tauri::command]
#[specta::specta]
pub async fn edit_message(state: State<'_, AppState>, id: Uuid, content: String) -> AppResult<()> {
    Ok(engine(&state).await?.edit_message(id, &content).await?)
}

#[tauri::command]
#[specta::specta]
pub async fn delete_message(state: State<'_, AppState>, id: Uuid) -> AppResult<()> {
    Ok(engine(&state).await?.delete_message(id).await?)
}

#[tauri::command]
#[specta::specta]
pub async fn react(state: State<'_, AppState>, message_id: Uuid, emoji: String) -> AppResult<()> {
    Ok(engine(&state).await?.react(message_id, &emoji).await?)
}

#[tauri::command]
#[specta::specta]
pub async fn unreact(state: State<'_, AppState>, message_id: Uuid, emoji: String) -> AppResult<()> {
    Ok(engine(&state).await?.unreact(message_id, &emoji).await?)
}

#[tauri::command]
#[specta::specta]
pub async fn mark_read(state: State<'_, AppState>, room_id: Uuid) -> AppResult<()> {
    Ok(engine(&state).await?.mark_read(room_id).await?)
}

#[tauri::command]
#[specta::specta]
pub async fn enter_room(state: State<'_, AppState>, room_id: Uuid) -> AppResult<()> {
    Ok(engine(&state).await?.enter_room(room_id).await?)
}

#[tauri::command]
#[specta::specta]
pub async fn leave_room(state: State<'_, AppState>, room_id: Uuid) -> AppResult<()> {
    Ok(engine(&state).await?.leave_room(room_id).await?)
}

/// Call on every keystroke; true when a typing notice went out.
#[tauri::command]
#[specta::specta]
pub async fn typing(state: State<'_, AppState>, room_id: Uuid) -> AppResult<bool> {
    Ok(engine(&state).await?.typing(room_id).await?)
}

#[tauri::command]
#[specta::specta]
pub async fn stop_typing(state: State<'_, AppState>, room_id: Uuid) -> AppResult<()> {
    Ok(engine(&state).await?.stop_typing(room_id).await?)
}

#[tauri::command]
#[specta::specta]
pub async fn online(state: State<'_, AppState>, room_id: Uuid) -> AppResult<Vec<Uuid>> {
    Ok(engine(&state).await?.online(room_id))
}

#[tauri::command]
#[specta::specta]
pub async fn typers(state: State<'_, AppState>, room_id: Uuid) -> AppResult<Vec<Uuid>> {
    Ok(engine(&state).await?.typers(room_id))
}

#[tauri::command]
#[specta::specta]
pub async fn draft(state: State<'_, AppState>, room_id: Uuid) -> AppResult<Option<String>> {
    Ok(engine(&state).await?.draft(room_id).await?)
}

#[tauri::command]
#[specta::specta]
pub async fn set_draft(state: State<'_, AppState>, room_id: Uuid, content: String) -> AppResult<()> {
    Ok(engine(&state).await?.set_draft(room_id, &content).await?)
}

// ---- challenges ----------------------------------------------------------------------------

#[tauri::command]
#[specta::specta]
pub async fn challenges(state: State<'_, AppState>) -> AppResult<Vec<Challenge>> {
    Ok(engine(&state).await?.challenges().await?)
}

#[tauri::command]
#[specta::specta]
pub async fn submissions(state: State<'_, AppState>, challenge_id: Uuid) -> AppResult<Vec<Submission>> {
    Ok(engine(&state).await?.submissions(challenge_id).await?)
}

#[tauri::command]
#[specta::specta]
pub async fn create_submission(
    state: State<'_, AppState>,
    challenge_id: Uuid,
    title: String,
    content: String,
) -> AppResult<Uuid> {
    Ok(engine(&state).await?.create_submission(challenge_id, &title, &content).await?)
}

#[tauri::command]
#[specta::specta]
pub async fn notification_prefs(state: State<'_, AppState>) -> AppResult<Prefs> {
    Ok(engine(&state).await?.notification_prefs().await?)
}

#[tauri::command]
#[specta::specta]
pub async fn set_notification_prefs(state: State<'_, AppState>, prefs: Prefs) -> AppResult<()> {
    Ok(engine(&state).await?.set_notification_prefs(prefs).await?)
}

#[tauri::command]
#[specta::specta]
pub async fn mute_challenge(state: State<'_, AppState>, challenge_id: Uuid, muted: bool) -> AppResult<()> {
    Ok(engine(&state).await?.mute_challenge(challenge_id, muted).await?)
}

// ---- analytics -----------------------------------------------------------------------------

#[tauri::command]
#[specta::specta]
pub async fn live_metrics(state: State<'_, AppState>) -> AppResult<LiveMetrics> {
    Ok(engine(&state).await?.live_metrics().await?)
}

#[tauri::command]
#[specta::specta]
pub async fn cached_metrics(state: State<'_, AppState>) -> AppResult<Option<LiveMetrics>> {
    Ok(engine(&state).await?.cached_metrics().await?)
}

#[tauri::command]
#[specta::specta]
pub async fn recent_activity(state: State<'_, AppState>, limit: u32) -> AppResult<Vec<Activity>> {
    Ok(engine(&state).await?.recent_activity(limit).await?)
}

#[tauri::command]
#[specta::specta]
pub async fn activity_series(
    state: State<'_, AppState>,
    window_secs: u32,
    bucket_secs: u32,
) -> AppResult<Vec<SeriesPoint>> {
    let (window, bucket) = (Duration::from_secs(window_secs.into()), Duration::from_secs(bucket_secs.max(1).into()));
    Ok(engine(&state).await?.activity_series(window, bucket).await?)
}

// ---- documents (the binding protocol: `ruwad_core::docs`) ---------------------------------

/// What the webview's `Y.Doc` gets when it binds a document (base64).
#[derive(Debug, Clone, Serialize, Type)]
pub struct DocOpened {
    /// The update the webview lacks (apply with the engine's origin).
    pub update: String,
    /// The engine's state vector: send back `Y.encodeStateAsUpdate(doc, state_vector)` through
    /// `doc_update` when it is not empty.
    pub state_vector: String,
    pub read_only: bool,
}

impl From<DocSync> for DocOpened {
    fn from(s: DocSync) -> DocOpened {
        DocOpened { update: b64(&s.update), state_vector: b64(&s.state_vector), read_only: s.read_only }
    }
}

fn bytes(text: &str) -> AppResult<Vec<u8>> {
    unb64(text).map_err(|e| AppError::new(ErrorCode::Refused, e.to_string()))
}

#[tauri::command]
#[specta::specta]
pub async fn documents(state: State<'_, AppState>) -> AppResult<Vec<DocumentInfo>> {
    Ok(engine(&state).await?.documents().await?)
}

#[tauri::command]
#[specta::specta]
pub async fn doc_open(state: State<'_, AppState>, document_id: Uuid, state_vector: String) -> AppResult<DocOpened> {
    Ok(engine(&state).await?.doc_open(document_id, &bytes(&state_vector)?).await?.into())
}

/// What a bound webview lacks (after a `reload`), without binding again.
#[tauri::command]
#[specta::specta]
pub async fn doc_diff(state: State<'_, AppState>, document_id: Uuid, state_vector: String) -> AppResult<DocOpened> {
    Ok(engine(&state).await?.doc_diff(document_id, &bytes(&state_vector)?).await?.into())
}

/// A local Yjs update (refused with `refused` on a read-only document).
#[tauri::command]
#[specta::specta]
pub async fn doc_update(state: State<'_, AppState>, document_id: Uuid, update: String) -> AppResult<()> {
    Ok(engine(&state).await?.doc_update(document_id, &bytes(&update)?).await?)
}

/// A y-protocols awareness update of the local client.
#[tauri::command]
#[specta::specta]
pub async fn doc_awareness(state: State<'_, AppState>, document_id: Uuid, update: String) -> AppResult<()> {
    Ok(engine(&state).await?.doc_awareness(document_id, &bytes(&update)?)?)
}

#[tauri::command]
#[specta::specta]
pub async fn doc_close(state: State<'_, AppState>, document_id: Uuid) -> AppResult<()> {
    Ok(engine(&state).await?.doc_close(document_id).await?)
}

#[tauri::command]
#[specta::specta]
pub async fn doc_status(state: State<'_, AppState>, document_id: Uuid) -> AppResult<DocStatus> {
    Ok(engine(&state).await?.doc_status(document_id).await?)
}

/// Every command, for the invoke handler and the bindings.
pub fn specta_builder() -> tauri_specta::Builder<tauri::Wry> {
    tauri_specta::Builder::<tauri::Wry>::new()
        .commands(tauri_specta::collect_commands![
            app_info,
            set_backend,
            settings,
            set_settings,
            open_second_window,
            check_update,
            install_update,
            session,
            sign_in,
            sign_out,
            connection,
            queue_counts,
            outbox,
            retry,
            discard,
            profiles,
            rooms,
            messages,
            history,
            send_message,
            edit_message,
            delete_message,
            react,
            unreact,
            mark_read,
            enter_room,
            leave_room,
            typing,
            stop_typing,
            online,
            typers,
            draft,
            set_draft,
            challenges,
            submissions,
            create_submission,
            notification_prefs,
            set_notification_prefs,
            mute_challenge,
            live_metrics,
            cached_metrics,
            recent_activity,
            activity_series,
            documents,
            doc_open,
            doc_diff,
            doc_update,
            doc_awareness,
            doc_close,
            doc_status,
            ui_ready,
        ])
        .events(tauri_specta::collect_events![crate::events::AppEvent])
        .typ::<crate::error::AppError>()
        .error_handling(tauri_specta::ErrorHandlingMode::Throw)
        .function_casing(tauri_specta::Casing::SnakeCase)
        // One TypeScript type per Rust type (no `_Serialize` / `_Deserialize` pairs).
        .disable_serde_phases()
        // Counts, sequence numbers and Unix seconds: far below 2^53, and JSON carries them as
        // numbers anyway.
        .dangerously_cast_bigints_to_number()
}

#[cfg(test)]
mod tests {
    use crate::command_names::COMMANDS;

    #[test]
    fn every_registered_command_is_declared_and_granted_to_the_window() {
        let bindings = crate::bindings::render().expect("render the bindings");
        let invoked: Vec<&str> = bindings
            .split("__TAURI_INVOKE<")
            .skip(1)
            .filter_map(|rest| rest.split("(\"").nth(1)?.split('"').next())
            .collect();
        let mut registered = invoked.clone();
        registered.sort_unstable();
        let mut declared = COMMANDS.to_vec();
        declared.sort_unstable();
        assert_eq!(
            registered, declared,
            "command_names.rs (build.rs's permissions) lists exactly the registered commands"
        );

        let capability: serde_json::Value =
            serde_json::from_str(include_str!("../capabilities/default.json")).expect("json");
        let granted: Vec<String> = capability["permissions"]
            .as_array()
            .expect("permissions")
            .iter()
            .filter_map(|p| p.as_str()?.strip_prefix("allow-").map(String::from))
            .collect();
        for name in COMMANDS {
            assert!(granted.contains(&name.replace('_', "-")), "the main window may call {name}");
        }
        assert_eq!(granted.len(), COMMANDS.len(), "nothing else is granted");
    }
}
