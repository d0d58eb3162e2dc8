//! One memory budget for everything the server queues: every client's
//! outbox and the events for the log together. With a small budget set,
//! receivers that do not read and senders flooding them cannot take the
//! total past it; the senders wait instead, clients that never read are
//! dropped, and a pair chatting throughout loses nothing.

mod support;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use hubchat::common::packet::{ClientPacket, ErrorCode, ServerPacket};
use hubchat::server::{LeaveReason, Server, ServerEvent};
use support::{info, Peer, TestServer, PATIENCE};

/// The budget the tests set: 2 MiB for everything queued.
const BUDGET: usize = 2 << 20;
/// Each flood message's text.
const TEXT: usize = 16 << 10;
/// How far past the budget the total may go: what was already on its way
/// when it filled, one message per sending connection (three flooders and
/// the pair), with room for frames and the roster changes.
const SLACK: usize = 8 * (TEXT + 1024);
/// Receivers that stop reading.
const STALLED: usize = 8;
/// Messages each flooder sends to each stalled receiver: 12 MiB each in
/// all, far more than the budget and the sockets' own buffers hold.
const PER_RECEIVER: usize = 256;

fn budgeted(grace: Duration) -> TestServer {
    TestServer::start_with(|c| {
        c.max_queued = Some(BUDGET);
        c.queue.grace = grace;
    })
}

/// Joins HubChat clients that then read nothing until told to.
fn join_stalled(addr: SocketAddr) -> Vec<Peer> {
    (0..STALLED)
        .map(|k| Peer::join_hubchat(addr, &format!("stalled{k}")))
        .collect()
}

/// An original client that sends `per_receiver` messages of [`TEXT`]
/// bytes to each of `to`, round robin, counting each one written whole in
/// `sent` (by receiver), then closes its sending side and reads until the
/// server closes (so nothing it sent is cut off by a reset).
fn flood(addr: SocketAddr, name: &str, to: &[String], sent: &[AtomicUsize], per_receiver: usize) {
    let mut peer = Peer::join_original(addr, name);
    let text = "x".repeat(TEXT);
    for _ in 0..per_receiver {
        for (k, id) in to.iter().enumerate() {
            let frame = ClientPacket::Message {
                to: id.clone(),
                text: text.clone(),
            }
            .encode();
            peer.stream.write_all(&frame).expect("the server reads on");
            sent[k].fetch_add(1, Ordering::SeqCst);
        }
    }
    peer.stream.shutdown(Shutdown::Write).unwrap();
    let mut sink = Vec::new();
    let _ = peer.stream.read_to_end(&mut sink);
}

/// Sets its flag when dropped, also when a failed assertion unwinds.
struct Done<'a>(&'a AtomicBool);

impl Drop for Done<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// The largest total the server's budget counted while `during` ran.
fn peak_queued<T>(server: &Server, during: impl FnOnce() -> T) -> (usize, T) {
    let done = AtomicBool::new(false);
    let peak = AtomicUsize::new(0);
    let out = thread::scope(|s| {
        s.spawn(|| {
            while !done.load(Ordering::SeqCst) {
                peak.fetch_max(server.queued_bytes(), Ordering::SeqCst);
                thread::sleep(Duration::from_micros(500));
            }
        });
        let _done = Done(&done);
        during()
    });
    (peak.load(Ordering::SeqCst), out)
}

/// `a` sends `n` numbered messages to `b`, one every 20 ms, while `b`
/// reads; returns what `b` received from `a`, in order.
fn chat(a: &mut Peer, b: &mut Peer, n: usize) -> Vec<String> {
    let to = b.id.clone();
    let from = a.id.clone();
    thread::scope(|s| {
        s.spawn(|| {
            for k in 0..n {
                a.message(&to, &format!("pair {k}"));
                thread::sleep(Duration::from_millis(20));
            }
        });
        let mut got = Vec::new();
        while got.len() < n {
            if let ServerPacket::Message { from: f, text, .. } = b.recv() {
                if f == from {
                    got.push(text);
                }
            }
        }
        got
    })
}

