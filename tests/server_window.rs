//! The server window driven in-process, under a real X display (Xvfb in CI):
//! its real callbacks run, a real client connects over loopback, and the
//! widgets are checked for what the owner would see.
//!
//! FLTK must stay on one thread, so this is a plain `main` (harness = false)
//! that runs its checks in order and reports like libtest. Keys are pressed
//! for real, through the X server (xdotool), so FLTK's own keyboard handling
//! is what is tested.

mod support;

use std::net::{SocketAddr, TcpListener};
use std::process::Command;
use std::time::{Duration, Instant};

use fltk::app;
use fltk::prelude::*;
use fltk::valuator::{Scrollbar, ScrollbarType};
use hubchat::client::{Session, SessionConfig, SessionEvent};
use hubchat::common::discovery::{self, Found, Search};
use hubchat::common::packet::ServerPacket;
use hubchat::common::packet::{ClientPacket, ErrorCode};
use hubchat::server::cli::ServerConfigArgs;
use hubchat::server::gui::window::{Action, ADDRESS_MAX_WIDTH};
use hubchat::server::gui::ServerApp;
use hubchat::server::log::MessageText;
use hubchat::server::view::OwnerAction;
use support::Peer;

fn main() {
    if !hubchat::gui::display_available() {
        println!("skipped: no display; run under xvfb-run (scripts/test.sh does)");
        println!("test result: ok. 0 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out");
        return;
    }
    let config = std::env::temp_dir().join(format!("hubchat-window-test-{}", std::process::id()));
    std::env::set_var("HUBCHAT_CONFIG_DIR", &config);
    let _app = app::App::default();
    hubchat::gui::init_look();
    // Visible keyboard focus is a program-wide switch of the shared look
    // (src/gui); the window must work with it on.
    app::set_visible_focus(true);

    print!("test with nothing remembered the window offers all interfaces ... ");
    let fresh = ServerApp::new(&ServerConfigArgs::default());
    assert_eq!(
        fresh.ui.address.choice().as_deref(),
        Some("All interfaces (0.0.0.0)")
    );
    assert!(fresh.ui.show_text.is_checked(), "message text shown");
    assert_eq!(fresh.ui.name.value(), discovery::host_name());
    assert!(fresh.ui.discovery.is_checked(), "clients may find it");
    assert_eq!(fresh.ui.max_per_address.value(), "16");
    assert_eq!(fresh.ui.password.value(), "");
    assert!(!fresh.ui.clear_password.active(), "no password to clear");
    assert!(
        fresh.ui.allow_original.is_checked(),
        "original clients welcome"
    );
    assert_eq!(fresh.ui.key.value(), "(made at first Start)");
    println!("ok");

    let port = free_port();
    let args = ServerConfigArgs {
        start: false,
        bind: Some("127.0.0.1".parse().unwrap()),
        port: Some(port),
        max_clients: None,
        max_per_address: None,
        // The flood check below sends 20,000 messages from one client:
        // without the rate limit, as a load test would run.
        message_rate: Some(0),
        hide_text: false,
        ..ServerConfigArgs::default()
    };
    let mut w = ServerApp::new(&args);
    w.ui.window.show();
    w.ui.sound.set_checked(false);
    w.act(Action::SoundToggled);

    let mut passed = 1;
    let mut check = |name: &str, f: &mut dyn FnMut(&mut ServerApp)| {
        print!("test {name} ... ");
        f(&mut w);
        println!("ok");
        passed += 1;
    };

    check("the window opens stopped with the form ready", &mut |w| {
        pump_until(w, "window shown", |w| w.ui.window.shown());
        // Keys are pressed through the X server: wait until it shows the
        // window, where FLTK believes it is.
        pump_until(w, "window mapped", |_| {
            Command::new("xdotool")
                .args(["search", "--onlyvisible", "--name", "^HubChat Server - "])
                .output()
                .expect("run xdotool (scripts/install-deps.sh --test installs it)")
                .status
                .success()
        });
        assert_eq!(w.ui.window.label(), "HubChat Server - stopped");
        assert_eq!(w.ui.port.value(), port.to_string());
        assert!(w.ui.address.active() && w.ui.port.active());
        assert_eq!(w.ui.start.label(), "Start");
    });

    check(
        "Tab goes through every control in reading order and back to the start",
        &mut |w| {
            let _ = w.ui.address.take_focus();
            let order = [
                "port",
                "Start",
                "Sound",
                "name",
                "Let clients find this server",
                "Max per address",
                "password",
                "Allow original (unencrypted) clients",
                "status line",
                "server key",
                "Copy",
                "Names and bans...",
                "clients",
                "Show message text",
                "log",
                "address",
            ];
            for expected in order {
                let before = focused(w);
                press(w, "Tab");
                pump_until(w, &format!("focus to leave the {before}"), |w| {
                    focused(w) != before
                });
                assert_eq!(focused(w), expected, "Tab from the {before}");
            }
            press(w, "shift+Tab");
            pump_until(w, "focus back on the log", |w| focused(w) == "log");
        },
    );

    check(
        "the form fits a minimum-size window and the address box stays compact on a wide one",
        &mut |w| {
            resize(w, 720, 460);
            let ui = &w.ui;
            let row = [
                ui.address.as_base_widget(),
                ui.port.as_base_widget(),
                ui.start.as_base_widget(),
                ui.sound.as_base_widget(),
            ];
            for pair in row.windows(2) {
                assert!(pair[0].x() + pair[0].w() <= pair[1].x(), "no overlap");
            }
            assert!(ui.sound.x() + ui.sound.w() <= ui.window.w() - 14, "inside");
            let second = [
                ui.name.as_base_widget(),
                ui.discovery.as_base_widget(),
                ui.max_per_address.as_base_widget(),
            ];
            for pair in second.windows(2) {
                assert!(pair[0].x() + pair[0].w() <= pair[1].x(), "no overlap");
            }
            let max = &ui.max_per_address;
            assert!(max.x() + max.w() <= ui.window.w() - 14, "inside");
            let third = [
                ui.password.as_base_widget(),
                ui.clear_password.as_base_widget(),
                ui.allow_original.as_base_widget(),
            ];
            for pair in third.windows(2) {
                assert!(pair[0].x() + pair[0].w() <= pair[1].x(), "no overlap");
            }
            let allow = &ui.allow_original;
            assert!(allow.x() + allow.w() <= ui.window.w() - 14, "inside");
            assert_eq!(ui.password.x(), ui.name.x(), "password under name");
            let keys = [
                ui.key.as_base_widget(),
                ui.copy_key.as_base_widget(),
                ui.names_and_bans.as_base_widget(),
            ];
            for pair in keys.windows(2) {
                assert!(pair[0].x() + pair[0].w() <= pair[1].x(), "no overlap");
            }
            let names = &ui.names_and_bans;
            assert!(names.x() + names.w() <= ui.window.w() - 14, "inside");
            assert!(
                ui.key.y() >= ui.status.y() + ui.status.h(),
                "under the status"
            );
            let (kick, ban) = (&ui.kick, &ui.ban);
            assert!(kick.x() + kick.w() <= ban.x(), "no overlap");
            assert!(
                ban.x() + ban.w() <= ui.clients.x() + ui.clients.w(),
                "over the list"
            );
            assert!(ui.clients.y() >= kick.y() + kick.h(), "above the list");
            assert!(
                ui.clients.h() >= 2 * 58,
                "two rows of clients fit: {}",
                ui.clients.h()
            );
            assert_eq!(ui.name.x(), ui.address.x(), "name under address");
            assert!(ui.max_error.x() < max.x(), "its error under it");
            assert!(ui.address.w() >= 240, "address {} wide", ui.address.w());
            resize(w, 1800, 640);
            let ui = &w.ui;
            assert_eq!(ui.address.w(), ADDRESS_MAX_WIDTH);
            assert!(ui.port.x() < 62 + ADDRESS_MAX_WIDTH + 120, "port beside it");
            assert_eq!(ui.address_error.x(), ui.address.x(), "errors under");
            assert_eq!(ui.address_error.w(), ui.address.w(), "their fields");
            resize(w, 980, 640);
        },
    );

    check(
        "a port that is not a number is explained next to the port",
        &mut |w| {
            w.ui.port.set_value("50x0");
            w.ui.start.do_callback();
            pump(w);
            assert_eq!(
                w.ui.port_error.label(),
                "\"50x0\" is not a port number. Use a number from 1 to 65535."
            );
            assert_eq!(w.ui.window.label(), "HubChat Server - stopped");
        },
    );

    check(
        "a Max per address that is not a number is explained next to it",
        &mut |w| {
            w.ui.port.set_value(&port.to_string());
            w.ui.max_per_address.set_value("lots");
            w.ui.start.do_callback();
            pump(w);
            assert_eq!(
                w.ui.max_error.label(),
                "\"lots\" is not a number. Type how many connections one address may have, 0 for no limit."
            );
            assert_eq!(w.ui.port_error.label(), "");
            assert_eq!(w.ui.window.label(), "HubChat Server - stopped");
        },
    );

    check(
        "a blank name is explained next to it while clients may find the server",
        &mut |w| {
            w.ui.max_per_address.set_value("16");
            w.ui.name.set_value("  ");
            w.ui.start.do_callback();
            pump(w);
            assert_eq!(
                w.ui.name_error.label(),
                "Type the name clients will see when they look for a server, such as Office."
            );
            assert_eq!(w.ui.max_error.label(), "", "one mistake shown at a time");
            assert_eq!(w.ui.window.label(), "HubChat Server - stopped");
        },
    );

    check(
        "Max per address limits the connections from one address",
        &mut |w| {
            w.ui.name.set_value("Test Office");
            w.ui.max_per_address.set_value("1");
            w.ui.start.do_callback();
            pump_until(w, "running", |w| w.ui.window.label().contains("running"));
            assert_eq!(w.ui.max_error.label(), "");
            assert!(!w.ui.max_per_address.active(), "locked while running");
            let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
            let _first = Peer::join_original(addr, "first");
            let refused = Peer::connect(addr).recv_until_closed();
            assert!(
                format!("{refused:?}").contains("Too many connections from your address"),
                "{refused:?}"
            );
            w.ui.start.do_callback();
            pump_until(w, "stopped", |w| {
                w.ui.window.label() == "HubChat Server - stopped"
            });
            w.ui.max_per_address.set_value("16");
        },
    );

    check(
        "a port in use is explained in plain words and nothing else changes",
        &mut |w| {
            let taken = TcpListener::bind("127.0.0.1:0").unwrap();
            let taken_port = taken.local_addr().unwrap().port();
            w.ui.port.set_value(&taken_port.to_string());
            w.ui.start.do_callback();
            pump(w);
            assert_eq!(
            w.ui.port_error.label(),
            format!("Port {taken_port} is already used by another program. Choose another port, or stop that program.")
        );
            assert_eq!(w.ui.window.label(), "HubChat Server - stopped");
            assert!(w.ui.port.active());
        },
    );

    check(
        "Enter in the port field starts the server and the focus moves to Stop",
        &mut |w| {
            w.ui.port.set_value(&port.to_string());
            let _ = w.ui.port.take_focus();
            press(w, "Return");
            pump_until(w, "running title", |w| {
                w.ui.window.label().contains("running")
            });
            assert_eq!(w.ui.start.label(), "Stop");
            assert_eq!(focused(w), "Start", "the button keeps the focus");
            w.ui.start.do_callback();
            pump_until(w, "stopped", |w| {
                w.ui.window.label() == "HubChat Server - stopped"
            });
        },
    );

    check(
        "the status line draws no caret, also when it has the focus",
        &mut |w| {
            let _ = w.ui.start.take_focus();
            pump(w);
            let unfocused = status_pixels(w);
            let _ = w.ui.status.take_focus();
            let _ = w.ui.status.set_position(0);
            let _ = w.ui.status.set_mark(0);
            assert_eq!(focused(w), "status line");
            pump(w);
            assert!(status_pixels(w) == unfocused, "a caret or mark was drawn");
        },
    );

    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    check(
        "start runs the server, locks the form and says where to connect",
        &mut |w| {
            w.ui.port.set_value(&port.to_string());
            w.ui.start.do_callback();
            pump_until(w, "running title", |w| {
                w.ui.window.label().contains("running")
            });
            assert_eq!(
                w.ui.window.label(),
                format!("HubChat Server - running on 127.0.0.1:{port}")
            );
            assert_eq!(w.ui.port_error.label(), "");
            assert!(!w.ui.address.active() && !w.ui.port.active());
            assert_eq!(w.ui.start.label(), "Stop");
            assert_eq!(
                w.ui.status.value(),
                format!("Clients connect to 127.0.0.1, port {port}  ·  no clients connected yet")
            );
        },
    );

    let mut key = String::new();
    check(
        "a running server shows its key, as clients will show it, to copy",
        &mut |w| {
            let fingerprint = w.server().expect("running").fingerprint();
            assert_eq!(w.ui.key.value(), fingerprint.short());
            assert_eq!(w.ui.key.value().len(), 24, "five groups of four");
            w.ui.copy_key.do_callback();
            pump(w);
            key = w.ui.key.value();
        },
    );

    check(
        "a running server is found by clients under the Name field's name",
        &mut |w| {
            pump_until(w, "the discovery line", |w| {
                w.ui.log_text
                    .text()
                    .contains(&format!("answering discovery on UDP {port}"))
            });
            let found = search_loopback(port);
            assert_eq!(found.len(), 1, "{found:?}");
            assert_eq!(found[0].label(), format!("Test Office - 127.0.0.1:{port}"));
            assert!(!w.ui.name.active() && !w.ui.discovery.active());
        },
    );

    let mut alice = None;
    check("a client that joins gets a row and a log line", &mut |w| {
        let peer = Peer::join_original(addr, "alice");
        pump_until(w, "alice's row", |w| w.ui.clients.rows() == 1);
        assert_eq!(w.view.rows[0].name, "alice");
        assert_eq!(w.ui.clients_title.label(), "Connected clients (1)");
        assert!(
            w.ui.status.value().ends_with("1 client connected"),
            "{}",
            w.ui.status.value()
        );
        let log = w.ui.log_text.text();
        assert!(
            log.contains("alice (client0) joined from 127.0.0.1:"),
            "{log}"
        );
        alice = Some(peer);
    });

    check(
        "relayed messages appear in the log as sender -> receiver",
        &mut |w| {
            let alice = alice.as_mut().unwrap();
            let me = alice.id.clone();
            alice.message(&me, "note to self");
            pump_until(w, "relayed line", |w| {
                w.ui.log_text
                    .text()
                    .contains("alice -> alice: note to self")
            });
            alice.recv_message();
        },
    );

    check(
        "a flood of messages is applied in batches and the log stays bounded",
        &mut |w| {
            let alice = alice.as_mut().unwrap();
            let me = alice.id.clone();
            let frame = hubchat::common::packet::ClientPacket::Message {
                to: me,
                text: "flood".into(),
            }
            .encode();
            let burst: Vec<u8> = frame
                .iter()
                .copied()
                .cycle()
                .take(frame.len() * 20_000)
                .collect();
            let mut out = alice.stream.try_clone().unwrap();
            let writer =
                std::thread::spawn(move || std::io::Write::write_all(&mut out, &burst).unwrap());
            let mut reader_peer_count = 0;
            while reader_peer_count < 20_000 {
                alice.recv_message();
                reader_peer_count += 1;
                if reader_peer_count % 1000 == 0 {
                    pump(w);
                }
            }
            writer.join().unwrap();
            // Caught up: the last relay is shown, or, when the window fell
            // behind (a loaded machine), the count of those not logged.
            pump_until(w, "log catches up", |w| {
                let text = w.ui.log_text.text();
                text.ends_with("alice -> alice: flood\n")
                    || text.ends_with("were relayed but not logged: the log fell behind)\n")
            });
            assert!(w.view.log_len() <= hubchat::server::view::MAX_LOG_LINES);
        },
    );

    check(
        "the log keeps following new lines after the window grows and shrinks back",
        &mut |w| {
            pump(w);
            assert!(log_shows_end(w), "following after the flood");
            resize(w, 1260, 780);
            resize(w, 980, 640);
            let alice = alice.as_mut().unwrap();
            let me = alice.id.clone();
            alice.message(&me, "after the resize");
            alice.recv_message();
            pump_until(w, "the new line", |w| {
                w.ui.log_text
                    .text()
                    .ends_with("alice -> alice: after the resize\n")
            });
            pump(w);
            assert!(log_shows_end(w), "the new line is in view");
        },
    );

    check(
        "a log scrolled up stays where the user left it across resizes",
        &mut |w| {
            w.ui.log.scroll(1, 0);
            pump(w);
            let top = w.ui.log.scroll_row();
            resize(w, 1260, 780);
            resize(w, 980, 640);
            let alice = alice.as_mut().unwrap();
            let me = alice.id.clone();
            alice.message(&me, "while reading back");
            alice.recv_message();
            pump_until(w, "the new line", |w| {
                w.ui.log_text.text().ends_with("while reading back\n")
            });
            pump(w);
            assert!(!log_shows_end(w));
            assert_eq!(w.ui.log.scroll_row(), top);
            w.ui.log.scroll(i32::MAX, 0);
            pump(w);
        },
    );

    check(
        "unticking Show message text logs a count of characters instead",
        &mut |w| {
            w.ui.show_text.set_checked(false);
            w.ui.show_text.do_callback();
            let alice = alice.as_mut().unwrap();
            let me = alice.id.clone();
            alice.message(&me, "Zoë 陈: the key is under the mat");
            alice.recv_message();
            pump_until(w, "the counted line", |w| {
                w.ui.log_text
                    .text()
                    .ends_with("alice -> alice (31 characters)\n")
            });
            assert!(!w.ui.log_text.text().contains("under the mat"));
        },
    );

    check("stop sends SERVER CLOSE and unlocks the form", &mut |w| {
        w.ui.start.do_callback();
        pump(w);
        let alice = alice.as_mut().unwrap();
        assert!(matches!(alice.recv(), ServerPacket::ServerClose { .. }));
        let _ = alice.stream.shutdown(std::net::Shutdown::Both);
        pump_until(w, "stopped", |w| {
            w.ui.window.label() == "HubChat Server - stopped"
        });
        assert_eq!(w.ui.clients.rows(), 0);
        assert!(w.ui.address.active() && w.ui.port.active());
        assert!(w
            .ui
            .log_text
            .text()
            .contains("stopped; every client was sent SERVER CLOSE"));
    });

    check(
        "unticked, the switch keeps the server from being found",
        &mut |w| {
            w.ui.discovery.set_checked(false);
            w.ui.discovery.do_callback();
            w.ui.start.do_callback();
            pump_until(w, "running again", |w| {
                w.ui.window.label().contains("running")
            });
            assert!(search_loopback(port).is_empty());
            w.ui.start.do_callback();
            pump_until(w, "stopped", |w| {
                w.ui.window.label() == "HubChat Server - stopped"
            });
        },
    );

    check(
        "starting again in the same window works, with the same key",
        &mut |w| {
            w.ui.start.do_callback();
            pump_until(w, "running again", |w| {
                w.ui.window.label().contains("running")
            });
            assert_eq!(w.ui.key.value(), key, "the certificate is kept on disk");
            let bob = Peer::join_hubchat(addr, "bob");
            pump_until(w, "bob's row", |w| w.ui.clients.rows() == 1);
            drop(bob);
            pump_until(w, "bob gone", |w| w.ui.clients.rows() == 0);
        },
    );

    check(
        "a selected client is kicked with a reason it is shown, and the log says so",
        &mut |w| {
            assert!(!w.ui.kick.active(), "nobody selected");
            let mut dave = Peer::join_original(addr, "dave");
            pump_until(w, "dave's row", |w| w.ui.clients.rows() == 1);
            w.act(Action::ClientClicked {
                row: 0,
                menu_at: None,
            });
            assert!(w.ui.kick.active() && w.ui.ban.active());
            w.owner_act(OwnerAction::Kick, "too loud");
            let told = format!("{:?}", dave.recv_until_closed());
            assert!(told.contains("Reason: too loud"), "{told}");
            pump_until(w, "dave gone", |w| w.ui.clients.rows() == 0);
            let log = w.ui.log_text.text();
            assert!(log.contains("the owner kicked dave ("), "{log}");
            assert!(log.contains("): too loud"), "{log}");
            assert!(!w.ui.kick.active(), "the selection left with dave");
        },
    );

    check(
        "an original client has no computer to ban; its address is banned and the ban lifted",
        &mut |w| {
            let mut erin = Peer::join_original(addr, "erin");
            pump_until(w, "erin's row", |w| w.ui.clients.rows() == 1);
            w.act(Action::ClientClicked {
                row: 0,
                menu_at: None,
            });
            assert!(!OwnerAction::BanComputer.possible(w.view.selected().unwrap()));
            w.owner_act(OwnerAction::BanComputer, "");
            pump_until(w, "the sentence in the log", |w| {
                w.ui.log_text
                    .text()
                    .contains("That client is not encrypted, so it has no identity to ban.")
            });
            w.owner_act(OwnerAction::BanAddress, "spam");
            let told = format!("{:?}", erin.recv_until_closed());
            assert!(told.contains("banned your address"), "{told}");
            let again = format!("{:?}", Peer::connect(addr).recv_until_closed());
            assert!(again.contains("banned your address"), "{again}");
            pump_until(w, "the ban in the log", |w| {
                w.ui.log_text
                    .text()
                    .contains("the owner banned address 127.0.0.1 (erin): spam")
            });

            w.act(Action::NamesAndBans);
            pump(w);
            let names = w.names.as_mut().expect("the names and bans window");
            assert!(names.window.shown());
            assert_eq!(names.bans.size(), 2, "a header and one ban");
            assert!(
                names
                    .bans
                    .text(2)
                    .unwrap()
                    .contains("erin - address 127.0.0.1"),
                "{:?}",
                names.bans.text(2)
            );
            assert!(names.bans.text(2).unwrap().contains("spam"));
            hubchat::server::gui::names::NamesWindow::select(&mut names.bans, 0);
            w.act(Action::LiftBan);
            let names = w.names.as_ref().unwrap();
            assert!(
                names.bans.text(2).unwrap().contains("Nobody is banned."),
                "{:?}",
                names.bans.text(2)
            );
            assert!(!names.lift.active());
            pump_until(w, "the lift in the log", |w| {
                w.ui.log_text
                    .text()
                    .contains("the owner lifted the ban on address 127.0.0.1")
            });
            let erin = Peer::join_original(addr, "erin");
            pump_until(w, "erin back", |w| w.ui.clients.rows() == 1);
            drop(erin);
            pump_until(w, "erin gone", |w| w.ui.clients.rows() == 0);
        },
    );

    check(
        "an encrypted client's computer is banned; its name is listed and released",
        &mut |w| {
            let frank_pc = support::new_identity();
            let config = SessionConfig {
                host: "127.0.0.1".into(),
                port,
                name: "frank".into(),
                color: "green".into(),
                image_name: "image_3.png".into(),
                picture: None,
                timeout: Duration::from_secs(5),
                identity: Some(frank_pc.clone()),
                pin: None,
                password: None,
            };
            let (tx, rx) = crossbeam_channel::unbounded();
            let frank = Session::connect(&config, move |e| {
                let _ = tx.send(e);
            })
            .expect("frank joins");
            pump_until(w, "frank's row", |w| w.ui.clients.rows() == 1);
            w.act(Action::ClientClicked {
                row: 0,
                menu_at: None,
            });
            assert!(OwnerAction::BanComputer.possible(w.view.selected().unwrap()));
            w.owner_act(OwnerAction::BanComputer, "");
            let mut told = Vec::new();
            loop {
                match rx.recv_timeout(Duration::from_secs(10)) {
                    Ok(event @ SessionEvent::Lost { .. }) => break told.push(event),
                    Ok(event) => told.push(event),
                    Err(e) => panic!("frank's session did not end: {e}"),
                }
            }
            let told = format!("{told:?}");
            assert!(told.contains("banned this computer"), "{told}");
            drop(frank);
            pump_until(w, "frank gone", |w| w.ui.clients.rows() == 0);
            let again = Session::connect(&config, |_| {});
            assert!(
                matches!(
                    &again,
                    Err(hubchat::client::ConnectError::Rejected {
                        code: Some(ErrorCode::Banned),
                        ..
                    })
                ),
                "{:?}",
                again.err()
            );

            let short = frank_pc.fingerprint().short();
            let names = w.names.as_ref().unwrap();
            assert!(names.window.shown(), "still open");
            let ban = names.bans.text(2).unwrap();
            assert!(ban.contains(&format!("frank - computer {short}")), "{ban}");
            let name = names.names.text(2).unwrap();
            assert!(name.contains("frank") && name.contains(&short), "{name}");

            let names = w.names.as_mut().unwrap();
            hubchat::server::gui::names::NamesWindow::select(&mut names.bans, 0);
            w.act(Action::LiftBan);
            let names = w.names.as_mut().unwrap();
            hubchat::server::gui::names::NamesWindow::select(&mut names.names, 0);
            w.act(Action::ReleaseName);
            let names = w.names.as_ref().unwrap();
            assert!(names.names.text(2).unwrap().contains("No name belongs"));
            assert!(names.bans.text(2).unwrap().contains("Nobody is banned."));
            pump_until(w, "the release in the log", |w| {
                w.ui.log_text
                    .text()
                    .contains("the owner released the name frank")
            });
            w.names.as_mut().unwrap().window.hide();
        },
    );

    check(
        "a password typed in the form is asked for from the start, and kept only hashed",
        &mut |w| {
            w.ui.start.do_callback();
            pump_until(w, "stopped", |w| {
                w.ui.window.label() == "HubChat Server - stopped"
            });
            w.ui.password.set_value("open sesame");
            w.ui.start.do_callback();
            pump_until(w, "running", |w| w.ui.window.label().contains("running"));
            assert_eq!(w.ui.password.value(), "", "the field never keeps it");
            assert!(!w.ui.password.active() && !w.ui.clear_password.active());
            let saved = std::fs::read_to_string(config.join("server.json")).unwrap();
            assert!(saved.contains("pbkdf2-sha256$"), "{saved}");
            assert!(!saved.contains("open sesame"), "{saved}");
            let mut old = Peer::connect(addr);
            assert_eq!(old.recv(), ServerPacket::InfoRequest);
            old.send(&ClientPacket::Info(support::info("gina", false)));
            let told = format!("{:?}", old.recv_until_closed());
            assert!(told.contains("password"), "{told}");

            w.ui.start.do_callback();
            pump_until(w, "stopped", |w| {
                w.ui.window.label() == "HubChat Server - stopped"
            });
            assert!(w.ui.clear_password.active());
            w.ui.clear_password.do_callback();
            pump(w);
            assert!(!w.ui.clear_password.active());
            let saved = std::fs::read_to_string(config.join("server.json")).unwrap();
            assert!(saved.contains("\"password\": null"), "{saved}");
        },
    );

    check(
        "unticked, original clients are turned away with a sentence",
        &mut |w| {
            w.ui.allow_original.set_checked(false);
            w.ui.allow_original.do_callback();
            w.ui.start.do_callback();
            pump_until(w, "running", |w| w.ui.window.label().contains("running"));
            assert!(!w.ui.allow_original.active(), "locked while running");
            let mut old = Peer::connect(addr);
            assert_eq!(old.recv(), ServerPacket::InfoRequest);
            old.send(&ClientPacket::Info(support::info("hank", false)));
            let told = format!("{:?}", old.recv_until_closed());
            assert!(told.contains("ServerClose"), "{told}");
            w.ui.start.do_callback();
            pump_until(w, "stopped", |w| {
                w.ui.window.label() == "HubChat Server - stopped"
            });
            w.ui.allow_original.set_checked(true);
            w.ui.allow_original.do_callback();
            w.ui.start.do_callback();
            pump_until(w, "running", |w| w.ui.window.label().contains("running"));
        },
    );

    check(
        "closing the window stops the server and remembers the settings",
        &mut |w| {
            let mut carol = Peer::join_original(addr, "carol");
            pump_until(w, "carol's row", |w| w.ui.clients.rows() == 1);
            let reader = std::thread::spawn(move || carol.recv_until_closed());
            w.act(Action::Quit);
            assert!(!w.pump(), "the loop ends");
            assert!(matches!(
                reader.join().unwrap().as_slice(),
                [ServerPacket::ServerClose { .. }]
            ));
            let saved = std::fs::read_to_string(config.join("server.json")).unwrap();
            assert!(saved.contains(&format!("\"port\": {port}")), "{saved}");
            assert!(saved.contains("\"sound\": false"), "{saved}");
            assert!(saved.contains("\"show_text\": false"), "{saved}");
            assert!(saved.contains("\"name\": \"Test Office\""), "{saved}");
            assert!(saved.contains("\"discovery\": false"), "{saved}");
            assert!(saved.contains("\"max_per_address\": 16"), "{saved}");
        },
    );

    check(
        "the next window starts from the remembered address, port and switches",
        &mut |_| {
            let next = ServerApp::new(&ServerConfigArgs::default());
            assert_eq!(
                next.ui.address.choice().as_deref(),
                Some("127.0.0.1 (this machine only)")
            );
            assert_eq!(next.ui.port.value(), port.to_string());
            assert!(!next.ui.sound.is_checked());
            assert!(!next.ui.show_text.is_checked());
            assert_eq!(next.ui.name.value(), "Test Office");
            assert!(!next.ui.discovery.is_checked());
            assert_eq!(next.view.message_text, MessageText::Hidden);
            assert_eq!(next.ui.key.value(), key, "the key it will use");
        },
    );

    check(
        "--encrypted-only and --password-file set the form as they set a headless server",
        &mut |_| {
            let file = config.join("password.txt");
            std::fs::write(&file, "from a file\n").unwrap();
            let args = ServerConfigArgs {
                encrypted_only: true,
                password_file: Some(file),
                ..ServerConfigArgs::default()
            };
            let next = ServerApp::new(&args);
            assert!(!next.ui.allow_original.is_checked());
            assert!(next.ui.clear_password.active(), "a password is set");
            let missing = ServerConfigArgs {
                password_file: Some(config.join("nowhere.txt")),
                ..ServerConfigArgs::default()
            };
            let next = ServerApp::new(&missing);
            assert!(
                next.ui
                    .port_error
                    .label()
                    .contains("Could not read the password file"),
                "{}",
                next.ui.port_error.label()
            );
        },
    );

    let _ = std::fs::remove_dir_all(&config);
    println!("test result: ok. {passed} passed; 0 failed; 0 ignored; 0 measured; 0 filtered out");
}

