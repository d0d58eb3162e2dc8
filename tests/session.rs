//! The client session against the real HubChat server and against a
//! scripted server that behaves as the original does.

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

use crossbeam_channel::{unbounded, Receiver};
use hubchat::client::{ConnectError, ServerKind, Session, SessionConfig, SessionEvent};
use hubchat::common::avatar::{self, Picture};
use hubchat::common::packet::{ClientPacket, ErrorCode, ServerPacket};
use support::{wire, Peer, TestServer, PATIENCE};

fn config(port: u16, name: &str) -> SessionConfig {
    SessionConfig {
        host: "127.0.0.1".into(),
        port,
        name: name.into(),
        color: "purple".into(),
        image_name: "image_4.png".into(),
        picture: None,
        timeout: Duration::from_secs(5),
    }
}

/// A 48x48 avatar of one colour, as the client sends it.
fn avatar_png(shade: u8) -> (Vec<u8>, Picture) {
    let picture = Picture {
        rgba: [shade, 40, 200 - shade / 2, 255].repeat(48 * 48),
    };
    (avatar::encode_picture(&picture), picture)
}

fn join_with(config: SessionConfig) -> (Session, Receiver<SessionEvent>) {
    let (tx, rx) = unbounded();
    let s = Session::connect(&config, move |e| {
        let _ = tx.send(e);
    })
    .unwrap_or_else(|e| panic!("{} joins: {e}", config.name));
    (s, rx)
}

fn join(port: u16, name: &str) -> (Session, Receiver<SessionEvent>) {
    join_with(config(port, name))
}

/// The next event that is not a roster update.
fn next_news(rx: &Receiver<SessionEvent>) -> SessionEvent {
    loop {
        match rx.recv_timeout(PATIENCE).expect("an event") {
            SessionEvent::Listed(_) => continue,
            other => return other,
        }
    }
}

