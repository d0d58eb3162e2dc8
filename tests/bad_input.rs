//! Bad input of every kind: the offending connection is told why where it
//! can be and dropped; the server goes on serving everyone else.

mod support;

use std::time::Duration;

use hubchat::common::packet::{ClientPacket, ErrorCode, Info, ServerPacket};
use hubchat::server::{LeaveReason, ServerEvent};
use support::{info, wire, Peer, TestServer};

/// Two fresh clients can still join and talk: the server is unharmed.
fn assert_still_serves(server: &TestServer) {
    let mut x = Peer::join_hubchat(server.addr, &format!("x{}", rand_suffix()));
    let mut y = Peer::join_original(server.addr, &format!("y{}", rand_suffix()));
    // x hears of y joining; others may be listed too.
    x.recv_roster();
    x.message(&y.id, "still here?");
    assert_eq!(y.recv_message(), (x.id.clone(), "still here?\n".into()));
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// A joined bystander who must see the offender leave exactly once.
fn bystander_sees_departure(bystander: &mut Peer, id: &str) {
    // Skip the roster announcing the offender, if it joined.
    loop {
        match bystander.recv() {
            ServerPacket::AllClients(_) => continue,
            ServerPacket::Disconnect { id: gone } => {
                assert_eq!(gone, id);
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    bystander.expect_silence(Duration::from_millis(100));
}

/// Joins an offender, sends `bytes`, and checks what it is told and that a
/// bystander hears of its departure once.
fn joined_offender_is_dropped(bytes: &[u8], hubchat: bool, expect_code: ErrorCode) {
    let server = TestServer::start();
    let mut bystander = Peer::join_original(server.addr, "bystander");
    let mut offender = if hubchat {
        Peer::join_hubchat(server.addr, "offender")
    } else {
        Peer::join_original(server.addr, "offender")
    };
    offender.send_raw(bytes);
    let told = offender.recv_until_closed();
    match (hubchat, told.as_slice()) {
        (true, [ServerPacket::Error(report)]) => assert_eq!(report.code, expect_code, "{report:?}"),
        (false, [ServerPacket::ServerClose { message }]) => {
            assert!(message.starts_with("The client sent a packet"), "{message}")
        }
        (_, other) => panic!("expected one reason, got {other:?}"),
    }
    bystander_sees_departure(&mut bystander, &offender.id);
    assert_still_serves(&server);
}

#[test]
fn a_header_that_is_not_digits_drops_only_that_client() {
    joined_offender_is_dropped(b"hello     {}", true, ErrorCode::MalformedPacket);
    joined_offender_is_dropped(b"hello     {}", false, ErrorCode::MalformedPacket);
}

#[test]
fn a_huge_length_is_refused_before_the_body_arrives() {
    joined_offender_is_dropped(b"9999999999", true, ErrorCode::PacketTooLarge);
}

#[test]
fn a_length_just_over_the_limit_is_refused() {
    let server = TestServer::start_with(|c| c.max_packet = 200);
    let mut offender = Peer::join_hubchat(server.addr, "offender");
    offender.send_body(&[b' '; 201]);
    match offender.recv_until_closed().as_slice() {
        [ServerPacket::Error(r)] => {
            assert_eq!(r.code, ErrorCode::PacketTooLarge);
            assert!(r.message.contains("at most 200"), "{}", r.message);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_zero_length_drops_only_that_client() {
    joined_offender_is_dropped(b"0         ", true, ErrorCode::MalformedPacket);
}

#[test]
fn invalid_json_drops_only_that_client() {
    joined_offender_is_dropped(
        &support::wire("{\"flag\": MESSAGE"),
        true,
        ErrorCode::MalformedPacket,
    );
    joined_offender_is_dropped(
        &support::wire("{\"flag\": MESSAGE"),
        false,
        ErrorCode::MalformedPacket,
    );
}

#[test]
fn json_of_the_wrong_shape_drops_only_that_client() {
    for body in [
        r#"{"flag": "MESSAGE", "data": "client0"}"#,
        r#"{"flag": "MESSAGE", "data": {"message": ["a"], "partner_name": "client0"}}"#,
        r#"[1, 2, 3]"#,
        r#"{"data": {}}"#,
    ] {
        joined_offender_is_dropped(&support::wire(body), true, ErrorCode::MalformedPacket);
    }
}

#[test]
fn a_body_cut_short_then_closed_is_a_departure_announced_once() {
    let mut server = TestServer::start();
    let mut bystander = Peer::join_original(server.addr, "bystander");
    let mut offender = Peer::join_original(server.addr, "offender");
    let frame = ClientPacket::Message {
        to: "client0".into(),
        text: "this will not arrive whole".into(),
    }
    .encode();
    offender.send_raw(&frame[..frame.len() / 2]);
    offender.stream.shutdown(std::net::Shutdown::Write).unwrap();
    bystander_sees_departure(&mut bystander, &offender.id);
    server.wait_for("offender left as malformed", |e| {
        matches!(
            e,
            ServerEvent::Left {
                reason: LeaveReason::Refused {
                    code: ErrorCode::MalformedPacket,
                    ..
                },
                ..
            }
        )
    });
    assert_still_serves(&server);
}

#[test]
fn an_unknown_flag_is_skipped_and_the_client_stays() {
    let server = TestServer::start();
    let mut alice = Peer::join_original(server.addr, "alice");
    let mut bob = Peer::join_hubchat(server.addr, "bob");
    alice.recv_roster();
    bob.send_body(br#"{"flag": "WAVE", "data": {"to": "client0"}}"#);
    bob.send_body(br#"{"flag": "NEWFANGLED"}"#);
    bob.message(&alice.id, "after the unknown flags");
    assert_eq!(alice.recv_message().1, "after the unknown flags\n");
}

#[test]
fn a_message_to_an_unknown_id_tells_a_hubchat_sender_and_keeps_it() {
    let mut server = TestServer::start();
    let mut bob = Peer::join_hubchat(server.addr, "bob");
    for to in ["client99", "alice", "client01", ""] {
        bob.message(to, "anyone?");
        match bob.recv() {
            ServerPacket::Error(r) => {
                assert_eq!(r.code, ErrorCode::UnknownPartner);
                assert!(r.message.contains(to), "{}", r.message);
            }
            other => panic!("{other:?}"),
        }
    }
    server.wait_for(
        "undeliverable logged",
        |e| matches!(e, ServerEvent::Undeliverable { to, .. } if to == "client99"),
    );
    let me = bob.id.clone();
    bob.message(&me, "still connected");
    assert_eq!(bob.recv_message().1, "still connected");
}

#[test]
fn a_message_to_an_unknown_id_sends_an_original_sender_nothing() {
    let server = TestServer::start();
    let mut old = Peer::join_original(server.addr, "old");
    old.message("client42", "to nobody\n");
    old.expect_silence(Duration::from_millis(200));
    let me = old.id.clone();
    old.message(&me, "to me\n");
    assert_eq!(old.recv_message().1, "to me\n");
}

#[test]
fn a_message_to_a_departed_client_is_refused_not_crashed() {
    let server = TestServer::start();
    let mut alice = Peer::join_hubchat(server.addr, "alice");
    let bob = Peer::join_original(server.addr, "bob");
    alice.recv_roster();
    let bob_id = bob.id.clone();
    drop(bob);
    assert_eq!(
        alice.recv(),
        ServerPacket::Disconnect { id: bob_id.clone() }
    );
    alice.message(&bob_id, "are you there?");
    assert!(matches!(alice.recv(), ServerPacket::Error(r) if r.code == ErrorCode::UnknownPartner));
}

/// Tries to join with `name`; returns what the server said before closing.
fn refused_join(server: &TestServer, name: &str, hubchat: bool) -> Vec<ServerPacket> {
    refused_info(server, info(name, hubchat))
}

/// Tries to join with this INFO; returns what the server said before closing.
fn refused_info(server: &TestServer, info: Info) -> Vec<ServerPacket> {
    let mut peer = Peer::connect(server.addr);
    assert_eq!(peer.recv(), ServerPacket::InfoRequest);
    peer.send(&ClientPacket::Info(info));
    peer.recv_until_closed()
}

#[test]
fn a_taken_name_is_refused_even_in_another_case() {
    let mut server = TestServer::start();
    let _alice = Peer::join_original(server.addr, "alice");
    for (name, hubchat) in [("alice", true), ("ALICE", true), ("  Alice ", false)] {
        let said = refused_join(&server, name, hubchat);
        match (hubchat, said.as_slice()) {
            (true, [ServerPacket::Error(r)]) => {
                assert_eq!(r.code, ErrorCode::NameTaken);
                assert_eq!(
                    r.message,
                    format!(
                        "The name \"{}\" is already taken. Choose another name.",
                        name.trim()
                    )
                );
            }
            (false, [ServerPacket::ServerClose { message }]) => {
                assert_eq!(
                    message,
                    "The name \"Alice\" is already taken. Choose another name."
                )
            }
            other => panic!("{other:?}"),
        }
    }
    server.wait_for("refusal logged", |e| {
        matches!(e, ServerEvent::Refused { name: Some(n), reason: LeaveReason::Refused { code: ErrorCode::NameTaken, .. }, .. } if n == "ALICE")
    });
    assert_eq!(server.client_count(), 1);
    assert_still_serves(&server);
}

#[test]
fn empty_and_over_long_names_are_refused_with_the_rule() {
    let server = TestServer::start();
    for (name, words) in [
        ("", "empty"),
        ("   ", "empty"),
        (&"n".repeat(33)[..], "at most 32"),
    ] {
        for hubchat in [true, false] {
            let said = refused_join(&server, name, hubchat);
            let message = match (hubchat, said.as_slice()) {
                (true, [ServerPacket::Error(r)]) if r.code == ErrorCode::NameInvalid => {
                    r.message.clone()
                }
                (false, [ServerPacket::ServerClose { message }]) => message.clone(),
                other => panic!("{other:?}"),
            };
            assert!(message.contains(words), "{name:?}: {message}");
        }
    }
    // Exactly 32 characters is fine.
    Peer::join_original(server.addr, &"n".repeat(32));
    assert_still_serves(&server);
}

#[test]
fn garbage_before_the_handshake_is_refused_with_server_close() {
    let mut server = TestServer::start();
    let mut peer = Peer::connect(server.addr);
    peer.recv();
    peer.send_raw(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    match peer.recv_until_closed().as_slice() {
        [ServerPacket::ServerClose { message }] => {
            assert!(message.contains("cannot read"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    server.wait_for("refused", |e| matches!(e, ServerEvent::Refused { .. }));
    assert_still_serves(&server);
}

#[test]
fn a_message_before_the_handshake_is_refused() {
    let server = TestServer::start();
    let mut peer = Peer::connect(server.addr);
    peer.recv();
    peer.message("client0", "hi");
    assert!(matches!(
        peer.recv_until_closed().as_slice(),
        [ServerPacket::ServerClose { .. }]
    ));
}

#[test]
fn a_client_that_connects_and_says_nothing_delays_no_one() {
    let mut server = TestServer::start_with(|c| c.handshake_timeout = Duration::from_millis(500));
    let mut silent: Vec<Peer> = (0..5).map(|_| Peer::connect(server.addr)).collect();
    // Others join at once, while the silent ones hold their connections.
    let started = std::time::Instant::now();
    assert_still_serves(&server);
    assert!(
        started.elapsed() < Duration::from_millis(400),
        "{:?}",
        started.elapsed()
    );
    // Each silent one is told and dropped when its handshake time runs out.
    for peer in &mut silent {
        let got = peer.recv_until_closed();
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0], ServerPacket::InfoRequest);
        assert!(
            matches!(&got[1], ServerPacket::ServerClose { message } if message.contains("in time"))
        );
    }
    server.wait_for("handshake timeout", |e| {
        matches!(
            e,
            ServerEvent::Refused {
                reason: LeaveReason::Refused {
                    code: ErrorCode::HandshakeTimeout,
                    ..
                },
                ..
            }
        )
    });
}

#[test]
fn unknown_flags_do_not_extend_the_handshake_deadline() {
    use std::io::Write;
    let server = TestServer::start_with(|c| c.handshake_timeout = Duration::from_millis(300));
    let mut peer = Peer::connect(server.addr);
    let started = std::time::Instant::now();
    let mut chatter = peer.stream.try_clone().unwrap();
    // Keeps sending unknown flags for 1.5 s; errors once closed are expected.
    let chatterer = std::thread::spawn(move || {
        for _ in 0..15 {
            let _ = chatter.write_all(&hubchat::common::frame::encode(br#"{"flag": "KEEPALIVE"}"#));
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    let got = peer.recv_until_closed();
    let closed_after = started.elapsed();
    assert!(
        matches!(
            got.as_slice(),
            [ServerPacket::InfoRequest, ServerPacket::ServerClose { .. }]
        ),
        "{got:?}"
    );
    assert!(
        closed_after < Duration::from_millis(1200),
        "closed after {closed_after:?}"
    );
    chatterer.join().unwrap();
}

/// The profiles no client may join with, and words of the sentence that
/// tells it why: a megabyte of colour or picture name would otherwise be
/// kept and copied into every other client's roster.
fn bad_profiles() -> Vec<(&'static str, Info, &'static str)> {
    let with = |f: &dyn Fn(&mut Info)| {
        let mut i = info("offender", true);
        f(&mut i);
        i
    };
    vec![
        (
            // Larger INFOs are refused as packets before INFO may be (4
            // KiB; tests/reading.rs): this is the largest that is read.
            "a 3,000-byte colour",
            with(&|i| i.color = "x".repeat(3_000)),
            "at most 32",
        ),
        (
            "a 33-character colour",
            with(&|i| i.color = "a".repeat(33)),
            "at most 32",
        ),
        (
            "a colour that is not one",
            with(&|i| i.color = "red; rm -rf /".into()),
            "is not a colour",
        ),
        (
            "a 3,000-byte picture name",
            with(&|i| i.image_name = "i".repeat(3_000)),
            "at most 64",
        ),
        (
            "a 65-character picture name",
            with(&|i| i.image_name = "i".repeat(65)),
            "at most 64",
        ),
        (
            "a picture name with a line break",
            with(&|i| i.image_name = "image_3.png\n".into()),
            "invisible",
        ),
    ]
}

#[test]
fn oversized_or_odd_colours_and_picture_names_are_refused_with_the_rule() {
    let mut server = TestServer::start();
    let mut old = Peer::join_original(server.addr, "old");
    let mut new = Peer::join_hubchat(server.addr, "new");
    old.recv_roster(); // new joined
    for (what, bad, words) in bad_profiles() {
        for hubchat in [true, false] {
            let mut offender = bad.clone();
            if !hubchat {
                offender.hubchat = None;
            }
            let message = match refused_info(&server, offender).as_slice() {
                [ServerPacket::Error(r)] if hubchat => {
                    assert_eq!(r.code, ErrorCode::ProfileInvalid, "{what}");
                    r.message.clone()
                }
                [ServerPacket::ServerClose { message }] if !hubchat => message.clone(),
                other => panic!("{what}, hubchat {hubchat}: {other:?}"),
            };
            assert!(message.contains(words), "{what}: {message}");
            assert!(message.len() < 200, "{what}: the sentence does not echo it");
        }
    }
    // The real picture a HubChat client names for HubChat peers has the
    // same limit as INFO's own.
    let mut long_real = info("offender", true);
    long_real.hubchat.as_mut().unwrap().image_name = Some("i".repeat(65));
    match refused_info(&server, long_real).as_slice() {
        [ServerPacket::Error(r)] => {
            assert_eq!(r.code, ErrorCode::ProfileInvalid);
            assert!(r.message.contains("at most 64"), "{}", r.message);
        }
        other => panic!("{other:?}"),
    }
    server.wait_for("refusal logged", |e| {
        matches!(
            e,
            ServerEvent::Refused {
                reason: LeaveReason::Refused {
                    code: ErrorCode::ProfileInvalid,
                    ..
                },
                ..
            }
        )
    });
    // Nobody joined, so the others were sent nothing at all.
    old.expect_silence(Duration::from_millis(100));
    new.expect_silence(Duration::from_millis(100));
    assert_eq!(server.client_count(), 2);
    assert_still_serves(&server);
}

#[test]
fn colours_and_picture_names_at_the_limits_are_accepted() {
    let server = TestServer::start();
    let mut at_limits = info("edge", true);
    at_limits.color = "a".repeat(32);
    at_limits.image_name = "é".repeat(64);
    let mut peer = Peer::connect(server.addr);
    peer.recv();
    peer.send(&ClientPacket::Info(at_limits));
    assert!(matches!(peer.recv(), ServerPacket::Welcome(_)));
    assert_eq!(peer.recv_roster().0[0].1.color, "a".repeat(32));
    assert_still_serves(&server);
}

#[test]
fn unknown_fields_in_info_are_neither_kept_nor_relayed() {
    let server = TestServer::start();
    let mut old = Peer::join_original(server.addr, "old");
    let mut new = Peer::join_hubchat(server.addr, "new");
    old.recv_roster();
    let mut chatty = Peer::connect(server.addr);
    chatty.recv();
    // Within the 4 KiB a packet may have before INFO is accepted.
    let padding = "z".repeat(1_500);
    chatty.send_body(
        format!(
            r#"{{"flag": "INFO", "data": {{"name": "chatty", "color": "blue", "image_name": "image_3.png", "mood": "{padding}", "hubchat": {{"version": 1, "extra": "{padding}"}}}}}}"#
        )
        .as_bytes(),
    );
    assert!(matches!(chatty.recv(), ServerPacket::Welcome(_)));
    let entry = r#"{"flag": "ALL CLIENTS", "data": {"client2": {"name": "chatty", "color": "blue", "image_name": "image_3.png"}}}"#;
    for peer in [&mut old, &mut new] {
        assert_eq!(
            wire(&String::from_utf8(peer.recv_body()).unwrap()),
            wire(entry)
        );
    }
}
