// No console window on Windows in release builds.
#![cfg_attr(all(not(debug_assertions), target_os = "windows"), windows_subsystem = "windows")]

fn main() {
    ruwad_desktop::run(
        tauri::generate_context!("../tauri.conf.json"),
        Some(tauri::include_image!("../icons/tray.png")),
    );
}
