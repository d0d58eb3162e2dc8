//! One client's connection to a server, without any GUI.
//!
//! [`Session::connect`] resolves the address, connects with a timeout and
//! runs the handshake on the caller's thread (the window calls it from a
//! worker), so every way of failing to join comes back as one
//! [`ConnectError`] with a sentence for the user. Once joined, a reader
//! thread turns packets into [`SessionEvent`]s for a sink, and a writer
//! thread sends what [`Session::send`] queues. Whether the server is HubChat
//! (it sends WELCOME) or the original (it sends ALL CLIENTS straight away)
//! is known after the handshake; extensions are used only with HubChat.
//!
//! Until then the session must not hurt an original server: its INFO names
//! only one of the original's 25 pictures (the original server opens that
//! file, and its accept thread dies on one it lacks), and the real choice
//! rides in the `hubchat` field that only HubChat servers read. Once the
//! server has said SERVER CLOSE, or the connection has ended, the session
//! sends nothing more: the original server would handle a DISCONNECT in the
//! middle of its own stop and keep a ghost entry.

use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{unbounded, Receiver, Sender};

use crate::client::files::{FileEvent, Files};
use crate::common::avatar::{self, Picture};
use crate::common::connection::{FrameReader, ReadError};
use crate::common::downloads;
use crate::common::file_packet::FILE_VERSION;
use crate::common::frame::DEFAULT_MAX_BODY;
use crate::common::packet::{
    ChatIn, ChatOut, ChatTarget, ClientHello, ClientPacket, Delivery, ErrorCode, Info, Person,
    Profile, ReceiptIn, ReceiptOut, ServerPacket, CHAT_VERSION, PROTOCOL_VERSION,
};
use crate::common::profile;
use crate::common::tls::{self, Credentials, Fingerprint};
use crate::common::transport::{Link, UpgradeError};

/// How long a TCP connect may take before the session gives up. On a LAN a
/// server answers in milliseconds, and over a WAN in well under a second; an
/// address where nothing answers (a wrong or sleeping machine) would
/// otherwise hold the user for the system's timeout of a minute or more.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Where to connect and who to be.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub host: String,
    pub port: u16,
    pub name: String,
    pub color: String,
    /// The built-in picture the user chose, `image_1.png` ... `image_30.png`.
    /// The session decides what goes on the wire: an original server is only
    /// ever named one of its 25 (see [`profile::original_image_name`]).
    pub image_name: String,
    /// Our own avatar as a 48x48 PNG, sent only to a HubChat server;
    /// everyone else sees `image_name`.
    pub picture: Option<Vec<u8>>,
    /// How long to wait for each of the server's answers in the handshake
    /// (generous enough for a WAN). The TCP connect itself gives up sooner,
    /// after at most [`CONNECT_TIMEOUT`].
    pub timeout: Duration,
    /// Who we are: our certificate, shown to the server when the connection
    /// is encrypted. `None` offers no encryption (as HubChat before
    /// version 2 did).
    pub identity: Option<Credentials>,
    /// The fingerprint of the server's certificate from an earlier
    /// connection. When set, the server must encrypt with exactly that
    /// certificate: a different one, or none, is refused.
    pub pin: Option<Fingerprint>,
    /// The server's password, if the user gave one; sent only encrypted.
    pub password: Option<String>,
}

/// Whether the session is encrypted, and with whose certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encryption {
    /// TLS with a server showing the certificate with this fingerprint.
    Encrypted { server: Fingerprint },
    /// Plain text, as the original protocol is (an original server).
    NotEncrypted,
}

/// Which kind of server the session joined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerKind {
    HubChat {
        version: u32,
        max_packet: usize,
        /// The longest message text the server relays, in bytes of UTF-8,
        /// if it said (WELCOME's `max_message`).
        max_message: Option<usize>,
        /// The largest file it passes on (WELCOME's `max_file`): set by
        /// servers that send files.
        max_file: Option<u64>,
    },
    Original,
}

