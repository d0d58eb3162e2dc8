//! How the server reads from people it cannot trust, and how many of them it
//! lets in: memory follows the bytes that arrived, deadlines that a trickle
//! of bytes cannot stretch, and connections shared out so that one address
//! cannot take them all.
//!
//! Every test here runs a real server on 127.0.0.1. Some measure the
//! process's memory or time a deadline, so they run one at a time.

mod support;

use hubchat::load::attack_net;
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use hubchat::common::packet::{ClientPacket, ErrorCode, ServerPacket};
use hubchat::server::capacity::HANDSHAKE_GRACE;
use hubchat::server::{LeaveReason, ServerEvent};
use support::{info, Peer, TestServer};

/// Held by each test: memory and timing are measured undisturbed.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn alone() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The process's resident memory, in bytes (the server runs in it).
fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status");
    kb * 1024
}

/// A connection to `server` from 127.0.0.2: loopback too, but another
/// address to the server (the load tool's own bound connect).
fn connect_from_newcomer(server: SocketAddr) -> TcpStream {
    attack_net::connect_from(attack_net::Source::Newcomer, server).expect("connect from 127.0.0.2")
}

/// Writes `bytes` one at a time, `gap` apart, until done or the server
/// closes; runs on its own thread.
fn trickle(stream: &TcpStream, bytes: Vec<u8>, gap: Duration) -> thread::JoinHandle<()> {
    let mut stream = stream.try_clone().expect("clone the socket");
    thread::spawn(move || {
        for byte in bytes {
            if stream.write_all(&[byte]).is_err() {
                return;
            }
            thread::sleep(gap);
        }
    })
}

/// The one SERVER CLOSE a refused connection gets before it is closed.
fn closed_with(peer: &mut Peer) -> String {
    match peer.recv_until_closed().as_slice() {
        [.., ServerPacket::ServerClose { message }] => message.clone(),
        other => panic!("expected SERVER CLOSE then a close, got {other:?}"),
    }
}

#[test]
fn before_its_info_a_client_may_send_only_small_packets() {
    let _alone = alone();
    let server = TestServer::start();
    let mut peer = Peer::connect(server.addr);
    assert_eq!(peer.recv(), ServerPacket::InfoRequest);
    peer.send_raw(b"1000000   ");
    let message = closed_with(&mut peer);
    assert!(
        message.contains("1000000") && message.contains("4096"),
        "{message}"
    );
}

#[test]
fn headers_announcing_a_megabyte_cost_the_server_only_the_bytes_that_arrived() {
    let _alone = alone();
    const CLIENTS: usize = 300;
    let server = TestServer::start();
    let mut peers: Vec<Peer> = (0..CLIENTS)
        .map(|i| Peer::join_original(server.addr, &format!("slow{i}")))
        .collect();
    let before = resident_bytes();
    // Each announces 1,000,000 bytes (within the 1 MiB limit for joined
    // clients) and sends one of them.
    for peer in &mut peers {
        peer.send_raw(b"1000000   {");
    }
    thread::sleep(Duration::from_millis(1500));
    let grown = resident_bytes().saturating_sub(before);
    eprintln!(
        "{CLIENTS} slow headers grew the process by {} KB",
        grown >> 10
    );
    assert!(
        grown < 40 << 20,
        "{CLIENTS} headers of 1,000,000 bytes with 1 byte each grew the process by {} MB",
        grown >> 20
    );
    assert_eq!(server.client_count(), CLIENTS, "they are still connected");
}

