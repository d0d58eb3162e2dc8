//! Reconnecting by itself, headless, against real servers on loopback: the
//! controller is driven as the window drives it (reports from the worker
//! threads, and `tick` whenever the countdown says a try is due), with the
//! real clock. A server that comes back is rejoined without the user doing
//! anything; a kick, a ban, a refusal or the user's Disconnect ends the
//! loop.

mod support;

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{unbounded, Receiver};
use hubchat::client::controller::{Change, Controller, Identity, Said, Status};
use hubchat::client::{ConnectError, SessionConfig};
use hubchat::common::packet::ErrorCode;
use hubchat::common::tls::Credentials;
use hubchat::server::BanBy;
use support::{TestServer, PATIENCE};

/// A controller, the channel its worker threads report into, and the
/// moments each connection attempt began.
struct Client {
    controller: Controller,
    inbox: Receiver<hubchat::client::controller::Input>,
    name: String,
    identity: Credentials,
    /// When each attempt the controller made by itself began.
    tries: Vec<Instant>,
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
            tries: Vec::new(),
        }
    }

    fn config(&self, addr: SocketAddr) -> (SessionConfig, Identity) {
        support::client_config(addr, &self.name, &self.identity)
    }

    fn connect(&mut self, addr: SocketAddr) -> Change {
        let (config, identity) = self.config(addr);
        self.controller.connect(config, identity)
    }

    /// Handles reports and runs the countdown as the window does, until
    /// `done` holds; fails after `patience`. Returns every change seen.
    fn run_until(
        &mut self,
        what: &str,
        patience: Duration,
        done: impl Fn(&Controller) -> bool,
    ) -> Vec<Change> {
        let deadline = Instant::now() + patience;
        let mut changes = Vec::new();
        while !done(&self.controller) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            self.step(deadline, &mut changes);
        }
        changes
    }

    /// Runs for `time` whatever happens; returns every change seen.
    fn run_for(&mut self, time: Duration) -> Vec<Change> {
        let until = Instant::now() + time;
        let mut changes = Vec::new();
        while Instant::now() < until {
            self.step(until, &mut changes);
        }
        changes
    }

    /// Starts the next try if it is due (the window's timer), then handles
    /// one report, waiting for it until the next try is due or `by`.
    fn step(&mut self, by: Instant, changes: &mut Vec<Change>) {
        let now = Instant::now();
        let change = self.controller.tick(now);
        if change.status {
            self.tries.push(now);
        }
        changes.push(change);
        let wake = self.controller.reconnect().retry_at().unwrap_or(by);
        let wait = wake.min(by).saturating_duration_since(now);
        if let Ok(input) = self.inbox.recv_timeout(wait) {
            changes.push(self.controller.handle(input));
        }
    }

    fn connected(&mut self, addr: SocketAddr) {
        self.connect(addr);
        self.run_until("connected", PATIENCE, is_connected);
    }

    fn lost(&mut self) -> Vec<Change> {
        self.run_until("the loss", PATIENCE, |c| {
            matches!(c.status(), Status::Lost { .. })
        })
    }

    fn id_of(&self, name: &str) -> String {
        let contact = self.controller.model.contacts.iter();
        contact
            .clone()
            .find(|c| c.profile.name == name)
            .map(|c| c.id.clone())
            .unwrap_or_else(|| panic!("{name} is listed"))
    }
}

fn is_connected(c: &Controller) -> bool {
    matches!(c.status(), Status::Connected { .. })
}

fn log(changes: &[Change]) -> Vec<String> {
    changes.iter().flat_map(|c| c.log.clone()).collect()
}

/// A server keeping its key across restarts, as the real one keeps it in
/// its settings folder (another key would be refused as a change).
fn restart(addr: SocketAddr, key: &Credentials) -> TestServer {
    TestServer::start_with(|c| {
        c.bind = addr;
        c.credentials = Some(key.clone());
    })
}

/// A loopback address where nothing listens.
fn nothing_at() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