/// What happens on a joined session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEvent {
    /// Clients to add to the list (the server may repeat known ones).
    Listed(Vec<(String, Profile)>),
    /// The client with this id left.
    Left { id: String },
    /// A message for us.
    Message { from: String, text: String },
    /// A client's own avatar picture, checked as strictly as the server
    /// checks it, then decoded; a picture that fails is dropped, and that
    /// client keeps its built-in avatar.
    Picture { id: String, picture: Picture },
    /// A message with an id (HubChat servers of version 3): to us, or to
    /// the Everyone room; possibly kept for us while we were away.
    Chat(ChatIn),
    /// How far a message we sent has got.
    Receipt(ReceiptIn),
    /// `name` is typing to us, or stopped.
    Typing { name: String, active: bool },
    /// People who have been here and are away now.
    People(Vec<Person>),
    /// The server refused something but the session goes on.
    Refused { code: ErrorCode, message: String },
    /// A file offered, arriving, sent, saved or given up (HubChat servers
    /// of version 4).
    File(FileEvent),
    /// The session is over; `reason` says why, for the user.
    Lost { reason: String },
}

/// Why joining failed, in words for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectError {
    /// The host name could not be resolved.
    UnknownHost { host: String },
    /// Nothing listens on that address and port.
    Refused { addr: String },
    /// Nothing answered the connection attempt in time.
    TimedOut { addr: String },
    /// Something accepted the connection but did not speak the protocol in
    /// time: not a messenger server, or one that is stuck.
    NoAnswer { addr: String },
    /// The server shows another certificate than the one pinned: it may
    /// be someone pretending to be the server (or its owner made a new
    /// one). Only a deliberate, confirmed choice by the user replaces the
    /// pin.
    KeyChanged {
        addr: String,
        pinned: Fingerprint,
        offered: Fingerprint,
    },
    /// The server encrypted before and now offers no encryption.
    NotEncrypted { addr: String },
    /// The server turned us away (name taken, server full, ...).
    Rejected {
        code: Option<ErrorCode>,
        message: String,
    },
    /// Anything else the network or the server did.
    Failed { message: String },
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectError::UnknownHost { host } => {
                write!(
                    f,
                    "No computer called \"{host}\" was found. Check the server address."
                )
            }
            ConnectError::Refused { addr } => write!(
                f,
                "Nothing is listening at {addr}. Is the port right and the server started?"
            ),
            ConnectError::TimedOut { addr } => write!(
                f,
                "Nothing answered at {addr}. Is the address right and the server started?"
            ),
            ConnectError::NoAnswer { addr } => write!(
                f,
                "{addr} accepted the connection but did not answer in time. Is it a HubChat server, and is the port right?"
            ),
            ConnectError::KeyChanged {
                addr,
                pinned,
                offered,
            } => write!(
                f,
                "Warning: the server at {addr} shows a different key than before (now {offered}, \
                 before {pinned}). Someone may be pretending to be the server. Not connected. \
                 Accept the new key only if the server's owner confirms it changed."
            ),
            ConnectError::NotEncrypted { addr } => write!(
                f,
                "Warning: the server at {addr} used encryption before and now offers none. \
                 Someone may be listening in. Not connected."
            ),
            ConnectError::Rejected { message, .. } => write!(f, "{message}"),
            ConnectError::Failed { message } => write!(f, "{message}"),
        }
    }
}

impl std::error::Error for ConnectError {}

/// A joined session. Dropping it disconnects.
pub struct Session {
    pub id: String,
    pub kind: ServerKind,
    pub encryption: Encryption,
    /// Set by the reader once the server said SERVER CLOSE or the connection
    /// ended: from then on nothing more is sent.
    ended: Arc<AtomicBool>,
    outgoing: Sender<Vec<u8>>,
    link: Link,
    reader: Option<JoinHandle<()>>,
    writer: Option<JoinHandle<()>>,
    /// Files sent and received, with a server that passes them on.
    files: Option<Files>,
}

