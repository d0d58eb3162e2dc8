//! Encrypted connections, specified against a real server over real
//! sockets: HubChat to HubChat is always TLS (on a LAN and through a slow
//! WAN), the client pins the server's certificate and refuses a changed
//! one or a downgrade, original clients carry on in plain text beside
//! encrypted ones, and a TLS handshake is held to the handshake deadline.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{unbounded, Receiver};
use hubchat::client::{ConnectError, Encryption, SessionConfig, SessionEvent};
use hubchat::common::packet::{ClientHello, ClientPacket, ErrorCode, Info, ServerPacket};
use hubchat::common::tls::{Credentials, Fingerprint};
use hubchat::server::{LeaveReason, ServerEvent};
use support::{join, new_identity, wire, Peer, TestServer, PATIENCE};

fn config(addr: SocketAddr, name: &str) -> SessionConfig {
    SessionConfig {
        host: addr.ip().to_string(),
        port: addr.port(),
        name: name.into(),
        color: "blue".into(),
        image_name: "image_3.png".into(),
        picture: None,
        timeout: Duration::from_secs(5),
        identity: Some(new_identity()),
        pin: None,
        password: None,
    }
}

fn server_with_key() -> (TestServer, Credentials) {
    let key = new_identity();
    let server = TestServer::start_with(|c| c.credentials = Some(key.clone()));
    (server, key)
}

/// The next message event, skipping rosters and pictures.
fn next_message(rx: &Receiver<SessionEvent>) -> (String, String) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left).expect("a message in time") {
            SessionEvent::Message { from, text } => return (from, text),
            _ => continue,
        }
    }
}

/// A TCP proxy in front of `target` that keeps a copy of every byte that
/// passes (both directions) and holds each chunk `delay` before passing it
/// on: a wire to listen on, and a WAN without `netem`.
struct Proxy {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<u8>>>,
}

impl Proxy {
    fn start(target: SocketAddr, delay: Duration) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let copy = seen.clone();
        thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let Ok(server) = TcpStream::connect(target) else {
                    return;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                pump(
                    client.try_clone().unwrap(),
                    server.try_clone().unwrap(),
                    delay,
                    copy.clone(),
                );
                pump(server, client, delay, copy.clone());
            }
        });
        Proxy { addr, seen }
    }

    fn saw(&self, text: &str) -> bool {
        let seen = self.seen.lock().unwrap();
        seen.windows(text.len()).any(|w| w == text.as_bytes())
    }
}

/// Copies `from` to `to`, each chunk `delay` after it arrived.
fn pump(mut from: TcpStream, mut to: TcpStream, delay: Duration, seen: Arc<Mutex<Vec<u8>>>) {
    let (tx, rx) = unbounded::<(Instant, Vec<u8>)>();
    thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    seen.lock().unwrap().extend_from_slice(&buf[..n]);
                    if tx
                        .send((Instant::now() + delay, buf[..n].to_vec()))
                        .is_err()
                    {
                        return;
                    }
                }
            }
        }
    });
    thread::spawn(move || {
        for (due, chunk) in rx {
            thread::sleep(due.saturating_duration_since(Instant::now()));
            if to.write_all(&chunk).is_err() {
                return;
            }
        }
        let _ = to.shutdown(std::net::Shutdown::Write);
    });
}

