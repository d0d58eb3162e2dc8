//! The hub server's behaviour, spoken to over real sockets on loopback.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use hubchat::common::packet::{
    ClientPacket, ErrorCode, Info, Roster, ServerPacket, PROTOCOL_VERSION,
};
use hubchat::server::{Events, LeaveReason, Server, ServerConfig, ServerEvent, StartError};
use support::{info, wire, Peer, TestServer};

#[test]
fn a_new_connection_is_asked_for_its_information_first() {
    let server = TestServer::start();
    let mut raw = TcpStream::connect(server.addr).unwrap();
    raw.set_read_timeout(Some(support::PATIENCE)).unwrap();
    let expected = wire(r#"{"flag": "INFO", "data": "Send your information!"}"#);
    let mut got = vec![0u8; expected.len()];
    raw.read_exact(&mut got).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(&expected)
    );
}

#[test]
fn the_newcomer_gets_everyone_and_the_others_get_only_the_newcomer() {
    let server = TestServer::start();
    let mut alice = Peer::join_original(server.addr, "alice");
    let mut bob = Peer::join_original(server.addr, "bob");
    let carol = Peer::join_hubchat(server.addr, "carol");

    let names = |roster: hubchat::common::packet::Roster| -> Vec<(String, String)> {
        roster.0.into_iter().map(|(id, p)| (id, p.name)).collect()
    };
    // Alice hears of bob, then of carol (in one roster if they joined
    // within moments of each other), and of nobody twice.
    assert_eq!(
        names(Roster(alice.recv_joins(2))),
        [
            (bob.id.clone(), "bob".into()),
            (carol.id.clone(), "carol".into())
        ]
    );
    assert_eq!(
        names(bob.recv_roster()),
        [(carol.id.clone(), "carol".into())]
    );
    // Ids count joins from zero, as the original's do.
    assert_eq!(
        [&alice.id, &bob.id, &carol.id],
        ["client0", "client1", "client2"]
    );
}

#[test]
fn a_hubchat_client_is_welcomed_with_its_id_and_the_servers_limits() {
    let server = TestServer::start();
    let mut peer = Peer::connect(server.addr);
    assert_eq!(peer.recv(), ServerPacket::InfoRequest);
    peer.send(&ClientPacket::Info(info("dora", true)));
    match peer.recv() {
        ServerPacket::Welcome(w) => {
            assert_eq!(w.id, "client0");
            assert_eq!(w.max_packet, 1 << 20);
            assert_eq!(w.version, PROTOCOL_VERSION);
        }
        other => panic!("expected WELCOME, got {other:?}"),
    }
    assert!(matches!(peer.recv(), ServerPacket::AllClients(_)));
}

#[test]
fn messages_are_relayed_both_ways_stamped_with_the_senders_id() {
    let mut server = TestServer::start();
    let mut alice = Peer::join_hubchat(server.addr, "alice");
    let mut bob = Peer::join_original(server.addr, "bob");
    alice.recv_roster();

    alice.message(&bob.id, "hi bob\n");
    assert_eq!(bob.recv_message(), (alice.id.clone(), "hi bob\n".into()));
    bob.message(&alice.id, "hi alice\n");
    assert_eq!(alice.recv_message(), (bob.id.clone(), "hi alice\n".into()));

    let relayed = server.wait_for(
        "message relayed",
        |e| matches!(e, ServerEvent::Relayed { text, .. } if text == "hi bob\n"),
    );
    let ServerEvent::Relayed { from, to, .. } = relayed else {
        unreachable!()
    };
    assert_eq!((&*from.name, &*to.name), ("alice", "bob"));
}

#[test]
fn a_client_cannot_pose_as_another() {
    let server = TestServer::start();
    let mut alice = Peer::join_original(server.addr, "alice");
    let mut bob = Peer::join_original(server.addr, "bob");
    let _carol = Peer::join_original(server.addr, "carol");
    alice.recv_joins(2);
    bob.recv_roster();
    // Alice claims to be carol (client2).
    let forged = format!(
        r#"{{"flag": "MESSAGE", "data": {{"message": "from carol, honest\n", "partner_name": "{}", "source_client": "client2"}}}}"#,
        bob.id
    );
    alice.send_body(forged.as_bytes());
    assert_eq!(bob.recv_message().0, alice.id);
}

#[test]
fn original_clients_get_text_ending_in_a_newline_and_hubchat_clients_get_it_verbatim() {
    let server = TestServer::start();
    let mut old = Peer::join_original(server.addr, "old");
    let mut new = Peer::join_hubchat(server.addr, "new");
    old.recv_roster();
    new.message(&old.id, "no newline");
    assert_eq!(old.recv_message().1, "no newline\n");
    old.message(&new.id, "typed\n");
    assert_eq!(new.recv_message().1, "typed\n");
    let me = new.id.clone();
    new.message(&me, "to myself");
    assert_eq!(new.recv_message().1, "to myself");
}

