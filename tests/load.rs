//! The load tool against a real server: its counting matches what was
//! sent, so CI notices a server that loses or doubles messages; and with
//! `tls` its clients join encrypted, which the server's own account of
//! each join confirms.

mod support;

use std::collections::HashSet;
use std::io::Write;
use std::net::TcpListener;
use std::thread;
use std::time::Duration;

use hubchat::common::connection::FrameReader;
use hubchat::common::packet::{Profile, Roster, ServerPacket};
use hubchat::load::{self, LoadOptions, Pace, Pattern, Storm, StormKind};
use hubchat::server::ServerEvent;
use support::TestServer;

fn options(server: &TestServer) -> LoadOptions {
    LoadOptions {
        server: server.addr.to_string(),
        progress: false,
        ..LoadOptions::default()
    }
}

#[test]
fn fifty_clients_exchange_a_hundred_messages_each_without_loss() {
    let server = TestServer::start();
    let opts = LoadOptions {
        clients: 50,
        messages: 100,
        ..options(&server)
    };
    let report = load::run(&opts).unwrap();
    assert!(report.clean(), "{report:?}");
    assert_eq!(
        (
            report.sent,
            report.delivered,
            report.lost,
            report.duplicated
        ),
        (5000, 5000, 0, 0)
    );
    assert!(report.latency_us[0] > 0.0 && report.latency_us[0] <= report.latency_us[3]);
}

#[test]
fn a_ring_at_a_fixed_rate_delivers_everything() {
    let server = TestServer::start();
    let opts = LoadOptions {
        clients: 7,
        messages: 20,
        pattern: Pattern::Ring,
        pace: Pace::Rate(200.0),
        ..options(&server)
    };
    let report = load::run(&opts).unwrap();
    assert!(report.clean(), "{report:?}");
    assert_eq!(report.delivered, 140);
    // 20 messages at 200 a second take about 0.1 s.
    assert!(report.seconds >= 0.09, "{}", report.seconds);
}

#[test]
fn a_server_that_refuses_clients_makes_the_run_fail() {
    let server = TestServer::start_with(|c| c.max_clients = 3);
    let opts = LoadOptions {
        clients: 5,
        messages: 1,
        patience: Duration::from_secs(1),
        ..options(&server)
    };
    let report = load::run(&opts).unwrap();
    assert!(!report.clean());
    assert_eq!((report.connected, report.failed), (3, 2));
    assert!(report.first_error.unwrap().contains("full"));
}

#[test]
fn holding_clients_keeps_them_listed_then_lets_them_go() {
    let server = TestServer::start();
    let opts = LoadOptions {
        clients: 20,
        hold: Some(Duration::from_millis(300)),
        ..options(&server)
    };
    let report = load::run(&opts).unwrap();
    assert!(report.clean(), "{report:?}");
    assert_eq!(report.sent, 0);
    server.wait_for_count(0);
}

/// A storm of `kind` with 20 of 50 clients, then 20 messages each.
fn storm_of_twenty(kind: StormKind) -> load::Report {
    let server = TestServer::start();
    let opts = LoadOptions {
        clients: 50,
        messages: 20,
        storm: Some(Storm { kind, count: 20 }),
        ..options(&server)
    };
    load::run(&opts).unwrap()
}

#[test]
fn twenty_clients_saying_disconnect_at_once_are_each_announced_once_to_everyone_left() {
    let report = storm_of_twenty(StormKind::Disconnect);
    assert!(report.clean(), "{report:?}");
    let storm = report.storm.unwrap();
    assert_eq!((storm.leavers, storm.survivors), (20, 30));
    assert_eq!((storm.announced, storm.expected), (600, 600));
    assert_eq!(report.told_twice, 0);
    assert!(storm.fresh_join_ms.is_some(), "{:?}", storm.fresh_error);
    // The 30 who stayed and the fresh client then talk without loss.
    assert_eq!((report.sent, report.delivered, report.lost), (620, 620, 0));
}

#[test]
fn twenty_clients_closing_without_a_word_are_each_announced_once_to_everyone_left() {
    let report = storm_of_twenty(StormKind::Kill);
    assert!(report.clean(), "{report:?}");
    let storm = report.storm.unwrap();
    assert_eq!((storm.announced, storm.expected), (600, 600));
    assert_eq!(report.told_twice, 0);
    assert!(storm.fresh_join_ms.is_some(), "{:?}", storm.fresh_error);
    assert_eq!((report.sent, report.delivered, report.lost), (620, 620, 0));
}

#[test]
fn encrypted_clients_exchange_every_message_and_the_server_saw_each_join_encrypted() {
    let server = TestServer::start();
    let opts = LoadOptions {
        tls: true,
        clients: 20,
        messages: 50,
        ..options(&server)
    };
    // The server's events are read while the run goes on, so no join is
    // still queued when its leave arrives (which would cancel the pair).
    let run = thread::spawn(move || load::run(&opts));
    let mut identities = Vec::new();
    loop {
        let finished = run.is_finished();
        for event in server.events.wait(Duration::from_millis(20)) {
            if let ServerEvent::Joined { who, identity, .. } = event.what {
                if who.name.starts_with("load-") {
                    identities.push(identity);
                }
            }
        }
        if finished {
            break;
        }
    }
    let report = run.join().unwrap().unwrap();
    assert!(report.clean(), "{report:?}");
    assert_eq!(
        (report.sent, report.delivered, report.lost),
        (1000, 1000, 0)
    );
    assert_eq!((report.connected, report.encrypted), (20, 20));
    assert!(report.identities_ms.is_some() && report.server_key.is_some());
    assert_eq!(identities.len(), 20, "one join each: {identities:?}");
    let distinct: HashSet<_> = identities.iter().flatten().collect();
    assert_eq!(
        distinct.len(),
        20,
        "every join encrypted, each with its own certificate: {identities:?}"
    );
}

/// A server that lets `n` clients in as the original does, in plain text,
/// whatever they offer.
fn plain_only_server(n: usize) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        let mut kept = Vec::new();
        for k in 0..n {
            let Ok((mut s, _)) = listener.accept() else {
                return;
            };
            let _ = s.write_all(&ServerPacket::InfoRequest.encode());
            let mut reader = FrameReader::new(s.try_clone().unwrap(), 4096);
            let Ok(Some(_info)) = reader.read_frame() else {
                continue;
            };
            let roster = Roster(vec![(
                format!("client{k}"),
                Profile {
                    name: format!("someone {k}"),
                    color: "red".into(),
                    image_name: "image_1.png".into(),
                    files: false,
                },
            )]);
            let _ = s.write_all(&ServerPacket::AllClients(roster).encode());
            kept.push(s);
        }
        thread::sleep(Duration::from_secs(2));
    });
    addr
}

#[test]
fn a_tls_run_against_a_server_that_does_not_encrypt_fails_and_says_so() {
    let addr = plain_only_server(3);
    let opts = LoadOptions {
        server: addr.to_string(),
        tls: true,
        clients: 3,
        messages: 1,
        patience: Duration::from_secs(1),
        progress: false,
        ..LoadOptions::default()
    };
    let report = load::run(&opts).unwrap();
    assert!(!report.clean());
    assert_eq!(
        (report.connected, report.failed, report.encrypted),
        (0, 3, 0)
    );
    let error = report.first_error.unwrap();
    assert!(error.contains("did not encrypt"), "{error}");
}
