//! The client session against the real HubChat server and against a
//! scripted server that behaves as the original does.

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{unbounded, Receiver};
use hubchat::client::{ConnectError, ServerKind, Session, SessionConfig, SessionEvent};
use hubchat::common::avatar::{self, Picture};
use hubchat::common::packet::{ClientPacket, ErrorCode, ServerPacket};
use hubchat::server::ServerEvent;
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
        identity: Some(support::new_identity()),
        pin: None,
        password: None,
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
    assert!(matches!(
        alice.kind,
        ServerKind::HubChat {
            version: hubchat::common::packet::PROTOCOL_VERSION,
            ..
        }
    ));
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
            code: Some(ErrorCode::NameOwned),
            message: "The name ALICE belongs to another computer. Choose another name, \
                      or ask the server's owner to release it."
                .into()
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
            addr: format!("127.0.0.1:{port}")
        }
    );
    assert_eq!(
        err.to_string(),
        format!(
            "Nothing is listening at 127.0.0.1:{port}. Is the port right and the server started?"
        )
    );
}

/// A loopback listener whose accept queue is full: the kernel drops every
/// further SYN, exactly as an address where nothing answers does, without
/// a packet leaving the machine. Backlog 0 holds one connection that is
/// never accepted; the fillers are kept so it stays full.
#[cfg(unix)]
fn listener_that_never_answers() -> (std::net::TcpListener, Vec<TcpStream>) {
    use std::os::fd::FromRawFd;
    // SAFETY: plain socket calls on a socket this function owns; the fd is
    // handed to TcpListener, which closes it when dropped.
    let listener = unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        assert!(fd >= 0, "socket");
        let mut sa: libc::sockaddr_in = std::mem::zeroed();
        sa.sin_family = libc::AF_INET as libc::sa_family_t;
        sa.sin_addr.s_addr = u32::from(std::net::Ipv4Addr::LOCALHOST).to_be();
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        assert_eq!(
            libc::bind(fd, (&sa as *const libc::sockaddr_in).cast(), len),
            0
        );
        assert_eq!(libc::listen(fd, 0), 0);
        TcpListener::from_raw_fd(fd)
    };
    let addr = listener.local_addr().unwrap();
    let mut fillers = Vec::new();
    loop {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
            Ok(s) if fillers.len() < 8 => fillers.push(s),
            Ok(_) => panic!("the accept queue never filled up"),
            Err(_) => return (listener, fillers),
        }
    }
}

#[cfg(unix)]
#[test]
fn connecting_where_nothing_answers_gives_up_within_three_seconds() {
    let (listener, _fillers) = listener_that_never_answers();
    let port = listener.local_addr().unwrap().port();
    let started = Instant::now();
    let err = Session::connect(
        &SessionConfig {
            timeout: Duration::from_secs(20),
            ..config(port, "alice")
        },
        |_| {},
    )
    .err()
    .expect("nothing answers");
    let waited = started.elapsed();
    assert_eq!(
        err.to_string(),
        format!(
            "Nothing answered at 127.0.0.1:{port}. Is the address right and the server started?"
        )
    );
    assert!(
        waited >= Duration::from_millis(2500) && waited < Duration::from_millis(4500),
        "gave up after {waited:?}"
    );
}

#[test]
fn a_server_that_accepts_but_never_speaks_is_explained() {
    // The kernel completes the connection; nobody ever answers on it.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let started = Instant::now();
    let err = Session::connect(
        &SessionConfig {
            timeout: Duration::from_millis(500),
            ..config(port, "alice")
        },
        |_| {},
    )
    .err()
    .expect("no handshake");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        err,
        ConnectError::NoAnswer {
            addr: format!("127.0.0.1:{port}")
        }
    );
    assert!(
        err.to_string()
            .contains("accepted the connection but did not answer in time"),
        "{err}"
    );
}