#[test]
fn hubchat_to_hubchat_is_encrypted_and_nobody_on_the_wire_reads_the_messages() {
    let (mut server, key) = server_with_key();
    let proxy = Proxy::start(server.addr, Duration::ZERO);
    let alice_cfg = config(proxy.addr, "alice");
    let alice_identity = alice_cfg.identity.as_ref().unwrap().fingerprint();
    let (alice, _arx) = join(&alice_cfg).expect("alice joins");
    let (bob, brx) = join(&config(server.addr, "bob")).expect("bob joins");

    assert_eq!(
        alice.encryption,
        Encryption::Encrypted {
            server: key.fingerprint()
        }
    );
    let joined = server.wait_for(
        "alice joined",
        |e| matches!(e, ServerEvent::Joined { who, .. } if &*who.name == "alice"),
    );
    let ServerEvent::Joined { identity, .. } = joined else {
        unreachable!()
    };
    assert_eq!(
        identity,
        Some(alice_identity),
        "the server knows alice by her certificate"
    );

    alice.send(&bob.id, "the secret plans for friday");
    assert_eq!(
        next_message(&brx),
        (alice.id.clone(), "the secret plans for friday".to_string())
    );
    assert!(
        !proxy.saw("secret plans"),
        "the message crossed the wire encrypted"
    );
    assert!(
        !proxy.saw("bob"),
        "the list of who is online is encrypted too"
    );
}

#[test]
fn an_original_client_still_talks_in_plain_text_beside_encrypted_ones() {
    let (server, _key) = server_with_key();
    let proxy = Proxy::start(server.addr, Duration::ZERO);
    let mut old = Peer::join_original(proxy.addr, "old");
    let (alice, arx) = join(&config(server.addr, "alice")).expect("alice joins");

    // The original client hears of alice in the plain roster it knows.
    let roster = old.recv_roster();
    assert!(roster.0.iter().any(|(_, p)| p.name == "alice"));
    alice.send("client0", "hello old friend");
    // (with the newline original clients expect at the end of a message)
    assert_eq!(
        old.recv_message(),
        (alice.id.clone(), "hello old friend\n".into())
    );
    old.message(&alice.id, "hi alice\n");
    assert_eq!(next_message(&arx), ("client0".into(), "hi alice\n".into()));
    assert!(
        proxy.saw("hello old friend"),
        "the original protocol is plain text"
    );
}

#[test]
fn a_pinned_server_with_another_certificate_is_refused_until_the_user_accepts_it() {
    let (server, key) = server_with_key();
    let before = Fingerprint::of(b"the certificate the server had before");
    let pinned = SessionConfig {
        pin: Some(before),
        ..config(server.addr, "alice")
    };
    match join(&pinned) {
        Err(ConnectError::KeyChanged {
            pinned, offered, ..
        }) => {
            assert_eq!((pinned, offered), (before, key.fingerprint()));
        }
        other => panic!(
            "expected a changed-key refusal, got {:?}",
            other.map(|_| ())
        ),
    }
    let warning = ConnectError::KeyChanged {
        addr: "x".into(),
        pinned: before,
        offered: key.fingerprint(),
    }
    .to_string();
    assert!(warning.contains(&key.fingerprint().short()), "{warning}");
    assert!(warning.contains(&before.short()), "{warning}");

    // The user accepted the new key: it is the pin now.
    let accepted = SessionConfig {
        pin: Some(key.fingerprint()),
        ..pinned
    };
    let (session, _rx) = join(&accepted).expect("joins with the accepted key");
    assert!(matches!(session.encryption, Encryption::Encrypted { .. }));
}

/// A server speaking the original protocol only: INFO request, then the
/// roster; it reports what it read after that.
fn plain_server() -> (SocketAddr, thread::JoinHandle<Vec<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(PATIENCE)).unwrap();
        s.write_all(&wire(
            r#"{"flag": "INFO", "data": "Send your information!"}"#,
        ))
        .unwrap();
        let mut reader =
            hubchat::common::connection::FrameReader::new(s.try_clone().unwrap(), 1 << 20);
        let mut bodies = Vec::new();
        let first = reader.read_frame().unwrap().unwrap().to_vec();
        bodies.push(String::from_utf8(first).unwrap());
        s.write_all(&wire(
            r#"{"flag": "ALL CLIENTS", "data": {"client0": {"name": "alice", "color": "blue", "image_name": "image_3.png"}}}"#,
        ))
        .unwrap();
        while let Ok(Some(body)) = reader.read_frame() {
            bodies.push(String::from_utf8_lossy(body).into_owned());
        }
        bodies
    });
    (addr, handle)
}

