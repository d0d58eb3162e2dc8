//! Conversations that last (protocol version 3), against a real server:
//! the Everyone room, messages kept for people who are away, receipts,
//! typing, and what original clients see of all that.

mod support;

use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use hubchat::client::{Session, SessionConfig, SessionEvent};
use hubchat::common::packet::{ChatIn, ChatTarget, Delivery, ReceiptIn};
use hubchat::common::tls::Credentials;
use hubchat::server::ServerEvent;
use support::{join, new_identity, wire, Peer, TestServer, PATIENCE};

fn config(port: u16, name: &str, me: Option<&Credentials>) -> SessionConfig {
    SessionConfig {
        host: "127.0.0.1".into(),
        port,
        name: name.into(),
        color: "blue".into(),
        image_name: "image_3.png".into(),
        picture: None,
        timeout: Duration::from_secs(5),
        identity: me.cloned(),
        pin: None,
        password: None,
    }
}

/// A person: a HubChat client with an identity of its own.
struct Person {
    session: Session,
    events: Receiver<SessionEvent>,
}

impl Person {
    fn join(port: u16, name: &str, me: &Credentials) -> Person {
        let (session, events) = join(&config(port, name, Some(me))).expect("joins");
        assert!(session.speaks_chat(), "a version 3 server");
        Person { session, events }
    }

    /// The next event `pick` chooses, skipping others.
    fn until<T>(&self, what: &str, pick: impl Fn(SessionEvent) -> Option<T>) -> T {
        let deadline = Instant::now() + PATIENCE;
        loop {
            match self.events.recv_deadline(deadline) {
                Ok(event) => {
                    if let Some(found) = pick(event) {
                        return found;
                    }
                }
                Err(_) => panic!("waited in vain for {what}"),
            }
        }
    }

    fn chat(&self, what: &str) -> ChatIn {
        self.until(what, |e| match e {
            SessionEvent::Chat(c) => Some(c),
            _ => None,
        })
    }

    fn receipt(&self, what: &str) -> ReceiptIn {
        self.until(what, |e| match e {
            SessionEvent::Receipt(r) => Some(r),
            _ => None,
        })
    }

    /// Everything that arrives until `quiet` passes without an event.
    fn drain(&self, quiet: Duration) -> Vec<SessionEvent> {
        let mut out = Vec::new();
        while let Ok(e) = self.events.recv_timeout(quiet) {
            out.push(e);
        }
        out
    }
}

fn to(name: &str) -> ChatTarget {
    ChatTarget::Person(name.into())
}

#[test]
fn a_room_message_reaches_everyone_and_original_clients_see_it_prefixed_from_the_sender() {
    let mut server = TestServer::start();
    let alice = Person::join(server.addr.port(), "alice", &new_identity());
    let bob = Person::join(server.addr.port(), "bob", &new_identity());
    let mut carol = Peer::join_original(server.addr, "carol");
    alice.session.chat("a1", ChatTarget::Everyone, "hello all");

    let heard = bob.chat("the room message");
    assert_eq!(
        (
            heard.name.as_str(),
            heard.text.as_str(),
            heard.room.as_deref()
        ),
        ("alice", "hello all", Some("everyone"))
    );
    assert_eq!(heard.from.as_deref(), Some(alice.session.id.as_str()));
    let sent = alice.receipt("the room's receipt");
    assert_eq!((sent.id.as_str(), sent.state), ("a1", Delivery::Sent));
    // The original client, which knows no rooms: a direct message from
    // alice, prefixed, with the newline it expects, byte for byte.
    let body = format!(
        r#"{{"flag": "MESSAGE", "data": {{"message": "[Everyone] hello all\n", "partner_name": "{}", "source_client": "{}"}}}}"#,
        carol.id, alice.session.id
    );
    let expected = wire(&body);
    let mut got = vec![0u8; expected.len()];
    std::io::Read::read_exact(&mut carol.stream, &mut got).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(&expected)
    );
    // What carol writes back goes to alice alone.
    carol.message(&alice.session.id, "hi alice\n");
    let back = alice.until("carol's answer", |e| match e {
        SessionEvent::Message { from, text } => Some((from, text)),
        _ => None,
    });
    assert_eq!(back.1, "hi alice\n");
    server.wait_for("the room in the log", |e| {
        matches!(e, ServerEvent::Relayed { from, to, text }
            if &*from.name == "alice" && &*to.name == "everyone" && text == "hello all")
    });
}

