//! The client controller, headless, against a real server on loopback: a
//! session's whole life (connect, lose, reconnect, disconnect, cancel) over
//! one model whose conversations survive every reconnect.

mod support;

use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{unbounded, Receiver};
use hubchat::client::controller::{Change, Controller, Input, Said, Status};
use hubchat::client::model::{Author, Mark, EVERYONE_KEY};
use hubchat::client::{ConnectError, Encryption};
use hubchat::common::packet::ErrorCode;
use support::{Peer, TestServer, PATIENCE};

/// A controller and the channel its worker threads report into, as the
/// window has them.
struct Client {
    controller: Controller,
    inbox: Receiver<Input>,
    name: String,
    /// This installation's certificate: the same one on every connect, as
    /// the real client keeps it in its settings folder.
    identity: hubchat::common::tls::Credentials,
}

impl Client {
    fn new(name: &str) -> Client {
        let (tx, inbox) = unbounded();
        let controller = Controller::new(Arc::new(move |input| {
            let _ = tx.send(input);
        }));
        Client {
            controller,
            inbox,
            name: name.into(),
            identity: support::new_identity(),
        }
    }

    fn connect(&mut self, addr: SocketAddr) -> Change {
        let (config, identity) = support::client_config(addr, &self.name, &self.identity);
        self.controller.connect(config, identity)
    }

    /// Handles reports until `done` holds; returns every change seen.
    fn until(&mut self, what: &str, done: impl Fn(&Controller) -> bool) -> Vec<Change> {
        let deadline = Instant::now() + PATIENCE;
        let mut changes = Vec::new();
        while !done(&self.controller) {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "timed out waiting for {what}");
            if let Ok(input) = self.inbox.recv_timeout(left) {
                changes.push(self.controller.handle(input));
            }
        }
        changes
    }

    fn connected(&mut self, addr: SocketAddr) {
        self.connect(addr);
        self.until("connected", |c| {
            matches!(c.status(), Status::Connected { .. })
        });
    }

    /// Waits until our list holds `n` clients.
    fn listing(&mut self, n: usize) {
        self.until(&format!("{n} listed"), |c| c.model.contacts.len() == n);
    }

    fn id_of(&self, name: &str) -> String {
        self.controller
            .model
            .contacts
            .iter()
            .find(|c| c.profile.name == name)
            .map(|c| c.id.clone())
            .unwrap_or_else(|| panic!("{name} is listed"))
    }

    fn texts(&self, key: &str) -> Vec<String> {
        self.controller.model.conversations[key]
            .lines
            .iter()
            .map(|l| l.text.clone())
            .collect()
    }
}

#[test]
fn connecting_lists_everyone_and_logs_in_plain_words() {
    let server = TestServer::start();
    let mut alice = Client::new("alice");
    let change = alice.connect(server.addr);
    assert!(change.status);
    assert!(matches!(
        alice.controller.status(),
        Status::Connecting { .. }
    ));
    let changes = alice.until("connected", |c| {
        matches!(c.status(), Status::Connected { .. })
    });
    let log: Vec<String> = changes.into_iter().flat_map(|c| c.log).collect();
    let port = server.addr.port();
    assert!(
        log.contains(&format!("Connected to 127.0.0.1 (port {port}) as alice.")),
        "{log:?}"
    );
    assert!(
        !log.iter().any(|l| l.contains("client0")),
        "no internal ids: {log:?}"
    );
    let own = alice
        .controller
        .model
        .own
        .clone()
        .expect("our face is known");
    assert_eq!(own.name, "alice");
}

