//! Helpers for tests that talk to a real server over loopback: start one on
//! port 0, connect raw clients, speak frames, and read its events.
#![allow(dead_code)]

#[cfg(feature = "gui")]
pub mod gui;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use hubchat::common::connection::FrameReader;
use hubchat::common::frame::{self, HEADER_LEN};
use hubchat::common::packet::{
    ClientHello, ClientPacket, Info, Profile, Roster, ServerPacket, PROTOCOL_VERSION,
};
use hubchat::server::{Event, Events, Server, ServerConfig, ServerEvent};

/// A new person's identity (certificate), as a HubChat client makes on
/// first run.
pub fn new_identity() -> hubchat::common::tls::Credentials {
    hubchat::common::tls::Credentials::generate("test person").expect("a certificate")
}

/// Long enough for a loaded CI machine, short enough that a broken test
/// fails rather than hangs.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// A server on 127.0.0.1 with a free port, and the events it reports.
pub struct TestServer {
    pub server: Option<Server>,
    pub events: Events,
    pub addr: SocketAddr,
    seen: Vec<Event>,
}

impl TestServer {
    pub fn start() -> Self {
        Self::start_with(|_| {})
    }

    pub fn start_with(tune: impl FnOnce(&mut ServerConfig)) -> Self {
        let mut config = ServerConfig::new("127.0.0.1:0".parse().unwrap());
        // Every test client comes from 127.0.0.1, and some tests run
        // hundreds: no per-address limit unless a test sets one.
        config.max_per_address = 0;
        // Some tests send tens of thousands of messages from one client as
        // fast as they can: no rate limit either (tests/messages.rs sets one).
        config.message_rate = None;
        tune(&mut config);
        let events = Events::new();
        let server = Server::start(config, events.clone()).expect("server starts on a free port");
        let addr = server.local_addr();
        TestServer {
            server: Some(server),
            events,
            addr,
            seen: Vec::new(),
        }
    }

