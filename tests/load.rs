//! The load tool against a real server: its counting matches what was
//! sent, so CI notices a server that loses or doubles messages.

mod support;

use std::time::Duration;

use hubchat::load::{self, LoadOptions, Pace, Pattern, Storm, StormKind};
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