#[test]
fn a_conversation_survives_the_user_disconnecting_and_reconnecting() {
    let server = TestServer::start();
    let mut alice = Client::new("alice");
    let mut bob = Client::new("bob");
    alice.connected(server.addr);
    bob.connected(server.addr);
    alice.listing(2);
    let bob_id = alice.id_of("bob");
    let key = alice
        .controller
        .model
        .open(&bob_id)
        .expect("a conversation");
    assert_eq!(alice.controller.say(&key, "before"), Said::Sent);
    bob.until("before", |c| c.model.conversations.contains_key("alice"));

    let change = alice.controller.disconnect();
    assert_eq!(alice.controller.status(), &Status::Offline);
    assert!(change.update.conversations.contains(&key));
    assert!(!alice.controller.model.conversations[&key].can_send());
    assert!(
        alice.controller.model.contacts.is_empty(),
        "the list empties"
    );
    assert_eq!(
        alice.controller.model.own.as_ref().map(|f| f.name.as_str()),
        Some("alice"),
        "the header still knows who we are"
    );

    alice.connected(server.addr);
    alice.listing(2);
    let c = &alice.controller.model.conversations[&key];
    assert!(c.can_send(), "bob is back in the same conversation");
    assert_eq!(c.face.name, "bob");
    assert_eq!(alice.controller.say(&key, "after"), Said::Sent);
    bob.until("after", |c| c.model.conversations["alice"].lines.len() >= 2);
    let texts = alice.texts(&key);
    assert_eq!(texts.first().map(String::as_str), Some("before"));
    assert_eq!(texts.last().map(String::as_str), Some("after"));
}

#[test]
fn a_server_restart_is_a_loss_and_connecting_again_picks_every_conversation_up() {
    // The server keeps its key across the restart, as the real one keeps
    // it in its settings folder.
    let server_key = support::new_identity();
    let mut server = TestServer::start_with(|c| c.credentials = Some(server_key.clone()));
    let addr = server.addr;
    let mut alice = Client::new("alice");
    let mut bob = Client::new("bob");
    alice.connected(addr);
    bob.connected(addr);
    alice.listing(2);
    bob.listing(2);
    let key = alice
        .controller
        .model
        .open(&alice.id_of("bob"))
        .expect("a conversation");
    assert_eq!(alice.controller.say(&key, "hello"), Said::Sent);
    bob.until("hello", |c| c.model.conversations.contains_key("alice"));

    server.stop();
    for client in [&mut alice, &mut bob] {
        let changes = client.until("the loss", |c| matches!(c.status(), Status::Lost { .. }));
        assert!(changes.iter().any(|c| c.status && c.update.lost.is_some()));
        assert!(client.controller.session().is_none());
    }
    assert!(!alice.controller.model.conversations[&key].can_send());

    let _server = TestServer::start_with(|c| {
        c.bind = addr;
        c.credentials = Some(server_key.clone());
    });
    alice.connected(addr);
    bob.connected(addr);
    alice.listing(2);
    bob.listing(2);
    assert_eq!(alice.controller.say(&key, "back again?"), Said::Sent);
    bob.until("back again?", |c| {
        c.model.conversations["alice"]
            .lines
            .iter()
            .any(|l| l.text == "back again?")
    });
    let bob_lines = &bob.controller.model.conversations["alice"].lines;
    let said: Vec<&str> = bob_lines
        .iter()
        .filter(|l| l.author == Author::Partner)
        .map(|l| l.text.as_str())
        .collect();
    assert_eq!(said, ["hello", "back again?"], "one transcript, in order");
}

#[test]
fn cancelling_a_connection_ignores_whatever_that_attempt_says_later() {
    // A server that accepts and never answers: the handshake hangs until
    // the client gives up on it.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let mut alice = Client::new("alice");
    alice.connect(addr);
    let (mut socket, _) = listener.accept().unwrap();
    let change = alice.controller.cancel();
    assert!(change.status);
    assert_eq!(alice.controller.status(), &Status::Offline);
    // Now the old attempt fails (the server closes it); nothing changes.
    let _ = socket.write_all(b"garbage!!!");
    drop(socket);
    let late = alice
        .inbox
        .recv_timeout(PATIENCE)
        .expect("the attempt ends");
    let change = alice.controller.handle(late);
    assert!(!change.status, "a cancelled attempt changes nothing");
    assert!(change.failed.is_none(), "and complains about nothing");
    assert_eq!(alice.controller.status(), &Status::Offline);
}

#[test]
fn a_cancelled_attempt_that_joins_after_all_leaves_at_once() {
    let mut server = TestServer::start();
    let mut alice = Client::new("alice");
    alice.connect(server.addr);
    alice.controller.cancel();
    // The attempt was already under way and joins; it must leave again.
    server.wait_for("alice joined", |e| {
        matches!(e, hubchat::server::ServerEvent::Joined { .. })
    });
    // Its first roster comes ahead of the join report; handle both.
    while let Ok(late) = alice.inbox.recv_timeout(Duration::from_millis(500)) {
        let change = alice.controller.handle(late);
        assert!(!change.status && change.log.is_empty(), "stale: ignored");
    }
    server.wait_for("alice left", |e| {
        matches!(e, hubchat::server::ServerEvent::Left { .. })
    });
    assert_eq!(alice.controller.status(), &Status::Offline);
    assert!(alice.controller.session().is_none());
}