/// Waits until the budget counts less than `bytes`.
fn wait_below(server: &Server, bytes: usize) {
    let deadline = Instant::now() + PATIENCE;
    while server.queued_bytes() >= bytes {
        assert!(
            Instant::now() < deadline,
            "still {} bytes queued",
            server.queued_bytes()
        );
        thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn receivers_that_never_read_cannot_take_the_total_past_the_budget_and_the_pair_loses_nothing() {
    // The default grace: clients holding bytes they do not take for 2 s
    // while the budget is full are dropped.
    let mut srv = budgeted(Duration::from_secs(10));
    let server = srv.server.take().expect("running");
    let addr = srv.addr;
    let stalled = join_stalled(addr);
    let ids: Vec<String> = stalled.iter().map(|p| p.id.clone()).collect();
    let mut a = Peer::join_hubchat(addr, "alice");
    let mut b = Peer::join_hubchat(addr, "bob");
    let sent: Vec<AtomicUsize> = (0..STALLED).map(|_| AtomicUsize::new(0)).collect();

    let (peak, got) = peak_queued(&server, || {
        thread::scope(|s| {
            for f in 0..3 {
                let (ids, sent) = (&ids, &sent);
                s.spawn(move || flood(addr, &format!("flooder{f}"), ids, sent, PER_RECEIVER));
            }
            chat(&mut a, &mut b, 150)
        })
    });

    let expected: Vec<String> = (0..150).map(|k| format!("pair {k}")).collect();
    assert_eq!(got, expected, "the reading pair loses nothing, in order");
    assert!(
        peak <= BUDGET + SLACK,
        "at most {} bytes queued in all, saw {peak}",
        BUDGET + SLACK
    );
    for id in &ids {
        srv.wait_for("the stalled receiver dropped", |e| {
            matches!(e, ServerEvent::Left { who, reason: LeaveReason::StoppedReading } if *who.id == **id)
        });
    }
    // The server recovers: everything sent or given up, a newcomer joins.
    wait_below(&server, BUDGET / 4);
    let mut carol = Peer::join_hubchat(addr, "carol");
    a.message(&carol.id, "welcome");
    assert_eq!(carol.recv_message(), (a.id.clone(), "welcome".to_string()));
    drop(stalled);
    server.stop();
}

#[test]
fn while_the_budget_is_full_a_newcomer_is_refused_with_a_sentence_and_later_let_in() {
    // A long grace: the receiver that does not read is dropped only after
    // 12 s, so the budget stays full while the newcomer knocks.
    let mut srv = budgeted(Duration::from_secs(60));
    let server = srv.server.take().expect("running");
    let addr = srv.addr;
    let mut stalled = join_stalled(addr);
    let receiver = stalled.pop().expect("one receiver");
    drop(stalled);
    let ids = [receiver.id.clone()];
    let sent = [AtomicUsize::new(0)];

    thread::scope(|s| {
        s.spawn(|| flood(addr, "flooder", &ids, &sent, 4 * PER_RECEIVER));
        let deadline = Instant::now() + PATIENCE;
        while server.queued_bytes() < BUDGET {
            assert!(
                Instant::now() < deadline,
                "the flood never filled the budget"
            );
            thread::sleep(Duration::from_millis(1));
        }
        let mut newcomer = Peer::connect(addr);
        assert_eq!(newcomer.recv(), ServerPacket::InfoRequest);
        newcomer.send(&ClientPacket::Info(info("dave", true)));
        let refusal = newcomer.recv_until_closed();
        let said = refusal.iter().find_map(|p| match p {
            ServerPacket::Error(e) if e.code == ErrorCode::ServerFull => Some(e.message.clone()),
            _ => None,
        });
        let said = said.unwrap_or_else(|| panic!("refused with ERROR server_full: {refusal:?}"));
        assert!(
            said.contains("busy") && said.contains("2 MiB") && said.contains("Try again"),
            "{said}"
        );
        // The receiver goes away; its queue is given up, the flood ends.
        drop(receiver);
    });
    wait_below(&server, BUDGET / 4);
    let _dave = Peer::join_hubchat(addr, "dave");
    server.stop();
}
