//! Names that belong to someone, the password, kicks and bans: specified
//! against a real server with real TLS clients (each with its own
//! certificate, as each HubChat installation has).

mod support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use hubchat::client::{ConnectError, Session, SessionConfig, SessionEvent};
use hubchat::common::packet::{ClientPacket, ErrorCode, ServerPacket};
use hubchat::common::tls::Credentials;
use hubchat::server::store::BanTarget;
use hubchat::server::{password, BanBy, Events, Server, ServerConfig, ServerEvent, StartError};
use support::{join, new_identity, Peer, TestServer, PATIENCE};

fn config(server: &TestServer, name: &str, me: &Credentials) -> SessionConfig {
    SessionConfig {
        host: "127.0.0.1".into(),
        port: server.addr.port(),
        name: name.into(),
        color: "blue".into(),
        image_name: "image_3.png".into(),
        picture: None,
        timeout: Duration::from_secs(5),
        identity: Some(me.clone()),
        pin: None,
        password: None,
    }
}

fn refused_code(
    result: Result<(Session, Receiver<SessionEvent>), ConnectError>,
) -> (ErrorCode, String) {
    match result {
        Err(ConnectError::Rejected {
            code: Some(code),
            message,
        }) => (code, message),
        Err(other) => panic!("expected an ERROR refusal, got {other}"),
        Ok(_) => panic!("expected a refusal, but it joined"),
    }
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hubchat-trust-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn a_name_belongs_to_the_computer_that_first_used_it() {
    let server = TestServer::start();
    let (alice_pc, mallory_pc) = (new_identity(), new_identity());
    let (alice, _rx) = join(&config(&server, "alice", &alice_pc)).expect("alice joins");
    alice.disconnect();

    // Once alice has left, her name is still hers: not for another
    // computer, in any case or look-alike spelling...
    for name in ["alice", "ALICE", "аlice"] {
        let (code, message) = refused_code(join(&config(&server, name, &mallory_pc)));
        assert_eq!(code, ErrorCode::NameOwned, "{name}");
        assert!(message.contains("belongs to another computer"), "{message}");
    }
    // ... nor for an original client, which has no identity at all.
    let mut old = Peer::connect(server.addr);
    assert_eq!(old.recv(), ServerPacket::InfoRequest);
    old.send(&ClientPacket::Info(support::info("Alice", false)));
    match old.recv() {
        ServerPacket::ServerClose { message } => {
            assert!(message.contains("belongs to a HubChat user"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    // Her own computer takes it back, and unbound names stay free for all.
    let (_alice, _rx) = join(&config(&server, "alice", &alice_pc)).expect("alice again");
    let _carol = Peer::join_original(server.addr, "carol");
}

#[test]
fn the_owner_can_release_a_name() {
    let server = TestServer::start();
    let (alice_pc, bob_pc) = (new_identity(), new_identity());
    join(&config(&server, "alice", &alice_pc))
        .expect("alice joins")
        .0
        .disconnect();
    let running = server.server.as_ref().unwrap();
    let bindings = running.bindings().unwrap();
    assert_eq!(bindings.len(), 1);
    assert_eq!(bindings[0].identity, alice_pc.fingerprint().hex());

    assert!(running.release_name("Alice").unwrap());
    let (_bob, _rx) = join(&config(&server, "alice", &bob_pc)).expect("the name is free again");
    assert_eq!(
        running.bindings().unwrap()[0].identity,
        bob_pc.fingerprint().hex()
    );
}

#[test]
fn a_password_is_asked_for_checked_and_guessing_it_is_slowed() {
    let hash = password::hash("correct horse").unwrap();
    // Listening on IPv6 and IPv4 alike, so that the two loopback addresses
    // (127.0.0.1 and ::1) stand for two computers.
    let server = TestServer::start_with(|c| {
        c.bind = "[::]:0".parse().unwrap();
        c.password = Some(hash.clone());
        c.handshake_timeout = Duration::from_secs(2);
    });
    let me = new_identity();
    let without = config(&server, "alice", &me);
    assert_eq!(refused_code(join(&without)).0, ErrorCode::PasswordRequired);

    let wrong = SessionConfig {
        password: Some("wrong".into()),
        ..without.clone()
    };
    for _ in 0..5 {
        let (code, message) = refused_code(join(&wrong));
        assert_eq!(code, ErrorCode::PasswordWrong);
        assert!(message.contains("not right"), "{message}");
    }
    // The sixth try within the minute is not even checked: it would have
    // to wait longer than the handshake lasts.
    let started = Instant::now();
    let right = SessionConfig {
        password: Some("correct horse".into()),
        ..without.clone()
    };
    let (code, message) = refused_code(join(&right));
    assert_eq!(code, ErrorCode::PasswordWrong);
    assert!(message.contains("Too many wrong passwords"), "{message}");
    assert!(started.elapsed() < Duration::from_secs(2));

    // From another address the right password still works at once.
    let elsewhere = SessionConfig {
        host: "::1".into(),
        ..right
    };
    let (session, _rx) = join(&elsewhere).expect("the right password lets alice in");
    assert!(session.id.starts_with("client"));

    // The original client cannot give a password: it is told so.
    let mut old = Peer::connect(server.addr);
    assert_eq!(old.recv(), ServerPacket::InfoRequest);
    old.send(&ClientPacket::Info(support::info("old", false)));
    match old.recv() {
        ServerPacket::ServerClose { message } => assert!(message.contains("password"), "{message}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_kicked_client_is_told_the_owners_reason_and_the_others_see_it_leave() {
    let mut server = TestServer::start();
    let (bob, brx) = join(&config(&server, "bob", &new_identity())).expect("bob joins");
    let mut watcher = Peer::join_original(server.addr, "watcher");
    let kick =
        |server: &TestServer, reason: &str| server.server.as_ref().unwrap().kick(&bob.id, reason);
    assert!(kick(&server, "too many cat pictures"));

    let deadline = Instant::now() + PATIENCE;
    let told = loop {
        match brx.recv_deadline(deadline).expect("bob hears why") {
            SessionEvent::Refused { code, message } => break (code, message),
            _ => continue,
        }
    };
    assert_eq!(told.0, ErrorCode::Kicked);
    assert!(told.1.contains("too many cat pictures"), "{}", told.1);
    assert!(matches!(
        brx.recv_deadline(deadline),
        Ok(SessionEvent::Lost { .. })
    ));
    assert_eq!(
        watcher.recv(),
        ServerPacket::Disconnect { id: bob.id.clone() }
    );
    server.wait_for(
        "the log says who kicked whom",
        |e| matches!(e, ServerEvent::Owner { what } if what.contains("kicked bob")),
    );
    assert!(!kick(&server, ""), "a client is kicked once");
}

#[test]
fn a_ban_on_an_identity_survives_a_restart_and_can_be_lifted() {
    let dir = temp_dir("ban");
    let database = dir.join("hubchat-server.db");
    let start = |database: &PathBuf| {
        let database = database.clone();
        TestServer::start_with(move |c| c.database = Some(database))
    };
    let mallory_pc = new_identity();
    let mut server = start(&database);
    let (mallory, mrx) = join(&config(&server, "mallory", &mallory_pc)).expect("joins");
    let running = server.server.as_ref().unwrap();
    let target = running
        .ban(&mallory.id, BanBy::Identity, "spam")
        .expect("banned");
    assert_eq!(target, BanTarget::Identity(mallory_pc.fingerprint().hex()));
    let deadline = Instant::now() + PATIENCE;
    loop {
        match mrx
            .recv_deadline(deadline)
            .expect("mallory hears of the ban")
        {
            SessionEvent::Refused { code, message } => {
                assert_eq!(code, ErrorCode::Banned);
                assert!(message.contains("spam"), "{message}");
                break;
            }
            _ => continue,
        }
    }
    server.stop();

    let server = start(&database);
    let (code, message) = refused_code(join(&config(&server, "someone-else", &mallory_pc)));
    assert_eq!(code, ErrorCode::Banned, "{message}");
    // Only that computer: others join.
    let _other = join(&config(&server, "carol", &new_identity())).expect("carol joins");

    let running = server.server.as_ref().unwrap();
    assert_eq!(running.bans().unwrap().len(), 1);
    assert!(running.lift_ban(&target).unwrap());
    let _back = join(&config(&server, "mallory", &mallory_pc)).expect("the ban is lifted");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_banned_address_is_turned_away_at_the_door() {
    // Listening on IPv6 and IPv4 alike, so that the two loopback addresses
    // (127.0.0.1 and ::1) stand for two computers.
    let server = TestServer::start_with(|c| c.bind = "[::]:0".parse().unwrap());
    let port = server.addr.port();
    let _old = Peer::join_original(([127, 0, 0, 1], port).into(), "old");
    let running = server.server.as_ref().unwrap();
    running
        .ban("client0", BanBy::Address, "")
        .expect("banned by address");
    let mut again = Peer::connect(([127, 0, 0, 1], port).into());
    match again.recv() {
        ServerPacket::ServerClose { message } => {
            assert!(message.contains("banned your address"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    // An original client has no identity to ban by.
    let _old2 = Peer::join_original((std::net::Ipv6Addr::LOCALHOST, port).into(), "old2");
    let err = running.ban("client1", BanBy::Identity, "").unwrap_err();
    assert!(err.to_string().contains("no identity"), "{err}");
}

#[test]
fn a_damaged_database_stops_the_server_with_a_sentence_and_is_left_as_it_was() {
    let dir = temp_dir("corrupt");
    let database = dir.join("hubchat-server.db");
    let garbage = b"this is not an SQLite database, not at all, no".repeat(100);
    std::fs::write(&database, &garbage).unwrap();
    let mut config = ServerConfig::new("127.0.0.1:0".parse().unwrap());
    config.database = Some(database.clone());
    match Server::start(config, Events::new()) {
        Err(e @ StartError::Trust(_)) => {
            let sentence = e.to_string();
            assert!(
                sentence.contains(&database.display().to_string()),
                "{sentence}"
            );
        }
        Err(other) => panic!("wrong error: {other}"),
        Ok(_) => panic!("a damaged database must not start the server"),
    }
    assert_eq!(std::fs::read(&database).unwrap(), garbage, "left untouched");
    let _ = std::fs::remove_dir_all(&dir);
}