impl Session {
    /// Connects and joins; on success, events go to `sink` from the
    /// session's reader thread, starting with the first roster.
    pub fn connect(
        config: &SessionConfig,
        sink: impl Fn(SessionEvent) + Send + Sync + 'static,
    ) -> Result<Session, ConnectError> {
        let (stream, addr) = open(config)?;
        let failed = |e: io::Error| ConnectError::Failed {
            message: format!("The connection failed: {e}."),
        };
        stream.set_nodelay(true).map_err(failed)?;
        stream
            .set_read_timeout(Some(config.timeout))
            .map_err(failed)?;
        stream
            .set_write_timeout(Some(config.timeout))
            .map_err(failed)?;
        let link = Link::plain(Arc::new(stream));
        let mut reader = FrameReader::new(link.clone(), DEFAULT_MAX_BODY * 16);

        expect_info_request(&mut reader, &addr)?;
        let mut info = info_for_any_server(config);
        link.send(&ClientPacket::Info(info.clone()).encode())
            .map_err(failed)?;
        let (encryption, first) = match next(&mut reader, &addr)? {
            ServerPacket::StartTls => {
                let server = encrypt(&link, &reader, config, &addr)?;
                // Inside TLS: who we are again, now with the password.
                if let Some(hello) = info.hubchat.as_mut() {
                    hello.password = config.password.clone();
                }
                link.send(&ClientPacket::Info(info.clone()).encode())
                    .map_err(failed)?;
                (Encryption::Encrypted { server }, None)
            }
            other if config.pin.is_some() => {
                refuse_plain(&link, &other);
                return Err(ConnectError::NotEncrypted { addr });
            }
            other => (Encryption::NotEncrypted, Some(other)),
        };
        let Welcomed { id, kind, roster } = read_welcome(&mut reader, first, &info.name, &addr)?;
        link.stream().set_read_timeout(None).map_err(failed)?;
        sink(SessionEvent::Listed(roster));

        let ended = Arc::new(AtomicBool::new(false));
        let (outgoing, queue) = unbounded::<Vec<u8>>();
        let writer = spawn_writer(link.clone(), queue, ended.clone());
        if let (ServerKind::HubChat { .. }, Some(png)) = (kind, &config.picture) {
            let _ = outgoing.send(ClientPacket::Picture { png: png.clone() }.encode());
        }
        let sink: Arc<dyn Fn(SessionEvent) + Send + Sync> = Arc::new(sink);
        let files = match kind {
            ServerKind::HubChat {
                max_file: Some(max_file),
                ..
            } => Some(Files::new(
                link.clone(),
                ended.clone(),
                sink.clone(),
                max_file,
                downloads::downloads_dir().unwrap_or_else(std::env::temp_dir),
            )),
            _ => None,
        };
        let reader_ended = ended.clone();
        let reader_files = files.clone();
        let reader =
            thread::spawn(move || read_loop(reader, &*sink, &reader_ended, reader_files.as_ref()));
        Ok(Session {
            id,
            kind,
            encryption,
            ended,
            outgoing,
            link,
            reader: Some(reader),
            writer: Some(writer),
            files,
        })
    }

    /// Files, when the server passes them on (a HubChat server of version
    /// 4 or later); `None` with any other.
    pub fn files(&self) -> Option<&Files> {
        self.files.as_ref()
    }

    /// The longest message text this server relays, in bytes of UTF-8, when
    /// it said so; a longer one would only come back refused.
    pub fn max_message(&self) -> Option<usize> {
        match self.kind {
            ServerKind::HubChat { max_message, .. } => max_message,
            ServerKind::Original => None,
        }
    }

    /// Queues a message for the client with id `to`. To an original server
    /// the text ends in a newline, as its clients expect.
    pub fn send(&self, to: &str, text: &str) {
        let text = match self.kind {
            ServerKind::Original if !text.ends_with('\n') => format!("{text}\n"),
            _ => text.to_string(),
        };
        let frame = ClientPacket::Message {
            to: to.to_string(),
            text,
        }
        .encode();
        if !self.has_ended() {
            let _ = self.outgoing.send(frame);
        }
    }

    /// Whether the server speaks CHAT, RECEIPT, TYPING and PEOPLE: a
    /// HubChat server of version 3 or later.
    pub fn speaks_chat(&self) -> bool {
        matches!(self.kind, ServerKind::HubChat { version, .. } if version >= CHAT_VERSION)
    }

    /// Queues a CHAT (only to a server that [`Self::speaks_chat`]).
    pub fn chat(&self, id: &str, to: ChatTarget, text: &str) {
        self.queue(ClientPacket::Chat(ChatOut {
            id: id.to_string(),
            to,
            text: text.to_string(),
        }));
    }