#[test]
fn a_hubchat_server_shows_hubchat_peers_the_real_picture_and_original_peers_a_stand_in() {
    let mut server = TestServer::start();
    let port = server.addr.port();
    let mut old = Peer::join_original(server.addr, "old");
    let (_bob, brx) = join(port, "bob");
    let (alice, arx) = join_with(SessionConfig {
        image_name: "image_28.png".into(),
        ..config(port, "alice")
    });
    let picture_of = |rx: &Receiver<SessionEvent>, id: &str| loop {
        if let SessionEvent::Listed(entries) = rx.recv_timeout(PATIENCE).expect("a roster") {
            if let Some((_, p)) = entries.iter().find(|(i, _)| i == id) {
                break p.image_name.clone();
            }
        }
    };
    assert_eq!(picture_of(&arx, &alice.id), "image_28.png", "alice herself");
    assert_eq!(
        picture_of(&brx, &alice.id),
        "image_28.png",
        "a HubChat peer"
    );
    // Bob, then alice.
    let roster = old.recv_joins(2);
    assert_eq!(roster[1].0, alice.id);
    assert_eq!(
        roster[1].1.image_name, "image_17.png",
        "the hedgehog's stand-in"
    );
    server.wait_for(
        "alice joined with her picture",
        |e| matches!(e, ServerEvent::Joined { image_name, .. } if image_name == "image_28.png"),
    );
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

/// Whether the original's `images/` folder has this file: it ships
/// `image_1.png` ... `image_25.png` only.
fn original_has_picture(image_name: &str) -> bool {
    (1..=25).any(|n| image_name == format!("image_{n}.png"))
}

/// A server that behaves as the original does on a picture it has no file
/// for: its accept thread opens `images/<image_name>` during the handshake,
/// fails, and dies, closing the connection; nobody can join after that.
/// Otherwise it sends everyone the whole roster. Returns every INFO it read.
fn original_server_that_dies_on_unknown_pictures() -> (u16, thread::JoinHandle<Vec<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = thread::spawn(move || {
        let mut socks: Vec<TcpStream> = Vec::new();
        let mut roster = String::new();
        let mut infos = Vec::new();
        for k in 0..30 {
            let (mut s, _) = listener.accept().unwrap();
            s.write_all(&wire(
                r#"{"flag": "INFO", "data": "Send your information!"}"#,
            ))
            .unwrap();
            let body = read_body(&mut s);
            infos.push(body.clone());
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            let d = &v["data"];
            if !original_has_picture(d["image_name"].as_str().unwrap_or("")) {
                // The accept thread dies: this socket and the listener close.
                return infos;
            }
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
                let all = format!(r#"{{"flag": "ALL CLIENTS", "data": {{{roster}}}}}"#);
                let _ = s.write_all(&wire(&all));
            }
        }
        infos
    });
    (port, handle)
}

#[test]
fn a_client_with_any_of_the_thirty_built_ins_joins_an_original_server_unharmed() {
    let (port, server) = original_server_that_dies_on_unknown_pictures();
    let mut sessions = Vec::new();
    for n in 1..=30 {
        let image_name = format!("image_{n}.png");
        let session = Session::connect(
            &SessionConfig {
                image_name: image_name.clone(),
                ..config(port, &format!("user{n}"))
            },
            |_| {},
        )
        .unwrap_or_else(|e| panic!("with {image_name}: {e}"));
        assert_eq!(session.kind, ServerKind::Original);
        sessions.push(session);
    }
    let infos = server.join().unwrap();
    assert_eq!(infos.len(), 30);
    for (i, body) in infos.iter().enumerate() {
        let n = i + 1;
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        let wire_name = v["data"]["image_name"].as_str().unwrap();
        let real = &v["data"]["hubchat"]["image_name"];
        if n <= 25 {
            assert_eq!(wire_name, format!("image_{n}.png"));
            assert!(real.is_null(), "{body}");
        } else {
            assert!(original_has_picture(wire_name), "{body}");
            assert_eq!(real.as_str(), Some(format!("image_{n}.png").as_str()));
        }
    }
}

/// A server that lets one client in, says SERVER CLOSE, and records every
/// byte the client sends after its INFO until the client closes.
fn server_that_closes_and_listens() -> (u16, thread::JoinHandle<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.write_all(&wire(
            r#"{"flag": "INFO", "data": "Send your information!"}"#,
        ))
        .unwrap();
        let _info = read_body(&mut s);
        s.write_all(&wire(
            r#"{"flag": "ALL CLIENTS", "data": {"client0": {"name": "alice", "color": "purple", "image_name": "image_4.png"}}}"#,
        ))
        .unwrap();
        s.write_all(&wire(
            r#"{"flag": "SERVER CLOSE", "data": {"message": "Server is closing..."}}"#,
        ))
        .unwrap();
        s.set_read_timeout(Some(PATIENCE)).unwrap();
        let mut after = Vec::new();
        s.read_to_end(&mut after)
            .expect("the client closes its side");
        after
    });
    (port, handle)
}

#[test]
fn after_server_close_a_session_sends_nothing_more_when_disconnected_or_dropped() {
    for by_drop in [false, true] {
        let (port, server) = server_that_closes_and_listens();
        let (alice, rx) = join(port, "alice");
        assert_eq!(
            next_news(&rx),
            SessionEvent::Lost {
                reason: "Server is closing...".into()
            }
        );
        alice.send("client0", "anyone still there?");
        if by_drop {
            drop(alice);
        } else {
            alice.disconnect();
        }
        let after = server.join().unwrap();
        assert!(
            after.is_empty(),
            "sent after SERVER CLOSE: {}",
            String::from_utf8_lossy(&after)
        );
    }
}