#[test]
fn a_message_to_someone_away_is_kept_and_delivered_in_order_with_its_time_when_they_come_back() {
    let server = TestServer::start();
    let port = server.addr.port();
    let bob_pc = new_identity();
    // bob has been here before: his name is his.
    Person::join(port, "bob", &bob_pc).session.disconnect();

    let alice = Person::join(port, "alice", &new_identity());
    let away = alice.until("bob listed as away", |e| match e {
        SessionEvent::People(p) => Some(p),
        _ => None,
    });
    assert_eq!(
        away.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
        ["bob"]
    );
    let before = hubchat::server::post::now_ms();
    for (id, text) in [("m1", "one"), ("m2", "two"), ("m3", "three")] {
        alice.session.chat(id, to("bob"), text);
        let r = alice.receipt("kept");
        assert_eq!(
            (r.id.as_str(), r.state, r.name.as_deref()),
            (id, Delivery::Kept, Some("bob"))
        );
    }
    std::thread::sleep(Duration::from_millis(30));

    let bob = Person::join(port, "bob", &bob_pc);
    let got: Vec<ChatIn> = (0..3).map(|_| bob.chat("a kept message")).collect();
    let texts: Vec<&str> = got.iter().map(|c| c.text.as_str()).collect();
    assert_eq!(texts, ["one", "two", "three"], "in order");
    for c in &got {
        assert_eq!(c.name, "alice");
        assert_eq!(
            c.from.as_deref(),
            Some(alice.session.id.as_str()),
            "alice is here"
        );
        assert!(
            c.time >= before && c.time < hubchat::server::post::now_ms() - 20,
            "its own time"
        );
    }
    // Confirmed: alice hears, and read when bob looks.
    bob.session.receipt("m1", "alice", Delivery::Delivered);
    let r = alice.receipt("delivered");
    assert_eq!(
        (r.id.as_str(), r.state, r.name.as_deref()),
        ("m1", Delivery::Delivered, Some("bob"))
    );
    bob.session.receipt("m1", "alice", Delivery::Read);
    assert_eq!(alice.receipt("read").state, Delivery::Read);

    // What bob did not confirm comes again next time; what he did does not.
    bob.session.disconnect();
    let bob = Person::join(port, "bob", &bob_pc);
    let again: Vec<String> = (0..2).map(|_| bob.chat("unconfirmed").text).collect();
    assert_eq!(again, ["two", "three"]);
    let rest = bob.drain(Duration::from_millis(300));
    assert!(
        !rest.iter().any(|e| matches!(e, SessionEvent::Chat(_))),
        "{rest:?}"
    );
}

#[test]
fn a_message_to_someone_here_waits_for_their_program_to_confirm_it() {
    let server = TestServer::start();
    let port = server.addr.port();
    let alice = Person::join(port, "alice", &new_identity());
    let bob = Person::join(port, "bob", &new_identity());
    alice.session.chat("x1", to("bob"), "hi bob");
    let c = bob.chat("alice's message");
    assert_eq!(
        (c.id.as_str(), c.text.as_str(), c.room),
        ("x1", "hi bob", None)
    );
    let early = alice.drain(Duration::from_millis(200));
    assert!(
        !early.iter().any(|e| matches!(e, SessionEvent::Receipt(_))),
        "nothing confirmed before bob's program does: {early:?}"
    );
    bob.session.receipt("x1", "alice", Delivery::Delivered);
    assert_eq!(alice.receipt("delivered").state, Delivery::Delivered);
}

#[test]
fn a_message_to_a_name_nobody_owns_and_nobody_uses_fails_with_a_reason() {
    let server = TestServer::start();
    let alice = Person::join(server.addr.port(), "alice", &new_identity());
    alice.session.chat("z1", to("nobody"), "anyone?");
    let r = alice.receipt("failed");
    assert_eq!(r.state, Delivery::Failed);
    let why = r.message.unwrap_or_default();
    assert!(
        why.contains("nobody is not here") && why.contains("cannot keep"),
        "{why}"
    );
}

