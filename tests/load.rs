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

/// Runs `hubchat-load files` against `server` with `args`, quietly: its
/// exit code, and what it printed on standard output and error.
fn files_tool(server: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hubchat-load"))
        .args(["files", "-q", "-s", server])
        .args(args)
        .output()
        .expect("hubchat-load runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn files_through_the_hub_arrive_whole_and_are_measured_against_bare_sockets() {
    let server = TestServer::start();
    // The test server runs in this process: its memory is ours.
    let pid = std::process::id().to_string();
    let addr = server.addr.to_string();
    let (code, out, err) = files_tool(
        &addr,
        &[
            "--size",
            "8",
            "--transfers",
            "2",
            "--chat-rate",
            "50",
            "--server-pid",
            &pid,
        ],
    );
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.starts_with(&format!(
            "hubchat-load files: 2 transfers of 8 MB at once through {addr}\n"
        )),
        "{out}"
    );
    let row = |label: &str| {
        out.lines()
            .find(|l| l.trim_start().starts_with(label))
            .unwrap_or_else(|| panic!("no {label} in {out}"))
            .to_string()
    };
    assert!(row("through the hub").contains(" MB/s (16 MB in "), "{out}");
    assert!(
        row("bare TCP socket pairs").contains(" MB/s (16 MB in "),
        "{out}"
    );
    assert!(row("ratio").contains("(hub / bare)"), "{out}");
    assert!(
        row("files received").contains("2 of 2 whole and in order"),
        "{out}"
    );
    let chat = row("chat during transfers");
    assert!(chat.contains(" p50 ") && chat.contains(", p99 "), "{out}");
    assert!(row("server RSS peak").contains(" MB ("), "{out}");

    let json: serde_json::Value =
        serde_json::from_str(out.lines().last().unwrap_or_default()).expect("a JSON line last");
    for leg in ["hub", "bare"] {
        assert_eq!(json[leg]["bytes"], 16 << 20, "every byte, in order: {json}");
        assert!(
            json[leg]["mb_per_s"].as_f64().unwrap_or(0.0) > 0.0,
            "{json}"
        );
    }
    assert_eq!(json["intact"], 2, "{json}");
    assert_eq!(json["faults"], serde_json::json!([]), "{json}");
    assert_eq!(json["clean"], true, "{json}");
    assert!(json["ratio"].as_f64().unwrap_or(0.0) > 0.0, "{json}");
    let chat = &json["chat"];
    assert!(chat["delivered"].as_u64().unwrap_or(0) >= 2, "{json}");
    assert_eq!(chat["lost"], 0, "{json}");
    let (p50, p99) = (chat["p50_ms"].as_f64(), chat["p99_ms"].as_f64());
    assert!(
        p50.zip(p99).is_some_and(|(a, b)| 0.0 < a && a <= b),
        "{json}"
    );
    assert!(
        json["server_rss_peak_mb"].as_f64().unwrap_or(0.0) > 0.0,
        "{json}"
    );
}

#[test]
fn a_file_the_server_will_not_pass_on_fails_the_run_and_the_report_says_why() {
    let server = TestServer::start_with(|c| c.max_file = 4 << 20);
    let (code, out, err) = files_tool(
        &server.addr.to_string(),
        &["--size", "8", "--chat-rate", "0", "--patience", "1"],
    );
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(out.contains("0 of 1 whole and in order"), "{out}");
    assert!(
        out.contains("transfer 0") && out.contains("FAILED (sender): given up: "),
        "{out}"
    );
    assert!(out.contains("passes on files of at most 4.0 MB"), "{out}");
    assert!(out.contains("\"clean\":false"), "{out}");
}

#[test]
fn files_are_never_sent_to_another_machine() {
    let (code, out, err) = files_tool("192.0.2.7:5050", &["--size", "1"]);
    assert_eq!(code, Some(2), "{out}{err}");
    assert!(
        err.contains("192.0.2.7 is not loopback, so nothing was sent"),
        "{err}"
    );
    assert!(out.is_empty(), "{out}");
}
