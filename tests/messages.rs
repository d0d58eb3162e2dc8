//! Limits on what one client may send: how long a message may be, and how
//! fast messages may come. Against a real server on loopback.

mod support;

use std::io::{ErrorKind, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use hubchat::common::connection::FrameReader;
use hubchat::common::packet::{ClientPacket, ErrorCode, ServerPacket};
use hubchat::server::{
    Limit, MessageRate, QueueLimits, ServerConfig, ServerEvent, DEFAULT_MAX_MESSAGE,
};
use support::{info, Peer, TestServer};

/// A server with the default limits on messages (the test server lifts the
/// rate limit unless told otherwise).
fn limited() -> TestServer {
    TestServer::start_with(|c| c.message_rate = Some(MessageRate::DEFAULT))
}

/// Reads until an ERROR arrives, skipping roster news; panics on a message.
fn next_error(peer: &mut Peer) -> (ErrorCode, String) {
    loop {
        match peer.recv() {
            ServerPacket::Error(e) => return (e.code, e.message),
            ServerPacket::AllClients(_) | ServerPacket::Disconnect { .. } => continue,
            other => panic!("expected ERROR, got {other:?}"),
        }
    }
}

#[test]
fn welcome_tells_hubchat_clients_the_longest_message_relayed() {
    let server = TestServer::start_with(|c| c.max_message = 1000);
    let mut peer = Peer::connect(server.addr);
    assert_eq!(peer.recv(), ServerPacket::InfoRequest);
    peer.send(&ClientPacket::Info(info("alice", true)));
    match peer.recv() {
        ServerPacket::Welcome(w) => assert_eq!(w.max_message, Some(1000)),
        other => panic!("expected WELCOME, got {other:?}"),
    }
    assert_eq!(DEFAULT_MAX_MESSAGE, 64 * 1024);
    assert_eq!(
        ServerConfig::new(server.addr).max_message,
        DEFAULT_MAX_MESSAGE
    );
}

#[test]
fn a_hubchat_sender_is_told_its_message_is_too_long_and_stays_connected() {
    let server = TestServer::start();
    let mut alice = Peer::join_hubchat(server.addr, "alice");
    let mut bob = Peer::join_hubchat(server.addr, "bob");
    alice.recv_roster();

    alice.message(&bob.id, &"é".repeat(DEFAULT_MAX_MESSAGE / 2 + 1));
    let (code, sentence) = next_error(&mut alice);
    assert_eq!(code, ErrorCode::MessageTooLong);
    assert!(sentence.contains("65536 bytes"), "{sentence}");

    // The longest allowed passes, and the connection carries on.
    let longest = "x".repeat(DEFAULT_MAX_MESSAGE);
    alice.message(&bob.id, &longest);
    alice.message(&bob.id, "still here\n");
    assert_eq!(bob.recv_message(), (alice.id.clone(), longest));
    assert_eq!(
        bob.recv_message(),
        (alice.id.clone(), "still here\n".into())
    );
}

#[test]
fn an_original_senders_too_long_message_is_dropped_and_it_stays_connected() {
    let server = TestServer::start();
    let mut carol = Peer::join_original(server.addr, "carol");
    let mut bob = Peer::join_hubchat(server.addr, "bob");
    carol.recv_roster();

    carol.message(&bob.id, &"y".repeat(DEFAULT_MAX_MESSAGE + 1));
    carol.message(&bob.id, "after\n");
    assert_eq!(bob.recv_message(), (carol.id.clone(), "after\n".into()));
    // The original protocol has no ERROR: carol hears nothing about it.
    carol.expect_silence(Duration::from_millis(200));
}

/// How long the flood lasts.
const FLOOD_FOR: Duration = Duration::from_secs(3);

/// Sends numbered messages to `to` as fast as the socket takes them, for
/// [`FLOOD_FOR`]; stops by itself. Returns how many were written whole.
fn flood(mut stream: TcpStream, to: String) -> usize {
    stream
        .set_write_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let end = Instant::now() + FLOOD_FOR;
    let (mut sent, mut batch) = (0, Vec::new());
    while Instant::now() < end {
        batch.clear();
        for i in sent..sent + 500 {
            batch.extend(
                ClientPacket::Message {
                    to: to.clone(),
                    text: format!("{i} {}\n", "f".repeat(60)),
                }
                .encode(),
            );
        }
        match stream.write_all(&batch) {
            Ok(()) => sent += 500,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(_) => break,
        }
    }
    sent
}

/// What the victim saw: the flood's messages, in order, and whether the
/// server cut it off.
struct Victim {
    numbers: Vec<usize>,
    /// Messages received while the flood lasted.
    during_flood: usize,
    cut_off: bool,
}

/// Reads steadily, about a thousand messages a second (a person's window
/// does far less), until `until`; keeps the flood's message numbers.
fn read_steadily(stream: TcpStream, until: Instant, flood_ends: Instant) -> Victim {
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut reader = FrameReader::new(stream, 1 << 20);
    let mut seen = Victim {
        numbers: Vec::new(),
        during_flood: 0,
        cut_off: false,
    };
    while Instant::now() < until {
        match reader.read_frame() {
            Ok(Some(body)) => match ServerPacket::decode(body) {
                Ok(ServerPacket::Message { text, .. }) => {
                    let n = text.split(' ').next().and_then(|n| n.parse().ok());
                    seen.numbers.push(n.expect("a numbered message"));
                    seen.during_flood += usize::from(Instant::now() < flood_ends);
                }
                Ok(ServerPacket::ServerClose { .. }) => seen.cut_off = true,
                _ => {}
            },
            Ok(None) => {
                seen.cut_off = true;
                break;
            }
            Err(_) => continue,
        }
        thread::sleep(Duration::from_millis(1));
    }
    seen
}

/// The next message, skipping news of departures (checked afterwards).
fn chat(peer: &mut Peer) -> (String, String) {
    loop {
        match peer.recv() {
            ServerPacket::Message { from, text, .. } => return (from, text),
            ServerPacket::Disconnect { .. } => continue,
            other => panic!("expected MESSAGE, got {other:?}"),
        }
    }
}

#[test]
fn a_flooder_is_slowed_and_its_reading_victim_stays_connected_while_others_talk() {
    // Small queues, so a victim falling behind would be dropped in a moment.
    let mut server = TestServer::start_with(|c| {
        c.message_rate = Some(MessageRate::DEFAULT);
        c.queue = QueueLimits {
            soft_bytes: 64 * 1024,
            hard_bytes: 256 * 1024,
            grace: Duration::from_millis(300),
        };
    });
    let mut flooder = Peer::join_hubchat(server.addr, "flooder");
    let mut alice = Peer::join_hubchat(server.addr, "alice");
    let mut bob = Peer::join_hubchat(server.addr, "bob");
    let victim = Peer::join_hubchat(server.addr, "victim");
    alice.recv_joins(2);
    bob.recv_roster();

    let start = Instant::now();
    let flood_ends = start + FLOOD_FOR;
    let flooding = {
        let (stream, to) = (flooder.stream.try_clone().unwrap(), victim.id.clone());
        thread::spawn(move || flood(stream, to))
    };
    let reading = {
        let stream = victim.stream.try_clone().unwrap();
        thread::spawn(move || {
            read_steadily(stream, flood_ends + Duration::from_secs(1), flood_ends)
        })
    };

    // Meanwhile alice writes to bob ten times a second, and each arrives
    // promptly.
    for i in 0..25 {
        let sent = Instant::now();
        alice.message(&bob.id, &format!("hello {i}\n"));
        assert_eq!(chat(&mut bob), (alice.id.clone(), format!("hello {i}\n")));
        assert!(
            sent.elapsed() < Duration::from_millis(500),
            "message {i} took {:?}",
            sent.elapsed()
        );
        thread::sleep(Duration::from_millis(100));
    }

    let written = flooding.join().unwrap();
    let seen = reading.join().unwrap();
    assert!(
        !seen.cut_off,
        "the victim was cut off after {} messages",
        seen.numbers.len()
    );
    let in_order: Vec<usize> = (0..seen.numbers.len()).collect();
    assert_eq!(
        seen.numbers, in_order,
        "the victim got the flood in order, nothing skipped"
    );
    // The flood went through at the sender's rate: its burst, then about 20
    // a second (with room for a slow machine), far below what it wrote.
    let allowed = 50.0 + 20.0 * FLOOD_FOR.as_secs_f64() * 1.5;
    assert!(
        seen.during_flood >= 50,
        "the burst passes at once: {}",
        seen.during_flood
    );
    assert!(
        (seen.during_flood as f64) < allowed,
        "{} of {written} relayed during the flood",
        seen.during_flood
    );
    assert!(
        written > 2 * seen.numbers.len(),
        "the flooder wrote {written}"
    );

    // The flooder was told why it is slowed; the victim is still listed.
    assert_eq!(next_error(&mut flooder).0, ErrorCode::RateLimited);
    let left = server
        .events_so_far()
        .iter()
        .any(|e| matches!(&e.what, ServerEvent::Left { who, .. } if &*who.name == "victim"));
    assert!(!left, "the victim was dropped");
    drop(victim);
}

#[test]
fn an_original_flooder_is_slowed_without_being_told() {
    let server = limited();
    let mut flooder = Peer::join_original(server.addr, "flooder");
    let mut bob = Peer::join_hubchat(server.addr, "bob");
    flooder.recv_roster();

    let start = Instant::now();
    for i in 0..70 {
        flooder.message(&bob.id, &format!("{i}\n"));
    }
    for i in 0..70 {
        assert_eq!(bob.recv_message(), (flooder.id.clone(), format!("{i}\n")));
    }
    // 50 at once, then 20 more at 20 a second: about a second.
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(900), "took {took:?}");
    flooder.expect_silence(Duration::from_millis(100));
}