#[test]
fn a_failed_connection_says_why_and_stays_offline() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener); // nothing listens there now
    let mut alice = Client::new("alice");
    alice.connect(addr);
    let changes = alice.until("the failure", |c| c.status().idle());
    let failed = changes.iter().find_map(|c| c.failed.clone());
    assert!(failed.is_some(), "the form is told why");
    assert_eq!(alice.controller.status(), &Status::Offline);
}

#[test]
fn a_peer_that_joins_or_leaves_is_logged_by_name() {
    let server = TestServer::start();
    let mut alice = Client::new("alice");
    alice.connected(server.addr);
    alice.listing(1);
    let mut zoe = Peer::join_original(server.addr, "zoe");
    let log: Vec<String> = alice
        .until("zoe listed", |c| c.model.contacts.len() == 2)
        .into_iter()
        .flat_map(|c| c.log)
        .collect();
    assert_eq!(log, ["zoe joined."]);
    zoe.send(&hubchat::common::packet::ClientPacket::Disconnect);
    let log: Vec<String> = alice
        .until("zoe gone", |c| c.model.contacts.len() == 1)
        .into_iter()
        .flat_map(|c| c.log)
        .collect();
    assert_eq!(log, ["zoe left."]);
}

#[test]
fn a_message_longer_than_the_server_relays_is_kept_back_with_a_reason() {
    // The server says in WELCOME it relays at most 100 bytes of text.
    let server = TestServer::start_with(|c| c.max_message = 100);
    let mut alice = Client::new("alice");
    let mut bob = Client::new("bob");
    alice.connected(server.addr);
    bob.connected(server.addr);
    alice.listing(2);
    let key = alice
        .controller
        .model
        .open(&alice.id_of("bob"))
        .expect("a conversation");

    let long = "é".repeat(51); // 102 bytes of UTF-8, 51 characters
    assert_eq!(
        alice.controller.say(&key, &long),
        Said::TooLong { limit: 100 }
    );
    let notice = alice.controller.model.conversations[&key]
        .lines
        .last()
        .expect("a line saying why");
    let (author, text) = (notice.author.clone(), notice.text.clone());
    assert_eq!(author, Author::Notice);
    assert!(
        text.contains("102 bytes") && text.contains("100 bytes"),
        "the notice gives both sizes: {text}"
    );
    assert!(
        alice.controller.model.conversations[&key]
            .lines
            .iter()
            .all(|l| l.author != Author::Me),
        "nothing recorded as said"
    );

    // Exactly the limit goes through, and it is the first thing bob hears.
    let fits = "a".repeat(100);
    assert_eq!(alice.controller.say(&key, &fits), Said::Sent);
    bob.until("the message that fits", |c| {
        c.model.conversations.contains_key("alice")
    });
    let heard: Vec<String> = bob.controller.model.conversations["alice"]
        .lines
        .iter()
        .filter(|l| l.author == Author::Partner)
        .map(|l| l.text.clone())
        .collect();
    assert_eq!(heard, [fits]);
}

/// Waits until the client is idle after an attempt; returns its failure.
fn failure(client: &mut Client) -> ConnectError {
    client.until("the attempt to end", |c| c.status().idle());
    client
        .controller
        .failure()
        .cloned()
        .expect("the attempt failed")
}

