//! `hubchat-server`: the hub. See `hubchat-server --help`.

// No console window beside the server's window on Windows; started from a
// console it still prints there (see `common::console`).
#![cfg_attr(windows, windows_subsystem = "windows")]

use hubchat::server::cli::{self, Command};

fn main() {
    hubchat::common::console::attach_to_parent();
    // Each client is an open file; the default soft limit (often 1,024)
    // would cap the clients long before memory does.
    let _ = hubchat::common::fdlimit::raise_open_file_limit();
    hubchat::common::memory::use_few_arenas();
    let status = match cli::parse(std::env::args().skip(1)) {
        Ok(Command::Help) => {
            print!("{}", cli::USAGE);
            0
        }
        Ok(Command::Version) => {
            println!("hubchat-server {}", env!("CARGO_PKG_VERSION"));
            0
        }
        Ok(Command::Run {
            headless: true,
            config,
        }) => headless(&config),
        Ok(Command::Run {
            headless: false,
            config,
        }) => run_window(&config),
        Err(e) => {
            eprintln!(
                "hubchat-server: {}\nTry 'hubchat-server --help' for the options.",
                e.0
            );
            2
        }
    };
    std::process::exit(status);
}

/// The window, or headless with a sentence saying why when there is no
/// display to draw on.
#[cfg(feature = "gui")]
fn run_window(config: &cli::ServerConfigArgs) -> i32 {
    if hubchat::gui::display_available() {
        return hubchat::server::gui::run(config);
    }
    eprintln!("hubchat-server: no display found, so running without a window (--headless).");
    headless(config)
}

/// Runs headless with the certificate, database and password on disk.
fn headless(config: &cli::ServerConfigArgs) -> i32 {
    match config.to_config_with_files() {
        Ok(server_config) => cli::run_headless(server_config, config.message_text()),
        Err(e) => {
            eprintln!("hubchat-server: {e}");
            1
        }
    }
}

/// A build without windows (`--no-default-features`) always runs headless.
#[cfg(not(feature = "gui"))]
fn run_window(config: &cli::ServerConfigArgs) -> i32 {
    eprintln!("hubchat-server: this build has no window, so running without one (--headless).");
    headless(config)
}