#[test]
fn original_clients_only_see_pictures_and_colours_they_have() {
    let server = TestServer::start();
    let mut old = Peer::join_original(server.addr, "old");
    let mut fancy = Peer::connect(server.addr);
    fancy.recv();
    fancy.send(&ClientPacket::Info(Info {
        name: "fancy".into(),
        color: "hotpink".into(),
        image_name: "custom-avatar-7f3a.png".into(),
        hubchat: info("x", true).hubchat,
    }));
    fancy.recv(); // WELCOME
    let own = fancy.recv_roster();
    // HubChat peers see the profile as given...
    assert_eq!(own.0[1].1.image_name, "custom-avatar-7f3a.png");
    assert_eq!(own.0[1].1.color, "hotpink");
    // ...original peers a picture and colour they can display.
    let seen = old.recv_roster();
    assert_eq!(seen.0[0].1.image_name, "image_1.png");
    assert_eq!(seen.0[0].1.color, "gray");
    // And in fancy's full roster, old's entry is unchanged.
    assert_eq!(own.0[0].1.image_name, "image_3.png");
}

#[test]
fn a_client_that_says_disconnect_is_announced_to_the_others_once() {
    let mut server = TestServer::start();
    let mut alice = Peer::join_original(server.addr, "alice");
    let mut bob = Peer::join_original(server.addr, "bob");
    let mut carol = Peer::join_original(server.addr, "carol");
    alice.recv_joins(2);
    bob.recv_roster();

    bob.send(&ClientPacket::Disconnect);
    assert_eq!(bob.recv_until_closed(), []);
    for peer in [&mut alice, &mut carol] {
        assert_eq!(
            peer.recv(),
            ServerPacket::Disconnect {
                id: "client1".into()
            }
        );
        peer.expect_silence(Duration::from_millis(100));
    }
    let left = server.wait_for("bob left", |e| matches!(e, ServerEvent::Left { .. }));
    assert!(matches!(
        left,
        ServerEvent::Left {
            reason: LeaveReason::SaidGoodbye,
            ..
        }
    ));
    server.wait_for_count(2);
}

#[test]
fn a_departed_name_can_be_taken_again_under_a_new_id() {
    let server = TestServer::start();
    let mut alice = Peer::join_original(server.addr, "alice");
    alice.send(&ClientPacket::Disconnect);
    alice.recv_until_closed();
    server.wait_for_count(0);
    let again = Peer::join_original(server.addr, "Alice");
    assert_eq!(again.id, "client1");
}

#[test]
fn stopping_sends_server_close_to_everyone_and_frees_the_port_for_a_restart() {
    let mut server = TestServer::start();
    let addr = server.addr;
    let mut alice = Peer::join_original(addr, "alice");
    let mut bob = Peer::join_hubchat(addr, "bob");
    alice.recv_roster();
    let mut lurker = Peer::connect(addr); // still in its handshake
    assert_eq!(lurker.recv(), ServerPacket::InfoRequest);

    server.stop();
    let close = ServerPacket::ServerClose {
        message: "Server is closing...".into(),
    };
    for peer in [&mut alice, &mut bob, &mut lurker] {
        assert_eq!(peer.recv_until_closed(), std::slice::from_ref(&close));
    }
    server.wait_for("stopped", |e| matches!(e, ServerEvent::Stopped));

    // Same process, same port: starting again works.
    let events = Events::new();
    let again = Server::start(ServerConfig::new(addr), events).expect("the port is free again");
    let carol = Peer::join_original(addr, "carol");
    assert_eq!(carol.id, "client0");
    again.stop();
}

#[test]
fn stopping_does_not_wait_forever_for_a_client_that_never_closes() {
    let mut server = TestServer::start();
    let mut stubborn = Peer::join_original(server.addr, "stubborn");
    let started = std::time::Instant::now();
    server.stop();
    // The client never closes its end; the server cuts it after a linger.
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(matches!(stubborn.recv(), ServerPacket::ServerClose { .. }));
}

#[test]
fn a_frame_written_one_byte_at_a_time_is_understood() {
    let server = TestServer::start();
    let mut alice = Peer::join_original(server.addr, "alice");
    let mut bob = Peer::join_original(server.addr, "bob");
    alice.recv_roster();
    alice.stream.set_nodelay(true).unwrap();
    let frame = ClientPacket::Message {
        to: bob.id.clone(),
        text: "slowly, byte by byte ✓\n".into(),
    }
    .encode();
    for byte in &frame {
        alice.send_raw(std::slice::from_ref(byte));
        std::thread::sleep(Duration::from_micros(200));
    }
    assert_eq!(bob.recv_message().1, "slowly, byte by byte ✓\n");
}

#[test]
fn many_frames_in_one_write_are_each_relayed_in_order() {
    let server = TestServer::start();
    let mut alice = Peer::join_original(server.addr, "alice");
    let mut bob = Peer::join_original(server.addr, "bob");
    alice.recv_roster();
    let burst: Vec<u8> = (0..1000)
        .flat_map(|i| {
            ClientPacket::Message {
                to: bob.id.clone(),
                text: format!("{i}\n"),
            }
            .encode()
        })
        .collect();
    alice.send_raw(&burst);
    for i in 0..1000 {
        assert_eq!(bob.recv_message().1, format!("{i}\n"));
    }
}