#[test]
fn the_first_join_pins_the_servers_key_and_another_key_is_refused_until_accepted() {
    let first_key = support::new_identity();
    let mut server = TestServer::start_with(|c| c.credentials = Some(first_key.clone()));
    let addr = server.addr;
    let mut alice = Client::new("alice");
    alice.connect(addr);
    let changes = alice.until("connected", |c| {
        matches!(c.status(), Status::Connected { .. })
    });
    assert!(
        changes.iter().any(|c| c.known),
        "the window is told to save the pin"
    );
    let Status::Connected { encryption, .. } = alice.controller.status().clone() else {
        unreachable!()
    };
    assert_eq!(
        encryption,
        Encryption::Encrypted {
            server: first_key.fingerprint()
        }
    );
    let host = addr.ip().to_string();
    assert_eq!(
        alice.controller.known.pin(&host, addr.port()),
        Some(first_key.fingerprint())
    );
    alice.controller.disconnect();

    // Someone else answers on that address, with another key.
    server.stop();
    let impostor = support::new_identity();
    let _other = TestServer::start_with(|c| {
        c.bind = addr;
        c.credentials = Some(impostor.clone());
    });
    alice.connect(addr);
    match failure(&mut alice) {
        ConnectError::KeyChanged {
            pinned, offered, ..
        } => {
            assert_eq!(pinned, first_key.fingerprint());
            assert_eq!(offered, impostor.fingerprint());
        }
        other => panic!("expected a changed key, got {other}"),
    }
    // Connecting again changes nothing: the pin holds.
    alice.connect(addr);
    assert!(matches!(
        failure(&mut alice),
        ConnectError::KeyChanged { .. }
    ));

    // Only the deliberate acceptance replaces the pin.
    let change = alice.controller.accept_server_change();
    assert!(change.known);
    alice.until("connected", |c| {
        matches!(c.status(), Status::Connected { .. })
    });
    assert_eq!(
        alice.controller.known.pin(&host, addr.port()),
        Some(impostor.fingerprint())
    );
}

#[test]
fn a_password_is_asked_for_then_remembered_and_a_wrong_remembered_one_forgotten() {
    let hash = hubchat::server::password::hash("open sesame").unwrap();
    let server = TestServer::start_with(|c| c.password = Some(hash.clone()));
    let mut alice = Client::new("alice");
    alice.connect(server.addr);
    match failure(&mut alice) {
        ConnectError::Rejected {
            code: Some(ErrorCode::PasswordRequired),
            ..
        } => {}
        other => panic!("expected a password to be asked for, got {other}"),
    }
    alice
        .controller
        .retry_with_password("open sesame".into(), true);
    let changes = alice.until("connected", |c| {
        matches!(c.status(), Status::Connected { .. })
    });
    assert!(changes.iter().any(|c| c.known));
    let host = server.addr.ip().to_string();
    let port = server.addr.port();
    assert_eq!(
        alice.controller.known.password(&host, port).as_deref(),
        Some("open sesame")
    );

    // Next time the remembered password is used without asking.
    alice.controller.disconnect();
    alice.connected(server.addr);
    alice.controller.disconnect();

    // The owner changed it: the remembered one is wrong, and forgotten.
    alice
        .controller
        .known
        .remember_password(&host, port, Some("old".into()));
    alice.connect(server.addr);
    match failure(&mut alice) {
        ConnectError::Rejected {
            code: Some(ErrorCode::PasswordWrong),
            ..
        } => {}
        other => panic!("expected a wrong password, got {other}"),
    }
    assert_eq!(alice.controller.known.password(&host, port), None);
}

#[test]
fn a_kicked_client_is_told_the_owners_reason_as_why_the_connection_ended() {
    let server = TestServer::start();
    let mut alice = Client::new("alice");
    alice.connected(server.addr);
    let id = alice.controller.session().unwrap().id.clone();
    assert!(server.server.as_ref().unwrap().kick(&id, "time for lunch"));
    alice.until("the loss", |c| matches!(c.status(), Status::Lost { .. }));
    let Status::Lost { reason } = alice.controller.status() else {
        unreachable!()
    };
    assert!(reason.contains("time for lunch"), "{reason}");
}

/// The mark on the last line we wrote in conversation `key`.
fn last_mark(client: &Client, key: &str) -> Option<Mark> {
    client.controller.model.conversations[key]
        .lines
        .iter()
        .rev()
        .find(|l| l.author == Author::Me)
        .and_then(|l| l.mark.clone())
}

