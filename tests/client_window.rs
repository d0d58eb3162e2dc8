//! Two client windows in one process, under Xvfb, talking through a real
//! server: connect from the form, open a chat from the list, send with the
//! window's own action, and see the partner's window open by itself.

mod support;

use std::time::{Duration, Instant};

use fltk::app;
use fltk::prelude::*;
use hubchat::client::gui::picker::{AvatarChoice, AvatarPicker};
use hubchat::client::gui::{ClientApp, Msg};
use support::TestServer;

fn main() {
    if !hubchat::gui::display_available() {
        println!("skipped: no display; run under xvfb-run (scripts/test.sh does)");
        println!("test result: ok. 0 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out");
        return;
    }
    let config = std::env::temp_dir().join(format!("hubchat-client-test-{}", std::process::id()));
    std::env::set_var("HUBCHAT_CONFIG_DIR", &config);
    let _app = app::App::default();
    hubchat::gui::init_look();
    let server = TestServer::start();
    let port = server.addr.port().to_string();
    let mut passed = 0;

    print!("test a remembered custom colour is offered and chosen ... ");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(config.join("client.json"), r##"{"color": "#2e7d32"}"##).unwrap();
    let mut alice = ClientApp::new();
    assert_eq!(alice.colors.chosen(), "#2e7d32");
    assert_eq!(
        alice.colors.offered().len(),
        11,
        "the ten colours and the custom one"
    );
    alice.colors.swatches[2].do_callback();
    alice.pump();
    assert_eq!(alice.colors.chosen(), "red", "a swatch clicked");
    let red = hubchat::gui::color(hubchat::common::color::for_display("red"));
    assert_eq!(alice.name.text_color(), red, "the name shows it, legibly");
    alice.colors.swatches[10].do_callback();
    alice.pump();
    assert_eq!(alice.colors.chosen(), "#2e7d32");
    println!("ok");
    passed += 1;

    print!("test the avatar picker takes a built-in, a picture file, and explains a bad file ... ");
    let mut picker = AvatarPicker::new(1);
    picker.builtins[6].do_callback();
    assert_eq!(picker.chosen(), Some(AvatarChoice::Builtin(7)));
    let mut picker = AvatarPicker::new(1);
    let bad = config.join("notes.png");
    std::fs::write(&bad, b"this is not a picture").unwrap();
    picker.choose_file(&bad);
    assert_eq!(picker.chosen(), None);
    assert!(
        picker
            .error
            .label()
            .starts_with("This is not a picture HubChat can read"),
        "{}",
        picker.error.label()
    );
    let photo = config.join("photo.jpg");
    image::RgbImage::from_pixel(300, 200, image::Rgb([200, 30, 30]))
        .save(&photo)
        .unwrap();
    picker.choose_file(&photo);
    let Some(AvatarChoice::Custom { png, picture }) = picker.chosen() else {
        panic!("a custom avatar was chosen");
    };
    assert!(png.starts_with(b"\x89PNG"), "sent as PNG");
    assert_eq!(picture.rgba.len(), 48 * 48 * 4, "scaled to 48x48");
    alice.set_avatar(AvatarChoice::Custom { png, picture });
    println!("ok");
    passed += 1;

    print!("test a mistake in the form is explained and nothing connects ... ");
    alice.window.show();
    alice.host.set_value("127.0.0.1");
    alice.port.set_value("port");
    alice.name.set_value("alice");
    alice.act(Msg::ConnectDisconnect);
    assert_eq!(
        alice.error.label(),
        "\"port\" is not a port number. Use a number from 1 to 65535."
    );
    assert!(!alice.model().connected());
    assert_ne!(
        alice.port.color(),
        alice.host.color(),
        "the port field is marked"
    );
    println!("ok");
    passed += 1;

    print!("test two windows connect and list each other ... ");
    alice.port.set_value(&port);
    alice.act(Msg::ConnectDisconnect);
    assert_eq!(
        alice.port.color(),
        alice.host.color(),
        "the mark is cleared"
    );
    let mut bob = ClientApp::new();
    bob.window.show();
    bob.host.set_value("127.0.0.1");
    bob.port.set_value(&port);
    bob.name.set_value("bob");
    pump_until(&mut [&mut alice], "alice connected", |a| {
        a[0].model().connected()
    });
    bob.act(Msg::ConnectDisconnect);
    pump_until(&mut [&mut alice, &mut bob], "both listed", |w| {
        w.iter().all(|c| c.model().contacts.len() == 2)
    });
    assert_eq!(alice.list.rows(), 2);
    assert_eq!(alice.connect.label(), "Disconnect");
    assert!(!alice.name.active(), "the form is locked while connected");
    let seen = &bob.model().contacts[0].profile;
    assert_eq!(
        (seen.name.as_str(), seen.color.as_str()),
        ("alice", "#2e7d32")
    );
    println!("ok");
    passed += 1;

    print!("test alice's own picture reaches bob's list, and is remembered ... ");
    pump_until(&mut [&mut alice, &mut bob], "alice's picture", |w| {
        w[1].model().contacts[0].picture.is_some()
    });
    let theirs = bob.model().contacts[0].picture.clone().unwrap();
    assert!(
        theirs.rgba[0] > 180 && theirs.rgba[1] < 60,
        "red, as chosen"
    );
    let mine = alice.model().contacts[0].picture.clone();
    assert!(mine.is_some(), "alice sees her own picture in her list");
    let saved: hubchat::client::form::ClientSettings =
        serde_json::from_slice(&std::fs::read(config.join("client.json")).unwrap()).unwrap();
    assert!(saved.picture().is_some(), "remembered for next time");
    println!("ok");
    passed += 1;

    print!("test a message opens the partner's window by itself, and the answer comes back ... ");
    alice.act(Msg::Open(1)); // bob's row
    let chat = alice.chats.get_mut("bob").expect("alice's window with bob");
    chat.input.set_value("lunch at noon?");
    alice.act(Msg::Send("bob".into()));
    pump_until(&mut [&mut alice, &mut bob], "bob's window", |w| {
        w[1].chats.contains_key("alice")
    });
    assert!(
        bob.chats["alice"].window.shown(),
        "opened by the incoming message"
    );
    let said = &bob.model().conversations["alice"].lines[0].text;
    assert_eq!(said, "lunch at noon?");
    assert!(
        hubchat::gui::attention::requested(&bob.chats["alice"].window),
        "bob's window asks the taskbar for attention"
    );
    bob.chats.get_mut("alice").unwrap().input.set_value("   ");
    bob.act(Msg::Send("alice".into()));
    bob.chats.get_mut("alice").unwrap().input.set_value("yes!");
    bob.act(Msg::Send("alice".into()));
    pump_until(&mut [&mut alice, &mut bob], "the answer", |w| {
        w[0].model().conversations["bob"].lines.len() == 2
    });
    let lines = &alice.model().conversations["bob"].lines;
    assert_eq!(lines[1].text, "yes!", "the blank message was not sent");
    println!("ok");
    passed += 1;

    print!("test the transcript follows new lines unless the user scrolled up ... ");
    for i in 0..40 {
        bob.chats
            .get_mut("alice")
            .unwrap()
            .input
            .set_value(&format!("line {i}"));
        bob.act(Msg::Send("alice".into()));
    }
    pump_until(&mut [&mut alice, &mut bob], "40 more lines", |w| {
        w[0].model().conversations["bob"].lines.len() == 42
    });
    // FLTK scrolls when it next draws.
    settle();
    let chat = alice.chats.get_mut("bob").unwrap();
    assert!(
        chat.top_row() > 1,
        "followed the end: top row {}",
        chat.top_row()
    );
    chat.scroll_to_top();
    settle();
    bob.chats
        .get_mut("alice")
        .unwrap()
        .input
        .set_value("one more");
    bob.act(Msg::Send("alice".into()));
    pump_until(&mut [&mut alice, &mut bob], "one more", |w| {
        w[0].model().conversations["bob"].lines.len() == 43
    });
    settle();
    assert_eq!(
        alice.chats["bob"].top_row(),
        1,
        "stays where the user reads"
    );
    alice
        .chats
        .get_mut("bob")
        .unwrap()
        .input
        .set_value("back to the end");
    alice.act(Msg::Send("bob".into()));
    settle();
    assert!(
        alice.chats["bob"].top_row() > 1,
        "writing goes back to the end"
    );
    println!("ok");
    passed += 1;

    print!("test disconnecting is shown in the partner's window ... ");
    bob.act(Msg::ConnectDisconnect);
    pump_until(&mut [&mut alice, &mut bob], "bob gone", |w| {
        w[0].model().contacts.len() == 1
    });
    let c = &alice.model().conversations["bob"];
    assert!(!c.can_send());
    assert!(
        !alice.chats["bob"].input.active(),
        "input disabled while bob is away"
    );
    println!("ok");
    passed += 1;

    alice.act(Msg::Quit);
    bob.act(Msg::Quit);
    let _ = std::fs::remove_dir_all(&config);
    println!("test result: ok. {passed} passed; 0 failed; 0 ignored; 0 measured; 0 filtered out");
}

fn pump_until(apps: &mut [&mut ClientApp], what: &str, done: impl Fn(&[&mut ClientApp]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done(apps) {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        let _ = app::wait_for(0.01);
        for a in apps.iter_mut() {
            a.pump();
        }
    }
}

/// Lets FLTK draw what is pending (it applies scrolling when it draws).
fn settle() {
    for _ in 0..5 {
        let _ = app::wait_for(0.02);
    }
}