#[test]
fn a_server_back_after_a_second_is_rejoined_by_itself_and_the_conversation_goes_on() {
    let key = support::new_identity();
    let mut server = TestServer::start_with(|c| c.credentials = Some(key.clone()));
    let addr = server.addr;
    let mut alice = Client::new("alice");
    let mut bob = Client::new("bob");
    alice.connected(addr);
    bob.connected(addr);
    alice.run_until("bob listed", PATIENCE, |c| c.model.contacts.len() == 2);
    let conversation = alice.controller.model.open(&alice.id_of("bob")).unwrap();
    assert_eq!(alice.controller.say(&conversation, "before"), Said::Sent);

    server.stop();
    let lost_at = Instant::now();
    for client in [&mut alice, &mut bob] {
        let log = log(&client.lost());
        assert!(log.contains(&"Reconnecting in 1 s.".into()), "{log:?}");
        assert!(client.controller.reconnect().active());
        let at = client
            .controller
            .reconnect()
            .retry_at()
            .expect("a try ahead");
        assert!(at <= Instant::now() + Duration::from_secs(1));
    }
    std::thread::sleep(Duration::from_secs(1).saturating_sub(lost_at.elapsed()));
    let _server = restart(addr, &key);
    for client in [&mut alice, &mut bob] {
        client.run_until("back by itself", PATIENCE, is_connected);
        assert!(!client.controller.reconnect().active(), "the loop ends");
    }
    alice.run_until("bob listed again", PATIENCE, |c| {
        c.model.contacts.len() == 2
    });
    assert_eq!(alice.controller.say(&conversation, "after"), Said::Sent);
    bob.run_until("both lines", PATIENCE, |c| {
        c.model
            .conversations
            .get("alice")
            .is_some_and(|c| c.lines.iter().any(|l| l.text == "after"))
    });
}

#[test]
fn a_server_down_for_40_seconds_is_tried_every_30_seconds_and_rejoined() {
    let key = support::new_identity();
    let mut server = TestServer::start_with(|c| c.credentials = Some(key.clone()));
    let addr = server.addr;
    let mut alice = Client::new("alice");
    alice.connected(addr);
    server.stop();
    alice.lost();
    let lost_at = Instant::now();
    alice.run_for(Duration::from_secs(40).saturating_sub(lost_at.elapsed()));
    let _server = restart(addr, &key);
    alice.run_until(
        "back by itself",
        Duration::from_secs(30) + PATIENCE,
        is_connected,
    );
    let joined_at = lost_at.elapsed();
    // Tries 1, 3, 7, 15, 31 and 61 s after the loss (each failure takes a
    // moment, so a little later).
    let since: Vec<f64> = alice
        .tries
        .iter()
        .map(|t| t.duration_since(lost_at).as_secs_f64())
        .collect();
    let expected = [1.0, 3.0, 7.0, 15.0, 31.0, 61.0];
    assert_eq!(since.len(), expected.len(), "tries at {since:?} s");
    for (at, want) in since.iter().zip(expected) {
        assert!(
            (want - 0.05..want + 1.5).contains(at),
            "tries at {since:?} s, expected about {expected:?}"
        );
    }
    let gaps: Vec<f64> = since.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps[4] >= 29.9, "30 s between the last two: {gaps:?}");
    assert!(
        joined_at < Duration::from_secs(64),
        "joined at {joined_at:?}"
    );
}

#[test]
fn reconnect_now_tries_at_once() {
    let key = support::new_identity();
    let mut server = TestServer::start_with(|c| c.credentials = Some(key.clone()));
    let addr = server.addr;
    let mut alice = Client::new("alice");
    alice.connected(addr);
    server.stop();
    alice.lost();
    // Two tries fail (after 1 and 2 s); the next waits 4 s.
    alice.run_until("two failed tries", PATIENCE, |c| {
        c.reconnect()
            .retry_at()
            .is_some_and(|at| at.saturating_duration_since(Instant::now()) > Duration::from_secs(3))
    });
    let due = alice.controller.reconnect().retry_at().unwrap();
    let _server = restart(addr, &key);
    let change = alice.controller.reconnect_now();
    assert!(change.status, "a try begins at once");
    assert!(matches!(
        alice.controller.status(),
        Status::Connecting { .. }
    ));
    assert!(alice.controller.reconnect().trying());
    alice.run_until("joined", PATIENCE, is_connected);
    assert!(Instant::now() < due, "joined before the try that was due");
}

#[test]
fn disconnect_while_waiting_stops_reconnecting() {
    let key = support::new_identity();
    let mut server = TestServer::start_with(|c| c.credentials = Some(key.clone()));
    let addr = server.addr;
    let mut alice = Client::new("alice");
    alice.connected(addr);
    server.stop();
    alice.lost();
    let change = alice.controller.disconnect();
    assert!(change.status);
    assert_eq!(change.log, ["Stopped reconnecting."]);
    assert_eq!(alice.controller.status(), &Status::Offline);
    assert!(!alice.controller.reconnect().active());
    let mut server = restart(addr, &key);
    alice.run_for(Duration::from_millis(2_500));
    assert_eq!(alice.controller.status(), &Status::Offline);
    assert!(alice.tries.is_empty(), "no try after Disconnect");
    assert_eq!(server.client_count(), 0);

    // Stopping a try under way ends the loop too; what the try reports
    // later changes nothing.
    alice.connected(addr);
    server.stop();
    alice.lost();
    let due = alice.controller.reconnect().retry_at().unwrap();
    std::thread::sleep(due.saturating_duration_since(Instant::now()));
    assert!(alice.controller.tick(Instant::now()).status);
    assert!(alice.controller.reconnect().trying());
    let change = alice.controller.disconnect(); // the button says Disconnect
    assert_eq!(change.log, ["Stopped reconnecting."]);
    assert_eq!(alice.controller.status(), &Status::Offline);
    let changes = alice.run_for(Duration::from_millis(2_500));
    assert!(changes.iter().all(|c| !c.status && c.failed.is_none()));
    assert_eq!(alice.controller.status(), &Status::Offline);
}

