// No console window on Windows in release builds.
#![cfg_attr(all(not(debug_assertions), target_os = "windows"), windows_subsystem = "windows")]

fn main() {
    // First thing: the startup time in the log counts from here.
    ruwad_desktop::startup::mark();
    ruwad_desktop::run(
        tauri::generate_context!("../tauri.conf.json"),
        Some(tauri::include_image!("../icons/tray.png")),
    );
}
