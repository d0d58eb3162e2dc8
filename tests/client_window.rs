//! Two client windows in one process, under Xvfb, talking through a real
//! server: connect from the form, open a chat from the list, send with the
//! window's own action, and see the partner's window open by itself.

mod support;

use std::time::{Duration, Instant};

use fltk::app;
use fltk::prelude::*;
use hubchat::client::gui::picker::{AvatarChoice, AvatarPicker};
use std::cell::RefCell;
use std::rc::Rc;

use hubchat::client::controller::Status;
use hubchat::client::gui::ask::{Answer, Ask, Question};
use hubchat::client::gui::history_view;
use hubchat::client::gui::{ClientApp, Msg, MIN_HEIGHT};
use support::gui::xdo;
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
    // The server's key, kept across its restarts as the real server keeps
    // it in its settings folder (a new key would be refused as a change).
    let server_key = support::new_identity();
    let server = TestServer::start_with(|c| c.credentials = Some(server_key.clone()));
    let port = server.addr.port().to_string();
    let mut passed = 0;

    print!("test servers found on the network fill the Server combo, and picking one fills address and port ... ");
    let office = TestServer::start_with(|c| c.discovery = Some("Office".into()));
    let office_port = office.addr.port();
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(
        config.join("client.json"),
        format!(r#"{{"port": {office_port}}}"#),
    )
    .unwrap();
    let mut finder = window();
    finder.search_targets = vec!["127.255.255.255".parse().unwrap()];
    finder.window.show();
    finder.act(Msg::Search);
    assert_eq!(
        finder.search_status.label(),
        "Searching the network for servers..."
    );
    assert!(!finder.refresh.active(), "one search at a time");
    pump_until(&mut [&mut finder], "the search ends", |w| {
        !w[0].found.searching()
    });
    assert_eq!(
        menu_labels(&finder),
        [format!("Office - 127.0.0.1:{office_port}")]
    );
    assert_eq!(
        (finder.host.value(), finder.port.value()),
        ("127.0.0.1".to_string(), office_port.to_string()),
        "the only server found, with no address remembered, is preselected"
    );
    assert_eq!(
        finder.search_status.label(),
        "Found 1 server: pick it from the Server list."
    );
    assert!(finder.refresh.active());
    // A second server on the same port, another address: refresh finds
    // both, and with an address in the field nothing is preselected.
    let lab = TestServer::start_with(|c| {
        c.bind = format!("127.0.0.2:{office_port}").parse().unwrap();
        c.discovery = Some("Lab".into());
    });
    finder.host.set_value("127.0.0.9");
    finder.refresh.do_callback();
    pump_until(&mut [&mut finder], "the second search ends", |w| {
        w[0].found.labels().len() == 2 && !w[0].found.searching()
    });
    assert_eq!(finder.host.value(), "127.0.0.9", "what was typed stays");
    assert_eq!(
        finder.search_status.label(),
        "Found 2 servers: pick one from the Server list."
    );
    for (i, label) in menu_labels(&finder).iter().enumerate() {
        finder.port.set_value("1");
        finder.servers.set_value_index(i as i32);
        finder.servers.do_callback();
        finder.pump();
        let ip = if label.starts_with("Lab") {
            "127.0.0.2"
        } else {
            "127.0.0.1"
        };
        assert_eq!(finder.host.value(), ip, "picked {label}");
        assert_eq!(
            finder.port.value(),
            office_port.to_string(),
            "picked {label}"
        );
    }
    // Typing an address still works: the field keeps what is typed.
    finder.host.set_value("127.0.0.3");
    finder.servers.do_callback();
    finder.pump();
    assert_eq!(finder.host.value(), "127.0.0.3");
    finder.window.hide();
    drop((office, lab));
    println!("ok");
    passed += 1;

    print!("test a remembered custom colour is offered and chosen ... ");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(config.join("client.json"), r##"{"color": "#2e7d32"}"##).unwrap();
    let mut alice = window();
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

    print!("test at the smallest size the list gets the room and nothing is pushed out ... ");
    alice.window.show();
    alice
        .window
        .resize(alice.window.x(), alice.window.y(), 380, MIN_HEIGHT);
    settle();
    alice.pump();
    settle();
    let other = &alice.colors.other;
    assert!(
        other.x() + other.w() <= alice.window.w() - 12,
        "\"Other...\" ends at {} in a window {} wide",
        other.x() + other.w(),
        alice.window.w()
    );
    assert!(
        alice.list.h() >= 3 * 58 - 10,
        "the list shows about three rows: {} px",
        alice.list.h()
    );
    alice
        .window
        .resize(alice.window.x(), alice.window.y(), 460, 676);
    settle();
    alice.pump();
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
    let mut bob = window();
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
    assert_eq!(alice.list.rows(), 3, "the Everyone room, then both");
    assert_eq!(alice.connect.label(), "Disconnect");
    assert_eq!(
        alice.security.label(),
        format!("Encrypted. Server key: {}", server_key.fingerprint()),
        "the window shows the connection is encrypted, and with whose key"
    );
    assert!(!alice.name.active(), "the form is locked while connected");
    assert_eq!(
        alice.avatar_hint.label(),
        "",
        "no 'Click to change' while locked"
    );
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
    alice.act(Msg::Open(2)); // bob's row, after the room and alice
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
        alice.chats["bob"].input.active(),
        "alice can still write: the message waits for bob, or is kept for him"
    );
    let status = alice.chats["bob"].status_text();
    assert!(status.contains("bob is away"), "{status}");
    println!("ok");
    passed += 1;

    print!("test reconnecting by hand: the same window takes bob up again, header and input right ... ");
    bob.act(Msg::ConnectDisconnect);
    pump_until(&mut [&mut alice, &mut bob], "bob back", |w| {
        w[0].model().conversations["bob"].can_send()
    });
    assert!(alice.chats["bob"].input.active());
    assert_eq!(alice.chats["bob"].status_text(), "", "nothing to say now");
    let (me, partner) = alice.chats["bob"].faces();
    assert_eq!((me.name.as_str(), partner.name.as_str()), ("alice", "bob"));
    assert!(alice.chats["bob"]
        .transcript_text()
        .contains("bob is back."));
    println!("ok");
    passed += 1;

    print!("test a server restart: lost shown in banner and title, every line shown after reconnecting by itself ... ");
    let mut server = server;
    let addr = server.addr;
    server.stop();
    pump_until(&mut [&mut alice, &mut bob], "the loss", |w| {
        w.iter().all(|c| c.banner.visible())
    });
    for c in [&alice, &bob] {
        assert!(
            c.banner.label().starts_with("Connection lost"),
            "{}",
            c.banner.label()
        );
        assert!(
            c.window.label().ends_with("HubChat - connection lost"),
            "{}",
            c.window.label()
        );
        assert_eq!(c.connect.label(), "Disconnect", "it reconnects by itself");
        assert!(!c.name.active(), "the form stays locked meanwhile");
    }
    let (me, partner) = alice.chats["bob"].faces();
    assert_eq!(
        (me.name.as_str(), partner.name.as_str()),
        ("alice", "bob"),
        "the header keeps both faces while disconnected"
    );
    assert!(
        alice.chats["bob"].input.active(),
        "usable while disconnected: what alice writes waits for the reconnect"
    );
    let server = TestServer::start_with(|c| {
        c.bind = addr;
        c.credentials = Some(server_key.clone());
    });
    pump_until(&mut [&mut alice, &mut bob], "both back", |w| {
        w.iter().all(|c| c.model().contacts.len() == 2)
    });
    assert!(!alice.banner.visible(), "the banner goes once connected");
    say(&mut alice, "bob", "back again?");
    pump_until(&mut [&mut alice, &mut bob], "bob's window shows it", |w| {
        w[1].chats["alice"]
            .transcript_text()
            .contains("back again?")
    });
    transcripts_show_every_line(&[&alice, &bob]);
    assert!(bob.chats["alice"].input.active(), "bob can answer");
    println!("ok");
    passed += 1;

    print!("test a message is unread until its window has the focus; the title counts them ... ");
    // Whatever came before is read: bob looks, then looks away.
    bob.act(Msg::Focus("alice".into(), true));
    bob.act(Msg::Focus("alice".into(), false));
    assert_eq!(bob.model().unread_total(), 0);
    say(&mut alice, "bob", "one");
    say(&mut alice, "bob", "two");
    pump_until(&mut [&mut alice, &mut bob], "two unread", |w| {
        // After the restart either may have joined first: find alice by
        // name, not by place.
        let alice_id = &w[1]
            .model()
            .contacts
            .iter()
            .find(|c| c.profile.name == "alice")
            .unwrap()
            .id;
        w[1].model().unread(alice_id) == 2
    });
    assert_eq!(bob.window.label(), "(2) HubChat");
    bob.act(Msg::Focus("alice".into(), true));
    assert_eq!(bob.model().unread_total(), 0, "seen once focused");
    assert_eq!(bob.window.label(), "HubChat");
    say(&mut alice, "bob", "three");
    pump_until(&mut [&mut alice, &mut bob], "three", |w| {
        w[1].chats["alice"].transcript_text().contains("three")
    });
    assert_eq!(bob.model().unread_total(), 0, "read while it has the focus");
    bob.act(Msg::Focus("alice".into(), false));
    println!("ok");
    passed += 1;

    print!("test opening a conversation from the list puts the keyboard in its input ... ");
    bob.act(Msg::Close("alice".into()));
    assert!(!bob.chats["alice"].window.visible());
    let alice_row = bob
        .model()
        .rows()
        .iter()
        .position(|(c, _)| c.profile.name == "alice")
        .unwrap();
    bob.act(Msg::Open(alice_row));
    settle();
    assert!(bob.chats["alice"].window.visible());
    assert!(
        bob.chats["alice"].input.has_focus(),
        "typing goes to the input"
    );
    println!("ok");
    passed += 1;

    print!("test a killed server is a loss too, and reconnecting to its successor works ... ");
    drop(server);
    let port = free_port();
    let mut killed = spawn_server(port);
    for c in [&mut alice, &mut bob] {
        c.act(Msg::ConnectDisconnect); // leave the test server
        c.port.set_value(&port.to_string());
        c.act(Msg::ConnectDisconnect);
    }
    pump_until(&mut [&mut alice, &mut bob], "both on the executable", |w| {
        w.iter().all(|c| c.model().contacts.len() == 2)
    });
    let _ = killed.kill();
    let _ = killed.wait();
    pump_until(&mut [&mut alice, &mut bob], "the loss", |w| {
        w.iter().all(|c| c.banner.visible())
    });
    let mut successor = spawn_server(port);
    pump_until(&mut [&mut alice, &mut bob], "both back", |w| {
        w.iter().all(|c| c.model().contacts.len() == 2)
    });
    say(&mut bob, "alice", "after the crash");
    pump_until(&mut [&mut alice, &mut bob], "alice sees it", |w| {
        w[0].chats["bob"]
            .transcript_text()
            .contains("after the crash")
    });
    transcripts_show_every_line(&[&alice, &bob]);
    let _ = successor.kill();
    let _ = successor.wait();
    pump_until(&mut [&mut alice, &mut bob], "the second loss", |w| {
        w.iter().all(|c| c.banner.visible())
    });
    println!("ok");
    passed += 1;

    print!("test a search finds a line of the history and opens its conversation there ... ");
    alice.history_row.input.set_value("lunch noon");
    alice.act(Msg::FindInHistory("lunch noon".into()));
    let finder = alice.finder.as_ref().expect("the results window");
    assert!(finder.window.visible());
    let found = history_view::result_lines(finder);
    assert!(
        found.iter().any(|l| l.contains("lunch")),
        "a result shows the words found: {found:?}"
    );
    // (Both windows of this test keep their history in the one settings
    // folder: bob's copy of the line is there too.)
    let at = finder
        .hits
        .iter()
        .position(|h| h.text == "lunch at noon?" && h.conv == "bob")
        .expect("the line is found");
    alice.act(Msg::OpenHit(at));
    settle();
    let chat = &alice.chats["bob"];
    assert!(chat.window.visible());
    assert_eq!(
        chat.selected_text(),
        "lunch at noon?",
        "the line found is selected"
    );
    alice.act(Msg::FindInHistory("zzzqqq".into()));
    let summary = alice.finder.as_ref().unwrap().summary.label();
    assert!(summary.starts_with("Nothing found"), "{summary}");
    alice.finder.as_mut().unwrap().window.hide();
    // Back to the newest lines, as writing would.
    alice.chats.get_mut("bob").unwrap().follow();
    alice.act(Msg::Refresh("bob".into()));
    println!("ok");
    passed += 1;

    print!("test Tab reaches every control of the form in order and wraps around ... ");
    // The server's key, kept across its restarts as the real server keeps
    // it in its settings folder (a new key would be refused as a change).
    let server_key = support::new_identity();
    let server = TestServer::start_with(|c| c.credentials = Some(server_key.clone()));
    let port = server.addr.port().to_string();
    alice.act(Msg::ConnectDisconnect); // stop reconnecting to the killed one
    alice.port.set_value(&port);
    alice.act(Msg::ConnectDisconnect);
    pump_until(&mut [&mut alice], "alice connected", |w| {
        w[0].model().connected()
    });
    let mut carol = window();
    carol.window.show();
    carol.host.set_value("127.0.0.1");
    carol.port.set_value(&port);
    carol.name.set_value("carol");
    settle();
    point_at(&mut carol, 200, 40);
    let _ = carol.host.take_focus();
    let mut order: Vec<usize> = vec![
        carol.refresh.as_widget_ptr() as usize,
        carol.port.as_widget_ptr() as usize,
        carol.name.as_widget_ptr() as usize,
    ];
    let swatches = carol.colors.swatches.iter().filter(|b| b.visible());
    order.extend(swatches.map(|b| b.as_widget_ptr() as usize));
    order.extend([
        carol.colors.other.as_widget_ptr() as usize,
        carol.avatar.as_widget_ptr() as usize,
        carol.at_start.as_widget_ptr() as usize,
        carol.connect.as_widget_ptr() as usize,
    ]);
    let status_and_list = order.len();
    order.push(carol.history_row.input.as_widget_ptr() as usize);
    order.push(carol.history_row.keep.as_widget_ptr() as usize);
    order.push(carol.list.as_widget_ptr() as usize);
    order.push(carol.host.as_widget_ptr() as usize);
    for (i, want) in order.iter().enumerate() {
        xdo(&mut carol, &["key", "Tab"]);
        let now = app::focus().map(|w| w.as_widget_ptr() as usize);
        if i == status_and_list && now != Some(*want) {
            // The status box takes the focus between Connect and the list.
            xdo(&mut carol, &["key", "Tab"]);
        }
        let now = app::focus().map(|w| w.as_widget_ptr() as usize);
        assert_eq!(
            now,
            Some(*want),
            "Tab number {} lands on the next control",
            i + 1
        );
    }
    xdo(&mut carol, &["key", "shift+Tab"]);
    assert!(carol.list.has_focus(), "Shift+Tab wraps back to the list");
    println!("ok");
    passed += 1;

    print!("test Enter in a field of the form connects ... ");
    let _ = carol.name.take_focus();
    xdo(&mut carol, &["key", "Return"]);
    pump_until(&mut [&mut carol], "carol connected", |w| {
        w[0].model().connected()
    });
    println!("ok");
    passed += 1;

    print!("test Escape and Ctrl+W close a conversation window ... ");
    let alice_row = carol
        .model()
        .rows()
        .iter()
        .position(|(c, _)| c.profile.name == "alice")
        .unwrap();
    for key in ["Escape", "ctrl+w"] {
        carol.act(Msg::Open(alice_row));
        settle();
        let chat = carol.chats.get_mut("alice").unwrap();
        assert!(chat.window.visible());
        let (x, y) = (chat.input.x() + 10, chat.input.y() + 10);
        let id = chat.window.raw_handle().to_string();
        xdo(
            &mut carol,
            &["mousemove", "--window", &id, &x.to_string(), &y.to_string()],
        );
        let _ = carol.chats.get_mut("alice").unwrap().input.take_focus();
        xdo(&mut carol, &["key", key]);
        assert!(!carol.chats["alice"].window.visible(), "{key} closes it");
    }
    carol.act(Msg::Quit);
    drop(server);
    println!("ok");
    passed += 1;

    print!("test a shrunk conversation window keeps showing the newest lines ... ");
    let chat = alice.chats.get_mut("bob").unwrap();
    chat.window.show();
    settle();
    let (x, y, w, h) = (
        chat.window.x(),
        chat.window.y(),
        chat.window.w(),
        chat.window.h(),
    );
    let chat = alice.chats.get_mut("bob").unwrap();
    chat.window.resize(x, y, w, h + 200);
    settle();
    let chat = alice.chats.get_mut("bob").unwrap();
    chat.window.resize(x, y, w, 300);
    settle();
    let chat = &alice.chats["bob"];
    assert!(
        chat.top_row() > 1,
        "the end stays in view: top row {}",
        chat.top_row()
    );
    println!("ok");
    passed += 1;

    print!("test the window shows the server's key, asks for a password, and trusts a changed key only when told ... ");
    let first_key = support::new_identity();
    let hash = hubchat::server::password::hash("letmein").unwrap();
    let mut guarded = TestServer::start_with(|c| {
        c.credentials = Some(first_key.clone());
        c.password = Some(hash.clone());
    });
    let addr = guarded.addr;
    let mut dave = ClientApp::new();
    let script = Script::default();
    dave.ask = Box::new(script.clone());
    dave.window.show();
    assert!(
        dave.security.label().starts_with("Your key: "),
        "offline, the window shows this computer's key: {}",
        dave.security.label()
    );
    dave.host.set_value("127.0.0.1");
    dave.port.set_value(&addr.port().to_string());
    dave.name.set_value("dave");
    script.answer(Answer::Password {
        password: "letmein".into(),
        remember: true,
    });
    dave.act(Msg::Connect);
    pump_until(&mut [&mut dave], "dave joins with the password", |w| {
        matches!(w[0].controller.status(), Status::Connected { .. })
    });
    assert!(matches!(
        script.asked().as_slice(),
        [Question::Password { message, .. }] if message.contains("password")
    ));
    assert_eq!(
        dave.security.label(),
        format!("Encrypted. Server key: {}", first_key.fingerprint())
    );
    let known = std::fs::read_to_string(config.join("known-servers.json")).unwrap();
    assert!(known.contains(&first_key.fingerprint().hex()), "{known}");
    assert!(known.contains("letmein"), "remembered, as asked");
    dave.act(Msg::ConnectDisconnect);

    // Another computer answers on that address with another key.
    guarded.stop();
    let second_key = support::new_identity();
    let _other = TestServer::start_with(|c| {
        c.bind = addr;
        c.credentials = Some(second_key.clone());
    });
    script.answer(Answer::Declined);
    dave.act(Msg::Connect);
    pump_until(&mut [&mut dave], "the changed key is refused", |w| {
        w[0].controller.status().idle() && w[0].controller.failure().is_some()
    });
    pump_until(&mut [&mut dave], "the user is asked", |_| {
        script.asked().len() == 2
    });
    assert!(matches!(
        &script.asked()[1],
        Question::ServerChanged { new_key: true, warning } if warning.contains("different key")
    ));
    assert!(dave.error.visible() && dave.error.label().contains("different key"));
    assert_eq!(
        dave.controller.status(),
        &Status::Offline,
        "declined: not connected"
    );

    script.answer(Answer::Trusted);
    dave.act(Msg::Connect);
    pump_until(&mut [&mut dave], "trusted after asking", |w| {
        matches!(w[0].controller.status(), Status::Connected { .. })
    });
    assert_eq!(
        dave.security.label(),
        format!("Encrypted. Server key: {}", second_key.fingerprint())
    );
    let known = std::fs::read_to_string(config.join("known-servers.json")).unwrap();
    assert!(known.contains(&second_key.fingerprint().hex()), "{known}");
    dave.act(Msg::Quit);
    println!("ok");
    passed += 1;

    print!("test a key file that cannot be used is explained at once under the form, and Connect stays offline ... ");
    let broken = std::env::temp_dir().join(format!("hubchat-client-badkey-{}", std::process::id()));
    std::fs::create_dir_all(&broken).unwrap();
    std::fs::write(broken.join("identity.pem"), b"not a key").unwrap();
    std::env::set_var("HUBCHAT_CONFIG_DIR", &broken);
    let mut erin = window();
    std::env::set_var("HUBCHAT_CONFIG_DIR", &config);
    erin.window.show();
    let _ = app::wait_for(0.05);
    erin.pump();
    assert_eq!(erin.security.label(), "Your key cannot be used: see below.");
    assert!(erin.error.visible(), "the reason is shown before Connect");
    let why = erin.error.label();
    assert!(why.contains("identity.pem cannot be used"), "{why}");
    assert!(
        erin.error.h() >= 40,
        "the whole sentence has room: {} px",
        erin.error.h()
    );
    let normal = erin.name.color();
    erin.host.set_value("127.0.0.1");
    erin.port.set_value(&port);
    erin.name.set_value("erin");
    erin.act(Msg::Connect);
    let _ = app::wait_for(0.05);
    erin.pump();
    assert!(
        matches!(erin.controller.status(), Status::Offline),
        "{:?}",
        erin.controller.status()
    );
    assert!(erin.error.visible());
    assert_eq!(erin.host.color(), normal, "no field is blamed for the key");
    assert_eq!(
        std::fs::read(broken.join("identity.pem")).unwrap(),
        b"not a key",
        "the file is left as it was"
    );
    erin.act(Msg::Quit);
    let _ = std::fs::remove_dir_all(&broken);
    println!("ok");
    passed += 1;

    alice.act(Msg::Quit);
    bob.act(Msg::Quit);
    let _ = std::fs::remove_dir_all(&config);
    println!("test result: ok. {passed} passed; 0 failed; 0 ignored; 0 measured; 0 filtered out");
}