#[test]
fn connecting_elsewhere_stops_reconnecting_to_the_old_server() {
    let mut old = TestServer::start();
    let other = TestServer::start();
    let mut alice = Client::new("alice");
    alice.connected(old.addr);
    old.stop();
    alice.lost();
    alice.connected(other.addr);
    assert!(!alice.controller.reconnect().active());
    alice.run_for(Duration::from_millis(1_500));
    assert!(is_connected(&alice.controller));
}

#[test]
fn a_kicked_or_banned_client_is_not_reconnected() {
    let server = TestServer::start();
    let hub = server.server.as_ref().unwrap();
    for (name, ban) in [("alice", false), ("mallory", true)] {
        // Each its own name: a name belongs to the identity that took it.
        let mut alice = Client::new(name);
        alice.connected(server.addr);
        let id = alice.controller.session().unwrap().id.clone();
        if ban {
            hub.ban(&id, BanBy::Identity, "spam").unwrap();
        } else {
            assert!(hub.kick(&id, "time for lunch"));
        }
        alice.lost();
        assert!(!alice.controller.reconnect().active(), "ban: {ban}");
        assert_eq!(alice.controller.reconnect().retry_at(), None);
        alice.run_for(Duration::from_millis(2_500));
        assert!(alice.tries.is_empty(), "no try after a kick or ban");
        assert!(matches!(alice.controller.status(), Status::Lost { .. }));
    }
}

#[test]
fn a_refusal_while_reconnecting_stops_the_loop_and_is_shown_as_any_failure() {
    let key = support::new_identity();
    let mut server = TestServer::start_with(|c| c.credentials = Some(key.clone()));
    let addr = server.addr;
    let mut alice = Client::new("alice");
    alice.connected(addr);
    server.stop();
    alice.lost();
    // The owner restarts it with a password.
    let hash = hubchat::server::password::hash("new").unwrap();
    let _server = TestServer::start_with(|c| {
        c.bind = addr;
        c.credentials = Some(key.clone());
        c.password = Some(hash);
    });
    let changes = alice.run_until("the refusal", PATIENCE, |c| c.status() == &Status::Offline);
    assert!(!alice.controller.reconnect().active());
    let failed = changes.iter().find_map(|c| c.failed.clone());
    assert!(
        matches!(
            failed,
            Some(ConnectError::Rejected {
                code: Some(ErrorCode::PasswordRequired),
                ..
            })
        ),
        "the window is told, to ask for the password: {failed:?}"
    );
    assert_eq!(alice.tries.len(), 1);
}

#[test]
fn connecting_at_start_keeps_trying_until_the_server_is_up() {
    let addr = nothing_at();
    let mut alice = Client::new("alice");
    let (config, identity) = alice.config(addr);
    alice.controller.connect(config, identity);
    alice.controller.started_unasked();
    let changes = alice.run_until("the first failure", PATIENCE, |c| c.status().idle());
    assert!(
        changes.iter().all(|c| c.failed.is_none()),
        "no complaint while it keeps trying"
    );
    let banner = alice.controller.reconnect().banner(Instant::now()).unwrap();
    assert!(
        banner.starts_with("Could not connect: Nothing is listening"),
        "{banner}"
    );
    let _server = TestServer::start_with(|c| c.bind = addr);
    alice.run_until("joined", PATIENCE, is_connected);
    assert_eq!(alice.tries.len(), 1, "the first try after 1 s joins");

    // A connect the user asked for only says why it failed.
    let mut bob = Client::new("bob");
    bob.connect(nothing_at());
    let changes = bob.run_until("the failure", PATIENCE, |c| c.status().idle());
    assert!(changes.iter().any(|c| c.failed.is_some()));
    assert_eq!(bob.controller.status(), &Status::Offline);
    assert!(!bob.controller.reconnect().active());
}
