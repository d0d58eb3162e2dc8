//! Helpers for the window tests, which build with the `gui` feature.

use std::time::{Duration, Instant};

use fltk::app;
use hubchat::client::gui::ClientApp;

/// Runs xdotool against the display, pumping the window meanwhile, then
/// lets it handle what xdotool sent. With no window manager the keyboard
/// goes to the window under the pointer.
pub fn xdo(app: &mut ClientApp, args: &[&str]) {
    let mut child = std::process::Command::new("xdotool")
        .args(args)
        .spawn()
        .expect("xdotool (scripts/install-deps.sh --test installs it)");
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().expect("xdotool runs").is_none() {
        assert!(Instant::now() < deadline, "xdotool {args:?} hangs");
        let _ = app::wait_for(0.005);
        app.pump();
    }
    for _ in 0..10 {
        let _ = app::wait_for(0.01);
        app.pump();
    }
}
