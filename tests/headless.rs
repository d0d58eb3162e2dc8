//! The `hubchat-server` executable, run headless as an owner would.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use hubchat::common::packet::ServerPacket;
use support::Peer;

const EXE: &str = env!("CARGO_BIN_EXE_hubchat-server");

/// A settings folder of the test's own, so the server's certificate and
/// database never land in the account's real one.
fn settings() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("hubchat-headless-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn run(args: &[&str]) -> std::process::Output {
    Command::new(EXE)
        .env("HUBCHAT_CONFIG_DIR", settings())
        .args(args)
        .output()
        .expect("run hubchat-server")
}

/// Starts a headless server on a free loopback port, with any further
/// options; returns it, its port, and its stdout as lines.
fn start_headless(options: &[&str]) -> (Child, u16, impl Iterator<Item = String>) {
    let mut child = Command::new(EXE)
        .env("HUBCHAT_CONFIG_DIR", settings())
        .args(["--headless", "--bind", "127.0.0.1", "--port", "0"])
        .args(options)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start hubchat-server");
    let mut lines = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map(|l| l.expect("utf-8 log line"));
    let first = lines.next().expect("a first log line");
    let port = first
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("expected 'listening on 127.0.0.1:PORT', got {first}"));
    assert!(first.contains(" listening on 127.0.0.1:"), "{first}");
    (child, port, lines)
}

#[test]
fn help_explains_every_option() {
    let out = run(&["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for option in [
        "--headless",
        "--bind",
        "--port",
        "--max-clients",
        "--hide-text",
        "--help",
        "--version",
    ] {
        assert!(help.contains(option), "help lacks {option}");
    }
}

#[test]
fn bad_arguments_are_explained_with_exit_status_2() {
    for (args, says) in [
        (
            &["--port", "http"][..],
            "--port needs a number from 1 to 65535, not \"http\"",
        ),
        (&["--bind", "my-laptop"][..], "--bind needs an IP address"),
        (&["--verbose"][..], "unknown option \"--verbose\""),
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(err.contains("--help"), "points to --help: {err}");
    }
}

#[test]
fn a_port_in_use_is_explained_with_exit_status_1() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = run(&["--headless", "--bind", "127.0.0.1", "--port", &port]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains(&format!("Port {port} is already used by another program")),
        "{err}"
    );
}

#[test]
fn sigterm_closes_every_client_and_exits_cleanly() {
    let (mut child, port, mut lines) = start_headless(&[]);
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut alice = Peer::join_original(addr, "alice");
    let mut bob = Peer::join_hubchat(addr, "bob");
    alice.recv_roster();
    bob.message(&alice.id, "hello over the wire");
    assert_eq!(alice.recv_message().1, "hello over the wire\n");

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    for peer in [&mut alice, &mut bob] {
        assert!(matches!(
            peer.recv_until_closed().as_slice(),
            [ServerPacket::ServerClose { .. }]
        ));
    }
    assert!(child.wait().unwrap().success(), "exit status 0");

    let log: Vec<String> = lines.by_ref().collect();
    let has = |needle: &str| log.iter().any(|l| l.contains(needle));
    assert!(has("alice (client0) joined from 127.0.0.1:"), "{log:#?}");
    assert!(has("bob (client1) joined from"), "{log:#?}");
    assert!(has("bob -> alice: hello over the wire"), "{log:#?}");
    assert!(log.last().unwrap().contains("stopped"), "{log:#?}");
}

#[test]
fn hide_text_logs_who_wrote_to_whom_and_how_many_characters() {
    let (mut child, port, mut lines) = start_headless(&["--hide-text"]);
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut alice = Peer::join_original(addr, "alice");
    let mut bob = Peer::join_hubchat(addr, "bob");
    alice.recv_roster();
    bob.message(&alice.id, "Zoë 陈: the key is under the mat");
    assert_eq!(
        alice.recv_message().1,
        "Zoë 陈: the key is under the mat\n",
        "delivered whole"
    );

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    assert!(child.wait().unwrap().success(), "exit status 0");
    let log: Vec<String> = lines.by_ref().collect();
    assert!(
        log.iter()
            .any(|l| l.ends_with(" bob -> alice (31 characters)")),
        "{log:#?}"
    );
    assert!(!log.iter().any(|l| l.contains("the key")), "{log:#?}");
}

#[test]
fn the_first_line_shows_the_servers_fingerprint_which_stays_across_restarts() {
    let fingerprint_of = |mut child: Child, first: String| {
        let _ = child.kill();
        let _ = child.wait();
        first
            .split("server fingerprint ")
            .nth(1)
            .and_then(|rest| rest.split(',').next())
            .map(str::to_string)
            .unwrap_or_else(|| panic!("no fingerprint in {first}"))
    };
    let start = || {
        let mut child = Command::new(EXE)
            .env("HUBCHAT_CONFIG_DIR", settings())
            .args(["--headless", "--bind", "127.0.0.1", "--port", "0"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("start hubchat-server");
        let first = BufReader::new(child.stdout.take().unwrap())
            .lines()
            .next()
            .expect("a first line")
            .unwrap();
        (child, first)
    };
    let (child, first) = start();
    let before = fingerprint_of(child, first);
    assert_eq!(before.len(), 24, "five groups of four: {before}");
    let (child, first) = start();
    assert_eq!(fingerprint_of(child, first), before, "the identity is kept");
    assert!(settings().join("server-identity.pem").exists());
    assert!(settings().join("hubchat-server.db").exists());
}

#[test]
fn an_empty_password_file_is_explained_with_exit_status_1() {
    let empty = settings().join("empty-password");
    std::fs::write(&empty, "").unwrap();
    let out = run(&[
        "--headless",
        "--bind",
        "127.0.0.1",
        "--port",
        "0",
        "--password-file",
        empty.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("is empty: write the password"), "{err}");
}

#[test]
fn encrypted_only_turns_original_clients_away() {
    let (mut child, port, _lines) = start_headless(&["--encrypted-only"]);
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut old = Peer::connect(addr);
    assert_eq!(old.recv(), ServerPacket::InfoRequest);
    old.send(&hubchat::common::packet::ClientPacket::Info(support::info(
        "old", false,
    )));
    match old.recv() {
        ServerPacket::ServerClose { message } => {
            assert!(message.contains("only encrypted"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    let _ = child.kill();
    let _ = child.wait();
}
