//! `hubchat-client`: the desktop client.

// No console window beside the client's window on Windows; started from a
// console it still prints there (see `common::console`).
#![cfg_attr(windows, windows_subsystem = "windows")]

fn main() {
    hubchat::common::console::attach_to_parent();
    if std::env::args().skip(1).any(|a| a == "-h" || a == "--help") {
        println!("Usage: hubchat-client\n\nOpens the HubChat client window. Settings are remembered between runs.");
        // Said here so that a user (and the Windows check) can see which
        // folder the program found without accepting a file first.
        if let Some(dir) = hubchat::common::downloads::downloads_dir() {
            println!("Files you accept are saved in {}.", dir.display());
        }
        return;
    }
    if !hubchat::gui::display_available() {
        eprintln!("hubchat-client: no display found; the client needs a graphical desktop.");
        std::process::exit(1);
    }
    std::process::exit(hubchat::client::gui::run());
}
