//! Avatar pictures from people who mean harm, and threads that die: every
//! picture that reaches a decoder is checked first, a decoder that panics
//! only makes a picture unreadable, a client sends its picture once, and a
//! connection whose thread dies still leaves, once, on both sides.

mod support;

use std::io::Write;
use std::net::TcpListener;
use std::thread;
use std::time::{Duration, SystemTime};

use crossbeam_channel::{unbounded, Receiver};
use hubchat::client::{Session, SessionConfig, SessionEvent};
use hubchat::common::avatar::{self, Picture, PictureError, MAX_WIRE_BYTES};
use hubchat::common::packet::{
    ClientPacket, ErrorCode, Profile, Roster, ServerPacket, Welcome, PROTOCOL_VERSION,
};
use hubchat::server::connection::fault;
use hubchat::server::event::Party;
use hubchat::server::view::ServerView;
use hubchat::server::{Event, LeaveReason, ServerEvent};
use support::{Peer, TestServer, PATIENCE};

/// A 171-byte palette PNG whose PLTE chunk is 7 bytes long, found by
/// fuzzing: `png` 0.18.1 panics decoding it (see tests/fuzz-cases/README.md).
/// Anyone can send it as a PICTURE or hand it to someone as a file, so it
/// must be nothing worse than "not a picture HubChat can read": before, it
/// killed the server's reader thread for the sender (a ghost that kept its
/// name) and would have killed a client's window.
const PALETTE_PANIC: &[u8] = include_bytes!("fuzz-cases/png-palette-panic.png");

/// A 48x48 avatar of one colour, as a HubChat client sends it.
fn avatar_png(shade: u8) -> (Vec<u8>, Picture) {
    let picture = Picture {
        rgba: [shade, 40, 200 - shade / 2, 255].repeat(48 * 48),
    };
    (avatar::encode_picture(&picture), picture)
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = support::crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// A well-formed 48x48 RGBA PNG whose one zlib stream holds the 48 rows a
/// decoder needs and then `padding` zero bytes more. Decoders stop after
/// the rows and skip the rest, but only by inflating it all.
fn png_bomb(padding: usize) -> Vec<u8> {
    let row: Vec<u8> = std::iter::once(0u8) // filter: none
        .chain([200, 30, 30, 255].repeat(48))
        .collect();
    let mut raw = row.repeat(48);
    raw.resize(raw.len() + padding, 0);
    let idat = miniz_oxide::deflate::compress_to_vec_zlib(&raw, 10);

    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&48u32.to_be_bytes());
    ihdr.extend_from_slice(&48u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 6, 0, 0, 0]); // 8-bit RGBA, not interlaced
    chunk(&mut png, b"IHDR", &ihdr);
    chunk(&mut png, b"IDAT", &idat);
    chunk(&mut png, b"IEND", &[]);
    png
}

fn assert_unreadable(result: Result<Picture, PictureError>, what: &str) {
    match result {
        Err(e @ PictureError::Unreadable { .. }) => assert!(
            e.to_string()
                .starts_with("This is not a picture HubChat can read"),
            "{what}: {e}"
        ),
        other => panic!("{what}: expected an unreadable picture, got {other:?}"),
    }
}

fn expect_error(peer: &mut Peer, code: ErrorCode) -> String {
    match peer.recv() {
        ServerPacket::Error(e) => {
            assert_eq!(e.code, code, "{}", e.message);
            e.message
        }
        other => panic!("expected ERROR {code:?}, got {other:?}"),
    }
}

#[test]
fn a_picture_that_panics_the_png_decoder_is_only_not_a_picture_at_every_entry_point() {
    // The server's check and a client's check of pictures from the network.
    assert_unreadable(avatar::check_wire_picture(PALETTE_PANIC), "wire check");
    // A file the user picks, and the server window's avatars.
    assert_unreadable(avatar::decode_picture(PALETTE_PANIC), "any picture");
    // The thread that met it goes on decoding good pictures.
    let (png, picture) = avatar_png(90);
    assert_eq!(avatar::check_wire_picture(&png), Ok(picture));
}

#[test]
fn the_server_window_shows_a_built_in_for_a_picture_that_panics_the_decoder() {
    let who = Party {
        id: "client0".into(),
        name: "mallory".into(),
        color: "red".into(),
    };
    let at = SystemTime::now();
    let mut view = ServerView::new(None);
    view.apply(&[
        Event {
            at,
            what: ServerEvent::Joined {
                who: who.clone(),
                image_name: "image_2.png".into(),
                addr: "127.0.0.1:1".parse().unwrap(),
                hubchat: true,
                identity: None,
            },
        },
        Event {
            at,
            what: ServerEvent::Pictured {
                who,
                png: PALETTE_PANIC.to_vec(),
            },
        },
    ]);
    assert_eq!(view.rows.len(), 1);
    assert_eq!(view.rows[0].picture, None, "keeps its built-in image_2");
}