    /// Tells `to_name` (through the server) how far its message `id` got
    /// here: delivered, or read.
    pub fn receipt(&self, id: &str, to_name: &str, state: Delivery) {
        self.queue(ClientPacket::Receipt(ReceiptOut {
            id: id.to_string(),
            to_name: to_name.to_string(),
            state,
        }));
    }

    /// Tells `to_name` that the user is typing to them, or stopped.
    pub fn typing(&self, to_name: &str, active: bool) {
        self.queue(ClientPacket::Typing {
            to_name: to_name.to_string(),
            active,
        });
    }

    fn queue(&self, packet: ClientPacket) {
        if self.speaks_chat() && !self.has_ended() {
            let _ = self.outgoing.send(packet.encode());
        }
    }

    /// Says DISCONNECT and waits for the connection to close. After the
    /// server said SERVER CLOSE (or the connection ended) it only closes:
    /// the server is already letting go of us.
    pub fn disconnect(mut self) {
        self.close();
    }

    fn has_ended(&self) -> bool {
        self.ended.load(Ordering::SeqCst)
    }

    fn close(&mut self) {
        if !self.has_ended() {
            let _ = self.outgoing.send(ClientPacket::Disconnect.encode());
        }
        // Closing the queue ends the writer once it has sent everything.
        let (dummy, _) = unbounded();
        drop(std::mem::replace(&mut self.outgoing, dummy));
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
        // The server closes after DISCONNECT; do not wait on one that does not.
        let _ = self
            .link
            .stream()
            .set_read_timeout(Some(Duration::from_secs(2)));
        self.link.finish();
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if self.reader.is_some() {
            self.close();
        }
    }
}

/// Sends each queued frame until the queue closes; once the session has
/// ended (SERVER CLOSE, or the connection gone) it drops them unsent.
fn spawn_writer(link: Link, queue: Receiver<Vec<u8>>, ended: Arc<AtomicBool>) -> JoinHandle<()> {
    thread::spawn(move || {
        for frame in queue {
            if ended.load(Ordering::SeqCst) {
                continue;
            }
            if link.send(&frame).is_err() {
                link.shutdown();
                return;
            }
        }
    })
}

/// Runs the TLS handshake after the server's STARTTLS, checking its
/// certificate against the pin; returns the server's fingerprint.
fn encrypt(
    link: &Link,
    reader: &FrameReader<Link>,
    config: &SessionConfig,
    addr: &str,
) -> Result<Fingerprint, ConnectError> {
    let setup = |detail: String| ConnectError::Failed {
        message: format!("Could not set up encryption with {addr}: {detail}."),
    };
    let Some(identity) = &config.identity else {
        return Err(setup(
            "the server asked to encrypt, which we did not offer".into(),
        ));
    };
    if reader.buffered() > 0 {
        return Err(setup("the server sent more after STARTTLS".into()));
    }
    let (tls, seen) = identity
        .client_config(config.pin)
        .map_err(|e| setup(e.to_string()))?;
    let conn =
        rustls::ClientConnection::new(tls, tls::server_name()).map_err(|e| setup(e.to_string()))?;
    let deadline = Instant::now() + config.timeout;
    match link.upgrade(conn, deadline) {
        Ok(()) => seen
            .get()
            .ok_or_else(|| setup("the server showed no certificate".into())),
        Err(e) => match (config.pin, seen.get()) {
            (Some(pinned), Some(offered)) if pinned != offered => Err(ConnectError::KeyChanged {
                addr: addr.to_string(),
                pinned,
                offered,
            }),
            _ if matches!(e, UpgradeError::TimedOut) => Err(ConnectError::NoAnswer {
                addr: addr.to_string(),
            }),
            _ => Err(setup(e.to_string())),
        },
    }
}

/// Leaves a server that answered in plain when it must encrypt. If it let
/// us in already (an original server does, on INFO), say goodbye properly,
/// so no one is left listing us.
fn refuse_plain(link: &Link, answer: &ServerPacket) {
    if matches!(
        answer,
        ServerPacket::AllClients(_) | ServerPacket::Welcome(_)
    ) {
        let _ = link.send(&ClientPacket::Disconnect.encode());
    }
    link.finish();
}