#[test]
fn an_original_server_is_joined_in_plain_text_and_marked_not_encrypted() {
    let (addr, server) = plain_server();
    let (session, _rx) = join(&config(addr, "alice")).expect("joins the original server");
    assert_eq!(session.encryption, Encryption::NotEncrypted);
    session.disconnect();
    let bodies = server.join().unwrap();
    assert!(bodies[0].contains(r#""name": "alice""#), "{bodies:?}");
    assert!(!bodies[0].contains("password"), "{bodies:?}");
}

#[test]
fn a_pinned_server_that_suddenly_offers_no_encryption_is_refused() {
    let (addr, server) = plain_server();
    let downgraded = SessionConfig {
        pin: Some(Fingerprint::of(b"the server's certificate")),
        password: Some("hunter2".into()),
        ..config(addr, "alice")
    };
    match join(&downgraded) {
        Err(e @ ConnectError::NotEncrypted { .. }) => {
            assert!(e.to_string().contains("offers none"), "{e}")
        }
        other => panic!("expected a downgrade refusal, got {:?}", other.map(|_| ())),
    }
    // The plain server had let alice in: she said goodbye, so it lists no
    // ghost; and the password never crossed in plain text.
    let bodies = server.join().unwrap();
    assert_eq!(bodies.len(), 2, "{bodies:?}");
    assert!(bodies[1].contains("DISCONNECT"), "{bodies:?}");
    assert!(!bodies.iter().any(|b| b.contains("hunter2")), "{bodies:?}");
}

#[test]
fn encryption_holds_over_a_wan_with_200_ms_round_trips() {
    let (server, key) = server_with_key();
    let wan = Proxy::start(server.addr, Duration::from_millis(100));
    let started = Instant::now();
    let (alice, arx) = join(&SessionConfig {
        timeout: Duration::from_secs(10),
        ..config(wan.addr, "alice")
    })
    .expect("alice joins across the WAN");
    let joined_in = started.elapsed();
    assert_eq!(
        alice.encryption,
        Encryption::Encrypted {
            server: key.fingerprint()
        }
    );
    // Plain INFO, STARTTLS, TLS (1 round trip), INFO, WELCOME: at least
    // three round trips of 200 ms.
    assert!(joined_in >= Duration::from_millis(600), "{joined_in:?}");
    let (bob, _brx) = join(&config(server.addr, "bob")).expect("bob joins");
    bob.send(&alice.id, "across the wan");
    assert_eq!(
        next_message(&arx),
        (bob.id.clone(), "across the wan".into())
    );
    assert!(!wan.saw("across the wan"));
}

/// A TCP proxy in front of `target` that passes the server's bytes on
/// only while its gate is open: a client that stops reading, as the server
/// sees it.
struct Gate {
    addr: SocketAddr,
    open: Arc<(Mutex<bool>, std::sync::Condvar)>,
}

impl Gate {
    fn start(target: SocketAddr) -> Gate {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let open = Arc::new((Mutex::new(true), std::sync::Condvar::new()));
        let gate = open.clone();
        thread::spawn(move || {
            let Ok((mut client, _)) = listener.accept() else {
                return;
            };
            let Ok(mut server) = TcpStream::connect(target) else {
                return;
            };
            let (mut c, mut s) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            thread::spawn(move || {
                let _ = std::io::copy(&mut c, &mut s);
            });
            let mut buf = [0u8; 4096];
            loop {
                {
                    let (lock, cv) = &*gate;
                    let mut is_open = lock.lock().unwrap();
                    while !*is_open {
                        is_open = cv.wait(is_open).unwrap();
                    }
                }
                match server.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        if client.write_all(&buf[..n]).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        Gate { addr, open }
    }

    fn set(&self, open: bool) {
        *self.open.0.lock().unwrap() = open;
        self.open.1.notify_all();
    }
}

#[test]
fn an_encrypted_client_that_falls_behind_gets_every_message_in_order() {
    // Room to queue all of it: the point is the order, not the limits.
    let server = TestServer::start_with(|c| {
        c.credentials = Some(new_identity());
        c.queue.soft_bytes = 32 << 20;
        c.queue.hard_bytes = 64 << 20;
    });
    let gate = Gate::start(server.addr);
    let (bob, brx) = join(&config(gate.addr, "bob")).expect("bob joins");
    let (alice, _arx) = join(&config(server.addr, "alice")).expect("alice joins");
    // Bob stops reading while alice sends far more than the sockets
    // between them hold: the server holds sealed bytes its socket did not
    // take, and queues the rest for a writer thread.
    gate.set(false);
    let n = 12_000;
    let filler = "x".repeat(1_000);
    for i in 0..n {
        alice.send(&bob.id, &format!("{i:05} {filler}"));
    }
    thread::sleep(Duration::from_millis(300));
    gate.set(true);
    for i in 0..n {
        assert_eq!(
            next_message(&brx),
            (alice.id.clone(), format!("{i:05} {filler}")),
            "message {i} decrypted, in order"
        );
    }
}

fn offer_tls(name: &str) -> ClientPacket {
    ClientPacket::Info(Info {
        name: name.into(),
        color: "blue".into(),
        image_name: "image_1.png".into(),
        hubchat: Some(ClientHello {
            version: 2,
            tls: true,
            ..Default::default()
        }),
    })
}

#[test]
fn a_stalled_tls_handshake_is_dropped_at_the_handshake_deadline() {
    let mut server = TestServer::start_with(|c| c.handshake_timeout = Duration::from_secs(1));
    let mut peer = Peer::connect(server.addr);
    assert_eq!(peer.recv(), ServerPacket::InfoRequest);
    peer.send(&offer_tls("slow"));
    assert_eq!(peer.recv(), ServerPacket::StartTls);
    // ... and then never a TLS hello.
    let started = Instant::now();
    let refused = server.wait_for("the stalled handshake ends", |e| {
        matches!(e, ServerEvent::Refused { .. })
    });
    let waited = started.elapsed();
    assert!(waited < Duration::from_secs(3), "{waited:?}");
    match refused {
        ServerEvent::Refused {
            reason: LeaveReason::Refused { code, .. },
            ..
        } => assert_eq!(code, ErrorCode::HandshakeTimeout),
        other => panic!("{other:?}"),
    }
    let mut rest = Vec::new();
    let _ = peer.stream.read_to_end(&mut rest);
}

#[test]
fn a_server_for_encrypted_clients_only_turns_original_ones_away_with_a_sentence() {
    let (server, _key) = {
        let key = new_identity();
        let s = TestServer::start_with(|c| {
            c.credentials = Some(key.clone());
            c.allow_original = false;
        });
        (s, key)
    };
    let mut old = Peer::connect(server.addr);
    assert_eq!(old.recv(), ServerPacket::InfoRequest);
    old.send(&ClientPacket::Info(support::info("old", false)));
    match old.recv() {
        ServerPacket::ServerClose { message } => {
            assert!(message.contains("only encrypted"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    // A HubChat client that does not offer TLS is told in its own form.
    let mut plain = Peer::connect(server.addr);
    assert_eq!(plain.recv(), ServerPacket::InfoRequest);
    plain.send(&ClientPacket::Info(support::info("plain", true)));
    match plain.recv() {
        ServerPacket::Error(e) => assert_eq!(e.code, ErrorCode::EncryptionRequired),
        other => panic!("{other:?}"),
    }
    // Encrypted HubChat clients join.
    let (alice, _rx) = join(&config(server.addr, "alice")).expect("alice joins");
    assert!(matches!(alice.encryption, Encryption::Encrypted { .. }));
}