/// What a client's search of loopback finds on `port`.
fn search_loopback(port: u16) -> Vec<Found> {
    let search = Search {
        ports: vec![port],
        targets: vec!["127.255.255.255".parse().unwrap()],
        duration: Duration::from_millis(800),
    };
    let mut found = Vec::new();
    discovery::search(&search, |f| found.push(f)).expect("a UDP socket");
    found
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs the FLTK loop briefly and lets the window handle what is pending.
fn pump(w: &mut ServerApp) {
    let _ = app::wait_for(0.01);
    w.pump();
}

/// Presses keys as a keyboard would, through the X server (xdotool's
/// XTEST). With no window manager the keyboard goes to the window under
/// the pointer: the pointer rests on the window's bottom margin, where no
/// control (and no tooltip) is.
fn press(w: &mut ServerApp, keys: &str) {
    let ui = &w.ui.window;
    let (x, y) = (ui.x() + 4, ui.y() + ui.h() - 4);
    for args in [
        &["mousemove", "--sync", &x.to_string(), &y.to_string()][..],
        &["key", keys],
    ] {
        let status = Command::new("xdotool")
            .args(args)
            .status()
            .expect("run xdotool (scripts/install-deps.sh --test installs it)");
        assert!(status.success(), "xdotool {args:?}");
    }
    pump(w);
}

/// Which control has the keyboard focus, by name.
fn focused(w: &ServerApp) -> &'static str {
    let ui = &w.ui;
    [
        ("address", ui.address.has_focus()),
        ("port", ui.port.has_focus()),
        ("Start", ui.start.has_focus()),
        ("Sound", ui.sound.has_focus()),
        ("name", ui.name.has_focus()),
        ("Let clients find this server", ui.discovery.has_focus()),
        ("Max per address", ui.max_per_address.has_focus()),
        ("password", ui.password.has_focus()),
        ("Clear password", ui.clear_password.has_focus()),
        (
            "Allow original (unencrypted) clients",
            ui.allow_original.has_focus(),
        ),
        ("status line", ui.status.has_focus()),
        ("server key", ui.key.has_focus()),
        ("Copy", ui.copy_key.has_focus()),
        ("Names and bans...", ui.names_and_bans.has_focus()),
        ("Kick...", ui.kick.has_focus()),
        ("Ban...", ui.ban.has_focus()),
        ("clients", ui.clients.has_focus()),
        ("Show message text", ui.show_text.has_focus()),
        ("log", ui.log.has_focus()),
    ]
    .into_iter()
    .find(|(_, has)| *has)
    .map_or("nothing", |(name, _)| name)
}

