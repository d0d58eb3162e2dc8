//! The server window driven in-process, under a real X display (Xvfb in CI):
//! its real callbacks run, a real client connects over loopback, and the
//! widgets are checked for what the owner would see.
//!
//! FLTK must stay on one thread, so this is a plain `main` (harness = false)
//! that runs its checks in order and reports like libtest.

mod support;

use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use fltk::app;
use fltk::prelude::*;
use hubchat::common::packet::ServerPacket;
use hubchat::server::cli::ServerConfigArgs;
use hubchat::server::gui::window::Action;
use hubchat::server::gui::ServerApp;
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

    let port = free_port();
    let args = ServerConfigArgs {
        start: false,
        bind: Some("127.0.0.1".parse().unwrap()),
        port: Some(port),
        max_clients: None,
        max_per_address: None,
    };
    let mut w = ServerApp::new(&args);
    w.ui.window.show();
    w.ui.sound.set_checked(false);
    w.act(Action::SoundToggled);

    let mut passed = 0;
    let mut check = |name: &str, f: &mut dyn FnMut(&mut ServerApp)| {
        print!("test {name} ... ");
        f(&mut w);
        println!("ok");
        passed += 1;
    };

    check("the window opens stopped with the form ready", &mut |w| {
        pump_until(w, "window shown", |w| w.ui.window.shown());
        assert_eq!(w.ui.window.label(), "HubChat Server - stopped");
        assert_eq!(w.ui.port.value(), port.to_string());
        assert!(w.ui.address.active() && w.ui.port.active());
        assert_eq!(w.ui.start.label(), "Start");
    });

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
            pump_until(w, "log catches up", |w| {
                w.ui.log_text.text().ends_with("alice -> alice: flood\n")
            });
            assert!(w.view.log_len() <= hubchat::server::view::MAX_LOG_LINES);
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

    check("starting again in the same window works", &mut |w| {
        w.ui.start.do_callback();
        pump_until(w, "running again", |w| {
            w.ui.window.label().contains("running")
        });
        let bob = Peer::join_hubchat(addr, "bob");
        pump_until(w, "bob's row", |w| w.ui.clients.rows() == 1);
        drop(bob);
        pump_until(w, "bob gone", |w| w.ui.clients.rows() == 0);
    });

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
        },
    );

    let _ = std::fs::remove_dir_all(&config);
    println!("test result: ok. {passed} passed; 0 failed; 0 ignored; 0 measured; 0 filtered out");
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

fn pump_until(w: &mut ServerApp, what: &str, done: impl Fn(&ServerApp) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done(w) {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        pump(w);
    }
}
