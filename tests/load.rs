//! The load tool against a real server: its counting matches what was
//! sent, so CI notices a server that loses or doubles messages.

mod support;

use std::time::Duration;

use hubchat::load::{self, LoadOptions, Pace, Pattern};
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