#[test]
fn a_session_knows_a_hubchat_server_and_its_own_id() {
    let server = TestServer::start();
    let (alice, rx) = join(server.addr.port(), "alice");
    assert_eq!(alice.id, "client0");
    assert!(matches!(alice.kind, ServerKind::HubChat { version: 1, .. }));
    match rx.recv_timeout(PATIENCE).unwrap() {
        SessionEvent::Listed(entries) => assert_eq!(entries[0].1.name, "alice"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn two_sessions_talk_and_see_each_other_leave() {
    let server = TestServer::start();
    let (alice, arx) = join(server.addr.port(), "alice");
    let (bob, brx) = join(server.addr.port(), "bob");
    alice.send(&bob.id, "hi bob ✓");
    assert_eq!(
        next_news(&brx),
        SessionEvent::Message {
            from: alice.id.clone(),
            text: "hi bob ✓".into()
        }
    );
    bob.send(&alice.id, "hi alice");
    assert_eq!(
        next_news(&arx),
        SessionEvent::Message {
            from: bob.id.clone(),
            text: "hi alice".into()
        }
    );
    let bob_id = bob.id.clone();
    bob.disconnect();
    assert_eq!(next_news(&arx), SessionEvent::Left { id: bob_id });
}

#[test]
fn a_custom_avatar_reaches_hubchat_clients_present_and_later_but_never_original_ones() {
    let server = TestServer::start();
    let port = server.addr.port();
    let mut old = Peer::join_original(server.addr, "old");
    let (bob, brx) = join(port, "bob");
    let (png, picture) = avatar_png(90);
    let (alice, _arx) = join_with(SessionConfig {
        picture: Some(png.clone()),
        ..config(port, "alice")
    });
    assert_eq!(
        next_news(&brx),
        SessionEvent::Picture {
            id: alice.id.clone(),
            picture: picture.clone()
        },
        "a client already here is sent the picture"
    );
    let (_carol, crx) = join(port, "carol");
    assert_eq!(
        next_news(&crx),
        SessionEvent::Picture {
            id: alice.id.clone(),
            picture
        },
        "a client joining later is sent it after the roster"
    );
    // The original client sees alice join with her built-in picture, then
    // bob's message; never a PICTURE.
    let mut seen = Vec::new();
    bob.send(&old.id, "ping");
    loop {
        match old.recv() {
            ServerPacket::Message { .. } => break,
            other => seen.push(other),
        }
    }
    assert!(
        seen.iter()
            .all(|p| matches!(p, ServerPacket::AllClients(_))),
        "{seen:?}"
    );
    let alice_entry = seen
        .iter()
        .find_map(|p| match p {
            ServerPacket::AllClients(r) => r.0.iter().find(|(id, _)| *id == alice.id).cloned(),
            _ => None,
        })
        .expect("the original client was told of alice");
    assert_eq!(alice_entry.1.image_name, "image_4.png");
}

#[test]
fn a_picture_that_is_not_a_small_png_is_refused_and_the_client_stays() {
    let server = TestServer::start();
    let mut alice = Peer::join_hubchat(server.addr, "alice");
    let mut bob = Peer::join_hubchat(server.addr, "bob");
    let _ = alice.recv_roster(); // bob joined
    let jpeg = {
        let img = image::RgbImage::from_pixel(48, 48, image::Rgb([1, 2, 3]));
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
        out.into_inner()
    };
    for bad in [jpeg, b"\x89PNG but not really".to_vec(), vec![0; 40_000]] {
        bob.send(&ClientPacket::Picture { png: bad });
        match bob.recv() {
            ServerPacket::Error(e) => {
                assert_eq!(e.code, ErrorCode::PictureInvalid);
                assert!(
                    e.message.starts_with("Your avatar was not accepted"),
                    "{}",
                    e.message
                );
            }
            other => panic!("expected ERROR, got {other:?}"),
        }
    }
    // Still connected, and alice was sent none of it.
    alice.message(&bob.id.clone(), "still there?");
    assert_eq!(bob.recv_message().1, "still there?");
    alice.expect_silence(Duration::from_millis(200));
}

#[test]
fn a_taken_name_is_refused_with_the_servers_sentence() {
    let server = TestServer::start();
    let (_alice, _rx) = join(server.addr.port(), "alice");
    let err = Session::connect(&config(server.addr.port(), "ALICE"), |_| {})
        .err()
        .unwrap();
    assert_eq!(
        err,
        ConnectError::Rejected {
            code: Some(ErrorCode::NameTaken),
            message: "The name \"ALICE\" is already taken. Choose another name.".into()
        }
    );
}

#[test]
fn a_message_to_a_departed_client_comes_back_as_a_refusal() {
    let server = TestServer::start();
    let (alice, rx) = join(server.addr.port(), "alice");
    alice.send("client42", "anyone?");
    assert!(matches!(
        next_news(&rx),
        SessionEvent::Refused {
            code: ErrorCode::UnknownPartner,
            ..
        }
    ));
}

#[test]
fn the_server_stopping_ends_the_session_with_its_reason() {
    let mut server = TestServer::start();
    let (_alice, rx) = join(server.addr.port(), "alice");
    server.stop();
    assert_eq!(
        next_news(&rx),
        SessionEvent::Lost {
            reason: "Server is closing...".into()
        }
    );
}

#[test]
fn nothing_listening_is_explained() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = Session::connect(&config(port, "alice"), |_| {})
        .err()
        .unwrap();
    assert_eq!(
        err,
        ConnectError::Refused {
            addr: format!("127.0.0.1, port {port}")
        }
    );
    assert!(err.to_string().starts_with("Nothing answers at 127.0.0.1"));
}

/// A server that speaks exactly as the original does: INFO request, then the
/// whole roster to everyone on every join, messages relayed verbatim.
/// Serves two clients, then closes.
fn original_server() -> (u16, thread::JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = thread::spawn(move || {
        let mut socks: Vec<TcpStream> = Vec::new();
        let mut roster = String::new();
        let mut first_info = String::new();
        for k in 0..2 {
            let (mut s, _) = listener.accept().unwrap();
            s.write_all(&wire(
                r#"{"flag": "INFO", "data": "Send your information!"}"#,
            ))
            .unwrap();
            let body = read_body(&mut s);
            if k == 0 {
                first_info = body.clone();
            }
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            let d = &v["data"];
            if !roster.is_empty() {
                roster.push_str(", ");
            }
            roster.push_str(&format!(
                r#""client{k}": {{"name": {}, "color": {}, "image_name": {}}}"#,
                py(&d["name"]),
                py(&d["color"]),
                py(&d["image_name"])
            ));
            socks.push(s);
            for s in &mut socks {
                s.write_all(&wire(&format!(
                    r#"{{"flag": "ALL CLIENTS", "data": {{{roster}}}}}"#
                )))
                .unwrap();
            }
        }
        // Relay one message from client0 to client1, verbatim plus source.
        let body = read_body(&mut socks[0]);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let out = format!(
            r#"{{"flag": "MESSAGE", "data": {{"message": {}, "partner_name": "client1", "source_client": "client0"}}}}"#,
            py(&v["data"]["message"])
        );
        socks[1].write_all(&wire(&out)).unwrap();
        thread::sleep(Duration::from_millis(200));
        for s in &mut socks {
            s.write_all(&wire(
                r#"{"flag": "SERVER CLOSE", "data": {"message": "Server is closing..."}}"#,
            ))
            .unwrap();
        }
        first_info
    });
    (port, handle)
}

/// A JSON value as Python's `json.dumps` writes it: every non-ASCII
/// character escaped, beyond U+FFFF as a surrogate pair.
fn py(v: &serde_json::Value) -> String {
    let mut out = String::new();
    for c in v.to_string().chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            for unit in c.encode_utf16(&mut [0; 2]) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

fn read_body(s: &mut TcpStream) -> String {
    let mut header = [0u8; 10];
    s.read_exact(&mut header).unwrap();
    let n: usize = std::str::from_utf8(&header)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let mut body = vec![0u8; n];
    s.read_exact(&mut body).unwrap();
    String::from_utf8(body).unwrap()
}

#[test]
fn a_session_joins_an_original_server_with_only_its_features() {
    let (port, server) = original_server();
    // A custom picture is never sent to an original server: the scripted
    // server would read it as alice's message below.
    let (alice, arx) = join_with(SessionConfig {
        picture: Some(avatar_png(10).0),
        ..config(port, "Zoë 李")
    });
    let (bob, brx) = join(port, "bob");
    assert_eq!(
        (alice.kind, alice.id.as_str()),
        (ServerKind::Original, "client0")
    );
    assert_eq!(bob.id, "client1");
    // The original repeats the whole roster on every join.
    match arx.recv_timeout(PATIENCE).unwrap() {
        SessionEvent::Listed(e) => assert_eq!(e.len(), 1),
        other => panic!("{other:?}"),
    }
    match arx.recv_timeout(PATIENCE).unwrap() {
        SessionEvent::Listed(e) => assert_eq!(e.len(), 2),
        other => panic!("{other:?}"),
    }
    // Text to an original server ends in a newline, as its clients expect;
    // any script, and emoji beyond the 16-bit range, arrive unchanged.
    let text = "héllo 你好 مرحبا שלום Привет 🙂👍🏽";
    alice.send("client1", text);
    assert_eq!(
        next_news(&brx),
        SessionEvent::Message {
            from: "client0".into(),
            text: format!("{text}\n")
        }
    );
    assert_eq!(
        next_news(&brx),
        SessionEvent::Lost {
            reason: "Server is closing...".into()
        }
    );
    let info = server.join().unwrap();
    // Written as Python writes it: ASCII only, non-ASCII escaped.
    assert!(info.starts_with(r#"{"flag": "INFO", "data": {"name": "Zo\u00eb \u674e", "color": "purple", "image_name": "image_4.png""#), "{info}");
}
