//! The app's configuration is the top-level `tauri.conf.json` (beside the workspace manifest),
//! not a copy in this folder: tauri-build reads it from there, and `main.rs` passes the same
//! path to `tauri::generate_context!`. Paths inside it (`frontendDist`, icons) are relative to
//! that file, i.e. to the repository root.
//!
//! The app's commands are declared here so that each gets an `allow-<command>` permission:
//! only those granted in `capabilities/` can be invoked.

include!("src/command_names.rs");

fn main() {
    let attributes = tauri_build::Attributes::new()
        .config_path("../tauri.conf.json")
        .app_manifest(tauri_build::AppManifest::new().commands(COMMANDS));
    tauri_build::try_build(attributes).expect("tauri-build: cannot read ../tauri.conf.json or its icons");
}