/// Puts the pointer inside the client's main window, at (x, y) in it.
fn point_at(app: &mut ClientApp, x: i32, y: i32) {
    let id = app.window.raw_handle().to_string();
    xdo(
        app,
        &["mousemove", "--window", &id, &x.to_string(), &y.to_string()],
    );
}

/// Types `text` into the conversation with `key` and sends it.
fn say(app: &mut ClientApp, key: &str, text: &str) {
    app.chats
        .get_mut(key)
        .unwrap_or_else(|| panic!("a window for {key}"))
        .input
        .set_value(text);
    app.act(Msg::Send(key.into()));
}

/// Every line of every conversation is in its window's transcript, once.
fn transcripts_show_every_line(apps: &[&ClientApp]) {
    for a in apps {
        // (Conversations only kept in the history have no window yet.)
        for (key, c) in &a.model().conversations {
            let Some(chat) = a.chats.get(key) else {
                continue;
            };
            let shown = chat.transcript_text();
            assert_eq!(
                shown.lines().count(),
                c.lines.len(),
                "{key}: the window shows every line once:\n{shown}"
            );
            for line in &c.lines {
                assert!(shown.contains(&line.text), "{key}: {:?} shown", line.text);
            }
        }
    }
}

/// The real server executable, headless on loopback.
fn spawn_server(port: u16) -> std::process::Child {
    use std::io::{BufRead, BufReader};
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_hubchat-server"))
        .args([
            "--headless",
            "--bind",
            "127.0.0.1",
            "--port",
            &port.to_string(),
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start hubchat-server");
    let out = child.stdout.take().expect("its output");
    let mut lines = BufReader::new(out).lines();
    assert!(
        lines.any(|l| l.is_ok_and(|l| l.contains("listening on"))),
        "the server starts"
    );
    std::thread::spawn(move || lines.for_each(drop));
    child
}

/// The entries of a window's Server combo.
fn menu_labels(app: &ClientApp) -> Vec<String> {
    let menu = app.servers.menu_button();
    (0..menu.size())
        .filter_map(|i| menu.at(i).and_then(|item| item.label()))
        .collect()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn pump_until(apps: &mut [&mut ClientApp], what: &str, done: impl Fn(&[&mut ClientApp]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done(apps) {
        if Instant::now() >= deadline {
            for a in apps.iter() {
                for (k, c) in &a.model().conversations {
                    let last: Vec<_> = c
                        .lines
                        .iter()
                        .rev()
                        .take(6)
                        .map(|l| (&l.author, &l.text, &l.mark))
                        .collect();
                    eprintln!("{:?}: {k:?} unread {} {last:?}", a.model().me, c.unread);
                }
            }
            panic!("timed out waiting for {what}");
        }
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

/// Answers the window's questions in place of a person, and keeps them.
#[derive(Clone, Default)]
struct Script {
    answers: Rc<RefCell<Vec<Answer>>>,
    asked: Rc<RefCell<Vec<Question>>>,
}

impl Script {
    /// The answer to the next question.
    fn answer(&self, answer: Answer) {
        self.answers.borrow_mut().push(answer);
    }

    fn asked(&self) -> Vec<Question> {
        self.asked.borrow().clone()
    }
}

impl Ask for Script {
    fn ask(&mut self, _parent: &fltk::window::DoubleWindow, question: &Question) -> Answer {
        self.asked.borrow_mut().push(question.clone());
        self.answers.borrow_mut().pop().unwrap_or(Answer::Declined)
    }
}

/// A client window whose questions are all declined: no test may wait on
/// a dialog nobody answers.
fn window() -> ClientApp {
    let mut app = ClientApp::new();
    app.ask = Box::new(Script::default());
    app
}
