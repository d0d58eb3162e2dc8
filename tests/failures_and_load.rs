//! Clients that misbehave at the socket level (stop reading, vanish, leave
//! all at once) while others keep talking: nothing is lost, nobody is told
//! twice, and the server keeps serving.

mod support;

use std::collections::HashSet;
use std::io::Write;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use hubchat::common::packet::{ClientPacket, ServerPacket};
use hubchat::server::{LeaveReason, QueueLimits, ServerEvent};
use support::{Peer, TestServer};

/// Sends `count` numbered messages from `peer` to `to` in large writes.
fn send_numbered(stream: &mut std::net::TcpStream, to: &str, count: usize) {
    let mut burst = Vec::new();
    for i in 0..count {
        burst.extend(
            ClientPacket::Message {
                to: to.into(),
                text: format!("{i}\n"),
            }
            .encode(),
        );
        if burst.len() > 64 * 1024 || i + 1 == count {
            stream.write_all(&burst).unwrap();
            burst.clear();
        }
    }
}

/// Reads `count` messages and checks each arrived once, in order. Returns
/// the ids of clients whose departure was announced meanwhile.
fn receive_numbered(peer: &mut Peer, from: &str, count: usize) -> Vec<String> {
    let mut departed = Vec::new();
    for i in 0..count {
        loop {
            match peer.recv() {
                ServerPacket::Message { from: f, text, .. } => {
                    assert_eq!(f, from);
                    assert_eq!(text, format!("{i}\n"), "message {i} lost or out of order");
                    break;
                }
                ServerPacket::Disconnect { id } => departed.push(id),
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    departed
}

#[test]
fn a_client_that_never_reads_is_dropped_and_slows_no_one() {
    let mut server = TestServer::start_with(|c| {
        c.queue = QueueLimits {
            soft_bytes: 64 * 1024,
            hard_bytes: 1 << 20,
            grace: Duration::from_millis(500),
        }
    });
    let mut alice = Peer::join_hubchat(server.addr, "alice");
    let mut bob = Peer::join_hubchat(server.addr, "bob");
    let stalled = Peer::join_original(server.addr, "stalled");
    let flooder = Peer::join_hubchat(server.addr, "flooder");
    alice.recv_joins(3);
    bob.recv_joins(2);

    // The flooder fills the stalled client's queue far beyond what the
    // socket buffers absorb; it reads nothing itself, so errors telling it
    // the stalled client is gone just pile up in its socket.
    let flood = {
        let mut stream = flooder.stream.try_clone().unwrap();
        let to = stalled.id.clone();
        thread::spawn(move || {
            let text = "x".repeat(1000);
            let frame = ClientPacket::Message { to, text }.encode();
            for _ in 0..20_000 {
                if stream.write_all(&frame).is_err() {
                    break;
                }
            }
        })
    };

    // Meanwhile alice and bob exchange 100,000 messages.
    let n = 50_000;
    let (a_id, b_id) = (alice.id.clone(), bob.id.clone());
    let mut a_out = alice.stream.try_clone().unwrap();
    let mut b_out = bob.stream.try_clone().unwrap();
    let a_send = {
        let b_id = b_id.clone();
        thread::spawn(move || send_numbered(&mut a_out, &b_id, n))
    };
    let b_send = {
        let a_id = a_id.clone();
        thread::spawn(move || send_numbered(&mut b_out, &a_id, n))
    };
    let a_recv = thread::spawn(move || {
        let departed = receive_numbered(&mut alice, &b_id, n);
        (alice, departed)
    });
    receive_numbered(&mut bob, &a_id, n);
    let (mut alice, mut departed) = a_recv.join().unwrap();
    a_send.join().unwrap();
    b_send.join().unwrap();

    // The stalled client was dropped for not reading, and everyone was told.
    server.wait_for("stalled dropped", |e| {
        matches!(e, ServerEvent::Left { who, reason: LeaveReason::StoppedReading } if &*who.name == "stalled")
    });
    while !departed.contains(&stalled.id) {
        match alice.recv() {
            ServerPacket::Disconnect { id } => departed.push(id),
            other => panic!("unexpected {other:?}"),
        }
    }
    // Only the stalled client, and the flooder if its own unread errors
    // overflowed, may have left; each is announced once.
    departed.sort();
    let before = departed.len();
    departed.dedup();
    assert_eq!(before, departed.len(), "a departure was announced twice");
    assert!(
        departed
            .iter()
            .all(|id| *id == stalled.id || *id == flooder.id),
        "{departed:?}"
    );
    flood.join().unwrap();
    drop(stalled);
}

#[test]
fn a_client_that_vanishes_without_disconnect_is_removed_and_announced_once() {
    let mut server = TestServer::start();
    let mut watcher = Peer::join_original(server.addr, "watcher");
    // One closes cleanly without DISCONNECT; the other is reset, as when a
    // process is killed with data still unread in its socket.
    let quiet = Peer::join_original(server.addr, "quiet");
    let killed = Peer::join_original(server.addr, "killed");
    let (quiet_id, killed_id) = (quiet.id.clone(), killed.id.clone());
    watcher.recv_joins(2);
    let mut quiet = quiet;
    quiet.recv_roster(); // nothing left unread: its close is a clean one
    watcher.message(&killed_id, "you will never read this\n");
    thread::sleep(Duration::from_millis(50));
    drop(quiet);
    drop(killed);

    let mut gone = HashSet::new();
    while gone.len() < 2 {
        match watcher.recv() {
            ServerPacket::Disconnect { id } => assert!(gone.insert(id), "told twice"),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(gone, HashSet::from([quiet_id, killed_id]));
    watcher.expect_silence(Duration::from_millis(200));
    server.wait_for_count(1);
    let reasons: Vec<LeaveReason> = server
        .events_so_far()
        .iter()
        .filter_map(|e| match &e.what {
            ServerEvent::Left { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(
        reasons.contains(&LeaveReason::ClosedConnection),
        "{reasons:?}"
    );
}

#[test]
fn two_hundred_clients_leaving_at_the_same_moment_are_each_announced_once() {
    let mut server = TestServer::start();
    let mut watchers: Vec<Peer> = (0..5)
        .map(|i| Peer::join_original(server.addr, &format!("watcher{i}")))
        .collect();
    let leavers: Vec<Peer> = (0..200)
        .map(|i| Peer::join_original(server.addr, &format!("leaver{i}")))
        .collect();
    let leaver_ids: HashSet<String> = leavers.iter().map(|p| p.id.clone()).collect();
    // Watchers first hear of every joiner after them.
    for (i, w) in watchers.iter_mut().enumerate() {
        w.recv_joins((4 - i) + 200);
    }

    // Half say DISCONNECT, half just close; all at the same moment.
    let barrier = Arc::new(Barrier::new(leavers.len()));
    let threads: Vec<_> = leavers
        .into_iter()
        .enumerate()
        .map(|(i, mut peer)| {
            let barrier = barrier.clone();
            thread::spawn(move || {
                barrier.wait();
                if i % 2 == 0 {
                    peer.send(&ClientPacket::Disconnect);
                }
                drop(peer);
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }

    for w in &mut watchers {
        let mut told = HashSet::new();
        while told.len() < 200 {
            match w.recv() {
                ServerPacket::Disconnect { id } => {
                    assert!(told.insert(id.clone()), "{id} announced twice")
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(told, leaver_ids);
        w.expect_silence(Duration::from_millis(100));
    }
    server.wait_for_count(5);
    let left = server
        .events_so_far()
        .iter()
        .filter(|e| matches!(e.what, ServerEvent::Left { .. }))
        .count();
    assert_eq!(left, 200);
    // And newcomers are served at once.
    let mut late = Peer::join_hubchat(server.addr, "late");
    let me = late.id.clone();
    late.message(&me, "hello?");
    assert_eq!(late.recv_message().1, "hello?");
}