#[test]
fn joins_and_leaves_are_reported_with_address_and_reason() {
    let mut server = TestServer::start();
    let alice = Peer::join_hubchat(server.addr, "alice");
    let local = alice.stream.local_addr().unwrap();
    let joined = server.wait_for("alice joined", |e| matches!(e, ServerEvent::Joined { .. }));
    let ServerEvent::Joined {
        who,
        addr,
        hubchat,
        image_name,
        identity,
    } = joined
    else {
        unreachable!()
    };
    assert_eq!(
        (&*who.name, &*who.id, addr, hubchat, identity),
        ("alice", "client0", local, true, None)
    );
    assert_eq!(image_name, "image_3.png");
    drop(alice);
    let left = server.wait_for("alice left", |e| matches!(e, ServerEvent::Left { .. }));
    assert!(matches!(
        left,
        ServerEvent::Left {
            reason: LeaveReason::ClosedConnection,
            ..
        }
    ));
}

#[test]
fn the_server_serves_ipv6_clients() {
    let config = ServerConfig::new("[::1]:0".parse().unwrap());
    let server = match Server::start(config, Events::new()) {
        Ok(server) => server,
        Err(StartError::AddressNotAvailable { .. }) => {
            eprintln!("skipped: this machine has no IPv6 loopback");
            return;
        }
        Err(e) => panic!("{e}"),
    };
    let addr = server.local_addr();
    let mut alice = Peer::join_original(addr, "alice");
    let mut bob = Peer::join_hubchat(addr, "bob");
    alice.recv_roster();
    bob.message(&alice.id, "over v6");
    assert_eq!(alice.recv_message().1, "over v6\n");
    server.stop();
}

#[test]
fn starting_on_a_port_in_use_says_so_in_plain_words() {
    let server = TestServer::start();
    let err = Server::start(ServerConfig::new(server.addr), Events::new())
        .err()
        .expect("second bind fails");
    assert!(matches!(err, StartError::PortInUse { .. }));
    assert_eq!(
        err.to_string(),
        format!(
            "Port {} is already used by another program. Choose another port, or stop that program.",
            server.addr.port()
        )
    );
}

#[test]
fn starting_on_an_address_this_machine_lacks_says_so() {
    // 192.0.2.1 is reserved for documentation: no machine has it, and a
    // failed bind sends nothing anywhere.
    let err = Server::start(
        ServerConfig::new("192.0.2.1:0".parse().unwrap()),
        Events::new(),
    )
    .err()
    .expect("bind fails");
    assert!(
        matches!(err, StartError::AddressNotAvailable { .. }),
        "{err:?}"
    );
    assert!(err
        .to_string()
        .starts_with("This machine has no address 192.0.2.1."));
}

#[test]
fn a_full_server_refuses_newcomers_with_a_reason() {
    let server = TestServer::start_with(|c| c.max_clients = 2);
    let _a = Peer::join_original(server.addr, "a");
    let _b = Peer::join_original(server.addr, "b");
    let mut c = Peer::connect(server.addr);
    c.recv();
    c.send(&ClientPacket::Info(info("c", true)));
    match c.recv_until_closed().as_slice() {
        [ServerPacket::Error(report)] => assert_eq!(report.code, ErrorCode::ServerFull),
        other => panic!("expected one ERROR, got {other:?}"),
    }
}

#[test]
fn a_closed_stdout_style_consumer_never_blocks_the_relay() {
    // Nobody drains these events: the relay must still go at full speed and
    // the queue must stay bounded.
    let mut server = TestServer::start();
    let mut alice = Peer::join_original(server.addr, "alice");
    let mut bob = Peer::join_original(server.addr, "bob");
    alice.recv_roster();
    let n = 30_000;
    let writer = {
        let mut stream = alice.stream.try_clone().unwrap();
        let to = bob.id.clone();
        std::thread::spawn(move || {
            let frame = ClientPacket::Message {
                to,
                text: "x\n".into(),
            }
            .encode();
            let burst: Vec<u8> = frame
                .iter()
                .copied()
                .cycle()
                .take(frame.len() * n)
                .collect();
            stream.write_all(&burst).unwrap();
        })
    };
    for _ in 0..n {
        bob.recv_message();
    }
    writer.join().unwrap();
    let events = server.events_so_far();
    let relayed = events
        .iter()
        .filter(|e| matches!(e.what, ServerEvent::Relayed { .. }))
        .count();
    let skipped: u64 = events
        .iter()
        .map(|e| match e.what {
            ServerEvent::Skipped { count } => count,
            _ => 0,
        })
        .sum();
    assert_eq!(relayed as u64 + skipped, n as u64);
    assert!(relayed <= hubchat::server::event::MAX_PENDING_RELAYED);
}