/// Our INFO, safe for whatever server reads it: `image_name` is one of the
/// original's 25 pictures; a HubChat-only choice goes in the `hubchat`
/// field, which the original server never looks at.
fn info_for_any_server(config: &SessionConfig) -> Info {
    let image_name = profile::original_image_name(&config.image_name);
    let real = (image_name != config.image_name).then(|| config.image_name.clone());
    Info {
        name: config.name.trim().to_string(),
        color: config.color.clone(),
        image_name,
        hubchat: Some(ClientHello {
            version: PROTOCOL_VERSION,
            image_name: real,
            tls: config.identity.is_some(),
            password: None,
        }),
    }
}

/// `host:port` as people write it, with an IPv6 address in brackets.
fn host_and_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Resolves and connects, trying each address in turn for at most
/// [`CONNECT_TIMEOUT`] each. Returns the stream and the address as shown
/// to the user.
fn open(config: &SessionConfig) -> Result<(TcpStream, String), ConnectError> {
    let host = config
        .host
        .trim()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let shown = host_and_port(host, config.port);
    let addrs: Vec<SocketAddr> = (host, config.port)
        .to_socket_addrs()
        .map_err(|_| ConnectError::UnknownHost {
            host: host.to_string(),
        })?
        .collect();
    let mut last = ConnectError::UnknownHost {
        host: host.to_string(),
    };
    let patience = config.timeout.min(CONNECT_TIMEOUT);
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, patience) {
            Ok(s) => return Ok((s, shown)),
            Err(e) => {
                last = match e.kind() {
                    io::ErrorKind::ConnectionRefused => ConnectError::Refused {
                        addr: shown.clone(),
                    },
                    io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => ConnectError::TimedOut {
                        addr: shown.clone(),
                    },
                    _ => ConnectError::Failed {
                        message: format!("Could not connect to {shown}: {e}."),
                    },
                }
            }
        }
    }
    Err(last)
}

fn next(reader: &mut FrameReader<Link>, addr: &str) -> Result<ServerPacket, ConnectError> {
    match reader.read_frame() {
        Ok(Some(body)) => ServerPacket::decode(body).map_err(|e| ConnectError::Failed {
            message: format!("The server sent something this program cannot read ({e})."),
        }),
        Ok(None) => Err(ConnectError::Failed {
            message: "The server closed the connection before letting us in.".into(),
        }),
        Err(ReadError::Io(e))
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            Err(ConnectError::NoAnswer {
                addr: addr.to_string(),
            })
        }
        Err(e) => Err(ConnectError::Failed {
            message: format!("The connection failed: {e}."),
        }),
    }
}

fn expect_info_request(reader: &mut FrameReader<Link>, addr: &str) -> Result<(), ConnectError> {
    loop {
        match next(reader, addr)? {
            ServerPacket::InfoRequest => return Ok(()),
            ServerPacket::ServerClose { message } => {
                return Err(ConnectError::Rejected {
                    code: None,
                    message,
                })
            }
            _ => continue,
        }
    }
}

/// What the handshake learned.
struct Welcomed {
    id: String,
    kind: ServerKind,
    roster: Vec<(String, Profile)>,
}

/// Reads up to our first roster: WELCOME first means HubChat.
fn read_welcome(
    reader: &mut FrameReader<Link>,
    mut first: Option<ServerPacket>,
    name: &str,
    addr: &str,
) -> Result<Welcomed, ConnectError> {
    let mut welcome = None;
    loop {
        let packet = match first.take() {
            Some(p) => p,
            None => next(reader, addr)?,
        };
        match packet {
            ServerPacket::Welcome(w) => welcome = Some(w),
            ServerPacket::AllClients(roster) => {
                let entries = roster.0;
                return match welcome {
                    Some(w) => Ok(Welcomed {
                        id: w.id,
                        kind: ServerKind::HubChat {
                            version: w.version,
                            max_packet: w.max_packet,
                            max_message: w.max_message,
                            max_file: w.max_file.filter(|_| w.version >= FILE_VERSION),
                        },
                        roster: entries,
                    }),
                    None => {
                        // The original does not say who we are: we are the
                        // newest entry with our name.
                        let id = entries
                            .iter()
                            .rev()
                            .find(|(_, p)| p.name == name)
                            .map(|(id, _)| id.clone())
                            .ok_or_else(|| ConnectError::Failed {
                                message: "The server's list of clients does not include us.".into(),
                            })?;
                        Ok(Welcomed {
                            id,
                            kind: ServerKind::Original,
                            roster: entries,
                        })
                    }
                };
            }
            ServerPacket::Error(report) => {
                return Err(ConnectError::Rejected {
                    code: Some(report.code),
                    message: report.message,
                })
            }
            ServerPacket::ServerClose { message } => {
                return Err(ConnectError::Rejected {
                    code: None,
                    message,
                })
            }
            _ => continue,
        }
    }
}