    pub fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.stop();
        }
    }

    pub fn client_count(&self) -> usize {
        self.server.as_ref().map_or(0, Server::client_count)
    }

    /// Waits for an event matching `pred`, keeping every event seen.
    pub fn wait_for(&mut self, what: &str, pred: impl Fn(&ServerEvent) -> bool) -> ServerEvent {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(e) = self.seen.iter().find(|e| pred(&e.what)) {
                return e.what.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "no event: {what}; saw {:#?}", self.seen);
            let batch = self.events.wait(left);
            self.seen.extend(batch);
        }
    }

    /// Every event reported so far (after waiting briefly for stragglers).
    pub fn events_so_far(&mut self) -> &[Event] {
        let batch = self.events.wait(Duration::from_millis(50));
        self.seen.extend(batch);
        &self.seen
    }

    /// Waits until the hub counts `n` joined clients.
    pub fn wait_for_count(&self, n: usize) {
        let deadline = Instant::now() + PATIENCE;
        while self.client_count() != n {
            assert!(
                Instant::now() < deadline,
                "expected {n} clients, have {}",
                self.client_count()
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

/// A raw client socket that speaks frames.
pub struct Peer {
    pub stream: TcpStream,
    pub reader: FrameReader<TcpStream>,
    /// The id the server gave this client, once joined.
    pub id: String,
}

impl Peer {
    pub fn connect(addr: SocketAddr) -> Peer {
        Peer::over(TcpStream::connect(addr).expect("connect to the test server"))
    }

    /// A peer on a socket already connected to the server.
    pub fn over(stream: TcpStream) -> Peer {
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        let reader = FrameReader::new(stream.try_clone().unwrap(), 64 << 20);
        Peer {
            stream,
            reader,
            id: String::new(),
        }
    }

    /// Connects and joins as an original client would: no extensions.
    pub fn join_original(addr: SocketAddr, name: &str) -> Peer {
        Self::join(addr, info(name, false))
    }

    /// Connects and joins as a HubChat client.
    pub fn join_hubchat(addr: SocketAddr, name: &str) -> Peer {
        Self::join(addr, info(name, true))
    }

    fn join(addr: SocketAddr, info: Info) -> Peer {
        Self::join_over(Peer::connect(addr), info)
    }

    /// Joins on a connected peer, as [`Peer::join_original`] does.
    pub fn join_over(mut peer: Peer, info: Info) -> Peer {
        let hubchat = info.hubchat.is_some();
        let name = info.name.clone();
        assert_eq!(peer.recv(), ServerPacket::InfoRequest);
        peer.send(&ClientPacket::Info(info));
        if hubchat {
            match peer.recv() {
                ServerPacket::Welcome(w) => peer.id = w.id,
                other => panic!("expected WELCOME, got {other:?}"),
            }
        }
        let roster = peer.recv_roster();
        let (id, me) = roster
            .0
            .last()
            .expect("the roster lists the newcomer")
            .clone();
        assert_eq!(me.name, name.trim());
        if hubchat {
            assert_eq!(id, peer.id, "WELCOME and the roster agree on the id");
        }
        peer.id = id;
        peer
    }

    pub fn send(&mut self, packet: &ClientPacket) {
        self.send_raw(&packet.encode());
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write to the server");
    }

    /// Frames `body` and sends it.
    pub fn send_body(&mut self, body: &[u8]) {
        self.send_raw(&frame::encode(body));
    }

    pub fn message(&mut self, to: &str, text: &str) {
        self.send(&ClientPacket::Message {
            to: to.into(),
            text: text.into(),
        });
    }

    /// The next frame's body, raw.
    pub fn recv_body(&mut self) -> Vec<u8> {
        match self.reader.read_frame() {
            Ok(Some(body)) => body.to_vec(),
            Ok(None) => panic!("server closed the connection"),
            Err(e) => panic!("reading from the server: {e}"),
        }
    }

    pub fn recv(&mut self) -> ServerPacket {
        let body = self.recv_body();
        ServerPacket::decode(&body).unwrap_or_else(|e| {
            panic!(
                "server sent an undecodable packet ({e}): {}",
                String::from_utf8_lossy(&body)
            )
        })
    }

    pub fn recv_roster(&mut self) -> Roster {
        match self.recv() {
            ServerPacket::AllClients(roster) => roster,
            other => panic!("expected ALL CLIENTS, got {other:?}"),
        }
    }

    /// Reads rosters until they have listed exactly `n` clients, however
    /// the server grouped them (newcomers arriving together are told in
    /// one ALL CLIENTS frame); returns the entries in order.
    pub fn recv_joins(&mut self, n: usize) -> Vec<(String, Profile)> {
        let mut joins = Vec::new();
        while joins.len() < n {
            joins.extend(self.recv_roster().0);
        }
        assert_eq!(joins.len(), n, "rosters listed more clients than joined");
        joins
    }

    /// Expects the next packet to be a message; returns (from, text).
    pub fn recv_message(&mut self) -> (String, String) {
        match self.recv() {
            ServerPacket::Message { from, to, text } => {
                assert_eq!(to, self.id, "a message names its receiver");
                (from, text)
            }
            other => panic!("expected MESSAGE, got {other:?}"),
        }
    }

    /// Expects the server to close the connection after at most the given
    /// packets; returns the packets that came first.
    pub fn recv_until_closed(&mut self) -> Vec<ServerPacket> {
        let mut got = Vec::new();
        loop {
            match self.reader.read_frame() {
                Ok(Some(body)) => got.push(ServerPacket::decode(body).expect("decodable packet")),
                Ok(None) => return got,
                Err(e) => panic!("expected a clean close, got {e} after {got:?}"),
            }
        }
    }

    /// Asserts nothing arrives for a little while.
    pub fn expect_silence(&mut self, for_: Duration) {
        self.stream.set_read_timeout(Some(for_)).unwrap();
        let mut byte = [0u8; 1];
        match self.stream.read(&mut byte) {
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            other => panic!("expected silence, got {other:?}"),
        }
        self.stream.set_read_timeout(Some(PATIENCE)).unwrap();
    }
}

pub fn info(name: &str, hubchat: bool) -> Info {
    Info {
        name: name.into(),
        color: "blue".into(),
        image_name: "image_3.png".into(),
        hubchat: hubchat.then_some(ClientHello {
            version: PROTOCOL_VERSION,
            image_name: None,
            ..Default::default()
        }),
    }
}

/// The bytes of a frame as they appear on the wire, for byte-exact checks.
pub fn wire(body: &str) -> Vec<u8> {
    let mut out = format!("{:<width$}", body.len(), width = HEADER_LEN).into_bytes();
    out.extend_from_slice(body.as_bytes());
    out
}

/// Joins with the real client session; its events go to the receiver.
pub fn join(
    config: &hubchat::client::SessionConfig,
) -> Result<
    (
        hubchat::client::Session,
        crossbeam_channel::Receiver<hubchat::client::SessionEvent>,
    ),
    hubchat::client::ConnectError,
> {
    let (tx, rx) = crossbeam_channel::unbounded();
    hubchat::client::Session::connect(config, move |e| {
        let _ = tx.send(e);
    })
    .map(|s| (s, rx))
}

/// CRC-32 as PNG chunks carry it (the zlib polynomial).
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// How a test client connects to `addr` as `name` with `identity`, and how
/// it shows itself: what the client window would pass its controller.
pub fn client_config(
    addr: SocketAddr,
    name: &str,
    identity: &hubchat::common::tls::Credentials,
) -> (
    hubchat::client::SessionConfig,
    hubchat::client::controller::Identity,
) {
    let config = hubchat::client::SessionConfig {
        host: addr.ip().to_string(),
        port: addr.port(),
        name: name.into(),
        color: "blue".into(),
        image_name: "image_2.png".into(),
        picture: None,
        timeout: Duration::from_secs(5),
        identity: Some(identity.clone()),
        pin: None,
        password: None,
    };
    let shown = hubchat::client::controller::Identity {
        profile: hubchat::common::packet::Profile {
            name: name.into(),
            color: "blue".into(),
            image_name: "image_2.png".into(),
            files: false,
        },
        picture: None,
    };
    (config, shown)
}

/// The log of a server started by [`spawn_headless`], line by line.
pub type LogLines = std::io::Lines<std::io::BufReader<std::process::ChildStdout>>;

/// Starts a headless server `command` (its standard output is read here)
/// and reads its first log line, "... listening on ADDRESS:PORT": the
/// child, the port, that line, and the rest of its log.
pub fn spawn_headless(
    mut command: std::process::Command,
) -> (std::process::Child, u16, String, LogLines) {
    use std::io::BufRead;
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start hubchat-server");
    let stdout = child.stdout.take().expect("its standard output");
    let mut out = std::io::BufReader::new(stdout).lines();
    let first = out.next().expect("a log line").expect("UTF-8");
    let port = first
        .rsplit(':')
        .next()
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("expected 'listening on ...:PORT', got {first}"));
    (child, port, first, out)
}