#[test]
fn a_receiver_that_stops_reading_is_still_dropped_with_the_rate_limit_on() {
    let mut server = TestServer::start_with(|c| {
        c.message_rate = Some(MessageRate::DEFAULT);
        c.queue = QueueLimits {
            soft_bytes: 64 * 1024,
            hard_bytes: 256 * 1024,
            grace: Duration::from_millis(300),
        };
    });
    let stalled = Peer::join_original(server.addr, "stalled");
    let senders: Vec<Peer> = (0..2)
        .map(|i| Peer::join_hubchat(server.addr, &format!("sender{i}")))
        .collect();

    // Each sender within its rate: bursts of 1 MiB, then 128 KiB a second,
    // in the longest messages allowed. They stop once `stalled` is gone.
    let floods: Vec<_> = senders
        .iter()
        .map(|s| {
            let (mut stream, to) = (s.stream.try_clone().unwrap(), stalled.id.clone());
            thread::spawn(move || {
                stream
                    .set_write_timeout(Some(Duration::from_millis(100)))
                    .unwrap();
                let frame = ClientPacket::Message {
                    to,
                    text: "s".repeat(DEFAULT_MAX_MESSAGE),
                }
                .encode();
                let end = Instant::now() + Duration::from_secs(8);
                while Instant::now() < end {
                    if matches!(stream.write_all(&frame), Err(e) if e.kind() != ErrorKind::WouldBlock && e.kind() != ErrorKind::TimedOut) {
                        break;
                    }
                }
            })
        })
        .collect();

    server.wait_for("the receiver that stopped reading is dropped", |e| {
        matches!(e, ServerEvent::Left { who, reason: hubchat::server::LeaveReason::StoppedReading } if &*who.name == "stalled")
    });
    drop(senders);
    for f in floods {
        f.join().unwrap();
    }
    drop(stalled);
}