#[test]
fn an_original_client_gets_messages_from_hubchat_peers_as_plain_messages_and_they_count_as_sent() {
    let server = TestServer::start();
    let alice = Person::join(server.addr.port(), "alice", &new_identity());
    let mut carol = Peer::join_original(server.addr, "carol");
    alice.session.chat("o1", to("carol"), "hi carol");
    let (from, text) = carol.recv_message();
    assert_eq!(
        (from.as_str(), text.as_str()),
        (alice.session.id.as_str(), "hi carol\n")
    );
    let r = alice.receipt("sent");
    assert_eq!(
        (r.state, r.name.as_deref()),
        (Delivery::Sent, Some("carol"))
    );
}

#[test]
fn typing_is_passed_on_while_both_are_here() {
    let server = TestServer::start();
    let alice = Person::join(server.addr.port(), "alice", &new_identity());
    let bob = Person::join(server.addr.port(), "bob", &new_identity());
    alice.session.typing("bob", true);
    let t = bob.until("typing", |e| match e {
        SessionEvent::Typing { name, active } => Some((name, active)),
        _ => None,
    });
    assert_eq!(t, ("alice".to_string(), true));
}

#[test]
fn a_person_who_leaves_stays_listed_as_away_for_the_others() {
    let server = TestServer::start();
    let alice = Person::join(server.addr.port(), "alice", &new_identity());
    let bob = Person::join(server.addr.port(), "bob", &new_identity());
    bob.session.disconnect();
    let away = alice.until("bob away", |e| match e {
        SessionEvent::People(p) => Some(p),
        _ => None,
    });
    assert_eq!(away[0].name, "bob");
    // A client without identity is no person: it just leaves.
    let (plain, _rx) = join(&config(server.addr.port(), "dave", None)).unwrap();
    plain.disconnect();
    let rest = alice.drain(Duration::from_millis(300));
    assert!(
        !rest.iter().any(|e| matches!(e, SessionEvent::People(_))),
        "{rest:?}"
    );
}

#[test]
fn a_person_gets_at_most_a_thousand_messages_kept_and_the_sender_hears_why() {
    let server = TestServer::start();
    let port = server.addr.port();
    Person::join(port, "bob", &new_identity())
        .session
        .disconnect();
    let alice = Person::join(port, "alice", &new_identity());
    for i in 0..1000 {
        alice.session.chat(&format!("k{i}"), to("bob"), "x");
    }
    alice.session.chat("k1000", to("bob"), "one too many");
    let last = alice.until("the refusal", |e| match e {
        SessionEvent::Receipt(r) if r.id == "k1000" => Some(r),
        _ => None,
    });
    assert_eq!(last.state, Delivery::Failed);
    let why = last.message.unwrap_or_default();
    assert!(why.contains("1000 messages waiting"), "{why}");
}

#[test]
fn the_same_message_sent_twice_is_kept_once() {
    let server = TestServer::start();
    let port = server.addr.port();
    let bob_pc = new_identity();
    Person::join(port, "bob", &bob_pc).session.disconnect();
    let alice = Person::join(port, "alice", &new_identity());
    alice.session.chat("d1", to("bob"), "once");
    alice.session.chat("d1", to("bob"), "once");
    alice.receipt("kept");
    alice.receipt("kept again");
    let bob = Person::join(port, "bob", &bob_pc);
    assert_eq!(bob.chat("the message").id, "d1");
    let rest = bob.drain(Duration::from_millis(300));
    assert!(
        !rest.iter().any(|e| matches!(e, SessionEvent::Chat(_))),
        "{rest:?}"
    );
}

/// The headless server as its own process, on a settings folder of its own
/// (its database), so it can be killed with SIGKILL.
struct Killable {
    child: Child,
    port: u16,
}

impl Killable {
    fn start(settings: &PathBuf) -> Killable {
        let mut command = Command::new(env!("CARGO_BIN_EXE_hubchat-server"));
        command
            .env("HUBCHAT_CONFIG_DIR", settings)
            .args([
                "--headless",
                "--port",
                "0",
                "--no-discovery",
                "--message-rate",
                "0",
            ])
            .args(["--max-per-address", "0"]);
        let (child, port, _, out) = support::spawn_headless(command);
        // Keep reading its log, or it would block on a full pipe.
        std::thread::spawn(move || for _ in out {});
        Killable { child, port }
    }

    fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        let _ = self.child.wait();
    }
}