#[test]
fn a_picture_that_panics_the_png_decoder_is_refused_and_its_sender_stays() {
    let server = TestServer::start();
    let mut alice = Peer::join_hubchat(server.addr, "alice");
    let mut bob = Peer::join_hubchat(server.addr, "bob");
    let _ = alice.recv_roster(); // bob joined

    bob.send(&ClientPacket::Picture {
        png: PALETTE_PANIC.to_vec(),
    });
    let why = expect_error(&mut bob, ErrorCode::PictureInvalid);
    assert!(why.contains("not a picture HubChat can read"), "{why}");

    // Bob's reader is alive: it still relays, and alice heard no picture.
    bob.message(&alice.id.clone(), "still here");
    assert_eq!(alice.recv_message().1, "still here");
    // And when bob goes, everyone hears it.
    bob.send(&ClientPacket::Disconnect);
    assert_eq!(
        alice.recv(),
        ServerPacket::Disconnect { id: bob.id.clone() }
    );
}

#[test]
fn a_png_that_inflates_from_16_kb_to_16_mb_is_refused_and_never_forwarded() {
    let bomb = png_bomb(16_000_000);
    assert!(bomb.len() <= MAX_WIRE_BYTES, "{} bytes", bomb.len());
    // Small on the wire, a valid 48x48 PNG: only its inflated size gives it
    // away, so that is what is checked.
    assert_unreadable(avatar::check_wire_picture(&bomb), "bomb");
    // The same picture without the padding is fine.
    assert!(avatar::check_wire_picture(&png_bomb(0)).is_ok());

    let server = TestServer::start();
    let mut alice = Peer::join_hubchat(server.addr, "alice");
    let mut bob = Peer::join_hubchat(server.addr, "bob");
    let _ = alice.recv_roster(); // bob joined
    bob.send(&ClientPacket::Picture { png: bomb });
    let why = expect_error(&mut bob, ErrorCode::PictureInvalid);
    assert!(why.contains("unpacks to more than"), "{why}");
    bob.message(&alice.id.clone(), "after the bomb");
    assert_eq!(alice.recv_message().1, "after the bomb");
}

#[test]
fn a_client_picture_is_kept_once_per_session_and_repeats_are_not_forwarded() {
    let server = TestServer::start();
    let mut alice = Peer::join_hubchat(server.addr, "alice");
    let mut bob = Peer::join_hubchat(server.addr, "bob");
    let _ = alice.recv_roster(); // bob joined

    // A refused picture does not use up the session's one.
    bob.send(&ClientPacket::Picture {
        png: PALETTE_PANIC.to_vec(),
    });
    expect_error(&mut bob, ErrorCode::PictureInvalid);
    let (first, _) = avatar_png(10);
    bob.send(&ClientPacket::Picture { png: first.clone() });
    assert_eq!(
        alice.recv(),
        ServerPacket::Picture {
            id: bob.id.clone(),
            png: first
        }
    );
    // A flood of pictures: each would be copied to every HubChat peer.
    for shade in 0..50 {
        bob.send(&ClientPacket::Picture {
            png: avatar_png(shade).0,
        });
    }
    for _ in 0..50 {
        let why = expect_error(&mut bob, ErrorCode::PictureRepeated);
        assert!(why.contains("Reconnect to change it"), "{why}");
    }
    // Alice was sent none of them: the next thing she hears is this.
    bob.message(&alice.id.clone(), "no more pictures");
    assert_eq!(alice.recv_message().1, "no more pictures");
    // A newcomer gets the first picture, the one kept.
    let mut carol = Peer::join_hubchat(server.addr, "carol");
    match carol.recv() {
        ServerPacket::Picture { id, png } => {
            assert_eq!(id, bob.id);
            assert_eq!(png, avatar_png(10).0);
        }
        other => panic!("expected bob's PICTURE, got {other:?}"),
    }
}