#[test]
fn stopping_the_server_does_not_wait_for_a_slowed_sender() {
    let mut server = limited();
    let flooder = Peer::join_hubchat(server.addr, "flooder");
    let bob = Peer::join_hubchat(server.addr, "bob");
    let flooding = {
        let (stream, to) = (flooder.stream.try_clone().unwrap(), bob.id.clone());
        thread::spawn(move || flood(stream, to))
    };
    // Let the burst pass and the pacing begin. Bob leaves (a client told
    // SERVER CLOSE would close, but this one does not read).
    thread::sleep(Duration::from_millis(300));
    drop(bob);
    thread::sleep(Duration::from_millis(200));
    let stopping = Instant::now();
    server.stop();
    assert!(
        stopping.elapsed() < Duration::from_secs(2),
        "stopping took {:?}",
        stopping.elapsed()
    );
    flooding.join().unwrap();
    drop(flooder);
}

/// The `count` of a limit event for alice, if `e` is one of `kind`.
fn alice_held(e: &ServerEvent, kind: fn(&Limit) -> bool) -> Option<u64> {
    match e {
        ServerEvent::Limited { who, limit, count } if &*who.name == "alice" && kind(limit) => {
            Some(*count)
        }
        _ => None,
    }
}

#[test]
fn slowed_and_refused_sending_is_logged_once_a_while_with_counts() {
    let mut srv = limited();
    let mut alice = Peer::join_hubchat(srv.addr, "alice");
    let bob = Peer::join_hubchat(srv.addr, "bob");

    alice.message(&bob.id, &"x".repeat(DEFAULT_MAX_MESSAGE + 1));
    let too_long = srv.wait_for("the refused message logged", |e| {
        alice_held(e, |l| matches!(l, Limit::TooLong { .. })).is_some()
    });
    let ServerEvent::Limited { limit, count, .. } = too_long else {
        unreachable!()
    };
    assert_eq!(
        (limit, count),
        (
            Limit::TooLong {
                bytes: DEFAULT_MAX_MESSAGE + 1,
                max: DEFAULT_MAX_MESSAGE
            },
            1
        )
    );

    // Far past the burst of 50: slowed on each message after it, logged
    // once (the next line may come only 5 s later).
    for k in 0..120 {
        alice.message(&bob.id, &format!("{k}"));
    }
    let slowed = |l: &Limit| matches!(l, Limit::MessageRate { per_second: 20 });
    srv.wait_for("the slowing logged", |e| alice_held(e, slowed).is_some());
    thread::sleep(Duration::from_secs(1));
    let lines = srv
        .events_so_far()
        .iter()
        .filter(|e| alice_held(&e.what, slowed).is_some())
        .count();
    assert_eq!(lines, 1, "one line, not one per message");

    // Leaving logs what was counted since: every slowed message is in a count.
    alice.send(&ClientPacket::Disconnect);
    srv.wait_for(
        "alice gone",
        |e| matches!(e, ServerEvent::Left { who, .. } if &*who.name == "alice"),
    );
    let counted: u64 = srv
        .events_so_far()
        .iter()
        .filter_map(|e| alice_held(&e.what, slowed))
        .sum();
    assert!(
        (60..=120).contains(&counted),
        "about 70 of 120 messages slowed, all counted: {counted}"
    );
    let line = hubchat::server::log::describe(
        &ServerEvent::Limited {
            who: bob_party(),
            limit: Limit::MessageRate { per_second: 20 },
            count: 70,
        },
        hubchat::server::log::MessageText::Shown,
    );
    assert_eq!(
        line,
        "bob (client1) was slowed: over 20 messages a second (70 times since the last such line)"
    );
}

fn bob_party() -> hubchat::server::Party {
    hubchat::server::Party {
        id: "client1".into(),
        name: "bob".into(),
        color: "blue".into(),
    }
}