/// Resizes the window as a window manager would and lets it redraw.
fn resize(w: &mut ServerApp, width: i32, height: i32) {
    let (x, y) = (w.ui.window.x(), w.ui.window.y());
    w.ui.window.resize(x, y, width, height);
    for _ in 0..5 {
        pump(w);
    }
}

/// The status line's pixels as drawn on the screen.
fn status_pixels(w: &mut ServerApp) -> Vec<u8> {
    w.ui.window.make_current();
    let shot = fltk::draw::capture_window(&mut w.ui.window).expect("capture the window");
    let data = shot.to_rgb_data();
    let width = w.ui.window.w() as usize;
    let s = &w.ui.status;
    let (x, y, sw, sh) = (
        s.x() as usize,
        s.y() as usize,
        s.w() as usize,
        s.h() as usize,
    );
    (y..y + sh)
        .flat_map(|row| data[3 * (row * width + x)..3 * (row * width + x + sw)].to_vec())
        .collect()
}

/// Whether the log's last line is in view, read from its vertical
/// scrollbar as FLTK last drew it.
fn log_shows_end(w: &ServerApp) -> bool {
    let log = w.ui.log.as_group().expect("a text display is a group");
    let bar = (0..log.children())
        .filter_map(|i| log.child(i))
        .filter_map(|c| Scrollbar::from_dyn_widget(&c))
        .find(|b| b.get_type::<ScrollbarType>() == ScrollbarType::Vertical)
        .expect("a vertical scrollbar");
    assert!(bar.visible(), "the log overflows");
    bar.value() >= bar.maximum() - 0.5
}

fn pump_until(w: &mut ServerApp, what: &str, done: impl Fn(&ServerApp) -> bool) {
    // Generous: a 20,000-message flood on a loaded 2-core machine took over
    // 10 s to reach the log once; a broken window never gets there.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done(w) {
        if Instant::now() >= deadline {
            let text = w.ui.log_text.text();
            let tail: Vec<&str> = text.lines().rev().take(5).collect();
            panic!("timed out waiting for {what}; the log ends with {tail:?}");
        }
        pump(w);
    }
}