#[test]
fn a_reader_thread_that_panics_announces_its_departure_once_and_frees_the_name() {
    // No input is known to panic a reader any more, so the test injects
    // one: with the fault armed, this exact text panics its sender's reader.
    fault::arm();
    let mut server = TestServer::start();
    let mut alice = Peer::join_hubchat(server.addr, "alice");
    let mut bob = Peer::join_hubchat(server.addr, "bob");
    let _ = alice.recv_roster(); // bob joined
    let ghost = alice.id.clone();

    alice.message(&bob.id.clone(), fault::TRIGGER);
    assert_eq!(bob.recv(), ServerPacket::Disconnect { id: ghost.clone() });
    // Its connection is closed too, not left open with no one reading it.
    let _ = alice.recv_until_closed();
    server.wait_for_count(1);

    // The name is free again, and bob hears of the newcomer, not of a
    // second departure.
    let mut again = Peer::join_hubchat(server.addr, "alice");
    let roster = bob.recv_roster();
    assert_eq!(roster.0.len(), 1);
    assert_eq!(roster.0[0].0, again.id);
    again.message(&bob.id.clone(), "back");
    assert_eq!(bob.recv_message().1, "back");

    let left: Vec<LeaveReason> = server
        .events_so_far()
        .iter()
        .filter_map(|e| match &e.what {
            ServerEvent::Left { who, reason } if *who.id == *ghost => Some(reason.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(left.len(), 1, "announced once: {left:?}");
    assert!(
        matches!(&left[0], LeaveReason::ConnectionLost { detail } if detail.contains("broke down")),
        "{:?}",
        left[0]
    );
}

fn session_config(port: u16, name: &str) -> SessionConfig {
    SessionConfig {
        host: "127.0.0.1".into(),
        port,
        name: name.into(),
        color: "purple".into(),
        image_name: "image_4.png".into(),
        picture: None,
        timeout: Duration::from_secs(5),
        identity: Some(support::new_identity()),
        pin: None,
        password: None,
    }
}

/// Every event up to and including the session's end.
fn events_until_lost(rx: &Receiver<SessionEvent>) -> Vec<SessionEvent> {
    let mut seen = Vec::new();
    loop {
        match rx.recv_timeout(PATIENCE) {
            Ok(e @ SessionEvent::Lost { .. }) => {
                seen.push(e);
                return seen;
            }
            Ok(e) => seen.push(e),
            Err(_) => panic!("the session never reported Lost; saw {seen:?}"),
        }
    }
}

#[test]
fn a_session_whose_reader_panics_still_reports_the_connection_lost() {
    let server = TestServer::start();
    let (tx, rx) = unbounded();
    // The sink is the caller's code on the reader thread: one that panics
    // on a message kills that thread.
    let session = Session::connect(&session_config(server.addr.port(), "alice"), move |e| {
        if let SessionEvent::Message { .. } = e {
            panic!("the window's sink breaks on a message");
        }
        let _ = tx.send(e);
    })
    .expect("alice joins");
    let mut bob = Peer::join_hubchat(server.addr, "bob");
    bob.message(&session.id, "boom");

    let seen = events_until_lost(&rx);
    match seen.last() {
        Some(SessionEvent::Lost { reason }) => {
            assert!(reason.contains("broke down"), "{reason}")
        }
        other => panic!("expected Lost, got {other:?}"),
    }
    // Nothing more is sent on a session whose reader is gone.
    session.disconnect();
}

/// A server that is not what it seems: it lets one session in, then sends
/// it the pictures given (all said to be mallory's) and a message.
fn hostile_server(pictures: Vec<Vec<u8>>) -> (u16, thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(PATIENCE)).unwrap();
        s.write_all(&ServerPacket::InfoRequest.encode()).unwrap();
        let mut reader =
            hubchat::common::connection::FrameReader::new(s.try_clone().unwrap(), 1 << 20);
        let _info = reader.read_frame().unwrap();
        let profile = |name: &str| Profile {
            name: name.into(),
            color: "red".into(),
            image_name: "image_1.png".into(),
            files: false,
        };
        let mut out = ServerPacket::Welcome(Welcome {
            version: PROTOCOL_VERSION,
            id: "client1".into(),
            max_packet: 1 << 20,
            max_message: None,
            max_file: None,
        })
        .encode();
        out.extend(
            ServerPacket::AllClients(Roster(vec![
                ("client0".into(), profile("mallory")),
                ("client1".into(), profile("alice")),
            ]))
            .encode(),
        );
        for png in pictures {
            out.extend(
                ServerPacket::Picture {
                    id: "client0".into(),
                    png,
                }
                .encode(),
            );
        }
        out.extend(hubchat::common::packet::encode_message(
            "client0", "client1", "done",
        ));
        s.write_all(&out).unwrap();
        // Wait for the client to go.
        while let Ok(Some(_)) = reader.read_frame() {}
    });
    (port, handle)
}

#[test]
fn a_session_checks_pictures_from_the_network_as_strictly_as_the_server() {
    let (good, picture) = avatar_png(120);
    let (port, server) = hostile_server(vec![png_bomb(16_000_000), PALETTE_PANIC.to_vec(), good]);
    let (tx, rx) = unbounded();
    let session = Session::connect(&session_config(port, "alice"), move |e| {
        let _ = tx.send(e);
    })
    .expect("alice joins");
    let mut pictures = Vec::new();
    loop {
        match rx.recv_timeout(PATIENCE).expect("an event") {
            SessionEvent::Picture { id, picture } => pictures.push((id, picture)),
            SessionEvent::Message { text, .. } => {
                assert_eq!(text, "done");
                break;
            }
            SessionEvent::Lost { reason } => panic!("lost: {reason}"),
            _ => {}
        }
    }
    // Only the honest picture got through; the reader lived to read on.
    assert_eq!(pictures, vec![("client0".to_string(), picture)]);
    session.disconnect();
    server.join().unwrap();
}