#[test]
fn a_message_is_marked_sending_then_delivered_then_read_as_its_recipient_sees_it() {
    let server = TestServer::start();
    let mut alice = Client::new("alice");
    let mut bob = Client::new("bob");
    alice.connected(server.addr);
    bob.connected(server.addr);
    alice.listing(2);
    let key = alice.controller.model.open(&alice.id_of("bob")).unwrap();
    assert_eq!(alice.controller.say(&key, "hi bob"), Said::Sent);
    assert_eq!(last_mark(&alice, &key), Some(Mark::Sending));

    // bob's program has it (it confirms by itself), but he has not looked.
    bob.until("alice's message", |c| {
        c.model.conversations.contains_key("alice")
    });
    alice.until("delivered", |c| {
        c.model.conversations["bob"].lines[0].mark == Some(Mark::Delivered)
    });
    // bob opens the conversation: read.
    bob.controller.model.look_at(Some("alice"));
    bob.controller.send_receipts();
    alice.until("read", |c| {
        c.model.conversations["bob"].lines[0].mark == Some(Mark::Read)
    });
}

#[test]
fn messages_written_while_disconnected_wait_and_go_out_in_order_once_after_the_reconnect() {
    let server = TestServer::start();
    let mut alice = Client::new("alice");
    let mut bob = Client::new("bob");
    alice.connected(server.addr);
    bob.connected(server.addr);
    alice.listing(2);
    let key = alice.controller.model.open(&alice.id_of("bob")).unwrap();
    alice.controller.disconnect();
    for text in ["one", "two", "three"] {
        assert_eq!(alice.controller.say(&key, text), Said::Sent);
    }
    assert_eq!(last_mark(&alice, &key), Some(Mark::Sending), "waiting");
    alice.connected(server.addr);
    bob.until("three messages", |c| {
        c.model.conversations.get("alice").is_some_and(|c| {
            c.lines
                .iter()
                .filter(|l| l.author == Author::Partner)
                .count()
                >= 3
        })
    });
    alice.until("all delivered", |c| {
        c.model.conversations["bob"]
            .lines
            .iter()
            .filter(|l| l.author == Author::Me)
            .all(|l| l.mark == Some(Mark::Delivered))
    });
    // Nothing more comes: each went once.
    std::thread::sleep(Duration::from_millis(300));
    while let Ok(input) = bob.inbox.try_recv() {
        bob.controller.handle(input);
    }
    let heard: Vec<String> = bob.controller.model.conversations["alice"]
        .lines
        .iter()
        .filter(|l| l.author == Author::Partner)
        .map(|l| l.text.clone())
        .collect();
    assert_eq!(heard, ["one", "two", "three"]);
}

#[test]
fn the_everyone_room_reaches_everyone_under_the_authors_name() {
    let server = TestServer::start();
    let mut alice = Client::new("alice");
    let mut bob = Client::new("bob");
    alice.connected(server.addr);
    bob.connected(server.addr);
    alice.listing(2);
    let room = alice.controller.model.open_room();
    assert_eq!(room, EVERYONE_KEY);
    alice.controller.say(&room, "morning all");
    bob.until("the room message", |c| {
        c.model.conversations.contains_key(EVERYONE_KEY)
    });
    let line = bob.controller.model.conversations[EVERYONE_KEY].lines[0].clone();
    assert_eq!(
        (line.author, line.text.as_str()),
        (Author::Member("alice".into()), "morning all")
    );
    alice.until("sent to the room", |c| {
        last_mark_is(c, EVERYONE_KEY, Mark::Sent)
    });
}

fn last_mark_is(c: &Controller, key: &str, mark: Mark) -> bool {
    c.model.conversations[key]
        .lines
        .iter()
        .rev()
        .find(|l| l.author == Author::Me)
        .is_some_and(|l| l.mark == Some(mark.clone()))
}

#[test]
fn a_message_to_someone_away_is_marked_kept_and_reaches_them_when_they_are_back() {
    let server = TestServer::start();
    let mut alice = Client::new("alice");
    let mut bob = Client::new("bob");
    bob.connected(server.addr);
    bob.controller.disconnect();
    alice.connected(server.addr);
    alice.until("bob listed as away", |c| !c.model.away.is_empty());
    let key = alice
        .controller
        .model
        .open_away("bob")
        .expect("bob's conversation");
    alice.controller.say(&key, "for when you are back");
    alice.until("kept", |c| last_mark_is(c, "bob", Mark::Kept));
    bob.connected(server.addr);
    bob.until("the kept message", |c| {
        c.model.conversations.contains_key("alice")
    });
    assert_eq!(bob.texts("alice"), ["for when you are back"]);
    alice.until("delivered", |c| last_mark_is(c, "bob", Mark::Delivered));
}