/// A test that fails half-way leaves no server behind.
impl Drop for Killable {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_server_killed_at_any_moment_loses_no_kept_message_and_doubles_none() {
    let settings =
        std::env::temp_dir().join(format!("hubchat-conversations-kill-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&settings);
    std::fs::create_dir_all(&settings).unwrap();
    let (alice_pc, bob_pc) = (new_identity(), new_identity());

    let server = Killable::start(&settings);
    Person::join(server.port, "bob", &bob_pc)
        .session
        .disconnect();
    let alice = Person::join(server.port, "alice", &alice_pc);
    for i in 0..20 {
        alice
            .session
            .chat(&format!("s{i}"), to("bob"), &format!("message {i}"));
    }
    // Killed while the messages are on their way: some were kept (and
    // acknowledged), the rest never reached the store.
    let mut acked = Vec::new();
    while acked.len() < 10 {
        acked.push(alice.receipt("kept").id);
    }
    server.kill();

    // Back, alice sends again everything not acknowledged... and, not
    // knowing, everything (as her program does after a crash of its own).
    let server = Killable::start(&settings);
    let alice = Person::join(server.port, "alice", &alice_pc);
    for i in 0..20 {
        alice
            .session
            .chat(&format!("s{i}"), to("bob"), &format!("message {i}"));
    }
    for _ in 0..20 {
        assert_eq!(alice.receipt("kept").state, Delivery::Kept);
    }
    // bob gets them all, in order, once; confirms half, and the server
    // is killed again.
    let bob = Person::join(server.port, "bob", &bob_pc);
    let got: Vec<ChatIn> = (0..20).map(|_| bob.chat("kept")).collect();
    let texts: Vec<String> = got.iter().map(|c| c.text.clone()).collect();
    let expected: Vec<String> = (0..20).map(|i| format!("message {i}")).collect();
    assert_eq!(texts, expected);
    for c in &got[..10] {
        bob.session.receipt(&c.id, "alice", Delivery::Delivered);
    }
    for _ in 0..10 {
        assert_eq!(alice.receipt("delivered").state, Delivery::Delivered);
    }
    server.kill();

    let server = Killable::start(&settings);
    let bob = Person::join(server.port, "bob", &bob_pc);
    let rest: Vec<String> = (0..10).map(|_| bob.chat("still kept").text).collect();
    assert_eq!(
        rest,
        expected[10..].to_vec(),
        "the unconfirmed half, in order"
    );
    let more = bob.drain(Duration::from_millis(300));
    assert!(
        !more.iter().any(|e| matches!(e, SessionEvent::Chat(_))),
        "{more:?}"
    );
    server.kill();
    let _ = std::fs::remove_dir_all(&settings);
}

#[test]
fn packets_of_version_three_from_an_original_client_are_skipped() {
    let server = TestServer::start();
    let mut carol = Peer::join_original(server.addr, "carol");
    carol.send_body(
        br#"{"flag": "CHAT", "data": {"id": "q1", "room": "everyone", "text": "sneaky"}}"#,
    );
    let mut dave = Peer::join_original(server.addr, "dave");
    carol.message(&dave.id, "plain\n");
    let (_, text) = dave.recv_message();
    assert_eq!(text, "plain\n", "nothing else came first");
}

#[test]
fn one_person_in_two_programs_gets_a_message_in_both_and_never_their_own_back() {
    let server = TestServer::start();
    let port = server.addr.port();
    let (alice_pc, bob_pc) = (new_identity(), new_identity());
    let bob_desk = Person::join(port, "bob", &bob_pc);
    let bob_laptop = Person::join(port, "bobby", &bob_pc);
    let alice = Person::join(port, "alice", &alice_pc);
    alice.session.chat("p1", to("bob"), "to both of you");
    assert_eq!(bob_desk.chat("at the desk").text, "to both of you");
    assert_eq!(bob_laptop.chat("on the laptop").text, "to both of you");
    // bob writes to his other name: it reaches that program, not this one.
    bob_desk.session.chat("p2", to("bobby"), "note to self");
    assert_eq!(bob_laptop.chat("the note").text, "note to self");
    let back = bob_desk.drain(Duration::from_millis(300));
    assert!(
        !back.iter().any(|e| matches!(e, SessionEvent::Chat(_))),
        "{back:?}"
    );
}