/// Marks the session ended and reports [`SessionEvent::Lost`] when dropped:
/// with the reason found when the reader ends as it should, and as a
/// breakdown when it unwinds from a panic (a bug, or in the caller's sink),
/// so the window never keeps showing "connected" for a dead connection.
struct LostGuard<'a> {
    sink: &'a dyn Fn(SessionEvent),
    ended: &'a AtomicBool,
    files: Option<&'a Files>,
    reason: Option<String>,
}

impl LostGuard<'_> {
    fn report(mut self, reason: String) {
        self.reason = Some(reason);
    }
}

impl Drop for LostGuard<'_> {
    fn drop(&mut self) {
        self.ended.store(true, Ordering::SeqCst);
        let reason = self.reason.take().unwrap_or_else(|| {
            "The connection was lost: this program broke down reading from the server.".into()
        });
        // While unwinding, a second panic (in the sink) would abort the
        // whole program: contain it; the thread is ending either way.
        let sink = self.sink;
        let files = self.files;
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            if let Some(files) = files {
                files.lost(&reason);
            }
            sink(SessionEvent::Lost { reason })
        }));
    }
}

/// Turns packets into events until the connection ends, then marks the
/// session ended (so nothing more is sent) and reports why.
fn read_loop(
    mut reader: FrameReader<Link>,
    sink: &dyn Fn(SessionEvent),
    ended: &AtomicBool,
    files: Option<&Files>,
) {
    let guard = LostGuard {
        sink,
        ended,
        files,
        reason: None,
    };
    let reason = loop {
        let packet = match reader.read_frame() {
            Ok(Some(body)) => match ServerPacket::decode(body) {
                Ok(p) => p,
                // One unreadable packet must not crash the client; it is
                // skipped, as unknown flags are.
                Err(_) => continue,
            },
            Ok(None) => break "The server closed the connection.".to_string(),
            Err(e) => break format!("The connection was lost: {e}."),
        };
        match packet {
            ServerPacket::AllClients(r) => sink(SessionEvent::Listed(r.0)),
            ServerPacket::Disconnect { id } => sink(SessionEvent::Left { id }),
            ServerPacket::Message { from, text, .. } => sink(SessionEvent::Message { from, text }),
            ServerPacket::Error(r) => sink(SessionEvent::Refused {
                code: r.code,
                message: r.message,
            }),
            // A server can be anyone's: the same strict check as the
            // server's, so no peer's picture can bomb or crash the window.
            ServerPacket::Picture { id, png } => {
                if let Ok(picture) = avatar::check_wire_picture(&png) {
                    sink(SessionEvent::Picture { id, picture });
                }
            }
            ServerPacket::Chat(chat) => sink(SessionEvent::Chat(chat)),
            ServerPacket::Receipt(receipt) => sink(SessionEvent::Receipt(receipt)),
            ServerPacket::Typing { name, active } => sink(SessionEvent::Typing { name, active }),
            ServerPacket::People(people) => sink(SessionEvent::People(people)),
            ServerPacket::File(file) => {
                if let Some(files) = files {
                    files.handle(file);
                }
            }
            ServerPacket::ServerClose { message } => break message,
            ServerPacket::InfoRequest
            | ServerPacket::Welcome(_)
            | ServerPacket::StartTls
            | ServerPacket::Unknown { .. } => {}
        }
    };
    guard.report(reason);
}