#[test]
fn a_handshake_trickled_a_byte_at_a_time_is_dropped_at_its_deadline() {
    let _alone = alone();
    let mut server = TestServer::start_with(|c| c.handshake_timeout = Duration::from_secs(1));
    let mut peer = Peer::connect(server.addr);
    let started = Instant::now();
    assert_eq!(peer.recv(), ServerPacket::InfoRequest);
    // A whole INFO, a byte every 100 ms: it would take several seconds.
    let bytes = ClientPacket::Info(info("trickler", false)).encode();
    assert!(bytes.len() > 40, "{}", bytes.len());
    let writer = trickle(&peer.stream, bytes, Duration::from_millis(100));
    let message = closed_with(&mut peer);
    assert!(message.contains("in time"), "{message}");
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(2500),
        "closed after {took:?}, with a 1 s deadline"
    );
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
    let _ = writer.join();
}

#[test]
fn a_packet_that_has_started_must_finish_in_time_but_silence_between_packets_is_kept() {
    let _alone = alone();
    let server = TestServer::start_with(|c| c.packet_timeout = Duration::from_secs(1));
    let mut alice = Peer::join_original(server.addr, "alice");
    let mut bob = Peer::join_original(server.addr, "bob");
    let _ = alice.recv_roster(); // bob joining
                                 // Longer than the packet deadline with nothing to say: still served.
    thread::sleep(Duration::from_millis(1500));
    bob.message(&alice.id, "still there?");
    assert_eq!(alice.recv_message().1, "still there?\n");

    // Now alice starts a 200-byte packet and sends it a byte every 100 ms.
    alice.send_raw(b"200       {");
    let started = Instant::now();
    let writer = trickle(&alice.stream, vec![b' '; 100], Duration::from_millis(100));
    let message = closed_with(&mut alice);
    assert!(message.contains("did not finish"), "{message}");
    let took = started.elapsed();
    assert!(took < Duration::from_millis(2500), "closed after {took:?}");
    assert_eq!(
        bob.recv(),
        ServerPacket::Disconnect {
            id: alice.id.clone()
        }
    );
    let _ = writer.join();
}

#[test]
fn one_address_holds_at_most_its_limit_of_connections() {
    let _alone = alone();
    let server = TestServer::start_with(|c| c.max_per_address = 3);
    let mut three: Vec<Peer> = (0..3)
        .map(|i| Peer::join_original(server.addr, &format!("local{i}")))
        .collect();
    let mut fourth = Peer::connect(server.addr);
    let message = closed_with(&mut fourth);
    assert!(
        message.contains("Too many connections from your address"),
        "{message}"
    );
    // Another address is not affected.
    let other = Peer::over(connect_from_newcomer(server.addr));
    let _other = Peer::join_over(other, info("elsewhere", true));
    // Once one of the three leaves, the address may connect again.
    three
        .pop()
        .expect("three peers")
        .send(&ClientPacket::Disconnect);
    server.wait_for_count(3);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        // The leaver's thread may still be finishing: retry briefly.
        let mut again = Peer::connect(server.addr);
        match again.recv() {
            ServerPacket::InfoRequest => break,
            other => assert!(Instant::now() < deadline, "still refused: {other:?}"),
        }
        thread::sleep(Duration::from_millis(50));
    }
    let _ = &mut three;
}

#[test]
fn connections_stuck_in_their_handshake_do_not_lock_out_another_address() {
    let _alone = alone();
    let mut server = TestServer::start_with(|c| {
        c.max_per_address = 0;
        c.max_handshaking = 8;
        c.max_clients = 2;
    });
    // 150 connections from one address that never say who they are.
    let stuck: Vec<TcpStream> = (0..150)
        .map(|_| TcpStream::connect(server.addr).expect("connect"))
        .collect();
    // Stuck, not merely starting: older than the grace a handshake has.
    thread::sleep(HANDSHAKE_GRACE + Duration::from_millis(200));
    let started = Instant::now();
    let newcomer = Peer::over(connect_from_newcomer(server.addr));
    let _newcomer = Peer::join_over(newcomer, info("newcomer", true));
    let took = started.elapsed();
    assert!(took < Duration::from_secs(1), "joined after {took:?}");
    // The stuck address was told why it lost a connection.
    server.wait_for("a handshake made room", |e| {
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
    drop(stuck);
}
