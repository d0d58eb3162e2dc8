//! The client window reconnecting by itself, under Xvfb, against a real
//! server: the banner's countdown, "Reconnect now", Disconnect stopping the
//! loop, no timer unless counting down, and "Connect when HubChat starts"
//! remembered in a settings folder of the test's own.

mod support;

use std::time::{Duration, Instant};

use fltk::app;
use fltk::prelude::*;
use hubchat::client::controller::Status;
use hubchat::client::form::ClientSettings;
use hubchat::client::gui::ask::{Answer, Ask, Question};
use hubchat::client::gui::{ClientApp, Msg};
use support::TestServer;

fn main() {
    if !hubchat::gui::display_available() {
        println!("skipped: no display; run under xvfb-run (scripts/test.sh does)");
        println!("test result: ok. 0 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out");
        return;
    }
    // Never the user's own settings: a folder of this run's own.
    let config =
        std::env::temp_dir().join(format!("hubchat-reconnect-test-{}", std::process::id()));
    std::fs::create_dir_all(&config).unwrap();
    std::env::set_var("HUBCHAT_CONFIG_DIR", &config);
    let _app = app::App::default();
    hubchat::gui::init_look();
    let key = support::new_identity();
    let mut server = TestServer::start_with(|c| c.credentials = Some(key.clone()));
    let addr = server.addr;
    let mut passed = 0;

    print!("test \"Connect when HubChat starts\" is off until the first connection, then on and remembered ... ");
    std::fs::write(
        config.join("client.json"),
        format!(
            r#"{{"host": "127.0.0.1", "port": {}, "name": "alice"}}"#,
            addr.port()
        ),
    )
    .unwrap();
    let mut alice = window();
    alice.window.show();
    assert!(!alice.at_start.is_checked(), "unset: off");
    alice.connect_at_start();
    assert_eq!(alice.controller.status(), &Status::Offline, "so nothing");
    alice.act(Msg::ConnectDisconnect);
    pump_until(&mut alice, "connected", connected);
    assert!(
        alice.at_start.is_checked(),
        "the first connection turns it on"
    );
    assert_eq!(saved(&config).connect_at_start, Some(true));
    assert!(!alice.countdown_running(), "connected: no timer");
    // The user clears it: that stays, also after connecting again.
    alice.at_start.set_checked(false);
    alice.at_start.do_callback();
    alice.pump();
    assert_eq!(saved(&config).connect_at_start, Some(false));
    alice.act(Msg::ConnectDisconnect);
    alice.act(Msg::ConnectDisconnect);
    pump_until(&mut alice, "connected again", connected);
    assert!(!alice.at_start.is_checked());
    assert_eq!(saved(&config).connect_at_start, Some(false));
    let mut again = window();
    again.connect_at_start();
    assert_eq!(again.controller.status(), &Status::Offline, "left off");
    again.act(Msg::Quit);
    // Ticked again, a new window connects by itself.
    alice.at_start.set_checked(true);
    alice.at_start.do_callback();
    alice.pump();
    let remembered = saved(&config);
    assert_eq!(remembered.connect_at_start, Some(true));
    assert_eq!(remembered.name, "alice", "the rest of the file is kept");
    alice.act(Msg::ConnectDisconnect);
    let mut started = window();
    started.window.show();
    assert!(started.at_start.is_checked());
    started.connect_at_start();
    assert!(matches!(
        started.controller.status(),
        Status::Connecting { .. }
    ));
    pump_until(&mut started, "connected at start", connected);
    started.act(Msg::Quit);
    println!("ok");
    passed += 1;

    print!("test a lost connection counts down in the banner, Reconnect now tries at once ... ");
    alice.act(Msg::ConnectDisconnect);
    pump_until(&mut alice, "connected", connected);
    server.stop();
    pump_until(&mut alice, "the loss", |a| a.banner.visible());
    let banner = alice.banner.label();
    assert!(
        banner.starts_with("Connection lost: ") && banner.contains("\nReconnecting in 1 s..."),
        "{banner}"
    );
    assert!(alice.reconnect_now_button().visible_r());
    assert!(
        alice.countdown_running(),
        "the timer runs while counting down"
    );
    assert_eq!(alice.connect.label(), "Disconnect");
    assert!(alice.window.label().ends_with("HubChat - connection lost"));
    // Tries after 1 and 2 s fail; then the count starts at 4 and goes down.
    pump_until(&mut alice, "a 4 s wait", |a| {
        a.banner.label().ends_with("Reconnecting in 4 s...")
    });
    pump_until(&mut alice, "the count going down", |a| {
        a.banner.label().ends_with("Reconnecting in 3 s...")
    });
    let due = alice.controller.reconnect().retry_at().unwrap();
    server = TestServer::start_with(|c| {
        c.bind = addr;
        c.credentials = Some(key.clone());
    });
    alice.reconnect_now_button().do_callback();
    alice.pump();
    assert!(
        alice.banner.label().ends_with("\nReconnecting..."),
        "{}",
        alice.banner.label()
    );
    assert!(!alice.reconnect_now_button().active(), "one try at a time");
    assert!(!alice.countdown_running(), "no count while trying");
    pump_until(&mut alice, "joined", connected);
    assert!(Instant::now() < due, "before the try that was due");
    assert!(!alice.banner.visible());
    assert!(!alice.countdown_running(), "connected: no timer");
    println!("ok");
    passed += 1;

    print!("test conversation windows stay open through the loss and the reconnect ... ");
    let mut bob = window();
    bob.host.set_value("127.0.0.1");
    bob.port.set_value(&addr.port().to_string());
    bob.name.set_value("bob");
    bob.act(Msg::Connect);
    pump_until(&mut alice, "bob listed", |a| {
        bob.pump();
        a.model().contacts.len() == 2
    });
    let row = alice
        .model()
        .rows()
        .iter()
        .position(|(c, _)| c.profile.name == "bob")
        .unwrap();
    alice.act(Msg::Open(row));
    server.stop();
    pump_until(&mut alice, "the loss", |a| a.banner.visible());
    assert!(alice.chats["bob"].window.visible(), "kept open");
    server = TestServer::start_with(|c| {
        c.bind = addr;
        c.credentials = Some(key.clone());
    });
    pump_until(&mut alice, "bob back", |a| {
        bob.pump();
        a.model().contacts.len() == 2
    });
    assert!(alice.chats["bob"].window.visible(), "still open");
    bob.act(Msg::Quit);
    println!("ok");
    passed += 1;

    print!("test Disconnect stops reconnecting, and then no timer runs ... ");
    server.stop();
    pump_until(&mut alice, "the loss", |a| a.banner.visible());
    alice.act(Msg::ConnectDisconnect);
    assert_eq!(alice.controller.status(), &Status::Offline);
    assert!(!alice.banner.visible());
    assert!(!alice.countdown_running(), "offline: no timer");
    assert_eq!(alice.connect.label(), "Connect");
    assert!(alice.name.active(), "the form is unlocked");
    let until = Instant::now() + Duration::from_millis(1_500);
    while Instant::now() < until {
        let _ = app::wait_for(0.05);
        alice.pump();
    }
    assert_eq!(alice.controller.status(), &Status::Offline, "no try");
    println!("ok");
    passed += 1;

    print!(
        "test a kick is not retried: the banner says to press Connect, no button, no timer ... "
    );
    server = TestServer::start_with(|c| {
        c.bind = addr;
        c.credentials = Some(key.clone());
    });
    alice.act(Msg::ConnectDisconnect);
    pump_until(&mut alice, "connected", connected);
    let id = alice.controller.session().unwrap().id.clone();
    assert!(server.server.as_ref().unwrap().kick(&id, "time for lunch"));
    pump_until(&mut alice, "the kick", |a| a.banner.visible());
    let banner = alice.banner.label();
    assert!(
        banner.contains("time for lunch") && banner.ends_with("Press Connect to join again."),
        "{banner}"
    );
    assert!(!alice.reconnect_now_button().visible_r());
    assert!(!alice.countdown_running());
    assert_eq!(alice.connect.label(), "Connect");
    println!("ok");
    passed += 1;

    alice.act(Msg::Quit);
    drop(server);
    let _ = std::fs::remove_dir_all(&config);
    println!("test result: ok. {passed} passed; 0 failed; 0 ignored; 0 measured; 0 filtered out");
}

fn connected(app: &ClientApp) -> bool {
    matches!(app.controller.status(), Status::Connected { .. })
}

/// The settings file as it is now.
fn saved(config: &std::path::Path) -> ClientSettings {
    serde_json::from_slice(&std::fs::read(config.join("client.json")).unwrap()).unwrap()
}

fn pump_until(app: &mut ClientApp, what: &str, mut done: impl FnMut(&ClientApp) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !done(app) {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        let _ = app::wait_for(0.01);
        app.pump();
    }
}

/// Declines every question: no test may wait on a dialog nobody answers.
struct Decline;

impl Ask for Decline {
    fn ask(&mut self, _parent: &fltk::window::DoubleWindow, _question: &Question) -> Answer {
        Answer::Declined
    }
}

fn window() -> ClientApp {
    let mut app = ClientApp::new();
    app.ask = Box::new(Decline);
    app
}
